//! `detectors backtest`: the anomaly detection plugin's historical analysis
//! of one detector over a span of the cluster's data, read back as
//! anomalies; and the comparison with what the local engine finds over the
//! same records, so a user sees whether the two agree before trusting
//! either.

use super::apply::DETECTORS_API;
use super::desired::detectors::{detector_name, RESULT_INDICES};
use super::inspect::{detector_id, InspectError};
use super::{OpenSearch, OpenSearchError};
use crate::detector::Detector;
use crate::engine::anomaly::Anomaly;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One anomaly the plugin found, in the keys `detect`'s NDJSON uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginAnomaly {
    pub detector: String,
    /// Category field -> value, or null for a single-entity detector.
    pub entity: Option<BTreeMap<String, String>>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub grade: f64,
    pub confidence: f64,
}

/// The body of `POST …/<id>/_start` that runs a historical analysis.
pub fn start_body(from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
    json!({"start_time": from.timestamp_millis(), "end_time": to.timestamp_millis()})
}

/// Where a historical analysis is.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    Running(Option<f64>),
    Finished,
    Failed(String),
}

/// The historical task of `GET …/<id>?task=true`: its id and state.
pub fn task_of(answer: &Value) -> Option<(String, Task)> {
    let t = &answer["historical_analysis_task"];
    let id = t["task_id"].as_str()?.to_owned();
    let task = match t["state"].as_str().unwrap_or("") {
        "FINISHED" => Task::Finished,
        "FAILED" | "STOPPED" => Task::Failed(
            t["error"]
                .as_str()
                .filter(|e| !e.is_empty())
                .unwrap_or("stopped")
                .to_owned(),
        ),
        _ => Task::Running(t["task_progress"].as_f64()),
    };
    Some((id, task))
}

/// The task's anomalies, oldest first (at most 10,000: a span's worth).
pub fn results_query(task_id: &str) -> Value {
    json!({
        "size": 10000,
        "query": {"bool": {"filter": [
            {"term": {"task_id": task_id}},
            {"range": {"anomaly_grade": {"gt": 0}}}
        ]}},
        "sort": [{"data_start_time": "asc"}]
    })
}

fn millis(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))?)
}

/// The anomalies of a results answer.
pub fn anomalies(answer: &Value, d: &Detector) -> Vec<PluginAnomaly> {
    answer["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| {
            let s = &h["_source"];
            let entity: BTreeMap<String, String> = s["entity"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    Some((
                        e["name"].as_str()?.to_owned(),
                        e["value"].as_str()?.to_owned(),
                    ))
                })
                .collect();
            Some(PluginAnomaly {
                detector: d.name.clone(),
                entity: (!entity.is_empty()).then_some(entity),
                start: millis(&s["data_start_time"])?,
                end: millis(&s["data_end_time"])?,
                grade: s["anomaly_grade"].as_f64()?,
                confidence: s["confidence"].as_f64().unwrap_or(0.0),
            })
        })
        .collect()
}

/// The reason the plugin gives when every historical-analysis slot is busy.
pub const NO_TASK_SLOT: &str = "No available task slot";

/// How often a backtest asks again for a slot.
const SLOT_POLL: Duration = Duration::from_secs(3);

