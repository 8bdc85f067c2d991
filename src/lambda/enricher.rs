//! The enricher's edge: for an alert, ask OpenSearch for the window's and
//! the day before's counts of the detector's records (that entity only),
//! build the same [`Context`](crate::context::Context) `detect` shows,
//! judge the finding with its incident (the findings kept about the same
//! principal or resource, [`super::incidents`]), and publish the
//! notification when the incident is at or above the page severity and has
//! not paged at it already (otherwise the anomaly stays in the dashboards
//! and the log line says why). Whatever fails in enriching, the alert is
//! still published, marked as not enriched; when the findings cannot be
//! searched, the alert is judged alone.

use super::alert::{
    dashboards_link, finding_of, messages_of_event, not_enriched, pass_on, render, Alert,
    Notification,
};
use super::incidents::FindingsIndex;
use crate::context::build;
use crate::detector::Detector;
use crate::opensearch::desired::template::INDEX_PATTERN;
use crate::opensearch::query::{context_search, counts_from, records_query};
use crate::opensearch::OpenSearch;
use chrono::Duration;
use serde_json::{json, Value};

/// Where notifications go.
pub struct Publisher {
    pub client: aws_sdk_sns::Client,
    pub topic_arn: String,
    /// What is published there.
    pub form: Form,
}

/// What a [`Publisher`] publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The notification people read (subject and body): the enricher's,
    /// to the notification topic.
    Notification,
    /// The page as the structured message the enricher passes on
    /// ([`Notification::page_message`]): the engine's and the forwarder's,
    /// to the alert topic.
    Page,
}

impl Publisher {
    /// Publishes `n` in the publisher's form; the message id, if SNS gives one.
    pub async fn publish(&self, n: &Notification) -> Result<Option<String>, PublishError> {
        let message = match self.form {
            Form::Notification => n.body.clone(),
            Form::Page => n.page_message(),
        };
        let answer = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&n.subject)
            .message(message)
            .send()
            .await
            .map_err(|e| PublishError {
                topic: self.topic_arn.clone(),
                message: crate::aws::error_message(&e),
            })?;
        Ok(answer.message_id().map(str::to_owned))
    }
}

/// A notification that could not be published.
#[derive(Debug, thiserror::Error)]
#[error("cannot publish to {topic}: {message}")]
pub struct PublishError {
    pub topic: String,
    pub message: String,
}

pub struct Enricher {
    /// The domain the anomaly detectors' alerts come from; none in a
    /// stack without one (it then only passes pages on).
    pub os: Option<OpenSearch>,
    pub detectors: Vec<Detector>,
    /// Dashboards' base URL, for links.
    pub dashboards: Option<String>,
    pub publisher: Option<Publisher>,
    /// The baseline: this long before the window.
    pub baseline: Duration,
    /// Values shown per facet.
    pub top: usize,
    /// Notifications of this severity or higher are published.
    pub page_at: crate::engine::Severity,
    /// Where findings are kept to be judged with their incident; none
    /// judges each alert alone.
    pub findings_index: Option<String>,
    /// The monitors' alerts page (`--pager ad` or `both`); otherwise they
    /// are kept and judged but only a test pages.
    pub pages_alerts: bool,
}

/// An alert's notification, and what went wrong on the way.
pub struct Handled {
    pub notification: Notification,
    /// Why it could not be enriched (it goes out as it came).
    pub not_enriched_because: Option<String>,
    /// What failed in the findings index: searching it (the alert was
    /// judged alone) or keeping the finding.
    pub findings_error: Option<String>,
    /// A page the engine or the forwarder sent, judged by its sender
    /// (whose `--pager` allowed it) and passed on.
    pub page: bool,
}

impl Enricher {
    async fn counts(
        &self,
        os: &OpenSearch,
        query: Value,
    ) -> Result<crate::context::FacetCounts, String> {
        let body = os
            .search(INDEX_PATTERN, &context_search(query))
            .await
            .and_then(|answer| answer.checked_json())
            .map_err(|e| format!("the context search failed: {e}"))?;
        Ok(counts_from(&body))
    }

