//! The CloudTrail record model: the fields detectors use, typed and validated
//! once, with the whole original record kept beside them.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

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

/// One CloudTrail event. Construction checks the typed fields, so the
/// accessors cannot fail; everything else stays in [`Record::raw`].
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    event_time: DateTime<Utc>,
    raw: Map<String, Value>,
}

/// The parts of `userIdentity` detectors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserIdentity<'a> {
    pub kind: Option<&'a str>,
    pub arn: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub invoked_by: Option<&'a str>,
    pub principal_id: Option<&'a str>,
}

const OPTIONAL_STRINGS: [&str; 8] = [
    "awsRegion",
    "recipientAccountId",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "eventType",
    "eventID",
    "eventCategory",
];
const IDENTITY_STRINGS: [&str; 5] = ["type", "arn", "accountId", "invokedBy", "principalId"];

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

fn check_string(map: &Map<String, Value>, key: &'static str) -> Result<(), RecordError> {
    match map.get(key) {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(other) => Err(RecordError::WrongType {
            field: key,
            expected: "a string",
            found: type_name(other),
        }),
    }
}

fn required_string(map: &Map<String, Value>, key: &'static str) -> Result<(), RecordError> {
    match map.get(key) {
        None | Some(Value::Null) => Err(RecordError::MissingField(key)),
        _ => check_string(map, key),
    }
}

impl Record {
    /// Validates a parsed JSON value as a CloudTrail record.
    pub fn from_value(value: Value) -> Result<Record, RecordError> {
        let raw = match value {
            Value::Object(map) => map,
            other => return Err(RecordError::NotAnObject(type_name(&other))),
        };
        let event_time = match raw.get("eventTime") {
            None | Some(Value::Null) => return Err(RecordError::MissingEventTime),
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                .map_err(|_| RecordError::BadEventTime(s.clone()))?
                .with_timezone(&Utc),
            Some(other) => {
                return Err(RecordError::WrongType {
                    field: "eventTime",
                    expected: "a string",
                    found: type_name(other),
                })
            }
        };
        required_string(&raw, "eventSource")?;
        required_string(&raw, "eventName")?;
        for key in OPTIONAL_STRINGS {
            check_string(&raw, key)?;
        }
        match raw.get("readOnly") {
            None | Some(Value::Null) | Some(Value::Bool(_)) => {}
            // CloudTrail Lake exports write booleans as strings.
            Some(Value::String(s)) if s == "true" || s == "false" => {}
            Some(other) => {
                return Err(RecordError::WrongType {
                    field: "readOnly",
                    expected: "a boolean",
                    found: type_name(other),
                })
            }
        }
        match raw.get("userIdentity") {
            None | Some(Value::Null) => {}
            Some(Value::Object(identity)) => {
                for key in IDENTITY_STRINGS {
                    check_string(identity, key).map_err(|e| match e {
                        RecordError::WrongType {
                            expected, found, ..
                        } => RecordError::WrongType {
                            field: identity_field_name(key),
                            expected,
                            found,
                        },
                        other => other,
                    })?;
                }
            }
            Some(other) => {
                return Err(RecordError::WrongType {
                    field: "userIdentity",
                    expected: "an object",
                    found: type_name(other),
                })
            }
        }
        Ok(Record { event_time, raw })
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.raw.get(key).and_then(Value::as_str)
    }

    pub fn event_time(&self) -> DateTime<Utc> {
        self.event_time
    }
    pub fn event_source(&self) -> &str {
        self.str_field("eventSource").unwrap_or_default()
    }
    pub fn event_name(&self) -> &str {
        self.str_field("eventName").unwrap_or_default()
    }
    pub fn aws_region(&self) -> Option<&str> {
        self.str_field("awsRegion")
    }
    pub fn recipient_account_id(&self) -> Option<&str> {
        self.str_field("recipientAccountId")
    }
    pub fn source_ip_address(&self) -> Option<&str> {
        self.str_field("sourceIPAddress")
    }
    pub fn user_agent(&self) -> Option<&str> {
        self.str_field("userAgent")
    }
    pub fn error_code(&self) -> Option<&str> {
        self.str_field("errorCode")
    }
    pub fn event_type(&self) -> Option<&str> {
        self.str_field("eventType")
    }
    pub fn event_id(&self) -> Option<&str> {
        self.str_field("eventID")
    }
    pub fn read_only(&self) -> Option<bool> {
        match self.raw.get("readOnly") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => Some(s == "true"),
            _ => None,
        }
    }
    pub fn request_parameters(&self) -> Option<&Value> {
        self.raw.get("requestParameters").filter(|v| !v.is_null())
    }
    pub fn user_identity(&self) -> UserIdentity<'_> {
        let Some(Value::Object(id)) = self.raw.get("userIdentity") else {
            return UserIdentity::default();
        };
        let get = |k: &str| id.get(k).and_then(Value::as_str);
        UserIdentity {
            kind: get("type"),
            arn: get("arn"),
            account_id: get("accountId"),
            invoked_by: get("invokedBy"),
            principal_id: get("principalId"),
        }
    }
    /// Who made the call, in one string: the ARN when there is one, else the
    /// invoking service, else the principal id.
    pub fn principal(&self) -> Option<&str> {
        let id = self.user_identity();
        id.arn.or(id.invoked_by).or(id.principal_id)
    }
    /// True for CloudTrail Insights records, which are not API activity.
    pub fn is_insight(&self) -> bool {
        self.event_type() == Some("AwsCloudTrailInsight")
            || self.str_field("eventCategory") == Some("Insight")
    }
    /// The whole record as it was read.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }
    pub fn into_raw(self) -> Map<String, Value> {
        self.raw
    }
}

fn identity_field_name(key: &str) -> &'static str {
    match key {
        "type" => "userIdentity.type",
        "arn" => "userIdentity.arn",
        "accountId" => "userIdentity.accountId",
        "invokedBy" => "userIdentity.invokedBy",
        _ => "userIdentity.principalId",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({"eventTime": "2023-07-10T11:42:36Z", "eventSource": "s3.amazonaws.com",
               "eventName": "ListBuckets", "awsRegion": "us-east-1", "errorCode": null,
               "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/a"},
               "requestParameters": {"Host": "x"}, "extra": [1, 2]})
    }

    #[test]
    fn typed_fields_read_and_the_rest_is_kept() {
        let r = Record::from_value(minimal()).unwrap();
        assert_eq!(r.event_time().to_rfc3339(), "2023-07-10T11:42:36+00:00");
        assert_eq!(r.event_source(), "s3.amazonaws.com");
        assert_eq!(r.event_name(), "ListBuckets");
        assert_eq!(r.error_code(), None, "a null errorCode is no error");
        assert_eq!(r.user_identity().kind, Some("IAMUser"));
        assert_eq!(r.principal(), Some("arn:aws:iam::1:user/a"));
        assert_eq!(r.request_parameters().unwrap()["Host"], "x");
        assert_eq!(r.raw()["extra"], json!([1, 2]));
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
        assert_eq!(
            Record::from_value(json!([1])),
            Err(RecordError::NotAnObject("an array"))
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
