//! `trailwatch plan`, `deploy`, `outputs` and `destroy`: the stack, rendered
//! offline or applied through CloudFormation change sets.

use super::{progress_bar, EXIT_ERROR, EXIT_OK};
use crate::aws::AwsTarget;
use crate::deploy::changes::{first_failure, retained};
use crate::deploy::config::Preset;
use crate::deploy::notification::{self, engine_queue_arn};
use crate::deploy::outputs::StackOutputs;
use crate::deploy::parameters::BootstrapParameters;
use crate::deploy::retained::{self, Deleted};
use crate::deploy::stack::{StackInfo, Stacks};
use crate::deploy::workflow::{self, Deployment, Progress, Report};
use crate::deploy::{package, render, DeployConfig, DeployOptions};
use crate::opensearch::bootstrap::{reachable, Action};
use crate::opensearch::{Auth, Target};
use anyhow::{bail, Context};
use clap::Args;
use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
#[command(
    after_help = "Offline: no credentials needed. Review DIR/stack.json, or deploy it with your own pipeline: \
plan also writes the Lambda package the template points at (DIR/lambda/trailwatch-<hash>.zip, this binary \
with the detector files) and DIR/parameters.json (each *CodeKey is that key; LambdaCodeBucket is \
--code-bucket). Upload the zip to the code bucket under the same key, then create the stack from \
stack.json with parameters.json, as sam package's output is deployed.\n\n\
With --events-per-day, prints what the stack would cost a month per component, --ingest cwl and s3 side by side, from the dated price table shipped with trailwatch (us-east-1, on-demand), with its assumptions.\n\n\
Examples:\n  trailwatch plan --out plan/\n  trailwatch plan --out plan/ --prefix acme --instance-count 3 --alert-email sec@example.com\n  \
trailwatch plan --out plan/ --events-per-day 2000000\n  \
trailwatch plan --out plan/ --config trailwatch.toml"
)]
pub struct PlanArgs {
    /// Folder to write stack.json into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Estimate the monthly cost at this many CloudTrail events a day (printed on standard output).
    #[arg(long, value_name = "N")]
    pub events_per_day: Option<u64>,
    /// Of those, data events (S3 objects, Lambda invocations), which CloudTrail bills per 100,000.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        requires = "events_per_day"
    )]
    pub data_events_per_day: u64,
    /// How to print the estimate.
    #[arg(long, value_enum, default_value_t = EstimateFormat::Text, requires = "events_per_day")]
    pub format: EstimateFormat,
    /// The bucket the pipeline uploads the Lambda package to: LambdaCodeBucket
    /// in DIR/parameters.json [default: left out, for the pipeline to give].
    #[arg(long, value_name = "BUCKET")]
    pub code_bucket: Option<String>,
    /// The binary to package as the Lambdas' bootstrap [default: this trailwatch].
    #[arg(long, value_name = "FILE", conflicts_with = "no_package")]
    pub lambda_binary: Option<PathBuf>,
    /// Write only the template and the OpenSearch objects, no Lambda package.
    #[arg(long)]
    pub no_package: bool,
    #[command(flatten)]
    pub options: DeployOptions,
    #[command(flatten)]
    pub objects: super::opensearch::ObjectArgs,
}

/// How `plan` prints its cost estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EstimateFormat {
    Text,
    Json,
}

/// Where AWS calls go.
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// A profile of ~/.aws/config and ~/.aws/credentials.
    #[arg(long)]
    pub profile: Option<String>,
    /// The AWS region [default: the profile's, or AWS_REGION].
    #[arg(long)]
    pub region: Option<String>,
    /// Send every AWS call here instead (an emulator such as moto_server).
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub endpoint_url: Option<String>,
}

fn parse_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(s.trim_end_matches('/').to_owned())
        }
        _ => Err(format!(
            "{s:?} is not a URL; write http://127.0.0.1:5000 or https://..."
        )),
    }
}

