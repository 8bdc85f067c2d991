//! The anomaly detectors of the AD plugin, one per detector file, rendered
//! from the same typed [`Detector`] the local engine runs; and what the
//! plugin cannot express or would refuse, found offline.

use super::{Refusal, MANAGED};
use crate::detector::{Detector, Direction, Imputation, ValueSpec};
use crate::opensearch::desired::template::INDEX_PATTERN;
use crate::opensearch::query::filter_clauses;
use serde_json::{json, Value};

/// High-cardinality detectors a cluster runs by default
/// (`plugins.anomaly_detection.max_multi_entity_anomaly_detectors`).
pub const MAX_HIGH_CARDINALITY: usize = 10;
/// Single-entity detectors a cluster runs by default.
pub const MAX_SINGLE_ENTITY: usize = 1000;
/// The plugin's longest detector name.
const MAX_NAME: usize = 64;

/// The plugin's name of the detector made from `d`.
pub fn detector_name(d: &Detector) -> String {
    format!("trailwatch-{}", d.name)
}

/// The one feature's name: what it computes.
pub fn feature_name(d: &Detector) -> String {
    match &d.value {
        ValueSpec::Count => "count".into(),
        ValueSpec::Sum(_) => "sum".into(),
        ValueSpec::Distinct(_) => "distinct".into(),
    }
}

fn minutes(d: std::time::Duration) -> u64 {
    d.as_secs() / 60
}

/// The custom result index every detector writes to (the plugin requires
/// the `opensearch-ad-plugin-result-` prefix). The plugin's own result
/// indices are system indices: on a secured cluster every REST search of
/// them answers no hits, silently, admin included, so Dashboards' panels,
/// `detectors status` and `backtest` would see nothing. This one is a
/// normal index (an alias over the plugin's rolled-over indices) that our
/// roles can read.
pub const RESULT_INDEX: &str = "opensearch-ad-plugin-result-trailwatch";
/// The result indices to search: the alias and what it rolls over into.
pub const RESULT_INDICES: &str = "opensearch-ad-plugin-result-trailwatch*";

/// The plugin's `imputation_option` for an imputation, or none (`null`
/// here, so that a detector that had one shows the change; [`to_send`]
/// leaves it out, as the plugin refuses a null).
fn imputation_option(i: Imputation) -> Value {
    match i {
        Imputation::None => Value::Null,
        Imputation::Zero => json!({"method": "ZERO"}),
        Imputation::Previous => json!({"method": "PREVIOUS"}),
    }
}

/// The body of `POST _plugins/_anomaly_detection/detectors`; results kept
/// `retention_days` (the plugin rolls the result index over daily and
/// deletes what is older).
pub fn detector_body(d: &Detector, retention_days: u32) -> Value {
    let (filter, must_not) = filter_clauses(&d.filter);
    let feature = feature_name(d);
    let aggregation = match &d.value {
        ValueSpec::Count => json!({"value_count": {"field": "eventID"}}),
        ValueSpec::Sum(p) => json!({"sum": {"field": p.as_str()}}),
        ValueSpec::Distinct(p) => json!({"cardinality": {"field": p.as_str()}}),
    };
    json!({
        "name": detector_name(d),
        "description": format!("{} ({MANAGED}, from {})", d.description, d.source.display()),
        "time_field": "eventTime",
        "indices": [INDEX_PATTERN],
        "filter_query": {"bool": {"filter": filter, "must_not": must_not}},
        "feature_attributes": [{
            "feature_name": feature,
            "feature_enabled": true,
            "aggregation_query": {feature.clone(): aggregation}
        }],
        "detection_interval": {"period": {"interval": minutes(d.interval), "unit": "Minutes"}},
        "window_delay": {"period": {"interval": minutes(d.window_delay), "unit": "Minutes"}},
        "shingle_size": d.shingle_size,
        "imputation_option": imputation_option(d.imputation),
        "result_index": RESULT_INDEX,
        "result_index_min_age": 1,
        "result_index_ttl": retention_days,
        "rules": rules(d, &feature),
        // Empty for a single-entity detector: a removed category field is a change.
        "category_field": d.category_fields.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
    })
}

/// The body as the plugin takes it: without the keys whose value is null.
pub fn to_send(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(o) = body.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    body
}

