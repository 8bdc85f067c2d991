//! The forwarder's pages: a rule file's finding (`StopLogging`, a bucket
//! opened to everyone, credentials made for another user) sent the minute
//! its record reaches the forwarder, with no baseline and no OpenSearch
//! monitor in between, as a notification on the stack's notification topic.
//! The rules, findings and summaries are `detect`'s kind `rule`
//! ([`crate::engine::rules`]); only findings at or above the page severity
//! are sent.
//!
//! [`pages`] is the pure core; [`Pager`] is the edge that sends them.

use super::alert::{subject_text, Notification, SUBJECT_MAX};
use super::dead_letter::append_json_lines;
use super::enricher::Publisher;
use crate::engine::group::{group, GAP_MINUTES};
use crate::engine::rules::{detect, Judging, RuleHits};
use crate::engine::{Anomaly, Severity};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::path::PathBuf;

/// The findings the hits make that page: one per rule, principal, target
/// and minute, at or above `page_at`, in time order, judged with the
/// organisation's accounts.
pub fn paging_findings(hits: &RuleHits, page_at: Severity, judging: &Judging<'_>) -> Vec<Anomaly> {
    let mut findings = detect(
        hits,
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
        judging,
    );
    findings.retain(|a| a.severity.is_some_and(|s| s >= page_at));
    findings.sort_by_key(|a| a.start);
    findings
}

/// The notifications the hits make: one per incident of the
/// [`paging_findings`] (the same principal or resource within half an
/// hour), so an intruder's burst of secret reads is one page, not eighty.
pub fn pages(hits: &RuleHits, page_at: Severity, judging: &Judging<'_>) -> Vec<Notification> {
    incident_pages(&mut paging_findings(hits, page_at, judging))
}

/// One page per incident of `findings`, led by its most severe finding.
pub fn incident_pages(findings: &mut [Anomaly]) -> Vec<Notification> {
    let incidents = group(findings);
    incidents
        .iter()
        .map(|inc| {
            let members: Vec<&Anomaly> = inc.members.iter().map(|&i| &findings[i]).collect();
            page_of_incident(&members)
        })
        .collect()
}

/// The most findings a page lists; the rest are counted (and kept in the
/// findings index).
pub const LISTED: usize = 20;

/// An incident's lead: its first most severe finding.
pub fn lead_of<'a>(members: &[&'a Anomaly]) -> &'a Anomaly {
    members
        .iter()
        .copied()
        .reduce(|a, b| if b.severity > a.severity { b } else { a })
        .expect("an incident has a finding")
}

/// The page of one incident's findings (in time order): its subject is
/// the incident in words, as the table's header says it
/// ([`crate::engine::headline`]: what happened, by whom, from where, what
/// it costs); its body the most severe finding first, then the others,
/// one line each.
pub fn page_of_incident(members: &[&Anomaly]) -> Notification {
    let lead = lead_of(members);
    let mut page = page_of(lead);
    page.subject = subject_of(members, lead.severity);
    let others: Vec<&&Anomaly> = members
        .iter()
        .filter(|a| !std::ptr::eq(**a, lead))
        .collect();
    if others.is_empty() {
        return page;
    }
    page.body.push_str(&format!(
        "\nWith it, by the same principal or on the same resource within {GAP_MINUTES} minutes:\n"
    ));
    for a in others.iter().take(LISTED) {
        page.body.push_str(&format!(
            "{} {} ({}): {}\n",
            a.start.format("%H:%M"),
            a.detector,
            a.severity.map_or("high", Severity::name),
            a.summary
        ));
    }
    if others.len() > LISTED {
        page.body.push_str(&format!(
            "... and {} more, each kept in the findings index.\n",
            others.len() - LISTED
        ));
    }
    page.data["incident_findings"] = json!(members);
    page
}

