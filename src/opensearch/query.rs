//! OpenSearch query JSON derived from the typed models, as plain functions:
//! a detector's filter as a `bool` query (what the local engine's
//! [`Detector::matches`](crate::detector::Detector::matches) decides), an
//! entity's terms, a time range, and the context's facets as aggregations
//! read back into the same [`FacetCounts`] the local engine fills.
//!
//! Field names are the CloudTrail record's own: the index template maps
//! strings as `keyword`, so no `.keyword` suffixes.

use crate::context::{
    Facet, FacetCounts, DEFAULT_INSTANCES, DEFAULT_VOLUME_TYPE, UNKNOWN_INSTANCE_TYPE,
};
use crate::detector::{Detector, ErrorFilter, Filter};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// The detector filter's clauses (every part given must match).
pub fn filter_clauses(filter: &Filter) -> (Vec<Value>, Vec<Value>) {
    let mut must = Vec::new();
    let mut must_not = Vec::new();
    let terms = |field: &str, values: &[String]| json!({"terms": {field: values}});
    if !filter.event_sources.is_empty() {
        must.push(terms("eventSource", &filter.event_sources));
    }
    if !filter.event_names.is_empty() {
        must.push(terms("eventName", &filter.event_names));
    }
    match &filter.errors {
        ErrorFilter::Any => {}
        ErrorFilter::Failed => must.push(json!({"exists": {"field": "errorCode"}})),
        ErrorFilter::Succeeded => must_not.push(json!({"exists": {"field": "errorCode"}})),
        ErrorFilter::Codes(codes) => must.push(terms("errorCode", codes)),
    }
    if let Some(read_only) = filter.read_only {
        must.push(json!({"term": {"readOnly": read_only}}));
    }
    if !filter.user_identity_types.is_empty() {
        must.push(terms("userIdentity.type", &filter.user_identity_types));
    }
    for m in &filter.fields {
        must.push(terms(m.field.as_str(), &m.values));
    }
    (must, must_not)
}

