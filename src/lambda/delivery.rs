//! Delivering a batch to OpenSearch without losing a record: `_bulk`
//! requests under a size limit, halved when the domain says a request is too
//! large; items that failed for now (429, 5xx, timeouts, dropped
//! connections) retried with exponential backoff and full jitter while the
//! invocation has time; items that can never be indexed dead-lettered with
//! the reason. If items are still failing when time runs short, delivery
//! fails, so that the platform retries the whole batch (document ids are
//! CloudTrail's event ids, so what was indexed already is not doubled).

use super::dead_letter::{DeadLetters, Letter};
use super::forwarder::{bulk_requests, classify, documents_and_hits, Document, LogBatch, Parsed};
use super::incidents::{judge_incidents, FindingsIndex};
use super::rule_pages::{incident_pages, paging_findings, Pager};
use crate::detector::Rule;
use crate::engine::group::group;
use crate::engine::Severity;
use crate::opensearch::{OpenSearch, OpenSearchError};
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How delivery paces itself.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest `_bulk` body (the smallest AWS domains take 10 MiB).
    pub max_request_bytes: usize,
    /// When the invocation must be done by.
    pub deadline: Instant,
    /// Time kept back at the end to report and return.
    pub margin: Duration,
    /// First retry delay; it doubles each round, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest wait for one `_bulk` answer.
    pub request_timeout: Duration,
}