    /// The enriched notification for one alert, and what failed in the
    /// findings index, if anything.
    pub async fn enrich(&self, alert: &Alert) -> Result<(Notification, Option<String>), String> {
        let os = self
            .os
            .as_ref()
            .ok_or("this stack has no OpenSearch domain to enrich an alert from")?;
        let detector = self
            .detectors
            .iter()
            .find(|d| d.name == alert.detector)
            .ok_or_else(|| format!("no detector named {:?} is shipped", alert.detector))?;
        let entity = alert.entity_values(detector);
        if entity.len() != detector.category_fields.len() {
            return Err(format!(
                "detector {} is per {}, but the alert names no value for it",
                detector.name,
                detector
                    .category_fields
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let window = self
            .counts(os, records_query(detector, &entity, alert.start, alert.end))
            .await?;
        let baseline_start = alert.start - self.baseline;
        let baseline = self
            .counts(
                os,
                records_query(detector, &entity, baseline_start, alert.start),
            )
            .await?;
        let length = (alert.end - alert.start).num_seconds().max(1);
        let intervals = (self.baseline.num_seconds() / length).max(1) as usize;
        let context = build(&window, &baseline, intervals, self.top);
        let link = self
            .dashboards
            .as_deref()
            .map(|base| dashboards_link(base, alert, detector));
        // A test alert is about nothing that happened: not kept, not grouped.
        let index = self.findings_index.as_deref().filter(|_| !alert.test);
        let (judgement, findings_error) = match index {
            Some(index) => {
                let findings = FindingsIndex { os, index };
                let finding = finding_of(alert, detector, &context);
                let (j, error) = findings.judge_and_keep(&finding, self.page_at).await;
                (Some(j), error.map(|e| e.to_string()))
            }
            None => (None, None),
        };
        let n = render(
            alert,
            detector,
            &context,
            link.as_deref(),
            judgement.as_ref(),
        );
        Ok((n, findings_error))
    }

    /// One alert message in, one notification out: never lost.
    pub async fn handle(&self, message: &str) -> Handled {
        // A page the engine or the forwarder judged and rendered: passed on.
        let result = match Notification::from_page_message(message) {
            Some(Ok(page)) => {
                return Handled {
                    notification: pass_on(page, self.dashboards.as_deref()),
                    not_enriched_because: None,
                    findings_error: None,
                    page: true,
                }
            }
            Some(Err(why)) => Err(why),
            None => match Alert::from_message(message) {
                Ok(alert) => self.enrich(&alert).await,
                Err(e) => Err(e),
            },
        };
        match result {
            Ok((notification, findings_error)) => Handled {
                notification,
                not_enriched_because: None,
                findings_error,
                page: false,
            },
            Err(why) => Handled {
                notification: not_enriched(message, &why),
                not_enriched_because: Some(why),
                findings_error: None,
                page: false,
            },
        }
    }

    pub async fn publish(&self, n: &Notification) -> Result<Option<String>, PublishError> {
        match &self.publisher {
            Some(p) => p.publish(n).await,
            None => Ok(None),
        }
    }

    /// One Lambda invocation: every alert of the event, enriched or not,
    /// published when it pages ([`Notification::pages`]); one log line
    /// each. Fails only if publishing fails, so the platform retries.
    pub async fn invocation(
        &self,
        event: Value,
        request_id: &str,
    ) -> Result<Value, lambda_runtime::Error> {
        let mut published = Vec::new();
        for message in messages_of_event(&event) {
            let Handled {
                notification,
                not_enriched_because: why,
                findings_error,
                page,
            } = self.handle(&message).await;
            let pages = notification.pages(self.page_at)
                && (self.pages_alerts || notification.test || page);
            let id = if pages {
                self.publish(&notification).await?
            } else {
                None
            };
            println!(
                "{}",
                json!({
                    "function": "enricher",
                    "request_id": request_id,
                    "subject": notification.subject,
                    "enriched": notification.enriched,
                    "not_enriched_because": why,
                    "severity": notification.severity,
                    "incident_paged_before": notification.repeat,
                    "passed_on": page,
                    "findings_error": findings_error,
                    "paged": pages,
                    "message_id": id,
                })
            );
            published.push(json!({"subject": notification.subject, "enriched": notification.enriched,
                                  "severity": notification.severity, "paged": pages, "message_id": id}));
        }
        Ok(json!({"published": published}))
    }
}
