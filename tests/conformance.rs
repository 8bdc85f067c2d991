//! The plugin stand-in (`util::plugins`) against what the real plugins
//! answered: every exchange recorded in
//! `../shared/reference/opensearch-2.19.4-plugins/` is replayed, in file
//! order, against the stand-in in front of the suite's real node, and the
//! answer must have the recorded status and the recorded shape: the same
//! keys, with values of the same JSON types (ids, times and versions
//! aside; an array's first element stands for the rest; a map keyed by ids
//! is compared value to value). A recording added to the folder is picked
//! up without a change here.
//!
//! The world the recordings were made in is made again first: trailwatch's
//! own objects applied, with the recorded webhook channel. Ids the real
//! plugins gave are mapped to the stand-in's as answers reveal them (an
//! `_id`, a `task_id`, a `pit_id`, a `_seq_no` at the same place in both
//! answers), or by the object's name; an id that nothing names stands for
//! a detector of the same kind (single-stream or high-cardinality). What a
//! recorded answer presupposes is arranged before the request: a detector
//! running before it is stopped, an object updated that the session had
//! made, a historical analysis finished before it is read, every task slot
//! busy before a start is refused for want of one.

use crate::util::node::{block_on, node, ADMIN_PASSWORD};
use crate::util::plugins::Plugins;
use crate::util::{node_lock, root, run_trailwatch, stderr, stdout};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;
use trailwatch::opensearch::{Auth, OpenSearch, Target};

const RECORDINGS: &str = "../shared/reference/opensearch-2.19.4-plugins";

/// The webhook the recorded cluster's channel sent to.
const RECORDED_HOOK: &str = "127.0.0.1:18777";

/// Keys whose values are ids the two servers choose apart.
const ID_KEYS: [&str; 6] = [
    "_id",
    "detector_id",
    "config_id",
    "task_id",
    "pit_id",
    "_seq_no",
];

/// A recorded exchange.
struct Recording {
    file: String,
    method: String,
    path: String,
    user_agent: Option<String>,
    body: Option<Value>,
    status: u16,
    answer: Value,
    /// The whole file, to find names and kinds in.
    text: String,
}

fn recordings() -> (Vec<Recording>, usize) {
    let dir = root().join(RECORDINGS);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut experiments = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        // An experiment (several runs summarised) has no one request.
        let Some(request) = v.get("request").filter(|r| r["method"].is_string()) else {
            experiments += 1;
            continue;
        };
        let headers = request["headers"].as_object().cloned().unwrap_or_default();
        let user_agent = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
            .and_then(|(_, v)| v.as_str().map(str::to_owned));
        out.push(Recording {
            file,
            method: request["method"].as_str().unwrap().to_owned(),
            path: request["path"].as_str().unwrap().to_owned(),
            user_agent,
            body: request.get("body").filter(|b| !b.is_null()).cloned(),
            status: v["response"]["status"].as_u64().unwrap() as u16,
            answer: v["response"]["body"].clone(),
            text,
        });
    }
    (out, experiments)
}

/// Keys of trailwatch's own objects that trailwatch renders otherwise
/// since the recordings were made, on purpose: an answer that echoes our
/// object may have them, or lack them, where the recording did not.
const CHANGED_SINCE_RECORDED: [(&str, &str); 6] = [
    (
        "result_index",
        "the detectors write to a custom result index (issue 29, item 7)",
    ),
    (
        "result_index_min_age",
        "the custom result index rolls over daily",
    ),
    (
        "result_index_ttl",
        "the custom result index is kept --index-retention-days",
    ),
    (
        "imputation_option",
        "imputation follows the series: none for sparse rising series",
    ),
    (
        "must_not",
        "the monitors watch real-time results only (not a backtest's)",
    ),
    (
        "resultIndex",
        "Dashboards is told the monitor's custom result index",
    ),
];

/// A value the recorder cut short (`"<… trimmed>"`): anything matches it.
fn trimmed(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with('<') && s.contains("trimmed"))
}

