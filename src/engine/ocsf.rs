//! `--format ocsf`: each incident as an OCSF 1.1.0 Detection Finding
//! (class 2004, category Findings), one JSON object a line, for Security
//! Hub, Security Lake or any SIEM that reads OCSF. 1.1.0 is the version
//! Security Lake takes. The test suite validates the output against the
//! OCSF schema shipped by the `ocsf-json-schema` PyPI package.
//!
//! What maps where: the incident's headline is the finding's title and its
//! lead finding's sentence the description; the principal and its access
//! key are an evidence's actor, with each source address as its source
//! endpoint; the account and region are the cloud; ATT&CK techniques are
//! attacks; the CloudTrail event IDs are related events; what to do first
//! is the remediation; the findings themselves ride along unchanged in
//! `unmapped` for whoever wants the detail.

use super::anomaly::{Anomaly, AnomalyKind, Severity};
use super::group::Incident;
use serde_json::{json, Value};

/// The OCSF version the findings follow.
pub const VERSION: &str = "1.1.0";
const CLASS_UID: u32 = 2004;
const CATEGORY_UID: u32 = 2;
/// Event IDs named as related events; the count is in `unmapped.events`.
const RELATED_EVENTS: usize = 20;
/// Activity 1: Create (a new finding).
const ACTIVITY_CREATE: u32 = 1;

/// OCSF's severity_id: 1 informational … 5 critical.
fn severity_id(s: Option<Severity>) -> u32 {
    match s {
        None => 1,
        Some(Severity::Low) => 2,
        Some(Severity::Medium) => 3,
        Some(Severity::High) => 4,
        Some(Severity::Critical) => 5,
    }
}

fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// One incident as a Detection Finding.
pub fn detection_finding(anomalies: &[Anomaly], inc: &Incident) -> Value {
    let members: Vec<&Anomaly> = inc.members.iter().map(|&i| &anomalies[i]).collect();
    let lead = super::headline::lead(&members);
    let severity = members[0].severity;
    let first =
        |f: fn(&Anomaly) -> &Vec<String>| members.iter().flat_map(|a| f(a).iter()).next().cloned();
    let event_ids = super::anomaly::distinct(members.iter().flat_map(|a| &a.pivots.event_ids));
    let mut techniques: Vec<&str> = members
        .iter()
        .flat_map(|a| a.attack.iter().map(String::as_str))
        .collect();
    techniques.sort();
    techniques.dedup();
    let principal = members
        .iter()
        .find_map(|a| {
            a.context
                .as_ref()?
                .top(crate::context::Facet::Principal)
                .map(|v| v.value.clone())
        })
        .or_else(|| lead.subjects.first().cloned());
    let mut finding = json!({
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id(severity),
        "severity": severity.map_or("Informational", |s| match s {
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }),
        "status_id": 1,
        "status": "New",
        "time": millis(inc.detected(anomalies)),
        "start_time": millis(inc.start),
        "end_time": millis(inc.end),
        "message": super::headline::of(&members),
        "metadata": {
            "version": VERSION,
            "product": {
                "name": "trailwatch",
                "vendor_name": "trailwatch",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "profiles": ["cloud"],
        },
        "finding_info": {
            "uid": format!("trailwatch:{}:{}", inc.start.format("%Y%m%dT%H%MZ"), inc.id),
            "title": super::headline::of(&members),
            "desc": lead.summary,
            "types": members.iter().map(|a| a.kind.name()).collect::<std::collections::BTreeSet<_>>(),
            "analytic": {
                "name": lead.detector,
                "type_id": analytic_type(lead.kind),
                "type": analytic_name(lead.kind),
            },
            "created_time": millis(inc.detected(anomalies)),
            "first_seen_time": millis(inc.start),
            "last_seen_time": millis(inc.end),
        },
        "cloud": {
            "provider": "AWS",
            "region": first(|a| &a.pivots.regions),
            "account": first(|a| &a.pivots.accounts).map(|uid| json!({"uid": uid, "type_id": 10, "type": "AWS Account"})),
        },
        "remediation": {
            "desc": super::advice::first_actions(&members).join("\n"),
        },
        "unmapped": {
            "incident": inc.id,
            "page": members[0].page.unwrap_or(false),
            "grade": inc.grade,
            "cost_per_hour": Some(inc.cost_per_hour(anomalies)).filter(|c| *c > 0.0),
            "access_key_ids": super::anomaly::distinct(members.iter().flat_map(|a| &a.pivots.access_key_ids)),
            "source_ips": super::anomaly::distinct(members.iter().flat_map(|a| &a.pivots.source_ips)),
            "events": members.iter().map(|a| a.pivots.events).sum::<u64>(),
            "findings": members,
        },
    });
    // Who, from where: one evidence per source address (one without).
    let actor = json!({"user": {
        "uid": principal,
        "name": principal.as_deref().map(crate::context::short_arn),
        "credential_uid": first(|a| &a.pivots.access_key_ids),
    }});
    let ips = super::anomaly::distinct(members.iter().flat_map(|a| &a.pivots.source_ips));
    finding["evidences"] = if ips.is_empty() {
        json!([{"actor": actor}])
    } else {
        ips.iter()
            .map(|ip| json!({"actor": actor, "src_endpoint": endpoint(ip)}))
            .collect()
    };
    if !event_ids.is_empty() {
        finding["finding_info"]["related_events"] = event_ids
            .iter()
            .take(RELATED_EVENTS)
            .map(|uid| json!({"uid": uid, "product_uid": "cloudtrail"}))
            .collect();
    }
    if !techniques.is_empty() {
        finding["finding_info"]["attacks"] = techniques
            .iter()
            .map(|t| json!({"technique": {"uid": t}, "version": "v15"}))
            .collect();
    }
    strip_nulls(&mut finding);
    finding
}

/// A source endpoint: CloudTrail's `sourceIPAddress` is an address, or the
/// name of the AWS service that called (`apigateway.amazonaws.com`).
fn endpoint(source: &str) -> Value {
    if source.parse::<std::net::IpAddr>().is_ok() {
        json!({"ip": source})
    } else {
        json!({"svc_name": source})
    }
}

/// OCSF analytic types: 1 rule, 2 behavioral, 3 statistical, 4 learning
/// (RCF is a learned model).
fn analytic_type(kind: AnomalyKind) -> u32 {
    match kind {
        AnomalyKind::Rule => 1,
        AnomalyKind::NewEvent => 2,
        AnomalyKind::Insight => 3,
        AnomalyKind::Rcf => 4,
    }
}

fn analytic_name(kind: AnomalyKind) -> &'static str {
    match analytic_type(kind) {
        1 => "Rule",
        2 => "Behavioral",
        3 => "Statistical",
        _ => "Learning (ML/DL)",
    }
}

