//! Local detection: the same model as OpenSearch anomaly detection, plus
//! CloudTrail-Insights-style rates and never-seen-before activity.
//!
//! The pipeline, in vector's terms:
//! - source ([`source`]): read inputs in parallel, each record offered to an
//!   [`Aggregator`];
//! - transform ([`aggregate`]): per detector and entity, one value per interval
//!   with the facet counts that become context; per principal, what it has
//!   done ([`novelty`]); per API, calls and errors a minute ([`insights`]).
//!   Aggregation is order-independent and mergeable, so files decode on all
//!   cores and memory grows with intervals × entities, not with events;
//! - the [`Engine`] holds the aggregates and advances a watermark: detector
//!   series through their RCF models ([`rcf_state`]), insights against the
//!   seasonal baseline, new activity after the learning period, rule
//!   matches ([`rules`]) at the minute they happened. A one-shot run
//!   advances once to the end; `--follow` advances as deliveries arrive;
//!   every driver goes through one entry point, the [`pipeline`] (inputs
//!   and state in; findings, incidents and state out);
//! - related anomalies are grouped into incidents ([`group`]), each with a
//!   severity that says whether it pages ([`severity`]);
//! - sinks ([`sink`], [`report`]): table, JSON, NDJSON, an HTML report.

pub mod advice;
pub mod aggregate;
pub mod anomaly;
pub mod calibration;
pub mod chance;
pub mod correlate;
pub mod early;
pub mod follow;
pub mod group;
pub mod headline;
pub mod insights;
pub mod mute;
pub mod novelty;
pub mod ocsf;
pub mod pipeline;
pub mod plain_series;
pub mod plausible;
pub mod rcf;
pub mod rcf_state;
pub mod report;
pub mod rules;
pub mod severity;
pub mod sink;
pub mod source;

pub use aggregate::{Aggregates, Aggregator, History};
pub use anomaly::{Anomaly, AnomalyKind, Severity};

use crate::detector::{Detector, Rule};
use chrono::{DateTime, Duration, Utc};
use insights::{Insight, InsightOptions};
use novelty::NoveltyOptions;
use rcf_state::{RcfState, ScorerFactory};

/// What the engine looks for, and how.
pub struct EngineOptions {
    /// Anomalies before this only train (resolved to a time).
    pub since: Option<DateTime<Utc>>,
    /// Most entities modelled per high-cardinality detector.
    pub max_entities: usize,
    pub rcf: bool,
    pub insights: Option<InsightOptions>,
    pub novelty: Option<NoveltyOptions>,
    /// Rules every record is offered to; empty, none.
    pub rules: Vec<Rule>,
    /// The organisation's accounts besides those seen in the trail
    /// (`--org-accounts`).
    pub org_accounts: Vec<String>,
    /// How long an account learns before its principals' habits are known
    /// (`--learning`): new activity's learning, and the rules' `habitual`.
    pub learning: Duration,
    pub factory: Box<ScorerFactory>,
}

impl EngineOptions {
    /// The counters aggregation must keep for these options.
    pub fn tracking(&self) -> aggregate::Tracking<'_> {
        aggregate::Tracking {
            // Habits come from the history new activity keeps: kept for
            // rules that judge by habit even when new activity is not
            // reported.
            novelty: self.novelty.is_some() || self.rules.iter().any(|r| r.habitual.is_some()),
            insights: self.insights.is_some(),
            rules: &self.rules,
        }
    }

    /// Every kind, with the defaults.
    pub fn all() -> Self {
        EngineOptions {
            since: None,
            max_entities: 1000,
            rcf: true,
            insights: Some(InsightOptions::default()),
            novelty: Some(NoveltyOptions {
                learning: Duration::days(1),
                min_grade: chance::THRESHOLD_GRADE,
                interval: Duration::minutes(10),
                budget_per_day: chance::DEFAULT_BUDGET_PER_DAY,
            }),
            rules: crate::detector::shipped_rules(),
            org_accounts: Vec::new(),
            learning: Duration::days(1),
            factory: Box::new(rcf_state::rcf_factory),
        }
    }
}

