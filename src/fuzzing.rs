//! Entry points for the fuzz targets in `tests/fuzz/` (`make fuzz`) and for the
//! replay of their saved corpus in `make test`: one per parser of outside
//! input. Each takes any bytes and must return without panicking, hanging or
//! growing without bound; what it returns is not the point.

use crate::cloudtrail::{read_bytes, read_input, FieldPath, Projection};
use crate::detector::{parse_detector, shipped};
use crate::engine::aggregate::Aggregator;
use std::path::Path;

/// One fuzz target: any bytes in, nothing out.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, as `tests/fuzz/fuzz_targets/<name>.rs` and
/// `tests/fuzz/corpus/<name>/` name them.
pub const TARGETS: [(&str, Target); 6] = [
    ("cloudtrail", cloudtrail),
    ("cloudwatch_logs", cloudwatch_logs),
    ("detector_toml", detector_toml),
    ("series_csv", series_csv),
    ("alert", alert),
    ("keys_and_paths", keys_and_paths),
];

/// A CloudTrail input of any shape (deliveries, JSON lines, gzip members,
/// several documents), read both ways, into the shipped detectors'
/// aggregation: every number and time a detector reads goes through it.
pub fn cloudtrail(data: &[u8]) {
    let detectors = shipped();
    let projection = Projection::for_records(detectors.iter().flat_map(|d| d.field_paths()));
    let mut agg = Aggregator::new(&detectors, None);
    read_bytes("fuzz", data, &projection, |r| agg.record(&r), |_| {});
    read_input("fuzz", data, &Projection::All, |r| agg.record(&r), |_| {});
    let _ = agg.outliers();
    let _ = agg.finish();
}

/// A CloudWatch Logs subscription payload: the bytes as `awslogs.data`
/// (base64 of them), and as the decoded payload, through the forwarder's
/// reading of the event.
pub fn cloudwatch_logs(data: &[u8]) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let event = serde_json::json!({"awslogs": {"data": encoded}});
    let _ = crate::lambda::delivery::batch_of_event(&event);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = crate::lambda::delivery::batch_of_event(&value);
    }
    let _ = crate::cloudtrail::read::decode_awslogs_data(&String::from_utf8_lossy(data));
}

/// A detector file.
pub fn detector_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(d) = parse_detector(Path::new("fuzz.toml"), text) {
            let _ = d.field_paths().len();
        }
    }
}

/// A `--series` CSV, read and (when short) scored.
pub fn series_csv(data: &[u8]) {
    use crate::engine::plain_series;
    let text = String::from_utf8_lossy(data);
    let (points, _) = plain_series::read_csv(&text);
    if points.len() <= 64 {
        let scores = plain_series::score(&points, &mut plain_series::default_scorer(8));
        let _ = plain_series::scores_csv(&points, &scores);
    }
}

/// The enricher's alert: an SNS event or the monitor's message.
pub fn alert(data: &[u8]) {
    use crate::lambda::alert::{messages_of_event, Alert};
    let text = String::from_utf8_lossy(data);
    let _ = Alert::from_message(&text);
    if let Ok(event) = serde_json::from_str::<serde_json::Value>(&text) {
        for message in messages_of_event(&event) {
            let _ = Alert::from_message(&message);
        }
    }
}

/// S3 keys and paths: a delivery's file name as a folder walk judges it,
/// and detector field paths.
pub fn keys_and_paths(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::cloudtrail::discover::is_log_name(&text);
    for line in text.lines() {
        let _ = FieldPath::parse(line);
    }
}
