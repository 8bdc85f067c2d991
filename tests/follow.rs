//! `--follow`: files written after the start are picked up, anomalies are
//! reported once as their intervals close, and `--state` lets a restart go on
//! without re-reading or relearning.

use crate::util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The simulated deliveries of the given days (`05`, `06`, `07`), in delivery-time order.
fn deliveries(days: &[&str]) -> Vec<PathBuf> {
    let root = simulated();
    let mut files: Vec<(String, PathBuf)> =
        trailwatch::cloudtrail::discover(&[root.join("AWSLogs")])
            .unwrap()
            .into_iter()
            .filter_map(|i| match i {
                trailwatch::cloudtrail::Input::File { path, .. } => Some(path),
                _ => None,
            })
            .filter(|p| {
                days.iter()
                    .any(|d| p.to_string_lossy().contains(&format!("/2026/01/{d}/")))
            })
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let stamp = name.split('_').nth(3).unwrap_or("").to_owned();
                (stamp, p)
            })
            .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// Copies as a delivery appears: written aside, then renamed into place.
fn deliver(files: &[PathBuf], into: &Path) {
    let root = simulated();
    for f in files {
        let to = into.join(f.strip_prefix(root).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let aside = into.join(".incoming");
        std::fs::copy(f, &aside).unwrap();
        std::fs::rename(&aside, &to).unwrap();
    }
}

fn anomalies(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn follow_reports_new_deliveries_once_and_resumes_from_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let watch = dir.path().join("watch");
    let state = dir.path().join("state.json");
    deliver(&deliveries(&["05", "06"]), &watch);
    let args = [
        "detect",
        watch.to_str().unwrap(),
        "--follow",
        "--poll",
        "1s",
        "--state",
        state.to_str().unwrap(),
        "--format",
        "ndjson",
    ];

    let run = spawn(&args);
    let mut log = Vec::new();
    run.wait_for(true, 120, &mut log, |l| {
        l.starts_with("follow: evaluated up to 2026-01-06T23:")
    });
    assert!(state.exists(), "state saved after the first poll");
    // The incident day arrives after the start.
    deliver(&deliveries(&["07"]), &watch);
    let mut out = Vec::new();
    let wanted = [
        "ec2-run-instances",
        "lambda-invoke",
        "api-errors",
        "ebs-create-volume",
    ];
    for d in wanted {
        if !out
            .iter()
            .any(|l: &String| l.contains(&format!("\"detector\":\"{d}\"")))
        {
            run.wait_for(false, 120, &mut out, |l| {
                l.contains(&format!("\"detector\":\"{d}\""))
            });
        }
    }
    run.wait_for(true, 60, &mut log, |l| {
        l.starts_with("follow: evaluated up to 2026-01-07T23:")
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    out.extend(run.drain(false));
    drop(run);
    let found = anomalies(&out);
    assert!(
        found
            .iter()
            .all(|a| a["start"].as_str().unwrap() >= "2026-01-07"),
        "days 1-2 are quiet: {found:#?}"
    );
    let mut keys: Vec<String> = found
        .iter()
        .map(|a| format!("{} {} {}", a["detector"], a["entity"], a["start"]))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "nothing reported twice");

    // Restart: nothing is re-read or re-reported; the models go on from the state.
    let run = spawn(&args);
    let mut log = Vec::new();
    let resumed = run.wait_for(true, 60, &mut log, |l| l.contains("resumed from"));
    assert!(resumed.contains("4320 inputs already read"), "{resumed}");
    // A stranger's burst of denials just after the data: a fresh model would
    // have no confidence; one replayed from the state has.
    let mut burst = String::new();
    for m in 30..40 {
        for k in 0..20 {
            burst.push_str(&serde_json::json!({"eventVersion": "1.08", "eventTime": format!("2026-01-08T00:{m:02}:{:02}Z", k * 2),
                "eventSource": "iam.amazonaws.com", "eventName": "ListUsers", "awsRegion": "us-east-1", "errorCode": "AccessDenied",
                "readOnly": true, "recipientAccountId": "111122223333", "sourceIPAddress": "203.0.113.7",
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory", "accountId": "111122223333"}}).to_string());
            burst.push('\n');
        }
    }
    burst.push_str(&serde_json::json!({"eventVersion": "1.08", "eventTime": "2026-01-08T01:05:00Z", "eventSource": "sts.amazonaws.com",
        "eventName": "GetCallerIdentity", "readOnly": true, "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"}}).to_string());
    std::fs::write(dir.path().join("burst.tmp"), burst).unwrap();
    std::fs::rename(dir.path().join("burst.tmp"), watch.join("burst.jsonl")).unwrap();
    let mut out = Vec::new();
    run.wait_for(false, 60, &mut out, |l| {
        l.contains("\"detector\":\"api-errors\"") && l.contains("user/mallory")
    });
    run.wait_for(true, 30, &mut log, |l| {
        l.starts_with("follow: evaluated up to 2026-01-08T01:05")
    });
    out.extend(run.drain(false));
    let found = anomalies(&out);
    assert!(
        found
            .iter()
            .all(|a| a["start"].as_str().unwrap() >= "2026-01-08"),
        "nothing from before the restart again: {found:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l == "follow: read 1 new inputs (201 events)"),
        "{log:#?}"
    );
}

#[test]
fn follow_refuses_what_it_cannot_do() {
    let o = trailwatch(&["detect", "-", "--follow"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot follow standard input"),
        "{}",
        stderr(&o)
    );
    let o = trailwatch(&["detect", "tests", "--follow", "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("with --follow use ndjson or table"),
        "{}",
        stderr(&o)
    );
    let o = trailwatch(&["detect", "tests", "--state", "s.json"]);
    assert_eq!(o.status.code(), Some(2), "--state needs --follow");
    let o = trailwatch(&["detect", "tests", "--follow", "--poll", "0s"]);
    assert_eq!(o.status.code(), Some(2));
}
