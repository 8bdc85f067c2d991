//! `--report FILE.html`: one self-contained page (inline CSS, SVG and a few
//! lines of script, nothing fetched) with a timeline of incidents, a chart per
//! detector and entity with anomalies (values, the normal band, anomalies
//! marked), per insight a chart of its API's calls, and the table.
//!
//! [`charts`] reads the series out of the engine; [`render`] is a pure
//! function of its input, so it is tested on fixtures.

use super::aggregate::bucket_of;
use super::anomaly::{Anomaly, AnomalyKind};
use super::group::Incident;
use super::sink::incident_who;
use super::Engine;
use chrono::{DateTime, Duration, Utc};
use std::fmt::Write as _;

/// One chart: evenly spaced values from `start`, every `step`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub subtitle: String,
    pub start: DateTime<Utc>,
    pub step: Duration,
    pub values: Vec<f64>,
    /// Per point, the normal range: mean ± 3 σ of the day before it.
    pub band: Vec<(f64, f64)>,
    /// Indexes of the anomalous points and their grades.
    pub marks: Vec<(usize, f64)>,
}

/// Everything on the page.
pub struct ReportInput<'a> {
    pub generated: DateTime<Utc>,
    pub first_event: Option<DateTime<Utc>>,
    pub last_event: Option<DateTime<Utc>>,
    pub events: u64,
    pub anomalies: &'a [Anomaly],
    pub incidents: &'a [Incident],
    pub charts: &'a [Chart],
}

/// The normal band of each point: median ± 3 scaled MADs of the `window`
/// points before it. Robust: an anomaly does not widen the band after it.
pub fn band(values: &[f64], window: usize) -> Vec<(f64, f64)> {
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    (0..values.len())
        .map(|i| {
            let before = &values[i.saturating_sub(window)..i];
            if before.is_empty() {
                return (values[i], values[i]);
            }
            let mut v = before.to_vec();
            let m = median(&mut v);
            let mut dev: Vec<f64> = before.iter().map(|x| (x - m).abs()).collect();
            let spread = 3.0 * 1.4826 * median(&mut dev);
            ((m - spread).max(0.0), m + spread)
        })
        .collect()
}

