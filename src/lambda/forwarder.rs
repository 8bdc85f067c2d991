//! The forwarder's decisions, as plain functions over data:
//! - [`documents`]: a decoded subscription batch into one document per
//!   CloudTrail record, in the day's `cwl-YYYY.MM.DD` index (UTC day of the
//!   event), with CloudTrail's `eventID` as the document id, so a redelivered
//!   batch, or the same event through two paths, is stored once; with
//!   [`documents_and_hits`], also the records a rule file matches;
//! - [`bulk_requests`]: `_bulk` bodies, split so none exceeds a size limit;
//! - [`classify`]: a `_bulk` response, item by item: indexed, worth retrying
//!   (429, 5xx) or never indexable (mapping conflicts and other 4xx), with
//!   the reason.

use crate::cloudtrail::parse::parse_record;
use crate::cloudtrail::Projection;
use crate::detector::Rule;
use crate::engine::rules::RuleHits;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;

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

/// CloudTrail records per batch when files are forwarded by hand: about
/// what a busy subscription delivers to one invocation.
pub const RECORDS_PER_BATCH: usize = 5000;

/// The records of CloudTrail deliveries as the forwarder's batches, in the
/// shape CloudWatch Logs delivers them (one log event per record, the
/// record as its message), `RECORDS_PER_BATCH` at most in each.
pub fn batches_of_records(records: Vec<serde_json::Value>) -> Vec<LogBatch> {
    records
        .chunks(RECORDS_PER_BATCH)
        .map(|chunk| LogBatch {
            message_type: "DATA_MESSAGE".into(),
            owner: String::new(),
            log_group: "trailwatch-forward-files".into(),
            log_stream: String::new(),
            log_events: chunk
                .iter()
                .enumerate()
                .map(|(i, r)| LogEvent {
                    id: r["eventID"]
                        .as_str()
                        .map_or_else(|| i.to_string(), str::to_owned),
                    timestamp: r["eventTime"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map_or(0, |t| t.timestamp_millis()),
                    message: r.to_string(),
                })
                .collect(),
        })
        .collect()
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
    /// The log event it came from (also its `@id` field).
    pub log_event_id: String,
    /// The record with the `@` fields added, as JSON on one line.
    pub source: String,
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
    let parsed = documents_and_hits(batch, &[]);
    (parsed.docs, parsed.poison)
}

/// What one parse of a batch gives: its documents, the events that cannot
/// become one, the records the rules match, and the accounts the records
/// were delivered for (the organisation's, as far as this batch shows).
#[derive(Debug, Default)]
pub struct Parsed {
    pub docs: Vec<Document>,
    pub poison: Vec<Poison>,
    pub hits: RuleHits,
    pub accounts: BTreeSet<String>,
}

/// [`documents`], and the records `rules` match among them, from the same
/// parse: the forwarder pages on a rule the minute its record arrives.
pub fn documents_and_hits(batch: &LogBatch, rules: &[Rule]) -> Parsed {
    let mut docs = Vec::new();
    let mut poison = Vec::new();
    let mut hits = RuleHits::default();
    let mut accounts = BTreeSet::new();
    if batch.message_type == "CONTROL_MESSAGE" {
        return Parsed::default();
    }
    // The record model's own fields are all a document needs checked; the
    // rules add the fields they read.
    let typed = Projection::typed_with(rules.iter().flat_map(|r| r.field_paths()));
    for event in &batch.log_events {
        let checked = match parse_record(&typed, event.message.as_bytes()) {
            Err(e) => Err(format!("not JSON: {e}")),
            Ok(raw) => raw
                .and_then(|raw| raw.validate())
                .map(|r| {
                    hits.record(rules, &r);
                    if let Some(a) = r.recipient_account_id() {
                        if !accounts.contains(a) {
                            accounts.insert(a.to_owned());
                        }
                    }
                    (r.event_time(), r.event_id().map(str::to_owned))
                })
                .map_err(|e| format!("not a CloudTrail record: {e}")),
        };
        let (time, id) = match checked {
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
        let fields = [
            ("@timestamp", time.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            ("@id", event.id.clone()),
            ("@log_group", batch.log_group.clone()),
            ("@log_stream", batch.log_stream.clone()),
            ("@owner", batch.owner.clone()),
        ];
        docs.push(Document {
            index: format!("cwl-{}", time.format("%Y.%m.%d")),
            id: id.unwrap_or_else(|| event.id.clone()),
            log_event_id: event.id.clone(),
            source: with_fields(&event.message, &fields),
        });
    }
    Parsed {
        docs,
        poison,
        hits,
        accounts,
    }
}

/// A record's JSON text with `fields` added, on one line. CloudWatch Logs
/// carries CloudTrail records as compact JSON objects: the fields are
/// spliced in before the closing brace, leaving the rest of the text as it
/// came. Anything else (a record on several lines, or one that has a field
/// of the same name already) is parsed and written out again.
fn with_fields(message: &str, fields: &[(&str, String)]) -> String {
    let body = message.trim();
    let spliceable = body.len() > 2
        && body.ends_with('}')
        && !body.contains(['\n', '\r'])
        // Our field names all start with `@`: a `"@` anywhere means look closer.
        && !body.contains("\"@");
    if spliceable {
        let mut out = String::with_capacity(body.len() + 160);
        out.push_str(&body[..body.len() - 1]);
        for (name, value) in fields {
            let _ = write!(out, ",\"{name}\":{}", Value::from(value.as_str()));
        }
        out.push('}');
        return out;
    }
    let mut source: Map<String, Value> = serde_json::from_str(message).unwrap_or_default();
    for (name, value) in fields {
        source.insert((*name).to_owned(), Value::from(value.as_str()));
    }
    Value::Object(source).to_string()
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
        lines.push_str(&d.source);
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
        let s: Value = serde_json::from_str(&docs[0].source).unwrap();
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
    fn fields_are_spliced_into_compact_records_and_written_anew_otherwise() {
        let fields = [
            ("@id", "e1".to_owned()),
            ("@owner", "a \"quoted\" owner".to_owned()),
        ];
        let compact = r#"{"eventName":"RunInstances","n":[1,2]}"#;
        let spliced = with_fields(compact, &fields);
        assert!(
            spliced.starts_with(r#"{"eventName":"RunInstances","n":[1,2],"@id":"e1""#),
            "the record's text is kept: {spliced}"
        );
        let expected = json!({"eventName": "RunInstances", "n": [1, 2], "@id": "e1",
            "@owner": "a \"quoted\" owner"});
        assert_eq!(serde_json::from_str::<Value>(&spliced).unwrap(), expected);
        // On several lines, or with one of our fields already: parsed and written anew.
        let pretty =
            serde_json::to_string_pretty(&json!({"eventName": "RunInstances", "n": [1, 2]}))
                .unwrap();
        let again = with_fields(&pretty, &fields);
        assert!(!again.contains('\n'));
        assert_eq!(serde_json::from_str::<Value>(&again).unwrap(), expected);
        let clash = with_fields(
            r#"{"eventName":"RunInstances","n":[1,2],"@id":"old"}"#,
            &fields,
        );
        assert_eq!(serde_json::from_str::<Value>(&clash).unwrap(), expected);
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
