//! Day two on the objects apply made: each monitor's state, last trigger
//! and channels; a test alert sent through a monitor's own actions, as
//! Dashboards' "Send test message" does; and each detector's state,
//! entities, last anomaly and last error. The request bodies and the
//! reading of the plugins' answers are plain functions; the calls are thin.

use super::apply::{find_detector, find_monitor, DETECTORS_API, MONITORS_API};
use super::desired::detectors::{detector_name, RESULT_INDICES};
use super::desired::monitors::{monitor_name, test_message_template};
use super::{OpenSearch, OpenSearchError};
use crate::detector::Detector;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// Why a day-two read or test failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{what}")]
    Cluster {
        what: String,
        #[source]
        source: OpenSearchError,
    },
    #[error("there is no {kind} {name} on this cluster; run trailwatch opensearch apply (or deploy) first")]
    Missing { kind: &'static str, name: String },
}

fn failed(what: impl Into<String>) -> impl FnOnce(OpenSearchError) -> InspectError {
    let what = what.into();
    move |source| InspectError::Cluster { what, source }
}

/// A Notifications channel an action sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRef {
    pub id: String,
    pub name: String,
    /// `sns`, `slack`, `chime`, `webhook`, or `unknown` when the channel is gone.
    pub kind: String,
}

/// What `monitors list` shows of one monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorInfo {
    pub name: String,
    pub detector: String,
    pub enabled: bool,
    /// The newest alert's start and state, if it ever triggered.
    pub last_trigger: Option<(DateTime<Utc>, String)>,
    pub channels: Vec<ChannelRef>,
}

/// Epoch milliseconds (a number or its text) as a time.
fn millis(v: &Value) -> Option<DateTime<Utc>> {
    let ms = v
        .as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .or_else(|| v.as_str()?.parse().ok())?;
    DateTime::from_timestamp_millis(ms)
}

/// A time as the tables print it.
pub fn when(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The destination ids of a monitor's actions, in order, once each.
pub fn destinations(monitor: &Value) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for t in monitor["triggers"].as_array().into_iter().flatten() {
        for a in t["query_level_trigger"]["actions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(id) = a["destination_id"].as_str() {
                if !ids.iter().any(|x| x == id) {
                    ids.push(id.to_owned());
                }
            }
        }
    }
    ids
}

/// The newest alert of `GET …/monitors/alerts`, as (start, state).
pub fn last_alert(answer: &Value) -> Option<(DateTime<Utc>, String)> {
    answer["alerts"]
        .as_array()?
        .iter()
        .filter_map(|a| Some((millis(&a["start_time"])?, a["state"].as_str()?.to_owned())))
        .max_by_key(|(t, _)| *t)
}

