//! How every command that talks to an OpenSearch cluster is told where it is
//! and how to authenticate ([`ConnectArgs`]), turned into the library's one
//! [`Target`]; and `trailwatch opensearch apply|delete`, the reconcile of
//! the objects rendered from the detector files ([`ObjectArgs`]), whose
//! confirm-then-change flow ([`bootstrap`]) `deploy` shares.

use super::deploy::AwsArgs;
use super::EXIT_OK;
use crate::opensearch::apply::{Line, Wait};
use crate::opensearch::bootstrap::{default_dashboards_url, ready, reconcile, Action, Cluster};
use crate::opensearch::desired::channels::Channel;
use crate::opensearch::desired::security::Access;
use crate::opensearch::desired::{desired, Desired, Settings};
use crate::opensearch::{is_aws_host, Auth, OpenSearch, Target};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::IsTerminal;
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
        target(
            &self.opensearch_url,
            self.opensearch_ca_cert.clone(),
            self.opensearch_user.clone(),
            self.sign,
            &self.aws,
            timeout,
        )
        .await
    }

    pub async fn client(&self, timeout: Duration) -> anyhow::Result<OpenSearch> {
        Ok(OpenSearch::connect(&self.target(timeout).await?)?)
    }
}

/// Basic auth as `user`, with OPENSEARCH_PASSWORD; a missing password is
/// said, with what not setting the user would do instead (`otherwise`).
pub fn basic_auth(user: String, otherwise: &str) -> anyhow::Result<Auth> {
    let password = std::env::var("OPENSEARCH_PASSWORD").map_err(|_| {
        anyhow::anyhow!(
            "OPENSEARCH_USER is {user:?} but OPENSEARCH_PASSWORD is not set; set both for basic auth, or neither {otherwise}"
        )
    })?;
    Ok(Auth::Basic { user, password })
}

/// A cluster's target: basic auth when a user is given (and `sign` is
/// not), with OPENSEARCH_PASSWORD; SigV4 when asked or the host is AWS's;
/// else no credentials.
pub async fn target(
    url: &str,
    ca_cert: Option<PathBuf>,
    user: Option<String>,
    sign: bool,
    aws: &AwsArgs,
    timeout: Duration,
) -> anyhow::Result<Target> {
    let auth = match user {
        Some(user) if !sign => basic_auth(user, "for SigV4")?,
        _ if sign || is_aws_host(url) => Auth::sigv4(&aws.target().load().await)?,
        _ => Auth::None,
    };
    Ok(Target {
        url: url.to_owned(),
        auth,
        ca_cert,
        timeout,
    })
}

/// What the OpenSearch objects are made from: the detector files, the
/// retention and the extra channels. `deploy` takes these; the roles and the
/// alert topic it reads from the stack.
#[derive(Debug, Clone, Args)]
pub struct ContentArgs {
    /// Detector files to render [default: the built-in set].
    #[arg(long, value_name = "DIR")]
    pub detectors: Option<PathBuf>,
    /// Days before ISM deletes the cwl-* indices and the anomaly results.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub index_retention_days: u32,
    /// Send every monitor's alert here too: slack:URL, chime:URL or webhook:URL (repeatable).
    #[arg(long, value_name = "KIND:URL", value_parser = Channel::parse_notify)]
    pub notify: Vec<Channel>,
}

impl ContentArgs {
    /// The settings with this access and, when given, the SNS alert channel
    /// (topic, publish role) first.
    pub fn settings(&self, access: Access, alert: Option<(String, String)>) -> Settings {
        let mut channels = Vec::new();
        if let Some((topic_arn, role_arn)) = alert {
            channels.push(Channel::Sns {
                topic_arn,
                role_arn,
            });
        }
        channels.extend(self.notify.iter().cloned());
        Settings {
            retention_days: self.index_retention_days,
            access,
            channels,
        }
    }

    /// Every object, rendered; refusals are printed one per line, naming
    /// file and key.
    pub fn desired(&self, settings: &Settings) -> anyhow::Result<Desired> {
        let set = super::detectors::load(self.detectors.as_deref(), &[])?;
        desired(&set.detectors, settings).map_err(|refusals| {
            for r in &refusals {
                eprintln!("{r}");
            }
            anyhow::anyhow!(
                "{} detector setting(s) the OpenSearch plugins would refuse (above); nothing was changed",
                refusals.len()
            )
        })
    }
}

