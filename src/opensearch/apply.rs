//! The reconcile of the [`Desired`] state against a live cluster: for each
//! object, read what exists, then create it, update it, or leave it alone,
//! and say which (one [`Line`] per object). `--dry-run` reads and compares
//! only. [`delete`] removes what apply made, and nothing else.
//!
//! Order matters and makes a half-finished run safe to repeat: the template
//! and the seed document before detectors (the AD plugin refuses a detector
//! over empty indices), channels before monitors, detectors before their
//! monitors (a monitor names its detector's id).
//!
//! The comparison is pure ([`changes`]): only the keys trailwatch sets are
//! compared, so what a plugin adds (ids, times, versions) is no change; a
//! change says old → new, as `cdk diff` does.

use super::desired::channels::Channel;
use super::desired::detectors::{detector_name, to_send};
use super::desired::findings::FINDINGS_TEMPLATE_NAME;
use super::desired::monitors::{monitor_body, monitor_name};
use super::desired::security::Mapping;
use super::desired::template::TEMPLATE_NAME;
use super::desired::{seed_document, Desired, MANAGED, SEED_INDEX};
use super::{OpenSearch, OpenSearchError};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The anomaly detection plugin's detectors API.
pub const DETECTORS_API: &str = "/_plugins/_anomaly_detection/detectors";
/// The alerting plugin's monitors API.
pub const MONITORS_API: &str = "/_plugins/_alerting/monitors";

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    /// Deleted and made again: a detector whose category fields changed.
    Replaced,
    Unchanged,
    Deleted,
    /// Nothing to delete.
    Absent,
    /// Not attempted (the line's note says why).
    Skipped,
}

impl Outcome {
    pub fn word(&self, dry_run: bool) -> &'static str {
        match (self, dry_run) {
            (Outcome::Created, false) => "created",
            (Outcome::Created, true) => "would create",
            (Outcome::Updated, false) => "updated",
            (Outcome::Updated, true) => "would update",
            (Outcome::Replaced, false) => "replaced",
            (Outcome::Replaced, true) => "would replace",
            (Outcome::Unchanged, _) => "unchanged",
            (Outcome::Deleted, false) => "deleted",
            (Outcome::Deleted, true) => "would delete",
            (Outcome::Absent, _) => "absent",
            (Outcome::Skipped, _) => "skipped",
        }
    }
}

/// One object's outcome, with what differed or what to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub kind: &'static str,
    pub name: String,
    pub outcome: Outcome,
    pub notes: Vec<String>,
}

impl Line {
    pub fn render(&self, dry_run: bool) -> String {
        let mut s = format!(
            "{:<13} {:<44} {}",
            self.kind,
            self.name,
            self.outcome.word(dry_run)
        );
        if !self.notes.is_empty() {
            s.push_str(": ");
            s.push_str(&self.notes.join("; "));
        }
        s
    }
}

/// A step that failed, naming the object.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {name}")]
pub struct ApplyError {
    pub kind: &'static str,
    pub name: String,
    #[source]
    pub source: StepError,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Cluster(#[from] OpenSearchError),
    #[error("the anomaly detection plugin's validation refused it: {0}")]
    Invalid(String),
    #[error("{0}")]
    Unexpected(String),
}

/// One key whose value differs: its dotted path, what the cluster holds
/// (`None`: nothing) and what trailwatch wants.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: String,
    pub old: Option<Value>,
    pub new: Value,
}

/// The longest value a change shows before it is cut with `…`.
const SHOWN_VALUE: usize = 60;

fn shown(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() <= SHOWN_VALUE {
        return text;
    }
    let cut: String = text.chars().take(SHOWN_VALUE - 1).collect();
    format!("{cut}…")
}

impl std::fmt::Display for Change {
    /// `shingle_size: 8 → 4`, as `cdk diff` shows a change; `(none)` for
    /// a key the cluster lacks.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let old = self.old.as_ref().map_or("(none)".into(), shown);
        write!(f, "{}: {old} → {}", self.path, shown(&self.new))
    }
}

/// The changes as a line's note: `changed a: 1 → 2, b: x → y`.
pub fn changed_note(changes: &[Change]) -> String {
    let list: Vec<String> = changes.iter().map(Change::to_string).collect();
    format!("changed {}", list.join(", "))
}

