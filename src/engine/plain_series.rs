//! `--series FILE.csv`: an RCF detector on a plain `timestamp,value` series
//! (a billing or CloudWatch metric export), and `--scores OUT.csv`: every
//! row's score, grade and confidence, in input order.

use super::anomaly::{round4, Anomaly, AnomalyKind};
use super::rcf::{relearn, RcfConfig, RcfScorer, Score, Scorer, MAX_REBUILDS, REBUILD_HISTORY};
use crate::detector::AlertThresholds;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use std::fmt::Write as _;

/// One row of the series.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The timestamp as written, echoed in `--scores`.
    pub text: String,
    pub time: DateTime<Utc>,
    pub value: f64,
}

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

/// RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (UTC), `YYYY-MM-DD`, or Unix seconds or milliseconds.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    let n: i64 = s.parse().ok()?;
    if n.abs() >= 100_000_000_000 {
        DateTime::from_timestamp_millis(n)
    } else {
        DateTime::from_timestamp(n, 0)
    }
}

/// Reads `timestamp,value` rows; a first row that does not parse is taken as
/// a header. Bad rows are returned as errors naming the line and skipped.
pub fn read_csv(text: &str) -> (Vec<Point>, Vec<RowError>) {
    let mut points = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.splitn(3, ',');
        let (ts, value) = (
            cols.next().unwrap_or("").trim().trim_matches('"'),
            cols.next().map(|v| v.trim().trim_matches('"')),
        );
        let time = parse_timestamp(ts);
        let value = value
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && v.abs() <= super::rcf::MAX_MODEL_VALUE);
        match (time, value) {
            (Some(time), Some(value)) => points.push(Point {
                text: ts.to_owned(),
                time,
                value,
            }),
            _ if points.is_empty() && errors.is_empty() && line_no == 1 => {} // a header
            (None, _) => errors.push(RowError {
                line: line_no,
                message: format!(
                    "{ts:?} is not a timestamp (RFC 3339, 'YYYY-MM-DD HH:MM:SS' or Unix seconds)"
                ),
            }),
            (Some(_), None) => errors.push(RowError {
                line: line_no,
                message: format!(
                    "the value is missing, not a number, or beyond ±{:e}",
                    super::rcf::MAX_MODEL_VALUE
                ),
            }),
        }
    }
    (points, errors)
}

/// Scores the points in time order (stable for equal times) with models
/// from `make` (generation 0, then one more each time a model fails and is
/// rebuilt), and returns the scores in input order, with a warning for each
/// failure. Points after the series is set aside score 0.
pub fn score(points: &[Point], make: &dyn Fn(u32) -> Box<dyn Scorer>) -> (Vec<Score>, Vec<String>) {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| points[i].time);
    let mut scores = vec![Score::default(); points.len()];
    let mut warnings = Vec::new();
    let mut generation = 0;
    let mut scorer = make(generation);
    for (k, &i) in order.iter().enumerate() {
        match scorer.update(points[i].value) {
            Ok(s) => scores[i] = s,
            Err(e) => {
                let from = k.saturating_sub(REBUILD_HISTORY as usize);
                let history: Vec<f64> = order[from..k].iter().map(|&j| points[j].value).collect();
                match relearn(make, &mut generation, &history, points[i].value) {
                    Some((rebuilt, s)) => {
                        warnings.push(format!("{}: the model failed ({e}); a new model learnt the {} value(s) before it and scoring went on", points[i].text, history.len()));
                        scorer = rebuilt;
                        scores[i] = s;
                    }
                    None => {
                        warnings.push(format!("{}: the model failed ({e}) {MAX_REBUILDS} times; the rest of the series is not scored", points[i].text));
                        break;
                    }
                }
            }
        }
    }
    (scores, warnings)
}

/// The default models of a plain series: the plugin's RCF settings, a new
/// seed for each generation.
pub fn default_scorer(shingle_size: usize) -> impl Fn(u32) -> Box<dyn Scorer> {
    move |generation| {
        Box::new(RcfScorer::new(RcfConfig::plugin_defaults(
            shingle_size,
            17 + generation as u64,
        ))) as Box<dyn Scorer>
    }
}

/// `timestamp,value,anomaly_score,anomaly_grade,confidence`, one line per input row.
pub fn scores_csv(points: &[Point], scores: &[Score]) -> String {
    let mut out = String::from("timestamp,value,anomaly_score,anomaly_grade,confidence\n");
    for (p, s) in points.iter().zip(scores) {
        let _ = writeln!(
            out,
            "{},{},{},{},{}",
            p.text,
            p.value,
            round4(s.score),
            round4(s.grade),
            round4(s.confidence)
        );
    }
    out
}

