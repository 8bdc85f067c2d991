//! A scripted stand-in for the OpenSearch plugins Maven Central does not
//! serve here (anomaly detection, alerting, notifications, ISM), in front of
//! the suite's real node: their paths are answered from memory, following
//! `../shared/reference/` and refusing what the plugins refuse; every other
//! path (the core API, the security plugin) goes to the real node with the
//! caller's credentials. Facts the plugins check against the cluster (a
//! category field mapped as keyword, documents in the indices) are asked of
//! the real node. `_execute` runs a monitor: its search on the real node,
//! its trigger from the AD trigger metadata, its action to the channel.
//! Every request is logged, and `fail_after` makes one plugin write answer
//! 503 (a cluster failing half-way).

use std::collections::BTreeMap;

use super::wire::{read_request, respond, Request};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// A request to the real node: method, path, JSON body; status and body.
type NodeCall<'a> = dyn Fn(&str, &str, Option<&Value>) -> (u16, Vec<u8>) + 'a;

#[derive(Default)]
struct State {
    detectors: BTreeMap<String, (Value, bool)>,
    monitors: BTreeMap<String, Value>,
    channels: BTreeMap<String, Value>,
    policies: BTreeMap<String, (Value, u64)>,
    /// Alerts of saved monitors that triggered: (monitor id, start ms).
    alerts: Vec<(String, i64)>,
    /// Profile fields a test sets for a detector id, over the state.
    profiles: BTreeMap<String, Value>,
    /// Historical analyses: detector id -> (task id, start ms, end ms).
    tasks: BTreeMap<String, (String, i64, i64)>,
    next_id: u64,
    /// Writes to let through before the one that fails (`None`: fail none).
    fail_after: Option<usize>,
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

fn error(status: u16, reason: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {"root_cause": [{"type": "status_exception", "reason": reason}], "type": "status_exception", "reason": reason}, "status": status}),
    )
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
                        let node = |method: &str, path: &str, body: Option<&Value>| {
                            let body = body.map(|b| b.to_string().into_bytes());
                            let content_type = body.as_ref().map(|_| "application/json");
                            pass(method, path, content_type, body.unwrap_or_default())
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
            .find(|(d, _)| d["name"] == name)
            .cloned()
    }

    /// The plugin id of the detector named `name`.
    pub fn detector_id(&self, name: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .detectors
            .iter()
            .find(|(_, (d, _))| d["name"] == name)
            .map(|(id, _)| id.clone())
    }

    /// The plugin id of the monitor named `name`.
    pub fn monitor_id(&self, name: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .monitors
            .iter()
            .find(|(_, m)| m["name"] == name)
            .map(|(id, _)| id.clone())
    }

    pub fn monitor(&self, name: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .monitors
            .values()
            .find(|m| m["name"] == name)
            .cloned()
    }

    /// Makes the detector's profile say these fields too (an
    /// initialising state, an error, a number of entities).
    pub fn set_profile(&self, name: &str, fields: Value) {
        let id = self.detector_id(name).expect("a detector of that name");
        self.state.lock().unwrap().profiles.insert(id, fields);
    }

    /// The task id of the detector's historical analysis, once started.
    pub fn task_id(&self, name: &str) -> String {
        let id = self.detector_id(name).expect("a detector of that name");
        format!("task-{id}")
    }

    pub fn channel_count(&self) -> usize {
        self.state.lock().unwrap().channels.len()
    }

    /// Every stored ISM policy's body, as JSON text.
    pub fn policies(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.policies.values().map(|(p, _)| p.to_string()).collect()
    }
}

fn hits(items: Vec<(String, Value)>) -> Value {
    let hits: Vec<Value> = items
        .into_iter()
        .map(|(id, source)| json!({"_id": id, "_source": source}))
        .collect();
    json!({"hits": {"total": {"value": hits.len()}, "hits": hits}})
}

