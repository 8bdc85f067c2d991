//! The CloudFormation edge: describe a stack, make, show and run a change
//! set, follow stack events until the stack settles, delete. Each call maps
//! the SDK's types to the plain ones of [`super::changes`].

use super::changes::{settled, Change, Settled, StackEvent};
use crate::aws::error_message;
use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter};
use aws_sdk_cloudformation::Client;
use std::collections::HashSet;
use std::time::Duration;

/// A CloudFormation call that failed.
#[derive(Debug, thiserror::Error)]
#[error("CloudFormation {action} of stack {stack}: {message}")]
pub struct StackError {
    pub action: &'static str,
    pub stack: String,
    pub message: String,
}

/// A stack as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct StackInfo {
    pub name: String,
    pub status: String,
    pub status_reason: Option<String>,
    /// Key, value, description.
    pub outputs: Vec<(String, String, Option<String>)>,
    pub parameters: Vec<(String, String)>,
}

/// A change set, made and described.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    pub id: String,
    pub changes: Vec<Change>,
    /// FAILED with a reason other than "nothing to change".
    pub failed: Option<String>,
    /// FAILED because the template and parameters change nothing.
    pub empty: bool,
}

/// CloudFormation, for one stack.
pub struct Stacks {
    client: Client,
    pub name: String,
    /// How often to ask while waiting.
    pub poll: Duration,
}

impl Stacks {
    pub fn new(config: &aws_config::SdkConfig, name: &str) -> Stacks {
        Stacks {
            client: Client::new(config),
            name: name.to_owned(),
            poll: Duration::from_secs(5),
        }
    }

