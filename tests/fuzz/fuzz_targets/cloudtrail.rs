#![no_main]
//! Fuzz target: see `trailwatch::fuzzing::cloudtrail`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch::fuzzing::cloudtrail(data));
