#![no_main]
//! Fuzz target: see `trailwatch::fuzzing::series_csv`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch::fuzzing::series_csv(data));
