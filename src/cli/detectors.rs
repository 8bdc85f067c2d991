//! `trailwatch detectors list|validate`, offline, and `detectors status`,
//! from the anomaly detection plugin's profile and results.

use super::{EXIT_ERROR, EXIT_OK};
use crate::detector::{Detector, DetectorSet, ErrorFilter, SetError, ValueSpec};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum DetectorsCommand {
    /// Show each detector: what it counts, per what, and how often.
    #[command(
        after_help = "Examples:\n  trailwatch detectors list                       (the built-in set)\n  trailwatch detectors list --detectors ./mine    (your own folder)"
    )]
    List {
        /// Folder of detector files that replaces the built-in set.
        #[arg(long, value_name = "DIR")]
        detectors: Option<PathBuf>,
        /// Folder of Sigma rules (product: aws, service: cloudtrail) to add; repeatable.
        #[arg(long, value_name = "DIR")]
        sigma: Vec<PathBuf>,
    },
    /// Check every detector file; report every problem in every file.
    #[command(
        after_help = "Exit status: 0 every file is valid, 2 a file is not.\n\nExamples:\n  trailwatch detectors validate                   (the built-in set)\n  trailwatch detectors validate ./mine\n  trailwatch detectors validate --detectors ./mine"
    )]
    Validate {
        /// Folder of detector files [default: the built-in set].
        #[arg(value_name = "DIR", conflicts_with = "detectors")]
        dir: Option<PathBuf>,
        /// The same folder, named as `detect` and `list` name it.
        #[arg(long, value_name = "DIR")]
        detectors: Option<PathBuf>,
        /// Folder of Sigma rules to check too; repeatable.
        #[arg(long, value_name = "DIR")]
        sigma: Vec<PathBuf>,
    },
    /// How each detector is doing on the cluster: state, entities, last anomaly, last error.
    #[command(
        after_help = "State is stopped, initializing (with progress and an estimate of the time left), running, or failed with the plugin's error. Entities are counted from the results; the busiest are those with the largest summed feature.

Examples:
  trailwatch detectors status --opensearch-url https://search-x.us-east-1.es.amazonaws.com
  export OPENSEARCH_CA_CERT=root-ca.pem\n  \
trailwatch detectors status api-errors --opensearch-url https://127.0.0.1:9200"
    )]
    Status {
        /// One detector (its file name, or trailwatch-<name>) [default: every one].
        #[arg(value_name = "NAME")]
        name: Option<String>,
        #[command(flatten)]
        inspect: super::opensearch::InspectArgs,
    },
    /// Run the plugin's historical analysis of detectors over the cluster's data, and print their anomalies.
    #[command(
        after_help = "Prints one line per anomaly (NDJSON with the keys of detect's, or a table on a terminal). \
With --compare it also runs the local engine over the same records (the cluster's --index, read as \
detect --opensearch-url reads it) and prints what both found and what only one did, saying why they \
may disagree. Several detectors are analysed one after another: the plugin runs few historical \
analyses at once, so each waits for a free slot. A backtest never pages: the monitors watch \
real-time results only.\n\n\
Examples (the cluster's URL in OPENSEARCH_ENDPOINT, as --opensearch-url):\n  export OPENSEARCH_ENDPOINT=https://search-x.us-east-1.es.amazonaws.com\n  \
trailwatch detectors backtest ec2-run-instances --from 2026-11-01 --to 2026-11-08\n  \
trailwatch detectors backtest --all --from 2026-11-01 --to 2026-11-02 --compare"
    )]
    Backtest(BacktestArgs),
}

#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// The detectors (file names, or trailwatch-<name>).
    #[arg(value_name = "NAME", required_unless_present = "all")]
    pub names: Vec<String>,
    /// Every detector that has OpenSearch objects.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Start of the span (RFC 3339 or a date).
    #[arg(long, value_parser = super::parse_time, value_name = "TIME")]
    pub from: chrono::DateTime<chrono::Utc>,
    /// End of the span.
    #[arg(long, value_parser = super::parse_time, value_name = "TIME")]
    pub to: chrono::DateTime<chrono::Utc>,
    /// Also run the local engine over the same records and say where the two agree.
    #[arg(long)]
    pub compare: bool,
    /// With --compare: the index pattern the records are in.
    #[arg(long, value_name = "PATTERN", default_value = "cwl-*")]
    pub index: String,
    /// Longest wait for the historical analysis.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub wait: u64,
    /// Output format [default: table on a terminal, ndjson otherwise].
    #[arg(long, value_enum)]
    pub format: Option<crate::engine::sink::Format>,
    #[command(flatten)]
    pub inspect: super::opensearch::InspectArgs,
}

