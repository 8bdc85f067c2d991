//! Insights, as CloudTrail Insights does: the per-minute rate of write
//! management calls (`ApiCallRateInsight`) and of calls that returned an error
//! (`ApiErrorRateInsight`), per account, region, eventSource and eventName,
//! against a baseline of the preceding days. Beyond CloudTrail Insights,
//! data events count too (every Lambda invocation and S3 object call, reads
//! included), so a function invoking itself or a bulk download shows within
//! minutes rather than at the end of a detector's interval.
//!
//! The baseline is seasonal: a five-minute window is compared with the
//! windows at the same time of day (±30 minutes) on each of up to seven
//! preceding days, so a daily 08:00 scale-out is normal. Its count is judged
//! by its tail probability under that baseline ([`super::chance`]): an
//! insight starts at the first minute whose window is rarer than the kind's
//! false-alarm budget allows (0.2 chance alarms a day, shared by every
//! series of the kind) and at least [`InsightOptions::min_excess`] calls over
//! the expectation, and that no window of the series reached at any other
//! time of day in the baseline days (the share of minutes that did is a
//! floor under its probability: bursty automation and deploy waves come at
//! irregular hours). It ends after five minutes back in the ordinary range.
//! Results are CloudTrail Insight records (Start and End, sharing
//! `sharedEventID`) and anomalies of kind `insight`, graded from that
//! probability.

use super::aggregate::History;
use super::anomaly::{round4, Anomaly, AnomalyKind, Pivots};
use super::chance::{Budget, CountModel};
use crate::cloudtrail::Record;
use crate::context::{short_arn, Facet, FacetCounts, EVENT_IDS};
use chrono::{DateTime, Duration, Utc};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What an insight is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InsightKey {
    pub account: String,
    pub region: String,
    pub event_source: String,
    pub event_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InsightType {
    ApiCallRateInsight,
    ApiErrorRateInsight,
}

impl InsightType {
    fn index(self) -> usize {
        match self {
            InsightType::ApiCallRateInsight => 0,
            InsightType::ApiErrorRateInsight => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            InsightType::ApiCallRateInsight => "ApiCallRateInsight",
            InsightType::ApiErrorRateInsight => "ApiErrorRateInsight",
        }
    }
}

/// The counts of one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyCounts {
    /// Minute -> [write calls, calls with an error].
    pub minutes: BTreeMap<i64, [u32; 2]>,
    /// Ten-minute bucket -> attributions (principal, user agent, error code)
    /// of write calls and of errored calls.
    pub attributions: BTreeMap<i64, [FacetCounts; 2]>,
}

/// Insight counters of every key, by [`InsightKey::joined`]. Mergeable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InsightCounts {
    pub keys: FxHashMap<String, KeyCounts>,
    /// Reused to look keys up without allocating.
    #[serde(skip)]
    scratch: String,
}

const SEP: char = '\u{1f}';

impl InsightKey {
    /// The key as one string: account, region, source and name joined.
    pub fn joined(&self) -> String {
        [
            &*self.account,
            &self.region,
            &self.event_source,
            &self.event_name,
        ]
        .join(&SEP.to_string())
    }

    pub fn from_joined(s: &str) -> InsightKey {
        let mut p = s.split(SEP).map(str::to_owned);
        let mut next = || p.next().unwrap_or_default();
        InsightKey {
            account: next(),
            region: next(),
            event_source: next(),
            event_name: next(),
        }
    }
}

const ATTRIBUTION_BUCKET: i64 = 10;

impl InsightCounts {
    /// Forgets the counts of minutes before `before` (and of the
    /// ten-minute attributions that end by then); a key left with nothing
    /// goes.
    pub fn forget_before(&mut self, before: DateTime<Utc>) {
        let minute = before.timestamp().div_euclid(60);
        let ten = before.timestamp().div_euclid(600);
        self.keys.retain(|_, k| {
            k.minutes = k.minutes.split_off(&minute);
            k.attributions = k.attributions.split_off(&ten);
            !k.minutes.is_empty() || !k.attributions.is_empty()
        });
    }

    /// Drops the access keys, source addresses and event IDs of the
    /// attribution buckets wholly in `from..before`: an insight reads them
    /// only over its own span, its baseline never
    /// ([`super::aggregate::Aggregates::forget_detail_before`]).
    pub fn forget_detail(&mut self, from: DateTime<Utc>, before: DateTime<Utc>) {
        let ten = |t: DateTime<Utc>| t.timestamp().div_euclid(60 * ATTRIBUTION_BUCKET);
        let span = ten(from)..ten(before);
        for counts in self.keys.values_mut() {
            for (_, pair) in counts.attributions.range_mut(span.clone()) {
                for a in pair {
                    a.values.remove(&Facet::AccessKey);
                    a.values.remove(&Facet::SourceIp);
                    a.event_ids = Vec::new();
                }
            }
        }
    }

