//! The engine Lambda against moto_server's S3: a simulated trail's
//! deliveries uploaded in delivery order, their notifications fed to the
//! handler in batches as the Lambda service would, the state in the bucket
//! between invocations; redelivery, a second writer, and a failed
//! invocation.

use crate::util::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use trailwatch::engine::pipeline::Pipeline;
use trailwatch::lambda::engine::{commit, invoke, EngineError, Resident, StateStore};
use trailwatch::lambda::shard::Shard;

const BUCKET: &str = "trail";
const STATE: &str = "trailwatch/state.json";
/// Pages the invocations made, over the tests of this file.
static PAGES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn s3_client(moto: &Server) -> aws_sdk_s3::Client {
    let config = moto.sdk().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

/// The simulation's deliveries, by key, in delivery order (the time in
/// their names, then the key).
pub(crate) fn deliveries(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".json.gz") {
                let key = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((key, p));
            }
        }
    }
    let stamp = |k: &str| k.rsplit('_').nth(1).unwrap_or("").to_owned();
    out.sort_by(|a, b| (stamp(&a.0), &a.0).cmp(&(stamp(&b.0), &b.0)));
    out
}

fn notification(keys: &[String]) -> Value {
    // As an SQS batch of S3 notifications, one object each.
    json!({"Records": keys.iter().map(|k| json!({
        "eventSource": "aws:sqs",
        "body": json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": k}}}]}).to_string()
    })).collect::<Vec<_>>()})
}

async fn upload(s3: &aws_sdk_s3::Client, files: &[(String, PathBuf)]) {
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    for chunk in files.chunks(32) {
        let mut set = tokio::task::JoinSet::new();
        for (key, path) in chunk {
            let (s3, key, body) = (s3.clone(), key.clone(), std::fs::read(path).unwrap());
            set.spawn(async move {
                s3.put_object()
                    .bucket(BUCKET)
                    .key(key)
                    .body(body.into())
                    .send()
                    .await
                    .unwrap();
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    }
}

type Ran<'d> = (
    Vec<Value>,
    trailwatch::lambda::engine::Summary,
    Option<Resident<'d>>,
);

/// One invocation, as the Lambda runs it: the pipeline the instance kept
/// from its last invocation (`resident`), or a fresh one from the state in
/// the bucket; what it keeps for the next comes back.
async fn run_warm<'d>(
    s3: &aws_sdk_s3::Client,
    detectors: &'d [trailwatch::detector::Detector],
    event: &Value,
    resident: Option<Resident<'d>>,
) -> Result<Ran<'d>, EngineError> {
    run_shard(s3, detectors, event, resident, (STATE, None)).await
}

/// [`run_warm`] for an engine shard, its state at `state`.
async fn run_shard<'d>(
    s3: &aws_sdk_s3::Client,
    detectors: &'d [trailwatch::detector::Detector],
    event: &Value,
    resident: Option<Resident<'d>>,
    (state, shard): (&str, Option<Shard>),
) -> Result<Ran<'d>, EngineError> {
    let store = StateStore::S3 {
        client: s3.clone(),
        bucket: BUCKET.into(),
        key: state.into(),
    };
    let fresh = || {
        Pipeline::new(
            detectors,
            trailwatch::engine::EngineOptions::all(),
            trailwatch::engine::severity::DEFAULT_PAGE,
        )
    };
    let quiet = |_: &trailwatch::cloudtrail::ReadError| {};
    let invocation = invoke(resident, fresh, s3, (&store, shard), event, &quiet).await?;
    // One page per paging incident, led by its most severe finding.
    let paging = invocation
        .step
        .incidents
        .iter()
        .filter(|inc| {
            inc.members
                .iter()
                .any(|&i| invocation.step.findings.anomalies[i].page == Some(true))
        })
        .count();
    let pages = trailwatch::lambda::engine::pages(&invocation.step);
    assert_eq!(pages.len(), paging);
    assert!(pages
        .iter()
        .all(|p| !p.subject.is_empty() && !p.body.is_empty()));
    PAGES.fetch_add(pages.len(), std::sync::atomic::Ordering::Relaxed);
    let (step, summary, kept) = commit(&store, invocation).await?;
    let mut out = Vec::new();
    trailwatch::engine::sink::write(
        trailwatch::engine::sink::Format::Ndjson,
        &step.findings.anomalies,
        &step.incidents,
        &Default::default(),
        &mut out,
    )
    .unwrap();
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Ok((lines, summary, kept))
}

