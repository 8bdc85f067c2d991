//! End-to-end specifications of trailwatch, run against the built binary and
//! the library. One test binary, so the suite links once.

mod util;

mod cli;
mod compose;
mod conformance;
mod dashboards;
mod deploy;
mod detect_simulated;
mod detectors;
mod docs;
mod engine_lambda;
mod eval;
mod follow;
mod fuzz_corpus;
mod hostile_input;
mod lambda;
mod opensearch;
mod output;
mod plan;
mod read_real_data;
mod report;
mod sigma;
mod users;
