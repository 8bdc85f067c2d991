//! What a deploy shows and decides, as plain functions over plain data: the
//! change set as rows, stack events as lines, the failing resource of a
//! failed deploy, and the template rewritten to let `destroy --delete-data`
//! remove the retained data. [`super::stack`] fills these from
//! CloudFormation.

use serde_json::Value;

/// One row of a change set.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Add, Modify, Remove, Import, Dynamic.
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// True, False or Conditional, for Modify.
    pub replacement: Option<String>,
}

/// The change set as a table for a person to read before saying yes.
pub fn render_changes(stack: &str, changes: &[Change]) -> String {
    let mut out = format!("Changes to stack {stack} ({}):\n", changes.len());
    let id_width = changes
        .iter()
        .map(|c| c.logical_id.len())
        .max()
        .unwrap_or(0);
    let type_width = changes
        .iter()
        .map(|c| c.resource_type.len())
        .max()
        .unwrap_or(0);
    for c in changes {
        let replacement = match c.replacement.as_deref() {
            Some("True") => "  (replaced)",
            Some("Conditional") => "  (may be replaced)",
            _ => "",
        };
        let line = format!(
            "  {:<8} {:<id_width$}  {:<type_width$}{replacement}",
            c.action, c.logical_id, c.resource_type
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Whether a FAILED change set failed only because there was nothing to do.
pub fn is_no_change(status_reason: &str) -> bool {
    let reason = status_reason.to_ascii_lowercase();
    reason.contains("didn't contain changes") || reason.contains("no updates are to be performed")
}

/// One stack event.
#[derive(Debug, Clone, PartialEq)]
pub struct StackEvent {
    pub id: String,
    /// RFC 3339.
    pub time: String,
    pub logical_id: String,
    /// The resource's name or id in AWS, once it has one.
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

impl StackEvent {
    /// A line for the progress display.
    pub fn line(&self) -> String {
        let time = self.time.get(11..19).unwrap_or(&self.time);
        let mut line = format!(
            "{time}  {:<28} {:<36} {}",
            self.status, self.resource_type, self.logical_id
        );
        if let Some(reason) = &self.reason {
            line.push_str(&format!(": {reason}"));
        }
        line
    }

    fn failed(&self) -> bool {
        self.status.ends_with("_FAILED")
    }
}

/// Where a deploy finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Succeeded,
    Failed,
    InProgress,
}

/// Whether a stack status is final, and how it went.
pub fn settled(status: &str) -> Settled {
    match status {
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "DELETE_COMPLETE" | "IMPORT_COMPLETE" => {
            Settled::Succeeded
        }
        s if s.ends_with("_IN_PROGRESS") => Settled::InProgress,
        // ROLLBACK_COMPLETE, UPDATE_ROLLBACK_COMPLETE, *_FAILED, ...
        _ => Settled::Failed,
    }
}

/// The resource that made the deploy fail: the earliest failed event since
/// the deploy started that gives a reason other than the cascade CloudFormation
/// reports for every resource it cancels (events are given newest first, as
/// CloudFormation lists them).
pub fn first_failure(events_newest_first: &[StackEvent]) -> Option<&StackEvent> {
    let cascade = |e: &&StackEvent| {
        e.reason.as_deref().is_some_and(|r| {
            r.contains("Resource creation cancelled")
                || r.contains("Resource update cancelled")
                || r.starts_with("The following resource(s) failed")
        })
    };
    let failed: Vec<&StackEvent> = events_newest_first
        .iter()
        .rev()
        .filter(|e| e.failed())
        .collect();
    failed
        .iter()
        .find(|e| !cascade(e))
        .or_else(|| failed.first())
        .copied()
}

/// A resource the stack keeps when it is deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Retained {
    pub logical_id: String,
    pub resource_type: String,
    /// The name the template gives it, if it names it.
    pub declared_name: Option<String>,
}

/// The resources with a `Retain` deletion policy, and the names the
/// template gives them.
pub fn retained(template: &Value) -> Vec<Retained> {
    const NAME_KEYS: [&str; 4] = ["LogGroupName", "BucketName", "DomainName", "TrailName"];
    template
        .get("Resources")
        .and_then(Value::as_object)
        .map(|resources| {
            resources
                .iter()
                .filter(|(_, r)| r.get("DeletionPolicy").and_then(Value::as_str) == Some("Retain"))
                .map(|(id, r)| Retained {
                    logical_id: id.clone(),
                    resource_type: r
                        .get("Type")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned(),
                    declared_name: NAME_KEYS
                        .iter()
                        .find_map(|k| {
                            r.pointer(&format!("/Properties/{k}"))
                                .and_then(Value::as_str)
                        })
                        .map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(n: u32, id: &str, status: &str, reason: Option<&str>) -> StackEvent {
        StackEvent {
            id: format!("e{n}"),
            time: format!("2026-11-22T10:00:{n:02}Z"),
            logical_id: id.into(),
            physical_id: None,
            resource_type: "AWS::S3::Bucket".into(),
            status: status.into(),
            reason: reason.map(Into::into),
        }
    }

    #[test]
    fn the_change_table_marks_replacements() {
        let changes = [
            Change {
                action: "Add".into(),
                logical_id: "TrailBucket".into(),
                resource_type: "AWS::S3::Bucket".into(),
                replacement: None,
            },
            Change {
                action: "Modify".into(),
                logical_id: "Domain".into(),
                resource_type: "AWS::OpenSearchService::Domain".into(),
                replacement: Some("True".into()),
            },
        ];
        let text = render_changes("tw", &changes);
        assert!(text.starts_with("Changes to stack tw (2):\n"), "{text}");
        assert!(
            text.contains("Add      TrailBucket  AWS::S3::Bucket"),
            "{text}"
        );
        assert!(
            text.contains("Domain       AWS::OpenSearchService::Domain  (replaced)"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_change_set_is_recognised_by_its_reason() {
        assert!(is_no_change("The submitted information didn't contain changes. Submit different information to create a change set."));
        assert!(is_no_change("No updates are to be performed."));
        assert!(!is_no_change(
            "Template format error: Unresolved resource dependencies"
        ));
    }

    #[test]
    fn stack_statuses_settle() {
        assert_eq!(settled("CREATE_COMPLETE"), Settled::Succeeded);
        assert_eq!(
            settled("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
            Settled::InProgress
        );
        assert_eq!(settled("ROLLBACK_IN_PROGRESS"), Settled::InProgress);
        assert_eq!(settled("ROLLBACK_COMPLETE"), Settled::Failed);
        assert_eq!(settled("UPDATE_ROLLBACK_COMPLETE"), Settled::Failed);
        assert_eq!(settled("DELETE_FAILED"), Settled::Failed);
    }

    #[test]
    fn the_first_failure_is_the_cause_not_the_cascade() {
        // Newest first, as CloudFormation lists them.
        let events = [
            event(5, "tw", "ROLLBACK_COMPLETE", None),
            event(
                4,
                "Queue",
                "CREATE_FAILED",
                Some("Resource creation cancelled"),
            ),
            event(
                3,
                "Bucket",
                "CREATE_FAILED",
                Some("tw-bucket already exists"),
            ),
            event(2, "Queue", "CREATE_IN_PROGRESS", None),
            event(1, "tw", "CREATE_IN_PROGRESS", Some("User Initiated")),
        ];
        let failure = first_failure(&events).unwrap();
        assert_eq!(failure.logical_id, "Bucket");
        assert!(failure.line().contains("tw-bucket already exists"));
        assert_eq!(first_failure(&events[3..]), None);
    }

    #[test]
    fn retained_resources_are_listed_with_their_declared_names() {
        let template = json!({"Resources": {
            "Logs": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain", "Properties": {"LogGroupName": "/tw/cloudtrail"}},
            "Bucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
            "Topic": {"Type": "AWS::SNS::Topic"}
        }});
        let kept = retained(&template);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].logical_id, "Bucket");
        assert_eq!(kept[0].declared_name, None);
        assert_eq!(kept[1].resource_type, "AWS::Logs::LogGroup");
        assert_eq!(kept[1].declared_name.as_deref(), Some("/tw/cloudtrail"));
    }
}
