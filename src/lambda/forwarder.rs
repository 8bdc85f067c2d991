//! The forwarder's decisions, as plain functions over data:
//! - [`documents`]: a decoded subscription batch into one document per
//!   CloudTrail record, in the day's `cwl-YYYY.MM.DD` index (UTC day of the
//!   event), with CloudTrail's `eventID` as the document id, so a redelivered
//!   batch, or the same event through two paths, is stored once;
//! - [`bulk_requests`]: `_bulk` bodies, split so none exceeds a size limit;
//! - [`classify`]: a `_bulk` response, item by item: indexed, worth retrying
//!   (429, 5xx) or never indexable (mapping conflicts and other 4xx), with
//!   the reason.

use crate::cloudtrail::record::type_name;
use crate::cloudtrail::{Record, RecordError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// One log event of a subscription batch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LogEvent {
    pub id: String,
    pub timestamp: i64,
    pub message: String,
}

/// A decoded CloudWatch Logs subscription payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogBatch {
    pub message_type: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub log_group: String,
    #[serde(default)]
    pub log_stream: String,
    #[serde(default)]
    pub log_events: Vec<LogEvent>,
}

impl LogBatch {
    /// Decodes `awslogs.data` as CloudWatch Logs sends it to a subscribed
    /// Lambda: base64, then gzip (capped), then JSON.
    pub fn from_awslogs_data(data: &str) -> Result<LogBatch, String> {
        let value = crate::cloudtrail::read::decode_awslogs_data(data)?;
        serde_json::from_value(value)
            .map_err(|e| format!("awslogs.data is not a subscription payload ({e})"))
    }
}

/// A document ready for `_bulk`.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub index: String,
    pub id: String,
    pub source: Map<String, Value>,
}

/// A log event that can never be indexed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Poison {
    pub log_event_id: String,
    pub reason: String,
    pub message: String,
}

/// The documents of a batch and the events that cannot become one.
/// A `CONTROL_MESSAGE` batch holds none.
pub fn documents(batch: &LogBatch) -> (Vec<Document>, Vec<Poison>) {
    let mut docs = Vec::new();
    let mut poison = Vec::new();
    if batch.message_type == "CONTROL_MESSAGE" {
        return (docs, poison);
    }
    for event in &batch.log_events {
        let checked = serde_json::from_str::<Value>(&event.message)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| {
                let not_record = |e: RecordError| format!("not a CloudTrail record: {e}");
                let (time, id) = {
                    let record = Record::from_value_ref(&v).map_err(not_record)?;
                    (record.event_time(), record.event_id().map(str::to_owned))
                };
                match v {
                    Value::Object(source) => Ok((time, id, source)),
                    other => Err(not_record(RecordError::NotAnObject(type_name(&other)))),
                }
            });
        let (time, id, mut source) = match checked {
            Ok(checked) => checked,
            Err(reason) => {
                poison.push(Poison {
                    log_event_id: event.id.clone(),
                    reason,
                    message: event.message.clone(),
                });
                continue;
            }
        };
        let id = id.unwrap_or_else(|| event.id.clone());
        source.insert(
            "@timestamp".into(),
            json!(time.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
        source.insert("@id".into(), json!(event.id));
        source.insert("@log_group".into(), json!(batch.log_group));
        source.insert("@log_stream".into(), json!(batch.log_stream));
        source.insert("@owner".into(), json!(batch.owner));
        docs.push(Document {
            index: format!("cwl-{}", time.format("%Y.%m.%d")),
            id,
            source,
        });
    }
    (docs, poison)
}

/// One `_bulk` request: its body, and which documents it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    pub body: String,
    pub documents: Vec<usize>,
}

