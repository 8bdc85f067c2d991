//! Per-interval values for each detector and entity, with the facet counts
//! that give anomalies their context, and the counters of the other kinds
//! ([`NoveltyCounts`], [`InsightCounts`]). Everything here is mergeable and
//! order-independent, and serialises for `--state`.

use super::insights::InsightCounts;
use super::novelty::NoveltyCounts;
use super::plausible::{Exclusions, TimeFence};
use super::rules::RuleHits;
use crate::cloudtrail::Record;
use crate::context::FacetCounts;
use crate::detector::{Detector, Entity, Rule, ValueSpec};
use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// One interval's accumulated value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Cell {
    Number(f64),
    Distinct(HashSet<String>),
}

impl Cell {
    pub fn value(&self) -> f64 {
        match self {
            Cell::Number(x) => *x,
            Cell::Distinct(set) => set.len() as f64,
        }
    }

    fn merge(&mut self, other: Cell) {
        match (self, other) {
            (Cell::Number(a), Cell::Number(b)) => *a += b,
            (Cell::Distinct(a), Cell::Distinct(b)) => a.extend(b),
            _ => unreachable!("one detector always makes the same kind of cell"),
        }
    }
}

/// One interval of one series: its value and who and what made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub cell: Cell,
    pub facets: FacetCounts,
    /// The value by minute, for detectors that page from a partial
    /// interval ([`super::early`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_minute: super::early::ByMinute,
}

impl Bucket {
    /// A bucket holding the number `x`, with no facets.
    pub fn number(x: f64) -> Bucket {
        Bucket {
            cell: Cell::Number(x),
            facets: FacetCounts::default(),
            by_minute: Vec::new(),
        }
    }
}

/// Interval index -> bucket, for one entity.
pub type Series = BTreeMap<i64, Bucket>;

/// What one detector saw.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DetectorAggregate {
    /// Entity (empty for a single-entity detector) -> its series.
    #[serde(with = "pairs")]
    pub series: FxHashMap<Entity, Series>,
    /// Matching records whose category field was missing (not counted, as in the plugin).
    pub missing_entity: u64,
    pub matched: u64,
}

/// The event times one input held, for telling late deliveries apart.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpan {
    pub name: String,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// The aggregation of every input: the mergeable state of the engine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Aggregates {
    /// In the order of the detectors given to [`Aggregator::new`].
    pub detectors: Vec<DetectorAggregate>,
    pub first_event: Option<DateTime<Utc>>,
    pub last_event: Option<DateTime<Utc>>,
    /// Records at or after `--until`, left out.
    pub after_until: u64,
    /// The newest event of each stream (`account/region`): deliveries of
    /// different streams arrive hours apart, so `--follow` advances on
    /// the slowest.
    #[serde(default)]
    pub streams: BTreeMap<String, DateTime<Utc>>,
    /// The oldest event of each stream: its history starts there. A
    /// stream that joins later (a second account, an account added to an
    /// organisation trail) is not judged against the years before it.
    #[serde(default)]
    pub stream_first: BTreeMap<String, DateTime<Utc>>,
    /// The span of each input read into this aggregation (not saved).
    #[serde(skip)]
    pub inputs: Vec<InputSpan>,
    pub novelty: NoveltyCounts,
    pub insights: InsightCounts,
    #[serde(default)]
    pub rules: RuleHits,
    /// What is kept starts here: the series' intervals and the insight
    /// counts before it were forgotten ([`Aggregates::forget_before`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_from: Option<DateTime<Utc>>,
    /// What only a finding reads (a bucket's event IDs; an insight
    /// attribution's access keys, addresses and event IDs) is dropped
    /// before this ([`Aggregates::forget_detail_before`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_from: Option<DateTime<Utc>>,
}

impl Aggregates {
    /// An empty aggregation for these detectors.
    pub fn empty(detectors: &[Detector]) -> Self {
        Aggregates {
            detectors: vec![DetectorAggregate::default(); detectors.len()],
            ..Aggregates::default()
        }
    }

