//! `trailwatch detectors list|validate`.

use super::{EXIT_ERROR, EXIT_OK};
use crate::detector::{load_dir, Detector, ErrorFilter, ValueSpec};
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum DetectorsCommand {
    /// Show each detector: what it counts, per what, and how often.
    List {
        /// Folder of detector files.
        #[arg(long, default_value = "detectors", value_name = "DIR")]
        detectors: PathBuf,
    },
    /// Check every detector file; report every problem in every file.
    Validate {
        /// Folder of detector files.
        #[arg(default_value = "detectors")]
        dir: PathBuf,
    },
}

pub fn run(cmd: DetectorsCommand) -> anyhow::Result<i32> {
    match cmd {
        DetectorsCommand::List { detectors } => {
            let (list, errors) = load(&detectors)?;
            for e in &errors {
                eprintln!("warning: {e}");
            }
            let width = list.iter().map(|d| d.name.len()).max().unwrap_or(0);
            for d in &list {
                println!("{:width$}  {}", d.name, summary(d));
                if !d.description.is_empty() {
                    println!("{:width$}  {}", "", d.description);
                }
            }
            Ok(if errors.is_empty() {
                EXIT_OK
            } else {
                EXIT_ERROR
            })
        }
        DetectorsCommand::Validate { dir } => {
            let (list, errors) = load(&dir)?;
            for e in &errors {
                eprintln!("{e}");
            }
            if errors.is_empty() {
                println!(
                    "{} detector file(s) in {} are valid.",
                    list.len(),
                    dir.display()
                );
                Ok(EXIT_OK)
            } else {
                eprintln!(
                    "{} of {} detector file(s) in {} are invalid.",
                    errors.len(),
                    errors.len() + list.len(),
                    dir.display()
                );
                Ok(EXIT_ERROR)
            }
        }
    }
}

pub(crate) fn load(
    dir: &Path,
) -> anyhow::Result<(Vec<Detector>, Vec<crate::detector::DetectorError>)> {
    load_dir(dir).with_context(|| {
        format!(
            "cannot load detectors from {}; pass --detectors DIR",
            dir.display()
        )
    })
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
