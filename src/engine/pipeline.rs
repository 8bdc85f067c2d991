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
use super::group::{Incident, GAP_MINUTES};
use super::source::{aggregate_inputs, Observer};
use super::{severity, Checkpoint, Engine, EngineOptions, Findings, Severity};
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
    /// Where the engine's evaluation stands; a state saved without it
    /// (before) is resumed by evaluating its whole history again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Checkpoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paged: Vec<Paged>,
}

/// A [`SavedState`] as it is written, borrowing the pipeline's parts: a
/// save copies nothing (a copy of the aggregates doubled the engine's
/// memory at every save).
#[derive(Serialize)]
struct SavingState<'a> {
    version: u32,
    detectors: Vec<&'a str>,
    processed: &'a BTreeSet<String>,
    aggregates: &'a Aggregates,
    watermark: Option<DateTime<Utc>>,
    incidents: usize,
    engine: Option<Checkpoint>,
    #[serde(skip_serializing_if = "<[Paged]>::is_empty")]
    paged: &'a [Paged],
}

/// An incident that paged, kept for the steps after it: a later step's
/// incident about one of its subjects within the grouping gap continues
/// it, and pages again only above the severity it paged at. Without it an
/// incident that straddles two invocations (or two `--follow` looks)
/// pages in each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paged {
    pub subjects: Vec<String>,
    pub end: DateTime<Utc>,
    pub severity: Severity,
}

/// The saved state's format; another is refused, not misread.
pub const STATE_VERSION: u32 = 1;

/// Why a saved state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot parse the state: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("cannot decompress the state: {0}")]
    Gzip(std::io::Error),
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

/// The most a saved state may decompress to.
const STATE_MAX_BYTES: u64 = 1 << 30;

/// How long rule hits are kept after they were evaluated.
pub const HITS_KEPT: chrono::Duration = chrono::Duration::hours(6);

/// How much of the series and insight counts an incremental run keeps
/// behind what it evaluated: the insights' week of baseline and a failed
/// model's week of rebuild history ([`super::rcf::REBUILD_HISTORY`]
/// intervals of 10 minutes), and a day for late deliveries.
pub const HISTORY_KEPT: chrono::Duration = chrono::Duration::days(8);

/// How long the detail only findings read (event IDs, the access keys and
/// addresses of insight attributions) is kept behind what was evaluated:
/// a day covers late deliveries and an insight that goes on for hours.
pub const DETAIL_KEPT: chrono::Duration = chrono::Duration::days(1);

/// How long an input is remembered after its delivery time: SQS keeps a
/// message at most 14 days.
pub const INPUTS_KEPT: chrono::Duration = chrono::Duration::days(14);

/// When a delivery was written, from the stamp CloudTrail puts in its name
/// (`…_20260105T1005Z_…`); none for an input named otherwise.
pub fn delivered_at(key: &str) -> Option<DateTime<Utc>> {
    let name = key.rsplit('/').next()?;
    name.split('_').find_map(|part| {
        (part.len() == 14 && part.as_bytes()[8] == b'T' && part.ends_with('Z'))
            .then(|| chrono::NaiveDateTime::parse_from_str(part, "%Y%m%dT%H%MZ").ok())
            .flatten()
            .map(|t| t.and_utc())
    })
}

