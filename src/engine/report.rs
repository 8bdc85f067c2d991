//! `--report FILE.html`: one self-contained page (inline CSS, SVG and a few
//! lines of script, nothing fetched), for a person in a hurry:
//! - a timeline of the incidents, readable from an hour of data to a year,
//!   each incident a link to its card;
//! - one card per incident: severity, time, principal, source, what
//!   happened and what it costs, with the charts of its series (a readable
//!   y-axis, the expected value and normal band, anomalies marked);
//! - a table of every finding that sorts and filters offline.
//!
//! [`charts`] reads the series out of the engine; [`render`] is a pure
//! function of its input, so it is tested on fixtures.

use super::aggregate::bucket_of;
use super::anomaly::{Anomaly, AnomalyKind};
use super::calibration::{budget_rates, rate_text, KindRates};
use super::group::Incident;
use super::Engine;
use crate::context::{short_arn, Facet};
use chrono::{DateTime, Duration, Utc};
use std::fmt::Write as _;

/// The normal range of one point and its middle, what was expected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub low: f64,
    pub expected: f64,
    pub high: f64,
}

/// One chart: evenly spaced values from `start`, every `step`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub subtitle: String,
    /// The incident it belongs to (its card).
    pub incident: usize,
    pub start: DateTime<Utc>,
    pub step: Duration,
    pub values: Vec<f64>,
    /// Per point, the normal range: median ± 3 scaled MADs of the day before it.
    pub band: Vec<Band>,
    /// Indexes of the anomalous points and their grades.
    pub marks: Vec<(usize, f64)>,
}

/// Everything on the page.
pub struct ReportInput<'a> {
    pub generated: DateTime<Utc>,
    /// The start of the reported period (`--since`); the events before it
    /// only trained. None: from the first event.
    pub since: Option<DateTime<Utc>>,
    pub first_event: Option<DateTime<Utc>>,
    pub last_event: Option<DateTime<Utc>>,
    pub events: u64,
    pub anomalies: &'a [Anomaly],
    pub incidents: &'a [Incident],
    pub charts: &'a [Chart],
    /// Each kind's findings a day at grades 0.7, 0.8 and 0.9.
    pub calibration: &'a [KindRates],
    /// Each insight type's chance-alarm budget a day.
    pub budget_per_day: f64,
}

/// Charts per incident card at the most; the other series are named.
pub const CHARTS_PER_INCIDENT: usize = 3;

/// The normal band of each point: median ± 3 scaled MADs of the `window`
/// points before it, the median being what was expected. Robust: an anomaly
/// does not widen the band after it.
pub fn band(values: &[f64], window: usize) -> Vec<Band> {
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
                return Band {
                    low: values[i],
                    expected: values[i],
                    high: values[i],
                };
            }
            let mut v = before.to_vec();
            let m = median(&mut v);
            let mut dev: Vec<f64> = before.iter().map(|x| (x - m).abs()).collect();
            let spread = 3.0 * 1.4826 * median(&mut dev);
            Band {
                low: (m - spread).max(0.0),
                expected: m,
                high: m + spread,
            }
        })
        .collect()
}

/// Which series an anomaly is a point of: kind, detector and entity.
fn series_key(a: &Anomaly) -> (AnomalyKind, String, String) {
    (a.kind, a.detector.clone(), a.entity_text())
}

