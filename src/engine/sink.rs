//! Writing results: a table of incidents for people (an incident's insights
//! of one type and principal folded into one line with their count), one
//! JSON array, or NDJSON (one anomaly per line, each with its incident id
//! and context).

use super::anomaly::{Anomaly, AnomalyKind};
use super::group::Incident;
use crate::context::short_arn;
use std::io::{self, Write};

/// Output formats of `trailwatch detect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Ndjson,
}

pub fn write(
    format: Format,
    anomalies: &[Anomaly],
    incidents: &[Incident],
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Table => write_table(anomalies, incidents, out),
        Format::Json => {
            let objects: Vec<serde_json::Value> = incidents
                .iter()
                .map(|inc| incident_object(anomalies, inc))
                .collect();
            serde_json::to_writer_pretty(&mut *out, &objects)?;
            writeln!(out)
        }
        Format::Ndjson => {
            for a in anomalies {
                serde_json::to_writer(&mut *out, a)?;
                writeln!(out)?;
            }
            Ok(())
        }
    }
}

/// An incident as `--format json` gives it: what a responder reads first
/// (severity, whether it pages, who, from which networks, when, what it
/// costs, the ATT&CK techniques), then its findings as NDJSON has them.
pub fn incident_object(anomalies: &[Anomaly], inc: &Incident) -> serde_json::Value {
    use crate::context::Facet;
    use std::collections::BTreeSet;
    let members: Vec<&Anomaly> = inc.members.iter().map(|&i| &anomalies[i]).collect();
    let facet = |facet: Facet| -> Vec<String> {
        let values: BTreeSet<String> = (members.iter())
            .filter_map(|a| a.context.as_ref())
            .flat_map(|c| c.facets.iter().filter(|f| f.facet == facet))
            .flat_map(|f| f.top.iter().map(|v| v.value.clone()))
            .filter(|v| v != crate::context::OTHER)
            .collect();
        values.into_iter().collect()
    };
    let attack: BTreeSet<&str> = (members.iter())
        .flat_map(|a| a.attack.iter().map(String::as_str))
        .collect();
    let lead = members[0];
    let cost = inc.cost_per_hour(anomalies);
    serde_json::json!({
        "incident": inc.id,
        "severity": lead.severity,
        "page": lead.page.unwrap_or(false),
        "start": inc.start,
        "end": inc.end,
        "grade": inc.grade,
        "who": incident_who(anomalies, inc),
        "principals": facet(Facet::Principal),
        "source_ips": facet(Facet::SourceIp),
        "cost_per_hour": (cost > 0.0).then_some(cost),
        "attack": attack,
        "findings": members,
    })
}

/// Who an incident is about: the highest-graded anomaly's context, else its
/// first subject.
pub fn incident_who(anomalies: &[Anomaly], incident: &Incident) -> String {
    let mut members: Vec<&Anomaly> = incident.members.iter().map(|&i| &anomalies[i]).collect();
    members.sort_by(|a, b| b.grade.total_cmp(&a.grade));
    members
        .iter()
        .filter_map(|a| {
            a.context
                .as_ref()
                .map(|c| c.who())
                .filter(|w| !w.is_empty())
        })
        .next()
        .or_else(|| {
            members
                .iter()
                .flat_map(|a| a.subjects.first())
                .next()
                .map(|s| short_arn(s))
        })
        .unwrap_or_else(|| "-".into())
}

/// One line of an incident in the table: a finding, or an incident's
/// insights of one type in one account and region, by the same principal,
/// folded into one line with their count (a stolen key probing twenty APIs
/// is one thing that happened, not twenty).
struct Row {
    /// The member the line starts with (its time, kind and detector).
    first: usize,
    grade: f64,
    /// The folded line's summary; none for a single finding.
    summary: Option<String>,
}

/// APIs a folded line names before it says how many more.
const FOLDED_NAMES: usize = 6;

fn rows(anomalies: &[Anomaly], incident: &Incident) -> Vec<Row> {
    let fold_key = |a: &Anomaly| {
        (a.kind == AnomalyKind::Insight).then(|| {
            let e = a.entity.as_ref();
            let field = |k: &str| e.and_then(|e| e.get(k)).cloned().unwrap_or_default();
            (
                a.detector.clone(),
                field("recipientAccountId"),
                field("awsRegion"),
                a.subjects.first().cloned(),
            )
        })
    };
    let mut rows = Vec::new();
    let mut folded = std::collections::HashSet::new();
    for (n, &i) in incident.members.iter().enumerate() {
        if folded.contains(&i) {
            continue;
        }
        let a = &anomalies[i];
        let Some(key) = fold_key(a) else {
            rows.push(Row {
                first: i,
                grade: a.grade,
                summary: None,
            });
            continue;
        };
        let group: Vec<usize> = incident.members[n..]
            .iter()
            .copied()
            .filter(|&j| fold_key(&anomalies[j]).as_ref() == Some(&key))
            .collect();
        folded.extend(group.iter().copied());
        if group.len() == 1 {
            rows.push(Row {
                first: i,
                grade: a.grade,
                summary: None,
            });
            continue;
        }
        let members: Vec<&Anomaly> = group.iter().map(|&j| &anomalies[j]).collect();
        rows.push(Row {
            first: i,
            grade: members.iter().map(|m| m.grade).fold(0.0, f64::max),
            summary: Some(folded_summary(&members, &key.1, &key.2)),
        });
    }
    rows
}

