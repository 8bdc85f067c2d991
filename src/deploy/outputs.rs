//! The stack's outputs, typed: what `deploy` hands to the OpenSearch
//! bootstrap (endpoint, roles, alert topic and publish role) and what the
//! day-two commands look up (the user pool). A template variant without an
//! output leaves it `None`.

use super::stack::StackInfo;
use crate::opensearch::desired::security::Access;

/// Each output of `templates/stack.json.hbs`, by its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackOutputs {
    pub domain_endpoint: Option<String>,
    pub dashboards_url: Option<String>,
    pub user_pool_id: Option<String>,
    pub alert_topic_arn: Option<String>,
    pub notification_topic_arn: Option<String>,
    pub alert_publish_role_arn: Option<String>,
    /// The domain's master user: assumable by the deploying account only.
    pub master_role_arn: Option<String>,
    /// The Cognito `opensearch-admin` group's role.
    pub admin_role_arn: Option<String>,
    /// Cognito's read-only dashboard users' role.
    pub reader_role_arn: Option<String>,
    pub forwarder_role_arn: Option<String>,
    /// The engine's role on the domain: a writer too.
    pub engine_role_arn: Option<String>,
    pub enricher_role_arn: Option<String>,
    pub trail_bucket_name: Option<String>,
    pub log_group_name: Option<String>,
    pub dead_letter_queue_url: Option<String>,
}

impl StackOutputs {
    /// Reads the outputs by key; unknown keys are ignored and empty values
    /// count as absent.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> StackOutputs {
        let mut o = StackOutputs::default();
        for (key, value) in pairs {
            let slot = match key {
                "DomainEndpoint" => &mut o.domain_endpoint,
                "DashboardsUrl" => &mut o.dashboards_url,
                "UserPoolId" => &mut o.user_pool_id,
                "AlertTopicArn" => &mut o.alert_topic_arn,
                "NotificationTopicArn" => &mut o.notification_topic_arn,
                "AlertPublishRoleArn" => &mut o.alert_publish_role_arn,
                "MasterRoleArn" => &mut o.master_role_arn,
                "AdminRoleArn" => &mut o.admin_role_arn,
                "ReaderRoleArn" => &mut o.reader_role_arn,
                "ForwarderRoleArn" => &mut o.forwarder_role_arn,
                "EngineRoleArn" => &mut o.engine_role_arn,
                "EnricherRoleArn" => &mut o.enricher_role_arn,
                "TrailBucketName" => &mut o.trail_bucket_name,
                "LogGroupName" => &mut o.log_group_name,
                "DeadLetterQueueUrl" => &mut o.dead_letter_queue_url,
                _ => continue,
            };
            if !value.is_empty() {
                *slot = Some(value.to_owned());
            }
        }
        o
    }

    pub fn of(stack: &StackInfo) -> StackOutputs {
        StackOutputs::from_pairs(
            stack
                .outputs
                .iter()
                .map(|(k, v, _)| (k.as_str(), v.as_str())),
        )
    }

    /// The backend roles the OpenSearch security mappings give each part
    /// of the stack. The master role needs none: it is the domain's master
    /// user.
    pub fn access(&self) -> Access {
        let list = |o: &Option<String>| o.iter().cloned().collect::<Vec<_>>();
        Access {
            forwarder: {
                let mut writers = list(&self.forwarder_role_arn);
                writers.extend(list(&self.engine_role_arn));
                writers.sort();
                writers.dedup();
                writers
            },
            enricher: list(&self.enricher_role_arn),
            admins: list(&self.admin_role_arn),
            readers: list(&self.reader_role_arn),
        }
    }

    /// The alert topic and the role OpenSearch publishes to it with, when
    /// the stack has both.
    pub fn alert_channel(&self) -> Option<(String, String)> {
        Some((
            self.alert_topic_arn.clone()?,
            self.alert_publish_role_arn.clone()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_read_by_key_and_give_the_access_and_channel() {
        let o = StackOutputs::from_pairs([
            (
                "DomainEndpoint",
                "https://search-tw.us-east-1.es.amazonaws.com",
            ),
            ("ForwarderRoleArn", "arn:aws:iam::1:role/tw-forwarder"),
            ("EnricherRoleArn", "arn:aws:iam::1:role/tw-enricher"),
            ("ReaderRoleArn", ""),
            ("AlertTopicArn", "arn:aws:sns:us-east-1:1:tw-alerts"),
            ("SomethingNew", "x"),
        ]);
        assert_eq!(
            o.domain_endpoint.as_deref(),
            Some("https://search-tw.us-east-1.es.amazonaws.com")
        );
        let access = o.access();
        assert_eq!(access.forwarder, vec!["arn:aws:iam::1:role/tw-forwarder"]);
        assert_eq!(access.enricher, vec!["arn:aws:iam::1:role/tw-enricher"]);
        assert!(access.readers.is_empty(), "an empty output is absent");
        assert_eq!(o.alert_channel(), None, "no publish role, no SNS channel");
    }
}
