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

/// What `a` touches, from the services and principals it names.
pub fn touches(a: &Anomaly) -> BTreeSet<Sensitive> {
    let mut out = BTreeSet::new();
    let named = a
        .entity
        .iter()
        .flat_map(|e| e.values())
        .map(String::as_str)
        .chain(std::iter::once(a.summary.as_str()));
    for text in named {
        if text.contains("iam.amazonaws.com") {
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

/// The severity of `inc` (whose members index `anomalies`):
/// - critical: what it started costs $100 an hour or more, or three kinds
///   agree at a grade of 0.95, or a rule says so;
/// - high: $10 an hour, or two kinds agree at 0.9, or it touches IAM,
///   logging or root at 0.9;
/// - medium: a grade of 0.8, except new activity alone, which needs several
///   new things at once or something sensitive touched, and an RCF model
///   alone, which needs a cost or something sensitive;
/// - low: the rest.
pub fn of_incident(inc: &Incident, anomalies: &[Anomaly]) -> Severity {
    let members: Vec<&Anomaly> = inc.members.iter().map(|&i| &anomalies[i]).collect();
    let kinds: BTreeSet<AnomalyKind> = members.iter().map(|a| a.kind).collect();
    let cost = inc.cost_per_hour(anomalies);
    let sensitive = members.iter().any(|a| !touches(a).is_empty());
    let declared = members
        .iter()
        .filter(|a| a.kind == AnomalyKind::Rule)
        .filter_map(|a| a.severity)
        .max();
    let grade = inc.grade;
    // New activity alone: one new call is ordinary in a working organisation.
    let novelty_only = kinds.iter().all(|k| *k == AnomalyKind::NewEvent);
    // An RCF model alone, on one series with no cost behind it: the
    // plugin's grade is not calibrated against chance, and sparse series
    // (a nightly job, a deploy's IAM changes) reach 1.0 by themselves.
    let rcf_only = kinds.iter().all(|k| *k == AnomalyKind::Rcf);
    let several_new = members
        .iter()
        .any(|a| a.kind == AnomalyKind::NewEvent && a.actual >= 2.0);
    let computed = if cost >= 100.0 || (grade >= 0.95 && kinds.len() >= 3) {
        Severity::Critical
    } else if cost >= 10.0 || (grade >= 0.9 && kinds.len() >= 2) || (sensitive && grade >= 0.9) {
        Severity::High
    } else if grade >= 0.8
        && (!novelty_only || several_new || sensitive)
        && (!rcf_only || cost > 0.0 || sensitive)
    {
        Severity::Medium
    } else {
        Severity::Low
    };
    declared.map_or(computed, |d| d.max(computed))
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

    fn severity_of(mut list: Vec<Anomaly>) -> Severity {
        let incidents = group(&mut list);
        assert_eq!(incidents.len(), 1);
        classify(&mut list, &incidents, DEFAULT_PAGE);
        assert!(list.iter().all(|x| x.severity == list[0].severity));
        list[0].severity.unwrap()
    }

    #[test]
    fn severity_rises_with_grade_agreement_and_what_is_touched() {
        let bob = "arn:aws:iam::1:user/bob";
        use AnomalyKind::*;
        assert_eq!(severity_of(vec![a(Insight, 0.7, "", bob)]), Severity::Low);
        assert_eq!(
            severity_of(vec![a(Insight, 0.85, "", bob)]),
            Severity::Medium
        );
        assert_eq!(
            severity_of(vec![a(Insight, 0.92, "", bob), a(Rcf, 0.9, "", bob)]),
            Severity::High
        );
        assert_eq!(
            severity_of(vec![
                a(Insight, 0.97, "", bob),
                a(Rcf, 0.9, "", bob),
                a(NewEvent, 1.0, "", bob)
            ]),
            Severity::Critical
        );
        // An RCF model alone, with no cost and nothing sensitive, does not page.
        assert_eq!(severity_of(vec![a(Rcf, 1.0, "", bob)]), Severity::Low);
        // One new call alone does not page; with something sensitive it does.
        assert_eq!(
            severity_of(vec![a(
                NewEvent,
                1.0,
                "bob did call s3.amazonaws.com:GetObject",
                bob
            )]),
            Severity::Low
        );
        assert_eq!(
            severity_of(vec![a(
                NewEvent,
                1.0,
                "bob did call iam.amazonaws.com:CreateUser",
                bob
            )]),
            Severity::High
        );
        let mut several = a(NewEvent, 1.0, "", bob);
        several.actual = 2.0;
        assert_eq!(severity_of(vec![several]), Severity::Medium);
        assert_eq!(
            severity_of(vec![a(Insight, 0.9, "", "arn:aws:iam::1:root")]),
            Severity::High
        );
        // A rule's declared severity is a floor.
        let mut rule = a(Rule, 1.0, "", bob);
        rule.severity = Some(Severity::Critical);
        assert_eq!(severity_of(vec![rule]), Severity::Critical);
    }

    #[test]
    fn only_incidents_at_the_page_severity_page() {
        let bob = "arn:aws:iam::1:user/bob";
        let mut list = vec![
            a(AnomalyKind::Insight, 0.85, "", bob),
            a(AnomalyKind::Insight, 0.75, "", "carol"),
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
