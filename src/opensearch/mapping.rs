//! The index template of the `cwl-*` indices the forwarder writes: strings
//! are `keyword` (exact terms and aggregations on any CloudTrail field, and
//! the keyword category fields anomaly detection needs), times are dates.

use serde_json::{json, Value};

/// The indices the forwarder writes, one per UTC day.
pub const INDEX_PATTERN: &str = "cwl-*";
/// The template's name.
pub const TEMPLATE_NAME: &str = "trailwatch-cwl";

/// The body of `PUT _index_template/trailwatch-cwl`.
pub fn index_template() -> Value {
    json!({
        "index_patterns": [INDEX_PATTERN],
        "priority": 100,
        "template": {
            "settings": {"index": {"mapping": {"total_fields": {"limit": 5000}, "ignore_malformed": true}}},
            "mappings": {
                "dynamic_templates": [
                    {"strings_as_keywords": {
                        "match_mapping_type": "string",
                        "mapping": {"type": "keyword", "ignore_above": 1024}
                    }}
                ],
                "properties": {
                    "@timestamp": {"type": "date"},
                    "eventTime": {"type": "date"},
                    "@message": {"type": "text", "index": false},
                    "sourceIPAddress": {"type": "keyword"},
                    "readOnly": {"type": "boolean"}
                }
            }
        }
    })
}
