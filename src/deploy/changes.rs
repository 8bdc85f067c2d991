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

/// The change set with what changes in each modified resource (its
/// properties, before and after, as `cdk diff` shows them) and a summary
/// of the security changes: grants added or taken away, anything opened
/// to everyone. `before` is the deployed template (`{}` for a new stack).
pub fn render_review(stack: &str, changes: &[Change], before: &Value, after: &Value) -> String {
    let mut out = String::new();
    for line in render_changes(stack, changes).lines() {
        out.push_str(line);
        out.push('\n');
        let Some(change) = changes
            .iter()
            .find(|c| line.split_whitespace().nth(1) == Some(c.logical_id.as_str()))
        else {
            continue;
        };
        if change.action == "Modify" {
            for p in property_changes(before, after, &change.logical_id) {
                out.push_str(&format!("      {p}\n"));
            }
        }
    }
    let mut security = security_changes(before, after);
    if before["Resources"].is_null() {
        // A new stack: every grant is new; the public ones and a count.
        let all = security.len();
        security.retain(|l| l.starts_with("PUBLIC"));
        security.push(format!(
            "{} grant line(s) in the new stack's policies; none opens anything to everyone{}",
            all - security.len(),
            if security.is_empty() {
                ""
            } else {
                " but the above"
            }
        ));
    }
    if !security.is_empty() {
        out.push_str(&format!("Security changes ({}):\n", security.len()));
        for s in security {
            out.push_str(&format!("  {s}\n"));
        }
    }
    out
}

/// Longest value shown in a property change.
const SHOWN: usize = 60;

/// A JSON value in one short line.
fn short(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "(none)".into();
    };
    let text = v.to_string();
    if text.chars().count() <= SHOWN {
        text
    } else {
        let cut: String = text.chars().take(SHOWN - 1).collect();
        format!("{cut}…")
    }
}

/// The properties of `logical_id` that differ between the templates:
/// `Properties.Name: before → after`.
pub fn property_changes(before: &Value, after: &Value, logical_id: &str) -> Vec<String> {
    let props = |t: &Value| t["Resources"][logical_id]["Properties"].clone();
    let (b, a) = (props(before), props(after));
    let mut keys: Vec<&String> = (b.as_object().into_iter().flat_map(|o| o.keys()))
        .chain(a.as_object().into_iter().flat_map(|o| o.keys()))
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| b.get(k.as_str()) != a.get(k.as_str()))
        .map(|k| {
            format!(
                "{k}: {} → {}",
                short(b.get(k.as_str())),
                short(a.get(k.as_str()))
            )
        })
        .collect()
}

/// One grant or denial: which resource's policy, allow or deny, to whom,
/// which action, and whether it has a condition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    resource: String,
    effect: String,
    principal: String,
    action: String,
    conditional: bool,
}

