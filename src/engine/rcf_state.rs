//! Scoring detector series with RCF, incrementally: each series keeps its
//! model and the next interval to score, so the same code serves a one-shot
//! run (score to the end) and `--follow` (score what has closed so far).

use super::aggregate::{bucket_of, Aggregates, Series};
use super::anomaly::{round4, Anomaly, AnomalyKind};
use super::rcf::{RcfConfig, RcfScorer, Scorer};
use crate::context::{self, short_arn, trim_number, Facet, FacetCounts};
use crate::detector::{Detector, Entity};
use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// Builds a scorer for one series; tests pass their own to pin behaviour.
pub type ScorerFactory = dyn Fn(&Detector, &Entity) -> Box<dyn Scorer> + Sync;

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
        let sum: f64 = s.values().map(|b| b.cell.value()).sum();
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

struct SeriesState {
    scorer: Box<dyn Scorer>,
    /// The next interval index to score.
    next: i64,
}

/// The models of every series, and where each has got to.
#[derive(Default)]
pub struct RcfState {
    series: HashMap<(usize, Entity), SeriesState>,
    /// Detector name -> entities left out by the bound, at the last advance.
    pub evicted: BTreeMap<String, usize>,
    pub intervals: u64,
}

impl RcfState {
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Scores, for each detector, the intervals from where it stopped up to
    /// (not including) `upto(detector)`. Every series starts at the interval
    /// of the first event, with empty intervals as zero. Anomalies before
    /// `since` only train.
    #[allow(clippy::too_many_arguments)]
    pub fn advance(
        &mut self,
        detectors: &[Detector],
        aggregates: &Aggregates,
        upto: &(dyn Fn(&Detector) -> i64 + Sync),
        since: Option<DateTime<Utc>>,
        max_entities: usize,
        factory: &ScorerFactory,
    ) -> Vec<Anomaly> {
        let Some(first) = aggregates.first_event else {
            return Vec::new();
        };
        self.evicted.clear();
        let empty_entity = Entity::new();
        let empty_series = Series::new();
        let mut jobs: Vec<(usize, &Entity, &Series)> = Vec::new();
        for (i, (d, agg)) in detectors.iter().zip(&aggregates.detectors).enumerate() {
            let max = if d.is_high_cardinality() {
                max_entities
            } else {
                usize::MAX
            };
            let (kept, evicted) = entities_to_keep(agg.series.iter(), max);
            if evicted > 0 {
                self.evicted.insert(d.name.clone(), evicted);
            }
            if kept.is_empty() && !d.is_high_cardinality() {
                jobs.push((i, &empty_entity, &empty_series));
            }
            jobs.extend(kept.into_iter().map(|(e, s)| (i, e, s)));
        }
        let kept: std::collections::HashSet<(usize, &Entity)> =
            jobs.iter().map(|(i, e, _)| (*i, *e)).collect();
        self.series.retain(|(i, e), _| kept.contains(&(*i, e)));
        for (i, e, _) in &jobs {
            let d = &detectors[*i];
            self.series
                .entry((*i, (*e).clone()))
                .or_insert_with(|| SeriesState {
                    scorer: factory(d, e),
                    next: bucket_of(first, d.interval.as_secs() as i64),
                });
        }
        let series_of: HashMap<(usize, &Entity), &Series> =
            jobs.iter().map(|(i, e, s)| ((*i, *e), *s)).collect();
        let mut work: Vec<(&(usize, Entity), &mut SeriesState)> = self.series.iter_mut().collect();
        let results: Vec<(u64, Vec<Anomaly>)> = work
            .par_iter_mut()
            .map(|((i, e), state)| {
                let d = &detectors[*i];
                let series = series_of.get(&(*i, e)).copied().unwrap_or(&empty_series);
                score_series(d, e, series, state, upto(d), since)
            })
            .collect();
        let mut anomalies = Vec::new();
        for (n, a) in results {
            self.intervals += n;
            anomalies.extend(a);
        }
        anomalies
    }
}

/// The most empty intervals in a row a model is fed as zeros; after that
/// many the forest holds nothing else, and the rest of the gap is skipped.
/// About a week at the usual 10-minute interval, so a week of data with no
/// such gap scores exactly as the plugin would.
pub const MAX_EMPTY_RUN: i64 = 1024;

/// Intervals of baseline behind an anomaly's context: the day before it.
fn baseline_intervals(d: &Detector) -> i64 {
    (86_400 / d.interval.as_secs().max(60) as i64).max(1)
}

