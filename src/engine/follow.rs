//! `--follow`: watch folders for new deliveries (as an S3 event notification
//! would drive it) and report anomalies as their interval closes.
//!
//! Each poll reads the files not seen before and ingests them. The engine
//! advances to the newest event time (each detector also waits its window
//! delay) after a poll that found nothing new, when a burst of arrivals has
//! settled, or after [`MAX_BUSY_POLLS`] busy polls at the latest, so a bulk
//! copy in any order is evaluated whole and a steady stream still advances.
//!
//! Deliveries of different streams (account and region) arrive hours apart:
//! the engine advances to the newest event of the slowest stream still
//! delivering (one idle for `--stream-idle` stops holding the others back).
//! An input whose events lie before what was already evaluated is late: it
//! is named with how late it is, and insights and new activity look at the
//! late span again, reporting what is new marked late ([`Engine::catch_up`]).
//!
//! With `--state FILE`, the processed files and the aggregates are
//! saved after every poll (written aside, then renamed); a restart loads them
//! and rebuilds the RCF models by replaying the saved series, which takes
//! milliseconds, instead of re-reading the logs or learning from scratch.
//! Nothing found before the restart is reported again.

use super::group::Incident;
use super::pipeline::{Pipeline, StateError};
use super::source::Observer;
use super::Findings;
use crate::cloudtrail::{discover, Input};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Why following failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("cannot list the inputs: {0}")]
    Discover(#[source] std::io::Error),
    #[error("{path}: cannot {action} the state: {source}")]
    State {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: {1}")]
    Saved(PathBuf, #[source] StateError),
    #[error("stopped at the first problem (--strict): {0}")]
    Strict(String),
    #[error("cannot write the results: {0}")]
    Output(#[source] std::io::Error),
}

/// Polls with new files after which the engine advances anyway.
pub const MAX_BUSY_POLLS: u32 = 12;

/// A file modified more recently than this may still be being written: it is
/// left for a later poll (S3 objects appear whole; local copies do not).
pub const SETTLE: Duration = Duration::from_secs(1);

fn settled(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= SETTLE))
}

/// A saved state's bytes, or `None` when the file does not exist.
pub fn load_state(path: &Path) -> Result<Option<Vec<u8>>, FollowError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FollowError::State {
            path: path.into(),
            action: "read",
            source,
        }),
    }
}

/// Saves the state aside, then renames it over the old one.
pub fn save_state(path: &Path, bytes: &[u8]) -> Result<(), FollowError> {
    let io = |action, source| FollowError::State {
        path: path.into(),
        action,
        source,
    };
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, bytes).map_err(|e| io("write", e))?;
    std::fs::rename(&aside, path).map_err(|e| io("replace", e))
}

/// How to follow.
pub struct FollowOptions<'a> {
    pub paths: &'a [PathBuf],
    pub poll: Duration,
    pub state: Option<&'a Path>,
    pub strict: bool,
    /// A stream (account and region) that delivered nothing new for this
    /// long stops holding the others back.
    pub stream_idle: Duration,
}

/// Each stream's newest event, and when (on this machine's clock) it last
/// moved; `None`: not since this run started.
type StreamClocks = BTreeMap<String, (DateTime<Utc>, Option<Instant>)>;

/// How far the engine may go: the newest event of the slowest stream still
/// delivering, or of all when none is.
fn stream_watermark(
    clocks: &mut StreamClocks,
    streams: &BTreeMap<String, DateTime<Utc>>,
    now: Instant,
    idle: Duration,
) -> Option<DateTime<Utc>> {
    for (stream, &t) in streams {
        match clocks.get_mut(stream) {
            Some((last, moved)) if t > *last => {
                *last = t;
                *moved = Some(now);
            }
            Some(_) => {}
            None => {
                clocks.insert(stream.clone(), (t, Some(now)));
            }
        }
    }
    let delivering = clocks
        .values()
        .filter(|(_, moved)| moved.is_some_and(|m| now.duration_since(m) < idle))
        .map(|(t, _)| *t)
        .min();
    delivering.or_else(|| clocks.values().map(|(t, _)| *t).max())
}

/// Follows until `stop` is set. `emit` gets each poll's findings and their
/// incidents (numbered on from earlier polls); `log` gets a line per poll.
pub fn follow(
    pipeline: &mut Pipeline<'_>,
    options: &FollowOptions<'_>,
    observer: &Observer<'_>,
    emit: &mut dyn FnMut(&Findings, &[Incident]) -> std::io::Result<()>,
    log: &mut dyn FnMut(&str),
    stop: &AtomicBool,
) -> Result<(), FollowError> {
    let mut clocks = StreamClocks::new();
    if let Some(path) = options.state {
        if let Some(bytes) = load_state(path)? {
            pipeline
                .resume(&bytes)
                .map_err(|e| FollowError::Saved(path.into(), e))?;
            // Streams of the saved state are idle until they deliver again.
            for (stream, t) in &pipeline.engine.aggregates.streams {
                clocks.insert(stream.clone(), (*t, None));
            }
            log(&format!(
                "resumed from {}: {} inputs already read, evaluated up to {}",
                path.display(),
                pipeline.processed.len(),
                pipeline.watermark.map_or("-".into(), |w| w.to_rfc3339())
            ));
        }
    }
    let mut busy_polls = 0;
    while !stop.load(Ordering::Relaxed) {
        let inputs: Vec<Input> = discover(options.paths)
            .map_err(FollowError::Discover)?
            .into_iter()
            .filter(|i| {
                matches!(i, Input::File { path, .. }
                    if i.key().is_some_and(|k| !pipeline.processed.contains(&k)) && settled(path))
            })
            .collect();
        let read = pipeline
            .read(&inputs, None, options.strict, observer)
            .map_err(|e| FollowError::Strict(e.to_string()))?;
        if let Some((line, findings)) = read.late {
            log(&line);
            let step = pipeline.step(findings);
            emit(&step.findings, &step.incidents).map_err(FollowError::Output)?;
        }
        busy_polls = if read.inputs == 0 { 0 } else { busy_polls + 1 };
        let newest = stream_watermark(
            &mut clocks,
            &pipeline.engine.aggregates.streams,
            Instant::now(),
            options.stream_idle,
        );
        let advanced =
            newest > pipeline.watermark && (busy_polls == 0 || busy_polls >= MAX_BUSY_POLLS);
        if advanced {
            busy_polls = 0;
            let step = pipeline.advance(newest);
            for failure in &pipeline.engine.rcf.failures {
                log(&format!("warning: {failure}"));
            }
            emit(&step.findings, &step.incidents).map_err(FollowError::Output)?;
        }
        // Saved before it is said: what the log reports survives a stop.
        if read.inputs > 0 || advanced {
            if let Some(path) = options.state {
                save_state(path, &pipeline.save())?;
            }
        }
        if read.inputs > 0 {
            log(&format!(
                "read {} new inputs ({} events)",
                read.inputs, read.stats.records
            ));
        }
        if advanced {
            log(&format!(
                "evaluated up to {}",
                pipeline.watermark.map_or("-".into(), |w| w.to_rfc3339())
            ));
        }
        let mut slept = Duration::ZERO;
        while slept < options.poll && !stop.load(Ordering::Relaxed) {
            let step = Duration::from_millis(100).min(options.poll - slept);
            std::thread::sleep(step);
            slept += step;
        }
    }
    Ok(())
}
