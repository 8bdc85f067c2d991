//! The OpenSearch side. [`client`]: the one client of every call trailwatch
//! makes to a cluster (SigV4, basic auth or none). [`query`]: query JSON
//! derived from the detector and context models. [`desired`]: the desired
//! state of every object trailwatch manages on a cluster, as pure
//! functions. [`apply`]: the reconcile of that state against a live cluster.
//! [`dashboards`]: the saved objects of `dashboards/` and their import.
//! [`bootstrap`]: the two together, as one call. [`inspect`]: day two on
//! what apply made (monitor and detector status, test alerts). [`scan`]:
//! records read back out of an index, for `detect`. [`backtest`]: the
//! plugin's historical analysis, beside the local engine's.

pub mod apply;
pub mod backtest;
pub mod bootstrap;
pub mod client;
pub mod dashboards;
pub mod desired;
pub mod inspect;
pub mod query;
pub mod scan;

pub use client::{is_aws_host, Auth, OpenSearch, OpenSearchError, Response, Target};
