//! The OpenSearch edge: one HTTP client for every call trailwatch makes to a
//! domain, signed with SigV4 (service `es`) when it talks to AWS, plain when
//! it talks to a local server or a tunnel ([`client`]); and the query JSON
//! derived from the detector and context models ([`query`]); the index
//! template of what the forwarder writes ([`mapping`]).

pub mod client;
pub mod mapping;
pub mod query;

pub use client::{is_aws_host, Auth, OpenSearch, OpenSearchError, Response, Target};
