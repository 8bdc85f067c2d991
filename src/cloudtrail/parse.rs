//! Parsing JSON straight into the record model, without building a JSON
//! value per record: the typed fields are read into [`Record`]'s slots,
//! borrowed from the input where they have no escapes; the other fields are
//! kept as JSON values only where the [`Projection`] keeps them.
//!
//! Parsing and validation are two steps: a [`RawRecord`] holds what was
//! found, whatever its types, so a record with a wrong field is reported
//! (by [`RawRecord::validate`]) without stopping the document around it.

use super::projection::{Key, Projected, Projection};
use super::record::{type_name, Record, RecordError};
use super::schema::{
    BOOL_FIELDS, EVENT_CATEGORY, EVENT_TIME, EVENT_TYPE, IDENTITY_FIELDS, STRING_FIELDS,
};
use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// A typed field's value as found, before its type is checked.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'de> {
    Null,
    Bool(bool),
    Str(Cow<'de, str>),
    /// A number, array or object: only its type is kept, for the error.
    Other(&'static str),
}

impl Scalar<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::Str(_) => "a string",
            Scalar::Other(t) => t,
        }
    }
}

/// Consumes the rest of an array or object.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the visitor methods of every JSON scalar as `$on(type name)`.
macro_rules! scalars_by_type {
    ($value:ty, $on:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<$value, E> {
            Ok(($on)("a boolean"))
        }
        fn visit_i64<E>(self, _: i64) -> Result<$value, E> {
            Ok(($on)("a number"))
        }
        fn visit_u64<E>(self, _: u64) -> Result<$value, E> {
            Ok(($on)("a number"))
        }
        fn visit_f64<E>(self, _: f64) -> Result<$value, E> {
            Ok(($on)("a number"))
        }
        fn visit_str<E>(self, _: &str) -> Result<$value, E> {
            Ok(($on)("a string"))
        }
        fn visit_unit<E>(self) -> Result<$value, E> {
            Ok(($on)("null"))
        }
        fn visit_none<E>(self) -> Result<$value, E> {
            Ok(($on)("null"))
        }
    };
}