/// `trailwatch CRITICAL: GPU instances started by a new user from a new
/// network, ~$1,679/h (3 findings)`: the severity, the headline, the cost
/// and how many findings the page lists. When that is too long for
/// SNS, what happened names one title (`A and 1 more`), then the count
/// goes; who and the cost stay whole.
fn subject_of(members: &[&Anomaly], severity: Option<Severity>) -> String {
    let head = format!(
        "trailwatch {}: ",
        severity.map_or("high", Severity::name).to_uppercase()
    );
    let fitted = |(what, by): (String, String), count: bool| {
        let mut tail = String::new();
        if !by.is_empty() {
            tail.push(' ');
            tail.push_str(&by);
        }
        let cost = crate::engine::group::cost_per_hour(members.iter().copied());
        if let Some(cost) = crate::engine::headline::cost_text(cost) {
            tail.push_str(&format!(", {cost}"));
        }
        if count && members.len() > 1 {
            tail.push_str(&format!(" ({} findings)", members.len()));
        }
        let (what, tail) = (subject_text(&what), subject_text(&tail));
        let room = SUBJECT_MAX.saturating_sub(head.len() + tail.len());
        (what.len() <= room).then(|| format!("{head}{what}{tail}"))
    };
    use crate::engine::headline::{parts, parts_brief};
    let subject = fitted(parts(members), true)
        .or_else(|| fitted(parts_brief(members), true))
        .or_else(|| fitted(parts_brief(members), false))
        // Still too long: cut where SNS would.
        .unwrap_or_else(|| head + &crate::engine::headline::of(members));
    subject_text(&subject)
}

/// The page of one rule finding.
pub fn page_of(a: &Anomaly) -> Notification {
    let level = a.severity;
    let severity = level.map_or("high", Severity::name);
    Notification {
        subject: subject_text(&format!(
            "trailwatch {}: {}",
            severity.to_uppercase(),
            a.summary.split(':').next().unwrap_or(&a.detector)
        )),
        body: format!(
            "{}\n\n{} UTC, rule {} ({severity}). No baseline is needed: this event pages whenever it happens.\n",
            a.summary,
            a.start.format("%Y-%m-%d %H:%M"),
            a.detector
        ),
        data: json!(a),
        enriched: true,
        severity: level,
        test: false,
        repeat: false,
    }
}

/// A page that could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("cannot send the rule pages to {to}: {message}")]
pub struct PageError {
    pub to: String,
    pub message: String,
}

/// Where the forwarder's pages go.
pub enum Pager {
    /// The stack's notification topic, published to as the enricher does.
    Sns(Publisher),
    /// One JSON line per page (`trailwatch lambda forward --pages FILE`).
    File(PathBuf),
}

