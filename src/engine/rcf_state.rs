//! Scoring detector series with RCF, incrementally: each series keeps its
//! model and the next interval to score, so the same code serves a one-shot
//! run (score to the end) and `--follow` (score what has closed so far).

use super::aggregate::{bucket_of, Aggregates, Series};
use super::anomaly::{round4, Anomaly, AnomalyKind, Pivots};
use super::chance::{Budget, DEFAULT_BUDGET_PER_DAY};
use super::early;
use super::rcf::{
    relearn, ModelError, RcfConfig, RcfScorer, Scorer, MAX_REBUILDS, REBUILD_HISTORY,
};
use crate::context::{self, short_arn, trim_number, Facet, FacetCounts};
use crate::detector::{Detector, Entity};
use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// Builds a scorer for one series: generation 0 first, then 1, 2, … each
/// time the model before it failed and is rebuilt. Tests pass their own to
/// pin behaviour.
pub type ScorerFactory = dyn Fn(&Detector, &Entity, u32) -> Box<dyn Scorer> + Sync;

/// The default factory: the plugin's RCF settings, seeded from the detector
/// name, entity and generation so results repeat run after run (and a
/// rebuilt model does not draw the cuts that failed again).
pub fn rcf_factory(d: &Detector, entity: &Entity, generation: u32) -> Box<dyn Scorer> {
    let mut seed = 0xcbf2_9ce4_8422_2325u64;
    for part in std::iter::once(&d.name).chain(entity) {
        for b in part.bytes().chain([0]) {
            seed = (seed ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    for b in generation
        .to_le_bytes()
        .into_iter()
        .take_while(|_| generation > 0)
    {
        seed = (seed ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    Box::new(RcfScorer::new(RcfConfig::plugin_defaults(
        d.shingle_size,
        seed,
    )))
}

/// What became of a series whose model failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery {
    /// A new model learnt the intervals before the failure and scored on.
    Rebuilt { intervals: u64 },
    /// It failed [`MAX_REBUILDS`] times: not scored again in this run.
    SetAside,
}

/// A model that failed while scoring, named by detector and entity.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFailure {
    pub detector: String,
    /// `field=value` pairs, empty for a single-entity detector.
    pub entity: String,
    /// The start of the interval it was scoring.
    pub at: DateTime<Utc>,
    pub error: ModelError,
    pub recovery: Recovery,
}

impl std::fmt::Display for ModelFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.detector)?;
        if !self.entity.is_empty() {
            write!(f, " ({})", self.entity)?;
        }
        write!(
            f,
            ": the model failed at {} ({}); ",
            self.at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.error
        )?;
        match self.recovery {
            Recovery::Rebuilt { intervals } => write!(
                f,
                "a new model learnt the {intervals} interval(s) before it and scoring went on"
            ),
            Recovery::SetAside => write!(
                f,
                "it failed {MAX_REBUILDS} times, so this series is set aside for the rest of the run"
            ),
        }
    }
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
    /// The first interval this series was scored from.
    first: i64,
    /// The next interval index to score.
    next: i64,
    /// How many times its model was rebuilt.
    generation: u32,
    set_aside: bool,
    /// The largest whole interval of the past week ([`early::Ceiling`]).
    ceiling: early::Ceiling,
    /// The model's data confidence after the last interval scored.
    confidence: f64,
}

