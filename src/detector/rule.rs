//! Rule files: events that need no baseline, such as `StopLogging` or a
//! bucket opened to everyone, found the minute they happen.
//!
//! A rule file lives in `detectors/rules/` and is read with the same
//! machinery and errors as a detector file ([`super::parse`]): every problem
//! at once, each naming its key. A rule matches a record when any of its
//! `[[match]]` blocks does; a block holds a detector's `[filter]` keys
//! (`event_sources`, `event_names`, `errors`, `read_only`,
//! `user_identity_types`, `fields`) and three more conditions:
//! - `unless`: field = value(s) that must *not* be found;
//! - `absent`: fields that must not be there at all;
//! - `present`: fields that must be there, whatever their value;
//! - `outside_org`: fields naming accounts, one of which must be outside
//!   the organisation (decided when findings are made);
//! - `differs`: field = other field, present and not equal to it (the user
//!   an access key is created for is not the caller);
//! - `within`: an array whose elements `fields`, `unless` and `absent` then
//!   look into, one element at a time: a bucket policy is public when one
//!   statement allows `*` without a condition, not when an `Allow` and a
//!   `Principal: *` sit in different statements.
//!
//! A rule declares its `severity` (a floor for its incident) and may name
//! the field that says what it touched (`target`).
//!
//! A `[new]` table makes a rule judge history: a match counts only when its
//! `value` (a field, or `"network"`: the caller's /24 or /48) is new to its
//! scope `per`: `"account"` (never seen in the account, once the account
//! has learned: an instance type it never ran), or a field (a value other
//! than the scope's first while the first is still in use: an instance's
//! session used from a second network while the instance still calls from
//! its own). Only the first and last match of each value are kept.

use super::parse::{filter_keys, name_problem, read_table, Keys, Problem};
use super::sigma::SigmaMatch;
use super::{DetectorError, FieldMatch, Filter};
use crate::cloudtrail::{FieldPath, FieldValue, Record};
use crate::engine::Severity;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Table;

/// A validated rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// What it means, for people: the start of every finding's summary.
    pub description: String,
    pub severity: Severity,
    /// Any of these matches.
    pub matches: Vec<Match>,
    /// The field naming what the event touched (a trail, a bucket, a user).
    pub target: Option<FieldPath>,
    /// The MITRE ATT&CK techniques a match is evidence of (`T1562.008`).
    pub attack: Vec<String>,
    /// The severity a finding starts at instead when its principal makes
    /// the same call habitually (several times, the first a learning period
    /// or more before; or while its account is still learning): a deploy
    /// pipeline creating roles, automation running commands on instances.
    /// `low` means it is routine for that principal: not reported.
    pub habitual: Option<Severity>,
    /// A Sigma rule's compiled detection, which `matches` then stands
    /// beside (empty) ([`super::sigma`]).
    pub sigma: Option<Arc<SigmaMatch>>,
    /// A Sigma correlation: it matches no record, and counts the hits of
    /// the rules it names ([`super::correlation`]).
    pub correlation: Option<Arc<super::correlation::Correlation>>,
    /// Fields a correlation counting this rule groups or counts by, kept
    /// with each hit (field as written, parsed).
    pub captures: Vec<(String, FieldPath)>,
    /// Named only by Sigma correlations that do not `generate` it: its hits
    /// feed them and make no finding of their own.
    pub counted_only: bool,
    /// `[new]`: a match counts only when its value is new to its scope.
    pub new: Option<NewValue>,
    /// The file it came from.
    pub source: PathBuf,
}

/// A rule's `[new]` table: what must be new, and to what.
#[derive(Debug, Clone, PartialEq)]
pub struct NewValue {
    pub value: Valued,
    pub per: Scope,
}

/// What a `[new]` rule looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Valued {
    /// The caller's network ([`crate::engine::novelty::network_of`]).
    Network,
    Field(FieldPath),
}

/// What a `[new]` rule's value must be new to.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// The account (`recipientAccountId`), once it has learned.
    Account,
    /// Each value of a field: new when the scope had another value first.
    Field(FieldPath),
}

