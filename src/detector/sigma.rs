//! Sigma rules, read as they are: the YAML files security teams keep
//! (`logsource: product: aws, service: cloudtrail`), parsed and compiled by
//! the rsigma crates, and turned into our [`Rule`] model once, so the
//! engine, the forwarder and the report treat a Sigma rule as they treat a
//! rule file.
//!
//! - name: the file's stem (`aws_cloudtrail_disable_logging`);
//! - description: the rule's `title`;
//! - severity: its `level`: high and critical as they are, the rest low
//!   (Sigma keeps alerts for high and critical) ([`severity_of`]);
//! - ATT&CK: its `attack.tNNNN[.NNN]` tags;
//! - habit: at level medium or below, the principal's habits are its job
//!   ([`habitual_of`]);
//! - match: the compiled detection, evaluated on each record.
//!
//! A record is offered to a rule through [`RecordEvent`]: a field is found
//! as a rule file finds it (dotted paths, arrays walked), and a field whose
//! value is an object is its JSON text, as Sigma's CloudTrail rules expect
//! of `requestParameters|contains: 'Suspended'`. Correlation rules
//! (`event_count`, `value_count`) become rate findings over the hits of the
//! rules they name ([`super::correlation`]); filter rules, and the
//! correlations trailwatch does not evaluate, are named with why, and the
//! other files load.

use super::parse::Problem;
use super::{DetectorError, Rule};
use crate::cloudtrail::{FieldPath, FieldValue, Record};
use crate::engine::Severity;
use rsigma_eval::event::{Event, EventValue};
use rsigma_eval::CompiledRule;
use rsigma_parser::{Detection, Level, Modifier, SigmaRule, SigmaValue};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A compiled Sigma detection and the record fields it reads.
pub struct SigmaMatch {
    compiled: CompiledRule,
    /// Every field the detection names, parsed once.
    paths: HashMap<String, FieldPath>,
    /// The rule's `id`, when it has one.
    pub id: Option<String>,
    /// The rule's `name`, by which correlations name it.
    pub name: Option<String>,
}

impl fmt::Debug for SigmaMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigmaMatch")
            .field("id", &self.id)
            .field("fields", &self.paths.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PartialEq for SigmaMatch {
    /// Two matches are the same when they come from the same rule id and
    /// read the same fields (the compiled form has no equality).
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.paths.keys().eq(other.paths.keys())
    }
}

impl SigmaMatch {
    /// Whether the detection matches `r`.
    pub fn matches(&self, r: &Record) -> bool {
        let event = RecordEvent {
            record: r,
            paths: &self.paths,
        };
        rsigma_eval::evaluate_rule(&self.compiled, &event).is_some()
    }

    /// The fields the detection reads, for the parser's projection.
    pub fn field_paths(&self) -> impl Iterator<Item = &FieldPath> {
        self.paths.values()
    }
}

/// Top-level fields kept for a detection that searches every value
/// (keywords) rather than named fields.
const KEYWORD_FIELDS: [&str; 5] = [
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "errorMessage",
    "serviceEventDetails",
];

