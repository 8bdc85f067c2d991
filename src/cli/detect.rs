//! `trailwatch detect`: read, aggregate, score, print.

use super::{parse_since, parse_time, progress_bar, Since, EXIT_FOUND, EXIT_OK};
use crate::cloudtrail::{discover, Input, ReadError, SearchInput};
use crate::engine::insights::{self, InsightOptions};
use crate::engine::mute::Mute;
use crate::engine::novelty::NoveltyOptions;
use crate::engine::pipeline::{Pipeline, Step};
use crate::engine::severity;
use crate::engine::sink::{self, Format, TableStyle};
use crate::engine::source::Observer;
use crate::engine::{Anomaly, Engine, EngineOptions};
use crate::opensearch::scan::Scan;
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 no anomalies (none at or above --fail-on), 1 anomalies found, 2 error.\n\n\
With --opensearch-url the records come from the cluster's index (the cwl-* indices the forwarder writes), \
read with a point-in-time search in event-time order, page by page, in bounded memory; basic auth from \
OPENSEARCH_USER and OPENSEARCH_PASSWORD, or SigV4 for an AWS domain. As with files, everything before \
--until is read, and what comes before --since only trains.\n\n\
Examples:\n  trailwatch detect ./logs\n  trailwatch detect AWSLogs/ --since 2026-01-07 --format ndjson\n  trailwatch detect ./logs --since -1d    (train on all but the last day)\n  zcat events.jsonl.gz | trailwatch detect -\n  \
trailwatch detect --opensearch-url https://search-x.eu-west-1.es.amazonaws.com --since -1d"
)]
pub struct DetectArgs {
    /// CloudTrail files or folders (walked recursively); `-` reads standard
    /// input; `s3://bucket/prefix/` reads a trail bucket's deliveries where
    /// they lie (--since and --until pick its days by key).
    #[arg(required_unless_present_any = ["series", "opensearch_url"], value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Report anomalies from this time on; earlier history only trains the
    /// models. A time (2026-01-07T14:00:00Z, 2026-01-07) or a span before the
    /// last event (-1d, -6h, -90m).
    #[arg(long, value_parser = parse_since, value_name = "TIME", allow_hyphen_values = true, help_heading = "Input")]
    pub since: Option<Since>,
    /// Ignore events from this time on.
    #[arg(long, value_parser = parse_time, value_name = "TIME", help_heading = "Input")]
    pub until: Option<DateTime<Utc>>,
    /// Stop at the first damaged file or record instead of reporting and going on.
    #[arg(long, help_heading = "Input")]
    pub strict: bool,
    /// Run an RCF detector on a plain `timestamp,value` CSV instead of CloudTrail
    /// (a billing or CloudWatch metric export).
    #[arg(
        long,
        value_name = "FILE.csv",
        conflicts_with = "paths",
        help_heading = "Input"
    )]
    pub series: Option<PathBuf>,
    /// With --series: write `timestamp,value,anomaly_score,anomaly_grade,confidence`
    /// for every input row, in input order.
    #[arg(
        long,
        value_name = "OUT.csv",
        requires = "series",
        help_heading = "Input"
    )]
    pub scores: Option<PathBuf>,
    /// Where s3:// inputs are read from.
    #[command(flatten, next_help_heading = "AWS (s3:// inputs)")]
    pub aws: super::deploy::AwsArgs,
    /// Read the records from this OpenSearch cluster's index (besides any PATH).
    #[arg(long, value_name = "URL", conflicts_with_all = ["series", "follow"], help_heading = "OpenSearch input")]
    pub opensearch_url: Option<String>,
    /// With --opensearch-url: the index pattern to read.
    #[arg(
        long,
        value_name = "PATTERN",
        default_value = "cwl-*",
        help_heading = "OpenSearch input"
    )]
    pub index: String,
    /// With --opensearch-url: trust this CA's certificate (PEM), besides the system's.
    #[arg(
        long,
        value_name = "FILE",
        requires = "opensearch_url",
        help_heading = "OpenSearch input"
    )]
    pub opensearch_ca_cert: Option<PathBuf>,
    /// Basic auth user on the cluster; the password comes from
    /// OPENSEARCH_PASSWORD [default: SigV4 for an AWS domain].
    #[arg(
        long,
        value_name = "USER",
        env = "OPENSEARCH_USER",
        help_heading = "OpenSearch input"
    )]
    pub opensearch_user: Option<String>,
    /// Folder of detector files that replaces the built-in set (every file
    /// must be valid).
    #[arg(long, value_name = "DIR", help_heading = "Detection")]
    pub detectors: Option<PathBuf>,
    /// Folder of Sigma rules (product: aws, service: cloudtrail), read as
    /// they are and run as rules (kind rule); repeatable. A --detectors
    /// folder's sigma/ is read too.
    #[arg(long, value_name = "DIR", help_heading = "Detection")]
    pub sigma: Vec<PathBuf>,
    /// Kinds of detection to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "rcf,insight,new-event,rule",
        help_heading = "Detection"
    )]
    pub kinds: Vec<Kind>,
    /// Most entities modelled per high-cardinality detector; the least recently
    /// active are evicted beyond it.
    #[arg(
        long,
        default_value_t = 1000,
        value_name = "N",
        help_heading = "Detection"
    )]
    pub max_entities: usize,
    /// The organisation's accounts besides those seen in the input
    /// (comma-separated ids): a snapshot, image or database snapshot shared
    /// with one of them is not shared outside.
    #[arg(
        long,
        value_name = "IDS",
        value_delimiter = ',',
        help_heading = "Detection"
    )]
    pub org_accounts: Vec<String>,
    /// How long after the first event nothing counts as new (new-event kind).
    #[arg(long, default_value = "1d", value_parser = parse_span, value_name = "SPAN", help_heading = "Detection")]
    pub learning: chrono::Duration,
    /// Report new and rare activity from this grade on. Grades come from
    /// chance, as insights' do (0.7: what the kind's budget lets chance give
    /// 0.2 times a day); an established principal's first IAM change,
    /// logging call or public network is reported whatever its grade.
    #[arg(
        long,
        default_value_t = 0.7,
        value_name = "GRADE",
        help_heading = "Detection"
    )]
    pub new_event_grade: f64,
    /// Incidents of this severity or higher page (marked "(pages)" in the table,
    /// `"page": true` in JSON); the rest are reported only.
    #[arg(
        long,
        value_enum,
        default_value = "medium",
        value_name = "SEVERITY",
        help_heading = "Detection"
    )]
    pub page_severity: crate::engine::Severity,
    /// Silence a principal you know (a deploy pipeline, a scanner): its
    /// findings neither page nor appear, and are counted on standard error.
    /// An ARN, the short form the table prints (`user/ci@111122223333`), or
    /// either with `*` for any text (`assumed-role/deploy/*`); repeat or
    /// separate with commas. Critical rule findings (a trail stopped) still
    /// show, whoever made them.
    #[arg(
        long,
        value_name = "PRINCIPAL",
        value_delimiter = ',',
        help_heading = "Detection"
    )]
    pub mute: Vec<String>,
    /// Output format [default: table on a terminal, ndjson otherwise].
    #[arg(long, value_enum, help_heading = "Output")]
    pub format: Option<Format>,
    /// Write a self-contained HTML report (timeline, charts, table) to FILE.
    #[arg(long, value_name = "FILE.html", help_heading = "Output")]
    pub report: Option<PathBuf>,
    /// Write Insight records into DIR as CloudTrail delivers them.
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    pub insights_out: Option<PathBuf>,
    /// Print events, bytes, seconds (reading and evaluating), events/s and peak
    /// memory to standard error at the end.
    #[arg(long, help_heading = "Output")]
    pub stats: bool,
    /// Exit 1 only for a finding of this severity or higher [default: any
    /// finding]: `--fail-on high` lets a pipeline pass on low and medium.
    #[arg(long, value_enum, value_name = "SEVERITY", help_heading = "Output")]
    pub fail_on: Option<crate::engine::Severity>,
    /// Nothing on standard error but errors (and --stats when asked): no
    /// progress, notes or warnings. Problems in the input still count, and
    /// --strict still stops at the first.
    #[arg(long, short, help_heading = "Output")]
    pub quiet: bool,
    /// Colour severities in the table: auto (on a terminal, unless NO_COLOR
    /// is set or CLICOLOR_FORCE asks for it), always or never.
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        value_name = "WHEN",
        help_heading = "Output"
    )]
    pub color: ColorWhen,
    /// Keep watching the folders for new deliveries and report anomalies as
    /// their interval closes (stop with Ctrl-C).
    #[arg(long, conflicts_with_all = ["series", "report", "until"], help_heading = "Following a folder")]
    pub follow: bool,
    /// With --follow: how often to look for new files.
    #[arg(long, default_value = "5s", value_parser = parse_poll, value_name = "SPAN", requires = "follow", help_heading = "Following a folder")]
    pub poll: std::time::Duration,
    /// With --follow: a stream (account and region) that delivered nothing
    /// new for this long stops holding the others back.
    #[arg(long, default_value = "30m", value_parser = parse_poll, value_name = "SPAN", requires = "follow", help_heading = "Following a folder")]
    pub stream_idle: std::time::Duration,
    /// With --follow: keep what was read and learned in FILE, so a restart
    /// goes on where it stopped.
    #[arg(
        long,
        value_name = "FILE",
        requires = "follow",
        help_heading = "Following a folder"
    )]
    pub state: Option<PathBuf>,
}