    /// Folds another partial aggregation into this one.
    pub fn merge(&mut self, other: Aggregates) {
        if self.detectors.is_empty() {
            *self = other;
            return;
        }
        for (mine, theirs) in self.detectors.iter_mut().zip(other.detectors) {
            mine.missing_entity += theirs.missing_entity;
            mine.matched += theirs.matched;
            for (entity, series) in theirs.series {
                let into = mine.series.entry(entity).or_default();
                for (bucket, b) in series {
                    match into.get_mut(&bucket) {
                        Some(mine) => {
                            mine.cell.merge(b.cell);
                            mine.facets.merge(&b.facets);
                            super::early::merge(&mut mine.by_minute, &b.by_minute);
                        }
                        None => {
                            into.insert(bucket, b);
                        }
                    }
                }
            }
        }
        self.first_event = min_opt(self.first_event, other.first_event);
        self.last_event = self.last_event.max(other.last_event);
        self.after_until += other.after_until;
        for (stream, t) in other.streams {
            let mine = self.streams.entry(stream).or_insert(t);
            *mine = (*mine).max(t);
        }
        for (stream, t) in other.stream_first {
            let mine = self.stream_first.entry(stream).or_insert(t);
            *mine = (*mine).min(t);
        }
        self.inputs.extend(other.inputs);
        self.novelty.merge(other.novelty);
        self.insights.merge(other.insights);
        self.rules.merge(other.rules);
        self.history_from = self.history_from.max(other.history_from);
        self.detail_from = self.detail_from.max(other.detail_from);
    }

    /// Forgets the detectors' intervals that start before `before` and the
    /// insight counts before it: what an incremental driver no longer
    /// needs once every model learnt them and no baseline reaches back
    /// that far. An entity whose series is left empty stays, and so does
    /// its model: one that wakes after a quiet week is still scored by it.
    pub fn forget_before(&mut self, before: DateTime<Utc>, detectors: &[Detector]) {
        if self.history_from.is_some_and(|h| h >= before) {
            return;
        }
        for (d, agg) in detectors.iter().zip(&mut self.detectors) {
            let first_kept = bucket_of(before, d.interval.as_secs() as i64);
            for series in agg.series.values_mut() {
                *series = series.split_off(&first_kept);
            }
        }
        self.insights.forget_before(before);
        self.history_from = Some(before);
    }

    /// Drops, from the intervals that end before `before`, what only the
    /// findings of those intervals read: each bucket's event IDs, and an
    /// insight attribution's access keys, source addresses and event IDs
    /// (an insight's baseline reads its principals, user agents and error
    /// codes alone). The counts baselines and models learn from stay. An
    /// incremental driver calls it behind what it evaluated, so these
    /// pivots cost memory for a day rather than for the week of history.
    pub fn forget_detail_before(&mut self, before: DateTime<Utc>, detectors: &[Detector]) {
        let from = self.detail_from.unwrap_or(DateTime::<Utc>::MIN_UTC);
        if from >= before {
            return;
        }
        for (d, agg) in detectors.iter().zip(&mut self.detectors) {
            let secs = d.interval.as_secs() as i64;
            // Intervals wholly before `before`, not trimmed yet.
            let span = bucket_of(from, secs)..bucket_of(before, secs);
            for series in agg.series.values_mut() {
                for (_, bucket) in series.range_mut(span.clone()) {
                    bucket.facets.event_ids = Vec::new();
                }
            }
        }
        self.insights.forget_detail(from, before);
        self.detail_from = Some(before);
    }
}

impl Aggregates {
    /// When the account's history starts: its first stream's first event
    /// (the run's first event for an account never seen).
    pub fn account_start(&self, account: &str) -> Option<DateTime<Utc>> {
        Some(History::of(self, self.first_event?).account(account))
    }