fn score_series(
    d: &Detector,
    entity: &Entity,
    series: &Series,
    state: &mut SeriesState,
    upto: i64,
    since: Option<DateTime<Utc>>,
) -> (u64, Vec<Anomaly>) {
    let secs = d.interval.as_secs() as i64;
    let start = state.next;
    let mut scored = 0u64;
    let value_at = |b: i64| series.get(&b).map_or(0.0, |x| x.cell.value());
    let mut found: BTreeMap<i64, Anomaly> = BTreeMap::new();
    while state.next < upto {
        let bucket = state.next;
        if !series.contains_key(&bucket) {
            // A long stretch with no data: the model settled on zeros long
            // ago, so skip to the end of it (a year between two records costs
            // what a week does, not fifty times more).
            let before = series.range(..bucket).next_back().map(|(b, _)| *b);
            let after = series.range(bucket..).next().map_or(upto, |(b, _)| *b);
            if before.map_or(bucket - start, |b| bucket - b - 1) >= MAX_EMPTY_RUN {
                state.next = after.min(upto);
                continue;
            }
        }
        state.next += 1;
        scored += 1;
        let s = state.scorer.update(value_at(bucket));
        if s.grade <= 0.0 || s.grade < d.alert.grade || s.confidence < d.alert.confidence {
            continue;
        }
        let at = bucket + s.relative_index as i64;
        let (actual, expected) = (value_at(at), s.expected.unwrap_or(0.0).max(0.0));
        if !d.alert.keeps(actual, expected) {
            continue;
        }
        let Some(at_time) = DateTime::from_timestamp(at * secs, 0) else {
            continue;
        };
        if since.is_some_and(|t| at_time < t)
            || found.get(&at).is_some_and(|old| old.grade >= s.grade)
        {
            continue;
        }
        // Context: this interval against the day before it.
        let window = series
            .get(&at)
            .map(|b| b.facets.clone())
            .unwrap_or_default();
        let mut baseline = FacetCounts::default();
        let span = baseline_intervals(d);
        for (_, b) in series.range(at - span..at) {
            baseline.merge(&b.facets);
        }
        let context = context::build(&window, &baseline, span as usize, 5);
        let mut finding = rcf_finding(
            d,
            entity,
            (at_time, at_time + Duration::seconds(secs)),
            (s.grade, s.confidence),
            (actual, expected),
            context,
        );
        finding.score = round4(s.score);
        found.insert(at, finding);
    }
    (scored, found.into_values().collect())
}

/// The RCF finding of detector `d` for `entity` over `span`, with its
/// grade and confidence, the interval's actual and expected values and its
/// context: who it concerns (the entity, the busiest principal, and any
/// other of the top ones its baseline never had: a leaked key launching
/// beside the morning scale-out is not the scale-out's) and its summary.
/// The local engine makes its findings here, and the enricher the finding
/// an anomaly detector's alert stands for, so both judge it alike.
pub fn rcf_finding(
    d: &Detector,
    entity: &[String],
    span: (DateTime<Utc>, DateTime<Utc>),
    (grade, confidence): (f64, f64),
    (actual, expected): (f64, f64),
    context: context::Context,
) -> Anomaly {
    let entity_map = d.is_high_cardinality().then(|| {
        d.category_fields
            .iter()
            .map(|f| f.as_str().to_owned())
            .zip(entity.iter().cloned())
            .collect::<BTreeMap<_, _>>()
    });
    let mut subjects: Vec<String> = entity.to_vec();
    let principals = context.facets.iter().find(|f| f.facet == Facet::Principal);
    for (i, p) in principals.iter().flat_map(|f| f.top.iter()).enumerate() {
        if i == 0 || p.new {
            subjects.push(p.value.clone());
        }
    }
    Anomaly {
        detector: d.name.clone(),
        kind: AnomalyKind::Rcf,
        entity: entity_map,
        start: span.0,
        end: span.1,
        grade: round4(grade),
        confidence: round4(confidence),
        actual: round4(actual),
        expected: round4(expected),
        score: 0.0,
        summary: rcf_summary(d, actual, expected, &context, entity),
        context: Some(context),
        incident: None,
        subjects,
        late: false,
        detected: span.1,
        severity: None,
        page: None,
        novelty: None,
    }
}

