//! Rule findings: every record a rule file matches ([`crate::detector::Rule`]),
//! kept as a [`RuleHit`] while aggregating and reported as an anomaly of
//! kind `rule` at the minute it happened, with the rule's severity. Hits of
//! one rule by one principal on one target within a minute are one finding.

use super::anomaly::{Anomaly, AnomalyKind, Pivots, Severity};
use crate::cloudtrail::Record;
use crate::context::short_arn;
use crate::detector::{Rule, Scope};
use chrono::{DateTime, Duration, DurationRound, Utc};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One record a rule matched: what a finding says about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleHit {
    pub rule: String,
    pub description: String,
    pub severity: Severity,
    pub time: DateTime<Utc>,
    /// `eventSource:eventName`.
    pub event: String,
    /// The caller's ARN (or invoking service, or principal id), or `-`.
    pub principal: String,
    /// What the rule's `target` field named.
    pub target: Option<String>,
    pub error: Option<String>,
    pub source_ip: Option<String>,
    /// The rule's ATT&CK techniques.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attack: Vec<String>,
    /// The accounts the rule's `outside_org` fields named: a hit only when
    /// one is outside the organisation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// The rule's severity for a principal that makes this call habitually.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub habitual: Option<Severity>,
    /// The values of the fields a correlation counting this rule groups or
    /// counts by: (field, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captured: Vec<(String, String)>,
    /// A `[new]` rule's hit: the value, new to what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<NewHit>,
    /// What a responder pivots on: the record's access key, region,
    /// account and event ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl RuleHit {
    /// The pivots of hits made into one finding.
    pub fn pivots<'h>(hits: impl IntoIterator<Item = &'h RuleHit>) -> Pivots {
        let mut p = Pivots::default();
        for h in hits {
            let one = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
            p.merge(&Pivots {
                access_key_ids: one(&h.access_key_id),
                source_ips: one(&h.source_ip),
                regions: one(&h.region),
                accounts: one(&h.account),
                event_ids: one(&h.event_id),
                events: 1,
            });
        }
        p
    }
}

/// What a `[new]` rule's hit was new to ([`crate::detector::NewValue`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewHit {
    /// The account, or the scope field's value.
    pub scope: String,
    pub value: String,
    /// New to the account once it learned (not: after the scope's first).
    pub per_account: bool,
}

/// The rules' hits so far; mergeable like the other counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuleHits {
    pub hits: Vec<RuleHit>,
    /// `[new]` rules' first hit of each value in each scope, by
    /// rule, scope and value: bounded by the values, not the calls.
    #[serde(
        default,
        skip_serializing_if = "FxHashMap::is_empty",
        with = "super::aggregate::pairs"
    )]
    pub firsts: FxHashMap<NewKey, RuleHit>,
    /// And when each was last seen.
    #[serde(
        default,
        skip_serializing_if = "FxHashMap::is_empty",
        with = "super::aggregate::pairs"
    )]
    pub lasts: FxHashMap<NewKey, DateTime<Utc>>,
}

/// A `[new]` rule's (rule, scope, value).
pub type NewKey = (String, String, String);

/// Whether `a` came before `b` (by time, then its other fields: merged in
/// any order, the same hit is kept).
fn earlier(a: &RuleHit, b: &RuleHit) -> bool {
    (a.time, &a.principal, &a.source_ip, &a.event) < (b.time, &b.principal, &b.source_ip, &b.event)
}

impl RuleHits {
    /// Offers `r` to every rule.
    pub fn record(&mut self, rules: &[Rule], r: &Record) {
        for rule in rules {
            let Some(accounts) = rule.hit(r) else {
                continue;
            };
            let time = r.event_time();
            // A `[new]` rule keeps only each value's first and last
            // sighting: a later sighting of a value only moves its last.
            let key: Option<NewKey> = match &rule.new {
                None => None,
                Some(n) => match n.of(r) {
                    Some((scope, value)) => Some((rule.name.clone(), scope, value)),
                    None => continue,
                },
            };
            if let Some(key) = &key {
                self.saw(key, time);
                if self.firsts.get(key).is_some_and(|kept| kept.time < time) {
                    continue;
                }
            }
            let hit = RuleHit {
                accounts,
                habitual: rule.habitual,
                rule: rule.name.clone(),
                description: rule.description.clone(),
                severity: rule.severity,
                time,
                event: format!("{}:{}", r.event_source(), r.event_name()),
                principal: r
                    .principal()
                    .map_or_else(|| "-".to_owned(), Cow::into_owned),
                target: rule.target.as_ref().and_then(|t| r.first_text(t)),
                error: r.error_code().map(str::to_owned),
                source_ip: r.source_ip_address().map(str::to_owned),
                attack: rule.attack.clone(),
                captured: rule
                    .captures
                    .iter()
                    .filter_map(|(f, path)| Some((f.clone(), r.first_text(path)?)))
                    .collect(),
                new: key.as_ref().map(|(_, scope, value)| NewHit {
                    scope: scope.clone(),
                    value: value.clone(),
                    per_account: rule.new.as_ref().is_some_and(|n| n.per == Scope::Account),
                }),
                access_key_id: r.user_identity().access_key_id.map(str::to_owned),
                region: r.aws_region().map(str::to_owned),
                account: r.recipient_account_id().map(str::to_owned),
                event_id: r.event_id().map(str::to_owned),
            };
            match key {
                None => self.hits.push(hit),
                Some(key) => self.keep_first(hit, key),
            }
        }
    }

