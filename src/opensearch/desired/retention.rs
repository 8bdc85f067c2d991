//! Retention: Index State Management policies that delete the `cwl-*`
//! indices, and the anomaly result indices, after `--index-retention-days`.

use super::MANAGED;
use serde_json::{json, Value};

/// The policy of the forwarder's indices.
pub const RECORDS_POLICY: &str = "trailwatch-cwl-retention";
/// The policy of the anomaly result indices.
pub const RESULTS_POLICY: &str = "trailwatch-anomaly-results-retention";
/// The result indices the AD plugin rolls over into.
pub const RESULT_HISTORY: &str = ".opendistro-anomaly-results-history-*";

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

/// Both policies, by id.
pub fn policies(days: u32) -> Vec<(String, Value)> {
    vec![
        (
            RECORDS_POLICY.into(),
            policy(
                &format!("delete CloudTrail indices after {days} days"),
                super::template::INDEX_PATTERN,
                days,
            ),
        ),
        (
            RESULTS_POLICY.into(),
            policy(
                &format!("delete anomaly results after {days} days"),
                RESULT_HISTORY,
                days,
            ),
        ),
    ]
}