/// One invocation of a cold instance: the state from the bucket.
async fn run_once(
    s3: &aws_sdk_s3::Client,
    detectors: &[trailwatch::detector::Detector],
    event: &Value,
) -> Result<(Vec<Value>, trailwatch::lambda::engine::Summary), EngineError> {
    let (lines, summary, _) = run_warm(s3, detectors, event, None).await?;
    Ok((lines, summary))
}

/// The engine's findings (whole ones: a partial finding came early, and
/// its whole later) are detect's over the files in `dir` that end by
/// `until`, where the engine had evaluated to.
fn same_as_detect(dir: &Path, found: &[Value], until: chrono::DateTime<chrono::Utc>) {
    let o = trailwatch(&["detect", dir.to_str().unwrap(), "--format", "ndjson"]);
    let expected: BTreeSet<String> = ndjson(&o)
        .iter()
        .filter(|v| v.get("partial").is_none())
        .filter(|v| {
            v["end"]
                .as_str()
                .and_then(|e| e.parse::<chrono::DateTime<chrono::Utc>>().ok())
                .is_some_and(|e| e <= until)
        })
        .map(finding_key)
        .collect();
    let got: BTreeSet<String> = found
        .iter()
        .filter(|v| v.get("partial").is_none())
        .map(finding_key)
        .collect();
    assert!(!expected.is_empty());
    let missing: Vec<&String> = expected.difference(&got).collect();
    let extra: Vec<&String> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{}: missing {missing:#?}\nextra {extra:#?}",
        dir.display()
    );
}

/// What identifies a finding across runs (incident numbers aside).
fn finding_key(v: &Value) -> String {
    format!(
        "{} {} {} {} {}",
        v["kind"], v["detector"], v["start"], v["end"], v["entity"]
    )
}

