//! Flags, exit status, input forms.

use crate::util::*;
use base64::Engine as _;
use std::io::Write;

#[test]
fn bad_flags_are_refused_with_exit_2_and_a_message_naming_them() {
    let o = trailwatch(&["detect", "tests", "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--format"), "{}", stderr(&o));
    let o = trailwatch(&["detect", "tests", "--since", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("\"yesterday\" is not a time"),
        "{}",
        stderr(&o)
    );
    let o = trailwatch(&[
        "detect",
        "tests",
        "--since",
        "2026-01-02",
        "--until",
        "2026-01-01",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not before --until"));
    let o = trailwatch(&["detect", "/no/such/dir"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/no/such/dir"));
    let o = trailwatch(&["simulate", "--out", "/tmp/x", "--incident", "bitcoin@+1d"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not an incident kind"));
    let o = trailwatch(&[
        "simulate",
        "--out",
        "/tmp/x",
        "--days",
        "2",
        "--incident",
        "leaked-key@+3d",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("falls outside the simulated span"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn simulate_refuses_to_mix_with_an_earlier_simulation_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--out",
            out,
            "--days",
            "1",
            "--start",
            "2026-01-05",
            "--no-incidents",
        ];
        args.extend_from_slice(extra);
        trailwatch(&args)
    };
    let count = || {
        trailwatch::cloudtrail::discover(&[dir.path().to_path_buf()])
            .unwrap()
            .len()
    };
    assert!(run(&[]).status.success());
    let files = count();
    let o = run(&["--seed", "9"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("already holds CloudTrail deliveries; pass --force"),
        "{}",
        stderr(&o)
    );
    assert!(run(&["--seed", "9", "--force"]).status.success());
    assert_eq!(count(), files, "replaced, not added to");
}

#[test]
fn help_describes_every_command() {
    let o = trailwatch(&["--help"]);
    let out = stdout(&o);
    for cmd in ["detect", "detectors", "simulate", "Exit status"] {
        assert!(out.contains(cmd), "{out}");
    }
    let out = stdout(&trailwatch(&["detect", "--help"]));
    for flag in [
        "--detectors",
        "--since",
        "--until",
        "--format",
        "--stats",
        "--strict",
        "--max-entities",
    ] {
        assert!(out.contains(flag), "{out}");
    }
}

fn event(i: usize, name: &str) -> serde_json::Value {
    serde_json::json!({"eventVersion": "1.08", "eventTime": format!("2026-01-05T10:{:02}:00Z", i % 60),
        "eventSource": "ec2.amazonaws.com", "eventName": name, "awsRegion": "eu-west-1",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/x"}})
}

#[test]
fn json_lines_come_from_standard_input() {
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&event(i, "DescribeInstances").to_string());
        text.push('\n');
    }
    text.push_str("{not json\n");
    let o = trailwatch_with_stdin(
        &["detect", "-", "--stats", "--format", "ndjson"],
        Some(text.as_bytes()),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("<stdin>: line 41: invalid JSON"), "{err}");
    assert!(
        err.contains("stats: 40 events from 1 inputs (0 skipped, 1 problems)"),
        "{err}"
    );
}

#[test]
fn cloudwatch_logs_payloads_and_gzip_are_read_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<_> = (0..3)
        .map(|i| serde_json::json!({"id": i.to_string(), "timestamp": 0, "message": event(i, "RunInstances").to_string()}))
        .collect();
    let payload = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s",
        "subscriptionFilters": ["f"], "logEvents": events});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(payload.to_string().as_bytes()).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    std::fs::write(
        dir.path().join("payload.json"),
        serde_json::json!({"awslogs": {"data": data}}).to_string(),
    )
    .unwrap();
    let o = trailwatch(&["detect", dir.path().to_str().unwrap(), "--stats"]);
    assert!(
        stderr(&o).contains("stats: 3 events from 1 inputs"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_input_with_no_good_record_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.json"), "{\"hello\": 1}").unwrap();
    let o = trailwatch(&["detect", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("junk.json: not CloudTrail"),
        "{}",
        stderr(&o)
    );
}
