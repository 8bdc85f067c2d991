//! `trailwatch lambda forward|enrich|engine`: the Lambda handlers run once, locally,
//! on an event read from standard input, for debugging and tests.

use super::opensearch::ConnectArgs;
use super::{EXIT_ERROR, EXIT_OK};
use crate::engine::Severity;
use crate::lambda::dead_letter::DeadLetters;
use crate::lambda::delivery::{batch_of_event, deliver, Limits, Paging};
use crate::lambda::rule_pages::Pager;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum LambdaCommand {
    /// Index a CloudWatch Logs subscription event (read from stdin) into OpenSearch, as the forwarder Lambda does.
    Forward(ForwardArgs),
    /// Enrich an alert (read from stdin: the monitor's message or an SNS event) and print or publish the notification, as the enricher Lambda does.
    Enrich(EnrichArgs),
    /// Run one engine invocation on an S3 notification or an SQS batch of them (read from stdin), as the engine Lambda does: the deliveries read, the engine advanced, its state saved.
    Engine(EngineArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Prints the findings as NDJSON (detect --format ndjson's format) and one JSON summary line on standard error: deliveries read, skipped as already seen, ignored, findings, state bytes, milliseconds. The state is saved only over the version read: a second writer is never overwritten (exit 1, nothing saved). A damaged delivery is reported and skipped.\n\nExample, with moto_server on port 5000:\n  trailwatch lambda engine --state s3://trail/trailwatch/state.json \\\n    --endpoint-url http://127.0.0.1:5000 < notification.json"
)]
pub struct EngineArgs {
    /// Where the engine's state lives: a file, or s3://bucket/key.
    #[arg(long, value_name = "FILE|S3-URL")]
    pub state: String,
    #[command(flatten)]
    pub aws: super::deploy::AwsArgs,
    /// Folder of detector files that replaces the built-in set.
    #[arg(long, value_name = "DIR")]
    pub detectors: Option<PathBuf>,
    /// Folder of Sigma rules to run beside the rule files; repeatable.
    #[arg(long, value_name = "DIR")]
    pub sigma: Vec<PathBuf>,
    /// Incidents at or above this severity page.
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = crate::engine::severity::DEFAULT_PAGE)]
    pub page_severity: Severity,
    /// The organisation's other accounts (comma-separated ids).
    #[arg(long, value_name = "IDS", value_delimiter = ',', env = "ORG_ACCOUNTS")]
    pub org_accounts: Vec<String>,
    /// Principals whose findings do not page (comma-separated; an ARN, the short form detect prints, or either with `*`), as `MUTE` in the deployed Lambda; critical rule findings still page.
    #[arg(long, value_name = "PRINCIPALS", value_delimiter = ',', env = "MUTE")]
    pub mute: Vec<String>,
    /// Read only the deliveries of the accounts of shard K of N (an engine shard, as deploy --engine-shards runs them); the others are counted as other_shards.
    #[arg(long, value_name = "K/N", value_parser = crate::lambda::shard::Shard::parse)]
    pub shard: Option<crate::lambda::shard::Shard>,
    /// Also index the deliveries' records into this OpenSearch, as the deployed engine does with --ingest s3.
    #[arg(long, value_name = "URL")]
    pub opensearch_url: Option<String>,
    /// Trust this CA's certificate (PEM) for --opensearch-url.
    #[arg(long, value_name = "FILE", requires = "opensearch_url")]
    pub opensearch_ca_cert: Option<PathBuf>,
    /// Basic auth user for --opensearch-url; the password comes from OPENSEARCH_PASSWORD.
    #[arg(long, value_name = "USER", requires = "opensearch_url")]
    pub opensearch_user: Option<String>,
    /// Sign --opensearch-url requests with SigV4 [default: when the host is an AWS one and no user is given].
    #[arg(long, requires = "opensearch_url")]
    pub sign: bool,
    /// Append records that can never be indexed to this NDJSON file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "trailwatch-dead-letters.ndjson",
        requires = "opensearch_url"
    )]
    pub dead_letter: PathBuf,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Prints the invocation's counts as one JSON line, as the Lambda logs them. \
Exit status 2 when records are still failing at the end (the Lambda would fail and be retried).\n\n\
Example, with the sample event in the repository (three records):\n  \
export OPENSEARCH_ENDPOINT=http://127.0.0.1:9200    (as --opensearch-url)\n  \
trailwatch lambda forward < tests/data/lambda/forward-event.json"
)]
pub struct ForwardArgs {
    #[command(flatten)]
    pub opensearch: ConnectArgs,
    /// Forward the CloudTrail deliveries under these files or folders, in
    /// batches as CloudWatch Logs would deliver them, instead of one event
    /// read from stdin (to fill a local cluster: docs/opensearch.md's Compose path).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub from: Vec<PathBuf>,
    /// Append records that can never be indexed to this NDJSON file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "trailwatch-dead-letters.ndjson"
    )]
    pub dead_letter: PathBuf,
    /// Append the forwarder's pages on rule findings (StopLogging, a public bucket, …) to this NDJSON file, one page per incident.
    #[arg(long, value_name = "FILE", default_value = "trailwatch-pages.ndjson")]
    pub pages: PathBuf,
    /// Page on rule findings at or above this severity.
    #[arg(long, value_enum, value_name = "SEVERITY", default_value = "medium")]
    pub page_severity: Severity,
    /// Keep the paged rule findings in this index, as the deployed forwarder
    /// does, so the enricher judges later alerts with their incident.
    #[arg(long, value_name = "INDEX", default_value = crate::lambda::incidents::FINDINGS_INDEX)]
    pub findings_index: String,
    /// Keep no findings.
    #[arg(long)]
    pub keep_no_findings: bool,
    /// The organisation's other accounts (comma-separated ids): a snapshot
    /// or image shared with one of them is not shared outside.
    #[arg(long, value_name = "IDS", value_delimiter = ',', env = "ORG_ACCOUNTS")]
    pub org_accounts: Vec<String>,
    /// Principals whose findings do not page (comma-separated; an ARN, the short form detect prints, or either with `*`), as `MUTE` in the deployed Lambda; critical rule findings still page.
    #[arg(long, value_name = "PRINCIPALS", value_delimiter = ',', env = "MUTE")]
    pub mute: Vec<String>,
    /// Folder of Sigma rules to page on besides the rule files, as the
    /// deployed forwarder does with its package's detectors/sigma/; repeatable.
    #[arg(long, value_name = "DIR")]
    pub sigma: Vec<PathBuf>,
    /// Time allowed, as a Lambda's timeout.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
    /// Longest wait for one `_bulk` answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub request_timeout: u64,
    /// Largest `_bulk` body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 5 * 1024 * 1024)]
    pub max_request_bytes: usize,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Without --topic-arn, prints the subject and body. An alert that cannot be enriched \
