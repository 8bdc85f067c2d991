//! Reading only what is used. A [`Projection`] names the record fields a
//! run needs (the record model's own, the context's, and every field path
//! the detectors name); parsing through it skips the rest of each record
//! (`responseElements`, most of `requestParameters`, `resources`, ...)
//! without building values for them, which is most of the cost of reading.
//! Without a projection every field is kept.

use super::FieldPath;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

/// Which parts of a JSON value to keep.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Projection {
    /// All of it.
    #[default]
    All,
    /// Only these keys of an object (in arrays, of each element), each with
    /// its own projection; a scalar is kept as it is.
    Keys(HashMap<String, Projection>),
}

/// Fields the record model, the context, Insights and the novelty kind read.
const RECORD_FIELDS: [&str; 16] = [
    "eventVersion",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "recipientAccountId",
    "eventID",
    "eventType",
    "eventCategory",
    "managementEvent",
    "readOnly",
    "errorCode",
    "sourceIPAddress",
    "userAgent",
    // EventBridge envelopes: recognised, then unwrapped (`detail` is a record).
    "detail-type",
    "detail",
];

/// The `userIdentity` fields the record model reads.
const IDENTITY_FIELDS: [&str; 5] = ["type", "arn", "accountId", "invokedBy", "principalId"];

/// The `requestParameters` fields the context reads.
const CONTEXT_PARAMETERS: [&str; 5] = [
    "instanceType",
    "instancesSet",
    "volumeType",
    "size",
    "functionName",
];

impl Projection {
    /// What a run needs of each record: the fields trailwatch itself reads
    /// and `paths` (the detectors' field paths).
    pub fn for_records<'a>(paths: impl IntoIterator<Item = &'a FieldPath>) -> Projection {
        let mut p = Projection::Keys(HashMap::new());
        for field in RECORD_FIELDS {
            p.keep(&[field]);
        }
        for field in IDENTITY_FIELDS {
            p.keep(&["userIdentity", field]);
        }
        for field in CONTEXT_PARAMETERS {
            p.keep(&["requestParameters", field]);
        }
        for path in paths {
            let segments: Vec<&str> = path.as_str().split('.').collect();
            p.keep(&segments);
        }
        p
    }

    /// Keeps the value at `path` whole.
    fn keep(&mut self, path: &[&str]) {
        let Projection::Keys(keys) = self else {
            return;
        };
        match path {
            [] => *self = Projection::All,
            [last] => {
                keys.insert((*last).to_owned(), Projection::All);
            }
            [first, rest @ ..] => keys
                .entry((*first).to_owned())
                .or_insert_with(|| Projection::Keys(HashMap::new()))
                .keep(rest),
        }
    }

    fn child(&self, key: &str) -> Option<&Projection> {
        match self {
            Projection::All => Some(self),
            // An EventBridge `detail` is a record under the same projection.
            Projection::Keys(keys) if key == "detail" && keys.contains_key("detail-type") => {
                Some(self)
            }
            Projection::Keys(keys) => keys.get(key),
        }
    }

    /// Parses one record through the projection.
    pub fn parse_record(&self, bytes: &[u8]) -> serde_json::Result<Value> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = Projected(self).deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }

    /// Parses a document: a delivery's `Records` (or a top-level array) go
    /// through the projection; other keys are kept whole.
    pub fn parse_document(&self, bytes: &[u8]) -> serde_json::Result<Value> {
        if *self == Projection::All {
            return serde_json::from_slice(bytes);
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = de::Deserializer::deserialize_any(
            &mut de,
            ProjectedVisitor {
                projection: self,
                document: true,
            },
        )?;
        de.end()?;
        Ok(value)
    }
}

/// A value under a projection.
struct Projected<'a>(&'a Projection);

impl<'de> DeserializeSeed<'de> for Projected<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            Projection::All => serde::Deserialize::deserialize(d),
            keys => d.deserialize_any(ProjectedVisitor {
                projection: keys,
                document: false,
            }),
        }
    }
}

/// Builds a value under `projection`. At a document's top level
/// (`document`), `Records` and a top-level array hold records under the
/// projection, and any other key is kept whole.
struct ProjectedVisitor<'a> {
    projection: &'a Projection,
    document: bool,
}

impl<'de> Visitor<'de> for ProjectedVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Projected(self.projection))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // Keys are borrowed from the input where they can be: a skipped
        // field costs no allocation.
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let child = match self.document {
                true if key == "Records" => Some(self.projection),
                true => Some(&Projection::All),
                false => self.projection.child(&key),
            };
            match child {
                Some(child) => {
                    let value = map.next_value_seed(Projected(child))?;
                    out.insert(key.into_owned(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn projection() -> Projection {
        let paths = [FieldPath::parse("responseElements.ConsoleLogin").unwrap()];
        Projection::for_records(paths.iter())
    }

    #[test]
    fn records_keep_what_is_read_and_drop_the_rest() {
        let record = json!({"eventTime": "2026-01-05T10:00:00Z", "eventName": "RunInstances",
            "userIdentity": {"type": "IAMUser", "arn": "arn:x", "sessionContext": {"a": 1}},
            "requestParameters": {"instanceType": "p4d.24xlarge", "instancesSet": {"items": [{"maxCount": 4, "imageId": "ami-1"}]},
                "userData": "a long script", "blockDeviceMapping": {"items": []}},
            "responseElements": {"ConsoleLogin": "Failure", "instancesSet": {"items": [{"a": [1, 2, 3]}]}},
            "resources": [{"ARN": "arn:y"}], "tlsDetails": {"tlsVersion": "TLSv1.3"}});
        let kept = projection()
            .parse_record(record.to_string().as_bytes())
            .unwrap();
        assert_eq!(
            kept,
            json!({"eventTime": "2026-01-05T10:00:00Z", "eventName": "RunInstances",
            "userIdentity": {"type": "IAMUser", "arn": "arn:x"},
            "requestParameters": {"instanceType": "p4d.24xlarge", "instancesSet": {"items": [{"maxCount": 4, "imageId": "ami-1"}]}},
            "responseElements": {"ConsoleLogin": "Failure"}})
        );
    }

    #[test]
    fn documents_project_their_records_and_keep_the_rest() {
        let doc = json!({"Records": [{"eventTime": "t", "responseElements": {"x": 1}}, {"eventName": "n", "tlsDetails": {}}],
            "digestStartTime": "s"});
        let kept = projection()
            .parse_document(doc.to_string().as_bytes())
            .unwrap();
        assert_eq!(
            kept,
            json!({"Records": [{"eventTime": "t", "responseElements": {}}, {"eventName": "n"}], "digestStartTime": "s"})
        );
        let array = json!([{"eventTime": "t", "resources": []}]);
        assert_eq!(
            projection()
                .parse_document(array.to_string().as_bytes())
                .unwrap(),
            json!([{"eventTime": "t"}])
        );
        assert!(projection().parse_document(b"{\"Records\": [").is_err());
    }

    #[test]
    fn eventbridge_details_are_records_too() {
        let envelope = json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
            "detail": {"eventTime": "t", "resources": [1]}});
        let kept = projection()
            .parse_record(envelope.to_string().as_bytes())
            .unwrap();
        assert_eq!(
            kept,
            json!({"detail-type": "AWS API Call via CloudTrail", "detail": {"eventTime": "t"}})
        );
    }

    #[test]
    fn without_a_projection_everything_is_kept() {
        let doc = json!({"Records": [{"eventTime": "t", "resources": [1]}]});
        assert_eq!(
            Projection::All
                .parse_document(doc.to_string().as_bytes())
                .unwrap(),
            doc
        );
    }
}
