//! What the engine reports.

use crate::context::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// Which detection found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A detector's random cut forest (as OpenSearch anomaly detection).
    Rcf,
    /// A CloudTrail-Insights-style rate change against a seasonal baseline.
    Insight,
    /// Something a principal never (or rarely) did before.
    NewEvent,
}

impl AnomalyKind {
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Rcf => "rcf",
            AnomalyKind::Insight => "insight",
            AnomalyKind::NewEvent => "new_event",
        }
    }
}

/// One anomalous span of one detector (and entity).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    /// The detector name, the insight type, or `new-activity` / `rare-activity`.
    pub detector: String,
    pub kind: AnomalyKind,
    /// Field -> value, or null for a single-entity detector.
    pub entity: Option<BTreeMap<String, String>>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub grade: f64,
    pub confidence: f64,
    pub actual: f64,
    pub expected: f64,
    pub score: f64,
    /// One sentence for people: what happened.
    pub summary: String,
    /// Who and what was behind it, against the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    /// The incident it belongs to (related anomalies close in time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<usize>,
    /// Principals and resources it concerns, for grouping.
    #[serde(skip)]
    pub subjects: Vec<String>,
    /// Found only on a second look, after deliveries arrived too late for
    /// the first (`--follow`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

impl Anomaly {
    /// The entity as one line, `field=value, …`, or `-`.
    pub fn entity_text(&self) -> String {
        match &self.entity {
            None => "-".into(),
            Some(map) => map
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Rounds for output: four decimals are more than a person or a threshold needs.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
