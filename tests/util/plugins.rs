//! A scripted stand-in for the OpenSearch plugins Maven Central does not
//! serve here (anomaly detection, alerting, notifications, ISM), in front of
//! the suite's real node. It answers as the real plugins answered in the
//! recordings of `../shared/reference/opensearch-2.19.4-plugins/`, down to
//! the behaviours that folder's README lists (`tests/conformance.rs`
//! replays every recording against it):
//! - alerting `_search` hits carry the monitor flat in `_source`, while GET,
//!   create and update wrap it in `monitor`; `ui_metadata` only for a
//!   User-Agent containing `OpenSearch-Dashboards` (create and update echo it);
//! - AD `_validate/detector` answers 200 with the refusal in the body, and
//!   refuses the name of any detector that exists, its own included;
//! - what the plugins add to what they store (defaults, ids, normalised
//!   queries with `boost`, sorts as `{"order": …}`);
//! - a single-stream detector's start writes cold-start results with
//!   `"error": ""`; a historical analysis answers its task id, holds a task
//!   slot while it runs, and another start meanwhile is refused ("No
//!   available task slot");
//! - `.opendistro-anomaly-results*` searched over REST answers no hits
//!   (system-index protection);
//! - the notifications list lags a second behind a create;
//! - ISM answers a create nested twice and refuses an update without
//!   `if_seq_no`/`if_primary_term` (409).
//!
//! Every other path (the core API, the security plugin) goes to the real
//! node with the caller's credentials, and facts the plugins check against
//! the cluster (a category field mapped as keyword, documents in the
//! indices) are asked of it. `_execute` runs a monitor: its search on the
//! real node, its trigger from the AD trigger metadata, its action to the
//! channel. Every request is logged, and `fail_after` makes one plugin
//! write answer 503 (a cluster failing half-way).

use std::collections::BTreeMap;

use super::wire::{read_request, respond, Request};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A request to the real node: method, path, JSON body; status and body.
type NodeCall<'a> = dyn Fn(&str, &str, Option<&Value>) -> (u16, Vec<u8>) + 'a;

/// The prefix the AD plugin requires of a custom result index.
const CUSTOM_RESULT_PREFIX: &str = "opensearch-ad-plugin-result-";

/// The user the plugins record as the maker of what they store.
fn plugin_user() -> Value {
    json!({"name": "admin", "backend_roles": ["admin"], "roles": ["own_index", "all_access"],
        "custom_attribute_names": [], "user_requested_tenant": "null"})
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct StoredDetector {
    body: Value,
    running: bool,
    version: u64,
    seq_no: u64,
    /// The real-time task, once started.
    realtime: Option<(String, i64)>,
}

struct HistoricalTask {
    id: String,
    detector: String,
    from: i64,
    to: i64,
    started: Instant,
    started_ms: i64,
}

struct StoredMonitor {
    body: Value,
    version: u64,
    seq_no: u64,
}

struct StoredChannel {
    config: Value,
    created: Instant,
    created_ms: i64,
}

struct StoredPolicy {
    policy: Value,
    version: u64,
    seq_no: u64,
}

struct State {
    detectors: BTreeMap<String, StoredDetector>,
    monitors: BTreeMap<String, StoredMonitor>,
    channels: BTreeMap<String, StoredChannel>,
    policies: BTreeMap<String, StoredPolicy>,
    /// Alerts of saved monitors that triggered: (monitor id, start ms).
    alerts: Vec<(String, i64)>,
    /// Profile fields a test sets for a detector id, over the state.
    profiles: BTreeMap<String, Value>,
    /// Every historical analysis started, newest last.
    tasks: Vec<HistoricalTask>,
    /// What a historical analysis of a detector (by id) finds: result
    /// documents written, with the task's id, when it starts. No model
    /// runs here; a test scripts what the plugin's would find.
    historical_findings: BTreeMap<String, Vec<Value>>,
    /// How long a historical analysis runs.
    task_time: Duration,
    /// How many run at once.
    task_slots: usize,
    next_id: u64,
    next_seq: u64,
    /// Writes to let through before the one that fails (`None`: fail none).
    fail_after: Option<usize>,
}

impl Default for State {
    fn default() -> Self {
        State {
            detectors: BTreeMap::new(),
            monitors: BTreeMap::new(),
            channels: BTreeMap::new(),
            policies: BTreeMap::new(),
            alerts: Vec::new(),
            profiles: BTreeMap::new(),
            tasks: Vec::new(),
            historical_findings: BTreeMap::new(),
            task_time: Duration::from_millis(1500),
            task_slots: 1,
            next_id: 0,
            next_seq: 0,
            fail_after: None,
        }
    }
}

impl State {
    /// An id shaped like the plugins' (20 URL-safe characters).
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("tw{:018}", self.next_id)
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn running_tasks(&self) -> usize {
        self.tasks
            .iter()
            .filter(|t| t.started.elapsed() < self.task_time)
            .count()
    }
}

pub struct Plugins {
    pub url: String,
    /// Every request: method and path.
    pub log: Arc<Mutex<Vec<(String, String)>>>,
    state: Arc<Mutex<State>>,
}

/// A request that changes something: not a read, a search or a validation.
fn is_write(method: &str, path: &str) -> bool {
    method != "GET" && !path.contains("_search") && !path.contains("_validate")
}

fn error_of(status: u16, kind: &str, reason: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}, "status": status}),
    )
}

fn error(status: u16, reason: &str) -> (u16, Value) {
    error_of(status, "status_exception", reason)
}

/// A search answer's frame around `hits`.
fn search_answer(hits: Vec<Value>) -> Value {
    json!({"took": 1, "timed_out": false,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"total": {"value": hits.len(), "relation": "eq"}, "max_score": if hits.is_empty() { Value::Null } else { json!(1.0) }, "hits": hits}})
}

/// The term a search asks for: `(field, value)`.
fn term(query: &Value) -> Option<(String, String)> {
    let t = query["query"]["term"].as_object()?;
    let (k, v) = t.iter().next()?;
    let v = v.get("value").unwrap_or(v);
    Some((k.clone(), v.as_str()?.to_owned()))
}