/// A kind of detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The detector files' random cut forests.
    Rcf,
    /// Call and error rates against a seasonal baseline, as CloudTrail Insights.
    Insight,
    /// What a principal never (or rarely) did before.
    NewEvent,
    /// The rule files' events, which need no baseline (StopLogging, a
    /// bucket made public, ...).
    Rule,
}

/// `5s`, `2m`.
fn parse_poll(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{s:?} is not a span of seconds or minutes; write 5s or 1m");
    let (digits, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "s" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_secs(n * 60),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(bad());
    }
    Ok(d)
}

/// `1d`, `12h`, `90m`.
pub fn parse_span(s: &str) -> Result<chrono::Duration, String> {
    match parse_since(&format!("-{s}")) {
        Ok(Since::BeforeEnd(d)) => Ok(d),
        _ => Err(format!("{s:?} is not a span; write 1d, 12h or 90m")),
    }
}

/// Every problem with the flags' values, at once (clap has checked their
/// syntax and which go together).
fn flag_problems(args: &DetectArgs) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(Since::At(s)), Some(u)) = (args.since, args.until) {
        if s >= u {
            out.push(format!("--since {s} is not before --until {u}"));
        }
    }
    if args.max_entities == 0 {
        out.push("--max-entities must be at least 1".into());
    }
    if !(0.0..=1.0).contains(&args.new_event_grade) {
        out.push(format!(
            "--new-event-grade {} is out of range; use 0 to 1",
            args.new_event_grade
        ));
    }
    if args.follow {
        if args.paths.iter().any(|p| p.as_os_str() == "-") {
            out.push("--follow watches folders; it cannot follow standard input".into());
        }
        if args.paths.iter().any(|p| is_bucket(p)) {
            out.push("--follow watches folders; a bucket is followed by the engine Lambda (deploy), or read once without --follow".into());
        }
        if args.format == Some(Format::Json) {
            out.push(
                "--format json writes one array at the end; with --follow use ndjson or table"
                    .into(),
            );
        }
    }
    if args.scores.is_some() && args.series.is_none() {
        out.push("--scores writes the scores of a --series run; give --series FILE.csv".into());
    }
    if args.paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        out.push("`-` (standard input) can be given once".into());
    }
    out
}

