//! `trailwatch eval`: the detection-quality table of [`crate::eval`].

use super::EXIT_OK;
use crate::eval::{self, Score, HELD_OUT_SEEDS, TUNING_SEEDS};
use crate::simulate::technique::WayIn;
use crate::simulate::{Profile, PROFILES};
use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
#[command(
    after_help = "Each profile is simulated once per seed into a temporary folder, detected with \
every kind at the default --page-severity, and scored against the incidents injected: recall per \
incident kind, false pages a day per finding kind, median and worst latency. Then every attack \
technique of simulate's catalogue, by each way in (stolen-keys, never-seen-principal), into the \
small organisation: techniques caught per ATT&CK tactic (--explain names those missed).\n\n\
Examples:\n  trailwatch eval                      (the held-out seeds: docs/simulate-and-eval.md)\n  \
trailwatch eval --seeds tuning       (the seeds to look at while changing the engine)\n  \
trailwatch eval --profile small-org --seeds 7,8"
)]
pub struct EvalArgs {
    /// `held-out`, `tuning`, or a list of seeds (`7,8`).
    #[arg(long, default_value = "held-out", value_name = "SET")]
    pub seeds: String,
    /// Only this profile (default: every one).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Also print every false page's findings (for the tuning seeds: looking
    /// at the held-out ones spoils them).
    #[arg(long)]
    pub explain: bool,
}

fn seeds(set: &str) -> anyhow::Result<Vec<u64>> {
    Ok(match set {
        "held-out" => HELD_OUT_SEEDS.to_vec(),
        "tuning" => TUNING_SEEDS.to_vec(),
        list => list
            .split(',')
            .map(|s| s.trim().parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                anyhow::anyhow!("--seeds {list:?}: write held-out, tuning, or numbers like 7,8")
            })?,
    })
}

pub fn run(args: EvalArgs) -> anyhow::Result<i32> {
    let seeds = seeds(&args.seeds)?;
    let profiles: Vec<Profile> = match &args.profile {
        None => PROFILES.iter().chain(&eval::WAYS_IN).copied().collect(),
        Some(name) => match eval::WAYS_IN.iter().find(|p| p.name == *name) {
            Some(way) => vec![*way],
            None => vec![crate::simulate::profile(name).map_err(|e| {
                anyhow::anyhow!("--profile {e}, or a way in: stolen-keys, never-seen-principal")
            })?],
        },
    };
    let mut rows = Vec::new();
    for p in profiles {
        let mut total = Score::default();
        for &seed in &seeds {
            eprintln!("eval: {} seed {seed}", p.name);
            let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
            let way = WayIn::ALL.into_iter().find(|w| w.name() == p.name);
            let score = match way {
                Some(way) => eval::run_techniques(way, seed, dir.path()),
                None => eval::run(&p, seed, dir.path()),
            }
            .with_context(|| format!("{} seed {seed}", p.name))?;
            total.add(score);
        }
        rows.push((p, total));
    }
    print!("{}", eval::table(&rows));
    if args.explain {
        for (p, s) in &rows {
            for line in &s.false_page_lines {
                println!("false page  {}  {line}", p.name);
            }
            for line in &s.missed {
                println!("missed      {line}");
            }
        }
    }
    Ok(EXIT_OK)
}
