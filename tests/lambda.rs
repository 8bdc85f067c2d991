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

pub(crate) fn opensearch_with_template() -> Server {
    let os = Server::osmem();
    let template =
        trailwatch::opensearch::desired::template::index_template(&trailwatch::detector::shipped())
            .to_string();
    let o = http(
        &os.url,
        "PUT",
        "/_index_template/trailwatch-cwl",
        template.as_bytes(),
    );
    assert!(o.starts_with("HTTP/1.1 200"), "{o}");
    let findings = trailwatch::opensearch::desired::findings::template().to_string();
    let o = http(
        &os.url,
        "PUT",
        "/_index_template/trailwatch-findings",
        findings.as_bytes(),
    );
    assert!(o.starts_with("HTTP/1.1 200"), "{o}");
    os
}

pub(crate) fn count(os: &Server) -> u64 {
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
    // Pages (real records stop and delete trails) beside the dead letters,
    // never in the working directory.
    let pages = dead.with_file_name("pages.ndjson");
    let mut args = vec![
        "lambda",
        "forward",
        "--opensearch-url",
        url,
        "--dead-letter",
        dead.to_str().unwrap(),
    ];
    if !extra.contains(&"--pages") {
        args.extend(["--pages", pages.to_str().unwrap()]);
    }
    args.extend_from_slice(extra);
    trailwatch_with_stdin(&args, Some(event.to_string().as_bytes()))
}

fn report(o: &std::process::Output) -> Value {
    let out = stdout(o);
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("no report ({e}): {out}\n{}", stderr(o)))
}

/// A CloudTrail call by mallory from 203.0.113.66, as CloudWatch Logs carries it.
fn trail_call(name: &str, params: Value) -> String {
    json!({"eventVersion": "1.08", "eventTime": "2026-11-21T03:10:10Z",
           "eventSource": "cloudtrail.amazonaws.com", "eventName": name,
           "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.66", "eventID": format!("{name}-1"),
           "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory",
                            "accountId": "111122223333", "userName": "mallory"},
           "requestParameters": params, "recipientAccountId": "111122223333"})
    .to_string()
}

#[test]
fn the_forwarder_pages_on_rule_findings_from_the_page_severity() {
    let os = opensearch_with_template();
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");
    let pages = dir.path().join("pages.ndjson");
    let mut records = real_records(20);
    records.push(trail_call("StopLogging", json!({"name": "org-trail"})));
    records.push(trail_call(
        "UpdateTrail",
        json!({"name": "org-trail", "isMultiRegionTrail": false}),
    ));
    let event = awslogs_event(&records);
    let pages_arg = pages.to_str().unwrap();
    let o = forward(&os.url, &event, &dead, &["--pages", pages_arg]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Both findings are mallory's within minutes: one incident, one page.
    assert_eq!(report(&o)["paged"], 1);
    assert!(
        stderr(&o).contains("1 page(s) sent, one per incident of rule findings"),
        "{}",
        stderr(&o)
    );
    let text = std::fs::read_to_string(&pages).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let subjects: Vec<&str> = lines
        .iter()
        .map(|l| l["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        ["trailwatch CRITICAL: CloudTrail logging stopped and 1 more by user/mallory@111122223333"]
    );
    assert!(
        lines[0]["body"]
            .as_str()
            .unwrap()
            .contains("cloudtrail-trail-weakened (high): CloudTrail trail weakened"),
        "{text}"
    );
    assert_eq!(lines[0]["finding"]["kind"], "rule");
    // Still indexed: the rule findings are searchable too.
    assert_eq!(count(&os), report(&o)["indexed"].as_u64().unwrap());

    // The same batch again (delivered twice): its incident paged already,
    // at critical, so it does not page again.
    std::fs::remove_file(&pages).unwrap();
    let o = forward(&os.url, &event, &dead, &["--pages", pages_arg]);
    assert_eq!(report(&o)["paged"], 0, "{}", stderr(&o));
    assert!(!pages.exists());

    // The paged incident was kept: its lead with the severity it paged
    // at, the rest as seen (the same findings again are the same
    // documents)...
    let mut kept = kept_findings(&os);
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        kept,
        [
            ("cloudtrail-stop-logging".to_owned(), json!("critical")),
            ("cloudtrail-trail-weakened".to_owned(), json!(null)),
        ]
    );

    // From critical only (a stack of its own), the weakened trail is not
    // in the page.
    let fresh = opensearch_with_template();
    let o = forward(
        &fresh.url,
        &event,
        &dead,
        &["--pages", pages_arg, "--page-severity", "critical"],
    );
    assert_eq!(report(&o)["paged"], 1, "{}", stderr(&o));
    let text = std::fs::read_to_string(&pages).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(!text.contains("weakened"), "{text}");

    // ...so an alert about mallory in the same half hour joins that
    // incident, which paged at critical already: it does not page again.
    let moto = Server::moto();
    let topic = Topic::new(&moto);
    let alert = json!({"detector": "api-errors",
        "entity": [{"name": "userIdentity.arn", "value": "arn:aws:iam::111122223333:user/mallory"}],
        "period_start": "2026-11-21T03:10:00Z", "period_end": "2026-11-21T03:20:00Z",
        "anomaly_grade": 0.99, "confidence": 0.9});
    let o = enrich(&os.url, &moto, &topic, &alert);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("its incident already paged at this severity"),
        "{}",
        stderr(&o)
    );
    assert!(topic.received().is_empty());
}

