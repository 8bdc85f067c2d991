//! The engine Lambda: the trail bucket's notifications of new deliveries
//! (S3 events, directly or in an SQS batch) advance the same
//! [`Pipeline`] `detect` and `--follow` drive, with its state in the bucket.
//!
//! - Only CloudTrail deliveries are read; digests, Insight deliveries and
//!   other objects are counted as ignored.
//! - A delivery already read (the same key and ETag) is not read again, so
//!   a redelivered notification changes nothing.
//! - Time is the data's own: the engine evaluates up to the newest event of
//!   the slowest stream (account and region) still delivering, a stream
//!   being idle when its newest event is [`STREAM_LAG`] behind the newest
//!   of all. A replay of the same deliveries gives the same findings.
//! - The state is written back only over the version it was read at (S3's
//!   If-Match on its ETag, or If-None-Match for the first), so a second
//!   writer is never overwritten unseen; any failure leaves the state as it
//!   was, and the batch comes back.
//! - A Lambda instance keeps its pipeline in memory between invocations
//!   ([`Resident`]): while the state in the store is the version it saved,
//!   the next invocation goes on from it, neither reading the state nor
//!   replaying its series through the models. A cold start, or a state
//!   another writer moved, resumes from the store.

use super::alert::Notification;
pub use super::incidents::Judged;
use super::rule_pages::page_of_incident;
use super::shard::Shard;
use crate::cloudtrail::s3::{get, is_delivery, BucketError};
use crate::cloudtrail::{Input, ReadError};
use crate::engine::pipeline::{Pipeline, StateError, Step};
use crate::engine::source::Observer;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How far behind the newest event a stream's newest may be and still hold
/// the others back.
pub const STREAM_LAG: Duration = Duration::hours(1);

/// An object a notification names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notified {
    pub bucket: String,
    pub key: String,
}

/// What an event names: deliveries to read, and how many others.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Notifications {
    pub deliveries: Vec<Notified>,
    /// Digests, Insight deliveries, test events, other objects.
    pub ignored: usize,
    /// Deliveries named again in the same event.
    pub duplicates: usize,
}

/// Why an invocation failed; its batch comes back.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the event is not an S3 notification or an SQS batch of them: {0}")]
    Event(String),
    #[error("{store}: cannot read the state: {message}")]
    LoadState { store: String, message: String },
    #[error("{store}: {source}")]
    State {
        store: String,
        #[source]
        source: StateError,
    },
    #[error("{store}: another writer saved the state since it was read; nothing is saved, and the batch comes back")]
    Conflict { store: String },
    #[error("{store}: cannot save the state: {message}")]
    SaveState { store: String, message: String },
    #[error(transparent)]
    Fetch(#[from] BucketError),
}

/// An S3 event's key, decoded (`+` is a space, `%XX` a byte).
fn decode_key(key: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some(hex(*bytes.get(i + 1)?)? * 16 + hex(*bytes.get(i + 2)?)?))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b as u8);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The deliveries an event names, each once: an S3 notification, or an
/// SQS batch whose bodies are S3 notifications (S3's test event among
/// them). S3 may notify an object twice, in one batch too.
pub fn notifications(event: &Value) -> Result<Notifications, EngineError> {
    let mut all = collect(event)?;
    let mut once = std::collections::HashSet::new();
    let before = all.deliveries.len();
    all.deliveries
        .retain(|d| once.insert((d.bucket.clone(), d.key.clone())));
    all.duplicates = before - all.deliveries.len();
    Ok(all)
}