still goes out, marked as not enriched, and the reason is printed on standard error.\n\n\
Example, with the sample alert in the repository (after forwarding the sample event):\n  \
export OPENSEARCH_ENDPOINT=http://127.0.0.1:9200    (as --opensearch-url)\n  \
trailwatch lambda enrich < tests/data/lambda/enrich-alert.json"
)]
pub struct EnrichArgs {
    #[command(flatten)]
    pub opensearch: ConnectArgs,
    /// Publish the notification to this SNS topic.
    #[arg(long, value_name = "ARN")]
    pub topic_arn: Option<String>,
    /// OpenSearch Dashboards' URL, for the link in the notification [default: <opensearch-url>/_dashboards].
    #[arg(long, value_name = "URL")]
    pub dashboards_url: Option<String>,
    /// How far before the window the baseline reaches.
    #[arg(long, value_name = "HOURS", default_value_t = 24)]
    pub baseline_hours: i64,
    /// Publish (or print) only anomalies of this severity or higher, as the deployed enricher does with deploy's --page-severity; a test alert and one that cannot be enriched always go out.
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = crate::engine::severity::DEFAULT_PAGE)]
    pub page_severity: crate::engine::Severity,
    /// Keep each finding in this index and judge it with its incident (the
    /// findings kept about the same principal or resource within half an
    /// hour), as the deployed enricher does: an incident pages once.
    #[arg(long, value_name = "INDEX", default_value = crate::lambda::incidents::FINDINGS_INDEX)]
    pub findings_index: String,
    /// Judge each alert alone: keep and read no findings.
    #[arg(long)]
    pub alone: bool,
    /// Who pages, as deploy --pager sets it: with engine, an alert is kept and judged but not paged (a test still is).
    #[arg(long, value_enum, value_name = "WHO", default_value = "both")]
    pub pager: crate::deploy::WhoPages,
}