/// The charts of each incident: for each of its detector and insight series
/// (new activity has none), highest grade first and at most
/// [`CHARTS_PER_INCIDENT`], from a day before the incident to six hours
/// after it, with a day more before that for the band.
pub fn charts(engine: &Engine<'_>, anomalies: &[Anomaly], incidents: &[Incident]) -> Vec<Chart> {
    let agg = &engine.aggregates;
    let (Some(first), Some(last)) = (agg.first_event, agg.last_event) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for inc in incidents {
        let mut members: Vec<&Anomaly> = inc
            .members
            .iter()
            .map(|&i| &anomalies[i])
            .filter(|a| a.kind != AnomalyKind::NewEvent)
            .collect();
        members.sort_by(|a, b| b.grade.total_cmp(&a.grade).then(a.start.cmp(&b.start)));
        let mut keys = Vec::new();
        for a in &members {
            let key = series_key(a);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for key in keys.into_iter().take(CHARTS_PER_INCIDENT) {
            let related: Vec<&Anomaly> = members
                .iter()
                .copied()
                .filter(|a| series_key(a) == key)
                .collect();
            let from = (inc.start - Duration::days(1)).max(first);
            let to = (inc.end + Duration::hours(6)).min(last).max(from);
            if let Some(chart) = chart_of(engine, related[0], &related, inc.id, from, to) {
                out.push(chart);
            }
        }
    }
    out
}

/// One series' chart over `from..=to`.
fn chart_of(
    engine: &Engine<'_>,
    a: &Anomaly,
    related: &[&Anomaly],
    incident: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<Chart> {
    let agg = &engine.aggregates;
    let history = from - Duration::days(1);
    let (step, all, subtitle) = match a.kind {
        AnomalyKind::Rcf => {
            let (i, d) = engine
                .detectors()
                .iter()
                .enumerate()
                .find(|(_, d)| d.name == a.detector)?;
            let entity: Vec<String> = match &a.entity {
                None => Vec::new(),
                Some(map) => d
                    .category_fields
                    .iter()
                    .filter_map(|f| map.get(f.as_str()).cloned())
                    .collect(),
            };
            let secs = d.interval.as_secs() as i64;
            let series = agg.detectors.get(i)?.series.get(&entity)?;
            let (b0, b1) = (bucket_of(history, secs), bucket_of(to, secs));
            let values = (b0..=b1)
                .map(|b| series.get(&b).map_or(0.0, |x| x.cell.value()))
                .collect::<Vec<_>>();
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
            let kc = agg.insights.keys.get(&key.joined())?;
            let column = usize::from(a.detector == "ApiErrorRateInsight");
            let (b0, b1) = (bucket_of(history, 600), bucket_of(to, 600));
            let mut values = vec![0.0; (b1 - b0 + 1) as usize];
            for (m, c) in kc.minutes.range(b0 * 10..(b1 + 1) * 10) {
                values[(m.div_euclid(10) - b0) as usize] += c[column] as f64;
            }
            let what = if column == 1 { "errors" } else { "write calls" };
            let subtitle = format!(
                "{}:{} {what} per 10 minutes in {}/{}",
                get("eventSource"),
                get("eventName"),
                get("recipientAccountId"),
                get("awsRegion")
            );
            (Duration::minutes(10), values, subtitle)
        }
        AnomalyKind::NewEvent | AnomalyKind::Rule => return None,
    };
    let secs = step.num_seconds().max(1);
    let window = (86_400 / secs) as usize;
    let bands = band(&all, window);
    // Drop the day of history the band was computed over.
    let skip = ((bucket_of(from, secs) - bucket_of(history, secs)).max(0) as usize).min(all.len());
    let start = DateTime::from_timestamp(bucket_of(from, secs) * secs, 0).unwrap_or(from);
    let values = all[skip..].to_vec();
    let marks = related
        .iter()
        .filter_map(|r| {
            let i = (r.start - start).num_seconds().div_euclid(secs);
            usize::try_from(i)
                .ok()
                .filter(|&i| i < values.len())
                .map(|i| (i, r.grade))
        })
        .collect();
    Some(Chart {
        title: a.detector.clone(),
        subtitle,
        incident,
        start,
        step,
        band: bands[skip..].to_vec(),
        values,
        marks,
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 960.0;
const H: f64 = 200.0;
/// Room for the y-axis labels on the left, the time labels below.
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 24.0;

/// A round step for about `parts` ticks up to `top`: 1, 2, 2.5 or 5 times a
/// power of ten.
pub fn nice_step(top: f64, parts: f64) -> f64 {
    let raw = (top / parts).max(1e-9);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
}

/// The y-axis top: the normal range and the values, except that a burst
/// more than three times the usual level (the 95th percentile) is cut
/// there (and labelled), so the normal shape stays readable beside it.
pub fn chart_top(c: &Chart) -> f64 {
    let p95 = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len().saturating_sub(1) * 95 / 100)
            .copied()
            .unwrap_or(0.0)
    };
    let usual = p95(c.values.clone())
        .max(p95(c.band.iter().map(|b| b.high).collect()))
        .max(1.0);
    let max = c.values.iter().copied().fold(0.0, f64::max);
    let top = if max <= 3.0 * usual {
        max.max(usual)
    } else {
        2.0 * usual
    };
    let step = nice_step(top, 4.0);
    (top / step).ceil().max(1.0) * step
}

/// Time ticks for a span: a round step giving at most `most` ticks, and how
/// to label them.
pub fn time_ticks(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    most: i64,
) -> (Vec<DateTime<Utc>>, &'static str) {
    const STEPS: [(i64, &str); 13] = [
        (300, "%H:%M"),
        (600, "%H:%M"),
        (1800, "%H:%M"),
        (3600, "%H:%M"),
        (3 * 3600, "%m-%d %H:%M"),
        (6 * 3600, "%m-%d %H:%M"),
        (12 * 3600, "%m-%d %H:%M"),
        (86_400, "%m-%d"),
        (2 * 86_400, "%m-%d"),
        (7 * 86_400, "%m-%d"),
        (14 * 86_400, "%m-%d"),
        (30 * 86_400, "%Y-%m-%d"),
        (91 * 86_400, "%Y-%m-%d"),
    ];
    let span = (to - from).num_seconds().max(1);
    let (step, format) = STEPS
        .iter()
        .copied()
        .find(|(s, _)| span / s < most)
        .unwrap_or((span / most.max(1) + 1, "%Y-%m-%d"));
    let mut t = from.timestamp() - from.timestamp().rem_euclid(step) + step;
    let mut out = Vec::new();
    while t <= to.timestamp() {
        if let Some(at) = DateTime::from_timestamp(t, 0) {
            out.push(at);
        }
        t += step;
    }
    (out, format)
}

fn chart_svg(c: &Chart) -> String {
    let n = c.values.len().max(2);
    let top = chart_top(c);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |i: usize| LEFT + plot_w * i as f64 / (n - 1) as f64;
    let y = |v: f64| TOP + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
        esc(&c.title)
    );
    // The y-axis: gridlines and labels at round values.
    let step = nice_step(top, 4.0);
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" x2="{x2}" y1="{gy:.1}" y2="{gy:.1}"/><text class="label y" x="{lx}" y="{ly:.1}">{text}</text>"#,
            x2 = W - RIGHT,
            gy = y(v),
            lx = LEFT - 6.0,
            ly = y(v) + 3.5,
            text = crate::context::trim_number(v)
        );
        v += step;
    }
    // The normal band, never thinner than a line so it shows at zero too.
    let min_half = 1.5 * top / plot_h;
    let upper: Vec<String> = c
        .band
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{:.1},{:.1}", x(i), y(b.high.max(b.expected + min_half))))
        .collect();
    let lower: Vec<String> = c
        .band
        .iter()
        .enumerate()
        .rev()
        .map(|(i, b)| format!("{:.1},{:.1}", x(i), y(b.low.min(b.expected - min_half))))
        .collect();
    let _ = write!(
        s,
        r#"<polygon class="band" points="{} {}"><title>normal range</title></polygon>"#,
        upper.join(" "),
        lower.join(" ")
    );
    let expected: Vec<String> = c
        .band
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{:.1},{:.1}", x(i), y(b.expected)))
        .collect();
    let _ = write!(
        s,
        r#"<polyline class="expected" points="{}"><title>expected</title></polyline>"#,
        expected.join(" ")
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
    // Values cut at the top say what they were.
    let mut last_label = f64::NEG_INFINITY;
    for (i, v) in c.values.iter().enumerate() {
        if *v > top && x(i) - last_label > 40.0 {
            last_label = x(i);
            let _ = write!(
                s,
                r#"<path class="cut" d="M{0:.1},{1:.1} l-4,6 h8 z"/><text class="label cut-value" x="{2:.1}" y="{3:.1}">{4}</text>"#,
                x(i),
                TOP - 2.0,
                x(i) + 6.0,
                TOP + 8.0,
                crate::context::trim_number(*v)
            );
        }
    }
    // Anomalies: marks closer than 10 px become one, with the highest grade.
    let mut marks = c.marks.clone();
    marks.sort_by_key(|m| m.0);
    let mut groups: Vec<Vec<(usize, f64)>> = Vec::new();
    for m in marks {
        match groups.last_mut() {
            Some(g) if x(m.0) - x(g[g.len() - 1].0) < 10.0 => g.push(m),
            _ => groups.push(vec![m]),
        }
    }
    for g in &groups {
        let (i, _) = g
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or(g[0]);
        let (x0, x1) = (x(g[0].0), x(g[g.len() - 1].0));
        let times: Vec<String> = g
            .iter()
            .map(|(k, gr)| {
                format!(
                    "{} grade {gr:.2}: {}",
                    (c.start + c.step * *k as i32).format("%Y-%m-%d %H:%M"),
                    crate::context::trim_number(c.values[*k])
                )
            })
            .collect();
        let _ = write!(
            s,
            r#"<rect class="mark" x="{:.1}" y="{TOP}" width="{:.1}" height="{plot_h}"/><circle class="anomaly" cx="{:.1}" cy="{:.1}" r="4.5"><title>{}</title></circle>"#,
            x0 - 3.0,
            (x1 - x0) + 6.0,
            x(i),
            y(c.values[i]),
            esc(&times.join("\n")),
        );
    }
    // The time axis.
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LEFT}" x2="{}" y1="{1:.1}" y2="{1:.1}"/>"#,
        W - RIGHT,
        H - BOTTOM
    );
    let end = c.start + c.step * (n as i32 - 1);
    let (ticks, format) = time_ticks(c.start, end, 9);
    let span = (end - c.start).num_seconds().max(1) as f64;
    for t in ticks {
        let tx = LEFT + plot_w * (t - c.start).num_seconds() as f64 / span;
        let _ = write!(
            s,
            r#"<line class="tick" x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}"/><text class="label x" x="{0:.1}" y="{3}">{4}</text>"#,
            tx,
            H - BOTTOM,
            H - BOTTOM + 4.0,
            H - 6.0,
            t.format(format)
        );
    }
    s.push_str("</svg>");
    s
}

