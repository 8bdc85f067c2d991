//! What a deployment costs a month, per component, at a given number of
//! CloudTrail events a day (`plan --events-per-day`): a pure function of
//! the deploy configuration, the price table and its usage assumptions
//! (`src/cost/prices.toml`), so `--ingest cwl` and `--ingest s3` can be put
//! side by side.

use super::config::{DeployConfig, Ingest};
use crate::cost::{prices, thousands, PriceTable, HOURS_PER_MONTH};
use serde::Serialize;

/// Days in a billing month (730 hours).
const DAYS_PER_MONTH: f64 = HOURS_PER_MONTH / 24.0;
const GB: f64 = 1e9;

/// What the trail produces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Volume {
    /// CloudTrail events a day, management and data.
    pub events_per_day: u64,
    /// Of which data events (S3 objects, Lambda invocations), billed by
    /// CloudTrail.
    pub data_events_per_day: u64,
}

/// One priced component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub component: &'static str,
    /// What was counted, in words.
    pub basis: String,
    /// USD a month; `None` when it is not trailwatch's to price (an
    /// existing domain) or the table has no price.
    pub usd: Option<f64>,
}

/// A deployment's month, for one way of ingesting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub ingest: Ingest,
    pub lines: Vec<Line>,
    pub total: f64,
}

/// The estimate for each way `config` could ingest: both, unless there
/// is no domain (then only from the bucket).
pub fn compare(config: &DeployConfig, volume: Volume) -> Vec<Estimate> {
    let ways: &[Ingest] = if config.opensearch {
        &[Ingest::Cwl, Ingest::S3]
    } else {
        &[Ingest::S3]
    };
    ways.iter()
        .map(|&ingest| {
            estimate(
                &DeployConfig {
                    ingest,
                    ..config.clone()
                },
                volume,
                prices(),
            )
        })
        .collect()
}