/// The plugin's `rules`: anomalies in the other direction, and deviations
/// under `min_ratio` of the expected value or under `min_margin`, are
/// ignored, as the local engine's `AlertThresholds::keeps` does.
fn rules(d: &Detector, feature: &str) -> Value {
    let a = &d.alert;
    let ignore = |threshold_type: &str, value: Option<f64>| {
        let mut condition = json!({"feature_name": feature, "threshold_type": threshold_type});
        if let Some(v) = value {
            condition["operator"] = json!("LTE");
            condition["value"] = json!(v);
        }
        json!({"action": "IGNORE_ANOMALY", "conditions": [condition]})
    };
    let mut out = Vec::new();
    match a.direction {
        Direction::Up => out.push(ignore("ACTUAL_IS_BELOW_EXPECTED", None)),
        Direction::Down => out.push(ignore("ACTUAL_IS_OVER_EXPECTED", None)),
        Direction::Both => {}
    }
    let up = a.direction != Direction::Down;
    let down = a.direction != Direction::Up;
    if a.min_ratio > 0.0 {
        if up {
            out.push(ignore("ACTUAL_OVER_EXPECTED_RATIO", Some(a.min_ratio)));
        }
        if down {
            out.push(ignore("EXPECTED_OVER_ACTUAL_RATIO", Some(a.min_ratio)));
        }
    }
    if a.min_margin > 0.0 {
        if up {
            out.push(ignore("ACTUAL_OVER_EXPECTED_MARGIN", Some(a.min_margin)));
        }
        if down {
            out.push(ignore("EXPECTED_OVER_ACTUAL_MARGIN", Some(a.min_margin)));
        }
    }
    Value::Array(out)
}

/// CloudTrail data events: calls made at the rate of an application's own
/// traffic, so a series of them has data in most intervals.
const DATA_EVENTS: [&str; 12] = [
    "Invoke",
    "GetObject",
    "PutObject",
    "HeadObject",
    "ListObjects",
    "DeleteObject",
    "GetItem",
    "PutItem",
    "Query",
    "Scan",
    "Decrypt",
    "GenerateDataKey",
];

/// Why a detector's series looks sparse (most intervals empty), if it
/// does: it counts failed calls, or particular calls that are not data
/// events.
pub fn looks_sparse(d: &Detector) -> Option<String> {
    use crate::detector::ErrorFilter;
    if matches!(d.filter.errors, ErrorFilter::Failed | ErrorFilter::Codes(_)) {
        return Some("it counts failed calls".into());
    }
    let names = &d.filter.event_names;
    if !names.is_empty() && !names.iter().any(|n| DATA_EVENTS.contains(&n.as_str())) {
        return Some(format!("it counts {} calls", names.join(", ")));
    }
    None
}

/// What `plan` warns of: a detector whose series looks sparse but whose
/// imputation is zero, which blinds the plugin on it.
pub fn imputation_warnings(detectors: &[Detector]) -> Vec<String> {
    detectors
        .iter()
        .filter(|d| d.imputation == Imputation::Zero)
        .filter_map(|d| {
            let why = looks_sparse(d)?;
            Some(format!(
                "{}: the series looks sparse ({why}, which most {}-minute intervals lack) and imputation is \"zero\": \
the OpenSearch plugin's confidence then stays too low on it to grade anything, a burst included (recorded on the real plugin); \
set imputation = \"none\" in the file, or rely on `detect` and the rules for this detector",
                d.source.display(),
                minutes(d.interval)
            ))
        })
        .collect()
}

