//! What an anomaly started costs: the on-demand price table shipped in the
//! repo (`prices.toml`, with its date, region and assumptions) and the
//! estimate for the instances and volumes of a window, per hour and per day
//! if left running. Shared by `detect` and the enricher through
//! [`crate::context`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The price table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    pub date: String,
    pub region: String,
    pub currency: String,
    pub assumptions: Vec<String>,
    /// Per instance-hour.
    pub instances: BTreeMap<String, f64>,
    /// Per GiB-month.
    pub volumes: BTreeMap<String, f64>,
    /// Amazon OpenSearch Service, for what a deployment costs.
    pub opensearch: DomainPrices,
    /// The other services a deployment uses.
    pub services: ServicePrices,
    /// What a deployment's estimate assumes.
    pub usage: Usage,
}

/// List prices of the services around the domain (USD).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePrices {
    pub cloudwatch_logs_ingest_per_gb: f64,
    pub cloudwatch_logs_stored_per_gb_month: f64,
    pub cloudtrail_data_events_per_100k: f64,
    pub lambda_requests_per_million: f64,
    pub lambda_x86_gb_second: f64,
    pub s3_standard_per_gb_month: f64,
    pub s3_put_per_1000: f64,
    pub s3_get_per_1000: f64,
    pub sqs_requests_per_million: f64,
    pub sns_publishes_per_million: f64,
    pub kms_key_per_month: f64,
    pub kms_requests_per_10000: f64,
}

/// What a deployment's estimate assumes of the trail and the Lambdas.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    pub event_bytes: f64,
    pub gzip_ratio: f64,
    pub regions: u32,
    pub engine_ms_per_invocation_per_1000_daily_events: f64,
    pub index_ms_per_1000_events: f64,
    pub forwarder_events_per_invocation: u32,
    pub lambda_memory_mb: u32,
    pub sqs_pollers: u32,
}

/// OpenSearch Service prices: per instance-hour, and gp3 per GiB-month.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainPrices {
    pub gp3_per_gib_month: f64,
    pub instances: BTreeMap<String, f64>,
}

/// What something costs a month: its lines (what, USD a month; `None`
/// when the table has no price for it) and the total of the priced ones.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthlyCost {
    pub lines: Vec<(String, Option<f64>)>,
    pub total: f64,
}

/// What a domain costs a month: data nodes, dedicated masters, storage.
pub fn domain_per_month(
    data: (&str, u32),
    masters: Option<(&str, u32)>,
    gib_per_node: u32,
) -> MonthlyCost {
    let p = &prices().opensearch;
    let mut lines = Vec::new();
    for (kind, (t, n)) in [("data", Some(data)), ("master", masters)]
        .into_iter()
        .filter_map(|(k, x)| Some((k, x?)))
    {
        let month = p
            .instances
            .get(t)
            .map(|h| h * f64::from(n) * HOURS_PER_MONTH);
        lines.push((format!("{n} × {t} ({kind})"), month));
    }
    let gib = data.1 * gib_per_node;
    lines.push((
        format!("{gib} GiB gp3"),
        Some(f64::from(gib) * p.gp3_per_gib_month),
    ));
    let total = lines.iter().filter_map(|(_, m)| *m).sum();
    MonthlyCost { lines, total }
}

/// Hours in a billing month, as AWS counts them.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The table shipped with trailwatch.
pub fn prices() -> &'static PriceTable {
    static TABLE: OnceLock<PriceTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        toml::from_str(include_str!("prices.toml")).expect("src/cost/prices.toml is valid")
    })
}

/// One priced line: `3 × p4d.24xlarge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostItem {
    pub what: String,
    pub count: f64,
    /// Per hour for all of them; `None` when the table has no price.
    pub per_hour: Option<f64>,
}

/// What the resources started in a window cost if left running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub items: Vec<CostItem>,
    pub per_hour: f64,
    pub per_day: f64,
    pub currency: String,
    /// "us-east-1 on-demand list prices of 2026-11-01".
    pub basis: String,
    pub assumptions: Vec<String>,
}