impl NewValue {
    /// The (scope, value) of a record, when it has both.
    pub fn of(&self, r: &Record) -> Option<(String, String)> {
        let value = match &self.value {
            Valued::Network => crate::engine::novelty::network_of(r.source_ip_address()?)?,
            Valued::Field(f) => r.first_text(f)?,
        };
        let scope = match &self.per {
            Scope::Account => r.recipient_account_id()?.to_owned(),
            Scope::Field(f) => r.first_text(f)?,
        };
        Some((scope, value))
    }

    fn field_paths(&self) -> impl Iterator<Item = &FieldPath> {
        let value = match &self.value {
            Valued::Field(f) => Some(f),
            Valued::Network => None,
        };
        let per = match &self.per {
            Scope::Field(f) => Some(f),
            Scope::Account => None,
        };
        value.into_iter().chain(per)
    }
}

/// Parses a rule's `[new]` table.
fn parse_new(table: &Table, problems: &mut Vec<Problem>) -> Option<NewValue> {
    let mut k = Keys::new(table, "new.", problems);
    let value = k.string("value");
    let per = k.string("per");
    let field = |k: &mut Keys<'_, '_>, key: &str, text: &str| match FieldPath::parse(text) {
        Ok(f) => Some(f),
        Err(e) => {
            k.problem(key, e);
            None
        }
    };
    let value = match value.as_deref() {
        None => {
            k.problem(
                "value",
                "missing; \"network\" or a field, like \"requestParameters.instanceType\"".into(),
            );
            None
        }
        Some("network") => Some(Valued::Network),
        Some(f) => field(&mut k, "value", f).map(Valued::Field),
    };
    let per = match per.as_deref() {
        None => {
            k.problem(
                "per",
                "missing; \"account\" or a field, like \"userIdentity.accessKeyId\"".into(),
            );
            None
        }
        Some("account") => Some(Scope::Account),
        Some(f) => field(&mut k, "per", f).map(Scope::Field),
    };
    k.finish();
    Some(NewValue {
        value: value?,
        per: per?,
    })
}

/// Whether `id` is an ATT&CK technique id: `T` and four digits, and a
/// sub-technique's `.` and three digits (`T1098`, `T1562.008`).
pub fn valid_technique(id: &str) -> bool {
    let Some(digits) = id.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = digits.split_once('.').unwrap_or((digits, ""));
    main.len() == 4
        && main.bytes().all(|b| b.is_ascii_digit())
        && (sub.is_empty() || (sub.len() == 3 && sub.bytes().all(|b| b.is_ascii_digit())))
}

/// One `[[match]]` block: every part given must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Match {
    pub filter: Filter,
    pub unless: Vec<FieldMatch>,
    pub absent: Vec<FieldPath>,
    /// Fields that must be there, whatever their value (a user data
    /// script CloudTrail logs only as `<sensitiveDataRemoved>`).
    pub present: Vec<FieldPath>,
    /// (field, other): `field` is present and differs from `other`.
    pub differs: Vec<(FieldPath, FieldPath)>,
    /// The array whose elements `fields`, `unless` and `absent` look into.
    pub within: Option<FieldPath>,
    /// Fields naming AWS accounts (ids, or ARNs holding them): the block
    /// holds only when one names an account outside the organisation (the
    /// accounts seen in the trail, and `--org-accounts`). Decided when the
    /// findings are made, when every account is known.
    pub outside_org: Vec<FieldPath>,
}

impl Match {
    /// The accounts the `outside_org` fields name in `r` (12-digit ids,
    /// alone or in ARNs), once each.
    pub fn named_accounts(&self, r: &Record) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for path in &self.outside_org {
            r.visit(path, &mut |v| {
                if let Some(text) = v.text() {
                    for id in account_ids(&text) {
                        if !out.contains(&id) {
                            out.push(id);
                        }
                    }
                }
            });
        }
        out
    }

    pub fn matches(&self, r: &Record) -> bool {
        if !self.filter.matches_event(r)
            || !self.differs.iter().all(|(a, b)| differs(r, a, b))
            || !self.present.iter().all(|p| present(r, p))
        {
            return false;
        }
        match &self.within {
            None => {
                self.filter.fields.iter().all(|m| m.holds_in(r))
                    && !self.unless.iter().any(|m| m.holds_in(r))
                    && self.absent.iter().all(|p| !present(r, p))
            }
            Some(array) => {
                let mut any = false;
                r.visit(array, &mut |v| {
                    if let FieldValue::Json(Value::Object(element)) = v {
                        any |= self
                            .filter
                            .fields
                            .iter()
                            .all(|m| m.holds_in_object(element))
                            && !self.unless.iter().any(|m| m.holds_in_object(element))
                            && self.absent.iter().all(|p| {
                                let mut found = false;
                                p.visit(element, &mut |_| found = true);
                                !found
                            });
                    }
                });
                any
            }
        }
    }
}

