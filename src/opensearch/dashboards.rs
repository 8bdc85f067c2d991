//! The OpenSearch Dashboards saved objects of `dashboards/` (index patterns,
//! visualizations, a saved search, dashboards), built into the binary; what
//! they reference and which fields they use, checked offline; and their
//! import through Dashboards' saved objects API (multipart `file`,
//! `osd-xsrf: true`, the global tenant), after a `_bulk_get` shows whether
//! anything differs.

use super::apply::{ApplyError, Line, Outcome, StepError};
use super::OpenSearch;
use serde_json::{json, Value};

/// The NDJSON files, in import order (index patterns first).
pub const FILES: [(&str, &str); 6] = [
    (
        "index-patterns.ndjson",
        include_str!("../../dashboards/index-patterns.ndjson"),
    ),
    (
        "cloudtrail.ndjson",
        include_str!("../../dashboards/cloudtrail.ndjson"),
    ),
    ("ec2.ndjson", include_str!("../../dashboards/ec2.ndjson")),
    ("ebs.ndjson", include_str!("../../dashboards/ebs.ndjson")),
    (
        "lambda.ndjson",
        include_str!("../../dashboards/lambda.ndjson"),
    ),
    (
        "anomalies.ndjson",
        include_str!("../../dashboards/anomalies.ndjson"),
    ),
];

/// The multipart boundary of the import body.
pub const BOUNDARY: &str = "trailwatch-saved-objects-boundary";

/// Every saved object, parsed (the files are ours; a bad line is a bug).
pub fn saved_objects() -> Vec<Value> {
    FILES
        .iter()
        .flat_map(|(name, text)| {
            text.lines().filter(|l| !l.trim().is_empty()).map(move |l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("dashboards/{name}: {e}"))
            })
        })
        .collect()
}

