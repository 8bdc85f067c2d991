//! The findings index: where the deployed enricher keeps every finding it
//! judges, so the next alert is judged with its incident
//! ([`crate::lambda::incidents`]). Its template indexes what incidents are
//! found by (subjects, start, end), whether a finding paged, and what a
//! responder searches by (the pivots: access keys, source addresses,
//! regions, accounts, event IDs); the finding itself is kept whole but not
//! indexed, as its entity's field names vary by detector.

use serde_json::{json, Value};

/// The one index of kept findings (small: a few documents per alert).
pub const FINDINGS_INDEX: &str = "trailwatch-findings";
/// Its template's name.
pub const FINDINGS_TEMPLATE_NAME: &str = "trailwatch-findings";

/// The body of `PUT _index_template/trailwatch-findings`.
pub fn template() -> Value {
    json!({
        "index_patterns": [FINDINGS_INDEX],
        "priority": 100,
        "_meta": {"managed_by": "trailwatch"},
        "template": {
            "settings": {"index": {"number_of_shards": 1}},
            "mappings": {
                "dynamic": false,
                "properties": {
                    "subjects": {"type": "keyword", "ignore_above": 1024},
                    "start": {"type": "date"},
                    "end": {"type": "date"},
                    "paged": {"type": "keyword"},
                    // A source may be a service's name (`ec2.amazonaws.com`),
                    // so addresses are keywords, not `ip`.
                    "pivots": {"properties": {
                        "access_key_ids": {"type": "keyword", "ignore_above": 128},
                        "source_ips": {"type": "keyword", "ignore_above": 256},
                        "regions": {"type": "keyword", "ignore_above": 64},
                        "accounts": {"type": "keyword", "ignore_above": 64},
                        "event_ids": {"type": "keyword", "ignore_above": 128},
                        "events": {"type": "long"}
                    }},
                    "finding": {"type": "object", "enabled": false}
                }
            }
        }
    })
}