/// A query as OpenSearch parses and writes it back: `boost` on every leaf
/// clause and on `bool` (with `adjust_pure_negative`), a `term`'s value
/// under `value`, empty `bool` clause lists left out, and sorts as
/// `{"field": {"order": …}}`.
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut out = serde_json::Map::new();
            for (k, x) in o {
                let x = match k.as_str() {
                    "bool" => {
                        let mut b = serde_json::Map::new();
                        for (clause, list) in x.as_object().into_iter().flatten() {
                            match list {
                                Value::Array(a) if a.is_empty() => {}
                                Value::Array(a) => {
                                    b.insert(
                                        clause.clone(),
                                        Value::Array(a.iter().map(normalize).collect()),
                                    );
                                }
                                other => {
                                    b.insert(clause.clone(), normalize(other));
                                }
                            }
                        }
                        b.insert("adjust_pure_negative".into(), json!(true));
                        b.insert("boost".into(), json!(1.0));
                        Value::Object(b)
                    }
                    "term" => {
                        let mut t = serde_json::Map::new();
                        for (field, value) in x.as_object().into_iter().flatten() {
                            let mut inner = match value {
                                Value::Object(inner) => inner.clone(),
                                plain => {
                                    let mut m = serde_json::Map::new();
                                    m.insert("value".into(), plain.clone());
                                    m
                                }
                            };
                            inner.entry("boost").or_insert(json!(1.0));
                            t.insert(field.clone(), Value::Object(inner));
                        }
                        Value::Object(t)
                    }
                    "terms" | "exists" | "wildcard" => {
                        let mut t = x.as_object().cloned().unwrap_or_default();
                        if k == "wildcard" {
                            for (_, inner) in t.iter_mut() {
                                if let Some(inner) = inner.as_object_mut() {
                                    inner.entry("boost").or_insert(json!(1.0));
                                }
                            }
                        } else {
                            t.entry("boost").or_insert(json!(1.0));
                        }
                        Value::Object(t)
                    }
                    "range" => {
                        let mut t = serde_json::Map::new();
                        for (field, bounds) in x.as_object().into_iter().flatten() {
                            let mut inner = bounds.as_object().cloned().unwrap_or_default();
                            inner.entry("boost").or_insert(json!(1.0));
                            t.insert(field.clone(), Value::Object(inner));
                        }
                        Value::Object(t)
                    }
                    "sort" => Value::Array(
                        x.as_array()
                            .into_iter()
                            .flatten()
                            .map(|entry| match entry.as_object() {
                                Some(e) => Value::Object(
                                    e.iter()
                                        .map(|(f, o)| match o {
                                            Value::String(order) => {
                                                (f.clone(), json!({"order": order}))
                                            }
                                            other => (f.clone(), other.clone()),
                                        })
                                        .collect(),
                                ),
                                None => json!({entry.as_str().unwrap_or(""): {"order": "asc"}}),
                            })
                            .collect(),
                    ),
                    _ => normalize(x),
                };
                out.insert(k.clone(), x);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// A monitor as the alerting plugin stores it: what was sent, with its
/// queries normalised, ids on triggers and actions, times, and the keys it
/// adds.
fn stored_monitor(s: &mut State, body: &Value, enabled_time: Option<i64>) -> Value {
    let mut m = body.clone();
    let now = now_ms();
    m["type"] = json!("monitor");
    m["schema_version"] = json!(0);
    if m["enabled"] == true {
        m["enabled_time"] = json!(enabled_time.unwrap_or(now));
    }
    m["last_update_time"] = json!(now);
    for input in m["inputs"].as_array_mut().into_iter().flatten() {
        if let Some(q) = input["search"].get("query") {
            input["search"]["query"] = normalize(q);
        }
    }
    for t in m["triggers"].as_array_mut().into_iter().flatten() {
        let t = &mut t["query_level_trigger"];
        if t.get("id").is_none() {
            t["id"] = json!(s.new_id());
        }
        for a in t["actions"].as_array_mut().into_iter().flatten() {
            if a.get("id").is_none() {
                a["id"] = json!(s.new_id());
            }
        }
    }
    m["data_sources"] = json!({"query_index": ".opensearch-alerting-queries",
        "findings_index": ".opensearch-alerting-finding-history-write",
        "findings_index_pattern": "<.opensearch-alerting-finding-history-{now/d}-1>",
        "alerts_index": ".opendistro-alerting-alerts",
        "alerts_history_index": ".opendistro-alerting-alert-history-write",
        "alerts_history_index_pattern": "<.opendistro-alerting-alert-history-{now/d}-1>",
        "comments_index": ".opensearch-alerting-comments-history-write",
        "comments_index_pattern": "<.opensearch-alerting-comments-history-{now/d}-1>",
        "query_index_mappings_by_type": {}, "findings_enabled": false});
    m["delete_query_index_in_every_run"] = json!(false);
    m["should_create_single_alert_for_findings"] = json!(false);
    m["owner"] = json!("alerting");
    m
}

/// The monitor as a caller sees it: without `ui_metadata` unless it asks
/// as Dashboards does.
fn visible(monitor: &Value, r: &Request) -> Value {
    let dashboards = r
        .header("user-agent")
        .is_some_and(|ua| ua.contains("OpenSearch-Dashboards"));
    let mut m = monitor.clone();
    if !dashboards {
        if let Some(o) = m.as_object_mut() {
            o.remove("ui_metadata");
        }
    }
    m
}

/// A detector as the AD plugin stores it: what was sent, with the defaults
/// and keys it adds.
fn stored_detector(s: &mut State, body: &Value) -> Value {
    let mut d = body.clone();
    if d.get("shingle_size").is_none() {
        d["shingle_size"] = json!(8);
    }
    d["schema_version"] = json!(0);
    d["recency_emphasis"] = json!(2560);
    d["history"] = json!(40);
    d["last_update_time"] = json!(now_ms());
    d["user"] = plugin_user();
    if d.get("category_field").is_none() {
        d["category_field"] = json!([]);
    }
    let high = d["category_field"]
        .as_array()
        .is_some_and(|c| !c.is_empty());
    d["detector_type"] = json!(if high {
        "MULTI_ENTITY"
    } else {
        "SINGLE_ENTITY"
    });
    if let Some(q) = d.get("filter_query") {
        d["filter_query"] = normalize(q);
    }
    for f in d["feature_attributes"].as_array_mut().into_iter().flatten() {
        if f.get("feature_id").is_none() {
            f["feature_id"] = json!(s.new_id());
        }
    }
    for r in d["rules"].as_array_mut().into_iter().flatten() {
        for c in r["conditions"].as_array_mut().into_iter().flatten() {
            if c.get("operator").is_none() {
                c["operator"] = Value::Null;
            }
        }
    }
    d
}

/// The plugin's own result index (a system index), as an alias.
const SYSTEM_RESULTS: &str = ".opendistro-anomaly-results";

/// The index a detector's results go to: its custom result index, or the
/// plugin's own.
fn result_index_of(d: &Value) -> String {
    d["result_index"]
        .as_str()
        .unwrap_or(SYSTEM_RESULTS)
        .to_owned()
}

/// Makes a custom result index as the plugin does: the alias, over a
/// first rolled index with the plugin's result mapping.
fn ensure_result_index(alias: &str, node: &NodeCall<'_>) -> Result<(), (u16, Value)> {
    let (status, _) = node("HEAD", &format!("/{alias}"), None);
    if status == 200 {
        return Ok(());
    }
    let mapping: Value = serde_json::from_str(
        &std::fs::read_to_string(
            super::root().join("../shared/reference/opensearch-ad-mappings/anomaly-results.json"),
        )
        .expect("the plugin's result mapping in ../shared/reference"),
    )
    .expect("the result mapping is JSON");
    let mapping = mapping.get("mappings").cloned().unwrap_or(mapping);
    let date = chrono::Utc::now().format("%Y.%m.%d");
    let (status, answer) = node(
        "PUT",
        &format!("/{alias}-history-{date}-1"),
        Some(&json!({"mappings": mapping, "aliases": {alias: {"is_write_index": true}}})),
    );
    if status >= 300 && status != 400 {
        return Err(error(
            500,
            &format!(
                "cannot create the result index: {}",
                String::from_utf8_lossy(&answer)
            ),
        ));
    }
    Ok(())
}

/// The cold start of a single-stream detector: the plugin back-fills about
/// forty results with `"error": ""` (an empty string, which an `exists`
/// filter on the `text` field `error` matches).
fn write_cold_start(id: &str, d: &Value, node: &NodeCall<'_>) {
    let index = result_index_of(d);
    if ensure_result_index(&index, node).is_err() {
        return;
    }
    let feature = &d["feature_attributes"][0];
    let interval = d["detection_interval"]["period"]["interval"]
        .as_i64()
        .unwrap_or(10)
        * 60_000;
    let now = now_ms();
    let mut body = String::new();
    for i in 0..40 {
        let end = now - (40 - i) * interval;
        body.push_str(&json!({"index": {"_index": index}}).to_string());
        body.push('\n');
        body.push_str(&json!({"detector_id": id, "schema_version": 7, "error": "",
            "data_start_time": end - interval, "data_end_time": end,
            "execution_start_time": now, "execution_end_time": now,
            "feature_data": [{"feature_id": feature["feature_id"], "feature_name": feature["feature_name"], "data": 0.0}],
            "model_id": format!("{id}_model_rcf_0"), "user": plugin_user()}).to_string());
        body.push('\n');
    }
    // The bulk body is NDJSON, not one JSON value: sent as text.
    let _ = node("POST", "/_bulk?refresh=true", Some(&Value::String(body)));
}

/// Whether a core-API request searches the AD plugin's own result indices,
/// which the security plugin protects as system indices: every REST user,
/// admin included, gets no hits from them, silently.
fn searches_system_results(method: &str, path: &str) -> bool {
    let target = path.trim_start_matches('/').split('/').next().unwrap_or("");
    (method == "GET" || method == "POST")
        && path.contains("/_search")
        && target
            .split(',')
            .any(|i| i.starts_with(".opendistro-anomaly-results"))
}

impl Plugins {
    /// Starts the stand-in in front of the real node at `node_url`, whose
    /// TLS is signed by `ca`.
    pub fn start(node_url: &str, ca: &std::path::Path) -> Plugins {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Mutex::new(State::default()));
        let pem = std::fs::read(ca).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        let upstream = node_url.trim_end_matches('/').to_owned();
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        );
        {
            let (log, state) = (log.clone(), state.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (log, state, http, upstream, runtime) = (
                        log.clone(),
                        state.clone(),
                        http.clone(),
                        upstream.clone(),
                        runtime.clone(),
                    );
                    std::thread::spawn(move || {
                        let mut reader = BufReader::new(stream.try_clone().unwrap());
                        let Some(request) = read_request(&mut reader) else {
                            return;
                        };
                        log.lock()
                            .unwrap()
                            .push((request.method.clone(), request.path.clone()));
                        let mut stream = stream;
                        // To the real node, with the caller's credentials.
                        let pass = |method: &str,
                                    path: &str,
                                    content_type: Option<&str>,
                                    body: Vec<u8>|
                         -> (u16, Vec<u8>) {
                            runtime.block_on(async {
                                let mut r = http.request(
                                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                                    format!("{upstream}{path}"),
                                );
                                if let Some(a) = request.header("authorization") {
                                    r = r.header("authorization", a);
                                }
                                if let Some(t) = content_type {
                                    r = r.header("content-type", t).body(body);
                                }
                                match r.send().await {
                                    Ok(a) => (
                                        a.status().as_u16(),
                                        a.bytes().await.unwrap_or_default().to_vec(),
                                    ),
                                    Err(e) => (502, e.to_string().into_bytes()),
                                }
                            })
                        };
                        // A JSON body, or NDJSON given as one JSON string.
                        let node = |method: &str, path: &str, body: Option<&Value>| match body {
                            Some(Value::String(ndjson)) => pass(
                                method,
                                path,
                                Some("application/x-ndjson"),
                                ndjson.clone().into_bytes(),
                            ),
                            Some(json) => pass(
                                method,
                                path,
                                Some("application/json"),
                                json.to_string().into_bytes(),
                            ),
                            None => pass(method, path, None, Vec::new()),
                        };
                        let plugin = [
                            "/_plugins/_anomaly_detection",
                            "/_plugins/_alerting",
                            "/_plugins/_notifications",
                            "/_plugins/_ism",
                        ]
                        .iter()
                        .any(|p| request.path.starts_with(p));
                        if !plugin {
                            if searches_system_results(&request.method, &request.path) {
                                let (who, _) = node("GET", "/_plugins/_security/authinfo", None);
                                let (status, body) = if who == 200 {
                                    (200, search_answer(Vec::new()))
                                } else {
                                    error(401, "Unauthorized")
                                };
                                respond(
                                    &mut stream,
                                    status,
                                    "application/json",
                                    body.to_string().as_bytes(),
                                );
                                return;
                            }
                            let content_type = (!request.body.is_empty()).then(|| {
                                request.header("content-type").unwrap_or("application/json")
                            });
                            let (status, bytes) = pass(
                                &request.method,
                                &request.path,
                                content_type,
                                request.body.clone(),
                            );
                            respond(&mut stream, status, "application/json", &bytes);
                            return;
                        }
                        // The plugins are behind the security plugin: the caller must authenticate.
                        let (who, _) = node("GET", "/_plugins/_security/authinfo", None);
                        let (status, body) = if who != 200 {
                            error(401, "Unauthorized")
                        } else {
                            let mut s = state.lock().unwrap();
                            let write = is_write(&request.method, &request.path);
                            let fail = match s.fail_after {
                                Some(0) if write => {
                                    s.fail_after = None;
                                    true
                                }
                                Some(n) if write => {
                                    s.fail_after = Some(n - 1);
                                    false
                                }
                                _ => false,
                            };
                            if fail {
                                error(503, "injected: the cluster is unavailable")
                            } else {
                                route(&mut s, &request, &node)
                            }
                        };
                        respond(
                            &mut stream,
                            status,
                            "application/json",
                            body.to_string().as_bytes(),
                        );
                    });
                }
            });
        }
        Plugins { url, log, state }
    }

    /// The plugin write after the next `skip` ones answers 503, once.
    pub fn fail_after(&self, skip: usize) {
        self.state.lock().unwrap().fail_after = Some(skip);
    }

    /// Historical analyses run `time` each, `slots` at once.
    pub fn historical_tasks(&self, time: Duration, slots: usize) {
        let mut s = self.state.lock().unwrap();
        s.task_time = time;
        s.task_slots = slots;
    }

    /// What a historical analysis of the detector named `name` finds: these
    /// result documents, written with the task's id when it starts.
    pub fn historical_findings(&self, name: &str, docs: Vec<Value>) {
        let id = self.detector_id(name).expect("a detector of that name");
        self.state
            .lock()
            .unwrap()
            .historical_findings
            .insert(id, docs);
    }

    /// Requests that would change something (not GET, not a search or a validation).
    pub fn writes_since(&self, from: usize) -> Vec<(String, String)> {
        self.log.lock().unwrap()[from..]
            .iter()
            .filter(|(m, p)| is_write(m, p))
            .cloned()
            .collect()
    }

    pub fn requests(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// The stored detector named `name`: its body and whether it runs.
    pub fn detector(&self, name: &str) -> Option<(Value, bool)> {
        self.state
            .lock()
            .unwrap()
            .detectors
            .values()
            .find(|d| d.body["name"] == name)
            .map(|d| (d.body.clone(), d.running))
    }

    /// The plugin id of the detector named `name`.
    pub fn detector_id(&self, name: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .detectors
            .iter()
            .find(|(_, d)| d.body["name"] == name)
            .map(|(id, _)| id.clone())
    }

    /// Every detector's plugin id and name.
    pub fn detector_ids(&self) -> Vec<(String, String)> {
        let s = self.state.lock().unwrap();
        s.detectors
            .iter()
            .map(|(id, d)| (id.clone(), d.body["name"].as_str().unwrap_or("").to_owned()))
            .collect()
    }

    /// The plugin id of the monitor named `name` (the first, if the
    /// plugin holds several of that name).
    pub fn monitor_id(&self, name: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .monitors
            .iter()
            .find(|(_, m)| m.body["name"] == name)
            .map(|(id, _)| id.clone())
    }

    /// The stored monitor named `name`, as the plugin holds it.
    pub fn monitor(&self, name: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .monitors
            .values()
            .find(|m| m.body["name"] == name)
            .map(|m| m.body.clone())
    }

    /// How many monitors the plugin holds.
    pub fn monitor_count(&self) -> usize {
        self.state.lock().unwrap().monitors.len()
    }

    /// Makes the detector's profile say these fields too (an
    /// initialising state, an error, a number of entities).
    pub fn set_profile(&self, name: &str, fields: Value) {
        let id = self.detector_id(name).expect("a detector of that name");
        self.state.lock().unwrap().profiles.insert(id, fields);
    }

    pub fn channel_count(&self) -> usize {
        self.state.lock().unwrap().channels.len()
    }

    /// Every stored ISM policy's body, as JSON text.
    pub fn policies(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.policies.values().map(|p| p.policy.to_string()).collect()
    }
}

