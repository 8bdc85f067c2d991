//! `trailwatch detectors list|validate` and the shipped detector files.

use crate::util::*;
use trailwatch::detector::{load_dir, ValueSpec};

#[test]
fn the_shipped_detectors_are_valid_and_cover_the_required_cases() {
    let (detectors, errors) = load_dir(&root().join("detectors")).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let names: Vec<&str> = detectors.iter().map(|d| d.name.as_str()).collect();
    for required in [
        "ec2-run-instances",
        "ebs-create-volume",
        "lambda-invoke",
        "api-errors",
        "console-login-failures",
        "iam-changes",
        "s3-get-object",
    ] {
        assert!(names.contains(&required), "{required} is not shipped");
    }
    let get = |n: &str| detectors.iter().find(|d| d.name == n).unwrap();
    assert!(
        matches!(&get("ec2-run-instances").value, ValueSpec::Sum(f) if f.as_str() == "requestParameters.instancesSet.items.maxCount")
    );
    assert!(get("lambda-invoke").is_high_cardinality());
    assert!(get("api-errors").is_high_cardinality());

    let o = trailwatch(&["detectors", "validate"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        "The 7 built-in detectors are valid, and the 44 built-in rules."
    );
    let o = trailwatch(&["detectors", "validate", "detectors"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        "7 detector(s) from detectors are valid, and 44 rule(s) from detectors/rules."
    );
    let o = trailwatch(&["detectors", "list"]);
    assert!(
        stdout(&o).contains("cloudtrail-stop-logging")
            && stdout(&o).contains("critical  CloudTrail logging stopped"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(
            "sum of requestParameters.instancesSet.items.maxCount of RunInstances, every 10 min"
        ),
        "{}",
        stdout(&o)
    );
}

#[test]
fn validate_reports_every_problem_in_every_file_by_name_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.toml"),
        "[filter]\nevent_names = [\"RunInstances\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("typo.toml"),
        "[filter]\nevent_name = [\"RunInstances\"]\n[value]\naggregation = \"avg\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.toml"), "name = \n").unwrap();
    std::fs::write(dir.path().join("twin.toml"), "name = \"good\"\n").unwrap();
    let o = trailwatch(&["detectors", "validate", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("typo.toml: 2 problem(s):"), "{err}");
    assert!(err.contains("filter.event_name: unknown key"), "{err}");
    assert!(
        err.contains("value.aggregation: \"avg\" is not one of"),
        "{err}"
    );
    assert!(err.contains("broken.toml: not valid TOML"), "{err}");
    assert!(
        err.contains("twin.toml: detector name \"good\" is also used by"),
        "{err}"
    );
    assert!(err.contains("3 of 4 detector file(s)"), "{err}");
}

/// docs/detector-files.md lists every shipped rule with its severity, habitual severity
/// and ATT&CK techniques, as the rule file says: the table cannot go stale.
#[test]
fn the_docs_list_every_rule_with_its_attack_technique() {
    let readme =
        std::fs::read_to_string(crate::util::root().join("docs/detector-files.md")).unwrap();
    let rules = trailwatch::detector::shipped_rules();
    assert!(rules.len() >= 40, "{} rules", rules.len());
    for r in &rules {
        let row = format!(
            "| `{}` | {} | {} | {} | {} |",
            r.name,
            r.description,
            r.severity.name(),
            r.habitual.map_or("-", |s| s.name()),
            r.attack.join(",")
        );
        assert!(
            readme.contains(&row),
            "docs/detector-files.md lacks the row {row}"
        );
    }
    let rows = readme
        .lines()
        .filter(|l| l.starts_with("| `") && l.ends_with(" |"))
        .count();
    assert!(rows >= rules.len());
}
