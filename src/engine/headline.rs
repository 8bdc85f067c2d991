//! An incident in words, for a person with ten seconds: what happened, by
//! whom and from where (`GPU instances started by a new user from a new
//! network`), and what it costs (`~$1,679/h`). The table's incident header,
//! the report's summary and cards, and the engine's pages all say it this
//! way.

use super::anomaly::{Anomaly, AnomalyKind};
use crate::context::{Facet, ValueCount};
use crate::cost::money;
use chrono::{DateTime, Utc};

/// Distinct rule titles a headline names before it counts the rest.
const NAMED: usize = 2;

/// What happened, in a few words, by whom and from where.
pub fn of(members: &[&Anomaly]) -> String {
    let (mut text, by) = parts(members);
    if !by.is_empty() {
        text.push(' ');
        text.push_str(&by);
    }
    text
}

/// The headline's two parts: what happened (`GPU instances started`), and
/// by whom and from where (`by a new user from a new network`, or empty),
/// for a line too short for both to cut the first.
pub fn parts(members: &[&Anomaly]) -> (String, String) {
    (what(members), by(members))
}

/// [`parts`] naming one rule title or first call at most
/// (`CloudTrail logging stopped and 1 more`).
pub fn parts_brief(members: &[&Anomaly]) -> (String, String) {
    (what_naming(members, 1), by(members))
}

/// `~$1,679/h` when its findings started something priced, else nothing.
pub fn cost_text(per_hour: f64) -> Option<String> {
    (per_hour > 0.0).then(|| format!("~${}/h", money(per_hour)))
}

/// `2026-11-21 03:10–03:50`, or both dates when it runs past midnight.
pub fn span_text(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let end_format = if start.date_naive() == end.date_naive() {
        "%H:%M"
    } else {
        "%Y-%m-%d %H:%M"
    };
    format!(
        "{}–{}",
        start.format("%Y-%m-%d %H:%M"),
        end.format(end_format)
    )
}

/// What happened: priced launches by what was launched; else the rules'
/// titles (the most severe first); else what the models saw rise; else
/// what was done for the first time.
fn what(members: &[&Anomaly]) -> String {
    what_naming(members, NAMED)
}

/// What happened naming one rule title at most (`A and 2 more`), for a
/// line with little room ([`parts_brief`]).
fn what_naming(members: &[&Anomaly], most: usize) -> String {
    if let Some(launched) = launched(members) {
        return launched;
    }
    let mut rules: Vec<&&Anomaly> = members
        .iter()
        .filter(|a| a.kind == AnomalyKind::Rule)
        .collect();
    rules.sort_by(|a, b| b.grade.total_cmp(&a.grade).then(a.start.cmp(&b.start)));
    let mut titles: Vec<&str> = Vec::new();
    for a in rules {
        let title = title(&a.summary);
        if !titles.contains(&title) {
            titles.push(title);
        }
    }
    if !titles.is_empty() {
        return named(&titles, most);
    }
    let lead = |kind: AnomalyKind| {
        members
            .iter()
            .filter(|a| a.kind == kind)
            .max_by(|a, b| a.grade.total_cmp(&b.grade))
    };
    if let Some(a) = lead(AnomalyKind::Rcf) {
        // "Access-denied errors per principal per 10 minutes" -> its subject.
        let subject = title(&a.summary);
        let subject = subject.split(" (").next().unwrap_or(subject);
        let subject = subject.split(" per ").next().unwrap_or(subject);
        return format!("{subject} far above usual");
    }
    if let Some(a) = lead(AnomalyKind::Insight) {
        let field = |k: &str| {
            a.entity
                .as_ref()
                .and_then(|e| e.get(k))
                .map_or("?", String::as_str)
        };
        let what = if a.detector == "ApiErrorRateInsight" {
            "errors"
        } else {
            "calls"
        };
        return format!(
            "{}:{} {what} above usual",
            field("eventSource").trim_end_matches(".amazonaws.com"),
            field("eventName")
        );
    }
    let firsts: Vec<String> = members
        .iter()
        .filter_map(|a| a.novelty.as_ref())
        .flat_map(|n| n.new.iter().chain(&n.rare))
        .filter_map(|f| f.strip_prefix("call "))
        .map(|call| call.replace(".amazonaws.com", ""))
        .collect();
    if members
        .iter()
        .filter_map(|a| a.novelty.as_ref())
        .any(|n| n.new.iter().any(|f| f.starts_with("principal")))
    {
        return "A never-seen principal's first activity".into();
    }
    match firsts.len() {
        0 => members
            .first()
            .map_or(String::new(), |a| title(&a.summary).into()),
        1 => format!("First call of {}", firsts[0]),
        _ => {
            let mut distinct: Vec<&str> = Vec::new();
            for f in &firsts {
                if !distinct.contains(&f.as_str()) {
                    distinct.push(f);
                }
            }
            format!("First calls of {}", named(&distinct, most))
        }
    }
}