/// `_bulk` bodies for `docs` (by index into it), each at most `max_bytes`
/// where possible; a single document larger than that goes alone.
pub fn bulk_requests(docs: &[Document], which: &[usize], max_bytes: usize) -> Vec<BulkRequest> {
    let mut out = Vec::new();
    let mut current = BulkRequest {
        body: String::new(),
        documents: Vec::new(),
    };
    for &i in which {
        let d = &docs[i];
        let mut lines = json!({"index": {"_index": d.index, "_id": d.id}}).to_string();
        lines.push('\n');
        lines.push_str(&Value::Object(d.source.clone()).to_string());
        lines.push('\n');
        if !current.documents.is_empty() && current.body.len() + lines.len() > max_bytes {
            out.push(std::mem::replace(
                &mut current,
                BulkRequest {
                    body: String::new(),
                    documents: Vec::new(),
                },
            ));
        }
        current.body.push_str(&lines);
        current.documents.push(i);
    }
    if !current.documents.is_empty() {
        out.push(current);
    }
    out
}

/// What became of each document of a `_bulk` request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub indexed: Vec<usize>,
    /// Failed for now (429, 5xx): try again.
    pub retry: Vec<usize>,
    /// Never indexable (mapping conflicts and other 4xx), with the reason.
    pub dead: Vec<(usize, String)>,
}

