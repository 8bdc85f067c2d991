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

use super::aggregate::{Aggregates, InputSpan};
use super::group::Incident;
use super::severity;
use super::source::{aggregate_inputs, Observer};
use super::{Engine, Findings};
use crate::cloudtrail::{discover, Input};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
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
    #[error(
        "{0}: the state was saved for other detectors ({1}); use another --state file or remove it"
    )]
    OtherDetectors(PathBuf, String),
    #[error("stopped at the first problem (--strict): {0}")]
    Strict(String),
    #[error("cannot write the results: {0}")]
    Output(#[source] std::io::Error),
}

/// What is kept between runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedState {
    pub version: u32,
    pub detectors: Vec<String>,
    pub processed: BTreeSet<PathBuf>,
    pub aggregates: Aggregates,
    /// The event time up to which everything was evaluated.
    pub watermark: Option<DateTime<Utc>>,
    pub incidents: usize,
}

const STATE_VERSION: u32 = 1;

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

/// Loads a saved state, or `None` when the file does not exist.
pub fn load_state(path: &Path) -> Result<Option<SavedState>, FollowError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FollowError::State {
                path: path.into(),
                action: "read",
                source,
            })
        }
    };
    let state: SavedState = serde_json::from_slice(&text).map_err(|e| FollowError::State {
        path: path.into(),
        action: "parse",
        source: e.into(),
    })?;
    if state.version != STATE_VERSION {
        let e = std::io::Error::other(format!("version {} is not {STATE_VERSION}", state.version));
        return Err(FollowError::State {
            path: path.into(),
            action: "use",
            source: e,
        });
    }
    Ok(Some(state))
}

fn save_state(path: &Path, state: &SavedState) -> Result<(), FollowError> {
    let io = |action, source| FollowError::State {
        path: path.into(),
        action,
        source,
    };
    let aside = path.with_extension("tmp");
    let bytes = serde_json::to_vec(state).map_err(|e| io("encode", e.into()))?;
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
    /// Incidents at or above this page.
    pub page_at: super::Severity,
}

/// Inputs named one by one in a line about late deliveries.
const LATE_NAMED: usize = 5;

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

/// The line about inputs whose events lie before `horizon`, or None.
fn late_line(
    spans: &[InputSpan],
    horizon: Option<DateTime<Utc>>,
) -> Option<(String, DateTime<Utc>)> {
    let horizon = horizon?;
    let mut late: Vec<&InputSpan> = spans.iter().filter(|s| s.first < horizon).collect();
    if late.is_empty() {
        return None;
    }
    late.sort_by_key(|s| s.first);
    let earliest = late[0].first;
    let named: Vec<String> = late
        .iter()
        .take(LATE_NAMED)
        .map(|s| format!("{} ({} late)", s.name, super::span_text(horizon - s.first)))
        .collect();
    let more = late.len().saturating_sub(LATE_NAMED);
    Some((
        format!(
            "late: {} input(s) hold events from before what was evaluated ({}): {}{}; insights and new activity look at them again, RCF intervals already scored do not",
            late.len(),
            horizon.to_rfc3339(),
            named.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ),
        earliest,
    ))
}

/// Follows until `stop` is set. `emit` gets each poll's findings and their
/// incidents (numbered on from earlier polls); `log` gets a line per poll.
pub fn follow(
    engine: &mut Engine<'_>,
    options: &FollowOptions<'_>,
    observer: &Observer<'_>,
    emit: &mut dyn FnMut(&Findings, &[Incident]) -> std::io::Result<()>,
    log: &mut dyn FnMut(&str),
    stop: &AtomicBool,
) -> Result<(), FollowError> {
    let names: Vec<String> = engine.detectors().iter().map(|d| d.name.clone()).collect();
    let mut processed = BTreeSet::new();
    let mut incidents_so_far = 0;
    let mut watermark = None;
    let mut clocks = StreamClocks::new();
    if let Some(path) = options.state {
        if let Some(saved) = load_state(path)? {
            if saved.detectors != names {
                return Err(FollowError::OtherDetectors(
                    path.into(),
                    saved.detectors.join(", "),
                ));
            }
            // Streams of the saved state are idle until they deliver again.
            for (stream, t) in &saved.aggregates.streams {
                clocks.insert(stream.clone(), (*t, None));
            }
            engine.ingest(saved.aggregates);
            // Replay: rebuild the models up to where they were; report nothing.
            engine.advance(saved.watermark);
            processed = saved.processed;
            incidents_so_far = saved.incidents;
            watermark = saved.watermark;
            log(&format!(
                "resumed from {}: {} inputs already read, evaluated up to {}",
                path.display(),
                processed.len(),
                watermark.map_or("-".into(), |w| w.to_rfc3339())
            ));
        }
    }
    let mut busy_polls = 0;
    while !stop.load(Ordering::Relaxed) {
        let inputs: Vec<Input> = discover(options.paths)
            .map_err(FollowError::Discover)?
            .into_iter()
            .filter(|i| matches!(i, Input::File { path, .. } if !processed.contains(path) && settled(path)))
            .collect();
        let mut events = 0;
        let mut report = |mut findings: Findings| {
            let mut incidents = severity::incidents(&mut findings.anomalies, options.page_at);
            for inc in &mut incidents {
                inc.id += incidents_so_far;
            }
            for a in &mut findings.anomalies {
                a.incident = a.incident.map(|i| i + incidents_so_far);
            }
            incidents_so_far += incidents.len();
            emit(&findings, &incidents).map_err(FollowError::Output)
        };
        if !inputs.is_empty() {
            let (mut aggregates, stats) = aggregate_inputs(
                &inputs,
                engine.detectors(),
                None,
                engine.options.tracking(),
                options.strict,
                observer,
            )
            .map_err(|e| FollowError::Strict(e.to_string()))?;
            events = stats.records;
            let spans = std::mem::take(&mut aggregates.inputs);
            let late = late_line(&spans, engine.evaluated_until);
            engine.ingest(aggregates);
            if let Some((line, earliest)) = late {
                log(&line);
                let findings = engine.catch_up(earliest);
                report(findings)?;
            }
            processed.extend(inputs.iter().filter_map(|i| match i {
                Input::File { path, .. } => Some(path.clone()),
                Input::Stdin | Input::Search(_) => None,
            }));
        }
        busy_polls = if inputs.is_empty() { 0 } else { busy_polls + 1 };
        let newest = stream_watermark(
            &mut clocks,
            &engine.aggregates.streams,
            Instant::now(),
            options.stream_idle,
        );
        let advanced = newest > watermark && (busy_polls == 0 || busy_polls >= MAX_BUSY_POLLS);
        if advanced {
            busy_polls = 0;
            watermark = newest;
            let findings = engine.advance(watermark);
            for failure in &engine.rcf.failures {
                log(&format!("warning: {failure}"));
            }
            report(findings)?;
        }
        if !inputs.is_empty() {
            log(&format!(
                "read {} new inputs ({events} events)",
                inputs.len()
            ));
        }
        if advanced {
            log(&format!(
                "evaluated up to {}",
                watermark.map_or("-".into(), |w| w.to_rfc3339())
            ));
        }
        if !inputs.is_empty() || advanced {
            if let Some(path) = options.state {
                let state = SavedState {
                    version: STATE_VERSION,
                    detectors: names.clone(),
                    processed: processed.clone(),
                    aggregates: engine.aggregates.clone(),
                    watermark,
                    incidents: incidents_so_far,
                };
                save_state(path, &state)?;
            }
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