    fn error<E>(&self, action: &'static str, err: &aws_sdk_s3::error::SdkError<E>) -> StackError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        StackError {
            action,
            stack: self.name.clone(),
            message: error_message(err),
        }
    }

    /// The stack, or `None` if there is none of that name.
    pub async fn describe(&self) -> Result<Option<StackInfo>, StackError> {
        let answer = match self
            .client
            .describe_stacks()
            .stack_name(&self.name)
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(err) if error_message(&err).contains("does not exist") => return Ok(None),
            Err(err) => return Err(self.error("describe", &err)),
        };
        let Some(stack) = answer.stacks().first() else {
            return Ok(None);
        };
        let status = stack
            .stack_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        if status == "DELETE_COMPLETE" {
            return Ok(None);
        }
        Ok(Some(StackInfo {
            name: stack.stack_name().unwrap_or(&self.name).to_owned(),
            status,
            status_reason: stack.stack_status_reason().map(str::to_owned),
            outputs: stack
                .outputs()
                .iter()
                .map(|o| {
                    (
                        o.output_key().unwrap_or_default().to_owned(),
                        o.output_value().unwrap_or_default().to_owned(),
                        o.description().map(str::to_owned),
                    )
                })
                .collect(),
            parameters: stack
                .parameters()
                .iter()
                .map(|p| {
                    (
                        p.parameter_key().unwrap_or_default().to_owned(),
                        p.parameter_value().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
        }))
    }

    /// The template the stack was last deployed with.
    pub async fn template(&self) -> Result<serde_json::Value, StackError> {
        let answer = self
            .client
            .get_template()
            .stack_name(&self.name)
            .send()
            .await
            .map_err(|e| self.error("get-template", &e))?;
        let body = answer.template_body().unwrap_or("{}");
        serde_json::from_str(body).map_err(|e| StackError {
            action: "get-template",
            stack: self.name.clone(),
            message: format!(
                "the deployed template is not JSON ({e}); was it deployed by trailwatch?"
            ),
        })
    }

    /// Makes a change set (a create one when the stack does not exist yet)
    /// and waits until CloudFormation has worked out its changes.
    pub async fn change_set(
        &self,
        template: &str,
        parameters: &[(String, String)],
        create: bool,
    ) -> Result<ChangeSet, StackError> {
        let name = format!("trailwatch-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
        let mut request = self
            .client
            .create_change_set()
            .stack_name(&self.name)
            .change_set_name(&name)
            .change_set_type(if create {
                ChangeSetType::Create
            } else {
                ChangeSetType::Update
            })
            .template_body(template)
            .capabilities(Capability::CapabilityIam)
            .capabilities(Capability::CapabilityNamedIam)
            .description("trailwatch deploy");
        for (key, value) in parameters {
            request = request.parameters(
                Parameter::builder()
                    .parameter_key(key)
                    .parameter_value(value)
                    .build(),
            );
        }
        let made = request
            .send()
            .await
            .map_err(|e| self.error("create-change-set", &e))?;
        let id = made.id().unwrap_or(&name).to_owned();
        loop {
            let answer = self
                .client
                .describe_change_set()
                .change_set_name(&id)
                .stack_name(&self.name)
                .send()
                .await
                .map_err(|e| self.error("describe-change-set", &e))?;
            let status = answer.status().map(|s| s.as_str()).unwrap_or("");
            let reason = answer.status_reason().unwrap_or("").to_owned();
            match status {
                "CREATE_COMPLETE" => {
                    let changes = answer
                        .changes()
                        .iter()
                        .filter_map(|c| c.resource_change())
                        .map(|r| Change {
                            action: r
                                .action()
                                .map(|a| a.as_str().to_owned())
                                .unwrap_or_default(),
                            logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
                            resource_type: r.resource_type().unwrap_or_default().to_owned(),
                            replacement: r.replacement().map(|x| x.as_str().to_owned()),
                        })
                        .collect();
                    return Ok(ChangeSet {
                        id,
                        changes,
                        failed: None,
                        empty: false,
                    });
                }
                "FAILED" => {
                    let empty = super::changes::is_no_change(&reason);
                    return Ok(ChangeSet {
                        id,
                        changes: Vec::new(),
                        failed: (!empty).then_some(reason),
                        empty,
                    });
                }
                _ => tokio::time::sleep(self.poll.min(Duration::from_secs(2))).await,
            }
        }
    }

    pub async fn delete_change_set(&self, id: &str) -> Result<(), StackError> {
        self.client
            .delete_change_set()
            .change_set_name(id)
            .stack_name(&self.name)
            .send()
            .await
            .map_err(|e| self.error("delete-change-set", &e))?;
        Ok(())
    }

    pub async fn execute(&self, id: &str) -> Result<(), StackError> {
        self.client
            .execute_change_set()
            .change_set_name(id)
            .stack_name(&self.name)
            .send()
            .await
            .map_err(|e| self.error("execute-change-set", &e))?;
        Ok(())
    }

    pub async fn delete(&self) -> Result<(), StackError> {
        self.client
            .delete_stack()
            .stack_name(&self.name)
            .send()
            .await
            .map_err(|e| self.error("delete", &e))?;
        Ok(())
    }

    /// The stack's resources: logical id, physical id, type.
    pub async fn resources(&self) -> Result<Vec<(String, String, String)>, StackError> {
        let answer = self
            .client
            .describe_stack_resources()
            .stack_name(&self.name)
            .send()
            .await
            .map_err(|e| self.error("describe-stack-resources", &e))?;
        Ok(answer
            .stack_resources()
            .iter()
            .map(|r| {
                (
                    r.logical_resource_id().unwrap_or_default().to_owned(),
                    r.physical_resource_id().unwrap_or_default().to_owned(),
                    r.resource_type().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    /// The newest events, newest first (one page: up to 100).
    pub async fn events(&self) -> Result<Vec<StackEvent>, StackError> {
        let answer = match self
            .client
            .describe_stack_events()
            .stack_name(&self.name)
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(err) if error_message(&err).contains("does not exist") => return Ok(Vec::new()),
            Err(err) => return Err(self.error("describe-stack-events", &err)),
        };
        Ok(answer
            .stack_events()
            .iter()
            .map(|e| StackEvent {
                id: e.event_id().unwrap_or_default().to_owned(),
                time: e
                    .timestamp()
                    .and_then(|t| {
                        t.fmt(aws_sdk_cloudformation::primitives::DateTimeFormat::DateTime)
                            .ok()
                    })
                    .unwrap_or_default(),
                logical_id: e.logical_resource_id().unwrap_or_default().to_owned(),
                physical_id: e.physical_resource_id().map(str::to_owned),
                resource_type: e.resource_type().unwrap_or_default().to_owned(),
                status: e
                    .resource_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                reason: e.resource_status_reason().map(str::to_owned),
            })
            .collect())
    }

    /// Follows the stack until it settles, handing each event not in `seen`
    /// to `show`, oldest first. Returns the final status (`DELETE_COMPLETE`
    /// once a deleted stack is gone) and the new events, newest first.
    pub async fn wait(
        &self,
        seen: &mut HashSet<String>,
        mut show: impl FnMut(&StackEvent, &str),
    ) -> Result<(String, Vec<StackEvent>), StackError> {
        let mut fresh = Vec::new();
        loop {
            let status = match self.describe().await? {
                Some(stack) => stack.status,
                None => "DELETE_COMPLETE".to_owned(),
            };
            let events = self.events().await?;
            let new: Vec<StackEvent> = events
                .into_iter()
                .filter(|e| !seen.contains(&e.id))
                .collect();
            for event in new.iter().rev() {
                seen.insert(event.id.clone());
                show(event, &status);
            }
            fresh.splice(0..0, new);
            if settled(&status) != Settled::InProgress {
                return Ok((status, fresh));
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
