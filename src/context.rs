//! Who and what is behind an anomaly: top principals, source addresses, user
//! agents, regions and error codes in its window against the baseline before
//! it, and the instance or volume types of what was started.
//!
//! The counts ([`FacetCounts`]) are filled by the local engine from records,
//! and by the enricher Lambda from OpenSearch aggregations; [`build`] turns
//! window and baseline counts into the same [`Context`] for both.

use crate::cloudtrail::{service_linked_role, Record};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A dimension of the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Facet {
    Principal,
    SourceIp,
    UserAgent,
    Region,
    ErrorCode,
    /// RunInstances that succeeded: instances requested, per instance type.
    InstanceType,
    /// CreateVolume that succeeded: volumes, per volume type.
    VolumeType,
    /// Invoke: calls, per function.
    Function,
    /// CreateVolume that succeeded: GiB, per volume type.
    VolumeGib,
    /// RunInstances that failed (a quota such as VcpuLimitExceeded, a
    /// permission): instances asked for, per instance type. A leaked key
    /// trying GPUs it cannot get is still news.
    RefusedInstanceType,
    /// The access keys calls were signed with: what a responder deactivates.
    AccessKey,
    /// The accounts the calls were made in (`recipientAccountId`).
    Account,
}

impl Facet {
    pub const ALL: [Facet; 12] = [
        Facet::Principal,
        Facet::SourceIp,
        Facet::UserAgent,
        Facet::Region,
        Facet::ErrorCode,
        Facet::InstanceType,
        Facet::VolumeType,
        Facet::Function,
        Facet::VolumeGib,
        Facet::RefusedInstanceType,
        Facet::AccessKey,
        Facet::Account,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Facet::Principal => "principals",
            Facet::SourceIp => "source IPs",
            Facet::UserAgent => "user agents",
            Facet::Region => "regions",
            Facet::ErrorCode => "error codes",
            Facet::InstanceType => "instance types",
            Facet::VolumeType => "volume types",
            Facet::Function => "functions",
            Facet::VolumeGib => "GiB per volume type",
            Facet::RefusedInstanceType => "instance types refused",
            Facet::AccessKey => "access keys",
            Facet::Account => "accounts",
        }
    }
}

/// Distinct values kept per facet per bucket; the rest are counted as `(other)`.
pub const MAX_VALUES: usize = 50;
pub const OTHER: &str = "(other)";

/// What a facet counts when a record leaves its field out, here and in
/// OpenSearch's aggregations ([`crate::opensearch::query::context_search`]):
/// CreateVolume's type defaults to gp2, as EC2's API did when these records
/// were written; a RunInstances with no instance set requests one.
pub const DEFAULT_VOLUME_TYPE: &str = "gp2";
/// An instance type the record does not name.
pub const UNKNOWN_INSTANCE_TYPE: &str = "unknown";
/// Instances requested by a RunInstances with no `maxCount`.
pub const DEFAULT_INSTANCES: f64 = 1.0;

/// Counts per facet value over some span of time. Mergeable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FacetCounts {
    pub events: f64,
    pub values: BTreeMap<Facet, FxHashMap<String, f64>>,
    /// Total GiB of volumes created.
    pub volume_gib: f64,
    /// The CloudTrail event IDs of the first records counted (at most
    /// [`EVENT_IDS`]), for a responder to look them up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
}

/// Event IDs kept per bucket and per context.
pub const EVENT_IDS: usize = 3;

impl FacetCounts {
    /// Adds `n` to a facet value, folding values beyond [`MAX_VALUES`] into `(other)`.
    pub fn add(&mut self, facet: Facet, value: &str, n: f64) {
        let map = self.values.entry(facet).or_default();
        if let Some(x) = map.get_mut(value) {
            *x += n;
        } else if map.len() < MAX_VALUES {
            map.insert(value.to_owned(), n);
        } else {
            *map.entry(OTHER.to_owned()).or_default() += n;
        }
    }

