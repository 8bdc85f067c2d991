//! Reading every input on all cores into one [`Aggregates`].

use super::aggregate::{Aggregates, Aggregator, InputSpan, Tracking};
use super::plausible::TimeFence;
use crate::cloudtrail::{
    read_bytes, read_input, Input, Location, Projection, ReadError, ReadErrorKind, ReadStats,
    SearchInput,
};
use crate::detector::Detector;
use crate::opensearch::scan::scan;
use crate::opensearch::OpenSearch;
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Files up to this size are read into memory whole (decompressing straight
/// into one buffer); larger ones stream.
pub const WHOLE_FILE_LIMIT: u64 = 64 << 20;

/// An input that could not be opened or read: reported, counted.
fn failed(name: &str, e: std::io::Error, report: &mut dyn FnMut(ReadError)) -> ReadStats {
    report(ReadError {
        input: name.to_owned(),
        location: Location::Whole,
        kind: ReadErrorKind::Io(e),
    });
    ReadStats {
        problems: 1,
        ..ReadStats::default()
    }
}

/// Reads an OpenSearch input page by page, each page's JSON lines as a
/// file's; a failed search is one problem of the whole input, and what was
/// read before it counts.
fn read_search(
    name: &str,
    search: &SearchInput,
    projection: &Projection,
    sink: &mut dyn FnMut(crate::cloudtrail::Record<'_>),
    report: &mut dyn FnMut(ReadError),
) -> ReadStats {
    let mut stats = ReadStats::default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return failed(name, e, report),
    };
    let result = runtime.block_on(async {
        let os = OpenSearch::connect(&search.target).map_err(|e| e.to_string())?;
        scan(&os, &search.scan, &mut |bytes| {
            stats.add(&read_bytes(
                name,
                bytes,
                projection,
                &mut *sink,
                &mut *report,
            ))
        })
        .await
        .map_err(|e| e.to_string())
    });
    if let Err(e) = result {
        let mut failure = failed(name, std::io::Error::other(e), report);
        failure.add(&stats);
        return failure;
    }
    stats
}

/// Callbacks from the workers; both may be called from several threads.
pub struct Observer<'a> {
    /// Each problem, as it is found.
    pub problem: &'a (dyn Fn(&ReadError) + Sync),
    /// After each input, with its size on disk.
    pub progress: &'a (dyn Fn(u64) + Sync),
}

