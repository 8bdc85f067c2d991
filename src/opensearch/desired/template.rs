//! The index template of the `cwl-*` indices the forwarder writes, derived
//! from the detectors and the enricher's facets: times are dates; the fields
//! detectors filter on, their category fields, distinct-counted fields and
//! the facets are `keyword`; summed fields are `double` (numbers logged as
//! strings, such as CreateVolume's `size: "1"`, are coerced). CloudTrail's
//! shape-shifting objects (`requestParameters`, `responseElements`, …) are
//! not mapped dynamically: only the fields named here are indexed, so no
//! service's record conflicts with another's or fills the field limit, and
//! the rest stays in `_source`.

use crate::context::Facet;
use crate::detector::{Detector, ValueSpec};
use crate::opensearch::query::facet_fields;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The indices the forwarder writes, one per UTC day.
pub const INDEX_PATTERN: &str = "cwl-*";
/// The template's name.
pub const TEMPLATE_NAME: &str = "trailwatch-cwl";

/// Record objects whose shape depends on the service and the call: only
/// their mapped fields are indexed.
pub const SHAPE_SHIFTING: [&str; 5] = [
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "serviceEventDetails",
    "insightDetails",
];

/// How one field is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FieldType {
    Keyword,
    Double,
    Date,
}

impl FieldType {
    fn mapping(self) -> Value {
        match self {
            FieldType::Keyword => json!({"type": "keyword", "ignore_above": 1024}),
            FieldType::Double => {
                json!({"type": "double", "coerce": true, "ignore_malformed": true})
            }
            FieldType::Date => json!({"type": "date"}),
        }
    }
}

/// Fields every record has that detectors, the enricher and the dashboards use.
const RECORD_FIELDS: [(&str, FieldType); 16] = [
    ("eventTime", FieldType::Date),
    ("@timestamp", FieldType::Date),
    ("eventID", FieldType::Keyword),
    ("eventSource", FieldType::Keyword),
    ("eventName", FieldType::Keyword),
    ("eventType", FieldType::Keyword),
    ("eventCategory", FieldType::Keyword),
    ("errorCode", FieldType::Keyword),
    ("awsRegion", FieldType::Keyword),
    ("sourceIPAddress", FieldType::Keyword),
    ("userAgent", FieldType::Keyword),
    ("recipientAccountId", FieldType::Keyword),
    ("userIdentity.type", FieldType::Keyword),
    ("userIdentity.arn", FieldType::Keyword),
    ("userIdentity.accountId", FieldType::Keyword),
    ("responseElements.ConsoleLogin", FieldType::Keyword),
];

/// Every field the template maps, with its type: the record's own, the
/// facets', and each detector's.
pub fn mapped_fields(detectors: &[Detector]) -> BTreeMap<String, FieldType> {
    let mut fields: BTreeMap<String, FieldType> = RECORD_FIELDS
        .iter()
        .map(|(f, t)| (f.to_string(), *t))
        .collect();
    for facet in Facet::ALL {
        let (field, sum) = facet_fields(facet);
        fields.entry(field.into()).or_insert(FieldType::Keyword);
        if let Some(sum) = sum {
            fields.insert(sum.into(), FieldType::Double);
        }
    }
    for d in detectors {
        for m in &d.filter.fields {
            fields
                .entry(m.field.as_str().into())
                .or_insert(FieldType::Keyword);
        }
        for c in &d.category_fields {
            fields.insert(c.as_str().into(), FieldType::Keyword);
        }
        match &d.value {
            ValueSpec::Sum(p) => {
                fields.insert(p.as_str().into(), FieldType::Double);
            }
            ValueSpec::Distinct(p) => {
                fields
                    .entry(p.as_str().into())
                    .or_insert(FieldType::Keyword);
            }
            ValueSpec::Count => {}
        }
    }
    fields
}

/// A field two detectors map differently (a sum on one, a category on
/// another): the index can hold only one type.
pub fn type_conflicts(detectors: &[Detector]) -> Vec<(String, String)> {
    let mut kinds: BTreeMap<&str, (FieldType, &Detector)> = BTreeMap::new();
    let mut out = Vec::new();
    for d in detectors {
        let mut uses: Vec<(&str, FieldType)> = d
            .category_fields
            .iter()
            .map(|c| (c.as_str(), FieldType::Keyword))
            .collect();
        match &d.value {
            ValueSpec::Sum(p) => uses.push((p.as_str(), FieldType::Double)),
            ValueSpec::Distinct(p) => uses.push((p.as_str(), FieldType::Keyword)),
            ValueSpec::Count => {}
        }
        for (field, kind) in uses {
            match kinds.get(field) {
                Some((k, other)) if *k != kind => out.push((
                    field.to_owned(),
                    format!(
                        "{} uses {field} as a {}, {} as a {}",
                        other.source.display(),
                        name(*k),
                        d.source.display(),
                        name(kind)
                    ),
                )),
                Some(_) => {}
                None => {
                    kinds.insert(field, (kind, d));
                }
            }
        }
    }
    out
}

