//! Local detection, the same model as OpenSearch anomaly detection.
//!
//! The pipeline, in vector's terms:
//! - source ([`source`]): read inputs in parallel, each record offered to the aggregator;
//! - transform ([`aggregate`]): per detector and entity, one value per interval.
//!   Aggregation is order-independent and mergeable, so files decode on all
//!   cores and memory grows with intervals × entities, not with events;
//! - scoring ([`score`]): each series, in time order with empty intervals as
//!   zero, through a [`rcf::Scorer`] (thresholded random cut forest, the
//!   plugin's defaults); intervals before `--since` only train;
//! - sinks ([`sink`]): table, JSON or NDJSON.

pub mod aggregate;
pub mod anomaly;
pub mod rcf;
pub mod score;
pub mod sink;
pub mod source;

pub use aggregate::{Aggregates, Aggregator};
pub use anomaly::{Anomaly, AnomalyKind};
pub use score::{score_all, ScoreOptions};
