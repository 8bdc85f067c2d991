//! `make bench`: detect's speed and memory against a floor measured in the
//! same run on the same files.
//!
//! Floor: read each file, gunzip it (flate2) and parse it into JSON values
//! (serde_json), on every core (rayon), nothing else: what any reader of
//! these files must do. Then `trailwatch detect` over the same files, every
//! kind on, with `--stats` for its peak memory. Two inputs cover the same
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

/// Bare gunzip + JSON parse of every file; returns (records, decoded bytes, seconds).
fn floor(files: &[PathBuf]) -> (u64, u64, f64) {
    let start = Instant::now();
    let (records, bytes) = files
        .par_iter()
        .map(|p| {
            let gz = std::fs::read(p).unwrap();
            let mut json = Vec::new();
            flate2::read::MultiGzDecoder::new(gz.as_slice())
                .read_to_end(&mut json)
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            (
                v["Records"].as_array().map_or(0, |r| r.len() as u64),
                json.len() as u64,
            )
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
    println!("trailwatch detect against the floor (gunzip + serde_json parse of the same files, both cores)");
    println!(
        "{:<34} {:>10} {:>7} {:>11} {:>8} {:>11} {:>7} {:>9}",
        "input, detection", "events", "MiB", "floor ev/s", "wall s", "ev/s", "ratio", "peak MiB"
    );
    for (name, scale) in [("7 days, scale 5", "5"), ("7 days, scale 10", "10")] {
        let dir = root.join(format!("scale-{scale}"));
        simulate(bin, &dir, scale);
        let list = files(&dir);
        // Warm the page cache for both, so neither pays for the disk.
        let _ = floor(&list);
        let (records, bytes, floor_s) = floor(&list);
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
            println!(
                "{:<34} {:>10} {:>7.0} {:>11.0} {:>8.2} {:>11.0} {:>6.2}x {:>9}",
                format!(
                    "{name}, {}",
                    if kinds == "rcf" {
                        "rcf only"
                    } else {
                        "all kinds"
                    }
                ),
                records,
                bytes as f64 / (1 << 20) as f64,
                records as f64 / floor_s,
                detect_s,
                records as f64 / detect_s,
                detect_s / floor_s,
                peak
            );
        }
    }
    println!("ratio: detect's wall time over the floor's (1.00x would be free detection).");
}