/// What the AD plugin checks before it creates a detector: the same
/// refusals, asked of the real node where they depend on the data.
fn validate_detector(d: &Value, node: &NodeCall<'_>) -> Result<(), (u16, Value)> {
    let reason = |r: String| error(400, &r);
    for key in [
        "name",
        "time_field",
        "indices",
        "feature_attributes",
        "detection_interval",
    ] {
        if d.get(key).is_none() {
            return Err(reason(format!(
                "Failed to parse detector: {key} is missing"
            )));
        }
    }
    let features = d["feature_attributes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if features.is_empty() || features.len() > 5 {
        return Err(reason(format!(
            "Can't create more than 5 features; {} given",
            features.len()
        )));
    }
    let categories = d["category_field"].as_array().cloned().unwrap_or_default();
    if categories.len() > 2 {
        return Err(reason(
            "We only support filtering data by one categorical variable".into(),
        ));
    }
    let shingle = d["shingle_size"].as_u64().unwrap_or(8);
    if !(1..=128).contains(&shingle) {
        return Err(reason(format!("shingle size {shingle} is out of 1–128")));
    }
    if d["detection_interval"]["period"]["unit"] != "Minutes" {
        return Err(reason("detection interval unit must be Minutes".into()));
    }
    let index = d["indices"][0].as_str().unwrap_or("");
    let (_, count) = node("GET", &format!("/{index}/_count"), None);
    let count: Value = serde_json::from_slice(&count).unwrap_or(Value::Null);
    if count["count"].as_u64().unwrap_or(0) == 0 {
        return Err(reason(format!(
            "Can't create anomaly detector as no document is found in the indices: [{index}]"
        )));
    }
    let mapping_type = |field: &str| -> Option<String> {
        let (_, m) = node("GET", &format!("/{index}/_mapping/field/{field}"), None);
        let m: Value = serde_json::from_slice(&m).ok()?;
        // Across every index: one that maps it otherwise decides.
        let types: Vec<String> = m
            .as_object()?
            .values()
            .filter_map(|i| {
                i["mappings"][field]["mapping"]
                    .as_object()?
                    .values()
                    .next()?["type"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        types
            .iter()
            .find(|t| !matches!(t.as_str(), "keyword" | "date"))
            .or(types.first())
            .cloned()
    };
    let time_field = d["time_field"].as_str().unwrap_or("");
    if mapping_type(time_field).as_deref() != Some("date") {
        return Err(reason(format!(
            "Can't find time field {time_field} mapped as date"
        )));
    }
    for c in &categories {
        let c = c.as_str().unwrap_or("");
        match mapping_type(c).as_deref() {
            Some("keyword") | Some("ip") => {}
            None => return Err(reason(format!("Can't find the categorical field {c}"))),
            Some(other) => {
                return Err(reason(format!(
                    "Categorical field {c} must be of type keyword or ip; it is {other}"
                )))
            }
        }
    }
    if let Some(index) = d["result_index"].as_str() {
        if !index.starts_with(CUSTOM_RESULT_PREFIX) {
            return Err(reason(format!(
                "Custom result index must start with {CUSTOM_RESULT_PREFIX}: {index} is not a valid result index"
            )));
        }
    }
    // Recording 53: ZERO imputation with a shingle of 1 fails outright.
    if d["imputation_option"]["method"] == "ZERO" && shingle == 1 {
        return Err(reason(
            "imputation ZERO needs a shingle size above 1".into(),
        ));
    }
    for rule in d["rules"].as_array().into_iter().flatten() {
        if rule["action"] != "IGNORE_ANOMALY" {
            return Err(reason(format!("unknown rule action {}", rule["action"])));
        }
        for c in rule["conditions"].as_array().into_iter().flatten() {
            let known = [
                "ACTUAL_OVER_EXPECTED_MARGIN",
                "EXPECTED_OVER_ACTUAL_MARGIN",
                "ACTUAL_OVER_EXPECTED_RATIO",
                "EXPECTED_OVER_ACTUAL_RATIO",
                "ACTUAL_IS_OVER_EXPECTED",
                "ACTUAL_IS_BELOW_EXPECTED",
            ];
            if !known.iter().any(|k| c["threshold_type"] == *k) {
                return Err(reason(format!(
                    "unknown threshold type {}",
                    c["threshold_type"]
                )));
            }
            if !features
                .iter()
                .any(|f| f["feature_name"] == c["feature_name"])
            {
                return Err(reason(format!(
                    "rule names feature {} that the detector lacks",
                    c["feature_name"]
                )));
            }
        }
    }
    Ok(())
}

/// The refusal of a detector's name that exists (recording 10).
fn name_taken(s: &State, name: &str) -> bool {
    s.detectors.values().any(|d| d.body["name"] == name)
}

/// Whether the data behind a detector looks too sparse to train on, as the
/// plugin's model validation says (recording 13): fewer matching records
/// than the intervals a model needs.
fn looks_sparse(d: &Value, node: &NodeCall<'_>) -> bool {
    let index = d["indices"][0].as_str().unwrap_or("");
    let query =
        json!({"query": d.get("filter_query").cloned().unwrap_or(json!({"match_all": {}}))});
    let (_, count) = node("POST", &format!("/{index}/_count"), Some(&query));
    let count: Value = serde_json::from_slice(&count).unwrap_or(Value::Null);
    count["count"].as_u64().unwrap_or(0) < 128
}

/// How many entities of a high-cardinality detector have real-time results.
fn entities_with_results(id: &str, d: &Value, node: &NodeCall<'_>) -> u64 {
    let query = json!({"size": 0, "query": {"bool": {"filter": [{"term": {"detector_id": id}}],
        "must_not": [{"exists": {"field": "task_id"}}]}},
        "aggs": {"entities": {"cardinality": {"field": "model_id"}}}});
    let index = format!("{}*", result_index_of(d));
    let (_, answer) = node(
        "POST",
        &format!("/{index}/_search?ignore_unavailable=true&allow_no_indices=true"),
        Some(&query),
    );
    let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    answer["aggregations"]["entities"]["value"]
        .as_u64()
        .unwrap_or(0)
}

fn route(s: &mut State, r: &Request, node: &NodeCall<'_>) -> (u16, Value) {
    let path = r.path.split('?').next().unwrap_or("").to_owned();
    let query = r
        .path
        .split_once('?')
        .map(|(_, q)| q.to_owned())
        .unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let body = r.json();
    let m = r.method.as_str();
    match (m, parts.as_slice()) {
        // ---- anomaly detection
        ("GET", ["_plugins", "_anomaly_detection", "stats"]) => {
            let high = s
                .detectors
                .values()
                .filter(|d| d.body["detector_type"] == "MULTI_ENTITY")
                .count();
            (
                200,
                json!({"anomaly_detectors_index_status": "yellow", "anomaly_detection_state_status": "yellow",
                    "anomaly_detection_job_index_status": "yellow", "models_checkpoint_index_status": "yellow",
                    "anomaly_results_index_status": "yellow", "detector_count": s.detectors.len(),
                    "hc_detector_count": high, "single_stream_detector_count": s.detectors.len() - high,
                    "nodes": {"StandInNodeId0000000A": {"ad_execute_request_count": 0, "ad_model_corruption_count": 0, "models": [],
                        "ad_canceled_batch_task_count": 0, "ad_hc_execute_request_count": 0, "ad_hc_execute_failure_count": 0,
                        "model_count": 0, "ad_execute_failure_count": 0, "ad_batch_task_failure_count": 0,
                        "ad_total_batch_task_execution_count": 0, "ad_executing_batch_task_count": 0}}}),
            )
        }
        ("POST", ["_plugins", "_anomaly_detection", "detectors", "_search"]) => {
            if s.detectors.is_empty() {
                return error_of(
                    404,
                    "index_not_found_exception",
                    "no such index [.opendistro-anomaly-detectors]",
                );
            }
            // The stored document is the detector: `name.keyword` finds it.
            let (field, value) = term(&body).unwrap_or_default();
            let hits = s
                .detectors
                .iter()
                .filter(|(_, d)| matches!(field.as_str(), "name" | "name.keyword") && d.body["name"] == value)
                .map(|(id, d)| {
                    json!({"_index": ".opendistro-anomaly-detectors", "_id": id, "_version": d.version,
                        "_seq_no": d.seq_no, "_primary_term": 1, "_score": 1.0, "_source": d.body})
                })
                .collect();
            (200, search_answer(hits))
        }
        ("POST", ["_plugins", "_anomaly_detection", "detectors", "_validate", kind]) => {
            if *kind == "model" {
                return match validate_detector(&body, node) {
                    Err(_) => (200, json!({})),
                    Ok(()) if looks_sparse(&body, node) => (
                        200,
                        json!({"model": {"indices": {"message": "Source index data is potentially too sparse for model training. Consider changing interval length or ingesting more data"}}}),
                    ),
                    Ok(()) => (200, json!({})),
                };
            }
            let name = body["name"].as_str().unwrap_or("");
            if name_taken(s, name) {
                return (
                    200,
                    json!({"detector": {"name": {"message": format!("Cannot create anomaly detector with name [{name}] as it's already used by another detector")}}}),
                );
            }
            match validate_detector(&body, node) {
                Ok(()) => (200, json!({})),
                Err((_, e)) => {
                    let reason = e["error"]["reason"].as_str().unwrap_or("").to_owned();
                    let key = if reason.to_lowercase().contains("categorical") {
                        "category_field"
                    } else if reason.contains("time field") {
                        "time_field"
                    } else if reason.contains("result index") {
                        "result_index"
                    } else {
                        "indices"
                    };
                    (200, json!({"detector": {key: {"message": reason}}}))
                }
            }
        }
        ("POST", ["_plugins", "_anomaly_detection", "detectors"]) => {
            if let Err(e) = validate_detector(&body, node) {
                return e;
            }
            let name = body["name"].as_str().unwrap_or("");
            if name_taken(s, name) {
                return error(
                    400,
                    &format!("Cannot create anomaly detector with name [{name}] as it's already used by another detector"),
                );
            }
            let high = s
                .detectors
                .values()
                .filter(|d| d.body["detector_type"] == "MULTI_ENTITY")
                .count();
            if body["category_field"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
                && high >= 10
            {
                return error(
                    400,
                    "Can't create more than 10 multi-entity anomaly detectors.",
                );
            }
            if let Some(index) = body["result_index"].as_str() {
                if let Err(e) = ensure_result_index(index, node) {
                    return e;
                }
            }
            let id = s.new_id();
            let stored = stored_detector(s, &body);
            let seq_no = s.seq();
            s.detectors.insert(
                id.clone(),
                StoredDetector {
                    body: stored.clone(),
                    running: false,
                    version: 1,
                    seq_no,
                    realtime: None,
                },
            );
            (
                201,
                json!({"_id": id, "_version": 1, "_seq_no": seq_no, "anomaly_detector": stored, "_primary_term": 1}),
            )
        }
        ("GET", ["_plugins", "_anomaly_detection", "detectors", id]) => {
            let Some(d) = s.detectors.get(*id) else {
                return error(404, &format!("AnomalyDetector is not found with id: {id}"));
            };
            let mut answer = json!({"_id": id, "_version": d.version, "_primary_term": 1, "_seq_no": d.seq_no, "anomaly_detector": d.body});
            if query.contains("task=true") {
                if let Some((task, started)) = &d.realtime {
                    answer["realtime_task"] = json!({"task_id": task, "last_update_time": now_ms(), "started_by": "admin",
                        "error": "", "state": if d.running { "RUNNING" } else { "STOPPED" }, "task_progress": 0.0, "init_progress": 1.0,
                        "execution_start_time": started, "is_latest": true,
                        "task_type": if d.body["detector_type"] == "MULTI_ENTITY" { "REALTIME_HC_DETECTOR" } else { "REALTIME_SINGLE_ENTITY" },
                        "coordinating_node": "standin", "estimated_minutes_left": 0, "user": plugin_user(), "detector_id": id, "detector": d.body});
                }
                let task_time = s.task_time;
                if let Some(t) = s.tasks.iter().rev().find(|t| t.detector == *id) {
                    let finished = t.started.elapsed() >= task_time;
                    let progress =
                        (t.started.elapsed().as_secs_f64() / task_time.as_secs_f64()).min(1.0);
                    let mut task = json!({"task_id": t.id, "last_update_time": now_ms(), "started_by": "admin",
                        "state": if finished { "FINISHED" } else { "RUNNING" }, "task_progress": progress, "init_progress": 1.0,
                        "current_piece": t.to, "execution_start_time": t.started_ms, "is_latest": true,
                        "task_type": if d.body["detector_type"] == "MULTI_ENTITY" { "HISTORICAL_HC_DETECTOR" } else { "HISTORICAL_SINGLE_ENTITY" },
                        "coordinating_node": "standin", "worker_node": "standin", "user": plugin_user(), "detector_id": id,
                        "detection_date_range": {"start_time": t.from, "end_time": t.to}, "detector": d.body});
                    if finished {
                        task["execution_end_time"] =
                            json!(t.started_ms + task_time.as_millis() as i64);
                    }
                    answer["historical_analysis_task"] = task;
                }
            }
            (200, answer)
        }
        // A historical analysis: its task id, a slot while it runs; its
        // results are what the test wrote under that task id.
        ("POST", ["_plugins", "_anomaly_detection", "detectors", id, "_start"])
            if body.get("start_time").is_some() =>
        {
            let (Some(from), Some(to)) = (body["start_time"].as_i64(), body["end_time"].as_i64())
            else {
                return error(400, "start_time and end_time must be epoch milliseconds");
            };
            if to <= from {
                return error(400, "end_time must be after start_time");
            }
            if !s.detectors.contains_key(*id) {
                return error(404, &format!("AnomalyDetector is not found with id: {id}"));
            }
            if s.running_tasks() >= s.task_slots {
                return error(400, "No available task slot");
            }
            let task = s.new_id();
            let index = result_index_of(&s.detectors[*id].body);
            if let Err(e) = ensure_result_index(&index, node) {
                return e;
            }
            if let Some(docs) = s.historical_findings.get(*id) {
                let mut bulk = String::new();
                for doc in docs {
                    let mut doc = doc.clone();
                    doc["detector_id"] = json!(id);
                    doc["task_id"] = json!(task);
                    bulk.push_str(&json!({"index": {"_index": index}}).to_string());
                    bulk.push('\n');
                    bulk.push_str(&doc.to_string());
                    bulk.push('\n');
                }
                let _ = node("POST", "/_bulk?refresh=true", Some(&Value::String(bulk)));
            }
            s.tasks.push(HistoricalTask {
                id: task.clone(),
                detector: id.to_string(),
                from,
                to,
                started: Instant::now(),
                started_ms: now_ms(),
            });
            (200, json!({"_id": task}))
        }
        ("PUT", ["_plugins", "_anomaly_detection", "detectors", id]) => {
            let Some(old) = s.detectors.get(*id) else {
                return error(404, &format!("AnomalyDetector is not found with id: {id}"));
            };
            if old.running {
                return error(
                    400,
                    &format!("Detector is running. Please stop detector [{id}] before update"),
                );
            }
            if old.body["category_field"] != body["category_field"]
                && !(old.body["category_field"] == json!([])
                    && body.get("category_field").is_none())
            {
                return error(400, "Can't change detector category field");
            }
            if let Err(e) = validate_detector(&body, node) {
                return e;
            }
            let other = s
                .detectors
                .iter()
                .any(|(other, d)| other != id && d.body["name"] == body["name"]);
            if other {
                return error(
                    400,
                    "Cannot update anomaly detector: the name is used by another detector",
                );
            }
            if let Some(index) = body["result_index"].as_str() {
                if let Err(e) = ensure_result_index(index, node) {
                    return e;
                }
            }
            let stored = stored_detector(s, &body);
            let seq_no = s.seq();
            let d = s.detectors.get_mut(*id).expect("checked above");
            d.body = stored.clone();
            d.version += 1;
            d.seq_no = seq_no;
            (
                200,
                json!({"_id": id, "_version": d.version, "_seq_no": seq_no, "anomaly_detector": stored, "_primary_term": 1}),
            )
        }
        ("DELETE", ["_plugins", "_anomaly_detection", "detectors", id]) => {
            match s.detectors.get(*id) {
                Some(d) if d.running => error(400, "Detector job is running"),
                Some(d) => {
                    let version = d.version + 1;
                    s.detectors.remove(*id);
                    let seq_no = s.seq();
                    (
                        200,
                        json!({"_index": ".opendistro-anomaly-detectors", "_id": id, "_version": version, "result": "deleted",
                            "forced_refresh": true, "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": seq_no, "_primary_term": 1}),
                    )
                }
                None => error(404, &format!("AnomalyDetector is not found with id: {id}")),
            }
        }
        (
            "POST",
            ["_plugins", "_anomaly_detection", "detectors", id, action @ ("_start" | "_stop")],
        ) => {
            let Some(d) = s.detectors.get(*id) else {
                return error(404, &format!("AnomalyDetector is not found with id: {id}"));
            };
            if *action == "_stop" && !d.running {
                return error(400, "Detector job is already stopped");
            }
            let single = d.body["detector_type"] == "SINGLE_ENTITY";
            let starting = *action == "_start" && !d.running;
            let body = d.body.clone();
            let task = s.new_id();
            let d = s.detectors.get_mut(*id).expect("checked above");
            d.running = *action == "_start";
            if starting {
                d.realtime = Some((task, now_ms()));
                if single {
                    write_cold_start(id, &body, node);
                }
            }
            (200, json!({"_id": id}))
        }
        ("GET", ["_plugins", "_anomaly_detection", "detectors", id, "_profile", rest @ ..]) => {
            let Some(d) = s.detectors.get(*id) else {
                return error(404, &format!("AnomalyDetector is not found with id: {id}"));
            };
            let state = if d.running { "RUNNING" } else { "DISABLED" };
            let mut profile = if rest.first() == Some(&"state") {
                json!({"state": state})
            } else if d.body["detector_type"] == "MULTI_ENTITY" {
                // Initialising (recording 52) until its entities have
                // real-time results; then running, with as many entities.
                let entities = if d.running {
                    entities_with_results(id, &d.body, node)
                } else {
                    0
                };
                if entities > 0 {
                    json!({"state": "RUNNING", "coordinating_node": "standin", "total_size_in_bytes": 400768 * entities,
                        "init_progress": {"percentage": "100%"}, "total_entities": entities, "active_entities": entities})
                } else {
                    json!({"state": if d.running { "INIT" } else { "DISABLED" }, "coordinating_node": "standin", "total_size_in_bytes": 0,
                        "init_progress": {"percentage": "0%", "estimated_minutes_left": 320, "needed_shingles": 32},
                        "total_entities": 0, "active_entities": 0})
                }
            } else if d.running {
                json!({"state": state, "models": [{"model_id": format!("{id}_model_rcf_0"), "model_size_in_bytes": 400768, "node_id": "standin"}],
                    "coordinating_node": "standin", "total_size_in_bytes": 400768, "init_progress": {"percentage": "100%"}, "model_count": 1})
            } else {
                json!({"state": state})
            };
            if let Some(Value::Object(extra)) = s.profiles.get(*id) {
                for (k, v) in extra {
                    profile[k] = v.clone();
                }
            }
            (200, profile)
        }
        // The plugin searches its own result indices for the caller (it
        // sees them; a REST search of them does not).
        (
            "POST",
            ["_plugins", "_anomaly_detection", "detectors", "results", "_search", custom @ ..],
        ) => {
            let index = match custom.first() {
                Some(c) if query.contains("only_query_custom_result_index=true") => format!("{c}*"),
                Some(c) => format!(".opendistro-anomaly-results*,{c}*"),
                None => ".opendistro-anomaly-results*".into(),
            };
            let (status, answer) = node(
                "POST",
                &format!("/{index}/_search?ignore_unavailable=true&allow_no_indices=true"),
                Some(&body),
            );
            (
                status,
                serde_json::from_slice(&answer)
                    .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&answer)})),
            )
        }
        // ---- alerting
        ("POST", ["_plugins", "_alerting", "monitors", "_search"]) => {
            // The stored document is {"monitor": {...}}: the term must be
            // on `monitor.name.keyword`; each hit's `_source` is flat.
            let (field, value) = term(&body).unwrap_or_default();
            let hits = s
                .monitors
                .iter()
                .filter(|(_, mo)| {
                    matches!(field.as_str(), "monitor.name" | "monitor.name.keyword")
                        && mo.body["name"] == value
                })
                .map(|(id, mo)| {
                    json!({"_index": ".opendistro-alerting-config", "_id": id, "_version": mo.version,
                        "_seq_no": mo.seq_no, "_primary_term": 1, "_score": 1.0, "_source": visible(&mo.body, r)})
                })
                .collect();
            (200, search_answer(hits))
        }
        // An ad-hoc run of the monitor in the body, as Dashboards' "Send
        // test message" does: validated like a create, nothing stored.
        ("POST", ["_plugins", "_alerting", "monitors", "_execute"]) => {
            if let Err(e) = check_monitor(s, &body) {
                return e;
            }
            let monitor = stored_monitor(s, &body, None);
            let channels: BTreeMap<String, Value> = s
                .channels
                .iter()
                .map(|(k, c)| (k.clone(), c.config.clone()))
                .collect();
            execute(&monitor, &channels, &query, node).0
        }
        ("GET", ["_plugins", "_alerting", "monitors", "alerts"]) => {
            let id = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("monitorId="))
                .unwrap_or("");
            let alerts: Vec<Value> = s
                .alerts
                .iter()
                .filter(|(m, _)| m == id)
                .map(|(m, t)| json!({"monitor_id": m, "start_time": t, "state": "ACTIVE"}))
                .collect();
            (200, json!({"totalAlerts": alerts.len(), "alerts": alerts}))
        }
        ("GET", ["_plugins", "_alerting", "monitors", id]) => match s.monitors.get(*id) {
            Some(mo) => (
                200,
                json!({"_id": id, "_version": mo.version, "_seq_no": mo.seq_no, "_primary_term": 1,
                    "monitor": visible(&mo.body, r), "associated_workflows": []}),
            ),
            None => error(404, "Monitor not found."),
        },
        ("POST", ["_plugins", "_alerting", "monitors"])
        | ("PUT", ["_plugins", "_alerting", "monitors", _]) => {
            if let Err(e) = check_monitor(s, &body) {
                return e;
            }
            let (id, version, enabled_time) = match parts.get(3) {
                Some(id) => match s.monitors.get(*id) {
                    Some(old) => (
                        id.to_string(),
                        old.version + 1,
                        old.body["enabled_time"].as_i64(),
                    ),
                    None => return error(404, "Monitor not found."),
                },
                // The plugin does not refuse a second monitor of one name.
                None => (s.new_id(), 1, None),
            };
            let stored = stored_monitor(s, &body, enabled_time);
            let seq_no = s.seq();
            s.monitors.insert(
                id.clone(),
                StoredMonitor {
                    body: stored.clone(),
                    version,
                    seq_no,
                },
            );
            (
                if m == "POST" { 201 } else { 200 },
                json!({"_id": id, "_version": version, "_seq_no": seq_no, "_primary_term": 1, "monitor": stored}),
            )
        }
        ("POST", ["_plugins", "_alerting", "monitors", id, "_execute"]) => {
            let Some(monitor) = s.monitors.get(*id).map(|mo| mo.body.clone()) else {
                return error(404, "Monitor not found.");
            };
            let channels: BTreeMap<String, Value> = s
                .channels
                .iter()
                .map(|(k, c)| (k.clone(), c.config.clone()))
                .collect();
            let (answer, fired) = execute(&monitor, &channels, &query, node);
            if fired {
                let now = answer.1["period_end"].as_i64().unwrap_or(0);
                s.alerts.push((id.to_string(), now));
            }
            answer
        }
        ("DELETE", ["_plugins", "_alerting", "monitors", id]) => match s.monitors.remove(*id) {
            Some(mo) => (200, json!({"_id": id, "_version": mo.version + 1})),
            None => error(404, "Monitor not found."),
        },
        // ---- notifications
        ("GET", ["_plugins", "_notifications", "features"]) => (
            200,
            json!({"allowed_config_type_list": ["slack", "chime", "microsoft_teams", "webhook", "email", "sns", "ses_account", "smtp_account", "email_group"],
                "plugin_features": {"tooltip_support": "true"}}),
        ),
        ("GET", ["_plugins", "_notifications", "configs", id]) => match s.channels.get(*id) {
            Some(c) => (
                200,
                json!({"start_index": 0, "total_hits": 1, "total_hit_relation": "eq",
                    "config_list": [{"config_id": id, "last_updated_time_ms": c.created_ms, "created_time_ms": c.created_ms, "config": c.config}]}),
            ),
            None => error_of(
                404,
                "status_exception",
                &format!("NotificationConfig {id} not found"),
            ),
        },
        // The list is a search of an index refreshed every second: a
        // channel made less than a second ago is not in it yet.
        ("GET", ["_plugins", "_notifications", "configs"]) => {
            let kind = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("config_type="))
                .map(str::to_owned);
            let list: Vec<Value> = s
                .channels
                .iter()
                .filter(|(_, c)| c.created.elapsed() >= Duration::from_secs(1))
                .filter(|(_, c)| kind.as_ref().is_none_or(|k| c.config["config_type"] == *k))
                .map(|(id, c)| json!({"config_id": id, "last_updated_time_ms": c.created_ms, "created_time_ms": c.created_ms, "config": c.config}))
                .collect();
            (
                200,
                json!({"start_index": 0, "total_hits": list.len(), "total_hit_relation": "eq", "config_list": list}),
            )
        }
        ("POST", ["_plugins", "_notifications", "configs"])
        | ("PUT", ["_plugins", "_notifications", "configs", _]) => {
            let mut config = body["config"].clone();
            let kind = config["config_type"].as_str().unwrap_or("").to_owned();
            let ok = match kind.as_str() {
                "slack" | "chime" | "webhook" => config[&kind]["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("http")),
                "sns" => config["sns"]["topic_arn"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("arn:aws:sns:")),
                _ => false,
            };
            if !ok || config["name"].as_str().is_none() {
                return error(400, &format!("Invalid {kind} config"));
            }
            if kind == "webhook" {
                let w = &mut config["webhook"];
                if w.get("header_params").is_none() {
                    w["header_params"] = json!({});
                }
                if w.get("method").is_none() {
                    w["method"] = json!("POST");
                }
            }
            let id = parts
                .get(4)
                .map(|s| s.to_string())
                .or_else(|| body["config_id"].as_str().map(str::to_owned))
                .unwrap_or_else(|| s.new_id());
            if m == "POST" && s.channels.contains_key(&id) {
                return error_of(
                    409,
                    "version_conflict_engine_exception",
                    &format!(
                        "[{id}]: version conflict, document already exists (current version [1])"
                    ),
                );
            }
            s.channels.insert(
                id.clone(),
                StoredChannel {
                    config,
                    created: Instant::now(),
                    created_ms: now_ms(),
                },
            );
            (200, json!({"config_id": id}))
        }
        ("DELETE", ["_plugins", "_notifications", "configs", id]) => match s.channels.remove(*id) {
            Some(_) => (200, json!({"delete_response_list": {*id: "OK"}})),
            None => error_of(
                404,
                "status_exception",
                &format!("NotificationConfig {id} not found"),
            ),
        },
        // ---- index state management
        ("GET", ["_plugins", "_ism", "policies"]) => {
            let list: Vec<Value> = s
                .policies
                .iter()
                .map(|(id, p)| json!({"_id": id, "_seq_no": p.seq_no, "_primary_term": 1, "policy": p.policy}))
                .collect();
            (
                200,
                json!({"policies": list, "total_policies": s.policies.len()}),
            )
        }
        ("GET", ["_plugins", "_ism", "policies", id]) => match s.policies.get(*id) {
            Some(p) => (
                200,
                json!({"_id": id, "_version": p.version, "_seq_no": p.seq_no, "_primary_term": 1, "policy": p.policy}),
            ),
            None => error(404, "Policy not found"),
        },
        ("PUT", ["_plugins", "_ism", "policies", id]) => {
            let p = &body["policy"];
            let states: Vec<&str> = p["states"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|st| st["name"].as_str())
                .collect();
            if !states.contains(&p["default_state"].as_str().unwrap_or("")) {
                return error(400, "Policy default_state must be one of its states");
            }
            let bad = p["states"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|st| st["transitions"].as_array().cloned().unwrap_or_default())
                .any(|t| !states.contains(&t["state_name"].as_str().unwrap_or("")));
            if bad {
                return error(400, "a transition names a state the policy lacks");
            }
            let version = match s.policies.get(*id) {
                Some(old) => {
                    let wanted = format!("if_seq_no={}", old.seq_no);
                    if !query.split('&').any(|kv| kv == wanted)
                        || !query.contains("if_primary_term=1")
                    {
                        let reason = format!(
                            "[{id}]: version conflict, required seqNo [{}], primary term [1]. current document has seqNo [{}] and primary term [1]",
                            old.seq_no, old.seq_no
                        );
                        let cause = json!({"type": "version_conflict_engine_exception", "reason": reason,
                            "index": ".opendistro-ism-config", "shard": "0", "index_uuid": "StandInIsmConfigIndex0"});
                        return (
                            409,
                            json!({"error": {"root_cause": [cause], "type": "version_conflict_engine_exception",
                            "reason": reason, "index": ".opendistro-ism-config", "shard": "0", "index_uuid": "StandInIsmConfigIndex0"}, "status": 409}),
                        );
                    }
                    old.version + 1
                }
                None => 1,
            };
            let now = now_ms();
            let mut stored = p.clone();
            stored["policy_id"] = json!(id);
            stored["last_updated_time"] = json!(now);
            stored["schema_version"] = json!(21);
            stored["error_notification"] = Value::Null;
            for st in stored["states"].as_array_mut().into_iter().flatten() {
                for a in st["actions"].as_array_mut().into_iter().flatten() {
                    if a.get("retry").is_none() {
                        a["retry"] = json!({"count": 3, "backoff": "exponential", "delay": "1m"});
                    }
                }
            }
            for t in stored["ism_template"].as_array_mut().into_iter().flatten() {
                t["last_updated_time"] = json!(now);
            }
            let seq_no = s.seq();
            s.policies.insert(
                id.to_string(),
                StoredPolicy {
                    policy: stored.clone(),
                    version,
                    seq_no,
                },
            );
            (
                if version == 1 { 201 } else { 200 },
                json!({"_id": id, "_version": version, "_primary_term": 1, "_seq_no": seq_no, "policy": {"policy": stored}}),
            )
        }
        ("DELETE", ["_plugins", "_ism", "policies", id]) => match s.policies.remove(*id) {
            Some(p) => (
                200,
                json!({"_index": ".opendistro-ism-config", "_id": id, "_version": p.version + 1, "result": "deleted",
                    "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": s.next_seq + 1, "_primary_term": 1}),
            ),
            None => error(404, "Policy not found"),
        },
        _ => error_of(
            400,
            "illegal_argument_exception",
            &format!("no handler found for uri [{}] and method [{m}]", r.path),
        ),
    }
}

