//! Reaching AWS: one SDK configuration from the default credential chain,
//! with the profile, region and endpoint (an emulator such as moto) the user
//! names. Every AWS client in trailwatch is built from [`AwsTarget::load`].

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where AWS calls go, as the user asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsTarget {
    /// A named profile of the shared config files.
    pub profile: Option<String>,
    /// The region; otherwise the chain's (AWS_REGION, the profile).
    pub region: Option<String>,
    /// Another endpoint for every service: an emulator or a private endpoint.
    pub endpoint_url: Option<String>,
}

impl AwsTarget {
    /// The SDK configuration: the default credential chain, with this
    /// target's profile, region and endpoint over it.
    pub async fn load(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader.load().await
    }

    /// An S3 client; path-style addressing when an endpoint is given, as
    /// emulators serve no per-bucket host names.
    pub fn s3(&self, config: &SdkConfig) -> aws_sdk_s3::Client {
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(self.endpoint_url.is_some())
            .build();
        aws_sdk_s3::Client::from_conf(s3)
    }
}

/// The same configuration, acting as `role` (STS AssumeRole, refreshed as
/// it expires) under `session` as its session name.
pub async fn assume_role(config: &SdkConfig, role: &str, session: &str) -> SdkConfig {
    let provider = aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name(session)
        .configure(config)
        .build()
        .await;
    config
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

/// Why the SDK configuration cannot be used, found before any AWS call.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("no AWS region: pass --region, set AWS_REGION, or give the profile a region")]
    NoRegion,
    #[error("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass --profile NAME (after `aws configure` or `aws sso login`), or run where a role provides them (EC2, ECS, Lambda)")]
    NoCredentials,
    #[error("cannot load the AWS credentials ({0}); check --profile and ~/.aws/config")]
    Credentials(String),
}

/// The region this configuration acts in, and a check that credentials
/// resolve, so a missing one is said in one line rather than as the first
/// call's timeout on the instance metadata service.
pub async fn ready(config: &SdkConfig) -> Result<String, SetupError> {
    use aws_credential_types::provider::{error::CredentialsError, ProvideCredentials};
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or(SetupError::NoRegion)?;
    let provider = config
        .credentials_provider()
        .ok_or(SetupError::NoCredentials)?;
    match provider.provide_credentials().await {
        Ok(_) => Ok(region),
        Err(CredentialsError::CredentialsNotLoaded(_)) => Err(SetupError::NoCredentials),
        Err(e) => Err(SetupError::Credentials(with_causes(&e))),
    }
}

/// The message of an SDK error, with its code: what AWS said, not the
/// SDK's generic "service error".
pub fn error_message<E>(err: &aws_sdk_s3::error::SdkError<E>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match err.as_service_error() {
        Some(service) => match (service.code(), service.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            (None, Some(message)) => message.to_owned(),
            // An answer the SDK could not read: show what it said.
            (None, None) => match err.raw_response() {
                Some(raw) => {
                    let body = raw
                        .body()
                        .bytes()
                        .map(|b| String::from_utf8_lossy(&b[..b.len().min(500)]).into_owned())
                        .unwrap_or_default();
                    format!("HTTP {}: {}", raw.status().as_u16(), body.trim())
                }
                None => service.to_string(),
            },
        },
        None => with_causes(err),
    }
}

/// An error and its chain of causes on one line: "a: b: c".
pub fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