/// Charts for the anomalies found: each RCF detector and entity, and each
/// insight's API (calls or errors per 10 minutes), from two days before its
/// first anomaly to the end of the data.
pub fn charts(engine: &Engine<'_>, anomalies: &[Anomaly]) -> Vec<Chart> {
    let agg = &engine.aggregates;
    let (Some(first), Some(last)) = (agg.first_event, agg.last_event) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for a in anomalies {
        let key = (a.kind, a.detector.clone(), a.entity_text());
        if a.kind == AnomalyKind::NewEvent || !seen.insert(key) {
            continue;
        }
        let related: Vec<&Anomaly> = anomalies
            .iter()
            .filter(|b| b.kind == a.kind && b.detector == a.detector && b.entity == a.entity)
            .collect();
        // Two days before the first of them to a day after the last: a chart
        // of a year of data would be a black bar.
        let from = (related[0].start - Duration::days(2)).max(first);
        let last = related
            .iter()
            .map(|r| r.end)
            .max()
            .map_or(last, |end| (end + Duration::days(1)).min(last));
        let (step, values, subtitle) = match a.kind {
            AnomalyKind::Rcf => {
                let Some((i, d)) = engine
                    .detectors()
                    .iter()
                    .enumerate()
                    .find(|(_, d)| d.name == a.detector)
                else {
                    continue;
                };
                let entity: Vec<String> = match &a.entity {
                    None => Vec::new(),
                    Some(map) => d
                        .category_fields
                        .iter()
                        .filter_map(|f| map.get(f.as_str()).cloned())
                        .collect(),
                };
                let secs = d.interval.as_secs() as i64;
                let Some(series) = agg.detectors.get(i).and_then(|x| x.series.get(&entity)) else {
                    continue;
                };
                let (b0, b1) = (bucket_of(from, secs), bucket_of(last, secs));
                let values = (b0..=b1)
                    .map(|b| series.get(&b).map_or(0.0, |x| x.cell.value()))
                    .collect();
                let subtitle = match &a.entity {
                    None => d.description.clone(),
                    Some(_) => format!("{} — {}", d.description, a.entity_text()),
                };
                (Duration::seconds(secs), values, subtitle)
            }
            AnomalyKind::Insight => {
                let entity = a.entity.clone().unwrap_or_default();
                let get = |k: &str| entity.get(k).cloned().unwrap_or_default();
                let key = super::insights::InsightKey {
                    account: get("recipientAccountId"),
                    region: get("awsRegion"),
                    event_source: get("eventSource"),
                    event_name: get("eventName"),
                };
                let Some(kc) = agg.insights.keys.get(&key.joined()) else {
                    continue;
                };
                let column = usize::from(a.detector == "ApiErrorRateInsight");
                let (b0, b1) = (bucket_of(from, 600), bucket_of(last, 600));
                let mut values = vec![0.0; (b1 - b0 + 1) as usize];
                for (m, c) in kc.minutes.range(b0 * 10..(b1 + 1) * 10) {
                    values[(m.div_euclid(10) - b0) as usize] += c[column] as f64;
                }
                let what = if column == 1 { "errors" } else { "write calls" };
                (
                    Duration::minutes(10),
                    values,
                    format!(
                        "{}:{} {what} per 10 minutes in {}/{}",
                        get("eventSource"),
                        get("eventName"),
                        get("recipientAccountId"),
                        get("awsRegion")
                    ),
                )
            }
            AnomalyKind::NewEvent => continue,
        };
        let start =
            DateTime::from_timestamp(bucket_of(from, step.num_seconds()) * step.num_seconds(), 0)
                .unwrap_or(from);
        let marks = related
            .iter()
            .filter_map(|r| {
                let i = (r.start - start)
                    .num_seconds()
                    .div_euclid(step.num_seconds());
                usize::try_from(i)
                    .ok()
                    .filter(|&i| i < values.len())
                    .map(|i| (i, r.grade))
            })
            .collect();
        let window = (86_400 / step.num_seconds().max(1)) as usize;
        out.push(Chart {
            title: a.detector.clone(),
            subtitle,
            start,
            step,
            band: band(&values, window),
            values,
            marks,
        });
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 960.0;
const H: f64 = 180.0;
const PAD: f64 = 40.0;

fn chart_svg(c: &Chart) -> String {
    let n = c.values.len().max(2);
    let top = c
        .values
        .iter()
        .chain(c.band.iter().map(|b| &b.1))
        .fold(1.0f64, |m, v| m.max(*v))
        * 1.1;
    let x = |i: usize| PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64;
    let y = |v: f64| H - PAD / 2.0 - (H - PAD) * v / top;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
        esc(&c.title)
    );
    let upper: Vec<String> = c
        .band
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{:.1},{:.1}", x(i), y(b.1)))
        .collect();
    let lower: Vec<String> = c
        .band
        .iter()
        .enumerate()
        .rev()
        .map(|(i, b)| format!("{:.1},{:.1}", x(i), y(b.0)))
        .collect();
    let _ = write!(
        s,
        r#"<polygon class="band" points="{} {}"/>"#,
        upper.join(" "),
        lower.join(" ")
    );
    let line: Vec<String> = c
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    let _ = write!(
        s,
        r#"<polyline class="values" points="{}"/>"#,
        line.join(" ")
    );
    for &(i, grade) in &c.marks {
        let _ = write!(
            s,
            r#"<line class="mark" x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}"/><circle class="anomaly" cx="{0:.1}" cy="{3:.1}" r="4"><title>{4} grade {5:.2}: {6}</title></circle>"#,
            x(i),
            PAD / 2.0,
            H - PAD / 2.0,
            y(c.values[i]),
            (c.start + c.step * i as i32).format("%Y-%m-%d %H:%M"),
            grade,
            c.values[i]
        );
    }
    // Axes: the first and last time, a tick a day, the top value.
    let _ = write!(
        s,
        r#"<line class="axis" x1="{PAD}" x2="{}" y1="{}" y2="{}"/>"#,
        W - PAD,
        H - PAD / 2.0,
        H - PAD / 2.0
    );
    let per_day = 86_400 / c.step.num_seconds().max(1);
    let first_midnight =
        (0..n as i64).find(|i| (c.start + c.step * *i as i32).timestamp() % 86_400 == 0);
    if let Some(m) = first_midnight {
        let mut i = m;
        while i < n as i64 {
            let t = c.start + c.step * i as i32;
            let _ = write!(
                s,
                r#"<line class="tick" x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}"/><text class="label" x="{0:.1}" y="{3}">{4}</text>"#,
                x(i as usize),
                PAD / 2.0,
                H - PAD / 2.0,
                H - 4.0,
                t.format("%m-%d")
            );
            i += per_day.max(1);
        }
    }
    let _ = write!(
        s,
        r#"<text class="label" x="2" y="{}">{}</text>"#,
        PAD / 2.0 + 4.0,
        super::score::trim_number((top / 1.1).round())
    );
    s.push_str("</svg>");
    s
}

fn timeline_svg(input: &ReportInput<'_>) -> String {
    let (Some(first), Some(last)) = (input.first_event, input.last_event) else {
        return String::new();
    };
    let span = (last - first).num_seconds().max(1) as f64;
    let x = |t: DateTime<Utc>| {
        PAD + (W - 2.0 * PAD) * ((t - first).num_seconds() as f64 / span).clamp(0.0, 1.0)
    };
    let rows = input.incidents.len().clamp(1, 12);
    let height = 30.0 + 18.0 * rows as f64;
    let mut s = format!(
        r#"<svg class="timeline" viewBox="0 0 {W} {height}" role="img" aria-label="timeline of incidents">"#
    );
    let _ = write!(
        s,
        r#"<line class="axis" x1="{PAD}" x2="{}" y1="{}" y2="{}"/>"#,
        W - PAD,
        height - 20.0,
        height - 20.0
    );
    let mut day = DateTime::from_timestamp(
        first.timestamp() - first.timestamp().rem_euclid(86_400) + 86_400,
        0,
    )
    .unwrap_or(first);
    while day < last {
        let _ = write!(
            s,
            r#"<line class="tick" x1="{0:.1}" x2="{0:.1}" y1="4" y2="{1}"/><text class="label" x="{0:.1}" y="{2}">{3}</text>"#,
            x(day),
            height - 20.0,
            height - 6.0,
            day.format("%m-%d")
        );
        day += Duration::days(1);
    }
    for (row, inc) in input.incidents.iter().enumerate() {
        let y = 6.0 + 18.0 * (row % rows) as f64;
        let kinds: std::collections::BTreeSet<&str> = inc
            .members
            .iter()
            .map(|&i| input.anomalies[i].kind.name())
            .collect();
        let class = if kinds.len() > 1 {
            "several"
        } else {
            kinds.iter().next().copied().unwrap_or("rcf")
        };
        let (x0, x1) = (x(inc.start), x(inc.end));
        let _ = write!(
            s,
            r#"<rect class="incident {class}" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="12"><title>#{} {} – {}: {}</title></rect><text class="label" x="{:.1}" y="{:.1}">#{}</text>"#,
            (x1 - x0).max(4.0),
            inc.id,
            inc.start.format("%Y-%m-%d %H:%M"),
            inc.end.format("%H:%M"),
            esc(&incident_who(input.anomalies, inc)),
            (x0 + (x1 - x0).max(4.0) + 3.0).min(W - 20.0),
            y + 10.0,
            inc.id
        );
    }
    s.push_str("</svg>");
    s
}

/// The whole page.
pub fn render(input: &ReportInput<'_>) -> String {
    let mut h = String::new();
    let range = match (input.first_event, input.last_event) {
        (Some(a), Some(b)) => format!(
            "{} to {}",
            a.format("%Y-%m-%d %H:%M"),
            b.format("%Y-%m-%d %H:%M UTC")
        ),
        _ => "no events".into(),
    };
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>trailwatch report</title><style>
body{{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;max-width:1040px}}
h1{{font-size:22px;margin:0 0 4px}}h2{{font-size:17px;margin:28px 0 8px}}h3{{font-size:15px;margin:18px 0 2px}}
.muted{{color:#57606a}}svg{{width:100%;height:auto;display:block}}
.band{{fill:#cfe3fa;stroke:none}}.values{{fill:none;stroke:#1f4e8c;stroke-width:1.3}}
.anomaly{{fill:#d1242f;stroke:#fff}}.mark{{stroke:#d1242f;stroke-dasharray:3 3;stroke-width:1}}
.axis{{stroke:#8c959f}}.tick{{stroke:#d0d7de}}.label{{font-size:10px;fill:#57606a}}
.incident{{opacity:.85}}.incident.rcf{{fill:#d1242f}}.incident.insight{{fill:#bf8700}}.incident.new_event{{fill:#8250df}}.incident.several{{fill:#cf222e}}
table{{border-collapse:collapse;width:100%;font-size:13px}}td,th{{border-bottom:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}}
th{{background:#f6f8fa}}td.num{{text-align:right;white-space:nowrap}}tr.incident td{{background:#fff8f0;font-weight:600}}
</style></head><body data-charts-total="{}">
<h1>trailwatch report</h1><p class="muted">{} events, {range}. {} anomalies in {} incidents. Generated {}.</p>"#,
        input.charts.len(),
        input.events,
        input.anomalies.len(),
        input.incidents.len(),
        input.generated.format("%Y-%m-%d %H:%M UTC")
    );
    h.push_str("<h2>Timeline of incidents</h2>");
    h.push_str(&timeline_svg(input));
    h.push_str("<h2>Charts</h2><p class=\"muted\">The line is the value per interval; the shaded band is the normal range (median ± 3 scaled MADs of the day before each point); red marks are anomalies.</p>");
    if input.charts.is_empty() {
        h.push_str("<p>No charts: no detector or insight anomalies.</p>");
    }
    for c in input.charts {
        let _ = write!(
            h,
            r#"<section class="chart-box"><h3>{}</h3><p class="muted">{}</p>{}</section>"#,
            esc(&c.title),
            esc(&c.subtitle),
            chart_svg(c)
        );
    }
    h.push_str("<h2>Incidents and anomalies</h2><table><thead><tr><th>start (UTC)</th><th>end</th><th>kind</th><th>detector</th><th class=\"num\">grade</th><th>what</th></tr></thead><tbody>");
    for inc in input.incidents {
        let _ = write!(
            h,
            r#"<tr class="incident"><td>{}</td><td>{}</td><td colspan="2">incident #{}</td><td class="num">{:.2}</td><td>{}</td></tr>"#,
            inc.start.format("%Y-%m-%d %H:%M"),
            inc.end.format("%H:%M"),
            inc.id,
            inc.grade,
            esc(&incident_who(input.anomalies, inc))
        );
        for &i in &inc.members {
            let a = &input.anomalies[i];
            let _ = write!(
                h,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="num">{:.2}</td><td>{}</td></tr>"#,
                a.start.format("%Y-%m-%d %H:%M"),
                a.end.format("%H:%M"),
                a.kind.name(),
                esc(&a.detector),
                a.grade,
                esc(&a.summary)
            );
        }
    }
    h.push_str("</tbody></table>");
    // Records, for a test or a curious reader, how many charts the browser drew.
    h.push_str(
        r#"<script>
addEventListener('load', () => {
  let drawn = 0;
  for (const svg of document.querySelectorAll('svg.chart')) {
    const line = svg.querySelector('polyline.values');
    const box = line && line.getBBox();
    if (box && box.width > 0 && svg.getBoundingClientRect().height > 0) drawn++;
  }
  document.body.dataset.chartsDrawn = String(drawn);
});
</script></body></html>
"#,
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::group::group;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_band_follows_the_previous_window_and_ignores_a_spike() {
        let b = band(&[1.0, 1.0, 1.0, 1.0, 10.0, 1.0, 1.0], 3);
        assert_eq!(b[3], (1.0, 1.0), "three ones before: no spread");
        assert_eq!(
            b[5],
            (1.0, 1.0),
            "one spike in the window does not widen the band"
        );
        let b = band(&[10.0, 20.0, 30.0, 20.0], 3);
        assert_eq!(
            b[3].0, 0.0,
            "median 20, MAD 10: the band is clipped at zero"
        );
        assert!((b[3].1 - (20.0 + 3.0 * 1.4826 * 10.0)).abs() < 1e-9);
    }

    #[test]
    fn the_page_is_self_contained_and_holds_every_part() {
        let mut anomalies = vec![Anomaly {
            detector: "ec2-run-instances".into(),
            kind: AnomalyKind::Rcf,
            entity: None,
            start: t("2026-01-07T03:10:00Z"),
            end: t("2026-01-07T03:20:00Z"),
            grade: 1.0,
            confidence: 0.9,
            actual: 125.0,
            expected: 0.0,
            score: 3.0,
            summary: "125 instances <GPU>".into(),
            context: None,
            incident: None,
            subjects: vec!["arn:aws:iam::7:user/carol".into()],
            late: false,
        }];
        let incidents = group(&mut anomalies);
        let values: Vec<f64> = (0..300)
            .map(|i| if i == 200 { 125.0 } else { (i % 3) as f64 })
            .collect();
        let chart = Chart {
            title: "ec2-run-instances".into(),
            subtitle: "-".into(),
            start: t("2026-01-05T20:00:00Z"),
            step: Duration::minutes(10),
            band: band(&values, 144),
            values,
            marks: vec![(200, 1.0)],
        };
        let html = render(&ReportInput {
            generated: t("2026-01-08T00:00:00Z"),
            first_event: Some(t("2026-01-05T00:00:00Z")),
            last_event: Some(t("2026-01-08T00:00:00Z")),
            events: 1000,
            anomalies: &anomalies,
            incidents: &incidents,
            charts: &[chart],
        });
        assert!(html.starts_with("<!doctype html>"));
        assert!(
            !html.contains("http://") && !html.contains("https://") && !html.contains(" src="),
            "nothing is fetched"
        );
        assert!(html.contains(r#"data-charts-total="1""#));
        assert_eq!(html.matches(r#"<svg class="chart""#).count(), 1);
        assert_eq!(html.matches(r#"<circle class="anomaly""#).count(), 1);
        assert!(html.contains(r#"<rect class="incident rcf""#));
        assert!(html.contains("125 instances &lt;GPU&gt;"), "escaped");
        assert!(html.contains("incident #1"));
    }
}