/// The finding an incident leads with (a report card, an OCSF finding): the one whose launches cost the most when
/// any were priced (so its text and the Cost row agree), else the highest
/// graded; a whole interval before a partial one.
pub fn lead<'a>(members: &[&'a Anomaly]) -> &'a Anomaly {
    let cost = |a: &Anomaly| {
        a.context
            .as_ref()
            .and_then(|c| c.cost.as_ref())
            .map_or(0.0, |c| c.per_hour)
    };
    members
        .iter()
        .copied()
        .max_by(|a, b| {
            (cost(a).total_cmp(&cost(b)))
                .then(a.grade.total_cmp(&b.grade))
                .then(b.partial.cmp(&a.partial))
                .then(b.start.cmp(&a.start))
        })
        .expect("an incident has a finding")
}

/// The text before a summary's first `: `: a rule's or detector's title.
fn title(summary: &str) -> &str {
    summary.split(": ").next().unwrap_or(summary)
}

/// `A`, `A and B`, `A, B and 3 more`: at most `most` named (at least one).
fn named(items: &[&str], most: usize) -> String {
    let most = most.max(1);
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [a, b] if most >= 2 => format!("{a} and {b}"),
        _ => format!(
            "{} and {} more",
            items[..most.min(items.len())].join(", "),
            items.len() - most.min(items.len())
        ),
    }
}

/// "GPU instances started", "Instances started" or "EBS volumes created"
/// when a finding priced what it started.
fn launched(members: &[&Anomaly]) -> Option<String> {
    let priced = members
        .iter()
        .filter_map(|a| a.context.as_ref()?.cost.as_ref())
        .filter(|c| c.per_hour > 0.0)
        .max_by(|a, b| a.per_hour.total_cmp(&b.per_hour))?;
    let kinds: Vec<&str> = (priced.items.iter())
        .filter_map(|i| i.what.split(" × ").nth(1))
        .collect();
    let instances: Vec<&&str> = kinds.iter().filter(|k| k.contains('.')).collect();
    Some(if instances.iter().any(|k| gpu(k)) {
        "GPU instances started".into()
    } else if !instances.is_empty() {
        "Instances started".into()
    } else {
        "EBS volumes created".into()
    })
}

/// Whether an instance type has GPUs or ML accelerators (p, g, dl, trn,
/// inf families).
pub fn gpu(instance_type: &str) -> bool {
    let family = instance_type.split('.').next().unwrap_or("");
    let letters: String = family
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    matches!(
        letters.as_str(),
        "p" | "g" | "gr" | "dl" | "trn" | "inf" | "vt"
    )
}

/// "by a new user from a new network", "by user/alice@1", or nothing.
fn by(members: &[&Anomaly]) -> String {
    let mut ranked: Vec<&&Anomaly> = members.iter().collect();
    ranked.sort_by(|a, b| b.grade.total_cmp(&a.grade));
    let top = |facet: Facet| -> Option<&ValueCount> {
        ranked.iter().find_map(|a| a.context.as_ref()?.top(facet))
    };
    let mut parts = Vec::new();
    match top(Facet::Principal) {
        Some(p) if p.new => parts.push(format!("by a new {}", principal_kind(&p.value))),
        Some(p) => parts.push(format!("by {}", crate::context::short_arn(&p.value))),
        None => {
            if let Some(s) = ranked.iter().find_map(|a| a.subjects.first()) {
                parts.push(format!("by {}", crate::context::short_arn(s)));
            }
        }
    }
    if top(Facet::SourceIp).is_some_and(|ip| ip.new) {
        parts.push("from a new network".into());
    }
    parts.join(" ")
}