    /// Counts one CloudTrail record.
    pub fn record(&mut self, r: &Record) {
        self.events += 1.0;
        if let Some(p) = r.principal() {
            self.add(Facet::Principal, &p, 1.0);
        }
        if let Some(id) = r.event_id().filter(|_| self.event_ids.len() < EVENT_IDS) {
            self.event_ids.push(id.to_owned());
        }
        for (facet, value) in [
            (Facet::SourceIp, r.source_ip_address()),
            (Facet::UserAgent, r.user_agent()),
            (Facet::Region, r.aws_region()),
            (Facet::ErrorCode, r.error_code()),
            (Facet::AccessKey, r.user_identity().access_key_id),
            (Facet::Account, r.recipient_account_id()),
        ] {
            if let Some(v) = value {
                self.add(facet, v, 1.0);
            }
        }
        let params = r.request_parameters();
        let text = |key: &str| params.and_then(|p| p.get(key)).and_then(|v| v.as_str());
        // What was started: calls that failed started nothing.
        let started = r.error_code().is_none();
        match (r.event_source(), r.event_name()) {
            ("ec2.amazonaws.com", "RunInstances") => {
                let count: f64 = params
                    .and_then(|p| p.pointer("/instancesSet/items"))
                    .and_then(|v| v.as_array())
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|i| i.get("maxCount").and_then(number))
                            .sum()
                    })
                    .unwrap_or(DEFAULT_INSTANCES);
                let facet = if started {
                    Facet::InstanceType
                } else {
                    Facet::RefusedInstanceType
                };
                self.add(
                    facet,
                    text("instanceType").unwrap_or(UNKNOWN_INSTANCE_TYPE),
                    count,
                );
            }
            ("ec2.amazonaws.com", "CreateVolume") if started => {
                let kind = text("volumeType").unwrap_or(DEFAULT_VOLUME_TYPE);
                let gib = params
                    .and_then(|p| p.get("size"))
                    .and_then(number)
                    .unwrap_or(0.0);
                self.add(Facet::VolumeType, kind, 1.0);
                self.add(Facet::VolumeGib, kind, gib);
                self.volume_gib += gib;
            }
            ("lambda.amazonaws.com", name) if name.starts_with("Invoke") => {
                if let Some(f) = text("functionName") {
                    self.add(Facet::Function, f.rsplit(':').next().unwrap_or(f), 1.0);
                }
            }
            _ => {}
        }
    }

    pub fn merge(&mut self, other: &FacetCounts) {
        self.events += other.events;
        self.volume_gib += other.volume_gib;
        merge_ids(&mut self.event_ids, &other.event_ids);
        for (facet, map) in &other.values {
            for (value, n) in map {
                self.add(*facet, value, *n);
            }
        }
    }
}

/// Adds event IDs not yet kept, up to [`EVENT_IDS`].
pub fn merge_ids(kept: &mut Vec<String>, more: &[String]) {
    for id in more {
        if kept.len() >= EVENT_IDS {
            break;
        }
        if !kept.contains(id) {
            kept.push(id.clone());
        }
    }
}

/// A count or size from the call's parameters; an implausible one (NaN,
/// infinite, negative, absurd: the caller chose it) counts as absent.
fn number(v: &serde_json::Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .and_then(|x| crate::cloudtrail::quantity(x).ok())
}

/// One value of a facet: its count in the window, its average count per
/// interval of the same length in the baseline, and whether the baseline
/// never saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueCount {
    pub value: String,
    pub count: f64,
    pub baseline: f64,
    pub new: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FacetSummary {
    pub facet: Facet,
    pub top: Vec<ValueCount>,
}

/// The context of one anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Context {
    pub events: f64,
    /// Average events per interval in the baseline.
    pub baseline_events: f64,
    pub baseline_intervals: usize,
    pub facets: Vec<FacetSummary>,
    #[serde(skip_serializing_if = "is_zero", default)]
    pub volume_gib: f64,
    /// What the instances and volumes started in the window cost.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cost: Option<crate::cost::Estimate>,
    /// The event IDs of the window's first records (a few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Context {
    /// The context of a share `f` (0–1) of the window's events (the part
    /// of an interval that had arrived by some minute): its event count,
    /// volume and cost scaled; who and what stay the window's.
    pub fn share(&mut self, f: f64) {
        self.events *= f;
        self.volume_gib *= f;
        if let Some(cost) = &mut self.cost {
            cost.share(f);
        }
    }

    /// The top value of a facet, if any.
    pub fn top(&self, facet: Facet) -> Option<&ValueCount> {
        self.facets
            .iter()
            .find(|f| f.facet == facet)
            .and_then(|f| f.top.first())
    }

    /// One line for people: `who from where (new)`.
    pub fn who(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.top(Facet::Principal) {
            parts.push(format!(
                "{}{}",
                short_arn(&p.value),
                if p.new { " (new)" } else { "" }
            ));
        }
        if let Some(ip) = self.top(Facet::SourceIp) {
            parts.push(format!(
                "from {}{}",
                ip.value,
                if ip.new { " (new)" } else { "" }
            ));
        }
        parts.join(" ")
    }
}