fn collect(event: &Value) -> Result<Notifications, EngineError> {
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| EngineError::Event("no Records array".into()))?;
    let mut out = Notifications::default();
    for (i, r) in records.iter().enumerate() {
        match r.get("eventSource").and_then(Value::as_str) {
            Some("aws:sqs") => {
                let body = r.get("body").and_then(Value::as_str).ok_or_else(|| {
                    EngineError::Event(format!("Records[{i}]: an SQS message without a body"))
                })?;
                let inner: Value = serde_json::from_str(body).map_err(|e| {
                    EngineError::Event(format!("Records[{i}].body is not JSON: {e}"))
                })?;
                // Through an SNS topic (several engine shards) without raw
                // delivery, the S3 event is the envelope's Message.
                let inner = match (
                    inner.get("Type").and_then(Value::as_str),
                    inner.get("Message").and_then(Value::as_str),
                ) {
                    (Some("Notification"), Some(message)) => serde_json::from_str(message)
                        .map_err(|e| {
                            EngineError::Event(format!(
                                "Records[{i}].body.Message is not JSON: {e}"
                            ))
                        })?,
                    _ => inner,
                };
                if inner.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
                    out.ignored += 1;
                    continue;
                }
                let more = collect(&inner)
                    .map_err(|e| EngineError::Event(format!("Records[{i}].body: {e}")))?;
                out.deliveries.extend(more.deliveries);
                out.ignored += more.ignored;
            }
            Some("aws:s3") => {
                let s3 = &r["s3"];
                let (Some(bucket), Some(key)) =
                    (s3["bucket"]["name"].as_str(), s3["object"]["key"].as_str())
                else {
                    return Err(EngineError::Event(format!(
                        "Records[{i}]: an S3 record without s3.bucket.name and s3.object.key"
                    )));
                };
                let created = r
                    .get("eventName")
                    .and_then(Value::as_str)
                    .is_none_or(|n| n.starts_with("ObjectCreated:"));
                let key = decode_key(key);
                if created && is_delivery(&key) {
                    out.deliveries.push(Notified {
                        bucket: bucket.to_owned(),
                        key,
                    });
                } else {
                    out.ignored += 1;
                }
            }
            other => {
                return Err(EngineError::Event(format!(
                    "Records[{i}]: eventSource {other:?}, not aws:s3 or aws:sqs"
                )))
            }
        }
    }
    Ok(out)
}

/// How far the engine may evaluate: the newest event of the slowest stream
/// still delivering (within [`STREAM_LAG`] of the newest of all).
pub fn watermark(streams: &BTreeMap<String, DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let newest = streams.values().max()?;
    streams
        .values()
        .filter(|t| **t >= *newest - STREAM_LAG)
        .min()
        .copied()
}

/// A state file's problem without its path (the store names it).
fn cause(e: crate::engine::follow::FollowError) -> String {
    match e {
        crate::engine::follow::FollowError::State { action, source, .. } => {
            format!("{action}: {source}")
        }
        other => other.to_string(),
    }
}

/// Where the state lives: a file, or an S3 object.
pub enum StateStore {
    File(PathBuf),
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        key: String,
    },
}

/// A state as read: its bytes (None: none yet, or not read as a resident
/// pipeline holds it) and its version (None: none yet, or a file).
pub struct Loaded {
    pub bytes: Option<Vec<u8>>,
    pub version: Option<String>,
}

/// A pipeline kept in memory between the invocations of one Lambda
/// instance, with the version of the state it saved last.
pub struct Resident<'d> {
    pipeline: Pipeline<'d>,
    version: String,
}

impl StateStore {
    /// `s3://bucket/key` or a file path.
    pub fn parse(text: &str, client: impl FnOnce() -> aws_sdk_s3::Client) -> StateStore {
        match text
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
        {
            Some((bucket, key)) => StateStore::S3 {
                client: client(),
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            },
            None => StateStore::File(PathBuf::from(text)),
        }
    }

    pub fn name(&self) -> String {
        match self {
            StateStore::File(p) => p.display().to_string(),
            StateStore::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
        }
    }