/// Every grant of every policy document in a template (any object with a
/// `Statement`: identity policies, trust policies, bucket, topic, queue,
/// key and domain policies), and each Lambda permission.
fn grants(template: &Value) -> std::collections::BTreeSet<Grant> {
    fn texts(v: &Value) -> Vec<String> {
        match v {
            Value::Array(items) => items.iter().flat_map(texts).collect(),
            Value::String(s) => vec![s.clone()],
            Value::Object(map) if map.len() == 1 && !map.contains_key("Fn::GetAtt") => {
                match map.iter().next() {
                    // {"AWS": …}, {"Service": …}: the kind, then whom.
                    Some((kind, inner)) if !kind.starts_with("Fn::") && kind != "Ref" => {
                        texts(inner)
                            .into_iter()
                            .map(|t| format!("{kind}:{t}"))
                            .collect()
                    }
                    _ => vec![v.to_string()],
                }
            }
            other => vec![other.to_string()],
        }
    }
    fn walk(id: &str, v: &Value, identity: &str, out: &mut std::collections::BTreeSet<Grant>) {
        match v {
            Value::Object(map) => {
                if let Some(statements) = map.get("Statement") {
                    let list = match statements {
                        Value::Array(items) => items.clone(),
                        one => vec![one.clone()],
                    };
                    for st in &list {
                        let principals = match st.get("Principal") {
                            Some(p) => texts(p),
                            None => vec![identity.to_owned()],
                        };
                        for principal in &principals {
                            for action in texts(st.get("Action").unwrap_or(&Value::Null)) {
                                out.insert(Grant {
                                    resource: id.to_owned(),
                                    effect: st["Effect"].as_str().unwrap_or("Allow").to_owned(),
                                    principal: principal.clone(),
                                    action,
                                    conditional: st.get("Condition").is_some(),
                                });
                            }
                        }
                    }
                    return;
                }
                for x in map.values() {
                    walk(id, x, identity, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|x| walk(id, x, identity, out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for (id, r) in template["Resources"].as_object().into_iter().flatten() {
        let kind = r["Type"].as_str().unwrap_or("");
        if kind == "AWS::Lambda::Permission" {
            out.insert(Grant {
                resource: id.clone(),
                effect: "Allow".into(),
                principal: short(r["Properties"].get("Principal")),
                action: short(r["Properties"].get("Action")),
                conditional: r["Properties"].get("SourceArn").is_some()
                    || r["Properties"].get("SourceAccount").is_some(),
            });
            continue;
        }
        let identity = if kind.starts_with("AWS::IAM::") {
            format!("the role {id}")
        } else {
            id.clone()
        };
        walk(id, &r["Properties"], &identity, &mut out);
    }
    out
}

/// Whether a grant lets anyone at all in.
fn public(g: &Grant) -> bool {
    g.effect == "Allow" && !g.conditional && (g.principal == "*" || g.principal == "AWS:*")
}

/// Grants added and taken away between the templates, one line per
/// resource and principal, and anything opened to everyone first.
pub fn security_changes(before: &Value, after: &Value) -> Vec<String> {
    let (b, a) = (grants(before), grants(after));
    let mut lines = Vec::new();
    for g in a.difference(&b).filter(|g| public(g)) {
        lines.push(format!(
            "PUBLIC: {} allows anyone {} with no condition",
            g.resource, g.action
        ));
    }
    let summarise = |set: Vec<&Grant>, sign: &str, lines: &mut Vec<String>| {
        let mut grouped: std::collections::BTreeMap<(&str, &str, &str), Vec<&str>> =
            Default::default();
        for g in set {
            grouped
                .entry((g.resource.as_str(), g.effect.as_str(), g.principal.as_str()))
                .or_default()
                .push(g.action.as_str());
        }
        for ((resource, effect, principal), actions) in grouped {
            let verb = if effect == "Deny" { "denies" } else { "allows" };
            lines.push(format!(
                "{sign} {resource} {verb} {principal}: {}",
                actions.join(", ")
            ));
        }
    };
    summarise(a.difference(&b).collect(), "+", &mut lines);
    summarise(b.difference(&a).collect(), "-", &mut lines);
    lines
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
mod review_tests {
    use super::*;
    use serde_json::json;

    fn modify(id: &str, kind: &str, replacement: &str) -> Change {
        Change {
            action: "Modify".into(),
            logical_id: id.into(),
            resource_type: kind.into(),
            replacement: Some(replacement.into()),
        }
    }

    /// A widened role, a bucket opened to everyone and a changed trail:
    /// each property change under its resource, replacement said, and the
    /// security changes summed up with the public one first.
    #[test]
    fn a_review_shows_properties_replacement_and_security_changes() {
        let before = json!({"Resources": {
            "Trail": {"Type": "AWS::CloudTrail::Trail", "Properties": {"IsLogging": true, "IsMultiRegionTrail": true}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {
                "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
                "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]}}]}},
            "BucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"PolicyDocument": {"Statement": [
                {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}}
        }});
        let mut after = before.clone();
        after["Resources"]["Trail"]["Properties"]["IsMultiRegionTrail"] = json!(false);
        after["Resources"]["Trail"]["Properties"]["TrailName"] = json!("renamed");
        after["Resources"]["Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
            ["Action"] = json!(["s3:GetObject", "s3:PutObject", "iam:PassRole"]);
        after["Resources"]["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject"}));
        let changes = [
            modify("Trail", "AWS::CloudTrail::Trail", "True"),
            modify("Role", "AWS::IAM::Role", "False"),
            modify("BucketPolicy", "AWS::S3::BucketPolicy", "False"),
        ];
        let text = render_review("tw", &changes, &before, &after);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Changes to stack tw (3):");
        assert!(
            lines[1].contains("Trail") && lines[1].ends_with("(replaced)"),
            "{text}"
        );
        assert_eq!(lines[2], "      IsMultiRegionTrail: true → false", "{text}");
        assert_eq!(lines[3], "      TrailName: (none) → \"renamed\"", "{text}");
        assert!(
            text.contains("      Policies: [{\"PolicyDocument\""),
            "{text}"
        );
        assert!(text.contains("Security changes (3):\n"), "{text}");
        assert!(
            text.contains("  PUBLIC: BucketPolicy allows anyone s3:GetObject with no condition\n"),
            "{text}"
        );
        assert!(
            text.contains("  + Role allows the role Role: iam:PassRole, s3:PutObject\n"),
            "{text}"
        );
        assert!(
            text.contains("  + BucketPolicy allows AWS:*: s3:GetObject\n"),
            "{text}"
        );
        // Nothing changed, nothing said.
        assert!(security_changes(&before, &before).is_empty());
        assert!(property_changes(&before, &before, "Trail").is_empty());
        // A new stack: every grant is new, counted; the public ones named.
        assert!(security_changes(&json!({}), &before)
            .iter()
            .any(|l| l == "+ Role allows Service:lambda.amazonaws.com: sts:AssumeRole"));
        let new = render_review("tw", &[], &json!({}), &after);
        assert!(
            new.contains("  PUBLIC: BucketPolicy allows anyone s3:GetObject"),
            "{new}"
        );
        assert!(new.contains("grant line(s) in the new stack's policies; none opens anything to everyone but the above"), "{new}");
    }
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
