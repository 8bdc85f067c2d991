#![no_main]
//! Fuzz target: see `trailwatch::fuzzing::detector_toml`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch::fuzzing::detector_toml(data));