    pub async fn load(&self) -> Result<Loaded, EngineError> {
        let fail = |message: String| EngineError::LoadState {
            store: self.name(),
            message,
        };
        match self {
            StateStore::File(path) => match crate::engine::follow::load_state(path) {
                Ok(bytes) => Ok(Loaded {
                    bytes,
                    version: None,
                }),
                Err(e) => Err(fail(cause(e))),
            },
            StateStore::S3 {
                client,
                bucket,
                key,
            } => match client.get_object().bucket(bucket).key(key).send().await {
                Ok(out) => {
                    let version = out.e_tag().map(str::to_owned);
                    let bytes = out
                        .body
                        .collect()
                        .await
                        .map_err(|e| fail(e.to_string()))?
                        .into_bytes()
                        .to_vec();
                    Ok(Loaded {
                        bytes: Some(bytes),
                        version,
                    })
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(Loaded {
                    bytes: None,
                    version: None,
                }),
                Err(e) => Err(fail(crate::aws::error_message(&e))),
            },
        }
    }

    /// The version of the state in the store, without reading it (None:
    /// none yet, or a file, whose versions are not told apart).
    pub async fn version(&self) -> Result<Option<String>, EngineError> {
        let StateStore::S3 {
            client,
            bucket,
            key,
        } = self
        else {
            return Ok(None);
        };
        match client.head_object().bucket(bucket).key(key).send().await {
            Ok(out) => Ok(out.e_tag().map(str::to_owned)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(EngineError::LoadState {
                store: self.name(),
                message: crate::aws::error_message(&e),
            }),
        }
    }

    /// Saves over the version read (`None`: only if there is none yet),
    /// and gives the version saved (None for a file).
    pub async fn save(&self, bytes: Vec<u8>, read: &Loaded) -> Result<Option<String>, EngineError> {
        let store = self.name();
        match self {
            StateStore::File(path) => crate::engine::follow::save_state(path, &bytes)
                .map(|()| None)
                .map_err(|e| EngineError::SaveState {
                    store,
                    message: cause(e),
                }),
            StateStore::S3 {
                client,
                bucket,
                key,
            } => {
                let put = client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(bytes.into());
                let put = match &read.version {
                    Some(etag) => put.if_match(etag),
                    None => put.if_none_match("*"),
                };
                match put.send().await {
                    Ok(out) => Ok(out.e_tag().map(str::to_owned)),
                    Err(e) => {
                        let conflict = e
                            .raw_response()
                            .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412));
                        if conflict {
                            Err(EngineError::Conflict { store })
                        } else {
                            Err(EngineError::SaveState {
                                store,
                                message: crate::aws::error_message(&e),
                            })
                        }
                    }
                }
            }
        }
    }
}

/// Reads each delivery from S3 (its ETag is its version); one that is gone
/// is reported and skipped.
pub async fn fetch(
    client: &aws_sdk_s3::Client,
    deliveries: &[Notified],
    problem: &(dyn Fn(&ReadError) + Sync),
) -> Result<Vec<Input>, EngineError> {
    let mut out = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        match get(client, &d.bucket, &d.key).await {
            Ok(Some(input)) => out.push(input),
            Ok(None) => problem(&ReadError {
                input: format!("s3://{}/{}", d.bucket, d.key),
                location: crate::cloudtrail::Location::Whole,
                kind: crate::cloudtrail::ReadErrorKind::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the object is gone; skipped",
                )),
            }),
            Err(e) => return Err(EngineError::Fetch(e)),
        }
    }
    Ok(out)
}

/// One invocation's account, logged as one JSON line.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Deliveries read now.
    pub deliveries: usize,
    /// Deliveries skipped as read before (the same key and ETag), or named
    /// twice in the event.
    pub seen: usize,
    /// Objects that are not deliveries (digests, Insight files, tests).
    pub ignored: usize,
    /// Deliveries of accounts another engine shard reads.
    pub other_shards: usize,
    pub events: u64,
    pub problems: u64,
    pub findings: usize,
    pub incidents: usize,
    /// Findings of muted principals (`MUTE`), dropped before grouping.
    #[serde(skip_serializing_if = "is_zero")]
    pub muted: usize,
    pub state_bytes: usize,
    /// The state was read and its series replayed (false: the instance's
    /// resident pipeline went on).
    pub resumed: bool,
    pub evaluated_until: Option<DateTime<Utc>>,
    pub ms: u128,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// An invocation evaluated, its state not yet saved: the caller sends