impl<'de> serde::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other("a number"))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar<'de>, A::Error> {
                drain_seq(seq)?;
                Ok(Scalar::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'de>, A::Error> {
                drain_map(map)?;
                Ok(Scalar::Other("an object"))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// `userIdentity` as found.
#[derive(Debug, Clone, PartialEq, Default)]
enum Identity<'de> {
    /// Absent or null.
    #[default]
    Missing,
    Fields([Option<Scalar<'de>>; IDENTITY_FIELDS.len()]),
    /// Not an object: its type.
    Wrong(&'static str),
}

/// A record as parsed, before validation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawRecord<'de> {
    strings: [Option<Scalar<'de>>; STRING_FIELDS.len()],
    bools: [Option<Scalar<'de>>; BOOL_FIELDS.len()],
    identity: Identity<'de>,
    /// An EventBridge envelope's `detail-type` was there.
    detail_type: bool,
    /// An EventBridge envelope's `detail`, when an object.
    detail: Option<Box<RawRecord<'de>>>,
    rest: Map<String, Value>,
}

/// Where a top-level key of a record goes.
enum Field {
    String(usize),
    Bool(usize),
    Identity,
    DetailType,
    Detail,
    Other,
}

fn field_of(key: &str) -> Field {
    if let Some(i) = STRING_FIELDS.iter().position(|f| *f == key) {
        return Field::String(i);
    }
    match key {
        "readOnly" => Field::Bool(0),
        "managementEvent" => Field::Bool(1),
        "userIdentity" => Field::Identity,
        "detail-type" => Field::DetailType,
        "detail" => Field::Detail,
        _ => Field::Other,
    }
}

impl<'de> RawRecord<'de> {
    /// An EventBridge envelope's record (`detail`, when the envelope has no
    /// `eventTime` of its own); any other record as it is.
    pub fn unwrap_envelope(self) -> RawRecord<'de> {
        match self.detail {
            Some(detail) if self.detail_type && self.strings[EVENT_TIME].is_none() => *detail,
            _ => self,
        }
    }

    /// True for CloudTrail Insights records (which have no `eventSource`:
    /// recognised before validation).
    pub fn is_insight(&self) -> bool {
        let is = |slot: usize, want: &str| matches!(&self.strings[slot], Some(Scalar::Str(s)) if s == want);
        is(EVENT_TYPE, "AwsCloudTrailInsight") || is(EVENT_CATEGORY, "Insight")
    }

    /// Checks the typed fields, in the record's field order.
    pub fn validate(self) -> Result<Record<'de>, RecordError> {
        let RawRecord {
            strings,
            bools,
            identity,
            mut rest,
            ..
        } = self;
        let wrong =
            |field: &'static str, expected: &'static str, found: &Scalar| RecordError::WrongType {
                field,
                expected,
                found: found.type_name(),
            };
        let mut typed: [Option<Cow<'de, str>>; STRING_FIELDS.len()] = Default::default();
        let mut event_time = None;
        for (i, (found, slot)) in strings.into_iter().zip(typed.iter_mut()).enumerate() {
            let name = STRING_FIELDS[i];
            match found {
                Some(Scalar::Str(s)) => {
                    if i == EVENT_TIME {
                        let t = DateTime::parse_from_rfc3339(&s)
                            .map_err(|_| RecordError::BadEventTime(s.clone().into_owned()))?;
                        event_time = Some(t.with_timezone(&Utc));
                    }
                    *slot = Some(s);
                }
                None | Some(Scalar::Null) => match name {
                    "eventTime" => return Err(RecordError::MissingEventTime),
                    "eventSource" | "eventName" => return Err(RecordError::MissingField(name)),
                    _ => {}
                },
                // Not validated: dropped when not a string.
                Some(_) if name == "eventVersion" => {}
                Some(other) => return Err(wrong(name, "a string", &other)),
            }
        }
        let event_time = event_time.ok_or(RecordError::MissingEventTime)?;
        let [read_only, management_event] = bools;
        let boolean = |found: Option<Scalar<'de>>| match found {
            Some(Scalar::Bool(b)) => Ok(Some(b)),
            // CloudTrail Lake exports write booleans as strings.
            Some(Scalar::Str(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            None | Some(Scalar::Null) => Ok(None),
            Some(other) => Err(other),
        };
        let read_only = boolean(read_only).map_err(|o| wrong("readOnly", "a boolean", &o))?;
        // Not validated: only `false` (a data event) is acted on.
        let management_event = boolean(management_event).unwrap_or(None);
        let mut ids: [Option<Cow<'de, str>>; IDENTITY_FIELDS.len()] = Default::default();
        match identity {
            Identity::Missing => {}
            Identity::Wrong(found) => {
                return Err(RecordError::WrongType {
                    field: "userIdentity",
                    expected: "an object",
                    found,
                })
            }
            Identity::Fields(fields) => {
                for (i, (found, slot)) in fields.into_iter().zip(ids.iter_mut()).enumerate() {
                    match found {
                        Some(Scalar::Str(s)) => *slot = Some(s),
                        None | Some(Scalar::Null) => {}
                        Some(other) => {
                            return Err(wrong(identity_field_name(i), "a string", &other))
                        }
                    }
                }
            }
        }
        if rest
            .get("userIdentity")
            .is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
        {
            rest.remove("userIdentity");
        }
        Ok(Record {
            event_time,
            strings: typed,
            identity: ids,
            bools: [read_only, management_event],
            rest,
        })
    }
}

fn identity_field_name(i: usize) -> &'static str {
    [
        "userIdentity.type",
        "userIdentity.arn",
        "userIdentity.accountId",
        "userIdentity.invokedBy",
        "userIdentity.principalId",
        "userIdentity.userName",
        "userIdentity.accessKeyId",
    ][i]
}

/// Parses one record under a projection; anything but an object is
/// [`RecordError::NotAnObject`].
#[derive(Clone, Copy)]
pub(crate) struct RecordSeed<'p>(pub &'p Projection);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Result<RawRecord<'de>, RecordError>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Result<RawRecord<'de>, RecordError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CloudTrail record")
    }

    scalars_by_type!(Self::Value, |t| Err(RecordError::NotAnObject(t)));

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(Err(RecordError::NotAnObject("an array")))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let projection = self.0;
        let mut raw = RawRecord::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match field_of(&key) {
                Field::String(i) => raw.strings[i] = Some(map.next_value()?),
                Field::Bool(i) => raw.bools[i] = Some(map.next_value()?),
                Field::Identity => {
                    let keep = projection.child("userIdentity");
                    let (identity, untyped) = map.next_value_seed(IdentitySeed(keep))?;
                    raw.identity = identity;
                    if let Some(untyped) = untyped {
                        raw.rest.insert(key.into_owned(), Value::Object(untyped));
                    }
                }
                Field::DetailType => {
                    map.next_value::<IgnoredAny>()?;
                    raw.detail_type = true;
                }
                Field::Detail => match projection.child("detail") {
                    Some(child) => {
                        raw.detail = map.next_value_seed(RecordSeed(child))?.ok().map(Box::new)
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
                Field::Other => match projection.child(&key) {
                    Some(child) => {
                        let value = map.next_value_seed(Projected(child))?;
                        raw.rest.insert(key.into_owned(), value);
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
            }
        }
        Ok(Ok(raw))
    }
}

/// `userIdentity`: its typed fields, and the others the projection keeps
/// (`keep`), if any.
struct IdentitySeed<'p>(Option<&'p Projection>);

type IdentityParts<'de> = (Identity<'de>, Option<Map<String, Value>>);

impl<'de> DeserializeSeed<'de> for IdentitySeed<'_> {
    type Value = IdentityParts<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IdentitySeed<'_> {
    type Value = IdentityParts<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("userIdentity")
    }

