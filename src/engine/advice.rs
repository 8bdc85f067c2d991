//! What to do first about an incident, from what its findings are evidence
//! of (their ATT&CK techniques), what they started and the keys they used:
//! deactivate the access key, turn the trail back on, make the bucket
//! private, stop the instances. The report's cards list these; each is
//! one step a responder can take now, with the command when there is one.

use super::anomaly::{Anomaly, AnomalyKind};
use std::collections::BTreeSet;

/// The first steps for an incident's findings, most urgent first, each
/// once.
pub fn first_actions(members: &[&Anomaly]) -> Vec<String> {
    let mut actions: Vec<String> = Vec::new();
    // Stop the bleeding: the credentials first.
    let keys: BTreeSet<&str> = members
        .iter()
        .flat_map(|a| a.pivots.access_key_ids.iter().map(String::as_str))
        .collect();
    let principals: BTreeSet<&str> = members
        .iter()
        .flat_map(|a| a.subjects.first().map(String::as_str))
        .collect();
    for key in &keys {
        if key.starts_with("AKIA") {
            let user = (principals.iter()).find_map(|p| {
                p.rsplit_once(":user/")
                    .map(|(_, u)| u.rsplit('/').next().unwrap_or(u))
            });
            add(&mut actions, match user {
                Some(user) => format!(
                    "Deactivate access key {key}: aws iam update-access-key --user-name {user} --access-key-id {key} --status Inactive"
                ),
                None => format!("Deactivate access key {key} (IAM → Users → Security credentials)"),
            });
        } else if key.starts_with("ASIA") {
            let role = (principals.iter()).find_map(|p| {
                p.split_once(":assumed-role/")
                    .map(|(_, r)| r.split('/').next().unwrap_or(r))
            });
            add(&mut actions, match role {
                Some(role) => format!(
                    "Revoke the sessions of role {role} (temporary key {key}): IAM → Roles → {role} → Revoke active sessions"
                ),
                None => format!("Revoke the session behind temporary key {key}"),
            });
        }
    }
    if principals.iter().any(|p| p.ends_with(":root")) {
        add(&mut actions, "Secure the root user: change its password, check its MFA device, delete any root access key".into());
    }
    let target = |a: &Anomaly| -> Option<String> { a.entity.as_ref()?.get("target").cloned() };
    let region = |a: &Anomaly| a.pivots.regions.first().cloned();
    for a in members.iter().filter(|a| a.kind == AnomalyKind::Rule) {
        let t = target(a);
        let on = |what: &str| t.as_ref().map_or(String::new(), |t| format!(" {what}{t}"));
        for technique in &a.attack {
            let step = match technique.as_str() {
                "T1562.008" if a.detector.starts_with("cloudtrail") => Some(format!(
                    "Turn the trail back on{}: aws cloudtrail start-logging --name {} (re-create it if it was deleted), then read what happened while it was off",
                    on(""),
                    t.as_deref().unwrap_or("TRAIL")
                )),
                "T1562.008" => Some(format!("Restore the logging that was removed{}", on(""))),
                "T1562.001" => Some(format!("Turn the security service back on{} (GuardDuty detector, Config recorder, suppression rule removed)", on(""))),
                "T1562.007" => Some(format!("Close the admin port opened to the internet{}: aws ec2 revoke-security-group-ingress", on("in "))),
                "T1530" => Some(format!(
                    "Make the bucket private{}: aws s3api put-public-access-block --bucket {} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
                    on(""),
                    t.as_deref().unwrap_or("BUCKET")
                )),
                "T1537" => Some(format!("Remove the share or public permission{} (its attribute's createVolumePermission, launchPermission or restore attribute)", on("of "))),
                "T1136.003" | "T1098.001" => Some(format!("Delete what was made{}: its access keys, login profile and attached policies (aws iam list-access-keys --user-name …)", on("for "))),
                "T1098.003" => Some(format!("Detach the policy or trust that was granted{}", on("on "))),
                "T1098.004" => Some(format!("Isolate the instance the SSH key was pushed to{}", on(""))),
                "T1485" => Some(format!("Cancel the deletion if it can still be cancelled{} (aws kms cancel-key-deletion)", on("of "))),
                _ => None,
            };
            if let Some(step) = step {
                add(&mut actions, step);
            }
        }
    }
    // What costs money while you read.
    if let Some(a) = members.iter().find(|a| {
        a.context
            .as_ref()
            .and_then(|c| c.cost.as_ref())
            .is_some_and(|c| c.per_hour > 0.0)
    }) {
        let region = region(a).unwrap_or_else(|| "REGION".into());
        add(&mut actions, format!(
            "Stop the instances it started: aws ec2 describe-instances --region {region} --filters Name=instance-state-name,Values=pending,running, then aws ec2 stop-instances --region {region} --instance-ids …"
        ));
    }
    if actions.is_empty() {
        let who = principals
            .iter()
            .next()
            .map_or("the principal".to_owned(), |p| crate::context::short_arn(p));
        add(&mut actions, format!(
            "Ask the owner of {who} whether this was them; if not, deactivate its keys and revoke its sessions"
        ));
    }
    actions
}

