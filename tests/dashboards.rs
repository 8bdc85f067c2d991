//! The saved objects of `dashboards/`: every reference resolves, every field
//! exists in the index (the template for `cwl-*`, the AD plugin's own
//! mapping for anomaly results), and the import is what Dashboards' saved
//! objects API wants, checked by a scripted Dashboards.

use crate::util::node::block_on;
use crate::util::scripted::{Expect, Scripted};
use serde_json::{json, Value};
use trailwatch::opensearch::apply::Outcome;
use trailwatch::opensearch::dashboards::{
    fields_used, import, saved_objects, unresolved_references, BOUNDARY,
};
use trailwatch::opensearch::desired::template::{field_type, index_template};
use trailwatch::opensearch::{OpenSearch, Target};

#[test]
fn every_reference_in_the_saved_objects_resolves() {
    let objects = saved_objects();
    assert_eq!(unresolved_references(&objects), Vec::<String>::new());
    let dashboards: Vec<&str> = objects
        .iter()
        .filter(|o| o["type"] == "dashboard")
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(
        dashboards,
        vec![
            "trailwatch-cloudtrail",
            "trailwatch-ec2",
            "trailwatch-ebs",
            "trailwatch-lambda",
            "trailwatch-anomalies"
        ]
    );
}

#[test]
fn every_field_a_visualization_uses_is_in_its_index() {
    let template = index_template(&trailwatch::detector::shipped());
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::util::root()
                .join("../shared/reference/opensearch-ad-mappings/anomaly-results.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let result_fields = results["mappings"]["properties"]
        .as_object()
        .or(results["properties"].as_object())
        .unwrap()
        .clone();
    let findings = trailwatch::opensearch::desired::findings::template();
    let findings_fields = findings["template"]["mappings"]["properties"]
        .as_object()
        .unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for o in saved_objects() {
        for (pattern, field) in fields_used(&o) {
            checked += 1;
            let known = match pattern.as_str() {
                "trailwatch-cwl" => field_type(&template, &field).is_some(),
                "trailwatch-anomaly-results" => result_fields.contains_key(&field),
                "trailwatch-findings" => findings_fields.contains_key(&field),
                other => panic!("{}: unknown index pattern {other}", o["id"]),
            };
            if !known {
                missing.push(format!(
                    "{} uses {field}, which {pattern} does not map",
                    o["id"]
                ));
            }
        }
    }
    assert!(checked > 40, "{checked}");
    assert!(missing.is_empty(), "{missing:#?}");
}

fn saved_objects_headers() -> Vec<(&'static str, String)> {
    vec![
        ("osd-xsrf", "true".into()),
        ("securitytenant", "global".into()),
    ]
}

fn bulk_get(answer: String) -> Expect {
    let n = saved_objects().len();
    Expect {
        method: "POST",
        path: "/_dashboards/api/saved_objects/_bulk_get".into(),
        headers: saved_objects_headers(),
        body: Box::new(move |body, _| {
            let wanted: Value = serde_json::from_slice(body).ok()?;
            (wanted.as_array().map(|a| a.len()) != Some(n))
                .then(|| format!("asked for {wanted}, not the {n} objects"))
        }),
        status: 200,
        answer,
    }
}

#[test]
fn dashboards_are_imported_once_then_found_unchanged() {
    let objects = saved_objects();
    let missing: Vec<Value> = objects
        .iter()
        .map(|o| json!({"id": o["id"], "type": o["type"], "error": {"statusCode": 404, "message": "Not found"}}))
        .collect();
    let present: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut e = o.clone();
            e["updated_at"] = json!("2026-12-01T00:00:00Z");
            e["version"] = json!("WzEsMV0=");
            e
        })
        .collect();
    let n = objects.len();
    let server = Scripted::start(vec![
        bulk_get(json!({"saved_objects": missing}).to_string()),
        Expect {
            method: "POST",
            path: "/_dashboards/api/saved_objects/_import?overwrite=true".into(),
            headers: {
                let mut h = saved_objects_headers();
                h.push((
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                ));
                h
            },
            body: Box::new(move |body, _| {
                let text = String::from_utf8_lossy(body);
                let head = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"trailwatch.ndjson\"\r\n");
                if !text.starts_with(&head) {
                    return Some(format!(
                        "not one multipart file field: {}",
                        &text[..text.len().min(200)]
                    ));
                }
                let file = text
                    .split("\r\n\r\n")
                    .nth(1)?
                    .split(&format!("\r\n--{BOUNDARY}--"))
                    .next()?;
                let lines: Vec<Value> = file
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
                (lines.len() != n).then(|| format!("{} objects in the file, not {n}", lines.len()))
            }),
            status: 200,
            answer: json!({"success": true, "successCount": n}).to_string(),
        },
        bulk_get(json!({"saved_objects": present}).to_string()),
    ]);
    let client = OpenSearch::connect(&Target::new(
        &format!("{}/_dashboards", server.url),
        std::time::Duration::from_secs(10),
    ))
    .unwrap();
    let first = block_on(import(&client, false)).unwrap();
    assert_eq!(first.outcome, Outcome::Updated);
    let second = block_on(import(&client, false)).unwrap();
    assert_eq!(second.outcome, Outcome::Unchanged);
    server.verify();
}

#[test]
fn a_refused_import_names_the_dashboards_reason() {
    let server = Scripted::start(vec![Expect {
        method: "POST",
        path: "/_dashboards/api/saved_objects/_bulk_get".into(),
        headers: saved_objects_headers(),
        body: Box::new(|_, _| None),
        status: 400,
        answer: json!({"statusCode": 400, "error": "Bad Request", "message": "Request must contain a osd-xsrf header."}).to_string(),
    }]);
    let client = OpenSearch::connect(&Target::new(
        &format!("{}/_dashboards", server.url),
        std::time::Duration::from_secs(10),
    ))
    .unwrap();
    let err = block_on(import(&client, false)).unwrap_err();
    let text = format!("{:#}", anyhow::Error::new(err));
    assert_eq!(
        text,
        format!("dashboards {} saved objects: POST /api/saved_objects/_bulk_get answered 400: Bad Request: Request must contain a osd-xsrf header.", saved_objects().len())
    );
    server.verify();
}
