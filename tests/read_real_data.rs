//! Reading the real CloudTrail deliveries in ../shared/data/cloudtrail.

use crate::util::*;
use serde_json::Value;
use std::io::Read;
use trailwatch::cloudtrail::{discover, read_bytes, read_input, Input, Projection, Record};

fn read_all(dir: &std::path::Path) -> (Vec<Record<'static>>, Vec<String>, Vec<String>) {
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let mut names = Vec::new();
    // Through the projection `detect` uses with the shipped detectors.
    let detectors = trailwatch::detector::shipped();
    let projection = Projection::for_records(detectors.iter().flat_map(|d| d.field_paths()));
    for input in discover(&[dir.to_path_buf()]).unwrap() {
        let Input::File { path, .. } = &input else {
            unreachable!()
        };
        names.push(input.name());
        let file = std::fs::File::open(path).unwrap();
        read_input(
            &input.name(),
            file,
            &projection,
            |r| records.push(r.into_owned()),
            |e| problems.push(e.to_string()),
        );
    }
    (records, problems, names)
}

#[test]
fn all_2900_invictus_records_are_read_without_a_problem() {
    let (records, problems, names) = read_all(&shared_cloudtrail().join("invictus-aws-dataset"));
    assert_eq!(
        names.len(),
        55,
        "55 deliveries; LICENSE and README.md are not read"
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(records.len(), 2900);
    let stratus = records
        .iter()
        .filter(|r| {
            r.user_agent()
                .is_some_and(|u| u.contains("stratus-red-team_"))
        })
        .count();
    assert_eq!(stratus, 1146);
    let throttled = records
        .iter()
        .filter(|r| r.error_code() == Some("ThrottlingException"))
        .count();
    assert_eq!(throttled, 102);
    assert!(records.iter().all(|r| r.aws_region() == Some("us-east-1")));
}

/// The typed parse against the records as plain JSON values: on every real
/// invictus record, each typed field is the value's own, and what is kept
/// beside them is the rest of the record, untouched.
#[test]
fn typed_records_hold_exactly_what_the_real_records_hold() {
    let typed = [
        "eventTime",
        "eventVersion",
        "eventSource",
        "eventName",
        "awsRegion",
        "recipientAccountId",
        "sourceIPAddress",
        "userAgent",
        "errorCode",
        "eventType",
        "eventID",
        "eventCategory",
        "readOnly",
        "managementEvent",
        "userIdentity",
    ];
    let mut compared = 0;
    for input in discover(&[shared_cloudtrail().join("invictus-aws-dataset")]).unwrap() {
        let Input::File { path, .. } = &input else {
            unreachable!()
        };
        let bytes = std::fs::read(path).unwrap();
        let mut json = Vec::new();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            flate2::read::MultiGzDecoder::new(bytes.as_slice())
                .read_to_end(&mut json)
                .unwrap();
        } else {
            json.clone_from(&bytes);
        }
        let doc: Value = serde_json::from_slice(&json).unwrap();
        let values = doc["Records"].as_array().unwrap();
        let mut records = Vec::new();
        read_bytes(
            &input.name(),
            &bytes,
            &Projection::All,
            |r| records.push(r.into_owned()),
            |e| panic!("{e}"),
        );
        assert_eq!(records.len(), values.len(), "{}", input.name());
        for (r, v) in records.iter().zip(values) {
            let text = |k: &str| v.get(k).and_then(Value::as_str);
            assert_eq!(Some(r.event_source()), text("eventSource"));
            assert_eq!(Some(r.event_name()), text("eventName"));
            assert_eq!(r.aws_region(), text("awsRegion"));
            assert_eq!(r.recipient_account_id(), text("recipientAccountId"));
            assert_eq!(r.source_ip_address(), text("sourceIPAddress"));
            assert_eq!(r.user_agent(), text("userAgent"));
            assert_eq!(r.error_code(), text("errorCode"));
            assert_eq!(r.event_id(), text("eventID"));
            assert_eq!(r.event_type(), text("eventType"));
            assert_eq!(r.event_category(), text("eventCategory"));
            assert_eq!(r.read_only(), v.get("readOnly").and_then(Value::as_bool));
            assert_eq!(
                r.management_event(),
                v.get("managementEvent").and_then(Value::as_bool)
            );
            assert_eq!(
                r.event_time(),
                text("eventTime")
                    .unwrap()
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .unwrap()
            );
            let id = &v["userIdentity"];
            let who = r.user_identity();
            assert_eq!(who.kind, id.get("type").and_then(Value::as_str));
            assert_eq!(who.arn, id.get("arn").and_then(Value::as_str));
            assert_eq!(who.account_id, id.get("accountId").and_then(Value::as_str));
            assert_eq!(who.invoked_by, id.get("invokedBy").and_then(Value::as_str));
            assert_eq!(
                who.principal_id,
                id.get("principalId").and_then(Value::as_str)
            );
            assert_eq!(
                who.access_key_id,
                id.get("accessKeyId").and_then(Value::as_str)
            );
            // The rest: every other field, and userIdentity's other fields.
            let mut rest = v.as_object().unwrap().clone();
            rest.retain(|k, _| !typed.contains(&k.as_str()));
            if let Some(identity) = id.as_object() {
                let mut others = identity.clone();
                others.retain(|k, _| {
                    ![
                        "type",
                        "arn",
                        "accountId",
                        "invokedBy",
                        "principalId",
                        "userName",
                        "accessKeyId",
                    ]
                    .contains(&k.as_str())
                });
                if !others.is_empty() {
                    rest.insert("userIdentity".into(), Value::Object(others));
                }
            }
            assert_eq!(r.rest(), &rest);
            compared += 1;
        }
    }
    assert_eq!(compared, 2900);
}