    scalars_by_type!(Self::Value, |t| match t {
        "null" => (Identity::Missing, None),
        t => (Identity::Wrong(t), None),
    });

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok((Identity::Wrong("an array"), None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: [Option<Scalar<'de>>; IDENTITY_FIELDS.len()] = Default::default();
        let mut untyped = Map::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if let Some(i) = IDENTITY_FIELDS.iter().position(|f| *f == key) {
                fields[i] = Some(map.next_value()?);
            } else if let Some(child) = self.0.and_then(|p| p.child(&key)) {
                let value = map.next_value_seed(Projected(child))?;
                untyped.insert(key.into_owned(), value);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let untyped = (!untyped.is_empty()).then_some(untyped);
        Ok((Identity::Fields(fields), untyped))
    }
}

/// A whole input parsed as one JSON document.
#[derive(Debug)]
pub enum Document<'de> {
    /// `{"Records": […]}`: its records, in order.
    Delivery(Vec<Result<RawRecord<'de>, RecordError>>),
    /// `{"Records": x}` with `x` not an array: its type.
    BadRecords(&'static str),
    /// A top-level array: events, in order.
    Array(Vec<Result<RawRecord<'de>, RecordError>>),
    /// Anything else (a digest, a CloudWatch Logs payload, one event), kept whole.
    Other(Value),
}

struct DocumentVisitor<'p>(&'p Projection);

impl<'de> Visitor<'de> for DocumentVisitor<'_> {
    type Value = Document<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON document")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Document<'de>, E> {
        Ok(Document::Other(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Document<'de>, E> {
        Ok(Document::Other(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Document<'de>, E> {
        Ok(Document::Other(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Document<'de>, E> {
        Ok(Document::Other(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Document<'de>, E> {
        Ok(Document::Other(Value::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Document<'de>, E> {
        Ok(Document::Other(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Document<'de>, A::Error> {
        Ok(Document::Array(RecordsVisitor(self.0).visit_seq(seq)?))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document<'de>, A::Error> {
        let mut records = None;
        let mut other = Map::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "Records" {
                records = Some(map.next_value_seed(RecordsSeed(self.0))?);
            } else {
                other.insert(key.into_owned(), map.next_value()?);
            }
        }
        Ok(match records {
            Some(Ok(records)) => Document::Delivery(records),
            Some(Err(found)) => Document::BadRecords(found),
            None => Document::Other(Value::Object(other)),
        })
    }
}

type Records<'de> = Vec<Result<RawRecord<'de>, RecordError>>;

/// A `Records` array; anything else is its type name.
struct RecordsSeed<'p>(&'p Projection);

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = Result<Records<'de>, &'static str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = Result<Records<'de>, &'static str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }
    scalars_by_type!(Self::Value, Err);

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(Err("an object"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        RecordsVisitor(self.0).visit_seq(seq).map(Ok)
    }
}

struct RecordsVisitor<'p>(&'p Projection);

impl RecordsVisitor<'_> {
    fn visit_seq<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records<'de>, A::Error> {
        let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(r) = seq.next_element_seed(RecordSeed(self.0))? {
            records.push(r);
        }
        Ok(records)
    }
}

/// Parses one record (a JSON line, a log event's message).
pub fn parse_record<'de>(
    projection: &Projection,
    bytes: &'de [u8],
) -> serde_json::Result<Result<RawRecord<'de>, RecordError>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let raw = RecordSeed(projection).deserialize(&mut de)?;
    de.end()?;
    Ok(raw)
}

/// Parses a whole document: a delivery's records (or a top-level array's)
/// through the projection; any other document is kept whole.
pub fn parse_document<'de>(
    projection: &Projection,
    bytes: &'de [u8],
) -> serde_json::Result<Document<'de>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc = de::Deserializer::deserialize_any(&mut de, DocumentVisitor(projection))?;
    de.end()?;
    Ok(doc)
}

/// A record from a JSON value already parsed, borrowing its strings.
pub fn raw_from_value<'v>(
    projection: &Projection,
    value: &'v Value,
) -> Result<RawRecord<'v>, RecordError> {
    // A value's deserializer accepts every visitor call made here.
    RecordSeed(projection)
        .deserialize(value)
        .unwrap_or(Err(RecordError::NotAnObject(type_name(value))))
}

impl Record<'static> {
    /// Validates a parsed JSON value as a CloudTrail record, keeping all of it.
    pub fn from_value(value: Value) -> Result<Record<'static>, RecordError> {
        let fallback = RecordError::NotAnObject(type_name(&value));
        RecordSeed(&Projection::All)
            .deserialize(value)
            .unwrap_or(Err(fallback))?
            .validate()
    }
}