/// The deliveries fed in batches give the findings `detect` gives over the
/// same files, up to where the data's watermark evaluated; a redelivered
/// batch changes nothing; a second writer's state is never overwritten; a
/// failed invocation leaves the state as it was.
#[test]
fn the_engine_lambda_finds_what_detect_finds_and_loses_nothing() {
    let moto = Server::moto();
    let dir = simulated();
    let files = deliveries(dir);
    let aws = tokio::runtime::Runtime::new().unwrap();
    let s3 = aws.block_on(s3_client(&moto));
    aws.block_on(upload(&s3, &files));
    let detectors = trailwatch::detector::shipped();
    let keys: Vec<String> = files.iter().map(|(k, _)| k.clone()).collect();
    // The Lambda service's batches: 10 minutes of every stream's deliveries.
    let batches: Vec<&[String]> = keys.chunks(30).collect();
    let mut found: Vec<Value> = Vec::new();
    let mut last = None;
    aws.block_on(async {
        // The instance stays warm between invocations, its pipeline kept;
        // every fifth starts cold, from the state in the bucket.
        let mut resident = None;
        for (i, batch) in batches.iter().enumerate() {
            let cold = i % 5 == 0;
            if cold {
                resident = None;
            }
            let (lines, summary, kept) = run_warm(&s3, &detectors, &notification(batch), resident)
                .await
                .unwrap();
            assert_eq!(summary.deliveries, batch.len(), "batch {i}");
            assert_eq!(summary.resumed, cold && i > 0, "batch {i}");
            assert!(kept.is_some(), "batch {i}: the pipeline was not kept");
            resident = kept;
            found.extend(lines);
            last = Some(summary);
        }
    });
    let last = last.unwrap();
    // The four injected incidents page (an incident split across
    // invocations pages once in each).
    assert!(PAGES.load(std::sync::atomic::Ordering::Relaxed) >= 4);
    same_as_detect(dir, &found, last.evaluated_until.unwrap());
    // A partial finding (an interval or an insight still open where an
    // invocation stopped) came early.
    assert!(found.iter().any(|v| v.get("partial").is_some()));

    aws.block_on(async {
        let state = || async {
            let o = s3.get_object().bucket(BUCKET).key(STATE).send().await.unwrap();
            o.e_tag().unwrap().to_owned()
        };
        // A redelivered batch: nothing read again, nothing found again.
        let before = state().await;
        let (lines, summary) = run_once(&s3, &detectors, &notification(batches[3]))
            .await
            .unwrap();
        assert!(lines.is_empty(), "{lines:#?}");
        assert_eq!((summary.deliveries, summary.seen), (0, 30));
        // Digests and Insight files are ignored.
        let digest = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/01/07/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20260107T2300Z.json.gz";
        let (_, summary) = run_once(&s3, &detectors, &notification(&[digest.into()]))
            .await
            .unwrap();
        assert_eq!((summary.deliveries, summary.ignored), (0, 1));
        // A failed invocation (a delivery that cannot be read for a reason
        // other than its absence) leaves the state as it was.
        let saved = state().await;
        assert_ne!(before, saved, "the redelivery saved the same state anew");
        let forbidden = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "no-such-bucket"}, "object": {"key": keys[0]}}}]});
        let e = run_once(&s3, &detectors, &forbidden).await.unwrap_err();
        assert!(
            e.to_string().contains("no-such-bucket") && e.to_string().contains("cannot read the delivery"),
            "{e}"
        );
        assert_eq!(state().await, saved);
        // A second writer: the state changed between this invocation's
        // read and its write; nothing is overwritten.
        let store = StateStore::S3 {
            client: s3.clone(),
            bucket: BUCKET.into(),
            key: STATE.into(),
        };
        let read = store.load().await.unwrap();
        let mut other = read.bytes.clone().unwrap();
        other.push(b'\n');
        s3.put_object()
            .bucket(BUCKET)
            .key(STATE)
            .body(other.into())
            .send()
            .await
            .unwrap();
        let theirs = state().await;
        let e = store.save(b"mine".to_vec(), &read).await.unwrap_err();
        assert!(matches!(e, EngineError::Conflict { .. }), "{e}");
        assert_eq!(state().await, theirs);
        // An instance's pipeline goes on while the state is the version it
        // saved; a version another writer saved is read and replayed.
        let mut plain = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&read.bytes.unwrap()[..]),
            &mut plain,
        )
        .unwrap();
        let put_plain = || async {
            s3.put_object()
                .bucket(BUCKET)
                .key(STATE)
                .body(plain.clone().into())
                .send()
                .await
                .unwrap();
        };
        put_plain().await;
        let event = notification(batches[3]);
        let (_, summary, kept) = run_warm(&s3, &detectors, &event, None).await.unwrap();
        assert!(summary.resumed);
        let (_, summary, kept) = run_warm(&s3, &detectors, &event, kept).await.unwrap();
        assert!(!summary.resumed);
        put_plain().await;
        let (lines, summary, _) = run_warm(&s3, &detectors, &event, kept).await.unwrap();
        assert!(summary.resumed);
        assert!(lines.is_empty(), "{lines:#?}");
    });
}

