//! Never seen before, as Unomaly does: the first API call (eventSource and
//! eventName) by a principal, its first region, its first source network, and
//! a principal's first activity at all, after a learning period; and what it
//! did only once or twice before, a day or more earlier (rare). Each is
//! graded from chance, as insights are ([`Rates`]: Good-Turing's estimate of
//! how often such a thing shows up, against the kind's false-alarm budget).
//!
//! Counters keep, per principal and feature, the earliest [`KEEP_TIMES`]
//! occurrence times. That is mergeable in any order and exact for what matters:
//! how many times a feature was seen before a given moment, while that number
//! is small.

use super::aggregate::History;
use super::anomaly::{round4, Anomaly, AnomalyKind, NeverSeen, Novelty, Pivots};
use super::{chance, severity};
use crate::cloudtrail::Record;
use crate::context::short_arn;
use chrono::{DateTime, Duration, Utc};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Occurrence times kept per feature (the earliest).
pub const KEEP_TIMES: usize = 8;
/// Seen at most this many times before: rare.
pub const RARE_MAX: usize = 2;
/// The feature a principal's first activity is reported as.
pub const PRINCIPAL_FEATURE: &str = "principal (first activity)";

/// A never-seen principal's first hours: what it does then that takes
/// control ([`severity::takes_control`]) is reported and judged.
pub const NEWCOMER_HOURS: i64 = 6;

/// New principals taking control in their first hours this often (a day,
/// over the history before) is the organisation's routine: a pipeline
/// minting roles that read their secrets.
pub const ROUTINE_NEWCOMERS_PER_DAY: f64 = 0.5;

/// New principals of `counts` that took control within their first
/// [`NEWCOMER_HOURS`], before `at` (each first seen after its account
/// learned), a day of the history before `at`; `except` is not counted.
fn newcomers_taking_control(
    counts: &NoveltyCounts,
    history: &History,
    learning: Duration,
    first_event: DateTime<Utc>,
    at: DateTime<Utc>,
    except: &str,
) -> f64 {
    let watch = Duration::hours(NEWCOMER_HOURS);
    let like_it = counts
        .principals
        .iter()
        .filter(|(p, _)| p.as_str() != except)
        .filter(|(p, seen)| {
            let Some(&first) = seen.activity.times.first() else {
                return false;
            };
            first >= history.principal(p) + learning
                && first < at
                && seen.features.iter().any(|(f, s)| {
                    severity::takes_control(f)
                        && s.times
                            .first()
                            .is_some_and(|t| *t < first + watch && *t < at)
                })
        })
        .count();
    let days = ((at - first_event).num_seconds() as f64 / 86_400.0).max(1.0);
    like_it as f64 / days
}

/// The `network …` features of `seen` that are public networks.
fn public_networks(seen: &PrincipalSeen) -> Vec<&String> {
    seen.features
        .keys()
        .filter(|f| {
            f.strip_prefix("network ")
                .is_some_and(severity::public_address)
        })
        .collect()
}

/// Whether one of `networks` (features of principal `who`, first seen at
/// `first`) is one no other principal of the organisation used before
/// `first`: an intruder's own network. The new roles a CI pipeline mints
/// call from the pipeline's network, which the organisation knows.
fn networks_new_to_organisation(
    counts: &NoveltyCounts,
    who: &str,
    networks: &[&String],
    first: DateTime<Utc>,
) -> bool {
    networks.iter().any(|f| {
        !counts.principals.iter().any(|(other, theirs)| {
            other != who
                && theirs
                    .features
                    .get(f.as_str())
                    .and_then(|s| s.times.first())
                    .is_some_and(|t| *t < first)
        })
    })
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// The earliest occurrence times, sorted, at most [`KEEP_TIMES`].
    pub times: Vec<DateTime<Utc>>,
    pub count: u64,
    /// The CloudTrail event ID of the earliest occurrence: the record a
    /// new-activity finding points a responder to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_id: Option<String>,
}

impl Seen {
    fn add(&mut self, t: DateTime<Utc>) {
        self.count += 1;
        if self.times.len() < KEEP_TIMES || t < *self.times.last().unwrap_or(&t) {
            let at = self.times.partition_point(|x| *x <= t);
            self.times.insert(at, t);
            self.times.truncate(KEEP_TIMES);
        }
    }

    /// [`Seen::add`], keeping the event ID when it is the earliest.
    fn add_record(&mut self, t: DateTime<Utc>, id: Option<&str>) {
        if self.times.first().is_none_or(|first| t < *first) {
            self.first_id = id.map(str::to_owned);
        }
        self.add(t);
    }

    fn merge(&mut self, other: Seen) {
        let theirs_first = match (other.times.first(), self.times.first()) {
            (Some(theirs), Some(mine)) => theirs < mine,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if theirs_first {
            self.first_id = other.first_id;
        }
        self.count += other.count;
        self.times.extend(other.times);
        self.times.sort();
        self.times.truncate(KEEP_TIMES);
    }

    /// Occurrences strictly before `t`, exact while fewer than [`KEEP_TIMES`].
    fn before(&self, t: DateTime<Utc>) -> usize {
        self.times.partition_point(|x| *x < t)
    }
}

/// What one principal did, feature by feature.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrincipalSeen {
    pub activity: Seen,
    /// `call <source>:<name>`, `region <region>`, `network <a.b.c.0/24>`.
    pub features: FxHashMap<String, Seen>,
    /// The access keys and source addresses it used last (a few each,
    /// newest last): what a responder of its finding deactivates or blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
}