/// "user", "role", "root", "principal": what kind of identity an ARN is.
fn principal_kind(arn: &str) -> &'static str {
    let resource = arn.rsplit(':').next().unwrap_or("");
    if resource == "root" {
        "root user"
    } else if resource.starts_with("user/") {
        "user"
    } else if resource.starts_with("assumed-role/") || resource.starts_with("role/") {
        "role"
    } else {
        "principal"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Context, FacetSummary};
    use crate::cost::{CostItem, Estimate};

    fn finding(kind: AnomalyKind, summary: &str, grade: f64) -> Anomaly {
        let t = "2026-11-21T03:10:00Z".parse().unwrap();
        Anomaly {
            summary: summary.into(),
            grade,
            ..Anomaly::sample(kind, "arn:aws:iam::7:user/carol", t)
        }
    }

    fn who(principal_new: bool, ip_new: bool) -> Context {
        let value = |value: &str, new| ValueCount {
            value: value.into(),
            count: 3.0,
            baseline: 0.0,
            new,
        };
        Context {
            facets: vec![
                FacetSummary {
                    facet: Facet::Principal,
                    top: vec![value("arn:aws:iam::7:user/carol", principal_new)],
                },
                FacetSummary {
                    facet: Facet::SourceIp,
                    top: vec![value("203.0.113.66", ip_new)],
                },
            ],
            ..Context::default()
        }
    }

    #[test]
    fn priced_gpu_launches_by_a_newcomer_say_so() {
        let mut a = finding(
            AnomalyKind::Rcf,
            "EC2 instances requested per 10 minutes: 124",
            1.0,
        );
        let mut context = who(true, true);
        context.cost = Some(Estimate {
            items: vec![CostItem {
                what: "10 × p4d.24xlarge".into(),
                count: 10.0,
                per_hour: Some(1679.0),
            }],
            per_hour: 1679.0,
            per_day: 40_296.0,
            currency: "USD".into(),
            basis: String::new(),
            assumptions: vec![],
        });
        a.context = Some(context);
        assert_eq!(
            of(&[&a]),
            "GPU instances started by a new user from a new network"
        );
        assert_eq!(cost_text(1679.0).as_deref(), Some("~$1,679/h"));
        assert_eq!(cost_text(0.0), None);
    }

    #[test]
    fn rules_are_named_by_their_titles_most_severe_first() {
        let stop = finding(
            AnomalyKind::Rule,
            "CloudTrail logging stopped: x called y",
            1.0,
        );
        let delete = finding(
            AnomalyKind::Rule,
            "CloudTrail trail deleted: x called z",
            1.0,
        );
        let again = finding(AnomalyKind::Rule, "CloudTrail logging stopped: again", 0.9);
        let mut known = finding(AnomalyKind::NewEvent, "first", 0.6);
        known.context = Some(who(false, false));
        assert_eq!(
            of(&[&known, &stop, &delete, &again]),
            "CloudTrail logging stopped and CloudTrail trail deleted by user/carol@7"
        );
        let third = finding(AnomalyKind::Rule, "IAM user created: x", 1.0);
        assert_eq!(
            what(&[&stop, &delete, &third]),
            "CloudTrail logging stopped, CloudTrail trail deleted and 1 more"
        );
    }

    #[test]
    fn rates_insights_and_first_calls_say_what_rose_or_was_new() {
        let rcf = finding(
            AnomalyKind::Rcf,
            "Access-denied errors per principal per 10 minutes: 183 against 0.0",
            1.0,
        );
        assert_eq!(what(&[&rcf]), "Access-denied errors far above usual");
        let mut insight = finding(AnomalyKind::Insight, "x", 1.0);
        insight.detector = "ApiErrorRateInsight".into();
        insight.entity = Some(
            [
                ("eventSource".to_owned(), "iam.amazonaws.com".to_owned()),
                ("eventName".to_owned(), "ListRoles".to_owned()),
            ]
            .into(),
        );
        assert_eq!(what(&[&insight]), "iam:ListRoles errors above usual");
        let mut new = finding(AnomalyKind::NewEvent, "did for the first time", 0.7);
        new.novelty = Some(crate::engine::anomaly::Novelty {
            new: vec!["call cloudtrail.amazonaws.com:DeleteTrail".into()],
            ..Default::default()
        });
        assert_eq!(what(&[&new]), "First call of cloudtrail:DeleteTrail");
    }

    #[test]
    fn gpu_families_are_told_from_others() {
        for t in [
            "p4d.24xlarge",
            "g5.xlarge",
            "trn1.32xlarge",
            "inf2.xlarge",
            "p5.48xlarge",
        ] {
            assert!(gpu(t), "{t}");
        }
        for t in ["m5.large", "c7g.large", "t3.micro", "r6i.large"] {
            assert!(!gpu(t), "{t}");
        }
    }

    #[test]
    fn spans_name_the_day_once_unless_they_cross_midnight() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            span_text(t("2026-11-21T03:10:00Z"), t("2026-11-21T03:50:00Z")),
            "2026-11-21 03:10–03:50"
        );
        assert_eq!(
            span_text(t("2026-11-21T23:50:00Z"), t("2026-11-22T00:20:00Z")),
            "2026-11-21 23:50–2026-11-22 00:20"
        );
    }
}