/// its pages, then [`commit`]s (a page that cannot be sent fails the
/// invocation before the state moves, so the batch comes back).
pub struct Invocation<'d> {
    pub step: Step,
    pub summary: Summary,
    /// The deliveries read now, for [`index`].
    pub inputs: Vec<Input>,
    pipeline: Pipeline<'d>,
    state: Vec<u8>,
    read: Loaded,
    started: std::time::Instant,
}

/// The pipeline an invocation goes on from: the resident one while the
/// store holds the version it saved, else `fresh()` resumed from the
/// store's state (none yet: from nothing). A resident pipeline that is not
/// current is dropped.
async fn pipeline_for<'d>(
    resident: Option<Resident<'d>>,
    fresh: impl FnOnce() -> Pipeline<'d>,
    store: &StateStore,
) -> Result<(Pipeline<'d>, Loaded, bool), EngineError> {
    if let Some(r) = resident {
        let version = store.version().await?;
        if version.as_deref() == Some(r.version.as_str()) {
            let read = Loaded {
                bytes: None,
                version,
            };
            return Ok((r.pipeline, read, false));
        }
    }
    let loaded = store.load().await?;
    let mut pipeline = fresh();
    if let Some(bytes) = &loaded.bytes {
        pipeline
            .resume(bytes)
            .map_err(|source| EngineError::State {
                store: store.name(),
                source,
            })?;
    }
    let resumed = loaded.bytes.is_some();
    Ok((pipeline, loaded, resumed))
}

/// One invocation: the pipeline resident in this instance, or `fresh()`
/// resumed from the store; the notified deliveries (of the shard's
/// accounts, with one) read into it, the engine advanced on the data's
/// watermark. The findings are what this invocation found.
pub async fn invoke<'d>(
    resident: Option<Resident<'d>>,
    fresh: impl FnOnce() -> Pipeline<'d>,
    s3: &aws_sdk_s3::Client,
    (store, shard): (&StateStore, Option<Shard>),
    event: &Value,
    problem: &(dyn Fn(&ReadError) + Sync),
) -> Result<Invocation<'d>, EngineError> {
    let started = std::time::Instant::now();
    let mut notified = notifications(event)?;
    let before = notified.deliveries.len();
    if let Some(shard) = shard {
        notified.deliveries.retain(|d| shard.owns(&d.key));
    }
    let other_shards = before - notified.deliveries.len();
    let (mut pipeline, loaded, resumed) = pipeline_for(resident, fresh, store).await?;
    // Deliveries never change: a key read at any version is not fetched.
    let fresh: Vec<Notified> = notified
        .deliveries
        .iter()
        .filter(|d| {
            let prefix = format!("s3://{}/{}#", d.bucket, d.key);
            !pipeline
                .processed
                .range(prefix.clone()..)
                .next()
                .is_some_and(|k| k.starts_with(&prefix))
        })
        .cloned()
        .collect();
    let inputs = fetch(s3, &fresh, problem).await?;
    let (step, read) = evaluate(&mut pipeline, &inputs, problem);
    let state = pipeline.save();
    let summary = Summary {
        resumed,
        deliveries: read.inputs,
        seen: notified.deliveries.len() - fresh.len() + read.seen + notified.duplicates,
        ignored: notified.ignored,
        other_shards,
        events: read.stats.records,
        problems: read.stats.problems,
        findings: step.findings.anomalies.len(),
        incidents: step.incidents.len(),
        muted: step.muted,
        state_bytes: state.len(),
        evaluated_until: pipeline.watermark,
        ms: 0,
    };
    Ok(Invocation {
        step,
        summary,
        inputs,
        pipeline,
        state,
        read: loaded,
        started,
    })
}