/// The 12-digit account ids in a text (an id, an ARN, a principal).
pub fn account_ids(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|d| d.len() == 12)
        .map(str::to_owned)
        .collect()
}

fn present(r: &Record, path: &FieldPath) -> bool {
    let mut found = false;
    r.visit(path, &mut |_| found = true);
    found
}

fn differs(r: &Record, field: &FieldPath, other: &FieldPath) -> bool {
    match (r.first_text(field), r.first_text(other)) {
        (None, _) => false,
        (Some(a), Some(b)) => a != b,
        (Some(_), None) => true,
    }
}

impl Rule {
    pub fn matches(&self, r: &Record) -> bool {
        self.hit(r).is_some()
    }

    /// Whether a block matches `r`, with the accounts its `outside_org`
    /// fields name (none for a block without them). A block with
    /// `outside_org` that names no account does not match.
    pub fn hit(&self, r: &Record) -> Option<Vec<String>> {
        if self.correlation.is_some() {
            return None;
        }
        if let Some(sigma) = &self.sigma {
            return sigma.matches(r).then(Vec::new);
        }
        self.matches.iter().filter(|m| m.matches(r)).find_map(|m| {
            let accounts = m.named_accounts(r);
            (m.outside_org.is_empty() || !accounts.is_empty()).then_some(accounts)
        })
    }

    /// Every record field the rule reads beyond the record model's own.
    /// Whether a correlation's reference (a Sigma rule's name or id) is
    /// this rule (or our name of it, the file's stem).
    pub fn answers_to(&self, reference: &str) -> bool {
        self.name == reference
            || self.sigma.as_ref().is_some_and(|s| {
                s.id.as_deref() == Some(reference) || s.name.as_deref() == Some(reference)
            })
    }

    pub fn field_paths(&self) -> Vec<&FieldPath> {
        let mut out: Vec<&FieldPath> = self.target.iter().collect();
        out.extend(self.captures.iter().map(|(_, p)| p));
        out.extend(self.new.iter().flat_map(NewValue::field_paths));
        if let Some(sigma) = &self.sigma {
            out.extend(sigma.field_paths());
        }
        for m in &self.matches {
            match &m.within {
                // The elements are read whole.
                Some(array) => out.push(array),
                None => {
                    out.extend(m.filter.fields.iter().map(|f| &f.field));
                    out.extend(m.unless.iter().map(|f| &f.field));
                    out.extend(&m.absent);
                }
            }
            for (a, b) in &m.differs {
                out.push(a);
                out.push(b);
            }
            out.extend(&m.outside_org);
            out.extend(&m.present);
        }
        out
    }
}