async fn channel(os: &OpenSearch, id: &str) -> Result<ChannelRef, InspectError> {
    let answer = os
        .request(
            "GET",
            &format!("/_plugins/_notifications/configs/{id}"),
            None,
        )
        .await
        .map_err(failed(format!("channel {id}")))?;
    if answer.status == 404 {
        return Ok(ChannelRef {
            id: id.to_owned(),
            name: id.to_owned(),
            kind: "unknown".into(),
        });
    }
    let v = answer
        .checked_json()
        .map_err(failed(format!("channel {id}")))?;
    let config = &v["config_list"][0]["config"];
    Ok(ChannelRef {
        id: id.to_owned(),
        name: config["name"].as_str().unwrap_or(id).to_owned(),
        kind: config["config_type"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
    })
}

/// The detector's monitor: its id and body.
async fn monitor(os: &OpenSearch, d: &Detector) -> Result<(String, Value), InspectError> {
    let name = monitor_name(d);
    find_monitor(os, &name)
        .await
        .map_err(failed(format!("monitor {name}")))?
        .ok_or(InspectError::Missing {
            kind: "monitor",
            name,
        })
}

/// What `monitors list` shows for the detector's monitor.
pub async fn monitor_info(os: &OpenSearch, d: &Detector) -> Result<MonitorInfo, InspectError> {
    let (id, body) = monitor(os, d).await?;
    let name = monitor_name(d);
    let alerts = os
        .request(
            "GET",
            &format!(
                "{MONITORS_API}/alerts?monitorId={id}&sortString=start_time&sortOrder=desc&size=1"
            ),
            None,
        )
        .await
        .map_err(failed(format!("monitor {name}'s alerts")))?;
    let last_trigger = if alerts.status == 404 {
        None
    } else {
        last_alert(
            &alerts
                .checked_json()
                .map_err(failed(format!("monitor {name}'s alerts")))?,
        )
    };
    let mut channels = Vec::new();
    for id in destinations(&body) {
        channels.push(channel(os, &id).await?);
    }
    Ok(MonitorInfo {
        name,
        detector: d.name.clone(),
        enabled: body["enabled"].as_bool().unwrap_or(false),
        last_trigger,
        channels,
    })
}

/// The copy of `monitor` a test runs: every trigger's condition is
/// `return true`, and every action sends the detector's test message (the
/// enricher's structured alert, marked `"test": true`, over the monitor's
/// period) with a subject saying it is a test. Nothing else changes, so
/// the alert takes the monitor's own path.
pub fn test_copy(monitor: &Value, d: &Detector) -> Value {
    let mut copy = monitor.clone();
    if let Some(o) = copy.as_object_mut() {
        o.remove("last_update_time");
        o.remove("enabled_time");
        o.insert("name".into(), json!(format!("{} (test)", monitor_name(d))));
    }
    for t in copy["triggers"].as_array_mut().into_iter().flatten() {
        let t = &mut t["query_level_trigger"];
        t["condition"] = json!({"script": {"source": "return true", "lang": "painless"}});
        for a in t["actions"].as_array_mut().into_iter().flatten() {
            a["subject_template"] =
                json!({"source": format!("trailwatch test: {}", d.name), "lang": "mustache"});
            a["message_template"] = json!({"source": test_message_template(d), "lang": "mustache"});
        }
    }
    copy
}

/// One action of a test run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub action: String,
    pub channel: ChannelRef,
    /// What the channel reported of the delivery (`HTTP 200`, an SNS
    /// message id), when the plugin says it.
    pub delivery: Option<String>,
    pub error: Option<String>,
}

/// One action of an `_execute` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    pub action: String,
    pub delivery: Option<String>,
    pub error: Option<String>,
}

/// What an action's `output.messageId` says of the delivery. The real
/// plugin puts there a JSON string: the Notifications delivery status of
/// each channel (`status_list[].delivery_status`: status code and text);
/// an older one, the message id itself. A status outside 2xx is an error.
pub fn delivery_of(message_id: &str) -> Result<String, String> {
    let Ok(status) = serde_json::from_str::<Value>(message_id) else {
        return Ok(format!("message id {message_id}"));
    };
    let Some(list) = status["status_list"].as_array() else {
        return Ok(format!("message id {message_id}"));
    };
    let mut said = Vec::new();
    for s in list {
        let code = s["delivery_status"]["status_code"].as_str().unwrap_or("");
        let text = s["delivery_status"]["status_text"]
            .as_str()
            .unwrap_or("")
            .trim();
        if !code.starts_with('2') {
            return Err(format!("the channel answered {code}: {text}"));
        }
        // SNS answers its message id; a webhook, its body.
        let text = text.chars().take(80).collect::<String>();
        said.push(if text.is_empty() {
            format!("delivered, status {code}")
        } else {
            format!("delivered, status {code}: {text}")
        });
    }
    Ok(said.join("; "))
}

/// The actions of an `_execute` answer. A trigger that did not fire, or
/// failed, is an error of its own.
pub fn executed_actions(answer: &Value) -> Result<Vec<Executed>, String> {
    if let Some(e) = answer["input_results"]["error"].as_str() {
        return Err(format!("the monitor's search failed: {e}"));
    }
    let mut out = Vec::new();
    for t in answer["trigger_results"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        if let Some(e) = t["error"].as_str() {
            return Err(format!("the trigger failed: {e}"));
        }
        if t["triggered"] != true {
            return Err("the test copy's trigger did not fire".into());
        }
        for a in t["action_results"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            let delivered = ["message_id", "messageId", "message-id"]
                .iter()
                .find_map(|k| a["output"][*k].as_str())
                .map(delivery_of);
            let (delivery, refused) = match delivered {
                Some(Ok(d)) => (Some(d), None),
                Some(Err(e)) => (None, Some(e)),
                None => (None, None),
            };
            out.push(Executed {
                action: a["name"].as_str().unwrap_or("").to_owned(),
                delivery,
                error: a["error"].as_str().map(str::to_owned).or(refused),
            });
        }
    }
    Ok(out)
}

