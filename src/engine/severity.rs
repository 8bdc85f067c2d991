//! How urgent an incident is, and whether it pages.
//!
//! An incident's severity comes from its grade (which, for insights, is the
//! chance of its rate under the false-alarm budget: 0.8 is ten times rarer
//! than the budget allows), from how many kinds of detection agree, from the
//! cost of what it started, from what it touches (IAM, logging, a root
//! principal), and from the severity its rule files declare. Only incidents
//! at or above `--page-severity` (default medium) page; the rest show in the
//! report, the NDJSON and the dashboards.

use super::anomaly::{Anomaly, AnomalyKind, Severity};
use super::group::Incident;
use std::collections::BTreeSet;

/// The default of `--page-severity`.
pub const DEFAULT_PAGE: Severity = Severity::Medium;

/// What a finding touches that makes it worth more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sensitive {
    /// IAM users, keys, policies.
    Iam,
    /// CloudTrail, GuardDuty, flow logs: what would show an attacker.
    Logging,
    /// The account's root user.
    Root,
}

const LOGGING_SOURCES: [&str; 4] = [
    "cloudtrail.amazonaws.com",
    "guardduty.amazonaws.com",
    "config.amazonaws.com",
    "DeleteFlowLogs",
];

/// IAM calls that change no one's permissions: reads, and a principal's own
/// access keys (a key made for another user is a rule finding).
fn routine_iam(name: &str) -> bool {
    ["Get", "List", "Generate", "Simulate"]
        .iter()
        .any(|p| name.starts_with(p))
        || matches!(
            name,
            "CreateAccessKey" | "UpdateAccessKey" | "DeleteAccessKey"
        )
}

/// Whether `text` names IAM other than [`routine_iam`] calls: a bare
/// `iam.amazonaws.com` (a detector's entity), or `iam.amazonaws.com:NAME`.
fn names_iam(text: &str) -> bool {
    text.match_indices("iam.amazonaws.com").any(|(at, m)| {
        let rest = &text[at + m.len()..];
        match rest.strip_prefix(':') {
            Some(call) => {
                let name: String = call
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                !routine_iam(&name)
            }
            None => true,
        }
    })
}

/// What `a` touches, from the services and principals it names.
pub fn touches(a: &Anomaly) -> BTreeSet<Sensitive> {
    let mut out = BTreeSet::new();
    let mut named: Vec<String> = vec![a.summary.clone()];
    if let Some(e) = &a.entity {
        // An insight names its call in two fields: judge them together.
        let call = e.get("eventSource").zip(e.get("eventName"));
        if let Some((source, name)) = call {
            named.push(format!("{source}:{name}"));
        }
        named.extend(
            e.iter()
                .filter(|(k, _)| {
                    call.is_none() || !matches!(k.as_str(), "eventSource" | "eventName")
                })
                .map(|(_, v)| v.clone()),
        );
    }
    for text in &named {
        if names_iam(text) {
            out.insert(Sensitive::Iam);
        }
        if LOGGING_SOURCES.iter().any(|s| text.contains(s)) {
            out.insert(Sensitive::Logging);
        }
    }
    if a.subjects.iter().any(|s| s.ends_with(":root")) {
        out.insert(Sensitive::Root);
    }
    out
}

/// Whether an address, or the first address of a network (`a.b.c.0/24`), is
/// public: not private (RFC 1918, unique local), loopback, or a service name.
pub fn public_address(addr: &str) -> bool {
    let ip = addr.split('/').next().unwrap_or(addr);
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            !(v4.is_private() || v4.is_loopback() || v4.is_link_local())
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            !(v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00)
        }
        Err(_) => false,
    }
}

/// What makes a new-activity feature matter with no baseline at all, when an
/// established principal shows it for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstTime {
    /// A call that changes IAM or touches logging.
    Sensitive(Sensitive),
    /// A public network (not private, loopback or a service name).
    PublicNetwork,
}

/// Whether a new-activity feature (`call <source>:<name>`, `network <net>`)
/// matters by itself the first time an established principal shows it.
pub fn sensitive_feature(feature: &str) -> Option<FirstTime> {
    if let Some(net) = feature.strip_prefix("network ") {
        return public_address(net).then_some(FirstTime::PublicNetwork);
    }
    let call = feature.strip_prefix("call ")?;
    if names_iam(call) {
        Some(FirstTime::Sensitive(Sensitive::Iam))
    } else if LOGGING_SOURCES.iter().any(|s| call.contains(s)) && turns_off(call) {
        Some(FirstTime::Sensitive(Sensitive::Logging))
    } else {
        None
    }
}