fn timeline_svg(input: &ReportInput<'_>) -> String {
    let (Some(first), Some(last)) = (reported_from(input), input.last_event) else {
        return String::new();
    };
    let span = (last - first).num_seconds().max(1) as f64;
    let plot_w = W - LEFT - RIGHT;
    let x = |t: DateTime<Utc>| {
        LEFT + plot_w * ((t - first).num_seconds() as f64 / span).clamp(0.0, 1.0)
    };
    // Lanes: an incident goes in the first lane where it and its label fit.
    const LANES: usize = 10;
    let mut lane_end = [f64::NEG_INFINITY; LANES];
    let placed: Vec<(usize, f64, f64)> = input
        .incidents
        .iter()
        .map(|inc| {
            let (x0, x1) = (x(inc.start), x(inc.end).max(x(inc.start) + 6.0));
            let label_end = x1 + 8.0 + 7.0 * format!("#{}", inc.id).len() as f64;
            let lane = (0..LANES)
                .find(|&l| lane_end[l] + 4.0 < x0)
                .unwrap_or(LANES - 1);
            lane_end[lane] = lane_end[lane].max(label_end);
            (lane, x0, x1)
        })
        .collect();
    let lanes = placed.iter().map(|p| p.0 + 1).max().unwrap_or(1);
    let height = 34.0 + 18.0 * lanes as f64;
    let mut s = format!(
        r#"<svg class="timeline" viewBox="0 0 {W} {height}" role="img" aria-label="timeline of incidents">"#
    );
    let axis_y = height - 22.0;
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LEFT}" x2="{}" y1="{axis_y}" y2="{axis_y}"/>"#,
        W - RIGHT
    );
    let (ticks, format) = time_ticks(first, last, 10);
    for t in ticks {
        let _ = write!(
            s,
            r#"<line class="tick" x1="{0:.1}" x2="{0:.1}" y1="4" y2="{axis_y}"/><text class="label x" x="{0:.1}" y="{1}">{2}</text>"#,
            x(t),
            height - 6.0,
            t.format(format)
        );
    }
    for (inc, (lane, x0, x1)) in input.incidents.iter().zip(placed) {
        let y = 8.0 + 18.0 * lane as f64;
        let severity = inc.severity(input.anomalies);
        let _ = write!(
            s,
            r##"<a href="#incident-{id}"><rect class="incident sev-{sev}" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="12"><title>#{id} {sev}, {start} – {end}: {who}</title></rect><text class="label" x="{lx:.1}" y="{ly:.1}">#{id}</text></a>"##,
            id = inc.id,
            sev = severity.name(),
            w = x1 - x0,
            start = inc.start.format("%Y-%m-%d %H:%M"),
            end = inc.end.format("%H:%M"),
            who = esc(&who(input.anomalies, inc).0),
            lx = x1 + 3.0,
            ly = y + 10.0,
        );
    }
    s.push_str("</svg>");
    s
}

