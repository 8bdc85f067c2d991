//! Writing results: a table of incidents for people (an incident's insights
//! of one type and principal folded into one line with their count), one
//! JSON array of incidents, NDJSON (one anomaly per line, each with its
//! incident id and context), or OCSF Detection Findings ([`super::ocsf`]).

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
    /// One OCSF 1.1.0 Detection Finding per incident a line ([`super::ocsf`]).
    Ocsf,
}

pub fn write(
    format: Format,
    anomalies: &[Anomaly],
    incidents: &[Incident],
    style: &TableStyle,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Table => write_table(anomalies, incidents, style, out),
        Format::Json => {
            let objects: Vec<serde_json::Value> = incidents
                .iter()
                .map(|inc| incident_object(anomalies, inc))
                .collect();
            serde_json::to_writer_pretty(&mut *out, &objects)?;
            writeln!(out)
        }
        Format::Ocsf => {
            for inc in incidents {
                serde_json::to_writer(&mut *out, &super::ocsf::detection_finding(anomalies, inc))?;
                writeln!(out)?;
            }
            Ok(())
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

/// A finding's sentence without the title its detector or rule column
/// already gives (`EC2 instances requested … per 10 minutes: `), so the
/// line's width goes to what it saw.
fn detail_text(a: &Anomaly) -> &str {
    match a.kind {
        AnomalyKind::Rcf | AnomalyKind::Rule => a
            .summary
            .split_once(": ")
            .map_or(a.summary.as_str(), |(_, rest)| rest),
        _ => &a.summary,
    }
}

/// How the table is drawn: the width lines are cut to (`None`: whole
/// lines), and whether severities are coloured (ANSI).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStyle {
    pub width: Option<usize>,
    pub color: bool,
}

/// The narrowest the table is cut to, whatever the terminal says.
const MIN_WIDTH: usize = 40;

/// `line` cut to `width` characters, ending in `…` when cut.
fn fit(line: &str, width: Option<usize>) -> String {
    match width {
        Some(w) if line.chars().count() > w => {
            let mut cut: String = line.chars().take(w.saturating_sub(1)).collect();
            cut.truncate(cut.trim_end().len());
            cut.push('…');
            cut
        }
        _ => line.to_owned(),
    }
}

/// A severity's name, upper-case and padded, coloured when asked.
fn severity_word(severity: Option<super::Severity>, color: bool) -> String {
    use super::Severity;
    let name = severity.map_or("UNRATED", |s| match s {
        Severity::Critical => "CRITICAL",
        Severity::High => "HIGH",
        Severity::Medium => "MEDIUM",
        Severity::Low => "LOW",
    });
    let padded = format!("{name:<8}");
    if !color {
        return padded;
    }
    use anstyle::{AnsiColor, Style};
    let style = match severity {
        Some(Severity::Critical) => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
        Some(Severity::High) => Style::new().fg_color(Some(AnsiColor::Red.into())),
        Some(Severity::Medium) => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Some(Severity::Low) | None => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
    };
    format!("{style}{padded}{style:#}")
}

fn write_table(
    anomalies: &[Anomaly],
    incidents: &[Incident],
    style: &TableStyle,
    out: &mut dyn Write,
) -> io::Result<()> {
    if anomalies.is_empty() {
        return writeln!(out, "No anomalies found.");
    }
    let width = style.width.map(|w| w.max(MIN_WIDTH));
    // In the report's order: the most severe first.
    for inc in super::group::reading_order(incidents, anomalies) {
        let members: Vec<&Anomaly> = inc.members.iter().map(|&i| &anomalies[i]).collect();
        let first = members[0];
        // Columns as wide as this incident needs.
        let kind_width = members
            .iter()
            .map(|a| a.kind.name().len())
            .max()
            .unwrap_or(0);
        let det_width = members.iter().map(|a| a.detector.len()).max().unwrap_or(0);
        // What happened, by whom, what it costs, when: the headline is cut
        // so that the cost and the time stay on the line.
        let tail = format!(
            "{}  {}",
            super::headline::cost_text(inc.cost_per_hour(anomalies))
                .map(|c| format!("  {c}"))
                .unwrap_or_default(),
            super::headline::span_text(inc.start, inc.end)
        );
        let room = width.map(|w| w.saturating_sub(10 + tail.chars().count()).max(20));
        let header = fit(
            &format!(
                "{}  {}{tail}",
                severity_word(first.severity, false),
                fit(&super::headline::of(&members), room)
            ),
            width,
        );
        // The severity word leads, padded: coloured in place when asked.
        let word = severity_word(first.severity, false);
        let header = match header.strip_prefix(&word) {
            Some(rest) if style.color => format!("{}{rest}", severity_word(first.severity, true)),
            _ => header,
        };
        writeln!(out, "{header}")?;
        let detail = format!(
            "  incident {}{}, grade {:.2}: {}",
            inc.id,
            if first.page == Some(true) {
                ", pages"
            } else {
                ""
            },
            inc.grade,
            incident_who(anomalies, inc)
        );
        writeln!(out, "{}", fit(&detail, width))?;
        for row in rows(anomalies, inc) {
            let a = &anomalies[row.first];
            let line = format!(
                "  {}  {:kind_width$}  {:det_width$}  {:.2}  {}",
                // A partial finding is told by when it was reached.
                if a.partial { a.end } else { a.start }.format("%H:%M"),
                a.kind.name(),
                a.detector,
                row.grade,
                row.summary.as_deref().unwrap_or_else(|| detail_text(a))
            );
            writeln!(out, "{}", fit(&line, width))?;
        }
        writeln!(out)?;
    }
    let paging = incidents
        .iter()
        .filter(|inc| anomalies[inc.members[0]].page == Some(true))
        .count();
    let count = format!(
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
    );
    writeln!(out, "{}", fit(&count, width))?;
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
    let by = format!("By severity: {}.", counts.join(", "));
    writeln!(out, "{}", fit(&by, width))?;
    for (n, next) in NEXT.iter().enumerate() {
        let line = format!("{}{next}", if n == 0 { "Next: " } else { "      " });
        writeln!(out, "{}", fit(&line, width))?;
    }
    Ok(())
}

/// Where a reader goes from the table.
const NEXT: [&str; 3] = [
    "--report FILE.html for a summary, a timeline and a card per incident with what to do first",
    "--format json for incident objects to pivot on (keys, addresses, event IDs)",
    "--mute PRINCIPAL to silence a principal you know (a pipeline, a scanner)",
];

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
            pivots: Default::default(),
        }
    }

    fn render(format: Format, mut a: Vec<Anomaly>) -> String {
        let incidents = incidents(&mut a, DEFAULT_PAGE);
        let mut out = Vec::new();
        write(format, &a, &incidents, &TableStyle::default(), &mut out).unwrap();
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
        // What happened, by whom, when; then the incident, whether it
        // pages, its grade and who exactly.
        assert_eq!(
            lines[0],
            "HIGH      api-errors summary far above usual by a new user from a new network  2026-01-07 14:20–14:30",
            "{text}"
        );
        assert_eq!(
            lines[1], "  incident 2, pages, grade 0.93: user/bob@1 (new) from 203.0.113.66 (new)",
            "{text}"
        );
        assert!(
            lines[2].contains("rcf        api-errors")
                && lines[3].contains("new_event  new-activity"),
            "{text}"
        );
        assert!(
            lines[5].starts_with("LOW       ec2-run-instances summary"),
            "{text}"
        );
        assert_eq!(
            lines[6], "  incident 1, grade 0.93: user/carol@2 (new) from 203.0.113.66 (new)",
            "{text}"
        );
        assert_eq!(
            lines[7], "  03:10  rcf  ec2-run-instances  0.93  ec2-run-instances summary",
            "{text}"
        );
        assert!(
            text.contains("\nBy severity: 1 high, 1 low.\nNext: --report FILE.html"),
            "{text}"
        );
        assert!(
            text.contains("\n      --mute PRINCIPAL to silence"),
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
        assert_eq!(lines.len(), 2 + 3 + 1 + 1 + 1 + 3, "{text}");
        assert_eq!(
            lines[3],
            "  14:20  insight  ApiErrorRateInsight  0.93  8 APIs' errors above usual (1/us-east-1), mostly user/bob@1: \
             lambda:ListFunctions 2.7/min, sqs:ListQueues 2.6/min, sns:ListTopics 2.5/min, kms:ListKeys 2.4/min, \
             iam:ListRoles 2.3/min, ec2:DescribeInstances 2.2/min, 2 more (usually 0.01/min at most)",
            "{text}"
        );
        assert!(
            lines[4].ends_with("iam:GetUser errors at 1.5/min"),
            "{text}"
        );
        // The count of findings is every one of them, as NDJSON lists each.
        assert!(
            text.contains("\n10 anomalies in 1 incident, all paging.\n"),
            "{text}"
        );
    }

    /// Cut to the width, every line, with an ellipsis; the cost and the
    /// time stay on the header; colour only when asked, around the
    /// severity alone.
    #[test]
    fn the_table_fits_its_width_and_colours_only_the_severity_when_asked() {
        let mut found = vec![anomaly(
            "ec2-run-instances",
            AnomalyKind::Rcf,
            "2026-01-07T03:10:00Z",
            "arn:aws:iam::2:user/carol-with-a-rather-long-name-for-a-user",
        )];
        found[0].summary = "x".repeat(300);
        let incs = incidents(&mut found, DEFAULT_PAGE);
        let draw = |style: TableStyle| {
            let mut out = Vec::new();
            write(Format::Table, &found, &incs, &style, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let plain = draw(TableStyle {
            width: Some(60),
            color: false,
        });
        for line in plain.lines() {
            assert!(line.chars().count() <= 60, "{line}");
        }
        assert!(plain.lines().nth(2).unwrap().ends_with("xxx…"), "{plain}");
        assert!(
            plain
                .lines()
                .next()
                .unwrap()
                .ends_with("  2026-01-07 03:10–03:20"),
            "{plain}"
        );
        assert!(!plain.contains('\u{1b}'));
        let coloured = draw(TableStyle {
            width: Some(60),
            color: true,
        });
        assert!(
            coloured.starts_with("\u{1b}[36mLOW     \u{1b}[0m  "),
            "{coloured:?}"
        );
        assert_eq!(coloured.matches('\u{1b}').count(), 2, "{coloured:?}");
        assert_eq!(
            coloured.replace("\u{1b}[36m", "").replace("\u{1b}[0m", ""),
            plain
        );
        // No width: whole lines.
        let whole = draw(TableStyle::default());
        assert!(whole.contains(&"x".repeat(300)));
        // A width below the floor is raised to it.
        let tiny = draw(TableStyle {
            width: Some(5),
            color: false,
        });
        assert!(
            tiny.lines().all(|l| l.chars().count() <= MIN_WIDTH),
            "{tiny}"
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
