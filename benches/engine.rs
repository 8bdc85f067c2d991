//! `make bench`: the engine Lambda's work over days of the busiest
//! simulated organisation, invocation by invocation as the Lambda does it
//! (the batch's deliveries read, the engine advanced to the data's
//! watermark, the state saved), in one process as a Lambda instance keeps
//! it: its pipeline stays resident between invocations, and every
//! `ENGINE_BENCH_COLD_EVERY`th invocation (default 60, an hour of
//! batches; 1 resumes every time) starts cold, a new pipeline resumed from
//! the saved state. No S3: the deliveries are read from disk into memory,
//! as `fetch` would hold them.
//!
//! Printed per day: events, invocations, events per second of engine
//! time, the floor (a single-core gunzip and parse of the same files),
//! the engine's time over the floor, milliseconds per invocation per
//! 1,000 events a day (the figure the cost estimate uses), the median
//! warm invocation and cold start, the gzipped state's size, and the
//! process's peak memory (VmHWM). `ENGINE_BENCH_DAYS` (default 10, past
//! the 8 days of history an incremental run keeps) sets how many days are
//! run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use trailwatch::cloudtrail::Input;
use trailwatch::engine::pipeline::Pipeline;

/// The system allocator, counting the bytes live on the heap, so the
/// bench can say what holds the memory.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_mib() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

/// The heap a value holds, measured as what a clone of it allocates.
fn held<T: Clone>(value: &T) -> f64 {
    let before = live_mib();
    let copy = value.clone();
    let after = live_mib();
    drop(copy);
    after - before
}

/// Where the resident pipeline's heap goes, in MiB.
fn breakdown(pipeline: &Pipeline) -> String {
    let a = &pipeline.engine.aggregates;
    let series: f64 = a.detectors.iter().map(held).sum();
    let intervals: usize = a
        .detectors
        .iter()
        .flat_map(|d| d.series.values())
        .map(|s| s.len())
        .sum();
    let minutes: usize = a.insights.keys.values().map(|k| k.minutes.len()).sum();
    let tens: usize = a.insights.keys.values().map(|k| k.attributions.len()).sum();
    format!(
        "models of {} series, series {series:.1} ({intervals} intervals), insights {:.1} ({} keys, {minutes} minutes, {tens} attributions), novelty {:.1}, rules {:.1}, inputs read {:.1}",
        pipeline.engine.rcf.series_count(),
        held(&a.insights),
        a.insights.keys.len(),
        held(&a.novelty),
        held(&a.rules),
        held(&pipeline.processed),
    )
}

/// The process's peak and current resident memory, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// The heap one RCF model (the plugin's settings) holds after `values`.
fn model_mib(values: usize) -> f64 {
    use trailwatch::engine::rcf::{RcfConfig, RcfScorer, Scorer};
    let before = live_mib();
    let mut model = RcfScorer::new(RcfConfig::plugin_defaults(8, 1));
    for i in 0..values {
        let _ = model.update((i % 7) as f64);
    }
    let after = live_mib();
    drop(model);
    after - before
}