/// A count as people write it: whole numbers without decimals, others
/// with two (`24`, `2.50`).
pub fn trim_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// The account of an ARN (`arn:aws:iam::1:user/bob` -> `1`); None for
/// other text or an ARN without one.
pub fn account_of(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    (parts.next() == Some("arn"))
        .then(|| parts.nth(3))
        .flatten()
        .filter(|a| !a.is_empty())
}

/// `arn:aws:iam::1:user/bob` -> `user/bob@1`; a service-linked role,
/// which is AWS acting for itself, -> `AWS (AWSServiceRoleForX)@1`; other
/// text as it is.
pub fn short_arn(arn: &str) -> String {
    let mut parts = arn.splitn(6, ':');
    match (parts.next(), parts.nth(3), parts.next()) {
        (Some("arn"), Some(account), Some(resource)) if !account.is_empty() => {
            match service_linked_role(arn) {
                Some(role) => format!("AWS ({role})@{account}"),
                None => format!("{resource}@{account}"),
            }
        }
        // A service acting as itself names only its endpoint.
        _ if arn.ends_with(".amazonaws.com") && !arn.contains(':') => format!("AWS ({arn})"),
        _ => arn.to_owned(),
    }
}

/// Builds the context: the `top` values of each facet in the window, each
/// against its average per interval over `baseline_intervals` intervals.
pub fn build(
    window: &FacetCounts,
    baseline: &FacetCounts,
    baseline_intervals: usize,
    top: usize,
) -> Context {
    let per = baseline_intervals.max(1) as f64;
    let mut facets = Vec::new();
    for facet in Facet::ALL {
        let Some(values) = window.values.get(&facet) else {
            continue;
        };
        let base = baseline.values.get(&facet);
        let mut list: Vec<ValueCount> = values
            .iter()
            .map(|(v, &count)| {
                let b = base.and_then(|m| m.get(v)).copied().unwrap_or(0.0);
                ValueCount {
                    value: v.clone(),
                    count,
                    baseline: round2(b / per),
                    new: b == 0.0 && baseline_intervals > 0,
                }
            })
            .collect();
        list.sort_by(|a, b| b.count.total_cmp(&a.count).then(a.value.cmp(&b.value)));
        list.truncate(top);
        facets.push(FacetSummary { facet, top: list });
    }
    Context {
        events: window.events,
        baseline_events: round2(baseline.events / per),
        baseline_intervals,
        facets,
        volume_gib: window.volume_gib,
        cost: cost_of(window),
        event_ids: window.event_ids.clone(),
    }
}