    /// Counts a management or data event (Insight records are not): a
    /// management call when it writes, a data event (a Lambda invocation,
    /// an S3 object read) whether it reads or writes, since reading is
    /// what exfiltration does; and either when it failed.
    pub fn record(&mut self, r: &Record) {
        let data = r.management_event() == Some(false) || r.event_category() == Some("Data");
        if !data && r.event_category().is_some_and(|c| c != "Management") {
            return;
        }
        let write = data || r.read_only() == Some(false);
        let error = r.error_code().is_some();
        if !write && !error {
            return;
        }
        let account = r
            .recipient_account_id()
            .or(r.user_identity().account_id)
            .unwrap_or("");
        self.scratch.clear();
        for (i, part) in [
            account,
            r.aws_region().unwrap_or(""),
            r.event_source(),
            r.event_name(),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                self.scratch.push(SEP);
            }
            self.scratch.push_str(part);
        }
        if !self.keys.contains_key(self.scratch.as_str()) {
            self.keys.insert(self.scratch.clone(), KeyCounts::default());
        }
        let minute = r.event_time().timestamp().div_euclid(60);
        let Some(counts) = self.keys.get_mut(self.scratch.as_str()) else {
            return;
        };
        let m = counts.minutes.entry(minute).or_default();
        let attrs = counts
            .attributions
            .entry(minute.div_euclid(ATTRIBUTION_BUCKET))
            .or_default();
        for (i, yes) in [write, error].into_iter().enumerate() {
            if yes {
                m[i] += 1;
                let a = &mut attrs[i];
                a.events += 1.0;
                if let Some(who) = r.principal() {
                    a.add(Facet::Principal, &who, 1.0);
                }
                if let Some(ua) = r.user_agent() {
                    a.add(Facet::UserAgent, ua, 1.0);
                }
                if let Some(code) = r.error_code() {
                    a.add(Facet::ErrorCode, code, 1.0);
                }
                if let Some(key) = r.user_identity().access_key_id {
                    a.add(Facet::AccessKey, key, 1.0);
                }
                if let Some(ip) = r.source_ip_address() {
                    a.add(Facet::SourceIp, ip, 1.0);
                }
                if let Some(id) = r.event_id().filter(|_| a.event_ids.len() < EVENT_IDS) {
                    a.event_ids.push(id.to_owned());
                }
            }
        }
    }

    pub fn merge(&mut self, other: InsightCounts) {
        for (key, theirs) in other.keys {
            let mine = self.keys.entry(key).or_default();
            for (m, c) in theirs.minutes {
                let x = mine.minutes.entry(m).or_default();
                x[0] += c[0];
                x[1] += c[1];
            }
            for (b, [calls, errors]) in theirs.attributions {
                let x = mine.attributions.entry(b).or_default();
                x[0].merge(&calls);
                x[1].merge(&errors);
            }
        }
    }
}

/// Detection settings (the defaults are documented in the module doc).
#[derive(Debug, Clone, Copy)]
pub struct InsightOptions {
    /// Chance alarms a day each insight type may raise, over all its series.
    pub budget_per_day: f64,
    /// Calls over the expectation, in a five-minute window, under which
    /// nothing is unusual however rare.
    pub min_excess: f64,
    /// At least this much baseline before the first insight.
    pub min_baseline: Duration,
}

impl Default for InsightOptions {
    fn default() -> Self {
        InsightOptions {
            budget_per_day: super::chance::DEFAULT_BUDGET_PER_DAY,
            min_excess: 5.0,
            min_baseline: Duration::days(1),
        }
    }
}

const RATE_WINDOW: usize = 5;
/// Minutes of the start reported as its start average.
const START_MINUTES: usize = 3;
/// Quiet minutes after which an insight has ended.
pub const END_MINUTES: usize = 5;

/// Whether an insight found up to `to`, ending at `end`, may still be
/// running: too few minutes after its end were seen to say it ended.
/// Evaluated again with more data, it is found again from its start, with
/// its whole span.
pub fn running(end: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    end + Duration::minutes(END_MINUTES as i64) > to
}
/// A running insight goes on while its window's tail stays under this.
const CONTINUE_P: f64 = 1e-3;
const BASELINE_DAYS: i64 = 7;
const DAY: i64 = 1440;
const SEASON_HALF_WIDTH: i64 = 30;
/// Minutes before a window that its history check leaves out (the build-up
/// of the same burst).
const RECENT_GAP: i64 = 30;

/// One attribution list: the top values and their average per minute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribution {
    pub attribute: &'static str,
    pub insight: Vec<(String, f64)>,
    pub baseline: Vec<(String, f64)>,
}