    /// The spans, in whole intervals of `secs` seconds, during which some
    /// stream of `account` (of any account when `None`) was delivering:
    /// from its first event to its last, merged; the last span runs on
    /// (the present is live, however quiet). An interval between two spans
    /// (when every stream had stopped and another began later) holds no
    /// evidence of quiet, only of no data.
    pub fn live_intervals(&self, secs: i64, account: Option<&str>) -> Vec<(i64, i64)> {
        let mut spans: Vec<(i64, i64)> = self
            .stream_first
            .iter()
            .filter(|(stream, _)| account.is_none_or(|a| stream.split('/').next() == Some(a)))
            .filter_map(|(stream, first)| {
                let last = self.streams.get(stream)?;
                Some((bucket_of(*first, secs), bucket_of(*last, secs)))
            })
            .collect();
        if spans.is_empty() {
            // State saved before streams had spans: the run's span.
            if let (Some(f), Some(l)) = (self.first_event, self.last_event) {
                spans.push((bucket_of(f, secs), bucket_of(l, secs)));
            }
        }
        spans.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (a, b) in spans {
            match merged.last_mut() {
                Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        if let Some(last) = merged.last_mut() {
            last.1 = i64::MAX;
        }
        merged
    }
}

/// When the data's history starts: the run's first event, and each
/// stream's (`account/region`) first event. A baseline, a learning period
/// or a model starts when its own stream or account started delivering,
/// not at the run's first event: a second account, or one that joins an
/// organisation trail, is not judged against the years before it.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub first: DateTime<Utc>,
    pub streams: BTreeMap<String, DateTime<Utc>>,
}

impl History {
    pub fn of(a: &Aggregates, first: DateTime<Utc>) -> History {
        History {
            first,
            streams: a.stream_first.clone(),
        }
    }

    /// When the stream of `account` in `region` started.
    pub fn stream(&self, account: &str, region: &str) -> DateTime<Utc> {
        self.streams
            .get(&format!("{account}/{region}"))
            .map_or(self.first, |t| (*t).max(self.first))
    }

    /// When `account` started, in any region.
    pub fn account(&self, account: &str) -> DateTime<Utc> {
        self.streams
            .iter()
            .filter(|(stream, _)| stream.split('/').next() == Some(account))
            .map(|(_, t)| *t)
            .min()
            .map_or(self.first, |t| t.max(self.first))
    }

    /// When the account of a principal's ARN started (the run's start for
    /// a principal named otherwise).
    pub fn principal(&self, principal: &str) -> DateTime<Utc> {
        match arn_account(principal) {
            Some(account) => self.account(account),
            None => self.first,
        }
    }
}

impl From<DateTime<Utc>> for History {
    /// One history for everything, from `first`.
    fn from(first: DateTime<Utc>) -> History {
        History {
            first,
            streams: BTreeMap::new(),
        }
    }
}

/// The account of an ARN (`arn:aws:iam::123456789012:user/x`), if it names one.
pub fn arn_account(arn: &str) -> Option<&str> {
    let account = arn.strip_prefix("arn:")?.split(':').nth(3)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The interval index holding `t` for an interval of `secs` seconds,
/// aligned to the Unix epoch like OpenSearch date histograms.
pub fn bucket_of(t: DateTime<Utc>, secs: i64) -> i64 {
    t.timestamp().div_euclid(secs)
}

/// Which counters to keep besides the detector series, and the rules to
/// offer each record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tracking<'r> {
    pub novelty: bool,
    pub insights: bool,
    pub rules: &'r [Rule],
}

impl Tracking<'_> {
    /// Novelty and insights; no rules.
    pub const ALL: Tracking<'static> = Tracking {
        novelty: true,
        insights: true,
        rules: &[],
    };
}

/// Feeds records into an [`Aggregates`]. Records dated outside its
/// [`TimeFence`], and records whose summed field holds an implausible
/// number (for that detector), are left out and listed in
/// [`Aggregator::exclusions`].
pub struct Aggregator<'d> {
    detectors: &'d [Detector],
    until: Option<DateTime<Utc>>,
    tracking: Tracking<'d>,
    state: Aggregates,
    entity: Entity,
    /// A reused buffer for the stream key.
    stream: String,
    fence: TimeFence,
    /// The time (Unix seconds) of every record taken, to find the bulk.
    times: Vec<i64>,
    exclusions: Exclusions,
}

impl<'d> Aggregator<'d> {
    pub fn new(detectors: &'d [Detector], until: Option<DateTime<Utc>>) -> Self {
        Self::tracking(detectors, until, Tracking::ALL)
    }

    pub fn tracking(
        detectors: &'d [Detector],
        until: Option<DateTime<Utc>>,
        tracking: Tracking<'d>,
    ) -> Self {
        Aggregator {
            detectors,
            until,
            tracking,
            state: Aggregates::empty(detectors),
            entity: Entity::new(),
            stream: String::new(),
            fence: TimeFence::plausible(Utc::now()),
            times: Vec::new(),
            exclusions: Exclusions::default(),
        }
    }

    /// Leaves out records dated outside `fence` (default: plausible times).
    pub fn with_fence(mut self, fence: TimeFence) -> Self {
        self.fence = fence;
        self
    }