/// The term a search asks for: `(field, value)`.
fn term(query: &Value) -> Option<(String, String)> {
    let t = query["query"]["term"].as_object()?;
    let (k, v) = t.iter().next()?;
    let v = v.get("value").unwrap_or(v);
    Some((k.clone(), v.as_str()?.to_owned()))
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
            other => {
                return Err(reason(format!(
                    "Categorical field {c} must be of type keyword or ip; it is {}",
                    other.unwrap_or("not mapped")
                )))
            }
        }
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
    let new_id = |s: &mut State| {
        s.next_id += 1;
        format!("id{:06}", s.next_id)
    };
    match (m, parts.as_slice()) {
        // ---- anomaly detection
        ("GET", ["_plugins", "_anomaly_detection", "stats"]) => {
            (200, json!({"anomaly_detectors_index_status": "green"}))
        }
        ("POST", ["_plugins", "_anomaly_detection", "detectors", "_search"]) => {
            if s.detectors.is_empty() {
                return error(404, "no such index [.opendistro-anomaly-detectors]");
            }
            let (_, value) = term(&body).unwrap_or_default();
            (
                200,
                hits(
                    s.detectors
                        .iter()
                        .filter(|(_, (d, _))| d["name"] == value)
                        .map(|(id, (d, _))| (id.clone(), d.clone()))
                        .collect(),
                ),
            )
        }
        ("POST", ["_plugins", "_anomaly_detection", "detectors", "_validate", "detector"]) => {
            match validate_detector(&body, node) {
                Ok(()) => (200, json!({})),
                Err((_, e)) => {
                    let reason = e["error"]["reason"].as_str().unwrap_or("").to_owned();
                    let key = if reason.contains("Categorical") {
                        "category_field"
                    } else if reason.contains("time field") {
                        "time_field"
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
            if s.detectors.values().any(|(d, _)| d["name"] == body["name"]) {
                return error(400, &format!("Cannot create anomaly detector with name [{}] as it's already used by detector", body["name"].as_str().unwrap_or("")));
            }
            let high = s
                .detectors
                .values()
                .filter(|(d, _)| {
                    d["category_field"]
                        .as_array()
                        .is_some_and(|c| !c.is_empty())
                })
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
            let id = new_id(s);
            s.detectors.insert(id.clone(), (body, false));
            (201, json!({"_id": id, "_version": 1}))
        }
        ("GET", ["_plugins", "_anomaly_detection", "detectors", id]) => {
            match s.detectors.get(*id) {
                Some((d, _)) => {
                    let mut answer = json!({"_id": id, "anomaly_detector": d});
                    if let (true, Some((task, from, to))) =
                        (query.contains("task=true"), s.tasks.get(*id))
                    {
                        answer["historical_analysis_task"] = json!({"task_id": task, "state": "FINISHED",
                            "task_progress": 1.0, "detection_date_range": {"start_time": from, "end_time": to}});
                    }
                    (200, answer)
                }
                None => error(404, "AnomalyDetector is not found"),
            }
        }
        // A historical analysis: no model runs here, so it finishes at
        // once; its results are what the test wrote under its task id.
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
                return error(404, "AnomalyDetector is not found");
            }
            let task = format!("task-{id}");
            s.tasks.insert(id.to_string(), (task.clone(), from, to));
            (200, json!({"_id": task}))
        }
        ("PUT", ["_plugins", "_anomaly_detection", "detectors", id]) => {
            let Some((old, running)) = s.detectors.get(*id).cloned() else {
                return error(404, "AnomalyDetector is not found");
            };
            if running {
                return error(
                    400,
                    &format!("Detector is running. Please stop detector [{id}] before update"),
                );
            }
            if old["category_field"] != body["category_field"] {
                return error(400, "Can't change detector category field");
            }
            if let Err(e) = validate_detector(&body, node) {
                return e;
            }
            s.detectors.insert(id.to_string(), (body, false));
            (200, json!({"_id": id}))
        }
        ("DELETE", ["_plugins", "_anomaly_detection", "detectors", id]) => {
            match s.detectors.get(*id) {
                Some((_, true)) => error(400, "Detector job is running"),
                Some(_) => {
                    s.detectors.remove(*id);
                    (200, json!({"result": "deleted"}))
                }
                None => error(404, "AnomalyDetector is not found"),
            }
        }
        (
            "POST",
            ["_plugins", "_anomaly_detection", "detectors", id, action @ ("_start" | "_stop")],
        ) => match s.detectors.get_mut(*id) {
            Some(entry) => {
                if *action == "_stop" && !entry.1 {
                    return error(400, "Detector job is already stopped");
                }
                entry.1 = *action == "_start";
                (200, json!({"_id": id}))
            }
            None => error(404, "AnomalyDetector is not found"),
        },
        ("GET", ["_plugins", "_anomaly_detection", "detectors", id, "_profile", ..]) => {
            match s.detectors.get(*id) {
                Some((_, running)) => {
                    let mut profile =
                        json!({"state": if *running { "RUNNING" } else { "DISABLED" }});
                    if let Some(Value::Object(extra)) = s.profiles.get(*id) {
                        for (k, v) in extra {
                            profile[k] = v.clone();
                        }
                    }
                    (200, profile)
                }
                None => error(404, "AnomalyDetector is not found"),
            }
        }
        // The plugin searches its result indices for the caller.
        ("POST", ["_plugins", "_anomaly_detection", "detectors", "results", "_search"]) => {
            let (status, answer) =
                node("POST", "/.opendistro-anomaly-results*/_search", Some(&body));
            (
                status,
                serde_json::from_slice(&answer)
                    .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&answer)})),
            )
        }
        // ---- alerting
        ("POST", ["_plugins", "_alerting", "monitors", "_search"]) => {
            let (_, value) = term(&body).unwrap_or_default();
            (
                200,
                hits(
                    s.monitors
                        .iter()
                        .filter(|(_, mo)| mo["name"] == value)
                        .map(|(id, mo)| (id.clone(), json!({"monitor": mo})))
                        .collect(),
                ),
            )
        }
        // An ad-hoc run of the monitor in the body, as Dashboards' "Send
        // test message" does: validated like a create, nothing stored.
        ("POST", ["_plugins", "_alerting", "monitors", "_execute"]) => {
            if let Err(e) = check_monitor(s, &body) {
                return e;
            }
            let channels = s.channels.clone();
            execute(&body, &channels, &query, node).0
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
        ("POST", ["_plugins", "_alerting", "monitors"])
        | ("PUT", ["_plugins", "_alerting", "monitors", _]) => {
            if let Err(e) = check_monitor(s, &body) {
                return e;
            }
            let id = match parts.get(3) {
                Some(id) if s.monitors.contains_key(*id) => id.to_string(),
                Some(_) => return error(404, "Monitor not found"),
                None => new_id(s),
            };
            s.monitors.insert(id.clone(), body);
            (if m == "POST" { 201 } else { 200 }, json!({"_id": id}))
        }
        ("POST", ["_plugins", "_alerting", "monitors", id, "_execute"]) => {
            let Some(monitor) = s.monitors.get(*id).cloned() else {
                return error(404, "Monitor not found");
            };
            let channels = s.channels.clone();
            let (answer, fired) = execute(&monitor, &channels, &query, node);
            if fired {
                let now = answer.1["period_end"].as_i64().unwrap_or(0);
                s.alerts.push((id.to_string(), now));
            }
            answer
        }
        ("DELETE", ["_plugins", "_alerting", "monitors", id]) => match s.monitors.remove(*id) {
            Some(_) => (200, json!({"result": "deleted"})),
            None => error(404, "Monitor not found"),
        },
        // ---- notifications
        ("GET", ["_plugins", "_notifications", "features"]) => (
            200,
            json!({"allowed_config_type_list": ["slack", "chime", "webhook", "sns"]}),
        ),
        ("GET", ["_plugins", "_notifications", "configs", id]) => match s.channels.get(*id) {
            Some(c) => (
                200,
                json!({"config_list": [{"config_id": id, "config": c}], "total_hits": 1}),
            ),
            None => error(404, &format!("NotificationConfig {id} not found")),
        },
        ("POST", ["_plugins", "_notifications", "configs"])
        | ("PUT", ["_plugins", "_notifications", "configs", _]) => {
            let config = &body["config"];
            let kind = config["config_type"].as_str().unwrap_or("");
            let ok = match kind {
                "slack" | "chime" | "webhook" => config[kind]["url"]
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
            let id = parts
                .get(4)
                .map(|s| s.to_string())
                .or_else(|| body["config_id"].as_str().map(str::to_owned))
                .unwrap_or_else(|| new_id(s));
            if m == "POST" && s.channels.contains_key(&id) {
                return error(
                    409,
                    &format!(
                        "version conflict, document already exists (current version [1]) [{id}]"
                    ),
                );
            }
            s.channels.insert(id.clone(), config.clone());
            (
                if m == "POST" { 201 } else { 200 },
                json!({"config_id": id}),
            )
        }
        ("DELETE", ["_plugins", "_notifications", "configs", id]) => match s.channels.remove(*id) {
            Some(_) => (200, json!({"delete_response_list": {*id: "OK"}})),
            None => error(404, &format!("NotificationConfig {id} not found")),
        },
        // ---- index state management
        ("GET", ["_plugins", "_ism", "policies"]) => (
            200,
            json!({"policies": [], "total_policies": s.policies.len()}),
        ),
        ("GET", ["_plugins", "_ism", "policies", id]) => match s.policies.get(*id) {
            Some((p, seq)) => (
                200,
                json!({"_id": id, "_seq_no": seq, "_primary_term": 1, "policy": p}),
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
            let seq = match s.policies.get(*id) {
                Some((_, seq)) => {
                    if !query.contains(&format!("if_seq_no={seq}")) {
                        return error(
                            409,
                            &format!("[{id}]: version conflict, document already exists"),
                        );
                    }
                    seq + 1
                }
                None => 0,
            };
            s.policies.insert(id.to_string(), (p.clone(), seq));
            (
                if seq == 0 { 201 } else { 200 },
                json!({"_id": id, "_seq_no": seq, "_primary_term": 1}),
            )
        }
        ("DELETE", ["_plugins", "_ism", "policies", id]) => match s.policies.remove(*id) {
            Some(_) => (200, json!({"result": "deleted"})),
            None => error(404, "Policy not found"),
        },
        _ => error(
            400,
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
    if body["type"] != "monitor" || body["monitor_type"] != "query_level_monitor" {
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
    let text = body["inputs"].to_string();
    let known = s
        .detectors
        .keys()
        .any(|id| text.contains(&format!("\"{id}\"")));
    if !known {
        return Err(error(400, "the monitor's input names no existing detector"));
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
    let period_end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
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
        let (status, answer) = node(
            "POST",
            &format!("/{}/_search", indices.join(",")),
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
    for (n, t) in monitor["triggers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
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
            for (k, a) in t["actions"].as_array().into_iter().flatten().enumerate() {
                let message = render(
                    a["message_template"]["source"].as_str().unwrap_or(""),
                    &json!({"ctx": ctx}),
                );
                let channel = &channels[a["destination_id"].as_str().unwrap_or("")];
                let mut sent = Value::Null;
                if !dry_run {
                    if let Some(url) = channel["webhook"]["url"].as_str() {
                        sent = json!(post_webhook(url, &message));
                    }
                }
                action_results.insert(format!("action-{k}"), json!({"name": a["name"], "output": {"message": message}, "sent_status": sent, "throttled": false, "error": null}));
            }
        }
        trigger_results.insert(format!("trigger-{n}"), json!({"name": t["name"], "triggered": triggered, "error": null, "action_results": action_results}));
    }
    (
        200,
        json!({"monitor_name": monitor["name"], "period_start": period_end - minutes * 60_000, "period_end": period_end, "input_results": {"results": ctx["results"], "error": null}, "trigger_results": trigger_results}),
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