/// Removes null members (OCSF leaves an unknown attribute out).
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(strip_nulls);
            map.retain(|_, x| !x.as_object().is_some_and(|o| o.is_empty()));
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::severity::{incidents, DEFAULT_PAGE};

    #[test]
    fn an_incident_maps_to_a_detection_finding_with_its_pivots() {
        let t = "2026-11-21T12:01:00Z".parse().unwrap();
        let mut a = Anomaly::sample(AnomalyKind::Rule, "arn:aws:iam::1:user/alice", t);
        a.summary = "CloudTrail logging stopped: user/alice@1 called cloudtrail:StopLogging".into();
        a.severity = Some(Severity::Critical);
        a.attack = vec!["T1562.008".into()];
        a.pivots = crate::engine::anomaly::Pivots {
            access_key_ids: vec!["AKIAEXAMPLE".into()],
            source_ips: vec!["203.0.113.66".into()],
            regions: vec!["us-east-1".into()],
            accounts: vec!["111122223333".into()],
            event_ids: vec!["e-1".into()],
            events: 1,
        };
        let mut found = vec![a];
        let incs = incidents(&mut found, DEFAULT_PAGE);
        let f = detection_finding(&found, &incs[0]);
        assert_eq!(f["class_uid"], 2004);
        assert_eq!(f["type_uid"], 200401);
        assert_eq!(f["severity_id"], 5);
        assert_eq!(f["metadata"]["version"], "1.1.0");
        assert_eq!(
            f["finding_info"]["title"],
            "CloudTrail logging stopped by user/alice@1"
        );
        assert_eq!(
            f["finding_info"]["attacks"][0]["technique"]["uid"],
            "T1562.008"
        );
        assert_eq!(f["finding_info"]["related_events"][0]["uid"], "e-1");
        assert_eq!(
            f["evidences"][0]["actor"]["user"]["credential_uid"],
            "AKIAEXAMPLE"
        );
        assert_eq!(f["evidences"][0]["src_endpoint"]["ip"], "203.0.113.66");
        assert!(f["remediation"]["desc"]
            .as_str()
            .unwrap()
            .starts_with("Deactivate access key AKIAEXAMPLE"));
        assert_eq!(f["cloud"]["account"]["uid"], "111122223333");
        assert_eq!(f["cloud"]["region"], "us-east-1");
        assert_eq!(f["time"], t.timestamp_millis() + 600_000);
        assert_eq!(
            endpoint("apigateway.amazonaws.com"),
            json!({"svc_name": "apigateway.amazonaws.com"})
        );
        assert_eq!(endpoint("2001:db8::1"), json!({"ip": "2001:db8::1"}));
    }
}
