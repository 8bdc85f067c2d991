//! How every command that talks to an OpenSearch cluster is told where it is
//! and how to authenticate ([`ConnectArgs`]), turned into the library's one
//! [`Target`].

use super::deploy::AwsArgs;
use crate::opensearch::{is_aws_host, Auth, OpenSearch, Target};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Where OpenSearch is, and which credentials to use.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The OpenSearch endpoint, e.g. https://search-x.us-east-1.es.amazonaws.com or https://127.0.0.1:9200.
    #[arg(long, value_name = "URL", env = "OPENSEARCH_ENDPOINT")]
    pub opensearch_url: String,
    /// Trust this CA's certificate (PEM) for the cluster's TLS, besides the system's.
    #[arg(long, value_name = "FILE", env = "OPENSEARCH_CA_CERT")]
    pub opensearch_ca_cert: Option<PathBuf>,
    /// Basic auth user (a fine-grained-access master user or an internal user); the password comes from OPENSEARCH_PASSWORD.
    #[arg(long, value_name = "USER", env = "OPENSEARCH_USER")]
    pub opensearch_user: Option<String>,
    /// Sign requests with SigV4 [default: when the host is an AWS one and no OPENSEARCH_USER is set].
    #[arg(long)]
    pub sign: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

impl ConnectArgs {
    /// The target: basic auth when a user is given, SigV4 when asked or the
    /// host is AWS's, else no credentials.
    pub async fn target(&self, timeout: Duration) -> anyhow::Result<Target> {
        let auth = match &self.opensearch_user {
            Some(user) if !self.sign => {
                let password = std::env::var("OPENSEARCH_PASSWORD").map_err(|_| {
                    anyhow::anyhow!(
                        "OPENSEARCH_USER is {user:?} but OPENSEARCH_PASSWORD is not set; set both for basic auth, or neither for SigV4"
                    )
                })?;
                Auth::Basic {
                    user: user.clone(),
                    password,
                }
            }
            _ if self.sign || is_aws_host(&self.opensearch_url) => {
                Auth::sigv4(&self.aws.target().load().await)?
            }
            _ => Auth::None,
        };
        Ok(Target {
            url: self.opensearch_url.clone(),
            auth,
            ca_cert: self.opensearch_ca_cert.clone(),
            timeout,
        })
    }

    pub async fn client(&self, timeout: Duration) -> anyhow::Result<OpenSearch> {
        Ok(OpenSearch::connect(&self.target(timeout).await?)?)
    }
}
