//! Reading detector files (TOML) into [`Detector`]s, reporting every problem
//! in a file at once, each naming the key and saying what to write instead.

use super::model::{
    AlertThresholds, Detector, Direction, ErrorFilter, FieldMatch, Filter, Imputation, ValueSpec,
};
use crate::cloudtrail::FieldPath;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::{Table, Value};

/// One problem in a detector file.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The key, dotted from the top (`filter.errors`), or empty for the file.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Why a detector file (or folder) could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not valid TOML:\n{}", path.display(), indent(message))]
    Syntax { path: PathBuf, message: String },
    #[error("{}: {} problem(s):{}", path.display(), problems.len(), problems.iter().map(|p| format!("\n  - {p}")).collect::<String>())]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
    #[error("{}: detector name {name:?} is also used by {}; names must be unique", path.display(), other.display())]
    Duplicate {
        path: PathBuf,
        name: String,
        other: PathBuf,
    },
}

/// Loads every `*.toml` in `dir`, sorted by name. Valid detectors are returned
/// beside the errors of the invalid ones, so a caller can go on with the rest.
pub fn load_dir(dir: &Path) -> Result<(Vec<Detector>, Vec<DetectorError>), DetectorError> {
    load_files(dir, &["toml"], parse_detector, |d: &Detector| {
        (&d.name, &d.source)
    })
}

/// Parses every file in `dir` (not below it) ending in one of
/// `extensions`, sorted by name, with `parse`; `id` gives a parsed file's name and path, which must be unique.
pub(super) fn load_files<T>(
    dir: &Path,
    extensions: &[&str],
    parse: impl Fn(&Path, &str) -> Result<T, DetectorError>,
    id: impl Fn(&T) -> (&String, &PathBuf),
) -> Result<(Vec<T>, Vec<DetectorError>), DetectorError> {
    let io = |source| DetectorError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|x| extensions.iter().any(|e| x == *e))
        })
        .collect();
    files.sort();
    let mut parsed: Vec<T> = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(source) => {
                errors.push(DetectorError::Io { path, source });
                continue;
            }
        };
        match parse(&path, &text) {
            Ok(d) => {
                let other = parsed
                    .iter()
                    .find(|o| id(o).0 == id(&d).0)
                    .map(|o| id(o).1.clone());
                match other {
                    Some(other) => errors.push(DetectorError::Duplicate {
                        path,
                        name: id(&d).0.clone(),
                        other,
                    }),
                    None => parsed.push(d),
                }
            }
            Err(e) => errors.push(e),
        }
    }
    Ok((parsed, errors))
}