/// Access keys and addresses kept per principal.
const KEEP_LAST: usize = 3;

/// Moves `value` to the end of `list` (adding it), keeping the last
/// [`KEEP_LAST`].
fn keep_last(list: &mut Vec<String>, value: &str) {
    if list.last().is_some_and(|v| v == value) {
        return;
    }
    list.retain(|v| v != value);
    list.push(value.to_owned());
    if list.len() > KEEP_LAST {
        list.remove(0);
    }
}

/// The never-seen-before counters of every principal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoveltyCounts {
    pub principals: FxHashMap<String, PrincipalSeen>,
}

/// The /24 (IPv4) or /48 (IPv6) network of an address; None for the service
/// names CloudTrail writes in `sourceIPAddress`.
pub fn network_of(ip: &str) -> Option<String> {
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}

impl NoveltyCounts {
    pub fn record(&mut self, r: &Record) {
        // AWS acting for itself (services, service-linked roles) is not a
        // principal to learn: its activity is new whenever AWS adds a feature.
        let id = r.user_identity();
        if id.is_aws_itself() {
            return;
        }
        let Some(principal) = id.principal() else {
            return;
        };
        let t = r.event_time();
        // Look up by borrowed keys; allocate only on first sight.
        if !self.principals.contains_key(principal.as_ref()) {
            self.principals
                .insert(principal.clone().into_owned(), PrincipalSeen::default());
        }
        let Some(p) = self.principals.get_mut(principal.as_ref()) else {
            return;
        };
        p.activity.add(t);
        if let Some(k) = id.access_key_id {
            keep_last(&mut p.access_keys, k);
        }
        if let Some(ip) = r.source_ip_address() {
            keep_last(&mut p.source_ips, ip);
        }
        let event_id = r.event_id();
        let mut key = String::with_capacity(64);
        let mut feature = |parts: &[&str]| {
            key.clear();
            parts.iter().for_each(|x| key.push_str(x));
            match p.features.get_mut(key.as_str()) {
                Some(seen) => seen.add_record(t, event_id),
                None => {
                    let mut seen = Seen::default();
                    seen.add_record(t, event_id);
                    p.features.insert(key.clone(), seen);
                }
            }
        };
        feature(&["call ", r.event_source(), ":", r.event_name()]);
        if let Some(region) = r.aws_region() {
            feature(&["region ", region]);
        }
        if let Some(ip) = r.source_ip_address() {
            // An IPv4 address's /24 is a prefix of its text; no allocation.
            match ip
                .rfind('.')
                .filter(|_| ip.parse::<std::net::Ipv4Addr>().is_ok())
            {
                Some(dot) => feature(&["network ", &ip[..dot], ".0/24"]),
                None => {
                    if let Some(net) = network_of(ip) {
                        feature(&["network ", &net]);
                    }
                }
            }
        }
    }

    pub fn merge(&mut self, other: NoveltyCounts) {
        for (principal, theirs) in other.principals {
            let mine = self.principals.entry(principal).or_default();
            mine.activity.merge(theirs.activity);
            for k in &theirs.access_keys {
                keep_last(&mut mine.access_keys, k);
            }
            for ip in &theirs.source_ips {
                keep_last(&mut mine.source_ips, ip);
            }
            for (k, s) in theirs.features {
                mine.features.entry(k).or_default().merge(s);
            }
        }
    }
}

/// How never-seen-before detection runs.
#[derive(Debug, Clone, Copy)]
pub struct NoveltyOptions {
    /// Nothing is new during this span after the first event.
    pub learning: Duration,
    /// Report a principal's findings in an interval from this grade on (an
    /// established principal's first sensitive call or public network is
    /// reported whatever its grade).
    pub min_grade: f64,
    /// Findings are grouped per principal per interval of this length.
    pub interval: Duration,
    /// Chance findings a day the kind may give at its threshold grade,
    /// shared evenly by its [`Class`]es.
    pub budget_per_day: f64,
}

/// The classes of new activity, each with an even share of the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Call,
    Region,
    Network,
    /// A principal's first activity at all.
    Principal,
}

impl Class {
    /// Classes that share the budget.
    pub const COUNT: usize = 4;

    /// The class of a feature key (`call …`, `region …`, `network …`).
    pub fn of(feature: &str) -> Class {
        if feature.starts_with("region ") {
            Class::Region
        } else if feature.starts_with("network ") {
            Class::Network
        } else {
            Class::Call
        }
    }
}

/// Feature classes a principal has ([`Class::Call`], `Region`, `Network`).
const FEATURE_CLASSES: usize = 3;
/// Prior counts a finding can have: new (0) to [`RARE_MAX`].
const PRIORS: usize = RARE_MAX + 1;
/// Per feature class and prior count `k`: a rate a day.
type RateTable = [[f64; PRIORS]; FEATURE_CLASSES];

/// What chance alone gives new activity at one moment, by Good-Turing, from
/// the history before it. Of a principal's events, the share that are of a
/// feature seen `k` times so far is about `(k+1)·n(k+1) / n`, where `n(j)` is
/// how many of its features were seen `j` times; per day of its history,
/// that is the rate at which such features show up (for `k = 0`, new ones).
/// Summed over principals it is the organisation's rate, floored at half a
/// feature over its whole history (a quiet history is not proof of never).
#[derive(Debug, Clone, Default)]
pub struct Rates<'a> {
    /// Each tested principal's own rates: those active before learning ended.
    own: FxHashMap<&'a str, RateTable>,
    /// The rates summed over tested principals, each at least the floor.
    org: RateTable,
    /// New principals a day: principals seen once so far, per day of history
    /// (at least half a principal).
    principals: f64,
}