/// Parses the Sigma rules of one file into rules. A file for another log
/// source, a correlation, a rule the crate cannot compile: an error naming
/// the file and the key.
pub fn parse_sigma(path: &Path, text: &str) -> Result<Vec<Rule>, DetectorError> {
    let invalid = |key: &str, message: String| DetectorError::Invalid {
        path: path.to_path_buf(),
        problems: vec![Problem {
            key: key.to_owned(),
            message,
        }],
    };
    let collection = rsigma_parser::parse_sigma_yaml(text)
        .map_err(|e| invalid("", format!("not a Sigma rule: {e}")))?;
    if let Some(first) = collection.errors.first() {
        return Err(invalid("", format!("not a Sigma rule: {first}")));
    }
    if !collection.filters.is_empty() {
        return Err(invalid(
            "filter",
            "filter rules are not read yet; trailwatch reads Sigma detection and correlation rules"
                .into(),
        ));
    }
    if collection.rules.is_empty() && collection.correlations.is_empty() {
        return Err(invalid("", "holds no Sigma rule".into()));
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let many = collection.rules.len() + collection.correlations.len() > 1;
    let name = |i: usize| {
        if many {
            format!("{stem}-{}", i + 1)
        } else {
            stem.clone()
        }
    };
    let detections = collection.rules.iter().enumerate().map(|(i, rule)| {
        to_rule(path, name(i), rule).map_err(|(key, message)| invalid(&key, message))
    });
    let first = collection.rules.len();
    let correlations = collection.correlations.iter().enumerate().map(|(i, c)| {
        super::correlation::to_rule(path, name(first + i), c)
            .map_err(|(key, message)| invalid(&key, message))
    });
    // A correlation is linked to the rules it counts when its folder is
    // read ([`load_sigma`]).
    detections.chain(correlations).collect()
}

/// Loads every `*.yml` and `*.yaml` in `dir`, sorted by name, beside the
/// errors of the files that cannot be read (so a caller can go on with the
/// rest, as a folder of the public catalogue holds rules for other log
/// sources).
pub fn load_sigma(dir: &Path) -> Result<(Vec<Rule>, Vec<DetectorError>), DetectorError> {
    let (files, mut errors) = super::parse::load_files(dir, &["yml", "yaml"], parse_sigma, |rs| {
        (&rs[0].name, &rs[0].source)
    })?;
    let mut rules: Vec<Rule> = files.into_iter().flatten().collect();
    // Correlations name rules of any file of the folder.
    for (path, message) in super::correlation::link(&mut rules) {
        errors.push(DetectorError::Invalid {
            path,
            problems: vec![Problem {
                key: "correlation.rules".into(),
                message,
            }],
        });
    }
    Ok((rules, errors))
}

/// Whether a log source is CloudTrail's.
fn is_cloudtrail(rule: &SigmaRule) -> bool {
    let l = &rule.logsource;
    l.product
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("aws"))
        && l.service
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("cloudtrail"))
}

fn to_rule(path: &Path, name: String, rule: &SigmaRule) -> Result<Rule, (String, String)> {
    if !is_cloudtrail(rule) {
        let l = &rule.logsource;
        return Err((
            "logsource".into(),
            format!(
                "is product: {}, service: {}; trailwatch reads product: aws, service: cloudtrail",
                l.product.as_deref().unwrap_or("-"),
                l.service.as_deref().unwrap_or("-")
            ),
        ));
    }
    let compiled = rsigma_eval::compile_rule(rule)
        .map_err(|e| ("detection".to_owned(), format!("cannot be compiled: {e}")))?;
    let mut names = Vec::new();
    let mut keywords = false;
    for detection in rule.detection.named.values() {
        fields_of(detection, &mut names, &mut keywords);
    }
    if keywords {
        names.extend(KEYWORD_FIELDS.iter().map(|f| (*f).to_owned()));
    }
    let mut paths = HashMap::new();
    for n in names {
        let p = FieldPath::parse(&n).map_err(|e| ("detection".to_owned(), format!("{n}: {e}")))?;
        paths.insert(n, p);
    }
    Ok(Rule {
        name,
        description: rule.title.clone(),
        severity: severity_of(rule.level),
        matches: Vec::new(),
        target: None,
        attack: techniques(&rule.tags),
        habitual: habitual_of(rule.level),
        sigma: Some(Arc::new(SigmaMatch {
            compiled,
            paths,
            id: rule.id.clone(),
            name: rule.name.clone(),
        })),
        correlation: None,
        captures: Vec::new(),
        counted_only: false,
        new: None,
        source: path.to_path_buf(),
    })
}

/// The field names a detection reads (and, through `fieldref`, the
/// fields its values name); `keywords` when it searches every value.
fn fields_of(d: &Detection, out: &mut Vec<String>, keywords: &mut bool) {
    match d {
        Detection::AllOf(items) => {
            for item in items {
                match &item.field.name {
                    Some(name) => out.push(name.clone()),
                    None => *keywords = true,
                }
                let refers = item
                    .field
                    .modifiers
                    .iter()
                    .any(|m| matches!(m, Modifier::FieldRef));
                if refers {
                    out.extend(item.values.iter().filter_map(|v| match v {
                        SigmaValue::String(s) => Some(s.original.clone()),
                        _ => None,
                    }));
                }
            }
        }
        Detection::AnyOf(ds) | Detection::And(ds) => {
            for d in ds {
                fields_of(d, out, keywords);
            }
        }
        Detection::ArrayMatch { field, .. } => out.push(field.clone()),
        // Keywords, and any form this model does not name fields in.
        _ => *keywords = true,
    }
}