impl AwsArgs {
    pub fn target(&self) -> AwsTarget {
        AwsTarget {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Needs AWS credentials (the SDK's default chain, or --profile). \
The Lambda package is this trailwatch binary itself: build it with `cargo build --release` \
on a system with glibc 2.34 or older (or pass --lambda-binary).\n\n\
Once the stack is up, deploy applies the OpenSearch objects (security roles, index template, \
retention, channels, detectors, monitors, dashboards) as `trailwatch opensearch apply` does, \
signed as the stack's master role (OPENSEARCH_USER and OPENSEARCH_PASSWORD give basic auth instead). \
A re-run changes nothing and says so. --skip-opensearch deploys the stack alone.\n\n\
Examples:\n  trailwatch deploy --region us-east-1\n  trailwatch deploy --profile prod --prefix acme --alert-email sec@example.com --yes\n  \
trailwatch deploy --notify slack:https://hooks.slack.com/services/T0/B0/x --yes\n  \
trailwatch deploy --skip-opensearch --yes\n  \
trailwatch deploy --opensearch-url https://127.0.0.1:9200    (a tunnel to a VPC domain)\n  \
trailwatch deploy --endpoint-url http://127.0.0.1:5000 --no-opensearch    (an emulator)"
)]
pub struct DeployArgs {
    #[command(flatten)]
    pub options: DeployOptions,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Apply the change set without asking.
    #[arg(long)]
    pub yes: bool,
    /// The binary to package as the Lambdas' bootstrap [default: this trailwatch].
    #[arg(long, value_name = "FILE")]
    pub lambda_binary: Option<PathBuf>,
    /// Seconds between polls of the stack while waiting.
    #[arg(long, default_value_t = 5, hide = true)]
    pub poll_seconds: u64,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

/// What deploy applies to OpenSearch once the stack is up.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Deploy the stack alone and leave OpenSearch as it is (apply it later with `trailwatch opensearch apply`).
    #[arg(long, conflicts_with_all = ["opensearch_url", "notify", "dashboards_url", "detectors", "opensearch_ca_cert"])]
    pub skip_opensearch: bool,
    /// Apply the OpenSearch objects here instead of the stack's domain endpoint (a tunnel, a test node).
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub opensearch_url: Option<String>,
    /// Trust this CA's certificate (PEM) for the cluster's TLS, besides the system's.
    #[arg(long, value_name = "FILE")]
    pub opensearch_ca_cert: Option<PathBuf>,
    /// Basic auth user for the OpenSearch objects, instead of signing as the stack's master role; the password comes from OPENSEARCH_PASSWORD.
    #[arg(long, value_name = "USER", env = "OPENSEARCH_USER")]
    pub opensearch_user: Option<String>,
    /// OpenSearch Dashboards' URL, where the saved objects are imported [default: the domain's /_dashboards].
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub dashboards_url: Option<String>,
    /// Longest wait for the cluster and its plugins to answer, once the stack is up (the same --wait as `opensearch apply`; --opensearch-wait is its old name).
    #[arg(
        long = "wait",
        alias = "opensearch-wait",
        value_name = "SECONDS",
        default_value_t = 300
    )]
    pub opensearch_wait: u64,
    #[command(flatten)]
    pub content: super::opensearch::ContentArgs,
}

#[derive(Debug, Args)]
pub struct StackArgs {
    /// The stack's prefix (its name).
    #[arg(long, default_value = "trailwatch")]
    pub prefix: String,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  trailwatch outputs\n  trailwatch outputs --prefix acme --region eu-west-1 --json"
)]
pub struct OutputsArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Print the outputs as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Without --delete-data, the trail bucket, the log groups, the OpenSearch domain and the KMS key that encrypts them stay (CloudFormation retains them); destroy prints their names.\n\n\
Examples:\n  trailwatch destroy\n  trailwatch destroy --prefix acme --yes --delete-data"
)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Delete without asking.
    #[arg(long)]
    pub yes: bool,
    /// Delete the retained data too: trail logs, log groups, the domain and its key.
    #[arg(long)]
    pub delete_data: bool,
    /// Seconds between polls of the stack while waiting.
    #[arg(long, default_value_t = 5, hide = true)]
    pub poll_seconds: u64,
}

/// Flags over the `--config` file, checked.
pub fn config(options: &DeployOptions) -> anyhow::Result<DeployConfig> {
    let merged = match &options.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --config {}", path.display()))?;
            let file = DeployOptions::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))?;
            options.clone().over(file)
        }
        None => options.clone(),
    };
    Ok(merged.validate()?)
}

