//! The security plugin's roles and role mappings, least privilege: the
//! forwarder may create and write `cwl-*` and keep the findings it pages
//! on in the findings index, and nothing else; the enricher may
//! read `cwl-*` and the anomaly results, and keep and read findings in the
//! findings index (nothing else, and no delete); Cognito's read-only users get a
//! dashboards reader role; only the Cognito admin group gets `all_access`.
//! Backend roles are IAM role ARNs (the Lambdas' roles, Cognito's group
//! roles). No action is `*`.

use super::MANAGED;
use crate::opensearch::desired::detectors::RESULT_INDICES;
use crate::opensearch::desired::findings::FINDINGS_INDEX;
use crate::opensearch::desired::template::INDEX_PATTERN;
use serde_json::{json, Value};

pub const FORWARDER_ROLE: &str = "trailwatch_forwarder";
pub const ENRICHER_ROLE: &str = "trailwatch_enricher";
pub const READER_ROLE: &str = "trailwatch_dashboards_reader";

/// Built-in roles the admins are added to (the plugin's, shared with
/// whatever else maps them: apply only adds and delete only removes ours).
pub const ADMIN_BUILT_IN: [&str; 2] = ["all_access", "security_manager"];
/// Built-in read-only roles of the AD and alerting plugins for readers.
pub const READER_BUILT_IN: [&str; 2] = ["anomaly_read_access", "alerting_read_access"];

/// What the Lambdas may do in the findings index: create it (from its
/// template), add findings (one document is written through the shard-level
/// bulk action, as the real node insists), search them. No delete, no
/// mapping change.
const KEEP_FINDINGS: [&str; 5] = [
    "indices:admin/create",
    "indices:admin/auto_create",
    "indices:data/write/index",
    "indices:data/write/bulk[s]",
    "indices:data/read/search",
];

/// Who gets which access: backend roles (IAM role ARNs) and internal users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Access {
    pub forwarder: Vec<String>,
    pub enricher: Vec<String>,
    pub admins: Vec<String>,
    pub readers: Vec<String>,
}

/// Our roles, by name: the body of `PUT _plugins/_security/api/roles/<name>`.
pub fn roles() -> Vec<(String, Value)> {
    vec![
        (
            FORWARDER_ROLE.into(),
            json!({
                "description": format!("the log forwarder: create and write {INDEX_PATTERN}, keep the rule findings it pages on in {FINDINGS_INDEX} ({MANAGED})"),
                "cluster_permissions": ["indices:data/write/bulk"],
                "index_permissions": [{
                    "index_patterns": [INDEX_PATTERN],
                    "allowed_actions": [
                        "indices:admin/create",
                        "indices:admin/auto_create",
                        "indices:admin/mapping/put",
                        "indices:data/write/bulk[s]",
                        "indices:data/write/index"
                    ]
                }, {
                    "index_patterns": [FINDINGS_INDEX],
                    "allowed_actions": KEEP_FINDINGS
                }]
            }),
        ),
        (
            ENRICHER_ROLE.into(),
            json!({
                "description": format!("the alert enricher: search {INDEX_PATTERN} and the anomaly results, keep and search findings in {FINDINGS_INDEX} ({MANAGED})"),
                "cluster_permissions": [],
                "index_permissions": [{
                    "index_patterns": [INDEX_PATTERN, RESULT_INDICES],
                    "allowed_actions": ["indices:data/read/search"]
                }, {
                    "index_patterns": [FINDINGS_INDEX],
                    "allowed_actions": KEEP_FINDINGS
                }]
            }),
        ),
        (
            READER_ROLE.into(),
            json!({
                "description": format!("dashboard readers: read {INDEX_PATTERN}, the anomaly results and the kept findings, read the global tenant ({MANAGED})"),
                "cluster_permissions": ["cluster_composite_ops_ro"],
                "index_permissions": [{
                    "index_patterns": [INDEX_PATTERN, RESULT_INDICES, FINDINGS_INDEX],
                    "allowed_actions": ["read", "indices:admin/mappings/get"]
                }],
                "tenant_permissions": [{
                    "tenant_patterns": ["global_tenant"],
                    "allowed_actions": ["kibana_all_read"]
                }]
            }),
        ),
    ]
}

/// One role's mapping: the backend roles and users it must include.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub role: String,
    pub backend_roles: Vec<String>,
    /// True for our roles (the mapping is ours, whole); false for built-in
    /// roles, where ours are added beside what is there.
    pub owned: bool,
}

impl Mapping {
    /// The body of `PUT _plugins/_security/api/rolesmapping/<role>`, given
    /// the backend roles already mapped (kept unless the mapping is ours).
    pub fn body(&self, existing: &[String]) -> Value {
        let mut backend: Vec<String> = if self.owned {
            Vec::new()
        } else {
            existing.to_vec()
        };
        for b in &self.backend_roles {
            if !backend.contains(b) {
                backend.push(b.clone());
            }
        }
        json!({"backend_roles": backend, "description": format!("{MANAGED}")})
    }
}

/// The mappings for `access`: ours always (even if empty, so a reviewer
/// sees them), built-in ones when there is someone to add.
pub fn mappings(access: &Access) -> Vec<Mapping> {
    let mut out = vec![
        Mapping {
            role: FORWARDER_ROLE.into(),
            backend_roles: access.forwarder.clone(),
            owned: true,
        },
        Mapping {
            role: ENRICHER_ROLE.into(),
            backend_roles: access.enricher.clone(),
            owned: true,
        },
        Mapping {
            role: READER_ROLE.into(),
            backend_roles: access.readers.clone(),
            owned: true,
        },
    ];
    if !access.admins.is_empty() {
        for role in ADMIN_BUILT_IN {
            out.push(Mapping {
                role: role.into(),
                backend_roles: access.admins.clone(),
                owned: false,
            });
        }
    }
    if !access.readers.is_empty() {
        for role in READER_BUILT_IN {
            out.push(Mapping {
                role: role.into(),
                backend_roles: access.readers.clone(),
                owned: false,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_role_grants_every_action_and_only_admins_get_all_access() {
        for (name, body) in roles() {
            let text = body.to_string();
            assert!(!text.contains("\"*\""), "{name} grants *: {text}");
            assert!(!text.contains("all_access"), "{name}");
        }
        let access = Access {
            forwarder: vec!["arn:aws:iam::1:role/fwd".into()],
            readers: vec!["arn:aws:iam::1:role/readers".into()],
            admins: vec!["arn:aws:iam::1:role/admins".into()],
            ..Access::default()
        };
        let all = mappings(&access);
        let all_access: Vec<_> = all.iter().filter(|m| m.role == "all_access").collect();
        assert_eq!(all_access.len(), 1);
        assert_eq!(
            all_access[0].backend_roles,
            vec!["arn:aws:iam::1:role/admins"]
        );
        assert!(!all_access[0].owned);
    }

    #[test]
    fn a_built_in_mapping_keeps_what_others_mapped() {
        let m = Mapping {
            role: "all_access".into(),
            backend_roles: vec!["ours".into()],
            owned: false,
        };
        assert_eq!(
            m.body(&["master".into()])["backend_roles"],
            json!(["master", "ours"])
        );
        let ours = Mapping {
            role: FORWARDER_ROLE.into(),
            backend_roles: vec!["fwd".into()],
            owned: true,
        };
        assert_eq!(
            ours.body(&["stranger".into()])["backend_roles"],
            json!(["fwd"])
        );
    }
}