pub fn run(command: LambdaCommand) -> anyhow::Result<i32> {
    match command {
        LambdaCommand::Forward(args) => forward(args),
        LambdaCommand::Enrich(args) => enrich(args),
        LambdaCommand::Engine(args) => engine(args),
    }
}

fn engine(args: EngineArgs) -> anyhow::Result<i32> {
    use crate::engine::pipeline::Pipeline;
    use crate::lambda::engine::{commit, invoke, StateStore};
    let set = super::detectors::load(args.detectors.as_deref(), &args.sigma)?;
    let event = read_event()?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let target = args.aws.target();
        let sdk = target.load().await;
        let s3 = target.s3(&sdk);
        let store = StateStore::parse(&args.state, || s3.clone());
        let options = crate::engine::EngineOptions {
            rules: set.rules.clone(),
            org_accounts: args.org_accounts.clone(),
            ..crate::engine::EngineOptions::all()
        };
        let mute = crate::engine::mute::Mute::new(&args.mute)?;
        let fresh = || {
            let mut pipeline = Pipeline::new(&set.detectors, options, args.page_severity);
            pipeline.mute = mute;
            pipeline
        };
        let problem = |e: &crate::cloudtrail::ReadError| eprintln!("warning: {e}");
        let invocation = invoke(None, fresh, &s3, (&store, args.shard), &event, &problem).await?;
        let indexed = match &args.opensearch_url {
            Some(url) => {
                let timeout = Duration::from_secs(30);
                let target = super::opensearch::target(
                    url,
                    args.opensearch_ca_cert.clone(),
                    args.opensearch_user.clone(),
                    args.sign,
                    &args.aws,
                    timeout,
                )
                .await?;
                let os = crate::opensearch::OpenSearch::connect(&target)?;
                let dead = crate::lambda::dead_letter::DeadLetters::File(args.dead_letter.clone());
                let limits = crate::lambda::delivery::Limits::until(
                    std::time::Instant::now() + Duration::from_secs(300),
                );
                let done = crate::lambda::engine::index(&os, &dead, &invocation.inputs, &limits)
                    .await
                    .with_context(|| {
                        format!("cannot index the deliveries into {url}; the state was not saved")
                    })?;
                Some(done)
            }
            None => None,
        };
        let (step, summary, _) = commit(&store, invocation).await?;
        let mut out = std::io::stdout().lock();
        crate::engine::sink::write(
            crate::engine::sink::Format::Ndjson,
            &step.findings.anomalies,
            &step.incidents,
            &Default::default(),
            &mut out,
        )
        .context("cannot write the findings")?;
        let mut line = serde_json::to_value(&summary)?;
        if let Some(indexed) = indexed {
            line["indexed"] = serde_json::json!(indexed);
        }
        eprintln!("{line}");
        Ok(EXIT_OK)
    })
}

fn enrich(args: EnrichArgs) -> anyhow::Result<i32> {
    use crate::lambda::alert::messages_of_event;
    use crate::lambda::enricher::{Enricher, Form, Publisher};
    let event = read_event()?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let os = args.opensearch.client(Duration::from_secs(20)).await?;
        let publisher = match &args.topic_arn {
            Some(topic) => {
                let sdk = args.opensearch.aws.target().load().await;
                Some(Publisher {
                    client: aws_sdk_sns::Client::new(&sdk),
                    topic_arn: topic.clone(),
                    form: Form::Notification,
                })
            }
            None => None,
        };
        let enricher = Enricher {
            dashboards: Some(
                args.dashboards_url
                    .clone()
                    .unwrap_or_else(|| format!("{}/_dashboards", os.base())),
            ),
            os: Some(os),
            detectors: crate::detector::shipped(),
            publisher,
            baseline: chrono::Duration::hours(args.baseline_hours.max(1)),
            top: 5,
            page_at: args.page_severity,
            findings_index: (!args.alone).then(|| args.findings_index.clone()),
            pages_alerts: args.pager != crate::deploy::WhoPages::Engine,
        };
        for message in messages_of_event(&event) {
            let handled = enricher.handle(&message).await;
            let notification = handled.notification;
            if let Some(why) = handled.not_enriched_because {
                eprintln!("not enriched: {why}");
            }
            if let Some(why) = handled.findings_error {
                eprintln!("{why} (an alert whose incident cannot be searched is judged alone)");
            }
            if !notification.pages(enricher.page_at) {
                let why = if notification.repeat {
                    "its incident already paged at this severity".to_owned()
                } else {
                    format!(
                        "it is {}, below --page-severity {}",
                        notification.severity.map_or("unknown", |s| s.name()),
                        enricher.page_at.name()
                    )
                };
                eprintln!(
                    "not paged: {:?}: {why}; the anomaly stays in the dashboards",
                    notification.subject
                );
                continue;
            }
            match enricher.publish(&notification).await? {
                Some(id) => eprintln!("published {:?} as message {id}", notification.subject),
                None => println!("Subject: {}\n\n{}", notification.subject, notification.body),
            }
        }
        Ok(EXIT_OK)
    })
}