/// What the alerting plugin does on `_execute`: each input's search run on
/// the real node with `{{period_end}}` filled in; each trigger's painless
/// condition as its adTriggerMetadata says (no painless here); for a trigger that
/// fires (and not `dryrun=true`), each action's mustache message rendered
/// and sent to its channel (a webhook gets it as its POST body).
fn execute(
    monitor: &Value,
    channels: &BTreeMap<String, Value>,
    query: &str,
    node: &NodeCall<'_>,
) -> ((u16, Value), bool) {
    let mut fired = false;
    let answer = execute_inner(monitor, channels, query, node, &mut fired);
    let dry_run = query.contains("dryrun=true");
    (answer, fired && !dry_run)
}

/// What the alerting plugin refuses of a monitor body.
fn check_monitor(s: &State, body: &Value) -> Result<(), (u16, Value)> {
    if body["monitor_type"] != "query_level_monitor" {
        return Err(error(
            400,
            "monitor_type must be query_level_monitor for this monitor",
        ));
    }
    for t in body["triggers"].as_array().into_iter().flatten() {
        let t = &t["query_level_trigger"];
        if t["condition"]["script"]["source"].as_str().is_none() {
            return Err(error(400, "a query-level trigger needs a script condition"));
        }
        for a in t["actions"].as_array().into_iter().flatten() {
            let id = a["destination_id"].as_str().unwrap_or("");
            if !s.channels.contains_key(id) {
                return Err(error(400, &format!("Config {id} not found")));
            }
        }
    }
    Ok(())
}

