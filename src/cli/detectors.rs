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
    },
    /// How each detector is doing on the cluster: state, entities, last anomaly, last error.
    #[command(
        after_help = "State is stopped, initializing (with progress and an estimate of the time left), running, or failed with the plugin's error. Entities are counted from the results; the busiest are those with the largest summed feature.

Examples:
  trailwatch detectors status --opensearch-url https://search-x.us-east-1.es.amazonaws.com
  trailwatch detectors status api-errors --opensearch-url https://127.0.0.1:9200 --opensearch-ca-cert root-ca.pem"
    )]
    Status {
        /// One detector (its file name, or trailwatch-<name>) [default: every one].
        #[arg(value_name = "NAME")]
        name: Option<String>,
        #[command(flatten)]
        inspect: super::opensearch::InspectArgs,
    },
}

/// `detectors status`: a block per detector.
fn status(name: Option<&str>, inspect: &super::opensearch::InspectArgs) -> anyhow::Result<i32> {
    use crate::opensearch::inspect::{detector_status, when};
    let detectors = inspect.select(name)?;
    super::deploy::runtime()?.block_on(async {
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
                    .map(|(e, v)| format!("{e} ({})", crate::engine::score::trim_number(*v)))
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

pub fn run(cmd: DetectorsCommand) -> anyhow::Result<i32> {
    match cmd {
        DetectorsCommand::Status { name, inspect } => status(name.as_deref(), &inspect),
        DetectorsCommand::List { detectors } => {
            let set = load(detectors.as_deref())?;
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
            Ok(EXIT_OK)
        }
        DetectorsCommand::Validate { dir, detectors } => {
            let dir = dir.or(detectors);
            match DetectorSet::load(dir.as_deref()) {
                Ok(set) => {
                    println!("{} are valid.", capitalised(&set.to_string()));
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
pub(crate) fn load(dir: Option<&Path>) -> anyhow::Result<DetectorSet> {
    match DetectorSet::load(dir) {
        Ok(set) => Ok(set),
        Err(SetError::Invalid { dir, errors }) => {
            for e in &errors {
                eprintln!("{e}");
            }
            Err(SetError::Invalid { dir, errors }.into())
        }
        Err(e) => Err(e.into()),
    }
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