    /// A `[new]` value seen at `t`: its last sighting moves on.
    fn saw(&mut self, key: &NewKey, t: DateTime<Utc>) {
        match self.lasts.get_mut(key) {
            Some(last) => *last = (*last).max(t),
            None => {
                self.lasts.insert(key.clone(), t);
            }
        }
    }

    /// Keeps `hit` as its value's first sighting if it came first.
    fn keep_first(&mut self, hit: RuleHit, key: NewKey) {
        match self.firsts.get(&key) {
            Some(kept) if !earlier(&hit, kept) => {}
            _ => {
                self.firsts.insert(key, hit);
            }
        }
    }

    /// Forgets the hits before `before`, but a correlation's: those are
    /// kept a further `windows[rule]` (its longest timespan) to fill its
    /// windows. `[new]` rules' first and last sightings stay.
    pub fn forget_before(
        &mut self,
        before: DateTime<Utc>,
        windows: &std::collections::HashMap<&str, Duration>,
    ) {
        self.hits.retain(|h| {
            let window = windows.get(h.rule.as_str()).copied().unwrap_or_default();
            h.time >= before - window
        });
    }

    pub fn merge(&mut self, other: RuleHits) {
        self.hits.extend(other.hits);
        for (key, hit) in other.firsts {
            self.keep_first(hit, key);
        }
        for (key, t) in other.lasts {
            self.saw(&key, t);
        }
    }

    /// The `[new]` rules' first hits that are new to their scope: to an
    /// account once it learned (`learned_at`; none without it), or to a
    /// scope whose first value was still in use after (seen again later:
    /// a second network while the instance still calls from its own, not
    /// an address changed by a stop and start); with that first value.
    fn new_hits(
        &self,
        learned_at: impl Fn(&str) -> Option<DateTime<Utc>>,
    ) -> Vec<(&RuleHit, Option<&str>)> {
        // Each (rule, scope)'s first value.
        let mut first: BTreeMap<(&str, &str), &RuleHit> = BTreeMap::new();
        for ((rule, scope, _), hit) in &self.firsts {
            let e = first.entry((rule.as_str(), scope.as_str())).or_insert(hit);
            if earlier(hit, e) {
                *e = hit;
            }
        }
        self.firsts
            .iter()
            .filter_map(|((rule, scope, _), hit)| {
                let n = hit.new.as_ref()?;
                if n.per_account {
                    let learned = learned_at(scope)?;
                    return (hit.time >= learned).then_some((hit, None));
                }
                let before = first.get(&(rule.as_str(), scope.as_str()))?;
                let was = before.new.as_ref()?;
                let still_used = self
                    .lasts
                    .get(&(rule.clone(), scope.clone(), was.value.clone()))
                    .is_some_and(|last| *last > hit.time);
                (!std::ptr::eq(*before, hit) && still_used)
                    .then_some((hit, Some(was.value.as_str())))
            })
            .collect()
    }
}

/// What makes hits one finding: their minute, rule, principal and target.
type FindingKey<'h> = (DateTime<Utc>, &'h str, &'h str, Option<&'h str>);

/// What rule findings are judged with: the organisation's accounts, and
/// what each principal has done before.
#[derive(Default)]
pub struct Judging<'a> {
    /// The accounts seen in the trail and named by `--org-accounts`.
    pub org: std::collections::BTreeSet<String>,
    pub novelty: Option<&'a super::novelty::NoveltyCounts>,
    /// When each account's history starts, and how long it learns: a
    /// principal's habits are known only after.
    pub history: Option<(super::aggregate::History, Duration)>,
    /// The rules the hits came from: the Sigma correlations among them
    /// count the others' hits ([`super::correlate`]).
    pub rules: &'a [Rule],
}

impl Judging<'_> {
    /// Whether the hit's call is the principal's habit: it made calls to
    /// the same service at least [`HABIT_TIMES`] times before, the first
    /// while its account was learning or a learning period or more earlier
    /// (a deploy role that creates roles and policies every day creating a
    /// user). While its account is still learning, or with no history at
    /// all (the forwarder), no call can be told from a habit: a rule below
    /// high takes its habitual severity, a high or critical one its own.
    fn habitual(&self, h: &RuleHit) -> bool {
        // With no history (the forwarder), or while the account learns, no
        // call can be told from a habit: a rule of high severity or more
        // keeps it (credentials made for another user by a deployment's
        // first hour are not excused), the others take their habitual one.
        let unknown = h.severity < Severity::High;
        let Some(novelty) = self.novelty else {
            return unknown;
        };
        let learning = self.history.as_ref().map_or(Duration::days(1), |(_, l)| *l);
        let learned = self
            .history
            .as_ref()
            .map(|(history, l)| history.principal(&h.principal) + *l);
        if learned.is_some_and(|end| h.time < end) {
            return unknown;
        }
        let Some(p) = novelty.principals.get(&h.principal) else {
            return false;
        };
        let service = format!("call {}:", h.event.split(':').next().unwrap_or(""));
        let earlier: Vec<DateTime<Utc>> = p
            .features
            .iter()
            .filter(|(feature, _)| feature.starts_with(&service))
            .flat_map(|(_, seen)| seen.times.iter().copied())
            .filter(|t| *t < h.time)
            .collect();
        let Some(first) = earlier.iter().min() else {
            return false;
        };
        let long_enough = learned.is_some_and(|end| *first < end) || *first <= h.time - learning;
        earlier.len() >= HABIT_TIMES && long_enough
    }
}