/// The cost of what the window started, from the shipped price table.
pub fn cost_of(window: &FacetCounts) -> Option<crate::cost::Estimate> {
    let pairs = |facet| {
        let mut v: Vec<(String, f64)> = window
            .values
            .get(&facet)
            .map(|m| m.iter().map(|(k, n)| (k.clone(), *n)).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    };
    crate::cost::estimate(
        crate::cost::prices(),
        &pairs(Facet::InstanceType),
        &pairs(Facet::VolumeGib),
    )
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: serde_json::Value) -> Record<'static> {
        let mut base = json!({"eventTime": "2026-01-07T03:10:00Z", "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances", "awsRegion": "us-west-2", "sourceIPAddress": "203.0.113.66",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::777788889999:user/carol"}});
        for (k, x) in v.as_object().unwrap() {
            base[k] = x.clone();
        }
        Record::from_value(base).unwrap()
    }

    #[test]
    fn run_instances_count_instances_per_type_and_new_values_are_marked() {
        let mut window = FacetCounts::default();
        for n in [4, 6] {
            window.record(&rec(
                json!({"requestParameters": {"instanceType": "p4d.24xlarge",
                "instancesSet": {"items": [{"maxCount": n}]}}}),
            ));
        }
        let mut baseline = FacetCounts::default();
        baseline.record(&rec(json!({"sourceIPAddress": "198.51.100.12",
            "requestParameters": {"instanceType": "t3.medium", "instancesSet": {"items": [{"maxCount": 1}]}}})));
        let c = build(&window, &baseline, 144, 5);
        assert_eq!(c.events, 2.0);
        let types = c.top(Facet::InstanceType).unwrap();
        assert_eq!(
            (types.value.as_str(), types.count, types.new),
            ("p4d.24xlarge", 10.0, true)
        );
        let ip = c.top(Facet::SourceIp).unwrap();
        assert!(ip.new, "the baseline only saw 198.51.100.12");
        let who = c.top(Facet::Principal).unwrap();
        assert!(!who.new);
        assert_eq!(who.baseline, 0.01, "1 call over 144 intervals");
        assert_eq!(c.who(), "user/carol@777788889999 from 203.0.113.66 (new)");
        let cost = c.cost.expect("instances were started");
        let p4d = crate::cost::prices().instances["p4d.24xlarge"];
        assert_eq!(cost.items[0].what, "10 × p4d.24xlarge");
        assert!((cost.per_hour - 10.0 * p4d).abs() < 0.01);
    }

    #[test]
    fn failed_calls_start_nothing() {
        let mut w = FacetCounts::default();
        w.record(&rec(json!({"errorCode": "Client.VcpuLimitExceeded",
            "requestParameters": {"instanceType": "p4d.24xlarge", "instancesSet": {"items": [{"maxCount": 8}]}}})));
        assert!(!w.values.contains_key(&Facet::InstanceType));
        assert_eq!(w.values[&Facet::ErrorCode]["Client.VcpuLimitExceeded"], 1.0);
        assert_eq!(cost_of(&w), None);
        // What was asked for and refused is still counted, apart.
        assert_eq!(w.values[&Facet::RefusedInstanceType]["p4d.24xlarge"], 8.0);
    }

    #[test]
    fn volumes_and_functions_are_counted() {
        let mut w = FacetCounts::default();
        w.record(&rec(json!({"eventName": "CreateVolume", "requestParameters": {"size": 500, "volumeType": "io2"}})));
        w.record(&rec(json!({"eventSource": "lambda.amazonaws.com", "eventName": "Invoke",
            "requestParameters": {"functionName": "arn:aws:lambda:us-east-1:1:function:thumbnailer"}})));
        assert_eq!(w.volume_gib, 500.0);
        assert_eq!(w.values[&Facet::VolumeGib]["io2"], 500.0);
        let cost = cost_of(&w).unwrap();
        assert_eq!(cost.items[0].what, "500 GiB io2");
        assert_eq!(w.values[&Facet::VolumeType]["io2"], 1.0);
        assert_eq!(w.values[&Facet::Function]["thumbnailer"], 1.0);
    }

    #[test]
    fn values_beyond_the_cap_fold_into_other_and_merging_adds() {
        let mut a = FacetCounts::default();
        for i in 0..(MAX_VALUES + 3) {
            a.add(Facet::SourceIp, &format!("10.0.0.{i}"), 1.0);
        }
        assert_eq!(a.values[&Facet::SourceIp].len(), MAX_VALUES + 1);
        assert_eq!(a.values[&Facet::SourceIp][OTHER], 3.0);
        let mut b = FacetCounts::default();
        b.add(Facet::SourceIp, "10.0.0.0", 2.0);
        b.merge(&a);
        assert_eq!(b.values[&Facet::SourceIp]["10.0.0.0"], 3.0);
    }

    #[test]
    fn arns_shorten_for_people() {
        assert_eq!(
            short_arn("arn:aws:iam::111122223333:user/bob"),
            "user/bob@111122223333"
        );
        assert_eq!(
            short_arn("arn:aws:sts::1:assumed-role/r/s"),
            "assumed-role/r/s@1"
        );
        // A service acting as itself reads as AWS, as its linked roles do.
        assert_eq!(
            short_arn("apigateway.amazonaws.com"),
            "AWS (apigateway.amazonaws.com)"
        );
        assert_eq!(short_arn("AIDAEXAMPLE"), "AIDAEXAMPLE");
        // A service-linked role is AWS acting for itself, as either ARN.
        for arn in [
            "arn:aws:sts::1:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling",
            "arn:aws:iam::1:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
        ] {
            assert_eq!(short_arn(arn), "AWS (AWSServiceRoleForAutoScaling)@1");
        }
        // A role of one's own that only sounds like one is not.
        assert_eq!(
            short_arn("arn:aws:iam::1:user/AWSServiceRoleForFun"),
            "user/AWSServiceRoleForFun@1"
        );
    }
}
