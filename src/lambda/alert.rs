//! The enricher's pure core: the alert a monitor sends, read leniently; and
//! the notification a person reads in ten seconds (subject: what happened
//! in words, its cost, the entity; body: what, who, from where, against
//! normal, a link), with
//! the structured data as JSON too. An alert that cannot be enriched still
//! goes out, marked so.

use super::incidents::{self, Judgement};
use crate::context::{short_arn, Context, Facet};
use crate::detector::Detector;
use crate::engine::{Anomaly, Severity};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

/// An anomaly alert from the monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub detector: String,
    /// Category field values of a high-cardinality detector, `(field, value)`.
    pub entity: Vec<(String, String)>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub grade: Option<f64>,
    pub confidence: Option<f64>,
    pub monitor: Option<String>,
    /// Sent by `trailwatch monitors test`: no anomaly happened.
    pub test: bool,
}

/// The alert texts of a Lambda event: each SNS record's message, or the
/// event itself when it is invoked directly with an alert.
pub fn messages_of_event(event: &Value) -> Vec<String> {
    match event.get("Records").and_then(Value::as_array) {
        Some(records) => records
            .iter()
            .filter_map(|r| r.pointer("/Sns/Message").and_then(Value::as_str))
            .map(str::to_owned)
            .collect(),
        None => vec![event.to_string()],
    }
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                s.parse::<i64>()
                    .ok()
                    .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            }),
        _ => None,
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(|v| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

impl Alert {
    /// Reads the monitor's message: a JSON object with `detector`, `entity`
    /// (text, `[{name, value}]` as the AD plugin writes it, or an object),
    /// `period_start`/`period_end` (or the result's `data_start_time`/
    /// `data_end_time`; RFC 3339 or epoch milliseconds), and `anomaly_grade`
    /// and `confidence`.
    pub fn from_message(text: &str) -> Result<Alert, String> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("the alert is not JSON ({e})"))?;
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| v.get(*n).filter(|x| !x.is_null()))
        };
        let detector = field(&["detector", "detector_name"])
            .and_then(Value::as_str)
            .ok_or("the alert names no detector (field `detector`)")?
            .to_owned();
        let start = field(&["period_start", "data_start_time"])
            .and_then(time)
            .ok_or("the alert has no period_start (RFC 3339 or epoch milliseconds)")?;
        let end = field(&["period_end", "data_end_time"])
            .and_then(time)
            .ok_or("the alert has no period_end (RFC 3339 or epoch milliseconds)")?;
        if end <= start {
            return Err(format!(
                "the alert's period ends ({end}) before it starts ({start})"
            ));
        }
        let entity = match field(&["entity"]) {
            None => Vec::new(),
            Some(Value::String(s)) => vec![(String::new(), s.clone())],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|i| {
                    Some((
                        i.get("name")?.as_str()?.to_owned(),
                        i.get("value")?.as_str()?.to_owned(),
                    ))
                })
                .collect(),
            Some(Value::Object(m)) => m
                .iter()
                .filter_map(|(k, x)| Some((k.clone(), x.as_str()?.to_owned())))
                .collect(),
            Some(other) => return Err(format!("the alert's entity {other} is not text or a list")),
        };
        Ok(Alert {
            detector,
            entity,
            start,
            end,
            grade: number(field(&["anomaly_grade", "grade"])),
            confidence: number(field(&["confidence"])),
            monitor: field(&["monitor"])
                .and_then(Value::as_str)
                .map(str::to_owned),
            test: matches!(field(&["test"]), Some(Value::Bool(true)))
                || field(&["test"]).and_then(Value::as_str) == Some("true"),
        })
    }

    /// The entity's values in the detector's category-field order.
    pub fn entity_values(&self, detector: &Detector) -> Vec<String> {
        detector
            .category_fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                self.entity
                    .iter()
                    .find(|(name, _)| name == f.as_str())
                    .or_else(|| self.entity.get(i).filter(|(name, _)| name.is_empty()))
                    .map(|(_, v)| v.clone())
            })
            .collect()
    }

    fn entity_text(&self) -> Option<String> {
        (!self.entity.is_empty()).then(|| {
            self.entity
                .iter()
                .map(|(_, v)| short_arn(v))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// What marks a page another trailwatch Lambda judged and rendered (the
/// engine's incidents, the forwarder's rule findings) on the alert topic,
/// where the enricher passes it on ([`pass_on`]).
pub const PAGE_KEY: &str = "trailwatch_page";

impl Notification {
    /// The page as it goes to the alert topic: its subject, body,
    /// severity and structured data under [`PAGE_KEY`].
    pub fn page_message(&self) -> String {
        json!({PAGE_KEY: {
            "subject": self.subject,
            "body": self.body,
            "severity": self.severity,
            "data": self.data,
        }})
        .to_string()
    }

    /// A page another Lambda sent ([`Notification::page_message`]); None
    /// for any other message (a monitor's alert); an error for a page
    /// that lacks its subject or body.
    pub fn from_page_message(text: &str) -> Option<Result<Notification, String>> {
        let v: Value = serde_json::from_str(text).ok()?;
        let page = v.get(PAGE_KEY)?;
        let text_of = |field: &str| {
            page.get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("the page sent to the alert topic has no {field}"))
        };
        Some((|| {
            Ok(Notification {
                subject: subject_text(&text_of("subject")?),
                body: text_of("body")?,
                data: page.get("data").cloned().unwrap_or(Value::Null),
                enriched: true,
                severity: page
                    .get("severity")
                    .and_then(Value::as_str)
                    .and_then(Severity::parse),
                test: false,
                repeat: false,
            })
        })())
    }
}

/// A page another Lambda judged and rendered, passed on with the context
/// it carries; only what it lacks is added: with a domain, a Dashboards
/// link to its records (the lead finding's span and entity).
pub fn pass_on(mut page: Notification, dashboards: Option<&str>) -> Notification {
    let Some(base) = dashboards else {
        return page;
    };
    if page.body.contains("\nDashboards: ") {
        return page;
    }
    let time = |field: &str| {
        page.data
            .get(field)
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let (Some(start), Some(end)) = (time("start"), time("end")) else {
        return page;
    };
    let entity: Vec<(&str, String)> = page
        .data
        .get("entity")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(f, v)| Some((f.as_str(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let link = discover_link(base, start, end, &entity);
    page.body.push_str(&format!("\nDashboards: {link}\n"));
    page.data["dashboards"] = json!(link);
    page
}

/// What goes to the notification topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// ASCII, under 100 characters (SNS's limit for email subjects).
    pub subject: String,
    pub body: String,
    pub data: Value,
    pub enriched: bool,
    /// The anomaly's severity, judged as `detect` judges an RCF finding
    /// standing alone; none when it could not be enriched.
    pub severity: Option<Severity>,
    /// A test alert (`trailwatch monitors test`).
    pub test: bool,
    /// Its incident already paged at this severity or above: it only adds
    /// to what was sent.
    pub repeat: bool,
}

impl Notification {
    /// Whether it goes out when paging from `page_at`: an anomaly at or
    /// above it whose incident has not paged at that severity yet; always a
    /// test (its point is to arrive) and an alert that could not be
    /// enriched (never lost for want of a severity).
    pub fn pages(&self, page_at: Severity) -> bool {
        self.test || (self.severity.is_none_or(|s| s >= page_at) && !self.repeat)
    }
}

/// The finding an alert stands for: the same RCF finding the local engine
/// makes of that interval and its context.
pub fn finding_of(alert: &Alert, detector: &Detector, context: &Context) -> Anomaly {
    crate::engine::rcf_state::rcf_finding(
        detector,
        &alert.entity_values(detector),
        (alert.start, alert.end),
        (alert.grade.unwrap_or(0.0), alert.confidence.unwrap_or(0.0)),
        (context.events, context.baseline_events),
        context.clone(),
    )
}

/// The longest subject sent: SNS takes under 100 characters.
pub const SUBJECT_MAX: usize = 99;

/// SNS subjects are ASCII, without control characters, under 100 characters.
pub fn subject_text(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            '×' => 'x',
            '–' | '—' => '-',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '?',
        })
        .collect();
    if out.len() > SUBJECT_MAX {
        out.truncate(SUBJECT_MAX - 3);
        out.push_str("...");
    }
    out
}

fn span(alert: &Alert) -> String {
    format!(
        "{}–{} UTC",
        alert.start.format("%Y-%m-%d %H:%M"),
        alert.end.format("%H:%M")
    )
}

/// A Dashboards Discover link to the window (and the entity).
pub fn dashboards_link(base: &str, alert: &Alert, detector: &Detector) -> String {
    let fields = detector.category_fields.iter().map(|f| f.as_str());
    let entity: Vec<(&str, String)> = fields.zip(alert.entity_values(detector)).collect();
    discover_link(base, alert.start, alert.end, &entity)
}

/// A Dashboards Discover link to the records of `[start, end)` with these
/// field values.
fn discover_link(
    base: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    entity: &[(&str, String)],
) -> String {
    let mut link = format!(
        "{}/app/data-explorer/discover#?_g=(time:(from:'{}',to:'{}'))",
        base.trim_end_matches('/'),
        start.to_rfc3339_opts(SecondsFormat::Secs, true),
        end.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    let clauses: Vec<String> = entity
        .iter()
        .map(|(f, v)| format!("{f}:\"{}\"", v.replace('"', "\\\"")))
        .collect();
    if !clauses.is_empty() {
        let query = clauses
            .join(" and ")
            .replace(' ', "%20")
            .replace('\'', "!'");
        link.push_str(&format!("&_q=(query:(language:kuery,query:'{query}'))"));
    }
    link
}

/// The enriched notification. Its severity is its incident's when it was
/// judged with one ([`incidents::judge`]), else the finding's alone, as
/// `detect` judges it: from its grade, what it started costs, what it
/// touches, and who did it from where.
pub fn render(
    alert: &Alert,
    detector: &Detector,
    context: &Context,
    link: Option<&str>,
    incident: Option<&Judgement>,
) -> Notification {
    let entity = alert.entity_text();
    let cost = context.cost.as_ref().filter(|c| c.per_hour > 0.0);
    let finding = finding_of(alert, detector, context);
    let alone = crate::engine::severity::of_finding(&finding);
    let severity = incident.map_or(alone, |j| j.severity);
    let repeat = incident.is_some_and(|j| j.paged_before.is_some_and(|p| severity <= p));
    // The finding in words, as the table's header and the engine's pages
    // say it; then its cost, and the entity when the words leave it out.
    let headline = crate::engine::headline::of(&[&finding]);
    let mut subject = format!(
        "trailwatch {}: {headline}",
        if alert.test {
            "test".to_owned()
        } else {
            severity.name().to_uppercase()
        },
    );
    if let Some(c) = crate::engine::headline::cost_text(cost.map_or(0.0, |c| c.per_hour)) {
        subject.push_str(&format!(", {c}"));
    }
    if let Some(e) = entity.as_ref().filter(|e| !headline.contains(e.as_str())) {
        subject.push_str(&format!(", {e}"));
    }

    let mut body = String::new();
    if alert.test {
        body.push_str("TEST: sent by `trailwatch monitors test` through the monitor's own actions; no anomaly happened. The figures below are the real ones for its period.\n\n");
    }
    body.push_str(&format!(
        "{}: {} matching events in {} (about {} per interval the day before).\n",
        alert.detector,
        context.events,
        span(alert),
        context.baseline_events
    ));
    if let (Some(g), Some(c)) = (alert.grade, alert.confidence) {
        body.push_str(&format!("Anomaly grade {g:.2}, confidence {c:.2}.\n"));
    }
    if severity == alone {
        body.push_str(&format!("Severity: {}.\n", severity.name()));
    } else {
        body.push_str(&format!(
            "Severity: {}, as its incident ({} alone).\n",
            severity.name(),
            alone.name()
        ));
    }
    body.push_str(&format!("What it watches: {}\n\n", detector.description));
    let who = context.who();
    if !who.is_empty() {
        body.push_str(&format!("Who:    {who}\n"));
    }
    if let Some(e) = &entity {
        body.push_str(&format!("Entity: {e}\n"));
    }
    if let Some(c) = cost {
        let items: Vec<&str> = c.items.iter().map(|i| i.what.as_str()).collect();
        body.push_str(&format!(
            "Cost:   ~{} for {} ({}; {})\n",
            c.headline(),
            items.join(", "),
            c.basis,
            c.assumptions.first().map(String::as_str).unwrap_or("")
        ));
    }
    body.push('\n');
    for summary in &context.facets {
        if summary.top.is_empty() || summary.facet == Facet::VolumeType {
            continue;
        }
        let values: Vec<String> = summary
            .top
            .iter()
            .map(|v| {
                format!(
                    "{} ({}{})",
                    if summary.facet == Facet::Principal {
                        short_arn(&v.value)
                    } else {
                        v.value.clone()
                    },
                    crate::context::trim_number(v.count),
                    if v.new {
                        ", new".to_owned()
                    } else {
                        format!(", usually {}", v.baseline)
                    }
                )
            })
            .collect();
        body.push_str(&format!(
            "Top {}: {}\n",
            summary.facet.label(),
            values.join("; ")
        ));
    }
    let others = incident.map(incidents::incident_lines).unwrap_or_default();
    if !others.is_empty() {
        body.push_str(&format!(
            "\nIncident: with {} other finding{} about the same principal or resource within half an hour{}:\n",
            others.len(),
            if others.len() == 1 { "" } else { "s" },
            incident
                .and_then(|j| j.paged_before)
                .map(|p| format!(" (it paged at {} before{})", p.name(), if repeat { "; this only adds to it" } else { "" }))
                .unwrap_or_default()
        ));
        for line in &others {
            body.push_str(&format!("  {line}\n"));
        }
    }
    if let Some(link) = link {
        body.push_str(&format!("\nDashboards: {link}\n"));
    }
    let data = json!({
        "enriched": true,
        "test": alert.test,
        "detector": alert.detector,
        "entity": alert.entity.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "period_start": alert.start.to_rfc3339_opts(SecondsFormat::Secs, true),
        "period_end": alert.end.to_rfc3339_opts(SecondsFormat::Secs, true),
        "anomaly_grade": alert.grade,
        "confidence": alert.confidence,
        "severity": severity,
        "severity_alone": alone,
        "incident": incident.map(|j| json!({"others": others, "paged_before": j.paged_before})),
        "context": context,
        "dashboards": link,
    });
    body.push_str(&format!(
        "\n--- data ---\n{}\n",
        serde_json::to_string_pretty(&data).unwrap_or_default()
    ));
    Notification {
        subject: subject_text(&subject),
        body,
        data,
        enriched: true,
        severity: Some(severity),
        test: alert.test,
        repeat,
    }
}

/// The original alert, passed on unenriched, with why.
pub fn not_enriched(message: &str, why: &str) -> Notification {
    let detector = Alert::from_message(message).ok().map(|a| a.detector);
    let subject = format!(
        "trailwatch alert (not enriched){}",
        detector
            .as_ref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default()
    );
    let body = format!(
        "This alert could not be enriched: {why}\nThe original alert follows unchanged.\n\n{message}\n"
    );
    Notification {
        subject: subject_text(&subject),
        body,
        data: json!({"enriched": false, "reason": why, "original": message}),
        enriched: false,
        severity: None,
        test: Alert::from_message(message).is_ok_and(|a| a.test),
        repeat: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{build, FacetCounts};

    const ALERT: &str = r#"{"monitor": "trailwatch-ec2-run-instances", "detector": "ec2-run-instances",
        "entity": [{"name": "userIdentity.arn", "value": "arn:aws:iam::777788889999:user/carol"}],
        "period_start": "2026-01-07T03:10:00Z", "period_end": 1767756000000,
        "anomaly_grade": 0.93, "confidence": "0.88"}"#;

    #[test]
    fn alerts_are_read_in_the_monitor_and_plugin_shapes() {
        let a = Alert::from_message(ALERT).unwrap();
        assert_eq!(a.detector, "ec2-run-instances");
        assert_eq!(
            a.entity,
            vec![(
                "userIdentity.arn".into(),
                "arn:aws:iam::777788889999:user/carol".into()
            )]
        );
        assert_eq!(a.start.to_rfc3339(), "2026-01-07T03:10:00+00:00");
        assert_eq!(a.end.to_rfc3339(), "2026-01-07T03:20:00+00:00");
        assert_eq!((a.grade, a.confidence), (Some(0.93), Some(0.88)));

        let b = Alert::from_message(
            r#"{"detector_name": "api-errors", "entity": "arn:x",
            "data_start_time": "1767755400000", "data_end_time": "1767756000000"}"#,
        )
        .unwrap();
        assert_eq!(b.entity, vec![(String::new(), "arn:x".into())]);
        assert_eq!(b.grade, None);
    }

    #[test]
    fn bad_alerts_say_what_is_missing() {
        assert!(Alert::from_message("not json")
            .unwrap_err()
            .contains("not JSON"));
        assert!(
            Alert::from_message(r#"{"period_start": 1, "period_end": 2}"#)
                .unwrap_err()
                .contains("no detector")
        );
        assert!(Alert::from_message(r#"{"detector": "d", "period_end": 2}"#)
            .unwrap_err()
            .contains("period_start"));
        assert!(
            Alert::from_message(r#"{"detector": "d", "period_start": 5, "period_end": 2}"#)
                .unwrap_err()
                .contains("before it starts")
        );
    }

    #[test]
    fn sns_events_carry_one_alert_per_record() {
        let event = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "a"}}, {"Sns": {"Message": "b"}}]});
        assert_eq!(messages_of_event(&event), ["a", "b"]);
        assert_eq!(
            messages_of_event(&json!({"detector": "d"})),
            [r#"{"detector":"d"}"#]
        );
    }

    #[test]
    fn a_test_alert_from_monitors_test_is_said_to_be_a_test() {
        let d = crate::detector::shipped()
            .into_iter()
            .find(|d| d.name == "api-errors")
            .unwrap();
        // The message a test run's action renders, as mustache fills it in.
        let message = crate::opensearch::desired::monitors::test_message_template(&d)
            .replace("{{ctx.monitor.name}}", "trailwatch-api-errors (test)")
            .replace("{{ctx.periodStart}}", "2026-12-02T10:00:00.000Z")
            .replace("{{ctx.periodEnd}}", "2026-12-02T10:10:00.000Z");
        let alert = Alert::from_message(&message).unwrap();
        assert!(alert.test);
        assert_eq!((alert.grade, alert.confidence), (None, None));
        let n = render(
            &alert,
            &d,
            &build(&FacetCounts::default(), &FacetCounts::default(), 144, 1),
            None,
            None,
        );
        assert!(
            n.subject
                .starts_with("trailwatch test: Access-denied errors far above usual"),
            "{}",
            n.subject
        );
        assert!(
            n.body
                .starts_with("TEST: sent by `trailwatch monitors test`"),
            "{}",
            n.body
        );
        assert_eq!(n.data["test"], true);
        assert!(!Alert::from_message(ALERT).unwrap().test);
    }

    #[test]
    fn subjects_are_short_ascii() {
        assert_eq!(subject_text("10 × p4d – ok"), "10 x p4d - ok");
        let long = subject_text(&"a".repeat(150));
        assert_eq!(long.len(), 99);
        assert!(long.ends_with("..."));
        assert_eq!(subject_text("naïve\n"), "na?ve?");
    }

    #[test]
    fn the_notification_says_what_who_and_what_it_costs() {
        let detector = crate::detector::shipped()
            .into_iter()
            .find(|d| d.name == "ec2-run-instances")
            .unwrap();
        let alert = Alert::from_message(ALERT).unwrap();
        let mut window = FacetCounts {
            events: 3.0,
            ..FacetCounts::default()
        };
        window.add(
            Facet::Principal,
            "arn:aws:iam::777788889999:user/carol",
            3.0,
        );
        window.add(Facet::SourceIp, "203.0.113.66", 3.0);
        window.add(Facet::InstanceType, "p4d.24xlarge", 24.0);
        let mut baseline = FacetCounts::default();
        baseline.add(
            Facet::Principal,
            "arn:aws:iam::777788889999:user/carol",
            2.0,
        );
        let context = build(&window, &baseline, 144, 5);
        let n = render(
            &alert,
            &detector,
            &context,
            Some("https://d/_dashboards/app/x"),
            None,
        );
        let per_hour = 24.0 * crate::cost::prices().instances["p4d.24xlarge"];
        assert_eq!(
            n.subject,
            format!(
                "trailwatch CRITICAL: GPU instances started by user/carol@777788889999 from a new network, ~${}/h",
                crate::cost::money(per_hour)
            )
        );
        assert!(n.body.contains("Severity: critical."), "{}", n.body);
        assert_eq!(n.data["severity"], "critical");
        assert!(
            n.body
                .contains("Who:    user/carol@777788889999 from 203.0.113.66 (new)"),
            "{}",
            n.body
        );
        assert!(n.body.contains("24 × p4d.24xlarge"), "{}", n.body);
        assert!(
            n.body.contains("Top source IPs: 203.0.113.66 (3, new)"),
            "{}",
            n.body
        );
        assert!(n.body.contains("Dashboards: https://d/_dashboards/app/x"));
        assert_eq!(
            n.data["context"]["cost"]["per_hour"]
                .as_f64()
                .map(|x| (x - per_hour).abs() < 0.01),
            Some(true)
        );
        assert!(n.enriched);
    }

    #[test]
    fn an_alert_that_cannot_be_enriched_goes_out_as_it_came() {
        let n = not_enriched(ALERT, "OpenSearch answered 503");
        assert_eq!(
            n.subject,
            "trailwatch alert (not enriched): ec2-run-instances"
        );
        assert!(n.body.contains("OpenSearch answered 503") && n.body.contains(ALERT));
        assert_eq!(n.data["enriched"], false);
        let raw = not_enriched("garbage", "the alert is not JSON");
        assert!(raw.body.contains("garbage"));
    }

    #[test]
    fn a_page_crosses_the_alert_topic_whole_and_gains_only_what_it_lacks() {
        let page = Notification {
            subject: "trailwatch CRITICAL: CloudTrail logging stopped".into(),
            body: "CloudTrail logging stopped: user/mallory called StopLogging\n".into(),
            data: json!({"detector": "cloudtrail-stopped", "start": "2026-01-07T03:10:00Z",
                         "end": "2026-01-07T03:11:00Z",
                         "entity": {"userIdentity.arn": "arn:aws:iam::1:user/mallory"}}),
            enriched: true,
            severity: Some(Severity::Critical),
            test: false,
            repeat: false,
        };
        let message = page.page_message();
        // A monitor's alert is not a page, and a page is not an alert.
        assert!(Notification::from_page_message(ALERT).is_none());
        assert!(Alert::from_message(&message).is_err());
        let read = Notification::from_page_message(&message).unwrap().unwrap();
        assert_eq!(read, page);
        // Without a domain it goes on as it came; with one, a link to its
        // records is added, once.
        assert_eq!(pass_on(read.clone(), None), page);
        let linked = pass_on(read, Some("https://d/_dashboards"));
        assert!(linked.body.starts_with(&page.body));
        assert!(
            linked.body.contains("\nDashboards: https://d/_dashboards/app/data-explorer/discover#?_g=(time:(from:'2026-01-07T03:10:00Z',to:'2026-01-07T03:11:00Z'))"),
            "{}",
            linked.body
        );
        assert!(linked.body.contains("userIdentity.arn:"), "{}", linked.body);
        let again = pass_on(linked.clone(), Some("https://d/_dashboards"));
        assert_eq!(again.body, linked.body);
        // A page that lost its body is said to be broken, not passed on.
        let broken = json!({PAGE_KEY: {"subject": "s"}}).to_string();
        let e = Notification::from_page_message(&broken)
            .unwrap()
            .unwrap_err();
        assert!(e.contains("no body"), "{e}");
    }

    #[test]
    fn the_link_opens_the_window_and_the_entity() {
        let detector = crate::detector::shipped()
            .into_iter()
            .find(|d| d.name == "api-errors")
            .unwrap();
        let alert = Alert::from_message(
            r#"{"detector": "api-errors", "entity": "arn:aws:iam::1:user/bob",
            "period_start": "2026-01-07T03:10:00Z", "period_end": "2026-01-07T03:20:00Z"}"#,
        )
        .unwrap();
        let link = dashboards_link("https://d/_dashboards/", &alert, &detector);
        assert!(link.starts_with("https://d/_dashboards/app/data-explorer/discover#?_g=(time:(from:'2026-01-07T03:10:00Z',to:'2026-01-07T03:20:00Z'))"), "{link}");
        assert!(
            link.contains("userIdentity.arn:\"arn:aws:iam::1:user/bob\""),
            "{link}"
        );
    }

    /// An anomaly detector's alert pages as `detect` would page the same
    /// finding standing alone: a known principal's few launches of a cheap
    /// type are worth a look in the dashboards, not a page.
    #[test]
    fn an_alert_pages_from_its_severity_and_a_test_or_an_unenriched_one_always_goes_out() {
        let detector = crate::detector::shipped()
            .into_iter()
            .find(|d| d.name == "ec2-run-instances")
            .unwrap();
        let alert = Alert::from_message(ALERT).unwrap();
        let carol = "arn:aws:iam::777788889999:user/carol";
        let launches = |instance: &str, count: f64, from: &str| {
            let mut window = FacetCounts {
                events: 2.0,
                ..FacetCounts::default()
            };
            window.add(Facet::Principal, carol, 2.0);
            window.add(Facet::SourceIp, from, 2.0);
            window.add(Facet::InstanceType, instance, count);
            let mut baseline = FacetCounts::default();
            baseline.add(Facet::Principal, carol, 2.0);
            baseline.add(Facet::SourceIp, "10.0.4.17", 2.0);
            build(&window, &baseline, 144, 5)
        };
        let quiet = render(
            &alert,
            &detector,
            &launches("t3.micro", 2.0, "10.0.4.17"),
            None,
            None,
        );
        assert_eq!(quiet.severity, Some(Severity::Low), "{}", quiet.body);
        assert!(
            quiet.subject.starts_with("trailwatch LOW: "),
            "{}",
            quiet.subject
        );
        assert!(!quiet.pages(Severity::Medium));
        assert!(quiet.pages(Severity::Low));
        let mining = render(
            &alert,
            &detector,
            &launches("p4d.24xlarge", 8.0, "10.0.4.17"),
            None,
            None,
        );
        assert_eq!(mining.severity, Some(Severity::Critical), "{}", mining.body);
        assert!(mining.pages(Severity::Critical));

        // A test of a quiet period still arrives: that is what it is for.
        let test = Alert {
            test: true,
            ..alert.clone()
        };
        let n = render(
            &test,
            &detector,
            &launches("t3.micro", 2.0, "10.0.4.17"),
            None,
            None,
        );
        assert!(n.pages(Severity::Critical) && n.subject.starts_with("trailwatch test: "));
        // So does one that could not be enriched.
        let n = not_enriched(ALERT, "the context search failed");
        assert_eq!(n.severity, None);
        assert!(n.pages(Severity::Critical));

        // Judged with its incident: the incident's severity, said as such,
        // and no page when the incident paged at it already.
        let quiet_launches = launches("t3.micro", 2.0, "10.0.4.17");
        let finding = finding_of(&alert, &detector, &quiet_launches);
        let mut stop = finding.clone();
        (stop.kind, stop.detector) = (
            crate::engine::AnomalyKind::Rule,
            "cloudtrail-stop-logging".into(),
        );
        stop.severity = Some(Severity::Critical);
        stop.summary = "CloudTrail logging stopped".into();
        for (paged, pages) in [(None, true), (Some(Severity::Critical), false)] {
            let kept = [incidents::Kept::new(&stop, paged)];
            let j = incidents::judge(&finding, &kept, Severity::Medium);
            let n = render(&alert, &detector, &quiet_launches, None, Some(&j));
            assert!(
                n.subject.starts_with("trailwatch CRITICAL: "),
                "{}",
                n.subject
            );
            assert!(
                n.body
                    .contains("Severity: critical, as its incident (low alone)."),
                "{}",
                n.body
            );
            assert!(
                n.body
                    .contains("rule cloudtrail-stop-logging: CloudTrail logging stopped"),
                "{}",
                n.body
            );
            assert_eq!(n.pages(Severity::Medium), pages, "{}", n.body);
            assert_eq!(n.data["severity_alone"], "low");
        }
    }
}
