//! The command line: argument structs and dispatch. Each command family has
//! its own file; results go to standard output, progress and problems to
//! standard error.

mod deploy;
mod detect;
mod detectors;
mod eval;
mod lambda;
mod monitors;
mod opensearch;
mod shell;
mod simulate;
mod users;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;

/// Nothing found (or nothing to find).
pub const EXIT_OK: i32 = 0;
/// `detect` found anomalies (at or above `--fail-on`, when given).
pub const EXIT_FOUND: i32 = 1;
/// Bad flags, bad input under `--strict`, or a failure.
pub const EXIT_ERROR: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "trailwatch",
    version,
    about = "Catch costly and suspicious AWS API activity in CloudTrail",
    long_about = "Catch costly and suspicious AWS API activity in CloudTrail.\n\n`trailwatch detect` runs the detectors (random cut forests, as OpenSearch anomaly detection), CloudTrail-Insights-style rates and never-seen-before activity over CloudTrail logs on disk. `trailwatch simulate` makes realistic logs with injected incidents to try it on. `trailwatch plan` renders the AWS stack as a CloudFormation template, offline; `deploy`, `outputs` and `destroy` manage it in your account.",
    after_help = "Exit status: 0 nothing found (at or above detect --fail-on, when given), 1 anomalies found (detect), 2 error. A reader closing the pipe early leaves it as it is."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the detectors over CloudTrail logs on disk and report anomalies.
    Detect(detect::DetectArgs),
    /// List or validate the detector files; on a cluster, each detector's status and backtest.
    #[command(
        subcommand,
        after_help = "Examples:\n  trailwatch detectors list\n  trailwatch detectors validate ./my-detectors\n  trailwatch detect ./logs --detectors ./my-detectors"
    )]
    Detectors(detectors::DetectorsCommand),
    /// Write realistic CloudTrail deliveries with injected incidents.
    Simulate(simulate::SimulateArgs),
    /// Measure detection quality on simulated organisations: recall, false pages, latency.
    Eval(eval::EvalArgs),
    /// Render the CloudFormation stack offline into DIR/stack.json.
    Plan(deploy::PlanArgs),
    /// Create or update the stack in AWS through a change set.
    Deploy(deploy::DeployArgs),
    /// Print the deployed stack's outputs (Dashboards URL, topics, ...).
    Outputs(deploy::OutputsArgs),
    /// Delete the stack (its data stays unless --delete-data).
    Destroy(deploy::DestroyArgs),
    /// Run a Lambda handler once on an event from standard input.
    #[command(
        subcommand,
        after_help = "Examples, with the sample events in the repository:\n  export OPENSEARCH_ENDPOINT=http://127.0.0.1:9200    (as --opensearch-url)\n  trailwatch lambda forward < tests/data/lambda/forward-event.json\n  trailwatch lambda enrich < tests/data/lambda/enrich-alert.json"
    )]
    Lambda(lambda::LambdaCommand),
    /// Apply or delete the OpenSearch objects: index template, retention, roles, channels, detectors, monitors.
    #[command(subcommand)]
    Opensearch(opensearch::OpenSearchCommand),
    /// Create, list, delete or reset the people who sign in to Dashboards (Cognito).
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// List the alert monitors, or send a test alert through one.
    #[command(subcommand)]
    Monitors(monitors::MonitorsCommand),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(shell::CompletionsArgs),
    /// Print the man page, or write one per command with --out DIR.
    Man(shell::ManArgs),
}

/// Runs a parsed command line; returns the exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Detect(args) => detect::run(args),
        Command::Detectors(cmd) => detectors::run(cmd),
        Command::Simulate(args) => simulate::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Plan(args) => deploy::plan(args),
        Command::Deploy(args) => deploy::deploy(args),
        Command::Outputs(args) => deploy::outputs(args),
        Command::Destroy(args) => deploy::destroy(args),
        Command::Lambda(cmd) => lambda::run(cmd),
        Command::Opensearch(cmd) => opensearch::run(cmd),
        Command::Users(cmd) => users::run(cmd),
        Command::Monitors(cmd) => monitors::run(cmd),
        Command::Completions(args) => shell::completions(args),
        Command::Man(args) => shell::man(args),
    }
}

/// True when the error is standard output closing under us (`detect … |
/// head`): the reader has what it wanted, so this is a clean exit.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `--since`: a time, or a span before the end of the data (`-1d`, `-6h`, `-90m`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Since {
    At(DateTime<Utc>),
    BeforeEnd(chrono::Duration),
}

impl Since {
    /// The time, given the last event of the data.
    pub fn resolve(self, last_event: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match self {
            Since::At(t) => Some(t),
            Since::BeforeEnd(d) => last_event.map(|t| t - d),
        }
    }
}

pub fn parse_since(s: &str) -> Result<Since, String> {
    if let Some(span) = s.strip_prefix('-') {
        let (digits, unit) = span.split_at(span.len().saturating_sub(1));
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a span; write -1d, -6h or -90m"))?;
        let d = match unit {
            "d" => chrono::Duration::days(n),
            "h" => chrono::Duration::hours(n),
            "m" => chrono::Duration::minutes(n),
            _ => return Err(format!("{s:?} is not a span; write -1d, -6h or -90m")),
        };
        return Ok(Since::BeforeEnd(d));
    }
    parse_time(s).map(Since::At)
}

/// A time on the command line: RFC 3339, or a date meaning its midnight UTC.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(format!(
        "{s:?} is not a time; write 2026-01-07T14:00:00Z or 2026-01-07"
    ))
}

/// A progress bar on standard error when it is a terminal; hidden otherwise.
pub(crate) fn progress_bar(total: u64, template: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The async runtime every command that calls AWS or OpenSearch runs in:
/// one way to make it, for the whole command line.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_dates() {
        assert_eq!(
            parse_time("2026-01-07").unwrap().to_rfc3339(),
            "2026-01-07T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-01-07T14:00:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2026-01-07T12:00:00+00:00"
        );
        assert!(parse_time("noon")
            .unwrap_err()
            .contains("2026-01-07T14:00:00Z"));
    }

    #[test]
    fn since_takes_a_span_before_the_end() {
        let end = parse_time("2026-01-07T12:00:00Z").unwrap();
        assert_eq!(
            parse_since("-1d").unwrap().resolve(Some(end)),
            Some(parse_time("2026-01-06T12:00:00Z").unwrap())
        );
        assert_eq!(
            parse_since("-90m").unwrap(),
            Since::BeforeEnd(chrono::Duration::minutes(90))
        );
        assert_eq!(
            parse_since("2026-01-07").unwrap(),
            Since::At(parse_time("2026-01-07").unwrap())
        );
        assert!(parse_since("-1w").unwrap_err().contains("-6h"));
        assert!(parse_since("-d").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