/// Adds a step not yet there.
fn add(actions: &mut Vec<String>, step: String) {
    if !actions.contains(&step) {
        actions.push(step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::anomaly::Pivots;

    fn rule(detector: &str, technique: &str, target: &str, who: &str, key: &str) -> Anomaly {
        let mut a = Anomaly::sample(
            AnomalyKind::Rule,
            who,
            "2026-11-21T12:00:00Z".parse().unwrap(),
        );
        a.detector = detector.into();
        a.attack = vec![technique.into()];
        a.entity = Some([("target".to_owned(), target.to_owned())].into());
        a.pivots = Pivots {
            access_key_ids: vec![key.into()],
            regions: vec!["us-east-1".into()],
            ..Pivots::default()
        };
        a
    }

    #[test]
    fn a_stopped_trail_by_a_user_key_says_deactivate_it_then_restart_the_trail() {
        let a = rule(
            "cloudtrail-stop-logging",
            "T1562.008",
            "main",
            "arn:aws:iam::1:user/alice",
            "AKIAEXAMPLE1",
        );
        let steps = first_actions(&[&a]);
        assert_eq!(steps.len(), 2, "{steps:#?}");
        assert_eq!(
            steps[0],
            "Deactivate access key AKIAEXAMPLE1: aws iam update-access-key --user-name alice --access-key-id AKIAEXAMPLE1 --status Inactive"
        );
        assert!(
            steps[1].starts_with(
                "Turn the trail back on main: aws cloudtrail start-logging --name main"
            ),
            "{steps:#?}"
        );
    }

    #[test]
    fn a_public_bucket_by_a_role_session_revokes_the_sessions_and_blocks_public_access() {
        let a = rule(
            "s3-bucket-made-public",
            "T1530",
            "payroll",
            "arn:aws:sts::1:assumed-role/deploy/run-1",
            "ASIAEXAMPLE2",
        );
        let steps = first_actions(&[&a, &a]);
        assert_eq!(steps.len(), 2, "{steps:#?}");
        assert!(
            steps[0].starts_with("Revoke the sessions of role deploy"),
            "{steps:#?}"
        );
        assert!(
            steps[1].contains("put-public-access-block --bucket payroll"),
            "{steps:#?}"
        );
    }

    #[test]
    fn with_nothing_specific_the_owner_is_asked() {
        let a = Anomaly::sample(
            AnomalyKind::NewEvent,
            "arn:aws:iam::1:user/bob",
            "2026-11-21T12:00:00Z".parse().unwrap(),
        );
        assert_eq!(
            first_actions(&[&a]),
            ["Ask the owner of user/bob@1 whether this was them; if not, deactivate its keys and revoke its sessions"]
        );
    }
}