/// Whether a logging call (`source:name`) stops, deletes, disables or
/// detaches something by its name alone. Whether a `Put…` or `Update…`
/// (event selectors, a trail's settings) narrows logging or widens it is in
/// its parameters, which the rules judge: an administrator adding data
/// events to the trail is not turning it off.
fn turns_off(call: &str) -> bool {
    let name = call.rsplit(':').next().unwrap_or(call);
    ["Stop", "Delete", "Disable", "Disassociate", "Remove"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Whether a feature (`call <source>:<name>`) is a call that takes
/// control: changes IAM, touches logging, reads secrets, shares data, or
/// runs commands on instances. A never-seen principal doing one of these
/// in its first hours is what an intruder with admin rights does next.
pub fn takes_control(feature: &str) -> bool {
    let Some(call) = feature.strip_prefix("call ") else {
        return false;
    };
    const CALLS: [&str; 13] = [
        "secretsmanager.amazonaws.com:GetSecretValue",
        "secretsmanager.amazonaws.com:BatchGetSecretValue",
        "ssm.amazonaws.com:GetParameter",
        "ec2.amazonaws.com:ModifySnapshotAttribute",
        "ec2.amazonaws.com:ModifyImageAttribute",
        "rds.amazonaws.com:ModifyDBSnapshotAttribute",
        "rds.amazonaws.com:ModifyDBClusterSnapshotAttribute",
        "s3.amazonaws.com:PutBucketPolicy",
        "s3.amazonaws.com:PutBucketAcl",
        "ssm.amazonaws.com:SendCommand",
        "ssm.amazonaws.com:StartSession",
        "ec2-instance-connect.amazonaws.com:SendSSHPublicKey",
        "ec2.amazonaws.com:GetPasswordData",
    ];
    // GetParameter covers GetParameters and GetParametersByPath.
    names_iam(call)
        || LOGGING_SOURCES.iter().any(|s| call.contains(s))
        || CALLS.iter().any(|c| call.starts_with(c))
}

impl Sensitive {
    /// The word a finding's `novelty.practised` uses for it.
    pub fn word(self) -> &'static str {
        match self {
            Sensitive::Iam => "iam",
            Sensitive::Logging => "logging",
            Sensitive::Root => "root",
        }
    }
}

/// Whether `a` is an established principal doing, for the first time,
/// something that matches `want` and that it does not do as its job (a
/// deploy role's first `PutRolePolicy` after a hundred `CreateRole`s is
/// its job, not an intruder's first IAM change).
fn first_time(a: &Anomaly, want: impl Fn(FirstTime) -> bool) -> bool {
    a.novelty.as_ref().is_some_and(|n| {
        n.established
            && n.new.iter().any(|f| {
                sensitive_feature(f).is_some_and(|kind| {
                    let practised = match kind {
                        FirstTime::Sensitive(s) => n.practised.iter().any(|p| p == s.word()),
                        FirstTime::PublicNetwork => false,
                    };
                    want(kind) && !practised
                })
            })
    })
}

/// Whether `a` shows calls from a public network its principal never used
/// (a novelty finding's `network …` feature). An address new only to a
/// detector's baseline is not enough: a person's first IAM change comes from
/// the address they always use.
pub fn from_new_network(a: &Anomaly) -> bool {
    first_time(a, |f| f == FirstTime::PublicNetwork)
}

/// Whether `a` is an established principal's first call that changes IAM or
/// touches logging: worth waking for however often new calls come by chance.
fn first_sensitive_call(a: &Anomaly) -> bool {
    first_time(a, |f| matches!(f, FirstTime::Sensitive(_)))
}

/// Whether `a` is a never-seen principal taking control in its first hours
/// ([`takes_control`]), from a public network (a secrets-rotation role's
/// first reads come from inside), either one the organisation never used
/// or in an organisation where new principals rarely take control
/// ([`super::novelty::ROUTINE_NEWCOMERS_PER_DAY`]): a CI pipeline minting
/// roles that act every day, from its own network, is not an intruder.
fn newcomer_taking_control(a: &Anomaly) -> bool {
    a.novelty
        .as_ref()
        .and_then(|n| n.never_seen.as_ref())
        .is_some_and(|n| {
            n.public
                && !n.controls.is_empty()
                && (n.strange_network
                    || n.like_it_per_day < super::novelty::ROUTINE_NEWCOMERS_PER_DAY)
        })
}

/// Whether `a` counts refused calls (an error-rate insight, or error codes
/// its baseline never had): what a stolen credential probing its reach
/// leaves.
fn refused(a: &Anomaly) -> bool {
    a.detector == "ApiErrorRateInsight"
        || a.context
            .iter()
            .flat_map(|c| &c.facets)
            .any(|f| f.facet == crate::context::Facet::ErrorCode && f.top.iter().any(|v| v.new))
}

/// Whether `a` is a runaway: an RCF window ten times its expectation and a
/// thousand events over it (a function invoking itself).
fn runaway(a: &Anomaly) -> bool {
    a.kind == AnomalyKind::Rcf
        && a.actual >= a.expected + 1000.0
        && a.actual >= 10.0 * a.expected.max(1.0)
}

/// What it started must cost this much an hour to be worth waking for by
/// itself: a deploy's few instances are not ($2 an hour), a burst of large
/// volumes is.
pub const WAKE_COST_PER_HOUR: f64 = 5.0;

/// Whether every principal `a` concerns is an AWS service acting for itself
/// (`autoscaling.amazonaws.com`, a service-linked role).
fn aws_acting(a: &Anomaly) -> bool {
    !a.subjects.is_empty()
        && a.subjects.iter().all(|s| {
            s.ends_with(".amazonaws.com")
                || s.contains(":role/aws-service-role/")
                || s.contains("assumed-role/AWSServiceRoleFor")
        })
}

/// The severity of `inc` (whose members index `anomalies`). First, what
/// makes an incident worth waking someone for: a cost of
/// [`WAKE_COST_PER_HOUR`] or more, something sensitive touched, calls from
/// a public network the principal never used, a never-seen principal
/// taking control from outside, refused calls, or a runaway rate. An incident with none of these is known principals doing
/// free, harmless things (a deploy, a new service, an on-call look around):
/// it is low, however rare. Otherwise:
/// - critical: what it started costs $100 an hour or more, or three kinds
///   agree at a grade of 0.95, or a rule says so;
/// - high: $10 an hour, or two kinds agree at 0.9, or it touches IAM,
///   logging or root at 0.9, or an established principal changed IAM or
///   touched logging for the first time (new activity's grade comes from
///   chance, and a young deployment's history cannot make one new call rare
///   enough: this needs no baseline, as a rule does not);
/// - medium: a grade of 0.8, or calls from a public network an established
///   principal never used, except AWS services acting for themselves
///   (Auto Scaling, service-linked roles), which need $10 an hour;
/// - low: the rest.
pub fn of_incident(inc: &Incident, anomalies: &[Anomaly]) -> Severity {
    let all: Vec<&Anomaly> = inc.members.iter().map(|&i| &anomalies[i]).collect();
    let declared = all
        .iter()
        .filter(|a| a.kind == AnomalyKind::Rule)
        .filter_map(|a| a.severity)
        .max();
    // A rule finding declared low is context, not evidence (a Sigma rule
    // of level low matches any call by an assumed role): it is listed with
    // its incident and adds nothing to how severe the incident is.
    let members: Vec<&Anomaly> = all.into_iter().filter(|a| !is_context(a)).collect();
    let kinds: BTreeSet<AnomalyKind> = members.iter().map(|a| a.kind).collect();
    let cost = super::group::cost_per_hour(members.iter().copied());
    let sensitive = members.iter().any(|a| !touches(a).is_empty());
    let foreign = members.iter().any(|a| from_new_network(a));
    let first_sensitive = members
        .iter()
        .any(|a| first_sensitive_call(a) || newcomer_taking_control(a));
    let grade = if members.len() == inc.members.len() {
        inc.grade
    } else {
        members.iter().map(|a| a.grade).fold(0.0, f64::max)
    };
    let worth_waking = cost >= WAKE_COST_PER_HOUR
        || sensitive
        || foreign
        || first_sensitive
        || members.iter().any(|a| refused(a) || runaway(a));
    let aws_only = members.iter().all(|a| aws_acting(a));
    let computed = if !worth_waking {
        Severity::Low
    } else if cost >= 100.0 || (grade >= 0.95 && kinds.len() >= 3) {
        Severity::Critical
    } else if cost >= 10.0
        || (grade >= 0.9 && kinds.len() >= 2)
        || (sensitive && grade >= 0.9)
        || first_sensitive
    {
        Severity::High
    } else if (grade >= 0.8 || foreign) && !aws_only {
        Severity::Medium
    } else {
        Severity::Low
    };
    declared.map_or(computed, |d| d.max(computed))
}

/// A rule finding declared low: listed with its incident, never evidence.
fn is_context(a: &Anomaly) -> bool {
    a.kind == AnomalyKind::Rule && a.severity == Some(Severity::Low)
}

/// The severity of one finding standing alone: an incident of one, as the
/// deployed enricher judges an anomaly detector's alert.
pub fn of_finding(a: &Anomaly) -> Severity {
    let alone = Incident {
        id: 0,
        start: a.start,
        end: a.end,
        grade: a.grade,
        members: vec![0],
    };
    of_incident(&alone, std::slice::from_ref(a))
}

/// When `inc` could first page at `page_at`: the earliest `detected` of its
/// members at which those detected by then already make it that severe (a
/// new principal's first call is low; the RCF window ten minutes later that
/// shows it runaway makes it page). None when it never does.
pub fn pages_from(
    inc: &Incident,
    anomalies: &[Anomaly],
    page_at: Severity,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let mut order = inc.members.clone();
    order.sort_by_key(|&i| anomalies[i].detected);
    (1..=order.len()).find_map(|n| {
        let known = &order[..n];
        let by_then = anomalies[known[n - 1]].detected;
        if n < order.len() && anomalies[order[n]].detected == by_then {
            return None; // judge everything detected at the same moment together
        }
        let partial = Incident {
            members: known.to_vec(),
            grade: known
                .iter()
                .map(|&i| anomalies[i].grade)
                .fold(0.0, f64::max),
            ..inc.clone()
        };
        (of_incident(&partial, anomalies) >= page_at).then_some(by_then)
    })
}

/// Groups `anomalies` into incidents ([`super::group::group`]) and
/// classifies them: what every run reports.
pub fn incidents(anomalies: &mut [Anomaly], page_at: Severity) -> Vec<Incident> {
    let incidents = super::group::group(anomalies);
    classify(anomalies, &incidents, page_at);
    incidents
}

/// Sets each anomaly's `severity` (its incident's) and `page` (whether that
/// is at or above `page_at`).
pub fn classify(anomalies: &mut [Anomaly], incidents: &[Incident], page_at: Severity) {
    for inc in incidents {
        let severity = of_incident(inc, anomalies);
        for &i in &inc.members {
            anomalies[i].severity = Some(severity);
            anomalies[i].page = Some(severity >= page_at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::group::group;
    use chrono::{DateTime, Duration, Utc};

    fn a(kind: AnomalyKind, grade: f64, summary: &str, who: &str) -> Anomaly {
        let start: DateTime<Utc> = "2026-01-07T14:20:00Z".parse().unwrap();
        Anomaly {
            grade,
            summary: summary.into(),
            detected: start + Duration::minutes(1),
            ..Anomaly::sample(kind, who, start)
        }
    }

    /// A new-activity finding: `who` did `features` for the first time, at a
    /// grade from chance (0.6: common enough in a young deployment).
    fn first_time(features: &[&str], who: &str, established: bool) -> Anomaly {
        Anomaly {
            novelty: Some(crate::engine::anomaly::Novelty {
                new: features.iter().map(|f| f.to_string()).collect(),
                rare: Vec::new(),
                established,
                ..Default::default()
            }),
            ..a(
                AnomalyKind::NewEvent,
                0.6,
                &format!("{who} did for the first time: {}", features.join(", ")),
                who,
            )
        }
    }

    fn severity_of(mut list: Vec<Anomaly>) -> Severity {
        let incidents = group(&mut list);
        assert_eq!(incidents.len(), 1);
        classify(&mut list, &incidents, DEFAULT_PAGE);
        assert!(list.iter().all(|x| x.severity == list[0].severity));
        list[0].severity.unwrap()
    }

    /// `x` as an error-rate insight: refused calls, worth waking for.
    fn denied(mut x: Anomaly) -> Anomaly {
        x.detector = "ApiErrorRateInsight".into();
        x
    }

    /// `a` with what it started costing `per_hour`.
    fn costing(mut x: Anomaly, per_hour: f64) -> Anomaly {
        x.context = Some(crate::context::Context {
            events: 1.0,
            baseline_events: 0.0,
            baseline_intervals: 6,
            facets: Vec::new(),
            volume_gib: 0.0,
            cost: Some(crate::cost::Estimate {
                items: Vec::new(),
                per_hour,
                per_day: per_hour * 24.0,
                currency: "USD".into(),
                basis: String::new(),
                assumptions: Vec::new(),
            }),
            event_ids: Vec::new(),
        });
        x
    }

    const BOB: &str = "arn:aws:iam::1:user/bob";

    #[test]
    fn severity_rises_with_grade_agreement_and_what_is_touched() {
        use AnomalyKind::*;
        let bob = BOB;
        assert_eq!(
            severity_of(vec![denied(a(Insight, 0.7, "", bob))]),
            Severity::Low
        );
        assert_eq!(
            severity_of(vec![denied(a(Insight, 0.85, "", bob))]),
            Severity::Medium
        );
        assert_eq!(
            severity_of(vec![
                denied(a(Insight, 0.92, "", bob)),
                a(Rcf, 0.9, "", bob)
            ]),
            Severity::High
        );
        assert_eq!(
            severity_of(vec![
                denied(a(Insight, 0.97, "", bob)),
                a(Rcf, 0.9, "", bob),
                a(NewEvent, 1.0, "", bob)
            ]),
            Severity::Critical
        );
        assert_eq!(
            severity_of(vec![costing(a(Rcf, 0.5, "", bob), 12.0)]),
            Severity::High
        );
        assert_eq!(
            severity_of(vec![costing(a(Rcf, 0.5, "", bob), 150.0)]),
            Severity::Critical
        );
        assert_eq!(
            severity_of(vec![costing(a(Rcf, 0.85, "", bob), 6.0)]),
            Severity::Medium
        );
        // A deploy's few instances are not worth waking for by themselves.
        assert_eq!(
            severity_of(vec![costing(a(Rcf, 1.0, "", bob), 2.0)]),
            Severity::Low
        );
        // An established principal's first IAM change or logging call needs
        // no rare grade; a principal barely seen while learning's does.
        for call in [
            "call iam.amazonaws.com:CreateUser",
            "call cloudtrail.amazonaws.com:StopLogging",
            "call ec2.amazonaws.com:DeleteFlowLogs",
        ] {
            assert_eq!(
                severity_of(vec![first_time(&[call], bob, true)]),
                Severity::High
            );
            assert_eq!(
                severity_of(vec![first_time(&[call], bob, false)]),
                Severity::Low
            );
        }
        // Whether a first `PutEventSelectors` narrows the trail or adds data
        // events to it is in its parameters: the rules judge it, and a busy
        // administrator adding data events does not page by its name.
        assert!(
            severity_of(vec![first_time(
                &["call cloudtrail.amazonaws.com:PutEventSelectors"],
                bob,
                true
            )]) < Severity::High
        );
        // The demo's CI deploy role paged six times on its first
        // PutRolePolicy (grade 0.42) though changing IAM is its job: a
        // principal is held to its own bar, a first call of a kind it
        // already makes is not a first IAM change.
        let mut deploy = first_time(&["call iam.amazonaws.com:PutRolePolicy"], bob, true);
        if let Some(n) = deploy.novelty.as_mut() {
            n.practised = vec!["iam".into()];
        }
        assert_eq!(severity_of(vec![deploy.clone()]), Severity::Low);
        // Its first logging call is still one.
        if let Some(n) = deploy.novelty.as_mut() {
            n.new = vec!["call cloudtrail.amazonaws.com:StopLogging".into()];
        }
        assert_eq!(severity_of(vec![deploy]), Severity::High);
        // A public network it never used is worth waking for, and pages.
        assert_eq!(
            severity_of(vec![first_time(&["network 203.0.113.0/24"], bob, true)]),
            Severity::Medium
        );
        assert_eq!(
            severity_of(vec![denied(a(Insight, 0.9, "", "arn:aws:iam::1:root"))]),
            Severity::High
        );
        // A rule's declared severity is a floor.
        let mut rule = a(Rule, 1.0, "", bob);
        rule.severity = Some(Severity::Critical);
        assert_eq!(severity_of(vec![rule]), Severity::Critical);
    }

    #[test]
    fn known_principals_doing_free_harmless_things_do_not_page_however_rare() {
        use AnomalyKind::*;
        let bob = BOB;
        // A deploy wave or a new service: every kind agrees, nothing to wake for.
        let ordinary = vec![
            a(Insight, 1.0, "states:StartExecution calls at 1.2/min", bob),
            a(Rcf, 1.0, "", bob),
            first_time(
                &[
                    "call states.amazonaws.com:StartExecution",
                    "network 10.0.60.0/24",
                ],
                bob,
                true,
            ),
        ];
        assert_eq!(severity_of(ordinary.clone()), Severity::Low);
        // The same from a public network bob never used pages.
        let mut foreign = ordinary.clone();
        foreign[2] = first_time(&["network 203.0.113.0/24"], bob, true);
        assert_eq!(severity_of(foreign), Severity::Critical);
        // A private network new to the principal is not foreign.
        let mut inside = ordinary.clone();
        inside[2] = first_time(&["network 10.1.2.0/24"], bob, true);
        assert_eq!(severity_of(inside), Severity::Low);
        // Rotating one's own key and reading IAM are routine; a policy change is not.
        let own = [
            "call iam.amazonaws.com:CreateAccessKey",
            "call iam.amazonaws.com:ListAccessKeys",
            "call iam.amazonaws.com:DeleteAccessKey",
        ];
        assert_eq!(
            severity_of(vec![first_time(&own, bob, true)]),
            Severity::Low
        );
        let insight_on = |name: &str| {
            let mut x = a(Insight, 1.0, "", bob);
            x.entity = Some(
                [("eventSource", "iam.amazonaws.com"), ("eventName", name)]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .into(),
            );
            x
        };
        assert_eq!(
            severity_of(vec![insight_on("DeleteAccessKey")]),
            Severity::Low
        );
        assert_eq!(
            severity_of(vec![insight_on("AttachUserPolicy")]),
            Severity::High
        );
        // Refused calls are worth waking for.
        let mut denied = a(Insight, 0.85, "", bob);
        denied.detector = "ApiErrorRateInsight".into();
        assert_eq!(severity_of(vec![denied]), Severity::Medium);
        // A runaway: a function invoking itself, free as each call is.
        let mut runaway = a(Rcf, 1.0, "", "thumbnailer");
        (runaway.actual, runaway.expected) = (3013.0, 80.0);
        assert_eq!(severity_of(vec![runaway.clone()]), Severity::Medium);
        runaway.expected = 400.0;
        assert_eq!(severity_of(vec![runaway]), Severity::Low);
        // AWS acting for itself with a small cost: a scale-out, not a page.
        let scale_out = costing(a(Insight, 1.0, "", "autoscaling.amazonaws.com"), 8.0);
        assert_eq!(severity_of(vec![scale_out.clone()]), Severity::Low);
        assert_eq!(severity_of(vec![costing(scale_out, 20.0)]), Severity::High);
    }

    #[test]
    fn an_incident_pages_from_when_what_was_detected_by_then_is_severe_enough() {
        let mut first = a(
            AnomalyKind::NewEvent,
            0.8,
            "thumbnailer did for the first time: principal (first activity)",
            "thumbnailer",
        );
        first.detected = first.start + Duration::minutes(1);
        let mut loop_ = a(AnomalyKind::Rcf, 1.0, "", "thumbnailer");
        (loop_.actual, loop_.expected) = (3013.0, 6.9);
        loop_.detected = loop_.start + Duration::minutes(10);
        let mut list = vec![first, loop_];
        let incidents = group(&mut list);
        assert_eq!(incidents.len(), 1);
        assert_eq!(
            pages_from(&incidents[0], &list, DEFAULT_PAGE),
            Some(list[1].detected)
        );
        assert_eq!(pages_from(&incidents[0], &list, Severity::Critical), None);
    }

    #[test]
    fn only_incidents_at_the_page_severity_page() {
        let mut list = vec![
            denied(a(AnomalyKind::Insight, 0.85, "", BOB)),
            denied(a(AnomalyKind::Insight, 0.75, "", "carol")),
        ];
        let incidents = group(&mut list);
        classify(&mut list, &incidents, Severity::Medium);
        assert_eq!(list[0].page, Some(true));
        assert_eq!(list[1].page, Some(false));
        classify(&mut list, &incidents, Severity::High);
        assert_eq!(list[0].page, Some(false));
        let v = serde_json::to_value(&list[0]).unwrap();
        assert_eq!(v["severity"], "medium");
        assert_eq!(v["page"], false);
        assert_eq!(Severity::parse("critical"), Some(Severity::Critical));
        assert_eq!(Severity::parse("urgent"), None);
    }
}