impl Estimate {
    /// The estimate for a share `f` (0–1) of what it priced: the part of a
    /// window's launches made by some minute, when only the window's total
    /// mix is known.
    pub fn share(&mut self, f: f64) {
        for item in &mut self.items {
            item.count *= f;
            item.per_hour = item.per_hour.map(|x| x * f);
        }
        self.per_hour *= f;
        self.per_day *= f;
    }

    /// `$527.04/h, $12,649/day if left running`.
    pub fn headline(&self) -> String {
        format!(
            "${}/h, ${}/day if left running",
            money(self.per_hour),
            money(self.per_day)
        )
    }
}

/// A count with thousands separators: 35,040.
pub fn thousands(n: u64) -> String {
    if n < 100 {
        n.to_string()
    } else {
        money(n as f64)
    }
}

/// Dollars for people: cents under $100, whole dollars with thousands
/// separators above.
pub fn money(x: f64) -> String {
    if x < 100.0 {
        return format!("{x:.2}");
    }
    let whole = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prices instances per type and volume GiB per type. `None` when nothing
/// was started.
pub fn estimate(
    table: &PriceTable,
    instances: &[(String, f64)],
    volume_gib: &[(String, f64)],
) -> Option<Estimate> {
    let mut items = Vec::new();
    for (kind, count) in instances.iter().filter(|(_, n)| *n > 0.0) {
        items.push(CostItem {
            what: format!("{} × {kind}", trim(*count)),
            count: *count,
            per_hour: table.instances.get(kind).map(|p| p * count),
        });
    }
    for (kind, gib) in volume_gib.iter().filter(|(_, n)| *n > 0.0) {
        items.push(CostItem {
            what: format!("{} GiB {kind}", trim(*gib)),
            count: *gib,
            per_hour: table.volumes.get(kind).map(|p| p * gib / HOURS_PER_MONTH),
        });
    }
    if items.is_empty() {
        return None;
    }
    let per_hour: f64 = items.iter().filter_map(|i| i.per_hour).sum();
    Some(Estimate {
        per_hour: (per_hour * 100.0).round() / 100.0,
        per_day: (per_hour * 24.0 * 100.0).round() / 100.0,
        items,
        currency: table.currency.clone(),
        basis: format!("{} on-demand list prices of {}", table.region, table.date),
        assumptions: table.assumptions.clone(),
    })
}

fn trim(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_is_dated_and_prices_the_gpu_instances_after_the_2025_cut() {
        let t = prices();
        assert_eq!(t.currency, "USD");
        assert!(chrono::NaiveDate::parse_from_str(&t.date, "%Y-%m-%d").is_ok());
        assert!(!t.assumptions.is_empty());
        // After AWS's June 2025 reductions, not the older $98.32 and $32.77.
        assert!(t.instances["p5.48xlarge"] < 60.0);
        assert!(t.instances["p4d.24xlarge"] < 25.0);
        assert!(t
            .instances
            .values()
            .chain(t.volumes.values())
            .all(|p| *p > 0.0));
    }

    #[test]
    fn instances_and_volumes_are_priced_per_hour_and_day() {
        let t = prices();
        let e = estimate(
            t,
            &[("p4d.24xlarge".into(), 10.0), ("x9.unknown".into(), 2.0)],
            &[("gp3".into(), 7300.0)],
        )
        .unwrap();
        let p4d = t.instances["p4d.24xlarge"] * 10.0;
        let gp3 = t.volumes["gp3"] * 7300.0 / HOURS_PER_MONTH;
        assert!((e.per_hour - (p4d + gp3)).abs() < 0.01, "{e:?}");
        assert!((e.per_day - 24.0 * (p4d + gp3)).abs() < 0.1);
        assert_eq!(e.items[1].what, "2 × x9.unknown");
        assert_eq!(
            e.items[1].per_hour, None,
            "unknown types are listed, not priced"
        );
        assert_eq!(e.items[2].what, "7300 GiB gp3");
        assert!(e.basis.contains(&t.date) && e.basis.contains("us-east-1"));
        assert_eq!(estimate(t, &[], &[]), None);
    }

    #[test]
    fn money_reads_well() {
        assert_eq!(money(0.5), "0.50");
        assert_eq!(money(219.6), "220");
        assert_eq!(money(12649.0), "12,649");
        assert_eq!(money(1234567.0), "1,234,567");
    }
}