/// References that name no object of the set: `"<object>: <type> <id>"`.
pub fn unresolved_references(objects: &[Value]) -> Vec<String> {
    let known: Vec<(String, String)> = objects
        .iter()
        .map(|o| {
            (
                o["type"].as_str().unwrap_or("").to_owned(),
                o["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for o in objects {
        for r in o["references"].as_array().into_iter().flatten() {
            let key = (
                r["type"].as_str().unwrap_or("").to_owned(),
                r["id"].as_str().unwrap_or("").to_owned(),
            );
            if !known.contains(&key) {
                out.push(format!("{}: {} {}", o["id"], key.0, key.1));
            }
        }
    }
    out
}

/// The fields each object uses, with the index pattern they belong to:
/// aggregation fields, fields in its query, a saved search's columns and sort.
pub fn fields_used(o: &Value) -> Vec<(String, String)> {
    let pattern = o["references"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["type"] == "index-pattern")
        .and_then(|r| r["id"].as_str())
        .unwrap_or("")
        .to_owned();
    let mut fields = Vec::new();
    let attributes = &o["attributes"];
    if let Some(state) = attributes["visState"]
        .as_str()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    {
        for agg in state["aggs"].as_array().into_iter().flatten() {
            if let Some(f) = agg["params"]["field"].as_str() {
                fields.push(f.to_owned());
            }
        }
    }
    if let Some(source) = attributes["kibanaSavedObjectMeta"]["searchSourceJSON"]
        .as_str()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    {
        if let Some(q) = source["query"]["query"].as_str() {
            fields.extend(query_fields(q));
        }
    }
    for c in attributes["columns"].as_array().into_iter().flatten() {
        fields.extend(c.as_str().map(str::to_owned));
    }
    for s in attributes["sort"].as_array().into_iter().flatten() {
        fields.extend(s[0].as_str().map(str::to_owned));
    }
    fields.into_iter().map(|f| (pattern.clone(), f)).collect()
}

/// The field names of a DQL (kuery) query: each word outside quotes that
/// is followed by `:`, `<` or `>`.
fn query_fields(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut pending: Option<String> = None;
    let mut in_quotes = false;
    for c in query.chars() {
        if c == '"' {
            in_quotes = !in_quotes;
            word.clear();
            pending = None;
        } else if in_quotes {
            continue;
        } else if c.is_alphanumeric() || matches!(c, '.' | '_' | '@') {
            word.push(c);
            pending = None;
        } else if c.is_whitespace() {
            if !word.is_empty() {
                pending = Some(std::mem::take(&mut word));
            }
        } else {
            let name = if word.is_empty() {
                pending.take()
            } else {
                Some(std::mem::take(&mut word))
            };
            if matches!(c, ':' | '<' | '>') {
                out.extend(name);
            }
            pending = None;
        }
    }
    out
}

/// The import request's body: one multipart `file` holding every object.
pub fn import_body(objects: &[Value]) -> Vec<u8> {
    let ndjson: String = objects.iter().map(|o| o.to_string() + "\n").collect();
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"trailwatch.ndjson\"\r\nContent-Type: application/ndjson\r\n\r\n{ndjson}\r\n--{BOUNDARY}--\r\n"
    )
    .into_bytes()
}

/// The headers every saved objects call carries.
pub const HEADERS: [(&str, &str); 2] = [("osd-xsrf", "true"), ("securitytenant", "global")];

/// True when `existing` (a `_bulk_get` answer) holds every object with our
/// attributes and references.
pub fn all_present(objects: &[Value], existing: &Value) -> bool {
    let found = existing["saved_objects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    objects.iter().all(|o| {
        found.iter().any(|e| {
            e["id"] == o["id"]
                && e["type"] == o["type"]
                && e.get("error").is_none()
                && super::apply::differences(&o["attributes"], &e["attributes"]).is_empty()
                && super::apply::differences(&o["references"], &e["references"]).is_empty()
        })
    })
}

/// Imports the saved objects through the Dashboards at `dashboards`'s base
/// unless they are all there already. One line for the set.
pub async fn import(dashboards: &OpenSearch, dry_run: bool) -> Result<Line, ApplyError> {
    let objects = saved_objects();
    let failed = |e: super::OpenSearchError| ApplyError {
        kind: "dashboards",
        name: format!("{} saved objects", objects.len()),
        source: StepError::Cluster(e),
    };
    let wanted: Vec<Value> = objects
        .iter()
        .map(|o| json!({"type": o["type"], "id": o["id"]}))
        .collect();
    let existing = dashboards
        .send_with(
            "POST",
            "/api/saved_objects/_bulk_get",
            &HEADERS,
            Some((
                "application/json",
                Value::Array(wanted).to_string().into_bytes(),
            )),
            None,
        )
        .await
        .and_then(|a| a.checked_json())
        .map_err(failed)?;
    let name = format!("{} saved objects", objects.len());
    if all_present(&objects, &existing) {
        return Ok(Line {
            kind: "dashboards",
            name,
            outcome: Outcome::Unchanged,
            notes: Vec::new(),
        });
    }
    if !dry_run {
        let answer = dashboards
            .send_with(
                "POST",
                "/api/saved_objects/_import?overwrite=true",
                &HEADERS,
                Some((
                    &format!("multipart/form-data; boundary={BOUNDARY}"),
                    import_body(&objects),
                )),
                None,
            )
            .await
            .and_then(|a| a.checked_json())
            .map_err(failed)?;
        if answer["success"] != true {
            return Err(ApplyError {
                kind: "dashboards",
                name,
                source: StepError::Unexpected(format!(
                    "the import reported errors: {}",
                    answer["errors"]
                )),
            });
        }
    }
    Ok(Line {
        kind: "dashboards",
        name,
        outcome: Outcome::Updated,
        notes: vec!["imported with overwrite".into()],
    })
}

/// Deletes our saved objects from the Dashboards (those that exist).
pub async fn remove(dashboards: &OpenSearch, dry_run: bool) -> Result<Line, ApplyError> {
    let objects = saved_objects();
    let name = format!("{} saved objects", objects.len());
    let failed = |e: super::OpenSearchError| ApplyError {
        kind: "dashboards",
        name: name.clone(),
        source: StepError::Cluster(e),
    };
    let mut deleted = 0;
    for o in &objects {
        let path = format!(
            "/api/saved_objects/{}/{}",
            o["type"].as_str().unwrap_or(""),
            o["id"].as_str().unwrap_or("")
        );
        let exists = dashboards
            .send_with("GET", &path, &HEADERS, None, None)
            .await
            .map_err(failed)?;
        if exists.status == 404 {
            continue;
        }
        exists.check().map_err(failed)?;
        if !dry_run {
            dashboards
                .send_with("DELETE", &path, &HEADERS, None, None)
                .await
                .and_then(|a| a.check())
                .map_err(failed)?;
        }
        deleted += 1;
    }
    let outcome = if deleted == 0 {
        Outcome::Absent
    } else {
        Outcome::Deleted
    };
    Ok(Line {
        kind: "dashboards",
        name,
        outcome,
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_fields_are_the_words_before_a_colon_or_comparison() {
        assert_eq!(
            query_fields(r#"eventName:"ConsoleLogin" and responseElements.ConsoleLogin:"Failure""#),
            vec!["eventName", "responseElements.ConsoleLogin"]
        );
        assert_eq!(query_fields("anomaly_grade > 0"), vec!["anomaly_grade"]);
        assert_eq!(
            query_fields(r#"not errorCode:* and userIdentity.type : "Root""#),
            vec!["errorCode", "userIdentity.type"]
        );
    }

    #[test]
    fn the_import_body_is_one_multipart_file() {
        let body = String::from_utf8(import_body(&[json!({"id": "a"})])).unwrap();
        assert!(body.starts_with(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename="
        )));
        assert!(body.ends_with(&format!("{{\"id\":\"a\"}}\n\r\n--{BOUNDARY}--\r\n")));
    }
}