/// The start of the reported period: `--since`, else the first event.
fn reported_from(input: &ReportInput<'_>) -> Option<DateTime<Utc>> {
    match (input.since, input.first_event) {
        (Some(since), Some(first)) => Some(since.max(first)),
        (since, first) => since.or(first),
    }
}

/// Who was behind an incident and from where: the top principal and source
/// address of its highest-graded anomaly with a context, else its first
/// subject.
fn who(anomalies: &[Anomaly], inc: &Incident) -> (String, String) {
    let mut members: Vec<&Anomaly> = inc.members.iter().map(|&i| &anomalies[i]).collect();
    members.sort_by(|a, b| b.grade.total_cmp(&a.grade));
    let shown = |v: &crate::context::ValueCount, short: bool| {
        let text = if short {
            short_arn(&v.value)
        } else {
            v.value.clone()
        };
        format!("{text}{}", if v.new { " (new)" } else { "" })
    };
    let principal = members
        .iter()
        .find_map(|a| {
            a.context
                .as_ref()?
                .top(Facet::Principal)
                .map(|v| shown(v, true))
        })
        .or_else(|| {
            members
                .iter()
                .find_map(|a| a.subjects.first())
                .map(|s| short_arn(s))
        })
        .unwrap_or_else(|| "-".into());
    let source = members
        .iter()
        .find_map(|a| {
            a.context
                .as_ref()?
                .top(Facet::SourceIp)
                .map(|v| shown(v, false))
        })
        // Rule findings have no context: the addresses their records name.
        .or_else(|| {
            let ips = super::anomaly::distinct(members.iter().flat_map(|a| &a.pivots.source_ips));
            (!ips.is_empty()).then(|| ips.join(", "))
        })
        .unwrap_or_else(|| "-".into());
    (principal, source)
}

fn duration_text(d: Duration) -> String {
    super::span_text(d.max(Duration::minutes(1)))
}