fn rcf_summary(
    d: &Detector,
    actual: f64,
    expected: f64,
    c: &context::Context,
    entity: &[String],
) -> String {
    let what = if d.description.is_empty() {
        d.name.clone()
    } else {
        d.description.clone()
    };
    let mut s = format!(
        "{}: {} against {:.1} expected",
        what,
        trim_number(actual),
        expected
    );
    if let Some(e) = entity.first() {
        s.push_str(&format!(" for {}", short_arn(e)));
    }
    let who = c.who();
    if !who.is_empty() {
        s.push_str(&format!("; by {who}"));
    }
    // `p4d.24xlarge ×24, g5.48xlarge ×8`: a facet's values with their counts.
    let counted = |facet: Facet| {
        c.facets.iter().find(|f| f.facet == facet).map(|f| {
            f.top
                .iter()
                .map(|v| format!("{} ×{}", v.value, trim_number(v.count)))
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    for facet in [Facet::InstanceType, Facet::VolumeType] {
        if let Some(list) = counted(facet) {
            s.push_str(&format!("; {list}"));
        }
    }
    if c.volume_gib > 0.0 {
        s.push_str(&format!(" ({} GiB)", trim_number(c.volume_gib)));
    }
    if let Some(cost) = &c.cost {
        if cost.per_hour > 0.0 {
            s.push_str(&format!("; ~{}", cost.headline()));
        }
    }
    if let Some(list) = counted(Facet::RefusedInstanceType) {
        let why = c
            .top(Facet::ErrorCode)
            .map(|e| format!(" ({})", e.value))
            .unwrap_or_default();
        s.push_str(&format!("; refused{why}: {list}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::FacetCounts;
    use crate::detector::parse_detector;
    use crate::engine::aggregate::{Bucket, Cell, DetectorAggregate};
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

    fn aggregates(entities: &[(&str, &[(i64, f64)])]) -> Aggregates {
        let mut agg = DetectorAggregate::default();
        for (e, points) in entities {
            let entity = if e.is_empty() {
                vec![]
            } else {
                vec![e.to_string()]
            };
            let series = points
                .iter()
                .map(|&(b, v)| {
                    (
                        b,
                        Bucket {
                            cell: Cell::Number(v),
                            facets: FacetCounts::default(),
                        },
                    )
                })
                .collect();
            agg.series.insert(entity, series);
        }
        Aggregates {
            detectors: vec![agg],
            first_event: Some(t("1970-01-01T00:00:00Z")),
            last_event: Some(t("1970-01-01T01:39:00Z")),
            ..Aggregates::default()
        }
    }

    fn run(
        d: &Detector,
        agg: &Aggregates,
        since: Option<&str>,
        max: usize,
    ) -> (RcfState, Vec<Anomaly>) {
        let mut state = RcfState::default();
        let a = state.advance(
            std::slice::from_ref(d),
            agg,
            &|_| 10,
            since.map(t),
            max,
            &|_, _| Box::new(Threshold),
        );
        (state, a)
    }

    #[test]
    fn empty_intervals_are_zero_and_since_only_trains() {
        let d = parse_detector(Path::new("d.toml"), "").unwrap();
        let agg = aggregates(&[("", &[(1, 50.0), (7, 50.0)])]);
        let (state, found) = run(&d, &agg, None, 10);
        assert_eq!(
            state.intervals, 10,
            "00:00 to 01:39 is ten 10-minute intervals"
        );
        let starts: Vec<String> = found
            .iter()
            .map(|a| a.start.format("%H:%M").to_string())
            .collect();
        assert_eq!(starts, ["00:10", "01:10"]);
        let (_, found) = run(&d, &agg, Some("1970-01-01T00:30:00Z"), 10);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].entity, None);
    }

    #[test]
    fn scoring_resumes_where_it_stopped() {
        let d = parse_detector(Path::new("d.toml"), "").unwrap();
        let agg = aggregates(&[("", &[(1, 50.0), (7, 50.0)])]);
        let mut state = RcfState::default();
        let factory = |_: &Detector, _: &Entity| -> Box<dyn Scorer> { Box::new(Threshold) };
        let first = state.advance(std::slice::from_ref(&d), &agg, &|_| 5, None, 10, &factory);
        let second = state.advance(std::slice::from_ref(&d), &agg, &|_| 10, None, 10, &factory);
        assert_eq!((first.len(), second.len(), state.intervals), (1, 1, 10));
        assert!(
            state
                .advance(std::slice::from_ref(&d), &agg, &|_| 10, None, 10, &factory)
                .is_empty(),
            "nothing twice"
        );
    }

    #[test]
    fn entities_beyond_the_bound_are_evicted_least_recent_first() {
        let d = parse_detector(
            Path::new("d.toml"),
            "category_fields = [\"userIdentity.arn\"]",
        )
        .unwrap();
        let agg = aggregates(&[
            ("old", &[(1, 50.0)]),
            ("new", &[(8, 50.0)]),
            ("mid", &[(4, 50.0)]),
        ]);
        let (state, found) = run(&d, &agg, None, 2);
        assert_eq!(state.evicted.get("d"), Some(&1));
        let mut who: Vec<String> = found.iter().map(|a| a.entity_text()).collect();
        who.sort();
        assert_eq!(who, ["userIdentity.arn=mid", "userIdentity.arn=new"]);
    }

    #[test]
    fn a_launch_refused_for_its_quota_is_in_the_summary() {
        let d = crate::detector::shipped()
            .into_iter()
            .find(|d| d.name == "ec2-run-instances")
            .unwrap();
        let mut window = FacetCounts::default();
        window.add(Facet::Principal, "arn:aws:iam::1:user/carol", 30.0);
        window.add(Facet::InstanceType, "g4dn.xlarge", 2.0);
        window.add(Facet::RefusedInstanceType, "p4d.24xlarge", 24.0);
        window.add(Facet::ErrorCode, "Client.VcpuLimitExceeded", 28.0);
        let c = context::build(&window, &FacetCounts::default(), 144, 5);
        let s = rcf_summary(&d, 26.0, 0.1, &c, &Vec::new());
        assert!(s.contains("; g4dn.xlarge ×2"), "{s}");
        assert!(
            s.ends_with("; refused (Client.VcpuLimitExceeded): p4d.24xlarge ×24"),
            "{s}"
        );
        // Nothing refused, nothing said.
        let c = context::build(&FacetCounts::default(), &FacetCounts::default(), 144, 5);
        assert!(!rcf_summary(&d, 26.0, 0.1, &c, &Vec::new()).contains("refused"));
    }
}
