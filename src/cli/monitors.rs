//! `trailwatch monitors list|test`: each monitor's detector, state, last
//! trigger and channels; and a test alert sent through a monitor's own
//! actions.

use super::opensearch::InspectArgs;
use super::{EXIT_ERROR, EXIT_OK};
use crate::opensearch::inspect::{monitor_info, test_monitor, when};
use clap::{Args, Subcommand};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum MonitorsCommand {
    /// Each monitor: its detector, whether it is enabled, when it last triggered, and where it sends.
    #[command(
        after_help = "Examples:\n  trailwatch monitors list --opensearch-url https://search-x.us-east-1.es.amazonaws.com\n  \
export OPENSEARCH_USER=admin OPENSEARCH_PASSWORD=… OPENSEARCH_CA_CERT=root-ca.pem\n  \
trailwatch monitors list --opensearch-url https://127.0.0.1:9200"
    )]
    List(InspectArgs),
    /// Send a test alert through a monitor's real actions, as Dashboards' "Send test message" does.
    #[command(
        after_help = "It executes a copy of the monitor whose condition is always true (not a dry run), \
so each of the monitor's actions sends once: to SNS (in a deployed stack, through the alert topic to the enricher, \
which marks it a test), Slack, Chime or a webhook. It prints each channel's name and type, and SNS's message id \
when the plugin reports it. Exit status 2 if any action failed.\n\n\
Examples:\n  trailwatch monitors test api-errors --opensearch-url https://search-x.us-east-1.es.amazonaws.com\n  \
trailwatch monitors test --all --opensearch-url https://search-x.us-east-1.es.amazonaws.com"
    )]
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The detector whose monitor to test (its file name, or trailwatch-<name>).
    #[arg(
        value_name = "NAME",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub name: Option<String>,
    /// Test every monitor.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub inspect: InspectArgs,
}

pub fn run(cmd: MonitorsCommand) -> anyhow::Result<i32> {
    let runtime = super::runtime()?;
    match cmd {
        MonitorsCommand::List(args) => runtime.block_on(async {
            let detectors = args.select(None)?;
            let os = args.connect.client(Duration::from_secs(30)).await?;
            println!(
                "{:<40} {:<24} {:<8} {:<32} channels",
                "monitor", "detector", "state", "last trigger"
            );
            for d in &detectors {
                let m = monitor_info(&os, d).await?;
                let last = m
                    .last_trigger
                    .map(|(t, state)| format!("{} ({})", when(&t), state.to_lowercase()))
                    .unwrap_or_else(|| "never".into());
                let channels: Vec<String> = m
                    .channels
                    .iter()
                    .map(|c| format!("{} ({})", c.name, c.kind))
                    .collect();
                println!(
                    "{:<40} {:<24} {:<8} {:<32} {}",
                    m.name,
                    m.detector,
                    if m.enabled { "enabled" } else { "disabled" },
                    last,
                    if channels.is_empty() {
                        "none".into()
                    } else {
                        channels.join(", ")
                    }
                );
            }
            Ok(EXIT_OK)
        }),
        MonitorsCommand::Test(args) => runtime.block_on(async {
            let detectors = args.inspect.select(args.name.as_deref())?;
            let os = args.inspect.connect.client(Duration::from_secs(60)).await?;
            let mut failures = 0;
            for d in &detectors {
                let sent = match test_monitor(&os, d).await {
                    Ok(sent) => sent,
                    Err(e) => {
                        failures += 1;
                        eprintln!("{}: {e}", d.name);
                        continue;
                    }
                };
                if sent.is_empty() {
                    failures += 1;
                    eprintln!("{}: the monitor has no actions; nothing was sent", d.name);
                }
                for s in sent {
                    match &s.error {
                        Some(e) => {
                            failures += 1;
                            println!(
                                "{}: test alert to {} ({}) failed: {e}",
                                d.name, s.channel.name, s.channel.kind
                            );
                        }
                        None => println!(
                            "{}: test alert sent to {} ({}){}",
                            d.name,
                            s.channel.name,
                            s.channel.kind,
                            s.delivery.map(|d| format!(", {d}")).unwrap_or_default()
                        ),
                    }
                }
            }
            Ok(if failures > 0 { EXIT_ERROR } else { EXIT_OK })
        }),
    }
}
