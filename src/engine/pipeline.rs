//! The detection pipeline, the one entry point every driver calls: `detect`
//! (files, once), `--follow` (a polled folder) and the engine Lambda (S3
//! notifications). Inputs and state in; findings, incidents and state out.
//!
//! A [`Pipeline`] holds the [`Engine`] and what a driver must keep between
//! calls: the inputs already read (by name and version, so a delivery seen
//! twice is read once), how far the engine evaluated, and how many
//! incidents were numbered. [`Pipeline::read`] aggregates new inputs and
//! reports what a late one brings; [`Pipeline::advance`] evaluates up to a
//! watermark and groups the findings into incidents numbered on from the
//! earlier calls. [`Pipeline::save`] and [`Pipeline::resume`] carry it
//! across processes: a resumed pipeline rebuilds its models by replaying
//! the saved series and reports nothing found before.

use super::aggregate::{Aggregates, InputSpan};
use super::group::Incident;
use super::source::{aggregate_inputs, Observer};
use super::{severity, Engine, EngineOptions, Findings, Severity};
use crate::cloudtrail::{Input, ReadError, ReadStats};
use crate::detector::Detector;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What is kept between runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedState {
    pub version: u32,
    pub detectors: Vec<String>,
    /// The inputs read: a file's path, or an object's `s3://bucket/key`
    /// with its version (`#etag`).
    pub processed: BTreeSet<String>,
    pub aggregates: Aggregates,
    /// The event time up to which everything was evaluated.
    pub watermark: Option<DateTime<Utc>>,
    pub incidents: usize,
}

/// The saved state's format; another is refused, not misread.
pub const STATE_VERSION: u32 = 1;

/// Why a saved state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot parse the state: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("the state is version {0}, not {STATE_VERSION}; start from a new state")]
    Version(u32),
    #[error("the state was saved for other detectors ({0}); use another state or remove it")]
    OtherDetectors(String),
}

/// What one call of [`Pipeline::read`] did.
#[derive(Debug, Default)]
pub struct Read {
    pub stats: ReadStats,
    /// Inputs read now.
    pub inputs: usize,
    /// Inputs skipped as read before (the same name and version).
    pub seen: usize,
    /// A line about inputs holding events from before what was evaluated,
    /// and what looking at that span again found.
    pub late: Option<(String, Findings)>,
}

/// Findings of one step, and their incidents (numbered on from earlier).
#[derive(Debug, Default)]
pub struct Step {
    pub findings: Findings,
    pub incidents: Vec<Incident>,
}

/// The engine and what a driver keeps between calls.
pub struct Pipeline<'d> {
    pub engine: Engine<'d>,
    /// The inputs read, by [`Input::key`].
    pub processed: BTreeSet<String>,
    /// How far the engine evaluated.
    pub watermark: Option<DateTime<Utc>>,
    /// Incidents numbered so far.
    pub incidents: usize,
    /// Incidents at or above this page.
    pub page_at: Severity,
}

/// Inputs named one by one in a line about late deliveries.
const LATE_NAMED: usize = 5;

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

impl<'d> Pipeline<'d> {
    pub fn new(detectors: &'d [Detector], options: EngineOptions, page_at: Severity) -> Self {
        Pipeline {
            engine: Engine::new(detectors, options),
            processed: BTreeSet::new(),
            watermark: None,
            incidents: 0,
            page_at,
        }
    }

    /// Resumes a new pipeline from a saved state: its models rebuilt by
    /// replaying the saved series up to where they were, reporting nothing.
    pub fn resume(&mut self, saved: &[u8]) -> Result<(), StateError> {
        let saved: SavedState = serde_json::from_slice(saved)?;
        if saved.version != STATE_VERSION {
            return Err(StateError::Version(saved.version));
        }
        let names: Vec<String> = self
            .engine
            .detectors()
            .iter()
            .map(|d| d.name.clone())
            .collect();
        if saved.detectors != names {
            return Err(StateError::OtherDetectors(saved.detectors.join(", ")));
        }
        self.engine.ingest(saved.aggregates);
        self.engine.advance(saved.watermark);
        self.processed = saved.processed;
        self.watermark = saved.watermark;
        self.incidents = saved.incidents;
        Ok(())
    }

    /// The state to resume from, as bytes.
    pub fn save(&self) -> Vec<u8> {
        let state = SavedState {
            version: STATE_VERSION,
            detectors: self
                .engine
                .detectors()
                .iter()
                .map(|d| d.name.clone())
                .collect(),
            processed: self.processed.clone(),
            aggregates: self.engine.aggregates.clone(),
            watermark: self.watermark,
            incidents: self.incidents,
        };
        // Plain data with string keys: encoding cannot fail.
        serde_json::to_vec(&state).unwrap_or_default()
    }

    /// Reads the inputs not read before (by name and version), ingests
    /// them, and looks again at the span a late one holds. With `strict`,
    /// the first problem is the error.
    pub fn read(
        &mut self,
        inputs: &[Input],
        until: Option<DateTime<Utc>>,
        strict: bool,
        observer: &Observer<'_>,
    ) -> Result<Read, Box<ReadError>> {
        let fresh: Vec<&Input> = inputs
            .iter()
            .filter(|i| i.key().is_none_or(|k| !self.processed.contains(&k)))
            .collect();
        let mut read = Read {
            seen: inputs.len() - fresh.len(),
            inputs: fresh.len(),
            ..Read::default()
        };
        if fresh.is_empty() {
            return Ok(read);
        }
        let owned: Vec<Input> = fresh.iter().map(|i| (*i).clone()).collect();
        let (mut aggregates, stats) = aggregate_inputs(
            &owned,
            self.engine.detectors(),
            until,
            self.engine.options.tracking(),
            strict,
            observer,
        )?;
        read.stats = stats;
        let spans = std::mem::take(&mut aggregates.inputs);
        let late = late_line(&spans, self.engine.evaluated_until);
        self.engine.ingest(aggregates);
        if let Some((line, earliest)) = late {
            let findings = self.engine.catch_up(earliest);
            read.late = Some((line, findings));
        }
        self.processed.extend(owned.iter().filter_map(Input::key));
        Ok(read)
    }

    /// Evaluates up to `to` (everything with None), and numbers the
    /// incidents on from earlier steps.
    pub fn advance(&mut self, to: Option<DateTime<Utc>>) -> Step {
        let findings = self.engine.advance(to);
        if to.is_some() {
            self.watermark = to;
        }
        self.step(findings)
    }

    /// Groups findings into incidents numbered on from earlier steps.
    pub fn step(&mut self, mut findings: Findings) -> Step {
        let mut incidents = severity::incidents(&mut findings.anomalies, self.page_at);
        for inc in &mut incidents {
            inc.id += self.incidents;
        }
        for a in &mut findings.anomalies {
            a.incident = a.incident.map(|i| i + self.incidents);
        }
        self.incidents += incidents.len();
        Step {
            findings,
            incidents,
        }
    }
}
