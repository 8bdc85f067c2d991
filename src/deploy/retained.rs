//! The data a deleted stack keeps (trail bucket, log groups, domain, and the
//! KMS key that encrypts them), deleted on request (`destroy
//! --delete-data`) through each service's own API, once the stack and its
//! trail are gone.

use super::artifacts;
use crate::aws::{error_message, AwsTarget};
use aws_config::SdkConfig;

/// A retained resource, found by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub logical_id: String,
    pub resource_type: String,
    /// Its name or id in AWS.
    pub physical_id: String,
}

/// What became of one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    Done(String),
    /// Not there (already deleted, or never made).
    Gone,
    Failed(String),
    /// A type this does not know how to delete.
    Unknown,
}

/// The order to delete in: the domain and logs before the bucket, the key
/// that encrypts them last.
fn rank(resource_type: &str) -> u8 {
    match resource_type {
        "AWS::OpenSearchService::Domain" => 0,
        "AWS::Logs::LogGroup" => 1,
        "AWS::S3::Bucket" => 2,
        "AWS::KMS::Key" => 9,
        _ => 5,
    }
}

fn not_found(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("notfound")
        || m.contains("not found")
        || m.contains("does not exist")
        || m.contains("nosuchbucket")
        || m.contains("pendingdeletion")
        || m.contains("pending deletion")
}

fn outcome(result: Result<String, String>) -> Deleted {
    match result {
        Ok(done) => Deleted::Done(done),
        Err(message) if not_found(&message) => Deleted::Gone,
        Err(message) => Deleted::Failed(message),
    }
}

/// Deletes each resource; reports each, in the order done.
pub async fn delete_all(
    target: &AwsTarget,
    sdk: &SdkConfig,
    mut kept: Vec<Kept>,
) -> Vec<(Kept, Deleted)> {
    kept.sort_by_key(|k| rank(&k.resource_type));
    let mut report = Vec::new();
    for k in kept {
        let id = k.physical_id.clone();
        let result = match k.resource_type.as_str() {
            "AWS::S3::Bucket" => {
                let s3 = target.s3(sdk);
                let emptied = artifacts::empty_bucket(&s3, &id)
                    .await
                    .map_err(|e| e.message);
                match emptied {
                    Ok(n) => outcome(
                        s3.delete_bucket()
                            .bucket(&id)
                            .send()
                            .await
                            .map(|_| format!("emptied ({n} object versions) and deleted"))
                            .map_err(|e| error_message(&e)),
                    ),
                    Err(message) => outcome(Err(message)),
                }
            }
            "AWS::Logs::LogGroup" => outcome(
                aws_sdk_cloudwatchlogs::Client::new(sdk)
                    .delete_log_group()
                    .log_group_name(&id)
                    .send()
                    .await
                    .map(|_| "deleted".to_owned())
                    .map_err(|e| error_message(&e)),
            ),
            "AWS::KMS::Key" => outcome(
                aws_sdk_kms::Client::new(sdk)
                    .schedule_key_deletion()
                    .key_id(&id)
                    .pending_window_in_days(7)
                    .send()
                    .await
                    .map(|_| "scheduled for deletion in 7 days".to_owned())
                    .map_err(|e| error_message(&e)),
            ),
            "AWS::OpenSearchService::Domain" => outcome(
                aws_sdk_opensearch::Client::new(sdk)
                    .delete_domain()
                    .domain_name(&id)
                    .send()
                    .await
                    .map(|_| "deletion started".to_owned())
                    .map_err(|e| error_message(&e)),
            ),
            _ => Deleted::Unknown,
        };
        report.push((k, result));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_goes_last_and_missing_resources_count_as_gone() {
        let mut types = vec![
            "AWS::KMS::Key",
            "AWS::S3::Bucket",
            "AWS::OpenSearchService::Domain",
            "AWS::Logs::LogGroup",
        ];
        types.sort_by_key(|t| rank(t));
        assert_eq!(
            types,
            [
                "AWS::OpenSearchService::Domain",
                "AWS::Logs::LogGroup",
                "AWS::S3::Bucket",
                "AWS::KMS::Key"
            ]
        );
        assert_eq!(
            outcome(Err(
                "ResourceNotFoundException: The specified log group does not exist.".into()
            )),
            Deleted::Gone
        );
        assert_eq!(outcome(Err("NoSuchBucket: gone".into())), Deleted::Gone);
        assert_eq!(
            outcome(Err("AccessDenied: no".into())),
            Deleted::Failed("AccessDenied: no".into())
        );
    }
}
