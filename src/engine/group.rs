//! Grouping related anomalies into incidents, so one event does not page five
//! times: anomalies that concern the same principal or resource and lie
//! within [`GAP`] of each other are one incident.

use super::anomaly::{Anomaly, Severity};
use chrono::{DateTime, Duration, Utc};

/// Anomalies further apart than this are separate incidents.
pub const GAP_MINUTES: i64 = 30;

/// An incident: anomalies by index, its span and its highest grade.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: usize,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub grade: f64,
    pub members: Vec<usize>,
}

impl Incident {
    /// What its members started costs per hour, at the most.
    pub fn cost_per_hour(&self, anomalies: &[Anomaly]) -> f64 {
        cost_per_hour(self.members.iter().map(|&i| &anomalies[i]))
    }

    /// When it could first be told: its earliest finding's detection.
    pub fn detected(&self, anomalies: &[Anomaly]) -> DateTime<Utc> {
        (self.members.iter())
            .map(|&i| anomalies[i].detected)
            .min()
            .unwrap_or(self.end)
    }

    /// Its severity ([`super::severity::of_incident`]).
    pub fn severity(&self, anomalies: &[Anomaly]) -> Severity {
        super::severity::of_incident(self, anomalies)
    }
}

/// The order a person reads incidents in, in the table and the report
/// alike: the most severe first, then the earliest.
pub fn reading_order<'i>(incidents: &'i [Incident], anomalies: &[Anomaly]) -> Vec<&'i Incident> {
    let mut order: Vec<&Incident> = incidents.iter().collect();
    order.sort_by(|a, b| {
        (b.severity(anomalies).cmp(&a.severity(anomalies))).then(a.start.cmp(&b.start))
    });
    order
}

/// What `members` started costs per hour, at the most.
pub fn cost_per_hour<'a>(members: impl Iterator<Item = &'a Anomaly>) -> f64 {
    members
        .filter_map(|a| a.context.as_ref()?.cost.as_ref())
        .map(|c| c.per_hour)
        .fold(0.0, f64::max)
}

fn find(parent: &mut [usize], i: usize) -> usize {
    let mut root = i;
    while parent[root] != root {
        root = parent[root];
    }
    let mut i = i;
    while parent[i] != root {
        let next = parent[i];
        parent[i] = root;
        i = next;
    }
    root
}

/// Groups `anomalies` (setting each one's `incident`, numbered from 1 in time
/// order) and returns the incidents.
pub fn group(anomalies: &mut [Anomaly]) -> Vec<Incident> {
    let n = anomalies.len();
    let gap = Duration::minutes(GAP_MINUTES);
    let mut parent: Vec<usize> = (0..n).collect();
    for i in 0..n {
        for j in (i + 1)..n {
            let (a, b) = (&anomalies[i], &anomalies[j]);
            let near = a.start <= b.end + gap && b.start <= a.end + gap;
            let shared = a.subjects.iter().any(|s| b.subjects.contains(s));
            if near && shared {
                let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                parent[ri.max(rj)] = ri.min(rj);
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..n {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    let mut incidents: Vec<Incident> = groups
        .into_values()
        .map(|members| Incident {
            id: 0,
            start: members
                .iter()
                .map(|&i| anomalies[i].start)
                .min()
                .unwrap_or_default(),
            end: members
                .iter()
                .map(|&i| anomalies[i].end)
                .max()
                .unwrap_or_default(),
            grade: members
                .iter()
                .map(|&i| anomalies[i].grade)
                .fold(0.0, f64::max),
            members,
        })
        .collect();
    incidents.sort_by_key(|inc| (inc.start, inc.members[0]));
    for (k, inc) in incidents.iter_mut().enumerate() {
        inc.id = k + 1;
        for &i in &inc.members {
            anomalies[i].incident = Some(inc.id);
        }
    }
    incidents
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::AnomalyKind;

    fn a(start: &str, minutes: i64, subjects: &[&str]) -> Anomaly {
        let start: DateTime<Utc> = start.parse().unwrap();
        Anomaly {
            end: start + Duration::minutes(minutes),
            grade: 0.9,
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            detected: start + Duration::minutes(minutes),
            ..Anomaly::sample(AnomalyKind::Rcf, "", start)
        }
    }

    #[test]
    fn same_principal_close_in_time_is_one_incident() {
        let mut list = vec![
            a("2026-01-07T14:20:00Z", 10, &["bob"]),
            a("2026-01-07T14:21:00Z", 30, &["x", "bob"]),
            a("2026-01-07T14:45:00Z", 10, &["x"]),
            a("2026-01-07T14:20:00Z", 10, &["carol"]),
            a("2026-01-07T16:00:00Z", 10, &["bob"]),
        ];
        let incidents = group(&mut list);
        assert_eq!(incidents.len(), 3);
        let ids: Vec<usize> = list.iter().map(|a| a.incident.unwrap()).collect();
        assert_eq!(ids[0], ids[1], "bob, overlapping");
        assert_eq!(ids[1], ids[2], "chained through x");
        assert_ne!(ids[0], ids[3], "carol is someone else");
        assert_ne!(ids[0], ids[4], "bob, but 75 minutes later");
        assert_eq!(incidents[0].members.len(), 3);
        assert_eq!(incidents[0].end.format("%H:%M").to_string(), "14:55");
    }

    #[test]
    fn anomalies_without_subjects_stand_alone() {
        let mut list = vec![
            a("2026-01-07T14:20:00Z", 10, &[]),
            a("2026-01-07T14:20:00Z", 10, &[]),
        ];
        assert_eq!(group(&mut list).len(), 2);
    }
}