/// The month of `config` at `volume`, priced from `table`.
pub fn estimate(config: &DeployConfig, volume: Volume, table: &PriceTable) -> Estimate {
    let p = &table.services;
    let u = &table.usage;
    let events = volume.events_per_day as f64 * DAYS_PER_MONTH;
    let json_gb = events * u.event_bytes / GB;
    let stored_gb = json_gb / u.gzip_ratio;
    let cwl = config.ingest == Ingest::Cwl;
    let indexes = config.opensearch;
    // CloudTrail writes a delivery per region about every five minutes;
    // the engine's queue hands them over at most once a minute, and no
    // sooner than the last invocation ended.
    let deliveries = (288 * u.regions) as f64 * DAYS_PER_MONTH;
    let invocation_ms = engine_invocation_ms(volume.events_per_day, table);
    let invocations = deliveries
        .min(1440.0 * DAYS_PER_MONTH)
        .min(86_400_000.0 / invocation_ms.max(1.0) * DAYS_PER_MONTH);
    let gb_seconds = |ms: f64| ms / 1000.0 * f64::from(u.lambda_memory_mb) / 1024.0;
    let lambda = |requests: f64, ms: f64| {
        requests / 1e6 * p.lambda_requests_per_million + gb_seconds(ms) * p.lambda_x86_gb_second
    };
    let mut lines = Vec::new();
    let mut line = |component, basis: String, usd: Option<f64>| {
        lines.push(Line {
            component,
            basis,
            usd,
        })
    };
    match (&config.existing_domain, config.opensearch) {
        (_, false) => {}
        (Some(d), true) => line(
            "OpenSearch domain",
            format!("the existing domain {} (not priced here)", d.endpoint),
            None,
        ),
        (None, true) => {
            let domain = crate::cost::domain_per_month(
                (&config.instance_type, config.instance_count),
                config
                    .dedicated_master_type
                    .as_deref()
                    .zip(config.dedicated_master_count),
                config.ebs_size_gib,
            );
            let parts: Vec<&str> = domain.lines.iter().map(|(w, _)| w.as_str()).collect();
            let priced = domain.lines.iter().all(|(_, m)| m.is_some());
            line(
                "OpenSearch domain",
                parts.join(", "),
                priced.then_some(domain.total),
            );
        }
    }
    if cwl {
        line(
            "CloudWatch Logs ingestion",
            format!("{:.1} GB of records a month", json_gb),
            Some(json_gb * p.cloudwatch_logs_ingest_per_gb),
        );
        let kept = json_gb / u.gzip_ratio * f64::from(config.log_retention_days) / DAYS_PER_MONTH;
        line(
            "CloudWatch Logs storage",
            format!(
                "{kept:.1} GB kept ({} days, compressed)",
                config.log_retention_days
            ),
            Some(kept * p.cloudwatch_logs_stored_per_gb_month),
        );
    }
    line(
        "CloudTrail data events",
        format!(
            "{} data events a day (the first copy of management events is free)",
            thousands(volume.data_events_per_day)
        ),
        Some(
            volume.data_events_per_day as f64 * DAYS_PER_MONTH / 1e5
                * p.cloudtrail_data_events_per_100k,
        ),
    );
    let per_thousand = events / 1000.0;
    if cwl && indexes {
        let requests = events / f64::from(u.forwarder_events_per_invocation);
        line(
            "Lambda: forwarder",
            format!(
                "{} invocations, {:.0} ms per 1,000 events",
                thousands(requests as u64),
                u.index_ms_per_1000_events
            ),
            Some(lambda(requests, per_thousand * u.index_ms_per_1000_events)),
        );
    }
    let engine_ms = invocations * invocation_ms
        + if !cwl && indexes {
            per_thousand * u.index_ms_per_1000_events
        } else {
            0.0
        };
    line(
        "Lambda: engine",
        format!(
            "{} invocations, {} GB-s{}",
            thousands(invocations as u64),
            thousands(gb_seconds(engine_ms) as u64),
            if !cwl && indexes {
                ", indexing too"
            } else {
                ""
            }
        ),
        Some(lambda(invocations, engine_ms)),
    );
    let s3_requests = deliveries * (p.s3_put_per_1000 + p.s3_get_per_1000) / 1000.0
        + invocations * (p.s3_put_per_1000 + p.s3_get_per_1000) / 1000.0;
    line(
        "S3",
        format!(
            "{stored_gb:.1} GB of deliveries a month (Standard for 90 days, then Glacier), {} deliveries written and read, the engine's state",
            thousands(deliveries as u64)
        ),
        Some(stored_gb * p.s3_standard_per_gb_month + s3_requests),
    );
    let polls = f64::from(u.sqs_pollers) * 3.0 * 60.0 * 24.0 * DAYS_PER_MONTH;
    let sqs_requests = deliveries + 2.0 * invocations + polls;
    line(
        "SQS",
        format!(
            "{} requests (notifications, the Lambda service's long polls)",
            thousands(sqs_requests as u64)
        ),
        Some(sqs_requests / 1e6 * p.sqs_requests_per_million),
    );
    // SNS: pages are few; KMS: a key, and data keys reused by SQS (5 min)
    // and S3 (bucket keys).
    let kms_requests = 2.0 * invocations + deliveries;
    line(
        "SNS and KMS",
        format!(
            "one key, {} key requests, pages",
            thousands(kms_requests as u64)
        ),
        Some(
            p.kms_key_per_month
                + kms_requests / 1e4 * p.kms_requests_per_10000
                + 1000.0 / 1e6 * p.sns_publishes_per_million,
        ),
    );
    let total = lines.iter().filter_map(|l| l.usd).sum();
    Estimate {
        ingest: config.ingest,
        lines,
        total,
    }
}

/// How long one engine invocation takes at `events_per_day` (the state's
/// replay dominates, and grows with the daily volume).
pub fn engine_invocation_ms(events_per_day: u64, table: &PriceTable) -> f64 {
    events_per_day as f64 / 1000.0 * table.usage.engine_ms_per_invocation_per_1000_daily_events
}

