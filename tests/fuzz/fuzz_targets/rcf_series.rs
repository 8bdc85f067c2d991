#![no_main]
//! Fuzz target: see `trailwatch::fuzzing::rcf_series`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch::fuzzing::rcf_series(data));