/// "6 APIs' errors above usual (account/region), mostly P: the busiest
/// first, each at its rate", from insights of one type.
fn folded_summary(members: &[&Anomaly], account: &str, region: &str) -> String {
    let mut by_rate: Vec<&&Anomaly> = members.iter().collect();
    by_rate.sort_by(|a, b| b.actual.total_cmp(&a.actual));
    let api = |a: &Anomaly| {
        let e = a.entity.as_ref();
        let field = |k: &str| e.and_then(|e| e.get(k)).map_or("?", String::as_str);
        format!(
            "{}:{}",
            field("eventSource").trim_end_matches(".amazonaws.com"),
            field("eventName")
        )
    };
    let mut names: Vec<String> = by_rate
        .iter()
        .take(FOLDED_NAMES)
        .map(|a| format!("{} {:.1}/min", api(a), a.actual))
        .collect();
    if by_rate.len() > FOLDED_NAMES {
        names.push(format!("{} more", by_rate.len() - FOLDED_NAMES));
    }
    let what = match members[0].detector.as_str() {
        "ApiErrorRateInsight" => "errors",
        _ => "calls",
    };
    let usual = members.iter().map(|m| m.expected).fold(0.0, f64::max);
    format!(
        "{} APIs' {what} above usual ({account}/{region}){}: {} (usually {usual:.2}/min at most)",
        members.len(),
        members[0]
            .subjects
            .first()
            .map(|w| format!(", mostly {}", short_arn(w)))
            .unwrap_or_default(),
        names.join(", ")
    )
}

