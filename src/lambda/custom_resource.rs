//! The bootstrap as CloudFormation custom resources. `Custom::OpenSearchObjects`:
//! on Create and Update it applies the OpenSearch objects (the same
//! reconcile `deploy` runs from the CLI), so that a template deployed
//! through the user's own pipeline, or a domain inside a VPC the CLI cannot
//! reach, is configured too. `Custom::DashboardSignIn`: on Create and
//! Update it maps the identity pool's roles by token for the app client the
//! domain made ([`crate::users::sign_in`]). On Delete both leave things as
//! they are: the domain is retained, and the identity pool goes with the
//! stack. Every event is answered at its pre-signed `ResponseURL`, failures
//! with their reason, so that a stack never waits an hour for an answer
//! that will not come.

use crate::detector::Detector;
use crate::opensearch::apply::Wait;
use crate::opensearch::bootstrap::{ready, reconcile, Action, Cluster};
use crate::opensearch::desired::channels::Channel;
use crate::opensearch::desired::security::Access;
use crate::opensearch::desired::{desired, Settings};
use crate::opensearch::OpenSearch;
use serde_json::{json, Value};
use std::time::Duration;

/// The resource type of the OpenSearch objects.
pub const OPENSEARCH_OBJECTS: &str = "Custom::OpenSearchObjects";
/// The resource type of the Dashboards sign-in role mapping.
pub const DASHBOARD_SIGN_IN: &str = "Custom::DashboardSignIn";

/// Why a Create or Update could not be done; its text, causes included
/// (they are interpolated, not chained), is the reason CloudFormation shows
/// in the stack's events.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("unknown RequestType {0:?}")]
    UnknownRequest(String),
    #[error("unknown resource type {0:?}: this bootstrap serves {OPENSEARCH_OBJECTS} and {DASHBOARD_SIGN_IN}")]
    UnknownResource(String),
    /// A property the template passes is missing or wrong.
    #[error("{0}")]
    Property(String),
    /// The detector files render objects the plugins would refuse.
    #[error("{}", .0.join("; "))]
    Refused(Vec<String>),
    #[error("cannot reach OpenSearch: {0}")]
    Connect(String),
    #[error("OpenSearch is not ready: {0}")]
    NotReady(crate::opensearch::OpenSearchError),
    #[error("{}", crate::aws::with_causes(.0.as_ref()))]
    Apply(Box<crate::opensearch::apply::ApplyError>),
    #[error("{0}")]
    SignIn(crate::users::sign_in::SignInError),
    #[error("the bootstrap ({resource_type}) did not finish in {seconds} s; update the stack to try again (or run trailwatch opensearch apply for the OpenSearch objects)")]
    OutOfTime { resource_type: String, seconds: u64 },
}

/// Why an event could not be handled, or answered.
#[derive(Debug, thiserror::Error)]
pub enum CustomResourceError {
    #[error("not a CloudFormation custom resource event: {0}")]
    NotAnEvent(String),
    #[error("cannot answer CloudFormation at the ResponseURL: {0}")]
    Respond(String),
}

/// The fields of a custom resource event that the answer echoes.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub request_type: String,
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub physical_resource_id: Option<String>,
    /// `Custom::OpenSearchObjects` or `Custom::DashboardSignIn`.
    pub resource_type: String,
    pub properties: Value,
}

impl Event {
    pub fn parse(v: &Value) -> Result<Event, CustomResourceError> {
        let text = |key: &str| {
            v[key]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| CustomResourceError::NotAnEvent(format!("no {key}")))
        };
        Ok(Event {
            request_type: text("RequestType")?,
            response_url: text("ResponseURL")?,
            stack_id: text("StackId")?,
            request_id: text("RequestId")?,
            logical_resource_id: text("LogicalResourceId")?,
            physical_resource_id: v["PhysicalResourceId"].as_str().map(str::to_owned),
            resource_type: text("ResourceType")?,
            properties: v["ResourceProperties"].clone(),
        })
    }

    /// The id the resource keeps: the one it had, or one per stack.
    pub fn physical_id(&self) -> String {
        let kind = match self.resource_type.as_str() {
            DASHBOARD_SIGN_IN => "sign-in",
            _ => "opensearch-objects",
        };
        self.physical_resource_id
            .clone()
            .unwrap_or_else(|| format!("{}-{kind}", self.logical_resource_id))
    }
}