pub fn run(args: DetectArgs) -> anyhow::Result<i32> {
    let problems = flag_problems(&args);
    match problems.len() {
        0 => {}
        1 => bail!("{}", problems[0]),
        n => bail!(
            "{n} problems with the flags:{}",
            problems
                .iter()
                .map(|p| format!("\n  - {p}"))
                .collect::<String>()
        ),
    }
    if let Some(series) = &args.series {
        return run_series(&args, series);
    }
    let started = Instant::now();
    let set = super::detectors::load(args.detectors.as_deref(), &args.sigma)?;
    let (detectors, rules) = (set.detectors, set.rules);
    if args.follow {
        return run_follow(&args, &detectors, rules);
    }
    let (buckets, local): (Vec<PathBuf>, Vec<PathBuf>) =
        args.paths.iter().cloned().partition(|p| is_bucket(p));
    let mut inputs = discover(&local).context("cannot list the inputs")?;
    for url in &buckets {
        inputs.extend(read_bucket(&args, url)?);
    }
    if let Some(url) = &args.opensearch_url {
        let target = super::runtime()?.block_on(super::opensearch::target(
            url,
            args.opensearch_ca_cert.clone(),
            args.opensearch_user.clone(),
            false,
            &super::deploy::AwsArgs::default(),
            std::time::Duration::from_secs(60),
        ))?;
        inputs.push(Input::Search(Box::new(SearchInput {
            target,
            scan: Scan {
                index: args.index.clone(),
                until: args.until,
                page: 5000,
            },
        })));
    }
    if inputs.is_empty() {
        bail!(
            "no CloudTrail files (*.json, *.json.gz, *.jsonl, *.ndjson, *.gz) under {}",
            list(&args.paths)
        );
    }
    let total: u64 = inputs
        .iter()
        .map(|i| {
            if let Input::File { size, .. } = i {
                *size
            } else {
                0
            }
        })
        .sum();
    let quiet = args.quiet;
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        progress_bar(
            total,
            "{spinner} reading {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, {eta} left",
        )
    };
    // Under --strict the first problem is the error, said once at the end.
    let strict = args.strict;
    let problem = |e: &ReadError| {
        if !strict && !quiet {
            bar.suspend(|| eprintln!("warning: {e}"))
        }
    };
    // What goes to standard error besides errors and --stats.
    let say = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let progress = |n: u64| bar.inc(n);
    let observer = Observer {
        problem: &problem,
        progress: &progress,
    };
    let mut pipeline = Pipeline::new(
        &detectors,
        engine_options(&args, None, rules),
        args.page_severity,
    );
    pipeline.mute = Mute::new(&args.mute)?;
    let stats = pipeline
        .read(&inputs, args.until, args.strict, &observer)
        .map_err(|e| {
            bar.finish_and_clear();
            anyhow::anyhow!("{e} (--strict stops at the first problem in the input)")
        })?
        .stats;
    bar.finish_and_clear();
    if stats.records == 0 && (stats.problems > 0 || stats.skipped == 0) {
        let what = if stats.problems > 0 {
            format!("{} problem(s) above", stats.problems)
        } else {
            "the input is empty".into()
        };
        let mut sources = list(&args.paths);
        if let Some(url) = &args.opensearch_url {
            if !sources.is_empty() {
                sources.push_str(", ");
            }
            sources.push_str(&format!("{url}/{}", args.index));
        }
        bail!("no readable CloudTrail records in {sources} ({what})");
    }
    let read_secs = started.elapsed().as_secs_f64();
    // A span before the end is before the data's last event.
    let aggregates = &pipeline.engine.aggregates;
    let since = args.since.and_then(|s| s.resolve(aggregates.last_event));
    if let (Some(since), Some(first), Some(last)) =
        (since, aggregates.first_event, aggregates.last_event)
    {
        if since > last {
            bail!(
                "--since {} is after the data's last event: the events span {} to {}; give a time in that span, or a span before the end (--since -1d)",
                since.format("%Y-%m-%dT%H:%M:%SZ"),
                first.format("%Y-%m-%dT%H:%M:%SZ"),
                last.format("%Y-%m-%dT%H:%M:%SZ")
            );
        }
    }
    pipeline.engine.options.since = since;
    let evaluating = Instant::now();
    let Step {
        findings,
        incidents,
        muted,
    } = pipeline.advance(None);
    if muted > 0 {
        say(&format!(
            "note: {muted} finding(s) of muted principals ({}) not reported",
            args.mute.join(", ")
        ));
    }
    let evaluate_secs = evaluating.elapsed().as_secs_f64();
    let engine = &pipeline.engine;
    for failure in &engine.rcf.failures {
        say(&format!("warning: {failure}"));
    }
    for (name, n) in &engine.rcf.evicted {
        say(&format!("warning: {name}: {n} entities beyond --max-entities {} were not modelled (least recently active first)", args.max_entities));
    }
    let format = output_format(&args);
    if stats.records == 0 {
        say(&format!(
            "note: only digest and Insight files ({}), which are skipped: no records to detect on",
            stats.skipped
        ));
    } else {
        // Rule findings need no history; the other kinds may lack it.
        for why in engine.too_thin() {
            say(&format!("note: {why}"));
        }
    }
    let mut out = std::io::stdout().lock();
    keep_status(
        sink::write(
            format,
            &findings.anomalies,
            &incidents,
            &table_style(&args),
            &mut out,
        )
        .and_then(|()| out.flush()),
    )
    .context("cannot write the results")?;
    if let Some(path) = &args.report {
        let charts = crate::engine::report::charts(engine, &findings.anomalies, &incidents);
        let html = crate::engine::report::render(&crate::engine::report::ReportInput {
            generated: chrono::Utc::now(),
            since: engine.options.since,
            first_event: engine.aggregates.first_event,
            last_event: engine.aggregates.last_event,
            events: stats.records,
            anomalies: &findings.anomalies,
            incidents: &incidents,
            charts: &charts,
            calibration: &engine.calibration(&findings.anomalies),
            budget_per_day: engine.budget_per_day(),
        });
        std::fs::write(path, html)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
        say(&format!(
            "report: {} ({} charts)",
            path.display(),
            charts.len()
        ));
    }
    if let Some(dir) = &args.insights_out {
        let written = insights::write_deliveries(dir, &findings.insights)
            .with_context(|| format!("cannot write Insight records into {}", dir.display()))?;
        say(&format!(
            "wrote {} Insight records ({} insights) under {}",
            written.len(),
            findings.insights.len(),
            dir.display()
        ));
    }
    if stats.problems > 0 {
        say(&format!("warning: {} problem(s) in the input (above); their good records were read. --strict makes problems fatal.", stats.problems));
    }
    if args.stats {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "stats: {} events from {} inputs ({} skipped, {} problems{}), {:.1} MiB decoded, {} series, {} intervals scored, {:.2} s (reading {:.2} s, evaluating {:.2} s), {:.0} events/s, peak memory {}",
            stats.records,
            inputs.len(),
            stats.skipped,
            stats.problems,
            match stats.empty {
                0 => String::new(),
                n => format!(", {n} empty"),
            },
            stats.bytes as f64 / (1 << 20) as f64,
            engine.rcf.series_count(),
            engine.rcf.intervals,
            secs,
            read_secs,
            evaluate_secs,
            stats.records as f64 / secs.max(1e-9),
            peak_memory().map_or("unknown".into(), |kib| format!("{:.0} MiB", kib as f64 / 1024.0))
        );
        for line in budget_lines(engine, &findings.anomalies) {
            eprintln!("{line}");
        }
    }
    Ok(status(&findings.anomalies, args.fail_on))
}