/// What the OpenSearch objects depend on: their content, and who may do
/// what (given here; `deploy` reads them from the stack's outputs).
#[derive(Debug, Clone, Args)]
pub struct ObjectArgs {
    #[command(flatten)]
    pub content: ContentArgs,
    /// The SNS topic the alert channel publishes to (with --publish-role-arn).
    #[arg(long, value_name = "ARN", requires = "publish_role_arn")]
    pub alert_topic_arn: Option<String>,
    /// The role OpenSearch assumes to publish to the alert topic.
    #[arg(long, value_name = "ARN", requires = "alert_topic_arn")]
    pub publish_role_arn: Option<String>,
    /// Backend role (IAM role ARN) of the log forwarder (repeatable).
    #[arg(long, value_name = "ARN")]
    pub forwarder_role: Vec<String>,
    /// Backend role of the alert enricher (repeatable).
    #[arg(long, value_name = "ARN")]
    pub enricher_role: Vec<String>,
    /// Backend role given full access, such as the Cognito admin group's role (repeatable).
    #[arg(long, value_name = "ARN")]
    pub admin_role: Vec<String>,
    /// Backend role of read-only dashboard users, such as Cognito's authenticated role (repeatable).
    #[arg(long, value_name = "ARN")]
    pub reader_role: Vec<String>,
}

impl ObjectArgs {
    pub fn settings(&self) -> Settings {
        let alert = self
            .alert_topic_arn
            .clone()
            .zip(self.publish_role_arn.clone());
        self.content.settings(
            Access {
                forwarder: self.forwarder_role.clone(),
                enricher: self.enricher_role.clone(),
                admins: self.admin_role.clone(),
                readers: self.reader_role.clone(),
            },
            alert,
        )
    }

    pub fn desired(&self) -> anyhow::Result<Desired> {
        self.content.desired(&self.settings())
    }
}

/// A cluster, and which detectors' objects to look at there.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Detector files whose objects to look at [default: the built-in set].
    #[arg(long, value_name = "DIR")]
    pub detectors: Option<PathBuf>,
}

impl InspectArgs {
    /// The detectors that have OpenSearch objects, or the one named (by
    /// its file name or as the plugin knows it, `trailwatch-<name>`).
    pub fn select(&self, name: Option<&str>) -> anyhow::Result<Vec<crate::detector::Detector>> {
        let content = ContentArgs {
            detectors: self.detectors.clone(),
            index_retention_days: 30,
            notify: Vec::new(),
        };
        let desired = content.desired(&Settings::default())?;
        let all: Vec<crate::detector::Detector> =
            desired.detectors.into_iter().map(|(d, _)| d).collect();
        let Some(name) = name else {
            return Ok(all);
        };
        let short = name.strip_prefix("trailwatch-").unwrap_or(name);
        match all.iter().find(|d| d.name == short) {
            Some(d) => Ok(vec![d.clone()]),
            None => anyhow::bail!(
                "no detector named {name:?} has OpenSearch objects; these do: {}",
                all.iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum OpenSearchCommand {
    /// Create, update or leave alone every object trailwatch manages on the cluster.
    #[command(
        after_help = "Prints one line per object: created, updated, replaced or unchanged. \
A re-run changes nothing. Without --yes it shows the changes and asks (or, not on a terminal, stops).\n\n\
Examples:\n  trailwatch opensearch apply --opensearch-url https://search-x.us-east-1.es.amazonaws.com --dry-run\n  \
export OPENSEARCH_USER=admin OPENSEARCH_PASSWORD=… OPENSEARCH_CA_CERT=root-ca.pem\n  \
trailwatch opensearch apply --opensearch-url https://127.0.0.1:9200 --notify webhook:https://h/x"
    )]
    Apply(ApplyArgs),
    /// Remove what apply made (monitors, detectors, channels, roles, policies, template), and nothing else.
    #[command(
        after_help = "The cwl-* data indices and the anomaly results stay.\n\n\
Delete finds what apply made by the same definitions: give it the --detectors and --notify \
(and --alert-topic-arn) apply was given, as the names of the detectors and the ids of the \
channels come from them. The role and retention flags change nothing it deletes.\n\n\
Example:\n  export OPENSEARCH_CA_CERT=root-ca.pem\n  \
trailwatch opensearch delete --opensearch-url https://127.0.0.1:9200"
    )]
    Delete(DeleteArgs),
}