/// A Sigma level as a severity. Sigma keeps alerts for high ("should
/// trigger an internal alert") and critical; medium is "reviewed manually",
/// low "notable": informational, low, medium and none are low here,
/// reported and never paging by themselves ([`crate::engine::severity`]
/// takes a low rule finding as context, not evidence).
pub fn severity_of(level: Option<Level>) -> Severity {
    match level {
        Some(Level::Informational | Level::Low | Level::Medium) | None => Severity::Low,
        Some(Level::High) => Severity::High,
        Some(Level::Critical) => Severity::Critical,
    }
}

/// A Sigma rule of level medium or below is held to the principal's own
/// bar, as a rule file with `habitual = "low"`: calls to a service the
/// principal makes habitually are its job, not reported. SigmaHQ's low
/// rules (any call by an assumed role, any bucket listing) would otherwise
/// report every deploy pipeline all day. High and critical always report.
pub fn habitual_of(level: Option<Level>) -> Option<Severity> {
    (severity_of(level) == Severity::Low).then_some(Severity::Low)
}

/// The ATT&CK technique ids among Sigma tags (`attack.t1562.008`).
pub fn techniques(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = tags
        .iter()
        .filter_map(|t| t.strip_prefix("attack."))
        .map(str::to_uppercase)
        .filter(|t| super::valid_technique(t))
        .collect();
    out.dedup();
    out
}

/// A record as rsigma sees an event.
pub struct RecordEvent<'r, 'a> {
    pub record: &'r Record<'a>,
    /// The fields the rule names, parsed once; others are parsed on demand.
    pub paths: &'r HashMap<String, FieldPath>,
}

/// A field's value for Sigma: scalars as they are, objects as their JSON
/// text (Sigma's CloudTrail rules search `requestParameters` as text).
fn event_value(v: FieldValue<'_>) -> EventValue<'_> {
    match v {
        FieldValue::Str(s) => EventValue::Str(Cow::Borrowed(s)),
        FieldValue::Bool(b) => EventValue::Bool(b),
        FieldValue::Json(v @ Value::Object(_)) => EventValue::Str(Cow::Owned(v.to_string())),
        FieldValue::Json(v) => EventValue::from(v),
    }
}

impl Event for RecordEvent<'_, '_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        let parsed;
        let field = match self.paths.get(path) {
            Some(p) => p,
            None => {
                parsed = FieldPath::parse(path).ok()?;
                &parsed
            }
        };
        let mut found = Vec::new();
        self.record
            .visit(field, &mut |v| found.push(event_value(v)));
        match found.len() {
            0 => None,
            1 => found.pop(),
            _ => Some(EventValue::Array(found)),
        }
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.all_string_values().iter().any(|s| pred(s))
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut out = Vec::new();
        collect_strings(&self.to_json(), &mut out);
        out.into_iter().map(Cow::Owned).collect()
    }

    fn to_json(&self) -> Value {
        self.record.to_json()
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(o) => o.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(v: Value) -> Record<'static> {
        Record::from_value(v).unwrap()
    }

    fn call(name: &str, params: Value) -> Value {
        json!({"eventVersion": "1.08", "eventTime": "2026-11-21T03:10:10Z",
               "eventSource": "s3.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
               "sourceIPAddress": "203.0.113.66", "eventID": "e1", "userAgent": "S3 Browser 10.1",
               "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory",
                                "accountId": "111122223333", "userName": "mallory"},
               "requestParameters": params, "recipientAccountId": "111122223333"})
    }

    const VERSIONING: &str = r#"
title: S3 bucket versioning suspended
id: 11111111-2222-3333-4444-555555555555
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventSource: s3.amazonaws.com
        eventName: PutBucketVersioning
        requestParameters|contains: 'Suspended'
    condition: selection
tags:
    - attack.impact
    - attack.t1490