#[test]
fn the_damaged_stratus_file_is_named_and_the_other_three_are_read() {
    let (records, problems, names) = read_all(&shared_cloudtrail().join("stratus-detonations"));
    assert_eq!(names.len(), 4);
    assert!(!problems.is_empty());
    for p in &problems {
        assert!(
            p.contains("aws.execution.ec2-user-data.json: byte offset"),
            "{p}"
        );
    }
    let named = |name: &str| records.iter().filter(|r| r.event_name() == name).count();
    // The three good files hold 1 + 10 + 1 records; the damaged one holds 3,
    // separated by the missing commas that make it invalid JSON.
    assert_eq!(named("DeleteTrail"), 1);
    assert_eq!(named("GetSecretValue"), 10);
    assert_eq!(named("ModifySnapshotAttribute"), 1);
    assert_eq!(
        records.len(),
        15,
        "12 from the good files and 3 salvaged from the damaged one"
    );
}

#[test]
fn detect_reports_the_damaged_file_and_goes_on_unless_strict() {
    let dir = shared_cloudtrail().join("stratus-detonations");
    let dir = dir.to_str().unwrap();
    let o = trailwatch(&["detect", dir, "--format", "ndjson", "--stats"]);
    let err = stderr(&o);
    // The good files' detonations are rule findings, and page: DeleteTrail,
    // the user data replaced (from the damaged file's readable records),
    // a snapshot shared with a stranger.
    assert_eq!(o.status.code(), Some(1), "{err}");
    let found: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = found
        .iter()
        .map(|f| f["detector"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cloudtrail-delete-trail",
            "ec2-user-data-modified",
            "ebs-snapshot-shared-outside"
        ],
        "{found:#?}"
    );
    assert!(found
        .iter()
        .all(|f| f["kind"] == "rule" && f["page"] == true));
    assert_eq!(found[0]["severity"], "critical");
    assert_eq!(found[0]["entity"]["target"], "my-cloudtrail-trail-2");
    assert_eq!(found[2]["attack"], serde_json::json!(["T1537"]));
    assert!(
        err.contains("warning: ")
            && err.contains("aws.execution.ec2-user-data.json: byte offset 3327"),
        "{err}"
    );
    assert!(err.contains("2 problem(s) in the input"), "{err}");
    assert!(err.contains("stats: 15 events from 4 inputs"), "{err}");

    let o = trailwatch(&["detect", dir, "--strict"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("(--strict stops at the first problem in the input)")
            && err.contains("ec2-user-data.json"),
        "{err}"
    );
}

#[test]
fn aws_acting_for_itself_is_named_as_aws_and_never_a_new_principal() {
    let history = invictus_with_history();
    let dir = history.path();
    let o = trailwatch(&["detect", dir.to_str().unwrap(), "--format", "ndjson"]);
    let found: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(found.len() > 20, "{}", stderr(&o));
    // Service-linked roles (Inspector, RDS) and services acting as
    // themselves do something new whenever AWS ships a feature.
    for f in found.iter().filter(|f| f["kind"] == "new_event") {
        let who = f["entity"]["principal"].as_str().unwrap();
        assert!(
            !who.contains("AWSServiceRoleFor") && !who.ends_with(".amazonaws.com"),
            "{f:#}"
        );
    }
    // Secrets Manager's scheduled deletions carry only `invokedBy`: their
    // rate insight says who, rather than nobody.
    let deletes: Vec<&Value> = found
        .iter()
        .filter(|f| {
            f["kind"] == "insight"
                && f["entity"]["eventName"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("SecretVersionDelete"))
        })
        .collect();
    assert_eq!(deletes.len(), 2, "{found:#?}");
    for f in deletes {
        let summary = f["summary"].as_str().unwrap();
        assert!(
            summary.ends_with("mostly AWS (secretsmanager.amazonaws.com)"),
            "{summary}"
        );
    }
}

#[test]
fn an_iam_user_without_an_arn_is_the_same_principal_as_with_one() {
    // Some of the user's records carry only principalId, accountId and
    // userName: they are still bert-jan, not a stranger named AIDA….
    let history = invictus_with_history();
    let dir = history.path();
    let o = trailwatch(&["detect", dir.to_str().unwrap(), "--format", "ndjson"]);
    let out = stdout(&o);
    let found: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(found.len() > 20, "{}", stderr(&o));
    let principals: Vec<&str> = found
        .iter()
        .filter_map(|f| f["entity"]["principal"].as_str())
        .collect();
    assert!(
        principals.iter().all(|p| !p.starts_with("AIDA")),
        "{principals:?}"
    );
    assert!(out.contains("user/bert-jan@123837392027"), "{principals:?}");
}

/// The real deliveries hold two accounts a year apart. Judged together,
/// the second account got a year of empty history from the first: "29
/// against 0.0 expected" at confidence 0.97, "errors at 29.0/min against
/// 0.00/min usually", and every principal new after the learning day. A
/// history starts when its own account and region start delivering, so
/// the mixed folder gives, for each account, what that account alone gives.
#[test]
fn the_mixed_folder_gives_each_account_what_it_alone_gives() {
    let root = shared_cloudtrail();
    let run = |path: &std::path::Path| -> Vec<serde_json::Value> {
        let o = trailwatch(&["detect", path.to_str().unwrap(), "--format", "ndjson"]);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
        ndjson(&o)
    };
    let key = |f: &serde_json::Value| {
        format!(
            "{} {} {} {} {}",
            f["kind"], f["detector"], f["start"], f["entity"], f["severity"]
        )
    };
    let of_account = |findings: &[serde_json::Value], account: &str| -> Vec<String> {
        let mut keys: Vec<String> = findings
            .iter()
            .filter(|f| f.to_string().contains(account))
            .map(key)
            .collect();
        keys.sort();
        keys
    };
    let mixed = run(&root);
    for (folder, account) in [
        ("invictus-aws-dataset", "123837392027"),
        ("stratus-detonations", "677301038893"),
    ] {
        let alone = run(&root.join(folder));
        assert_eq!(
            of_account(&mixed, account),
            of_account(&alone, account),
            "account {account}: mixed against alone"
        );
    }
    // And the second account, with 55 minutes of data, gets only what
    // needs no baseline: its rules.
    assert!(
        mixed.iter().all(|f| f["kind"] == "rule"),
        "{:#?}",
        mixed
            .iter()
            .filter(|f| f["kind"] != "rule")
            .collect::<Vec<_>>()
    );
    // Thin data is explained per stream.
    let o = trailwatch(&["detect", root.to_str().unwrap(), "--format", "ndjson"]);
    let err = stderr(&o);
    assert!(
        err.contains("note: rcf: 123837392027/us-east-1: 55 minutes of data")
            && err.contains("note: new activity: 677301038893/us-east-1: 12 minutes of data"),
        "{err}"
    );
}
