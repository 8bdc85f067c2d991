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
        "--stream-idle",
        "3s",
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
        // An interval's partial findings share its start, not its end.
        .map(|a| {
            format!(
                "{} {} {} {}",
                a["detector"], a["entity"], a["start"], a["end"]
            )
        })
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

/// The key a finding is compared by (an interval's partial findings share
/// its start, not its end).
fn key(a: &Value) -> String {
    format!(
        "{} {} {} {} {}",
        a["kind"], a["detector"], a["entity"], a["start"], a["end"]
    )
}

/// A folder copied in two batches, the second holding earlier hours of other
/// accounts, lost two incidents without a warning: the watermark had passed
/// them. Now each stream (account and region) keeps its own, the engine
/// advances on the slowest, and what still comes too late is said, with the
/// findings that can still be made from it marked late.
#[test]
fn deliveries_out_of_order_across_accounts_give_the_one_shot_findings() {
    let late_account = "111122223333";
    let all = deliveries(&["05", "06", "07"]);
    let (held_back, first): (Vec<PathBuf>, Vec<PathBuf>) = all.into_iter().partition(|p| {
        let s = p.to_string_lossy();
        s.contains(&format!("/AWSLogs/{late_account}/")) && s.contains("/2026/01/07/")
    });
    assert!(!held_back.is_empty() && !first.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let watch = dir.path().join("watch");
    // The first batch copied in a shuffled order (by account, then by hour).
    let mut shuffled = first.clone();
    shuffled.sort_by_key(|p| {
        let s = p.to_string_lossy().into_owned();
        (s.contains("777788889999"), std::cmp::Reverse(s))
    });
    deliver(&shuffled, &watch);
    let run = spawn(&[
        "detect",
        watch.to_str().unwrap(),
        "--follow",
        "--poll",
        "1s",
        "--stream-idle",
        "3s",
        "--format",
        "ndjson",
    ]);
    let mut log = Vec::new();
    // The other accounts reach the end of day 3; the held-back one is still in day 2.
    let held = run.wait_for(true, 120, &mut log, |l| {
        l.starts_with("follow: evaluated up to ")
    });
    assert!(
        held.contains("2026-01-06T2"),
        "the slowest stream holds the others back: {held}"
    );
    deliver(&held_back, &watch);
    run.wait_for(true, 120, &mut log, |l| {
        l.starts_with("follow: evaluated up to 2026-01-07T23:")
    });
    // Really late: a stream never seen, from the middle of day 3, with its
    // trail stopped (a rule finding, whatever the principal's habits: a new
    // principal's first call alone is common enough by chance not to be
    // reported).
    let stranger = serde_json::json!({"Records": [{"eventVersion": "1.08",
        "eventTime": "2026-01-07T10:00:00Z", "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging", "awsRegion": "eu-north-1", "recipientAccountId": "999900001111",
        "requestParameters": {"name": "arn:aws:cloudtrail:eu-north-1:999900001111:trail/main"},
        "sourceIPAddress": "198.51.100.9", "eventID": "stranger-1",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::999900001111:user/stranger",
                         "accountId": "999900001111"}}]});
    std::fs::write(dir.path().join("late.tmp"), stranger.to_string()).unwrap();
    std::fs::rename(dir.path().join("late.tmp"), watch.join("late.json")).unwrap();
    let late = run.wait_for(true, 60, &mut log, |l| l.starts_with("follow: late: "));
    assert!(
        late.contains("1 input(s)") && late.contains("late.json (") && late.contains(" late)"),
        "{late}"
    );
    let mut out = Vec::new();
    run.wait_for(false, 60, &mut out, |l| {
        l.contains("user/stranger") && l.contains("\"late\":true")
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    out.extend(run.drain(false));
    drop(run);
    let found = anomalies(&out);
    let mut on_time: Vec<String> = found
        .iter()
        // An insight still running where a poll stopped came early, marked
        // partial; its whole came later, as the one-shot run's.
        .filter(|a| {
            a.get("late").is_none() && !(a["kind"] == "insight" && a.get("partial").is_some())
        })
        .map(key)
        .collect();
    on_time.sort();
    let o = trailwatch(&[
        "detect",
        simulated().to_str().unwrap(),
        "--format",
        "ndjson",
    ]);
    let mut one_shot: Vec<String> = ndjson(&o).iter().map(key).collect();
    one_shot.sort();
    assert_eq!(on_time, one_shot, "log: {log:#?}");
}