/// The engine's work in one invocation, over deliveries already fetched
/// and a pipeline already resumed: read them, look again at a span they
/// arrived late for, and advance to the data's watermark. Never an error:
/// a damaged delivery is reported and its good records read.
pub fn evaluate(
    pipeline: &mut Pipeline<'_>,
    inputs: &[Input],
    problem: &(dyn Fn(&ReadError) + Sync),
) -> (Step, crate::engine::pipeline::Read) {
    let none = |_: u64| {};
    let observer = Observer {
        problem,
        progress: &none,
    };
    let mut read = pipeline
        .read(inputs, None, false, &observer)
        .unwrap_or_default();
    let mut step = Step::default();
    if let Some((_, findings)) = read.late.take() {
        step = pipeline.step(findings);
    }
    let to = watermark(&pipeline.engine.aggregates.streams);
    if to > pipeline.watermark {
        let more = pipeline.advance(to);
        let offset = step.findings.anomalies.len();
        step.muted += more.muted;
        step.findings.anomalies.extend(more.findings.anomalies);
        step.findings.insights.extend(more.findings.insights);
        step.incidents
            .extend(more.incidents.into_iter().map(|mut inc| {
                inc.members.iter_mut().for_each(|m| *m += offset);
                inc
            }));
    }
    (step, read)
}

/// What [`index`] did.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Indexed {
    pub records: usize,
    pub indexed: usize,
    pub dead_lettered: usize,
}

