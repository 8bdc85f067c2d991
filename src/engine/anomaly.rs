//! What the engine reports.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// Which detection found it. Issue-tracked kinds beyond RCF join this enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    Rcf,
}

/// One anomalous interval of one detector (and entity).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    pub detector: String,
    pub kind: AnomalyKind,
    /// Category field -> value, or null for a single-entity detector.
    pub entity: Option<BTreeMap<String, String>>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub grade: f64,
    pub confidence: f64,
    pub actual: f64,
    pub expected: f64,
    pub score: f64,
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