/// Two engine shards told of every delivery: each reads its accounts'
/// alone (by a hash of the account id), keeps its own state, and finds
/// what detect finds over those accounts' files; every delivery is read
/// by exactly one shard.
#[test]
fn two_engine_shards_split_the_trail_by_account() {
    let moto = Server::moto();
    let dir = simulated();
    let files = deliveries(dir);
    let aws = tokio::runtime::Runtime::new().unwrap();
    let s3 = aws.block_on(s3_client(&moto));
    aws.block_on(upload(&s3, &files));
    let detectors = trailwatch::detector::shipped();
    let keys: Vec<String> = files.iter().map(|(k, _)| k.clone()).collect();
    let shards = [Shard::parse("0/2").unwrap(), Shard::parse("1/2").unwrap()];
    let mut read = 0;
    for shard in shards {
        // The shard's accounts' files, for detect.
        let mine = tempfile::tempdir().unwrap();
        let mut accounts = BTreeSet::new();
        for (key, path) in files.iter().filter(|(k, _)| shard.owns(k)) {
            accounts.insert(
                trailwatch::lambda::shard::account_of_key(key)
                    .unwrap()
                    .to_owned(),
            );
            let to = mine.path().join(key);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(path, to).unwrap();
        }
        assert!(!accounts.is_empty(), "shard {shard} has no account");
        let state = format!("engine/shard-{}-of-2/state.json.gz", shard.index);
        let (mut found, mut last, mut resident) = (Vec::new(), None, None);
        aws.block_on(async {
            for batch in keys.chunks(30) {
                let (lines, summary, kept) = run_shard(
                    &s3,
                    &detectors,
                    &notification(batch),
                    resident,
                    (&state, Some(shard)),
                )
                .await
                .unwrap();
                assert_eq!(summary.deliveries + summary.other_shards, batch.len());
                read += summary.deliveries;
                resident = kept;
                found.extend(lines);
                last = Some(summary);
            }
        });
        // Its findings name its accounts only.
        let texts: Vec<String> = found.iter().map(Value::to_string).collect();
        let named = |a: &str| texts.iter().filter(|t| t.contains(a)).count();
        assert!(accounts.iter().any(|a| named(a) > 0), "{texts:#?}");
        for other in ["111122223333", "444455556666", "777788889999"]
            .into_iter()
            .filter(|a| !accounts.contains(*a))
        {
            assert_eq!(named(other), 0, "shard {shard} names {other}");
        }
        same_as_detect(mine.path(), &found, last.unwrap().evaluated_until.unwrap());
    }
    assert_eq!(read, files.len());
}

