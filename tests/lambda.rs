//! The Lambdas against real servers: the forwarder into osmem-server (an
//! in-memory OpenSearch), directly and through a proxy that injects 429s,
//! 500s, stalls and dropped connections; the Lambda runtime loop against a
//! local Runtime API; the enricher against osmem-server and moto's SNS.

use crate::util::proxy::{Fault, FaultProxy};
use crate::util::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Real CloudTrail records: the first `n` of the invictus deliveries.
fn real_records(n: usize) -> Vec<String> {
    let dir = shared_cloudtrail().join("invictus-aws-dataset/CloudTrail");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        for r in v["Records"].as_array().unwrap() {
            out.push(r.to_string());
            if out.len() == n {
                return out;
            }
        }
    }
    out
}

fn opensearch_with_template() -> Server {
    let os = Server::osmem();
    let template = trailwatch::opensearch::mapping::index_template().to_string();
    let o = http(
        &os.url,
        "PUT",
        "/_index_template/trailwatch-cwl",
        template.as_bytes(),
    );
    assert!(o.starts_with("HTTP/1.1 200"), "{o}");
    os
}

fn count(os: &Server) -> u64 {
    http(&os.url, "POST", "/cwl-*/_refresh", b"");
    let o = http(&os.url, "GET", "/cwl-*/_count", b"");
    let body = o.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {o}"));
    v["count"].as_u64().unwrap()
}

fn forward(
    url: &str,
    event: &Value,
    dead: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "lambda",
        "forward",
        "--opensearch-url",
        url,
        "--dead-letter",
        dead.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    trailwatch_with_stdin(&args, Some(event.to_string().as_bytes()))
}

fn report(o: &std::process::Output) -> Value {
    let out = stdout(o);
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("no report ({e}): {out}\n{}", stderr(o)))
}

