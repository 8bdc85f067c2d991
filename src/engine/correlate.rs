//! Sigma correlations over the rules' hits: per group (the values of its
//! `group-by` fields), a timespan slides over the hits of the rules it
//! names, and a finding is made at the hit that brings the window's count
//! (or its distinct values of a field) to the condition. It fires again only
//! after the count fell below and rose again, so a window spanning two
//! evaluations (`--follow`) is found once, and a one-shot run finds what
//! `--follow` does.

use super::anomaly::{Anomaly, AnomalyKind};
use super::rules::{RuleHit, RuleHits};
use crate::context::short_arn;
use crate::detector::correlation::Correlation;
use crate::detector::Rule;
use chrono::{DateTime, Duration, DurationRound, Utc};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// The findings of every correlation among `rules` whose firing hit lies in
/// `[from, to)` (hits a timespan before `from` fill its windows).
pub fn findings(
    rules: &[Rule],
    hits: &RuleHits,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for rule in rules {
        let Some(c) = &rule.correlation else { continue };
        let mut groups: BTreeMap<Vec<String>, Vec<&RuleHit>> = BTreeMap::new();
        for h in hits
            .hits
            .iter()
            .filter(|h| c.rules.contains(&h.rule) && h.time < to && h.time >= from - c.timespan)
        {
            let key = c.group_by.iter().map(|f| captured(h, f)).collect();
            groups.entry(key).or_default().push(h);
        }
        for (key, mut list) in groups {
            list.sort_by_key(|h| h.time);
            for (window, at, n) in fired(c, &list) {
                if at.time >= from {
                    out.push(finding(rule, c, &key, (&window, at, n)));
                }
            }
        }
    }
    out
}

/// A hit's value of a captured field (empty when the record had none).
fn captured(h: &RuleHit, field: &str) -> String {
    h.captured
        .iter()
        .find(|(f, _)| f == field)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A sliding window of hits and what it counts, kept as hits come and go:
/// the hits, or how many of them hold each value of the counted field.
struct Window<'h, 'c> {
    c: &'c Correlation,
    hits: VecDeque<&'h RuleHit>,
    values: HashMap<String, usize>,
}

impl<'h> Window<'h, '_> {
    fn count(&self) -> u64 {
        match self.c.distinct {
            None => self.hits.len() as u64,
            Some(_) => self.values.len() as u64,
        }
    }

    fn push(&mut self, h: &'h RuleHit) {
        if let Some(f) = &self.c.distinct {
            *self.values.entry(captured(h, f)).or_default() += 1;
        }
        self.hits.push_back(h);
    }

    /// Lets go of the hits a timespan or more before `now`.
    fn slide(&mut self, now: DateTime<Utc>) {
        while let Some(first) = self.hits.front().copied() {
            if first.time > now - self.c.timespan {
                break;
            }
            self.hits.pop_front();
            if let Some(f) = &self.c.distinct {
                let v = captured(first, f);
                if let Some(n) = self.values.get_mut(&v) {
                    *n -= 1;
                    if *n == 0 {
                        self.values.remove(&v);
                    }
                }
            }
        }
    }
}

/// Each firing: the window's hits, the hit that made it hold, and its count.
fn fired<'h>(c: &Correlation, list: &[&'h RuleHit]) -> Vec<(Vec<&'h RuleHit>, &'h RuleHit, u64)> {
    let mut window = Window {
        c,
        hits: VecDeque::new(),
        values: HashMap::new(),
    };
    let mut out = Vec::new();
    for &h in list {
        window.slide(h.time);
        let before = c.holds(window.count());
        window.push(h);
        let n = window.count();
        if c.holds(n) && !before {
            out.push((window.hits.iter().copied().collect(), h, n));
        }
    }
    out
}

/// The finding of one firing: its window's hits, the hit that made it
/// hold, and the count it reached.
fn finding(
    rule: &Rule,
    c: &Correlation,
    key: &[String],
    (window, at, n): (&[&RuleHit], &RuleHit, u64),
) -> Anomaly {
    let mut principals: Vec<String> = window.iter().map(|h| h.principal.clone()).collect();
    principals.sort();
    principals.dedup();
    let group: Vec<String> = c
        .group_by
        .iter()
        .zip(key)
        .map(|(f, v)| format!("{f}={v}"))
        .collect();
    let minute = at
        .time
        .duration_trunc(Duration::minutes(1))
        .unwrap_or(at.time);
    let start = window[0]
        .time
        .duration_trunc(Duration::minutes(1))
        .unwrap_or(window[0].time);
    let mut summary = format!(
        "{}: {} of {} within {}",
        rule.description,
        c.counted(n),
        c.references.join(", "),
        crate::engine::span_text(c.timespan)
    );
    if !group.is_empty() {
        summary.push_str(&format!(" for {}", group.join(", ")));
    }
    let who: Vec<String> = principals.iter().take(3).map(|p| short_arn(p)).collect();
    summary.push_str(&format!("; by {}", who.join(", ")));
    let mut entity: BTreeMap<String, String> = c
        .group_by
        .iter()
        .cloned()
        .zip(key.iter().cloned())
        .collect();
    if entity.is_empty() {
        entity.insert("userIdentity.arn".into(), principals[0].clone());
    }
    Anomaly {
        detector: rule.name.clone(),
        kind: AnomalyKind::Rule,
        entity: Some(entity),
        start,
        end: minute + Duration::minutes(1),
        grade: 1.0,
        confidence: 1.0,
        actual: n as f64,
        expected: 0.0,
        score: 1.0,
        summary,
        context: None,
        incident: None,
        subjects: principals,
        late: false,
        partial: false,
        detected: minute + Duration::minutes(1),
        severity: Some(rule.severity),
        page: None,
        novelty: None,
        attack: rule.attack.clone(),
        pivots: RuleHit::pivots(window.iter().copied()),
    }
}
