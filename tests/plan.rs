//! `trailwatch plan`: every option family renders a template that cfn-lint
//! reports nothing on and checkov fails nothing on; bad options are refused
//! before anything is written.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn plan(args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    // The Lambda package is tested once, below; the template alone here.
    let mut all = vec![
        "plan",
        "--out",
        dir.path().to_str().unwrap(),
        "--no-package",
    ];
    all.extend_from_slice(args);
    let o = trailwatch(&all);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stack = dir.path().join("stack.json");
    (dir, stack)
}

fn lint(stack: &Path) {
    let o = Command::new(tool("cfn-lint")).arg(stack).output().unwrap();
    assert!(
        o.status.success() && o.stdout.is_empty(),
        "cfn-lint on {}:\n{}{}",
        stack.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(tool("checkov"))
        .args([
            "-f",
            stack.to_str().unwrap(),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--quiet",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov output ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    let summary = &report["summary"];
    assert_eq!(
        summary["failed"],
        0,
        "checkov failed checks on {}: {:#}",
        stack.display(),
        report["results"]["failed_checks"]
    );
    // It did look: the leanest stack (an existing trail bucket, no domain)
    // has 20 resources and passes 39 checks.
    assert!(summary["passed"].as_u64().unwrap() > 30, "{summary}");
    // Each skip carries a written reason in the template.
    for skipped in report["results"]["skipped_checks"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let reason = skipped["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("");
        assert!(reason.len() > 20, "skip without a reason: {skipped}");
    }
}

/// An existing domain that the stack's bootstrap configures, as its role.
const EXISTING_DOMAIN_WITH_BOOTSTRAP: &[&str] = &[
    "--existing-domain-endpoint",
    "https://vpc-logs-abc.eu-west-1.es.amazonaws.com",
    "--existing-domain-writer-role-arn",
    "arn:aws:iam::123456789012:role/opensearch-writer",
    "--existing-domain-reader-role-arn",
    "arn:aws:iam::123456789012:role/opensearch-reader",
    "--existing-domain-admin-role-arn",
    "arn:aws:iam::123456789012:role/opensearch-admin",
];

/// The rendered template, whole, for a new domain and for an existing one
/// configured from inside the stack: every change to what a stack would
/// create shows in review as a change of these files.
#[test]
fn plan_renders_the_stack_as_the_golden_files_say() {
    let families: [(&str, &[&str]); 6] = [
        ("default", &[]),
        (
            "engine-shards",
            &["--engine-shards", "2", "--no-opensearch"],
        ),
        ("existing-domain-bootstrap", EXISTING_DOMAIN_WITH_BOOTSTRAP),
        ("ingest-s3", &["--ingest", "s3"]),
        ("no-opensearch", &["--no-opensearch"]),
        (
            "trail-bucket",
            &[
                "--trail-bucket",
                "aws-controltower-logs-123456789012-eu-west-1",
            ],
        ),
    ];
    let mut problems = Vec::new();
    for (name, args) in families {
        let (_dir, stack) = plan(args);
        let got = std::fs::read_to_string(&stack).unwrap();
        let golden = crate::util::root().join(format!("tests/data/stack/{name}.json"));
        problems.extend(crate::util::golden::check(
            &golden,
            &format!("stack/{name}.json"),
            &got,
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_option_family_passes_cfn_lint_and_checkov() {
    let families: [&[&str]; 12] = [
        &[],
        &["--engine-shards", "2", "--no-opensearch"],
        &["--engine-shards", "4", "--ingest", "s3"],
        &[
            "--existing-domain-endpoint",
            "https://search-logs-abc.eu-west-1.es.amazonaws.com",
            "--existing-domain-writer-role-arn",
            "arn:aws:iam::123456789012:role/opensearch-writer",
            "--existing-domain-reader-role-arn",
            "arn:aws:iam::123456789012:role/opensearch-reader",
        ],
        &[
            "--no-lambda-trail",
            "--alert-email",
            "ops@example.com",
            "--prefix",
            "acme-trailwatch",
            "--log-retention-days",
            "365",
        ],
        &[
            "--vpc-subnet-ids",
            "subnet-0a1b2c3d,subnet-0a1b2c3e,subnet-0a1b2c3f",
            "--vpc-security-group-ids",
            "sg-0a1b2c3d",
            "--instance-count",
            "3",
        ],
        &[
            "--preset",
            "prod",
            "--s3-data-events",
            "--organization-trail",
            "--org-accounts",
            "444455556666",
        ],
        &["--ingest", "s3", "--alert-email", "ops@example.com"],
        &[
            "--no-opensearch",
            "--organization-trail",
            "--s3-data-events",
        ],
        &[
            "--ingest",
            "s3",
            "--existing-domain-endpoint",
            "https://search-logs-abc.eu-west-1.es.amazonaws.com",
            "--existing-domain-writer-role-arn",
            "arn:aws:iam::123456789012:role/opensearch-writer",
            "--existing-domain-reader-role-arn",
            "arn:aws:iam::123456789012:role/opensearch-reader",
        ],
        &[
            "--trail-bucket",
            "aws-controltower-logs-123456789012-eu-west-1",
        ],
        &[
            "--trail-bucket",
            "org-trail-logs",
            "--no-opensearch",
            "--alert-email",
            "ops@example.com",
        ],
    ];
    // An existing domain in a VPC, configured from inside the stack.
    let in_a_vpc = [
        EXISTING_DOMAIN_WITH_BOOTSTRAP,
        &[
            "--vpc-subnet-ids",
            "subnet-0a1b2c3d,subnet-0a1b2c3e",
            "--vpc-security-group-ids",
            "sg-0a1b2c3d",
        ],
    ]
    .concat();
    for args in families.into_iter().chain([&in_a_vpc[..]]) {
        let (_dir, stack) = plan(args);
        lint(&stack);
    }
}

#[test]
fn bad_options_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = trailwatch(&[
        "plan",
        "--out",
        out.to_str().unwrap(),
        "--prefix",
        "9lives",
        "--existing-domain-endpoint",
        "https://x.es.amazonaws.com",
        "--vpc-security-group-ids",
        "sg-0a1b2c3d",
        "--log-retention-days",
        "10",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    for flag in [
        "--prefix \"9lives\"",
        "--existing-domain-endpoint needs --existing-domain-writer-role-arn",
        "--vpc-security-group-ids needs --vpc-subnet-ids",
        "--log-retention-days 10",
    ] {
        assert!(err.contains(flag), "{flag} not named: {err}");
    }
    assert!(!out.exists(), "nothing written");
}

#[test]
fn a_config_file_gives_defaults_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trailwatch.toml");
    std::fs::write(
        &config,
        "prefix = \"from-file\"\ninstance-count = 1\nalert-email = \"sec@example.com\"\n",
    )
    .unwrap();
    let (_out, stack) = plan(&[
        "--config",
        config.to_str().unwrap(),
        "--prefix",
        "from-flag",
    ]);
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stack).unwrap()).unwrap();
    let r = &t["Resources"];
    assert_eq!(r["Domain"]["Properties"]["DomainName"], "from-flag");
    assert_eq!(
        r["Domain"]["Properties"]["ClusterConfig"]["InstanceCount"],
        1
    );
    assert_eq!(
        r["Domain"]["Properties"]["ClusterConfig"]["ZoneAwarenessEnabled"],
        false
    );
    assert_eq!(
        r["NotificationEmail"]["Properties"]["Endpoint"],
        "sec@example.com"
    );
    std::fs::write(&config, "colour = \"red\"\n").unwrap();
    let o = trailwatch(&[
        "plan",
        "--out",
        dir.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown field `colour`"),
        "{}",
        stderr(&o)
    );
}

/// The Cognito users URL's description named `trailwatch users add`, which
/// does not exist.
#[test]
fn every_command_an_output_names_exists() {
    use clap::CommandFactory;
    let (_dir, stack) = plan(&[]);
    let template: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stack).unwrap()).unwrap();
    let cli = trailwatch::cli::Cli::command();
    for (name, output) in template["Outputs"].as_object().unwrap() {
        let text = output["Description"].as_str().unwrap_or("");
        for named in text.split("trailwatch ").skip(1) {
            let words: Vec<&str> = named
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                .take(2)
                .collect();
            let sub = cli.find_subcommand(words[0]).unwrap_or_else(|| {
                panic!("{name} names `trailwatch {}`: no such command", words[0])
            });
            if sub.has_subcommands() {
                assert!(
                    sub.find_subcommand(words[1]).is_some(),
                    "{name} names `trailwatch {} {}`: no such command",
                    words[0],
                    words[1]
                );
            }
        }
    }
}

#[test]
fn plan_says_what_each_preset_costs_a_month() {
    let dir = tempfile::tempdir().unwrap();
    let o = trailwatch(&[
        "plan",
        "--out",
        dir.path().to_str().unwrap(),
        "--preset",
        "prod",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let dev = err
        .lines()
        .find(|l| l.starts_with("--preset dev:"))
        .unwrap_or_else(|| panic!("{err}"));
    let prod = err
        .lines()
        .find(|l| l.starts_with("--preset prod (this plan):"))
        .unwrap_or_else(|| panic!("{err}"));
    let dollars = |l: &str| -> f64 {
        l.split("about $")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap()
    };
    assert!(dollars(prod) > dollars(dev), "{err}");
    assert!(prod.contains("3 × m6g.large.search (master)"), "{prod}");
    assert!(err.contains("on-demand list prices of 2026-"), "{err}");
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("stack.json")).unwrap())
            .unwrap();
    let domain = &t["Resources"]["Domain"]["Properties"];
    assert_eq!(
        domain["ClusterConfig"]["ZoneAwarenessConfig"]["AvailabilityZoneCount"],
        3
    );
    assert_eq!(domain["ClusterConfig"]["DedicatedMasterCount"], 3);
    assert_eq!(
        domain["SoftwareUpdateOptions"]["AutoSoftwareUpdateEnabled"],
        true
    );
}

/// The real plugin graded nothing on sparse series with ZERO imputation
/// (recording 53): plan says so for a detector file that asks for it.
#[test]
fn plan_warns_when_a_sparse_series_would_blind_the_plugin() {
    let detectors = tempfile::tempdir().unwrap();
    std::fs::write(
        detectors.path().join("gpu-launches.toml"),
        "description = \"GPU launches\"\nimputation = \"zero\"\n[filter]\nevent_names = [\"RunInstances\"]\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = trailwatch(&[
        "plan",
        "--out",
        out.path().to_str().unwrap(),
        "--detectors",
        detectors.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("gpu-launches.toml: the series looks sparse (it counts RunInstances calls"),
        "{err}"
    );
    // The shipped detectors draw no such warning.
    let o = trailwatch(&["plan", "--out", out.path().to_str().unwrap()]);
    assert!(!stderr(&o).contains("looks sparse"), "{}", stderr(&o));
}

/// `plan --events-per-day` prices each component a month, the log group
/// path and the bucket path side by side, in text and JSON alike.
#[test]
fn plan_estimates_what_the_stack_costs_a_month_either_way() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = trailwatch(&[
        "plan",
        "--out",
        out,
        "--events-per-day",
        "1000000",
        "--data-events-per-day",
        "100000",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let estimates = json["estimates"].as_array().unwrap();
    assert_eq!(estimates.len(), 2);
    let (cwl, s3) = (&estimates[0], &estimates[1]);
    assert_eq!(
        (&cwl["ingest"], &s3["ingest"]),
        (&"cwl".into(), &"s3".into())
    );
    let usd = |e: &serde_json::Value, c: &str| {
        e["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["component"] == c)
            .and_then(|l| l["usd"].as_f64())
    };
    // A million events of 1,270 bytes a day, 30.4 days, $0.50 a GB.
    let ingest = usd(cwl, "CloudWatch Logs ingestion").unwrap();
    assert!((ingest - 19.31).abs() < 0.01, "{ingest}");
    assert_eq!(usd(s3, "CloudWatch Logs ingestion"), None);
    // 100,000 data events a day at $0.10 per 100,000.
    let trail = usd(s3, "CloudTrail data events").unwrap();
    assert!((trail - 3.04).abs() < 0.01, "{trail}");
    for e in estimates {
        let sum: f64 = e["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["usd"].as_f64())
            .sum();
        assert!((sum - e["total"].as_f64().unwrap()).abs() < 1e-6, "{e}");
    }
    assert!(s3["total"].as_f64() < cwl["total"].as_f64());
    assert_eq!(json["prices"]["region"], "us-east-1");
    assert!(json["assumptions"].as_array().unwrap().len() >= 4);

    let o = trailwatch(&["plan", "--out", out, "--events-per-day", "1000000"]);
    let text = stdout(&o);
    assert!(
        text.contains("--ingest cwl") && text.contains("--ingest s3"),
        "{text}"
    );
    assert!(text.contains("--ingest s3 saves $"), "{text}");
    assert!(text.contains("Assumptions:"), "{text}");

    let o = trailwatch(&[
        "plan",
        "--out",
        out,
        "--events-per-day",
        "10",
        "--data-events-per-day",
        "20",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--data-events-per-day 20 is more than"),
        "{}",
        stderr(&o)
    );
}

/// `plan --out` writes what a pipeline deploys, as `sam package` output is:
/// the template, the Lambda package it points at (this binary as
/// `bootstrap`) and the parameters naming it; `--no-package` only the
/// template.
#[test]
fn plan_writes_the_lambda_package_and_the_parameters_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = trailwatch(&["plan", "--out", out, "--code-bucket", "acme-code"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let parameters: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("parameters.json")).unwrap())
            .unwrap();
    let value = |name: &str| {
        parameters
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["ParameterKey"] == name)
            .map(|p| p["ParameterValue"].as_str().unwrap().to_owned())
    };
    assert_eq!(value("LambdaCodeBucket").as_deref(), Some("acme-code"));
    let key = value("ForwarderCodeKey").expect("the forwarder's code key");
    assert!(
        key.starts_with("lambda/trailwatch-") && key.ends_with(".zip"),
        "{key}"
    );
    // Every code key of the template is that one package, and it is there.
    let stack: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("stack.json")).unwrap())
            .unwrap();
    for name in stack["Parameters"].as_object().unwrap().keys() {
        if name.ends_with("CodeKey") {
            assert_eq!(value(name).as_deref(), Some(key.as_str()), "{name}");
        }
    }
    let zip = std::fs::read(dir.path().join(&key)).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let bootstrap = archive.by_name("bootstrap").unwrap();
    assert_eq!(
        bootstrap.size(),
        std::fs::metadata(env!("CARGO_BIN_EXE_trailwatch"))
            .unwrap()
            .len()
    );
    drop(bootstrap);
    assert!(stderr(&o).contains("upload the zip to acme-code under the key lambda/trailwatch-"));

    // Without --code-bucket the pipeline gives the bucket; --no-package
    // writes neither.
    let bare = tempfile::tempdir().unwrap();
    let o = trailwatch(&["plan", "--out", bare.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(bare.path().join("parameters.json")).unwrap();
    assert!(
        !text.contains("LambdaCodeBucket") && text.contains("CodeKey"),
        "{text}"
    );
    assert!(
        stderr(&o).contains("LambdaCodeBucket=<that bucket>"),
        "{}",
        stderr(&o)
    );
    let none = tempfile::tempdir().unwrap();
    let o = trailwatch(&[
        "plan",
        "--out",
        none.path().to_str().unwrap(),
        "--no-package",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!none.path().join("parameters.json").exists());
    assert!(!none.path().join("lambda").exists());
}