#[test]
fn records_are_indexed_once_even_when_the_batch_is_delivered_twice() {
    let os = opensearch_with_template();
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");
    let records = real_records(400);
    let event = awslogs_event(&records);

    let o = forward(&os.url, &event, &dead, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r["received"], 400);
    let indexed = r["indexed"].as_u64().unwrap();
    let dead_lettered = r["dead_lettered"].as_u64().unwrap();
    assert_eq!(indexed + dead_lettered, 400, "{r}");
    assert!(indexed >= 390, "real records index: {r}");
    assert_eq!(count(&os), indexed);

    // Redelivered (CloudWatch Logs retries, or a second path): same ids.
    let o = forward(&os.url, &event, &dead, &["--max-request-bytes", "20000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(count(&os), indexed, "the same events are stored once");

    // Each document is the record plus the @ fields, under its eventID, in its day's index.
    let first: Value = serde_json::from_str(&records[0]).unwrap();
    let day = first["eventTime"].as_str().unwrap()[..10].replace('-', ".");
    let o = http(
        &os.url,
        "GET",
        &format!("/cwl-{day}/_doc/{}", first["eventID"].as_str().unwrap()),
        b"",
    );
    let doc: Value = serde_json::from_str(o.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(doc["found"], true, "{o}");
    assert_eq!(doc["_source"]["eventName"], first["eventName"]);
    assert_eq!(doc["_source"]["@log_group"], "/trailwatch/cloudtrail");
    assert_eq!(doc["_source"]["@owner"], "123456789012");
}

#[test]
fn a_failing_domain_loses_no_record() {
    let os = opensearch_with_template();
    let proxy = FaultProxy::start(
        &os.url,
        vec![
            Fault::Status(429),
            Fault::Status(500),
            Fault::Drop,
            Fault::HalfRejected,
            Fault::Stall(Duration::from_secs(3)),
            Fault::Status(503),
            Fault::HalfRejected,
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");
    let records = real_records(300);
    let event = awslogs_event(&records);
    let o = forward(
        &proxy.url,
        &event,
        &dead,
        &["--request-timeout", "1", "--max-request-bytes", "100000"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    let indexed = r["indexed"].as_u64().unwrap();
    assert_eq!(indexed + r["dead_lettered"].as_u64().unwrap(), 300, "{r}");
    assert!(r["retried"].as_u64().unwrap() > 0, "{r}");
    assert!(r["rounds"].as_u64().unwrap() > 1, "{r}");
    assert_eq!(count(&os), indexed);
    let applied = proxy.applied.lock().unwrap().clone();
    for fault in [
        Fault::Status(429),
        Fault::Drop,
        Fault::HalfRejected,
        Fault::Stall(Duration::from_secs(3)),
    ] {
        assert!(
            applied.contains(&fault),
            "{fault:?} was not exercised: {applied:?}"
        );
    }
}

#[test]
fn records_that_can_never_be_indexed_reach_the_dead_letter_with_their_reason() {
    let os = opensearch_with_template();
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");
    let good = json!({"eventVersion": "1.08", "eventTime": "2026-01-05T10:00:00Z", "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances", "awsRegion": "us-east-1", "eventID": "good-1",
        "requestParameters": {"instanceType": {"value": "t3.micro"}}});
    let mut conflicting = good.clone();
    conflicting["eventID"] = json!("conflict-1");
    // An object field given as text: no mapping setting can take both.
    conflicting["requestParameters"] = json!("instanceType=t3.micro");
    let messages = vec![
        good.to_string(),
        "this is not json".to_owned(),
        json!({"hello": "world"}).to_string(),
    ];
    let o = forward(&os.url, &awslogs_event(&messages), &dead, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = forward(
        &os.url,
        &awslogs_event(&[conflicting.to_string()]),
        &dead,
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(
        (r["indexed"].as_u64(), r["dead_lettered"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );
    assert!(
        stderr(&o).contains("can never be indexed"),
        "{}",
        stderr(&o)
    );

    let letters: Vec<Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert!(
        letters[0]["reason"].as_str().unwrap().contains("not JSON"),
        "{letters:?}"
    );
    assert_eq!(letters[0]["message"], "this is not json");
    assert!(
        letters[1]["reason"]
            .as_str()
            .unwrap()
            .contains("not a CloudTrail record"),
        "{letters:?}"
    );
    let conflict = &letters[2];
    assert_eq!(conflict["id"], "conflict-1");
    assert!(
        conflict["reason"].as_str().unwrap().starts_with("400 "),
        "{conflict}"
    );
    assert_eq!(conflict["message"], conflicting.to_string());
    assert_eq!(count(&os), 1);
}

#[test]
fn a_domain_that_keeps_failing_fails_the_invocation_so_the_platform_retries() {
    let os = opensearch_with_template();
    let proxy = FaultProxy::start(&os.url, vec![Fault::Status(503); 1000]);
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");
    let o = forward(
        &proxy.url,
        &awslogs_event(&real_records(20)),
        &dead,
        &["--timeout", "3"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("20 of 20 records still failing"), "{err}");
    assert!(err.contains("_bulk answered 503"), "{err}");
    assert!(!dead.exists(), "failing for now is not a dead letter");
    assert_eq!(count(&os), 0);
}

/// A local Lambda Runtime API serving one event and recording the answer.
struct RuntimeApi {
    addr: String,
    response: std::sync::mpsc::Receiver<(String, String)>,
}

impl RuntimeApi {
    fn start(event: Value) -> RuntimeApi {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut served = false;
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                if path.ends_with("/invocation/next") {
                    if served {
                        // One event only: leave the runtime waiting.
                        std::thread::sleep(Duration::from_secs(600));
                        continue;
                    }
                    served = true;
                    let deadline = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis()
                        + 30_000;
                    let payload = event.to_string();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-1\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:trailwatch-forwarder\r\nContent-Length: {}\r\n\r\n",
                        payload.len()
                    );
                    stream.write_all(head.as_bytes()).unwrap();
                    stream.write_all(payload.as_bytes()).unwrap();
                } else {
                    stream
                        .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
                        .unwrap();
                    tx.send((path, String::from_utf8_lossy(&body).into_owned()))
                        .ok();
                }
            }
        });
        RuntimeApi { addr, response: rx }
    }
}

#[test]
fn the_bootstrap_runs_the_forwarder_in_the_lambda_runtime_loop() {
    let os = opensearch_with_template();
    let api = RuntimeApi::start(awslogs_event(&real_records(50)));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("TRAILWATCH_FUNCTION", "forwarder")
        .env("AWS_LAMBDA_FUNCTION_NAME", "trailwatch-forwarder")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("OPENSEARCH_ENDPOINT", &os.url)
        .env("DEAD_LETTER_QUEUE_URL", "http://127.0.0.1:1/unused")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let answer = api.response.recv_timeout(Duration::from_secs(60));
    child.kill().ok();
    let output = child.wait_with_output().unwrap();
    let (path, body) =
        answer.unwrap_or_else(|_| panic!("no answer from the bootstrap: {}", stderr(&output)));
    assert_eq!(
        path, "/2018-06-01/runtime/invocation/req-1/response",
        "{body}"
    );
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["received"], 50);
    assert_eq!(
        r["indexed"].as_u64().unwrap() + r["dead_lettered"].as_u64().unwrap(),
        50
    );
    assert_eq!(count(&os), r["indexed"].as_u64().unwrap());
    // The structured log line of the invocation.
    let log = stdout(&output);
    let line: Value = serde_json::from_str(
        log.lines()
            .find(|l| l.contains("\"function\""))
            .unwrap_or("{}"),
    )
    .unwrap();
    assert_eq!(line["function"], "forwarder");
    assert_eq!(line["request_id"], "req-1");
    assert_eq!(line["received"], 50);
}
