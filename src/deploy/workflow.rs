//! The deploy workflow, from a rendered template and a Lambda package to a
//! settled stack: the artifact bucket, the package upload (once per
//! digest), a leftover stack from a failed first deploy deleted, the "no
//! changes" short cut, the change set, its review, its execution, the wait,
//! and the report of what failed first. Progress goes to a callback; the
//! outcome is a typed [`Report`]. The command line only prints.

use super::artifacts::{self, BucketError};
use super::changes::{first_failure, render_review, settled, Settled, StackEvent};
use super::notification::{self, NotificationError};
use super::package::Package;
use super::parameters::{self, BootstrapParameters};
use super::stack::{StackError, StackInfo, Stacks};
use std::collections::HashSet;
use std::time::Duration;

/// What one deploy needs.
pub struct Deployment<'a> {
    pub sdk: &'a aws_config::SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub prefix: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub package: Package,
    pub template: String,
    /// The in-stack bootstrap's channels and retention (parameters of a
    /// template with a new domain).
    pub bootstrap: BootstrapParameters,
    /// False over plain HTTP (an emulator), where a TLS-only bucket policy
    /// would refuse every request.
    pub tls_only: bool,
    pub poll: Duration,
    /// An existing trail's bucket (`--trail-bucket`), given a notification
    /// to the engine's queue once the stack is there.
    pub trail_bucket: Option<String>,
}

/// What happens along the way, for a person to follow.
pub enum Progress<'a> {
    BucketMade {
        bucket: &'a str,
        tls_only: bool,
    },
    Uploaded {
        bucket: &'a str,
        key: &'a str,
        bytes: usize,
    },
    AlreadyUploaded {
        bucket: &'a str,
        key: &'a str,
    },
    /// A stack left by a failed (or never executed) first deploy is deleted.
    DeletingLeftover {
        stack: &'a str,
        status: &'a str,
    },
    /// A wait on the stack begins (`doing`: creating, updating, deleting).
    Waiting {
        doing: &'a str,
    },
    /// A stack event, and the stack's status.
    Event {
        event: &'a StackEvent,
        status: &'a str,
        doing: &'a str,
    },
    /// The wait ended.
    Settled,
    /// The existing trail bucket notifies the engine's queue (`added`: now).
    Notifies {
        bucket: &'a str,
        added: bool,
    },
}

/// How a deploy ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// Nothing to change.
    UpToDate(StackInfo),
    /// The reviewer said no; nothing was changed.
    /// Nothing was changed; what the review needed made (the package,
    /// the code bucket) was removed: named here.
    Declined {
        removed: Vec<String>,
    },
    Deployed {
        stack: StackInfo,
        created: bool,
    },
    /// CloudFormation would not execute the change set.
    NotExecuted(String),
    /// The stack failed and rolled back.
    Failed {
        stack: String,
        status: String,
        /// The first failing resource event, as a line.
        first_failure: Option<String>,
        /// The stack's own reason, when no resource failed.
        reason: Option<String>,
    },
}

/// A step that could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error("stack {stack} is busy ({status}); wait for it to settle and run deploy again")]
    Busy { stack: String, status: String },
    #[error("CloudFormation refused the change set for stack {stack}: {reason}")]
    Refused { stack: String, reason: String },
    #[error("the stack vanished after deploying")]
    Vanished,
    #[error("the rendered template is not JSON: {0}")]
    Template(#[from] serde_json::Error),
    #[error("cannot read the answer from standard input ({0}); pass --yes to skip the question")]
    Review(std::io::Error),
    #[error(transparent)]
    Notification(#[from] NotificationError),
}

/// Where the existing trail bucket's notification goes.
struct Notify<'a> {
    s3: &'a aws_sdk_s3::Client,
    trail_bucket: Option<&'a str>,
    prefix: &'a str,
    account: &'a str,
    region: &'a str,
}

/// After a deploy that left the stack in place: the existing trail bucket
/// notifies the stack's engine queue (its ARN from the stack's output, or
/// from the name the template gives the queue).
async fn notify_engine(
    n: &Notify<'_>,
    stack: &StackInfo,
    on: &mut dyn FnMut(Progress),
) -> Result<(), DeployError> {
    let Some(bucket) = n.trail_bucket else {
        return Ok(());
    };
    let queue = stack
        .outputs
        .iter()
        .find(|(k, _, _)| k == "EngineQueueArn")
        .map(|(_, v, _)| v.clone())
        .unwrap_or_else(|| notification::engine_queue_arn(n.account, n.region, n.prefix));
    let added = notification::ensure(n.s3, bucket, n.prefix, &queue, true).await?;
    on(Progress::Notifies { bucket, added });
    Ok(())
}

async fn follow(
    stacks: &Stacks,
    seen: &mut HashSet<String>,
    doing: &str,
    on: &mut dyn FnMut(Progress),
) -> Result<(String, Vec<StackEvent>), DeployError> {
    on(Progress::Waiting { doing });
    let result = stacks
        .wait(seen, |event, status| {
            on(Progress::Event {
                event,
                status,
                doing,
            })
        })
        .await;
    on(Progress::Settled);
    Ok(result?)
}

