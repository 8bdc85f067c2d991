//! The detector and rule files of `detectors/`, built into the binary, for
//! the deployed Lambdas (which have no repository beside them).

use super::{parse_detector, parse_rule, Detector, Rule};
use std::path::Path;

const FILES: [(&str, &str); 7] = [
    (
        "api-errors.toml",
        include_str!("../../detectors/api-errors.toml"),
    ),
    (
        "console-login-failures.toml",
        include_str!("../../detectors/console-login-failures.toml"),
    ),
    (
        "ebs-create-volume.toml",
        include_str!("../../detectors/ebs-create-volume.toml"),
    ),
    (
        "ec2-run-instances.toml",
        include_str!("../../detectors/ec2-run-instances.toml"),
    ),
    (
        "iam-changes.toml",
        include_str!("../../detectors/iam-changes.toml"),
    ),
    (
        "lambda-invoke.toml",
        include_str!("../../detectors/lambda-invoke.toml"),
    ),
    (
        "s3-get-object.toml",
        include_str!("../../detectors/s3-get-object.toml"),
    ),
];

const RULE_FILES: [(&str, &str); 44] = [
    (
        "ami-made-public.toml",
        include_str!("../../detectors/rules/ami-made-public.toml"),
    ),
    (
        "ami-shared-outside.toml",
        include_str!("../../detectors/rules/ami-shared-outside.toml"),
    ),
    (
        "bedrock-model-invoked.toml",
        include_str!("../../detectors/rules/bedrock-model-invoked.toml"),
    ),
    (
        "cloudtrail-delete-trail.toml",
        include_str!("../../detectors/rules/cloudtrail-delete-trail.toml"),
    ),
    (
        "cloudtrail-management-events-dropped.toml",
        include_str!("../../detectors/rules/cloudtrail-management-events-dropped.toml"),
    ),
    (
        "cloudtrail-stop-logging.toml",
        include_str!("../../detectors/rules/cloudtrail-stop-logging.toml"),
    ),
    (
        "cloudtrail-trail-weakened.toml",
        include_str!("../../detectors/rules/cloudtrail-trail-weakened.toml"),
    ),
    (
        "config-recording-stopped.toml",
        include_str!("../../detectors/rules/config-recording-stopped.toml"),
    ),
    (
        "console-login-without-mfa.toml",
        include_str!("../../detectors/rules/console-login-without-mfa.toml"),
    ),
    (
        "dns-query-logging-removed.toml",
        include_str!("../../detectors/rules/dns-query-logging-removed.toml"),
    ),
    (
        "ebs-snapshot-made-public.toml",
        include_str!("../../detectors/rules/ebs-snapshot-made-public.toml"),
    ),
    (
        "ebs-snapshot-shared-outside.toml",
        include_str!("../../detectors/rules/ebs-snapshot-shared-outside.toml"),
    ),
    (
        "ec2-instance-credentials-used-outside.toml",
        include_str!("../../detectors/rules/ec2-instance-credentials-used-outside.toml"),
    ),
    (
        "ec2-instance-type-never-run.toml",
        include_str!("../../detectors/rules/ec2-instance-type-never-run.toml"),
    ),
    (
        "ec2-password-data-read.toml",
        include_str!("../../detectors/rules/ec2-password-data-read.toml"),
    ),
    (
        "ec2-ssh-key-pushed.toml",
        include_str!("../../detectors/rules/ec2-ssh-key-pushed.toml"),
    ),
    (
        "ec2-user-data-modified.toml",
        include_str!("../../detectors/rules/ec2-user-data-modified.toml"),
    ),
    (
        "federation-token-issued.toml",
        include_str!("../../detectors/rules/federation-token-issued.toml"),
    ),
    (
        "guardduty-detector-disabled.toml",
        include_str!("../../detectors/rules/guardduty-detector-disabled.toml"),
    ),
    (
        "guardduty-findings-suppressed.toml",
        include_str!("../../detectors/rules/guardduty-findings-suppressed.toml"),
    ),
    (
        "iam-admin-policy-attached.toml",
        include_str!("../../detectors/rules/iam-admin-policy-attached.toml"),
    ),
    (
        "iam-credentials-for-another-user.toml",
        include_str!("../../detectors/rules/iam-credentials-for-another-user.toml"),
    ),
    (
        "iam-login-profile-changed-for-another-user.toml",
        include_str!("../../detectors/rules/iam-login-profile-changed-for-another-user.toml"),
    ),
    (
        "iam-policy-version-set-default.toml",
        include_str!("../../detectors/rules/iam-policy-version-set-default.toml"),
    ),
    (
        "iam-user-created.toml",
        include_str!("../../detectors/rules/iam-user-created.toml"),
    ),
    (
        "kms-key-deletion-scheduled.toml",
        include_str!("../../detectors/rules/kms-key-deletion-scheduled.toml"),
    ),
    (
        "lambda-code-changed.toml",
        include_str!("../../detectors/rules/lambda-code-changed.toml"),
    ),
    (
        "lambda-policy-open-to-everyone.toml",
        include_str!("../../detectors/rules/lambda-policy-open-to-everyone.toml"),
    ),
    (
        "log-group-deleted.toml",
        include_str!("../../detectors/rules/log-group-deleted.toml"),
    ),
    (
        "organization-left.toml",
        include_str!("../../detectors/rules/organization-left.toml"),
    ),
    (
        "rds-snapshot-made-public.toml",
        include_str!("../../detectors/rules/rds-snapshot-made-public.toml"),
    ),
    (
        "rds-snapshot-shared-outside.toml",
        include_str!("../../detectors/rules/rds-snapshot-shared-outside.toml"),
    ),
    (
        "role-trusts-outside-account.toml",
        include_str!("../../detectors/rules/role-trusts-outside-account.toml"),
    ),
    (
        "roles-anywhere-trust-anchor.toml",
        include_str!("../../detectors/rules/roles-anywhere-trust-anchor.toml"),
    ),
    (
        "root-activity.toml",
        include_str!("../../detectors/rules/root-activity.toml"),
    ),
    (
        "root-console-login.toml",
        include_str!("../../detectors/rules/root-console-login.toml"),
    ),
    (
        "s3-bucket-deleted.toml",
        include_str!("../../detectors/rules/s3-bucket-deleted.toml"),
    ),
    (
        "s3-bucket-made-public.toml",
        include_str!("../../detectors/rules/s3-bucket-made-public.toml"),
    ),
    (
        "secret-value-read.toml",
        include_str!("../../detectors/rules/secret-value-read.toml"),
    ),
    (
        "security-group-admin-port-open.toml",
        include_str!("../../detectors/rules/security-group-admin-port-open.toml"),
    ),
    (
        "ssm-command-sent.toml",
        include_str!("../../detectors/rules/ssm-command-sent.toml"),
    ),
    (
        "ssm-securestring-read.toml",
        include_str!("../../detectors/rules/ssm-securestring-read.toml"),
    ),
    (
        "ssm-session-started.toml",
        include_str!("../../detectors/rules/ssm-session-started.toml"),
    ),
    (
        "vpc-flow-logs-deleted.toml",
        include_str!("../../detectors/rules/vpc-flow-logs-deleted.toml"),
    ),
];

/// The shipped detectors, parsed.
pub fn shipped() -> Vec<Detector> {
    FILES
        .iter()
        .map(|(name, text)| {
            parse_detector(&Path::new("detectors").join(name), text)
                .unwrap_or_else(|e| panic!("shipped detector {name} is invalid: {e}"))
        })
        .collect()
}

/// The shipped rules (`detectors/rules/`), parsed.
pub fn shipped_rules() -> Vec<Rule> {
    RULE_FILES
        .iter()
        .map(|(name, text)| {
            parse_rule(&Path::new("detectors/rules").join(name), text)
                .unwrap_or_else(|e| panic!("shipped rule {name} is invalid: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    fn on_disk(dir: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_file_in_detectors_is_built_in() {
        let built_in: Vec<String> = super::FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(built_in, on_disk("detectors"));
        assert_eq!(super::shipped().len(), built_in.len());
        let rules: Vec<String> = super::RULE_FILES
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(rules, on_disk("detectors/rules"));
        assert_eq!(super::shipped_rules().len(), rules.len());
    }
}