impl<'a> Rates<'a> {
    /// The rates at `at`, from what `counts` saw before it.
    pub fn at(
        counts: &'a NoveltyCounts,
        first_event: DateTime<Utc>,
        learned: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Rates<'a> {
        let days =
            |from: DateTime<Utc>| ((at - from).num_seconds() as f64 / 86_400.0).max(1.0 / 24.0);
        let mut out = Rates::default();
        for (principal, seen) in &counts.principals {
            let Some(&first) = seen.activity.times.first() else {
                continue;
            };
            if first >= learned {
                continue;
            }
            let mut n = [[0usize; PRIORS + 1]; FEATURE_CLASSES];
            for (feature, s) in &seen.features {
                let j = s.before(at);
                if (1..=PRIORS).contains(&j) {
                    n[Class::of(feature) as usize][j] += 1;
                }
            }
            let history = days(first);
            let mut own = RateTable::default();
            for (c, row) in own.iter_mut().enumerate() {
                for (k, rate) in row.iter_mut().enumerate() {
                    *rate = (k + 1) as f64 * n[c][k + 1] as f64 / history;
                    out.org[c][k] += *rate;
                }
            }
            out.own.insert(principal.as_str(), own);
        }
        let floor = 0.5 / days(first_event);
        out.org
            .iter_mut()
            .flatten()
            .for_each(|rate| *rate = rate.max(floor));
        let once = counts
            .principals
            .values()
            .filter(|p| p.activity.before(at) == 1)
            .count();
        out.principals = (once as f64).max(0.5) / days(first_event);
        out
    }

    /// Principals whose features are tested.
    pub fn tested(&self) -> usize {
        self.own.len()
    }

    /// New features a day, over the tested principals.
    pub fn features_per_day(&self) -> f64 {
        self.org.iter().map(|row| row[0]).sum()
    }

    /// New principals a day.
    pub fn principals_per_day(&self) -> f64 {
        self.principals
    }

    /// The grade of `principal` showing a feature of `class` seen `prior`
    /// times before: [`chance::grade`] of how many such findings a day chance
    /// would give if every tested principal were as likely to show one (the
    /// principal's own rate, but not under the organisation's average),
    /// against the class's share of `budget_per_day`. A principal that
    /// explores a lot grades its next new call low; a quiet one high.
    pub fn grade(&self, principal: &str, class: Class, prior: usize, budget_per_day: f64) -> f64 {
        let share = budget_per_day / Class::COUNT as f64;
        if class == Class::Principal {
            return chance::grade(self.principals, share);
        }
        let (c, k) = (class as usize, prior.min(RARE_MAX));
        let tested = self.tested().max(1) as f64;
        let own = self.own.get(principal).map_or(0.0, |r| r[c][k]);
        chance::grade(tested * own.max(self.org[c][k] / tested), share)
    }
}

/// One new or rare thing a principal did.
#[derive(Debug, Clone, PartialEq)]
struct Finding {
    at: DateTime<Utc>,
    feature: String,
    /// Times seen before.
    prior: usize,
    grade: f64,
}

/// What chance alone would make new activity report, averaged over the
/// evaluated days, each from the history before it ([`Rates`]), as a run
/// following along would see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoveltyChance {
    /// Principals active before learning ended, whose features are tested.
    pub tested: usize,
    /// New features of tested principals expected a day.
    pub features_per_day: f64,
    /// New principals expected a day.
    pub principals_per_day: f64,
}

impl NoveltyChance {
    /// Findings a day chance alone would report (before the grouping per
    /// interval, which only merges them).
    pub fn per_day(&self) -> f64 {
        self.features_per_day + self.principals_per_day
    }
}

/// [`NoveltyChance`] over the days from the end of learning to `last_event`.
pub fn chance(
    counts: &NoveltyCounts,
    first_event: DateTime<Utc>,
    last_event: DateTime<Utc>,
    options: &NoveltyOptions,
) -> NoveltyChance {
    let learned = first_event + options.learning;
    let mut days: Vec<DateTime<Utc>> =
        std::iter::successors(Some(learned), |d| Some(*d + Duration::days(1)))
            .take_while(|d| *d < last_event)
            .collect();
    if days.is_empty() {
        days.push(learned);
    }
    let mut out = NoveltyChance {
        tested: 0,
        features_per_day: 0.0,
        principals_per_day: 0.0,
    };
    for &at in &days {
        let rates = Rates::at(counts, first_event, learned, at);
        out.tested = rates.tested();
        out.features_per_day += rates.features_per_day();
        out.principals_per_day += rates.principals_per_day();
    }
    out.features_per_day /= days.len() as f64;
    out.principals_per_day /= days.len() as f64;
    out
}

/// Reports, per principal and interval, what it did for the first time (or
/// rarely) with a time in `[from, to)`, after the learning period. Each
/// feature is graded from chance ([`Rates::grade`], from the history before
/// its day); an interval is reported from `min_grade` on, or when an
/// established principal did something sensitive for the first time
/// ([`severity::sensitive_feature`]), which needs no baseline to matter.
/// The sensitive kind of call a feature is (`iam`, `logging`), if any.
fn sensitive_kind(feature: &str) -> Option<String> {
    match severity::sensitive_feature(feature)? {
        severity::FirstTime::Sensitive(kind) => Some(kind.word().to_owned()),
        severity::FirstTime::PublicNetwork => None,
    }
}

