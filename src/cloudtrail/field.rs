//! Dotted field paths into a record, such as
//! `requestParameters.instancesSet.items.maxCount`.
//!
//! Arrays are walked implicitly, the way OpenSearch flattens arrays of
//! objects: the path above visits `maxCount` in every item. This keeps a
//! detector's meaning the same in the local engine and in OpenSearch queries.

use super::schema::Slot;
use serde_json::{Map, Value};
use std::fmt;

/// A parsed dotted path; segments are never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
    /// Where the record model keeps this field, when it is a typed one.
    slot: Option<Slot>,
}

impl FieldPath {
    /// Parses `a.b.c`. Empty segments (`a..b`, a leading or trailing dot) are refused.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        if text.is_empty() {
            return Err("a field path cannot be empty".into());
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!(
                "field path {text:?} has an empty segment; write names joined by single dots, like userIdentity.arn"
            ));
        }
        Ok(FieldPath {
            text: text.to_owned(),
            slot: Slot::of(&segments),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn slot(&self) -> Option<Slot> {
        self.slot
    }

    /// Calls `visit` for every scalar or object found at the path in a JSON
    /// object (see [`crate::cloudtrail::Record::visit`] for a record).
    pub fn visit<'a>(&self, record: &'a Map<String, Value>, visit: &mut impl FnMut(&'a Value)) {
        if let Some(first) = record.get(&self.segments[0]) {
            walk(first, &self.segments[1..], visit);
        }
    }
}

fn walk<'a>(value: &'a Value, rest: &[String], visit: &mut impl FnMut(&'a Value)) {
    match value {
        Value::Array(items) => {
            for item in items {
                walk(item, rest, visit);
            }
        }
        Value::Object(map) if !rest.is_empty() => {
            if let Some(next) = map.get(&rest[0]) {
                walk(next, &rest[1..], visit);
            }
        }
        Value::Null => {}
        other if rest.is_empty() => visit(other),
        _ => {}
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(path: &str, v: Value) -> Vec<Value> {
        let mut out = vec![];
        FieldPath::parse(path)
            .unwrap()
            .visit(v.as_object().unwrap(), &mut |x| out.push(x.clone()));
        out
    }

    #[test]
    fn arrays_of_objects_are_walked_like_opensearch_flattens_them() {
        let rec = json!({"requestParameters": {"instancesSet": {"items": [
            {"maxCount": 4}, {"maxCount": 2}, {"minCount": 1}]}}});
        assert_eq!(
            values("requestParameters.instancesSet.items.maxCount", rec),
            vec![json!(4), json!(2)]
        );
    }

    #[test]
    fn missing_and_null_paths_visit_nothing() {
        assert!(values("a.b", json!({"a": null})).is_empty());
        assert!(values("a.b", json!({"c": 1})).is_empty());
        assert!(values("a.b", json!({"a": {"b": null}})).is_empty());
    }

    #[test]
    fn empty_segments_are_refused() {
        assert!(FieldPath::parse("a..b").is_err());
        assert!(FieldPath::parse(".a").is_err());
        assert!(FieldPath::parse("").is_err());
    }
}