impl Pager {
    /// Sends every page; returns how many went.
    pub async fn send(&self, pages: &[Notification]) -> Result<usize, PageError> {
        if pages.is_empty() {
            return Ok(0);
        }
        match self {
            Pager::Sns(publisher) => {
                for n in pages {
                    publisher.publish(n).await.map_err(|e| PageError {
                        to: e.topic,
                        message: e.message,
                    })?;
                }
            }
            Pager::File(path) => {
                let lines: Vec<_> = pages
                    .iter()
                    .map(|n| json!({"subject": n.subject, "body": n.body, "finding": n.data}))
                    .collect();
                append_json_lines(path, &lines).map_err(|e| PageError {
                    to: path.display().to_string(),
                    message: e.to_string(),
                })?;
            }
        }
        Ok(pages.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudtrail::parse::parse_record;
    use crate::cloudtrail::Projection;
    use crate::detector::shipped_rules;

    fn hits(records: &[serde_json::Value]) -> RuleHits {
        let rules = shipped_rules();
        let projection = Projection::typed_with(rules.iter().flat_map(|r| r.field_paths()));
        let mut hits = RuleHits::default();
        for r in records {
            let text = r.to_string();
            let raw = parse_record(&projection, text.as_bytes()).unwrap().unwrap();
            hits.record(&rules, &raw.validate().unwrap());
        }
        hits
    }

    fn record(name: &str, minute: u32, params: serde_json::Value) -> serde_json::Value {
        json!({"eventVersion": "1.08", "eventTime": format!("2026-11-21T03:{minute:02}:10Z"),
               "eventSource": "cloudtrail.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
               "sourceIPAddress": "203.0.113.66", "eventID": format!("id-{name}-{minute}"),
               "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory",
                                "accountId": "111122223333", "userName": "mallory"},
               "requestParameters": params, "recipientAccountId": "111122223333"})
    }

    #[test]
    fn a_stopped_trail_pages_with_who_what_and_where() {
        let h = hits(&[
            record("StopLogging", 10, json!({"name": "org-trail"})),
            // The same minute again is the same finding.
            record("StopLogging", 10, json!({"name": "org-trail"})),
            record("DescribeTrails", 11, json!({})),
            record("DeleteTrail", 12, json!({"name": "org-trail"})),
        ]);
        let p = pages(&h, Severity::Medium, &Judging::default());
        // One incident: one page, with the deleted trail in it.
        assert_eq!(p.len(), 1, "{p:?}");
        // The incident in words, naming one rule when two do not fit.
        assert_eq!(
            p[0].subject,
            "trailwatch CRITICAL: CloudTrail logging stopped and 1 more by user/mallory@111122223333"
        );
        assert!(
            p[0].body.starts_with(
                "CloudTrail logging stopped: user/mallory@111122223333 called cloudtrail.amazonaws.com:StopLogging on org-trail from 203.0.113.66 (2 times)"
            ),
            "{}",
            p[0].body
        );
        assert!(p[0]
            .body
            .contains("2026-11-21 03:10 UTC, rule cloudtrail-stop-logging (critical)"));
        assert_eq!(p[0].data["kind"], "rule");
        assert!(
            p[0].body
                .contains("03:12 cloudtrail-delete-trail (critical): CloudTrail trail deleted"),
            "{}",
            p[0].body
        );
        assert_eq!(
            p[0].data["incident_findings"][1]["detector"],
            "cloudtrail-delete-trail"
        );
    }

    #[test]
    fn a_burst_of_findings_is_one_page_that_lists_twenty_and_counts_the_rest() {
        let burst: Vec<_> = (0..25)
            .map(|m| record("StopLogging", m, json!({"name": format!("trail-{m}")})))
            .collect();
        let p = pages(&hits(&burst), Severity::Medium, &Judging::default());
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(
            p[0].subject,
            "trailwatch CRITICAL: CloudTrail logging stopped by user/mallory@111122223333 (25 findings)"
        );
        assert!(p[0].body.contains("trail-20"), "{}", p[0].body);
        assert!(!p[0].body.contains("trail-21 "), "{}", p[0].body);
        assert!(p[0]
            .body
            .contains("... and 4 more, each kept in the findings index."));
        assert_eq!(p[0].data["incident_findings"].as_array().unwrap().len(), 25);
    }

    /// With no history the forwarder cannot tell a habit: a rule below high
    /// with a habitual severity pages only at it (an application reading its
    /// secrets is not paged); a high one keeps its own (administrator access
    /// attached, or credentials made for another user, page high).
    #[test]
    fn the_forwarder_judges_habit_rules_at_their_habitual_severity() {
        let mut secret = record("GetSecretValue", 10, json!({"secretId": "db"}));
        secret["eventSource"] = json!("secretsmanager.amazonaws.com");
        let mut user = record(
            "AttachUserPolicy",
            11,
            json!({"userName": "backdoor", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        );
        user["eventSource"] = json!("iam.amazonaws.com");
        user["userIdentity"]["arn"] = json!("arn:aws:iam::111122223333:user/eve");
        let mut key = record("CreateAccessKey", 12, json!({"userName": "backdoor"}));
        key["eventSource"] = json!("iam.amazonaws.com");
        let found = paging_findings(
            &hits(&[secret, user, key]),
            Severity::Low,
            &Judging::default(),
        );
        let names: Vec<_> = found
            .iter()
            .map(|a| (a.detector.as_str(), a.severity.unwrap()))
            .collect();
        assert_eq!(
            names,
            [
                ("iam-admin-policy-attached", Severity::High),
                ("iam-credentials-for-another-user", Severity::High)
            ]
        );
    }

    #[test]
    fn only_findings_at_the_page_severity_are_sent() {
        let h = hits(&[
            record("StopLogging", 10, json!({"name": "t"})),
            record(
                "UpdateTrail",
                11,
                json!({"name": "t", "isMultiRegionTrail": false}),
            ),
        ]);
        let severities = |at| -> Vec<String> {
            paging_findings(&h, at, &Judging::default())
                .iter()
                .map(|a| a.severity.unwrap().name().to_owned())
                .collect()
        };
        assert_eq!(severities(Severity::Medium), ["critical", "high"]);
        assert_eq!(severities(Severity::Critical), ["critical"]);
        // Both in one page, led by the critical one.
        let p = pages(&h, Severity::Medium, &Judging::default());
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].data["severity"], "critical");
        assert!(pages(&RuleHits::default(), Severity::Low, &Judging::default()).is_empty());
    }
}