/// Sends a test alert through the detector's monitor: its copy with a true
/// condition is executed for real (not a dry run), so each of its actions
/// sends once. Returns where each went.
pub async fn test_monitor(os: &OpenSearch, d: &Detector) -> Result<Vec<Sent>, InspectError> {
    let (_, body) = monitor(os, d).await?;
    let name = monitor_name(d);
    let copy = test_copy(&body, d);
    let answer = os
        .request("POST", &format!("{MONITORS_API}/_execute"), Some(&copy))
        .await
        .and_then(|a| a.checked_json())
        .map_err(failed(format!("monitor {name}'s test run")))?;
    let actions = executed_actions(&answer).map_err(|reason| InspectError::Cluster {
        what: format!("monitor {name}'s test run"),
        source: OpenSearchError::Status {
            method: "POST",
            path: format!("{MONITORS_API}/_execute"),
            status: 200,
            reason,
        },
    })?;
    // The action names its channel only in the monitor body.
    let by_action: Vec<(String, String)> = copy["triggers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| {
            t["query_level_trigger"]["actions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|a| {
            (
                a["name"].as_str().unwrap_or("").to_owned(),
                a["destination_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut sent = Vec::new();
    for e in actions {
        let id = by_action
            .iter()
            .find(|(a, _)| *a == e.action)
            .map(|(_, id)| id.clone())
            .unwrap_or_default();
        sent.push(Sent {
            channel: channel(os, &id).await?,
            action: e.action,
            delivery: e.delivery,
            error: e.error,
        });
    }
    Ok(sent)
}

/// A detector's state, from its profile.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Stopped,
    Initializing {
        percent: Option<f64>,
        minutes_left: Option<u64>,
    },
    Running,
    Failed(String),
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Stopped => write!(f, "stopped"),
            State::Running => write!(f, "running"),
            State::Failed(e) => write!(f, "failed: {e}"),
            State::Initializing {
                percent,
                minutes_left,
            } => {
                write!(f, "initializing")?;
                if let Some(p) = percent {
                    write!(f, " {p:.0}%")?;
                }
                if let Some(m) = minutes_left {
                    write!(f, ", about {m} min left")?;
                }
                Ok(())
            }
        }
    }
}

/// The state a profile (`GET …/<id>/_profile?_all=true`) says.
pub fn state_of(profile: &Value) -> State {
    let error = profile["error"].as_str().filter(|e| !e.is_empty());
    match (profile["state"].as_str().unwrap_or(""), error) {
        (_, Some(e)) => State::Failed(e.to_owned()),
        ("RUNNING", None) => State::Running,
        ("INIT", None) => {
            let p = &profile["init_progress"];
            State::Initializing {
                percent: p["percentage"]
                    .as_str()
                    .and_then(|s| s.trim_end_matches('%').parse().ok())
                    .or_else(|| p["percentage"].as_f64()),
                minutes_left: p["estimated_minutes_left"].as_u64(),
            }
        }
        _ => State::Stopped,
    }
}

/// What a detector's results say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Results {
    /// How many entities the detector models (high-cardinality ones).
    pub entities: Option<u64>,
    /// The busiest entities, by the summed feature over their results.
    pub busiest: Vec<(String, f64)>,
    /// The newest anomaly: its interval's end, entity and grade.
    pub last_anomaly: Option<(DateTime<Utc>, String, f64)>,
    /// The newest error a result carries.
    pub last_error: Option<(DateTime<Utc>, String)>,
}

/// What `detectors status` shows of one detector.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorStatus {
    pub name: String,
    pub detector: String,
    pub state: State,
    pub results: Results,
}

/// The results search: the newest anomaly, the newest error, the number of
/// entities and the busiest five, for one detector's real-time results
/// (a backtest's carry a `task_id`). An error is a non-empty `error`: the
/// plugin writes `"error": ""` on a single-stream detector's cold-start
/// results, which `exists` alone matches (`error` is mapped `text`, so a
/// wildcard term matches only a message with a word in it).
pub fn results_query(detector_id: &str) -> Value {
    json!({
        "size": 0,
        "query": {"bool": {
            "filter": [{"term": {"detector_id": detector_id}}],
            "must_not": [{"exists": {"field": "task_id"}}]
        }},
        "aggs": {
            "anomalies": {
                "filter": {"range": {"anomaly_grade": {"gt": 0}}},
                "aggs": {"last": {"top_hits": {"size": 1, "sort": [{"data_end_time": "desc"}], "_source": ["data_end_time", "anomaly_grade", "entity"]}}}
            },
            "errors": {
                "filter": {"bool": {"filter": [{"exists": {"field": "error"}}, {"wildcard": {"error": {"value": "*"}}}]}},
                "aggs": {"last": {"top_hits": {"size": 1, "sort": [{"execution_end_time": "desc"}], "_source": ["execution_end_time", "error"]}}}
            },
            "entities": {"cardinality": {"field": "model_id"}},
            "busiest": {
                "terms": {"field": "model_id", "size": 5, "order": {"features>total": "desc"}},
                "aggs": {
                    "features": {"nested": {"path": "feature_data"}, "aggs": {"total": {"sum": {"field": "feature_data.data"}}}},
                    "entity": {"top_hits": {"size": 1, "_source": ["entity"]}}
                }
            }
        }
    })
}