/// A detected insight.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Insight {
    pub key: InsightKey,
    pub insight_type: InsightType,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Average per minute over the baseline (up to 7 days before the start).
    pub baseline_average: f64,
    pub baseline_minutes: i64,
    /// Average per minute during the insight.
    pub insight_average: f64,
    /// Average per minute during its first minutes.
    pub start_average: f64,
    /// The seasonal expectation at the start (same time of day, earlier days).
    pub expected: f64,
    pub attributions: Vec<Attribution>,
    /// What a responder pivots on (not part of CloudTrail's Insight record).
    #[serde(skip)]
    pub pivots: Pivots,
    /// The end of the first window that was unusual: when it could page.
    pub detected: DateTime<Utc>,
    /// The rarest window's tail probability under the baseline.
    pub p_value: f64,
    /// That probability as a grade ([`super::chance::grade`]).
    pub grade: f64,
}

/// How many series of each type the counts hold (keys with at least one
/// call of that type): what each type's budget is shared by.
pub fn series_counts(counts: &InsightCounts) -> [usize; 2] {
    let mut n = [0; 2];
    for kc in counts.keys.values() {
        for (i, slot) in n.iter_mut().enumerate() {
            if kc.minutes.values().any(|c| c[i] > 0) {
                *slot += 1;
            }
        }
    }
    n
}

/// Each insight type's budget over the series of `counts`.
pub fn budgets(counts: &InsightCounts, options: &InsightOptions) -> [Budget; 2] {
    series_counts(counts).map(|n| Budget::per_minute(options.budget_per_day, n))
}

/// Finds the insights that start in `[from, to)`; `first_event` bounds the
/// baseline. An insight still running at `to` ends at `to`.
pub fn detect(
    counts: &InsightCounts,
    history: impl Into<History>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    options: &InsightOptions,
) -> Vec<Insight> {
    let history = history.into();
    let (from_m, to_m) = (
        from.timestamp().div_euclid(60),
        to.timestamp().div_euclid(60),
    );
    let mut out = Vec::new();
    let run_start = history.first.timestamp().div_euclid(60);
    if from_m.max(run_start + options.min_baseline.num_minutes()) >= to_m {
        return out;
    }
    let budgets = budgets(counts, options);
    for (joined, kc) in &counts.keys {
        let key = &InsightKey::from_joined(joined);
        // The baseline starts when this account and region started delivering.
        let data_start = history
            .stream(&key.account, &key.region)
            .timestamp()
            .div_euclid(60);
        let earliest = data_start + options.min_baseline.num_minutes();
        if from_m.max(earliest) >= to_m {
            continue;
        }
        for kind in [
            InsightType::ApiCallRateInsight,
            InsightType::ApiErrorRateInsight,
        ] {
            let i = kind.index();
            let budget = budgets[i];
            let alpha = budget.alpha();
            // Quick reject: too few calls in the span for any window to pass.
            let in_window: u32 = kc
                .minutes
                .range(from_m.max(earliest) + 1 - RATE_WINDOW as i64..to_m)
                .map(|(_, c)| c[i])
                .sum();
            if (in_window as f64) < options.min_excess {
                continue;
            }
            let x = |m: i64| kc.minutes.get(&m).map_or(0, |c| c[i]) as f64;
            let window = |m: i64| -> f64 {
                kc.minutes
                    .range(m + 1 - RATE_WINDOW as i64..=m)
                    .map(|(_, c)| c[i] as f64)
                    .sum()
            };
            // The windows at the same time of day on earlier days.
            let seasonal = |m: i64| -> Option<CountModel> {
                let mut samples = Vec::with_capacity(BASELINE_DAYS as usize * 13);
                for d in 1..=BASELINE_DAYS {
                    let centre = m - d * DAY;
                    if centre - SEASON_HALF_WIDTH < data_start {
                        break;
                    }
                    for k in (-SEASON_HALF_WIDTH..=SEASON_HALF_WIDTH).step_by(RATE_WINDOW) {
                        samples.push(window(centre + k));
                    }
                }
                CountModel::from_windows(&samples)
            };
            // The window ending at `m`'s tail probability, when it is at
            // least the minimum excess over its expectation.
            let tail = |m: i64| -> Option<(f64, CountModel)> {
                let c = window(m);
                if c < options.min_excess {
                    return None;
                }
                let model = seasonal(m)?;
                (c - model.mean >= options.min_excess).then(|| (model.tail(c as u64), model))
            };
            // How often, at any time of day over the baseline days (up to
            // half an hour before), a window held at least `c` calls: a
            // series that bursts like this at other hours (a metrics agent,
            // deploy waves) is not rare when it does so again.
            let seen_before = |m: i64, c: f64| -> f64 {
                let from = (m - BASELINE_DAYS * DAY).max(data_start + RATE_WINDOW as i64 - 1);
                let to = m - RECENT_GAP;
                if to <= from {
                    return 0.0;
                }
                // Only windows holding a call can reach `c`: those ending in
                // the five minutes from each active minute, each looked at once.
                let (mut hits, mut next) = (0usize, from);
                let active = kc.minutes.range(from + 1 - RATE_WINDOW as i64..to);
                for (&a, _) in active.filter(|(_, n)| n[i] > 0) {
                    let ends = a.max(next)..(a + RATE_WINDOW as i64).min(to);
                    next = next.max(ends.end);
                    hits += ends.filter(|&t| window(t) >= c).count();
                }
                hits as f64 / (to - from) as f64
            };
            // The window ending at `m` starts an insight when it is rarer
            // than the budget under the seasonal model and has not been
            // reached at other hours.
            let starts = |m: i64| -> Option<(f64, CountModel)> {
                let (p, model) = tail(m).filter(|(p, _)| *p < alpha)?;
                let p = p.max(seen_before(m, window(m)));
                (p < alpha).then_some((p, model))
            };
            let mut m = from_m.max(earliest);
            while m < to_m {
                let Some((p, model)) = starts(m) else {
                    // The next minute whose window holds a call: the ones
                    // between cannot be unusual, and a gap of a year is
                    // jumped, not walked.
                    match kc.minutes.range(m + 2 - RATE_WINDOW as i64..).next() {
                        Some((&calls, _)) => m = (m + 1).max(calls),
                        None => break,
                    }
                    continue;
                };
                // The first active minute of the window that tipped it.
                let start = (m - RATE_WINDOW as i64 + 1..=m)
                    .find(|&s| x(s) > 0.0)
                    .unwrap_or(m);
                let (mut last, mut rarest) = (m, p);
                let mut quiet = 0;
                let mut k = m + 1;
                while k < to_m && quiet < END_MINUTES {
                    match tail(k).filter(|(p, _)| *p < CONTINUE_P) {
                        Some((p, _)) => {
                            last = k;
                            rarest = rarest.min(p);
                            quiet = 0;
                        }
                        None => quiet += 1,
                    }
                    k += 1;
                }
                // The window lags: end after the last minute that had calls.
                let end = (last - RATE_WINDOW as i64 + 1..=last)
                    .rev()
                    .find(|&k| x(k) > 0.0)
                    .unwrap_or(last)
                    + 1;
                let mut insight = build(
                    key,
                    kc,
                    kind,
                    start,
                    end,
                    data_start,
                    model.mean / RATE_WINDOW as f64,
                );
                insight.detected = DateTime::from_timestamp((m + 1) * 60, 0).unwrap_or_default();
                insight.p_value = rarest;
                insight.grade = budget.grade(rarest);
                out.push(insight);
                m = end + END_MINUTES as i64;
            }
        }
    }
    out.sort_by(|a, b| {
        (a.start, &a.key, a.insight_type.name()).cmp(&(b.start, &b.key, b.insight_type.name()))
    });
    out
}

