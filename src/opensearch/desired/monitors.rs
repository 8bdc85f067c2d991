//! The alerting plugin's monitors, one per detector, in the form Dashboards
//! shows as an anomaly detector monitor: a query-level monitor over the
//! detector's results in the last interval, triggering on the file's grade
//! and confidence, whose action sends the structured alert that
//! `lambda enrich` parses ([`crate::lambda::alert::Alert::from_message`]) to
//! every channel.

use super::MANAGED;
use crate::detector::Detector;
use crate::opensearch::desired::detectors::{detector_name, RESULT_INDEX, RESULT_INDICES};
use serde_json::{json, Value};

/// The monitor's name (the detector's, as the plugin knows it).
pub fn monitor_name(d: &Detector) -> String {
    detector_name(d)
}

fn trigger_name(d: &Detector) -> String {
    format!("{}-anomaly", detector_name(d))
}

/// The action's message: one JSON object, every value from the top result
/// of the interval (quoted, so that a missing one is empty text, not bad JSON).
pub fn message_template(d: &Detector) -> String {
    let top = "ctx.results.0.hits.hits.0._source";
    let entity: Vec<String> = (0..d.category_fields.len())
        .map(|i| {
            format!(
                r#"{{"name":"{{{{{top}.entity.{i}.name}}}}","value":"{{{{{top}.entity.{i}.value}}}}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"monitor":"{{{{ctx.monitor.name}}}}","detector":"{}","entity":[{}],"period_start":"{{{{{top}.data_start_time}}}}","period_end":"{{{{{top}.data_end_time}}}}","anomaly_grade":"{{{{{top}.anomaly_grade}}}}","confidence":"{{{{{top}.confidence}}}}"}}"#,
        d.name,
        entity.join(",")
    )
}

/// The message a test run sends (`trailwatch monitors test`): the same
/// structured alert, marked `"test": true`, over the monitor's period
/// rather than a result's, with no entity, grade or confidence.
pub fn test_message_template(d: &Detector) -> String {
    format!(
        r#"{{"monitor":"{{{{ctx.monitor.name}}}}","detector":"{}","test":true,"entity":[],"period_start":"{{{{ctx.periodStart}}}}","period_end":"{{{{ctx.periodEnd}}}}","anomaly_grade":"","confidence":""}}"#,
        d.name
    )
}

/// The trigger's painless condition: the interval's best result has a
/// grade and confidence above the file's thresholds.
fn condition(d: &Detector) -> String {
    format!(
        "return ctx.results != null && ctx.results.length > 0 \
&& ctx.results[0].hits.total.value > 0 \
&& ctx.results[0].aggregations != null \
&& ctx.results[0].aggregations.max_anomaly_grade != null \
&& ctx.results[0].aggregations.max_anomaly_grade.value != null \
&& ctx.results[0].hits.hits[0]._source != null \
&& ctx.results[0].hits.hits[0]._source.confidence != null \
&& ctx.results[0].aggregations.max_anomaly_grade.value > {} \
&& ctx.results[0].hits.hits[0]._source.confidence > {}",
        d.alert.grade, d.alert.confidence
    )
}

/// The body of `POST _plugins/_alerting/monitors` for the detector whose
/// plugin id is `detector_id`, sending to the channels `channel_ids`.
pub fn monitor_body(d: &Detector, detector_id: &str, channel_ids: &[String]) -> Value {
    let minutes = (d.interval.as_secs() / 60).max(1);
    let schedule = json!({"period": {"interval": minutes, "unit": "MINUTES"}});
    let actions: Vec<Value> = channel_ids
        .iter()
        .map(|id| {
            json!({
                "name": format!("{}-to-{id}", detector_name(d)),
                "destination_id": id,
                "subject_template": {"source": format!("trailwatch: {} anomaly", d.name), "lang": "mustache"},
                "message_template": {"source": message_template(d), "lang": "mustache"},
                "throttle_enabled": false
            })
        })
        .collect();
    let trigger = trigger_name(d);
    json!({
        "type": "monitor",
        "monitor_type": "query_level_monitor",
        "name": monitor_name(d),
        "enabled": true,
        "schedule": schedule,
        "inputs": [{"search": {
            "indices": [RESULT_INDICES],
            "query": {
                "size": 1,
                "sort": [{"anomaly_grade": {"order": "desc"}}, {"confidence": {"order": "desc"}}],
                "query": {"bool": {
                    "filter": [
                        {"range": {"execution_end_time": {
                            "from": format!("{{{{period_end}}}}||-{}m", minutes * 2),
                            "to": "{{period_end}}",
                            "include_lower": true,
                            "include_upper": true,
                            "format": "epoch_millis"
                        }}},
                        {"term": {"detector_id": {"value": detector_id}}}
                    ],
                    // Real-time results only: a backtest's carry its task id
                    // and must not page.
                    "must_not": [{"exists": {"field": "task_id"}}]
                }},
                "aggregations": {"max_anomaly_grade": {"max": {"field": "anomaly_grade"}}}
            }
        }}],
        "triggers": [{"query_level_trigger": {
            "name": trigger,
            "severity": "1",
            "condition": {"script": {"source": condition(d), "lang": "painless"}},
            "actions": actions
        }}],
        "ui_metadata": {
            "schedule": {"timezone": null, "frequency": "interval", "period": {"interval": minutes, "unit": "MINUTES"}},
            "monitor_type": "query_level_monitor",
            "search": {"searchType": "ad", "resultIndex": RESULT_INDEX},
            "triggers": {trigger: {
                "value": d.alert.grade,
                "enum": "ABOVE",
                "adTriggerMetadata": {
                    "triggerType": "anomaly_detector_trigger",
                    "anomalyGrade": {"value": d.alert.grade, "enum": "ABOVE"},
                    "anomalyConfidence": {"value": d.alert.confidence, "enum": "ABOVE"}
                }
            }},
            "managed_by": MANAGED,
            "detector_id": detector_id
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn dashboards_sees_an_ad_monitor_with_the_files_thresholds() {
        let d = crate::detector::shipped().remove(0);
        let m = monitor_body(&d, "det-1", &["trailwatch-alerts".into()]);
        assert_eq!(m["ui_metadata"]["search"]["searchType"], "ad");
        let trigger = &m["ui_metadata"]["triggers"][trigger_name(&d)];
        assert_eq!(
            trigger["adTriggerMetadata"]["triggerType"],
            "anomaly_detector_trigger"
        );
        assert_eq!(
            trigger["adTriggerMetadata"]["anomalyGrade"]["value"],
            d.alert.grade
        );
        let filter = &m["inputs"][0]["search"]["query"]["query"]["bool"]["filter"];
        assert_eq!(
            filter[1],
            json!({"term": {"detector_id": {"value": "det-1"}}})
        );
        let condition = m["triggers"][0]["query_level_trigger"]["condition"]["script"]["source"]
            .as_str()
            .unwrap();
        assert!(
            condition.contains(&format!("max_anomaly_grade.value > {}", d.alert.grade)),
            "{condition}"
        );
        assert!(
            condition.contains(&format!("_source.confidence > {}", d.alert.confidence)),
            "{condition}"
        );
        assert!(
            condition.starts_with("return ctx.results != null && ctx.results.length > 0"),
            "{condition}"
        );
        let actions = &m["triggers"][0]["query_level_trigger"]["actions"];
        assert_eq!(actions[0]["destination_id"], "trailwatch-alerts");
    }
}
