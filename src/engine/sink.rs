//! Writing results: a table of incidents for people, one JSON array, or NDJSON
//! (one anomaly per line, each with its incident id and context).

use super::anomaly::Anomaly;
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
            serde_json::to_writer_pretty(&mut *out, anomalies)?;
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
    for inc in incidents {
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
        for &i in &inc.members {
            let a = &anomalies[i];
            writeln!(
                out,
                "  {}  {:kind_width$}  {:det_width$}  {:.2}  {}",
                a.start.format("%H:%M"),
                a.kind.name(),
                a.detector,
                a.grade,
                a.summary
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
            detected: start + chrono::Duration::minutes(10),
            severity: None,
            page: None,
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
        assert_eq!(lines[0], "INCIDENT 1  low  2026-01-07 03:10 – 03:20  grade 0.93  user/carol@2 (new) from 203.0.113.66 (new)", "{text}");
        assert_eq!(
            lines[1], "  03:10  rcf        ec2-run-instances  0.93  ec2-run-instances summary",
            "{text}"
        );
        assert!(
            lines[3].starts_with("INCIDENT 2  high (pages)  2026-01-07 14:20 – 14:30"),
            "{text}"
        );
        assert!(
            lines[4].contains("rcf        api-errors")
                && lines[5].contains("new_event  new-activity"),
            "{text}"
        );
        assert!(
            text.ends_with("3 anomalies in 2 incidents, 1 paging.\n"),
            "{text}"
        );
        assert_eq!(render(Format::Table, vec![]), "No anomalies found.\n");
    }

    #[test]
    fn json_is_one_array() {
        let a = anomaly("x", AnomalyKind::Rcf, "2026-01-07T14:10:00Z", "bob");
        let v: serde_json::Value =
            serde_json::from_str(&render(Format::Json, vec![a.clone(), a])).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
    }
}