impl Limits {
    pub fn until(deadline: Instant) -> Limits {
        Limits {
            max_request_bytes: 5 * 1024 * 1024,
            deadline,
            margin: Duration::from_secs(2),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What one invocation did: the structured log line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub received: usize,
    pub indexed: usize,
    /// Item retries, summed over rounds.
    pub retried: usize,
    pub dead_lettered: usize,
    /// `_bulk` requests halved because the domain found them too large.
    pub split: usize,
    pub rounds: usize,
    /// Items still failing when time ran out (then the invocation fails).
    pub pending: usize,
    /// Pages sent: one per incident of the rule findings.
    pub paged: usize,
    /// Paging rule findings of muted principals (`MUTE`), not sent.
    #[serde(skip_serializing_if = "is_zero")]
    pub muted: usize,
    /// Why the paged rule findings could not be kept in the findings index
    /// (their pages went; a later alert of their incident may page again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings_not_kept: Option<String>,
}

/// The forwarder's paging on rule files: which rules, from what severity,
/// and where the pages go.
pub struct Paging {
    pub rules: Vec<Rule>,
    pub page_at: Severity,
    pub pager: Pager,
    /// Where paged findings are kept, so the enricher judges later alerts
    /// with their incident ([`super::incidents`]); none keeps nothing.
    pub findings_index: Option<String>,
    /// The organisation's accounts besides the batch's own: a snapshot
    /// shared with one of them is not shared outside.
    pub org_accounts: Vec<String>,
    /// The principals it does not page on (`MUTE`, `--mute`).
    pub mute: crate::engine::mute::Mute,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why an invocation fails (and the platform should retry it).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{pending} of {received} records still failing after {rounds} rounds when time ran short (last: {last}); failing the invocation so the platform retries it")]
    OutOfTime {
        pending: usize,
        received: usize,
        rounds: usize,
        last: String,
        report: Box<Report>,
    },
    #[error("OpenSearch refused the forwarder's credentials ({status}): {body}; check the role mapping of the forwarder's role")]
    Unauthorized {
        status: u16,
        body: String,
        report: Box<Report>,
    },
    #[error("cannot deliver to OpenSearch: {message}; failing the invocation so the platform retries it")]
    Unreachable {
        message: String,
        report: Box<Report>,
    },
    #[error(transparent)]
    DeadLetter(#[from] super::dead_letter::DeadLetterError),
    #[error("{0}; failing the invocation so the platform retries it (nothing was indexed yet)")]
    Page(#[from] super::rule_pages::PageError),
    #[error("not a CloudWatch Logs subscription event: {0}")]
    BadEvent(String),
}

impl DeliveryError {
    /// What the invocation did before it failed, when it got that far.
    pub fn report(&self) -> Option<&Report> {
        match self {
            DeliveryError::OutOfTime { report, .. }
            | DeliveryError::Unauthorized { report, .. }
            | DeliveryError::Unreachable { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// A delay before retry round `round` (1-based): full jitter over an
/// exponential ceiling, `unit` in [0, 1) drawn by the caller.
pub fn backoff(round: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let ceiling = base
        .saturating_mul(2u32.saturating_pow(round.saturating_sub(1)))
        .min(cap);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// Reads `awslogs.data` out of a subscription event.
pub fn batch_of_event(event: &serde_json::Value) -> Result<LogBatch, DeliveryError> {
    let data = event
        .pointer("/awslogs/data")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| DeliveryError::BadEvent("no awslogs.data string".into()))?;
    LogBatch::from_awslogs_data(data).map_err(DeliveryError::BadEvent)
}

/// Indexes a batch: every record is indexed or dead-lettered, or the call
/// fails.
///
/// With `paging`, the rule findings among the records are paged first: a
/// page that cannot be sent fails the invocation before anything is
/// indexed, so the platform's retry sends it (a batch retried for another
/// reason pages again: a page is never lost, and may come twice).
pub async fn deliver(
    os: &OpenSearch,
    batch: &LogBatch,
    dead: &DeadLetters,
    paging: Option<&Paging>,
    limits: &Limits,
) -> Result<Report, DeliveryError> {
    let rules = paging.map_or(&[][..], |p| &p.rules[..]);
    let Parsed {
        docs,
        poison,
        hits,
        accounts,
    } = documents_and_hits(batch, rules);
    let mut report = Report {
        received: docs.len() + poison.len(),
        ..Report::default()
    };
    if let Some(p) = paging {
        let judging = crate::engine::rules::Judging {
            org: p
                .org_accounts
                .iter()
                .cloned()
                .chain((!batch.owner.is_empty()).then(|| batch.owner.clone()))
                .chain(accounts)
                .collect(),
            novelty: None,
            history: None,
            rules,
        };
        let mut findings = paging_findings(&hits, p.page_at, &judging);
        report.muted = p.mute.apply(&mut findings);
        match &p.findings_index {
            // One page per incident across the stack: judged with what the
            // engine, the enricher and earlier batches kept.
            Some(index) => {
                let index = FindingsIndex { os, index };
                let incidents = group(&mut findings);
                let members = incidents
                    .iter()
                    .map(|inc| inc.members.iter().map(|&i| &findings[i]).collect());
                let judged = judge_incidents(members, &index, p.page_at).await;
                report.paged = p.pager.send(&judged.pages).await?;
                // Kept once the pages went: a retried batch pages again.
                let mut error = judged.error;
                if let Err(e) = index.keep_all(&judged.kept).await {
                    error.get_or_insert(e);
                }
                report.findings_not_kept = error.map(|e| e.to_string());
            }
            None => {
                report.paged = p.pager.send(&incident_pages(&mut findings)).await?;
            }
        }
    }
    let letter =
        |log_event_id: &str, message: &str, reason: String, doc: Option<&Document>| Letter {
            reason,
            log_group: batch.log_group.clone(),
            log_stream: batch.log_stream.clone(),
            log_event_id: log_event_id.to_owned(),
            index: doc.map(|d| d.index.clone()),
            id: doc.map(|d| d.id.clone()),
            message: message.to_owned(),
            original_bytes: None,
        };
    let poison_letters: Vec<Letter> = poison
        .iter()
        .map(|p| letter(&p.log_event_id, &p.message, p.reason.clone(), None))
        .collect();
    dead.send(&poison_letters).await?;
    report.dead_lettered += poison_letters.len();

    // A document that can never be indexed, as a letter with its original message.
    let dead_doc = |doc: &Document, reason: String| {
        let id = doc.log_event_id.as_str();
        let message = batch
            .log_events
            .iter()
            .find(|e| e.id == id)
            .map_or("", |e| e.message.as_str());
        letter(id, message, reason, Some(doc))
    };

    let mut pending: Vec<usize> = (0..docs.len()).collect();
    let mut last_problem = String::new();
    while !pending.is_empty() {
        report.rounds += 1;
        let mut retry = Vec::new();
        let mut letters = Vec::new();
        let mut queue: VecDeque<_> =
            bulk_requests(&docs, &pending, limits.max_request_bytes).into();
        while let Some(request) = queue.pop_front() {
            let left = limits.deadline.saturating_duration_since(Instant::now());
            if left <= limits.margin {
                retry.extend(&request.documents);
                last_problem = "no time left to send".into();
                continue;
            }
            let timeout = limits.request_timeout.min(left - limits.margin);
            match os.bulk(request.body.clone(), Some(timeout)).await {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    let outcome = classify(&request, &answer.json().unwrap_or_default());
                    report.indexed += outcome.indexed.len();
                    if !outcome.retry.is_empty() {
                        last_problem = format!("{} items answered 429 or 5xx", outcome.retry.len());
                    }
                    retry.extend(outcome.retry);
                    for (i, reason) in outcome.dead {
                        letters.push(dead_doc(&docs[i], reason));
                    }
                }
                Ok(answer) if answer.status == 413 && request.documents.len() > 1 => {
                    report.split += 1;
                    let half = request.documents.len() / 2;
                    let bytes = request.body.len() / 2;
                    for part in [&request.documents[..half], &request.documents[half..]] {
                        queue.extend(bulk_requests(&docs, part, bytes.max(1)));
                    }
                }
                Ok(answer)
                    if answer.status == 413
                        || answer.status == 400 && request.documents.len() == 1 =>
                {
                    let reason =
                        format!("{} for this one record: {}", answer.status, answer.text());
                    letters.push(dead_doc(&docs[request.documents[0]], reason));
                }
                Ok(answer) if answer.status == 400 => {
                    // A body the domain cannot read as a whole: halve it to
                    // find the record at fault.
                    report.split += 1;
                    let half = request.documents.len() / 2;
                    for part in [&request.documents[..half], &request.documents[half..]] {
                        queue.extend(bulk_requests(&docs, part, limits.max_request_bytes));
                    }
                }
                Ok(answer) if answer.status == 401 || answer.status == 403 => {
                    dead.send(&letters).await?;
                    report.dead_lettered += letters.len();
                    return Err(DeliveryError::Unauthorized {
                        status: answer.status,
                        body: answer.text(),
                        report: Box::new(report),
                    });
                }
                Ok(answer) => {
                    last_problem = format!("_bulk answered {}", answer.status);
                    retry.extend(&request.documents);
                }
                Err(OpenSearchError::Transport {
                    message,
                    transient: false,
                    ..
                }) => {
                    // No retry can mend it (a CA not trusted, nothing listening).
                    dead.send(&letters).await?;
                    report.dead_lettered += letters.len();
                    return Err(DeliveryError::Unreachable {
                        message,
                        report: Box::new(report),
                    });
                }
                Err(e) => {
                    last_problem = match e {
                        OpenSearchError::Transport { message, .. } => message,
                        other => other.to_string(),
                    };
                    retry.extend(&request.documents);
                }
            }
        }
        dead.send(&letters).await?;
        report.dead_lettered += letters.len();
        if retry.is_empty() {
            break;
        }
        retry.sort_unstable();
        retry.dedup();
        report.retried += retry.len();
        let delay = backoff(
            report.rounds as u32,
            limits.base_backoff,
            limits.max_backoff,
            rand::random::<f64>(),
        );
        let left = limits.deadline.saturating_duration_since(Instant::now());
        if left <= limits.margin + delay {
            report.pending = retry.len();
            return Err(DeliveryError::OutOfTime {
                pending: retry.len(),
                received: report.received,
                rounds: report.rounds,
                last: last_problem,
                report: Box::new(report),
            });
        }
        tokio::time::sleep(delay).await;
        pending = retry;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_with_full_jitter() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(5);
        assert_eq!(backoff(1, base, cap, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(3, base, cap, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(10, base, cap, 1.0), cap);
        assert_eq!(backoff(40, base, cap, 0.5), cap / 2);
        assert_eq!(backoff(3, base, cap, 0.0), Duration::ZERO);
    }

    #[test]
    fn events_without_awslogs_data_are_refused() {
        let err = batch_of_event(&serde_json::json!({"Records": []})).unwrap_err();
        assert!(err.to_string().contains("no awslogs.data"), "{err}");
        let err = batch_of_event(&serde_json::json!({"awslogs": {"data": "!!"}})).unwrap_err();
        assert!(
            err.to_string()
                .contains("not a CloudWatch Logs subscription event"),
            "{err}"
        );
    }
}