/// One incident's card.
/// How the kinds' grades compare: findings a day at each grade, beside what
/// the budget lets chance give an insight type.
fn calibration_table(input: &ReportInput) -> String {
    if input.calibration.is_empty() {
        return String::new();
    }
    let mut h = String::from(
        r#"<h2>How the grades compare</h2><p class="muted">Findings a day at each grade or more. An insight's grade comes from chance under its false-alarm budget; RCF keeps the anomaly detection plugin's grade and new activity its own scale, so this is what their grades mean here. On a span with no incident every finding is chance or an ordinary change.</p>
<table id="calibration"><thead><tr><th>kind</th><th>over</th><th>≥ 0.7</th><th>≥ 0.8</th><th>≥ 0.9</th></tr></thead><tbody>"#,
    );
    let row = |h: &mut String, name: &str, over: &str, rates: [f64; 3]| {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td>", esc(name), esc(over));
        for r in rates {
            let _ = write!(h, r#"<td class="num">{}</td>"#, rate_text(r));
        }
        h.push_str("</tr>");
    };
    for r in input.calibration {
        let over = super::span_text(Duration::seconds((r.days * 86_400.0) as i64));
        row(&mut h, r.kind.name(), &over, r.per_day);
    }
    row(
        &mut h,
        "chance alone, per insight type (its budget)",
        "a day",
        budget_rates(input.budget_per_day),
    );
    h.push_str("</tbody></table>");
    h
}

fn card(input: &ReportInput<'_>, inc: &Incident) -> String {
    let mut members: Vec<&Anomaly> = inc.members.iter().map(|&i| &input.anomalies[i]).collect();
    members.sort_by(|a, b| b.grade.total_cmp(&a.grade).then(a.start.cmp(&b.start)));
    let severity = inc.severity(input.anomalies);
    let (principal, source) = who(input.anomalies, inc);
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for a in &members {
        *kinds.entry(a.kind.name()).or_default() += 1;
    }
    let found_by = kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let lead = super::headline::lead(&members);
    let cost = (lead.context.as_ref())
        .and_then(|c| c.cost.as_ref())
        .filter(|c| c.per_hour > 0.0)
        .map_or("nothing priced was started".to_owned(), |c| c.headline());
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<section class="card sev-{sev}" id="incident-{id}"><h3><span class="sev">{sev}</span> Incident #{id}: {headline} <span class="muted">{start} – {end} UTC ({dur}), grade {grade:.2}</span></h3>
<dl><dt>Who</dt><dd>{who}</dd>"#,
        sev = severity.name(),
        id = inc.id,
        headline = esc(&super::headline::of(&members)),
        start = inc.start.format("%Y-%m-%d %H:%M"),
        end = inc.end.format("%H:%M"),
        dur = duration_text(inc.end - inc.start),
        grade = inc.grade,
        who = esc(&principal),
    );
    if source != "-" {
        let _ = write!(h, "<dt>From</dt><dd>{}</dd>", esc(&source));
    }
    let _ = write!(
        h,
        "<dt>What happened</dt><dd>{}</dd><dt>Found by</dt><dd>{}</dd><dt>Cost</dt><dd>{}</dd>",
        esc(&lead.summary),
        esc(&found_by),
        esc(&cost)
    );
    // What a responder searches for next.
    let keys = super::anomaly::distinct(members.iter().flat_map(|a| &a.pivots.access_key_ids));
    if !keys.is_empty() {
        let _ = write!(
            h,
            "<dt>Access keys</dt><dd><code>{}</code></dd>",
            esc(&keys.join(", "))
        );
    }
    let ids = super::anomaly::distinct(members.iter().flat_map(|a| &a.pivots.event_ids));
    let events: u64 = members.iter().map(|a| a.pivots.events).sum();
    if !ids.is_empty() {
        let _ = write!(
            h,
            "<dt>Events</dt><dd>{events} behind its findings; the first: <code>{}</code></dd>",
            esc(&ids
                .iter()
                .take(crate::context::EVENT_IDS)
                .copied()
                .collect::<Vec<_>>()
                .join(", "))
        );
    }
    h.push_str("<dt>Do first</dt><dd><ol class=\"actions\">");
    for step in super::advice::first_actions(&members) {
        let _ = write!(h, "<li>{}</li>", esc(&step));
    }
    h.push_str("</ol></dd></dl>");
    let charts: Vec<&Chart> = input
        .charts
        .iter()
        .filter(|c| c.incident == inc.id)
        .collect();
    for c in &charts {
        let _ = write!(
            h,
            r#"<figure><figcaption><b>{}</b> <span class="muted">{}</span></figcaption>{}</figure>"#,
            esc(&c.title),
            esc(&c.subtitle),
            chart_svg(c)
        );
    }
    let series: std::collections::BTreeSet<_> = members
        .iter()
        .filter(|a| a.kind != AnomalyKind::NewEvent)
        .map(|a| series_key(a))
        .collect();
    if charts.is_empty() && !series.is_empty() {
        let _ = write!(
            h,
            r#"<p class="muted">{} series alarmed in this incident, none charted here (their history is not in this run); all are listed below.</p>"#,
            series.len()
        );
    } else if series.len() > charts.len() {
        let _ = write!(
            h,
            r#"<p class="muted">{} more series alarmed in this incident; the highest graded are charted, all are listed below.</p>"#,
            series.len() - charts.len()
        );
    }
    h.push_str("<ul class=\"members\">");
    for a in &members {
        let _ = write!(
            h,
            r#"<li><span class="muted">{} {}</span> {} <b>{:.2}</b> {}</li>"#,
            a.start.format("%H:%M"),
            a.kind.name(),
            esc(&a.detector),
            a.grade,
            esc(&a.summary)
        );
    }
    h.push_str("</ul></section>");
    h
}