/// A span as people say it: `55 minutes`, `5 h 20 min`, `1 day`, `3 days`.
pub fn span_text(d: Duration) -> String {
    let minutes = d.num_minutes();
    match minutes {
        m if m < 60 => format!("{m} minute{}", if m == 1 { "" } else { "s" }),
        m if m % 1440 == 0 => {
            let days = m / 1440;
            format!("{days} day{}", if days == 1 { "" } else { "s" })
        }
        m if m < 2 * 1440 => match m % 60 {
            0 => format!("{} h", m / 60),
            r => format!("{} h {r} min", m / 60),
        },
        m => format!("{:.1} days", m as f64 / 1440.0),
    }
}

/// What one advance found.
#[derive(Debug, Default)]
pub struct Findings {
    pub anomalies: Vec<Anomaly>,
    pub insights: Vec<Insight>,
}

/// The detection state: aggregates so far, the RCF models, and how far
/// evaluation has got.
pub struct Engine<'d> {
    detectors: &'d [Detector],
    pub options: EngineOptions,
    pub aggregates: Aggregates,
    pub rcf: RcfState,
    /// Everything before this has been evaluated.
    pub evaluated_until: Option<DateTime<Utc>>,
    /// Every finding reported so far ([`report_key`]), so a late delivery's
    /// second look reports only what is new.
    reported: std::collections::HashSet<String>,
    /// The earliest start of the insights still running where the last
    /// evaluation stopped: the next one looks for insights from there, so
    /// a running insight comes back whole (the first report was partial).
    insights_from: Option<DateTime<Utc>>,
}

impl<'d> Engine<'d> {
    pub fn new(detectors: &'d [Detector], options: EngineOptions) -> Self {
        Engine {
            detectors,
            options,
            aggregates: Aggregates::empty(detectors),
            rcf: RcfState::default(),
            evaluated_until: None,
            reported: Default::default(),
            insights_from: None,
        }
    }

