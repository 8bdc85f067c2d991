//! The Lambdas: the forwarder turns CloudWatch Logs subscription batches
//! into OpenSearch documents and delivers them without losing one; the
//! enricher turns an alert into a notification a person can act on; the
//! bootstrap applies the OpenSearch objects from inside the stack.
//! - [`forwarder`]: the forwarder's pure decisions (documents, `_bulk`
//!   bodies, item outcomes);
//! - [`delivery`]: the retry loop around them, against a real endpoint;
//! - [`dead_letter`]: where records that can never be indexed go;
//! - [`rule_pages`]: the rule findings the forwarder pages on, and where
//!   they are sent;
//! - [`alert`]: the enricher's pure core (the alert read, the notification
//!   written);
//! - [`enricher`]: its OpenSearch queries and SNS publishing;
//! - [`incidents`]: the findings the enricher and the forwarder keep, so
//!   an alert is judged with its incident and an incident pages once;
//! - [`custom_resource`]: the OpenSearch bootstrap as a CloudFormation
//!   custom resource;
//! - [`organization`]: an organisation trail's accounts, for the rules;
//! - [`engine`]: the engine Lambda, S3 notifications driving the pipeline
//!   `detect` runs, its state in the bucket;
//! - [`shard`]: engines that share a trail by account;
//! - [`runtime`]: the Lambda runtime loop of the one bootstrap binary.

pub mod alert;
pub mod custom_resource;
pub mod dead_letter;
pub mod delivery;
pub mod engine;
pub mod enricher;
pub mod forwarder;
pub mod incidents;
pub mod organization;
pub mod rule_pages;
pub mod runtime;
pub mod shard;