/// Reads a `_bulk` response for `request`. A response that is not a `_bulk`
/// answer at all marks everything for retry.
pub fn classify(request: &BulkRequest, response: &Value) -> Outcome {
    let mut outcome = Outcome::default();
    let Some(items) = response
        .get("items")
        .and_then(Value::as_array)
        .filter(|i| i.len() == request.documents.len())
    else {
        outcome.retry = request.documents.clone();
        return outcome;
    };
    for (&doc, item) in request.documents.iter().zip(items) {
        let result = item
            .as_object()
            .and_then(|m| m.values().next())
            .cloned()
            .unwrap_or(Value::Null);
        let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
        match status {
            200..=299 => outcome.indexed.push(doc),
            429 | 500..=599 | 0 => outcome.retry.push(doc),
            _ => {
                let error = &result["error"];
                let reason = format!(
                    "{} {}: {}",
                    status,
                    error["type"].as_str().unwrap_or("error"),
                    error["reason"].as_str().unwrap_or("no reason given")
                );
                outcome.dead.push((doc, reason));
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three real records from the invictus dataset's shape, one broken message.
    fn batch() -> LogBatch {
        let record = |id: &str, time: &str| {
            json!({"eventVersion": "1.08", "eventTime": time, "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
                "awsRegion": "us-east-1", "eventID": id, "recipientAccountId": "123837392027",
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123837392027:user/bert-jan"},
                "requestParameters": {"instancesSet": {"items": [{"imageId": "ami-029eb80bc237bec6f", "minCount": 1, "maxCount": 1}]}}})
            .to_string()
        };
        LogBatch {
            message_type: "DATA_MESSAGE".into(),
            owner: "123837392027".into(),
            log_group: "/trailwatch/cloudtrail".into(),
            log_stream: "123837392027_CloudTrail_us-east-1".into(),
            log_events: vec![
                LogEvent {
                    id: "37100000000000000000000001".into(),
                    timestamp: 1688990601000,
                    message: record(
                        "60f1b61d-aa6d-4769-8b21-afea5d669313",
                        "2023-07-10T23:59:59Z",
                    ),
                },
                LogEvent {
                    id: "37100000000000000000000002".into(),
                    timestamp: 1688990602000,
                    message: record("a2", "2023-07-11T00:00:01Z"),
                },
                LogEvent {
                    id: "37100000000000000000000003".into(),
                    timestamp: 1688990603000,
                    message: "{\"eventTime\": tru".into(),
                },
                LogEvent {
                    id: "37100000000000000000000004".into(),
                    timestamp: 1688990603000,
                    message: "{\"eventName\": \"X\"}".into(),
                },
            ],
        }
    }

    #[test]
    fn documents_use_the_event_day_and_the_event_id() {
        let (docs, poison) = documents(&batch());
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].index, "cwl-2023.07.10");
        assert_eq!(
            docs[1].index, "cwl-2023.07.11",
            "the UTC day of the event, not of delivery"
        );
        assert_eq!(docs[0].id, "60f1b61d-aa6d-4769-8b21-afea5d669313");
        let s = &docs[0].source;
        assert_eq!(s["@timestamp"], "2023-07-10T23:59:59Z");
        assert_eq!(s["@log_group"], "/trailwatch/cloudtrail");
        assert_eq!(s["@owner"], "123837392027");
        assert_eq!(s["eventName"], "RunInstances", "the record is kept whole");
        assert_eq!(poison.len(), 2);
        assert!(poison[0].reason.starts_with("not JSON"), "{:?}", poison[0]);
        assert!(poison[1].reason.contains("no eventTime"), "{:?}", poison[1]);
        let control = LogBatch {
            message_type: "CONTROL_MESSAGE".into(),
            ..batch()
        };
        assert_eq!(documents(&control), (vec![], vec![]));
    }

    #[test]
    fn a_payload_decodes_as_cloudwatch_logs_sends_it() {
        use base64::Engine as _;
        use std::io::Write;
        let payload = json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s",
            "subscriptionFilters": ["f"], "logEvents": [{"id": "1", "timestamp": 0, "message": batch().log_events[0].message}]});
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(payload.to_string().as_bytes()).unwrap();
        let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        let b = LogBatch::from_awslogs_data(&data).unwrap();
        assert_eq!((b.log_group.as_str(), b.log_events.len()), ("g", 1));
        assert!(LogBatch::from_awslogs_data("bm90IGd6aXA=")
            .unwrap_err()
            .contains("not gzip"));
    }

    #[test]
    fn a_redelivered_batch_makes_the_same_ids() {
        let (a, _) = documents(&batch());
        let mut again = batch();
        for e in &mut again.log_events {
            e.id.push('9');
        }
        let (b, _) = documents(&again);
        assert_eq!(
            a.iter().map(|d| &d.id).collect::<Vec<_>>(),
            b.iter().map(|d| &d.id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn bulk_bodies_pair_actions_and_sources_and_split_by_size() {
        let (docs, _) = documents(&batch());
        let all = bulk_requests(&docs, &[0, 1], 1 << 20);
        assert_eq!(all.len(), 1);
        let lines: Vec<&str> = all[0].body.lines().collect();
        assert_eq!(lines.len(), 4);
        let action: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            action,
            json!({"index": {"_index": "cwl-2023.07.10", "_id": "60f1b61d-aa6d-4769-8b21-afea5d669313"}})
        );
        assert!(all[0].body.ends_with('\n'), "_bulk needs a final newline");
        let split = bulk_requests(&docs, &[0, 1], 10);
        assert_eq!(
            split
                .iter()
                .map(|r| r.documents.clone())
                .collect::<Vec<_>>(),
            [vec![0], vec![1]],
            "too big together: one each"
        );
    }

    #[test]
    fn bulk_items_are_indexed_retried_or_dead_lettered() {
        let (docs, _) = documents(&batch());
        let mut more = docs.clone();
        more.extend(docs.iter().cloned());
        let request = bulk_requests(&more, &[0, 1, 2, 3], 1 << 20).remove(0);
        let response = json!({"errors": true, "items": [
            {"index": {"_id": "a", "status": 201}},
            {"index": {"_id": "b", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
            {"index": {"_id": "c", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [requestParameters.size]"}}},
            {"index": {"_id": "d", "status": 503, "error": {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}}}
        ]});
        let o = classify(&request, &response);
        assert_eq!(o.indexed, [0]);
        assert_eq!(o.retry, [1, 3]);
        assert_eq!(o.dead.len(), 1);
        assert_eq!(o.dead[0].0, 2);
        assert_eq!(
            o.dead[0].1,
            "400 mapper_parsing_exception: failed to parse field [requestParameters.size]"
        );
        let garbage = classify(&request, &json!({"message": "Request Entity Too Large"}));
        assert_eq!(
            garbage.retry,
            [0, 1, 2, 3],
            "no item answers: try them all again"
        );
    }
}