/// `opensearch delete`: the connection, what apply was given (under a
/// heading of its own), and how to go about it.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Print what would be deleted and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete without asking.
    #[arg(long)]
    pub yes: bool,
    /// OpenSearch Dashboards' URL [default: <opensearch-url>/_dashboards for an AWS domain].
    #[arg(long, value_name = "URL")]
    pub dashboards_url: Option<String>,
    /// Longest wait for the cluster and its plugins to answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub wait: u64,
    #[command(
        flatten,
        next_help_heading = "What apply was given (delete finds what it made by these)"
    )]
    pub objects: ObjectArgs,
}

impl From<DeleteArgs> for ApplyArgs {
    fn from(d: DeleteArgs) -> ApplyArgs {
        ApplyArgs {
            connect: d.connect,
            objects: d.objects,
            dry_run: d.dry_run,
            yes: d.yes,
            dashboards_url: d.dashboards_url,
            wait: d.wait,
        }
    }
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub objects: ObjectArgs,
    /// Print what would change against the live cluster and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Change without asking.
    #[arg(long)]
    pub yes: bool,
    /// OpenSearch Dashboards' URL, where the saved objects of dashboards/ are imported [default: <opensearch-url>/_dashboards for an AWS domain].
    #[arg(long, value_name = "URL")]
    pub dashboards_url: Option<String>,
    /// Longest wait for the cluster and its plugins to answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub wait: u64,
}

pub fn run(command: OpenSearchCommand) -> anyhow::Result<i32> {
    let (args, action) = match command {
        OpenSearchCommand::Apply(a) => (a, Action::Apply),
        OpenSearchCommand::Delete(a) => (a.into(), Action::Delete),
    };
    let desired = args.objects.desired()?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let target = args.connect.target(Duration::from_secs(60)).await?;
        let cluster = connect(&target, args.dashboards_url.clone())?;
        let mut ask = |question: &str| -> anyhow::Result<bool> {
            if !std::io::stdin().is_terminal() {
                anyhow::bail!("{question}: run again with --yes to change them");
            }
            Ok(super::deploy::confirm(&format!("{question}?"))?)
        };
        bootstrap(
            &cluster,
            &desired,
            action,
            Run {
                dry_run: args.dry_run,
                yes: args.yes,
                wait: Duration::from_secs(args.wait),
            },
            &mut ask,
        )
        .await?;
        Ok(EXIT_OK)
    })
}

/// The cluster at `target`, and its Dashboards: `dashboards_url`, or the
/// AWS domain's own.
pub(crate) fn connect(target: &Target, dashboards_url: Option<String>) -> anyhow::Result<Cluster> {
    let os = OpenSearch::connect(target)?;
    let dashboards = match dashboards_url.or_else(|| default_dashboards_url(&target.url)) {
        Some(url) => Some(OpenSearch::connect(&Target {
            url,
            ..target.clone()
        })?),
        None => None,
    };
    Ok(Cluster { os, dashboards })
}

/// How one bootstrap runs.
pub(crate) struct Run {
    /// Read only: say what would change.
    pub dry_run: bool,
    /// Change without asking (and without the read-only pass).
    pub yes: bool,
    pub wait: Duration,
}

/// Waits for the cluster, then reconciles, printing a line per object.
/// Without `yes`, a first read-only pass counts the changes: none is said
/// and ends it; otherwise `ask` decides (it sees "N object(s) would change
/// on URL"). Returns how many objects changed.
pub(crate) async fn bootstrap(
    cluster: &Cluster,
    desired: &Desired,
    action: Action,
    run: Run,
    ask: &mut dyn FnMut(&str) -> anyhow::Result<bool>,
) -> anyhow::Result<usize> {
    let base = cluster.os.base().to_owned();
    ready(cluster, Wait { total: run.wait }, &mut |what| {
        eprintln!("{what}")
    })
    .await
    .with_context(|| format!("OpenSearch at {base} is not ready"))?;
    let pass = |dry_run: bool| async move {
        let mut print = |line: &Line| println!("{}", line.render(dry_run));
        reconcile(cluster, desired, action, dry_run, &mut print).await
    };
    if run.dry_run || !run.yes {
        let planned = pass(true).await?.changes();
        if run.dry_run {
            eprintln!("{planned} object(s) would change; nothing was written (--dry-run)");
            return Ok(0);
        }
        if planned == 0 {
            eprintln!("nothing to change on {base}");
            return Ok(0);
        }
        if !ask(&format!("{planned} object(s) would change on {base}"))? {
            eprintln!("nothing was changed on {base}");
            return Ok(0);
        }
    }
    let changes = pass(false).await?.changes();
    eprintln!("{}: {changes} object(s) changed on {base}", action.done());
    Ok(changes)
}
