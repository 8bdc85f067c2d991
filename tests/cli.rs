//! Flags, exit status, input forms.

use crate::util::*;

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

/// `outputs --help` and `destroy --help` showed their default twice, the
/// Lambdas' `--region` said "The region to deploy in", and plan, deploy,
/// lambda and detectors had no examples.
#[test]
fn help_shows_each_default_once_and_examples_everywhere() {
    for cmd in [&["outputs"][..], &["destroy"]] {
        let out = stdout(&trailwatch(&[cmd, &["--help"]].concat()));
        assert_eq!(out.matches("[default: trailwatch]").count(), 1, "{out}");
    }
    for cmd in [&["lambda", "forward"][..], &["lambda", "enrich"]] {
        let out = stdout(&trailwatch(&[cmd, &["--help"]].concat()));
        assert!(!out.contains("deploy in"), "{out}");
        assert!(out.contains("tests/data/lambda/"), "{out}");
    }
    for cmd in [
        &["plan"][..],
        &["deploy"],
        &["lambda"],
        &["detectors"],
        &["detectors", "list"],
        &["detectors", "validate"],
        &["outputs"],
        &["destroy"],
        &["detect"],
    ] {
        let out = stdout(&trailwatch(&[cmd, &["--help"]].concat()));
        assert!(
            out.contains("Example"),
            "no example in {cmd:?} --help: {out}"
        );
        assert!(out.contains("trailwatch "), "{out}");
    }
    // The sample events the help names exist and are what they say.
    for sample in ["forward-event.json", "enrich-alert.json"] {
        let text = std::fs::read_to_string(root().join("tests/data/lambda").join(sample)).unwrap();
        let _: serde_json::Value = serde_json::from_str(&text).unwrap();
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
    // --quiet: nothing but what was asked for; the problem still counts.
    let o = trailwatch_with_stdin(
        &["detect", "-", "--quiet", "--format", "ndjson"],
        Some(text.as_bytes()),
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), "");
    let o = trailwatch_with_stdin(
        &["detect", "-", "-q", "--stats", "--format", "ndjson"],
        Some(text.as_bytes()),
    );
    let err = stderr(&o);
    assert!(!err.contains("invalid JSON"), "{err}");
    assert!(err.contains("0 skipped, 1 problems"), "{err}");
    let o = trailwatch_with_stdin(&["detect", "-", "-q", "--strict"], Some(text.as_bytes()));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("line 41: invalid JSON"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn cloudwatch_logs_payloads_and_gzip_are_read_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let messages: Vec<String> = (0..3)
        .map(|i| event(i, "RunInstances").to_string())
        .collect();
    std::fs::write(
        dir.path().join("payload.json"),
        awslogs_event(&messages).to_string(),
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

#[test]
fn a_plain_series_is_scored_row_for_row_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let start: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut rows: Vec<(String, f64)> = (0..400)
        .map(|i| {
            let t = start + chrono::Duration::hours(i);
            let v = 100.0
                + 20.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin()
                + ((i * 7) % 5) as f64;
            (
                t.format("%Y-%m-%d %H:%M:%S").to_string(),
                if i == 350 {
                    v + 400.0
                } else {
                    (v * 100.0).round() / 100.0
                },
            )
        })
        .collect();
    // Out of order on purpose: scores follow the input, scoring follows time.
    rows.swap(10, 20);
    let mut csv = String::from("timestamp,value\n");
    for (t, v) in &rows {
        csv.push_str(&format!("{t},{v}\n"));
    }
    // `--series Twitter_volume_UPS.csv` failed: the file name was checked as
    // a detector's name. Any file name works, and names the series.
    let input = dir.path().join("Billing export v2.1 (EU).csv");
    let out = dir.path().join("scores.csv");
    std::fs::write(&input, csv).unwrap();
    let o = trailwatch(&[
        "detect",
        "--series",
        input.to_str().unwrap(),
        "--scores",
        out.to_str().unwrap(),
        "--format",
        "ndjson",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let found = ndjson(&o);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["detector"], "Billing export v2.1 (EU)");
    assert_eq!(found[0]["start"], "2026-01-15T14:00:00Z");

    let scores = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = scores.lines().collect();
    assert_eq!(
        lines[0],
        "timestamp,value,anomaly_score,anomaly_grade,confidence"
    );
    assert_eq!(lines.len(), rows.len() + 1, "one line per input row");
    for (line, (t, v)) in lines[1..].iter().zip(&rows) {
        let cols: Vec<&str> = line.split(',').collect();
        assert_eq!(cols.len(), 5, "{line}");
        assert_eq!(cols[0], t);
        assert_eq!(cols[1].parse::<f64>().unwrap(), *v);
        for c in &cols[2..] {
            let x: f64 = c.parse().unwrap();
            assert!(x >= 0.0, "{line}");
        }
    }
    let spike: Vec<&str> = lines[351].split(',').collect();
    assert_eq!(spike[0], "2026-01-15 14:00:00");
    assert!(
        spike[3].parse::<f64>().unwrap() > 0.7 && spike[4].parse::<f64>().unwrap() > 0.7,
        "{}",
        lines[351]
    );

    let o = trailwatch(&["detect", "--series", input.to_str().unwrap(), "tests"]);
    assert_eq!(o.status.code(), Some(2), "--series takes no PATH");
    let o = trailwatch(&["detect", "tests", "--scores", "x.csv"]);
    assert_eq!(o.status.code(), Some(2), "--scores needs --series");
}

/// `deploy` with no credentials showed the SDK's instance-metadata error; a
/// missing region came only after the package was built.
#[test]
fn deploy_without_credentials_or_region_says_so_in_one_line_before_any_call() {
    let nothing = [
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", ""),
    ];
    // An endpoint nothing listens on: any AWS call would fail differently.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    for cmd in ["deploy", "outputs", "destroy"] {
        let mut args = vec![cmd, "--endpoint-url", &nowhere];
        if cmd != "outputs" {
            args.push("--yes");
        }
        let o = run_trailwatch(&args, None, &nothing);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
        assert!(
            err.starts_with("error: no AWS credentials found: set AWS_ACCESS_KEY_ID")
                && err.contains("--profile"),
            "{cmd}: {err}"
        );
    }
    let no_region = [
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", ""),
        ("AWS_DEFAULT_REGION", ""),
    ];
    let o = run_trailwatch(
        &["deploy", "--endpoint-url", &nowhere, "--yes"],
        None,
        &no_region,
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "error: no AWS region: pass --region, set AWS_REGION, or give the profile a region"
    );
}

/// `simulate --attacks` writes the catalogue's techniques by that way in
/// over the last two days, described in attacks.json, and `detect` pages
/// each.
#[test]
fn simulate_attacks_writes_every_technique_and_detect_pages_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = trailwatch(&[
        "simulate",
        "--out",
        out,
        "--days",
        "4",
        "--start",
        "2026-01-05",
        "--no-incidents",
        "--attacks",
        "never-seen-principal",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let attacks: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("attacks.json")).unwrap())
            .unwrap();
    assert_eq!(
        attacks.len(),
        trailwatch::simulate::technique::CATALOGUE.len()
    );
    assert!(attacks.iter().all(
        |a| a["way_in"] == "never-seen-principal" && a["start"].as_str() >= Some("2026-01-07")
    ));
    let o = trailwatch(&["detect", out, "--since", "2026-01-07", "--format", "ndjson"]);
    let found = ndjson(&o);
    for a in &attacks {
        let who = a["principal"].as_str().unwrap();
        let user = who.rsplit('/').next().unwrap();
        assert!(
            found
                .iter()
                .any(|f| f["page"] == true && f["summary"].as_str().unwrap_or("").contains(user)),
            "{} by {who} did not page",
            a["technique"]
        );
    }
    let o = trailwatch(&["simulate", "--out", out, "--attacks", "phishing", "--force"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("stolen-keys"), "{}", stderr(&o));
}

/// Completions and man pages come from the same definitions as `--help`:
/// a flag added to `detect` is completed and documented with no more work.
#[test]
fn completions_and_man_pages_follow_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let o = trailwatch(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let script = stdout(&o);
    assert!(
        script.contains("--fail-on") && script.contains("detect"),
        "{script}"
    );
    let path = dir.path().join("trailwatch.bash");
    std::fs::write(&path, &script).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let o = trailwatch(&["completions", "zsh"]);
    assert!(
        stdout(&o).starts_with("#compdef trailwatch"),
        "{}",
        stdout(&o)
    );
    let o = trailwatch(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid value 'tcsh'"),
        "{}",
        stderr(&o)
    );

    let o = trailwatch(&["man"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(".TH trailwatch 1"), "{}", stdout(&o));
    let pages = dir.path().join("man1");
    let o = trailwatch(&["man", "--out", pages.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let detect = std::fs::read_to_string(pages.join("trailwatch-detect.1")).unwrap();
    assert!(detect.contains("fail\\-on"), "{detect}");
    assert!(pages.join("trailwatch-deploy.1").exists());
}

/// `make demo` runs the binary where cargo builds it, `CARGO_TARGET_DIR`
/// when it is set; `make install` puts it on the PATH.
#[test]
fn make_demo_runs_the_binary_cargo_built() {
    let dry = |env: &[(&str, &str)], target: &str| {
        let o = std::process::Command::new("make")
            .args(["-n", target])
            .current_dir(root())
            .env_remove("CARGO_TARGET_DIR")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let plain = dry(&[], "demo");
    assert!(
        plain.contains("target/release/trailwatch simulate"),
        "{plain}"
    );
    let elsewhere = dry(&[("CARGO_TARGET_DIR", "/tmp/elsewhere")], "demo");
    assert!(
        elsewhere.contains("/tmp/elsewhere/release/trailwatch simulate"),
        "{elsewhere}"
    );
    assert!(
        elsewhere.contains("/tmp/elsewhere/release/trailwatch detect"),
        "{elsewhere}"
    );
    assert!(!elsewhere.contains("--stats"), "{elsewhere}");
    let install = dry(&[], "install");
    assert!(
        install.contains("cargo install --locked --path ."),
        "{install}"
    );
}

/// `detect --help` groups its options under headings, in reading order,
/// and speaks of paging as the table shows it; `deploy` waits with
/// `--wait` as `opensearch apply` does (its old name still works).
#[test]
fn long_help_is_grouped_and_uses_the_same_words() {
    let help = stdout(&trailwatch(&["detect", "--help"]));
    let headings: Vec<&str> = help
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
        .collect();
    assert_eq!(
        headings,
        [
            "Arguments:",
            "Options:",
            "Input:",
            "AWS (s3:// inputs):",
            "OpenSearch input:",
            "Detection:",
            "Output:",
            "Following a folder:",
            "Examples:"
        ],
        "{help}"
    );
    assert!(help.contains("(marked \"(pages)\" in the table"), "{help}");
    let deploy = stdout(&trailwatch(&["deploy", "--help"]));
    assert!(deploy.contains("--wait <SECONDS>"), "{deploy}");
    assert!(!deploy.contains("--opensearch-wait <"), "{deploy}");
    // Metavars say what kind of value, alike everywhere: <ARN>, not the
    // flag's name again.
    assert!(
        deploy.contains("--existing-domain-writer-role-arn <ARN>"),
        "{deploy}"
    );
    assert!(deploy.contains("--vpc-subnet-ids <IDS>"), "{deploy}");
    // Basic auth is a flag wherever a cluster is reached (and still
    // OPENSEARCH_USER in the environment).
    for help in [&help, &deploy] {
        assert!(help.contains("--opensearch-user <USER>"), "{help}");
        assert!(help.contains("[env: OPENSEARCH_USER"), "{help}");
    }
    let o = trailwatch(&["deploy", "--opensearch-wait", "x"]);
    assert!(stderr(&o).contains("invalid value 'x'"), "{}", stderr(&o));
}

/// Every example in every command's help fits a 100-column terminal
/// without wrapping.
#[test]
fn help_examples_fit_without_wrapping() {
    let commands: &[&[&str]] = &[
        &["detect"],
        &["detectors"],
        &["detectors", "list"],
        &["detectors", "validate"],
        &["detectors", "status"],
        &["detectors", "backtest"],
        &["simulate"],
        &["eval"],
        &["plan"],
        &["deploy"],
        &["outputs"],
        &["destroy"],
        &["lambda"],
        &["lambda", "forward"],
        &["lambda", "enrich"],
        &["lambda", "engine"],
        &["opensearch", "apply"],
        &["opensearch", "delete"],
        &["users", "create"],
        &["users", "delete"],
        &["monitors", "list"],
        &["monitors", "test"],
        &["completions"],
        &["man"],
    ];
    for cmd in commands {
        let o = run_trailwatch(
            &[cmd, &["--help"][..]].concat(),
            None,
            &[("COLUMNS", "200")],
        );
        let help = stdout(&o);
        let examples = help
            .lines()
            .skip_while(|l| !l.starts_with("Example"))
            .skip(1)
            .take_while(|l| l.starts_with("  "));
        for line in examples {
            assert!(
                line.chars().count() <= 100,
                "{cmd:?}: {} columns: {line}",
                line.chars().count()
            );
        }
    }
}

/// `opensearch delete --help` says why it takes apply's flags: under a
/// heading of their own, with which of them decide what it deletes.
#[test]
fn delete_help_sets_apply_flags_apart_and_says_why() {
    let o = trailwatch(&["opensearch", "delete", "--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    let (own, apply) = help
        .split_once("What apply was given (delete finds what it made by these):")
        .expect("a heading for apply's flags");
    for flag in ["--opensearch-url", "--dry-run", "--yes", "--wait"] {
        assert!(own.contains(flag), "{flag} among delete's own: {help}");
    }
    for flag in [
        "--detectors",
        "--notify",
        "--alert-topic-arn",
        "--reader-role",
    ] {
        assert!(
            apply.contains(flag) && !own.contains(flag),
            "{flag}: {help}"
        );
    }
    let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("the names of the detectors and the ids of the channels come from them"),
        "{help}"
    );
}
