//! The CloudTrail record model: the fields detectors and the engine use,
//! typed and validated once, and the other fields a run keeps beside them.
//!
//! A record borrows its strings from the bytes it was parsed from where it
//! can (the parser, [`super::parse`], also makes records from JSON values:
//! `Record::from_value`), so reading a record allocates little; use
//! [`Record::into_owned`] to keep one past its input.

use super::field::FieldPath;
use super::schema::*;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Why a JSON value is not a usable CloudTrail record.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecordError {
    #[error("not a JSON object (found {0})")]
    NotAnObject(&'static str),
    #[error("no eventTime: every CloudTrail record needs one")]
    MissingEventTime,
    #[error("eventTime {0:?} is not an RFC 3339 time such as 2023-07-10T11:42:36Z")]
    BadEventTime(String),
    #[error("no {0}: every CloudTrail record needs one")]
    MissingField(&'static str),
    #[error("{field} should be {expected}, found {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
}

/// The parts of `userIdentity` detectors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserIdentity<'a> {
    pub kind: Option<&'a str>,
    pub arn: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub invoked_by: Option<&'a str>,
    pub principal_id: Option<&'a str>,
    pub user_name: Option<&'a str>,
    /// The access key the call was signed with (`AKIA…` long-term, `ASIA…`
    /// a session's).
    pub access_key_id: Option<&'a str>,
}

impl<'a> UserIdentity<'a> {
    /// Who made the call, in one string: the ARN when there is one; an IAM
    /// user's or the root's ARN built from its name and account when the
    /// record leaves it out (sign-in's `CheckMfa` does), so it is the same
    /// principal as in its other records; else the invoking service; else
    /// the principal id.
    pub fn principal(&self) -> Option<Cow<'a, str>> {
        if let Some(arn) = self.arn {
            return Some(Cow::Borrowed(arn));
        }
        match (self.kind, self.account_id, self.user_name) {
            (Some("IAMUser"), Some(account), Some(name)) => {
                return Some(Cow::Owned(format!("arn:aws:iam::{account}:user/{name}")))
            }
            (Some("Root"), Some(account), _) => {
                return Some(Cow::Owned(format!("arn:aws:iam::{account}:root")))
            }
            _ => {}
        }
        self.invoked_by.or(self.principal_id).map(Cow::Borrowed)
    }

    /// True when AWS itself made the call rather than a person or workload of
    /// the account: a service acting as itself (`AWSService`, or a bare
    /// `invokedBy` with no type, as Secrets Manager's scheduled deletions
    /// are), or a service-linked role, which only its service can assume.
    pub fn is_aws_itself(&self) -> bool {
        self.kind == Some("AWSService")
            || (self.kind.is_none() && self.arn.is_none() && self.invoked_by.is_some())
            || self.arn.and_then(service_linked_role).is_some()
    }
}

/// The name of the service-linked role an ARN names (the role itself or a
/// session of it), such as `AWSServiceRoleForRDS`; None for any other ARN.
pub fn service_linked_role(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    if !(resource.starts_with("assumed-role/") || resource.starts_with("role/aws-service-role/")) {
        return None;
    }
    resource
        .split('/')
        .find(|part| part.starts_with("AWSServiceRoleFor"))
}