fn execute_inner(
    monitor: &Value,
    channels: &BTreeMap<String, Value>,
    query: &str,
    node: &NodeCall<'_>,
    fired: &mut bool,
) -> (u16, Value) {
    let period_end = now_ms();
    let mut results = Vec::new();
    for input in monitor["inputs"].as_array().into_iter().flatten() {
        let search = &input["search"];
        let text = search["query"]
            .to_string()
            .replace("{{period_end}}", &period_end.to_string());
        let body: Value = serde_json::from_str(&text).unwrap();
        let indices: Vec<&str> = search["indices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_str())
            .collect();
        // The plugin searches in its own context: system indices too.
        let (status, answer) = node(
            "POST",
            &format!(
                "/{}/_search?ignore_unavailable=true&allow_no_indices=true",
                indices.join(",")
            ),
            Some(&body),
        );
        if status != 200 {
            return error(
                500,
                &format!(
                    "the monitor's search failed: {}",
                    String::from_utf8_lossy(&answer)
                ),
            );
        }
        results.push(serde_json::from_slice::<Value>(&answer).unwrap());
    }
    let minutes = monitor["schedule"]["period"]["interval"]
        .as_i64()
        .unwrap_or(1);
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let ctx = json!({"monitor": {"name": monitor["name"]}, "results": results,
        "periodStart": iso(period_end - minutes * 60_000), "periodEnd": iso(period_end)});
    let dry_run = query.contains("dryrun=true");
    let mut trigger_results = serde_json::Map::new();
    for t in monitor["triggers"].as_array().into_iter().flatten() {
        let t = &t["query_level_trigger"];
        // The integ-test-zip has no painless (the lang-painless module is not
        // served as a zip): the condition is evaluated as the AD trigger
        // Dashboards shows means it, from the trigger's adTriggerMetadata;
        // a test run's `return true` is true.
        let source = t["condition"]["script"]["source"].as_str().unwrap_or("");
        let triggered = if source.trim() == "return true" {
            true
        } else {
            let meta = &monitor["ui_metadata"]["triggers"][t["name"].as_str().unwrap_or("")]
                ["adTriggerMetadata"];
            let (Some(min_grade), Some(min_confidence)) = (
                meta["anomalyGrade"]["value"].as_f64(),
                meta["anomalyConfidence"]["value"].as_f64(),
            ) else {
                return error(
                    400,
                    "the trigger has no adTriggerMetadata with grade and confidence",
                );
            };
            let first = &ctx["results"][0];
            let grade = first["aggregations"]["max_anomaly_grade"]["value"].as_f64();
            let confidence = first["hits"]["hits"][0]["_source"]["confidence"].as_f64();
            first["hits"]["total"]["value"].as_u64().unwrap_or(0) > 0
                && grade.is_some_and(|g| g > min_grade)
                && confidence.is_some_and(|c| c > min_confidence)
        };
        *fired |= triggered;
        let mut action_results = serde_json::Map::new();
        if triggered {
            for a in t["actions"].as_array().into_iter().flatten() {
                let render_of = |key: &str| {
                    render(
                        a[key]["source"].as_str().unwrap_or(""),
                        &json!({"ctx": ctx}),
                    )
                };
                let (subject, message) =
                    (render_of("subject_template"), render_of("message_template"));
                let channel_id = a["destination_id"].as_str().unwrap_or("");
                let channel = &channels[channel_id];
                let mut output = json!({"subject": subject, "message": message});
                let mut failure = Value::Null;
                if !dry_run {
                    if let Some(url) = channel["webhook"]["url"].as_str() {
                        let status = post_webhook(url, &message);
                        if status == 0 {
                            failure = json!(format!(
                                "Failed to send the notification: cannot connect to {url}"
                            ));
                        }
                        output["messageId"] = json!(json!({"event_source": {"title": subject, "reference_id": channel_id, "severity": "info", "tags": []},
                            "status_list": [{"config_id": channel_id, "config_type": "webhook", "config_name": channel["name"],
                                "email_recipient_status": [], "delivery_status": {"status_code": status.to_string(), "status_text": ""}}]}).to_string());
                    }
                }
                let id = a["id"].as_str().unwrap_or("").to_owned();
                action_results.insert(
                    id.clone(),
                    json!({"id": id, "name": a["name"], "output": output,
                    "throttled": false, "executionTime": now_ms(), "error": failure}),
                );
            }
        }
        let id = t["id"].as_str().unwrap_or("").to_owned();
        trigger_results.insert(id, json!({"name": t["name"], "triggered": triggered, "action_results": action_results, "error": null}));
    }
    (
        200,
        json!({"monitor_name": monitor["name"], "period_start": period_end - minutes * 60_000, "period_end": period_end,
            "error": null, "input_results": {"results": ctx["results"], "error": null}, "trigger_results": trigger_results}),
    )
}

/// The alerting plugin's mustache for the tags it uses: `{{a.b.0.c}}`.
pub fn render(template: &str, ctx: &Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let mut node = ctx;
        for part in rest[start + 2..start + len].trim().split('.') {
            node = match part.parse::<usize>() {
                Ok(i) => &node[i],
                Err(_) => &node[part],
            };
        }
        match node {
            Value::String(s) => out.push_str(s),
            Value::Null => {}
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// POSTs a message to a plain-HTTP webhook; its status.
fn post_webhook(url: &str, message: &str) -> u16 {
    let rest = url.trim_start_matches("http://");
    let (addr, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = write!(stream, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{message}", message.len());
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
