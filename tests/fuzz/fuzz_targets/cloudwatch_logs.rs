#![no_main]
//! Fuzz target: see `trailwatch::fuzzing::cloudwatch_logs`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch::fuzzing::cloudwatch_logs(data));
