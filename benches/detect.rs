//! `make bench`: detect's speed and memory against a floor measured in the
//! same run on the same files.
//!
//! Floors: read each file, gunzip it (flate2) and parse it (serde_json), on
//! every core (rayon), nothing else: what any reader of these files must do.
//! The parse is measured two ways: into `serde_json::Value`s (the usual way
//! to read a JSON file), and into nothing (`IgnoredAny`: every byte checked,
//! no value built), the least any JSON reader can do. Then `trailwatch
//! detect` over the same files, every kind on and RCF only, with `--stats`
//! for its peak memory. Two inputs cover the same
//! week with the second holding twice the events, to show that memory
//! follows the span and entities, not the number of events.

use rayon::prelude::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn files(dir: &Path) -> Vec<PathBuf> {
    trailwatch::cloudtrail::discover(&[dir.to_path_buf()])
        .unwrap()
        .into_iter()
        .filter_map(|i| match i {
            trailwatch::cloudtrail::Input::File { path, .. } => Some(path),
            _ => None,
        })
        .collect()
}

/// Bare gunzip + JSON parse of every file, into values or (`values` false)
/// into nothing; returns (records, decoded bytes, seconds). Records are
/// counted only when values are built.
fn floor(files: &[PathBuf], values: bool) -> (u64, u64, f64) {
    let start = Instant::now();
    let (records, bytes) = files
        .par_iter()
        .map(|p| {
            let gz = std::fs::read(p).unwrap();
            let mut json = Vec::new();
            flate2::read::MultiGzDecoder::new(gz.as_slice())
                .read_to_end(&mut json)
                .unwrap();
            let records = if values {
                let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
                v["Records"].as_array().map_or(0, |r| r.len() as u64)
            } else {
                serde_json::from_slice::<serde::de::IgnoredAny>(&json).unwrap();
                0
            };
            (records, json.len() as u64)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    (records, bytes, start.elapsed().as_secs_f64())
}

fn simulate(bin: &str, dir: &Path, scale: &str) {
    let marker = dir.join(format!(".complete-{scale}"));
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
            "7",
            "--seed",
            "1",
            "--start",
            "2026-01-05",
            "--scale",
            scale,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(marker, "").unwrap();
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_trailwatch");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    println!("trailwatch detect against two floors on the same files, both cores:");
    println!("  values: gunzip + serde_json parse into Values; parse only: gunzip + serde_json parse into IgnoredAny");
    println!(
        "{:<30} {:>9} {:>6} {:>8} {:>8} {:>7} {:>9} {:>8} {:>8} {:>6}",
        "input, detection",
        "events",
        "MiB",
        "values s",
        "parse s",
        "wall s",
        "ev/s",
        "÷values",
        "÷parse",
        "peak"
    );
    for (name, scale) in [("7 days, scale 5", "5"), ("7 days, scale 10", "10")] {
        let dir = root.join(format!("scale-{scale}"));
        simulate(bin, &dir, scale);
        let list = files(&dir);
        // Warm the page cache, so no run pays for the disk.
        let _ = floor(&list, false);
        let (records, bytes, values_s) = floor(&list, true);
        let (_, _, parse_s) = floor(&list, false);
        for kinds in ["rcf,insight,new-event", "rcf"] {
            let start = Instant::now();
            let o = Command::new(bin)
                .args([
                    "detect",
                    dir.to_str().unwrap(),
                    "--format",
                    "ndjson",
                    "--stats",
                    "--kinds",
                    kinds,
                ])
                .output()
                .unwrap();
            let detect_s = start.elapsed().as_secs_f64();
            assert!(
                o.status.code().is_some_and(|c| c <= 1),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
            let err = String::from_utf8_lossy(&o.stderr);
            let peak = err
                .split("peak memory ")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("?")
                .to_owned();
            let detection = if kinds == "rcf" {
                "rcf only"
            } else {
                "all kinds"
            };
            println!(
                "{:<30} {:>9} {:>6.0} {:>8.2} {:>8.2} {:>7.2} {:>9.0} {:>7.2}x {:>7.2}x {:>6}",
                format!("{name}, {detection}"),
                records,
                bytes as f64 / (1 << 20) as f64,
                values_s,
                parse_s,
                detect_s,
                records as f64 / detect_s,
                detect_s / values_s,
                detect_s / parse_s,
                format!("{peak} MiB")
            );
        }
    }
    println!("÷values, ÷parse: detect's wall time over that floor's (1.00x: detection costs no more than the floor).");
}