/// Deploys: `approve` sees the rendered changes and says whether to apply
/// them (`--yes` approves without asking).
pub async fn deploy(
    d: Deployment<'_>,
    on: &mut dyn FnMut(Progress),
    approve: &mut dyn FnMut(&str) -> std::io::Result<bool>,
) -> Result<Report, DeployError> {
    let notify = Notify {
        s3: &d.s3,
        trail_bucket: d.trail_bucket.as_deref(),
        prefix: d.prefix,
        account: d.account,
        region: d.region,
    };
    // A trail bucket that notifies another destination of the deliveries
    // is refused before anything is made.
    if let Some(trail_bucket) = notify.trail_bucket {
        let queue = notification::engine_queue_arn(d.account, d.region, d.prefix);
        notification::ensure(&d.s3, trail_bucket, d.prefix, &queue, false).await?;
    }
    let bucket = artifacts::bucket_name(d.prefix, d.account, d.region);
    let bucket_made = artifacts::ensure_bucket(&d.s3, &bucket, d.region, d.tls_only).await?;
    if bucket_made {
        on(Progress::BucketMade {
            bucket: &bucket,
            tls_only: d.tls_only,
        });
    }
    let bytes = d.package.zip.len();
    let key = d.package.key.clone();
    let uploaded = artifacts::upload_once(&d.s3, &bucket, &key, d.package.zip).await?;
    if uploaded {
        on(Progress::Uploaded {
            bucket: &bucket,
            key: &key,
            bytes,
        });
    } else {
        on(Progress::AlreadyUploaded {
            bucket: &bucket,
            key: &key,
        });
    }
    let wanted_template: serde_json::Value = serde_json::from_str(&d.template)?;
    let parameters = parameters::wanted(&wanted_template, &bucket, &key, &d.bootstrap);

    let mut stacks = Stacks::new(d.sdk, d.prefix);
    stacks.poll = d.poll;
    let mut seen = HashSet::new();
    let existing = match stacks.describe().await? {
        Some(stack)
            if stack.status == "ROLLBACK_COMPLETE" || stack.status == "REVIEW_IN_PROGRESS" =>
        {
            // A first deploy that failed (or was never executed) leaves a
            // stack that can only be deleted.
            on(Progress::DeletingLeftover {
                stack: &stack.name,
                status: &stack.status,
            });
            seen.extend(stacks.events().await?.into_iter().map(|e| e.id));
            stacks.delete().await?;
            follow(&stacks, &mut seen, "deleting", on).await?;
            None
        }
        Some(stack) if stack.status.ends_with("_IN_PROGRESS") => {
            return Err(DeployError::Busy {
                stack: stack.name,
                status: stack.status,
            })
        }
        other => other,
    };

    let mut deployed = serde_json::json!({});
    if let Some(stack) = &existing {
        let deployed_template = stacks.template().await?;
        if parameters::unchanged(&wanted_template, &stack.parameters, &parameters)
            && deployed_template == wanted_template
            && !stack.status.contains("ROLLBACK")
        {
            notify_engine(&notify, stack, on).await?;
            return Ok(Report::UpToDate(stack.clone()));
        }
        deployed = deployed_template;
    }

    let change_set = stacks
        .change_set(&d.template, &parameters, existing.is_none())
        .await?;
    if change_set.empty {
        stacks.delete_change_set(&change_set.id).await.ok();
        let stack = stacks.describe().await?.ok_or(DeployError::Vanished)?;
        notify_engine(&notify, &stack, on).await?;
        return Ok(Report::UpToDate(stack));
    }
    if let Some(reason) = change_set.failed {
        return Err(DeployError::Refused {
            stack: stacks.name.clone(),
            reason,
        });
    }
    let review = render_review(
        &stacks.name,
        &change_set.changes,
        &deployed,
        &wanted_template,
    );
    match approve(&review) {
        Ok(true) => {}
        Ok(false) => {
            stacks.delete_change_set(&change_set.id).await?;
            if existing.is_none() {
                // The create change set left an empty stack in REVIEW_IN_PROGRESS.
                stacks.delete().await.ok();
            }
            // What was made for the review goes too: the package this run
            // uploaded, and the code bucket if this run made it.
            artifacts::take_back(
                &d.s3,
                &bucket,
                uploaded.then_some(key.as_str()),
                bucket_made,
            )
            .await?;
            let mut removed = Vec::new();
            if uploaded {
                removed.push(format!("s3://{bucket}/{key}"));
            }
            if bucket_made {
                removed.push(format!("the code bucket {bucket}"));
            }
            return Ok(Report::Declined { removed });
        }
        Err(e) => return Err(DeployError::Review(e)),
    }
    seen.extend(stacks.events().await?.into_iter().map(|e| e.id));
    if let Err(err) = stacks.execute(&change_set.id).await {
        return Ok(Report::NotExecuted(err.to_string()));
    }
    let created = existing.is_none();
    let (status, events) = follow(
        &stacks,
        &mut seen,
        if created { "creating" } else { "updating" },
        on,
    )
    .await?;
    if settled(&status) != Settled::Succeeded {
        let first_failure = first_failure(&events).map(|e| e.line());
        let reason = match first_failure {
            Some(_) => None,
            None => stacks.describe().await?.and_then(|s| s.status_reason),
        };
        return Ok(Report::Failed {
            stack: stacks.name.clone(),
            status,
            first_failure,
            reason,
        });
    }
    let stack = stacks.describe().await?.ok_or(DeployError::Vanished)?;
    notify_engine(&notify, &stack, on).await?;
    Ok(Report::Deployed { stack, created })
}
