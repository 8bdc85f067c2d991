//! Reading only what is used. A [`Projection`] names the record fields a
//! run needs (the record model's own, the context's, and every field path
//! the detectors name); parsing through it skips the rest of each record
//! (`responseElements`, most of `requestParameters`, `resources`, ...)
//! without building values for them, which is most of the cost of reading.
//! Without a projection every field is kept.

use super::schema::IDENTITY_FIELDS;
use super::FieldPath;
use rustc_hash::FxHashMap;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Which parts of a JSON value to keep.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Projection {
    /// All of it.
    #[default]
    All,
    /// Only these keys of an object (in arrays, of each element), each with
    /// its own projection; a scalar is kept as it is.
    Keys(FxHashMap<String, Projection>),
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
        let mut p = Projection::Keys(FxHashMap::default());
        for field in RECORD_FIELDS {
            p.keep(&[field]);
        }
        for field in IDENTITY_FIELDS {
            p.keep(&["userIdentity", field]);
        }
        for field in CONTEXT_PARAMETERS {
            p.keep(&["requestParameters", field]);
        }
        p.keep_paths(paths);
        p
    }

    /// Only the record model's typed fields (see [`super::Record`]): every
    /// other field is skipped.
    pub fn typed_only() -> Projection {
        Projection::Keys(FxHashMap::default())
    }

    /// The record model's typed fields and `paths`, nothing else.
    pub fn typed_with<'a>(paths: impl IntoIterator<Item = &'a FieldPath>) -> Projection {
        let mut p = Projection::typed_only();
        p.keep_paths(paths);
        p
    }

    /// Keeps the value at each of `paths` whole.
    fn keep_paths<'a>(&mut self, paths: impl IntoIterator<Item = &'a FieldPath>) {
        for path in paths {
            let segments: Vec<&str> = path.as_str().split('.').collect();
            self.keep(&segments);
        }
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
                .or_insert_with(|| Projection::Keys(FxHashMap::default()))
                .keep(rest),
        }
    }

    pub(crate) fn child(&self, key: &str) -> Option<&Projection> {
        match self {
            Projection::All => Some(self),
            // An EventBridge `detail` is a record under the same projection.
            Projection::Keys(keys) if key == "detail" && keys.contains_key("detail-type") => {
                Some(self)
            }
            Projection::Keys(keys) => keys.get(key),
        }
    }
}

/// A value under a projection.
pub(crate) struct Projected<'a>(pub &'a Projection);

impl<'de> DeserializeSeed<'de> for Projected<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            Projection::All => serde::Deserialize::deserialize(d),
            keys => d.deserialize_any(ProjectedVisitor(keys)),
        }
    }
}

/// Builds a value under a projection.
struct ProjectedVisitor<'a>(&'a Projection);

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
        while let Some(item) = seq.next_element_seed(Projected(self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // Keys are borrowed from the input where they can be: a skipped
        // field costs no allocation.
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.0.child(&key) {
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
pub(crate) struct Key<'de>(pub std::borrow::Cow<'de, str>);

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

    fn project(p: &Projection, v: &Value) -> Value {
        let text = v.to_string();
        let mut de = serde_json::Deserializer::from_str(&text);
        Projected(p).deserialize(&mut de).unwrap()
    }

    #[test]
    fn values_keep_what_is_read_and_drop_the_rest() {
        let paths = [FieldPath::parse("responseElements.ConsoleLogin").unwrap()];
        let p = Projection::for_records(paths.iter());
        let request = json!({"instanceType": "p4d.24xlarge", "userData": "a long script",
            "instancesSet": {"items": [{"maxCount": 4}]}});
        assert_eq!(
            project(p.child("requestParameters").unwrap(), &request),
            json!({"instanceType": "p4d.24xlarge", "instancesSet": {"items": [{"maxCount": 4}]}})
        );
        let response = json!({"ConsoleLogin": "Failure", "instancesSet": [{"a": 1}]});
        assert_eq!(
            project(p.child("responseElements").unwrap(), &response),
            json!({"ConsoleLogin": "Failure"})
        );
        assert_eq!(p.child("resources"), None);
        assert_eq!(project(&Projection::All, &response), response);
    }

    #[test]
    fn an_eventbridge_detail_is_a_record_under_the_same_projection() {
        let p = Projection::for_records([]);
        assert_eq!(p.child("detail"), Some(&p));
    }
}
