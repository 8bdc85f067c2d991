//! Retention: the Index State Management policy that deletes the `cwl-*`
//! indices after `--index-retention-days`. The anomaly results are kept as
//! long by the detectors' own result index settings (`result_index_ttl`).

use super::MANAGED;
use serde_json::{json, Value};

/// The policy of the forwarder's indices.
pub const RECORDS_POLICY: &str = "trailwatch-cwl-retention";
/// The policy an earlier trailwatch kept for the plugin's own result
/// indices (system indices, which the detectors no longer write to):
/// `opensearch delete` still removes it.
pub const LEGACY_RESULTS_POLICY: &str = "trailwatch-anomaly-results-retention";

/// The body of `PUT _plugins/_ism/policies/<id>`: delete at `days`.
pub fn policy(description: &str, pattern: &str, days: u32) -> Value {
    json!({"policy": {
        "description": format!("{description} ({MANAGED})"),
        "default_state": "keep",
        "states": [
            {"name": "keep", "actions": [], "transitions": [
                {"state_name": "delete", "conditions": {"min_index_age": format!("{days}d")}}
            ]},
            {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
        ],
        "ism_template": [{"index_patterns": [pattern], "priority": 100}]
    }})
}

/// The policies, by id.
pub fn policies(days: u32) -> Vec<(String, Value)> {
    vec![(
        RECORDS_POLICY.into(),
        policy(
            &format!("delete CloudTrail indices after {days} days"),
            super::template::INDEX_PATTERN,
            days,
        ),
    )]
}