level: medium
"#;

    #[test]
    fn a_sigma_rule_becomes_a_rule_with_its_title_level_and_techniques() {
        let rules = parse_sigma(Path::new("sigma/versioning.yml"), VERSIONING).unwrap();
        assert_eq!(rules.len(), 1);
        let r = &rules[0];
        assert_eq!(r.name, "versioning");
        assert_eq!(r.description, "S3 bucket versioning suspended");
        assert_eq!(r.severity, Severity::Low);
        assert_eq!(r.attack, ["T1490"]);
        // An object searched as its JSON text, as the rule means it.
        let suspended = call(
            "PutBucketVersioning",
            json!({"bucketName": "b", "VersioningConfiguration": {"Status": "Suspended"}}),
        );
        assert!(r.matches(&record(suspended)));
        let enabled = call(
            "PutBucketVersioning",
            json!({"bucketName": "b", "VersioningConfiguration": {"Status": "Enabled"}}),
        );
        assert!(!r.matches(&record(enabled)));
        let paths: Vec<&str> = r.field_paths().iter().map(|p| p.as_str()).collect();
        assert!(paths.contains(&"requestParameters"), "{paths:?}");
    }

    #[test]
    fn fieldref_reads_the_other_field() {
        let text = r#"
title: Login profile of another user
logsource: {product: aws, service: cloudtrail}
detection:
    selection:
        eventSource: s3.amazonaws.com
        eventName: UpdateLoginProfile
    same:
        userIdentity.userName|fieldref: requestParameters.userName
    condition: selection and not same
level: high
"#;
        let rule = &parse_sigma(Path::new("x.yml"), text).unwrap()[0];
        assert!(rule.matches(&record(call(
            "UpdateLoginProfile",
            json!({"userName": "alice"})
        ))));
        assert!(!rule.matches(&record(call(
            "UpdateLoginProfile",
            json!({"userName": "mallory"})
        ))));
    }

    #[test]
    fn what_cannot_be_read_is_named_with_why() {
        let windows = VERSIONING
            .replace("product: aws", "product: windows")
            .replace("service: cloudtrail", "category: process_creation");
        let e = parse_sigma(Path::new("sigma/w.yml"), &windows)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sigma/w.yml"), "{e}");
        assert!(e.contains("logsource: is product: windows"), "{e}");
        let e = parse_sigma(Path::new("sigma/bad.yml"), "title: [unclosed")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sigma/bad.yml") && e.contains("not a Sigma rule"),
            "{e}"
        );
        for (kind, why) in [
            ("type: temporal", "temporal is not evaluated"),
            (
                "type: event_count\n  window: tumbling",
                "tumbling windows are not evaluated",
            ),
        ] {
            let text = format!("title: many\ncorrelation:\n  {kind}\n  rules: [a, b]\n  group-by: [x]\n  timespan: 1h\n  condition: {{gte: 3}}\n");
            let e = parse_sigma(Path::new("sigma/c.yml"), &text)
                .unwrap_err()
                .to_string();
            assert!(e.contains("sigma/c.yml") && e.contains(why), "{e}");
        }
        let fewer = "title: few\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition: {lt: 3}\n";
        let e = parse_sigma(Path::new("sigma/f.yml"), fewer)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("correlation.condition") && e.contains("use gte or gt"),
            "{e}"
        );
    }

    /// A correlation counts the hits of the rules it names, per group, in a
    /// sliding timespan: findings when the count reaches its condition, once
    /// per rise; `value_count` counts distinct values of a field.
    #[test]
    fn correlations_become_rate_findings_over_the_hits_of_their_rules() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("denied.yml"),
            "title: Access denied\nname: denied\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    errorCode: AccessDenied\n  condition: sel\nlevel: high\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("many-denied.yml"),
            "title: Many denied calls from one address\ncorrelation:\n  type: event_count\n  rules: [denied]\n  group-by: [sourceIPAddress]\n  timespan: 5m\n  condition: {gte: 4}\nlevel: high\ntags: [attack.discovery, attack.t1580]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("many-calls.yml"),
            "title: Denied across many calls\ncorrelation:\n  type: value_count\n  rules: [denied]\n  timespan: 5m\n  condition: {gte: 3, field: eventName}\nlevel: high\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("orphan.yml"),
            "title: Orphan\ncorrelation:\n  type: event_count\n  rules: [nowhere]\n  timespan: 5m\n  condition: {gte: 2}\n",
        )
        .unwrap();
        let (mut rules, errors) = load_sigma(dir.path()).unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].to_string().contains("orphan.yml")
                && errors[0]
                    .to_string()
                    .contains("no Sigma rule named nowhere")
        );
        rules.sort_by(|a, b| a.name.cmp(&b.name));
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["denied", "many-calls", "many-denied"]);
        // The counted rule keeps the fields its correlations need.
        let mut kept: Vec<&str> = rules[0].captures.iter().map(|(f, _)| f.as_str()).collect();
        kept.sort();
        assert_eq!(kept, ["eventName", "sourceIPAddress"]);
        // Six denials from one address a minute apart, over three calls,
        // then one from elsewhere.
        let mut hits = crate::engine::rules::RuleHits::default();
        for (i, name) in [
            "ListUsers",
            "ListUsers",
            "ListRoles",
            "ListRoles",
            "GetUser",
            "GetUser",
        ]
        .iter()
        .enumerate()
        {
            let mut v = call(name, json!({}));
            v["eventTime"] = json!(format!("2026-11-21T03:1{i}:00Z"));
            v["errorCode"] = json!("AccessDenied");
            hits.record(&rules, &record(v));
        }
        let mut v = call("ListUsers", json!({}));
        v["sourceIPAddress"] = json!("198.51.100.7");
        v["errorCode"] = json!("AccessDenied");
        hits.record(&rules, &record(v));
        let judging = crate::engine::rules::Judging {
            rules: &rules,
            ..Default::default()
        };
        let t = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        let found = crate::engine::rules::detect(
            &hits,
            t("2026-11-21T00:00:00Z"),
            t("2026-11-22T00:00:00Z"),
            &judging,
        );
        let of = |name: &str| {
            found
                .iter()
                .filter(|a| a.detector == name)
                .collect::<Vec<_>>()
        };
        let many = of("many-denied");
        assert_eq!(many.len(), 1, "once per rise: {many:#?}");
        assert_eq!(many[0].start, t("2026-11-21T03:10:00Z"));
        assert_eq!(
            many[0].detected,
            t("2026-11-21T03:14:00Z"),
            "the fourth denial, at 03:13"
        );
        assert_eq!(many[0].severity, Some(Severity::High));
        assert_eq!(many[0].attack, ["T1580"]);
        assert!(many[0].summary.starts_with("Many denied calls from one address: 4 matches of denied within 5 minutes for sourceIPAddress=203.0.113.66; by user/mallory"), "{}", many[0].summary);
        let calls = of("many-calls");
        assert_eq!(calls.len(), 1, "{calls:#?}");
        assert_eq!(calls[0].actual, 3.0);
        assert!(
            calls[0].summary.contains("3 distinct eventName"),
            "{}",
            calls[0].summary
        );
        // Evaluated in two steps (`--follow`), the same findings.
        let mut steps = crate::engine::rules::detect(
            &hits,
            t("2026-11-21T00:00:00Z"),
            t("2026-11-21T03:13:30Z"),
            &judging,
        );
        steps.extend(crate::engine::rules::detect(
            &hits,
            t("2026-11-21T03:13:30Z"),
            t("2026-11-22T00:00:00Z"),
            &judging,
        ));
        let key = |a: &crate::engine::Anomaly| (a.detector.clone(), a.start, a.detected);
        let mut once: Vec<_> = found.iter().map(key).collect();
        let mut twice: Vec<_> = steps.iter().map(key).collect();
        once.sort();
        twice.sort();
        assert_eq!(once, twice);
        // Sigma's `generate` is false unless said: the rule they count
        // makes no finding of its own. One correlation that generates it
        // is enough for it to make them.
        assert!(rules[0].counted_only);
        assert!(of("denied").is_empty(), "{:#?}", of("denied"));
        std::fs::write(
            dir.path().join("loud.yml"),
            "title: Loud\ncorrelation:\n  type: event_count\n  rules: [denied]\n  timespan: 5m\n  condition: {gte: 50}\ngenerate: true\n",
        )
        .unwrap();
        let (rules, _) = load_sigma(dir.path()).unwrap();
        let denied = rules.iter().find(|r| r.name == "denied").unwrap();
        assert!(!denied.counted_only);
        let judging = crate::engine::rules::Judging {
            rules: &rules,
            ..Default::default()
        };
        let found = crate::engine::rules::detect(
            &hits,
            t("2026-11-21T00:00:00Z"),
            t("2026-11-22T00:00:00Z"),
            &judging,
        );
        assert_eq!(found.iter().filter(|a| a.detector == "denied").count(), 6);
    }

    #[test]
    fn levels_and_tags() {
        assert_eq!(severity_of(Some(Level::Informational)), Severity::Low);
        assert_eq!(severity_of(None), Severity::Low);
        assert_eq!(severity_of(Some(Level::Medium)), Severity::Low);
        assert_eq!(severity_of(Some(Level::High)), Severity::High);
        assert_eq!(severity_of(Some(Level::Critical)), Severity::Critical);
        assert_eq!(habitual_of(Some(Level::Medium)), Some(Severity::Low));
        assert_eq!(habitual_of(Some(Level::High)), None);
        let tags = [
            "attack.defense-evasion",
            "attack.t1562.008",
            "attack.T1562.008",
            "cve.2021",
        ]
        .map(String::from);
        assert_eq!(techniques(&tags), ["T1562.008"]);
    }
}