/// Keys that look like ids (a node's, a trigger's, an action's): an object
/// keyed by them is a map, compared value to value.
fn id_like(key: &str) -> bool {
    key.len() >= 16
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && key.chars().any(|c| c.is_ascii_uppercase())
        && key.chars().any(|c| c.is_ascii_lowercase())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where `actual`'s shape differs from `recorded`'s, as `path: what`
/// lines; ids met on the way are learnt into `ids` (recorded -> ours).
fn shape(
    at: &str,
    recorded: &Value,
    actual: &Value,
    ids: &mut BTreeMap<String, String>,
    out: &mut Vec<String>,
) {
    if trimmed(recorded) {
        return;
    }
    match (recorded, actual) {
        (Value::Object(r), Value::Object(a)) => {
            if !r.is_empty() && r.keys().all(|k| id_like(k)) {
                if let (Some(rv), Some(av)) = (r.values().next(), a.values().next()) {
                    shape(&format!("{at}.<id>"), rv, av, ids, out);
                }
                return;
            }
            let ours = |k: &str| CHANGED_SINCE_RECORDED.iter().any(|(key, _)| *key == k);
            // A hit of a data index (the records, not a plugin's index):
            // its document is the test's data, not the server's shape.
            let data_hit = r
                .get("_index")
                .and_then(Value::as_str)
                .is_some_and(|i| i.starts_with("cwl-"));
            for (k, rv) in r {
                let here = format!("{at}.{k}");
                if ours(k) || (data_hit && k == "_source") {
                    continue;
                }
                match a.get(k) {
                    Some(av) => {
                        if ID_KEYS.contains(&k.as_str()) {
                            let (rs, as_) = (scalar_text(rv), scalar_text(av));
                            if let (Some(rs), Some(as_)) = (rs, as_) {
                                ids.entry(rs).or_insert(as_);
                            }
                        }
                        shape(&here, rv, av, ids, out);
                    }
                    None => out.push(format!("{here}: missing")),
                }
            }
            for k in a.keys().filter(|k| !r.contains_key(*k) && !ours(k)) {
                out.push(format!("{at}.{k}: not in the real answer"));
            }
        }
        (Value::Array(r), Value::Array(a)) => {
            if let (Some(rv), Some(av)) = (r.first(), a.first()) {
                shape(&format!("{at}[0]"), rv, av, ids, out);
            }
        }
        (r, a) if kind(r) == kind(a) => {}
        // A figure of data this replay does not hold (a max score, a
        // maximum grade): null where the recording had one.
        (Value::Number(_), Value::Null) => {}
        (r, a) => out.push(format!(
            "{at}: {} where the real answer has {}",
            kind(a),
            kind(r)
        )),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The recorded path with the ids the stand-in knows by another name.
fn translate_path(path: &str, ids: &BTreeMap<String, String>) -> String {
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let segments: Vec<String> = p
        .split('/')
        .map(|s| ids.get(s).cloned().unwrap_or_else(|| s.to_owned()))
        .collect();
    let mut out = segments.join("/");
    if !q.is_empty() {
        let query: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => format!("{k}={}", ids.get(v).map_or(v, String::as_str)),
                None => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&query.join("&"));
    }
    out
}

/// Every string of `v` that is a known id, translated.
fn translate_body(v: &Value, ids: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => match ids.get(s) {
            Some(ours) => Value::String(ours.clone()),
            None => Value::String(s.clone()),
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| translate_body(x, ids)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), translate_body(x, ids)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The object id a plugin path names: `(kind, id)`.
fn object_of(path: &str) -> Option<(&'static str, String)> {
    let p = path.split('?').next()?;
    let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["_plugins", "_anomaly_detection", "detectors", id, ..]
            if !id.starts_with('_') && *id != "results" =>
        {
            Some(("detector", id.to_string()))
        }
        ["_plugins", "_alerting", "monitors", id, ..]
            if !id.starts_with('_') && *id != "alerts" =>
        {
            Some(("monitor", id.to_string()))
        }
        _ => None,
    }
}

/// A webhook that answers every message `{"ok":true}` and counts them.
fn webhook_sink() -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let listener = std::net::TcpListener::bind(RECORDED_HOOK).unwrap_or_else(|e| {
        panic!("the recorded webhook's address {RECORDED_HOOK} must be free for this test: {e}")
    });
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut stream = stream;
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}",
            );
        }
    });
    count
}

