//! The desired state of every OpenSearch object trailwatch manages, as
//! plain functions of the detector files and the deploy settings: the index
//! templates of the records ([`template`]) and of the kept findings
//! ([`findings`]), retention policies ([`retention`]), roles and
//! role mappings ([`security`]), notification channels ([`channels`]),
//! anomaly detectors ([`detectors`]) and their monitors ([`monitors`]).
//! Nothing here talks to a cluster; `opensearch::apply` reconciles this
//! against what exists, and `plan` writes it to files.

pub mod channels;
pub mod detectors;
pub mod findings;
pub mod monitors;
pub mod retention;
pub mod security;
pub mod template;

use crate::detector::Detector;
use serde_json::{json, Value};
use std::path::PathBuf;

/// The marker in every object's description: what apply made, and delete
/// may remove.
pub const MANAGED: &str = "managed by trailwatch";

/// The index holding one seed document, so that `cwl-*` is never empty: the
/// AD plugin refuses to create a detector over indices with no document.
/// Its event matches no detector's filter.
pub const SEED_INDEX: &str = "cwl-trailwatch-seed";

/// What the plugin would refuse, found before any call.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub file: PathBuf,
    pub key: String,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.key, self.reason)
    }
}

/// The deploy settings the objects depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub retention_days: u32,
    pub access: security::Access,
    pub channels: Vec<channels::Channel>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retention_days: 30,
            access: security::Access::default(),
            channels: Vec::new(),
        }
    }
}

/// Every object, rendered.
#[derive(Debug, Clone)]
pub struct Desired {
    pub template: Value,
    /// The findings index's template ([`findings`]).
    pub findings_template: Value,
    pub policies: Vec<(String, Value)>,
    pub roles: Vec<(String, Value)>,
    pub mappings: Vec<security::Mapping>,
    pub channels: Vec<channels::Channel>,
    pub detectors: Vec<(Detector, Value)>,
}

/// The seed document (`PUT cwl-trailwatch-seed/_doc/seed`).
pub fn seed_document() -> Value {
    json!({
        "eventTime": "2013-11-13T00:00:00Z",
        "@timestamp": "2013-11-13T00:00:00Z",
        "eventID": "trailwatch-seed",
        "eventSource": "trailwatch.local",
        "eventName": "TrailwatchSeed",
        "eventType": "TrailwatchSeed",
        "description": format!("keeps cwl-* from being empty for the anomaly detection plugin ({MANAGED})")
    })
}

/// Renders every object, or says what the plugins would refuse.
pub fn desired(detectors: &[Detector], settings: &Settings) -> Result<Desired, Vec<Refusal>> {
    let mut refusals = detectors::refusals(detectors);
    for (field, reason) in template::type_conflicts(detectors) {
        refusals.push(Refusal {
            file: detectors
                .first()
                .map(|d| d.source.clone())
                .unwrap_or_default(),
            key: field,
            reason,
        });
    }
    if settings.retention_days == 0 {
        refusals.push(Refusal {
            file: "--index-retention-days".into(),
            key: "days".into(),
            reason: "retention must be at least one day".into(),
        });
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    Ok(Desired {
        template: template::index_template(detectors),
        findings_template: findings::template(),
        policies: retention::policies(settings.retention_days),
        roles: security::roles(),
        mappings: security::mappings(&settings.access),
        channels: settings.channels.clone(),
        detectors: detectors
            .iter()
            .map(|d| {
                (
                    d.clone(),
                    detectors::detector_body(d, settings.retention_days),
                )
            })
            .collect(),
    })
}

impl Desired {
    /// The channels' config ids, which every monitor sends to.
    pub fn channel_ids(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.config_id()).collect()
    }

    /// Every object as `(relative file path, body)`, for `plan --out`;
    /// monitors name their detector's id as `<id of NAME>`, known only
    /// once the plugin made it.
    pub fn files(&self) -> Vec<(String, Value)> {
        let mut out = vec![(
            format!("index-template/{}.json", template::TEMPLATE_NAME),
            self.template.clone(),
        )];
        out.push((
            format!("index-template/{}.json", findings::FINDINGS_TEMPLATE_NAME),
            self.findings_template.clone(),
        ));
        out.push((format!("seed/{SEED_INDEX}.json"), seed_document()));
        for (id, body) in &self.policies {
            out.push((format!("ism-policy/{id}.json"), body.clone()));
        }
        for (name, body) in &self.roles {
            out.push((format!("role/{name}.json"), body.clone()));
        }
        for m in &self.mappings {
            out.push((format!("role-mapping/{}.json", m.role), m.body(&[])));
        }
        for c in &self.channels {
            out.push((format!("channel/{}.json", c.config_id()), c.body()));
        }
        let ids = self.channel_ids();
        for (d, body) in &self.detectors {
            let name = detectors::detector_name(d);
            out.push((format!("detector/{name}.json"), detectors::to_send(body)));
            out.push((
                format!("monitor/{}.json", monitors::monitor_name(d)),
                monitors::monitor_body(d, &format!("<id of {name}>"), &ids),
            ));
        }
        out
    }
}