/// `trailwatch lambda engine`: the findings as NDJSON, one summary line on
/// standard error, the state in a file.
#[test]
fn lambda_engine_runs_one_invocation_from_the_command_line() {
    let moto = Server::moto();
    let dir = simulated();
    let files: Vec<(String, PathBuf)> = deliveries(dir).into_iter().take(60).collect();
    let aws = tokio::runtime::Runtime::new().unwrap();
    let s3 = aws.block_on(s3_client(&moto));
    aws.block_on(upload(&s3, &files));
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let keys: Vec<String> = files.iter().map(|(k, _)| k.clone()).collect();
    let event = notification(&keys).to_string();
    let run = || {
        trailwatch_aws(
            &[
                "lambda",
                "engine",
                "--state",
                state.to_str().unwrap(),
                "--endpoint-url",
                &moto.url,
            ],
            Some(event.as_bytes()),
        )
    };
    let o = run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary: Value = serde_json::from_str(stderr(&o).lines().last().unwrap()).unwrap();
    assert_eq!(summary["deliveries"], 60);
    assert_eq!(summary["seen"], 0);
    assert!(summary["events"].as_u64().unwrap() > 1000, "{summary}");
    assert!(summary["state_bytes"].as_u64().unwrap() > 0);
    assert!(state.exists());
    let again = run();
    let summary: Value = serde_json::from_str(stderr(&again).lines().last().unwrap()).unwrap();
    assert_eq!(
        (summary["deliveries"].clone(), summary["seen"].clone()),
        (json!(0), json!(60))
    );
    assert_eq!(stdout(&again), "");

    // Muted as the deployed engine's MUTE mutes: an intruder who gives
    // himself administrator access pages (a rule: no baseline needed);
    // muted, the finding is dropped and counted. Each run from a state of
    // its own.
    let record = json!({"eventVersion": "1.08", "eventTime": "2026-11-21T03:10:00Z",
        "eventSource": "iam.amazonaws.com", "eventName": "AttachUserPolicy",
        "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.66", "eventID": "intruder-1",
        "recipientAccountId": "111122223333", "readOnly": false, "managementEvent": true,
        "userIdentity": {"type": "IAMUser", "accountId": "111122223333",
            "arn": "arn:aws:iam::111122223333:user/intruder", "accessKeyId": "AKIAINTRUDER"},
        "requestParameters": {"userName": "backdoor",
            "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // A later call moves the stream's watermark past the intruder's.
    let mut later = record.clone();
    later["eventTime"] = json!("2026-11-21T04:10:00Z");
    later["eventName"] = json!("ListUsers");
    later["readOnly"] = json!(true);
    later["eventID"] = json!("ops-1");
    later["userIdentity"]["arn"] = json!("arn:aws:iam::111122223333:user/ops");
    later["userIdentity"]["accessKeyId"] = json!("AKIAOPS");
    let records = json!({"Records": [record, later]}).to_string();
    std::io::Write::write_all(&mut gz, records.as_bytes()).unwrap();
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21/111122223333_CloudTrail_us-east-1_20261121T0315Z_intruder.json.gz";
    aws.block_on(
        s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(gz.finish().unwrap().into())
            .send(),
    )
    .unwrap();
    let event = notification(&[key.to_owned()]).to_string();
    let one = |state: &str, more: &[&str]| {
        let state = tmp.path().join(state);
        let mut args = vec!["lambda", "engine", "--state", state.to_str().unwrap()];
        args.extend(["--endpoint-url", &moto.url]);
        args.extend(more);
        trailwatch_aws(&args, Some(event.as_bytes()))
    };
    let loud = one("loud.json", &[]);
    assert_eq!(loud.status.code(), Some(0), "{}", stderr(&loud));
    assert!(
        stdout(&loud).contains("AKIAINTRUDER"),
        "{}\n{}",
        stdout(&loud),
        stderr(&loud)
    );
    let quiet = one("quiet.json", &["--mute", "user/intruder@111122223333"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
    let summary: Value = serde_json::from_str(stderr(&quiet).lines().last().unwrap()).unwrap();
    assert_eq!(summary["muted"], 1, "{summary}");
    assert_eq!(stdout(&quiet), "");
}

/// `detect s3://…` reads a trail bucket where it lies, in the organisation
/// layout (`AWSLogs/<org-id>/<account>/…`), and finds what `detect` finds
/// over the same files on disk; --until leaves later days unread.
#[test]
fn detect_reads_a_trail_bucket_as_it_reads_the_files() {
    let moto = Server::moto();
    let dir = simulated();
    let files: Vec<(String, PathBuf)> = deliveries(dir)
        .into_iter()
        .map(|(k, p)| (k.replacen("AWSLogs/", "AWSLogs/o-abc123def4/", 1), p))
        .collect();
    let aws = tokio::runtime::Runtime::new().unwrap();
    let s3 = aws.block_on(s3_client(&moto));
    aws.block_on(upload(&s3, &files));
    let on_disk = trailwatch(&["detect", dir.to_str().unwrap(), "--format", "ndjson"]);
    let in_bucket = trailwatch_aws(
        &[
            "detect",
            "s3://trail/AWSLogs/",
            "--endpoint-url",
            &moto.url,
            "--format",
            "ndjson",
        ],
        None,
    );
    assert_eq!(
        in_bucket.status.code(),
        on_disk.status.code(),
        "{}",
        stderr(&in_bucket)
    );
    assert!(!stdout(&on_disk).is_empty());
    assert_eq!(stdout(&in_bucket), stdout(&on_disk));
    // Days after --until are not fetched: the same as --until on disk.
    let until = "2026-01-06T23:59:59Z";
    let o = trailwatch_aws(
        &[
            "detect",
            "s3://trail",
            "--until",
            until,
            "--endpoint-url",
            &moto.url,
            "--format",
            "ndjson",
            "--stats",
        ],
        None,
    );
    let disk = trailwatch(&[
        "detect",
        dir.to_str().unwrap(),
        "--until",
        until,
        "--format",
        "ndjson",
    ]);
    assert_eq!(stdout(&o), stdout(&disk));
    assert!(stderr(&o).contains(" inputs ("), "{}", stderr(&o));
    let read: usize = stderr(&o)
        .split(" events from ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        read < files.len() * 3 / 4,
        "{read} of {} deliveries fetched",
        files.len()
    );
    // A bucket that is not there: named, with AWS's reason.
    let o = trailwatch_aws(
        &[
            "detect",
            "s3://nowhere/AWSLogs/",
            "--endpoint-url",
            &moto.url,
        ],
        None,
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("s3://nowhere/AWSLogs/: cannot list the deliveries"),
        "{}",
        stderr(&o)
    );
}

/// With `--ingest s3` the engine is the domain's writer: each delivery's
/// records are indexed under their event ids (a redelivery stores nothing
/// twice), named after the object they came from and its account.
#[test]
fn the_engine_indexes_each_delivery_into_opensearch_once() {
    let moto = Server::moto();
    let os = crate::lambda::opensearch_with_template();
    let files: Vec<(String, PathBuf)> = deliveries(simulated()).into_iter().take(20).collect();
    let records: usize = files
        .iter()
        .map(|(_, p)| {
            trailwatch::cloudtrail::read::delivery_records(p)
                .unwrap()
                .len()
        })
        .sum();
    let aws = tokio::runtime::Runtime::new().unwrap();
    let s3 = aws.block_on(s3_client(&moto));
    aws.block_on(upload(&s3, &files));
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let dead = tmp.path().join("dead.ndjson");
    let keys: Vec<String> = files.iter().map(|(k, _)| k.clone()).collect();
    let event = notification(&keys).to_string();
    let run = || {
        trailwatch_aws(
            &[
                "lambda",
                "engine",
                "--state",
                state.to_str().unwrap(),
                "--endpoint-url",
                &moto.url,
                "--opensearch-url",
                &os.url,
                "--dead-letter",
                dead.to_str().unwrap(),
            ],
            Some(event.as_bytes()),
        )
    };
    let o = run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary: Value = serde_json::from_str(stderr(&o).lines().last().unwrap()).unwrap();
    assert_eq!(summary["indexed"]["records"], records, "{summary}");
    assert_eq!(summary["indexed"]["indexed"], records, "{summary}");
    assert_eq!(crate::lambda::count(&os), records as u64);
    // Each document names the object it came from.
    let o = http(&os.url, "POST", "/cwl-*/_search?size=1", b"");
    let hit: Value = serde_json::from_str(o.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let source = &hit["hits"]["hits"][0]["_source"];
    assert_eq!(source["@log_group"], "s3", "{source}");
    let from = source["@log_stream"].as_str().unwrap();
    assert!(
        keys.iter().any(|k| from == format!("s3://{BUCKET}/{k}")),
        "{source}"
    );
    assert_eq!(source["@owner"].as_str().unwrap().len(), 12, "{source}");

    // Redelivered: nothing read, nothing indexed again.
    let o = run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary: Value = serde_json::from_str(stderr(&o).lines().last().unwrap()).unwrap();
    assert_eq!(summary["indexed"]["records"], 0, "{summary}");
    assert_eq!(crate::lambda::count(&os), records as u64);
    assert!(!dead.exists());
}

/// With a domain, one incident pages once whoever saw it first: the
/// engine's pages and the forwarder's rule pages are judged with the
/// findings index, where the enricher keeps the anomaly detectors' alerts,
/// the forwarder its rule findings and the engine its own.
#[test]
fn an_incident_pages_once_whether_the_engine_or_an_alert_saw_it_first() {
    use trailwatch::engine::Severity;
    use trailwatch::lambda::incidents::{
        judge, judge_incidents, FindingsIndex, Kept, FINDINGS_INDEX,
    };
    let set = trailwatch::detector::DetectorSet::load(None).unwrap();
    let options = trailwatch::engine::EngineOptions {
        rules: set.rules.clone(),
        ..trailwatch::engine::EngineOptions::all()
    };
    let page_at = trailwatch::engine::severity::DEFAULT_PAGE;
    let mut pipeline = Pipeline::new(&set.detectors, options, page_at);
    let inputs = trailwatch::cloudtrail::discover(&[simulated().to_path_buf()]).unwrap();
    let quiet = |_: &trailwatch::cloudtrail::ReadError| {};
    let (step, _) = trailwatch::lambda::engine::evaluate(&mut pipeline, &inputs, &quiet);
    let alone = trailwatch::lambda::engine::pages(&step);
    assert!(!alone.is_empty(), "the simulation's incidents page");
    let anomalies = &step.findings.anomalies;
    // The lead of the first paging incident, and an anomaly detector's
    // alert about the same principal in the same minutes.
    let lead = step
        .incidents
        .iter()
        .find(|i| i.members.iter().any(|&m| anomalies[m].page == Some(true)))
        .map(|i| {
            i.members
                .iter()
                .map(|&m| &anomalies[m])
                .max_by_key(|a| a.severity)
                .unwrap()
                .clone()
        })
        .unwrap();
    let mut alert = lead.clone();
    alert.detector = "an-anomaly-detector".into();
    alert.kind = trailwatch::engine::AnomalyKind::Rcf;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // The engine first: it pages each incident once, then not again
        // (a later invocation with the same incident), and the alert that
        // follows finds its incident paged.
        let os = crate::lambda::opensearch_with_template();
        let client = trailwatch::opensearch::OpenSearch::connect(
            &trailwatch::opensearch::Target::new(&os.url, std::time::Duration::from_secs(30)),
        )
        .unwrap();
        let index = FindingsIndex {
            os: &client,
            index: FINDINGS_INDEX,
        };
        let first = trailwatch::lambda::engine::judged_pages(&step, &index, page_at).await;
        assert!(first.error.is_none(), "{:?}", first.error);
        assert_eq!(first.pages.len(), alone.len());
        // Not kept yet (the pages had not gone): a retry pages again.
        let retried = trailwatch::lambda::engine::judged_pages(&step, &index, page_at).await;
        assert_eq!(retried.pages.len(), alone.len());
        index.keep_all(&first.kept).await.unwrap();
        let again = trailwatch::lambda::engine::judged_pages(&step, &index, page_at).await;
        assert!(again.pages.is_empty(), "{} pages again", again.pages.len());
        // Keeping what a repeat judged does not forget that it paged.
        index.keep_all(&again.kept).await.unwrap();
        let third = trailwatch::lambda::engine::judged_pages(&step, &index, page_at).await;
        assert!(
            third.pages.is_empty(),
            "{} pages a third time",
            third.pages.len()
        );
        let recent = index.recent(&alert).await.unwrap();
        let j = judge(&alert, &recent, page_at);
        assert!(j.paged_before.is_some() && !j.pages, "{j:?}");
        // The forwarder's rule page of the same incident (a rule finding
        // about the lead's principal in its minutes), judged as it judges
        // its batch's incidents, pages no more; one of another principal
        // still does.
        let mut rule = lead.clone();
        rule.kind = trailwatch::engine::AnomalyKind::Rule;
        rule.detector = "a-rule".into();
        let mut elsewhere = rule.clone();
        elsewhere.subjects = vec!["arn:aws:iam::999988887777:user/someone-else".into()];
        elsewhere.detector = "another-rule".into();
        let members = [vec![&rule], vec![&elsewhere]].into_iter();
        let forwarder = judge_incidents(members, &index, page_at).await;
        assert_eq!(
            forwarder.pages.len(),
            1,
            "the rule page of the paged incident went again, or the other did not"
        );
        assert!(forwarder.pages[0].body.contains("rule another-rule"));

        // The alert first: the enricher paged it at critical; the engine
        // then leaves that incident alone and pages the others.
        let os = crate::lambda::opensearch_with_template();
        let client = trailwatch::opensearch::OpenSearch::connect(
            &trailwatch::opensearch::Target::new(&os.url, std::time::Duration::from_secs(30)),
        )
        .unwrap();
        let index = FindingsIndex {
            os: &client,
            index: FINDINGS_INDEX,
        };
        index
            .keep(&Kept::new(&alert, Some(Severity::Critical)))
            .await
            .unwrap();
        let after = trailwatch::lambda::engine::judged_pages(&step, &index, page_at).await;
        assert_eq!(after.pages.len(), alone.len() - 1);
    });
}
