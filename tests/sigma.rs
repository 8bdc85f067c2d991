//! Sigma rules read as they are: SigmaHQ's CloudTrail catalogue (in
//! `../shared/data/sigma-cloudtrail`, never copied here) loads through the
//! rsigma crates, runs over real detonations as rules do, and a file that
//! cannot be read is named while the others run.

use crate::util::{invictus_with_history, shared_cloudtrail, stderr, stdout, trailwatch};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn catalogue() -> PathBuf {
    let p = shared_cloudtrail().join("../sigma-cloudtrail");
    assert!(p.is_dir(), "{} is missing", p.display());
    p
}

fn yml_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "yml")
        })
        .count()
}

#[test]
fn the_public_catalogue_loads_whole() {
    let dir = catalogue();
    let files = yml_files(&dir);
    assert_eq!(files, 57);
    let o = trailwatch(&["detectors", "validate", "--sigma", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("and {files} Sigma rule(s) from")),
        "{}",
        stdout(&o)
    );
    // Listed with their levels, beside the rule files.
    let o = trailwatch(&["detectors", "list", "--sigma", dir.to_str().unwrap()]);
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("aws_cloudtrail_disable_logging "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "));
    assert_eq!(
        line.as_deref(),
        Some("aws_cloudtrail_disable_logging low AWS CloudTrail Important Change"),
        "{}",
        stdout(&o)
    );
}

/// The findings `detect --kinds rule` makes of the real invictus
/// deliveries (with two days of history before them, so its principals'
/// habits are known) with `extra` flags, and what it says on stderr.
fn rule_findings(extra: &[&str]) -> (Vec<Value>, String) {
    let history = invictus_with_history();
    let mut args = vec![
        "detect",
        history.path().to_str().unwrap(),
        "--kinds",
        "rule",
        "--format",
        "ndjson",
    ];
    args.extend(extra);
    let o = trailwatch(&args);
    // Findings exit 1; anything else is a failure.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let findings = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (findings, stderr(&o).to_owned())
}

#[test]
fn sigma_rules_find_the_detonations_they_are_written_for() {
    let dir = catalogue();
    let (without, _) = rule_findings(&[]);
    let (with, _) = rule_findings(&["--sigma", dir.to_str().unwrap()]);
    let sigma: Vec<&Value> = with
        .iter()
        .filter(|f| {
            f["detector"]
                .as_str()
                .is_some_and(|d| d.starts_with("aws_"))
        })
        .collect();
    let names: BTreeSet<&str> = sigma
        .iter()
        .map(|f| f["detector"].as_str().unwrap())
        .collect();
    // The trail deleted and stopped by the detonations.
    assert!(
        names.contains("aws_cloudtrail_disable_logging"),
        "{names:?}"
    );
    // Every Sigma finding says which rule, with its title and techniques.
    let stop = sigma
        .iter()
        .find(|f| f["detector"] == "aws_cloudtrail_disable_logging")
        .unwrap();
    assert!(
        stop["summary"]
            .as_str()
            .unwrap()
            .starts_with("AWS CloudTrail Important Change: "),
        "{stop}"
    );
    assert!(
        stop["attack"].as_array().is_some_and(|a| !a.is_empty()),
        "{stop}"
    );
    // The rule files' findings are all still there.
    let count = |fs: &[Value], name: &str| fs.iter().filter(|f| f["detector"] == name).count();
    for f in &without {
        let name = f["detector"].as_str().unwrap();
        assert_eq!(count(&without, name), count(&with, name), "{name}");
    }
}

#[test]
fn a_sigma_file_that_cannot_be_read_is_named_and_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let from = catalogue().join("aws_cloudtrail_disable_logging.yml");
    std::fs::copy(&from, dir.path().join("disable_logging.yml")).unwrap();
    std::fs::write(dir.path().join("broken.yml"), "title: [unclosed\n").unwrap();
    std::fs::write(
        dir.path().join("windows.yml"),
        "title: w\nlogsource: {product: windows, category: process_creation}\ndetection:\n  s: {Image: x}\n  condition: s\n",
    )
    .unwrap();
    let (findings, err) = rule_findings(&["--sigma", dir.path().to_str().unwrap()]);
    assert!(
        err.contains("broken.yml") && err.contains("not a Sigma rule"),
        "{err}"
    );
    assert!(
        err.contains("windows.yml")
            && err.contains("trailwatch reads product: aws, service: cloudtrail"),
        "{err}"
    );
    assert!(
        findings.iter().any(|f| f["detector"] == "disable_logging"),
        "{err}"
    );
    // validate says so and fails.
    let o = trailwatch(&[
        "detectors",
        "validate",
        "--sigma",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 Sigma file(s) cannot be read"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_detector_folder_reads_its_sigma_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.toml"), "").unwrap();
    std::fs::create_dir(dir.path().join("sigma")).unwrap();
    std::fs::copy(
        catalogue().join("aws_cloudtrail_disable_logging.yml"),
        dir.path().join("sigma/stop.yml"),
    )
    .unwrap();
    let o = trailwatch(&[
        "detectors",
        "list",
        "--detectors",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("and 1 Sigma rule(s) from"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("stop "), "{}", stdout(&o));
}

/// `--follow` runs the same rules: a Sigma rule's finding comes out as
/// the deliveries are read.
#[test]
fn follow_runs_sigma_rules_too() {
    let history = invictus_with_history();
    let sigma = tempfile::tempdir().unwrap();
    std::fs::write(
        sigma.path().join("team-trail-stopped.yml"),
        "title: Trail stopped or deleted\nlogsource: {product: aws, service: cloudtrail}\n\
         detection:\n  s: {eventSource: cloudtrail.amazonaws.com, eventName: [StopLogging, DeleteTrail]}\n  \
         condition: s\nlevel: high\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let run = crate::util::spawn(&[
        "detect",
        history.path().to_str().unwrap(),
        "--follow",
        "--poll",
        "1s",
        "--stream-idle",
        "2s",
        "--state",
        state.path().join("state.json").to_str().unwrap(),
        "--format",
        "ndjson",
        "--sigma",
        sigma.path().to_str().unwrap(),
    ]);
    let mut out = Vec::new();
    let line = run.wait_for(false, 120, &mut out, |l| {
        l.contains("\"detector\":\"team-trail-stopped\"")
    });
    let finding: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(finding["kind"], "rule");
    assert!(
        finding["summary"]
            .as_str()
            .unwrap()
            .starts_with("Trail stopped or deleted: user/bert-jan@123837392027"),
        "{finding}"
    );
}

/// A Sigma correlation written beside the rule it counts, run over the
/// real detonations: the denied calls of one principal, many within ten
/// minutes, are one rate finding at the call that reached the count.
#[test]
fn a_correlation_counts_its_rule_over_real_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("denied.yml"),
        concat!(
            "title: Call denied\nname: call_denied\nlogsource:\n  product: aws\n  service: cloudtrail\n",
            "detection:\n  sel:\n    errorCode:\n      - AccessDenied\n      - Client.UnauthorizedOperation\n",
            "  condition: sel\nlevel: informational\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("denied_burst.yml"),
        concat!(
            "title: Denied calls in a burst\ncorrelation:\n  type: event_count\n",
            "  rules: [call_denied]\n  group-by: [userIdentity.arn]\n  timespan: 10m\n",
            "  condition: {gte: 10}\nlevel: high\ntags: [attack.discovery, attack.t1580]\n"
        ),
    )
    .unwrap();
    let (found, err) = rule_findings(&["--sigma", dir.path().to_str().unwrap()]);
    let bursts: Vec<&Value> = found
        .iter()
        .filter(|f| f["detector"] == "denied_burst")
        .collect();
    assert!(!bursts.is_empty(), "{err}");
    for b in &bursts {
        assert_eq!(b["actual"], 10.0, "{b}");
        // The rule's level, or its incident's when that is higher.
        assert!(
            b["severity"] == "high" || b["severity"] == "critical",
            "{b}"
        );
        assert!(
            b["summary"]
                .as_str()
                .unwrap()
                .starts_with("Denied calls in a burst: 10 matches of call_denied within 10 minutes for userIdentity.arn="),
            "{b}"
        );
    }
}