/// The keys of `desired` whose values differ in `existing`, with both
/// values. Keys only `existing` has are ignored; arrays must match element
/// by element (a differing array is one change); `2000` and `"2000"` are
/// equal (settings come back as text).
pub fn changes(desired: &Value, existing: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    diff_into("", desired, Some(existing), &mut out);
    out
}

/// The paths of [`changes`].
pub fn differences(desired: &Value, existing: &Value) -> Vec<String> {
    changes(desired, existing)
        .into_iter()
        .map(|c| c.path)
        .collect()
}

fn diff_into(path: &str, desired: &Value, existing: Option<&Value>, out: &mut Vec<Change>) {
    let here = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    let changed = |out: &mut Vec<Change>| {
        out.push(Change {
            path: path.to_owned(),
            old: existing.cloned(),
            new: desired.clone(),
        })
    };
    match (desired, existing) {
        (Value::Object(d), Some(Value::Object(e))) => {
            for (k, v) in d {
                match e.get(k) {
                    Some(x) => diff_into(&here(k), v, Some(x), out),
                    None if v.is_null() => {}
                    None if v.as_array().is_some_and(|a| a.is_empty()) => {}
                    None if v.as_object().is_some_and(|o| o.is_empty()) => {}
                    None => diff_into(&here(k), v, None, out),
                }
            }
        }
        (Value::Array(d), Some(Value::Array(e))) => {
            let mut inner = Vec::new();
            if d.len() == e.len() {
                for (i, (a, b)) in d.iter().zip(e).enumerate() {
                    diff_into(&here(&i.to_string()), a, Some(b), &mut inner);
                }
            }
            if d.len() != e.len() || !inner.is_empty() {
                changed(out);
            }
        }
        (a, Some(b)) if same_scalar(a, b) => {}
        _ => changed(out),
    }
}

fn same_scalar(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.as_f64().map_or(n.to_string(), |f| f.to_string())),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    a == b || (text(a).is_some() && text(a) == text(b))
}

/// How long to wait for the cluster and its plugins.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub total: Duration,
}