/// The rows that pass the thresholds and rules, as anomalies. A row's
/// interval runs to the next timestamp (the last one's, as long as the one before).
pub fn anomalies(
    name: &str,
    points: &[Point],
    scores: &[Score],
    alert: &AlertThresholds,
) -> Vec<Anomaly> {
    let mut times: Vec<DateTime<Utc>> = points.iter().map(|p| p.time).collect();
    times.sort();
    let step = |t: DateTime<Utc>| {
        let i = times.partition_point(|x| *x <= t);
        match (times.get(i), i.checked_sub(2).and_then(|j| times.get(j))) {
            (Some(next), _) => *next - t,
            (None, Some(prev)) => t - *prev,
            _ => chrono::Duration::minutes(1),
        }
    };
    let mut out = Vec::new();
    for (p, s) in points.iter().zip(scores) {
        let expected = s.expected.unwrap_or(0.0);
        if s.grade <= 0.0
            || s.grade < alert.grade
            || s.confidence < alert.confidence
            || s.relative_index != 0
            || !alert.keeps(p.value, expected)
        {
            continue;
        }
        out.push(Anomaly {
            detector: name.to_owned(),
            kind: AnomalyKind::Rcf,
            entity: None,
            start: p.time,
            end: p.time + step(p.time),
            grade: round4(s.grade),
            confidence: round4(s.confidence),
            actual: p.value,
            expected: round4(expected),
            score: round4(s.score),
            summary: format!("{name}: {} against {:.2} expected", p.value, expected),
            context: None,
            incident: None,
            subjects: Vec::new(),
            late: false,
            partial: false,
            detected: p.time + step(p.time),
            severity: None,
            page: None,
            novelty: None,
            attack: Vec::new(),
            pivots: Default::default(),
        });
    }
    out.sort_by_key(|a| a.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_common_form() {
        let want: DateTime<Utc> = "2026-01-07T14:00:00Z".parse().unwrap();
        for s in [
            "2026-01-07T14:00:00Z",
            "2026-01-07 14:00:00",
            "2026-01-07 14:00",
            "1767794400",
            "1767794400000",
            "2026-01-07T16:00:00+02:00",
        ] {
            assert_eq!(parse_timestamp(s), Some(want), "{s}");
        }
        assert_eq!(
            parse_timestamp("2026-01-07").unwrap().to_rfc3339(),
            "2026-01-07T00:00:00+00:00"
        );
        assert_eq!(parse_timestamp("soon"), None);
    }

    #[test]
    fn a_header_is_skipped_and_bad_rows_are_named() {
        let (points, errors) =
            read_csv("timestamp,value\n2026-01-07,1\nnever,2\n2026-01-08,x\n\n2026-01-09,3.5\n");
        assert_eq!(points.len(), 2);
        assert_eq!(points[1].value, 3.5);
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0]
                .to_string()
                .starts_with("line 3: \"never\" is not a timestamp"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].to_string().starts_with("line 4: the value"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn scores_come_back_in_input_order_and_find_the_spike() {
        let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut points: Vec<Point> = (0..400)
            .map(|i| {
                let time = start + chrono::Duration::hours(i);
                let value = 100.0
                    + 20.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin()
                    + ((i * 7) % 5) as f64
                    + if i == 300 { 400.0 } else { 0.0 };
                Point {
                    text: time.to_rfc3339(),
                    time,
                    value,
                }
            })
            .collect();
        points.reverse();
        let (scores, _) = score(&points, &default_scorer(8));
        let csv = scores_csv(&points, &scores);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 401);
        assert_eq!(
            lines[0],
            "timestamp,value,anomaly_score,anomaly_grade,confidence"
        );
        assert!(
            lines[1].starts_with(&points[0].text),
            "input order kept: {}",
            lines[1]
        );
        let alert = AlertThresholds {
            grade: 0.7,
            confidence: 0.7,
            direction: crate::detector::Direction::Both,
            min_ratio: 0.2,
            min_margin: 0.0,
        };
        let found = anomalies("cost", &points, &scores, &alert);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].start, start + chrono::Duration::hours(300));
        assert_eq!(found[0].end - found[0].start, chrono::Duration::hours(1));
    }
}