/// Each line of a multi-line message, indented under its heading.
fn indent(message: &str) -> String {
    message
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses one detector file's text; `path` names it in errors and supplies
/// the default name (the file stem).
pub fn parse_detector(path: &Path, text: &str) -> Result<Detector, DetectorError> {
    let (table, stem) = read_table(path, text)?;
    let mut problems = Vec::new();
    let detector = {
        let mut top = Keys::new(&table, "", &mut problems);
        let name = top.string("name").unwrap_or(stem);
        let description = top.string("description").unwrap_or_default();
        let interval = top.duration("interval").unwrap_or(Duration::from_secs(600));
        let window_delay = top
            .duration("window_delay")
            .unwrap_or(Duration::from_secs(60));
        let shingle_size = top.integer("shingle_size", 1, 128).unwrap_or(8) as usize;
        let category_fields = top.field_list("category_fields").unwrap_or_default();
        let imputation = top.string("imputation");
        let filter = top.table("filter");
        let value = top.table("value");
        let alert = top.table("alert");
        top.finish();
        if category_fields.len() > 2 {
            problems.push(Problem {
                key: "category_fields".into(),
                message: format!(
                    "{} fields given; OpenSearch anomaly detection allows at most 2",
                    category_fields.len()
                ),
            });
        }
        problems.extend(name_problem(&name));
        if interval < Duration::from_secs(60) {
            problems.push(Problem {
                key: "interval".into(),
                message: "must be at least 1m".into(),
            });
        }
        let filter = parse_filter(filter.as_ref(), &mut problems);
        let value = parse_value(value.as_ref(), &mut problems);
        let alert = parse_alert(alert.as_ref(), &mut problems);
        let imputation = match imputation.as_deref() {
            None => Imputation::default_for(alert.direction),
            Some("none") => Imputation::None,
            Some("zero") => Imputation::Zero,
            Some("previous") => Imputation::Previous,
            Some(other) => {
                problems.push(Problem {
                    key: "imputation".into(),
                    message: format!(
                        "{other:?} is not one of \"none\", \"zero\", \"previous\" (what the OpenSearch plugin puts in an interval with no data)"
                    ),
                });
                Imputation::None
            }
        };
        Detector {
            name,
            description,
            filter,
            value,
            category_fields,
            interval,
            window_delay,
            shingle_size,
            alert,
            imputation,
            source: path.to_path_buf(),
        }
    };
    if problems.is_empty() {
        Ok(detector)
    } else {
        Err(DetectorError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }
}

/// A detector or rule file's TOML table, and its default name (the file stem).
pub(super) fn read_table(path: &Path, text: &str) -> Result<(Table, String), DetectorError> {
    let table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| DetectorError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((table, stem))
}

/// The problem with a detector or rule name, if it is not a valid one.
pub(super) fn name_problem(name: &str) -> Option<Problem> {
    (!valid_name(name)).then(|| Problem {
        key: "name".into(),
        message: format!("{name:?} is not a valid name; use 1-64 of a-z, 0-9, '-' and '_', starting with a letter or digit"),
    })
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn parse_filter(table: Option<&Table>, problems: &mut Vec<Problem>) -> Filter {
    let empty = Table::new();
    let mut k = Keys::new(table.unwrap_or(&empty), "filter.", problems);
    let filter = filter_keys(&mut k);
    k.finish();
    filter
}

/// The keys of a `[filter]` table (also a rule's `[[match]]` block), taken
/// from `k`; the caller finishes it.
pub(super) fn filter_keys<'a>(k: &mut Keys<'a, '_>) -> Filter {
    let event_sources = k.string_list("event_sources").unwrap_or_default();
    let event_names = k.string_list("event_names").unwrap_or_default();
    let read_only = k.boolean("read_only");
    let user_identity_types = k.string_list("user_identity_types").unwrap_or_default();
    let errors = match k.take("errors") {
        None => ErrorFilter::Any,
        Some(Value::String(s)) => match s.as_str() {
            "any" => ErrorFilter::Any,
            "failed" => ErrorFilter::Failed,
            "succeeded" => ErrorFilter::Succeeded,
            other => {
                k.problem("errors", format!("{other:?} is not one of \"any\", \"failed\", \"succeeded\", or a list of error codes"));
                ErrorFilter::Any
            }
        },
        Some(v @ Value::Array(_)) => {
            match strings(&v) {
                Some(codes) if !codes.is_empty() => ErrorFilter::Codes(codes),
                _ => {
                    k.problem("errors", "a list of error codes must hold one or more strings, like [\"AccessDenied\"]".into());
                    ErrorFilter::Any
                }
            }
        }
        Some(v) => {
            k.problem("errors", format!("expected \"any\", \"failed\", \"succeeded\" or a list of error codes, found {}", v.type_str()));
            ErrorFilter::Any
        }
    };
    let fields = k.field_values("fields");
    Filter {
        event_sources,
        event_names,
        errors,
        read_only,
        user_identity_types,
        fields,
    }
}

fn parse_value(table: Option<&Table>, problems: &mut Vec<Problem>) -> ValueSpec {
    let empty = Table::new();
    let mut k = Keys::new(table.unwrap_or(&empty), "value.", problems);
    let aggregation = k.string("aggregation").unwrap_or_else(|| "count".into());
    let field = k.field("field");
    let spec = match (aggregation.as_str(), field) {
        ("count", None) => ValueSpec::Count,
        ("count", Some(_)) => {
            k.problem(
                "field",
                "a count takes no field; remove it, or use aggregation = \"sum\" or \"distinct\""
                    .into(),
            );
            ValueSpec::Count
        }
        ("sum", Some(f)) => ValueSpec::Sum(f),
        ("distinct", Some(f)) => ValueSpec::Distinct(f),
        ("sum" | "distinct", None) => {
            k.problem(
                "field",
                format!(
                    "aggregation {aggregation:?} needs a field, like field = \"userIdentity.arn\""
                ),
            );
            ValueSpec::Count
        }
        (other, _) => {
            k.problem(
                "aggregation",
                format!("{other:?} is not one of \"count\", \"sum\", \"distinct\""),
            );
            ValueSpec::Count
        }
    };
    k.finish();
    spec
}

fn parse_alert(table: Option<&Table>, problems: &mut Vec<Problem>) -> AlertThresholds {
    let empty = Table::new();
    let mut k = Keys::new(table.unwrap_or(&empty), "alert.", problems);
    let defaults = AlertThresholds::default();
    let grade = k.fraction("grade").unwrap_or(defaults.grade);
    let confidence = k.fraction("confidence").unwrap_or(defaults.confidence);
    let direction = match k.string("direction").as_deref() {
        None => defaults.direction,
        Some("both") => Direction::Both,
        Some("up") => Direction::Up,
        Some("down") => Direction::Down,
        Some(other) => {
            k.problem(
                "direction",
                format!("{other:?} is not one of \"up\", \"down\", \"both\""),
            );
            Direction::Both
        }
    };
    let min_ratio = k.non_negative("min_ratio").unwrap_or(defaults.min_ratio);
    let min_margin = k.non_negative("min_margin").unwrap_or(defaults.min_margin);
    k.finish();
    AlertThresholds {
        grade,
        confidence,
        direction,
        min_ratio,
        min_margin,
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_owned))
        .collect()
}

/// Takes keys out of one TOML table, recording problems; `finish` reports the
/// keys nobody asked for.
pub(super) struct Keys<'a, 'p> {
    table: &'a Table,
    prefix: String,
    taken: BTreeSet<&'a str>,
    problems: &'p mut Vec<Problem>,
}

impl<'a, 'p> Keys<'a, 'p> {
    pub(super) fn new(
        table: &'a Table,
        prefix: impl Into<String>,
        problems: &'p mut Vec<Problem>,
    ) -> Self {
        Keys {
            table,
            prefix: prefix.into(),
            taken: BTreeSet::new(),
            problems,
        }
    }

    /// A problem with `key`, or with the whole table when `key` is empty.
    pub(super) fn problem(&mut self, key: &str, message: String) {
        let key = match key {
            "" => self.prefix.trim_end_matches('.').to_owned(),
            key => format!("{}{key}", self.prefix),
        };
        self.problems.push(Problem { key, message });
    }

    pub(super) fn take(&mut self, key: &'a str) -> Option<Value> {
        let v = self.table.get(key)?;
        self.taken.insert(key);
        Some(v.clone())
    }

    fn wrong(&mut self, key: &str, expected: &str, v: &Value) {
        self.problem(key, format!("expected {expected}, found {}", v.type_str()));
    }

    pub(super) fn string(&mut self, key: &'a str) -> Option<String> {
        match self.take(key)? {
            Value::String(s) => Some(s),
            v => {
                self.wrong(key, "a string", &v);
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, key: &'a str) -> Option<bool> {
        match self.take(key)? {
            Value::Boolean(b) => Some(b),
            v => {
                self.wrong(key, "true or false", &v);
                None
            }
        }
    }

    fn integer(&mut self, key: &'a str, min: i64, max: i64) -> Option<i64> {
        match self.take(key)? {
            Value::Integer(i) if (min..=max).contains(&i) => Some(i),
            Value::Integer(i) => {
                self.problem(key, format!("{i} is out of range; use {min} to {max}"));
                None
            }
            v => {
                self.wrong(key, "a whole number", &v);
                None
            }
        }
    }

    fn fraction(&mut self, key: &'a str) -> Option<f64> {
        let v = self.take(key)?;
        match v {
            Value::Float(f) if (0.0..=1.0).contains(&f) => Some(f),
            Value::Integer(i) if (0..=1).contains(&i) => Some(i as f64),
            Value::Float(_) | Value::Integer(_) => {
                self.problem(
                    key,
                    format!("{v} is out of range; use a number from 0 to 1"),
                );
                None
            }
            v => {
                self.wrong(key, "a number from 0 to 1", &v);
                None
            }
        }
    }

    fn non_negative(&mut self, key: &'a str) -> Option<f64> {
        match self.take(key)? {
            Value::Float(f) if f >= 0.0 && f.is_finite() => Some(f),
            Value::Integer(i) if i >= 0 => Some(i as f64),
            v @ (Value::Float(_) | Value::Integer(_)) => {
                self.problem(key, format!("{v} is negative; use 0 or more"));
                None
            }
            v => {
                self.wrong(key, "a number", &v);
                None
            }
        }
    }

    fn duration(&mut self, key: &'a str) -> Option<Duration> {
        let s = self.string(key)?;
        match parse_duration(&s) {
            Some(d) => Some(d),
            None => {
                self.problem(
                    key,
                    format!(
                        "{s:?} is not a duration; write minutes or hours, like \"10m\" or \"1h\""
                    ),
                );
                None
            }
        }
    }

    pub(super) fn string_list(&mut self, key: &'a str) -> Option<Vec<String>> {
        let v = self.take(key)?;
        match strings(&v) {
            Some(list) => Some(list),
            None => {
                self.wrong(key, "a list of strings", &v);
                None
            }
        }
    }

    pub(super) fn field(&mut self, key: &'a str) -> Option<FieldPath> {
        let s = self.string(key)?;
        FieldPath::parse(&s).map_err(|e| self.problem(key, e)).ok()
    }

    pub(super) fn field_list(&mut self, key: &'a str) -> Option<Vec<FieldPath>> {
        let list = self.string_list(key)?;
        let mut out = Vec::new();
        for s in list {
            match FieldPath::parse(&s) {
                Ok(p) => out.push(p),
                Err(e) => self.problem(key, e),
            }
        }
        Some(out)
    }

    pub(super) fn table(&mut self, key: &'a str) -> Option<Table> {
        match self.take(key)? {
            Value::Table(t) => Some(t),
            v => {
                self.wrong(key, "a table", &v);
                None
            }
        }
    }

    /// A table of `"field.path" = "value"` or `= ["value", ...]`.
    pub(super) fn field_values(&mut self, key: &'a str) -> Vec<FieldMatch> {
        let mut fields = Vec::new();
        let Some(v) = self.take(key) else {
            return fields;
        };
        let Value::Table(t) = v else {
            self.wrong(key, "a table of field = value(s)", &v);
            return fields;
        };
        for (name, value) in &t {
            let path = match FieldPath::parse(name) {
                Ok(p) => p,
                Err(e) => {
                    self.problem(&format!("{key}.{name}"), e);
                    continue;
                }
            };
            // Compared as text: a string, a boolean, an integer, or a list of them.
            let scalar = |v: &Value| match v {
                Value::String(s) => Some(s.clone()),
                Value::Boolean(b) => Some(b.to_string()),
                Value::Integer(i) => Some(i.to_string()),
                _ => None,
            };
            let values = match value {
                Value::Array(list) => list
                    .iter()
                    .map(scalar)
                    .collect::<Option<Vec<_>>>()
                    .filter(|v| !v.is_empty()),
                one => scalar(one).map(|v| vec![v]),
            };
            match values {
                Some(values) => fields.push(FieldMatch {
                    field: path,
                    values,
                }),
                None => self.problem(
                    &format!("{key}.{name}"),
                    "expected a string, a boolean, an integer, or a list of them".into(),
                ),
            }
        }
        fields
    }

    pub(super) fn finish(self) {
        for key in self.table.keys() {
            if !self.taken.contains(key.as_str()) {
                self.problems.push(Problem {
                    key: format!("{}{key}", self.prefix),
                    message: "unknown key; see the detector file format in docs/detector-files.md"
                        .into(),
                });
            }
        }
    }
}

/// `"10m"`, `"1h"`, `"0m"`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (digits, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    match unit {
        "m" => Some(Duration::from_secs(n * 60)),
        "h" => Some(Duration::from_secs(n * 3600)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Detector, DetectorError> {
        parse_detector(Path::new("detectors/x.toml"), text)
    }

    #[test]
    fn a_minimal_file_takes_the_plugin_defaults() {
        let d = parse("").unwrap();
        assert_eq!(d.name, "x");
        assert_eq!(d.interval, Duration::from_secs(600));
        assert_eq!(d.shingle_size, 8);
        assert_eq!(d.value, ValueSpec::Count);
        assert_eq!(
            d.alert,
            AlertThresholds {
                grade: 0.7,
                confidence: 0.7,
                direction: Direction::Both,
                min_ratio: 0.2,
                min_margin: 0.0
            }
        );
        assert!(!d.is_high_cardinality());
    }

    #[test]
    fn a_full_file_reads_every_key() {
        let d = parse(
            r#"
            name = "ec2-run-instances"
            description = "instances"
            interval = "5m"
            window_delay = "2m"
            shingle_size = 4
            category_fields = ["userIdentity.arn", "awsRegion"]
            [filter]
            event_sources = ["ec2.amazonaws.com"]
            event_names = ["RunInstances"]
            errors = ["AccessDenied"]
            read_only = false
            user_identity_types = ["IAMUser"]
            fields = { "responseElements.ConsoleLogin" = "Failure" }
            [value]
            aggregation = "sum"
            field = "requestParameters.instancesSet.items.maxCount"
            [alert]
            grade = 0.5
            confidence = 1
            direction = "up"
            min_margin = 5
            "#,
        )
        .unwrap();
        assert_eq!(d.interval, Duration::from_secs(300));
        assert_eq!(d.category_fields.len(), 2);
        assert_eq!(
            d.filter.errors,
            ErrorFilter::Codes(vec!["AccessDenied".into()])
        );
        assert_eq!(d.filter.fields[0].values, ["Failure"]);
        assert!(matches!(d.value, ValueSpec::Sum(ref p) if p.as_str().ends_with("maxCount")));
        assert_eq!(d.alert.confidence, 1.0);
        assert_eq!(
            (d.alert.direction, d.alert.min_margin, d.alert.min_ratio),
            (Direction::Up, 5.0, 0.2)
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_key() {
        let err = parse(
            r#"
            name = "Bad Name"
            shingle_size = 500
            interval = "ten minutes"
            colour = "red"
            category_fields = ["a", "b", "c"]
            [filter]
            errors = "sometimes"
            event_names = "RunInstances"
            [value]
            aggregation = "sum"
            [alert]
            grade = 1.5
            direction = "sideways"
            min_margin = -1
            "#,
        )
        .unwrap_err();
        let DetectorError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "name",
            "shingle_size",
            "interval",
            "colour",
            "category_fields",
            "filter.errors",
            "filter.event_names",
            "value.field",
            "alert.grade",
            "alert.direction",
            "alert.min_margin",
        ] {
            assert!(keys.contains(&key), "no problem for {key}: {err}");
        }
        let text = err.to_string();
        assert!(
            text.starts_with("detectors/x.toml: 11 problem(s):"),
            "{text}"
        );
        assert!(text.contains("colour: unknown key"), "{text}");
    }

    /// TOML's own message (line, the line itself, a caret) was squashed
    /// onto one line.
    #[test]
    fn syntax_errors_name_the_file_and_keep_their_lines() {
        let err = parse("interval = \"10m\"\nname = \n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("detectors/x.toml: not valid TOML:\n"),
            "{err}"
        );
        let lines: Vec<&str> = err.lines().collect();
        assert!(lines.len() >= 4, "{err}");
        assert!(
            lines.iter().any(|l| l.contains("^")),
            "the caret is kept: {err}"
        );
        assert!(
            lines[1..].iter().all(|l| l.starts_with("  ")),
            "indented: {err}"
        );
    }

    #[test]
    fn rules_keep_only_deviations_that_matter() {
        let a = |direction, min_ratio, min_margin| AlertThresholds {
            grade: 0.7,
            confidence: 0.7,
            direction,
            min_ratio,
            min_margin,
        };
        let plugin = a(Direction::Both, 0.2, 0.0);
        assert!(
            !plugin.keeps(110.0, 100.0),
            "10 % is under the plugin's 20 %"
        );
        assert!(plugin.keeps(130.0, 100.0) && plugin.keeps(70.0, 100.0));
        let up = a(Direction::Up, 0.2, 5.0);
        assert!(!up.keeps(0.0, 40.0), "a drop is ignored");
        assert!(!up.keeps(4.0, 0.0), "under the margin");
        assert!(up.keeps(5.0, 0.0));
        assert!(a(Direction::Down, 0.0, 0.0).keeps(1.0, 2.0));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration(""), None);
    }
}