pub fn detect(
    counts: &NoveltyCounts,
    history: impl Into<History>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    options: &NoveltyOptions,
) -> Vec<Anomaly> {
    let history = history.into();
    let first_event = history.first;
    let learned = first_event + options.learning;
    let run_from = from;
    let from = from.max(learned);
    if from >= to {
        return Vec::new();
    }
    let secs = options.interval.num_seconds().max(60);
    // Rates at the start of each day (or the end of learning), as needed.
    let mut rates: FxHashMap<DateTime<Utc>, Rates> = FxHashMap::default();
    let mut grade = |principal: &str, at: DateTime<Utc>, class: Class, prior: usize| {
        let day = at
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map_or(at, |d| d.and_utc())
            .max(learned);
        rates
            .entry(day)
            .or_insert_with(|| Rates::at(counts, first_event, learned, day))
            .grade(principal, class, prior, options.budget_per_day)
    };
    let mut out = Vec::new();
    for (principal, seen) in &counts.principals {
        // Each principal learns from when its own account started.
        let learned = history.principal(principal) + options.learning;
        let from = run_from.max(learned);
        if from >= to {
            continue;
        }
        let mut findings: Vec<Finding> = Vec::new();
        let first_activity = seen.activity.times.first().copied();
        // Established: seen at least KEEP_TIMES times while learning.
        let established = seen.activity.before(learned) >= KEEP_TIMES;
        // Never seen before its account learned: its first activity, and
        // what it did in its first hours that takes control.
        let newcomer = first_activity.filter(|t| *t >= learned);
        if let Some(first) = newcomer {
            if first >= from && first < to {
                findings.push(Finding {
                    at: first,
                    feature: PRINCIPAL_FEATURE.into(),
                    prior: 0,
                    grade: grade(principal, first, Class::Principal, 0),
                });
            }
            let watch = first + Duration::hours(NEWCOMER_HOURS);
            for (feature, s) in &seen.features {
                let Some(&at) = s.times.first() else {
                    continue;
                };
                if severity::takes_control(feature) && at < watch && at >= from && at < to {
                    findings.push(Finding {
                        at,
                        feature: feature.clone(),
                        prior: 0,
                        grade: grade(principal, at, Class::Principal, 0),
                    });
                }
            }
        } else if first_activity.is_some_and(|t| t < learned) {
            for (feature, s) in &seen.features {
                // The first occurrence in the window that was new or rare then.
                let hit = s
                    .times
                    .iter()
                    .enumerate()
                    .find(|(i, t)| **t >= from && **t < to && *i <= RARE_MAX);
                if let Some((prior, &at)) = hit {
                    // Rare only when the earlier sightings were at least a day before.
                    if prior > 0 && at - s.times[prior - 1] < Duration::days(1) {
                        continue;
                    }
                    findings.push(Finding {
                        at,
                        feature: feature.clone(),
                        prior,
                        grade: grade(principal, at, Class::of(feature), prior),
                    });
                }
            }
        }
        // One anomaly per principal per interval.
        let mut by_interval: BTreeMap<i64, Vec<Finding>> = BTreeMap::new();
        for f in findings {
            by_interval
                .entry(f.at.timestamp().div_euclid(secs))
                .or_default()
                .push(f);
        }
        for (bucket, mut list) in by_interval {
            list.sort_by(|a, b| b.grade.total_cmp(&a.grade).then(a.feature.cmp(&b.feature)));
            let grade = list[0].grade;
            let start = DateTime::from_timestamp(bucket * secs, 0).unwrap_or(from);
            // The sensitive kinds of call it made before this interval: its job.
            let earliest = list.iter().map(|f| f.at).min().unwrap_or(start);
            let mut practised: Vec<String> = seen
                .features
                .iter()
                .filter(|(_, s)| s.times.first().is_some_and(|t| *t < earliest))
                .filter_map(|(feature, _)| sensitive_kind(feature))
                .collect();
            practised.sort();
            practised.dedup();
            // A first sensitive call of a kind it never made counts
            // whatever its grade; anything else only from `min_grade`.
            let first_time_sensitive = established
                && list.iter().any(|f| {
                    f.prior == 0
                        && severity::sensitive_feature(&f.feature).is_some()
                        && sensitive_kind(&f.feature).is_none_or(|k| !practised.contains(&k))
                });
            let controls: Vec<String> = newcomer
                .map(|_| {
                    list.iter()
                        .filter(|f| severity::takes_control(&f.feature))
                        .map(|f| f.feature.clone())
                        .collect()
                })
                .unwrap_or_default();
            if grade < options.min_grade && !first_time_sensitive && controls.is_empty() {
                continue;
            }
            let never_seen = newcomer.map(|first| {
                let public = public_networks(seen);
                NeverSeen {
                    first_seen: first,
                    like_it_per_day: round4(newcomers_taking_control(
                        counts,
                        &history,
                        options.learning,
                        first_event,
                        first,
                        principal,
                    )),
                    controls,
                    public: !public.is_empty(),
                    strange_network: networks_new_to_organisation(
                        counts, principal, &public, first,
                    ),
                }
            });
            // It could page at the end of the minute of its first finding.
            let first_seen = list.iter().map(|f| f.at).min().map_or(start, |at| {
                DateTime::from_timestamp((at.timestamp().div_euclid(60) + 1) * 60, 0).unwrap_or(at)
            });
            let novelty = Novelty {
                practised,
                new: list
                    .iter()
                    .filter(|f| f.prior == 0)
                    .map(|f| f.feature.clone())
                    .collect(),
                rare: list
                    .iter()
                    .filter(|f| f.prior > 0)
                    .map(|f| f.feature.clone())
                    .collect(),
                established,
                never_seen,
            };
            let rare: Vec<String> = list
                .iter()
                .filter(|f| f.prior > 0)
                .map(|f| format!("{} (seen {}× before)", f.feature, f.prior))
                .collect();
            let mut summary = format!("{} did", short_arn(principal));
            if !novelty.new.is_empty() {
                summary.push_str(&format!(" for the first time: {}", novelty.new.join(", ")));
            }
            if !rare.is_empty() {
                summary.push_str(&format!(
                    "{} rarely: {}",
                    if novelty.new.is_empty() { "" } else { ";" },
                    rare.join(", ")
                ));
            }
            let pivots = Pivots {
                access_key_ids: seen.access_keys.clone(),
                source_ips: seen.source_ips.clone(),
                regions: (list.iter())
                    .filter_map(|f| f.feature.strip_prefix("region "))
                    .map(str::to_owned)
                    .collect(),
                accounts: crate::context::account_of(principal)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                event_ids: (list.iter())
                    .filter(|f| f.prior == 0)
                    .filter_map(|f| seen.features.get(&f.feature)?.first_id.clone())
                    .take(crate::context::EVENT_IDS)
                    .collect(),
                events: list.len() as u64,
            };
            out.push(Anomaly {
                detector: if novelty.new.is_empty() {
                    "rare-activity"
                } else {
                    "new-activity"
                }
                .into(),
                kind: AnomalyKind::NewEvent,
                entity: Some([("principal".to_string(), principal.clone())].into()),
                start,
                end: start + Duration::seconds(secs),
                grade: round4(grade),
                confidence: if established { 1.0 } else { 0.5 },
                actual: list.len() as f64,
                expected: 0.0,
                score: round4(list.iter().map(|f| f.grade).sum()),
                summary,
                context: None,
                incident: None,
                subjects: vec![principal.clone()],
                late: false,
                partial: false,
                detected: first_seen,
                severity: None,
                page: None,
                novelty: Some(novelty),
                attack: Vec::new(),
                pivots,
            });
        }
    }
    out.sort_by(|a, b| (a.start, &a.summary).cmp(&(b.start, &b.summary)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Severity;
    use serde_json::json;

    fn rec(t: &str, who: &str, name: &str, ip: &str, region: &str) -> Record<'static> {
        Record::from_value(
            json!({"eventTime": t, "eventSource": "iam.amazonaws.com", "eventName": name,
            "awsRegion": region, "sourceIPAddress": ip,
            "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::1:user/{who}")}}),
        )
        .unwrap()
    }

    fn opts() -> NoveltyOptions {
        NoveltyOptions {
            learning: Duration::days(1),
            min_grade: 0.5,
            interval: Duration::minutes(10),
            budget_per_day: 0.2,
        }
    }

    /// [`chance::grade`] against one class's share of the 0.2 budget.
    fn graded(per_day: f64) -> f64 {
        chance::grade(per_day, 0.2 / Class::COUNT as f64)
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Findings over the two days from 2026-01-05, the first day learning.
    fn find(c: &NoveltyCounts, o: &NoveltyOptions) -> Vec<Anomaly> {
        detect(
            c,
            t("2026-01-05T00:00:00Z"),
            t("2026-01-05T00:00:00Z"),
            t("2026-01-07T00:00:00Z"),
            o,
        )
    }

    /// bob is busy on day 1 with two calls from one network in one region.
    fn learned() -> NoveltyCounts {
        let mut c = NoveltyCounts::default();
        for h in 0..24 {
            c.record(&rec(
                &format!("2026-01-05T{h:02}:00:00Z"),
                "bob",
                "GetUser",
                "198.51.100.11",
                "us-east-1",
            ));
            c.record(&rec(
                &format!("2026-01-05T{h:02}:30:00Z"),
                "bob",
                "ListRoles",
                "198.51.100.11",
                "us-east-1",
            ));
        }
        c.record(&rec(
            "2026-01-05T10:00:00Z",
            "bob",
            "ListUsers",
            "198.51.100.11",
            "us-east-1",
        ));
        c
    }

    /// A never-seen user of an established account who, in its first
    /// hours, attaches a policy pages; in an organisation whose new principals do such things every
    /// day (a pipeline minting roles that read their secrets), it does not.
    #[test]
    fn a_never_seen_principal_taking_control_pages_unless_that_is_routine() {
        let newcomer = |c: &mut NoveltyCounts, day: u32, who: &str, ip: &str| {
            let at = |h: u32| format!("2026-01-{day:02}T{h:02}:10:00Z");
            c.record(&rec(&at(3), who, "ListUsers", ip, "us-east-1"));
            c.record(&rec(&at(5), who, "AttachUserPolicy", ip, "us-east-1"));
            // Past its first hours: not its first-hours conduct.
            c.record(&rec(&at(12), who, "PutUserPolicy", ip, "us-east-1"));
        };
        let judged = |c: &NoveltyCounts, who: &str| -> Vec<Anomaly> {
            let mut found: Vec<Anomaly> = detect(
                c,
                t("2026-01-05T00:00:00Z"),
                t("2026-01-05T00:00:00Z"),
                t("2026-01-12T00:00:00Z"),
                &opts(),
            )
            .into_iter()
            .filter(|a| a.subjects[0].ends_with(who))
            .collect();
            severity::incidents(&mut found, Severity::Medium);
            found
        };
        let mut quiet = learned();
        newcomer(&mut quiet, 9, "eve", "203.0.113.66");
        // Its first-hours IAM change, reported, and what is known of it.
        let taking = |found: &[Anomaly]| -> (Anomaly, NeverSeen) {
            let a = found
                .iter()
                .find(|a| a.summary.contains("AttachUserPolicy"))
                .expect("its first-hours IAM change is reported")
                .clone();
            let seen = a
                .novelty
                .as_ref()
                .and_then(|n| n.never_seen.clone())
                .unwrap();
            (a, seen)
        };
        let eve = judged(&quiet, "eve");
        let (taken, seen) = taking(&eve);
        assert_eq!(seen.controls, ["call iam.amazonaws.com:AttachUserPolicy"]);
        assert_eq!(seen.like_it_per_day, 0.0);
        assert_eq!(taken.severity, Some(Severity::High), "{taken:#?}");
        assert_eq!(taken.page, Some(true));
        assert!(eve.iter().all(|a| !a.summary.contains("PutUserPolicy")));
        // A rotation function's new role, inside the network: reported, not paged.
        newcomer(&mut quiet, 10, "rotation", "10.0.60.4");
        let (inside, seen) = taking(&judged(&quiet, "rotation"));
        assert!(!seen.public);
        assert_ne!(inside.page, Some(true), "{inside:#?}");
        // Every day a new deploy role that changes IAM in its first hours.
        let mut busy = learned();
        for day in 6..=9 {
            newcomer(&mut busy, day, &format!("deploy-{day}"), "203.0.113.66");
        }
        let (taken, seen) = taking(&judged(&busy, "deploy-9"));
        assert!(
            seen.like_it_per_day >= ROUTINE_NEWCOMERS_PER_DAY,
            "{seen:?}"
        );
        assert_ne!(taken.page, Some(true), "{taken:#?}");
        assert!(!seen.strange_network, "the deploy roles' network: {seen:?}");
        // There, a newcomer from a network nobody in the organisation
        // used, sending commands to instances (nothing IAM): it pages.
        let at = |h: u32| format!("2026-01-10T{h:02}:10:00Z");
        let ssm = |t: &str, name: &str| {
            Record::from_value(json!({"eventTime": t, "eventSource": "ssm.amazonaws.com",
                "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "198.18.7.9",
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/svc-sync"}}))
            .unwrap()
        };
        busy.record(&ssm(&at(3), "DescribeInstanceInformation"));
        busy.record(&ssm(&at(4), "SendCommand"));
        let found = judged(&busy, "svc-sync");
        let sent = found
            .iter()
            .find(|a| a.summary.contains("SendCommand"))
            .expect("its first-hours command is reported");
        let seen = sent
            .novelty
            .as_ref()
            .and_then(|n| n.never_seen.clone())
            .unwrap();
        assert!(seen.strange_network && seen.like_it_per_day >= ROUTINE_NEWCOMERS_PER_DAY);
        assert_eq!(sent.page, Some(true), "{sent:#?}");
    }

    #[test]
    fn chance_counts_what_each_principal_saw_once_per_day_of_its_history() {
        let mut c = learned();
        // alice once while learning, 15 hours before it ended: her call,
        // region and network were each seen once. carol only after.
        c.record(&rec(
            "2026-01-05T09:00:00Z",
            "alice",
            "GetUser",
            "198.51.100.12",
            "us-east-1",
        ));
        c.record(&rec(
            "2026-01-06T09:00:00Z",
            "carol",
            "GetUser",
            "198.51.100.12",
            "us-east-1",
        ));
        // bob's ListUsers again after learning: still once before the day.
        c.record(&rec(
            "2026-01-06T11:00:00Z",
            "bob",
            "ListUsers",
            "198.51.100.11",
            "us-east-1",
        ));
        let chance = chance(
            &c,
            t("2026-01-05T00:00:00Z"),
            t("2026-01-06T11:00:00Z"),
            &opts(),
        );
        // bob: ListUsers once in one day. alice: three features once in 15 h.
        let alice = 1.0 / (15.0 / 24.0);
        assert_eq!(chance.tested, 2, "bob and alice were active while learning");
        assert!(
            (chance.features_per_day - (1.0 + 3.0 * alice)).abs() < 1e-9,
            "{chance:?}"
        );
        assert_eq!(chance.principals_per_day, 1.0, "alice, once in a day");
        assert!((chance.per_day() - (2.0 + 3.0 * alice)).abs() < 1e-9);
    }

    #[test]
    fn chance_of_each_day_comes_from_the_history_before_it() {
        let mut c = learned();
        // A nightly call: once by the end of learning, twice a day later.
        for day in 5..=7 {
            c.record(&rec(
                &format!("2026-01-0{day}T23:00:00Z"),
                "bob",
                "GetAccountSummary",
                "198.51.100.11",
                "us-east-1",
            ));
        }
        c.record(&rec(
            "2026-01-08T01:00:00Z",
            "bob",
            "GetUser",
            "198.51.100.11",
            "us-east-1",
        ));
        let chance = chance(
            &c,
            t("2026-01-05T00:00:00Z"),
            t("2026-01-08T01:00:00Z"),
            &opts(),
        );
        // Each class is at least half a feature over the history (h days):
        // bob's one region and one network were never new, so they add
        // 0.5/h each. Day 2: ListUsers and the nightly call once in one day.
        // Day 3: only ListUsers once in two days (0.5, at the floor). Day 4:
        // once in three.
        let day = |calls: f64, h: f64| (calls / h).max(0.5 / h) + 2.0 * 0.5 / h;
        let want = (day(2.0, 1.0) + day(1.0, 2.0) + day(1.0, 3.0)) / 3.0;
        assert!(
            (chance.features_per_day - want).abs() < 1e-9,
            "{chance:?} against {want}"
        );
    }

    #[test]
    fn a_quiet_principal_grades_its_first_call_higher_than_one_that_explores() {
        let mut c = learned();
        // alice, as busy as bob while learning, tried something new each hour.
        for h in 0..24 {
            c.record(&rec(
                &format!("2026-01-05T{h:02}:00:00Z"),
                "alice",
                &format!("Explore{h}"),
                "198.51.100.11",
                "us-east-1",
            ));
        }
        let rates = Rates::at(
            &c,
            t("2026-01-05T00:00:00Z"),
            t("2026-01-06T00:00:00Z"),
            t("2026-01-06T00:00:00Z"),
        );
        let (bob, alice) = ("arn:aws:iam::1:user/bob", "arn:aws:iam::1:user/alice");
        // alice's 24 singletons a day are the organisation's 25 (with bob's
        // ListUsers); bob is judged at the average of two principals.
        assert_eq!(rates.grade(alice, Class::Call, 0, 0.2), graded(2.0 * 24.0));
        assert_eq!(rates.grade(bob, Class::Call, 0, 0.2), graded(25.0));
        assert!(rates.grade(bob, Class::Call, 0, 0.2) > rates.grade(alice, Class::Call, 0, 0.2));
        // Neither ever had a new region: the floor, half a region in a day.
        assert_eq!(rates.grade(bob, Class::Region, 0, 0.2), graded(0.5));
        // No feature was seen exactly twice: rare ones are at the floor too.
        assert_eq!(rates.grade(bob, Class::Call, 1, 0.2), graded(0.5));
        // A new principal: none was seen once, so half a principal a day.
        assert_eq!(
            rates.grade("mallory", Class::Principal, 0, 0.2),
            graded(0.5)
        );
    }

    /// A flat organisation, as insights' flat Poisson series: `principals`
    /// each make a never-seen call at `rate` a day (at random minutes) among
    /// their usual ones, for `days`. Returns new-activity findings a day
    /// after learning: at grade 0.7 or more, and at any grade.
    fn chance_findings_a_day(principals: usize, rate: f64, days: i64, seed: u64) -> (f64, f64) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let start = t("2026-01-05T00:00:00Z");
        let mut c = NoveltyCounts::default();
        let mut fresh = 0;
        for p in 0..principals {
            let who = format!("p{p}");
            for m in (0..days * 1440).step_by(30) {
                let at = (start + Duration::minutes(m)).to_rfc3339();
                c.record(&rec(&at, &who, "GetUser", "10.0.0.1", "us-east-1"));
                // Poisson arrivals: each half-hour, a new call with chance rate/48.
                if rng.random_bool((rate / 48.0).min(1.0)) {
                    fresh += 1;
                    let at = (start + Duration::minutes(m + rng.random_range(0..30))).to_rfc3339();
                    c.record(&rec(
                        &at,
                        &who,
                        &format!("Call{fresh}"),
                        "10.0.0.1",
                        "us-east-1",
                    ));
                }
            }
        }
        let options = NoveltyOptions {
            min_grade: 0.0,
            ..opts()
        };
        let found = detect(&c, start, start, start + Duration::days(days), &options);
        let graded = found.iter().filter(|a| a.grade >= 0.7).count();
        let evaluated = (days - 1) as f64;
        (graded as f64 / evaluated, found.len() as f64 / evaluated)
    }

    #[test]
    fn chance_alone_gives_no_more_new_activity_than_its_budget_over_a_month() {
        // From a principal's new call every 100 days to two a day; five seeds
        // a rate. The whole kind's budget is 0.2 a day; only calls are new
        // here, so their share, 0.05 a day, is what chance may spend.
        for rate in [0.01, 0.05, 0.2, 1.0, 2.0] {
            let (mut graded, mut all) = (0.0, 0.0);
            for seed in 1..=5 {
                let (g, a) = chance_findings_a_day(10, rate, 30, seed);
                graded += g / 5.0;
                all += a / 5.0;
            }
            assert!(
                graded <= 0.05,
                "{graded} chance findings a day at grade 0.7 at {rate} new calls a principal a day"
            );
            // What a fixed grade for new activity would have paged: every new call.
            if rate >= 0.05 {
                assert!(all > 0.2, "{all} new calls a day at {rate}");
            }
        }
    }

    #[test]
    fn a_new_call_network_and_region_are_one_finding_per_interval() {
        let mut c = learned();
        c.record(&rec(
            "2026-01-06T14:21:00Z",
            "bob",
            "CreateAccessKey",
            "203.0.113.66",
            "ap-southeast-1",
        ));
        c.record(&rec(
            "2026-01-06T14:22:00Z",
            "bob",
            "GetUser",
            "198.51.100.11",
            "us-east-1",
        ));
        let found = find(&c, &opts());
        assert_eq!(found.len(), 1, "{found:#?}");
        let a = &found[0];
        assert_eq!(a.kind, AnomalyKind::NewEvent);
        assert_eq!(a.start, t("2026-01-06T14:20:00Z"));
        // bob's one singleton (ListUsers) in a day makes new calls common
        // (a day's worth, twenty times the call class's 0.05 share of the
        // budget); no new region or network in a day is the floor, half one.
        assert_eq!(a.grade, graded(0.5));
        assert_eq!(a.score, round4(graded(1.0) + 2.0 * graded(0.5)));
        assert_eq!(a.actual, 3.0);
        let novelty = a.novelty.as_ref().unwrap();
        assert!(novelty.established && novelty.rare.is_empty());
        // Most surprising first.
        assert_eq!(
            novelty.new,
            [
                "network 203.0.113.0/24",
                "region ap-southeast-1",
                "call iam.amazonaws.com:CreateAccessKey",
            ]
        );
        for f in [
            "call iam.amazonaws.com:CreateAccessKey",
            "network 203.0.113.0/24",
            "region ap-southeast-1",
        ] {
            assert!(a.summary.contains(f), "{}", a.summary);
        }
    }

    #[test]
    fn nothing_is_new_during_learning_and_known_things_are_not_new() {
        let c = learned();
        assert!(detect(
            &c,
            t("2026-01-05T00:00:00Z"),
            t("2026-01-05T00:00:00Z"),
            t("2026-01-07T00:00:00Z"),
            &opts()
        )
        .is_empty());
    }

    #[test]
    fn rare_is_graded_by_how_often_features_seen_once_come_back() {
        let mut c = learned();
        // ListUsers was seen once, a day earlier.
        c.record(&rec(
            "2026-01-06T11:00:00Z",
            "bob",
            "ListUsers",
            "198.51.100.11",
            "us-east-1",
        ));
        let found = find(&c, &opts());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].detector, "rare-activity");
        // Good-Turing: features seen once come back at 2·n(2) a day, none
        // here, so at the floor of half one a day.
        assert_eq!(found[0].grade, graded(0.5));
        assert!(
            found[0]
                .summary
                .contains("rarely: call iam.amazonaws.com:ListUsers (seen 1× before)"),
            "{}",
            found[0].summary
        );
        let strict = NoveltyOptions {
            min_grade: 0.7,
            ..opts()
        };
        assert!(find(&c, &strict).is_empty());
    }

    #[test]
    fn a_first_sensitive_call_or_public_network_is_reported_whatever_its_grade() {
        let strict = NoveltyOptions {
            min_grade: 0.7,
            ..opts()
        };
        for (name, ip, reported) in [
            ("AttachUserPolicy", "198.51.100.11", true),
            ("StopLogging", "198.51.100.11", true),
            ("GetAccountSummary", "203.0.113.66", true),
            ("GetAccountSummary", "10.9.9.9", false),
            ("ListPolicies", "198.51.100.11", false),
        ] {
            let mut c = learned();
            c.record(&rec("2026-01-06T14:21:00Z", "bob", name, ip, "us-east-1"));
            let found = find(&c, &strict);
            assert_eq!(
                found.len(),
                reported as usize,
                "{name} from {ip}: {found:#?}"
            );
            assert!(found.iter().all(|a| a.grade < 0.7));
        }
    }

    #[test]
    fn a_new_principal_is_one_finding_and_services_are_ignored() {
        let mut c = learned();
        c.record(&rec(
            "2026-01-06T09:41:00Z",
            "mallory",
            "GetUser",
            "203.0.113.9",
            "us-east-1",
        ));
        c.record(&rec(
            "2026-01-06T09:42:00Z",
            "mallory",
            "ListUsers",
            "203.0.113.9",
            "us-east-1",
        ));
        // AWS acting for itself, in the three shapes real deliveries show: a
        // typed service, a bare `invokedBy` (Secrets Manager's scheduled
        // deletions) and a service-linked role's session.
        for identity in [
            json!({"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}),
            json!({"accountId": "1", "invokedBy": "secretsmanager.amazonaws.com"}),
            json!({"type": "AssumedRole", "accountId": "1",
                "arn": "arn:aws:sts::1:assumed-role/AWSServiceRoleForRDS/RDS"}),
        ] {
            let svc = Record::from_value(json!({"eventTime": "2026-01-06T09:41:00Z",
                "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
                "userIdentity": identity}))
            .unwrap();
            c.record(&svc);
        }
        let found = find(&c, &opts());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0]
                .summary
                .contains("user/mallory@1 did for the first time: principal (first activity)"),
            "{}",
            found[0].summary
        );
    }

    #[test]
    fn counters_merge_in_any_order() {
        let mut a = NoveltyCounts::default();
        let mut b = NoveltyCounts::default();
        let mut all = NoveltyCounts::default();
        for (i, h) in (0..20).rev().enumerate() {
            let r = rec(
                &format!("2026-01-05T{h:02}:00:00Z"),
                "bob",
                "GetUser",
                "10.1.2.3",
                "us-east-1",
            );
            if i % 2 == 0 {
                a.record(&r)
            } else {
                b.record(&r)
            }
            all.record(&r);
        }
        b.merge(a);
        let bob = "arn:aws:iam::1:user/bob";
        assert_eq!(b.principals[bob].activity, all.principals[bob].activity);
        assert_eq!(b.principals[bob].activity.times.len(), KEEP_TIMES);
        assert_eq!(
            b.principals[bob].activity.times[0],
            t("2026-01-05T00:00:00Z")
        );
        assert_eq!(network_of("10.1.2.3").as_deref(), Some("10.1.2.0/24"));
        assert_eq!(network_of("AWS Internal"), None);
    }
}