#[test]
fn the_stand_in_answers_every_recorded_request_as_the_real_plugins_did() {
    let _lock = node_lock();
    let n = node();
    let plugins = Plugins::start(&n.url, &n.ca);
    let _hook = webhook_sink();
    let client = OpenSearch::connect(&Target {
        auth: Auth::Basic {
            user: "admin".into(),
            password: ADMIN_PASSWORD.into(),
        },
        ..Target::new(&plugins.url, Duration::from_secs(60))
    })
    .unwrap();

    // The recorded cluster: trailwatch's objects, the recorded channel.
    let env = [
        ("OPENSEARCH_USER", "admin"),
        ("OPENSEARCH_PASSWORD", ADMIN_PASSWORD),
    ];
    let hook_url = format!("webhook:http://{RECORDED_HOOK}/hook");
    let o = run_trailwatch(
        &[
            "opensearch",
            "apply",
            "--opensearch-url",
            &plugins.url,
            "--notify",
            &hook_url,
            "--yes",
        ],
        None,
        &env,
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("trailwatch-webhook-a4d2a9b20584"),
        "the recorded channel's id: {}",
        stdout(&o)
    );

    let (recorded, experiments) = recordings();
    assert!(recorded.len() >= 50, "{} recordings", recorded.len());
    let single = plugins.detector_id("trailwatch-ec2-run-instances").unwrap();
    let high = plugins.detector_id("trailwatch-api-errors").unwrap();
    // Names the recordings give their objects, to map ids by name.
    let names: BTreeMap<String, String> = plugins
        .detector_ids()
        .into_iter()
        .map(|(id, name)| (name, id))
        .collect();

    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in &recorded {
        // Ids of the session that no answer has revealed yet.
        if let Some((kind, id)) = object_of(&r.path) {
            if !ids.contains_key(&id) {
                let named = |key: &str| -> Option<String> {
                    let v: Value = serde_json::from_str(&r.text).ok()?;
                    let body = &v["response"]["body"];
                    body[key]["name"]
                        .as_str()
                        .or_else(|| r.body.as_ref()?["name"].as_str())
                        .map(str::to_owned)
                };
                let ours = match kind {
                    "detector" => named("anomaly_detector")
                        .and_then(|name| names.get(&name).cloned())
                        .unwrap_or_else(|| {
                            let hc = r.text.contains("total_entities")
                                || r.text.contains("MULTI_ENTITY");
                            if hc {
                                high.clone()
                            } else {
                                single.clone()
                            }
                        }),
                    _ => {
                        let name = named("monitor").unwrap_or_default();
                        match plugins.monitor_id(&name) {
                            Some(id) => id,
                            // Made by the recorded session before this exchange: made here too.
                            None => {
                                let body = translate_body(r.body.as_ref().unwrap(), &ids);
                                let made = block_on(client.request(
                                    "POST",
                                    "/_plugins/_alerting/monitors",
                                    Some(&body),
                                ))
                                .unwrap()
                                .checked_json()
                                .unwrap();
                                made["_id"].as_str().unwrap().to_owned()
                            }
                        }
                    }
                };
                ids.insert(id, ours);
            }
        }
        let path = translate_path(&r.path, &ids);
        // What the recorded answer presupposes.
        if path.ends_with("/_stop") && r.status == 200 {
            let start = path.trim_end_matches("/_stop").to_owned() + "/_start";
            let _ = block_on(client.request("POST", &start, None));
        }
        let no_slot = r.answer.to_string().contains("No available task slot");
        if no_slot {
            plugins.historical_tasks(Duration::from_secs(120), 1);
            let busy = block_on(client.request(
                "POST",
                &format!("/_plugins/_anomaly_detection/detectors/{high}/_start"),
                Some(
                    &json!({"start_time": 1_772_409_600_000i64, "end_time": 1_773_273_600_000i64}),
                ),
            ))
            .unwrap();
            assert!(
                busy.is_success() || busy.text().contains("No available task slot"),
                "{}",
                busy.text()
            );
        }
        let finished = r.answer["historical_analysis_task"]["state"] == "FINISHED";
        let body = r.body.as_ref().map(|b| match b {
            // NDJSON, perhaps cut short by the recorder: whole action and
            // document pairs only.
            Value::String(s) => {
                let mut lines: Vec<String> = s.split_terminator('\n').map(str::to_owned).collect();
                if !s.ends_with('\n') {
                    // The last document, cut: its fields up to the cut.
                    let cut = lines.pop().unwrap_or_default();
                    lines.extend(whole_prefix(&cut));
                }
                if lines.len() % 2 == 1 {
                    lines.pop();
                }
                let whole: String = lines.iter().map(|l| format!("{l}\n")).collect();
                ("application/x-ndjson", whole.into_bytes())
            }
            json => {
                // A secret the recorder hid: one of the kind the answer implies.
                let secret = if r.answer.to_string().contains("Weak password") {
                    "password"
                } else {
                    "Tw-Conformance-9q!"
                };
                let text = translate_body(json, &ids)
                    .to_string()
                    .replace("<redacted>", secret);
                ("application/json", text.into_bytes())
            }
        });
        let mut headers = Vec::new();
        if let Some(ua) = &r.user_agent {
            headers.push(("user-agent", ua.as_str()));
        }
        let send = || {
            block_on(client.send_with(
                static_method(&r.method),
                &path,
                &headers,
                body.clone(),
                None,
            ))
            .unwrap()
        };
        let mut answer = send();
        for _ in 0..40 {
            let done = answer
                .json()
                .is_some_and(|a| a["historical_analysis_task"]["state"] == "FINISHED");
            if !finished || done {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
            answer = send();
        }
        if no_slot {
            plugins.historical_tasks(Duration::from_millis(1500), 1);
        }
        if answer.status != r.status {
            problems.push(format!(
                "{}: {} {path} answered {} where the real plugin answered {}: {}",
                r.file,
                r.method,
                answer.status,
                r.status,
                answer.text().chars().take(300).collect::<String>()
            ));
            continue;
        }
        let actual = answer.json().unwrap_or(Value::Null);
        let mut differences = Vec::new();
        shape("", &r.answer, &actual, &mut ids, &mut differences);
        for d in differences {
            problems.push(format!("{}: {} {path}: {d}", r.file, r.method));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} recorded answers ({} experiments aside) differ in shape:\n{}",
        problems.len(),
        recorded.len(),
        experiments,
        problems.join("\n")
    );
    plugins.historical_tasks(Duration::from_millis(0), 1);
    let o = run_trailwatch(
        &[
            "opensearch",
            "delete",
            "--opensearch-url",
            &plugins.url,
            "--notify",
            &hook_url,
            "--yes",
        ],
        None,
        &env,
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
}

/// The longest prefix of a JSON object cut short that ends at a whole
/// field, closed: `{"a": 1, "b": {"c": "x…` gives `{"a":1}`.
fn whole_prefix(cut: &str) -> Option<String> {
    let commas: Vec<usize> = cut.match_indices(',').map(|(i, _)| i).collect();
    for &end in commas.iter().rev() {
        let head = &cut[..end];
        // Close what is open, outside strings.
        let (mut depth, mut in_string, mut escaped) = (Vec::new(), false, false);
        for c in head.chars() {
            match (in_string, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (true, false, '"') => in_string = false,
                (true, false, _) => {}
                (false, _, '"') => in_string = true,
                (false, _, '{') => depth.push('}'),
                (false, _, '[') => depth.push(']'),
                (false, _, '}' | ']') => {
                    depth.pop();
                }
                _ => {}
            }
        }
        if in_string {
            continue;
        }
        let closed: String = head.chars().chain(depth.iter().rev().copied()).collect();
        if let Ok(v) = serde_json::from_str::<Value>(&closed) {
            return Some(v.to_string());
        }
    }
    None
}

fn static_method(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        other => panic!("a recorded method the client does not send: {other}"),
    }
}