impl<'a> Record<'a> {
    /// Validates a JSON value as a CloudTrail record, borrowing its strings.
    pub fn from_value_ref(value: &'a Value) -> Result<Record<'a>, RecordError> {
        raw_from_value(&Projection::All, value)?.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudtrail::FieldPath;
    use serde_json::json;

    fn projection() -> Projection {
        let paths = [FieldPath::parse("responseElements.ConsoleLogin").unwrap()];
        Projection::for_records(paths.iter())
    }

    fn record(p: &Projection, v: &Value) -> Record<'static> {
        let bytes = v.to_string();
        parse_record(p, bytes.as_bytes())
            .unwrap()
            .unwrap()
            .unwrap_envelope()
            .validate()
            .unwrap()
            .into_owned()
    }

    #[test]
    fn records_keep_what_is_read_and_drop_the_rest() {
        let v = json!({"eventTime": "2026-01-05T10:00:00Z", "eventName": "RunInstances",
            "eventSource": "ec2.amazonaws.com", "readOnly": false,
            "userIdentity": {"type": "IAMUser", "arn": "arn:x", "sessionContext": {"a": 1}},
            "requestParameters": {"instanceType": "p4d.24xlarge", "instancesSet": {"items": [{"maxCount": 4, "imageId": "ami-1"}]},
                "userData": "a long script", "blockDeviceMapping": {"items": []}},
            "responseElements": {"ConsoleLogin": "Failure", "instancesSet": {"items": [{"a": [1, 2, 3]}]}},
            "resources": [{"ARN": "arn:y"}], "tlsDetails": {"tlsVersion": "TLSv1.3"}});
        let r = record(&projection(), &v);
        assert_eq!(r.event_name(), "RunInstances");
        assert_eq!(r.user_identity().arn, Some("arn:x"));
        assert_eq!(r.read_only(), Some(false));
        assert_eq!(
            Value::Object(r.rest().clone()),
            json!({"requestParameters": {"instanceType": "p4d.24xlarge", "instancesSet": {"items": [{"maxCount": 4, "imageId": "ami-1"}]}},
            "responseElements": {"ConsoleLogin": "Failure"}})
        );
        let all = record(&Projection::All, &v);
        assert_eq!(all.rest()["tlsDetails"], v["tlsDetails"]);
        assert_eq!(
            all.rest()["userIdentity"],
            json!({"sessionContext": {"a": 1}})
        );
        assert_eq!(all.event_time(), r.event_time());
    }

    #[test]
    fn strings_are_borrowed_from_the_input_unless_escaped() {
        let text = r#"{"eventTime": "2026-01-05T10:00:00Z", "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject", "userAgent": "a \"quoted\" agent"}"#;
        let r = parse_record(&Projection::All, text.as_bytes())
            .unwrap()
            .unwrap()
            .validate()
            .unwrap();
        assert!(matches!(
            r.strings[2],
            Some(Cow::Borrowed("s3.amazonaws.com"))
        ));
        assert_eq!(r.user_agent(), Some("a \"quoted\" agent"));
    }

    #[test]
    fn documents_parse_their_records_and_keep_the_rest() {
        let p = projection();
        let doc = json!({"Records": [{"eventTime": "t", "responseElements": {"x": 1}}, 7],
            "digestStartTime": "s"})
        .to_string();
        let Document::Delivery(mut records) = parse_document(&p, doc.as_bytes()).unwrap() else {
            panic!("a delivery")
        };
        assert_eq!(records.len(), 2);
        assert_eq!(
            records.remove(0).unwrap().validate(),
            Err(RecordError::BadEventTime("t".into()))
        );
        assert_eq!(records[0], Err(RecordError::NotAnObject("a number")));
        let bad = json!({"Records": {"a": 1}}).to_string();
        assert!(matches!(
            parse_document(&p, bad.as_bytes()).unwrap(),
            Document::BadRecords("an object")
        ));
        let digest = json!({"digestStartTime": "s", "x": [1]});
        assert!(matches!(
            parse_document(&p, digest.to_string().as_bytes()).unwrap(),
            Document::Other(v) if v == digest
        ));
        let array = json!([{"eventTime": "t"}]).to_string();
        assert!(matches!(
            parse_document(&p, array.as_bytes()).unwrap(),
            Document::Array(r) if r.len() == 1
        ));
        assert!(parse_document(&p, b"{\"Records\": [").is_err());
    }

    #[test]
    fn eventbridge_details_are_records_too() {
        let envelope = json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
            "detail": {"eventTime": "2026-01-05T10:00:00Z", "eventSource": "ec2.amazonaws.com",
                "eventName": "RunInstances", "resources": [1]}});
        let r = record(&projection(), &envelope);
        assert_eq!(r.event_name(), "RunInstances");
        assert!(r.rest().is_empty(), "{:?}", r.rest());
        let from_value = raw_from_value(&projection(), &envelope)
            .unwrap()
            .unwrap_envelope()
            .validate()
            .unwrap();
        assert_eq!(from_value, r);
    }

    #[test]
    fn insights_are_recognised_before_validation() {
        let insight = json!({"eventVersion": "1.08", "eventTime": "2026-01-05T10:00:00Z",
            "eventType": "AwsCloudTrailInsight", "eventCategory": "Insight"});
        let raw = raw_from_value(&projection(), &insight).unwrap();
        assert!(raw.is_insight());
        assert_eq!(
            raw.validate(),
            Err(RecordError::MissingField("eventSource"))
        );
    }
}
