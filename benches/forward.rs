//! `make bench`: the forwarder's throughput on one core against a floor
//! measured in the same run on the same payloads.
//!
//! Payloads: CloudWatch Logs subscription events (base64 of gzip of JSON,
//! 1,000 CloudTrail records each, as CloudWatch batches them) made from a
//! simulated day. Floor: base64-decode, gunzip and parse the payload, then
//! parse each record's JSON (flate2, serde_json): what any forwarder must
//! do. Ours: the same decode, then the documents (index, id, `@` fields)
//! and the `_bulk` bodies. Throughput is MB of decoded CloudTrail JSON (the
//! log events' messages) per second; no network.

use base64::Engine;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use trailwatch::lambda::forwarder::{bulk_requests, documents_and_hits, LogBatch};

fn payloads() -> (Vec<String>, u64, u64) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/forward-day");
    let marker = dir.join(".complete");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let o = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args([
                "simulate",
                "--out",
                dir.to_str().unwrap(),
                "--days",
                "1",
                "--seed",
                "2",
                "--start",
                "2026-01-05",
                "--scale",
                "3",
                "--no-incidents",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::write(&marker, "").unwrap();
    }
    let mut messages = Vec::new();
    for input in trailwatch::cloudtrail::discover(&[dir]).unwrap() {
        let trailwatch::cloudtrail::Input::File { path, .. } = input else {
            continue;
        };
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for r in v["Records"].as_array().unwrap() {
            messages.push(r.to_string());
        }
    }
    let bytes: u64 = messages.iter().map(|m| m.len() as u64).sum();
    let records = messages.len() as u64;
    let payloads = messages
        .chunks(1000)
        .map(|chunk| {
            let events: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| serde_json::json!({"id": i.to_string(), "timestamp": 0, "message": m}))
                .collect();
            let payload = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/trailwatch/cloudtrail",
                "logStream": "s", "subscriptionFilters": ["f"], "logEvents": events});
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(payload.to_string().as_bytes()).unwrap();
            base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
        })
        .collect();
    (payloads, records, bytes)
}

fn floor(payloads: &[String]) -> u64 {
    let mut records = 0;
    for data in payloads {
        let gz = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        let mut json = Vec::new();
        flate2::read::MultiGzDecoder::new(gz.as_slice())
            .read_to_end(&mut json)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        for e in v["logEvents"].as_array().unwrap() {
            let r: serde_json::Value =
                serde_json::from_str(e["message"].as_str().unwrap()).unwrap();
            records += r.is_object() as u64;
        }
    }
    records
}

fn ours(payloads: &[String]) -> (u64, u64) {
    let rules = trailwatch::detector::shipped_rules();
    let (mut docs_out, mut body_bytes) = (0, 0);
    for data in payloads {
        let batch = LogBatch::from_awslogs_data(data).unwrap();
        // As deployed: the shipped rules are checked on every record.
        let parsed = documents_and_hits(&batch, &rules);
        assert!(parsed.poison.is_empty());
        let docs = parsed.docs;
        let all: Vec<usize> = (0..docs.len()).collect();
        for request in bulk_requests(&docs, &all, 5 * 1024 * 1024) {
            body_bytes += request.body.len() as u64;
        }
        docs_out += docs.len() as u64;
    }
    (docs_out, body_bytes)
}

fn main() {
    let (payloads, records, bytes) = payloads();
    let mb = bytes as f64 / 1e6;
    println!("trailwatch forwarder against the floor (base64 + gunzip + serde_json of the same payloads, one core)");
    println!(
        "{} payloads, {records} records, {mb:.1} MB of CloudTrail JSON",
        payloads.len()
    );
    // Once each to warm up, then timed, best of three.
    floor(&payloads);
    ours(&payloads);
    let best = |f: &dyn Fn() -> u64| {
        (0..3)
            .map(|_| {
                let start = Instant::now();
                assert_eq!(f(), records);
                start.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    };
    let floor_s = best(&|| floor(&payloads));
    let ours_s = best(&|| ours(&payloads).0);
    let (_, body) = ours(&payloads);
    println!("{:<28} {:>9} {:>9}", "", "MB/s", "ratio");
    println!(
        "{:<28} {:>9.1} {:>8.2}x",
        "floor (decode + parse)",
        mb / floor_s,
        1.0
    );
    println!(
        "{:<28} {:>9.1} {:>8.2}x",
        "forwarder (+ _bulk bodies)",
        mb / ours_s,
        ours_s / floor_s
    );
    println!(
        "_bulk bodies: {:.1} MB ({:.2}x the records' JSON)",
        body as f64 / 1e6,
        body as f64 / bytes as f64
    );
}