/// The models of every series, and where each has got to.
#[derive(Default)]
pub struct RcfState {
    series: HashMap<(usize, Entity), SeriesState>,
    /// Detector name -> entities left out by the bound, at the last advance.
    pub evicted: BTreeMap<String, usize>,
    /// Models that failed at the last advance, and what became of them.
    pub failures: Vec<ModelFailure>,
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
        self.failures.clear();
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
            self.series.entry((*i, (*e).clone())).or_insert_with(|| {
                // An entity of one account (a principal's ARN) starts when
                // its account started delivering; none before what is kept.
                let from = entity_account(e)
                    .and_then(|a| aggregates.account_start(a))
                    .map_or(first, |t| t.max(first))
                    .max(aggregates.history_from.unwrap_or(first));
                let start = bucket_of(from, d.interval.as_secs() as i64);
                SeriesState {
                    scorer: factory(d, e, 0),
                    first: start,
                    next: start,
                    generation: 0,
                    set_aside: false,
                    ceiling: early::Ceiling::default(),
                    confidence: 0.0,
                }
            });
        }
        let series_of: HashMap<(usize, &Entity), &Series> =
            jobs.iter().map(|(i, e, s)| ((*i, *e), *s)).collect();
        // When some stream was delivering, per interval length: a stretch
        // when none was (between two accounts' data a year apart) is no
        // data, not quiet, and is skipped.
        let live: HashMap<i64, Vec<(i64, i64)>> = detectors
            .iter()
            .map(|d| d.interval.as_secs() as i64)
            .map(|secs| (secs, aggregates.live_intervals(secs, None)))
            .collect();
        // Partial intervals are tested every minute of every watched series.
        let watched = jobs
            .iter()
            .filter(|(i, _, _)| early::watches(&detectors[*i]))
            .count();
        let budget = Budget::per_minute(DEFAULT_BUDGET_PER_DAY, watched);
        let mut work: Vec<(&(usize, Entity), &mut SeriesState)> = self.series.iter_mut().collect();
        let results: Vec<Scored> = work
            .par_iter_mut()
            .map(|((i, e), state)| {
                let d = &detectors[*i];
                let series = series_of.get(&(*i, e)).copied().unwrap_or(&empty_series);
                let live = &live[&(d.interval.as_secs() as i64)];
                score_series(
                    d,
                    e,
                    (series, live),
                    state,
                    (upto(d), since, budget),
                    factory,
                )
            })
            .collect();
        let mut anomalies = Vec::new();
        for scored in results {
            self.intervals += scored.intervals;
            anomalies.extend(scored.anomalies);
            self.failures.extend(scored.failures);
        }
        self.failures
            .sort_by(|a, b| (&a.detector, &a.entity, a.at).cmp(&(&b.detector, &b.entity, b.at)));
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

/// The account of an entity that is a principal's ARN, if it is one.
fn entity_account(entity: &Entity) -> Option<&str> {
    super::aggregate::arn_account(entity.first()?)
}

/// Where to go on from `bucket`, the next interval to score (of those from
/// `start` on): `None` to score it; the start of the next `live` span (or
/// the next interval with data) when no stream was delivering at `bucket`;
/// or the interval after a long stretch with no data, which the model
/// settled on as zeros long ago (a year between two records costs what a
/// week does, not fifty times more).
fn skip_from(
    series: &Series,
    live: &[(i64, i64)],
    bucket: i64,
    start: i64,
    upto: i64,
) -> Option<i64> {
    if series.contains_key(&bucket) {
        return None;
    }
    if !live.is_empty() && !live.iter().any(|(a, b)| (*a..=*b).contains(&bucket)) {
        let next_live = live.iter().map(|(a, _)| *a).find(|a| *a > bucket);
        let next_data = series.range(bucket..).next().map(|(b, _)| *b);
        let next = [next_live, next_data, Some(upto)]
            .into_iter()
            .flatten()
            .min();
        return next.map(|n| n.max(bucket + 1));
    }
    let before = series.range(..bucket).next_back().map(|(b, _)| *b);
    let after = series.range(bucket..).next().map_or(upto, |(b, _)| *b);
    (before.map_or(bucket - start, |b| bucket - b - 1) >= MAX_EMPTY_RUN).then(|| after.min(upto))
}