fn write_table(
    anomalies: &[Anomaly],
    incidents: &[Incident],
    out: &mut dyn Write,
) -> io::Result<()> {
    if anomalies.is_empty() {
        return writeln!(out, "No anomalies found.");
    }
    let kind_width = anomalies
        .iter()
        .map(|a| a.kind.name().len())
        .max()
        .unwrap_or(0);
    let det_width = anomalies
        .iter()
        .map(|a| a.detector.len())
        .max()
        .unwrap_or(0);
    // In the report's order: the most severe first.
    for inc in super::group::reading_order(incidents, anomalies) {
        let same_day = inc.start.date_naive() == inc.end.date_naive();
        let first = &anomalies[inc.members[0]];
        let severity = match (first.severity, first.page) {
            (Some(s), Some(true)) => format!("{} (pages)  ", s.name()),
            (Some(s), _) => format!("{}  ", s.name()),
            (None, _) => String::new(),
        };
        writeln!(
            out,
            "INCIDENT {}  {severity}{} – {}  grade {:.2}  {}",
            inc.id,
            inc.start.format("%Y-%m-%d %H:%M"),
            if same_day {
                inc.end.format("%H:%M").to_string()
            } else {
                inc.end.format("%Y-%m-%d %H:%M").to_string()
            },
            inc.grade,
            incident_who(anomalies, inc)
        )?;
        for row in rows(anomalies, inc) {
            let a = &anomalies[row.first];
            writeln!(
                out,
                "  {}  {:kind_width$}  {:det_width$}  {:.2}  {}",
                // A partial finding is told by when it was reached.
                if a.partial { a.end } else { a.start }.format("%H:%M"),
                a.kind.name(),
                a.detector,
                row.grade,
                row.summary.as_deref().unwrap_or(&a.summary)
            )?;
        }
        writeln!(out)?;
    }
    let paging = incidents
        .iter()
        .filter(|inc| anomalies[inc.members[0]].page == Some(true))
        .count();
    writeln!(
        out,
        "{} anomal{} in {} incident{}{}.",
        anomalies.len(),
        if anomalies.len() == 1 { "y" } else { "ies" },
        incidents.len(),
        if incidents.len() == 1 { "" } else { "s" },
        match paging {
            0 => ", none of which pages".to_owned(),
            n if n == incidents.len() => ", all paging".to_owned(),
            n => format!(", {n} paging"),
        }
    )?;
    // Incidents by severity, the most severe first, and where to go next.
    let mut by_severity: Vec<(Option<super::Severity>, usize)> = Vec::new();
    for inc in incidents {
        let s = anomalies[inc.members[0]].severity;
        match by_severity.iter_mut().find(|(x, _)| *x == s) {
            Some((_, n)) => *n += 1,
            None => by_severity.push((s, 1)),
        }
    }
    by_severity.sort_by_key(|(s, _)| std::cmp::Reverse(*s));
    let counts: Vec<String> = by_severity
        .iter()
        .map(|(s, n)| format!("{n} {}", s.map_or("unrated", |s| s.name())))
        .collect();
    writeln!(
        out,
        "By severity: {}. Next: --report FILE.html for the timeline and a card per incident; --format json for incident objects to pivot on.",
        counts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{build, Facet, FacetCounts};
    use crate::engine::severity::{incidents, DEFAULT_PAGE};
    use crate::engine::AnomalyKind;

    fn anomaly(detector: &str, kind: AnomalyKind, start: &str, who: &str) -> Anomaly {
        let mut fc = FacetCounts::default();
        fc.add(Facet::Principal, who, 3.0);
        fc.add(Facet::SourceIp, "203.0.113.66", 3.0);
        let start = start.parse().unwrap();
        Anomaly {
            detector: detector.into(),
            kind,
            entity: Some(
                [(
                    "requestParameters.functionName".to_string(),
                    "resize".to_string(),
                )]
                .into(),
            ),
            start,
            end: start + chrono::Duration::minutes(10),
            grade: 0.93,
            confidence: 0.81,
            actual: 5021.0,
            expected: 900.5,
            score: 3.2,
            summary: format!("{detector} summary"),
            context: Some(build(&fc, &FacetCounts::default(), 144, 5)),
            incident: None,
            subjects: vec![who.into()],
            late: false,
            partial: false,
            detected: start + chrono::Duration::minutes(10),
            severity: None,
            page: None,
            novelty: None,
            attack: Vec::new(),
        }
    }

    fn render(format: Format, mut a: Vec<Anomaly>) -> String {
        let incidents = incidents(&mut a, DEFAULT_PAGE);
        let mut out = Vec::new();
        write(format, &a, &incidents, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ndjson_has_the_documented_fields() {
        let text = render(
            Format::Ndjson,
            vec![anomaly(
                "lambda-invoke",
                AnomalyKind::Rcf,
                "2026-01-07T14:10:00Z",
                "arn:aws:iam::1:user/bob",
            )],
        );
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["detector"], "lambda-invoke");
        assert_eq!(v["kind"], "rcf");
        assert_eq!(v["entity"]["requestParameters.functionName"], "resize");
        assert_eq!(v["start"], "2026-01-07T14:10:00Z");
        assert_eq!(v["end"], "2026-01-07T14:20:00Z");
        assert_eq!(v["incident"], 1);
        assert_eq!(v["context"]["facets"][0]["facet"], "principal");
        // One RCF finding with nothing worth waking for: reported, not paged.
        assert_eq!(v["severity"], "low");
        assert_eq!(v["page"], false);
        assert_eq!(v["detected"], "2026-01-07T14:20:00Z");
        for k in ["grade", "confidence", "actual", "expected"] {
            assert!(v[k].is_number(), "{k}");
        }
    }

    #[test]
    fn the_table_shows_incidents_with_their_anomalies() {
        let text = render(
            Format::Table,
            vec![
                anomaly(
                    "api-errors",
                    AnomalyKind::Rcf,
                    "2026-01-07T14:20:00Z",
                    "arn:aws:iam::1:user/bob",
                ),
                // bob from a network he never used: worth waking for.
                Anomaly {
                    summary: "user/bob@1 did for the first time: network 203.0.113.0/24".into(),
                    novelty: Some(crate::engine::anomaly::Novelty {
                        new: vec!["network 203.0.113.0/24".into()],
                        rare: Vec::new(),
                        established: true,
                        ..Default::default()
                    }),
                    ..anomaly(
                        "new-activity",
                        AnomalyKind::NewEvent,
                        "2026-01-07T14:20:00Z",
                        "arn:aws:iam::1:user/bob",
                    )
                },
                anomaly(
                    "ec2-run-instances",
                    AnomalyKind::Rcf,
                    "2026-01-07T03:10:00Z",
                    "arn:aws:iam::2:user/carol",
                ),
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        // The most severe first, as in the report; numbered by time.
        assert!(
            lines[0].starts_with("INCIDENT 2  high (pages)  2026-01-07 14:20 – 14:30"),
            "{text}"
        );
        assert!(
            lines[1].contains("rcf        api-errors")
                && lines[2].contains("new_event  new-activity"),
            "{text}"
        );
        assert_eq!(lines[4], "INCIDENT 1  low  2026-01-07 03:10 – 03:20  grade 0.93  user/carol@2 (new) from 203.0.113.66 (new)", "{text}");
        assert_eq!(
            lines[5], "  03:10  rcf        ec2-run-instances  0.93  ec2-run-instances summary",
            "{text}"
        );
        assert!(
            text.contains("\nBy severity: 1 high, 1 low. Next: --report"),
            "{text}"
        );
        assert!(
            text.contains("\n3 anomalies in 2 incidents, 1 paging.\nBy severity: "),
            "{text}"
        );
        assert_eq!(render(Format::Table, vec![]), "No anomalies found.\n");
    }

    #[test]
    fn an_incidents_insights_of_one_type_and_principal_fold_into_one_line() {
        let insight = |api: &str, rate: f64, minute: u32, who: &str| {
            let (source, name) = api.split_once(':').unwrap();
            Anomaly {
                entity: Some(
                    [
                        ("eventSource", format!("{source}.amazonaws.com")),
                        ("eventName", name.to_owned()),
                        ("awsRegion", "us-east-1".to_owned()),
                        ("recipientAccountId", "1".to_owned()),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
                ),
                actual: rate,
                expected: 0.01,
                grade: 0.9 + rate / 100.0,
                summary: format!("{api} errors at {rate}/min"),
                ..anomaly(
                    "ApiErrorRateInsight",
                    AnomalyKind::Insight,
                    &format!("2026-01-07T14:{minute:02}:00Z"),
                    who,
                )
            }
        };
        let bob = "arn:aws:iam::1:user/bob";
        let mut found = vec![anomaly(
            "api-errors",
            AnomalyKind::Rcf,
            "2026-01-07T14:20:00Z",
            bob,
        )];
        for (n, api) in [
            "iam:ListUsers",
            "s3:ListBuckets",
            "ec2:DescribeInstances",
            "iam:ListRoles",
            "kms:ListKeys",
            "sns:ListTopics",
            "sqs:ListQueues",
            "lambda:ListFunctions",
        ]
        .into_iter()
        .enumerate()
        {
            found.push(insight(
                api,
                2.0 + n as f64 / 10.0,
                20 + (n as u32 % 2),
                bob,
            ));
        }
        // An insight of another type keeps its own line.
        found.push(Anomaly {
            detector: "ApiCallRateInsight".into(),
            ..insight("iam:GetUser", 1.5, 21, bob)
        });
        let text = render(Format::Table, found);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 3 + 3, "{text}");
        assert_eq!(
            lines[2],
            "  14:20  insight  ApiErrorRateInsight  0.93  8 APIs' errors above usual (1/us-east-1), mostly user/bob@1: \
             lambda:ListFunctions 2.7/min, sqs:ListQueues 2.6/min, sns:ListTopics 2.5/min, kms:ListKeys 2.4/min, \
             iam:ListRoles 2.3/min, ec2:DescribeInstances 2.2/min, 2 more (usually 0.01/min at most)",
            "{text}"
        );
        assert!(
            lines[3].ends_with("iam:GetUser errors at 1.5/min"),
            "{text}"
        );
        // The count of findings is every one of them, as NDJSON lists each.
        assert!(
            text.contains("\n10 anomalies in 1 incident, all paging.\n"),
            "{text}"
        );
    }

    #[test]
    fn json_is_one_array_of_incidents_holding_their_findings() {
        let a = anomaly("x", AnomalyKind::Rcf, "2026-01-07T14:10:00Z", "bob");
        let mut b = anomaly("y", AnomalyKind::Rule, "2026-01-07T14:12:00Z", "bob");
        b.attack = vec!["T1562.008".into()];
        let c = anomaly("z", AnomalyKind::Rcf, "2026-01-09T09:00:00Z", "carol");
        let v: serde_json::Value =
            serde_json::from_str(&render(Format::Json, vec![a, b, c])).unwrap();
        let incidents = v.as_array().unwrap();
        assert_eq!(incidents.len(), 2, "{v:#}");
        let first = &incidents[0];
        assert_eq!(first["incident"], 1);
        assert_eq!(first["findings"].as_array().unwrap().len(), 2, "{first:#}");
        assert_eq!(first["attack"], serde_json::json!(["T1562.008"]));
        assert_eq!(first["start"], "2026-01-07T14:10:00Z");
        for field in [
            "severity",
            "page",
            "end",
            "who",
            "principals",
            "source_ips",
            "cost_per_hour",
        ] {
            assert!(first.get(field).is_some(), "{field}: {first:#}");
        }
    }
}
