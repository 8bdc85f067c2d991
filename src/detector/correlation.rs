//! Sigma correlation rules, as our rate findings: `event_count` (at least N
//! matches of the rules it names within a timespan, per group) and
//! `value_count` (at least N distinct values of a field among them). A
//! correlation is a [`Rule`] that matches no record itself; the engine
//! counts the hits of the rules it names ([`crate::engine::rules`]), which
//! keep the fields it groups and counts by, and make no findings of their
//! own unless a correlation says `generate: true`.
//!
//! What the crate parses and trailwatch does not evaluate is refused with
//! why, naming the file and key: temporal correlations, the other value
//! aggregates, tumbling and session windows, conditions of fewer events
//! (they need the absence of events over time), field aliases.

use super::Rule;
use rsigma_parser::{
    ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType, WindowMode,
};
use std::path::Path;
use std::sync::Arc;

/// A correlation, resolved against the rules it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    /// The Sigma rules it counts, as written (names or ids).
    pub references: Vec<String>,
    /// The names of our rules those are (filled when its folder is read).
    pub rules: Vec<String>,
    /// Fields whose values make a group (empty: one group).
    pub group_by: Vec<String>,
    pub timespan: chrono::Duration,
    /// `value_count`: the field whose distinct values are counted.
    pub distinct: Option<String>,
    /// Each must hold: (at least, or more than) this many.
    pub condition: Vec<(Bound, u64)>,
    /// Sigma's `generate`: the rules it counts make findings of their own
    /// too. By default (false) only the correlation does.
    pub generate: bool,
}

/// How a count compares with a condition's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    AtLeast,
    MoreThan,
    Exactly,
}

impl Correlation {
    /// Whether a window's count meets the condition.
    pub fn holds(&self, n: u64) -> bool {
        self.condition.iter().all(|&(b, k)| match b {
            Bound::AtLeast => n >= k,
            Bound::MoreThan => n > k,
            Bound::Exactly => n == k,
        })
    }

    /// The fields the rules it counts must keep with each hit.
    pub fn captures(&self) -> impl Iterator<Item = &String> {
        self.group_by.iter().chain(&self.distinct)
    }

    /// `5 matches` or `5 distinct requestParameters.userName`.
    pub fn counted(&self, n: u64) -> String {
        match &self.distinct {
            Some(f) => format!("{n} distinct {f}"),
            None => format!("{n} match{}", if n == 1 { "" } else { "es" }),
        }
    }
}

/// A Sigma correlation as a rule named `name`, or the key and why not.
pub fn to_rule(path: &Path, name: String, c: &CorrelationRule) -> Result<Rule, (String, String)> {
    let refuse = |key: &str, why: String| Err((key.to_owned(), why));
    let distinct = match c.correlation_type {
        CorrelationType::EventCount => None,
        CorrelationType::ValueCount => match &c.condition {
            CorrelationCondition::Threshold { field: Some(f), .. } if f.len() == 1 => Some(f[0].clone()),
            _ => return refuse("condition", "a value_count correlation names one field to count".into()),
        },
        other => {
            return refuse(
                "correlation.type",
                format!(
                    "{} is not evaluated; trailwatch evaluates event_count and value_count correlations",
                    other.as_str()
                ),
            )
        }
    };
    if c.window != WindowMode::Sliding {
        return refuse(
            "correlation.window",
            format!(
                "{} windows are not evaluated; trailwatch slides the timespan",
                c.window.as_str()
            ),
        );
    }
    if !c.aliases.is_empty() {
        return refuse(
            "correlation.aliases",
            "field aliases are not evaluated yet".into(),
        );
    }
    let CorrelationCondition::Threshold { predicates, .. } = &c.condition else {
        return refuse(
            "correlation.condition",
            "a count correlation needs a threshold (gte: N)".into(),
        );
    };
    let mut condition = Vec::new();
    for &(op, k) in predicates {
        let bound = match op {
            ConditionOperator::Gte => Bound::AtLeast,
            ConditionOperator::Gt => Bound::MoreThan,
            ConditionOperator::Eq => Bound::Exactly,
            ConditionOperator::Lt | ConditionOperator::Lte | ConditionOperator::Neq => {
                return refuse(
                    "correlation.condition",
                    "a condition of fewer events needs their absence over time, which trailwatch does not evaluate; use gte or gt".into(),
                )
            }
        };
        condition.push((bound, k));
    }
    if condition.is_empty() || c.timespan.seconds == 0 {
        return refuse("correlation", "needs a condition and a timespan".into());
    }
    let correlation = Correlation {
        references: c.rules.clone(),
        rules: Vec::new(),
        group_by: c.group_by.clone(),
        timespan: chrono::Duration::seconds(c.timespan.seconds as i64),
        distinct,
        condition,
        generate: c.generate,
    };
    Ok(Rule {
        name,
        description: c.title.clone(),
        severity: super::sigma::severity_of(c.level),
        matches: Vec::new(),
        target: None,
        attack: super::sigma::techniques(&c.tags),
        habitual: None,
        sigma: None,
        correlation: Some(Arc::new(correlation)),
        captures: Vec::new(),
        counted_only: false,
        new: None,
        source: path.to_path_buf(),
    })
}

/// Resolves each correlation among `rules` against the rules it names (by
/// Sigma name, id or our name) and makes those keep the fields it needs.
/// A rule named only by correlations that do not `generate` it is counted
/// only: it makes no finding of its own. A correlation naming a rule not
/// among them is taken out, with why.
pub fn link(rules: &mut Vec<Rule>) -> Vec<(std::path::PathBuf, String)> {
    let mut problems = Vec::new();
    let mut resolved: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let Some(c) = &r.correlation else { continue };
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for reference in &c.references {
            match rules
                .iter()
                .position(|other| other.correlation.is_none() && other.answers_to(reference))
            {
                Some(j) => found.push(j),
                None => missing.push(reference.clone()),
            }
        }
        if missing.is_empty() {
            resolved.push((i, found));
        } else {
            problems.push((
                r.source.clone(),
                format!(
                    "correlation.rules: no Sigma rule named {} in its folder; the correlation is left out",
                    missing.join(", ")
                ),
            ));
        }
    }
    let rules_generate: Vec<Option<bool>> = rules
        .iter()
        .map(|r| r.correlation.as_ref().map(|c| c.generate))
        .collect();
    let keep: Vec<bool> = (0..rules.len())
        .map(|i| rules[i].correlation.is_none() || resolved.iter().any(|(c, _)| *c == i))
        .collect();
    for (c, found) in &resolved {
        let names: Vec<String> = found.iter().map(|&j| rules[j].name.clone()).collect();
        let fields: Vec<String> = rules[*c]
            .correlation
            .as_ref()
            .map(|x| x.captures().cloned().collect())
            .unwrap_or_default();
        for &j in found {
            for f in &fields {
                if let Ok(path) = crate::cloudtrail::FieldPath::parse(f) {
                    if !rules[j].captures.iter().any(|(n, _)| n == f) {
                        rules[j].captures.push((f.clone(), path));
                    }
                }
            }
        }
        if let Some(x) = rules[*c].correlation.as_mut() {
            Arc::make_mut(x).rules = names;
        }
    }
    for (j, rule) in rules.iter_mut().enumerate() {
        let counting: Vec<bool> = resolved
            .iter()
            .filter(|(_, found)| found.contains(&j))
            .filter_map(|(c, _)| rules_generate[*c])
            .collect();
        rule.counted_only = !counting.is_empty() && counting.iter().all(|g| !g);
    }
    let mut i = 0;
    rules.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    problems
}