fn simulate(bin: &str, dir: &Path) {
    let marker = dir.join(".complete");
    if marker.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
    let o = Command::new(bin)
        .args([
            "simulate",
            "--out",
            dir.to_str().unwrap(),
            "--days",
            "10",
            "--seed",
            "1",
            "--start",
            "2026-01-05",
            "--profile",
            "busy-org",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(marker, "").unwrap();
}

/// The deliveries under `dir` as the Lambda service would batch them: by
/// the five minutes CloudTrail delivers in (the stamp in the name), at
/// most 100 a batch.
fn batches(dir: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let mut files: Vec<(String, PathBuf)> = trailwatch::cloudtrail::discover(&[dir.to_path_buf()])
        .unwrap()
        .into_iter()
        .filter_map(|i| match i {
            Input::File { path, .. } => {
                let name = path.file_name()?.to_string_lossy().into_owned();
                let stamp = name.rsplit('_').nth(1)?.to_owned();
                Some((stamp, path))
            }
            _ => None,
        })
        .collect();
    files.sort();
    let mut out: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for (stamp, path) in files {
        match out.last_mut() {
            Some((s, list)) if *s == stamp && list.len() < 100 => list.push(path),
            _ => out.push((stamp, vec![path])),
        }
    }
    out
}

/// Single-core gunzip and parse into values: the least any reader does.
fn floor(files: &[PathBuf]) -> f64 {
    let start = Instant::now();
    for p in files {
        let gz = std::fs::read(p).unwrap();
        let mut json = Vec::new();
        flate2::read::MultiGzDecoder::new(gz.as_slice())
            .read_to_end(&mut json)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        std::hint::black_box(v);
    }
    start.elapsed().as_secs_f64()
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_trailwatch");
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/engine-busy-org-10d");
    simulate(bin, &dir);
    let set = trailwatch::detector::DetectorSet::load(None).unwrap();
    let options = || trailwatch::engine::EngineOptions {
        rules: set.rules.clone(),
        ..trailwatch::engine::EngineOptions::all()
    };
    let page_at = trailwatch::engine::severity::DEFAULT_PAGE;
    let quiet = |_: &trailwatch::cloudtrail::ReadError| {};
    let days: usize = std::env::var("ENGINE_BENCH_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(10);
    let cold_every: usize = std::env::var("ENGINE_BENCH_COLD_EVERY")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(60)
        .max(1);
    println!(
        "one model (the plugin's settings, shingle 8) holds {:.2} MiB new, {:.2} MiB after 300 intervals, {:.2} MiB after 2,000",
        model_mib(0),
        model_mib(300),
        model_mib(2000)
    );
    let mut batches = batches(&dir);
    let first_day = batches.first().map(|(s, _)| s[..8].to_owned());
    let last = first_day
        .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y%m%d").ok())
        .map(|d| {
            (d + chrono::Duration::days(days as i64))
                .format("%Y%m%d")
                .to_string()
        })
        .unwrap_or_default();
    batches.retain(|(stamp, _)| stamp[..8] < *last);
    println!("the engine Lambda's invocations over {days} days of busy-org (one process; the pipeline resident between invocations, resumed from the saved state every {cold_every}):");
    println!(
        "{:<8} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>10} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "day",
        "events",
        "calls",
        "engine s",
        "floor s",
        "÷floor",
        "ev/s",
        "ms/call/k",
        "warm ms",
        "cold ms",
        "state KiB",
        "peak MiB",
        "heap MiB"
    );
    let mut state: Option<Vec<u8>> = None;
    let (mut day, mut events, mut calls, mut engine_s, mut floor_s) =
        (String::new(), 0u64, 0, 0.0, 0.0);
    let (mut all_events, mut all_calls, mut all_s, mut state_max) = (0u64, 0usize, 0.0, 0usize);
    let mut per_call = Vec::new();
    // Resuming (cold starts) and saving the state, per invocation;
    // evaluating, in all.
    let (mut state_s, mut evaluate_s) = (Vec::new(), 0.0);
    // Invocations of the day: warm, cold (in seconds).
    let (mut warm, mut cold): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).map_or(0.0, |s| s * 1e3)
    };
    let report = |day: &str,
                  events: u64,
                  calls: usize,
                  engine_s: f64,
                  floor_s: f64,
                  (warm_ms, cold_ms): (f64, f64),
                  state: usize,
                  resident: Option<&Pipeline>| {
        let (peak, _) = memory();
        println!(
            "{:<8} {:>9} {:>6} {:>9.2} {:>8.2} {:>7.2}x {:>8.0} {:>10.1} {:>8.0} {:>8.0} {:>9.0} {:>9.1} {:>9.1}",
            day,
            events,
            calls,
            engine_s,
            floor_s,
            engine_s / floor_s,
            events as f64 / engine_s,
            engine_s * 1e3 / calls as f64 / (events as f64 / 1000.0),
            warm_ms,
            cold_ms,
            state as f64 / 1024.0,
            peak,
            live_mib()
        );
        if let Some(pipeline) = resident {
            println!("         heap MiB: {}", breakdown(pipeline));
        }
    };
    let mut resident: Option<Pipeline> = None;
    for (n, (stamp, files)) in batches.iter().enumerate() {
        let today = stamp[..8].to_owned();
        if today != day && !day.is_empty() {
            report(
                &day,
                events,
                calls,
                engine_s,
                floor_s,
                (median(&mut warm), median(&mut cold)),
                state.as_ref().map_or(0, Vec::len),
                resident.as_ref(),
            );
            (warm, cold) = (Vec::new(), Vec::new());
            (events, calls, engine_s, floor_s) = (0, 0, 0.0, 0.0);
        }
        day = today;
        floor_s += floor(files);
        let start = Instant::now();
        let inputs: Vec<Input> = files
            .iter()
            .map(|p| Input::Object {
                name: p.display().to_string(),
                version: "1".into(),
                bytes: Arc::from(std::fs::read(p).unwrap()),
            })
            .collect();
        let starts_cold = n % cold_every == 0;
        if starts_cold {
            resident = None;
        }
        let mut pipeline = resident.take().unwrap_or_else(|| {
            let mut pipeline = Pipeline::new(&set.detectors, options(), page_at);
            if let Some(bytes) = &state {
                pipeline.resume(bytes).unwrap();
            }
            pipeline
        });
        let resumed = start.elapsed().as_secs_f64();
        let (step, read) = trailwatch::lambda::engine::evaluate(&mut pipeline, &inputs, &quiet);
        std::hint::black_box(step);
        let evaluated = start.elapsed().as_secs_f64();
        let saved = pipeline.save();
        resident = Some(pipeline);
        let took = start.elapsed().as_secs_f64();
        if starts_cold {
            cold.push(took);
        } else {
            warm.push(took);
        }
        state_s.push(resumed + (took - evaluated));
        evaluate_s += evaluated - resumed;
        state_max = state_max.max(saved.len());
        state = Some(saved);
        per_call.push(took);
        engine_s += took;
        events += read.stats.records;
        calls += 1;
        all_events += read.stats.records;
        all_calls += 1;
        all_s += took;
    }
    report(
        &day,
        events,
        calls,
        engine_s,
        floor_s,
        (median(&mut warm), median(&mut cold)),
        state.as_ref().map_or(0, Vec::len),
        resident.as_ref(),
    );
    per_call.sort_by(f64::total_cmp);
    state_s.sort_by(f64::total_cmp);
    println!(
        "all days: {all_events} events in {all_calls} invocations, {:.1} ms per 1,000 events in all; median invocation {:.0} ms, of which the state (resumed, saved) {:.0} ms; evaluating {:.1} ms per 1,000 events; largest state {:.0} KiB",
        all_s * 1e6 / all_events as f64,
        per_call[per_call.len() / 2] * 1e3,
        state_s[state_s.len() / 2] * 1e3,
        evaluate_s * 1e6 / all_events as f64,
        state_max as f64 / 1024.0
    );
    println!("÷floor: engine time over a single-core gunzip and parse of the same files; warm/cold: the day's median invocation going on from the resident pipeline, and starting cold from the saved state; peak: the process's VmHWM so far; heap: the bytes live on the heap at the day's end, and below, what the resident pipeline's parts hold.");
}