/// Runs the detector's historical analysis over `[from, to)` and waits
/// (polling, bounded by `wait`, telling `progress`) for its anomalies.
pub async fn backtest(
    os: &OpenSearch,
    d: &Detector,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    wait: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PluginAnomaly>, InspectError> {
    let name = detector_name(d);
    let failed = |what: &str| {
        let what = format!("detector {name}'s {what}");
        move |source| InspectError::Cluster { what, source }
    };
    let id = detector_id(os, d).await?;
    let deadline = Instant::now() + wait;
    // The plugin runs few historical analyses at once and refuses another
    // meanwhile (400 "No available task slot"): wait for a slot.
    let mut said = false;
    let started = loop {
        let answer = os
            .request(
                "POST",
                &format!("{DETECTORS_API}/{id}/_start"),
                Some(&start_body(from, to)),
            )
            .await
            .map_err(failed("historical analysis"))?;
        if answer.status == 400
            && super::client::reason(&answer.body).contains(NO_TASK_SLOT)
            && Instant::now() < deadline
        {
            if !said {
                progress(&format!(
                    "historical analysis of {name}: waiting for a free slot (the plugin runs few at once)"
                ));
                said = true;
            }
            tokio::time::sleep(SLOT_POLL).await;
            continue;
        }
        break answer
            .checked_json()
            .map_err(failed("historical analysis"))?;
    };
    // The start answers the new task's id; an older task of the detector
    // may still be what `?task=true` shows for a moment.
    let new_task = started["_id"].as_str().map(str::to_owned);
    let task_id = loop {
        let answer = os
            .request("GET", &format!("{DETECTORS_API}/{id}?task=true"), None)
            .await
            .and_then(|a| a.checked_json())
            .map_err(failed("historical analysis"))?;
        let refused = |reason: String| InspectError::Cluster {
            what: format!("detector {name}'s historical analysis"),
            source: OpenSearchError::Status {
                method: "GET",
                path: format!("{DETECTORS_API}/{id}?task=true"),
                status: 200,
                reason,
            },
        };
        let task = task_of(&answer).filter(|(t, _)| new_task.as_ref().is_none_or(|n| n == t));
        match task {
            Some((task, Task::Finished)) => break task,
            Some((_, Task::Failed(e))) => return Err(refused(e)),
            Some((_, Task::Running(p))) if Instant::now() < deadline => {
                progress(&format!(
                    "historical analysis of {name}: {}",
                    p.map_or("running".into(), |p| format!("{:.0}%", p * 100.0))
                ));
            }
            None if Instant::now() < deadline => {}
            _ => {
                return Err(refused(format!(
                "not finished after {} s; see it in Dashboards, or run again with a larger --wait",
                wait.as_secs()
            )))
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let answer = os
        .search(RESULT_INDICES, &results_query(&task_id))
        .await
        .and_then(|a| a.checked_json())
        .map_err(failed("results"))?;
    Ok(anomalies(&answer, d))
}

/// What both engines found, and what only one did.
#[derive(Debug, Default, PartialEq)]
pub struct Comparison<'a> {
    pub both: Vec<(&'a PluginAnomaly, &'a Anomaly)>,
    pub plugin_only: Vec<&'a PluginAnomaly>,
    pub local_only: Vec<&'a Anomaly>,
}

/// Pairs each plugin anomaly with a local one of the same detector and
/// entity whose interval overlaps it. The local engine's partial findings
/// (an interval still filling) have no counterpart in the plugin, which
/// scores whole intervals: they are left out.
pub fn compare<'a>(plugin: &'a [PluginAnomaly], local: &'a [Anomaly]) -> Comparison<'a> {
    let mut c = Comparison::default();
    let local: Vec<&'a Anomaly> = local.iter().filter(|l| !l.partial).collect();
    let mut used = vec![false; local.len()];
    for p in plugin {
        let found = local.iter().enumerate().position(|(i, l)| {
            !used[i]
                && l.detector == p.detector
                && l.entity == p.entity
                && l.start < p.end
                && p.start < l.end
        });
        match found {
            Some(i) => {
                used[i] = true;
                c.both.push((p, local[i]));
            }
            None => c.plugin_only.push(p),
        }
    }
    c.local_only = local
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(l, _)| *l)
        .collect();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_task_reads_as_anomalies_that_pair_with_local_ones() {
        let d = crate::detector::shipped()
            .into_iter()
            .find(|d| d.name == "ec2-run-instances")
            .unwrap();
        assert_eq!(
            task_of(
                &json!({"historical_analysis_task": {"task_id": "t1", "state": "RUNNING", "task_progress": 0.5}})
            ),
            Some(("t1".into(), Task::Running(Some(0.5))))
        );
        assert_eq!(
            task_of(
                &json!({"historical_analysis_task": {"task_id": "t1", "state": "FAILED", "error": "no data"}})
            ),
            Some(("t1".into(), Task::Failed("no data".into())))
        );
        let t0 = 1_770_112_800_000i64; // 2026-02-03T10:00:00Z
        let answer = json!({"hits": {"hits": [
            {"_source": {"data_start_time": t0, "data_end_time": t0 + 600_000, "anomaly_grade": 0.9, "confidence": 0.8}},
            {"_source": {"data_start_time": t0 + 7_200_000, "data_end_time": t0 + 7_800_000, "anomaly_grade": 0.4, "confidence": 0.8}}
        ]}});
        let plugin = anomalies(&answer, &d);
        assert_eq!(plugin.len(), 2);
        assert_eq!(plugin[0].start.to_rfc3339(), "2026-02-03T10:00:00+00:00");
        let local_at = |start: &str| {
            let start: DateTime<Utc> = start.parse().unwrap();
            Anomaly {
                detector: "ec2-run-instances".into(),
                kind: crate::engine::AnomalyKind::Rcf,
                entity: None,
                start,
                end: start + chrono::Duration::minutes(10),
                grade: 1.0,
                confidence: 0.85,
                actual: 133.0,
                expected: 0.05,
                score: 6.2,
                summary: String::new(),
                context: None,
                incident: None,
                subjects: Vec::new(),
                late: false,
                partial: false,
                detected: start + chrono::Duration::minutes(10),
                severity: None,
                page: None,
                novelty: None,
                attack: Vec::new(),
                pivots: Default::default(),
            }
        };
        let local = vec![
            local_at("2026-02-03T10:00:00Z"),
            local_at("2026-02-03T15:00:00Z"),
        ];
        let c = compare(&plugin, &local);
        assert_eq!(c.both.len(), 1);
        assert_eq!(c.plugin_only, [&plugin[1]]);
        assert_eq!(c.local_only, [&local[1]]);
    }
}
