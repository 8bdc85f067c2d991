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
pub const TARGETS: [(&str, Target); 7] = [
    ("cloudtrail", cloudtrail),
    ("cloudwatch_logs", cloudwatch_logs),
    ("detector_toml", detector_toml),
    ("series_csv", series_csv),
    ("rcf_series", rcf_series),
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
        let (scores, _) = plain_series::score(&points, &plain_series::default_scorer(8));
        let _ = plain_series::scores_csv(&points, &scores);
    }
}

/// Per-entity series of a high-cardinality detector through the models of
/// every series ([`RcfState`](crate::engine::rcf_state::RcfState)), scored
/// in steps as `--follow` scores them: the path that panicked on a
/// realistic organisation. The bytes say, two at a time, which entity (of
/// eight) has a value, how many intervals pass before it (long gaps
/// included), and the value (mostly small, bursts, absurd); every sixteenth
/// pair the models advance. The first byte bounds the entities modelled (so
/// entities are evicted and come back); the second makes the forest fail
/// at every that-many values of a first-generation model (0: never), so the
/// rebuild and set-aside paths run on the real forest too.
pub fn rcf_series(data: &[u8]) {
    use crate::engine::aggregate::{Aggregates, Bucket, Cell, DetectorAggregate};
    use crate::engine::rcf::{ModelError, RcfConfig, RcfScorer, Score, Scorer};
    use crate::engine::rcf_state::RcfState;

    struct Failing {
        forest: RcfScorer,
        seen: usize,
        every: usize,
    }
    impl Scorer for Failing {
        fn update(&mut self, value: f64) -> Result<Score, ModelError> {
            self.seen += 1;
            if self.every > 0 && self.seen.is_multiple_of(self.every) {
                return Err(ModelError("injected by the fuzz target".into()));
            }
            self.forest.update(value)
        }
    }

    let Some((&[bound, fail_every], pairs)) = data.split_first_chunk::<2>() else {
        return;
    };
    let Ok(d) = parse_detector(
        Path::new("fuzz.toml"),
        "category_fields = [\"requestParameters.functionName\"]",
    ) else {
        return;
    };
    let detectors = [d];
    let factory =
        move |d: &crate::detector::Detector, _: &crate::detector::Entity, generation: u32| {
            // The real forest, small so that a case runs fast.
            let mut config = RcfConfig::plugin_defaults(d.shingle_size, generation as u64);
            config.trees = 5;
            config.sample_size = 32;
            Box::new(Failing {
                forest: RcfScorer::new(config),
                seen: 0,
                every: if generation == 0 {
                    fail_every as usize
                } else {
                    0
                },
            }) as Box<dyn Scorer>
        };
    let mut agg = DetectorAggregate::default();
    let mut state = RcfState::default();
    let mut bucket = 0i64;
    let first = chrono::DateTime::from_timestamp(0, 0);
    let advance = |agg: &DetectorAggregate, state: &mut RcfState, upto: i64| {
        let last = chrono::DateTime::from_timestamp(upto.max(0) * 600, 0);
        let aggregates = Aggregates {
            detectors: vec![agg.clone()],
            first_event: first,
            last_event: last,
            ..Aggregates::default()
        };
        let _ = state.advance(
            &detectors,
            &aggregates,
            &|_| upto + 1,
            None,
            1 + (bound % 8) as usize,
            &factory,
        );
    };
    for (n, pair) in pairs.chunks_exact(2).take(4096).enumerate() {
        let (who, value) = (pair[0], pair[1]);
        let gap = (who >> 3) as i64;
        bucket += gap * gap * gap;
        let value = match value {
            255 => 1e300,
            254 => f64::NAN,
            v if v >= 200 => (v as f64 - 199.0) * 1000.0,
            v => (v % 4) as f64,
        };
        let series = agg
            .series
            .entry(vec![format!("fn-{}", who & 7)])
            .or_default();
        series
            .entry(bucket)
            .and_modify(|b| b.cell = Cell::Number(b.cell.value() + value))
            .or_insert(Bucket::number(value));
        if n % 16 == 15 {
            advance(&agg, &mut state, bucket);
        }
    }
    advance(&agg, &mut state, bucket);
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
