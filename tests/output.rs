//! What `detect` prints for a person in a hurry and for the tools after it:
//! the table at a terminal's width, with colour only when asked for;
//! findings a responder can pivot on; OCSF a validator accepts.

use crate::util::{run_trailwatch, simulated, stderr, stdout, tool, trailwatch};

/// Runs `detect` over the shared simulation's last day with `args` and
/// `env`.
fn detect(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = simulated().to_str().unwrap().to_owned();
    let mut all = vec!["detect", dir.as_str(), "--since", "-1d", "--quiet"];
    all.extend_from_slice(args);
    run_trailwatch(&all, None, env)
}

const ESC: char = '\u{1b}';

/// At 100 columns every line fits, the headline says what happened and
/// what it costs, and the colour follows `--color`, NO_COLOR and
/// CLICOLOR_FORCE as anstream reads them.
#[test]
fn the_table_fits_100_columns_and_colours_only_when_asked() {
    let o = detect(&["--format", "table"], &[("COLUMNS", "100")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    for line in text.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(!text.contains(ESC), "no colour into a pipe:\n{text}");
    // Crypto-mining leads: what, cost and when on one line.
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("CRITICAL  GPU instances started by "),
        "{text}"
    );
    assert!(
        first.contains("  ~$") && first.contains("/h  2026-01-07 03:"),
        "{text}"
    );
    assert!(text.contains("\nNext: --report FILE.html"), "{text}");
    assert!(text.contains("--mute PRINCIPAL"), "{text}");

    // Narrower still: cut to 60, marked with an ellipsis.
    let o = detect(&["--format", "table"], &[("COLUMNS", "60")]);
    let narrow = stdout(&o);
    assert!(narrow.lines().all(|l| l.chars().count() <= 60), "{narrow}");
    assert!(narrow.contains('…'), "{narrow}");

    let coloured = stdout(&detect(&["--format", "table", "--color", "always"], &[]));
    assert!(coloured.starts_with(&format!("{ESC}[")), "{coloured}");
    let forced = stdout(&detect(&["--format", "table"], &[("CLICOLOR_FORCE", "1")]));
    assert!(forced.contains(ESC), "CLICOLOR_FORCE colours a pipe");
    let vetoed = stdout(&detect(
        &["--format", "table"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    ));
    assert!(!vetoed.contains(ESC), "NO_COLOR wins");
    let never = stdout(&detect(
        &["--format", "table", "--color", "never"],
        &[("CLICOLOR_FORCE", "1")],
    ));
    assert!(!never.contains(ESC));
    // Colour changes nothing else.
    let plain: String = coloured
        .replace(&format!("{ESC}[1m{ESC}[31m"), "")
        .replace(&format!("{ESC}[31m"), "");
    assert!(plain.contains("GPU instances started"), "{plain}");
}

/// Every finding carries its pivots as fields; the leaked key's finding
/// names the key the simulation signed its calls with.
#[test]
fn every_finding_carries_keys_addresses_accounts_and_event_ids() {
    let o = detect(&["--format", "ndjson"], &[]);
    let findings = crate::util::ndjson(&o);
    assert!(findings.len() > 5, "{}", stderr(&o));
    let records = crate::util::records_under(simulated());
    let ids: std::collections::HashSet<&str> = records
        .iter()
        .filter_map(|r| r["eventID"].as_str())
        .collect();
    for f in &findings {
        let p = &f["pivots"];
        for field in [
            "access_key_ids",
            "source_ips",
            "regions",
            "accounts",
            "event_ids",
        ] {
            assert!(p[field].is_array(), "{field}: {f:#}");
        }
        assert!(p["events"].as_u64().unwrap() > 0, "{f:#}");
        let events = p["event_ids"].as_array().unwrap();
        assert!(!events.is_empty() && events.len() <= 3, "{f:#}");
        for id in events {
            assert!(
                ids.contains(id.as_str().unwrap()),
                "an event ID of the data: {id}"
            );
        }
        assert!(!p["accounts"].as_array().unwrap().is_empty(), "{f:#}");
    }
    // The keys are the records' own.
    let keys: std::collections::HashSet<&str> = records
        .iter()
        .filter_map(|r| r["userIdentity"]["accessKeyId"].as_str())
        .collect();
    let with_keys: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| !f["pivots"]["access_key_ids"].as_array().unwrap().is_empty())
        .collect();
    assert!(
        with_keys.len() * 2 >= findings.len(),
        "most findings name a key"
    );
    for f in with_keys {
        for k in f["pivots"]["access_key_ids"].as_array().unwrap() {
            assert!(keys.contains(k.as_str().unwrap()), "{k}");
        }
    }
}

/// `--format ocsf` is one Detection Finding per incident, each valid
/// against OCSF 1.1.0's schema (class 2004 with the cloud profile) as the
/// `ocsf-json-schema` package ships it, checked by `jsonschema`.
#[test]
fn ocsf_findings_validate_against_the_ocsf_schema() {
    let o = detect(&["--format", "ocsf"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    let incidents = stdout(&detect(&["--format", "json"], &[]));
    let incidents: serde_json::Value = serde_json::from_str(&incidents).unwrap();
    assert_eq!(text.lines().count(), incidents.as_array().unwrap().len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("findings.ndjson");
    std::fs::write(&file, &text).unwrap();
    let check = r#"
import json, sys
from jsonschema import Draft202012Validator
from ocsf_json_schema import get_ocsf_schema, OcsfJsonSchemaEmbedded
schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version="1.1.0")).get_class_schema(
    class_name="detection_finding", profiles=["cloud"])
validator = Draft202012Validator(schema)
bad = 0
n = 0
for line in open(sys.argv[1]):
    n += 1
    for e in validator.iter_errors(json.loads(line)):
        bad += 1
        print(f"line {n}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
print(f"{n} findings, {bad} errors")
sys.exit(1 if bad or n == 0 else 0)
"#;
    let out = std::process::Command::new(tool("python"))
        .args(["-c", check, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And it says what a responder needs.
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first["finding_info"]["title"].as_str().unwrap().len() > 10);
    assert!(first["finding_info"]["related_events"]
        .as_array()
        .is_some_and(|e| !e.is_empty()));
    assert!(first["remediation"]["desc"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    assert_eq!(first["metadata"]["version"], "1.1.0");
}

/// `--mute` drops a principal's findings and says how many; a pattern
/// that would silence everyone is refused.
#[test]
fn mute_silences_a_known_principal_and_counts_what_it_dropped() {
    let all = crate::util::ndjson(&detect(&["--format", "ndjson"], &[]));
    let principal = all
        .iter()
        .find_map(|f| f["context"]["facets"][0]["top"][0]["value"].as_str())
        .expect("a finding with a principal")
        .to_owned();
    let short = principal.rsplit(':').next().unwrap().to_owned();
    let account = principal.split(':').nth(4).unwrap().to_owned();
    let pattern = format!("{short}@{account}");
    let dir = simulated().to_str().unwrap().to_owned();
    let o = trailwatch(&[
        "detect", &dir, "--since", "-1d", "--format", "ndjson", "--mute", &pattern,
    ]);
    let kept = crate::util::ndjson(&o);
    assert!(kept.len() < all.len(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "finding(s) of muted principals ({pattern}) not reported"
        )),
        "{}",
        stderr(&o)
    );
    for f in &kept {
        let by = f["context"]["facets"][0]["top"][0]["value"].as_str();
        assert!(
            by != Some(principal.as_str()) || f["severity"] == "critical" && f["kind"] == "rule",
            "{f:#}"
        );
    }
    let o = trailwatch(&["detect", &dir, "--mute", "*"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("would silence everyone"),
        "{}",
        stderr(&o)
    );
}