    /// The records left out so far, and why.
    pub fn exclusions(&self) -> &Exclusions {
        &self.exclusions
    }

    /// The fence narrowed around the bulk of the times taken so far, when
    /// some of them lie far outside it ([`TimeFence::around_bulk`]).
    pub fn outliers(&mut self) -> Option<TimeFence> {
        self.fence.around_bulk(&mut self.times)
    }

    pub fn record(&mut self, r: &Record) {
        let t = r.event_time();
        if self.until.is_some_and(|u| t >= u) {
            self.state.after_until += 1;
            return;
        }
        if let Some(why) = self.fence.reject(t) {
            self.exclusions
                .add(|| format!("{}: {why}; left out", describe(r)));
            return;
        }
        self.times.push(t.timestamp());
        self.stream.clear();
        self.stream
            .push_str(r.recipient_account_id().unwrap_or_default());
        self.stream.push('/');
        self.stream.push_str(r.aws_region().unwrap_or_default());
        match self.state.streams.get_mut(self.stream.as_str()) {
            Some(last) => *last = (*last).max(t),
            None => {
                self.state.streams.insert(self.stream.clone(), t);
            }
        }
        match self.state.stream_first.get_mut(self.stream.as_str()) {
            Some(first) => *first = (*first).min(t),
            None => {
                self.state.stream_first.insert(self.stream.clone(), t);
            }
        }
        self.state.first_event = min_opt(self.state.first_event, Some(t));
        self.state.last_event = self.state.last_event.max(Some(t));
        if self.tracking.novelty {
            self.state.novelty.record(r);
        }
        if self.tracking.insights {
            self.state.insights.record(r);
        }
        if !self.tracking.rules.is_empty() {
            self.state.rules.record(self.tracking.rules, r);
        }
        for (d, agg) in self.detectors.iter().zip(self.state.detectors.iter_mut()) {
            if !d.matches(r) {
                continue;
            }
            agg.matched += 1;
            if !d.entity_into(r, &mut self.entity) {
                agg.missing_entity += 1;
                continue;
            }
            let contribution = match d.contribution(r) {
                Ok(x) => x,
                Err(e) => {
                    self.exclusions
                        .add(|| format!("{}: {e}; left out of {}", describe(r), d.name));
                    continue;
                }
            };
            let index = bucket_of(t, d.interval.as_secs() as i64);
            if !agg.series.contains_key(self.entity.as_slice()) {
                agg.series.insert(self.entity.clone(), Series::new());
            }
            let Some(series) = agg.series.get_mut(self.entity.as_slice()) else {
                continue;
            };
            let bucket = series.entry(index).or_insert_with(|| Bucket {
                cell: match d.value {
                    ValueSpec::Distinct(_) => Cell::Distinct(HashSet::new()),
                    _ => Cell::Number(0.0),
                },
                facets: FacetCounts::default(),
                by_minute: Vec::new(),
            });
            match &mut bucket.cell {
                Cell::Distinct(set) => {
                    if let Some(v) = d.distinct_value(r) {
                        set.insert(v);
                    }
                }
                Cell::Number(x) => {
                    *x += contribution;
                    if super::early::watches(d) {
                        let secs = d.interval.as_secs() as i64;
                        let offset = (t.timestamp() - index * secs) / 60;
                        super::early::add(&mut bucket.by_minute, offset as u16, contribution);
                    }
                }
            }
            bucket.facets.record(r);
        }
    }

    pub fn finish(self) -> Aggregates {
        self.state
    }
}

/// A record as a message names it: its event, id and time.
fn describe(r: &Record) -> String {
    format!(
        "{} {}:{} at {}",
        r.event_id()
            .map_or("a record".to_owned(), |id| format!("record {id}")),
        r.event_source(),
        r.event_name(),
        r.event_time().to_rfc3339()
    )
}