/// Calls to a service a principal made before calling it is its habit.
pub const HABIT_TIMES: usize = 3;

/// The findings of the hits in `[from, to)`.
pub fn detect(
    hits: &RuleHits,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    judging: &Judging<'_>,
) -> Vec<Anomaly> {
    // In a stable order.
    let mut groups: BTreeMap<FindingKey<'_>, Vec<(&RuleHit, Option<&str>)>> = BTreeMap::new();
    let outside =
        |h: &RuleHit| h.accounts.is_empty() || h.accounts.iter().any(|a| !judging.org.contains(a));
    // Rules only correlations count (Sigma's `generate: false`).
    let counted_only: std::collections::HashSet<&str> = judging
        .rules
        .iter()
        .filter(|r| r.counted_only)
        .map(|r| r.name.as_str())
        .collect();
    let learned_at = |account: &str| {
        let (history, learning) = judging.history.as_ref()?;
        Some(history.account(account) + *learning)
    };
    // A `[new]` rule's hit says what was there first.
    let new = hits.new_hits(learned_at);
    for (h, first) in hits
        .hits
        .iter()
        .map(|h| (h, None))
        .chain(new)
        .filter(|(h, _)| h.time >= from && h.time < to)
        .filter(|(h, _)| outside(h))
        .filter(|(h, _)| !counted_only.contains(h.rule.as_str()))
    {
        let minute = h
            .time
            .duration_trunc(Duration::minutes(1))
            .unwrap_or(h.time);
        groups
            .entry((minute, &h.rule, &h.principal, h.target.as_deref()))
            .or_default()
            .push((h, first));
    }
    groups
        .into_iter()
        .filter_map(|((minute, rule, principal, target), list)| {
            let (first, was) = list[0];
            let list: Vec<&RuleHit> = list.iter().map(|(h, _)| *h).collect();
            // The principal's habit: reported at the rule's habitual
            // severity, or not at all when that is low (its job).
            let habit = first.habitual.filter(|_| judging.habitual(first));
            if habit == Some(Severity::Low) {
                return None;
            }
            let mut entity =
                BTreeMap::from([("userIdentity.arn".to_owned(), principal.to_owned())]);
            if let Some(t) = target {
                entity.insert("target".into(), t.to_owned());
            }
            let failed: Vec<&str> = list.iter().filter_map(|h| h.error.as_deref()).collect();
            let mut summary = format!(
                "{}: {} called {}",
                first.description,
                short_arn(principal),
                first.event
            );
            if let Some(t) = target {
                summary.push_str(&format!(" on {t}"));
            }
            if let Some(ip) = &first.source_ip {
                summary.push_str(&format!(" from {ip}"));
            }
            if list.len() > 1 {
                summary.push_str(&format!(" ({} times)", list.len()));
            }
            if let Some(n) = &first.new {
                match was {
                    Some(was) => {
                        let scope = if n.scope == principal { "it" } else { &n.scope };
                        summary.push_str(&format!(
                            "; {scope} was first used from {was}, now from {}",
                            n.value
                        ))
                    }
                    None => summary.push_str(&format!(
                        "; {} never seen in account {} before",
                        n.value, n.scope
                    )),
                }
            }
            if failed.len() == list.len() {
                summary.push_str(&format!("; it failed ({})", failed[0]));
            }
            Some(Anomaly {
                detector: rule.to_owned(),
                kind: AnomalyKind::Rule,
                entity: Some(entity),
                start: minute,
                end: minute + Duration::minutes(1),
                grade: 1.0,
                confidence: 1.0,
                actual: list.len() as f64,
                expected: 0.0,
                score: 1.0,
                summary,
                context: None,
                incident: None,
                subjects: vec![principal.to_owned()],
                late: false,
                partial: false,
                detected: minute + Duration::minutes(1),
                severity: Some(habit.unwrap_or(first.severity)),
                page: None,
                novelty: None,
                attack: first.attack.clone(),
                pivots: RuleHit::pivots(list.iter().copied()),
            })
        })
        .chain(super::correlate::findings(judging.rules, hits, from, to))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::shipped_rules;
    use serde_json::json;

    /// Evaluated hits are forgotten, a correlation's a timespan later;
    /// `[new]` sightings are not hits and stay.
    #[test]
    fn hits_are_forgotten_once_no_evaluation_needs_them() {
        let at = |rule: &str, t: &str| RuleHit {
            rule: rule.into(),
            description: String::new(),
            severity: Severity::Low,
            time: t.parse().unwrap(),
            event: "s3.amazonaws.com:GetObject".into(),
            principal: "-".into(),
            target: None,
            error: None,
            source_ip: None,
            attack: Vec::new(),
            accounts: Vec::new(),
            habitual: None,
            captured: Vec::new(),
            new: None,
            access_key_id: None,
            region: None,
            account: None,
            event_id: None,
        };
        let mut hits = RuleHits {
            hits: vec![
                at("noisy", "2026-01-05T00:00:00Z"),
                at("noisy", "2026-01-05T12:00:00Z"),
                at("counted", "2026-01-05T09:30:00Z"),
                at("counted", "2026-01-05T08:00:00Z"),
            ],
            ..RuleHits::default()
        };
        let windows = [("counted", Duration::hours(1))].into_iter().collect();
        hits.forget_before("2026-01-05T10:00:00Z".parse().unwrap(), &windows);
        let left: Vec<(&str, String)> = hits
            .hits
            .iter()
            .map(|h| (h.rule.as_str(), h.time.format("%H:%M").to_string()))
            .collect();
        assert_eq!(
            left,
            [("noisy", "12:00".into()), ("counted", "09:30".into())]
        );
    }

    /// A record shaped as CloudTrail logs it, from the fields that differ.
    fn record(
        source: &str,
        name: &str,
        identity: serde_json::Value,
        extra: serde_json::Value,
    ) -> serde_json::Value {
        let mut v = json!({
            "eventVersion": "1.09",
            "eventTime": "2026-01-07T14:20:31Z",
            "eventSource": source,
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.66",
            "userAgent": "aws-cli/2.15.0",
            "eventID": "9a1b2c3d-0000-4000-8000-000000000001",
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "readOnly": false,
            "recipientAccountId": "111122223333",
            "eventCategory": "Management",
            "userIdentity": identity,
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    fn mallory() -> serde_json::Value {
        json!({"type": "IAMUser", "principalId": "AIDAEXAMPLEMALLORY01", "arn": "arn:aws:iam::111122223333:user/mallory",
               "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLEMALLORY1", "userName": "mallory"})
    }

    fn admin_role() -> serde_json::Value {
        json!({"type": "AssumedRole", "principalId": "AROAEXAMPLEADMIN0001:ops",
               "arn": "arn:aws:sts::111122223333:assumed-role/Admin/ops", "accountId": "111122223333",
               "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "Admin",
                 "arn": "arn:aws:iam::111122223333:role/Admin"}}})
    }

    /// Which shipped rules match a record (through the projection the
    /// engine reads with, as a run would).
    fn fired(r: &serde_json::Value) -> Vec<String> {
        let rules = shipped_rules();
        let mut hits = RuleHits::default();
        let paths: Vec<&crate::cloudtrail::FieldPath> =
            rules.iter().flat_map(|r| r.field_paths()).collect();
        let projection = crate::cloudtrail::Projection::for_records(paths);
        let text = serde_json::to_vec(&json!({"Records": [r]})).unwrap();
        crate::cloudtrail::read_bytes(
            "t",
            &text,
            &projection,
            |rec| hits.record(&rules, &rec),
            |e| panic!("{e}"),
        );
        hits.hits.into_iter().map(|h| h.rule).collect()
    }

    /// The findings the shipped rules make of these records, judged with
    /// the organisation's accounts and what each principal did before.
    fn judged(records: &[serde_json::Value], org: &[&str]) -> Vec<Anomaly> {
        judged_with(records, org, None)
    }

    /// The same, with each account's history and learning period.
    fn judged_with(
        records: &[serde_json::Value],
        org: &[&str],
        history: Option<(super::super::aggregate::History, Duration)>,
    ) -> Vec<Anomaly> {
        let rules = shipped_rules();
        let mut hits = RuleHits::default();
        let mut novelty = crate::engine::novelty::NoveltyCounts::default();
        let paths: Vec<&crate::cloudtrail::FieldPath> =
            rules.iter().flat_map(|r| r.field_paths()).collect();
        let projection = crate::cloudtrail::Projection::for_records(paths);
        let text = serde_json::to_vec(&json!({"Records": records})).unwrap();
        crate::cloudtrail::read_bytes(
            "t",
            &text,
            &projection,
            |rec| {
                hits.record(&rules, &rec);
                novelty.record(&rec);
            },
            |e| panic!("{e}"),
        );
        let judging = Judging {
            org: org.iter().map(|a| a.to_string()).collect(),
            novelty: Some(&novelty),
            history,
            rules: &rules,
        };
        detect(
            &hits,
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            &judging,
        )
    }

    fn at(mut r: serde_json::Value, time: &str) -> serde_json::Value {
        r["eventTime"] = json!(time);
        r
    }

    /// An instance's credentials, used from the instance's network and
    /// through the VPC's endpoints, are its own; its session used from a
    /// second network while the instance still calls from its own was
    /// taken from it. A stop and start that changes its address is not;
    /// each instance starts afresh.
    #[test]
    fn instance_credentials_used_from_a_second_network_page() {
        let instance = |session: &str, ip: &str, time: &str| {
            let mut r = at(
                record(
                    "ssm.amazonaws.com",
                    "UpdateInstanceInformation",
                    json!({"type": "AssumedRole", "accountId": "111122223333", "accessKeyId": format!("ASIA{session}"),
                        "arn": format!("arn:aws:sts::111122223333:assumed-role/app/{session}"),
                        "sessionContext": {"ec2RoleDelivery": "2.0"}}),
                    json!({}),
                ),
                time,
            );
            r["sourceIPAddress"] = json!(ip);
            r
        };
        let mut through_endpoint = instance("i-01", "10.0.1.10", "2026-01-07T10:03:00Z");
        through_endpoint["vpcEndpointId"] = json!("vpce-1");
        let own = [
            instance("i-01", "3.225.16.109", "2026-01-07T10:00:00Z"),
            instance("i-01", "3.225.16.109", "2026-01-07T10:05:00Z"),
            through_endpoint,
            instance("i-01", "ssm.amazonaws.com", "2026-01-07T10:06:00Z"),
            instance("i-02", "3.225.16.109", "2026-01-07T11:00:00Z"),
        ];
        let org = ["111122223333"];
        assert!(judged(&own, &org).is_empty(), "{:#?}", judged(&own, &org));
        // Stopped and started with a new address: the old one is not seen
        // again.
        let mut restarted = own.to_vec();
        restarted.push(instance("i-01", "54.80.1.2", "2026-01-07T12:00:00Z"));
        assert!(judged(&restarted, &org).is_empty());
        let mut stolen = own.to_vec();
        stolen.push(instance("i-01", "198.51.100.7", "2026-01-07T10:20:00Z"));
        stolen.push(instance("i-01", "198.51.100.8", "2026-01-07T10:21:00Z"));
        stolen.push(instance("i-01", "3.225.16.109", "2026-01-07T10:25:00Z"));
        // Whatever order the records come in.
        stolen.reverse();
        let out = judged(&stolen, &org);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].detector, "ec2-instance-credentials-used-outside");
        assert_eq!(out[0].severity, Some(Severity::High));
        assert_eq!(out[0].attack, ["T1552.005"]);
        assert_eq!(
            out[0].start,
            "2026-01-07T10:20:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert!(
            out[0]
                .summary
                .ends_with("; it was first used from 3.225.16.0/24, now from 198.51.100.0/24"),
            "{}",
            out[0].summary
        );
    }

    /// `--follow` saves the hits as JSON: the `[new]` rules' first and
    /// last sightings come back as they were.
    #[test]
    fn new_values_survive_a_saved_state() {
        let rules = shipped_rules();
        let mut hits = RuleHits::default();
        for (kind, time) in [
            ("m5.large", "2026-01-05T10:00:00Z"),
            ("m5.large", "2026-01-05T11:00:00Z"),
            ("p4d.24xlarge", "2026-01-05T12:00:00Z"),
        ] {
            let r = at(
                record(
                    "ec2.amazonaws.com",
                    "RunInstances",
                    mallory(),
                    json!({"requestParameters": {"instanceType": kind}}),
                ),
                time,
            );
            hits.record(&rules, &Record::from_value(r).unwrap());
        }
        assert_eq!(hits.firsts.len(), 2);
        let text = serde_json::to_string(&hits).unwrap();
        let back: RuleHits = serde_json::from_str(&text).unwrap();
        assert_eq!(back.firsts, hits.firsts);
        assert_eq!(back.lasts, hits.lasts);
        let key = |kind: &str| {
            (
                "ec2-instance-type-never-run".to_owned(),
                "111122223333".to_owned(),
                kind.to_owned(),
            )
        };
        assert_eq!(
            back.lasts[&key("m5.large")],
            "2026-01-05T11:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    /// An instance type the account never ran, once it has learned what it
    /// runs: reported once per type, at medium, unless the principal runs
    /// instances habitually. Without history (the forwarder) nothing can be
    /// new.
    #[test]
    fn an_instance_type_the_account_never_ran_is_reported_once() {
        let run = |who: serde_json::Value, account: &str, kind: &str, time: &str| {
            let mut r = at(
                record(
                    "ec2.amazonaws.com",
                    "RunInstances",
                    who,
                    json!({"requestParameters": {"instanceType": kind}}),
                ),
                time,
            );
            r["recipientAccountId"] = json!(account);
            r
        };
        let records = [
            // Mallory runs instances as her job.
            run(
                mallory(),
                "111122223333",
                "m5.large",
                "2026-01-01T10:00:00Z",
            ),
            run(
                mallory(),
                "111122223333",
                "m5.large",
                "2026-01-02T10:00:00Z",
            ),
            run(
                mallory(),
                "111122223333",
                "m5.large",
                "2026-01-03T10:00:00Z",
            ),
            // Someone who never does starts GPU instances, twice.
            run(
                admin_role(),
                "111122223333",
                "p4d.24xlarge",
                "2026-01-05T11:00:00Z",
            ),
            run(
                admin_role(),
                "111122223333",
                "p4d.24xlarge",
                "2026-01-05T12:00:00Z",
            ),
            // Mallory's new family: her habit, not reported.
            run(
                mallory(),
                "111122223333",
                "m7i.large",
                "2026-01-05T13:00:00Z",
            ),
            // A second account starts later: still learning on the 5th.
            run(
                admin_role(),
                "444455556666",
                "t3.micro",
                "2026-01-04T23:00:00Z",
            ),
            run(
                admin_role(),
                "444455556666",
                "g5.xlarge",
                "2026-01-05T11:30:00Z",
            ),
        ];
        let history = super::super::aggregate::History {
            first: "2026-01-01T00:00:00Z".parse().unwrap(),
            streams: BTreeMap::from([
                (
                    "111122223333/us-east-1".to_owned(),
                    "2026-01-01T00:00:00Z".parse().unwrap(),
                ),
                (
                    "444455556666/us-east-1".to_owned(),
                    "2026-01-04T23:00:00Z".parse().unwrap(),
                ),
            ]),
        };
        let org = ["111122223333", "444455556666"];
        let out = judged_with(&records, &org, Some((history, Duration::days(1))));
        let new: Vec<_> = out
            .iter()
            .filter(|a| a.detector == "ec2-instance-type-never-run")
            .collect();
        assert_eq!(new.len(), 1, "{out:#?}");
        assert_eq!(new[0].severity, Some(Severity::Medium));
        assert!(
            new[0]
                .summary
                .ends_with("; p4d.24xlarge never seen in account 111122223333 before"),
            "{}",
            new[0].summary
        );
        assert!(judged(&records, &org)
            .iter()
            .all(|a| a.detector != "ec2-instance-type-never-run"));
    }

    /// Busy organisations share backups between their own accounts, open
    /// web ports to the world, run commands from automation and deploy
    /// functions every day: none of it may page. The same calls by an
    /// intruder do.
    #[test]
    fn look_alikes_of_the_catalogue_do_not_page_and_the_attacks_do() {
        let share = |to: &str| {
            record(
                "ec2.amazonaws.com",
                "ModifySnapshotAttribute",
                mallory(),
                json!({"requestParameters": {"snapshotId": "snap-1", "attributeType": "CREATE_VOLUME_PERMISSION",
                    "createVolumePermission": {"add": {"items": [{"userId": to}]}}}}),
            )
        };
        let org = ["111122223333", "444455556666"];
        // Shared with the organisation's own account: nothing.
        assert!(judged(&[share("444455556666")], &org).is_empty());
        // With a stranger: high, and named as exfiltration.
        let out = judged(&[share("999988887777")], &org);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].detector, "ebs-snapshot-shared-outside");
        assert_eq!(out[0].severity, Some(Severity::High));
        assert_eq!(out[0].attack, ["T1537"]);
        // A web port open to the world: nothing; SSH: high.
        let open = |port: i64| {
            record(
                "ec2.amazonaws.com",
                "AuthorizeSecurityGroupIngress",
                mallory(),
                json!({"requestParameters": {"groupId": "sg-1", "ipPermissions": {"items": [
                    {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}}),
            )
        };
        assert!(judged(&[open(443)], &org).is_empty());
        let ssh = judged(&[open(22)], &org);
        assert_eq!(ssh.len(), 1);
        assert_eq!(ssh[0].detector, "security-group-admin-port-open");
        // Patch automation running commands on three earlier days: its
        // job, not reported. A first-time sender: reported, low (context
        // for its incident).
        let send = |time: &str| {
            at(
                record(
                    "ssm.amazonaws.com",
                    "SendCommand",
                    admin_role(),
                    json!({"requestParameters": {"documentName": "AWS-RunPatchBaseline", "instanceIds": ["i-1"]}}),
                ),
                time,
            )
        };
        let days = [
            "2026-01-03T02:00:00Z",
            "2026-01-04T02:00:00Z",
            "2026-01-05T02:00:00Z",
            "2026-01-07T02:00:00Z",
        ];
        let habitual = judged(&days.map(send), &org);
        let routine_from: DateTime<Utc> = "2026-01-07T00:00:00Z".parse().unwrap();
        assert!(
            habitual.iter().all(|a| a.start < routine_from),
            "its habit is not reported: {habitual:#?}"
        );
        let first = judged(&[send("2026-01-07T02:00:00Z")], &org);
        assert_eq!(first[0].severity, Some(Severity::Low));
        assert_eq!(first[0].attack, ["T1651"]);
        // StopLogging is never habitual.
        let stops: Vec<serde_json::Value> = days
            .iter()
            .map(|t| {
                at(
                    record(
                        "cloudtrail.amazonaws.com",
                        "StopLogging",
                        admin_role(),
                        json!({"requestParameters": {"name": "org-trail"}}),
                    ),
                    t,
                )
            })
            .collect();
        assert!(judged(&stops, &org)
            .iter()
            .all(|a| a.severity == Some(Severity::Critical)));
    }

    #[test]
    fn every_shipped_rule_names_its_attack_technique() {
        for rule in shipped_rules() {
            assert!(
                !rule.attack.is_empty(),
                "{} maps to no ATT&CK technique",
                rule.name
            );
            assert!(
                rule.attack
                    .iter()
                    .all(|t| crate::detector::valid_technique(t)),
                "{}: {:?}",
                rule.name,
                rule.attack
            );
        }
    }

    #[test]
    fn every_shipped_rule_fires_on_its_event_and_not_on_the_ordinary_one() {
        let stop = record(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            mallory(),
            json!({"requestParameters": {"name": "arn:aws:cloudtrail:us-east-1:111122223333:trail/org-trail"}, "responseElements": null}),
        );
        assert_eq!(fired(&stop), ["cloudtrail-stop-logging"]);
        let start = record(
            "cloudtrail.amazonaws.com",
            "StartLogging",
            mallory(),
            json!({"requestParameters": {"name": "org-trail"}}),
        );
        assert!(fired(&start).is_empty());

        let delete = record(
            "cloudtrail.amazonaws.com",
            "DeleteTrail",
            mallory(),
            json!({"requestParameters": {"name": "org-trail"}, "responseElements": null}),
        );
        assert_eq!(fired(&delete), ["cloudtrail-delete-trail"]);

        let update = |params: serde_json::Value| {
            record(
                "cloudtrail.amazonaws.com",
                "UpdateTrail",
                admin_role(),
                json!({"requestParameters": params}),
            )
        };
        assert_eq!(
            fired(&update(
                json!({"name": "org-trail", "isMultiRegionTrail": false})
            )),
            ["cloudtrail-trail-weakened"]
        );
        assert_eq!(
            fired(&update(
                json!({"name": "org-trail", "includeGlobalServiceEvents": false})
            )),
            ["cloudtrail-trail-weakened"]
        );
        assert_eq!(
            fired(&update(
                json!({"name": "org-trail", "enableLogFileValidation": false})
            )),
            ["cloudtrail-trail-weakened"]
        );
        assert!(fired(&update(
            json!({"name": "org-trail", "s3BucketName": "logs", "isMultiRegionTrail": true})
        ))
        .is_empty());

        let selectors = |params: serde_json::Value| {
            record(
                "cloudtrail.amazonaws.com",
                "PutEventSelectors",
                admin_role(),
                json!({"requestParameters": params}),
            )
        };
        assert_eq!(
            fired(&selectors(
                json!({"trailName": "org-trail", "eventSelectors": [
            {"readWriteType": "All", "includeManagementEvents": false,
             "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3"]}], "excludeManagementEventSources": []}]})
            )),
            ["cloudtrail-management-events-dropped"]
        );
        assert_eq!(
            fired(&selectors(
                json!({"trailName": "org-trail", "eventSelectors": [
            {"readWriteType": "ReadOnly", "includeManagementEvents": true}]})
            )),
            ["cloudtrail-management-events-dropped"]
        );
        assert_eq!(
            fired(&selectors(
                json!({"trailName": "org-trail", "advancedEventSelectors": [
            {"name": "S3 data only", "fieldSelectors": [{"field": "eventCategory", "equals": ["Data"]},
                                                       {"field": "resources.type", "equals": ["AWS::S3::Object"]}]}]})
            )),
            ["cloudtrail-management-events-dropped"]
        );
        // Adding data events beside management events drops nothing.
        assert!(fired(&selectors(
            json!({"trailName": "org-trail", "eventSelectors": [
            {"readWriteType": "All", "includeManagementEvents": true},
            {"readWriteType": "All", "includeManagementEvents": false,
             "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3"]}]}]})
        ))
        .is_empty());
        assert!(fired(&selectors(json!({"trailName": "org-trail", "advancedEventSelectors": [
            {"name": "Management", "fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]},
            {"name": "S3", "fieldSelectors": [{"field": "eventCategory", "equals": ["Data"]}]}]}))).is_empty());

        let gd = record(
            "guardduty.amazonaws.com",
            "DeleteDetector",
            mallory(),
            json!({"requestParameters": {"detectorId": "12abc34d567e8fa901bc2d34e56789f0"}, "responseElements": null}),
        );
        assert_eq!(fired(&gd), ["guardduty-detector-disabled"]);
        let gd_off = record(
            "guardduty.amazonaws.com",
            "UpdateDetector",
            mallory(),
            json!({"requestParameters": {"detectorId": "12abc", "enable": false}}),
        );
        assert_eq!(fired(&gd_off), ["guardduty-detector-disabled"]);
        let gd_on = record(
            "guardduty.amazonaws.com",
            "UpdateDetector",
            mallory(),
            json!({"requestParameters": {"detectorId": "12abc", "enable": true, "findingPublishingFrequency": "FIFTEEN_MINUTES"}}),
        );
        assert!(fired(&gd_on).is_empty());

        let flow = record(
            "ec2.amazonaws.com",
            "DeleteFlowLogs",
            mallory(),
            json!({"requestParameters": {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-0123456789abcdef0", "tag": 1}}},
                   "responseElements": {"DeleteFlowLogsResponse": {"unsuccessful": ""}}}),
        );
        assert_eq!(fired(&flow), ["vpc-flow-logs-deleted"]);

        let root = json!({"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"});
        let login = record(
            "signin.amazonaws.com",
            "ConsoleLogin",
            root.clone(),
            json!({"requestParameters": null, "responseElements": {"ConsoleLogin": "Success"},
                   "additionalEventData": {"MFAUsed": "No", "MobileVersion": "No"}, "eventType": "AwsConsoleSignIn", "readOnly": false}),
        );
        assert_eq!(fired(&login), ["root-console-login"]);
        let user_login = record(
            "signin.amazonaws.com",
            "ConsoleLogin",
            mallory(),
            json!({"responseElements": {"ConsoleLogin": "Success"}, "eventType": "AwsConsoleSignIn"}),
        );
        assert!(fired(&user_login).is_empty());

        let key_for = |caller: serde_json::Value, params: serde_json::Value, name: &str| {
            record(
                "iam.amazonaws.com",
                name,
                caller,
                json!({"requestParameters": params, "eventSource": "iam.amazonaws.com", "awsRegion": "us-east-1"}),
            )
        };
        assert_eq!(
            fired(&key_for(
                mallory(),
                json!({"userName": "backup-svc"}),
                "CreateAccessKey"
            )),
            ["iam-credentials-for-another-user"]
        );
        assert_eq!(
            fired(&key_for(
                admin_role(),
                json!({"userName": "backup-svc", "passwordResetRequired": false}),
                "CreateLoginProfile"
            )),
            ["iam-credentials-for-another-user"]
        );
        // A user rotating its own key: no userName, or its own.
        assert!(fired(&key_for(mallory(), json!(null), "CreateAccessKey")).is_empty());
        assert!(fired(&key_for(
            mallory(),
            json!({"userName": "mallory"}),
            "CreateAccessKey"
        ))
        .is_empty());

        let s3 = |name: &str, params: serde_json::Value| {
            record(
                "s3.amazonaws.com",
                name,
                mallory(),
                json!({"requestParameters": params, "eventCategory": "Management"}),
            )
        };
        let all_users = json!({"bucketName": "payroll-exports", "Host": "payroll-exports.s3.amazonaws.com", "acl": [""],
            "AccessControlPolicy": {"AccessControlList": {"Grant": [
                {"Grantee": {"xsi:type": "CanonicalUser", "ID": "abc"}, "Permission": "FULL_CONTROL"},
                {"Grantee": {"xsi:type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"}]},
                "Owner": {"ID": "abc"}, "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"}});
        assert_eq!(
            fired(&s3("PutBucketAcl", all_users)),
            ["s3-bucket-made-public"]
        );
        assert_eq!(
            fired(&s3(
                "PutBucketAcl",
                json!({"bucketName": "payroll-exports", "x-amz-acl": ["public-read"], "acl": [""]})
            )),
            ["s3-bucket-made-public"]
        );
        assert!(fired(&s3(
            "PutBucketAcl",
            json!({"bucketName": "payroll-exports", "x-amz-acl": ["private"], "acl": [""]})
        ))
        .is_empty());
        let policy = |statements: serde_json::Value| {
            s3(
                "PutBucketPolicy",
                json!({"bucketName": "payroll-exports",
            "bucketPolicy": {"Version": "2012-10-17", "Statement": statements}, "policy": [""]}),
            )
        };
        assert_eq!(
            fired(&policy(
                json!([{"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::payroll-exports/*"}])
            )),
            ["s3-bucket-made-public"]
        );
        assert_eq!(
            fired(&policy(
                json!([{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::payroll-exports/*"}])
            )),
            ["s3-bucket-made-public"]
        );
        assert!(fired(&policy(json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::payroll-exports", "arn:aws:s3:::payroll-exports/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/app"}, "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::payroll-exports/*"}]))).is_empty());
    }

    #[test]
    fn hits_become_one_finding_a_minute_with_the_rules_severity() {
        let rules = shipped_rules();
        let mut hits = RuleHits::default();
        let stop = Record::from_value(record(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            mallory(),
            json!({"requestParameters": {"name": "org-trail"}, "errorCode": "AccessDenied"}),
        ))
        .unwrap();
        hits.record(&rules, &stop);
        hits.record(&rules, &stop);
        let mut other = RuleHits::default();
        other.record(&rules, &stop);
        hits.merge(other);
        let from: DateTime<Utc> = "2026-01-07T14:00:00Z".parse().unwrap();
        let found = detect(&hits, from, from + Duration::hours(1), &Judging::default());
        assert_eq!(found.len(), 1, "{found:#?}");
        let a = &found[0];
        assert_eq!(a.kind, AnomalyKind::Rule);
        assert_eq!(a.detector, "cloudtrail-stop-logging");
        assert_eq!(a.severity, Some(Severity::Critical));
        assert_eq!(a.actual, 3.0);
        assert_eq!(
            a.start,
            "2026-01-07T14:20:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            a.detected,
            "2026-01-07T14:21:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            a.summary,
            "CloudTrail logging stopped: user/mallory@111122223333 called cloudtrail.amazonaws.com:StopLogging on org-trail from 203.0.113.66 (3 times); it failed (AccessDenied)"
        );
        assert!(detect(
            &hits,
            from + Duration::hours(1),
            from + Duration::hours(2),
            &Judging::default()
        )
        .is_empty());
    }
}