fn name(t: FieldType) -> &'static str {
    match t {
        FieldType::Keyword => "keyword (category or distinct count)",
        FieldType::Double => "number (sum)",
        FieldType::Date => "date",
    }
}

/// Inserts `mapping` at the dotted `path` of a `properties` tree.
fn insert(properties: &mut Map<String, Value>, path: &str, mapping: Value) {
    match path.split_once('.') {
        None => {
            properties.insert(path.to_owned(), mapping);
        }
        Some((head, rest)) => {
            let node = properties
                .entry(head.to_owned())
                .or_insert_with(|| json!({"properties": {}}));
            if !node["properties"].is_object() {
                node["properties"] = json!({});
            }
            let children = node["properties"].as_object_mut().expect("an object");
            insert(children, rest, mapping);
        }
    }
}

/// The body of `PUT _index_template/trailwatch-cwl`.
pub fn index_template(detectors: &[Detector]) -> Value {
    let mut properties = Map::new();
    for object in SHAPE_SHIFTING {
        properties.insert(
            object.to_owned(),
            json!({"type": "object", "dynamic": false, "properties": {}}),
        );
    }
    for (field, kind) in mapped_fields(detectors) {
        insert(&mut properties, &field, kind.mapping());
    }
    properties.insert("@message".into(), json!({"type": "text", "index": false}));
    properties.insert("readOnly".into(), json!({"type": "boolean"}));
    json!({
        "index_patterns": [INDEX_PATTERN],
        "priority": 100,
        "_meta": {"managed_by": "trailwatch"},
        "template": {
            "settings": {"index": {
                "mapping": {"total_fields": {"limit": 2000}, "ignore_malformed": true}
            }},
            "mappings": {
                "dynamic_templates": [
                    {"strings_as_keywords": {
                        "match_mapping_type": "string",
                        "mapping": {"type": "keyword", "ignore_above": 1024}
                    }}
                ],
                "properties": properties
            }
        }
    })
}

/// The mapping type of a dotted field in a rendered template, if mapped.
pub fn field_type(template: &Value, field: &str) -> Option<String> {
    let mut node = &template["template"]["mappings"];
    for part in field.split('.') {
        node = node.get("properties")?.get(part)?;
    }
    node.get("type")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::parse_detector;
    use std::path::Path;

    #[test]
    fn each_detector_maps_its_own_fields() {
        let d = parse_detector(
            Path::new("gpu.toml"),
            r#"
description = "GPUs per team"
category_fields = ["userIdentity.sessionContext.sessionIssuer.userName"]
[value]
aggregation = "sum"
field = "requestParameters.gpuCount"
[filter]
event_names = ["RunInstances"]
fields = { "requestParameters.placement.tenancy" = ["dedicated"] }
"#,
        )
        .unwrap();
        let t = index_template(&[d]);
        assert_eq!(
            field_type(&t, "userIdentity.sessionContext.sessionIssuer.userName").as_deref(),
            Some("keyword")
        );
        assert_eq!(
            field_type(&t, "requestParameters.gpuCount").as_deref(),
            Some("double")
        );
        assert_eq!(
            field_type(&t, "requestParameters.placement.tenancy").as_deref(),
            Some("keyword")
        );
        assert_eq!(field_type(&t, "eventTime").as_deref(), Some("date"));
        assert_eq!(
            field_type(&t, "requestParameters.size").as_deref(),
            Some("double")
        );
        let rp = &t["template"]["mappings"]["properties"]["requestParameters"];
        assert_eq!(rp["dynamic"], false);
    }

    #[test]
    fn a_field_summed_by_one_detector_and_categorised_by_another_conflicts() {
        let a = parse_detector(
            Path::new("a.toml"),
            "description = \"a\"\n[value]\naggregation = \"sum\"\nfield = \"requestParameters.size\"\n",
        )
        .unwrap();
        let b = parse_detector(
            Path::new("b.toml"),
            "description = \"b\"\ncategory_fields = [\"requestParameters.size\"]\n",
        )
        .unwrap();
        let conflicts = type_conflicts(&[a, b]);
        assert_eq!(conflicts.len(), 1);
        assert!(
            conflicts[0].1.contains(
                "a.toml uses requestParameters.size as a number (sum), b.toml as a keyword"
            ),
            "{:?}",
            conflicts
        );
    }
}