/// Serialises a map with non-string keys as a list of pairs.
pub(crate) mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::HashMap;
    use std::hash::{BuildHasher, Hash};

    pub fn serialize<K: Serialize, V: Serialize, H, S: Serializer>(
        map: &HashMap<K, V, H>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, H, D>(d: D) -> Result<HashMap<K, V, H>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        H: BuildHasher + Default,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::parse_detector;
    use serde_json::json;
    use std::path::Path;

    fn det(text: &str) -> Detector {
        parse_detector(Path::new("t.toml"), text).unwrap()
    }

    fn rec(time: &str, name: &str, extra: serde_json::Value) -> Record<'static> {
        let mut v = json!({"eventTime": time, "eventSource": "ec2.amazonaws.com", "eventName": name,
                           "userIdentity": {"arn": "arn:aws:iam::1:user/a"}});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        Record::from_value(v).unwrap()
    }

    #[test]
    fn sums_fan_out_over_arrays_and_bucket_by_interval() {
        let d = [det(r#"
            [filter]
            event_names = ["RunInstances"]
            [value]
            aggregation = "sum"
            field = "requestParameters.instancesSet.items.maxCount"
        "#)];
        let mut a = Aggregator::new(&d, None);
        let items = json!({"requestParameters": {"instanceType": "p3.2xlarge",
            "instancesSet": {"items": [{"maxCount": 3}, {"maxCount": 2}]}}});
        a.record(&rec("2023-07-10T12:01:00Z", "RunInstances", items.clone()));
        a.record(&rec("2023-07-10T12:09:59Z", "RunInstances", items.clone()));
        a.record(&rec("2023-07-10T12:10:00Z", "RunInstances", items));
        a.record(&rec("2023-07-10T12:10:00Z", "DescribeInstances", json!({})));
        let out = a.finish();
        let series = &out.detectors[0].series[&Vec::<String>::new()];
        let values: Vec<f64> = series.values().map(|b| b.cell.value()).collect();
        assert_eq!(values, [10.0, 5.0]);
        assert_eq!(out.detectors[0].matched, 3);
        let first = series.values().next().unwrap();
        assert_eq!(first.facets.events, 2.0);
        assert_eq!(
            first.facets.values[&crate::context::Facet::InstanceType]["p3.2xlarge"],
            10.0
        );
    }

    #[test]
    fn entities_distinct_counts_and_merging() {
        let d = [det(r#"
            category_fields = ["userIdentity.arn"]
            [value]
            aggregation = "distinct"
            field = "eventName"
        "#)];
        let mut a = Aggregator::new(&d, None);
        a.record(&rec("2023-07-10T12:01:00Z", "A", json!({})));
        a.record(&rec("2023-07-10T12:02:00Z", "A", json!({})));
        let mut b = Aggregator::new(&d, None);
        b.record(&rec("2023-07-10T12:03:00Z", "B", json!({})));
        b.record(&rec(
            "2023-07-10T12:03:00Z",
            "C",
            json!({"userIdentity": {"type": "Root"}}),
        ));
        let mut merged = a.finish();
        merged.merge(b.finish());
        let agg = &merged.detectors[0];
        assert_eq!(agg.missing_entity, 1, "no arn, no entity");
        let series = &agg.series[&vec!["arn:aws:iam::1:user/a".to_string()]];
        let bucket = series.values().next().unwrap();
        assert_eq!(bucket.cell.value(), 2.0, "A and B");
        assert_eq!(bucket.facets.events, 3.0);
        assert_eq!(
            merged.first_event.unwrap().to_rfc3339(),
            "2023-07-10T12:01:00+00:00"
        );
    }

    #[test]
    fn records_from_until_on_are_left_out() {
        let d = [det("")];
        let until = "2023-07-10T12:05:00Z".parse().unwrap();
        let mut a = Aggregator::new(&d, Some(until));
        a.record(&rec("2023-07-10T12:04:59Z", "A", json!({})));
        a.record(&rec("2023-07-10T12:05:00Z", "A", json!({})));
        let out = a.finish();
        assert_eq!((out.detectors[0].matched, out.after_until), (1, 1));
    }

    #[test]
    fn aggregates_survive_a_round_trip_through_json() {
        let d = [det("category_fields = [\"userIdentity.arn\"]")];
        let mut a = Aggregator::new(&d, None);
        a.record(&rec(
            "2023-07-10T12:01:00Z",
            "A",
            json!({"sourceIPAddress": "10.0.0.1"}),
        ));
        let out = a.finish();
        let text = serde_json::to_string(&out).unwrap();
        let back: Aggregates = serde_json::from_str(&text).unwrap();
        assert_eq!(back.detectors[0].series, out.detectors[0].series);
        assert_eq!(back.novelty, out.novelty);
        assert_eq!(back.insights, out.insights);
    }
}