/// What the plugin would refuse in these detectors, each naming its file
/// and key.
pub fn refusals(detectors: &[Detector]) -> Vec<Refusal> {
    let mut out = Vec::new();
    let refuse = |d: &Detector, key: &str, reason: String| Refusal {
        file: d.source.clone(),
        key: key.to_owned(),
        reason,
    };
    for d in detectors {
        let name = detector_name(d);
        if name.len() > MAX_NAME {
            out.push(refuse(d, "name", format!(
                "the plugin's detector name {name:?} is {} characters; it takes at most {MAX_NAME}: shorten the file name",
                name.len()
            )));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            out.push(refuse(d, "name", format!(
                "the plugin's detector name {name:?} may hold only letters, digits, '-', '_' and '.': rename the file"
            )));
        }
        for (key, span) in [("interval", d.interval), ("window_delay", d.window_delay)] {
            if span.as_secs() % 60 != 0 {
                out.push(refuse(
                    d,
                    key,
                    format!(
                        "the plugin counts {key} in whole minutes; {} s is not one",
                        span.as_secs()
                    ),
                ));
            }
        }
    }
    let high: Vec<&Detector> = detectors
        .iter()
        .filter(|d| d.is_high_cardinality())
        .collect();
    if high.len() > MAX_HIGH_CARDINALITY {
        for d in &high[MAX_HIGH_CARDINALITY..] {
            out.push(refuse(d, "category_fields", format!(
                "{} detectors have category fields; a cluster runs at most {MAX_HIGH_CARDINALITY} high-cardinality detectors by default: remove some, or drop category_fields from this one",
                high.len()
            )));
        }
    }
    if detectors.len() > MAX_SINGLE_ENTITY + MAX_HIGH_CARDINALITY {
        out.push(Refusal {
            file: detectors[0].source.clone(),
            key: "(set)".into(),
            reason: format!("{} detectors are more than a cluster runs", detectors.len()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::parse_detector;
    use std::path::Path;

    fn detector(file: &str, text: &str) -> Detector {
        parse_detector(Path::new(file), text).unwrap()
    }

    #[test]
    fn an_eleventh_high_cardinality_detector_is_refused_by_name() {
        let set: Vec<Detector> = (1..=11)
            .map(|i| {
                detector(
                    &format!("d{i:02}.toml"),
                    "description = \"per principal\"\ncategory_fields = [\"userIdentity.arn\"]\n",
                )
            })
            .collect();
        let refusals = refusals(&set);
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert_eq!(refusals[0].file, Path::new("d11.toml"));
        assert_eq!(refusals[0].key, "category_fields");
        assert!(refusals[0]
            .reason
            .contains("at most 10 high-cardinality detectors"));
        assert!(super::refusals(&set[..10]).is_empty());
    }

    #[test]
    fn the_alert_section_becomes_the_plugins_ignore_rules() {
        let d = detector(
            "up.toml",
            "description = \"x\"\n[alert]\ndirection = \"up\"\nmin_ratio = 0.5\nmin_margin = 3\n",
        );
        let body = detector_body(&d, 30);
        let kinds: Vec<&str> = body["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["conditions"][0]["threshold_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            vec![
                "ACTUAL_IS_BELOW_EXPECTED",
                "ACTUAL_OVER_EXPECTED_RATIO",
                "ACTUAL_OVER_EXPECTED_MARGIN"
            ]
        );
        assert_eq!(body["rules"][1]["conditions"][0]["value"], 0.5);
        assert_eq!(body["category_field"], serde_json::json!([]));
        assert_eq!(body["result_index"], RESULT_INDEX);
        assert_eq!(body["result_index_ttl"], 30);
        assert_eq!(
            body["feature_attributes"][0]["aggregation_query"]["count"]["value_count"]["field"],
            "eventID"
        );
    }

    #[test]
    fn plan_warns_of_zero_imputation_on_a_sparse_series_only() {
        let sparse_zero = detector(
            "runs.toml",
            "imputation = \"zero\"\n[filter]\nevent_names = [\"RunInstances\"]\n",
        );
        let dense_zero = detector(
            "invokes.toml",
            "imputation = \"zero\"\n[filter]\nevent_names = [\"Invoke\"]\n",
        );
        let sparse_none = detector(
            "runs-none.toml",
            "[filter]\nevent_names = [\"RunInstances\"]\n[alert]\ndirection = \"up\"\n",
        );
        let warnings = imputation_warnings(&[sparse_zero, dense_zero, sparse_none]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("runs.toml: the series looks sparse (it counts RunInstances calls, which most 10-minute intervals lack)"),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[0].contains("set imputation = \"none\""),
            "{}",
            warnings[0]
        );
        // The shipped detectors choose their imputation well.
        assert!(imputation_warnings(&crate::detector::shipped()).is_empty());
    }

    /// With ZERO imputation the real plugin graded nothing on sparse
    /// series, a crypto-mining burst included (recording 53).
    #[test]
    fn imputation_follows_the_series_and_the_file_can_say_it() {
        let imputation = |text: &str| {
            let body = to_send(&detector_body(&detector("d.toml", text), 30));
            body.get("imputation_option").cloned()
        };
        assert_eq!(
            imputation("[alert]\ndirection = \"up\"\n"),
            None,
            "sparse and up: none"
        );
        assert_eq!(
            imputation("[alert]\ndirection = \"both\"\n"),
            Some(serde_json::json!({"method": "ZERO"})),
            "a drop matters: zero"
        );
        assert_eq!(
            imputation("imputation = \"previous\"\n[alert]\ndirection = \"up\"\n"),
            Some(serde_json::json!({"method": "PREVIOUS"}))
        );
        // Sent without it, compared with it: a detector that had ZERO changes.
        let body = detector_body(&detector("d.toml", "[alert]\ndirection = \"up\"\n"), 30);
        let mut had = to_send(&body);
        had["imputation_option"] = serde_json::json!({"method": "ZERO"});
        assert_eq!(
            crate::opensearch::apply::differences(&body, &had),
            ["imputation_option"]
        );
        let bad = crate::detector::parse_detector(
            std::path::Path::new("d.toml"),
            "imputation = \"linear\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("imputation") && bad.contains("\"linear\" is not one of"),
            "{bad}"
        );
    }
}
