#![no_main]
//! Fuzz target: see `trailwatch::fuzzing::alert`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch::fuzzing::alert(data));
