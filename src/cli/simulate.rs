//! `trailwatch simulate`.

use super::{parse_time, progress_bar, EXIT_OK};
use crate::simulate::technique::{self, WayIn};
use crate::simulate::{simulate, IncidentSpec, Quirk, SimConfig};
use anyhow::{bail, Context};
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(
    after_help = "Without --incident, one incident of each kind is injected on the last day \
(iam-persistence 01:30, crypto-mining 03:10, console-brute-force 06:00, lambda-loop 09:40, \
logging-tampering 12:00, leaked-key 14:20, public-bucket 16:30, volume-sprawl 19:00, \
exfiltration 21:30 UTC); --no-incidents writes normal activity only.\n\nExample:\n  trailwatch simulate --out demo --days 3 --incident lambda-loop@+2d10h"
)]
pub struct SimulateArgs {
    /// Folder to write the deliveries and incidents.json into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Days of activity.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// Random seed; the same seed writes the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First day [default: the given number of days before today, UTC midnight].
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub start: Option<DateTime<Utc>>,
    /// The organisation: small-org, busy-org (four times as busy),
    /// messy-org (more accounts, and every --quirk but busy-admin) or
    /// busy-admin (an administrator doing what attacks look like).
    #[arg(long, default_value = "small-org", value_name = "NAME")]
    pub profile: String,
    /// Multiplies the background activity (1.0 is about 30,000 events a day)
    /// [default: the profile's].
    #[arg(long)]
    pub scale: Option<f64>,
    /// Add behaviour that looks like an incident and is not (repeatable):
    /// bursty-automation, deploy-waves, night-on-call, new-team-member,
    /// credential-rotation, regional-failover, new-service, more-accounts,
    /// busy-admin.
    #[arg(long = "quirk", value_name = "QUIRK")]
    pub quirks: Vec<Quirk>,
    /// Inject an incident: KIND@TIME, TIME as RFC 3339 or +2d14h after the start.
    /// Kinds: crypto-mining, lambda-loop, leaked-key, volume-sprawl,
    /// iam-persistence, console-brute-force, logging-tampering, public-bucket,
    /// exfiltration. Repeatable.
    #[arg(long = "incident", value_name = "KIND@TIME")]
    pub incidents: Vec<IncidentSpec>,
    /// Inject no incident.
    #[arg(long, conflicts_with = "incidents")]
    pub no_incidents: bool,
    /// Also inject every attack technique of the catalogue over the last
    /// two days, each by this way in: stolen-keys (an established person's
    /// keys from a network they never used) or never-seen-principal (an
    /// IAM user never seen before); described in attacks.json.
    #[arg(long, value_name = "WAY")]
    pub attacks: Option<WayIn>,
    /// Replace a simulation already in the output folder.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: SimulateArgs) -> anyhow::Result<i32> {
    let profile =
        crate::simulate::profile(&args.profile).map_err(|e| anyhow::anyhow!("--profile {e}"))?;
    let scale = args.scale.unwrap_or(profile.scale);
    if !(scale > 0.0 && scale <= 1000.0) {
        bail!("--scale {scale} is out of range; use a number above 0 and at most 1000");
    }
    let mut quirks = profile.quirks.to_vec();
    quirks.extend(&args.quirks);
    quirks.sort();
    quirks.dedup();
    let start = args.start.unwrap_or_else(|| {
        let today = Utc::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc();
        today - Duration::days(args.days as i64)
    });
    let end = start + Duration::days(args.days as i64);
    let mut specs = args.incidents.clone();
    if specs.is_empty() && !args.no_incidents {
        specs = crate::simulate::demo_incidents(args.days);
    }
    let incidents: Vec<IncidentSpec> = specs.iter().map(|s| s.anchor(start)).collect();
    for spec in &incidents {
        let inc = spec.resolve();
        if inc.start < start || inc.end > end {
            bail!(
                "--incident {}@{}: falls outside the simulated span {start} to {end}",
                inc.kind.name(),
                inc.start
            );
        }
    }
    let existing = args.out.join("AWSLogs");
    if existing.exists() {
        if !args.force {
            bail!("{} already holds CloudTrail deliveries; pass --force to replace them, or choose another --out", args.out.display());
        }
        std::fs::remove_dir_all(&existing)
            .with_context(|| format!("cannot remove {}", existing.display()))?;
    }
    let config = SimConfig {
        out: args.out.clone(),
        start,
        days: args.days,
        seed: args.seed,
        scale,
        incidents,
        quirks,
        attacks: args.attacks.map_or_else(Vec::new, |way| {
            let from = (end - Duration::days(2)).max(start);
            technique::every_technique(way, args.seed, from, end - Duration::minutes(30))
        }),
    };
    let slots = args.days as u64 * 24 * 12;
    let bar = progress_bar(
        slots,
        "{spinner} simulating [{bar:30}] {percent}%, {eta} left",
    );
    let progress = |n: u64| bar.inc(n);
    let summary = simulate(&config, &progress)
        .with_context(|| format!("cannot write the simulation into {}", args.out.display()))?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {} events in {} deliveries ({:.1} MiB gzipped) to {}, {} to {}",
        summary.events,
        summary.files,
        summary.bytes as f64 / (1 << 20) as f64,
        args.out.display(),
        start.format("%Y-%m-%d"),
        end.format("%Y-%m-%d")
    );
    for inc in &summary.incidents {
        eprintln!(
            "  incident {} {} to {}: {}",
            inc.kind.name(),
            inc.start.format("%Y-%m-%d %H:%M"),
            inc.end.format("%H:%M"),
            inc.description
        );
    }
    eprintln!(
        "incidents described in {}",
        args.out.join("incidents.json").display()
    );
    Ok(EXIT_OK)
}