pub fn plan(args: PlanArgs) -> anyhow::Result<i32> {
    if let Some(events) = args
        .events_per_day
        .filter(|&e| args.data_events_per_day > e)
    {
        bail!("--data-events-per-day {} is more than --events-per-day {events}: data events are part of the events; nothing was written", args.data_events_per_day);
    }
    let config = config(&args.options)?;
    let template = render(&config)?;
    let objects = args.objects.desired()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let path = args.out.join("stack.json");
    let text = serde_json::to_string_pretty(&template)? + "\n";
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let resources = template["Resources"].as_object().map_or(0, |r| r.len());
    let files = objects.files();
    for (name, body) in &files {
        let path = args.out.join("opensearch").join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(body)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "wrote {} OpenSearch objects under {}",
        files.len(),
        args.out.join("opensearch").display()
    );
    let detectors: Vec<_> = objects.detectors.iter().map(|(d, _)| d.clone()).collect();
    for warning in crate::opensearch::desired::detectors::imputation_warnings(&detectors) {
        eprintln!("warning: {warning}");
    }
    eprintln!(
        "wrote {} ({resources} resources): {}",
        path.display(),
        describe(&config)
    );
    if !args.no_package {
        let package = lambda_package(
            args.lambda_binary.as_deref(),
            args.objects.content.detectors.as_deref(),
        )?;
        let zip = args.out.join(&package.key);
        if let Some(dir) = zip.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&zip, &package.zip)
            .with_context(|| format!("cannot write {}", zip.display()))?;
        let bucket = args.code_bucket.as_deref().unwrap_or("");
        let parameters: Vec<serde_json::Value> = crate::deploy::parameters::wanted(
            &template,
            bucket,
            &package.key,
            &bootstrap_parameters(&args.objects.content),
        )
        .into_iter()
        .filter(|(name, _)| name != "LambdaCodeBucket" || !bucket.is_empty())
        .map(|(name, value)| serde_json::json!({"ParameterKey": name, "ParameterValue": value}))
        .collect();
        let params_path = args.out.join("parameters.json");
        std::fs::write(
            &params_path,
            serde_json::to_string_pretty(&parameters)? + "\n",
        )
        .with_context(|| format!("cannot write {}", params_path.display()))?;
        eprintln!(
            "wrote {} ({} MiB) and {}: upload the zip to {} under the key {}, then create the stack from stack.json with parameters.json{}",
            zip.display(),
            package.zip.len() / (1024 * 1024),
            params_path.display(),
            args.code_bucket.as_deref().unwrap_or("your code bucket"),
            package.key,
            if bucket.is_empty() { " and LambdaCodeBucket=<that bucket>" } else { "" }
        );
    }
    for preset in [Preset::Dev, Preset::Prod] {
        if let Some(cost) = config.monthly_cost(preset) {
            let parts: Vec<String> = cost
                .lines
                .iter()
                .map(|(what, month)| match month {
                    Some(m) => format!("{what} ${}", crate::cost::money(*m)),
                    None => format!("{what} (no price in the table)"),
                })
                .collect();
            eprintln!(
                "--preset {}{}: about ${}/month for the domain ({})",
                if preset == Preset::Dev { "dev" } else { "prod" },
                if preset == config.preset {
                    " (this plan)"
                } else {
                    ""
                },
                crate::cost::money(cost.total),
                parts.join(", ")
            );
        }
    }
    if let Some(events_per_day) = args.events_per_day {
        let volume = crate::deploy::estimate::Volume {
            events_per_day,
            data_events_per_day: args.data_events_per_day,
        };
        let estimates = crate::deploy::estimate::compare(&config, volume);
        let mut out = std::io::stdout().lock();
        match args.format {
            EstimateFormat::Json => {
                let p = crate::cost::prices();
                let json = serde_json::json!({
                    "events_per_day": volume.events_per_day,
                    "data_events_per_day": volume.data_events_per_day,
                    "prices": {"date": p.date, "region": p.region, "currency": p.currency},
                    "estimates": estimates,
                    "assumptions": crate::deploy::estimate::assumptions(p),
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
            }
            EstimateFormat::Text => write!(out, "{}", estimate_table(&estimates, volume))?,
        }
    }
    if config.existing_domain.is_none() && config.opensearch {
        let p = crate::cost::prices();
        eprintln!(
            "(OpenSearch Service {} on-demand list prices of {}; Lambda, logs, S3 and data transfer not included)",
            p.region, p.date
        );
    }
    Ok(EXIT_OK)
}

/// The estimates side by side, one row per component, then the totals
/// and the assumptions.
fn estimate_table(
    estimates: &[crate::deploy::estimate::Estimate],
    volume: crate::deploy::estimate::Volume,
) -> String {
    use crate::deploy::Ingest;
    let mut components: Vec<&str> = Vec::new();
    for e in estimates {
        for l in &e.lines {
            if !components.contains(&l.component) {
                components.push(l.component);
            }
        }
    }
    let cell = |e: &crate::deploy::estimate::Estimate, c: &str| match e
        .lines
        .iter()
        .find(|l| l.component == c)
    {
        None => "-".to_owned(),
        Some(l) => l.usd.map_or("not priced".into(), |u| {
            format!("${}", crate::cost::money(u))
        }),
    };
    let mut out = format!(
        "Monthly estimate at {} events a day ({} data events):\n{:<28}",
        crate::cost::thousands(volume.events_per_day),
        crate::cost::thousands(volume.data_events_per_day),
        "component"
    );
    for e in estimates {
        out += &format!(
            " {:>14}",
            match e.ingest {
                Ingest::Cwl => "--ingest cwl",
                Ingest::S3 => "--ingest s3",
            }
        );
    }
    out.push('\n');
    for c in &components {
        out += &format!("{c:<28}");
        for e in estimates {
            out += &format!(" {:>14}", cell(e, c));
        }
        out.push('\n');
    }
    out += &format!("{:<28}", "total");
    for e in estimates {
        out += &format!(" {:>14}", format!("${}", crate::cost::money(e.total)));
    }
    out.push('\n');
    if let [cwl, s3] = estimates {
        out += &format!(
            "--ingest s3 saves ${}/month and loses nothing over CloudWatch Logs' 256 KB event limit.\n",
            crate::cost::money(cwl.total - s3.total)
        );
    }
    if let Some(e) = estimates.last() {
        out += "What each line counts (--ingest s3):\n";
        for l in &e.lines {
            out += &format!("  {}: {}\n", l.component, l.basis);
        }
    }
    out += "Assumptions:\n";
    for a in crate::deploy::estimate::assumptions(crate::cost::prices()) {
        out += &format!("  {a}\n");
    }
    out
}

/// One line saying what the configuration deploys.
fn describe(config: &DeployConfig) -> String {
    format!(
        "prefix {}, {}, {}, {}{}{}",
        config.prefix,
        match (&config.trail_bucket, config.ingest) {
            (Some(b), _) => format!("records from the existing trail bucket {b}"),
            (None, crate::deploy::Ingest::Cwl) => "records through CloudWatch Logs".to_owned(),
            (None, crate::deploy::Ingest::S3) => "records from the trail bucket".to_owned(),
        },
        match &config.existing_domain {
            _ if !config.opensearch => "no OpenSearch (the engine pages alone)".to_owned(),
            Some(d) => format!("existing domain {}", d.endpoint),
            None => format!(
                "new domain {} × {} ({} GiB each)",
                config.instance_count, config.instance_type, config.ebs_size_gib
            ),
        },
        match (
            &config.trail_bucket,
            config.lambda_trail,
            config.s3_data_events
        ) {
            (Some(_), _, _) => "no trail of its own",
            (None, true, true) => "trail with Lambda and S3 data events",
            (None, true, false) => "trail with Lambda data events",
            (None, false, true) => "trail with S3 data events",
            (None, false, false) => "trail management events only",
        },
        if config.vpc.is_some() {
            ", in a VPC"
        } else {
            ""
        }
        .to_owned()
            + &match config.engine_shards {
                1 => String::new(),
                n => format!(", the engine in {n} shards by account"),
            },
        config
            .alert_email
            .as_ref()
            .map(|e| format!(", alerts to {e}"))
            .unwrap_or_default()
    )
}

/// Asks for `name` to be typed, as a deletion of data that cannot come
/// back asks; anything else is no.
fn type_name(name: &str) -> std::io::Result<bool> {
    eprint!("This deletes the stack's data for good. Type the stack's name ({name}) to go on: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == name)
}

/// Asks on standard error, reads standard input; anything but y/yes is no.
pub(crate) fn confirm(question: &str) -> std::io::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// The SDK configuration with its region, and credentials that resolve:
/// checked before any AWS call.
pub(crate) async fn prepare(
    aws: &AwsArgs,
) -> anyhow::Result<(AwsTarget, aws_config::SdkConfig, String)> {
    let target = aws.target();
    let sdk = target.load().await;
    let region = crate::aws::ready(&sdk).await?;
    Ok((target, sdk, region))
}

/// The account the credentials act in (STS GetCallerIdentity).
async fn account(sdk: &aws_config::SdkConfig) -> anyhow::Result<String> {
    let identity = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(crate::aws::error_message(&e)))
        .context("cannot reach AWS with these credentials (STS GetCallerIdentity); check --profile, --region and --endpoint-url")?;
    Ok(identity.account().unwrap_or_default().to_owned())
}

/// Follows the stack to the end with a spinner, printing each event.
async fn follow(
    stacks: &Stacks,
    seen: &mut HashSet<String>,
    doing: &str,
) -> anyhow::Result<(String, Vec<crate::deploy::changes::StackEvent>)> {
    let bar = progress_bar(0, "{spinner} {elapsed_precise} {msg}");
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message(format!("{doing} stack {}", stacks.name));
    let result = stacks
        .wait(seen, |event, status| {
            bar.suspend(|| eprintln!("{}", event.line()));
            bar.set_message(format!("{doing} stack {}: {status}", stacks.name));
        })
        .await;
    bar.finish_and_clear();
    Ok(result?)
}

fn print_outputs(stack: &StackInfo) {
    let width = stack.outputs.iter().map(|o| o.0.len()).max().unwrap_or(0);
    for (key, value, _) in &stack.outputs {
        println!("{key:<width$}  {value}");
    }
}

/// The Lambdas' package: `lambda_binary` (else this trailwatch) as
/// `bootstrap`, with the detector files of `detectors`, which the
/// bootstrap Lambda applies.
fn lambda_package(
    lambda_binary: Option<&std::path::Path>,
    detectors: Option<&std::path::Path>,
) -> anyhow::Result<package::Package> {
    let binary_path = match lambda_binary {
        Some(path) => path.to_owned(),
        None => std::env::current_exe()
            .context("cannot find this trailwatch binary to package; pass --lambda-binary")?,
    };
    let binary = std::fs::read(&binary_path)
        .with_context(|| format!("cannot read --lambda-binary {}", binary_path.display()))?;
    let files = match detectors {
        Some(dir) => package::detector_files(dir)
            .with_context(|| format!("cannot read --detectors {}", dir.display()))?,
        None => Vec::new(),
    };
    package::package_with(&binary, &files)
        .with_context(|| format!("{} cannot be the Lambda bootstrap", binary_path.display()))
}

/// What the in-stack bootstrap is given besides the stack's own channel.
fn bootstrap_parameters(content: &super::opensearch::ContentArgs) -> BootstrapParameters {
    BootstrapParameters {
        notify: (content.notify.iter())
            .filter_map(|c| c.notify_text())
            .collect(),
        retention_days: content.index_retention_days,
    }
}

pub fn deploy(args: DeployArgs) -> anyhow::Result<i32> {
    // Everything that can be refused offline is, before any AWS call.
    let config = config(&args.options)?;
    let runtime = super::runtime()?;
    let (target, sdk, region) = runtime.block_on(prepare(&args.aws))?;
    let package = lambda_package(
        args.lambda_binary.as_deref(),
        args.bootstrap.content.detectors.as_deref(),
    )?;
    let template = render(&config)?.to_string();
    let opensearch = if args.bootstrap.skip_opensearch || !config.opensearch {
        None
    } else {
        Some(bootstrap_plan(&args.bootstrap)?)
    };
    eprintln!("deploying {}", describe(&config));
    let no_domain = !config.opensearch;
    runtime.block_on(async {
        let account = account(&sdk).await?;
        let (code, stack) = deploy_async(
            &args,
            (target, &sdk, region, account),
            config,
            package,
            template,
        )
        .await?;
        match (stack, opensearch) {
            (Some(stack), Some(plan)) => {
                bootstrap(&args, &sdk, &StackOutputs::of(&stack), plan).await?;
                Ok(code)
            }
            (Some(_), None) if !no_domain => {
                eprintln!("OpenSearch left as it is (--skip-opensearch); apply it later with trailwatch opensearch apply");
                Ok(code)
            }
            _ => Ok(code),
        }
    })
}

/// What the bootstrap after the stack will use, checked before any AWS
/// call: the detector files render, basic-auth credentials are whole, and
/// an `--opensearch-url` answers.
struct BootstrapPlan {
    basic: Option<Auth>,
}

fn bootstrap_plan(args: &BootstrapArgs) -> anyhow::Result<BootstrapPlan> {
    // Which roles the objects name comes from the stack; whether the
    // detector files render does not.
    args.content
        .desired(&args.content.settings(Default::default(), None))?;
    let basic = match &args.opensearch_user {
        Some(user) => Some(super::opensearch::basic_auth(
            user.clone(),
            "to sign as the stack's master role",
        )?),
        None => None,
    };
    if let Some(url) = &args.opensearch_url {
        reachable(url, Duration::from_secs(10)).map_err(|e| {
            anyhow::anyhow!("--opensearch-url {url} does not answer ({e}); nothing was deployed. Start the tunnel or node first, or drop --opensearch-url to use the stack's domain")
        })?;
    }
    if let Some(ca) = &args.opensearch_ca_cert {
        std::fs::metadata(ca)
            .with_context(|| format!("cannot read --opensearch-ca-cert {}", ca.display()))?;
    }
    Ok(BootstrapPlan { basic })
}

/// Applies the OpenSearch objects for the stack just deployed: to
/// `--opensearch-url` or the stack's endpoint, with basic auth when
/// OPENSEARCH_USER is set, else signed as the stack's master role (an
/// existing domain: as the deploying credentials).
async fn bootstrap(
    args: &DeployArgs,
    sdk: &aws_config::SdkConfig,
    outputs: &StackOutputs,
    plan: BootstrapPlan,
) -> anyhow::Result<()> {
    let b = &args.bootstrap;
    let url = b
        .opensearch_url
        .clone()
        .or_else(|| outputs.domain_endpoint.clone())
        .context("the stack has no DomainEndpoint output to apply the OpenSearch objects to; pass --opensearch-url")?;
    let settings = b
        .content
        .settings(outputs.access(), outputs.alert_channel());
    let desired = b.content.desired(&settings)?;
    let auth = match plan.basic {
        Some(auth) => auth,
        None => match &outputs.master_role_arn {
            Some(role) => {
                eprintln!("signing OpenSearch requests as {role}");
                Auth::sigv4(&crate::aws::assume_role(sdk, role, "trailwatch-deploy").await)?
            }
            None => Auth::sigv4(sdk)?,
        },
    };
    let target = Target {
        url: url.clone(),
        auth,
        ca_cert: b.opensearch_ca_cert.clone(),
        timeout: Duration::from_secs(60),
    };
    eprintln!("applying the OpenSearch objects to {url}");
    let cluster = super::opensearch::connect(&target, b.dashboards_url.clone())?;
    let yes = args.yes;
    super::opensearch::bootstrap(
        &cluster,
        &desired,
        Action::Apply,
        super::opensearch::Run {
            dry_run: false,
            yes,
            wait: Duration::from_secs(b.opensearch_wait),
        },
        &mut |question| Ok(confirm(&format!("{question}; apply them?"))?),
    )
    .await
    .context("the stack is deployed, but its OpenSearch objects are not all applied; run deploy again (or trailwatch opensearch apply) once the cause is fixed")?;
    Ok(())
}

/// The stack's deploy: the exit code, and the stack when it is up.
async fn deploy_async(
    args: &DeployArgs,
    (target, sdk, region, account): (AwsTarget, &aws_config::SdkConfig, String, String),
    config: DeployConfig,
    package: package::Package,
    template: String,
) -> anyhow::Result<(i32, Option<StackInfo>)> {
    let tls_only = !args
        .aws
        .endpoint_url
        .as_deref()
        .is_some_and(|u| u.starts_with("http://"));
    let deployment = Deployment {
        sdk,
        s3: target.s3(sdk),
        prefix: &config.prefix,
        account: &account,
        region: &region,
        package,
        template,
        bootstrap: bootstrap_parameters(&args.bootstrap.content),
        tls_only,
        poll: Duration::from_secs(args.poll_seconds),
        trail_bucket: config.trail_bucket.clone(),
    };
    let bar = progress_bar(0, "{spinner} {elapsed_precise} {msg}");
    let stack_name = config.prefix.clone();
    let mut on = |p: Progress| match p {
        Progress::BucketMade { bucket, tls_only } => eprintln!(
            "made the artifact bucket {bucket}{}",
            if tls_only {
                ""
            } else {
                " (no TLS-only policy: the endpoint is plain HTTP)"
            }
        ),
        Progress::Uploaded { bucket, key, bytes } => eprintln!(
            "uploaded the Lambda package s3://{bucket}/{key} ({:.1} MB)",
            bytes as f64 / 1e6
        ),
        Progress::AlreadyUploaded { bucket, key } => {
            eprintln!("the Lambda package s3://{bucket}/{key} is there already")
        }
        Progress::DeletingLeftover { stack, status } => {
            eprintln!("stack {stack} is {status} from an earlier attempt: deleting it first")
        }
        Progress::Waiting { doing } => {
            bar.enable_steady_tick(Duration::from_millis(200));
            bar.set_message(format!("{doing} stack {stack_name}"));
        }
        Progress::Event {
            event,
            status,
            doing,
        } => {
            bar.suspend(|| eprintln!("{}", event.line()));
            bar.set_message(format!("{doing} stack {stack_name}: {status}"));
        }
        Progress::Settled => bar.finish_and_clear(),
        Progress::Notifies { bucket, added } => eprintln!(
            "the trail bucket {bucket} {} the engine queue of new deliveries",
            if added { "now notifies" } else { "notifies" }
        ),
    };
    let yes = args.yes;
    let mut approve = |changes: &str| -> std::io::Result<bool> {
        eprint!("{changes}");
        if yes {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            eprintln!("(reading the answer from standard input; pass --yes to skip the question)");
        }
        confirm("Apply these changes?")
    };
    match workflow::deploy(deployment, &mut on, &mut approve).await? {
        Report::UpToDate(stack) => {
            eprintln!(
                "no changes: stack {} is up to date ({})",
                stack.name, stack.status
            );
            print_outputs(&stack);
            Ok((EXIT_OK, Some(stack)))
        }
        Report::Declined { removed } => {
            if removed.is_empty() {
                eprintln!("declined: nothing was changed");
            } else {
                eprintln!(
                    "declined: nothing was changed; what was made for the review was removed: {}",
                    removed.join(", ")
                );
            }
            Ok((EXIT_OK, None))
        }
        Report::NotExecuted(err) => {
            eprintln!("deploy failed: {err}");
            eprintln!("fix the cause and run deploy again");
            Ok((EXIT_ERROR, None))
        }
        Report::Failed {
            stack,
            status,
            first_failure,
            reason,
        } => {
            eprintln!("deploy failed: stack {stack} is {status}");
            match first_failure {
                Some(line) => eprintln!("failed first: {line}"),
                None => eprintln!(
                    "CloudFormation gave no failing resource{}",
                    reason
                        .map(|r| format!("; the stack says: {r}"))
                        .unwrap_or_default()
                ),
            }
            eprintln!("the stack was rolled back; fix the cause and run deploy again");
            Ok((EXIT_ERROR, None))
        }
        Report::Deployed { stack, .. } => {
            eprintln!("stack {} is {}", stack.name, stack.status);
            print_outputs(&stack);
            Ok((EXIT_OK, Some(stack)))
        }
    }
}

pub fn outputs(args: OutputsArgs) -> anyhow::Result<i32> {
    super::runtime()?.block_on(async {
        let (_, sdk, _) = prepare(&args.stack.aws).await?;
        let stacks = Stacks::new(&sdk, &args.stack.prefix);
        let stack = stacks.describe().await?.with_context(|| {
            format!(
                "no stack named {} here; run trailwatch deploy first (or pass --prefix, --region)",
                args.stack.prefix
            )
        })?;
        if args.json {
            let map: serde_json::Map<String, serde_json::Value> = stack
                .outputs
                .iter()
                .map(|(k, v, _)| (k.clone(), serde_json::Value::from(v.as_str())))
                .collect();
            println!("{}", serde_json::to_string_pretty(&map)?);
        } else {
            print_outputs(&stack);
        }
        Ok(EXIT_OK)
    })
}

pub fn destroy(args: DestroyArgs) -> anyhow::Result<i32> {
    super::runtime()?.block_on(async {
        let (target, sdk, region) = prepare(&args.stack.aws).await?;
        let mut stacks = Stacks::new(&sdk, &args.stack.prefix);
        stacks.poll = Duration::from_secs(args.poll_seconds);
        let Some(stack) = stacks.describe().await? else {
            eprintln!("no stack named {}: nothing to destroy", args.stack.prefix);
            return Ok(EXIT_OK);
        };
        let kept = kept_resources(&stacks).await?;
        let made = stacks.resources().await?.len();
        eprintln!(
            "destroying stack {} ({} status, {made} resource(s))",
            stack.name, stack.status
        );
        if kept.is_empty() {
            eprintln!("  it holds no data to keep");
        } else {
            eprintln!(
                "  its data {}:",
                if args.delete_data {
                    "goes too, once the stack is gone"
                } else {
                    "stays (--delete-data deletes it)"
                }
            );
            for k in &kept {
                eprintln!("    {} {} ({})", k.resource_type, k.logical_id, k.physical_id);
            }
        }
        // The bucket deploy uploads the Lambda packages to is not the
        // stack's: said, and kept.
        let code = crate::deploy::artifacts::bucket_name(&stack.name, &account(&sdk).await?, &region);
        if target.s3(&sdk).head_bucket().bucket(&code).send().await.is_ok() {
            eprintln!("  not the stack's, and kept: the code bucket {code} (the Lambda packages deploy uploaded; remove it with `aws s3 rb s3://{code} --force`)");
        }
        let agreed = match (args.yes, args.delete_data) {
            (true, _) => true,
            // Data cannot come back: the stack's name, typed.
            (false, true) => type_name(&stack.name).context(
                "cannot read the answer from standard input; pass --yes with --delete-data to skip the question",
            )?,
            (false, false) => confirm(&format!("Delete stack {}?", stack.name)).context(
                "cannot read the answer from standard input; pass --yes to skip the question",
            )?,
        };
        if !agreed {
            eprintln!("declined: nothing was deleted");
            return Ok(EXIT_OK);
        }
        // An existing trail bucket (--trail-bucket) stays; its notification
        // to the engine queue goes with the stack. The template names it.
        let borrowed = match stacks.template().await?["Outputs"]["TrailBucketName"]["Value"]
            .as_str()
        {
            Some(bucket) => {
                let queue = match stack.outputs.iter().find(|(k, _, _)| k == "EngineQueueArn") {
                    Some((_, arn, _)) => arn.clone(),
                    None => engine_queue_arn(&account(&sdk).await?, &region, &stack.name),
                };
                Some((bucket.to_owned(), queue))
            }
            None => None,
        };
        let mut seen: HashSet<String> = stacks.events().await?.into_iter().map(|e| e.id).collect();
        stacks.delete().await?;
        let (status, events) = follow(&stacks, &mut seen, "deleting").await?;
        if status != "DELETE_COMPLETE" {
            let cause = first_failure(&events).map(|e| e.line()).unwrap_or_default();
            bail!("stack {} is {status}: {cause}", stacks.name);
        }
        eprintln!("stack {} deleted", stacks.name);
        if let Some((bucket, queue)) = borrowed {
            let s3 = target.s3(&sdk);
            if notification::remove(&s3, &bucket, &queue).await? {
                eprintln!("the trail bucket {bucket} no longer notifies the deleted engine queue");
            }
        }
        if !args.delete_data {
            if !kept.is_empty() {
                eprintln!("kept (delete them yourself, or run destroy --delete-data while the stack exists):");
                for k in &kept {
                    eprintln!("  {} {}: {}", k.resource_type, k.logical_id, k.physical_id);
                }
            }
            return Ok(EXIT_OK);
        }
        let mut failed = 0;
        for (k, result) in retained::delete_all(&target, &sdk, kept).await {
            let what = format!("{} {} ({})", k.resource_type, k.logical_id, k.physical_id);
            match result {
                Deleted::Done(how) => eprintln!("{what}: {how}"),
                Deleted::Gone => eprintln!("{what}: not there"),
                Deleted::Unknown => {
                    failed += 1;
                    eprintln!("{what}: trailwatch cannot delete this type; delete it yourself");
                }
                Deleted::Failed(why) => {
                    failed += 1;
                    eprintln!("{what}: cannot delete: {why}");
                }
            }
        }
        if failed > 0 {
            bail!("{failed} retained resources are left; see above");
        }
        Ok(EXIT_OK)
    })
}

/// The stack's retained resources and their names in AWS (from the stack,
/// or the name the template gives them).
async fn kept_resources(stacks: &Stacks) -> anyhow::Result<Vec<retained::Kept>> {
    let template = stacks.template().await?;
    let resources = stacks.resources().await?;
    Ok(retained(&template)
        .into_iter()
        .filter_map(|r| {
            let physical = resources
                .iter()
                .find(|(logical, physical, _)| *logical == r.logical_id && !physical.is_empty())
                .map(|x| x.1.clone())
                .or(r.declared_name)?;
            Some(retained::Kept {
                logical_id: r.logical_id,
                resource_type: r.resource_type,
                physical_id: physical,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_must_be_http_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:5000/").unwrap(),
            "http://127.0.0.1:5000"
        );
        assert!(parse_url("127.0.0.1:5000")
            .unwrap_err()
            .contains("not a URL"));
        assert!(parse_url("https://").is_err());
    }
}
