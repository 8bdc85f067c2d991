//! Writing anomalies: a readable table, one JSON array, or NDJSON.

use super::anomaly::Anomaly;
use std::io::{self, Write};

/// Output formats of `trailwatch detect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Ndjson,
}

pub fn write(format: Format, anomalies: &[Anomaly], out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => write_table(anomalies, out),
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

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn write_table(anomalies: &[Anomaly], out: &mut dyn Write) -> io::Result<()> {
    if anomalies.is_empty() {
        return writeln!(out, "No anomalies found.");
    }
    let header = [
        "START (UTC)",
        "END",
        "DETECTOR",
        "ENTITY",
        "ACTUAL",
        "EXPECTED",
        "GRADE",
        "CONF",
    ];
    let rows: Vec<[String; 8]> = anomalies
        .iter()
        .map(|a| {
            [
                a.start.format("%Y-%m-%d %H:%M").to_string(),
                a.end.format("%H:%M").to_string(),
                a.detector.clone(),
                a.entity_text(),
                number(a.actual),
                number(a.expected),
                format!("{:.2}", a.grade),
                format!("{:.2}", a.confidence),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // Text columns align left, figures right.
            if i >= 4 {
                s.push_str(&format!("{cell:>w$}  "));
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    };
    writeln!(out, "{}", line(&header.map(String::from)))?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    writeln!(
        out,
        "\n{} anomal{} found.",
        anomalies.len(),
        if anomalies.len() == 1 { "y" } else { "ies" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::AnomalyKind;

    fn anomaly() -> Anomaly {
        Anomaly {
            detector: "lambda-invoke".into(),
            kind: AnomalyKind::Rcf,
            entity: Some(
                [(
                    "requestParameters.functionName".to_string(),
                    "resize".to_string(),
                )]
                .into(),
            ),
            start: "2026-01-07T14:10:00Z".parse().unwrap(),
            end: "2026-01-07T14:20:00Z".parse().unwrap(),
            grade: 0.93,
            confidence: 0.81,
            actual: 5021.0,
            expected: 40.5,
            score: 3.2,
        }
    }

    fn render(format: Format, a: &[Anomaly]) -> String {
        let mut out = Vec::new();
        write(format, a, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ndjson_has_the_documented_fields() {
        let text = render(Format::Ndjson, &[anomaly()]);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["detector"], "lambda-invoke");
        assert_eq!(v["kind"], "rcf");
        assert_eq!(v["entity"]["requestParameters.functionName"], "resize");
        assert_eq!(v["start"], "2026-01-07T14:10:00Z");
        assert_eq!(v["end"], "2026-01-07T14:20:00Z");
        for k in ["grade", "confidence", "actual", "expected"] {
            assert!(v[k].is_number(), "{k}");
        }
    }

    #[test]
    fn the_table_reads_as_a_table() {
        let text = render(Format::Table, &[anomaly()]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("START (UTC)       END    DETECTOR"),
            "{text}"
        );
        assert!(
            lines[1].contains(
                "2026-01-07 14:10  14:20  lambda-invoke  requestParameters.functionName=resize"
            ),
            "{text}"
        );
        assert!(
            lines[1].contains("5021") && lines[1].contains("40.50") && lines[1].ends_with("0.81"),
            "{text}"
        );
        assert!(text.ends_with("1 anomaly found.\n"));
        assert_eq!(render(Format::Table, &[]), "No anomalies found.\n");
    }

    #[test]
    fn json_is_one_array() {
        let v: serde_json::Value =
            serde_json::from_str(&render(Format::Json, &[anomaly(), anomaly()])).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
    }
}