/// The exit status of findings: [`EXIT_FOUND`] when one is at or above
/// `fail_on` (any finding without it), else [`EXIT_OK`].
fn status(anomalies: &[crate::engine::Anomaly], fail_on: Option<crate::engine::Severity>) -> i32 {
    let fails = |a: &crate::engine::Anomaly| match fail_on {
        None => true,
        Some(at) => a.severity.unwrap_or(crate::engine::Severity::Low) >= at,
    };
    if anomalies.iter().any(fails) {
        EXIT_FOUND
    } else {
        EXIT_OK
    }
}

/// A write's result, where a reader that closed the pipe (`detect | head
/// -1`) had what it wanted: the run goes on to its status, in every
/// format, rather than ending on the write.
fn keep_status(written: std::io::Result<()>) -> std::io::Result<()> {
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Whether a PATH names a bucket (`s3://…`).
fn is_bucket(p: &std::path::Path) -> bool {
    p.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// A trail bucket's deliveries under a prefix, on the days --since (less
/// the week of history the models train on) to --until, with progress.
fn read_bucket(args: &DetectArgs, url: &std::path::Path) -> anyhow::Result<Vec<Input>> {
    use crate::cloudtrail::s3::{get_all, list, BucketPath};
    let text = url.to_string_lossy();
    let Some(at) = BucketPath::parse(&text) else {
        bail!("{text}: write s3://bucket or s3://bucket/prefix/");
    };
    let from = match args.since {
        Some(Since::At(t)) => Some(t.date_naive() - chrono::Duration::days(7)),
        _ => None,
    };
    let until = args.until.map(|t| t.date_naive());
    let keep =
        |day: chrono::NaiveDate| from.is_none_or(|f| day >= f) && until.is_none_or(|u| day <= u);
    super::runtime()?.block_on(async {
        let target = args.aws.target();
        let sdk = target.load().await;
        let client = target.s3(&sdk);
        let keys = list(&client, &at, &keep).await?;
        let total = keys.iter().map(|(_, size)| size).sum();
        let bar = progress_bar(
            total,
            "{spinner} fetching {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, {eta} left",
        );
        let progress = |n: u64| bar.inc(n);
        let inputs = get_all(&client, &at.bucket, &keys, &progress).await;
        bar.finish_and_clear();
        Ok(inputs?)
    })
}

/// `--stats`' account of chance: each insight type's false-alarm budget
/// (the series it is shared by, the chance a window must fall under, and
/// the chance alarms a day expected at each series' own average rate); what
/// chance alone would make new activity report (Good-Turing); and how often
/// each kind's findings reached a grade, beside what the budget lets chance
/// do at that grade.
fn budget_lines(engine: &Engine<'_>, anomalies: &[Anomaly]) -> Vec<String> {
    use crate::engine::calibration;
    let a = &engine.aggregates;
    let (Some(first), Some(last)) = (a.first_event, a.last_event) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    if let Some(options) = &engine.options.insights {
        lines.extend(
            insights::chance_figures(&a.insights, first, last, options)
                .into_iter()
                .map(|f| {
                    format!(
                        "budget: {:?}: {} chance alarms a day over {} series (a 5-minute window alarms under a chance of {:.1e}); expected by chance at the series' average rates: {:.3} a day",
                        f.insight_type,
                        f.budget.per_day,
                        f.series,
                        f.budget.alpha(),
                        f.expected_per_day
                    )
                }),
        );
    }
    if let Some(options) = &engine.options.novelty {
        let c = crate::engine::novelty::chance(&a.novelty, first, last, options);
        lines.push(format!(
            "chance: new activity: {} chance findings a day at grade 0.7, shared by calls, regions, networks and new principals; by Good-Turing (what was seen once so far, per day of history) chance alone gives {:.2} new features a day over {} principals and {:.2} new principals a day",
            options.budget_per_day, c.features_per_day, c.tested, c.principals_per_day
        ));
    }
    let allowed = calibration::budget_rates(engine.budget_per_day()).map(calibration::rate_text);
    for r in engine.calibration(anomalies) {
        lines.push(format!(
            "calibration: {}: {} findings a day at grade 0.7, 0.8, 0.9 or more over {} (chance alone gives an insight type at most {} a day: its budget)",
            r.kind.name(),
            r.per_day.map(calibration::rate_text).join(", "),
            crate::engine::span_text(chrono::Duration::seconds((r.days * 86_400.0) as i64)),
            allowed.join(", ")
        ));
    }
    lines
}

/// `--series`: the plugin's RCF and alert defaults over one plain series.
fn run_series(args: &DetectArgs, path: &std::path::Path) -> anyhow::Result<i32> {
    use crate::engine::plain_series;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (points, errors) = plain_series::read_csv(&text);
    for e in &errors {
        if args.strict {
            bail!("{}: {e}", path.display());
        }
        eprintln!("warning: {}: {e}; row skipped", path.display());
    }
    if points.is_empty() {
        bail!("{}: no `timestamp,value` rows", path.display());
    }
    let (scores, failures) = plain_series::score(&points, &plain_series::default_scorer(8));
    for why in &failures {
        eprintln!("warning: {}: {why}", path.display());
    }
    if let Some(out) = &args.scores {
        std::fs::write(out, plain_series::scores_csv(&points, &scores))
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "series".into());
    // A series file's name is not a detector's: any file name will do.
    let alert = crate::detector::AlertThresholds::default();
    let mut anomalies = plain_series::anomalies(&name, &points, &scores, &alert);
    if let Some(since) = args
        .since
        .and_then(|s| s.resolve(points.iter().map(|p| p.time).max()))
    {
        anomalies.retain(|a| a.start >= since);
    }
    let incidents = severity::incidents(&mut anomalies, args.page_severity);
    let format = output_format(args);
    keep_status(sink::write(
        format,
        &anomalies,
        &incidents,
        &table_style(args),
        &mut std::io::stdout().lock(),
    ))
    .context("cannot write the results")?;
    if !errors.is_empty() {
        eprintln!(
            "warning: {} row(s) of {} skipped (above)",
            errors.len(),
            path.display()
        );
    }
    Ok(status(&anomalies, args.fail_on))
}

fn engine_options(
    args: &DetectArgs,
    since: Option<chrono::DateTime<chrono::Utc>>,
    rules: Vec<crate::detector::Rule>,
) -> EngineOptions {
    EngineOptions {
        since,
        max_entities: args.max_entities,
        rcf: args.kinds.contains(&Kind::Rcf),
        insights: args
            .kinds
            .contains(&Kind::Insight)
            .then(InsightOptions::default),
        novelty: args
            .kinds
            .contains(&Kind::NewEvent)
            .then_some(NoveltyOptions {
                learning: args.learning,
                min_grade: args.new_event_grade,
                interval: chrono::Duration::minutes(10),
                budget_per_day: crate::engine::chance::DEFAULT_BUDGET_PER_DAY,
            }),
        rules: if args.kinds.contains(&Kind::Rule) {
            rules
        } else {
            Vec::new()
        },
        org_accounts: args.org_accounts.clone(),
        learning: args.learning,
        ..EngineOptions::all()
    }
}

/// `--follow`: poll, ingest, advance, print, save; until interrupted.
fn run_follow(
    args: &DetectArgs,
    detectors: &[crate::detector::Detector],
    rules: Vec<crate::detector::Rule>,
) -> anyhow::Result<i32> {
    use crate::engine::follow::{follow, FollowOptions};
    let format = output_format(args);
    // A span before the end means before now when following.
    let since = args
        .since
        .map(|s| s.resolve(Some(chrono::Utc::now())))
        .unwrap_or(None);
    let mut pipeline = Pipeline::new(
        detectors,
        engine_options(args, since, rules),
        args.page_severity,
    );
    pipeline.mute = Mute::new(&args.mute)?;
    let problem = |e: &ReadError| eprintln!("warning: {e}");
    let progress = |_: u64| {};
    let observer = Observer {
        problem: &problem,
        progress: &progress,
    };
    let options = FollowOptions {
        paths: &args.paths,
        poll: args.poll,
        state: args.state.as_deref(),
        strict: args.strict,
        stream_idle: args.stream_idle,
    };
    let insights_out = args.insights_out.clone();
    let style = table_style(args);
    let mut emit = |findings: &crate::engine::Findings,
                    incidents: &[crate::engine::group::Incident]|
     -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        if !findings.anomalies.is_empty() {
            // Indexes in incidents are per poll; the sink numbers from their ids.
            sink::write(format, &findings.anomalies, incidents, &style, &mut out)?;
        }
        out.flush()?;
        if let Some(dir) = &insights_out {
            insights::write_deliveries(dir, &findings.insights)?;
        }
        Ok(())
    };
    let mut log = |line: &str| eprintln!("follow: {line}");
    let stop = std::sync::atomic::AtomicBool::new(false);
    eprintln!(
        "follow: watching {} every {:?}; stop with Ctrl-C",
        list(&args.paths),
        args.poll
    );
    follow(
        &mut pipeline,
        &options,
        &observer,
        &mut emit,
        &mut log,
        &stop,
    )?;
    Ok(EXIT_OK)
}

/// Peak resident memory of this process in KiB (Linux: VmHWM).
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The paths for a message: `a, b`.
fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// When the table is coloured (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// How the table is drawn on standard output: colour as `--color` says
/// (auto: anstream's reading of the terminal, NO_COLOR and CLICOLOR_FORCE),
/// cut to the terminal's width, else to `COLUMNS`, else to 100 columns.
fn table_style(args: &DetectArgs) -> TableStyle {
    let stdout = std::io::stdout();
    let color = match args.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => anstream::AutoStream::choice(&stdout) != anstream::ColorChoice::Never,
    };
    let width = terminal_size::terminal_size_of(&stdout)
        .map(|(w, _)| w.0 as usize)
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .unwrap_or(DEFAULT_WIDTH);
    TableStyle {
        width: Some(width),
        color,
    }
}

/// The table's width off a terminal with no `COLUMNS`.
const DEFAULT_WIDTH: usize = 100;

/// `--format`, or table on a terminal and NDJSON otherwise.
fn output_format(args: &DetectArgs) -> Format {
    args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Ndjson
    })
}
