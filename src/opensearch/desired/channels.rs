//! The Notifications plugin's channels every monitor sends to: the stack's
//! SNS alert topic (published with the stack's role), and any `--notify`
//! Slack, Chime or webhook URLs. Their config ids are ours, derived from
//! what they point at, so a re-run finds them.

use super::MANAGED;
use serde_json::{json, Value};

/// A channel to create.
#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    Sns { topic_arn: String, role_arn: String },
    Slack(String),
    Chime(String),
    Webhook(String),
}

impl Channel {
    /// Parses `--notify KIND:URL` (slack, chime or webhook).
    pub fn parse_notify(text: &str) -> Result<Channel, String> {
        let (kind, url) = text.split_once(':').ok_or_else(|| {
            format!("{text:?} is not KIND:URL; write slack:https://hooks.slack.com/…, chime:URL or webhook:URL")
        })?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!(
                "{text:?}: the URL must start with https:// (or http:// for a local test server)"
            ));
        }
        match kind {
            "slack" => Ok(Channel::Slack(url.into())),
            "chime" => Ok(Channel::Chime(url.into())),
            "webhook" => Ok(Channel::Webhook(url.into())),
            other => Err(format!(
                "{other:?} is not a channel kind; write slack, chime or webhook"
            )),
        }
    }

    /// The `--notify` form, `KIND:URL`, that [`Channel::parse_notify`]
    /// reads back; none for SNS, which the stack's own topic gives.
    pub fn notify_text(&self) -> Option<String> {
        match self {
            Channel::Sns { .. } => None,
            other => Some(format!("{}:{}", other.kind(), other.target())),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Channel::Sns { .. } => "sns",
            Channel::Slack(_) => "slack",
            Channel::Chime(_) => "chime",
            Channel::Webhook(_) => "webhook",
        }
    }

    fn target(&self) -> &str {
        match self {
            Channel::Sns { topic_arn, .. } => topic_arn,
            Channel::Slack(u) | Channel::Chime(u) | Channel::Webhook(u) => u,
        }
    }

    /// The config id: the kind and a short digest of the target.
    pub fn config_id(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.target().as_bytes());
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("trailwatch-{}-{hex}", self.kind())
    }

    /// The body of `POST _plugins/_notifications/configs`.
    pub fn body(&self) -> Value {
        let kind = self.kind();
        let mut config = json!({
            "name": self.config_id(),
            "description": format!("trailwatch alerts by {kind} ({MANAGED})"),
            "config_type": kind,
            "is_enabled": true,
        });
        config[kind] = match self {
            Channel::Sns {
                topic_arn,
                role_arn,
            } => json!({"topic_arn": topic_arn, "role_arn": role_arn}),
            Channel::Slack(u) | Channel::Chime(u) | Channel::Webhook(u) => json!({"url": u}),
        };
        json!({"config_id": self.config_id(), "config": config})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_flags_become_channels_with_stable_ids() {
        let c = Channel::parse_notify("slack:https://hooks.slack.com/services/T/B/x").unwrap();
        assert_eq!(
            c,
            Channel::Slack("https://hooks.slack.com/services/T/B/x".into())
        );
        assert_eq!(
            c.config_id(),
            Channel::parse_notify("slack:https://hooks.slack.com/services/T/B/x")
                .unwrap()
                .config_id()
        );
        assert!(c.config_id().starts_with("trailwatch-slack-"));
        assert_eq!(
            c.body()["config"]["slack"]["url"],
            "https://hooks.slack.com/services/T/B/x"
        );
        assert!(Channel::parse_notify("teams:https://x")
            .unwrap_err()
            .contains("slack, chime or webhook"));
        assert!(Channel::parse_notify("webhook:ftp://x")
            .unwrap_err()
            .contains("https://"));
        assert!(Channel::parse_notify("https://x").is_err());
    }

    #[test]
    fn the_notify_form_reads_back_as_the_same_channel() {
        for text in [
            "slack:https://hooks.slack.com/services/T/B/x",
            "chime:https://hooks.chime.aws/incomingwebhooks/x?token=y",
            "webhook:http://127.0.0.1:9/hook",
        ] {
            let c = Channel::parse_notify(text).unwrap();
            assert_eq!(c.notify_text().as_deref(), Some(text));
        }
        let sns = Channel::Sns {
            topic_arn: "arn:aws:sns:us-east-1:1:t".into(),
            role_arn: "arn:aws:iam::1:role/p".into(),
        };
        assert_eq!(sns.notify_text(), None);
    }
}
