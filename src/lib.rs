//! trailwatch catches costly and suspicious AWS API activity in CloudTrail.
//!
//! The crate is a library with one binary. Its modules, in pipeline order:
//! - [`aws`]: the AWS SDK configuration every client is built from;
//! - [`cloudtrail`]: reading deliveries, the record model, damaged input;
//! - [`context`]: who and what is behind an anomaly, shared with the enricher;
//! - [`cost`]: the shipped price table and what started resources cost;
//! - [`deploy`]: the deploy configuration, the CloudFormation template, the
//!   Lambda package, and the stack's change sets and events;
//! - [`detector`]: detector files parsed and validated into one typed model;
//! - [`engine`]: local detection (aggregation per interval, RCF scoring, sinks);
//! - [`lambda`]: the Lambda handlers' pure cores (the forwarder's bulk decisions);
//! - [`opensearch`]: the HTTP client of OpenSearch domains, SigV4-signed;
//! - [`simulate`]: realistic CloudTrail with injected incidents;
//! - [`eval`]: detection quality on simulated organisations (`make eval`);
//! - [`users`]: dashboard users in the stack's Cognito user pool, and the
//!   role each gets at sign-in;
//! - [`fuzzing`]: the entry points of the fuzz targets (`tests/fuzz/`, `make fuzz`);
//! - [`cli`]: argument structs and dispatch, one file per command family.

pub mod aws;
pub mod cli;
pub mod cloudtrail;
pub mod context;
pub mod cost;
pub mod deploy;
pub mod detector;
pub mod engine;
pub mod eval;
pub mod fuzzing;
pub mod lambda;
pub mod opensearch;
pub mod simulate;
pub mod users;
