//! Hostile and messy input: nothing lost without a word, nothing panics,
//! nothing hangs. Each test is named for what broke before.

use crate::util::*;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

fn invictus() -> PathBuf {
    shared_cloudtrail().join("invictus-aws-dataset/CloudTrail")
}

/// The invictus deliveries, sorted, as bytes.
fn invictus_files() -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(invictus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The `stats: N events` figure of `--stats`.
fn events_read(err: &str) -> u64 {
    let line = err
        .lines()
        .find(|l| l.starts_with("stats: "))
        .unwrap_or_else(|| panic!("no stats line in {err}"));
    line["stats: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The `N intervals scored` figure of `--stats`.
fn intervals_scored(err: &str) -> u64 {
    let line = err.lines().find(|l| l.starts_with("stats: ")).unwrap();
    let before = line.split(" intervals scored").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn standard_input_with_several_deliveries_plain_gzipped_or_mixed_reads_them_all() {
    let files = invictus_files();
    let plain: Vec<u8> = files.concat();
    let gzipped: Vec<u8> = files.iter().flat_map(|f| gzip(f)).collect();
    let mixed: Vec<u8> = files
        .iter()
        .enumerate()
        .flat_map(|(i, f)| if i % 2 == 0 { gzip(f) } else { f.clone() })
        .collect();
    // Deliveries glued without the newline each file ends with.
    let glued: Vec<u8> = files
        .iter()
        .flat_map(|f| f.trim_ascii_end().to_vec())
        .collect();
    for (what, input) in [
        ("plain", plain),
        ("gzipped", gzipped),
        ("mixed", mixed),
        ("glued", glued),
    ] {
        let o = trailwatch_with_stdin(&["detect", "-", "--stats"], Some(&input));
        let err = stderr(&o);
        assert_eq!(events_read(&err), 2900, "{what}: {err}");
        assert!(!err.contains("warning"), "{what}: {err}");
    }
}

#[test]
fn empty_standard_input_says_there_were_no_readable_records_and_nothing_else() {
    for input in [&b""[..], b"\n\n  \n"] {
        let o = trailwatch_with_stdin(&["detect", "-"], Some(input));
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(stdout(&o), "", "no 'No anomalies found.'");
        assert_eq!(
            stderr(&o).trim(),
            "error: no readable CloudTrail records in - (the input is empty)"
        );
    }
}

#[test]
fn thin_data_says_per_kind_why_nothing_could_be_scored() {
    let o = run_trailwatch(
        &["detect", invictus().to_str().unwrap(), "--format", "table"],
        None,
        &[("COLUMNS", "400")],
    );
    // Only the rules need no history: the Stratus Red Team detonations in
    // this hour stop, delete and blind trails, delete flow logs, give
    // other users credentials and read instances' passwords, and every one
    // of them pages (a high rule keeps its severity while no habit can be
    // known).
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    // A finding's line: time, kind, rule, grade, what it saw.
    let rows: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace().skip(1);
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect();
    for rule in [
        "rule  cloudtrail-stop-logging",
        "rule  cloudtrail-delete-trail",
        "rule  cloudtrail-management-events-dropped",
        "rule  vpc-flow-logs-deleted",
        "rule  iam-credentials-for-another-user",
        "rule  ec2-password-data-read",
        // The catalogue names the hour's other Stratus techniques.
        "rule  ami-shared-outside",
        "rule  ebs-snapshot-shared-outside",
        "rule  rds-snapshot-shared-outside",
        "rule  organization-left",
        // The instance credentials Stratus steals, used from its own host
        // while the instance still calls from its network.
        "rule  ec2-instance-credentials-used-outside",
    ] {
        let (kind, name) = rule.split_once("  ").unwrap();
        assert!(
            rows.iter().any(|(k, n)| k == kind && n == name),
            "{rule} not in {out}"
        );
    }
    assert!(out.contains("\n  incident 3, pages, grade "), "{out}");
    assert!(out.starts_with("CRITICAL  "), "{out}");
    assert!(
        out.contains("\n50 anomalies in 4 incidents, all paging.\nBy severity: "),
        "{out}"
    );
    let err = stderr(&o);
    for why in [
        "note: rcf: 55 minutes of data; a model reports after 32 intervals (5 h 20 min at 10-minute intervals)",
        "note: insight: 55 minutes of data; needs 1 day of history as its baseline",
        "note: new activity: 55 minutes of data; learning for the first 1 day (--learning)",
    ] {
        assert!(err.contains(why), "{why} not in {err}");
    }
    assert!(!err.contains("their good records were read"), "{err}");
}

/// Hostile records for every detector's input: absurd, non-finite and
/// negative numbers, the wrong types, huge strings, deep nesting.
fn hostile_records(at: &str) -> Vec<serde_json::Value> {
    let who = json!({"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory",
                     "accountId": "111122223333"});
    let base = |source: &str, name: &str, params: serde_json::Value| {
        json!({"eventVersion": "1.08", "eventTime": at, "eventSource": source, "eventName": name,
               "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
               "sourceIPAddress": "198.51.100.7", "userAgent": "x".repeat(100_000),
               "userIdentity": who, "requestParameters": params,
               "eventID": format!("hostile-{name}-{}", params.to_string().len())})
    };
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!({ "d": deep });
    }
    let mut out = Vec::new();
    for max in [
        json!(1e300),
        json!("NaN"),
        json!("inf"),
        json!("-1e999"),
        json!(-5),
        json!(1.7976931348623157e308),
        json!({"nested": true}),
        json!("9".repeat(400)),
    ] {
        out.push(base(
            "ec2.amazonaws.com",
            "RunInstances",
            json!({"instanceType": "p4d.24xlarge", "instancesSet": {"items": [{"maxCount": max}]}}),
        ));
    }
    for size in [json!("Infinity"), json!(-1), json!(1e20)] {
        out.push(base(
            "ec2.amazonaws.com",
            "CreateVolume",
            json!({"volumeType": "io2", "size": size}),
        ));
    }
    out.push(base(
        "lambda.amazonaws.com",
        "Invoke",
        json!({"functionName": "f".repeat(50_000)}),
    ));
    out.push(base(
        "iam.amazonaws.com",
        "CreateUser",
        json!({"deep": deep}),
    ));
    let mut wrong = base("iam.amazonaws.com", "ListUsers", json!({}));
    wrong["errorCode"] = json!(12);
    out.push(wrong);
    let mut login = base("signin.amazonaws.com", "ConsoleLogin", json!(null));
    login["responseElements"] = json!({"ConsoleLogin": {"nested": "Failure"}});
    out.push(login);
    let mut login = base("signin.amazonaws.com", "ConsoleLogin", json!(null));
    login["responseElements"] = json!({"ConsoleLogin": "F".repeat(100_000)});
    out.push(login);
    let mut nested_arn = base("iam.amazonaws.com", "ListRoles", json!({}));
    nested_arn["userIdentity"]["arn"] = json!({"not": "a string"});
    out.push(nested_arn);
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A RunInstances record with `maxCount: 1e300` panicked the RCF scorer.
#[test]
fn absurd_numbers_in_every_detectors_input_are_left_out_by_name_and_every_incident_still_found() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(simulated(), dir.path());
    // In the middle of day two, in a delivery of its own.
    let records = hostile_records("2026-01-06T12:03:00Z");
    std::fs::write(
        dir.path().join("hostile.json"),
        json!({ "Records": records }).to_string(),
    )
    .unwrap();
    let o = trailwatch(&["detect", dir.path().to_str().unwrap(), "--format", "ndjson"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for left_out in [
        "hostile.json: record hostile-RunInstances-",
        "is not a plausible count or size",
        "left out of ec2-run-instances",
        "1e300 is not a plausible",
        "NaN is not a plausible",
        "-5 is not a plausible",
    ] {
        assert!(err.contains(left_out), "{left_out} not in {err}");
    }
    assert!(
        err.contains("invalid record") && err.contains("errorCode"),
        "the wrong type is named: {err}"
    );
    crate::detect_simulated::check(&ndjson(&o));
}

/// Two records dated 1970 and 2026 took 96 s (12 million intervals scored);
/// one dated 9999 did not finish.
#[test]
fn records_dated_far_from_the_rest_are_named_and_cost_nothing() {
    let alone = trailwatch(&["detect", invictus().to_str().unwrap(), "--stats"]);
    let alone_intervals = intervals_scored(&stderr(&alone));
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&shared_cloudtrail(), dir.path());
    // One delivery of invictus with a record from 9999 and one from 1970 in it.
    let some =
        invictus().join("218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&some).unwrap()).unwrap();
    let mut future = doc["Records"][0].clone();
    future["eventTime"] = json!("9999-12-31T23:59:59Z");
    future["eventID"] = json!("from-the-future");
    let mut past = doc["Records"][0].clone();
    past["eventTime"] = json!("1970-01-01T00:00:00Z");
    past["eventID"] = json!("from-1970");
    // And one from 2019: plausible alone, but four years from its delivery.
    let mut stray = doc["Records"][0].clone();
    stray["eventTime"] = json!("2019-03-01T00:00:00Z");
    stray["eventID"] = json!("stray-2019");
    let records = doc["Records"].as_array_mut().unwrap();
    records.extend([future, past, stray]);
    let odd = dir.path().join("odd.json");
    std::fs::write(&odd, doc.to_string()).unwrap();
    let o = trailwatch(&["detect", dir.path().to_str().unwrap(), "--stats"]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(2), "{err}");
    for named in [
        "odd.json: record from-the-future",
        "9999-12-31T23:59:59+00:00, in the future",
        "odd.json: record from-1970",
        "before CloudTrail began (2013-11-13)",
        "odd.json: record stray-2019",
        "far before the rest of its input",
    ] {
        assert!(err.contains(named), "{named} not in {err}");
    }
    // Standard input cannot be read twice: the plainly impossible dates are
    // still left out, the stray one is kept and said so.
    let o = trailwatch_with_stdin(&["detect", "-"], Some(&std::fs::read(&odd).unwrap()));
    let piped = stderr(&o);
    assert!(
        piped.contains("record from-1970") && piped.contains("record from-the-future"),
        "{piped}"
    );
    assert!(
        piped.contains(
            "<stdin>: some records lie far outside the times of the rest; they were kept"
        ),
        "{piped}"
    );
    // invictus and stratus lie a year apart (52,560 ten-minute intervals):
    // each of the 8 series is fed at most MAX_EMPTY_RUN zeros across the gap.
    let intervals = intervals_scored(&err);
    let bound = 8 * (trailwatch::engine::rcf_state::MAX_EMPTY_RUN as u64 + 2 * alone_intervals);
    assert!(
        intervals <= bound,
        "{intervals} intervals scored (at most {bound}); {alone_intervals} for invictus alone: {err}"
    );
}

#[test]
fn a_detector_file_with_an_error_fails_the_run_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("errors.toml"),
        "[filter]\nerrors = \"failed\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.toml"), "shingle_size = 0\n").unwrap();
    let o = trailwatch(&[
        "detect",
        invictus().to_str().unwrap(),
        "--detectors",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("bad.toml: 1 problem(s):") && err.contains("shingle_size: 0 is out of range"),
        "{err}"
    );
    assert!(
        err.contains("leave out --detectors to use the built-in set"),
        "{err}"
    );
    assert_eq!(stdout(&o), "");
}

#[test]
fn the_built_in_detectors_work_from_any_folder_and_list_says_which_set() {
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args(args)
            .current_dir(elsewhere.path())
            .output()
            .unwrap()
    };
    let o = run(&[
        "detect",
        simulated().to_str().unwrap(),
        "--format",
        "ndjson",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    crate::detect_simulated::check(&ndjson(&o));
    let o = run(&["detectors", "list"]);
    assert!(
        stderr(&o).starts_with("The 7 built-in detectors:"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("ec2-run-instances"));
    let mine = tempfile::tempdir().unwrap();
    std::fs::write(mine.path().join("only.toml"), "").unwrap();
    let path = mine.path().to_str().unwrap();
    let o = run(&["detectors", "list", "--detectors", path]);
    assert!(
        stderr(&o).starts_with(&format!("1 detector(s) from {path}:")),
        "{}",
        stderr(&o)
    );
    // validate takes the folder either way, as list and detect do.
    for args in [
        vec!["detectors", "validate", path],
        vec!["detectors", "validate", "--detectors", path],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(
            stdout(&o).trim(),
            format!("1 detector(s) from {path} are valid, and the 44 built-in rules.")
        );
    }
}

#[test]
fn flag_misuse_is_refused_and_every_problem_said_at_once() {
    let o = trailwatch(&["detect", "x", "--scores", "out.csv"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--series"), "{}", stderr(&o));
    let o = trailwatch(&["detect", "x", "--poll", "5s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--follow"), "{}", stderr(&o));
    let o = trailwatch(&[
        "detect",
        "-",
        "--max-entities",
        "0",
        "--new-event-grade",
        "2",
        "--since",
        "2026-01-02",
        "--until",
        "2026-01-01",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("3 problems with the flags:"), "{err}");
    for p in ["--max-entities", "--new-event-grade", "--since"] {
        assert!(err.contains(&format!("  - {p}")), "{p} not in {err}");
    }
}

#[test]
fn strict_stops_with_one_message() {
    let stratus = shared_cloudtrail().join("stratus-detonations");
    let o = trailwatch(&["detect", stratus.to_str().unwrap(), "--strict"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ")
            && err.contains("aws.execution.ec2-user-data.json: byte offset 3327")
            && err.contains("--strict stops at the first problem"),
        "{err}"
    );
    assert!(!err.contains("read anyway"), "{err}");
}

/// `trailwatch detect … | true`: the reader is gone before the first
/// write. No error, no panic, and the status is the run's (its findings
/// make it 1), as if the output had been read whole.
#[test]
fn a_closed_pipe_is_a_clean_exit() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args([
            "detect",
            simulated().to_str().unwrap(),
            "--format",
            "ndjson",
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("error") && !err.contains("panicked"), "{err}");
}

/// A gzip member of `size` zero bytes, written without holding them.
fn gzip_bomb(path: &Path, size: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut e = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..size >> 20 {
        e.write_all(&zeros).unwrap();
    }
    e.finish().unwrap();
}

/// The peak memory figure of `--stats`, in MiB.
fn peak_mib(err: &str) -> u64 {
    let line = err.lines().find(|l| l.starts_with("stats: ")).unwrap();
    let tail = line.split("peak memory ").nth(1).unwrap();
    tail.trim_end_matches(" MiB").parse().unwrap()
}

/// The 1 GiB cap on a decompressed document held for one file at a time;
/// two gzip bombs read on two cores could take twice that.
#[test]
fn gzip_bombs_on_both_cores_are_refused_with_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb-1.json.gz");
    gzip_bomb(&bomb, 1536 << 20);
    std::fs::copy(&bomb, dir.path().join("bomb-2.json.gz")).unwrap();
    let some =
        invictus().join("218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json");
    std::fs::copy(&some, dir.path().join("good.json")).unwrap();
    let o = trailwatch(&["detect", dir.path().to_str().unwrap(), "--stats"]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(2), "the good delivery is read: {err}");
    for name in ["bomb-1.json.gz", "bomb-2.json.gz"] {
        let line = err
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not named: {err}"));
        assert!(
            line.contains("bytes once decompressed") || line.contains("held in memory at once"),
            "{line}"
        );
    }
    let peak = peak_mib(&err);
    assert!(
        peak < 1024 + 2 * 64 + 256,
        "peak memory {peak} MiB: the cap holds across both cores"
    );
}
