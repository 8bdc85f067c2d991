//! Never seen before, as Unomaly does: the first API call (eventSource and
//! eventName) by a principal, its first region, its first source network, and
//! a principal's first activity at all, after a learning period. Rare, not
//! only new, gets a grade.
//!
//! Counters keep, per principal and feature, the earliest [`KEEP_TIMES`]
//! occurrence times. That is mergeable in any order and exact for what matters:
//! how many times a feature was seen before a given moment, while that number
//! is small.

use super::anomaly::{round4, Anomaly, AnomalyKind};
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// The earliest occurrence times, sorted, at most [`KEEP_TIMES`].
    pub times: Vec<DateTime<Utc>>,
    pub count: u64,
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

    fn merge(&mut self, other: Seen) {
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
        let mut key = String::with_capacity(64);
        let mut feature = |parts: &[&str]| {
            key.clear();
            parts.iter().for_each(|x| key.push_str(x));
            match p.features.get_mut(key.as_str()) {
                Some(seen) => seen.add(t),
                None => {
                    let mut seen = Seen::default();
                    seen.add(t);
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
    /// Report a principal's findings in an interval from this grade on.
    pub min_grade: f64,
    /// Findings are grouped per principal per interval of this length.
    pub interval: Duration,
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

fn feature_grade(feature: &str, prior: usize, established: bool) -> f64 {
    let base = if feature.starts_with("network ") {
        0.8
    } else {
        1.0
    };
    let rarity = match prior {
        0 => 1.0,
        1 => 0.6,
        _ => 0.5,
    };
    base * rarity * if established { 1.0 } else { 0.6 }
}

/// What chance alone would make new activity report, by Good-Turing: the
/// share of a principal's events that are of a never-seen feature is about
/// the share of its features seen exactly once so far, so the new features
/// it shows in a day are about the features it showed once so far, per day
/// of its history. Likewise, principals seen once so far, per day, is the
/// rate of new principals. Each evaluated day is estimated from the history
/// before it, as a run following along would, and the days averaged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoveltyChance {
    /// Established principals (seen [`KEEP_TIMES`] times while learning),
    /// whose new features are reported.
    pub established: usize,
    /// New features of established principals expected a day.
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
    let established: Vec<&PrincipalSeen> = counts
        .principals
        .values()
        .filter(|p| p.activity.times.first().is_some_and(|t| *t < learned))
        .filter(|p| p.activity.before(learned) >= KEEP_TIMES)
        .collect();
    let mut out = NoveltyChance {
        established: established.len(),
        features_per_day: 0.0,
        principals_per_day: 0.0,
    };
    for &at in &days {
        let history =
            |from: DateTime<Utc>| ((at - from).num_seconds() as f64 / 86_400.0).max(1.0 / 24.0);
        // Seen exactly once before `at` (the kept times are the earliest).
        let once = |s: &Seen| {
            s.times.first().is_some_and(|t| *t < at) && s.times.get(1).is_none_or(|t| *t >= at)
        };
        for p in &established {
            let singletons = p.features.values().filter(|s| once(s)).count();
            out.features_per_day += singletons as f64 / history(p.activity.times[0]);
        }
        let principals_once = counts
            .principals
            .values()
            .filter(|p| once(&p.activity))
            .count();
        out.principals_per_day += principals_once as f64 / history(first_event);
    }
    out.features_per_day /= days.len() as f64;
    out.principals_per_day /= days.len() as f64;
    out
}

/// Reports, per principal and interval, what it did for the first time (or
/// rarely) with a time in `[from, to)`, after the learning period.
pub fn detect(
    counts: &NoveltyCounts,
    first_event: DateTime<Utc>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    options: &NoveltyOptions,
) -> Vec<Anomaly> {
    let learned = first_event + options.learning;
    let from = from.max(learned);
    if from >= to {
        return Vec::new();
    }
    let secs = options.interval.num_seconds().max(60);
    let mut out = Vec::new();
    for (principal, seen) in &counts.principals {
        let mut findings: Vec<Finding> = Vec::new();
        let first_activity = seen.activity.times.first().copied();
        if first_activity.is_some_and(|t| t >= from && t < to) {
            findings.push(Finding {
                at: first_activity.unwrap_or(from),
                feature: "principal (first activity)".into(),
                prior: 0,
                grade: 0.8,
            });
        } else if first_activity.is_some_and(|t| t < learned) {
            // Established: seen at least KEEP_TIMES times while learning. What a
            // principal barely seen does next is less surprising.
            let established = seen.activity.before(learned) >= KEEP_TIMES;
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
                        grade: feature_grade(feature, prior, established),
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
            if grade < options.min_grade {
                continue;
            }
            let start = DateTime::from_timestamp(bucket * secs, 0).unwrap_or(from);
            // It could page at the end of the minute of its first finding.
            let first_seen = list.iter().map(|f| f.at).min().map_or(start, |at| {
                DateTime::from_timestamp((at.timestamp().div_euclid(60) + 1) * 60, 0).unwrap_or(at)
            });
            let new: Vec<&str> = list
                .iter()
                .filter(|f| f.prior == 0)
                .map(|f| f.feature.as_str())
                .collect();
            let rare: Vec<String> = list
                .iter()
                .filter(|f| f.prior > 0)
                .map(|f| format!("{} (seen {}× before)", f.feature, f.prior))
                .collect();
            let mut summary = format!("{} did", short_arn(principal));
            if !new.is_empty() {
                summary.push_str(&format!(" for the first time: {}", new.join(", ")));
            }
            if !rare.is_empty() {
                summary.push_str(&format!(
                    "{} rarely: {}",
                    if new.is_empty() { "" } else { ";" },
                    rare.join(", ")
                ));
            }
            out.push(Anomaly {
                detector: if new.is_empty() {
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
                confidence: if seen.activity.before(learned) >= KEEP_TIMES {
                    1.0
                } else {
                    0.5
                },
                actual: list.len() as f64,
                expected: 0.0,
                score: round4(list.iter().map(|f| f.grade).sum()),
                summary,
                context: None,
                incident: None,
                subjects: vec![principal.clone()],
                late: false,
                detected: first_seen,
                severity: None,
                page: None,
            });
        }
    }
    out.sort_by(|a, b| (a.start, &a.summary).cmp(&(b.start, &b.summary)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
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
        }
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

    #[test]
    fn chance_counts_what_was_seen_once_while_learning_per_learning_day() {
        let mut c = learned();
        // alice once while learning: one new principal a day. carol only after.
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
        // bob's ListUsers again after learning: still once while learning.
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
        assert_eq!(
            chance,
            NoveltyChance {
                established: 1,
                features_per_day: 1.0,
                principals_per_day: 1.0,
            },
            "bob's only singleton is ListUsers; alice is not established"
        );
        assert_eq!(chance.per_day(), 2.0);
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
        // Day 2: ListUsers and the nightly call once in one day: 2 a day.
        // Day 3: only ListUsers once in two days: 0.5. Day 4: once in three.
        let want = (2.0 + 0.5 + 1.0 / 3.0) / 3.0;
        assert!(
            (chance.features_per_day - want).abs() < 1e-9,
            "{chance:?} against {want}"
        );
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
        assert_eq!(a.grade, 1.0);
        assert_eq!(a.actual, 3.0);
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
    fn rare_gets_a_lower_grade_than_new() {
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
        assert_eq!(found[0].grade, 0.6);
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
