//! Scoring every series of every detector, in parallel, into anomalies.

use super::aggregate::{bucket_of, Aggregates, Series};
use super::anomaly::{round4, Anomaly, AnomalyKind};
use super::rcf::{RcfConfig, RcfScorer, Scorer};
use crate::detector::{Detector, Entity};
use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// What to report and how many entities to model.
#[derive(Debug, Clone, Copy)]
pub struct ScoreOptions {
    /// Intervals starting before this only train the models.
    pub since: Option<DateTime<Utc>>,
    /// Most entities modelled per high-cardinality detector.
    pub max_entities: usize,
}

/// The outcome of scoring.
#[derive(Debug, Default)]
pub struct ScoreReport {
    pub anomalies: Vec<Anomaly>,
    pub series: usize,
    pub intervals: u64,
    /// Detector name -> entities left out by the `max_entities` bound.
    pub evicted: BTreeMap<String, usize>,
}

/// Builds a scorer for one series; tests pass their own to pin behaviour.
pub type ScorerFactory<'a> = dyn Fn(&Detector, &Entity) -> Box<dyn Scorer> + Sync + 'a;

/// The default factory: the plugin's RCF settings, seeded from the detector
/// name and entity so results repeat run after run.
pub fn rcf_factory(d: &Detector, entity: &Entity) -> Box<dyn Scorer> {
    let mut seed = 0xcbf2_9ce4_8422_2325u64;
    for part in std::iter::once(&d.name).chain(entity) {
        for b in part.bytes().chain([0]) {
            seed = (seed ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    Box::new(RcfScorer::new(RcfConfig::plugin_defaults(
        d.shingle_size,
        seed,
    )))
}

/// Which entities a high-cardinality detector keeps when there are more than
/// `max`: the most recently active first, then the busiest, then by name.
/// The rest are evicted (and counted), as the plugin evicts cold entities.
pub fn entities_to_keep<'a>(
    series: impl Iterator<Item = (&'a Entity, &'a Series)>,
    max: usize,
) -> (Vec<(&'a Entity, &'a Series)>, usize) {
    let mut all: Vec<_> = series.collect();
    let total = all.len();
    if total <= max {
        all.sort_by(|a, b| a.0.cmp(b.0));
        return (all, 0);
    }
    let key = |s: &Series| {
        let last = s.keys().next_back().copied().unwrap_or(i64::MIN);
        let sum: f64 = s.values().map(|c| c.value()).sum();
        (last, sum)
    };
    all.sort_by(|a, b| {
        let (la, sa) = key(a.1);
        let (lb, sb) = key(b.1);
        lb.cmp(&la).then(sb.total_cmp(&sa)).then(a.0.cmp(b.0))
    });
    all.truncate(max);
    (all, total - max)
}

/// Scores every series and returns the anomalies that pass each detector's
/// alert thresholds, sorted by time, detector and entity.
pub fn score_all(
    detectors: &[Detector],
    aggregates: &Aggregates,
    options: ScoreOptions,
    factory: &ScorerFactory<'_>,
) -> ScoreReport {
    let mut report = ScoreReport::default();
    let (Some(first), Some(last)) = (aggregates.first_event, aggregates.last_event) else {
        return report;
    };
    let mut jobs = Vec::new();
    for (d, agg) in detectors.iter().zip(&aggregates.detectors) {
        let max = if d.is_high_cardinality() {
            options.max_entities
        } else {
            usize::MAX
        };
        let (kept, evicted) = entities_to_keep(agg.series.iter(), max);
        if evicted > 0 {
            report.evicted.insert(d.name.clone(), evicted);
        }
        // A single-entity detector with no match still has a series: all zeros.
        if kept.is_empty() && !d.is_high_cardinality() {
            jobs.push((d, None));
        }
        jobs.extend(kept.into_iter().map(|(e, s)| (d, Some((e, s)))));
    }
    let results: Vec<(u64, Vec<Anomaly>)> = jobs
        .par_iter()
        .map(|(d, series)| {
            let empty_entity = Entity::new();
            let empty_series = Series::new();
            let (entity, series) = series.unwrap_or((&empty_entity, &empty_series));
            score_series(d, entity, series, first, last, options.since, factory)
        })
        .collect();
    report.series = jobs.len();
    for (intervals, anomalies) in results {
        report.intervals += intervals;
        report.anomalies.extend(anomalies);
    }
    report.anomalies.sort_by(|a, b| {
        (a.start, &a.detector, a.entity_text()).cmp(&(b.start, &b.detector, b.entity_text()))
    });
    report
}

/// Scores one series from the first to the last interval of the data, with
/// empty intervals as zero.
fn score_series(
    d: &Detector,
    entity: &Entity,
    series: &Series,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
    factory: &ScorerFactory<'_>,
) -> (u64, Vec<Anomaly>) {
    let secs = d.interval.as_secs() as i64;
    let (start, end) = (bucket_of(first, secs), bucket_of(last, secs));
    let mut scorer = factory(d, entity);
    let mut found: BTreeMap<i64, Anomaly> = BTreeMap::new();
    let entity_map = d.is_high_cardinality().then(|| {
        d.category_fields
            .iter()
            .map(|f| f.as_str().to_owned())
            .zip(entity.iter().cloned())
            .collect::<BTreeMap<_, _>>()
    });
    let value_at = |b: i64| series.get(&b).map_or(0.0, |c| c.value());
    for bucket in start..=end {
        let s = scorer.update(value_at(bucket));
        if s.grade <= 0.0 || s.grade < d.alert.grade || s.confidence < d.alert.confidence {
            continue;
        }
        let at = bucket + s.relative_index as i64;
        let (actual, expected) = (value_at(at), s.expected.unwrap_or(0.0).max(0.0));
        if !d.alert.keeps(actual, expected) {
            continue;
        }
        let at_time = DateTime::from_timestamp(at * secs, 0).unwrap_or(first);
        if since.is_some_and(|t| at_time < t) || at < start {
            continue;
        }
        let anomaly = Anomaly {
            detector: d.name.clone(),
            kind: AnomalyKind::Rcf,
            entity: entity_map.clone(),
            start: at_time,
            end: at_time + Duration::seconds(secs),
            grade: round4(s.grade),
            confidence: round4(s.confidence),
            actual: round4(actual),
            expected: round4(expected),
            score: round4(s.score),
        };
        match found.get(&at) {
            Some(old) if old.grade >= anomaly.grade => {}
            _ => {
                found.insert(at, anomaly);
            }
        }
    }
    ((end - start + 1) as u64, found.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::parse_detector;
    use crate::engine::aggregate::{Cell, DetectorAggregate};
    use crate::engine::rcf::Score;
    use std::path::Path;

    /// Flags every value above 10 with full grade and confidence.
    struct Threshold;
    impl Scorer for Threshold {
        fn update(&mut self, value: f64) -> Score {
            Score {
                grade: if value > 10.0 { 1.0 } else { 0.0 },
                confidence: 1.0,
                expected: Some(1.0),
                ..Score::default()
            }
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn aggregates(d: &Detector, entities: &[(&str, &[(i64, f64)])]) -> Aggregates {
        let mut agg = DetectorAggregate::default();
        for (e, points) in entities {
            let entity = if e.is_empty() {
                vec![]
            } else {
                vec![e.to_string()]
            };
            agg.series.insert(
                entity,
                points.iter().map(|&(b, v)| (b, Cell::Number(v))).collect(),
            );
        }
        let _ = d;
        Aggregates {
            detectors: vec![agg],
            first_event: Some(t("1970-01-01T00:00:00Z")),
            last_event: Some(t("1970-01-01T01:39:00Z")),
            after_until: 0,
        }
    }

    #[test]
    fn empty_intervals_are_zero_and_since_only_trains() {
        let d = parse_detector(Path::new("d.toml"), "").unwrap();
        let agg = aggregates(&d, &[("", &[(1, 50.0), (7, 50.0)])]);
        let opts = ScoreOptions {
            since: None,
            max_entities: 10,
        };
        let r = score_all(std::slice::from_ref(&d), &agg, opts, &|_, _| {
            Box::new(Threshold)
        });
        assert_eq!(r.intervals, 10, "00:00 to 01:39 is ten 10-minute intervals");
        let starts: Vec<String> = r
            .anomalies
            .iter()
            .map(|a| a.start.format("%H:%M").to_string())
            .collect();
        assert_eq!(starts, ["00:10", "01:10"]);
        let opts = ScoreOptions {
            since: Some(t("1970-01-01T00:30:00Z")),
            max_entities: 10,
        };
        let r = score_all(std::slice::from_ref(&d), &agg, opts, &|_, _| {
            Box::new(Threshold)
        });
        assert_eq!(r.anomalies.len(), 1);
        assert_eq!(r.anomalies[0].entity, None);
    }

    #[test]
    fn entities_beyond_the_bound_are_evicted_least_recent_first() {
        let d = parse_detector(
            Path::new("d.toml"),
            "category_fields = [\"userIdentity.arn\"]",
        )
        .unwrap();
        let agg = aggregates(
            &d,
            &[
                ("old", &[(1, 50.0)]),
                ("new", &[(8, 50.0)]),
                ("mid", &[(4, 50.0)]),
            ],
        );
        let opts = ScoreOptions {
            since: None,
            max_entities: 2,
        };
        let r = score_all(std::slice::from_ref(&d), &agg, opts, &|_, _| {
            Box::new(Threshold)
        });
        assert_eq!(r.evicted.get("d"), Some(&1));
        let who: Vec<String> = r.anomalies.iter().map(|a| a.entity_text()).collect();
        assert_eq!(who, ["userIdentity.arn=mid", "userIdentity.arn=new"]);
    }
}