fn read_event() -> anyhow::Result<serde_json::Value> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the event from standard input")?;
    serde_json::from_str(&text).context("standard input is not a JSON event")
}

fn forward(args: ForwardArgs) -> anyhow::Result<i32> {
    if !args.from.is_empty() {
        return forward_files(&args);
    }
    let event = read_event()?;
    let batch = batch_of_event(&event)?;
    forward_batch(&args, &batch)
}

/// `forward --from`: every delivery's records, batch after batch, with a
/// progress line each on standard error and one report at the end.
fn forward_files(args: &ForwardArgs) -> anyhow::Result<i32> {
    use crate::cloudtrail::{discover, read::delivery_records, Input};
    let inputs = discover(&args.from)?;
    let mut records = Vec::new();
    let mut skipped = 0;
    for input in &inputs {
        if let Input::File { path, .. } = input {
            match delivery_records(path) {
                Ok(r) => records.extend(r),
                Err(why) => {
                    eprintln!("warning: {why}");
                    skipped += 1;
                }
            }
        }
    }
    if records.is_empty() {
        anyhow::bail!(
            "no CloudTrail records under {} ({} files, {skipped} not deliveries)",
            args.from
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            inputs.len()
        );
    }
    let batches = crate::lambda::forwarder::batches_of_records(records);
    let total = batches.len();
    for (n, batch) in batches.iter().enumerate() {
        eprintln!(
            "batch {} of {total} ({} records)",
            n + 1,
            batch.log_events.len()
        );
        let code = forward_batch(args, batch)?;
        if code != EXIT_OK {
            return Ok(code);
        }
    }
    Ok(EXIT_OK)
}

fn forward_batch(
    args: &ForwardArgs,
    batch: &crate::lambda::forwarder::LogBatch,
) -> anyhow::Result<i32> {
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let timeout = Duration::from_secs(args.timeout);
        let os = args.opensearch.client(timeout).await?;
        let dead = DeadLetters::File(args.dead_letter.clone());
        let rules = super::detectors::load(None, &args.sigma)?.rules;
        let paging = Paging {
            rules,
            page_at: args.page_severity,
            pager: Pager::File(args.pages.clone()),
            findings_index: (!args.keep_no_findings).then(|| args.findings_index.clone()),
            org_accounts: args.org_accounts.clone(),
            mute: crate::engine::mute::Mute::new(&args.mute)?,
        };
        let mut limits = Limits::until(Instant::now() + timeout);
        limits.max_request_bytes = args.max_request_bytes;
        limits.margin = Duration::from_millis(200);
        limits.request_timeout = Duration::from_secs(args.request_timeout.max(1));
        match deliver(&os, batch, &dead, Some(&paging), &limits).await {
            Ok(report) => {
                println!("{}", serde_json::to_string(&report)?);
                if report.paged > 0 {
                    eprintln!(
                        "{} page(s) sent, one per incident of rule findings: see {}",
                        report.paged,
                        args.pages.display()
                    );
                }
                if report.dead_lettered > 0 {
                    eprintln!(
                        "{} records can never be indexed: see {}",
                        report.dead_lettered,
                        args.dead_letter.display()
                    );
                }
                Ok(EXIT_OK)
            }
            Err(err) => {
                if let Some(report) = err.report() {
                    println!("{}", serde_json::to_string(report)?);
                }
                eprintln!("trailwatch: {err}");
                Ok(EXIT_ERROR)
            }
        }
    })
}