/// `field=value` for each category field of `d` and the entity's value of it.
fn entity_label(d: &Detector, entity: &[String]) -> String {
    d.category_fields
        .iter()
        .zip(entity)
        .map(|(f, v)| format!("{}={v}", f.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What scoring one series found.
struct Scored {
    intervals: u64,
    anomalies: Vec<Anomaly>,
    failures: Vec<ModelFailure>,
}

/// The values a rebuilt model learns before `bucket`: up to
/// [`REBUILD_HISTORY`] intervals, skipping long empty stretches as scoring does.
fn history_before(series: &Series, live: &[(i64, i64)], first: i64, bucket: i64) -> Vec<f64> {
    let from = first.max(bucket - REBUILD_HISTORY);
    let mut values = Vec::new();
    let mut at = from;
    while at < bucket {
        if let Some(next) = skip_from(series, live, at, from, bucket) {
            at = next;
            continue;
        }
        values.push(series.get(&at).map_or(0.0, |x| x.cell.value()));
        at += 1;
    }
    values
}

fn score_series(
    d: &Detector,
    entity: &Entity,
    (series, live): (&Series, &[(i64, i64)]),
    state: &mut SeriesState,
    (upto, since, budget): (i64, Option<DateTime<Utc>>, Budget),
    factory: &ScorerFactory,
) -> Scored {
    let secs = d.interval.as_secs() as i64;
    // Empty runs are measured from the series' first interval, wherever
    // the last advance stopped (in steps as at once).
    let start = state.first;
    let mut out = Scored {
        intervals: 0,
        anomalies: Vec::new(),
        failures: Vec::new(),
    };
    let value_at = |b: i64| series.get(&b).map_or(0.0, |x| x.cell.value());
    let mut found: BTreeMap<i64, Anomaly> = BTreeMap::new();
    let looks_early = early::watches(d);
    while state.next < upto && !state.set_aside {
        let bucket = state.next;
        if let Some(next) = skip_from(series, live, bucket, start, upto) {
            state.next = next;
            continue;
        }
        state.next += 1;
        out.intervals += 1;
        if looks_early {
            out.anomalies
                .extend(partial_findings(d, entity, series, state, bucket, budget));
        }
        state.ceiling.push(bucket, value_at(bucket));
        let s = match state.scorer.update(value_at(bucket)) {
            Ok(s) => s,
            Err(error) => {
                let mut failure = ModelFailure {
                    detector: d.name.clone(),
                    entity: entity_label(d, entity),
                    at: DateTime::from_timestamp(bucket * secs, 0).unwrap_or_default(),
                    error,
                    recovery: Recovery::SetAside,
                };
                let history = history_before(series, live, state.first, bucket);
                let make = |generation| factory(d, entity, generation);
                let rebuilt = relearn(&make, &mut state.generation, &history, value_at(bucket));
                let Some((scorer, s)) = rebuilt else {
                    state.set_aside = true;
                    out.failures.push(failure);
                    break;
                };
                state.scorer = scorer;
                failure.recovery = Recovery::Rebuilt {
                    intervals: history.len() as u64,
                };
                out.failures.push(failure);
                s
            }
        };
        state.confidence = s.confidence;
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
        let context = interval_context(d, series, at);
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
    // Intervals still open (`--follow`): what has arrived of them may
    // already page.
    if looks_early && !state.set_aside {
        let open: Vec<i64> = series.range(state.next..).map(|(b, _)| *b).collect();
        for bucket in open {
            out.anomalies
                .extend(partial_findings(d, entity, series, state, bucket, budget));
        }
    }
    out.anomalies.extend(found.into_values());
    out
}

/// The context of interval `at`: it against the day before it.
fn interval_context(d: &Detector, series: &Series, at: i64) -> context::Context {
    let window = series
        .get(&at)
        .map(|b| b.facets.clone())
        .unwrap_or_default();
    let mut baseline = FacetCounts::default();
    let span = baseline_intervals(d);
    for (_, b) in series.range(at - span..at) {
        baseline.merge(&b.facets);
    }
    context::build(&window, &baseline, span as usize, 5)
}

/// The partial findings of interval `bucket` ([`early`]), as it stands.
fn partial_findings(
    d: &Detector,
    entity: &Entity,
    series: &Series,
    state: &SeriesState,
    bucket: i64,
    budget: Budget,
) -> Vec<Anomaly> {
    let look = early::Look {
        detector: d,
        bucket,
        first: state.first,
        ceiling: state.ceiling.before(bucket),
        confidence: state.confidence,
        budget,
    };
    let crossings = early::crossings(&look, series);
    if crossings.is_empty() {
        return Vec::new();
    }
    let secs = d.interval.as_secs() as i64;
    let Some(start) = DateTime::from_timestamp(bucket * secs, 0) else {
        return Vec::new();
    };
    let context = interval_context(d, series, bucket);
    let whole = series.get(&bucket).map_or(0.0, |b| b.cell.value());
    crossings
        .iter()
        .map(|c| {
            // What had arrived by the crossing: facets are kept per
            // interval, so its cost is the interval's in proportion.
            let mut context = context.clone();
            context.share((c.total / whole).clamp(0.0, 1.0));
            let full = rcf_finding(
                d,
                entity,
                (start, c.at),
                (c.grade, state.confidence),
                (c.total, c.expected),
                context,
            );
            early::finding(full, c, d)
        })
        .collect()
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
    let pivots = Pivots::of_context(&context);
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
        partial: false,
        detected: span.1,
        severity: None,
        page: None,
        novelty: None,
        attack: Vec::new(),
        pivots,
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
        fn update(&mut self, value: f64) -> Result<Score, ModelError> {
            Ok(Score {
                grade: if value > 10.0 { 1.0 } else { 0.0 },
                confidence: 1.0,
                expected: Some(1.0),
                ..Score::default()
            })
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
                .map(|&(b, v)| (b, Bucket::number(v)))
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
            &|_, _, _| Box::new(Threshold),
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
        let factory = |_: &Detector, _: &Entity, _: u32| -> Box<dyn Scorer> { Box::new(Threshold) };
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

    /// [`Threshold`] until its `fail_at`-th value (counting from 1), which
    /// fails as krcflib's "deleting wrong node" did; every generation below
    /// `failing_generations` fails so.
    struct Flaky {
        seen: usize,
        fail_at: Option<usize>,
    }
    impl Scorer for Flaky {
        fn update(&mut self, value: f64) -> Result<Score, ModelError> {
            self.seen += 1;
            if self.fail_at.is_some_and(|n| self.seen >= n) {
                return Err(ModelError(
                    "the random cut forest failed: InvalidArgument { msg: \" deleting wrong node \" }"
                        .into(),
                ));
            }
            Threshold.update(value)
        }
    }

    fn flaky(
        bad: &'static str,
        fail_at: usize,
        failing_generations: u32,
    ) -> impl Fn(&Detector, &Entity, u32) -> Box<dyn Scorer> + Sync {
        move |_, e, generation| {
            let fails = e.first().is_some_and(|x| x == bad) && generation < failing_generations;
            Box::new(Flaky {
                seen: 0,
                fail_at: fails.then_some(fail_at),
            })
        }
    }

    /// `detect` panicked with exit 101 at rcf.rs:140 when krcflib's
    /// `process` returned "deleting wrong node" under lambda-invoke's
    /// per-function models on a realistic 10-day organisation.
    #[test]
    fn a_model_that_fails_is_rebuilt_from_its_history_and_the_run_goes_on() {
        let d = parse_detector(
            Path::new("lambda-invoke.toml"),
            "category_fields = [\"requestParameters.functionName\"]",
        )
        .unwrap();
        let agg = aggregates(&[("loop", &[(1, 50.0), (8, 50.0)]), ("ok", &[(8, 50.0)])]);
        let mut state = RcfState::default();
        let found = state.advance(
            std::slice::from_ref(&d),
            &agg,
            &|_| 10,
            None,
            10,
            &flaky("loop", 5, 1),
        );
        let failure = &state.failures[..];
        assert_eq!(failure.len(), 1, "{failure:?}");
        assert_eq!(failure[0].detector, "lambda-invoke");
        assert_eq!(failure[0].entity, "requestParameters.functionName=loop");
        assert_eq!(failure[0].at, t("1970-01-01T00:40:00Z"));
        assert_eq!(failure[0].recovery, Recovery::Rebuilt { intervals: 4 });
        let text = failure[0].to_string();
        assert!(
            text.starts_with("lambda-invoke (requestParameters.functionName=loop): the model failed at 1970-01-01T00:40:00Z (the random cut forest failed: InvalidArgument")
                && text.ends_with("a new model learnt the 4 interval(s) before it and scoring went on"),
            "{text}"
        );
        // Both of the failing series' anomalies (before and after the
        // failure) are found, and the other series' too.
        let mut who: Vec<String> = found
            .iter()
            .map(|a| format!("{} {}", a.entity_text(), a.start.format("%H:%M")))
            .collect();
        who.sort();
        assert_eq!(
            who,
            [
                "requestParameters.functionName=loop 00:10",
                "requestParameters.functionName=loop 01:20",
                "requestParameters.functionName=ok 01:20"
            ]
        );
        assert_eq!(state.intervals, 20, "every interval scored once");
    }

    #[test]
    fn a_model_that_keeps_failing_is_set_aside_alone_and_named_once() {
        let d = parse_detector(
            Path::new("d.toml"),
            "category_fields = [\"requestParameters.functionName\"]",
        )
        .unwrap();
        let agg = aggregates(&[("bad", &[(1, 50.0), (8, 50.0)]), ("ok", &[(8, 50.0)])]);
        let mut state = RcfState::default();
        let factory = flaky("bad", 3, u32::MAX);
        let found = state.advance(std::slice::from_ref(&d), &agg, &|_| 5, None, 10, &factory);
        assert_eq!(state.failures.len(), 1);
        assert_eq!(state.failures[0].recovery, Recovery::SetAside);
        assert!(state.failures[0]
            .to_string()
            .ends_with("it failed 3 times, so this series is set aside for the rest of the run"));
        assert_eq!(found.len(), 1, "the bad series' first anomaly stands");
        let later = state.advance(std::slice::from_ref(&d), &agg, &|_| 10, None, 10, &factory);
        assert!(state.failures.is_empty(), "said once: {:?}", state.failures);
        let who: Vec<String> = later.iter().map(|a| a.entity_text()).collect();
        assert_eq!(who, ["requestParameters.functionName=ok"]);
    }

    /// Real-shaped per-entity series through the real forest: bursty,
    /// mostly zero, repeated values, entities appearing late and evicted
    /// by the bound, long gaps, scored in several steps as `--follow` does.
    mod property {
        use super::*;
        use crate::engine::rcf::RcfConfig;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        struct Shape {
            start: i64,
            active: f64,
            level: f64,
            burst: Option<(i64, f64)>,
            gap: Option<(i64, i64)>,
        }

        fn shape() -> impl Strategy<Value = Shape> {
            (
                0i64..300,
                prop_oneof![Just(0.01), Just(0.1), Just(0.5), Just(1.0)],
                prop_oneof![Just(1.0), Just(3.0), Just(250.0)],
                proptest::option::of((
                    0i64..400,
                    prop_oneof![Just(40.0), Just(5000.0), Just(1e300)],
                )),
                proptest::option::of((0i64..400, prop_oneof![Just(30i64), Just(2000i64)])),
            )
                .prop_map(|(start, active, level, burst, gap)| Shape {
                    start,
                    active,
                    level,
                    burst,
                    gap,
                })
        }

        fn series_of(shapes: &[Shape], seed: u64) -> Aggregates {
            let mut agg = DetectorAggregate::default();
            let mut x = seed | 1;
            for (n, sh) in shapes.iter().enumerate() {
                let mut series = Series::new();
                let mut b = sh.start;
                while b < sh.start + 400 {
                    if let Some((at, len)) = sh.gap {
                        if b == sh.start + at {
                            b += len;
                        }
                    }
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let roll = (x % 10_000) as f64 / 10_000.0;
                    let mut v = if roll < sh.active { sh.level } else { 0.0 };
                    if let Some((at, size)) = sh.burst {
                        if b == sh.start + at {
                            v = size;
                        }
                    }
                    if v != 0.0 {
                        series.insert(b, Bucket::number(v));
                    }
                    b += 1;
                }
                agg.series.insert(vec![format!("fn-{n}")], series);
            }
            let last = agg
                .series
                .values()
                .filter_map(|s| s.keys().next_back())
                .max()
                .copied()
                .unwrap_or(0);
            Aggregates {
                detectors: vec![agg],
                first_event: Some(t("1970-01-01T00:00:00Z")),
                last_event: DateTime::from_timestamp(last * 600, 0),
                ..Aggregates::default()
            }
        }

        /// The real forest, smaller than the plugin's so a case runs fast;
        /// with `fail_every`, it also fails at every that-many values of a
        /// first-generation model, as krcflib's fault would.
        fn factory(
            fail_every: Option<usize>,
        ) -> impl Fn(&Detector, &Entity, u32) -> Box<dyn Scorer> + Sync {
            struct Failing {
                inner: RcfScorer,
                seen: usize,
                every: Option<usize>,
            }
            impl Scorer for Failing {
                fn update(&mut self, value: f64) -> Result<Score, ModelError> {
                    self.seen += 1;
                    if self.every.is_some_and(|n| self.seen.is_multiple_of(n)) {
                        return Err(ModelError("injected".into()));
                    }
                    self.inner.update(value)
                }
            }
            move |d, e, generation| {
                let mut config = RcfConfig::plugin_defaults(d.shingle_size, 7 + generation as u64);
                config.trees = 10;
                config.sample_size = 64;
                let _ = e;
                Box::new(Failing {
                    inner: RcfScorer::new(config),
                    seen: 0,
                    every: fail_every.filter(|_| generation == 0),
                })
            }
        }

        fn steps(
            d: &Detector,
            agg: &Aggregates,
            cuts: &[i64],
            max: usize,
            fail_every: Option<usize>,
        ) -> (RcfState, Vec<Anomaly>, Vec<ModelFailure>) {
            let mut state = RcfState::default();
            let mut found = Vec::new();
            let mut failures = Vec::new();
            let end = bucket_of(agg.last_event.unwrap(), 600) + 1;
            let factory = factory(fail_every);
            for &cut in cuts.iter().chain([&end]) {
                found.extend(state.advance(
                    std::slice::from_ref(d),
                    agg,
                    &|_| cut.min(end),
                    None,
                    max,
                    &factory,
                ));
                failures.extend(state.failures.clone());
            }
            (state, found, failures)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

            #[test]
            fn real_shaped_series_never_panic_and_scoring_in_steps_is_scoring_at_once(
                shapes in proptest::collection::vec(shape(), 1..6),
                seed in any::<u64>(),
                cuts in proptest::collection::vec(0i64..3000, 0..4),
                max in 1usize..6,
                fail_every in proptest::option::of(7usize..300),
            ) {
                let d = parse_detector(
                    Path::new("lambda-invoke.toml"),
                    "category_fields = [\"requestParameters.functionName\"]",
                )
                .unwrap();
                let agg = series_of(&shapes, seed);
                let mut cuts = cuts;
                cuts.sort();
                let (state, found, failures) = steps(&d, &agg, &cuts, max, fail_every);
                for a in &found {
                    prop_assert!((0.0..=1.0).contains(&a.grade) && (0.0..=1.0).contains(&a.confidence), "{a:?}");
                    prop_assert!(a.actual.is_finite() && a.expected.is_finite(), "{a:?}");
                }
                prop_assert!(failures.iter().all(|f| f.entity.starts_with("requestParameters.functionName=fn-")));
                prop_assert!(fail_every.is_some() || failures.is_empty(), "{failures:?}");
                if max >= shapes.len() && fail_every.is_none() {
                    // Nothing evicted: where the steps fall changes nothing.
                    let (once, all_at_once, _) = steps(&d, &agg, &[], max, None);
                    prop_assert_eq!(state.intervals, once.intervals);
                    let key = |a: &Anomaly| (a.entity_text(), a.start, a.grade.to_bits());
                    let mut a: Vec<_> = found.iter().map(key).collect();
                    let mut b: Vec<_> = all_at_once.iter().map(key).collect();
                    a.sort();
                    b.sort();
                    prop_assert_eq!(a, b);
                }
            }
        }
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

    /// A week of about ten invocations an interval, then an interval
    /// of `burst` a minute; `before` more at interval 100 (a past burst).
    fn loop_series(burst: f64, before: f64) -> Aggregates {
        let mut series = Series::new();
        for b in 0..200 {
            let v = if b == 100 {
                before
            } else {
                5.0 + (b % 11) as f64
            };
            let mut bucket = Bucket::number(v);
            bucket.by_minute = vec![(3, v)];
            series.insert(b, bucket);
        }
        let mut loop_ = Bucket::number(10.0 * burst);
        loop_.by_minute = (0..10).map(|m| (m, burst)).collect();
        series.insert(200, loop_);
        let mut agg = DetectorAggregate::default();
        agg.series.insert(vec!["thumbnailer".to_string()], series);
        Aggregates {
            detectors: vec![agg],
            first_event: Some(t("1970-01-01T00:00:00Z")),
            last_event: Some(t("1970-01-02T09:29:00Z")),
            ..Aggregates::default()
        }
    }

    fn lambda_detector() -> Detector {
        let text = "category_fields = [\"requestParameters.functionName\"]\n[alert]\ndirection = \"up\"\nmin_margin = 100\n";
        parse_detector(Path::new("lambda-invoke.toml"), text).unwrap()
    }

    /// The lambda detector's findings over `agg`, scored up to `upto`.
    fn lambda_advance(agg: &Aggregates, upto: i64) -> Vec<Anomaly> {
        RcfState::default().advance(
            std::slice::from_ref(&lambda_detector()),
            agg,
            &|_| upto,
            None,
            10,
            &|_, _, _| Box::new(Threshold),
        )
    }

    fn partial_ends(found: &[Anomaly]) -> Vec<String> {
        found
            .iter()
            .filter(|a| a.start == t("1970-01-02T09:20:00Z"))
            .filter(|a| a.end - a.start < Duration::minutes(10))
            .map(|a| a.end.format("%H:%M").to_string())
            .collect()
    }

    #[test]
    fn a_runaway_pages_in_its_first_minute_and_again_as_it_doubles() {
        let agg = loop_series(300.0, 12.0);
        let found = lambda_advance(&agg, 201);
        // Interval 200 starts at 09:20: 300 by 09:21, 600 by 09:22, 1,200
        // by 09:24, 2,400 by 09:28; its last minute is the whole interval's.
        assert_eq!(partial_ends(&found), ["09:21", "09:22", "09:24", "09:28"]);
        let first = &found[0];
        assert_eq!(
            (first.actual, first.detected),
            (300.0, t("1970-01-02T09:21:00Z"))
        );
        assert!(
            first.grade >= 0.9,
            "far rarer than the budget: {}",
            first.grade
        );
        assert!(
            first.summary.starts_with("lambda-invoke: 300 in its first 1 minute (no whole interval of the past week had more than 15) against 10.0 expected for thumbnailer"),
            "{}",
            first.summary
        );
        // The interval's own finding follows when it closes.
        assert!(found.iter().any(|a| a.end == t("1970-01-02T09:30:00Z")));
    }

    #[test]
    fn a_partial_total_within_the_weeks_largest_interval_waits_for_the_interval() {
        // A burst of 4,000 in one interval earlier this week.
        let agg = loop_series(300.0, 4000.0);
        let found = lambda_advance(&agg, 201);
        assert!(partial_ends(&found).is_empty(), "{found:?}");
    }

    #[test]
    fn an_open_interval_pages_from_what_has_arrived() {
        let mut agg = loop_series(300.0, 12.0);
        // Only its first two minutes have arrived.
        let open = agg.detectors[0].series.values_mut().next().unwrap();
        let b = open.get_mut(&200).unwrap();
        b.by_minute.truncate(2);
        b.cell = Cell::Number(600.0);
        let found = lambda_advance(&agg, 200);
        assert_eq!(partial_ends(&found), ["09:21", "09:22"]);
        assert!(found.iter().all(|a| a.start < t("1970-01-02T09:30:00Z")));
    }
}