/// Parses one rule file's text; `path` names it in errors and supplies the
/// default name (the file stem).
pub fn parse_rule(path: &Path, text: &str) -> Result<Rule, DetectorError> {
    let (table, stem) = read_table(path, text)?;
    let mut problems = Vec::new();
    let mut top = Keys::new(&table, "", &mut problems);
    let name = top.string("name").unwrap_or(stem);
    let description = top.string("description");
    let severity = top.string("severity");
    let target = top.field("target");
    let attack = top.string_list("attack").unwrap_or_default();
    let habitual = top.string("habitual");
    let blocks = top.take("match");
    let new = top.take("new");
    top.finish();
    problems.extend(name_problem(&name));
    let description = description.unwrap_or_else(|| {
        problems.push(Problem {
            key: "description".into(),
            message: "missing; say what the event means, like \"CloudTrail logging stopped\""
                .into(),
        });
        String::new()
    });
    let severity = match severity.as_deref().map(|s| (s, Severity::parse(s))) {
        Some((_, Some(s))) => s,
        Some((other, None)) => {
            problems.push(Problem {
                key: "severity".into(),
                message: format!(
                    "{other:?} is not one of \"low\", \"medium\", \"high\", \"critical\""
                ),
            });
            Severity::High
        }
        None => {
            problems.push(Problem {
                key: "severity".into(),
                message: "missing; one of \"low\", \"medium\", \"high\", \"critical\"".into(),
            });
            Severity::High
        }
    };
    let habitual = habitual.and_then(|h| match Severity::parse(&h) {
        Some(s) => Some(s),
        None => {
            problems.push(Problem {
                key: "habitual".into(),
                message: format!(
                    "{h:?} is not one of \"low\", \"medium\", \"high\", \"critical\" (the severity when the principal makes this call habitually)"
                ),
            });
            None
        }
    });
    for id in attack.iter().filter(|id| !valid_technique(id)) {
        problems.push(Problem {
            key: "attack".into(),
            message: format!(
                "{id:?} is not an ATT&CK technique id; write it like \"T1562.008\" (see attack.mitre.org)"
            ),
        });
    }
    let new = match new {
        None => None,
        Some(toml::Value::Table(t)) => parse_new(&t, &mut problems),
        Some(other) => {
            problems.push(Problem {
                key: "new".into(),
                message: format!("expected a table ([new]), found {}", other.type_str()),
            });
            None
        }
    };
    let mut matches = Vec::new();
    match blocks {
        Some(toml::Value::Array(list)) if !list.is_empty() => {
            for (i, block) in list.iter().enumerate() {
                match block {
                    toml::Value::Table(t) => matches.push(parse_match(t, i, &mut problems)),
                    other => problems.push(Problem {
                        key: format!("match[{i}]"),
                        message: format!("expected a table, found {}", other.type_str()),
                    }),
                }
            }
        }
        _ => problems.push(Problem {
            key: "match".into(),
            message: "a rule needs one or more [[match]] blocks, like [[match]] event_names = [\"StopLogging\"]".into(),
        }),
    }
    if problems.is_empty() {
        Ok(Rule {
            name,
            description,
            severity,
            matches,
            target,
            attack,
            habitual,
            sigma: None,
            correlation: None,
            captures: Vec::new(),
            counted_only: false,
            new,
            source: path.to_path_buf(),
        })
    } else {
        Err(DetectorError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }
}

fn parse_match(table: &Table, i: usize, problems: &mut Vec<Problem>) -> Match {
    let mut k = Keys::new(table, format!("match[{i}]."), problems);
    let filter = filter_keys(&mut k);
    let unless = k.field_values("unless");
    let absent = k.field_list("absent").unwrap_or_default();
    let present = k.field_list("present").unwrap_or_default();
    let within = k.field("within");
    let outside_org = k.field_list("outside_org").unwrap_or_default();
    let mut differs = Vec::new();
    for m in k.field_values("differs") {
        match m.values.as_slice() {
            [other] => match FieldPath::parse(other) {
                Ok(p) => differs.push((m.field, p)),
                Err(e) => k.problem(&format!("differs.{}", m.field.as_str()), e),
            },
            _ => k.problem(
                &format!("differs.{}", m.field.as_str()),
                "expected one other field, like \"userIdentity.userName\"".into(),
            ),
        }
    }
    let empty =
        filter == Filter::default() && unless.is_empty() && absent.is_empty() && present.is_empty();
    if empty && differs.is_empty() {
        k.problem(
            "",
            "matches every record; give event_sources, event_names or fields".into(),
        );
    }
    k.finish();
    Match {
        filter,
        unless,
        absent,
        present,
        differs,
        within,
        outside_org,
    }
}

/// Loads every `*.toml` in `dir`, sorted by name, beside the errors of the
/// invalid ones (as [`super::load_dir`] does for detectors).
pub fn load_rules(dir: &Path) -> Result<(Vec<Rule>, Vec<DetectorError>), DetectorError> {
    super::parse::load_files(dir, &["toml"], parse_rule, |r: &Rule| (&r.name, &r.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Rule, DetectorError> {
        parse_rule(Path::new("detectors/rules/x.toml"), text)
    }

    fn record(v: serde_json::Value) -> Record<'static> {
        Record::from_value(v).unwrap()
    }

    #[test]
    fn a_rule_needs_a_description_a_severity_and_a_match() {
        let e = parse("").unwrap_err().to_string();
        for key in ["description", "severity", "match"] {
            assert!(e.contains(&format!("  - {key}: ")), "{key}: {e}");
        }
        let e = parse(
            "description = \"d\"\nseverity = \"urgent\"\n[[match]]\nevent_name = \"X\"\n[[match]]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("severity: \"urgent\" is not one of"), "{e}");
        assert!(e.contains("match[0].event_name: unknown key"), "{e}");
        assert!(e.contains("match[1]: matches every record"), "{e}");
    }

    #[test]
    fn a_new_table_names_its_value_and_scope() {
        let head = "description = \"d\"\nseverity = \"high\"\n[[match]]\nevent_names = [\"RunInstances\"]\n";
        let e = parse(&format!("{head}[new]\nvalue = \"network\"\nwhen = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("new.per: missing; \"account\" or a field"),
            "{e}"
        );
        assert!(e.contains("new.when: unknown key"), "{e}");
        let e = parse(&format!("new = 3\n{head}")).unwrap_err().to_string();
        assert!(
            e.contains("new: expected a table ([new]), found integer"),
            "{e}"
        );
        let rule = parse(&format!(
            "{head}[new]\nvalue = \"requestParameters.instanceType\"\nper = \"account\"\n"
        ))
        .unwrap();
        let new = rule.new.unwrap();
        assert_eq!(new.per, Scope::Account);
        let r = record(
            serde_json::json!({"eventTime": "2026-01-01T00:00:00Z", "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances", "recipientAccountId": "111122223333",
            "requestParameters": {"instanceType": "p4d.24xlarge"}}),
        );
        assert_eq!(
            new.of(&r),
            Some(("111122223333".to_owned(), "p4d.24xlarge".to_owned()))
        );
    }

    #[test]
    fn within_looks_into_one_element_at_a_time() {
        let rule = parse(
            r#"
            description = "public"
            severity = "high"
            [[match]]
            event_names = ["PutBucketPolicy"]
            within = "requestParameters.bucketPolicy.Statement"
            absent = ["Condition"]
            fields = { Effect = "Allow", Principal = "*" }
            "#,
        )
        .unwrap();
        let put = |statements: serde_json::Value| {
            record(
                serde_json::json!({"eventTime": "2026-01-07T14:00:00Z", "eventSource": "s3.amazonaws.com",
                "eventName": "PutBucketPolicy", "requestParameters": {"bucketPolicy": {"Statement": statements}}}),
            )
        };
        // Deny-everyone-without-TLS and an Allow for one role: not public.
        let tls_only = put(serde_json::json!([
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:role/app"}, "Action": "s3:GetObject"}
        ]));
        assert!(!rule.matches(&tls_only));
        let public = put(
            serde_json::json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]),
        );
        assert!(rule.matches(&public));
        let conditioned = put(serde_json::json!([{"Effect": "Allow", "Principal": "*",
            "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}}}]));
        assert!(!rule.matches(&conditioned));
    }

    #[test]
    fn differs_and_unless() {
        let rule = parse(
            r#"
            description = "key for another user"
            severity = "high"
            [[match]]
            event_names = ["CreateAccessKey"]
            differs = { "requestParameters.userName" = "userIdentity.userName" }
            unless = { errorCode = "NoSuchEntity" }
            "#,
        )
        .unwrap();
        let call = |caller: &str, for_user: Option<&str>| {
            let mut v = serde_json::json!({"eventTime": "2026-01-07T14:00:00Z", "eventSource": "iam.amazonaws.com",
                "eventName": "CreateAccessKey", "userIdentity": {"type": "IAMUser", "userName": caller}});
            if let Some(u) = for_user {
                v["requestParameters"] = serde_json::json!({"userName": u});
            }
            record(v)
        };
        assert!(rule.matches(&call("mallory", Some("backdoor"))));
        assert!(!rule.matches(&call("alice", Some("alice"))));
        assert!(!rule.matches(&call("alice", None)));
        let paths: Vec<&str> = rule.field_paths().iter().map(|p| p.as_str()).collect();
        assert!(paths.contains(&"userIdentity.userName"), "{paths:?}");
    }
}