/// What a budget is expected to let through by chance: per insight type,
/// the series it watches, the tail probability a window must fall under,
/// and the chance alarms a day expected at each series' own average rate
/// (a flat model of its whole history: the seasonal baseline only makes
/// ordinary peaks less surprising).
#[derive(Debug, Clone, PartialEq)]
pub struct ChanceFigures {
    pub insight_type: InsightType,
    pub budget: Budget,
    pub series: usize,
    pub expected_per_day: f64,
}

pub fn chance_figures(
    counts: &InsightCounts,
    first_event: DateTime<Utc>,
    last_event: DateTime<Utc>,
    options: &InsightOptions,
) -> Vec<ChanceFigures> {
    let minutes = ((last_event - first_event).num_minutes() + 1).max(1) as f64;
    let windows = (minutes / RATE_WINDOW as f64).max(1.0);
    let series = series_counts(counts);
    let budgets = budgets(counts, options);
    [
        InsightType::ApiCallRateInsight,
        InsightType::ApiErrorRateInsight,
    ]
    .into_iter()
    .map(|kind| {
        let i = kind.index();
        let alpha = budgets[i].alpha();
        let expected_per_day = counts
            .keys
            .values()
            .filter_map(|kc| {
                let calls: f64 = kc.minutes.values().map(|c| c[i] as f64).sum();
                (calls > 0.0).then(|| {
                    let model = CountModel::poisson(calls / windows);
                    let k = model.threshold(alpha, options.min_excess);
                    model.tail(k) * crate::engine::chance::WINDOWS_A_DAY
                })
            })
            .sum::<f64>()
            // An empty sum is −0.
            + 0.0;
        ChanceFigures {
            insight_type: kind,
            budget: budgets[i],
            series: series[i],
            expected_per_day,
        }
    })
    .collect()
}