/// With `--ingest s3`, the deliveries' records indexed into OpenSearch as
/// the forwarder indexes a log group's: the same documents and ids (a
/// retried batch overwrites, never doubles), the same dead letters, and
/// records over CloudWatch Logs' 256 KB included. A delivery that cannot
/// be parsed whole was reported by the engine's read and is left out.
/// An error fails the invocation before the state moves.
pub async fn index(
    os: &crate::opensearch::OpenSearch,
    dead: &super::dead_letter::DeadLetters,
    inputs: &[Input],
    limits: &super::delivery::Limits,
) -> Result<Indexed, super::delivery::DeliveryError> {
    let mut done = Indexed::default();
    for input in inputs {
        let Input::Object { name, bytes, .. } = input else {
            continue;
        };
        let Ok(records) = crate::cloudtrail::read::delivery_records_in(name, bytes) else {
            continue;
        };
        done.records += records.len();
        // The account whose delivery it is, as CloudWatch Logs' owner.
        let account = name
            .split('/')
            .skip_while(|p| *p != "AWSLogs")
            .find(|p| p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_default();
        for mut batch in super::forwarder::batches_of_records(records) {
            batch.log_group = "s3".into();
            batch.log_stream.clone_from(name);
            batch.owner = account.to_owned();
            let report = super::delivery::deliver(os, &batch, dead, None, limits).await?;
            done.indexed += report.indexed;
            done.dead_lettered += report.dead_lettered;
        }
    }
    Ok(done)
}

/// The pages of an invocation's incidents that page: one each, led by
/// its most severe finding.
pub fn pages(step: &Step) -> Vec<Notification> {
    paging_incidents(step)
        .map(|members| page_of_incident(&members))
        .collect()
}

/// The members of each of a step's incidents that page.
fn paging_incidents(step: &Step) -> impl Iterator<Item = Vec<&crate::engine::Anomaly>> {
    let anomalies = &step.findings.anomalies;
    step.incidents
        .iter()
        .filter(|inc| inc.members.iter().any(|&i| anomalies[i].page == Some(true)))
        .map(|inc| inc.members.iter().map(|&i| &anomalies[i]).collect())
}

/// An invocation's pages judged with the findings index
/// ([`super::incidents::judge_incidents`]): an incident that already paged
/// at its severity or above (an anomaly detector's alert the enricher
/// paged, the forwarder's rule page, this engine's page of it in an
/// earlier invocation) does not page again.
pub async fn judged_pages(
    step: &Step,
    index: &super::incidents::FindingsIndex<'_>,
    page_at: crate::engine::Severity,
) -> Judged {
    super::incidents::judge_incidents(paging_incidents(step), index, page_at).await
}

/// Saves the invocation's state over the version it read; its pipeline
/// stays resident when the store versions what it saved.
pub async fn commit<'d>(
    store: &StateStore,
    inv: Invocation<'d>,
) -> Result<(Step, Summary, Option<Resident<'d>>), EngineError> {
    let version = store.save(inv.state, &inv.read).await?;
    let resident = version.map(|version| Resident {
        pipeline: inv.pipeline,
        version,
    });
    let summary = Summary {
        ms: inv.started.elapsed().as_millis(),
        ..inv.summary
    };
    Ok((inv.step, summary, resident))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_event(keys: &[&str]) -> Value {
        json!({"Records": keys.iter().map(|k| json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "trail"}, "object": {"key": k, "size": 10, "eTag": "e"}}
        })).collect::<Vec<_>>()})
    }

    const DELIVERY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/05/111122223333_CloudTrail_us-east-1_20260105T1005Z_Ab3.json.gz";

    /// Deliveries are read; digests, Insight files and S3's test event are
    /// counted as ignored, directly or in an SQS batch; keys are decoded.
    #[test]
    fn notifications_name_the_deliveries_and_count_the_rest() {
        let digest = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/01/05/111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20260105T1005Z.json.gz";
        let insight = "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/01/05/111122223333_CloudTrail-Insight_us-east-1_20260105T1005Z_x.json.gz";
        let org = "AWSLogs/o-abc123/444455556666/CloudTrail/eu-west-1/2026/01/05/444455556666_CloudTrail_eu-west-1_20260105T1005Z_Zz%2B9.json.gz";
        let direct = notifications(&s3_event(&[DELIVERY, digest, insight])).unwrap();
        assert_eq!(direct.deliveries.len(), 1);
        assert_eq!(direct.ignored, 2);
        let sqs = json!({"Records": [
            {"eventSource": "aws:sqs", "body": s3_event(&[org]).to_string()},
            {"eventSource": "aws:sqs", "body": s3_event(&[org]).to_string()},
            {"eventSource": "aws:sqs", "body": json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}).to_string()},
        ]});
        let batch = notifications(&sqs).unwrap();
        assert_eq!((batch.ignored, batch.duplicates), (1, 1));
        assert_eq!(
            batch.deliveries,
            [Notified {
                bucket: "trail".into(),
                key: org.replace("%2B", "+"),
            }]
        );
        let e = notifications(&json!({"Records": [{"eventSource": "aws:sns"}]}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Records[0]: eventSource Some(\"aws:sns\")"),
            "{e}"
        );
        assert!(notifications(&json!({})).is_err());
    }

    /// The engine waits for the slowest stream still delivering; one an
    /// hour behind the newest no longer holds the others back.
    #[test]
    fn the_watermark_is_the_slowest_delivering_stream() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut streams = BTreeMap::from([
            ("1/us-east-1".to_owned(), t("2026-01-05T10:20:00Z")),
            ("1/eu-west-1".to_owned(), t("2026-01-05T10:05:00Z")),
        ]);
        assert_eq!(watermark(&streams), Some(t("2026-01-05T10:05:00Z")));
        streams.insert("2/us-east-1".into(), t("2026-01-05T08:00:00Z"));
        assert_eq!(watermark(&streams), Some(t("2026-01-05T10:05:00Z")));
        assert_eq!(watermark(&BTreeMap::new()), None);
    }

    #[test]
    fn keys_decode_as_s3_encodes_them() {
        assert_eq!(decode_key("a+b%2Fc%3D"), "a b/c=");
        assert_eq!(decode_key("100%"), "100%");
        assert_eq!(decode_key("%é%4"), "%é%4");
    }
}