/// The incidents at a glance, most severe first, each a link to its card.
fn summary_table(input: &ReportInput<'_>) -> String {
    if input.incidents.is_empty() {
        return String::new();
    }
    let mut h = String::from(
        r#"<h2>Summary</h2><table id="summary"><thead><tr><th>incident</th><th>severity</th><th>what happened</th><th>who</th><th>cost</th><th>when (UTC)</th></tr></thead><tbody>"#,
    );
    for inc in super::group::reading_order(input.incidents, input.anomalies) {
        let members: Vec<&Anomaly> = inc.members.iter().map(|&i| &input.anomalies[i]).collect();
        let severity = inc.severity(input.anomalies);
        let _ = write!(
            h,
            r##"<tr class="sev-{sev}"><td><a href="#incident-{id}">#{id}</a></td><td><span class="sev">{sev}</span></td><td><a href="#incident-{id}">{what}</a></td><td>{who}</td><td class="num">{cost}</td><td>{when}</td></tr>"##,
            sev = severity.name(),
            id = inc.id,
            what = esc(&super::headline::of(&members)),
            who = esc(&who(input.anomalies, inc).0),
            cost = super::headline::cost_text(inc.cost_per_hour(input.anomalies))
                .unwrap_or_else(|| "-".into()),
            when = super::headline::span_text(inc.start, inc.end),
        );
    }
    h.push_str("</tbody></table>");
    h
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
body{{font:14px/1.45 system-ui,sans-serif;margin:24px auto;color:#1b1f24;max-width:1040px;padding:0 16px}}
h1{{font-size:22px;margin:0 0 4px}}h2{{font-size:17px;margin:30px 0 8px}}h3{{font-size:15px;margin:0 0 8px}}
.muted{{color:#57606a;font-weight:normal}}svg{{width:100%;height:auto;display:block}}
.band{{fill:#cfe3fa;stroke:#9cc3ee;stroke-width:.5}}.expected{{fill:none;stroke:#5a8fd0;stroke-width:1;stroke-dasharray:4 3}}
.values{{fill:none;stroke:#1f4e8c;stroke-width:1.4}}.anomaly{{fill:#d1242f;stroke:#fff;stroke-width:1.5}}
.mark{{fill:#d1242f;opacity:.12}}.cut{{fill:#d1242f}}.cut-value{{fill:#d1242f;font-weight:600}}
.axis{{stroke:#8c959f}}.grid{{stroke:#eaeef2}}.tick{{stroke:#d0d7de}}.label{{font-size:10px;fill:#57606a}}
.label.y{{text-anchor:end}}.label.x{{text-anchor:middle}}
.incident{{opacity:.9}}.sev-critical .sev,.incident.sev-critical{{background:#82071e;fill:#82071e}}
.sev-high .sev,.incident.sev-high{{background:#cf222e;fill:#cf222e}}.sev-medium .sev,.incident.sev-medium{{background:#bc4c00;fill:#bc4c00}}
.sev-low .sev,.incident.sev-low{{background:#6e7781;fill:#6e7781}}
.card{{border:1px solid #d0d7de;border-left-width:6px;border-radius:6px;padding:12px 16px;margin:14px 0}}
.card.sev-critical{{border-left-color:#82071e}}.card.sev-high{{border-left-color:#cf222e}}.card.sev-medium{{border-left-color:#bc4c00}}.card.sev-low{{border-left-color:#6e7781}}
.card:target{{box-shadow:0 0 0 3px #54aeff66}}
.sev{{color:#fff;border-radius:4px;padding:1px 6px;font-size:12px;text-transform:uppercase;letter-spacing:.04em;white-space:nowrap}}
dl{{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0 0 8px}}dt{{color:#57606a}}dd{{margin:0}}
figure{{margin:10px 0 0}}figcaption{{font-size:13px}}ul.members{{margin:8px 0 0;padding-left:18px;font-size:13px}}
.controls{{display:flex;gap:8px;margin:6px 0}}input,select{{font:inherit;padding:3px 6px}}
table{{border-collapse:collapse;width:100%;font-size:13px}}td,th{{border-bottom:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}}
th{{background:#f6f8fa;cursor:pointer;user-select:none;white-space:nowrap}}th[aria-sort=ascending]::after{{content:" ▲"}}th[aria-sort=descending]::after{{content:" ▼"}}
td.num{{text-align:right;white-space:nowrap}}td{{overflow-wrap:anywhere}}
#findings{{table-layout:fixed}}#findings col.inc{{width:64px}}#findings col.start{{width:128px}}#findings col.kind{{width:76px}}#findings col.det{{width:150px}}#findings col.ent{{width:180px}}#findings col.grade{{width:56px}}
ol.actions{{margin:0;padding-left:18px}}code{{font-size:12px}}
</style></head><body data-charts-total="{}" data-incidents="{}" data-findings="{}">
<h1>trailwatch report</h1><p class="muted">{} events, {range}. {} findings in {} incidents. Generated {}.</p>"#,
        input.charts.len(),
        input.incidents.len(),
        input.anomalies.len(),
        input.events,
        input.anomalies.len(),
        input.incidents.len(),
        input.generated.format("%Y-%m-%d %H:%M UTC")
    );
    h.push_str(&summary_table(input));
    h.push_str("<h2>Timeline</h2>");
    h.push_str(&timeline_svg(input));
    h.push_str("<h2>Incidents</h2><p class=\"muted\">Highest severity first. In the charts the line is the value per interval, the dashed line what was expected and the shaded band the normal range (median ± 3 scaled MADs of the day before); red marks are the anomalies, and a value cut at the top says what it was.</p>");
    if input.incidents.is_empty() {
        h.push_str("<p>No incidents: nothing anomalous was found.</p>");
    }
    for inc in super::group::reading_order(input.incidents, input.anomalies) {
        h.push_str(&card(input, inc));
    }
    h.push_str(&calibration_table(input));
    h.push_str(r#"<h2>All findings</h2><div class="controls"><input id="filter" type="search" placeholder="Filter: detector, principal, any text" aria-label="filter"><select id="kind" aria-label="kind"><option value="">every kind</option><option>rcf</option><option>insight</option><option>new_event</option></select></div>
<table id="findings"><colgroup><col class="inc"><col class="start"><col class="kind"><col class="det"><col class="ent"><col class="grade"><col></colgroup><thead><tr><th data-type="num">incident</th><th>start (UTC)</th><th>kind</th><th>detector</th><th>entity</th><th data-type="num">grade</th><th>what</th></tr></thead><tbody>"#);
    for a in input.anomalies {
        let incident = a.incident.map_or(String::new(), |i| {
            format!(r##"<a href="#incident-{i}">#{i}</a>"##)
        });
        let _ = write!(
            h,
            r#"<tr data-kind="{kind}"><td class="num" data-value="{inc}">{incident}</td><td>{start}</td><td>{kind}</td><td>{det}</td><td>{entity}</td><td class="num" data-value="{grade}">{grade:.2}</td><td>{what}</td></tr>"#,
            kind = a.kind.name(),
            inc = a.incident.unwrap_or(0),
            start = a.start.format("%Y-%m-%d %H:%M"),
            det = esc(&a.detector),
            entity = esc(&a.entity_text()),
            grade = a.grade,
            what = esc(&a.summary),
        );
    }
    h.push_str("</tbody></table>");
    h.push_str(SCRIPT);
    h
}

/// Sorting and filtering the table offline, and a count of the charts the
/// browser drew (for a test, or a curious reader). `?sort=N&order=desc&filter=TEXT&kind=K`
/// in the address applies the same on opening, so a view can be shared.
const SCRIPT: &str = r#"<script>
(() => {
  const table = document.getElementById('findings');
  const body = table.tBodies[0];
  const heads = [...table.tHead.rows[0].cells];
  const key = (row, col) => {
    const cell = row.cells[col];
    return heads[col].dataset.type === 'num' ? parseFloat(cell.dataset.value || cell.textContent) || 0 : cell.textContent;
  };
  const sort = (col, order) => {
    const rows = [...body.rows];
    rows.sort((a, b) => {
      const x = key(a, col), y = key(b, col);
      const c = typeof x === 'number' ? x - y : x.localeCompare(y);
      return order === 'descending' ? -c : c;
    });
    heads.forEach(h => h.removeAttribute('aria-sort'));
    heads[col].setAttribute('aria-sort', order);
    rows.forEach(r => body.appendChild(r));
  };
  heads.forEach((h, col) => h.addEventListener('click', () =>
    sort(col, h.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending')));
  const filter = document.getElementById('filter'), kind = document.getElementById('kind');
  const apply = () => {
    const text = filter.value.toLowerCase();
    let shown = 0;
    for (const row of body.rows) {
      const ok = (!kind.value || row.dataset.kind === kind.value) && row.textContent.toLowerCase().includes(text);
      row.hidden = !ok;
      if (ok) shown++;
    }
    document.body.dataset.rowsShown = String(shown);
  };
  filter.addEventListener('input', apply);
  kind.addEventListener('change', apply);
  const params = new URLSearchParams(location.search);
  if (params.has('filter')) filter.value = params.get('filter');
  if (params.has('kind')) kind.value = params.get('kind');
  if (params.has('sort')) sort(Number(params.get('sort')), params.get('order') === 'desc' ? 'descending' : 'ascending');
  apply();
  document.body.dataset.firstRow = body.rows.length ? [...body.rows].find(r => !r.hidden)?.cells[3].textContent || '' : '';
  addEventListener('load', () => {
    let drawn = 0;
    for (const svg of document.querySelectorAll('svg.chart')) {
      const line = svg.querySelector('polyline.values');
      const box = line && line.getBBox();
      if (box && box.width > 0 && svg.getBoundingClientRect().height > 0) drawn++;
    }
    document.body.dataset.chartsDrawn = String(drawn);
    // How wide the page laid out, against the window: nothing overflows.
    document.body.dataset.scrollWidth = String(document.documentElement.scrollWidth);
    document.body.dataset.findingsWidth = String(Math.ceil(table.getBoundingClientRect().right));
  });
})();
</script></body></html>
"#;

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
        assert_eq!(
            (b[3].low, b[3].expected, b[3].high),
            (1.0, 1.0, 1.0),
            "no spread"
        );
        assert_eq!(
            (b[5].low, b[5].high),
            (1.0, 1.0),
            "one spike in the window does not widen the band"
        );
        let b = band(&[10.0, 20.0, 30.0, 20.0], 3);
        assert_eq!(
            b[3].low, 0.0,
            "median 20, MAD 10: the band is clipped at zero"
        );
        assert_eq!(b[3].expected, 20.0);
        assert!((b[3].high - (20.0 + 3.0 * 1.4826 * 10.0)).abs() < 1e-9);
    }

    #[test]
    fn axes_use_round_steps_and_a_spike_does_not_flatten_the_rest() {
        assert_eq!(nice_step(100.0, 4.0), 25.0);
        assert_eq!(nice_step(7.0, 4.0), 2.0);
        assert_eq!(nice_step(0.3, 4.0), 0.1);
        let chart = |values: Vec<f64>| Chart {
            title: "x".into(),
            subtitle: String::new(),
            incident: 1,
            start: t("2026-01-05T00:00:00Z"),
            step: Duration::minutes(10),
            band: band(&values, 144),
            marks: vec![],
            values,
        };
        // A normal level near 10 and an anomaly of 500: the axis stays near 10s.
        let mut v: Vec<f64> = (0..300).map(|i| 8.0 + (i % 5) as f64).collect();
        v[250] = 500.0;
        let mut spiked = chart(v);
        spiked.marks = vec![(250, 1.0)];
        let top = chart_top(&spiked);
        assert!((12.0..=40.0).contains(&top), "top {top}");
        let svg = chart_svg(&spiked);
        assert!(
            svg.contains(r#"class="label cut-value""#) && svg.contains(">500<"),
            "the cut value is labelled"
        );
        // A spike within three times the rest is drawn whole.
        let mut v: Vec<f64> = (0..300).map(|i| 8.0 + (i % 5) as f64).collect();
        v[250] = 30.0;
        assert!(chart_top(&chart(v)) >= 30.0);
    }

    #[test]
    fn time_ticks_stay_readable_from_an_hour_to_a_year() {
        for (span, most_ticks, format) in [
            (Duration::hours(1), 9, "%H:%M"),
            (Duration::days(1), 9, "%m-%d %H:%M"),
            (Duration::days(7), 9, "%m-%d"),
            (Duration::days(365), 9, "%Y-%m-%d"),
        ] {
            let from = t("2025-03-01T00:07:00Z");
            let (ticks, f) = time_ticks(from, from + span, 10);
            assert!(
                !ticks.is_empty() && ticks.len() <= most_ticks,
                "{span}: {}",
                ticks.len()
            );
            assert_eq!(f, format, "{span}");
        }
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
            partial: false,
            detected: t("2026-01-07T03:20:00Z"),
            severity: None,
            page: None,
            novelty: None,
            attack: Vec::new(),
            pivots: Default::default(),
        }];
        let incidents = group(&mut anomalies);
        let values: Vec<f64> = (0..300)
            .map(|i| if i == 200 { 125.0 } else { (i % 3) as f64 })
            .collect();
        let chart = Chart {
            title: "ec2-run-instances".into(),
            subtitle: "-".into(),
            incident: 1,
            start: t("2026-01-05T20:00:00Z"),
            step: Duration::minutes(10),
            band: band(&values, 144),
            values,
            marks: vec![(200, 1.0), (201, 0.8)],
        };
        let html = render(&ReportInput {
            generated: t("2026-01-08T00:00:00Z"),
            since: None,
            first_event: Some(t("2026-01-05T00:00:00Z")),
            last_event: Some(t("2026-01-08T00:00:00Z")),
            events: 1000,
            anomalies: &anomalies,
            incidents: &incidents,
            charts: &[chart],
            calibration: &[KindRates {
                kind: AnomalyKind::Rcf,
                days: 3.0,
                per_day: [0.3333, 0.3333, 0.0],
            }],
            budget_per_day: 0.2,
        });
        assert!(html.starts_with("<!doctype html>"));
        assert!(
            !html.contains("http://") && !html.contains("https://") && !html.contains(" src="),
            "nothing is fetched"
        );
        assert!(html.contains(r#"data-charts-total="1""#));
        assert_eq!(html.matches(r#"<svg class="chart""#).count(), 1);
        assert_eq!(
            html.matches(r#"<circle class="anomaly""#).count(),
            1,
            "two neighbouring marks are drawn as one"
        );
        assert_eq!(html.matches(r#"<section class="card"#).count(), 1);
        assert!(html.contains(r##"<a href="#incident-1"><rect class="incident sev-"##));
        assert!(html.contains(r#"id="incident-1""#));
        assert!(html.contains("125 instances &lt;GPU&gt;"), "escaped");
        assert!(html.contains(r#"class="expected""#) && html.contains(r#"class="grid""#));
        assert!(html.contains(r#"<table id="findings">"#));
        assert!(
            html.contains(r#"<tr><td>rcf</td><td>3 days</td><td class="num">0.33</td><td class="num">0.33</td><td class="num">0.00</td></tr>"#),
            "each kind's rates"
        );
        assert!(
            html.contains(r#"(its budget)</td><td>a day</td><td class="num">0.20</td><td class="num">0.02</td><td class="num">0.002</td></tr>"#),
            "beside the budget's"
        );
        // The summary links the card; the card says what to do first.
        assert!(html.contains(r##"<table id="summary">"##));
        assert!(html.contains(r##"<td><a href="#incident-1">#1</a></td>"##));
        assert!(html.contains("<dt>Do first</dt>"));

        // The timeline spans the reported period: from --since, the
        // incident sits a seventh of the way along a day, not in the
        // last third of the three days that trained.
        let x_of_incident = |since: Option<DateTime<Utc>>| -> f64 {
            let html = render(&ReportInput {
                generated: t("2026-01-08T00:00:00Z"),
                since,
                first_event: Some(t("2026-01-05T00:00:00Z")),
                last_event: Some(t("2026-01-08T00:00:00Z")),
                events: 1000,
                anomalies: &anomalies,
                incidents: &incidents,
                charts: &[],
                calibration: &[],
                budget_per_day: 0.2,
            });
            let rect = html.split(r#"<rect class="incident"#).nth(1).unwrap();
            let x = rect
                .split(r#"x=""#)
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let x: f64 = x.parse().unwrap();
            (x - LEFT) / (W - LEFT - RIGHT)
        };
        let whole = x_of_incident(None);
        let reported = x_of_incident(Some(t("2026-01-07T00:00:00Z")));
        assert!((whole - (2.0 + 3.17 / 24.0) / 3.0).abs() < 0.01, "{whole}");
        assert!((reported - 3.17 / 24.0).abs() < 0.01, "{reported}");
    }
}