fn build(
    key: &InsightKey,
    kc: &KeyCounts,
    kind: InsightType,
    start: i64,
    end: i64,
    data_start: i64,
    expected: f64,
) -> Insight {
    let i = kind.index();
    let sum = |a: i64, b: i64| {
        kc.minutes
            .range(a..b)
            .map(|(_, c)| c[i] as f64)
            .sum::<f64>()
    };
    let base_from = (start - BASELINE_DAYS * DAY).max(data_start);
    let baseline_minutes = (start - base_from).max(1);
    let attribution = |a: i64, b: i64| -> FacetCounts {
        let mut total = FacetCounts::default();
        for (_, pair) in kc
            .attributions
            .range(a.div_euclid(ATTRIBUTION_BUCKET)..=(b - 1).div_euclid(ATTRIBUTION_BUCKET))
        {
            total.merge(&pair[i]);
        }
        total
    };
    let in_insight = attribution(start, end);
    let in_base = attribution(base_from, start);
    let top = |fc: &FacetCounts, facet: Facet, minutes: i64| -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = fc
            .values
            .get(&facet)
            .map(|m| {
                m.iter()
                    .map(|(k, n)| (k.clone(), round4(n / minutes as f64)))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(5);
        v
    };
    // The busiest first, as many as a context shows.
    let values = |facet: Facet| -> Vec<String> {
        top(&in_insight, facet, (end - start).max(1))
            .into_iter()
            .map(|(v, _)| v)
            .filter(|v| v != crate::context::OTHER)
            .collect()
    };
    let attributions = [
        ("userIdentityArn", Facet::Principal),
        ("userAgent", Facet::UserAgent),
        ("errorCode", Facet::ErrorCode),
    ]
    .into_iter()
    .map(|(attribute, facet)| Attribution {
        attribute,
        insight: top(&in_insight, facet, end - start),
        baseline: top(&in_base, facet, baseline_minutes),
    })
    .collect();
    let at = |m: i64| DateTime::from_timestamp(m * 60, 0).unwrap_or_default();
    Insight {
        key: key.clone(),
        insight_type: kind,
        start: at(start),
        end: at(end),
        baseline_average: round4(sum(base_from, start) / baseline_minutes as f64),
        baseline_minutes,
        insight_average: round4(sum(start, end) / (end - start) as f64),
        start_average: round4(sum(start, start + START_MINUTES as i64) / START_MINUTES as f64),
        expected: round4(expected),
        attributions,
        pivots: Pivots {
            access_key_ids: values(Facet::AccessKey),
            source_ips: values(Facet::SourceIp),
            regions: vec![key.region.clone()],
            accounts: vec![key.account.clone()],
            event_ids: in_insight.event_ids.clone(),
            events: in_insight.events.round() as u64,
        },
        detected: at(start),
        p_value: 1.0,
        grade: 0.0,
    }
}

/// A GUID-shaped id that is the same for the same insight, run after run.
fn stable_id(parts: &[&str]) -> String {
    let mut h = [0xcbf2_9ce4_8422_2325u64, 0x8422_2325_cbf2_9ce4];
    for (n, seed) in h.iter_mut().enumerate() {
        for b in parts.join("\u{1f}").bytes().chain([n as u8]) {
            *seed = (*seed ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let hex = format!("{:016x}{:016x}", h[0], h[1]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

impl Insight {
    pub fn shared_event_id(&self) -> String {
        stable_id(&[
            &self.key.account,
            &self.key.region,
            &self.key.event_source,
            &self.key.event_name,
            self.insight_type.name(),
            &self.start.to_rfc3339(),
        ])
    }

    /// The Start and End records, in CloudTrail's Insight schema.
    pub fn to_records(&self) -> [Value; 2] {
        let shared = self.shared_event_id();
        let attributions: Vec<Value> = self
            .attributions
            .iter()
            .map(|a| {
                let list = |l: &[(String, f64)]| l.iter().map(|(v, avg)| json!({"value": v, "average": avg})).collect::<Vec<_>>();
                json!({"attribute": a.attribute, "insight": list(&a.insight), "baseline": list(&a.baseline)})
            })
            .collect();
        let duration = (self.end - self.start).num_minutes();
        let record = |state: &str, time: DateTime<Utc>, insight_avg: f64| {
            json!({
                "eventVersion": "1.08",
                "eventTime": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "awsRegion": self.key.region,
                "eventID": stable_id(&[&shared, state]),
                "eventType": "AwsCloudTrailInsight",
                "recipientAccountId": self.key.account,
                "sharedEventID": shared,
                "insightDetails": {
                    "state": state,
                    "eventSource": self.key.event_source,
                    "eventName": self.key.event_name,
                    "insightType": self.insight_type.name(),
                    "insightContext": {
                        "statistics": {
                            "baseline": {"average": self.baseline_average},
                            "insight": {"average": insight_avg},
                            "insightDuration": duration,
                            "baselineDuration": self.baseline_minutes
                        },
                        "attributions": attributions
                    }
                },
                "eventCategory": "Insight"
            })
        };
        [
            record("Start", self.start, self.start_average),
            record("End", self.end, self.insight_average),
        ]
    }

    /// The insight as a detect result.
    pub fn to_anomaly(&self) -> Anomaly {
        let who: Vec<String> = self.attributions[0]
            .insight
            .iter()
            .map(|(arn, _)| arn.clone())
            .collect();
        let what = match self.insight_type {
            InsightType::ApiCallRateInsight => "calls",
            InsightType::ApiErrorRateInsight => "errors",
        };
        let summary = format!(
            "{}:{} {what} at {:.1}/min against {:.2}/min usually ({}/{}){}",
            self.key.event_source.trim_end_matches(".amazonaws.com"),
            self.key.event_name,
            self.insight_average,
            self.expected.max(self.baseline_average),
            self.key.account,
            self.key.region,
            who.first()
                .map(|w| format!(", mostly {}", short_arn(w)))
                .unwrap_or_default()
        );
        let entity = [
            ("eventSource", &self.key.event_source),
            ("eventName", &self.key.event_name),
            ("awsRegion", &self.key.region),
            ("recipientAccountId", &self.key.account),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        let base = self.expected.max(self.baseline_average);
        Anomaly {
            detector: self.insight_type.name().into(),
            kind: AnomalyKind::Insight,
            entity: Some(entity),
            start: self.start,
            end: self.end,
            grade: self.grade,
            confidence: round4(
                (self.baseline_minutes as f64 / (BASELINE_DAYS * DAY) as f64).min(1.0),
            ),
            actual: self.insight_average,
            expected: base,
            score: round4(self.insight_average / base.max(0.01)),
            summary,
            context: None,
            incident: None,
            subjects: who,
            late: false,
            partial: false,
            detected: self.detected,
            severity: None,
            page: None,
            novelty: None,
            attack: Vec::new(),
            pivots: self.pivots.clone(),
        }
    }
}

/// Writes each insight's Start and End records as CloudTrail delivers them:
/// `AWSLogs/<account>/CloudTrail-Insight/<region>/yyyy/mm/dd/<account>_CloudTrail-Insight_<region>_<yyyymmddThhmmZ>_<id>.json.gz`.
/// Returns the paths written. Re-running overwrites the same files.
pub fn write_deliveries(
    dir: &std::path::Path,
    insights: &[Insight],
) -> std::io::Result<Vec<std::path::PathBuf>> {
    use std::io::Write;
    let mut written = Vec::new();
    for insight in insights {
        for record in insight.to_records() {
            let time: DateTime<Utc> = record["eventTime"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(insight.start);
            let id: String = record["eventID"]
                .as_str()
                .unwrap_or("")
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(16)
                .collect();
            let (account, region) = (&insight.key.account, &insight.key.region);
            let path = dir.join(format!(
                "AWSLogs/{account}/CloudTrail-Insight/{region}/{}/{account}_CloudTrail-Insight_{region}_{}_{id}.json.gz",
                time.format("%Y/%m/%d"),
                time.format("%Y%m%dT%H%MZ")
            ));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            serde_json::to_writer(&mut gz, &json!({ "Records": [record] }))?;
            std::fs::File::create(&path)?.write_all(&gz.finish()?)?;
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> InsightKey {
        InsightKey {
            account: "1".into(),
            region: "us-east-1".into(),
            event_source: "ec2.amazonaws.com".into(),
            event_name: "RunInstances".into(),
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// `per_minute(minute_of_day, day)` write calls for `days` days from 2026-01-05.
    fn counts(days: i64, per_minute: impl Fn(i64, i64) -> u32) -> InsightCounts {
        let start = t("2026-01-05T00:00:00Z").timestamp() / 60;
        let mut kc = KeyCounts::default();
        for d in 0..days {
            for m in 0..DAY {
                let n = per_minute(m, d);
                if n > 0 {
                    kc.minutes.insert(start + d * DAY + m, [n, 0]);
                    let mut fc = FacetCounts {
                        events: n as f64,
                        ..FacetCounts::default()
                    };
                    fc.add(
                        Facet::Principal,
                        if d == days - 1 && m >= 14 * 60 {
                            "arn:aws:iam::1:user/mallory"
                        } else {
                            "arn:aws:iam::1:role/asg"
                        },
                        n as f64,
                    );
                    let e = kc
                        .attributions
                        .entry((start + d * DAY + m).div_euclid(ATTRIBUTION_BUCKET))
                        .or_default();
                    e[0].merge(&fc);
                }
            }
        }
        InsightCounts {
            keys: [(key().joined(), kc)].into_iter().collect(),
            ..InsightCounts::default()
        }
    }

    fn run(c: &InsightCounts, days: i64) -> Vec<Insight> {
        let first = t("2026-01-05T00:00:00Z");
        detect(
            c,
            first,
            first,
            first + Duration::days(days),
            &InsightOptions::default(),
        )
    }

    #[test]
    fn a_daily_scale_out_is_seasonal_and_does_not_alarm() {
        // 08:00-08:30 every day, 6 calls a minute; otherwise one call every 20 minutes.
        let c = counts(5, |m, _| {
            if (480..510).contains(&m) {
                6
            } else {
                u32::from(m % 20 == 0)
            }
        });
        let found = run(&c, 5);
        assert!(
            found
                .iter()
                .all(|i| i.start < t("2026-01-06T00:00:00Z") + Duration::days(1)),
            "{found:#?}"
        );
        // Only the first recurrence can look unusual (one day of baseline, at most).
        assert!(found.len() <= 1, "{found:#?}");
    }

    #[test]
    fn a_burst_at_an_unusual_hour_is_an_insight_with_its_statistics() {
        let c = counts(4, |m, d| {
            if d == 3 && (840..870).contains(&m) {
                8
            } else if (480..510).contains(&m) {
                6
            } else {
                u32::from(m % 20 == 0)
            }
        });
        let found = run(&c, 4);
        let burst: Vec<&Insight> = found
            .iter()
            .filter(|i| i.start >= t("2026-01-08T13:00:00Z"))
            .collect();
        assert_eq!(burst.len(), 1, "{found:#?}");
        let i = burst[0];
        assert_eq!(i.insight_type, InsightType::ApiCallRateInsight);
        assert_eq!(i.start, t("2026-01-08T14:00:00Z"));
        assert!(
            i.end >= t("2026-01-08T14:28:00Z") && i.end <= t("2026-01-08T14:31:00Z"),
            "{}",
            i.end
        );
        assert!(i.insight_average > 7.0, "{}", i.insight_average);
        assert!(i.baseline_average < 1.0);
        assert_eq!(i.baseline_minutes, 3 * DAY + 14 * 60);
        assert_eq!(i.attributions[0].attribute, "userIdentityArn");
        assert_eq!(
            i.attributions[0].insight[0].0,
            "arn:aws:iam::1:user/mallory"
        );

        let [start, end] = i.to_records();
        assert_eq!(start["eventType"], "AwsCloudTrailInsight");
        assert_eq!(start["sharedEventID"], end["sharedEventID"]);
        assert_ne!(start["eventID"], end["eventID"]);
        assert_eq!(start["insightDetails"]["state"], "Start");
        assert_eq!(end["insightDetails"]["state"], "End");
        assert_eq!(
            end["eventTime"],
            i.end.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        );
        let stats = &end["insightDetails"]["insightContext"]["statistics"];
        assert_eq!(stats["insightDuration"], (i.end - i.start).num_minutes());
        assert_eq!(stats["baseline"]["average"], i.baseline_average);
        let doc = json!({"Records": [start.clone(), end.clone()]}).to_string();
        let stats = crate::cloudtrail::read_input(
            "insights",
            doc.as_bytes(),
            &crate::cloudtrail::Projection::All,
            |_| panic!("not an event"),
            |e| panic!("{e}"),
        );
        assert_eq!(
            stats.skipped, 2,
            "our own Insight records are recognised and skipped when read back"
        );

        let a = i.to_anomaly();
        assert_eq!(a.kind, AnomalyKind::Insight);
        assert_eq!(a.detector, "ApiCallRateInsight");
        assert!(
            a.summary.contains("ec2:RunInstances calls at"),
            "{}",
            a.summary
        );
        assert!(a.summary.contains("mostly user/mallory@1"), "{}", a.summary);
    }

    #[test]
    fn nothing_before_a_day_of_baseline() {
        let c = counts(1, |m, _| if (600..640).contains(&m) { 20 } else { 0 });
        assert!(run(&c, 1).is_empty());
        // Less than a day of data at all.
        let first = t("2026-01-05T00:00:00Z");
        assert!(detect(
            &c,
            first,
            first,
            first + Duration::hours(1),
            &InsightOptions::default()
        )
        .is_empty());
    }

    /// Poisson counts a minute at `rate`, for `days` days, seeded.
    fn poisson_minutes(rate: f64, days: i64, seed: u64) -> KeyCounts {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let start = t("2026-01-05T00:00:00Z").timestamp() / 60;
        let limit = (-rate).exp();
        let mut kc = KeyCounts::default();
        for m in 0..days * DAY {
            // Knuth's: multiply uniforms until under e^-rate.
            let (mut n, mut p) = (0u32, rng.random::<f64>());
            while p > limit {
                n += 1;
                p *= rng.random::<f64>();
            }
            if n > 0 {
                kc.minutes.insert(start + m, [n, n]);
            }
        }
        kc
    }

    /// The budget's promise: a flat Poisson series has no reason to alarm,
    /// so over a month every alarm is chance, and chance stays within the
    /// budget (0.2 a day for each type, shared by every series), at low
    /// rates and high, for each type.
    #[test]
    fn flat_poisson_series_raise_no_more_chance_alarms_than_their_budget_over_a_month() {
        let days = 30;
        let rates = [0.05, 0.2, 0.5, 1.0, 2.0, 5.0, 20.0];
        let mut c = InsightCounts::default();
        for (n, rate) in rates.into_iter().enumerate() {
            let mut k = key();
            k.event_name = format!("Call{n}");
            c.keys
                .insert(k.joined(), poisson_minutes(rate, days, 7 + n as u64));
        }
        let found = run(&c, days);
        let options = InsightOptions::default();
        let tested_days = (days - 1) as f64;
        for kind in [
            InsightType::ApiCallRateInsight,
            InsightType::ApiErrorRateInsight,
        ] {
            let alarms = found.iter().filter(|i| i.insight_type == kind).count();
            assert!(
                alarms as f64 <= options.budget_per_day * tested_days,
                "{kind:?}: {alarms} chance alarms in {tested_days} days: {found:#?}"
            );
        }
        let first = t("2026-01-05T00:00:00Z");
        let figures = chance_figures(&c, first, first + Duration::days(days), &options);
        for f in &figures {
            assert_eq!(f.series, rates.len());
            assert!(f.expected_per_day <= f.budget.per_day, "{f:?}");
            assert!(f.expected_per_day > 0.0, "{f:?}");
        }

        // And the same series with a real burst in it: found, and graded
        // far above the threshold.
        let mut k = key();
        k.event_name = "Call2".into();
        let kc = c.keys.get_mut(&k.joined()).unwrap();
        let burst = t("2026-02-01T14:00:00Z").timestamp() / 60;
        for m in burst..burst + 10 {
            kc.minutes.entry(m).or_default()[0] += 6;
        }
        let found = run(&c, days);
        let hit: Vec<&Insight> = found
            .iter()
            .filter(|i| i.key.event_name == "Call2" && i.start >= t("2026-02-01T13:55:00Z"))
            .filter(|i| i.start <= t("2026-02-01T14:10:00Z"))
            .collect();
        assert_eq!(hit.len(), 1, "{found:#?}");
        assert!(hit[0].grade >= 0.95, "{:?}", hit[0]);
        assert!(
            hit[0].detected <= t("2026-02-01T14:02:00Z"),
            "paged within two minutes: {}",
            hit[0].detected
        );
    }

    #[test]
    fn errors_are_their_own_insight_type() {
        let mut c = InsightCounts::default();
        let mk = |t: &str, code: Option<&str>| {
            let mut v = serde_json::json!({"eventTime": t, "eventSource": "iam.amazonaws.com", "eventName": "ListUsers",
                "readOnly": true, "recipientAccountId": "1", "awsRegion": "us-east-1",
                "userIdentity": {"arn": "arn:aws:iam::1:user/bob"}});
            if let Some(code) = code {
                v["errorCode"] = serde_json::json!(code);
            }
            Record::from_value(v).unwrap()
        };
        for h in 0..48 {
            c.record(&mk(
                &format!("2026-01-0{}T{:02}:00:00Z", 5 + h / 24, h % 24),
                None,
            ));
        }
        for m in 0..20 {
            for _ in 0..4 {
                c.record(&mk(
                    &format!("2026-01-07T14:{m:02}:00Z"),
                    Some("AccessDenied"),
                ));
            }
        }
        let found = run(&c, 3);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].insight_type, InsightType::ApiErrorRateInsight);
        assert_eq!(found[0].attributions[2].insight[0].0, "AccessDenied");
    }

    #[test]
    fn data_events_count_reads_and_writes_and_management_reads_do_not() {
        let mut c = InsightCounts::default();
        let mk = |name: &str, source: &str, read: bool, data: bool| {
            Record::from_value(serde_json::json!({"eventTime": "2026-01-07T14:00:00Z",
                "eventSource": source, "eventName": name, "readOnly": read,
                "managementEvent": !data, "eventCategory": if data { "Data" } else { "Management" },
                "recipientAccountId": "1", "awsRegion": "us-east-1",
                "userIdentity": {"arn": "arn:aws:iam::1:role/app"}}))
            .unwrap()
        };
        c.record(&mk("GetObject", "s3.amazonaws.com", true, true));
        c.record(&mk("Invoke", "lambda.amazonaws.com", false, true));
        c.record(&mk("ListBuckets", "s3.amazonaws.com", true, false));
        let mut counted: Vec<String> = c
            .keys
            .keys()
            .map(|k| InsightKey::from_joined(k).event_name)
            .collect();
        counted.sort();
        assert_eq!(counted, ["GetObject", "Invoke"]);
    }
}