/// `detectors status`: a block per detector.
fn status(name: Option<&str>, inspect: &super::opensearch::InspectArgs) -> anyhow::Result<i32> {
    use crate::opensearch::inspect::{detector_status, when};
    let detectors = inspect.select(name)?;
    super::runtime()?.block_on(async {
        let os = inspect
            .connect
            .client(std::time::Duration::from_secs(30))
            .await?;
        for d in &detectors {
            let s = detector_status(&os, d).await?;
            println!("{} ({})", s.name, s.detector);
            println!("  state         {}", s.state);
            if !d.category_fields.is_empty() {
                let busiest: Vec<String> = s
                    .results
                    .busiest
                    .iter()
                    .map(|(e, v)| format!("{e} ({})", crate::context::trim_number(*v)))
                    .collect();
                println!(
                    "  entities      {}{}",
                    s.results
                        .entities
                        .map_or("none yet".into(), |n| n.to_string()),
                    if busiest.is_empty() {
                        String::new()
                    } else {
                        format!("; busiest: {}", busiest.join(", "))
                    }
                );
            }
            match &s.results.last_anomaly {
                Some((t, entity, grade)) => println!(
                    "  last anomaly  {} grade {grade:.2}{}",
                    when(t),
                    if entity == "-" {
                        String::new()
                    } else {
                        format!(" for {entity}")
                    }
                ),
                None => println!("  last anomaly  none"),
            }
            match &s.results.last_error {
                Some((t, e)) => println!("  last error    {} {e}", when(t)),
                None => println!("  last error    none"),
            }
        }
        Ok(EXIT_OK)
    })
}

