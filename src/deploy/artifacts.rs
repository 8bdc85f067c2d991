//! The artifact bucket: where `deploy` uploads the Lambda package before the
//! stack refers to it. One per account and region, made private, encrypted
//! and TLS-only the first time, reused after. Also empties a bucket for
//! `destroy --delete-data`.

use crate::aws::error_message;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use aws_sdk_s3::Client;

/// An S3 call that failed.
#[derive(Debug, thiserror::Error)]
#[error("S3 {action} of bucket {bucket}: {message}")]
pub struct BucketError {
    pub action: &'static str,
    pub bucket: String,
    pub message: String,
}

/// The artifact bucket's name: `<prefix>-code-<account>-<region>` (at most
/// 61 characters for the longest prefix and region).
pub fn bucket_name(prefix: &str, account: &str, region: &str) -> String {
    format!("{prefix}-code-{account}-{region}")
}

fn fail<E>(action: &'static str, bucket: &str, err: &aws_sdk_s3::error::SdkError<E>) -> BucketError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    BucketError {
        action,
        bucket: bucket.to_owned(),
        message: error_message(err),
    }
}

/// A request the SDK's builder refused before sending it.
fn invalid(action: &'static str, bucket: &str, err: impl std::fmt::Display) -> BucketError {
    BucketError {
        action,
        bucket: bucket.to_owned(),
        message: err.to_string(),
    }
}

/// Makes the bucket unless it exists. Returns whether it was made. With
/// `tls_only`, a bucket policy refuses every request not made over TLS
/// (leave it off only for an emulator reached over plain HTTP, which the
/// policy would lock out).
pub async fn ensure_bucket(
    s3: &Client,
    bucket: &str,
    region: &str,
    tls_only: bool,
) -> Result<bool, BucketError> {
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(false);
    }
    let mut create = s3.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    create
        .send()
        .await
        .map_err(|e| fail("create", bucket, &e))?;
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| fail("put-public-access-block", bucket, &e))?;
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()
        .map_err(|e| invalid("put-bucket-encryption", bucket, e))?;
    let encryption = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .build(),
        )
        .build()
        .map_err(|e| invalid("put-bucket-encryption", bucket, e))?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(encryption)
        .send()
        .await
        .map_err(|e| fail("put-bucket-encryption", bucket, &e))?;
    if !tls_only {
        return Ok(true);
    }
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    });
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy.to_string())
        .send()
        .await
        .map_err(|e| fail("put-bucket-policy", bucket, &e))?;
    Ok(true)
}

/// Uploads `body` under `key` unless an object is there already (keys are
/// content digests). Returns whether it uploaded.
pub async fn upload_once(
    s3: &Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<bool, BucketError> {
    if s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
    {
        return Ok(false);
    }
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| fail("put-object", bucket, &e))?;
    Ok(true)
}

/// Takes back what a deploy made for a review that was declined: the
/// package it uploaded, and the bucket when it made it (empty again).
pub async fn take_back(
    s3: &Client,
    bucket: &str,
    key: Option<&str>,
    bucket_made: bool,
) -> Result<(), BucketError> {
    if let Some(key) = key {
        s3.delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| fail("delete-object", bucket, &e))?;
    }
    if bucket_made {
        empty_bucket(s3, bucket).await?;
        s3.delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| fail("delete-bucket", bucket, &e))?;
    }
    Ok(())
}

/// Deletes every object version and delete marker. Returns how many.
pub async fn empty_bucket(s3: &Client, bucket: &str) -> Result<usize, BucketError> {
    let mut deleted = 0;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| fail("list-object-versions", bucket, &e))?;
        let mut ids = Vec::new();
        let versions = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            );
        for (key, version) in versions {
            let Some(key) = key else { continue };
            let id = ObjectIdentifier::builder()
                .key(key)
                .set_version_id(version.map(str::to_owned))
                .build()
                .map_err(|e| invalid("delete-objects", bucket, e))?;
            ids.push(id);
        }
        if ids.is_empty() {
            return Ok(deleted);
        }
        deleted += ids.len();
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| invalid("delete-objects", bucket, e))?;
        s3.delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| fail("delete-objects", bucket, &e))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_bucket_name_fits_s3s_limit() {
        let longest = bucket_name(&"p".repeat(28), "123456789012", "ap-southeast-4");
        assert!(longest.len() <= 63, "{} chars", longest.len());
        assert_eq!(
            bucket_name("trailwatch", "123456789012", "us-east-1"),
            "trailwatch-code-123456789012-us-east-1"
        );
    }
}
