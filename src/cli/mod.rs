//! The command line: argument structs and dispatch. Each command family has
//! its own file; results go to standard output, progress and problems to
//! standard error.

mod detect;
mod detectors;
mod simulate;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;

/// Nothing found (or nothing to find).
pub const EXIT_OK: i32 = 0;
/// `detect` found anomalies.
pub const EXIT_FOUND: i32 = 1;
/// Bad flags, bad input under `--strict`, or a failure.
pub const EXIT_ERROR: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "trailwatch",
    version,
    about = "Catch costly and suspicious AWS API activity in CloudTrail",
    long_about = "Catch costly and suspicious AWS API activity in CloudTrail.\n\nRun the detectors over CloudTrail logs on disk with `trailwatch detect`, or make realistic logs with injected incidents with `trailwatch simulate`.",
    after_help = "Exit status: 0 nothing found, 1 anomalies found (detect), 2 error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the detectors over CloudTrail logs on disk and report anomalies.
    Detect(detect::DetectArgs),
    /// List or validate detector files.
    #[command(subcommand)]
    Detectors(detectors::DetectorsCommand),
    /// Write realistic CloudTrail deliveries with injected incidents.
    Simulate(simulate::SimulateArgs),
}

/// Runs a parsed command line; returns the exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Detect(args) => detect::run(args),
        Command::Detectors(cmd) => detectors::run(cmd),
        Command::Simulate(args) => simulate::run(args),
    }
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
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
