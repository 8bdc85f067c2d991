#![no_main]
//! Fuzz target: see `trailwatch::fuzzing::keys_and_paths`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch::fuzzing::keys_and_paths(data));