/// A value found at a field path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'v> {
    Str(&'v str),
    Bool(bool),
    Json(&'v Value),
}

impl FieldValue<'_> {
    /// A scalar as text: strings as they are, numbers and booleans printed.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            FieldValue::Str(s) => Some(Cow::Borrowed(s)),
            FieldValue::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            FieldValue::Json(Value::String(s)) => Some(Cow::Borrowed(s)),
            FieldValue::Json(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            FieldValue::Json(Value::Bool(b)) => {
                Some(Cow::Borrowed(if *b { "true" } else { "false" }))
            }
            FieldValue::Json(_) => None,
        }
    }

    /// A number, or a string holding one.
    pub fn number(&self) -> Option<f64> {
        match self {
            FieldValue::Json(Value::Number(n)) => n.as_f64(),
            FieldValue::Str(s) => s.trim().parse().ok(),
            FieldValue::Json(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A count or size ([`quantity`]): `Ok(None)` when the value holds no
    /// number at all.
    pub fn quantity(&self) -> Result<Option<f64>, Implausible> {
        self.number().map(quantity).transpose()
    }
}

/// The largest count or size one field of one record may carry: far above
/// anything AWS accepts (EC2's `maxCount`, EBS's 64 TiB, bytes of a transfer),
/// far below what would overflow a model's arithmetic.
pub const MAX_QUANTITY: f64 = 1e12;

/// A number in a record that cannot be a count or size. Callers say it was
/// left out, naming the record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} is not a plausible count or size (0 to {MAX_QUANTITY:e})", short(*value))]
pub struct Implausible {
    pub value: f64,
}

/// A number as a message shows it: `1e300`, not three hundred digits.
fn short(x: f64) -> String {
    if x.is_finite() && x.abs() < 1e15 {
        x.to_string()
    } else {
        format!("{x:e}")
    }
}

/// A count or size read from a record, which whoever made the call chose:
/// a finite number from 0 to [`MAX_QUANTITY`]. NaN, infinities (`"1e999"`
/// parses as one), negatives and absurd sizes are refused.
pub fn quantity(x: f64) -> Result<f64, Implausible> {
    if x.is_finite() && (0.0..=MAX_QUANTITY).contains(&x) {
        Ok(x)
    } else {
        Err(Implausible { value: x })
    }
}

/// One CloudTrail event. Construction checks the typed fields, so the
/// accessors cannot fail; the other fields the run keeps (all of them without
/// a projection) are in [`Record::rest`].
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    pub(crate) event_time: DateTime<Utc>,
    pub(crate) strings: [Option<Cow<'a, str>>; STRING_FIELDS.len()],
    pub(crate) identity: [Option<Cow<'a, str>>; IDENTITY_FIELDS.len()],
    pub(crate) bools: [Option<bool>; BOOL_FIELDS.len()],
    /// The untyped fields kept; `userIdentity` here holds its untyped fields.
    pub(crate) rest: Map<String, Value>,
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Record<'a> {
    /// The same record, owning its strings.
    pub fn into_owned(self) -> Record<'static> {
        let own = |s: Option<Cow<'a, str>>| s.map(|s| Cow::Owned(s.into_owned()));
        Record {
            event_time: self.event_time,
            strings: self.strings.map(own),
            identity: self.identity.map(own),
            bools: self.bools,
            rest: self.rest,
        }
    }

    fn string(&self, slot: usize) -> Option<&str> {
        self.strings[slot].as_deref()
    }

    pub fn event_time(&self) -> DateTime<Utc> {
        self.event_time
    }
    pub fn event_source(&self) -> &str {
        self.string(EVENT_SOURCE).unwrap_or_default()
    }
    pub fn event_name(&self) -> &str {
        self.string(EVENT_NAME).unwrap_or_default()
    }
    pub fn aws_region(&self) -> Option<&str> {
        self.string(AWS_REGION)
    }
    pub fn recipient_account_id(&self) -> Option<&str> {
        self.string(RECIPIENT_ACCOUNT_ID)
    }
    pub fn source_ip_address(&self) -> Option<&str> {
        self.string(SOURCE_IP_ADDRESS)
    }
    pub fn user_agent(&self) -> Option<&str> {
        self.string(USER_AGENT)
    }
    pub fn error_code(&self) -> Option<&str> {
        self.string(ERROR_CODE)
    }
    pub fn event_type(&self) -> Option<&str> {
        self.string(EVENT_TYPE)
    }
    pub fn event_id(&self) -> Option<&str> {
        self.string(EVENT_ID)
    }
    pub fn event_category(&self) -> Option<&str> {
        self.string(EVENT_CATEGORY)
    }
    pub fn read_only(&self) -> Option<bool> {
        self.bools[0]
    }
    /// False for data events; None when the record does not say (older
    /// records, which are management events).
    pub fn management_event(&self) -> Option<bool> {
        self.bools[1]
    }
    pub fn request_parameters(&self) -> Option<&Value> {
        self.rest.get("requestParameters").filter(|v| !v.is_null())
    }
    pub fn user_identity(&self) -> UserIdentity<'_> {
        let get = |i: usize| self.identity[i].as_deref();
        UserIdentity {
            kind: get(0),
            arn: get(1),
            account_id: get(2),
            invoked_by: get(3),
            principal_id: get(4),
            user_name: get(5),
            access_key_id: get(6),
        }
    }
    /// Who made the call, in one string: see [`UserIdentity::principal`].
    pub fn principal(&self) -> Option<Cow<'_, str>> {
        self.user_identity().principal()
    }
    /// True for CloudTrail Insights records, which are not API activity.
    pub fn is_insight(&self) -> bool {
        self.event_type() == Some("AwsCloudTrailInsight")
            || self.event_category() == Some("Insight")
    }
    /// The fields kept beyond the typed ones (all of them, read without a
    /// projection), such as `requestParameters`.
    pub fn rest(&self) -> &Map<String, Value> {
        &self.rest
    }

    /// Calls `visit` for every scalar or object at `path`, typed field or not
    /// (arrays are walked as [`FieldPath::visit`] does).
    pub fn visit<'s>(&'s self, path: &FieldPath, visit: &mut impl FnMut(FieldValue<'s>)) {
        match path.slot() {
            Some(Slot::String(i)) => {
                if let Some(s) = self.strings[i].as_deref() {
                    visit(FieldValue::Str(s));
                }
            }
            Some(Slot::Identity(i)) => {
                if let Some(s) = self.identity[i].as_deref() {
                    visit(FieldValue::Str(s));
                }
            }
            Some(Slot::Bool(i)) => {
                if let Some(b) = self.bools[i] {
                    visit(FieldValue::Bool(b));
                }
            }
            None => path.visit(&self.rest, &mut |v| visit(FieldValue::Json(v))),
        }
    }

    /// The record as JSON: its typed fields and the others kept (those of
    /// the projection it was read with).
    pub fn to_json(&self) -> Value {
        let mut out = self.rest.clone();
        for (name, value) in STRING_FIELDS.iter().zip(&self.strings) {
            if let Some(v) = value {
                out.insert((*name).to_owned(), Value::from(v.as_ref()));
            }
        }
        for (name, value) in BOOL_FIELDS.iter().zip(&self.bools) {
            if let Some(v) = value {
                out.insert((*name).to_owned(), Value::from(*v));
            }
        }
        let identity = out
            .entry("userIdentity")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(identity) = identity {
            for (name, value) in IDENTITY_FIELDS.iter().zip(&self.identity) {
                if let Some(v) = value {
                    identity.insert((*name).to_owned(), Value::from(v.as_ref()));
                }
            }
        }
        Value::Object(out)
    }

    /// The first scalar at `path`, as text.
    pub fn first_text(&self, path: &FieldPath) -> Option<String> {
        let mut found = None;
        self.visit(path, &mut |v| {
            if found.is_none() {
                found = v.text().map(Cow::into_owned);
            }
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({"eventTime": "2023-07-10T11:42:36Z", "eventSource": "s3.amazonaws.com",
               "eventName": "ListBuckets", "awsRegion": "us-east-1", "errorCode": null,
               "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a",
                   "sessionContext": {"mfa": true}},
               "requestParameters": {"Host": "x"}, "extra": [1, 2], "readOnly": true})
    }

    fn path(p: &str) -> FieldPath {
        FieldPath::parse(p).unwrap()
    }

    #[test]
    fn aws_itself_is_told_from_the_accounts_own_principals() {
        let id = |v: Value| {
            let r = Record::from_value(json!({"eventTime": "2023-07-10T11:42:36Z",
                "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
                "userIdentity": v}))
            .unwrap();
            (
                r.user_identity().is_aws_itself(),
                r.principal().map(Cow::into_owned),
            )
        };
        let svc = "secretsmanager.amazonaws.com";
        assert_eq!(
            id(json!({"accountId": "1", "invokedBy": svc})),
            (true, Some(svc.to_owned()))
        );
        assert!(id(json!({"type": "AWSService", "invokedBy": svc})).0);
        let linked = "arn:aws:sts::1:assumed-role/AWSServiceRoleForRDS/RDS";
        assert!(id(json!({"type": "AssumedRole", "arn": linked})).0);
        // A person's role session reached through a service is still theirs.
        for own in [
            json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/admin/bob",
                "invokedBy": "cloudformation.amazonaws.com"}),
            json!({"type": "IAMUser", "arn": "arn:aws:iam::1:user/AWSServiceRoleForX"}),
            json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE", "userName": "bob"}),
        ] {
            assert!(!id(own.clone()).0, "{own}");
        }
        assert_eq!(
            service_linked_role(
                "arn:aws:iam::1:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"
            ),
            Some("AWSServiceRoleForRDS")
        );
        assert_eq!(
            service_linked_role("arn:aws:sts::1:assumed-role/admin/bob"),
            None
        );
    }

    #[test]
    fn a_principal_without_an_arn_is_named_as_its_arn_would_be() {
        let who = |v: Value| {
            Record::from_value(json!({"eventTime": "2023-07-10T11:42:36Z",
                "eventSource": "signin.amazonaws.com", "eventName": "CheckMfa",
                "userIdentity": v}))
            .unwrap()
            .principal()
            .map(Cow::into_owned)
        };
        // Sign-in's CheckMfa names an IAM user without its ARN.
        assert_eq!(
            who(json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE",
                "accountId": "1", "userName": "bert-jan"})),
            Some("arn:aws:iam::1:user/bert-jan".to_owned())
        );
        assert_eq!(
            who(json!({"type": "Root", "principalId": "1", "accountId": "1"})),
            Some("arn:aws:iam::1:root".to_owned())
        );
        // Without the account no ARN can be built: the id is what there is.
        assert_eq!(
            who(json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE", "userName": "b"})),
            Some("AIDAEXAMPLE".to_owned())
        );
        assert_eq!(who(json!({})), None);
    }

    #[test]
    fn typed_fields_read_and_the_rest_is_kept() {
        let r = Record::from_value(minimal()).unwrap();
        assert_eq!(r.event_time().to_rfc3339(), "2023-07-10T11:42:36+00:00");
        assert_eq!(r.event_source(), "s3.amazonaws.com");
        assert_eq!(r.event_name(), "ListBuckets");
        assert_eq!(r.error_code(), None, "a null errorCode is no error");
        assert_eq!(r.user_identity().kind, Some("IAMUser"));
        assert_eq!(r.principal().as_deref(), Some("arn:aws:iam::1:user/a"));
        assert_eq!(r.read_only(), Some(true));
        assert_eq!(r.request_parameters().unwrap()["Host"], "x");
        assert_eq!(r.rest()["extra"], json!([1, 2]));
        assert_eq!(
            r.rest()["userIdentity"],
            json!({"sessionContext": {"mfa": true}}),
            "userIdentity's untyped fields stay in the rest"
        );
    }

    #[test]
    fn paths_reach_typed_and_untyped_fields_alike() {
        let value = minimal();
        let r = Record::from_value_ref(&value).unwrap();
        assert_eq!(
            r.first_text(&path("eventName")).as_deref(),
            Some("ListBuckets")
        );
        assert_eq!(
            r.first_text(&path("userIdentity.arn")).as_deref(),
            Some("arn:aws:iam::1:user/a")
        );
        assert_eq!(
            r.first_text(&path("userIdentity.sessionContext.mfa"))
                .as_deref(),
            Some("true")
        );
        assert_eq!(r.first_text(&path("readOnly")).as_deref(), Some("true"));
        assert_eq!(
            r.first_text(&path("requestParameters.Host")).as_deref(),
            Some("x")
        );
        assert_eq!(r.first_text(&path("extra")).as_deref(), Some("1"));
        assert_eq!(r.first_text(&path("errorCode")), None);
        let mut numbers = 0.0;
        r.visit(&path("extra"), &mut |v| {
            numbers += v.number().unwrap_or(0.0)
        });
        assert_eq!(numbers, 3.0);
        assert_eq!(r.clone().into_owned(), r);
    }

    #[test]
    fn missing_event_time_is_refused() {
        let mut v = minimal();
        v.as_object_mut().unwrap().remove("eventTime");
        assert_eq!(Record::from_value(v), Err(RecordError::MissingEventTime));
    }

    #[test]
    fn unparseable_event_time_is_refused_with_the_value() {
        let mut v = minimal();
        v["eventTime"] = json!("yesterday");
        assert_eq!(
            Record::from_value(v),
            Err(RecordError::BadEventTime("yesterday".into()))
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        let mut v = minimal();
        v["userIdentity"]["arn"] = json!(7);
        let err = Record::from_value(v).unwrap_err();
        assert_eq!(
            err.to_string(),
            "userIdentity.arn should be a string, found a number"
        );
        let mut v = minimal();
        v["readOnly"] = json!([true]);
        assert!(Record::from_value(v)
            .unwrap_err()
            .to_string()
            .starts_with("readOnly should be a boolean"));
        let mut v = minimal();
        v["eventName"] = json!({"a": 1});
        assert_eq!(
            Record::from_value(v).unwrap_err().to_string(),
            "eventName should be a string, found an object"
        );
        let mut v = minimal();
        v["userIdentity"] = json!("root");
        assert_eq!(
            Record::from_value(v).unwrap_err().to_string(),
            "userIdentity should be an object, found a string"
        );
        assert_eq!(
            Record::from_value(json!([1])),
            Err(RecordError::NotAnObject("an array"))
        );
    }

    #[test]
    fn booleans_written_as_strings_are_read() {
        let mut v = minimal();
        v["readOnly"] = json!("false");
        v["managementEvent"] = json!("true");
        let r = Record::from_value(v).unwrap();
        assert_eq!(
            (r.read_only(), r.management_event()),
            (Some(false), Some(true))
        );
    }

    #[test]
    fn insight_records_are_recognised() {
        let mut v = minimal();
        v["eventType"] = json!("AwsCloudTrailInsight");
        assert!(Record::from_value(v).unwrap().is_insight());
        assert!(!Record::from_value(minimal()).unwrap().is_insight());
    }
}
