//! Deliveries read where they lie: a trail bucket's objects under a prefix
//! (`s3://bucket/AWSLogs/…`), in the account layout
//! (`AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/…`) or an
//! organisation's (`AWSLogs/<org-id>/<account>/…`), listed, picked by day,
//! and fetched into [`Input::Object`]s. Digests and Insight deliveries are
//! left out.

use super::Input;
use chrono::NaiveDate;
use std::sync::Arc;

/// A bucket and a prefix in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPath {
    pub bucket: String,
    pub prefix: String,
}

impl BucketPath {
    /// `s3://bucket` or `s3://bucket/prefix`; None for anything else.
    pub fn parse(url: &str) -> Option<BucketPath> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then(|| BucketPath {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// Why a bucket could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("s3://{bucket}/{prefix}: cannot list the deliveries: {message}")]
    List {
        bucket: String,
        prefix: String,
        message: String,
    },
    #[error("s3://{bucket}/{key}: cannot read the delivery: {message}")]
    Get {
        bucket: String,
        key: String,
        message: String,
    },
}

/// Whether an object key is a CloudTrail delivery (not a digest or an
/// Insight delivery).
pub fn is_delivery(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.contains("_CloudTrail_")
        && !key.contains("/CloudTrail-Digest/")
        && !key.contains("/CloudTrail-Insight/")
}

/// The day a delivery's key files it under (`…/CloudTrail/<region>/yyyy/mm/dd/…`).
pub fn day_of_key(key: &str) -> Option<NaiveDate> {
    let parts: Vec<&str> = key.split('/').collect();
    let at = parts.iter().position(|p| *p == "CloudTrail")?;
    let (y, m, d) = (parts.get(at + 2)?, parts.get(at + 3)?, parts.get(at + 4)?);
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// The deliveries under `at` whose day `keep` accepts (a key with no day
/// is kept), sorted by key, with their sizes.
pub async fn list(
    client: &aws_sdk_s3::Client,
    at: &BucketPath,
    keep: &dyn Fn(NaiveDate) -> bool,
) -> Result<Vec<(String, u64)>, BucketError> {
    let mut out = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(&at.bucket)
        .prefix(&at.prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| BucketError::List {
            bucket: at.bucket.clone(),
            prefix: at.prefix.clone(),
            message: crate::aws::error_message(&e),
        })?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            if is_delivery(key) && day_of_key(key).is_none_or(keep) {
                out.push((key.to_owned(), o.size().unwrap_or(0).max(0) as u64));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One delivery as an input, named `s3://bucket/key` at its ETag; None
/// when the object is gone.
pub async fn get(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Input>, BucketError> {
    let fail = |message: String| BucketError::Get {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message,
    };
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(obj) => {
            let version = obj.e_tag().unwrap_or_default().trim_matches('"').to_owned();
            let bytes = obj
                .body
                .collect()
                .await
                .map_err(|e| fail(e.to_string()))?
                .into_bytes();
            Ok(Some(Input::Object {
                name: format!("s3://{bucket}/{key}"),
                version,
                bytes: Arc::from(bytes.as_ref()),
            }))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(fail(crate::aws::error_message(&e))),
    }
}

/// Objects fetched at once.
const IN_FLIGHT: usize = 16;

/// Every listed delivery, fetched [`IN_FLIGHT`] at a time, in the listed
/// order; `progress` gets each one's size.
pub async fn get_all(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    keys: &[(String, u64)],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Input>, BucketError> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(IN_FLIGHT) {
        let mut set = tokio::task::JoinSet::new();
        for (i, (key, _)) in chunk.iter().enumerate() {
            let (client, bucket, key) = (client.clone(), bucket.to_owned(), key.clone());
            set.spawn(async move { (i, get(&client, &bucket, &key).await) });
        }
        let mut got: Vec<(usize, Option<Input>)> = Vec::with_capacity(chunk.len());
        while let Some(joined) = set.join_next().await {
            let (i, result) = joined.map_err(|e| BucketError::Get {
                bucket: bucket.to_owned(),
                key: String::new(),
                message: e.to_string(),
            })?;
            progress(chunk[i].1);
            got.push((i, result?));
        }
        got.sort_by_key(|(i, _)| *i);
        out.extend(got.into_iter().filter_map(|(_, input)| input));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_and_days_are_read_from_urls_and_keys() {
        assert_eq!(
            BucketPath::parse("s3://trail/AWSLogs/"),
            Some(BucketPath {
                bucket: "trail".into(),
                prefix: "AWSLogs/".into()
            })
        );
        assert_eq!(BucketPath::parse("s3://trail").unwrap().prefix, "");
        assert_eq!(BucketPath::parse("s3://"), None);
        assert_eq!(BucketPath::parse("/tmp/x"), None);
        let day = |k: &str| day_of_key(k).map(|d| d.to_string());
        assert_eq!(
            day("AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/05/x_CloudTrail_us-east-1_20260105T1005Z_a.json.gz").as_deref(),
            Some("2026-01-05")
        );
        assert_eq!(
            day("AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2026/12/31/x.json.gz")
                .as_deref(),
            Some("2026-12-31")
        );
        assert_eq!(
            day("AWSLogs/111122223333/CloudTrail/us-east-1/2026/13/01/x"),
            None
        );
        assert!(is_delivery("AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2026/12/31/111122223333_CloudTrail_eu-west-1_20261231T0000Z_a.json.gz"));
        assert!(!is_delivery("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/12/31/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20261231T0000Z.json.gz"));
    }
}