/// Findings of one step, and their incidents (numbered on from earlier).
#[derive(Debug, Default)]
pub struct Step {
    pub findings: Findings,
    pub incidents: Vec<Incident>,
    /// Findings of muted principals, dropped before grouping.
    pub muted: usize,
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
    /// The incidents that paged in the last [`GAP_MINUTES`] of steps.
    pub paged: Vec<Paged>,
    /// Principals whose findings are dropped ([`super::mute`]).
    pub mute: super::mute::Mute,
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
            paged: Vec::new(),
            mute: Default::default(),
        }
    }

    /// Resumes a new pipeline from a saved state: its models rebuilt by
    /// replaying the saved series up to where they were, reporting nothing;
    /// the other kinds go on from the saved checkpoint (a state without
    /// one evaluates its history again, reporting nothing).
    pub fn resume(&mut self, saved: &[u8]) -> Result<(), StateError> {
        // Gzipped since it is kept in a bucket; plain JSON as before too.
        let saved: SavedState = if saved.starts_with(&[0x1f, 0x8b]) {
            // Parsed as it is unzipped: the JSON (ten times the gzip) is
            // never held whole.
            use std::io::Read;
            let json = flate2::read::GzDecoder::new(saved).take(STATE_MAX_BYTES);
            serde_json::from_reader(std::io::BufReader::new(json)).map_err(|e| {
                if e.is_io() {
                    StateError::Gzip(e.into())
                } else {
                    StateError::from(e)
                }
            })?
        } else {
            serde_json::from_slice(saved)?
        };
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
        match saved.engine {
            Some(at) => self.engine.restore(at, saved.watermark),
            None => {
                self.engine.advance(saved.watermark);
            }
        }
        self.processed = saved.processed;
        self.watermark = saved.watermark;
        self.incidents = saved.incidents;
        self.paged = saved.paged;
        Ok(())
    }

    /// The state to resume from, as gzipped JSON (a tenth of the JSON; the
    /// fastest level, as it is written every invocation).
    pub fn save(&self) -> Vec<u8> {
        let state = SavingState {
            version: STATE_VERSION,
            detectors: (self.engine.detectors().iter())
                .map(|d| d.name.as_str())
                .collect(),
            processed: &self.processed,
            aggregates: &self.engine.aggregates,
            watermark: self.watermark,
            incidents: self.incidents,
            engine: Some(self.engine.checkpoint(self.engine.aggregates.history_from)),
            paged: &self.paged,
        };
        // Plain data with string keys into memory: encoding cannot fail.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        serde_json::to_writer(&mut gz, &state).unwrap_or_default();
        gz.finish().unwrap_or_default()
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
        if let Some(to) = to {
            self.watermark = Some(to);
            self.forget(to);
        }
        self.step(findings)
    }

    /// What an incremental run no longer needs, at watermark `to`: rule
    /// hits evaluated [`HITS_KEPT`] ago (a late delivery within that is
    /// still judged with them), series intervals and insight counts
    /// [`HISTORY_KEPT`] behind (what only findings read from them
    /// [`DETAIL_KEPT`] behind), and inputs delivered [`INPUTS_KEPT`] before
    /// it (a notification cannot come back later than that). Without it
    /// the state grows with every matched call, interval and delivery.
    fn forget(&mut self, to: DateTime<Utc>) {
        if let Some(until) = self.engine.evaluated_until {
            self.engine.forget_hits_before(until - HITS_KEPT);
            self.engine.forget_history_before(until - HISTORY_KEPT);
            self.engine.forget_detail_before(until - DETAIL_KEPT);
        }
        let horizon = to - INPUTS_KEPT;
        self.processed
            .retain(|key| delivered_at(key).is_none_or(|t| t >= horizon));
        let gap = chrono::Duration::minutes(GAP_MINUTES);
        let lateness = self.engine.lateness();
        self.paged.retain(|p| p.end + gap >= to - lateness);
    }

    /// Groups findings into incidents numbered on from earlier steps; one
    /// that continues an incident an earlier step paged pages only above
    /// the severity that one paged at.
    pub fn step(&mut self, mut findings: Findings) -> Step {
        let muted = self.mute.apply(&mut findings.anomalies);
        let mut incidents = severity::incidents(&mut findings.anomalies, self.page_at);
        let gap = chrono::Duration::minutes(GAP_MINUTES);
        for inc in &mut incidents {
            inc.id += self.incidents;
            let anomalies = &mut findings.anomalies;
            if !inc.members.iter().any(|&i| anomalies[i].page == Some(true)) {
                continue;
            }
            let severity = inc.severity(anomalies);
            let subjects: Vec<String> = (inc.members.iter())
                .flat_map(|&i| anomalies[i].subjects.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let continued = self.paged.iter_mut().find(|p| {
                p.end + gap >= inc.start && p.subjects.iter().any(|s| subjects.contains(s))
            });
            match continued {
                Some(p) => {
                    p.end = p.end.max(inc.end);
                    for s in subjects {
                        if !p.subjects.contains(&s) {
                            p.subjects.push(s);
                        }
                    }
                    if severity <= p.severity {
                        for &i in &inc.members {
                            anomalies[i].page = Some(false);
                        }
                    } else {
                        p.severity = severity;
                    }
                }
                None => self.paged.push(Paged {
                    subjects,
                    end: inc.end,
                    severity,
                }),
            }
        }
        for a in &mut findings.anomalies {
            a.incident = a.incident.map(|i| i + self.incidents);
        }
        self.incidents += incidents.len();
        Step {
            findings,
            incidents,
            muted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A delivery's time is the stamp CloudTrail puts in its name.
    #[test]
    fn a_delivery_is_dated_by_its_name() {
        let at = |k| delivered_at(k).map(|t| t.to_rfc3339());
        assert_eq!(
            at("s3://trail/AWSLogs/o-ab/111122223333/CloudTrail/us-east-1/2026/01/05/111122223333_CloudTrail_us-east-1_20260105T1005Z_Ab3.json.gz#e1"),
            Some("2026-01-05T10:05:00+00:00".into())
        );
        assert_eq!(at("/data/flaws_cloudtrail00.json.gz"), None);
        assert_eq!(at("-"), None);
    }

    /// The state is gzipped, and a plain JSON state saved before still
    /// resumes.
    #[test]
    fn the_state_is_gzipped_and_plain_json_still_resumes() {
        let detectors = crate::detector::shipped();
        let fresh = || Pipeline::new(&detectors, EngineOptions::all(), Severity::Medium);
        let mut p = fresh();
        p.processed.insert("a#1".into());
        let saved = p.save();
        assert_eq!(&saved[..2], &[0x1f, 0x8b]);
        let mut q = fresh();
        q.resume(&saved).unwrap();
        assert!(q.processed.contains("a#1"));
        let mut json = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&saved[..]), &mut json)
            .unwrap();
        let mut r = fresh();
        r.resume(&json).unwrap();
        assert!(r.processed.contains("a#1"));
        assert!(matches!(
            fresh().resume(&saved[..10]),
            Err(StateError::Gzip(_))
        ));
    }

    /// One delivery of `per_minute` write calls a minute by `user` from
    /// `from` for `minutes`, as an object in memory.
    fn delivery(
        name: &str,
        from: DateTime<Utc>,
        minutes: i64,
        (per_minute, user, ip): (i64, &str, &str),
    ) -> Input {
        let records: Vec<serde_json::Value> = (0..minutes * per_minute)
            .map(|n| {
                let m = n / per_minute;
                serde_json::json!({
                    "eventVersion": "1.08",
                    "eventTime": (from + chrono::Duration::minutes(m)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "eventSource": "ec2.amazonaws.com",
                    "eventName": "RunInstances",
                    "awsRegion": "eu-west-1",
                    "recipientAccountId": "111122223333",
                    "sourceIPAddress": ip,
                    "readOnly": false,
                    "managementEvent": true,
                    "eventCategory": "Management",
                    "eventID": format!("{name}-{n}"),
                    "userIdentity": {"type": "IAMUser", "accountId": "111122223333",
                        "arn": format!("arn:aws:iam::111122223333:user/{user}"),
                        "accessKeyId": format!("AKIA{}", user.to_uppercase())},
                    "requestParameters": {"instancesSet": {"items": [{"minCount": 1}]}},
                })
            })
            .collect();
        let json = serde_json::json!({ "Records": records }).to_string();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, json.as_bytes()).unwrap();
        Input::Object {
            name: format!("s3://trail/{name}"),
            version: "e1".into(),
            bytes: gz.finish().unwrap().into(),
        }
    }

    /// An incremental run keeps [`HISTORY_KEPT`] of series and insight
    /// counts behind what it evaluated, so its state stops growing; a
    /// pipeline resumed from it each day (its models learning what is
    /// kept, the rest going on from the checkpoint) finds what the one
    /// that ran throughout finds, and neither evaluates the forgotten
    /// days again.
    #[test]
    fn an_incremental_run_forgets_old_history_and_resumes_from_its_checkpoint() {
        let detectors = crate::detector::shipped();
        let fresh = || Pipeline::new(&detectors, EngineOptions::all(), Severity::Medium);
        let quiet = Observer {
            problem: &|_| {},
            progress: &|_| {},
        };
        let start: DateTime<Utc> = "2026-01-05T00:00:00Z".parse().unwrap();
        let (mut warm, mut saved) = (fresh(), None::<Vec<u8>>);
        let mut sizes = Vec::new();
        for day in 0..11 {
            let from = start + chrono::Duration::days(day);
            // Every hour, a burst of one call a minute for 20 minutes; on
            // the last two days a newcomer's run of 200 a minute.
            let mut inputs: Vec<Input> = (0..24)
                .map(|h| {
                    let at = from + chrono::Duration::hours(h);
                    delivery(&format!("d{day}h{h}"), at, 20, (1, "ci", "198.51.100.7"))
                })
                .collect();
            if day >= 9 {
                let at = from + chrono::Duration::hours(3) + chrono::Duration::minutes(30);
                let intruder = (200, "intruder", "203.0.113.9");
                inputs.push(delivery(&format!("d{day}x"), at, 15, intruder));
            }
            let to = Some(from + chrono::Duration::days(1));
            warm.read(&inputs, None, false, &quiet).unwrap();
            let found = warm.advance(to).findings.anomalies;
            let mut cold = fresh();
            if let Some(bytes) = &saved {
                cold.resume(bytes).unwrap();
            }
            cold.read(&inputs, None, false, &quiet).unwrap();
            let again = cold.advance(to).findings.anomalies;
            let keys = |a: &[crate::engine::Anomaly]| -> Vec<String> {
                a.iter()
                    .filter(|a| a.kind != crate::engine::AnomalyKind::Rcf)
                    .map(super::super::report_key)
                    .collect()
            };
            assert_eq!(keys(&again), keys(&found), "day {day}");
            if day == 9 {
                assert!(
                    !keys(&found).is_empty(),
                    "day {day}: the newcomer was not found"
                );
            }
            let bytes = cold.save();
            sizes.push(bytes.len());
            saved = Some(bytes);
        }
        let kept_from = warm.engine.aggregates.history_from.unwrap();
        assert_eq!(
            kept_from,
            warm.engine.evaluated_until.unwrap() - HISTORY_KEPT
        );
        let earliest_minute = (warm.engine.aggregates.insights.keys.values())
            .filter_map(|k| k.minutes.keys().next())
            .min()
            .copied()
            .unwrap();
        assert!(earliest_minute >= kept_from.timestamp() / 60);
        for agg in &warm.engine.aggregates.detectors {
            for series in agg.series.values() {
                let first = series.keys().next().copied().unwrap_or(i64::MAX);
                assert!(first >= kept_from.timestamp() / 600, "{first}");
            }
        }
        // Event IDs, and the keys and addresses of insight attributions,
        // are kept for the last day alone; the counts for the whole week.
        let detail_from = warm.engine.aggregates.detail_from.unwrap();
        assert_eq!(
            detail_from,
            warm.engine.evaluated_until.unwrap() - DETAIL_KEPT
        );
        for agg in &warm.engine.aggregates.detectors {
            for (bucket, b) in agg.series.values().flatten() {
                let old = (bucket + 1) * 600 <= detail_from.timestamp();
                assert_eq!(b.facets.event_ids.is_empty(), old, "{bucket}");
                assert!(b.facets.events > 0.0);
            }
        }
        let attributions = (warm.engine.aggregates.insights.keys.values())
            .flat_map(|k| &k.attributions)
            .filter(|(_, [calls, _])| calls.events > 0.0);
        let (mut old, mut recent) = (0, 0);
        for (ten, [calls, _]) in attributions {
            let keys = calls.values.contains_key(&crate::context::Facet::AccessKey);
            if (ten + 1) * 600 <= detail_from.timestamp() {
                old += 1;
                assert!(!keys && calls.event_ids.is_empty(), "{ten}");
                assert!(calls.values.contains_key(&crate::context::Facet::Principal));
            } else {
                recent += 1;
                assert!(keys && !calls.event_ids.is_empty(), "{ten}");
            }
        }
        assert!(old > 0 && recent > 0, "{old} {recent}");
        // A day's worth more each day until the ninth; then the two last
        // days, the newcomer's run included, add less than one did.
        let day = |d: usize| sizes[d] as i64 - sizes[d - 1] as i64;
        assert!((1..8).all(|d| day(d) > 1000), "{sizes:?}");
        assert!(day(9) + day(10) < day(2), "{sizes:?}");
    }

    /// An incident that straddles two steps (two invocations, two looks of
    /// `--follow`) pages once; someone else's pages, and so does the same
    /// principal's after the grouping gap; the paged incidents are saved.
    #[test]
    fn an_incident_straddling_two_steps_pages_once() {
        use crate::engine::{Anomaly, AnomalyKind};
        let detectors = crate::detector::shipped();
        let fresh = || Pipeline::new(&detectors, EngineOptions::all(), Severity::Low);
        let mut p = fresh();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let step = |p: &mut Pipeline, found: Vec<Anomaly>| {
            let s = p.step(Findings {
                anomalies: found,
                insights: Vec::new(),
            });
            (s.incidents.iter())
                .map(|i| {
                    i.members
                        .iter()
                        .any(|&m| s.findings.anomalies[m].page == Some(true))
                })
                .collect::<Vec<bool>>()
        };
        let mallory = "arn:aws:iam::111122223333:user/mallory";
        let rule = |who: &str, at: &str| Anomaly::sample(AnomalyKind::Rule, who, t(at));
        assert_eq!(
            step(&mut p, vec![rule(mallory, "2026-01-05T03:00:00Z")]),
            [true]
        );
        // The next step: mallory again 15 minutes on, and someone else.
        let next = vec![
            rule(mallory, "2026-01-05T03:25:00Z"),
            rule(
                "arn:aws:iam::111122223333:user/trent",
                "2026-01-05T03:25:00Z",
            ),
        ];
        assert_eq!(step(&mut p, next), [false, true]);
        // Saved and resumed, the incident is still known...
        let mut q = fresh();
        q.resume(&p.save()).unwrap();
        assert_eq!(q.paged, p.paged);
        assert_eq!(
            step(&mut q, vec![rule(mallory, "2026-01-05T03:50:00Z")]),
            [false]
        );
        // ...until the gap passes.
        assert_eq!(
            step(&mut q, vec![rule(mallory, "2026-01-05T05:00:00Z")]),
            [true]
        );
    }
}