/// The settings the resource's properties give: the stack's roles, its
/// alert topic and publish role, the retention, and `Notify` channels
/// (`kind:URL`, as `--notify` takes them, separated by spaces).
pub fn settings_of(props: &Value) -> Result<Settings, HandleError> {
    let list = |key: &str| -> Vec<String> {
        match &props[key] {
            Value::String(s) if !s.is_empty() => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut channels = Vec::new();
    if let (Some(topic_arn), Some(role_arn)) = (
        props["AlertTopicArn"].as_str(),
        props["AlertPublishRoleArn"].as_str(),
    ) {
        channels.push(Channel::Sns {
            topic_arn: topic_arn.into(),
            role_arn: role_arn.into(),
        });
    }
    // The stack passes its `NotifyChannels` parameter: one string, the
    // channels separated by spaces.
    let notify = list("Notify")
        .iter()
        .flat_map(|n| n.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect::<Vec<_>>();
    for (i, n) in notify.iter().enumerate() {
        // The reason lands in the stack's events: it names the channel by
        // place and kind, never its URL (a secret).
        let kind = n.split_once(':').map_or("", |(k, _)| k);
        channels.push(Channel::parse_notify(n).map_err(|_| {
            HandleError::Property(format!(
                "Notify channel {} ({kind:?}) is not KIND:URL with KIND slack, chime or webhook and an http(s) URL",
                i + 1
            ))
        })?);
    }
    let retention_days = match &props["RetentionDays"] {
        Value::Null => 30,
        // CloudFormation passes every property as text.
        v => v
            .as_u64()
            .or_else(|| v.as_str()?.parse().ok())
            .filter(|d| *d > 0)
            .ok_or_else(|| {
                HandleError::Property(format!("RetentionDays {v} is not a number of days"))
            })?,
    };
    Ok(Settings {
        retention_days: retention_days as u32,
        access: Access {
            // The engine writes its findings as the forwarder does.
            forwarder: {
                let mut writers = list("ForwarderRoleArn");
                writers.extend(list("EngineRoleArn"));
                writers.sort();
                writers.dedup();
                writers
            },
            enricher: list("EnricherRoleArn"),
            admins: list("AdminRoleArn"),
            readers: list("ReaderRoleArn"),
        },
        channels,
    })
}

/// The answer CloudFormation reads.
pub fn response(event: &Event, outcome: &Result<Value, HandleError>) -> Value {
    let mut r = json!({
        "Status": if outcome.is_ok() { "SUCCESS" } else { "FAILED" },
        "PhysicalResourceId": event.physical_id(),
        "StackId": event.stack_id,
        "RequestId": event.request_id,
        "LogicalResourceId": event.logical_resource_id,
    });
    match outcome {
        Ok(data) => {
            r["Reason"] = json!("applied");
            r["Data"] = data.clone();
        }
        // CloudFormation shows the reason in the stack's events; it keeps
        // the first 4 KB of the whole answer.
        Err(e) => r["Reason"] = json!(e.to_string().chars().take(3000).collect::<String>()),
    }
    r
}

/// What the event asks, done: Create and Update apply, Delete leaves
/// everything. The result's data counts the objects changed.
pub async fn handle(
    event: &Event,
    detectors: &[Detector],
    cluster: impl std::future::Future<Output = Result<OpenSearch, String>>,
    wait: Duration,
) -> Result<Value, HandleError> {
    match event.request_type.as_str() {
        "Delete" => {
            return Ok(json!({"Changed": 0, "Note": "left in place: the domain is retained"}))
        }
        "Create" | "Update" => {}
        other => return Err(HandleError::UnknownRequest(other.to_owned())),
    }
    let settings = settings_of(&event.properties)?;
    let desired = desired(detectors, &settings).map_err(|refusals| {
        HandleError::Refused(refusals.iter().map(|r| r.to_string()).collect())
    })?;
    let cluster = Cluster {
        os: cluster.await.map_err(HandleError::Connect)?,
        dashboards: None,
    };
    ready(&cluster, Wait { total: wait }, &mut |what| {
        eprintln!("{what}")
    })
    .await
    .map_err(HandleError::NotReady)?;
    let summary = reconcile(&cluster, &desired, Action::Apply, false, &mut |line| {
        eprintln!("{}", line.render(false))
    })
    .await
    .map_err(|e| HandleError::Apply(Box::new(e)))?;
    Ok(json!({"Changed": summary.changes()}))
}

/// The sign-in role mapping the event asks for: Create and Update map the
/// domain's app client by token, ambiguous roles denied (waiting up to
/// `wait` for the domain to add it); Delete leaves the identity pool, which
/// the stack deletes.
pub async fn handle_sign_in(
    event: &Event,
    client: &aws_sdk_cognitoidentity::Client,
    wait: Duration,
) -> Result<Value, HandleError> {
    use crate::users::sign_in::{reconcile, Outcome};
    match event.request_type.as_str() {
        "Delete" => {
            return Ok(json!({"Note": "left as it is: the identity pool goes with the stack"}))
        }
        "Create" | "Update" => {}
        other => return Err(HandleError::UnknownRequest(other.to_owned())),
    }
    let property = |key: &str| {
        event.properties[key]
            .as_str()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                HandleError::Property(format!("{DASHBOARD_SIGN_IN} needs the property {key}"))
            })
    };
    let outcome = reconcile(
        client,
        property("IdentityPoolId")?,
        property("UserPoolId")?,
        property("ReaderRoleArn")?,
        wait,
    )
    .await
    .map_err(HandleError::SignIn)?;
    let (changed, keys) = match outcome {
        Outcome::Set(keys) => (1, keys),
        Outcome::Unchanged(keys) => (0, keys),
    };
    Ok(json!({"Changed": changed, "MappedByToken": keys.join(" ")}))
}

/// Puts the answer at the pre-signed URL (S3 refuses a content type the
/// URL was not signed with, so none is sent).
pub async fn respond(url: &str, body: &Value) -> Result<(), CustomResourceError> {
    let text = body.to_string();
    let answer = reqwest::Client::new()
        .put(url)
        .header("content-type", "")
        .header("content-length", text.len())
        .body(text)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| CustomResourceError::Respond(e.to_string()))?;
    if !answer.status().is_success() {
        return Err(CustomResourceError::Respond(format!(
            "HTTP {}",
            answer.status()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str) -> Value {
        json!({"RequestType": kind, "ResponseURL": "http://127.0.0.1:9/r", "StackId": "arn:aws:cloudformation:us-east-1:1:stack/tw/x",
               "RequestId": "r-1", "LogicalResourceId": "OpenSearchObjects", "ResourceType": "Custom::OpenSearchObjects",
               "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:1:function:tw-bootstrap",
                 "ForwarderRoleArn": "arn:aws:iam::1:role/tw-forwarder", "RetentionDays": "14",
                 "AlertTopicArn": "arn:aws:sns:us-east-1:1:tw-alerts", "AlertPublishRoleArn": "arn:aws:iam::1:role/tw-alert-publisher",
                 "Notify": "webhook:https://hooks.example.com/x  slack:https://hooks.slack.com/services/T0/B0/secret"}})
    }

    #[test]
    fn properties_give_the_settings_as_cloudformation_passes_them() {
        let e = Event::parse(&event("Create")).unwrap();
        let s = settings_of(&e.properties).unwrap();
        assert_eq!(s.retention_days, 14);
        assert_eq!(s.access.forwarder, ["arn:aws:iam::1:role/tw-forwarder"]);
        assert_eq!(
            s.channels[1..],
            [
                Channel::Webhook("https://hooks.example.com/x".into()),
                Channel::Slack("https://hooks.slack.com/services/T0/B0/secret".into())
            ]
        );
        // The engine writes its findings as the forwarder does; one role
        // for both (an existing domain's writer) is mapped once.
        let both = settings_of(&json!({"ForwarderRoleArn": "arn:aws:iam::1:role/w",
                                       "EngineRoleArn": "arn:aws:iam::1:role/e"}))
        .unwrap();
        assert_eq!(
            both.access.forwarder,
            ["arn:aws:iam::1:role/e", "arn:aws:iam::1:role/w"]
        );
        let same = settings_of(&json!({"ForwarderRoleArn": "arn:aws:iam::1:role/w",
                                       "EngineRoleArn": "arn:aws:iam::1:role/w"}))
        .unwrap();
        assert_eq!(same.access.forwarder, ["arn:aws:iam::1:role/w"]);
        // The stack's default: no channel besides the topic.
        let none = settings_of(&json!({"Notify": "", "RetentionDays": "30"})).unwrap();
        assert!(none.channels.is_empty());
        let bad = settings_of(&json!({"RetentionDays": "soon"}))
            .unwrap_err()
            .to_string();
        assert!(bad.contains("RetentionDays"), "{bad}");
        // A bad channel is named by place and kind; its URL never reaches the stack's events.
        let bad = settings_of(
            &json!({"Notify": "webhook:https://a.example/x teams:https://b.example/secret"}),
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("channel 2 (\"teams\")"), "{bad}");
        assert!(!bad.contains("secret"), "{bad}");
    }

    #[test]
    fn every_answer_echoes_the_event_and_a_failure_says_why() {
        let e = Event::parse(&event("Create")).unwrap();
        let ok = response(&e, &Ok(json!({"Changed": 3})));
        assert_eq!(ok["Status"], "SUCCESS");
        assert_eq!(
            ok["PhysicalResourceId"],
            "OpenSearchObjects-opensearch-objects"
        );
        assert_eq!(ok["RequestId"], "r-1");
        let failed = response(&e, &Err(HandleError::Property("x".repeat(5000))));
        assert_eq!(failed["Status"], "FAILED");
        assert_eq!(failed["Reason"].as_str().unwrap().len(), 3000);
        assert!(Event::parse(&json!({"RequestType": "Create"})).is_err());
    }
}
