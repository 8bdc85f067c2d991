//! trailwatch catches costly and suspicious AWS API activity in CloudTrail.
//!
//! The crate is a library with one binary. Its modules, in pipeline order:
//! - [`cloudtrail`]: reading deliveries, the record model, damaged input;
//! - [`context`]: who and what is behind an anomaly, shared with the enricher;
//! - [`deploy`]: the deploy configuration and the CloudFormation template;
//! - [`detector`]: detector files parsed and validated into one typed model;
//! - [`engine`]: local detection (aggregation per interval, RCF scoring, sinks);
//! - [`lambda`]: the Lambda handlers' pure cores (the forwarder's bulk decisions);
//! - [`simulate`]: realistic CloudTrail with injected incidents;
//! - [`cli`]: argument structs and dispatch, one file per command family.

pub mod cli;
pub mod cloudtrail;
pub mod context;
pub mod deploy;
pub mod detector;
pub mod engine;
pub mod lambda;
pub mod simulate;
