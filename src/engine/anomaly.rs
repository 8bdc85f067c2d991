//! What the engine reports.

use crate::context::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which detection found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A detector's random cut forest (as OpenSearch anomaly detection).
    Rcf,
    /// A CloudTrail-Insights-style rate change against a seasonal baseline.
    Insight,
    /// Something a principal never (or rarely) did before.
    NewEvent,
    /// An event that needs no baseline (a rule file's match).
    Rule,
}

impl AnomalyKind {
    /// Every kind, in report order.
    pub const ALL: [AnomalyKind; 4] = [
        AnomalyKind::Rcf,
        AnomalyKind::Insight,
        AnomalyKind::NewEvent,
        AnomalyKind::Rule,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Rcf => "rcf",
            AnomalyKind::Insight => "insight",
            AnomalyKind::NewEvent => "new_event",
            AnomalyKind::Rule => "rule",
        }
    }
}

/// One anomalous span of one detector (and entity). It reads back what it
/// writes, except `subjects`, which the output leaves out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The detector name, the insight type, or `new-activity` / `rare-activity`.
    pub detector: String,
    pub kind: AnomalyKind,
    /// Field -> value, or null for a single-entity detector.
    pub entity: Option<BTreeMap<String, String>>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub grade: f64,
    pub confidence: f64,
    pub actual: f64,
    pub expected: f64,
    pub score: f64,
    /// One sentence for people: what happened.
    pub summary: String,
    /// Who and what was behind it, against the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    /// The incident it belongs to (related anomalies close in time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<usize>,
    /// Principals and resources it concerns, for grouping.
    #[serde(skip)]
    pub subjects: Vec<String>,
    /// Found only on a second look, after deliveries arrived too late for
    /// the first (`--follow`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    /// An RCF finding from an interval still filling: its end is the
    /// minute its running total was reached ([`super::early`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// When it could first page: the end of the first window that showed it.
    pub detected: DateTime<Utc>,
    /// How urgent: a rule's own until grouped, then its incident's
    /// ([`super::severity`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Whether its incident pages at the run's `--page-severity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<bool>,
    /// What a new-activity finding saw for the first time, or rarely.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub novelty: Option<Novelty>,
    /// The MITRE ATT&CK techniques it is evidence of (`T1562.008`), from
    /// its rule file or Sigma rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attack: Vec<String>,
    /// What a responder searches for next: keys, addresses, where, and the
    /// records behind it ([`Pivots`]).
    #[serde(default)]
    pub pivots: Pivots,
}

/// The values a responder pivots on from a finding, as fields: the access
/// keys its calls were signed with, the addresses they came from, the
/// regions and accounts, and the CloudTrail event IDs of the first records
/// behind it with how many there were.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pivots {
    pub access_key_ids: Vec<String>,
    pub source_ips: Vec<String>,
    pub regions: Vec<String>,
    pub accounts: Vec<String>,
    /// The first few records' IDs ([`crate::context::EVENT_IDS`]).
    pub event_ids: Vec<String>,
    /// The records behind the finding.
    pub events: u64,
}

impl Pivots {
    /// From a context: its facets' values (not the `(other)` fold), its
    /// event IDs and its count of records.
    pub fn of_context(c: &crate::context::Context) -> Pivots {
        use crate::context::{Facet, OTHER};
        let values = |facet: Facet| -> Vec<String> {
            (c.facets.iter())
                .filter(|f| f.facet == facet)
                .flat_map(|f| f.top.iter().map(|v| v.value.clone()))
                .filter(|v| v != OTHER)
                .collect()
        };
        Pivots {
            access_key_ids: values(Facet::AccessKey),
            source_ips: values(Facet::SourceIp),
            regions: values(Facet::Region),
            accounts: values(Facet::Account),
            event_ids: c.event_ids.clone(),
            events: c.events.round().max(0.0) as u64,
        }
    }

    /// Adds another's values (each once) and count.
    pub fn merge(&mut self, other: &Pivots) {
        for (mine, theirs) in [
            (&mut self.access_key_ids, &other.access_key_ids),
            (&mut self.source_ips, &other.source_ips),
            (&mut self.regions, &other.regions),
            (&mut self.accounts, &other.accounts),
        ] {
            for v in theirs {
                if !mine.contains(v) {
                    mine.push(v.clone());
                }
            }
        }
        crate::context::merge_ids(&mut self.event_ids, &other.event_ids);
        self.events += other.events;
    }
}

/// What a principal did that it never (or rarely) did before: the features
/// of a new-activity finding, as `call <source>:<name>`, `region <region>`,
/// `network <a.b.c.0/24>` or `principal (first activity)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Novelty {
    /// Never seen before.
    pub new: Vec<String>,
    /// Seen once or twice before, at least a day earlier.
    pub rare: Vec<String>,
    /// Whether the principal was established: seen often enough while
    /// learning for what it does next to be judged against it.
    pub established: bool,
    /// The sensitive kinds of call (`iam`, `logging`) the principal made
    /// before, as its job: a first call of a new name among them is
    /// routine for it, held to its own bar rather than paging.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub practised: Vec<String>,
    /// A principal first seen after its account learned: when, what it did
    /// in its first hours that takes control, and how often the
    /// organisation's new principals did such things before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub never_seen: Option<NeverSeen>,
}

/// A never-seen principal's first hours ([`Novelty::never_seen`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeverSeen {
    pub first_seen: DateTime<Utc>,
    /// Its calls that take control (`call iam.amazonaws.com:CreateAccessKey`).
    pub controls: Vec<String>,
    /// New principals that took control in their first hours, a day, in
    /// the history before.
    pub like_it_per_day: f64,
    /// Whether it called from a public network: an intruder's new user is
    /// used from outside; a rotation function's new role from inside.
    #[serde(default)]
    pub public: bool,
    /// Whether one of those public networks is new to the organisation (no
    /// other principal used it before): the organisation's usual rate of
    /// new principals does not excuse a newcomer from an unknown network.
    #[serde(default)]
    pub strange_network: bool,
}

/// How urgent a finding is; only those at or above `--page-severity` page.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The severity a name says (`low`, `medium`, `high`, `critical`).
    pub fn parse(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl Anomaly {
    /// The entity as one line, `field=value, …`, or `-`.
    pub fn entity_text(&self) -> String {
        match &self.entity {
            None => "-".into(),
            Some(map) => map
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[cfg(test)]
impl Anomaly {
    /// A bare finding for tests: `kind` about `who`, from `start` for ten
    /// minutes, grade 1, detected at its end; change what a test needs.
    pub(crate) fn sample(kind: AnomalyKind, who: &str, start: DateTime<Utc>) -> Anomaly {
        let end = start + chrono::Duration::minutes(10);
        Anomaly {
            detector: "d".into(),
            kind,
            entity: None,
            start,
            end,
            grade: 1.0,
            confidence: 1.0,
            actual: 1.0,
            expected: 0.0,
            score: 1.0,
            summary: String::new(),
            context: None,
            incident: None,
            subjects: vec![who.into()],
            late: false,
            partial: false,
            detected: end,
            severity: None,
            page: None,
            novelty: None,
            attack: Vec::new(),
            pivots: Default::default(),
        }
    }
}

/// Values in first-seen order, each once (the pivots of an incident's
/// findings, for a card or an OCSF finding).
pub fn distinct<'a>(values: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for v in values {
        if !out.contains(&v.as_str()) {
            out.push(v);
        }
    }
    out
}

/// Rounds for output: four decimals are more than a person or a threshold needs.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