/// An entity as one text: its values joined by `/`.
fn entity_text(source: &Value) -> String {
    let values: Vec<&str> = source["entity"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["value"].as_str())
        .collect();
    if values.is_empty() {
        "-".into()
    } else {
        values.join("/")
    }
}

/// Reads [`results_query`]'s answer.
pub fn read_results(answer: &Value) -> Results {
    let aggs = &answer["aggregations"];
    let top = |agg: &str| aggs[agg]["last"]["hits"]["hits"][0]["_source"].clone();
    let anomaly = top("anomalies");
    let last_anomaly = millis(&anomaly["data_end_time"]).map(|t| {
        (
            t,
            entity_text(&anomaly),
            anomaly["anomaly_grade"].as_f64().unwrap_or(0.0),
        )
    });
    let error = top("errors");
    let message = error["error"]
        .as_str()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let last_error = millis(&error["execution_end_time"]).zip(message.map(str::to_owned));
    let busiest = aggs["busiest"]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["key"].as_str().is_some_and(|k| !k.is_empty()))
        .map(|b| {
            (
                entity_text(&b["entity"]["hits"]["hits"][0]["_source"]),
                b["features"]["total"]["value"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    Results {
        entities: aggs["entities"]["value"].as_u64().filter(|n| *n > 0),
        busiest,
        last_anomaly,
        last_error,
    }
}

/// The plugin's id of the detector made from `d`.
pub async fn detector_id(os: &OpenSearch, d: &Detector) -> Result<String, InspectError> {
    let name = detector_name(d);
    let found = find_detector(os, &name)
        .await
        .map_err(failed(format!("detector {name}")))?;
    match found {
        Some((id, _)) => Ok(id),
        None => Err(InspectError::Missing {
            kind: "detector",
            name,
        }),
    }
}

/// The detector's state from its profile, and its results.
pub async fn detector_status(
    os: &OpenSearch,
    d: &Detector,
) -> Result<DetectorStatus, InspectError> {
    let name = detector_name(d);
    let id = detector_id(os, d).await?;
    let profile = os
        .request(
            "GET",
            &format!("{DETECTORS_API}/{id}/_profile?_all=true"),
            None,
        )
        .await
        .and_then(|a| a.checked_json())
        .map_err(failed(format!("detector {name}'s profile")))?;
    // Searched as the caller's own role allows: the custom result index is
    // a normal index (the plugin's system indices answer no hits).
    let results = os
        .search(RESULT_INDICES, &results_query(&id))
        .await
        .map_err(failed(format!("detector {name}'s results")))?;
    // No result index yet: the detector has produced nothing.
    let mut results = if results.status == 404 {
        Results::default()
    } else {
        read_results(
            &results
                .checked_json()
                .map_err(failed(format!("detector {name}'s results")))?,
        )
    };
    if let Some(n) = profile["total_entities"].as_u64() {
        results.entities = Some(n);
    }
    Ok(DetectorStatus {
        name,
        detector: d.name.clone(),
        state: state_of(&profile),
        results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector() -> Detector {
        crate::detector::shipped()
            .into_iter()
            .find(|d| d.name == "api-errors")
            .unwrap()
    }

    #[test]
    fn a_test_copy_fires_unconditionally_through_the_same_actions() {
        let d = detector();
        let m = super::super::desired::monitors::monitor_body(
            &d,
            "det-1",
            &["ch-a".into(), "ch-b".into()],
        );
        let copy = test_copy(&m, &d);
        let t = &copy["triggers"][0]["query_level_trigger"];
        assert_eq!(t["condition"]["script"]["source"], "return true");
        assert_eq!(destinations(&copy), ["ch-a", "ch-b"]);
        assert_eq!(copy["inputs"], m["inputs"], "the same search");
        let message = t["actions"][0]["message_template"]["source"]
            .as_str()
            .unwrap();
        assert!(message.contains("\"test\":true"), "{message}");
        assert_eq!(copy["name"], "trailwatch-api-errors (test)");
    }

    #[test]
    fn profiles_read_as_states() {
        assert_eq!(state_of(&json!({"state": "RUNNING"})), State::Running);
        assert_eq!(state_of(&json!({"state": "DISABLED"})), State::Stopped);
        let init = state_of(
            &json!({"state": "INIT", "init_progress": {"percentage": "70%", "estimated_minutes_left": 77, "needed_shingles": 7}}),
        );
        assert_eq!(
            init,
            State::Initializing {
                percent: Some(70.0),
                minutes_left: Some(77)
            }
        );
        assert_eq!(init.to_string(), "initializing 70%, about 77 min left");
        assert_eq!(
            state_of(
                &json!({"state": "RUNNING", "error": "Stopped detector: No data in the index"})
            ),
            State::Failed("Stopped detector: No data in the index".into())
        );
    }

    #[test]
    fn execute_answers_name_each_action_or_say_what_failed() {
        let ok = json!({"input_results": {"results": [], "error": null}, "trigger_results": {"t": {"triggered": true, "error": null, "action_results": {"a": {"name": "to-sns", "output": {"message": "m", "message_id": "mid-1"}, "error": null}}}}});
        assert_eq!(
            executed_actions(&ok).unwrap(),
            [Executed {
                action: "to-sns".into(),
                delivery: Some("message id mid-1".into()),
                error: None
            }]
        );
        // The real plugin's messageId: the delivery status, as a JSON string (recording 34).
        let status = |code: &str, text: &str| {
            json!({"event_source": {"title": "t"}, "status_list": [{"config_id": "c", "config_type": "webhook",
                "delivery_status": {"status_code": code, "status_text": text}}]})
            .to_string()
        };
        assert_eq!(
            delivery_of(&status("200", "{\"ok\":true}")),
            Ok("delivered, status 200: {\"ok\":true}".into())
        );
        assert_eq!(
            delivery_of(&status("500", "down")),
            Err("the channel answered 500: down".into())
        );
        let quiet = json!({"input_results": {"error": null}, "trigger_results": {"t": {"triggered": false, "error": null, "action_results": {}}}});
        assert!(executed_actions(&quiet)
            .unwrap_err()
            .contains("did not fire"));
        let broken = json!({"input_results": {"error": "index_not_found"}});
        assert!(executed_actions(&broken)
            .unwrap_err()
            .contains("index_not_found"));
    }

    #[test]
    fn results_give_the_entities_the_busiest_and_the_last_of_each() {
        let answer = json!({"aggregations": {
            "anomalies": {"last": {"hits": {"hits": [{"_source": {"data_end_time": 1_700_000_600_000u64, "anomaly_grade": 0.93, "entity": [{"name": "userIdentity.arn", "value": "arn:aws:iam::1:user/mallory"}]}}]}}},
            "errors": {"last": {"hits": {"hits": []}}},
            "entities": {"value": 3},
            "busiest": {"buckets": [
                {"key": "m1", "features": {"total": {"value": 42.0}}, "entity": {"hits": {"hits": [{"_source": {"entity": [{"name": "userIdentity.arn", "value": "arn:aws:iam::1:user/mallory"}]}}]}}}
            ]}
        }});
        let r = read_results(&answer);
        assert_eq!(r.entities, Some(3));
        assert_eq!(
            r.busiest,
            [("arn:aws:iam::1:user/mallory".to_owned(), 42.0)]
        );
        let (t, e, g) = r.last_anomaly.unwrap();
        assert_eq!(when(&t), "2023-11-14T22:23:20Z");
        assert_eq!((e.as_str(), g), ("arn:aws:iam::1:user/mallory", 0.93));
        assert_eq!(r.last_error, None);
        assert_eq!(
            last_alert(
                &json!({"alerts": [{"start_time": 1_700_000_000_000u64, "state": "COMPLETED"}, {"start_time": 1_700_000_600_000u64, "state": "ACTIVE"}]})
            ),
            Some((
                DateTime::from_timestamp_millis(1_700_000_600_000).unwrap(),
                "ACTIVE".into()
            ))
        );
    }
}