/// The records of `detector` (for `entity`, when it is high-cardinality) in
/// `[start, end)`.
pub fn records_query(
    detector: &Detector,
    entity: &[String],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Value {
    let (mut must, must_not) = filter_clauses(&detector.filter);
    for (field, value) in detector.category_fields.iter().zip(entity) {
        must.push(json!({"term": {field.as_str(): value}}));
    }
    must.push(json!({"range": {"@timestamp": {
        "gte": start.to_rfc3339_opts(SecondsFormat::Secs, true),
        "lt": end.to_rfc3339_opts(SecondsFormat::Secs, true),
    }}}));
    json!({"bool": {"filter": must, "must_not": must_not}})
}

/// Values kept per facet in an aggregation.
pub const FACET_SIZE: usize = 10;

/// The record field each facet counts, and the numeric field summed per
/// value (instances requested, GiB), if it is not a count of records.
pub fn facet_fields(facet: Facet) -> (&'static str, Option<&'static str>) {
    match facet {
        Facet::Principal => ("userIdentity.arn", None),
        Facet::SourceIp => ("sourceIPAddress", None),
        Facet::UserAgent => ("userAgent", None),
        Facet::Region => ("awsRegion", None),
        Facet::ErrorCode => ("errorCode", None),
        Facet::InstanceType | Facet::RefusedInstanceType => (
            "requestParameters.instanceType",
            Some("requestParameters.instancesSet.items.maxCount"),
        ),
        Facet::VolumeType => ("requestParameters.volumeType", None),
        Facet::VolumeGib => (
            "requestParameters.volumeType",
            Some("requestParameters.size"),
        ),
        Facet::Function => ("requestParameters.functionName", None),
        Facet::AccessKey => ("userIdentity.accessKeyId", None),
        Facet::Account => ("recipientAccountId", None),
    }
}

/// The records a facet counts, as [`FacetCounts::record`] does: instance
/// types only RunInstances calls (what was started those without an error,
/// what was refused those with one), volumes only CreateVolume calls that
/// worked, functions only Lambda's Invoke calls. None: every record.
fn facet_filter(facet: Facet) -> Option<Value> {
    let error = json!({"exists": {"field": "errorCode"}});
    let call = |source: &str, name: &str| {
        vec![
            json!({"term": {"eventSource": source}}),
            json!({"term": {"eventName": name}}),
        ]
    };
    match facet {
        Facet::InstanceType => Some(json!({"bool": {
            "filter": call("ec2.amazonaws.com", "RunInstances"), "must_not": [error]}})),
        Facet::RefusedInstanceType => {
            let mut filter = call("ec2.amazonaws.com", "RunInstances");
            filter.push(error);
            Some(json!({"bool": {"filter": filter}}))
        }
        Facet::VolumeType | Facet::VolumeGib => Some(json!({"bool": {
            "filter": call("ec2.amazonaws.com", "CreateVolume"), "must_not": [error]}})),
        Facet::Function => Some(json!({"bool": {"filter": [
            {"term": {"eventSource": "lambda.amazonaws.com"}},
            {"prefix": {"eventName": "Invoke"}}
        ]}})),
        _ => None,
    }
}

/// A search body: no hits, the facets as `terms` aggregations (those of
/// what was started or refused under a filter on the outcome).
pub fn context_search(query: Value) -> Value {
    let mut aggs = serde_json::Map::new();
    for facet in Facet::ALL {
        let (field, sum) = facet_fields(facet);
        let mut agg = json!({"terms": {"field": field, "size": FACET_SIZE}});
        // What the local engine counts a record without the field as.
        match facet {
            Facet::InstanceType | Facet::RefusedInstanceType => {
                agg["terms"]["missing"] = json!(UNKNOWN_INSTANCE_TYPE);
            }
            Facet::VolumeType | Facet::VolumeGib => {
                agg["terms"]["missing"] = json!(DEFAULT_VOLUME_TYPE);
            }
            _ => {}
        }
        if let Some(sum) = sum {
            agg["aggs"] = json!({"amount": {"sum": {"field": sum}}});
            if matches!(facet, Facet::InstanceType | Facet::RefusedInstanceType) {
                agg["aggs"]["amount"]["sum"]["missing"] = json!(DEFAULT_INSTANCES);
            }
        }
        if let Some(filter) = facet_filter(facet) {
            agg = json!({"filter": filter, "aggs": {"values": agg}});
        }
        aggs.insert(facet_key(facet), agg);
    }
    // The first few records' event IDs, for a responder to look up.
    json!({
        "size": crate::context::EVENT_IDS,
        "_source": ["eventID"],
        "sort": [{"eventTime": "asc"}],
        "track_total_hits": true,
        "query": query,
        "aggs": aggs
    })
}

fn facet_key(facet: Facet) -> String {
    serde_json::to_value(facet)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Reads a [`context_search`] answer into counts.
pub fn counts_from(response: &Value) -> FacetCounts {
    let mut counts = FacetCounts {
        events: response
            .pointer("/hits/total/value")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        ..FacetCounts::default()
    };
    for facet in Facet::ALL {
        let path = if facet_filter(facet).is_some() {
            format!("/aggregations/{}/values/buckets", facet_key(facet))
        } else {
            format!("/aggregations/{}/buckets", facet_key(facet))
        };
        let buckets = response.pointer(&path).and_then(Value::as_array);
        for bucket in buckets.into_iter().flatten() {
            let key = match &bucket["key"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let n = match facet_fields(facet).1 {
                Some(_) => bucket.pointer("/amount/value").and_then(Value::as_f64),
                None => bucket["doc_count"].as_f64(),
            }
            .unwrap_or(0.0);
            let key = match facet {
                // As the local engine counts it: the name, not the ARN.
                Facet::Function => key.rsplit(':').next().unwrap_or(&key).to_owned(),
                _ => key,
            };
            counts.add(facet, &key, n);
            if facet == Facet::VolumeGib {
                counts.volume_gib += n;
            }
        }
    }
    let ids = response.pointer("/hits/hits").and_then(Value::as_array);
    counts.event_ids = (ids.into_iter().flatten())
        .filter_map(|h| h.pointer("/_source/eventID")?.as_str().map(str::to_owned))
        .take(crate::context::EVENT_IDS)
        .collect();
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::parse_detector;
    use std::path::Path;

    fn detector(text: &str) -> Detector {
        parse_detector(Path::new("d.toml"), text).unwrap()
    }

    #[test]
    fn the_filter_becomes_a_bool_query_with_the_entity_and_the_window() {
        let d = detector(
            r#"
description = "failed calls per principal"
category_fields = ["userIdentity.arn"]
[filter]
event_sources = ["ec2.amazonaws.com"]
errors = "failed"
read_only = false
"#,
        );
        let start = "2026-01-07T03:00:00Z".parse().unwrap();
        let end = "2026-01-07T03:10:00Z".parse().unwrap();
        let q = records_query(&d, &["arn:aws:iam::1:user/bob".into()], start, end);
        let filter = q["bool"]["filter"].as_array().unwrap();
        assert!(filter.contains(&json!({"terms": {"eventSource": ["ec2.amazonaws.com"]}})));
        assert!(filter.contains(&json!({"exists": {"field": "errorCode"}})));
        assert!(filter.contains(&json!({"term": {"readOnly": false}})));
        assert!(filter.contains(&json!({"term": {"userIdentity.arn": "arn:aws:iam::1:user/bob"}})));
        assert!(filter.contains(&json!({"range": {"@timestamp": {"gte": "2026-01-07T03:00:00Z", "lt": "2026-01-07T03:10:00Z"}}})));
        assert_eq!(q["bool"]["must_not"], json!([]));
    }

    #[test]
    fn aggregations_read_back_into_facet_counts() {
        let body = context_search(json!({"match_all": {}}));
        // The first records' event IDs come back as hits, nothing else of them.
        assert_eq!(body["size"], 3);
        assert_eq!(body["_source"], json!(["eventID"]));
        assert_eq!(body["sort"], json!([{"eventTime": "asc"}]));
        assert_eq!(
            body["aggs"]["access_key"]["terms"]["field"],
            "userIdentity.accessKeyId"
        );
        assert_eq!(
            body["aggs"]["account"]["terms"]["field"],
            "recipientAccountId"
        );
        assert_eq!(
            body["aggs"]["instance_type"]["aggs"]["values"]["aggs"]["amount"]["sum"]["field"],
            "requestParameters.instancesSet.items.maxCount"
        );
        let launches = [
            json!({"term": {"eventSource": "ec2.amazonaws.com"}}),
            json!({"term": {"eventName": "RunInstances"}}),
        ];
        assert_eq!(
            body["aggs"]["instance_type"]["filter"],
            json!({"bool": {"filter": launches, "must_not": [{"exists": {"field": "errorCode"}}]}})
        );
        // A launch that names no type or count counts as the engine counts it.
        let values = &body["aggs"]["instance_type"]["aggs"]["values"];
        assert_eq!(values["terms"]["missing"], "unknown");
        assert_eq!(values["aggs"]["amount"]["sum"]["missing"], 1.0);
        assert_eq!(
            body["aggs"]["volume_type"]["aggs"]["values"]["terms"]["missing"],
            "gp2"
        );
        let response = json!({
            "hits": {"total": {"value": 12, "relation": "eq"}, "hits": [
                {"_source": {"eventID": "e-1"}}, {"_source": {"eventID": "e-2"}}, {"_source": {}}
            ]},
            "aggregations": {
                "principal": {"buckets": [{"key": "arn:aws:iam::1:user/carol", "doc_count": 12}]},
                "access_key": {"buckets": [{"key": "AKIAEXAMPLE", "doc_count": 12}]},
                "instance_type": {"doc_count": 3, "values": {"buckets": [{"key": "p4d.24xlarge", "doc_count": 3, "amount": {"value": 24.0}}]}},
                "volume_gib": {"doc_count": 2, "values": {"buckets": [{"key": "io2", "doc_count": 2, "amount": {"value": 1000.0}}]}},
                "refused_instance_type": {"doc_count": 4, "values": {"buckets": [{"key": "p5.48xlarge", "doc_count": 4, "amount": {"value": 32.0}}]}},
                "function": {"doc_count": 7, "values": {"buckets": [{"key": "arn:aws:lambda:us-east-1:1:function:resize", "doc_count": 7}]}}
            }
        });
        // Refused launches count under the opposite filter: calls with an error.
        let mut refused = launches.to_vec();
        refused.push(json!({"exists": {"field": "errorCode"}}));
        assert_eq!(
            body["aggs"]["refused_instance_type"]["filter"],
            json!({"bool": {"filter": refused}})
        );
        let counts = counts_from(&response);
        assert_eq!(
            counts.values[&Facet::RefusedInstanceType]["p5.48xlarge"],
            32.0
        );
        assert_eq!(counts.events, 12.0);
        assert_eq!(
            counts.values[&Facet::Principal]["arn:aws:iam::1:user/carol"],
            12.0
        );
        assert_eq!(counts.values[&Facet::InstanceType]["p4d.24xlarge"], 24.0);
        assert_eq!(counts.values[&Facet::Function]["resize"], 7.0);
        assert_eq!(counts.volume_gib, 1000.0);
        assert_eq!(counts.values[&Facet::AccessKey]["AKIAEXAMPLE"], 12.0);
        assert_eq!(counts.event_ids, ["e-1", "e-2"]);
    }
}