/// What every estimate assumes, in words, from the table.
pub fn assumptions(table: &PriceTable) -> Vec<String> {
    let u = &table.usage;
    vec![
        format!(
            "{} on-demand list prices of {}, no free tier",
            table.region, table.date
        ),
        format!(
            "{} bytes a record as JSON, deliveries gzip 1:{}",
            u.event_bytes, u.gzip_ratio
        ),
        format!(
            "{} regions delivering every five minutes; the engine is invoked at most once a minute",
            u.regions
        ),
        format!(
            "Lambdas of {} MB on x86; an engine invocation takes {} ms per 1,000 events a day (make bench, extrapolated to a week of history); indexing {} ms per 1,000 events (assumed)",
            u.lambda_memory_mb,
            u.engine_ms_per_invocation_per_1000_daily_events,
            u.index_ms_per_1000_events
        ),
        "data transfer, the Lambdas' own logs and CloudWatch alarms are not counted".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::DeployOptions;

    fn config(o: DeployOptions) -> DeployConfig {
        o.validate().unwrap()
    }

    fn usd(e: &Estimate, component: &str) -> Option<f64> {
        e.lines
            .iter()
            .find(|l| l.component == component)
            .and_then(|l| l.usd)
    }

    const MILLION: Volume = Volume {
        events_per_day: 1_000_000,
        data_events_per_day: 0,
    };

    /// CloudWatch Logs bills each GB ingested: a million events of 1,270
    /// bytes a day is 38.6 GB a month, $19.31 at $0.50.
    #[test]
    fn cloudwatch_logs_ingestion_is_priced_per_gb_of_records() {
        let e = estimate(&config(DeployOptions::default()), MILLION, prices());
        let ingest = usd(&e, "CloudWatch Logs ingestion").unwrap();
        assert!((ingest - 1e6 * DAYS_PER_MONTH * 1270.0 / 1e9 * 0.50).abs() < 1e-9);
        assert!((ingest - 19.31).abs() < 0.01, "{ingest}");
    }

    /// The same options ingesting from the bucket have no CloudWatch Logs
    /// line and no forwarder, and cost less; both pay the same domain.
    #[test]
    fn the_bucket_path_drops_cloudwatch_logs_and_the_forwarder() {
        let both = compare(&config(DeployOptions::default()), MILLION);
        let [cwl, s3] = &both[..] else {
            panic!("{both:?}")
        };
        assert_eq!((cwl.ingest, s3.ingest), (Ingest::Cwl, Ingest::S3));
        assert!(usd(s3, "CloudWatch Logs ingestion").is_none());
        assert!(usd(s3, "Lambda: forwarder").is_none());
        assert!(usd(cwl, "Lambda: forwarder").unwrap() > 0.0);
        assert_eq!(usd(cwl, "OpenSearch domain"), usd(s3, "OpenSearch domain"));
        assert!(s3.total < cwl.total, "{} {}", s3.total, cwl.total);
        let sum: f64 = cwl.lines.iter().filter_map(|l| l.usd).sum();
        assert!((sum - cwl.total).abs() < 1e-9);
    }

    /// Without a domain only the bucket path exists; an existing domain is
    /// named, not priced.
    #[test]
    fn no_domain_prices_the_engine_alone_and_an_existing_one_is_not_priced() {
        let lean = compare(
            &config(DeployOptions {
                no_opensearch: true,
                ..Default::default()
            }),
            MILLION,
        );
        assert_eq!(lean.len(), 1);
        assert!(usd(&lean[0], "OpenSearch domain").is_none());
        assert!(lean[0].total < 10.0, "{:?}", lean[0]);
        let existing = estimate(
            &config(DeployOptions {
                existing_domain_endpoint: Some(
                    "https://search-x.eu-west-1.es.amazonaws.com".into(),
                ),
                existing_domain_writer_role_arn: Some("arn:aws:iam::123456789012:role/w".into()),
                existing_domain_reader_role_arn: Some("arn:aws:iam::123456789012:role/r".into()),
                ..Default::default()
            }),
            MILLION,
            prices(),
        );
        let domain = existing
            .lines
            .iter()
            .find(|l| l.component == "OpenSearch domain")
            .unwrap();
        assert_eq!(domain.usd, None);
        assert!(domain.basis.contains("search-x"));
    }

    /// Data events are billed per 100,000; the engine grows with events.
    #[test]
    fn data_events_and_the_engine_grow_with_the_volume() {
        let c = config(DeployOptions::default());
        let more = Volume {
            events_per_day: 10_000_000,
            data_events_per_day: 1_000_000,
        };
        let small = estimate(&c, MILLION, prices());
        let big = estimate(&c, more, prices());
        let trail = usd(&big, "CloudTrail data events").unwrap();
        assert!((trail - 1e6 * DAYS_PER_MONTH / 1e5 * 0.10).abs() < 1e-9);
        assert_eq!(usd(&small, "CloudTrail data events"), Some(0.0));
        assert!(usd(&big, "Lambda: engine").unwrap() > usd(&small, "Lambda: engine").unwrap());
    }
}