/// Waits until the cluster answers `_cluster/health` and each plugin API
/// apply needs answers other than 404/5xx, telling `progress` what it waits
/// for. Auth failures end the wait at once.
pub async fn wait_for_cluster(
    os: &OpenSearch,
    wait: Wait,
    progress: &mut dyn FnMut(&str),
) -> Result<(), OpenSearchError> {
    let deadline = Instant::now() + wait.total;
    let probes: [(&str, &str); 5] = [
        (
            "the cluster",
            "/_cluster/health?wait_for_status=yellow&timeout=5s",
        ),
        (
            "the security plugin",
            "/_plugins/_security/api/roles/all_access",
        ),
        ("the ISM plugin", "/_plugins/_ism/policies"),
        (
            "the notifications plugin",
            "/_plugins/_notifications/features",
        ),
        (
            "the anomaly detection plugin",
            "/_plugins/_anomaly_detection/stats",
        ),
    ];
    for (what, path) in probes {
        let mut said = false;
        loop {
            let last = match os.request("GET", path, None).await {
                Ok(answer) if answer.is_success() => break,
                Ok(answer) if matches!(answer.status, 401 | 403) => {
                    return answer.check().map(|_| ())
                }
                Ok(answer) => match answer.check().expect_err("not a success") {
                    // The REST layer is up and knows no such route: the plugin is not installed.
                    e @ OpenSearchError::PluginMissing { .. } => return Err(e),
                    e => e,
                },
                // No retry can mend it (a CA not trusted, nothing listening).
                Err(
                    e @ OpenSearchError::Transport {
                        transient: false, ..
                    },
                ) => return Err(e),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(last);
            }
            if !said {
                progress(&format!("waiting for {what} ({last})"));
                said = true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    // The alerting plugin answers searches once its config index can exist.
    let _ = os
        .request(
            "POST",
            "/_plugins/_alerting/monitors/_search",
            Some(&json!({"size": 0, "query": {"match_all": {}}})),
        )
        .await;
    Ok(())
}

/// The User-Agent the alerting plugin shows a monitor's `ui_metadata` to:
/// it hides it from every caller whose agent does not contain
/// `OpenSearch-Dashboards`, though it stores it all the same.
pub const DASHBOARDS_USER_AGENT: &str = "OpenSearch-Dashboards (trailwatch)";

/// The plugin object named `name`: its id and source, found by a term
/// search on `field` at `search`, sent with `headers`. Each hit's
/// `_source` is the object itself (the alerting plugin's too, though it
/// stores monitors under `monitor`). A missing config index means nothing
/// was ever made: `None`.
pub async fn find_by_name(
    os: &OpenSearch,
    search: &str,
    field: &str,
    name: &str,
    headers: &[(&'static str, &str)],
) -> Result<Option<(String, Value)>, OpenSearchError> {
    let query = json!({"size": 10, "query": {"term": {field: name}}});
    let body = Some(("application/json", query.to_string().into_bytes()));
    let answer = os.send_with("POST", search, headers, body, None).await?;
    if answer.status == 404 {
        return Ok(None);
    }
    let v = answer.checked_json()?;
    let hits = v["hits"]["hits"].as_array().cloned().unwrap_or_default();
    Ok(hits.into_iter().find_map(|h| {
        let source = h["_source"].clone();
        (source["name"] == name).then(|| (h["_id"].as_str().unwrap_or_default().to_owned(), source))
    }))
}

/// The detector named `name`: its plugin id and body.
pub async fn find_detector(
    os: &OpenSearch,
    name: &str,
) -> Result<Option<(String, Value)>, OpenSearchError> {
    find_by_name(
        os,
        &format!("{DETECTORS_API}/_search"),
        "name.keyword",
        name,
        &[],
    )
    .await
}

/// The monitor named `name`: its plugin id and body, `ui_metadata`
/// included (asked as Dashboards asks).
pub async fn find_monitor(
    os: &OpenSearch,
    name: &str,
) -> Result<Option<(String, Value)>, OpenSearchError> {
    find_by_name(
        os,
        &format!("{MONITORS_API}/_search"),
        "monitor.name.keyword",
        name,
        &[("user-agent", DASHBOARDS_USER_AGENT)],
    )
    .await
}

/// Names the object in an error of a step on it.
fn failed_on(kind: &'static str, name: &str) -> impl FnOnce(OpenSearchError) -> ApplyError {
    let name = name.to_owned();
    move |e| ApplyError {
        kind,
        name,
        source: e.into(),
    }
}

/// A reconcile over one client.
pub struct Reconcile<'a> {
    pub os: &'a OpenSearch,
    pub dry_run: bool,
    /// Each object's line, as soon as it is known.
    pub progress: &'a mut dyn FnMut(&Line),
    pub lines: Vec<Line>,
}

impl<'a> Reconcile<'a> {
    pub fn new(os: &'a OpenSearch, dry_run: bool, progress: &'a mut dyn FnMut(&Line)) -> Self {
        Reconcile {
            os,
            dry_run,
            progress,
            lines: Vec::new(),
        }
    }

    /// Records a line made elsewhere (the dashboards').
    pub fn push(&mut self, line: Line) {
        (self.progress)(&line);
        self.lines.push(line);
    }

    pub fn record(&mut self, kind: &'static str, name: &str, outcome: Outcome, notes: Vec<String>) {
        let line = Line {
            kind,
            name: name.to_owned(),
            outcome,
            notes,
        };
        (self.progress)(&line);
        self.lines.push(line);
    }

    async fn call(
        &self,
        kind: &'static str,
        name: &str,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApplyError> {
        let failed = |e: OpenSearchError| ApplyError {
            kind,
            name: name.to_owned(),
            source: e.into(),
        };
        let answer = self.os.request(method, path, body).await.map_err(failed)?;
        if answer.body.is_empty() && answer.is_success() {
            return Ok(Value::Null);
        }
        answer.checked_json().map_err(failed)
    }

    /// GET that maps 404 to `None`.
    async fn get(
        &self,
        kind: &'static str,
        name: &str,
        path: &str,
    ) -> Result<Option<Value>, ApplyError> {
        let failed = |e: OpenSearchError| ApplyError {
            kind,
            name: name.to_owned(),
            source: e.into(),
        };
        let answer = self.os.request("GET", path, None).await.map_err(failed)?;
        if answer.status == 404 {
            return Ok(None);
        }
        answer.checked_json().map(Some).map_err(failed)
    }

    /// One object with a fixed path: GET it, compare, PUT when it differs.
    async fn put_object(
        &mut self,
        kind: &'static str,
        name: &str,
        path: &str,
        desired: &Value,
        existing_of: impl Fn(&Value) -> Option<Value>,
    ) -> Result<(), ApplyError> {
        let existing = self
            .get(kind, name, path)
            .await?
            .and_then(|v| existing_of(&v));
        let (outcome, notes) = match &existing {
            None => (Outcome::Created, Vec::new()),
            Some(e) => match changes(desired, e) {
                d if d.is_empty() => (Outcome::Unchanged, Vec::new()),
                d => (Outcome::Updated, vec![changed_note(&d)]),
            },
        };
        if outcome != Outcome::Unchanged && !self.dry_run {
            self.call(kind, name, "PUT", path, Some(desired)).await?;
        }
        self.record(kind, name, outcome, notes);
        Ok(())
    }

    /// Applies every object in order.
    pub async fn apply(&mut self, desired: &Desired) -> Result<(), ApplyError> {
        self.put_object(
            "index-template",
            TEMPLATE_NAME,
            &format!("/_index_template/{TEMPLATE_NAME}"),
            &desired.template,
            |v| v["index_templates"][0].get("index_template").cloned(),
        )
        .await?;
        self.put_object(
            "index-template",
            FINDINGS_TEMPLATE_NAME,
            &format!("/_index_template/{FINDINGS_TEMPLATE_NAME}"),
            &desired.findings_template,
            |v| v["index_templates"][0].get("index_template").cloned(),
        )
        .await?;
        self.put_object(
            "seed",
            SEED_INDEX,
            &format!("/{SEED_INDEX}/_doc/seed?refresh=true"),
            &seed_document(),
            |v| v.get("_source").cloned(),
        )
        .await?;
        for (id, body) in &desired.policies {
            self.policy(id, body).await?;
        }
        for (name, body) in &desired.roles {
            self.put_object(
                "role",
                name,
                &format!("/_plugins/_security/api/roles/{name}"),
                body,
                |v| v.get(name).cloned(),
            )
            .await?;
        }
        for m in &desired.mappings {
            self.mapping(m).await?;
        }
        for c in &desired.channels {
            self.channel(c).await?;
        }
        let ids = desired.channel_ids();
        for (d, body) in &desired.detectors {
            let id = self.detector(&detector_name(d), &d.source, body).await?;
            let monitor = monitor_body(d, id.as_deref().unwrap_or("<not yet created>"), &ids);
            self.monitor(&monitor_name(d), &monitor, id.is_none())
                .await?;
        }
        Ok(())
    }

    async fn policy(&mut self, id: &str, body: &Value) -> Result<(), ApplyError> {
        let kind = "ism-policy";
        let path = format!("/_plugins/_ism/policies/{id}");
        let existing = self.get(kind, id, &path).await?;
        let (outcome, notes, put) = match &existing {
            None => (Outcome::Created, Vec::new(), path.clone()),
            Some(e) => match changes(&body["policy"], &e["policy"]) {
                d if d.is_empty() => (Outcome::Unchanged, Vec::new(), String::new()),
                d => (
                    Outcome::Updated,
                    vec![changed_note(&d)],
                    format!(
                        "{path}?if_seq_no={}&if_primary_term={}",
                        e["_seq_no"], e["_primary_term"]
                    ),
                ),
            },
        };
        if outcome != Outcome::Unchanged && !self.dry_run {
            self.call(kind, id, "PUT", &put, Some(body)).await?;
        }
        self.record(kind, id, outcome, notes);
        Ok(())
    }

    /// A role's mapping as it stands: its path, the mapping, and its
    /// backend roles.
    async fn existing_mapping(
        &self,
        role: &str,
    ) -> Result<(String, Option<Value>, Vec<String>), ApplyError> {
        let path = format!("/_plugins/_security/api/rolesmapping/{role}");
        let existing = self
            .get("role-mapping", role, &path)
            .await?
            .and_then(|v| v.get(role).cloned());
        let current = existing
            .as_ref()
            .map(|e| strings(&e["backend_roles"]))
            .unwrap_or_default();
        Ok((path, existing, current))
    }

    async fn mapping(&mut self, m: &Mapping) -> Result<(), ApplyError> {
        let kind = "role-mapping";
        let (path, existing, current) = self.existing_mapping(&m.role).await?;
        let body = m.body(&current);
        let mut want = strings(&body["backend_roles"]);
        let mut have = current.clone();
        want.sort();
        have.sort();
        let outcome = match &existing {
            None => Outcome::Created,
            Some(_) if want == have => Outcome::Unchanged,
            Some(_) => Outcome::Updated,
        };
        if outcome != Outcome::Unchanged && !self.dry_run {
            self.call(kind, &m.role, "PUT", &path, Some(&body)).await?;
        }
        let mut notes = Vec::new();
        if outcome == Outcome::Updated {
            notes.push(changed_note(&[Change {
                path: "backend_roles".into(),
                old: Some(json!(have)),
                new: json!(want),
            }]));
        }
        if !m.owned {
            notes.push("built-in role: ours added beside the others".into());
        }
        self.record(kind, &m.role, outcome, notes);
        Ok(())
    }

    async fn channel(&mut self, c: &Channel) -> Result<(), ApplyError> {
        let kind = "channel";
        let id = c.config_id();
        let path = format!("/_plugins/_notifications/configs/{id}");
        let existing = self
            .get(kind, &id, &path)
            .await?
            .and_then(|v| v["config_list"][0].get("config").cloned());
        let body = c.body();
        let (outcome, notes) = match &existing {
            None => (Outcome::Created, Vec::new()),
            Some(e) => match changes(&body["config"], e) {
                d if d.is_empty() => (Outcome::Unchanged, Vec::new()),
                d => (Outcome::Updated, vec![changed_note(&d)]),
            },
        };
        if !self.dry_run {
            match outcome {
                Outcome::Created => {
                    self.call(
                        kind,
                        &id,
                        "POST",
                        "/_plugins/_notifications/configs",
                        Some(&body),
                    )
                    .await?;
                }
                Outcome::Updated => {
                    self.call(
                        kind,
                        &id,
                        "PUT",
                        &path,
                        Some(&json!({"config": body["config"]})),
                    )
                    .await?;
                }
                _ => {}
            }
        }
        self.record(kind, &id, outcome, notes);
        Ok(())
    }

    /// A detector: validated, then created and started; or stopped,
    /// updated and started; or replaced when its category fields changed.
    /// Returns its id (none in a dry run that would create it).
    async fn detector(
        &mut self,
        name: &str,
        file: &std::path::Path,
        body: &Value,
    ) -> Result<Option<String>, ApplyError> {
        let kind = "detector";
        let base = DETECTORS_API;
        let existing = find_detector(self.os, name)
            .await
            .map_err(failed_on(kind, name))?;
        let (outcome, notes) = match &existing {
            None => (Outcome::Created, Vec::new()),
            Some((_, e)) => {
                let d = changes(body, e);
                let categories_changed = category_fields(body) != category_fields(e);
                if d.is_empty() {
                    (Outcome::Unchanged, Vec::new())
                } else if categories_changed {
                    (
                        Outcome::Replaced,
                        vec![
                            "its category fields changed, which the plugin cannot update: its model starts over".into(),
                        ],
                    )
                } else {
                    (Outcome::Updated, vec![changed_note(&d)])
                }
            }
        };
        if self.dry_run || outcome == Outcome::Unchanged {
            let id = existing.map(|(id, _)| id);
            if outcome == Outcome::Unchanged {
                self.ensure_started(name, id.as_deref().unwrap_or_default())
                    .await?;
            }
            self.record(kind, name, outcome, notes);
            return Ok(id);
        }
        let body = &to_send(body);
        self.validate(name, file, body, existing.is_some()).await?;
        let id = match (&outcome, existing) {
            (Outcome::Updated, Some((id, _))) => {
                self.stop(name, &id).await?;
                self.call(kind, name, "PUT", &format!("{base}/{id}"), Some(body))
                    .await?;
                id
            }
            (Outcome::Replaced, Some((id, _))) => {
                self.stop(name, &id).await?;
                self.call(kind, name, "DELETE", &format!("{base}/{id}"), None)
                    .await?;
                self.create_detector(name, body).await?
            }
            _ => self.create_detector(name, body).await?,
        };
        self.call(kind, name, "POST", &format!("{base}/{id}/_start"), None)
            .await?;
        self.record(kind, name, outcome, notes);
        Ok(Some(id))
    }

    async fn create_detector(&self, name: &str, body: &Value) -> Result<String, ApplyError> {
        let created = self
            .call("detector", name, "POST", DETECTORS_API, Some(body))
            .await?;
        created["_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ApplyError {
                kind: "detector",
                name: name.to_owned(),
                source: StepError::Unexpected(format!(
                    "the plugin made it but named no id: {created}"
                )),
            })
    }

    /// The plugin's `_validate`: its messages, per field, become the error.
    /// The plugin refuses the name of a detector that exists, its own
    /// included, so before an update (`exists`) that refusal is not one.
    async fn validate(
        &self,
        name: &str,
        file: &std::path::Path,
        body: &Value,
        exists: bool,
    ) -> Result<(), ApplyError> {
        let answer = self
            .call(
                "detector",
                name,
                "POST",
                "/_plugins/_anomaly_detection/detectors/_validate/detector",
                Some(body),
            )
            .await?;
        let mut messages = validation_messages(&answer);
        if exists {
            messages.retain(|m| !is_own_name_refusal(m, name));
        }
        if messages.is_empty() {
            Ok(())
        } else {
            Err(ApplyError {
                kind: "detector",
                name: name.to_owned(),
                source: StepError::Invalid(format!("{}: {}", file.display(), messages.join("; "))),
            })
        }
    }

    async fn stop(&self, name: &str, id: &str) -> Result<(), ApplyError> {
        let path = format!("/_plugins/_anomaly_detection/detectors/{id}/_stop");
        match self.os.request("POST", &path, None).await {
            Ok(a) if a.is_success() || a.status == 400 || a.status == 404 => Ok(()),
            Ok(a) => a.check().map(|_| ()).map_err(|e| ApplyError {
                kind: "detector",
                name: name.to_owned(),
                source: e.into(),
            }),
            Err(e) => Err(ApplyError {
                kind: "detector",
                name: name.to_owned(),
                source: e.into(),
            }),
        }
    }

    /// A detector left stopped by a run that failed half-way is started.
    async fn ensure_started(&self, name: &str, id: &str) -> Result<(), ApplyError> {
        let profile = self
            .call(
                "detector",
                name,
                "GET",
                &format!("/_plugins/_anomaly_detection/detectors/{id}/_profile/state"),
                None,
            )
            .await?;
        if profile["state"] == "DISABLED" {
            self.call(
                "detector",
                name,
                "POST",
                &format!("/_plugins/_anomaly_detection/detectors/{id}/_start"),
                None,
            )
            .await?;
        }
        Ok(())
    }

    async fn monitor(
        &mut self,
        name: &str,
        body: &Value,
        detector_pending: bool,
    ) -> Result<(), ApplyError> {
        let kind = "monitor";
        let base = MONITORS_API;
        let existing = if detector_pending {
            None
        } else {
            find_monitor(self.os, name)
                .await
                .map_err(failed_on(kind, name))?
        };
        let (outcome, notes) = match &existing {
            None => (Outcome::Created, Vec::new()),
            Some((_, e)) => match changes(body, e) {
                d if d.is_empty() => (Outcome::Unchanged, Vec::new()),
                d => (Outcome::Updated, vec![changed_note(&d)]),
            },
        };
        if !self.dry_run {
            match (&outcome, &existing) {
                (Outcome::Created, _) => {
                    self.call(kind, name, "POST", base, Some(body)).await?;
                }
                (Outcome::Updated, Some((id, _))) => {
                    self.call(kind, name, "PUT", &format!("{base}/{id}"), Some(body))
                        .await?;
                }
                _ => {}
            }
        }
        self.record(kind, name, outcome, notes);
        Ok(())
    }
}

/// The strings of a JSON array (absent, null and empty alike: none).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// A detector's category fields.
fn category_fields(detector: &Value) -> Vec<String> {
    strings(&detector["category_field"])
}

/// Whether a validation message is the plugin refusing `name` because a
/// detector already has it ("Cannot create anomaly detector with name [x]
/// as it's already used by another detector").
fn is_own_name_refusal(message: &str, name: &str) -> bool {
    message.starts_with("name: ")
        && message.contains(&format!("[{name}]"))
        && message.contains("already used")
}

/// The plugin's validation answer (`{}` when fine; otherwise
/// `{"detector": {"<field>": {"message": …}}}` or `{"model": …}`) as
/// `field: message` lines.
pub fn validation_messages(answer: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(groups) = answer.as_object() {
        for (_, fields) in groups {
            for (field, detail) in fields.as_object().into_iter().flatten() {
                let message = detail["message"]
                    .as_str()
                    .map_or_else(|| detail.to_string(), str::to_owned);
                out.push(format!("{field}: {message}"));
            }
        }
    }
    out
}

/// Removes what apply made: monitors and detectors named `trailwatch-…`
/// whose description or metadata says [`MANAGED`], our channels, roles,
/// mappings (ours deleted, our backend roles taken out of built-in ones),
/// policies, the seed index and the template. Data indices stay.
pub async fn delete(rec: &mut Reconcile<'_>, desired: &Desired) -> Result<(), ApplyError> {
    let detectors = DETECTORS_API;
    for (d, _) in &desired.detectors {
        let name = monitor_name(d);
        match find_monitor(rec.os, &name)
            .await
            .map_err(failed_on("monitor", &name))?
        {
            Some((id, source)) if source["ui_metadata"]["managed_by"] == MANAGED => {
                if !rec.dry_run {
                    rec.call(
                        "monitor",
                        &name,
                        "DELETE",
                        &format!("/_plugins/_alerting/monitors/{id}"),
                        None,
                    )
                    .await?;
                }
                rec.record("monitor", &name, Outcome::Deleted, Vec::new());
            }
            _ => rec.record("monitor", &name, Outcome::Absent, Vec::new()),
        }
        let name = detector_name(d);
        match find_detector(rec.os, &name)
            .await
            .map_err(failed_on("detector", &name))?
        {
            Some((id, source))
                if source["description"]
                    .as_str()
                    .is_some_and(|s| s.contains(MANAGED)) =>
            {
                if !rec.dry_run {
                    rec.stop(&name, &id).await?;
                    rec.call(
                        "detector",
                        &name,
                        "DELETE",
                        &format!("{detectors}/{id}"),
                        None,
                    )
                    .await?;
                }
                rec.record("detector", &name, Outcome::Deleted, Vec::new());
            }
            _ => rec.record("detector", &name, Outcome::Absent, Vec::new()),
        }
    }
    for c in &desired.channels {
        let id = c.config_id();
        delete_path(
            rec,
            "channel",
            &id,
            &format!("/_plugins/_notifications/configs/{id}"),
        )
        .await?;
    }
    for m in &desired.mappings {
        if m.owned {
            let path = format!("/_plugins/_security/api/rolesmapping/{}", m.role);
            delete_path(rec, "role-mapping", &m.role, &path).await?;
            continue;
        }
        let (path, existing, current) = rec.existing_mapping(&m.role).await?;
        let kept: Vec<String> = current
            .iter()
            .filter(|b| !m.backend_roles.contains(b))
            .cloned()
            .collect();
        if kept.len() == current.len() {
            rec.record(
                "role-mapping",
                &m.role,
                Outcome::Absent,
                vec!["none of ours mapped".into()],
            );
            continue;
        }
        if !rec.dry_run {
            let mut body = existing.unwrap_or_default();
            body["backend_roles"] = json!(kept);
            if let Some(o) = body.as_object_mut() {
                o.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "backend_roles" | "users" | "hosts" | "description"
                    )
                });
            }
            let empty = |k: &str| body[k].as_array().is_none_or(|a| a.is_empty());
            if empty("backend_roles") && empty("users") && empty("hosts") {
                // Only ours were there: the mapping goes, as before apply.
                rec.call("role-mapping", &m.role, "DELETE", &path, None)
                    .await?;
            } else {
                rec.call("role-mapping", &m.role, "PUT", &path, Some(&body))
                    .await?;
            }
        }
        rec.record(
            "role-mapping",
            &m.role,
            Outcome::Deleted,
            vec!["our backend roles taken out; the others stay".into()],
        );
    }
    for (name, _) in &desired.roles {
        delete_path(
            rec,
            "role",
            name,
            &format!("/_plugins/_security/api/roles/{name}"),
        )
        .await?;
    }
    let legacy = super::desired::retention::LEGACY_RESULTS_POLICY;
    for id in desired
        .policies
        .iter()
        .map(|(id, _)| id.as_str())
        .chain([legacy])
    {
        delete_path(
            rec,
            "ism-policy",
            id,
            &format!("/_plugins/_ism/policies/{id}"),
        )
        .await?;
    }
    delete_path(rec, "seed", SEED_INDEX, &format!("/{SEED_INDEX}")).await?;
    delete_path(
        rec,
        "index-template",
        TEMPLATE_NAME,
        &format!("/_index_template/{TEMPLATE_NAME}"),
    )
    .await?;
    delete_path(
        rec,
        "index-template",
        FINDINGS_TEMPLATE_NAME,
        &format!("/_index_template/{FINDINGS_TEMPLATE_NAME}"),
    )
    .await?;
    Ok(())
}

async fn delete_path(
    rec: &mut Reconcile<'_>,
    kind: &'static str,
    name: &str,
    path: &str,
) -> Result<(), ApplyError> {
    let exists = rec.get(kind, name, path).await?.is_some();
    if exists && !rec.dry_run {
        rec.call(kind, name, "DELETE", path, None).await?;
    }
    rec.record(
        kind,
        name,
        if exists {
            Outcome::Deleted
        } else {
            Outcome::Absent
        },
        Vec::new(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_keys_we_set_are_compared() {
        let desired = json!({"name": "x", "shingle_size": 8, "feature_attributes": [{"feature_name": "count"}],
            "settings": {"limit": 2000}, "category_field": []});
        let existing = json!({"name": "x", "shingle_size": 8, "last_update_time": 1,
            "feature_attributes": [{"feature_id": "f1", "feature_name": "count"}], "settings": {"limit": "2000"}});
        assert!(differences(&desired, &existing).is_empty());
        let changed = json!({"name": "x", "shingle_size": 4, "feature_attributes": [{"feature_name": "sum"}], "settings": {"limit": "2000"}});
        assert_eq!(
            differences(&desired, &changed),
            vec!["feature_attributes", "shingle_size"]
        );
        assert_eq!(differences(&json!({"a": {"b": 1}}), &json!({})), vec!["a"]);
    }

    /// `--dry-run` said `would update: changed description, shingle_size`
    /// and not what either became.
    #[test]
    fn a_change_shows_the_old_and_the_new_value() {
        let desired = json!({"description": "new text", "shingle_size": 4, "window_delay": {"period": {"interval": 5}},
            "indices": ["cwl-*", "more-*"]});
        let existing = json!({"description": "old text", "shingle_size": 8, "window_delay": {"period": {"interval": 1}},
            "indices": ["cwl-*"]});
        assert_eq!(
            changed_note(&changes(&desired, &existing)),
            r#"changed description: "old text" → "new text", indices: ["cwl-*"] → ["cwl-*","more-*"], shingle_size: 8 → 4, window_delay.period.interval: 1 → 5"#
        );
        let added = changes(
            &json!({"result_index": "opensearch-ad-plugin-result-trailwatch"}),
            &json!({}),
        );
        assert_eq!(
            added[0].to_string(),
            r#"result_index: (none) → "opensearch-ad-plugin-result-trailwatch""#
        );
        let long = changes(&json!({"q": "x".repeat(100)}), &json!({"q": "y"}));
        assert!(long[0].to_string().ends_with("…"), "{}", long[0]);
    }

    #[test]
    fn the_plugins_validation_messages_name_the_field() {
        let answer = json!({"detector": {"category_field": {"message": "Can't find category field userIdentity.arn"}}});
        assert_eq!(
            validation_messages(&answer),
            vec!["category_field: Can't find category field userIdentity.arn"]
        );
        assert!(validation_messages(&json!({})).is_empty());
    }

    /// The real `_validate/detector` refuses a detector's own name before
    /// an update (recording 10), so no changed detector could be applied.
    #[test]
    fn an_update_is_not_refused_for_the_detectors_own_name() {
        let recorded = json!({"detector": {"name": {"message": "Cannot create anomaly detector with name [trailwatch-ec2-run-instances] as it's already used by another detector"}}});
        let messages = validation_messages(&recorded);
        assert!(is_own_name_refusal(
            &messages[0],
            "trailwatch-ec2-run-instances"
        ));
        assert!(!is_own_name_refusal(&messages[0], "trailwatch-ec2"));
        let category = "category_field: Can't find category field userIdentity.arn";
        assert!(!is_own_name_refusal(
            category,
            "trailwatch-ec2-run-instances"
        ));
    }
}
