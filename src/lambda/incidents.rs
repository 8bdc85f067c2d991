//! The deployed stack's incidents. `detect` groups findings about the same
//! principal or resource within half an hour into one incident and pages
//! each incident once, at its severity; the stack does the same across
//! Lambda invocations by keeping every finding it judges in the findings
//! index ([`FINDINGS_INDEX`]): the enricher's anomaly detector alerts and
//! the forwarder's rule findings.
//!
//! An alert is judged with the kept findings it shares a subject with in
//! the half hour around it ([`judge`], the pure core, with the engine's own
//! grouping and severity); it pages when its incident reaches the page
//! severity and has not already paged at that severity or above, so a
//! second detector firing on the same leaked key updates the dashboards
//! instead of waking someone twice, and two findings that are each too
//! mild to page can page together. [`FindingsIndex`] is the edge.

use crate::engine::group::{group, GAP_MINUTES};
use crate::engine::{severity, Anomaly, Severity};
use crate::opensearch::OpenSearch;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub use crate::opensearch::desired::findings::FINDINGS_INDEX;

/// Kept findings looked at per judgement: the most recent of them.
pub const RECENT_MAX: usize = 200;

/// A finding as the stack keeps it: what it was, whom it concerns, and the
/// severity at which it paged its incident (none when it did not page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    /// Principals and resources: what incidents are grouped by.
    pub subjects: Vec<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub paged: Option<Severity>,
    /// What a responder searches by, indexed (the finding's own copy is
    /// not): `pivots.access_key_ids:AKIA…`, `pivots.event_ids:…`.
    #[serde(default)]
    pub pivots: crate::engine::anomaly::Pivots,
    /// The whole finding, stored but not indexed (its entity's field names
    /// vary by detector).
    pub finding: Anomaly,
}

impl Kept {
    pub fn new(finding: &Anomaly, paged: Option<Severity>) -> Kept {
        Kept {
            subjects: finding.subjects.clone(),
            start: finding.start,
            end: finding.end,
            paged,
            pivots: finding.pivots.clone(),
            finding: finding.clone(),
        }
    }

    /// The finding with its subjects, which its own serialization leaves out.
    fn anomaly(&self) -> Anomaly {
        Anomaly {
            subjects: self.subjects.clone(),
            ..self.finding.clone()
        }
    }

    /// The document id: the same finding kept twice (a retried invocation,
    /// a monitor that alerts again) is one document.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(identity(&self.finding).as_bytes());
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What makes two findings the same: kind, detector, entity and start.
fn identity(f: &Anomaly) -> String {
    json!([f.kind, f.detector, f.entity, f.start]).to_string()
}

/// How a finding was judged with its incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The incident's severity, this finding included.
    pub severity: Severity,
    /// Whether this finding pages: its incident is at or above the page
    /// severity and had not paged at this severity or above.
    pub pages: bool,
    /// The highest severity the incident paged at before.
    pub paged_before: Option<Severity>,
    /// The incident's other findings, in time order.
    pub others: Vec<Anomaly>,
}

/// Judges `finding` with the kept findings `recent` (any: those not in its
/// incident are left aside), as `detect` judges an incident.
pub fn judge(finding: &Anomaly, recent: &[Kept], page_at: Severity) -> Judgement {
    let mine = identity(finding);
    let recent: Vec<&Kept> = recent
        .iter()
        .filter(|k| identity(&k.finding) != mine)
        .collect();
    let mut all: Vec<Anomaly> = recent.iter().map(|k| k.anomaly()).collect();
    all.push(finding.clone());
    let me = all.len() - 1;
    let incidents = group(&mut all);
    let Some(incident) = incidents.iter().find(|i| i.members.contains(&me)) else {
        unreachable!("grouping puts every finding in an incident");
    };
    let severity = severity::of_incident(incident, &all);
    let paged_before = incident
        .members
        .iter()
        .filter(|&&i| i != me)
        .filter_map(|&i| recent[i].paged)
        .max();
    let mut others: Vec<Anomaly> = incident
        .members
        .iter()
        .filter(|&&i| i != me)
        .map(|&i| all[i].clone())
        .collect();
    others.sort_by_key(|a| a.start);
    Judgement {
        severity,
        pages: severity >= page_at && paged_before.is_none_or(|p| severity > p),
        paged_before,
        others,
    }
}

/// Pages judged with what the stack kept in the findings index, and what
/// to keep there once they are sent.
pub struct Judged {
    pub pages: Vec<super::alert::Notification>,
    /// Every finding of the incidents, each lead with the severity it
    /// paged at: [`FindingsIndex::keep_all`] them after the pages went, so
    /// a retried invocation pages again.
    pub kept: Vec<Kept>,
    /// The index could not be searched: those incidents were judged alone.
    pub error: Option<FindingsError>,
}