/// `detectors backtest`: the plugin's anomalies, and with `--compare` the
/// local engine's beside them.
fn backtest(args: &BacktestArgs) -> anyhow::Result<i32> {
    use crate::cloudtrail::{Input, SearchInput};
    use crate::engine::source::detect_once;
    use crate::opensearch::backtest::{backtest, compare};
    use crate::opensearch::inspect::when;
    use crate::opensearch::scan::Scan;
    use std::io::IsTerminal;
    if args.to <= args.from {
        anyhow::bail!(
            "--to {} is not after --from {}",
            when(&args.to),
            when(&args.from)
        );
    }
    let detectors = if args.all {
        args.inspect.select(None)?
    } else {
        let mut chosen = Vec::new();
        for name in &args.names {
            chosen.extend(args.inspect.select(Some(name))?);
        }
        chosen
    };
    let table = match args.format {
        Some(crate::engine::sink::Format::Table) => true,
        Some(_) => false,
        None => std::io::stdout().is_terminal(),
    };
    let entity = |e: &Option<std::collections::BTreeMap<String, String>>| match e {
        None => "-".to_owned(),
        Some(m) => m.values().cloned().collect::<Vec<_>>().join("/"),
    };
    let runtime = super::runtime()?;
    let (target, found) = runtime.block_on(async {
        let target = args
            .inspect
            .connect
            .target(std::time::Duration::from_secs(60))
            .await?;
        let os = crate::opensearch::OpenSearch::connect(&target)?;
        let mut found = Vec::new();
        for d in &detectors {
            found.push(
                backtest(
                    &os,
                    d,
                    args.from,
                    args.to,
                    std::time::Duration::from_secs(args.wait),
                    &mut |what| eprintln!("{what}"),
                )
                .await?,
            );
        }
        Ok::<_, anyhow::Error>((target, found))
    })?;
    drop(runtime);
    if !args.compare {
        let mut any = false;
        for (d, found) in detectors.iter().zip(&found) {
            for a in found {
                if table {
                    println!(
                        "{}  {}  {:<40} grade {:.2}  confidence {:.2}",
                        when(&a.start),
                        a.detector,
                        entity(&a.entity),
                        a.grade,
                        a.confidence
                    );
                } else {
                    println!("{}", serde_json::to_string(a)?);
                }
            }
            eprintln!(
                "{}: {} anomalies from the plugin's historical analysis",
                d.name,
                found.len()
            );
            any |= !found.is_empty();
        }
        return Ok(if any { super::EXIT_FOUND } else { EXIT_OK });
    }
    let input = Input::Search(Box::new(SearchInput {
        target,
        scan: Scan {
            index: args.index.clone(),
            until: Some(args.to),
            page: 5000,
        },
    }));
    let options = crate::engine::EngineOptions {
        since: Some(args.from),
        insights: None,
        novelty: None,
        rules: Vec::new(),
        ..crate::engine::EngineOptions::all()
    };
    let (local, stats) = detect_once(
        std::slice::from_ref(&input),
        &detectors,
        options,
        Some(args.to),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut disagree = false;
    for (d, found) in detectors.iter().zip(&found) {
        let mine: Vec<_> = local
            .iter()
            .filter(|a| a.detector == d.name)
            .cloned()
            .collect();
        let c = compare(found, &mine);
        for (p, l) in &c.both {
            if table {
                println!(
                    "both         {}  {}  {:<40} plugin {:.2}, local {:.2}",
                    when(&p.start),
                    d.name,
                    entity(&p.entity),
                    p.grade,
                    l.grade
                );
            } else {
                println!(
                    "{}",
                    serde_json::json!({"found_by": "both", "detector": p.detector, "entity": p.entity, "start": p.start, "end": p.end, "plugin_grade": p.grade, "local_grade": l.grade})
                );
            }
        }
        for p in &c.plugin_only {
            let why = plugin_only_why(d);
            if table {
                println!(
                    "plugin only  {}  {}  {:<40} grade {:.2}: {why}",
                    when(&p.start),
                    d.name,
                    entity(&p.entity),
                    p.grade
                );
            } else {
                println!(
                    "{}",
                    serde_json::json!({"found_by": "plugin", "detector": p.detector, "entity": p.entity, "start": p.start, "end": p.end, "plugin_grade": p.grade, "why": why})
                );
            }
        }
        for l in &c.local_only {
            let why = local_only_why(d);
            if table {
                println!(
                    "local only   {}  {}  {:<40} grade {:.2}: {why}",
                    when(&l.start),
                    d.name,
                    entity(&l.entity),
                    l.grade
                );
            } else {
                println!(
                    "{}",
                    serde_json::json!({"found_by": "local", "detector": l.detector, "entity": l.entity, "start": l.start, "end": l.end, "local_grade": l.grade, "why": why})
                );
            }
        }
        eprintln!(
            "{}: {} found by both, {} by the plugin only, {} by the local engine only",
            d.name,
            c.both.len(),
            c.plugin_only.len(),
            c.local_only.len(),
        );
        disagree |= !c.plugin_only.is_empty() || !c.local_only.is_empty();
    }
    eprintln!("({} records read)", stats.records);
    Ok(if disagree { super::EXIT_FOUND } else { EXIT_OK })
}

/// Why the local engine may find what the plugin did not, said plainly.
fn local_only_why(d: &crate::detector::Detector) -> String {
    use crate::detector::Imputation;
    match d.imputation {
        Imputation::Zero => "the plugin found nothing here: it imputes empty intervals as zero, which on a mostly empty series keeps its confidence too low to grade (the local engine counts them as zero and still grades); set imputation = \"none\" in the detector file if the series is sparse".into(),
        _ => "the plugin found nothing here: its model sees only the intervals that have data, and was not yet confident or judged it normal".into(),
    }
}

/// Why the plugin may find what the local engine did not, said plainly.
fn plugin_only_why(d: &crate::detector::Detector) -> String {
    format!(
        "the local engine found nothing here: its model judged it normal, or its rules set it aside (grade under {}, or a change under {}% or {} of what was expected)",
        d.alert.grade,
        d.alert.min_ratio * 100.0,
        d.alert.min_margin
    )
}

pub fn run(cmd: DetectorsCommand) -> anyhow::Result<i32> {
    match cmd {
        DetectorsCommand::Backtest(args) => backtest(&args),
        DetectorsCommand::Status { name, inspect } => status(name.as_deref(), &inspect),
        DetectorsCommand::List { detectors, sigma } => {
            let set = load(detectors.as_deref(), &sigma)?;
            eprintln!("{}:", capitalised(&set.to_string()));
            let width = set
                .detectors
                .iter()
                .map(|d| d.name.len())
                .max()
                .unwrap_or(0);
            for d in &set.detectors {
                println!("{:width$}  {}", d.name, summary(d));
                if !d.description.is_empty() {
                    println!("{:width$}  {}", "", d.description);
                }
            }
            eprintln!("{}:", capitalised(&rules_text(&set)));
            let width = set.rules.iter().map(|r| r.name.len()).max().unwrap_or(0);
            for r in &set.rules {
                println!(
                    "{:width$}  {:8}  {}",
                    r.name,
                    r.severity.name(),
                    r.description
                );
            }
            Ok(EXIT_OK)
        }
        DetectorsCommand::Validate {
            dir,
            detectors,
            sigma,
        } => {
            let dir = dir.or(detectors);
            match DetectorSet::load(dir.as_deref()).and_then(|set| set.with_sigma(&sigma)) {
                Ok(set) if !set.sigma_problems.is_empty() => {
                    for e in &set.sigma_problems {
                        eprintln!("{e}");
                    }
                    eprintln!(
                        "{} Sigma file(s) cannot be read (each above, with why); {} load.",
                        set.sigma_problems.len(),
                        rules_text(&set)
                    );
                    Ok(EXIT_ERROR)
                }
                Ok(set) => {
                    println!(
                        "{} are valid, and {}.",
                        capitalised(&set.to_string()),
                        rules_text(&set)
                    );
                    Ok(EXIT_OK)
                }
                Err(SetError::Invalid { dir, errors }) => {
                    for e in &errors {
                        eprintln!("{e}");
                    }
                    let total = std::fs::read_dir(&dir)
                        .map(|r| {
                            r.filter_map(Result::ok)
                                .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
                                .count()
                        })
                        .unwrap_or(errors.len());
                    eprintln!(
                        "{} of {} detector file(s) in {} are invalid.",
                        errors.len(),
                        total,
                        dir.display()
                    );
                    Ok(EXIT_ERROR)
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// `--detectors DIR`, or the built-in set; a folder with an invalid file is
/// an error after every problem in it is printed.
pub(crate) fn load(dir: Option<&Path>, sigma: &[PathBuf]) -> anyhow::Result<DetectorSet> {
    match DetectorSet::load(dir).and_then(|set| set.with_sigma(sigma)) {
        Ok(set) => {
            for e in &set.sigma_problems {
                eprintln!("warning: {e}\n  (this Sigma file is left out; the other rules load)");
            }
            Ok(set)
        }
        Err(SetError::Invalid { dir, errors }) => {
            for e in &errors {
                eprintln!("{e}");
            }
            Err(SetError::Invalid { dir, errors }.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// `the 9 built-in rules`, `2 rule(s) from ./mine/rules`, and `and 50
/// Sigma rule(s) from ./sigma`.
fn rules_text(set: &DetectorSet) -> String {
    let files = set.rules.len() - set.sigma_rules();
    let mut text = match &set.rules_source {
        crate::detector::Source::BuiltIn => format!("the {files} built-in rules"),
        crate::detector::Source::Dir(dir) => {
            format!("{files} rule(s) from {}", dir.display())
        }
    };
    if !set.sigma_dirs.is_empty() {
        let dirs: Vec<String> = set
            .sigma_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        text.push_str(&format!(
            " and {} Sigma rule(s) from {}",
            set.sigma_rules(),
            dirs.join(", ")
        ));
    }
    text
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// One line: value, filter, entity, interval.
fn summary(d: &Detector) -> String {
    let value = match &d.value {
        ValueSpec::Count => "count".to_owned(),
        ValueSpec::Sum(f) => format!("sum of {f}"),
        ValueSpec::Distinct(f) => format!("distinct {f}"),
    };
    let mut what = Vec::new();
    if !d.filter.event_names.is_empty() {
        what.push(d.filter.event_names.join("|"));
    } else if !d.filter.event_sources.is_empty() {
        what.push(d.filter.event_sources.join("|"));
    }
    match &d.filter.errors {
        ErrorFilter::Any => {}
        ErrorFilter::Failed => what.push("failed calls".into()),
        ErrorFilter::Succeeded => what.push("successful calls".into()),
        ErrorFilter::Codes(c) => what.push(c.join("|")),
    }
    let per = if d.is_high_cardinality() {
        format!(
            " per {}",
            d.category_fields
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(" + ")
        )
    } else {
        String::new()
    };
    format!(
        "{value} of {}{per}, every {} min",
        if what.is_empty() {
            "all events".into()
        } else {
            what.join(", ")
        },
        d.interval.as_secs() / 60
    )
}