    pub fn detectors(&self) -> &'d [Detector] {
        self.detectors
    }

    /// How long to wait for late deliveries: the detectors' largest window
    /// delay, or ten minutes without detectors.
    pub fn lateness(&self) -> Duration {
        self.detectors
            .iter()
            .map(|d| d.window_delay)
            .max()
            .and_then(|d| Duration::from_std(d).ok())
            .unwrap_or(Duration::minutes(10))
    }

    /// How often each kind's findings in `anomalies` reached a grade, a day
    /// ([`calibration::by_kind`]), from `--since` if given; empty before any
    /// event.
    pub fn calibration(&self, anomalies: &[Anomaly]) -> Vec<calibration::KindRates> {
        let a = &self.aggregates;
        let (Some(first), Some(last)) = (a.first_event, a.last_event) else {
            return Vec::new();
        };
        let learning = self.options.learning;
        // Findings before --since are not reported, so they are not counted.
        let since = self.options.since.unwrap_or(first);
        calibration::by_kind(
            anomalies,
            first.max(since),
            (first + learning).max(since),
            last,
        )
    }

    /// The daily chance-alarm budget of each insight type (the default when
    /// insights are off): what [`calibration::budget_rates`] compares with.
    pub fn budget_per_day(&self) -> f64 {
        self.options
            .insights
            .as_ref()
            .map_or(InsightOptions::default().budget_per_day, |o| {
                o.budget_per_day
            })
    }

    /// Why a kind could not report anything on this data, one line per kind
    /// that lacked history: too few intervals for a model, less than the
    /// seasonal baseline, or still learning. Empty when every kind had
    /// enough to report.
    pub fn too_thin(&self) -> Vec<String> {
        let (Some(first), Some(last)) = (self.aggregates.first_event, self.aggregates.last_event)
        else {
            return Vec::new();
        };
        let a = &self.aggregates;
        // Several streams: each is explained on its own (its history
        // starts when it started delivering).
        if a.stream_first.len() > 1 {
            let mut out = Vec::new();
            for (stream, first) in &a.stream_first {
                let last = a.streams.get(stream).copied().unwrap_or(*first);
                out.extend(self.too_thin_over(last - *first).into_iter().map(|why| {
                    match why.split_once(": ") {
                        Some((kind, rest)) => format!("{kind}: {stream}: {rest}"),
                        None => why,
                    }
                }));
            }
            return out;
        }
        self.too_thin_over(last - first)
    }

    /// [`too_thin`](Self::too_thin) for one span of data.
    fn too_thin_over(&self, span: Duration) -> Vec<String> {
        let have = format!("{} of data", span_text(span));
        let mut out = Vec::new();
        if self.options.rcf {
            // Every model needs `output_after` intervals before it reports.
            if let Some(d) = self.detectors.iter().min_by_key(|d| d.interval) {
                let interval = Duration::from_std(d.interval).unwrap_or(Duration::minutes(10));
                let needed = interval * rcf::OUTPUT_AFTER as i32;
                if span + interval < needed {
                    out.push(format!(
                        "rcf: {have}; a model reports after {} intervals ({} at {}-minute intervals)",
                        rcf::OUTPUT_AFTER,
                        span_text(needed),
                        interval.num_minutes()
                    ));
                }
            }
        }
        if let Some(opts) = &self.options.insights {
            if span < opts.min_baseline {
                out.push(format!(
                    "insight: {have}; needs {} of history as its baseline",
                    span_text(opts.min_baseline)
                ));
            }
        }
        if let Some(opts) = &self.options.novelty {
            if span < opts.learning {
                out.push(format!(
                    "new activity: {have}; learning for the first {} (--learning)",
                    span_text(opts.learning)
                ));
            }
        }
        out
    }

    pub fn ingest(&mut self, more: Aggregates) {
        self.aggregates.merge(more);
    }

    /// Scores the RCF models up to what has closed by `watermark` (each
    /// detector waits its window delay; everything with `None`), leaving
    /// out findings reported before.
    fn advance_models(&mut self, watermark: Option<DateTime<Utc>>) -> Vec<Anomaly> {
        let Some(last) = self.aggregates.last_event else {
            return Vec::new();
        };
        let upto = |d: &Detector| {
            let secs = d.interval.as_secs() as i64;
            match watermark {
                None => aggregate::bucket_of(last, secs) + 1,
                Some(w) => {
                    let delay = Duration::from_std(d.window_delay).unwrap_or_default();
                    (w - delay).timestamp().div_euclid(secs)
                }
            }
        };
        let mut anomalies = self.rcf.advance(
            self.detectors,
            &self.aggregates,
            &upto,
            self.options.since,
            self.options.max_entities,
            self.options.factory.as_ref(),
        );
        // An open interval's partial findings come back at each advance
        // while it fills: each is reported once.
        anomalies.retain(|a| !self.reported.contains(&report_key(a)));
        anomalies
    }

    /// Evaluates what has closed by `watermark` (event time; each detector
    /// also waits its window delay), or everything when `None` (end of input).
    pub fn advance(&mut self, watermark: Option<DateTime<Utc>>) -> Findings {
        let (Some(first), Some(last)) = (self.aggregates.first_event, self.aggregates.last_event)
        else {
            return Findings::default();
        };
        let mut findings = Findings::default();
        if self.options.rcf {
            findings.anomalies = self.advance_models(watermark);
        }
        let from = self.evaluated_until.unwrap_or(first);
        // Deliveries from different accounts and regions arrive out of order:
        // evaluate the other kinds only as far as the detectors wait too.
        let to = match watermark {
            None => last + Duration::seconds(1),
            Some(w) => w - self.lateness(),
        };
        if from < to {
            let insights_from = self.insights_from.map_or(from, |r| r.min(from));
            let mut others = self.others(first, (from, insights_from), to);
            // Insights that may still be running are partial while more
            // data can come (not at the end of the input).
            self.insights_from = None;
            if watermark.is_some() {
                for i in others
                    .insights
                    .iter()
                    .filter(|i| insights::running(i.end, to))
                {
                    self.insights_from =
                        Some(self.insights_from.map_or(i.start, |r| r.min(i.start)));
                }
                for a in &mut others.anomalies {
                    a.partial |= a.kind == AnomalyKind::Insight && insights::running(a.end, to);
                }
            }
            // Looked for again from a running insight's start: what was
            // reported whole before is not reported again.
            others.anomalies.retain(|a| {
                a.kind != AnomalyKind::Insight || !self.reported.contains(&report_key(a))
            });
            others
                .insights
                .retain(|i| !self.reported.contains(&report_key(&i.to_anomaly())));
            findings.anomalies.extend(others.anomalies);
            findings.insights = others.insights;
            self.evaluated_until = Some(to);
        }
        self.finish(findings)
    }

    /// Where evaluation stands, for a resumed engine to go on from without
    /// evaluating the history again: how far it got, where a running
    /// insight started, and what was reported from `horizon` on (a
    /// finding that starts before it cannot be found again).
    pub fn checkpoint(&self, horizon: Option<DateTime<Utc>>) -> Checkpoint {
        let mut reported: Vec<String> = self
            .reported
            .iter()
            .filter(|k| horizon.is_none_or(|h| report_start(k).is_none_or(|s| s >= h.timestamp())))
            .cloned()
            .collect();
        reported.sort();
        Checkpoint {
            evaluated_until: self.evaluated_until,
            insights_from: self.insights_from,
            reported,
        }
    }

    /// Goes on from a checkpoint at `watermark`, the aggregates ingested:
    /// the models learn the series kept up to where they were scored, and
    /// nothing else is evaluated again.
    pub fn restore(&mut self, at: Checkpoint, watermark: Option<DateTime<Utc>>) {
        self.reported = at.reported.into_iter().collect();
        if self.options.rcf {
            self.advance_models(watermark);
        }
        self.evaluated_until = at.evaluated_until;
        self.insights_from = at.insights_from;
    }

    /// Forgets the series' intervals and insight counts before `before`
    /// ([`Aggregates::forget_before`]), and what was reported of findings
    /// that start before it (as a checkpoint keeps it), for the drivers
    /// that evaluate as data arrives: their models learnt them already.
    pub fn forget_history_before(&mut self, before: DateTime<Utc>) {
        self.aggregates.forget_before(before, self.detectors);
        let from = before.timestamp();
        self.reported
            .retain(|k| report_start(k).is_none_or(|s| s >= from));
    }

    /// Forgets what only findings read from the intervals before `before`
    /// ([`aggregate::Aggregates::forget_detail_before`]).
    pub fn forget_detail_before(&mut self, before: DateTime<Utc>) {
        self.aggregates.forget_detail_before(before, self.detectors);
    }

    /// Forgets rule hits before `before` that no evaluation needs again:
    /// a correlation's are kept its timespan longer. For the drivers that
    /// evaluate as data arrives (`--follow`, the engine Lambda), whose
    /// state would otherwise grow with every call a noisy rule matches.
    pub fn forget_hits_before(&mut self, before: DateTime<Utc>) {
        let mut windows: std::collections::HashMap<&str, Duration> =
            std::collections::HashMap::new();
        for c in self
            .options
            .rules
            .iter()
            .filter_map(|r| r.correlation.as_ref())
        {
            for named in &c.rules {
                let w = windows.entry(named.as_str()).or_default();
                *w = (*w).max(c.timespan);
            }
        }
        self.aggregates.rules.forget_before(before, &windows);
    }

    /// Evaluates rules, insights and new activity again from `from` up to
    /// where they had got, after deliveries arrived late (their events lie before it):
    /// what that finds and was not reported before comes back marked late.
    /// RCF intervals already scored are not scored again.
    pub fn catch_up(&mut self, from: DateTime<Utc>) -> Findings {
        let (Some(first), Some(until)) = (self.aggregates.first_event, self.evaluated_until) else {
            return Findings::default();
        };
        if from >= until {
            return Findings::default();
        }
        let from = from.max(first);
        let mut findings = self.others(first, (from, from), until);
        for a in &mut findings.anomalies {
            a.late = true;
        }
        findings
            .anomalies
            .retain(|a| !self.reported.contains(&report_key(a)));
        findings
            .insights
            .retain(|i| !self.reported.contains(&report_key(&i.to_anomaly())));
        self.finish(findings)
    }

    /// What rule findings are judged with: the organisation's accounts
    /// (those seen in the trail and `--org-accounts`), and each principal's
    /// habits.
    fn judging(&self) -> rules::Judging<'_> {
        let seen = self
            .aggregates
            .stream_first
            .keys()
            .filter_map(|s| s.split('/').next())
            .map(str::to_owned);
        let history = self
            .aggregates
            .first_event
            .map(|first| (History::of(&self.aggregates, first), self.options.learning));
        rules::Judging {
            org: seen
                .chain(self.options.org_accounts.iter().cloned())
                .collect(),
            novelty: self
                .options
                .tracking()
                .novelty
                .then_some(&self.aggregates.novelty),
            history,
            rules: &self.options.rules,
        }
    }

    /// Rule findings and new activity from `from` to `to`, insights from
    /// `insights_from`.
    fn others(
        &self,
        first: DateTime<Utc>,
        (from, insights_from): (DateTime<Utc>, DateTime<Utc>),
        to: DateTime<Utc>,
    ) -> Findings {
        let mut findings = Findings::default();
        findings.anomalies.extend(rules::detect(
            &self.aggregates.rules,
            from,
            to,
            &self.judging(),
        ));
        if let Some(opts) = &self.options.novelty {
            findings.anomalies.extend(novelty::detect(
                &self.aggregates.novelty,
                History::of(&self.aggregates, first),
                from,
                to,
                opts,
            ));
        }
        if let Some(opts) = &self.options.insights {
            findings.insights = insights::detect(
                &self.aggregates.insights,
                History::of(&self.aggregates, first),
                insights_from,
                to,
                opts,
            );
            findings
                .anomalies
                .extend(findings.insights.iter().map(Insight::to_anomaly));
        }
        findings
    }

    /// `--since`, time order, and remembering what was reported.
    fn finish(&mut self, mut findings: Findings) -> Findings {
        if let Some(s) = self.options.since {
            findings.anomalies.retain(|a| a.start >= s);
            findings.insights.retain(|i| i.start >= s);
        }
        findings.anomalies.sort_by(|a, b| {
            (a.start, a.kind, &a.detector, a.entity_text()).cmp(&(
                b.start,
                b.kind,
                &b.detector,
                b.entity_text(),
            ))
        });
        self.reported
            .extend(findings.anomalies.iter().map(report_key));
        findings
    }
}