/// Pages for `incidents` (each its members, judged by the caller to
/// page), judged with the findings index: an incident that shares an
/// incident with a finding that already paged at its severity or above (an
/// alert the enricher paged, a rule page of the forwarder, the engine's
/// page) does not page again. The engine's incidents and the forwarder's
/// rule incidents are judged alike, so one incident pages once whoever saw
/// it first.
pub async fn judge_incidents<'a>(
    incidents: impl Iterator<Item = Vec<&'a Anomaly>>,
    index: &FindingsIndex<'_>,
    page_at: Severity,
) -> Judged {
    use super::rule_pages::{lead_of, page_of_incident};
    let mut judged = Judged {
        pages: Vec::new(),
        kept: Vec::new(),
        error: None,
    };
    for members in incidents {
        let lead = lead_of(&members);
        let recent = match index.recent(lead).await {
            Ok(recent) => recent,
            Err(e) => {
                judged.error.get_or_insert(e);
                Vec::new()
            }
        };
        // What each kept document paged at: keeping it again never lowers
        // that (a repeat that does not page stays the page it was).
        let paged_as: std::collections::HashMap<String, Severity> = recent
            .iter()
            .filter_map(|k| Some((k.id(), k.paged?)))
            .collect();
        // The lead itself kept as paged: this incident went out before.
        let paged_itself = paged_as.get(&Kept::new(lead, None).id()).copied();
        let mut all = recent;
        let known: std::collections::HashSet<String> = all.iter().map(Kept::id).collect();
        all.extend(
            members
                .iter()
                .map(|m| Kept::new(m, None))
                .filter(|k| !known.contains(&k.id())),
        );
        let judgement = judge(lead, &all, page_at);
        // The caller judged that it pages; the index only says whether
        // someone paged it already, at its severity or above.
        let repeat = judgement
            .paged_before
            .max(paged_itself)
            .is_some_and(|p| p >= judgement.severity);
        let paged = (!repeat).then_some(judgement.severity);
        if paged.is_some() {
            judged.pages.push(page_of_incident(&members));
        }
        // Findings the index tells apart by kind, detector, entity and
        // start only (a partial finding and its whole one) are one
        // document: the lead's paging wins.
        for m in &members {
            let mut k = Kept::new(m, if std::ptr::eq(*m, lead) { paged } else { None });
            k.paged = k.paged.max(paged_as.get(&k.id()).copied());
            match judged.kept.iter_mut().find(|x| x.id() == k.id()) {
                Some(x) => x.paged = x.paged.max(k.paged),
                None => judged.kept.push(k),
            }
        }
    }
    judged
}

/// The search for kept findings that could share an incident with
/// `finding`: any of its subjects, within the grouping gap of its span.
pub fn recent_query(finding: &Anomaly) -> Value {
    let gap = Duration::minutes(GAP_MINUTES);
    json!({
        "size": RECENT_MAX,
        "sort": [{"start": "desc"}],
        "query": {"bool": {"filter": [
            {"terms": {"subjects": finding.subjects}},
            {"range": {"end": {"gte": (finding.start - gap).to_rfc3339()}}},
            {"range": {"start": {"lte": (finding.end + gap).to_rfc3339()}}}
        ]}}
    })
}

/// Kept findings from a search answer; documents that do not read back
/// (written by another version) are left out.
pub fn kept_from(answer: &Value) -> Vec<Kept> {
    answer["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|hit| serde_json::from_value(hit["_source"].clone()).ok())
        .collect()
}

/// Lines for a notification: the incident's other findings.
pub fn incident_lines(j: &Judgement) -> Vec<String> {
    j.others
        .iter()
        .map(|a| {
            format!(
                "{} {} {}: {}",
                a.start.format("%H:%M"),
                a.kind.name(),
                a.detector,
                a.summary
            )
        })
        .collect()
}

/// The findings index could not be read (the finding was judged alone) or
/// written (the finding was not kept).
#[derive(Debug, thiserror::Error)]
#[error("the findings index {index}: cannot {action}: {message}")]
pub struct FindingsError {
    pub index: String,
    /// `search` or `keep`.
    pub action: &'static str,
    pub message: String,
}

/// The findings index on the domain.
pub struct FindingsIndex<'a> {
    pub os: &'a OpenSearch,
    pub index: &'a str,
}