#[test]
fn the_forwarder_pages_on_sigma_rules_too() {
    let os = opensearch_with_template();
    let dir = tempfile::tempdir().unwrap();
    let sigma = dir.path().join("sigma");
    std::fs::create_dir(&sigma).unwrap();
    // A team's own rule, at a level that alerts (Sigma's low and medium
    // are reviewed, not paged).
    std::fs::write(
        sigma.join("trail-changed.yml"),
        "title: Trail logging stopped by a person\nlogsource: {product: aws, service: cloudtrail}\n\
         detection:\n  stop: {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging}\n  \
         person: {userIdentity.type: IAMUser}\n  condition: stop and person\n\
         tags: [attack.t1562.008]\nlevel: high\n",
    )
    .unwrap();
    let pages = dir.path().join("pages.ndjson");
    let event = awslogs_event(&[trail_call("StopLogging", json!({"name": "org-trail"}))]);
    let o = forward(
        &os.url,
        &event,
        &dir.path().join("dead.ndjson"),
        &[
            "--pages",
            pages.to_str().unwrap(),
            "--sigma",
            sigma.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // One incident: the rule file's finding leads, the Sigma rule's is in it.
    let text = std::fs::read_to_string(&pages).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("trail-changed (high): Trail logging stopped by a person: user/mallory"),
        "{text}"
    );
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
            Fault::Status(413),
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
    // The faults are for the records' requests: the batch's findings (the
    // real hour pages) are not kept in their index here.
    let o = forward(
        &proxy.url,
        &event,
        &dead,
        &[
            "--request-timeout",
            "1",
            "--max-request-bytes",
            "100000",
            "--keep-no-findings",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    let indexed = r["indexed"].as_u64().unwrap();
    assert_eq!(indexed + r["dead_lettered"].as_u64().unwrap(), 300, "{r}");
    assert!(r["retried"].as_u64().unwrap() > 0, "{r}");
    assert!(r["rounds"].as_u64().unwrap() > 1, "{r}");
    assert!(
        r["split"].as_u64().unwrap() >= 1,
        "413 halves the request: {r}"
    );
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
    let moto = Server::moto();
    let topic = Topic::new(&moto);
    let mut messages = real_records(50);
    messages.push("a poison record".to_owned());
    // A trail stopped: a rule finding, paged by the forwarder itself.
    messages.push(trail_call("StopLogging", json!({"name": "org-trail"})));
    let api = RuntimeApi::start(awslogs_event(&messages));
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
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("DEAD_LETTER_QUEUE_URL", &topic.queue)
        .env("ALERT_TOPIC_ARN", &topic.arn)
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
    assert_eq!(r["received"], 52);
    let indexed = r["indexed"].as_u64().unwrap();
    assert_eq!(indexed + r["dead_lettered"].as_u64().unwrap(), 52);
    assert_eq!(count(&os), indexed);
    assert_eq!(r["paged"], 1, "{body}");
    // The poison record is in the stack's dead-letter queue, with its reason.
    let letters = topic.queue_bodies();
    let letter = letters
        .iter()
        .find(|l| l.contains("a poison record"))
        .unwrap_or_else(|| panic!("no dead letter in the queue: {letters:?}"));
    let letter: Value = serde_json::from_str(letter).unwrap();
    assert!(
        letter["reason"].as_str().unwrap().contains("not JSON"),
        "{letter}"
    );
    // The page went to the alert topic, as the structured page the
    // enricher passes on.
    let page: Vec<Value> = letters
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["Subject"] == MALLORY_STOPPED)
        .collect();
    assert_eq!(page.len(), 1, "{letters:?}");
    let message = page[0]["Message"].as_str().unwrap();
    let sent: Value = serde_json::from_str(message).unwrap();
    assert_eq!(sent["trailwatch_page"]["severity"], "critical", "{sent}");
    // The enricher passes it on to people, with and without a domain,
    // saying what, who and where; with one, a link to the records.
    for domain in [Some(os.url.as_str()), None] {
        let people = Topic::named(
            &moto,
            if domain.is_some() {
                "people"
            } else {
                "people-no-domain"
            },
        );
        let event = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": message}}]});
        let env = [
            ("AWS_ENDPOINT_URL", moto.url.as_str()),
            ("NOTIFICATION_TOPIC_ARN", people.arn.as_str()),
        ];
        let (answer, output) = run_function("enricher", event, domain, &env);
        let (_, body) = answer.unwrap_or_else(|| panic!("no answer: {}", stderr(&output)));
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["published"][0]["paged"], true, "{answer}");
        let received = people.received();
        assert_eq!(received.len(), 1, "{domain:?}: {received:?}");
        let (subject, text) = &received[0];
        assert_eq!(subject, MALLORY_STOPPED);
        assert!(
            text.starts_with(
                "CloudTrail logging stopped: user/mallory@111122223333 called cloudtrail.amazonaws.com:StopLogging on org-trail from 203.0.113.66"
            ),
            "{text}"
        );
        assert_eq!(
            text.contains("\nDashboards: "),
            domain.is_some(),
            "{domain:?}: {text}"
        );
        assert!(
            stdout(&output).contains("\"passed_on\":true"),
            "{}",
            stdout(&output)
        );
    }
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
    assert_eq!(line["received"], 52);
}

/// The simulated records of the day before `start` and the ten minutes
/// after it that `keep` selects.
fn simulated_records(
    start: chrono::DateTime<chrono::Utc>,
    keep: impl Fn(&Value) -> bool,
) -> Vec<String> {
    let from = start - chrono::Duration::days(1);
    let to = start + chrono::Duration::minutes(10);
    records_under(simulated())
        .into_iter()
        .filter(|r| {
            let t: chrono::DateTime<chrono::Utc> =
                r["eventTime"].as_str().unwrap().parse().unwrap();
            t >= from && t < to && keep(r)
        })
        .map(|r| r.to_string())
        .collect()
}

fn incident(kind: &str) -> Value {
    let text = std::fs::read_to_string(simulated().join("incidents.json")).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter().find(|i| i["kind"] == kind).unwrap()
}

/// An SNS topic on moto with an SQS queue subscribed, to read what is published.
struct Topic {
    aws: tokio::runtime::Runtime,
    sqs: aws_sdk_sqs::Client,
    arn: String,
    queue: String,
}

impl Topic {
    fn new(moto: &Server) -> Topic {
        Topic::named(moto, "notifications")
    }

    /// A topic `name` with a queue of the same name subscribed.
    fn named(moto: &Server, name: &str) -> Topic {
        let aws = tokio::runtime::Runtime::new().unwrap();
        let (sqs, arn, queue) = aws.block_on(async {
            let config = moto.sdk().await;
            let sns = aws_sdk_sns::Client::new(&config);
            let sqs = aws_sdk_sqs::Client::new(&config);
            let arn = sns
                .create_topic()
                .name(name)
                .send()
                .await
                .unwrap()
                .topic_arn()
                .unwrap()
                .to_owned();
            let queue = sqs
                .create_queue()
                .queue_name(name)
                .send()
                .await
                .unwrap()
                .queue_url()
                .unwrap()
                .to_owned();
            sns.subscribe()
                .topic_arn(&arn)
                .protocol("sqs")
                .endpoint(format!("arn:aws:sqs:us-east-1:123456789012:{name}"))
                .send()
                .await
                .unwrap();
            (sqs, arn, queue)
        });
        Topic {
            aws,
            sqs,
            arn,
            queue,
        }
    }

    /// The bodies of the queue's messages so far.
    fn queue_bodies(&self) -> Vec<String> {
        self.aws.block_on(async {
            let answer = self
                .sqs
                .receive_message()
                .queue_url(&self.queue)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            answer
                .messages()
                .iter()
                .map(|m| m.body().unwrap_or("").to_owned())
                .collect()
        })
    }

    /// The notifications received so far: (subject, message).
    fn received(&self) -> Vec<(String, String)> {
        self.queue_bodies()
            .iter()
            .map(|body| {
                let envelope: Value = serde_json::from_str(body).unwrap();
                (
                    envelope["Subject"].as_str().unwrap_or("").to_owned(),
                    envelope["Message"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

fn enrich(os_url: &str, moto: &Server, topic: &Topic, alert: &Value) -> std::process::Output {
    enrich_with(os_url, moto, topic, alert, &[])
}

/// [`enrich`] with more flags.
fn enrich_with(
    os_url: &str,
    moto: &Server,
    topic: &Topic,
    alert: &Value,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "lambda",
        "enrich",
        "--opensearch-url",
        os_url,
        "--topic-arn",
        &topic.arn,
        "--endpoint-url",
        &moto.url,
    ];
    args.extend_from_slice(extra);
    trailwatch_aws(&args, Some(alert.to_string().as_bytes()))
}

#[test]
fn the_enricher_publishes_who_did_it_and_what_it_costs() {
    let os = opensearch_with_template();
    let moto = Server::moto();
    let topic = Topic::new(&moto);
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");

    let mining = incident("crypto-mining");
    let leaked = incident("leaked-key");
    let mining_start: chrono::DateTime<chrono::Utc> =
        mining["start"].as_str().unwrap().parse().unwrap();
    let leaked_start: chrono::DateTime<chrono::Utc> =
        leaked["start"].as_str().unwrap().parse().unwrap();
    let mut records = simulated_records(mining_start, |r| r["eventName"] == "RunInstances");
    records.extend(simulated_records(leaked_start, |r| {
        r["errorCode"].is_string()
    }));
    for chunk in records.chunks(4000) {
        let o = forward(&os.url, &awslogs_event(chunk), &dead, &[]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    http(&os.url, "POST", "/cwl-*/_refresh", b"");

    // As the monitor sends it, inside an SNS event.
    let end = |t: chrono::DateTime<chrono::Utc>| (t + chrono::Duration::minutes(10)).to_rfc3339();
    let alert = json!({"detector": "ec2-run-instances", "period_start": mining["start"], "period_end": end(mining_start),
        "anomaly_grade": 0.97, "confidence": 0.91});
    let event = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Subject": "alert", "Message": alert.to_string()}}]});
    let o = enrich(&os.url, &moto, &topic, &event);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("not enriched"), "{}", stderr(&o));

    let alert = json!({"detector": "api-errors", "entity": [{"name": "userIdentity.arn", "value": leaked["principal"]}],
        "period_start": leaked["start"], "period_end": end(leaked_start), "anomaly_grade": 0.99, "confidence": 0.95});
    let o = enrich(&os.url, &moto, &topic, &alert);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let received = topic.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let (subject, body) = received
        .iter()
        .find(|(s, _)| s.contains("GPU instances started"))
        .unwrap();
    assert!(
        subject.contains("/h"),
        "the cost is in the subject: {subject}"
    );
    assert!(body.contains("Who:    user/carol@777788889999"), "{body}");
    assert!(body.contains("203.0.113.66"), "{body}");
    assert!(body.contains("p4d.24xlarge"), "{body}");
    assert!(body.contains("/day if left running"), "{body}");
    assert!(body.contains("on-demand list prices of"), "{body}");
    assert!(body.contains("\"enriched\": true"), "{body}");

    // The local engine prices the same window the same way.
    let data: Value = serde_json::from_str(body.split("--- data ---").nth(1).unwrap()).unwrap();
    let published = data["context"]["cost"]["per_hour"].as_f64().unwrap();
    let o = trailwatch(&[
        "detect",
        simulated().to_str().unwrap(),
        "--kinds",
        "rcf",
        "--format",
        "ndjson",
    ]);
    let local = ndjson(&o)
        .into_iter()
        .find(|a| {
            a["detector"] == "ec2-run-instances"
                && a["start"] == mining["start"]
                && a.get("partial").is_none()
        })
        .unwrap_or_else(|| {
            panic!(
                "detect found no anomaly at {}: {}",
                mining["start"],
                stdout(&o)
            )
        });
    assert_eq!(
        local["context"]["cost"]["per_hour"].as_f64(),
        Some(published),
        "{local}"
    );

    let (subject, body) = received
        .iter()
        .find(|(s, _)| s.contains("Access-denied errors"))
        .unwrap();
    assert!(
        subject.contains("by user/bob@111122223333"),
        "who is in the subject: {subject}"
    );
    assert!(
        body.contains("Top principals: user/bob@111122223333"),
        "{body}"
    );
    assert!(body.contains("Top error codes:"), "{body}");
}

/// The findings the enricher kept, as (detector, paged).
fn kept_findings(os: &Server) -> Vec<(String, Value)> {
    http(&os.url, "POST", "/trailwatch-findings/_refresh", b"");
    let o = http(
        &os.url,
        "POST",
        "/trailwatch-findings/_search",
        br#"{"size": 100, "sort": [{"start": "asc"}]}"#,
    );
    let body: Value = serde_json::from_str(o.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap();
    body["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["_source"]["finding"]["detector"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                h["_source"]["paged"].clone(),
            )
        })
        .collect()
}

/// The page of mallory's stopped trail: the incident in words.
const MALLORY_STOPPED: &str =
    "trailwatch CRITICAL: CloudTrail logging stopped by user/mallory@111122223333";

/// How many kept findings have `value` in `pivots.<field>`: what a
/// responder searches the findings index by.
fn kept_by_pivot(os: &Server, field: &str, value: &str) -> u64 {
    let query = json!({"query": {"term": {format!("pivots.{field}"): value}}});
    let o = http(
        &os.url,
        "POST",
        "/trailwatch-findings/_search",
        query.to_string().as_bytes(),
    );
    let body: Value = serde_json::from_str(o.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap();
    body["hits"]["total"]["value"].as_u64().unwrap_or(0)
}

#[test]
fn the_enricher_judges_an_alert_with_its_incident_and_pages_an_incident_once() {
    let os = opensearch_with_template();
    let moto = Server::moto();
    let topic = Topic::new(&moto);
    let dir = tempfile::tempdir().unwrap();
    let leaked = incident("leaked-key");
    let start: chrono::DateTime<chrono::Utc> = leaked["start"].as_str().unwrap().parse().unwrap();
    let records = simulated_records(start, |r| r["errorCode"].is_string());
    let o = forward(
        &os.url,
        &awslogs_event(&records),
        &dir.path().join("dead.ndjson"),
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    http(&os.url, "POST", "/cwl-*/_refresh", b"");
    let bob = leaked["principal"].as_str().unwrap();
    let end = (start + chrono::Duration::minutes(10)).to_rfc3339();
    let alert = |detector: &str, grade: f64| {
        json!({"detector": detector, "entity": [{"name": "userIdentity.arn", "value": bob}],
            "period_start": leaked["start"], "period_end": end, "anomaly_grade": grade, "confidence": 0.9})
    };
    // 1. Object reads by bob at 0.93, with nothing in them worth waking
    //    for: low alone, and nothing is kept yet.
    let reads = alert("s3-get-object", 0.93);
    let o = enrich(&os.url, &moto, &topic, &reads);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("it is low, below --page-severity medium"),
        "{}",
        stderr(&o)
    );
    // 2. Refused calls by bob at 0.75: worth waking for, but too mild alone.
    //    With the reads, its incident is medium: this one pages.
    let o = enrich(&os.url, &moto, &topic, &alert("api-errors", 0.75));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("published"), "{}", stderr(&o));
    // 3. The reads' alert again (the monitor's next run): its incident
    //    paged at medium already, so it only adds to it.
    let o = enrich(&os.url, &moto, &topic, &reads);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("its incident already paged at this severity"),
        "{}",
        stderr(&o)
    );

    let received = topic.received();
    assert_eq!(received.len(), 1, "one incident, one page: {received:?}");
    let (subject, body) = &received[0];
    assert!(
        subject.starts_with("trailwatch MEDIUM: Access-denied errors far above usual by user/bob@"),
        "{subject}"
    );
    assert!(
        body.contains("Severity: medium, as its incident (low alone)."),
        "{body}"
    );
    assert!(
        body.contains("Incident: with 1 other finding about the same principal or resource within half an hour:"),
        "{body}"
    );
    assert!(body.contains("rcf s3-get-object:"), "{body}");
    // Every finding is kept once (the repeated alert is the same document),
    // the one that paged with its severity.
    let kept = kept_findings(&os);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept.contains(&("api-errors".into(), json!("medium"))),
        "{kept:?}"
    );
    assert!(
        kept.contains(&("s3-get-object".into(), Value::Null)),
        "{kept:?}"
    );
    // A responder finds them by the access key bob's calls were signed
    // with, and by an event ID of the records behind them.
    let records: Vec<Value> = (records.iter())
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    let key = (records.iter())
        .find(|r| r["userIdentity"]["arn"] == *bob)
        .and_then(|r| r["userIdentity"]["accessKeyId"].as_str())
        .unwrap();
    assert!(kept_by_pivot(&os, "access_key_ids", key) >= 1, "{key}");
    assert_eq!(kept_by_pivot(&os, "access_key_ids", "AKIANOTBOBS"), 0);
    let ids: Vec<&str> = (records.iter())
        .filter_map(|r| r["eventID"].as_str())
        .collect();
    assert!(
        ids.iter()
            .any(|id| kept_by_pivot(&os, "event_ids", id) >= 1),
        "no kept finding has any of the records' event IDs"
    );

    // Judged alone (--alone), the same refused calls do not page.
    let alone = enrich_with(
        &os.url,
        &moto,
        &topic,
        &alert("api-errors", 0.75),
        &["--alone"],
    );
    assert!(stderr(&alone).contains("it is low"), "{}", stderr(&alone));
    assert!(topic.received().is_empty(), "nothing more was published");

    // A findings index the domain refuses (no such name may exist): the
    // alert is judged alone, said, and still goes out when it pages alone.
    let refused = enrich_with(
        &os.url,
        &moto,
        &topic,
        &alert("api-errors", 0.85),
        &["--findings-index", "Not A Valid Index"],
    );
    assert_eq!(refused.status.code(), Some(0), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("the findings index Not A Valid Index: cannot "),
        "{}",
        stderr(&refused)
    );
    let received = topic.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(
        received[0]
            .0
            .starts_with("trailwatch MEDIUM: Access-denied errors far above usual by user/bob@"),
        "{received:?}"
    );
}

#[test]
fn an_alert_that_cannot_be_enriched_is_still_published() {
    let moto = Server::moto();
    let topic = Topic::new(&moto);
    let closed = format!("http://127.0.0.1:{}", free_port());
    let alert = json!({"detector": "api-errors", "entity": "arn:aws:iam::111122223333:user/bob",
        "period_start": "2026-01-07T14:20:00Z", "period_end": "2026-01-07T14:30:00Z"});
    let o = enrich(&closed, &moto, &topic, &alert);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("not enriched"), "{}", stderr(&o));
    let received = topic.received();
    assert_eq!(received.len(), 1);
    let (subject, body) = &received[0];
    assert_eq!(subject, "trailwatch alert (not enriched): api-errors");
    assert!(
        body.contains(&alert.to_string()),
        "the original alert goes out: {body}"
    );
}

/// The repository had no sample events for `lambda forward` and `lambda
/// enrich`; the ones `--help` now names run as it says.
#[test]
fn the_sample_events_named_in_help_forward_and_enrich() {
    let os = opensearch_with_template();
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");
    let sample = |name: &str| std::fs::read(root().join("tests/data/lambda").join(name)).unwrap();
    let o = trailwatch_with_stdin(
        &[
            "lambda",
            "forward",
            "--opensearch-url",
            &os.url,
            "--dead-letter",
            dead.to_str().unwrap(),
            "--pages",
            dir.path().join("pages.ndjson").to_str().unwrap(),
        ],
        Some(&sample("forward-event.json")),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(
        (r["received"].as_u64(), r["indexed"].as_u64()),
        (Some(3), Some(3)),
        "{r}"
    );
    assert_eq!(count(&os), 3);
    let o = trailwatch_with_stdin(
        &["lambda", "enrich", "--opensearch-url", &os.url],
        Some(&sample("enrich-alert.json")),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("Subject: "), "{out}");
    assert!(out.contains("ec2-run-instances"), "{out}");
    assert!(
        out.contains("p4d.24xlarge"),
        "the started instances are named: {out}"
    );
    assert!(!stderr(&o).contains("not enriched"), "{}", stderr(&o));
}

/// The deployed enricher pages as `detect` would: an anomaly detector's
/// alert over a quiet window (no cost, nothing sensitive, nobody new) is
/// low and stays in the dashboards, while a test alert of the same window
/// goes out, as it must; the log line says which and why.
#[test]
fn the_enricher_lambda_publishes_from_the_page_severity_and_always_a_test() {
    let os = opensearch_with_template();
    let moto = Server::moto();
    let topic = Topic::new(&moto);
    let alert = json!({"monitor": "trailwatch-ec2-run-instances", "detector": "ec2-run-instances",
        "entity": [{"name": "userIdentity.arn", "value": "arn:aws:iam::777788889999:user/carol"}],
        "period_start": "2026-01-07T03:10:00Z", "period_end": "2026-01-07T03:20:00Z",
        "anomaly_grade": 0.93, "confidence": 0.88});
    let mut test = alert.clone();
    test["test"] = json!(true);
    let event = json!({"Records": [
        {"EventSource": "aws:sns", "Sns": {"Message": alert.to_string()}},
        {"EventSource": "aws:sns", "Sns": {"Message": test.to_string()}},
    ]});
    let (answer, output) = run_function(
        "enricher",
        event,
        Some(&os.url),
        &[
            ("AWS_ENDPOINT_URL", moto.url.as_str()),
            ("NOTIFICATION_TOPIC_ARN", topic.arn.as_str()),
            ("PAGE_SEVERITY", "medium"),
        ],
    );
    let (_, body) = answer.unwrap_or_else(|| panic!("no answer: {}", stderr(&output)));
    let answer: Value = serde_json::from_str(&body).unwrap();
    let published = answer["published"].as_array().unwrap();
    assert_eq!(published.len(), 2, "{answer}");
    assert_eq!(published[0]["severity"], "low", "{answer}");
    assert_eq!(published[0]["paged"], false, "{answer}");
    assert_eq!(published[1]["paged"], true, "{answer}");
    let received = topic.received();
    assert_eq!(received.len(), 1, "only the test goes out: {received:?}");
    assert!(
        received[0]
            .0
            .starts_with("trailwatch test: EC2 instances requested far above usual"),
        "{received:?}"
    );
    let log = stdout(&output);
    assert!(
        log.lines()
            .any(|l| l.contains("\"paged\":false") && l.contains("\"severity\":\"low\"")),
        "{log}"
    );
}

/// A CloudFormation custom resource event, as CloudFormation sends it to
/// the bootstrap's Lambda.
fn custom_resource_event(kind: &str, response_url: &str) -> Value {
    json!({
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:trailwatch-bootstrap",
        "ResponseURL": response_url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/trailwatch/5b0a3f10-0000-11ee-9c47-0a1b2c3d4e5f",
        "RequestId": format!("req-{kind}"),
        "LogicalResourceId": "OpenSearchObjects",
        "ResourceType": "Custom::OpenSearchObjects",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:trailwatch-bootstrap",
            "ForwarderRoleArn": "arn:aws:iam::123456789012:role/trailwatch-forwarder",
            "EnricherRoleArn": "arn:aws:iam::123456789012:role/trailwatch-enricher",
            // As the template passes deploy's parameters: text, the
            // channels separated by spaces.
            "RetentionDays": "14",
            "Notify": "webhook:http://127.0.0.1:9/alerts slack:http://127.0.0.1:9/slack",
            "NotifyDigest": "0123456789abcdef"
        }
    })
}

/// The bootstrap under the local Runtime API, on one event, with `env`
/// added; returns the runtime's record of its answer and the process's output.
fn run_bootstrap(
    event: Value,
    endpoint: &str,
    env: &[(&str, &str)],
) -> (Option<(String, String)>, std::process::Output) {
    use crate::util::node::ADMIN_PASSWORD;
    let mut all = vec![
        ("OPENSEARCH_USER", "admin"),
        ("OPENSEARCH_PASSWORD", ADMIN_PASSWORD),
    ];
    all.extend_from_slice(env);
    run_function("bootstrap", event, Some(endpoint), &all)
}

/// The binary as the Lambda `function` under the local Runtime API, on one
/// event, reaching OpenSearch at `endpoint` (none: a stack without a
/// domain), with `env` added.
fn run_function(
    function: &str,
    event: Value,
    endpoint: Option<&str>,
    env: &[(&str, &str)],
) -> (Option<(String, String)>, std::process::Output) {
    let api = RuntimeApi::start(event);
    let task_root = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .envs(env.iter().copied())
        .envs(endpoint.map(|e| ("OPENSEARCH_ENDPOINT", e)))
        .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("TRAILWATCH_FUNCTION", function)
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("trailwatch-{function}"))
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("LAMBDA_TASK_ROOT", task_root.path())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let answer = api.response.recv_timeout(Duration::from_secs(90)).ok();
    let mut child = child;
    child.kill().ok();
    (answer, child.wait_with_output().unwrap())
}

#[test]
fn the_bootstrap_custom_resource_applies_on_create_leaves_on_delete_and_always_answers() {
    use crate::util::node::node;
    use crate::util::plugins::Plugins;
    use crate::util::scripted::{Expect, Scripted};
    let _lock = node_lock();
    let n = node();
    let plugins = Plugins::start(&n.url, &n.ca);
    // Stands in for the pre-signed S3 URL: one answer per event, checked.
    let answered = |request_id: &'static str, status: &'static str, says: &'static str| Expect {
        method: "PUT",
        path: "/cfn-response".into(),
        headers: vec![],
        body: Box::new(move |body, _| {
            let r: Value = serde_json::from_slice(body).ok()?;
            let ok = r["Status"] == status
                && r["RequestId"] == request_id
                && r["LogicalResourceId"] == "OpenSearchObjects"
                && r["PhysicalResourceId"] == "OpenSearchObjects-opensearch-objects"
                && r["StackId"]
                    .as_str()
                    .is_some_and(|s| s.contains("stack/trailwatch/"))
                && r["Reason"].as_str().is_some_and(|s| s.contains(says));
            (!ok).then(|| format!("answered {r}"))
        }),
        status: 200,
        answer: String::new(),
    };
    let cfn = Scripted::start(vec![
        answered("req-Create", "SUCCESS", "applied"),
        answered("req-Delete", "SUCCESS", "applied"),
        answered("req-Update", "FAILED", "not ready"),
    ]);
    let url = format!("{}/cfn-response", cfn.url);

    // Create: every object applied, as deploy applies them.
    let (answer, output) = run_bootstrap(custom_resource_event("Create", &url), &plugins.url, &[]);
    let (path, body) = answer.unwrap_or_else(|| panic!("no answer: {}", stderr(&output)));
    assert_eq!(
        path, "/2018-06-01/runtime/invocation/req-1/response",
        "{body}"
    );
    let (_, running) = plugins
        .detector("trailwatch-api-errors")
        .unwrap_or_else(|| panic!("no detector: {}", stderr(&output)));
    assert!(running);
    assert!(plugins.monitor("trailwatch-api-errors").is_some());
    // deploy's --notify and --index-retention-days, through the stack's parameters.
    assert_eq!(plugins.channel_count(), 2, "both Notify channels");
    let policies = plugins.policies();
    assert!(!policies.is_empty());
    for p in &policies {
        assert!(p.contains("\"min_index_age\":\"14d\""), "{p}");
    }
    let log = stdout(&output);
    assert!(
        !log.contains("127.0.0.1:9/slack"),
        "channel URLs are secrets: {log}"
    );
    assert!(log.contains("\"function\":\"bootstrap\""), "{log}");

    // Delete: the objects stay (the domain is retained), and it says so.
    let before = plugins.requests();
    let (answer, output) = run_bootstrap(custom_resource_event("Delete", &url), &plugins.url, &[]);
    assert!(answer.is_some(), "{}", stderr(&output));
    assert_eq!(plugins.requests(), before, "delete touches nothing");

    // A domain that does not answer: CloudFormation still hears, with why.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let (answer, output) = run_bootstrap(custom_resource_event("Update", &url), &closed, &[]);
    assert!(answer.is_some(), "{}", stderr(&output));
    cfn.verify();

    let o = run_trailwatch(
        &[
            "opensearch",
            "delete",
            "--opensearch-url",
            &plugins.url,
            "--notify",
            "webhook:http://127.0.0.1:9/alerts",
            "--notify",
            "slack:http://127.0.0.1:9/slack",
            "--yes",
        ],
        None,
        &[
            ("OPENSEARCH_USER", "admin"),
            ("OPENSEARCH_PASSWORD", crate::util::node::ADMIN_PASSWORD),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The identity pool and the app client the domain made in it, as
/// Cognito describes them.
const IDENTITY_POOL: &str = "us-east-1:5f0c3a2e-7d41-4b8e-9a61-0c2f7e3b9d10";
const USER_POOL: &str = "us-east-1_AbCdEf123";
const READER_ROLE: &str = "arn:aws:iam::123456789012:role/trailwatch-dashboards-read-only";

fn domain_provider_key() -> String {
    format!("cognito-idp.us-east-1.amazonaws.com/{USER_POOL}:4kd8a1domainclient")
}

fn described_pool(with_domain_client: bool) -> Value {
    let providers = if with_domain_client {
        json!([{"ProviderName": format!("cognito-idp.us-east-1.amazonaws.com/{USER_POOL}"),
                "ClientId": "4kd8a1domainclient", "ServerSideTokenCheck": false}])
    } else {
        json!([])
    };
    json!({"IdentityPoolId": IDENTITY_POOL, "IdentityPoolName": "trailwatch",
           "AllowUnauthenticatedIdentities": false, "AllowClassicFlow": false,
           "CognitoIdentityProviders": providers})
}

/// The roles as CloudFormation's attachment leaves them, and as the
/// bootstrap must set them.
fn pool_roles(mapped: bool) -> Value {
    let mut roles =
        json!({"IdentityPoolId": IDENTITY_POOL, "Roles": {"authenticated": READER_ROLE}});
    if mapped {
        roles["RoleMappings"] =
            json!({domain_provider_key(): {"Type": "Token", "AmbiguousRoleResolution": "Deny"}});
    }
    roles
}

/// One cognito-identity call (JSON 1.1 protocol), its body checked exactly.
fn cognito_call(
    operation: &'static str,
    body: Value,
    answer: Value,
) -> crate::util::scripted::Expect {
    crate::util::scripted::Expect {
        method: "POST",
        path: "/".into(),
        headers: vec![(
            "x-amz-target",
            format!("AWSCognitoIdentityService.{operation}"),
        )],
        body: Box::new(move |got, _| match serde_json::from_slice::<Value>(got) {
            Ok(got) if got == body => None,
            Ok(got) => Some(format!("{operation} sent {got}, expected {body}")),
            Err(e) => Some(format!("{operation} sent no JSON: {e}")),
        }),
        status: 200,
        answer: answer.to_string(),
    }
}

fn sign_in_event(kind: &str, response_url: &str) -> Value {
    let mut event = custom_resource_event(kind, response_url);
    event["RequestId"] = json!(format!("req-sign-in-{kind}"));
    event["LogicalResourceId"] = json!("DashboardSignIn");
    event["ResourceType"] = json!("Custom::DashboardSignIn");
    event["ResourceProperties"] = json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:trailwatch-bootstrap",
        "PackageKey": "bootstrap-0123456789abcdef.zip",
        "IdentityPoolId": IDENTITY_POOL,
        "UserPoolId": USER_POOL,
        "ReaderRoleArn": READER_ROLE,
    });
    event
}

/// moto has no GetIdentityPoolRoles or SetIdentityPoolRoles, so a scripted
/// cognito-identity checks every call the bootstrap makes, and that it
/// makes no other.
#[test]
fn the_bootstrap_maps_dashboard_sign_in_by_token_once_and_leaves_it_on_delete() {
    use crate::util::scripted::{Expect, Scripted};
    let set = json!({"IdentityPoolId": IDENTITY_POOL, "Roles": {"authenticated": READER_ROLE},
                     "RoleMappings": {domain_provider_key(): {"Type": "Token", "AmbiguousRoleResolution": "Deny"}}});
    let describe = json!({"IdentityPoolId": IDENTITY_POOL});
    let cognito = Scripted::start(vec![
        // Create: the mapping is missing, so it is set.
        cognito_call(
            "DescribeIdentityPool",
            describe.clone(),
            described_pool(true),
        ),
        cognito_call("GetIdentityPoolRoles", describe.clone(), pool_roles(false)),
        cognito_call("SetIdentityPoolRoles", set, json!({})),
        // Update (a new package): as wanted already, so nothing is set.
        cognito_call(
            "DescribeIdentityPool",
            describe.clone(),
            described_pool(true),
        ),
        cognito_call("GetIdentityPoolRoles", describe, pool_roles(true)),
        // Delete: no call at all.
    ]);
    let answered = |request_id: &'static str, changed: Option<u64>| Expect {
        method: "PUT",
        path: "/cfn-response".into(),
        headers: vec![],
        body: Box::new(move |body, _| {
            let r: Value = serde_json::from_slice(body).unwrap_or_default();
            let ok = r["Status"] == "SUCCESS"
                && r["RequestId"] == request_id
                && r["LogicalResourceId"] == "DashboardSignIn"
                && r["PhysicalResourceId"] == "DashboardSignIn-sign-in"
                && r["Data"]["Changed"].as_u64() == changed
                && (changed.is_none() || r["Data"]["MappedByToken"] == domain_provider_key());
            (!ok).then(|| format!("answered {r}"))
        }),
        status: 200,
        answer: String::new(),
    };
    let cfn = Scripted::start(vec![
        answered("req-sign-in-Create", Some(1)),
        answered("req-sign-in-Update", Some(0)),
        answered("req-sign-in-Delete", None),
    ]);
    let url = format!("{}/cfn-response", cfn.url);
    let env = [("AWS_ENDPOINT_URL_COGNITO_IDENTITY", cognito.url.as_str())];
    // The OpenSearch endpoint is closed: this resource never needs it.
    let closed = format!("http://127.0.0.1:{}", free_port());
    for kind in ["Create", "Update", "Delete"] {
        let (answer, output) = run_bootstrap(sign_in_event(kind, &url), &closed, &env);
        assert!(answer.is_some(), "{kind}: {}", stderr(&output));
        let log = stdout(&output);
        assert!(
            log.contains("\"resource_type\":\"Custom::DashboardSignIn\""),
            "{log}"
        );
    }
    cognito.verify();
    cfn.verify();
}

/// Before the domain has added its app client there is nothing to map:
/// the wait is bounded, and the error says what to check.
#[test]
fn sign_in_mapping_waits_for_the_domains_app_client_then_says_what_is_missing() {
    use crate::util::node::block_on;
    use crate::util::scripted::Scripted;
    let describe = json!({"IdentityPoolId": IDENTITY_POOL});
    let cognito = Scripted::start(vec![
        cognito_call(
            "DescribeIdentityPool",
            describe.clone(),
            described_pool(false),
        ),
        cognito_call("DescribeIdentityPool", describe, described_pool(false)),
    ]);
    let config = aws_sdk_cognitoidentity::config::Builder::new()
        .behavior_version(aws_sdk_cognitoidentity::config::BehaviorVersion::latest())
        .region(aws_sdk_cognitoidentity::config::Region::new("us-east-1"))
        .endpoint_url(&cognito.url)
        .credentials_provider(aws_sdk_cognitoidentity::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    let client = aws_sdk_cognitoidentity::Client::from_conf(config);
    let err = block_on(trailwatch::users::sign_in::reconcile(
        &client,
        IDENTITY_POOL,
        USER_POOL,
        READER_ROLE,
        Duration::from_secs(2),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!(
            "identity pool {IDENTITY_POOL} has no app client of user pool {USER_POOL} after 2 s"
        )) && err.contains("CognitoOptions"),
        "{err}"
    );
    cognito.verify();
}

/// `lambda forward` against a cluster it can never reach waited out its
/// whole time in retries (59 s) before it said so. Each such case fails
/// on the first round, saying what to do, with nothing indexed and the
/// batch left for the platform to retry.
#[test]
fn a_connection_that_cannot_succeed_fails_at_once_with_what_to_do() {
    let n = crate::util::node::node();
    let records = real_records(20);
    let event = awslogs_event(&records);
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");
    let port = n.url.rsplit(':').next().unwrap().trim_end_matches('/');
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", l.local_addr().unwrap());
        drop(l);
        url
    };
    let plain = format!("http://127.0.0.1:{port}");
    for (url, says) in [
        (n.url.as_str(), "signed by a CA this machine does not trust: pass that CA's PEM file with --opensearch-ca-cert"),
        (plain.as_str(), "closed the connection on a plain HTTP request, and it answers TLS: write https://"),
        (closed.as_str(), "nothing listens at"),
    ] {
        let o = forward(url, &event, &dead, &[]);
        assert_eq!(o.status.code(), Some(2), "{url}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(says), "{url}: {err}");
        let r = report(&o);
        assert_eq!((r["rounds"].as_u64(), r["retried"].as_u64()), (Some(1), Some(0)), "{url}: no retry: {r}");
        assert_eq!(r["indexed"], 0, "{r}");
    }
}

/// `lambda forward --from`: CloudTrail deliveries forwarded by hand (the
/// Compose path of docs/opensearch.md), batch by batch; a damaged delivery is named and
/// the rest goes in.
#[test]
fn deliveries_are_forwarded_from_files_and_a_damaged_one_is_named() {
    let os = opensearch_with_template();
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");
    let stratus = shared_cloudtrail().join("stratus-detonations");
    let o = crate::util::trailwatch(&[
        "lambda",
        "forward",
        "--opensearch-url",
        &os.url,
        "--dead-letter",
        dead.to_str().unwrap(),
        "--pages",
        dir.path().join("pages.ndjson").to_str().unwrap(),
        "--from",
        stratus.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("aws.execution.ec2-user-data.json: not JSON"),
        "the damaged delivery is named: {err}"
    );
    assert!(err.contains("batch 1 of 1 ("), "{err}");
    let r = report(&o);
    let indexed = r["indexed"].as_u64().unwrap();
    assert!(indexed > 0, "{r}");
    assert_eq!(count(&os), indexed, "every good record is in the index");
}

/// An organisation trail's forwarder lists the organisation's accounts when
/// it starts (AWS Organizations on moto): every member, each once; when
/// Organizations cannot be reached, an error that says what the rules
/// count instead.
#[test]
fn an_organisation_trails_forwarder_lists_every_member_account() {
    let moto = Server::moto();
    let aws = tokio::runtime::Runtime::new().unwrap();
    aws.block_on(async {
        let config = moto.sdk().await;
        let client = aws_sdk_organizations::Client::new(&config);
        // Nothing answering: an error that says what the rules count.
        let nowhere = aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&config)
                .endpoint_url(format!("http://127.0.0.1:{}", free_port()))
                .build(),
        );
        let none = trailwatch::lambda::organization::accounts(&nowhere)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            none.starts_with(
                "cannot list the organisation's accounts (organizations:ListAccounts): "
            ) && none.contains("the rules count only ORG_ACCOUNTS"),
            "{none}"
        );
        let org = client
            .create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .unwrap();
        let management = org
            .organization()
            .and_then(|o| o.master_account_id())
            .unwrap()
            .to_owned();
        let mut expected = vec![management];
        for name in ["prod", "sandbox"] {
            let made = client
                .create_account()
                .account_name(name)
                .email(format!("{name}@example.com"))
                .send()
                .await
                .unwrap();
            let id = made
                .create_account_status()
                .and_then(|s| s.account_id())
                .unwrap()
                .to_owned();
            expected.push(id);
        }
        expected.sort();
        let listed = trailwatch::lambda::organization::accounts(&client)
            .await
            .unwrap();
        assert_eq!(listed, expected);
    });
}