/// Where an engine's evaluation stands ([`Engine::checkpoint`]).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub evaluated_until: Option<DateTime<Utc>>,
    pub insights_from: Option<DateTime<Utc>>,
    /// [`report_key`]s of what was reported.
    pub reported: Vec<String>,
}

/// The start (Unix seconds) in a [`report_key`].
fn report_start(key: &str) -> Option<i64> {
    key.rsplit(' ').nth(2)?.parse().ok()
}

/// What identifies a finding across evaluations: kind, detector, entity,
/// start (and, for RCF and insights, end: an interval's partial findings
/// and a running insight end before the whole).
pub(crate) fn report_key(a: &Anomaly) -> String {
    let end = match a.kind {
        AnomalyKind::Rcf | AnomalyKind::Insight => a.end.timestamp(),
        _ => 0,
    };
    format!(
        "{} {} {} {} {end} {}",
        a.kind.name(),
        a.detector,
        a.entity_text(),
        a.start.timestamp(),
        a.partial && a.kind == AnomalyKind::Insight
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudtrail::Record;
    use crate::detector::parse_detector;

    fn rec(t: &str, who: &str, name: &str) -> Record<'static> {
        Record::from_value(serde_json::json!({"eventTime": t, "eventSource": "iam.amazonaws.com", "eventName": name,
            "awsRegion": "us-east-1", "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::1:user/{who}")}}))
        .unwrap()
    }

    /// A checkpoint keeps the report keys of findings that start from its
    /// horizon on, whatever spaces the entity holds.
    #[test]
    fn report_keys_carry_their_start() {
        assert_eq!(
            report_start("rule d user/a b 1700000000 0 false"),
            Some(1_700_000_000)
        );
        assert_eq!(report_start("short"), None);
    }

    /// `detect` on the real invictus data (55 minutes) said only "No
    /// anomalies found.", as if it had looked.
    #[test]
    fn thin_data_says_per_kind_why_nothing_could_be_scored() {
        let detectors = [parse_detector(std::path::Path::new("d.toml"), "").unwrap()];
        let mut engine = Engine::new(&detectors, EngineOptions::all());
        let mut a = Aggregator::new(&detectors, None);
        a.record(&rec("2023-07-10T11:42:00Z", "bob", "GetUser"));
        a.record(&rec("2023-07-10T12:37:00Z", "bob", "GetUser"));
        engine.ingest(a.finish());
        assert_eq!(
            engine.too_thin(),
            [
                "rcf: 55 minutes of data; a model reports after 32 intervals (5 h 20 min at 10-minute intervals)",
                "insight: 55 minutes of data; needs 1 day of history as its baseline",
                "new activity: 55 minutes of data; learning for the first 1 day (--learning)",
            ]
        );
        let mut b = Aggregator::new(&detectors, None);
        b.record(&rec("2023-07-12T12:37:00Z", "bob", "GetUser"));
        engine.ingest(b.finish());
        assert!(engine.too_thin().is_empty(), "{:?}", engine.too_thin());
        assert_eq!(span_text(Duration::minutes(320)), "5 h 20 min");
        assert_eq!(span_text(Duration::days(7)), "7 days");
        assert_eq!(span_text(Duration::minutes(1)), "1 minute");
    }

    #[test]
    fn a_late_delivery_within_the_window_delay_is_still_evaluated() {
        let detectors =
            [parse_detector(std::path::Path::new("d.toml"), "window_delay = \"10m\"").unwrap()];
        let options = EngineOptions {
            rcf: false,
            insights: None,
            ..EngineOptions::all()
        };
        let mut engine = Engine::new(&detectors, options);
        // A day of learning for bob, then account A's delivery up to 10:05.
        let mut a = Aggregator::new(&detectors, None);
        for h in 0..24 {
            a.record(&rec(&format!("2026-01-05T{h:02}:00:00Z"), "bob", "GetUser"));
        }
        a.record(&rec("2026-01-06T10:05:00Z", "alice", "GetUser"));
        engine.ingest(a.finish());
        assert!(engine
            .advance(Some("2026-01-06T10:05:00Z".parse().unwrap()))
            .anomalies
            .is_empty());
        // Account B's delivery for 10:02 arrives after: bob's first CreateUser.
        let mut b = Aggregator::new(&detectors, None);
        b.record(&rec("2026-01-06T10:02:00Z", "bob", "CreateUser"));
        b.record(&rec("2026-01-06T10:20:00Z", "alice", "GetUser"));
        engine.ingest(b.finish());
        let found = engine
            .advance(Some("2026-01-06T10:20:00Z".parse().unwrap()))
            .anomalies;
        assert!(
            found
                .iter()
                .any(|a| a.summary.contains("call iam.amazonaws.com:CreateUser")),
            "{found:#?}"
        );
    }
}