impl FindingsIndex<'_> {
    fn failed(&self, action: &'static str, message: String) -> FindingsError {
        FindingsError {
            index: self.index.to_owned(),
            action,
            message,
        }
    }

    /// The kept findings that could share an incident with `finding`. A
    /// missing index (nothing kept yet) is none.
    pub async fn recent(&self, finding: &Anomaly) -> Result<Vec<Kept>, FindingsError> {
        let answer = self
            .os
            .search(self.index, &recent_query(finding))
            .await
            .map_err(|e| self.failed("search", e.to_string()))?;
        if answer.status == 404 {
            return Ok(Vec::new());
        }
        let body = answer
            .checked_json()
            .map_err(|e| self.failed("search", e.to_string()))?;
        Ok(kept_from(&body))
    }

    /// Keeps `kept`, visible to the next search when this returns.
    pub async fn keep(&self, kept: &Kept) -> Result<(), FindingsError> {
        let body = serde_json::to_value(kept).map_err(|e| self.failed("keep", e.to_string()))?;
        self.os
            .request(
                "POST",
                &format!("/{}/_doc/{}?refresh=wait_for", self.index, kept.id()),
                Some(&body),
            )
            .await
            .and_then(|r| r.check())
            .map_err(|e| self.failed("keep", e.to_string()))?;
        Ok(())
    }

    /// Keeps every one of `kept` in one request, visible to the next search
    /// when this returns (the forwarder's paged findings of a batch).
    pub async fn keep_all(&self, kept: &[Kept]) -> Result<(), FindingsError> {
        if kept.is_empty() {
            return Ok(());
        }
        let mut body = String::new();
        for k in kept {
            let doc = serde_json::to_string(k).map_err(|e| self.failed("keep", e.to_string()))?;
            body.push_str(&json!({"index": {"_index": self.index, "_id": k.id()}}).to_string());
            body.push('\n');
            body.push_str(&doc);
            body.push('\n');
        }
        let answer = self
            .os
            .bulk_at("/_bulk?refresh=wait_for", body, None)
            .await
            .and_then(|r| r.checked_json())
            .map_err(|e| self.failed("keep", e.to_string()))?;
        if answer["errors"] == json!(true) {
            let first = answer["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|i| i["index"]["error"]["reason"].as_str())
                .unwrap_or("an item was refused");
            return Err(self.failed("keep", first.to_owned()));
        }
        Ok(())
    }

    /// Judges `finding` with what is kept and keeps it with the outcome.
    /// When the index cannot be searched, the finding is judged alone (as
    /// before the index existed); that error, or else one keeping it, is
    /// returned beside the judgement.
    pub async fn judge_and_keep(
        &self,
        finding: &Anomaly,
        page_at: Severity,
    ) -> (Judgement, Option<FindingsError>) {
        let (judgement, mut error) = match self.recent(finding).await {
            Ok(recent) => (judge(finding, &recent, page_at), None),
            Err(e) => (judge(finding, &[], page_at), Some(e)),
        };
        let paged = judgement.pages.then_some(judgement.severity);
        if let Err(e) = self.keep(&Kept::new(finding, paged)).await {
            error.get_or_insert(e);
        }
        (judgement, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::AnomalyKind;

    const BOB: &str = "arn:aws:iam::111122223333:user/bob";

    fn finding(detector: &str, kind: AnomalyKind, at: &str, grade: f64) -> Anomaly {
        Anomaly {
            detector: detector.into(),
            grade,
            summary: format!("{detector} for bob"),
            ..Anomaly::sample(kind, BOB, at.parse().unwrap())
        }
    }

    /// Refused calls at a grade too low to page alone.
    fn refused(at: &str) -> Anomaly {
        finding("ApiErrorRateInsight", AnomalyKind::Insight, at, 0.75)
    }

    #[test]
    fn a_finding_alone_is_judged_as_detect_judges_it_alone() {
        let a = refused("2026-01-07T14:20:00Z");
        let j = judge(&a, &[], Severity::Medium);
        assert_eq!(j.severity, severity::of_finding(&a));
        assert_eq!(j.severity, Severity::Low);
        assert!(!j.pages && j.others.is_empty());
    }

    #[test]
    fn two_mild_findings_about_one_principal_page_together() {
        // Refused calls (worth waking for) at 0.75, and an RCF window at 0.9
        // with nothing to wake for: neither pages alone.
        let rcf = finding("iam-changes", AnomalyKind::Rcf, "2026-01-07T14:30:00Z", 0.9);
        assert!(!judge(&rcf, &[], Severity::Medium).pages);
        let kept = [Kept::new(&refused("2026-01-07T14:20:00Z"), None)];
        let j = judge(&rcf, &kept, Severity::Medium);
        assert_eq!(j.severity, Severity::High, "two kinds agree at 0.9");
        assert!(j.pages);
        assert_eq!(j.others.len(), 1);
        assert_eq!(
            incident_lines(&j),
            ["14:20 insight ApiErrorRateInsight: ApiErrorRateInsight for bob"]
        );
    }

    #[test]
    fn an_incident_pages_once_unless_it_grows_more_severe() {
        let first = finding("api-errors", AnomalyKind::Rcf, "2026-01-07T14:20:00Z", 0.9);
        let paged = Kept::new(
            &Anomaly {
                detector: "ApiErrorRateInsight".into(),
                ..first.clone()
            },
            Some(Severity::High),
        );
        // A second detector on the same leaked key: high again, no page.
        let j = judge(&first, std::slice::from_ref(&paged), Severity::Medium);
        assert_eq!(j.paged_before, Some(Severity::High));
        assert!(!j.pages, "{j:?}");
        // What it started costs $150 an hour: critical, which pages.
        let mut costly = first.clone();
        costly.context = Some(crate::context::Context {
            cost: Some(crate::cost::Estimate {
                items: Vec::new(),
                per_hour: 150.0,
                per_day: 3600.0,
                currency: "USD".into(),
                basis: String::new(),
                assumptions: Vec::new(),
            }),
            ..crate::context::Context::default()
        });
        let j = judge(&costly, &[paged], Severity::Medium);
        assert_eq!(j.severity, Severity::Critical);
        assert!(j.pages);
    }

    #[test]
    fn findings_of_others_or_long_before_are_another_incident() {
        let rcf = finding("iam-changes", AnomalyKind::Rcf, "2026-01-07T14:30:00Z", 0.9);
        let mut carol = refused("2026-01-07T14:20:00Z");
        carol.subjects = vec!["arn:aws:iam::111122223333:user/carol".into()];
        let hours_before = refused("2026-01-07T11:00:00Z");
        let kept = [Kept::new(&carol, None), Kept::new(&hours_before, None)];
        let j = judge(&rcf, &kept, Severity::Medium);
        assert!(j.others.is_empty() && !j.pages, "{j:?}");
    }

    #[test]
    fn the_same_finding_kept_again_is_itself_not_its_own_incident() {
        let a = finding("api-errors", AnomalyKind::Rcf, "2026-01-07T14:20:00Z", 0.95);
        let again = Kept::new(&a, None);
        assert_eq!(again.id(), Kept::new(&a, Some(Severity::High)).id());
        let j = judge(&a, &[again], Severity::Medium);
        assert!(j.others.is_empty());
    }

    #[test]
    fn a_kept_finding_reads_back_with_its_subjects() {
        let mut a = refused("2026-01-07T14:20:00Z");
        a.novelty = Some(crate::engine::anomaly::Novelty {
            new: vec!["network 203.0.113.0/24".into()],
            rare: Vec::new(),
            established: true,
            ..Default::default()
        });
        a.pivots.access_key_ids = vec!["AKIAEXAMPLEBOB".into()];
        a.pivots.event_ids = vec!["e-1".into()];
        let kept = Kept::new(&a, Some(Severity::Medium));
        let doc = serde_json::to_value(&kept).unwrap();
        assert_eq!(doc["subjects"][0], BOB);
        assert_eq!(doc["paged"], "medium");
        // The pivots at the top, where the template indexes them.
        assert_eq!(doc["pivots"]["access_key_ids"][0], "AKIAEXAMPLEBOB");
        assert_eq!(doc["pivots"]["event_ids"][0], "e-1");
        let mapped = crate::opensearch::desired::findings::template();
        let mapped = &mapped["template"]["mappings"]["properties"]["pivots"]["properties"];
        for field in doc["pivots"].as_object().unwrap().keys() {
            assert!(mapped.get(field).is_some(), "pivots.{field} is not mapped");
        }
        let answer = json!({"hits": {"hits": [{"_source": doc}, {"_source": {"other": 1}}]}});
        let back = kept_from(&answer);
        assert_eq!(back.len(), 1, "what does not read back is left out");
        assert_eq!(back[0].paged, Some(Severity::Medium));
        assert_eq!(back[0].anomaly(), a);
        let q = recent_query(&a);
        assert_eq!(q["query"]["bool"]["filter"][0]["terms"]["subjects"][0], BOB);
        assert_eq!(
            q["query"]["bool"]["filter"][1]["range"]["end"]["gte"],
            "2026-01-07T13:50:00+00:00"
        );
    }
}