/// Reads `inputs` in parallel (files decode on every core) and aggregates them
/// for `detectors`. With `strict`, the first problem stops the run and is
/// returned; otherwise problems are counted and reading goes on.
pub fn aggregate_inputs(
    inputs: &[Input],
    detectors: &[Detector],
    until: Option<DateTime<Utc>>,
    tracking: Tracking<'_>,
    strict: bool,
    observer: &Observer<'_>,
) -> Result<(Aggregates, ReadStats), Box<ReadError>> {
    let abort = AtomicBool::new(false);
    let first_error: Mutex<Option<ReadError>> = Mutex::new(None);
    // One small aggregation per file, merged pairwise: measured faster than
    // one large aggregator per rayon split (smaller maps stay in cache).
    // Only the fields the detectors and the engine read are built.
    let projection = Projection::for_records(
        detectors
            .iter()
            .flat_map(|d| d.field_paths())
            .chain(tracking.rules.iter().flat_map(|r| r.field_paths())),
    );
    let projection = &projection;
    let fence = TimeFence::plausible(Utc::now());
    // One pass over one input with a given fence; problems go to `report`.
    let pass = |input: &Input, fence: TimeFence, report: &mut dyn FnMut(ReadError)| {
        let mut agg = Aggregator::tracking(detectors, until, tracking).with_fence(fence);
        let name = input.name();
        let stats = match input {
            Input::Stdin => read_input(
                &name,
                std::io::stdin().lock(),
                projection,
                |r| agg.record(&r),
                report,
            ),
            Input::Search(search) => {
                read_search(&name, search, projection, &mut |r| agg.record(&r), report)
            }
            Input::Object { bytes, .. } => {
                read_bytes(&name, bytes, projection, |r| agg.record(&r), report)
            }
            Input::File { path, size } => {
                // Small files (every CloudTrail delivery) are read whole; large
                // ones (a JSON lines export) stream.
                let opened = if *size <= WHOLE_FILE_LIMIT {
                    std::fs::read(path).map(Some)
                } else {
                    Ok(None)
                };
                match opened {
                    Ok(Some(bytes)) => {
                        read_bytes(&name, &bytes, projection, |r| agg.record(&r), report)
                    }
                    Ok(None) => match std::fs::File::open(path) {
                        Ok(f) => read_input(&name, f, projection, |r| agg.record(&r), report),
                        Err(e) => failed(&name, e, report),
                    },
                    Err(e) => failed(&name, e, report),
                }
            }
        };
        (agg, stats)
    };
    let read_one = |input: &Input| -> (Aggregates, ReadStats) {
        if abort.load(Ordering::Relaxed) {
            return (Aggregates::empty(detectors), ReadStats::default());
        }
        let name = input.name();
        let mut report = |e: ReadError| {
            (observer.problem)(&e);
            if strict && !abort.swap(true, Ordering::Relaxed) {
                *first_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
        };
        let (mut agg, mut stats) = pass(input, fence, &mut report);
        let mut kept_outliers = false;
        if let Some(bulk) = agg.outliers() {
            match input {
                // Rare: read the file again, leaving out what lies far from
                // the rest (its problems were reported the first time).
                Input::File { .. } | Input::Search(_) | Input::Object { .. } => {
                    agg = pass(input, bulk, &mut |_| {}).0
                }
                Input::Stdin => kept_outliers = true,
            }
        }
        let mut kinds: Vec<ReadErrorKind> = agg
            .exclusions()
            .messages()
            .into_iter()
            .map(ReadErrorKind::LeftOut)
            .collect();
        if kept_outliers {
            kinds.push(ReadErrorKind::KeptOutliers);
        }
        stats.problems += agg.exclusions().count + u64::from(kept_outliers);
        for kind in kinds {
            report(ReadError {
                input: name.clone(),
                location: Location::Whole,
                kind,
            });
        }
        match input {
            Input::File { size, .. } => (observer.progress)(*size),
            Input::Object { bytes, .. } => (observer.progress)(bytes.len() as u64),
            Input::Stdin | Input::Search(_) => {}
        }
        let mut aggregates = agg.finish();
        if let (Some(first), Some(last)) = (aggregates.first_event, aggregates.last_event) {
            aggregates.inputs.push(InputSpan { name, first, last });
        }
        (aggregates, stats)
    };
    let (aggregates, stats) = inputs.par_iter().map(read_one).reduce(
        || (Aggregates::default(), ReadStats::default()),
        |(mut a, mut s), (b, t)| {
            a.merge(b);
            s.add(&t);
            (a, s)
        },
    );
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(Box::new(e));
    }
    let mut aggregates = aggregates;
    if aggregates.detectors.is_empty() {
        aggregates = Aggregates::empty(detectors);
    }
    Ok((aggregates, stats))
}

/// The anomalies of one run over `inputs`, quietly: what `detect` would
/// report with these options (used beside the plugin's backtest).
pub fn detect_once(
    inputs: &[Input],
    detectors: &[Detector],
    options: super::EngineOptions,
    until: Option<DateTime<Utc>>,
) -> Result<(Vec<super::anomaly::Anomaly>, ReadStats), Box<ReadError>> {
    let quiet = |_: &ReadError| {};
    let none = |_: u64| {};
    let observer = Observer {
        problem: &quiet,
        progress: &none,
    };
    let (aggregates, stats) = aggregate_inputs(
        inputs,
        detectors,
        until,
        options.tracking(),
        false,
        &observer,
    )?;
    let mut engine = super::Engine::new(detectors, options);
    engine.ingest(aggregates);
    Ok((engine.advance(None).anomalies, stats))
}
