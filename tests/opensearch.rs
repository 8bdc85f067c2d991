//! The OpenSearch side against the suite's real OpenSearch 2.19 node (core
//! and security plugin real; the plugins Maven Central does not serve here
//! answered by the scripted stand-in in `util::plugins`).

use crate::util::node::{block_on, node, ADMIN_PASSWORD};
use crate::util::plugins::Plugins;
use crate::util::{node_lock, root, run_trailwatch, stderr, stdout};
use serde_json::{json, Value};
use trailwatch::lambda::alert::Alert;
use trailwatch::opensearch::desired::monitors::message_template;

const READERS: &str = "arn:aws:iam::123456789012:role/trailwatch-dashboard-readers";
const FORWARDER: &str = "arn:aws:iam::123456789012:role/trailwatch-forwarder";
const ENRICHER: &str = "arn:aws:iam::123456789012:role/trailwatch-enricher";

fn apply(url: &str, extra: &[&str]) -> std::process::Output {
    reconcile("apply", url, extra)
}

/// `opensearch delete` with apply's flags: a test leaves the node as it found it.
fn delete(url: &str, extra: &[&str]) -> std::process::Output {
    let o = reconcile("delete", url, &[extra, &["--yes"]].concat());
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    o
}

/// trailwatch with the node's admin as OPENSEARCH_USER.
fn as_admin(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    run_trailwatch(
        args,
        stdin,
        &[
            ("OPENSEARCH_USER", "admin"),
            ("OPENSEARCH_PASSWORD", ADMIN_PASSWORD),
        ],
    )
}

fn reconcile(command: &str, url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "opensearch",
        command,
        "--opensearch-url",
        url,
        "--reader-role",
        READERS,
        "--forwarder-role",
        FORWARDER,
        "--enricher-role",
        ENRICHER,
        "--notify",
        "webhook:http://127.0.0.1:9/alerts",
        "--wait",
        "60",
    ];
    args.extend_from_slice(extra);
    as_admin(&args, None)
}

/// The outcome word of each object line: `kind name` -> `created` etc.
/// (Dashboards cannot run here: its line says skipped, tests/dashboards.rs
/// covers the import.)
fn outcomes(o: &std::process::Output) -> Vec<(String, String)> {
    stdout(o)
        .lines()
        .filter(|l| !l.starts_with("dashboards "))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let kind = parts.next().unwrap_or("").to_owned();
            let name = parts.next().unwrap_or("").to_owned();
            let rest: Vec<&str> = parts.collect();
            let word = rest.join(" ");
            (
                format!("{kind} {name}"),
                word.split(':').next().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn copy_detectors() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(root().join("detectors")).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn plan_writes_every_opensearch_object_as_the_golden_files_say() {
    let out = tempfile::tempdir().unwrap();
    let o = crate::util::trailwatch(&[
        "plan",
        "--out",
        out.path().to_str().unwrap(),
        "--reader-role",
        READERS,
        "--forwarder-role",
        FORWARDER,
        "--notify",
        "webhook:http://127.0.0.1:9/alerts",
        "--alert-topic-arn",
        "arn:aws:sns:us-east-1:123456789012:trailwatch-alerts",
        "--publish-role-arn",
        "arn:aws:iam::123456789012:role/trailwatch-opensearch-publish",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let golden = root().join("tests/data/opensearch");
    let mut problems = Vec::new();
    let mut seen = 0;
    for kind in std::fs::read_dir(out.path().join("opensearch")).unwrap() {
        for file in std::fs::read_dir(kind.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let rel = path
                .strip_prefix(out.path().join("opensearch"))
                .unwrap()
                .to_owned();
            let got = std::fs::read_to_string(&path).unwrap();
            seen += 1;
            problems.extend(crate::util::golden::check(
                &golden.join(&rel),
                &rel.display().to_string(),
                &got,
            ));
        }
    }
    let goldens = std::fs::read_dir(&golden)
        .unwrap()
        .flat_map(|k| std::fs::read_dir(k.unwrap().path()).unwrap())
        .count();
    assert_eq!(seen, goldens, "objects written against golden files");
    assert!(seen >= 20, "{seen}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_detector_the_plugin_would_refuse_is_refused_by_plan_naming_file_and_key() {
    let dir = copy_detectors();
    let long = "a-detector-whose-file-name-is-longer-than-the-plugin-takes";
    std::fs::write(
        dir.path().join(format!("{long}.toml")),
        "description = \"long\"\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = crate::util::trailwatch(&[
        "plan",
        "--out",
        out.path().to_str().unwrap(),
        "--detectors",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let want = format!(
        "{long}.toml: name: the plugin's detector name \"trailwatch-{long}\" is {} characters; it takes at most 64",
        long.len() + 11
    );
    assert!(err.contains(&want), "{err}");
    assert!(
        !out.path().join("stack.json").exists(),
        "nothing is written"
    );
}

#[test]
fn apply_reconciles_and_a_rerun_changes_nothing() {
    let _lock = node_lock();
    let n = node();
    let plugins = Plugins::start(&n.url, &n.ca);
    let dir = copy_detectors();
    let dirs = dir.path().to_str().unwrap();

    // An empty cluster: everything is created.
    let o = apply(&plugins.url, &["--detectors", dirs, "--yes"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("skipped: no Dashboards here; give --dashboards-url"),
        "{}",
        stdout(&o)
    );
    let first = outcomes(&o);
    assert_eq!(first.len(), 27, "{}", stdout(&o));
    assert!(first.iter().all(|(_, w)| w == "created"), "{}", stdout(&o));
    let (d, running) = plugins.detector("trailwatch-api-errors").unwrap();
    assert!(running, "the detector is started");
    assert_eq!(d["category_field"], json!(["userIdentity.arn"]));
    let m = plugins.monitor("trailwatch-api-errors").unwrap();
    assert_eq!(m["ui_metadata"]["search"]["searchType"], "ad");
    assert_eq!(plugins.monitor_count(), 7, "one monitor per detector");

    // A second apply: every object unchanged, nothing written.
    let before = plugins.requests();
    let o = apply(&plugins.url, &["--detectors", dirs, "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        outcomes(&o).iter().all(|(_, w)| w == "unchanged"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        plugins.writes_since(before),
        vec![],
        "a re-run writes nothing"
    );
    assert_eq!(
        plugins.monitor_count(),
        7,
        "the monitors are found (the real _search answers them flat), not made again"
    );
    // Without --yes, and nothing to do: said, and no question asked.
    let o = apply(&plugins.url, &["--detectors", dirs]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to change"), "{}", stderr(&o));

    // One detector file changed: only that detector is updated.
    let path = dir.path().join("ebs-create-volume.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("shingle_size = 4\n{text}")).unwrap();
    let before = plugins.requests();
    let o = apply(&plugins.url, &["--detectors", dirs, "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("would update: changed shingle_size: 8 → 4"),
        "old and new, as cdk diff shows them: {}",
        stdout(&o)
    );
    assert_eq!(
        plugins.writes_since(before),
        vec![],
        "--dry-run writes nothing"
    );
    let o = apply(&plugins.url, &["--detectors", dirs, "--yes"]);
    let changed: Vec<_> = outcomes(&o)
        .into_iter()
        .filter(|(_, w)| w != "unchanged")
        .collect();
    assert_eq!(
        changed,
        vec![(
            "detector trailwatch-ebs-create-volume".to_owned(),
            "updated".to_owned()
        )],
        "{}",
        stdout(&o)
    );
    assert_eq!(
        plugins.detector("trailwatch-ebs-create-volume").unwrap().0["shingle_size"],
        4,
        "updated, though the real _validate refuses a detector's own name"
    );
    assert!(
        plugins.detector("trailwatch-ebs-create-volume").unwrap().1,
        "started again"
    );
    assert_eq!(plugins.monitor_count(), 7);

    // Category fields changed: the detector is replaced, and apply says its model starts over.
    std::fs::write(&path, format!("category_fields = [\"awsRegion\"]\n{text}")).unwrap();
    let o = apply(&plugins.url, &["--detectors", dirs, "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("replaced: its category fields changed, which the plugin cannot update: its model starts over"), "{}", stdout(&o));
    assert!(plugins.detector("trailwatch-ebs-create-volume").unwrap().1);

    // A cluster failing half-way: apply names the object and the reason; the next run finishes.
    std::fs::write(&path, &text).unwrap();
    // The stop goes through; the delete of the replace fails.
    plugins.fail_after(1);
    let o = apply(&plugins.url, &["--detectors", dirs, "--yes"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(" trailwatch-ebs-create-volume: "),
        "the object is named: {err}"
    );
    assert!(
        err.contains("answered 503: injected: the cluster is unavailable"),
        "{err}"
    );
    let o = apply(&plugins.url, &["--detectors", dirs, "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = apply(&plugins.url, &["--detectors", dirs, "--yes"]);
    assert!(
        outcomes(&o).iter().all(|(_, w)| w == "unchanged"),
        "{}",
        stdout(&o)
    );
    let (d, running) = plugins.detector("trailwatch-ebs-create-volume").unwrap();
    assert!(running, "left stopped, started again");
    assert_eq!(
        d["category_field"],
        json!([]),
        "and replaced as the file says"
    );

    // Access, as the role mappings give it: a dashboard reader, the
    // forwarder and the enricher.
    access_follows_the_roles(&plugins);

    // Delete removes what apply made, and only that.
    let admin = n.admin();
    block_on(admin.request(
        "PUT",
        "/cwl-2026.01.01/_doc/keep?refresh=true",
        Some(&json!({"eventTime": "2026-01-01T00:00:00Z"})),
    ))
    .unwrap()
    .check()
    .unwrap();
    let o = as_admin(
        &[
            "opensearch",
            "delete",
            "--opensearch-url",
            &plugins.url,
            "--detectors",
            dirs,
            "--reader-role",
            READERS,
            "--forwarder-role",
            FORWARDER,
            "--enricher-role",
            ENRICHER,
            "--notify",
            "webhook:http://127.0.0.1:9/alerts",
            "--yes",
        ],
        None,
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(plugins.detector("trailwatch-api-errors").is_none());
    assert_eq!(
        plugins.monitor_count(),
        0,
        "no monitor is left behind: {}",
        stdout(&o)
    );
    assert_eq!(plugins.channel_count(), 0);
    assert!(plugins.policies().is_empty());
    let status = |path: &str| block_on(admin.request("GET", path, None)).unwrap().status;
    assert_eq!(status("/_index_template/trailwatch-cwl"), 404);
    assert_eq!(status("/_index_template/trailwatch-findings"), 404);
    assert_eq!(
        status("/_plugins/_security/api/roles/trailwatch_forwarder"),
        404
    );
    assert_eq!(status("/cwl-2026.01.01/_doc/keep"), 200, "data stays");
    let all_access = block_on(admin.request(
        "GET",
        "/_plugins/_security/api/rolesmapping/all_access",
        None,
    ))
    .unwrap()
    .json()
    .unwrap();
    assert!(
        all_access["all_access"]["backend_roles"]
            .as_array()
            .unwrap()
            .contains(&json!("admin")),
        "others' mappings stay"
    );
}

fn user(name: &str, backend_role: &str) {
    let admin = node().admin();
    block_on(admin.request(
        "PUT",
        &format!("/_plugins/_security/api/internalusers/{name}"),
        Some(&json!({"password": "Tw-Suite-Pass-9q!", "backend_roles": [backend_role]})),
    ))
    .unwrap()
    .check()
    .unwrap();
}

fn access_follows_the_roles(plugins: &Plugins) {
    let n = node();
    user("reader", READERS);
    user("forwarder", FORWARDER);
    user("enricher", ENRICHER);
    let reader = n.client("reader", "Tw-Suite-Pass-9q!");
    let forwarder = n.client("forwarder", "Tw-Suite-Pass-9q!");
    let enricher = n.client("enricher", "Tw-Suite-Pass-9q!");
    let status = |os: &trailwatch::opensearch::OpenSearch,
                  method: &'static str,
                  path: &str,
                  body: Option<Value>| {
        block_on(os.request(method, path, body.as_ref()))
            .unwrap()
            .status
    };
    // The forwarder writes cwl-* (creating the day's index) and nothing else.
    let bulk = "{\"index\":{\"_index\":\"cwl-2026.01.02\",\"_id\":\"e1\"}}\n{\"eventTime\":\"2026-01-02T00:00:00Z\",\"eventName\":\"RunInstances\"}\n";
    let answer = block_on(forwarder.bulk(bulk.into(), None)).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json().unwrap()["errors"], false, "{}", answer.text());
    assert_eq!(
        status(&forwarder, "DELETE", "/cwl-2026.01.02", None),
        403,
        "the forwarder cannot delete indices"
    );
    assert_eq!(
        status(&forwarder, "PUT", "/other/_doc/1", Some(json!({"a": 1}))),
        403,
        "nor write elsewhere"
    );
    // A dashboard reader searches cwl-* but cannot write or change security.
    block_on(n.admin().request("POST", "/cwl-2026.01.02/_refresh", None)).unwrap();
    let search = block_on(reader.search(
        "cwl-*",
        &json!({"query": {"term": {"eventName": "RunInstances"}}}),
    ))
    .unwrap();
    assert_eq!(search.status, 200, "{}", search.text());
    assert_eq!(search.json().unwrap()["hits"]["total"]["value"], 1);
    assert_eq!(
        status(
            &reader,
            "PUT",
            "/cwl-2026.01.02/_doc/2",
            Some(json!({"a": 1}))
        ),
        403
    );
    assert_eq!(
        status(
            &reader,
            "PUT",
            "/_plugins/_security/api/roles/mine",
            Some(json!({"cluster_permissions": []}))
        ),
        403
    );
    // The enricher and the forwarder keep findings (the first write creates
    // the index from its template) and the enricher finds them by subject;
    // neither may delete them, and the enricher writes nothing else.
    use trailwatch::lambda::incidents::{FindingsIndex, Kept, FINDINGS_INDEX};
    let mut rule = trailwatch::engine::Anomaly {
        detector: "cloudtrail-stop-logging".into(),
        kind: trailwatch::engine::AnomalyKind::Rule,
        entity: None,
        start: "2026-01-02T00:10:00Z".parse().unwrap(),
        end: "2026-01-02T00:11:00Z".parse().unwrap(),
        grade: 1.0,
        confidence: 1.0,
        actual: 1.0,
        expected: 0.0,
        score: 1.0,
        summary: "CloudTrail logging stopped".into(),
        context: None,
        incident: None,
        subjects: vec!["arn:aws:iam::1:user/mallory".into()],
        late: false,
        partial: false,
        detected: "2026-01-02T00:11:00Z".parse().unwrap(),
        severity: Some(trailwatch::engine::Severity::Critical),
        page: None,
        novelty: None,
        attack: Vec::new(),
        pivots: Default::default(),
    };
    let by_forwarder = FindingsIndex {
        os: &forwarder,
        index: FINDINGS_INDEX,
    };
    block_on(by_forwarder.keep(&Kept::new(&rule, rule.severity))).unwrap();
    rule.detector = "api-errors".into();
    rule.kind = trailwatch::engine::AnomalyKind::Rcf;
    let by_enricher = FindingsIndex {
        os: &enricher,
        index: FINDINGS_INDEX,
    };
    let (judged, error) =
        block_on(by_enricher.judge_and_keep(&rule, trailwatch::engine::Severity::Medium));
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        judged.paged_before,
        Some(trailwatch::engine::Severity::Critical)
    );
    assert!(!judged.pages, "the incident paged already: {judged:?}");
    let mapping = block_on(
        n.admin()
            .request("GET", &format!("/{FINDINGS_INDEX}/_mapping"), None),
    )
    .unwrap()
    .json()
    .unwrap();
    assert_eq!(
        mapping[FINDINGS_INDEX]["mappings"]["properties"]["subjects"]["type"], "keyword",
        "made from its template: {mapping}"
    );
    for os in [&enricher, &forwarder] {
        assert_eq!(
            status(os, "DELETE", &format!("/{FINDINGS_INDEX}"), None),
            403
        );
    }
    assert_eq!(
        status(
            &enricher,
            "PUT",
            "/cwl-2026.01.02/_doc/3",
            Some(json!({"a": 1}))
        ),
        403,
        "the enricher writes no records"
    );
    block_on(
        n.admin()
            .request("DELETE", &format!("/{FINDINGS_INDEX}"), None),
    )
    .unwrap();

    // The anomaly results, as each reader reaches them with the role it
    // has: the detectors' custom result index is a normal index that the
    // dashboard reader and the enricher may search (the plugin's own result
    // indices answer every REST search with nothing, admin included).
    let results = json!({"size": 1, "query": {"exists": {"field": "detector_id"}}});
    for (who, os) in [("reader", &reader), ("enricher", &enricher)] {
        let answer = block_on(os.search(
            trailwatch::opensearch::desired::detectors::RESULT_INDICES,
            &results,
        ))
        .unwrap();
        assert_eq!(answer.status, 200, "{who}: {}", answer.text());
        assert!(
            answer.json().unwrap()["hits"]["total"]["value"].as_u64() > Some(0),
            "{who} sees the detectors' results: {}",
            answer.text()
        );
    }
    assert_eq!(
        status(
            &forwarder,
            "POST",
            "/opensearch-ad-plugin-result-trailwatch*/_search",
            Some(results.clone())
        ),
        403,
        "the forwarder reads no results"
    );
    // `detectors status`, run by the dashboard reader itself.
    let o = run_trailwatch(
        &[
            "detectors",
            "status",
            "ec2-run-instances",
            "--opensearch-url",
            &plugins.url,
        ],
        None,
        &[
            ("OPENSEARCH_USER", "reader"),
            ("OPENSEARCH_PASSWORD", "Tw-Suite-Pass-9q!"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("  state         running")
            && stdout(&o).contains("  last error    none"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn real_cloudtrail_records_index_through_the_template_and_the_enricher_searches_them() {
    let _lock = node_lock();
    let n = node();
    let admin = n.admin();
    let detectors = trailwatch::detector::shipped();
    let template = trailwatch::opensearch::desired::template::index_template(&detectors);
    block_on(admin.request("PUT", "/_index_template/trailwatch-cwl", Some(&template)))
        .unwrap()
        .check()
        .unwrap();
    // Every real record, as the forwarder indexes them.
    let mut records = Vec::new();
    for dir in ["invictus-aws-dataset/CloudTrail", "stratus-detonations"] {
        for e in std::fs::read_dir(crate::util::shared_cloudtrail().join(dir)).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            // The damaged delivery is the reader's business, not the index's.
            if let Ok(v) = serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap()) {
                records.extend(v["Records"].as_array().cloned().unwrap_or_default());
            }
        }
    }
    assert!(records.len() > 2900, "{}", records.len());
    let messages: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    let event = crate::util::awslogs_event(&messages);
    let letters = tempfile::tempdir().unwrap();
    let o = as_admin(
        &[
            "lambda",
            "forward",
            "--opensearch-url",
            &n.url,
            "--opensearch-ca-cert",
            n.ca.to_str().unwrap(),
            "--dead-letter",
            letters.path().join("dead.ndjson").to_str().unwrap(),
            "--pages",
            letters.path().join("pages.ndjson").to_str().unwrap(),
        ],
        Some(event.to_string().as_bytes()),
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let report: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(report["dead_lettered"], 0, "{report}");
    // The real deliveries delete a trail: the forwarder pages on it.
    let pages = std::fs::read_to_string(letters.path().join("pages.ndjson")).unwrap();
    assert!(
        pages.contains("\"subject\":\"trailwatch CRITICAL: CloudTrail trail deleted"),
        "{pages}"
    );
    assert_eq!(report["paged"].as_u64(), Some(pages.lines().count() as u64));
    assert_eq!(
        report["indexed"].as_u64().unwrap() as usize,
        records.len(),
        "{report}"
    );
    block_on(admin.request("POST", "/cwl-*/_refresh", None)).unwrap();
    // What detectors, the enricher and the dashboards use stays searchable.
    let body = json!({"size": 0, "query": {"bool": {"filter": [
            {"term": {"eventName": "CreateVolume"}},
            {"range": {"eventTime": {"gte": "2013-11-13T00:00:00Z"}}}]}},
        "aggs": {"gib": {"sum": {"field": "requestParameters.size"}},
                 "who": {"terms": {"field": "userIdentity.arn"}}}});
    let answer = block_on(admin.search("cwl-*", &body))
        .unwrap()
        .checked_json()
        .unwrap();
    let volumes = answer["hits"]["total"]["value"].as_u64().unwrap();
    assert!(volumes > 0, "{answer}");
    assert!(
        answer["aggregations"]["gib"]["value"].as_f64().unwrap() >= volumes as f64,
        "sizes logged as text are summed: {answer}"
    );
    let fields = block_on(admin.request("GET", "/cwl-*/_mapping", None))
        .unwrap()
        .json()
        .unwrap();
    let count = fields.to_string().matches("\"type\"").count();
    assert!(count < 2000, "{count} mapped fields");
    // One meaning, two implementations: each detector's filter as the local
    // engine applies it (`Detector::matches`) and as OpenSearch runs it
    // (`query::filter_clauses`, the detectors' and the enricher's filter)
    // count the same real records.
    let typed: Vec<_> = records
        .iter()
        .filter_map(|r| trailwatch::cloudtrail::record::Record::from_value(r.clone()).ok())
        .collect();
    assert_eq!(typed.len(), records.len());
    let mut agreed = Vec::new();
    for d in &detectors {
        let local = typed.iter().filter(|r| d.matches(r)).count() as u64;
        let (mut must, must_not) = trailwatch::opensearch::query::filter_clauses(&d.filter);
        // Only the real deliveries' years: other tests index simulated ones.
        must.push(json!({"range": {"eventTime": {"lt": "2024-01-01T00:00:00Z"}}}));
        let body = json!({"size": 0, "track_total_hits": true,
            "query": {"bool": {"filter": must, "must_not": must_not}}});
        let answer = block_on(admin.search("cwl-*", &body))
            .unwrap()
            .checked_json()
            .unwrap();
        let indexed = answer["hits"]["total"]["value"].as_u64().unwrap();
        assert_eq!(
            local, indexed,
            "{}: the engine's filter and OpenSearch's disagree on the real records",
            d.name
        );
        agreed.push((d.name.clone(), local));
    }
    assert!(
        agreed.iter().filter(|(_, n)| *n > 0).count() >= 3,
        "too few detectors see the real records to prove much: {agreed:?}"
    );
    // And the context of those records: each facet value the enricher's
    // aggregation returns (`query::context_search`, `counts_from`) has the
    // count the local engine gives it (`FacetCounts::record`).
    use trailwatch::context::{Facet, FacetCounts};
    let mut compared = 0;
    for d in &detectors {
        let mut local = FacetCounts::default();
        typed
            .iter()
            .filter(|r| d.matches(r))
            .for_each(|r| local.record(r));
        let (mut must, must_not) = trailwatch::opensearch::query::filter_clauses(&d.filter);
        must.push(json!({"range": {"eventTime": {"lt": "2024-01-01T00:00:00Z"}}}));
        let query = json!({"bool": {"filter": must, "must_not": must_not}});
        let answer = block_on(admin.search(
            "cwl-*",
            &trailwatch::opensearch::query::context_search(query),
        ))
        .unwrap()
        .checked_json()
        .unwrap();
        let remote = trailwatch::opensearch::query::counts_from(&answer);
        assert_eq!(remote.events, local.events, "{}", d.name);
        for facet in Facet::ALL {
            let theirs = remote.values.get(&facet).cloned().unwrap_or_default();
            let ours = local.values.get(&facet).cloned().unwrap_or_default();
            for (value, n) in &theirs {
                assert_eq!(
                    ours.get(value),
                    Some(n),
                    "{}: {facet:?} {value:?}: OpenSearch counts {n}, the engine {:?} (engine's values: {ours:?})",
                    d.name,
                    ours.get(value)
                );
                compared += 1;
            }
            if ours.len() <= trailwatch::opensearch::query::FACET_SIZE {
                assert_eq!(
                    theirs.len(),
                    ours.len(),
                    "{}: {facet:?}: {ours:?} against {theirs:?}",
                    d.name
                );
            }
        }
        assert_eq!(remote.volume_gib, local.volume_gib, "{}", d.name);
    }
    assert!(compared > 20, "only {compared} facet values compared");
    // The enricher's searches on the real node: an alert for the principal
    // with the most access denials names them and counts their calls.
    let mut denials: std::collections::BTreeMap<String, usize> = Default::default();
    for r in &records {
        if r["errorCode"]
            .as_str()
            .is_some_and(|c| c.contains("Unauthorized") || c.contains("AccessDenied"))
        {
            if let Some(arn) = r["userIdentity"]["arn"].as_str() {
                *denials.entry(arn.to_owned()).or_default() += 1;
            }
        }
    }
    let (principal, _) = denials.iter().max_by_key(|(_, n)| **n).unwrap();
    let alert = json!({"monitor": "trailwatch-api-errors", "detector": "api-errors",
        "entity": [{"name": "userIdentity.arn", "value": principal}],
        "period_start": "2023-07-10T11:40:00Z", "period_end": "2023-07-10T12:40:00Z",
        "anomaly_grade": 0.97, "confidence": 0.9});
    let o = as_admin(
        &[
            "lambda",
            "enrich",
            "--opensearch-url",
            &n.url,
            "--opensearch-ca-cert",
            n.ca.to_str().unwrap(),
        ],
        Some(alert.to_string().as_bytes()),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("not enriched"), "{}", stderr(&o));
    let user = principal.rsplit('/').next().unwrap();
    assert!(stdout(&o).starts_with("Subject: "), "{}", stdout(&o));
    assert!(stdout(&o).contains(user), "names {user}: {}", stdout(&o));
    block_on(admin.request("DELETE", "/_index_template/trailwatch-cwl", None))
        .unwrap()
        .check()
        .unwrap();
}

#[test]
fn an_auth_failure_says_which_credentials_were_used() {
    let n = node();
    let o = run_trailwatch(
        &[
            "opensearch",
            "apply",
            "--opensearch-url",
            &n.url,
            "--opensearch-ca-cert",
            n.ca.to_str().unwrap(),
            "--dry-run",
            "--wait",
            "5",
        ],
        None,
        &[
            ("OPENSEARCH_USER", "admin"),
            ("OPENSEARCH_PASSWORD", "wrong"),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("answered 401 with basic auth as \"admin\""),
        "{err}"
    );
    assert!(err.contains("OPENSEARCH_PASSWORD"), "{err}");
}

/// A webhook channel's server that must receive exactly one JSON message,
/// which the enricher's parser reads and `check` accepts.
fn one_alert_webhook(
    check: impl Fn(&trailwatch::lambda::alert::Alert) -> bool + Send + 'static,
) -> crate::util::scripted::Scripted {
    use crate::util::scripted::{Expect, Scripted};
    use trailwatch::lambda::alert::Alert;
    Scripted::start(vec![Expect {
        method: "POST",
        path: "/alerts".into(),
        headers: vec![("content-type", "application/json".into())],
        body: Box::new(move |body, _| {
            let alert = match Alert::from_message(&String::from_utf8_lossy(body)) {
                Ok(a) => a,
                Err(e) => return Some(format!("the enricher cannot parse it: {e}")),
            };
            (!check(&alert)).then(|| format!("parsed with other fields: {alert:?}"))
        }),
        status: 200,
        answer: "{}".into(),
    }])
}

/// The detectors' custom result index (the write alias the plugin made
/// when apply created them).
const RESULT_INDEX: &str = "/opensearch-ad-plugin-result-trailwatch";

/// Empties the custom result index (the cold-start results the detectors'
/// start wrote included): a new backing index under the alias, with the
/// plugin's own result mapping.
fn fresh_result_index(admin: &trailwatch::opensearch::OpenSearch) {
    let mapping: Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join("../shared/reference/opensearch-ad-mappings/anomaly-results.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mapping = mapping.get("mappings").cloned().unwrap_or(mapping);
    drop_result_index(admin);
    let alias = RESULT_INDEX.trim_start_matches('/');
    block_on(admin.request(
        "PUT",
        &format!("{RESULT_INDEX}-history-test-1"),
        Some(&json!({"mappings": mapping, "aliases": {alias: {"is_write_index": true}}})),
    ))
    .unwrap()
    .check()
    .unwrap();
}

/// Removes the custom result index and its alias.
fn drop_result_index(admin: &trailwatch::opensearch::OpenSearch) {
    block_on(admin.request("DELETE", &format!("{RESULT_INDEX}-history-*"), None)).unwrap();
}

/// An AD result document, as the plugin writes them (`../shared/reference/opensearch-ad-mappings/anomaly-results.json`).
fn anomaly_result(detector_id: &str, grade: f64, confidence: f64, principal: &str) -> Value {
    let now = chrono::Utc::now().timestamp_millis();
    json!({
        "detector_id": detector_id, "anomaly_grade": grade, "anomaly_score": 2.5, "confidence": confidence,
        "data_start_time": now - 20 * 60_000, "data_end_time": now - 10 * 60_000,
        "execution_start_time": now - 60_000, "execution_end_time": now - 30_000,
        "entity": [{"name": "userIdentity.arn", "value": principal}],
        "model_id": format!("{detector_id}_entity_{}", principal.len()),
        "feature_data": [{"feature_id": "f1", "feature_name": "count", "data": 42.0}],
        "schema_version": 5
    })
}

#[test]
fn an_ad_monitor_over_anomaly_results_sends_the_enrichers_alert_to_a_webhook() {
    let _lock = node_lock();
    let n = node();
    let plugins = Plugins::start(&n.url, &n.ca);
    let mallory = "arn:aws:iam::123456789012:user/mallory";
    let webhook = one_alert_webhook(move |alert| {
        let detector = trailwatch::detector::shipped()
            .into_iter()
            .find(|d| d.name == "api-errors")
            .unwrap();
        alert.detector == "api-errors"
            && alert.monitor.as_deref() == Some("trailwatch-api-errors")
            && alert.grade == Some(0.96)
            && alert.confidence == Some(0.91)
            && alert.entity_values(&detector) == vec![mallory.to_owned()]
            && alert.end > alert.start
    });
    let o = as_admin(
        &[
            "opensearch",
            "apply",
            "--opensearch-url",
            &plugins.url,
            "--notify",
            &format!("webhook:{}/alerts", webhook.url),
            "--yes",
        ],
        None,
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let detector_id = plugins.detector_id("trailwatch-api-errors").unwrap();
    let admin = n.admin();
    fresh_result_index(&admin);
    let index = format!("{RESULT_INDEX}/_doc");
    // A weak anomaly and an unrelated detector's strong one: no alert.
    for doc in [
        anomaly_result(&detector_id, 0.5, 0.95, mallory),
        anomaly_result("another-detector", 0.99, 0.99, mallory),
    ] {
        block_on(admin.request("POST", &format!("{index}?refresh=true"), Some(&doc)))
            .unwrap()
            .check()
            .unwrap();
    }
    // A backtest's strong result (it carries its task id) in the window: no alert.
    let mut historical = anomaly_result(&detector_id, 0.99, 0.99, mallory);
    historical["task_id"] = json!("a-backtest");
    block_on(admin.request("POST", &format!("{index}?refresh=true"), Some(&historical)))
        .unwrap()
        .check()
        .unwrap();
    let monitor = plugins.monitor_id("trailwatch-api-errors").unwrap();
    let execute = format!("/_plugins/_alerting/monitors/{monitor}/_execute");
    let run = || {
        block_on(n_client(&plugins).request("POST", &execute, None))
            .unwrap()
            .checked_json()
            .unwrap()
    };
    let quiet = run();
    assert_eq!(first_trigger(&quiet)["triggered"], false, "{quiet}");
    // A strong one: the trigger fires and the webhook gets the alert.
    block_on(admin.request(
        "POST",
        &format!("{index}?refresh=true"),
        Some(&anomaly_result(&detector_id, 0.96, 0.91, mallory)),
    ))
    .unwrap()
    .check()
    .unwrap();
    let fired = run();
    assert_eq!(first_trigger(&fired)["triggered"], true, "{fired}");
    webhook.verify();
    drop_result_index(&admin);
    let o = as_admin(
        &[
            "opensearch",
            "delete",
            "--opensearch-url",
            &plugins.url,
            "--notify",
            &format!("webhook:{}/alerts", webhook.url),
            "--yes",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The first trigger's result of an `_execute` answer (keyed by trigger id).
fn first_trigger(answer: &Value) -> Value {
    answer["trigger_results"]
        .as_object()
        .and_then(|t| t.values().next().cloned())
        .unwrap_or(Value::Null)
}

/// A client of the stand-in as the admin.
fn n_client(plugins: &Plugins) -> trailwatch::opensearch::OpenSearch {
    use trailwatch::opensearch::{Auth, OpenSearch, Target};
    OpenSearch::connect(&Target {
        auth: Auth::Basic {
            user: "admin".into(),
            password: ADMIN_PASSWORD.into(),
        },
        ..Target::new(&plugins.url, std::time::Duration::from_secs(30))
    })
    .unwrap()
}

#[test]
fn a_detector_the_cluster_refuses_is_named_with_its_file_and_the_plugins_reason() {
    let _lock = node_lock();
    let n = node();
    let plugins = Plugins::start(&n.url, &n.ca);
    let admin = n.admin();
    // An index made before the template, as the AWS sample's dynamic mapping makes them.
    let old = "/cwl-2019.01.01";
    let _ = block_on(admin.request("DELETE", old, None));
    block_on(admin.request(
        "PUT",
        old,
        Some(&json!({"mappings": {"properties": {
            "eventTime": {"type": "date"},
            "userIdentity": {"properties": {"arn": {"type": "text"}}}
        }}})),
    ))
    .unwrap()
    .check()
    .unwrap();
    let o = apply(&plugins.url, &["--yes"]);
    block_on(admin.request("DELETE", old, None))
        .unwrap()
        .check()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("error: detector trailwatch-api-errors: the anomaly detection plugin's validation refused it: detectors/api-errors.toml: category_field: Categorical field userIdentity.arn must be of type keyword or ip; it is text"),
        "{err}"
    );
    assert!(
        plugins.detector("trailwatch-api-errors").is_none(),
        "nothing made for it"
    );
    delete(&plugins.url, &[]);
}

#[test]
fn a_cluster_without_the_plugins_is_named_before_anything_changes() {
    let n = node();
    let o = as_admin(
        &[
            "opensearch",
            "apply",
            "--opensearch-url",
            &n.url,
            "--opensearch-ca-cert",
            n.ca.to_str().unwrap(),
            "--yes",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("GET /_plugins/_ism/policies: the index state management (ISM) plugin is not installed on this cluster; use one that has it"), "{err}");
    assert!(err.contains("docker compose up"), "says what to do: {err}");
    assert_eq!(err.matches("not installed").count(), 1, "said once: {err}");
    assert!(!err.contains("no handler found"), "in words: {err}");
    assert_eq!(stdout(&o), "", "no object was touched");
    // Every day-two command says it the same way, once.
    let at = [
        "--opensearch-url",
        n.url.as_str(),
        "--opensearch-ca-cert",
        n.ca.to_str().unwrap(),
    ];
    for (command, plugin) in [
        (
            &["detectors", "status", "api-errors"][..],
            "anomaly detection",
        ),
        (&["monitors", "list"][..], "alerting"),
        (
            &[
                "detectors",
                "backtest",
                "api-errors",
                "--from",
                "2026-01-01",
                "--to",
                "2026-01-02",
            ][..],
            "anomaly detection",
        ),
    ] {
        let o = as_admin(&[command, &at[..]].concat(), None);
        assert_eq!(o.status.code(), Some(2), "{command:?}");
        let err = stderr(&o);
        assert_eq!(
            err.matches(&format!(
                "the {plugin} plugin is not installed on this cluster"
            ))
            .count(),
            1,
            "{command:?}: {err}"
        );
        assert!(!err.contains("no handler found"), "{command:?}: {err}");
    }
}

/// The monitor's message, rendered as the alerting plugin's mustache does
/// (the stand-in's renderer), parses in the enricher with the result's fields.
#[test]
fn the_message_parses_in_the_enricher_with_the_results_fields() {
    let d = trailwatch::detector::shipped()
        .into_iter()
        .find(|d| d.name == "api-errors")
        .unwrap();
    let ctx = json!({"ctx": {"monitor": {"name": "trailwatch-api-errors"}, "results": [{"hits": {"hits": [{"_source": {
        "detector_id": "abc", "anomaly_grade": 0.93, "confidence": 0.88,
        "data_start_time": 1767754200000i64, "data_end_time": 1767754800000i64,
        "entity": [{"name": "userIdentity.arn", "value": "arn:aws:iam::123456789012:user/mallory"}]
    }}]}}]}});
    let text = crate::util::plugins::render(&message_template(&d), &ctx);
    let alert = Alert::from_message(&text).unwrap();
    assert_eq!(alert.detector, "api-errors");
    assert_eq!(alert.monitor.as_deref(), Some("trailwatch-api-errors"));
    assert_eq!(alert.grade, Some(0.93));
    assert_eq!(alert.confidence, Some(0.88));
    assert_eq!(alert.start.to_rfc3339(), "2026-01-07T02:50:00+00:00");
    assert_eq!(
        alert.entity_values(&d),
        vec!["arn:aws:iam::123456789012:user/mallory"]
    );
}

#[test]
fn day_two_lists_monitors_sends_one_test_alert_and_tells_how_detectors_are_doing() {
    let _lock = node_lock();
    let n = node();
    let plugins = Plugins::start(&n.url, &n.ca);
    let mallory = "arn:aws:iam::123456789012:user/mallory";
    // The webhook must get exactly one message, which the enricher parses
    // as a test of the api-errors detector over the monitor's period.
    let webhook = one_alert_webhook(|alert| {
        alert.test
            && alert.detector == "api-errors"
            && alert.end - alert.start == chrono::Duration::minutes(10)
            && alert.grade.is_none()
    });
    let notify = format!("webhook:{}/alerts", webhook.url);
    let at = ["--opensearch-url", plugins.url.as_str()];
    let o = as_admin(
        &[
            &["opensearch", "apply"],
            &at[..],
            &["--notify", &notify, "--yes"],
        ]
        .concat(),
        None,
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));

    // Every monitor, with its detector, state, last trigger and channel.
    let o = as_admin(&[&["monitors", "list"], &at[..]].concat(), None);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = out
        .lines()
        .find(|l| l.starts_with("trailwatch-api-errors "))
        .unwrap_or_else(|| panic!("{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&words[1..4], ["api-errors", "enabled", "never"], "{line}");
    assert!(line.ends_with("(webhook)"), "{line}");
    assert!(line.contains("trailwatch-webhook-"), "{line}");

    // A test alert: one message through the monitor's own action.
    let o = as_admin(
        &[&["monitors", "test", "api-errors"], &at[..]].concat(),
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).starts_with("api-errors: test alert sent to trailwatch-webhook-")
            && stdout(&o)
                .trim_end()
                .ends_with("(webhook), delivered, status 200"),
        "the delivery status the plugin reports, read: {}",
        stdout(&o)
    );
    webhook.verify();
    assert!(
        plugins.monitor("trailwatch-api-errors (test)").is_none(),
        "the test copy is run, not saved"
    );

    // A single-stream detector's cold start wrote results with `"error": ""`:
    // no error is shown for them.
    let o = as_admin(
        &[&["detectors", "status", "ec2-run-instances"], &at[..]].concat(),
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("  last error    none"),
        "an empty error is not an error: {}",
        stdout(&o)
    );

    // Results in the plugin's own mapping: a strong anomaly for mallory,
    // and the saved monitor run for real, so it has triggered once.
    let admin = n.admin();
    fresh_result_index(&admin);
    let detector_id = plugins.detector_id("trailwatch-api-errors").unwrap();
    block_on(admin.request(
        "POST",
        &format!("{RESULT_INDEX}/_doc?refresh=true"),
        Some(&anomaly_result(&detector_id, 0.96, 0.91, mallory)),
    ))
    .unwrap()
    .check()
    .unwrap();
    let o = as_admin(
        &[&["detectors", "status", "api-errors"], &at[..]].concat(),
        None,
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("  state         running\n"), "{out}");
    assert!(
        out.contains(&format!("  entities      1; busiest: {mallory} (42)\n")),
        "{out}"
    );
    let anomaly = out
        .lines()
        .find(|l| l.starts_with("  last anomaly"))
        .unwrap();
    assert!(
        anomaly.ends_with(&format!("grade 0.96 for {mallory}")),
        "{anomaly}"
    );
    assert!(out.contains("  last error    none"), "{out}");

    // Initialising, as the plugin's profile says it.
    plugins.set_profile(
        "trailwatch-api-errors",
        json!({"state": "INIT", "init_progress": {"percentage": "70%", "estimated_minutes_left": 77}}),
    );
    let o = as_admin(
        &[&["detectors", "status", "api-errors"], &at[..]].concat(),
        None,
    );
    assert!(
        stdout(&o).contains("  state         initializing 70%, about 77 min left"),
        "{}",
        stdout(&o)
    );

    // Bad input: an unknown name is refused, naming the known ones.
    let o = as_admin(&[&["monitors", "test", "nope"], &at[..]].concat(), None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no detector named \"nope\"") && stderr(&o).contains("api-errors"),
        "{}",
        stderr(&o)
    );

    // After delete, the monitor is named as missing, with what to do.
    drop_result_index(&admin);
    let o = as_admin(
        &[
            &["opensearch", "delete"],
            &at[..],
            &["--notify", &notify, "--yes"],
        ]
        .concat(),
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = as_admin(&[&["monitors", "test", "--all"], &at[..]].concat(), None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("api-errors: there is no monitor trailwatch-api-errors on this cluster; run trailwatch opensearch apply"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn detect_and_backtest_read_an_index_and_find_what_detect_finds_in_the_forwarded_files() {
    let _lock = node_lock();
    let n = node();
    let admin = n.admin();
    // Two days with a crypto-mining incident on the second.
    let sim = tempfile::tempdir().unwrap();
    let dir = sim.path().to_str().unwrap();
    let o = crate::util::trailwatch(&[
        "simulate",
        "--out",
        dir,
        "--days",
        "2",
        "--scale",
        "0.3",
        "--seed",
        "11",
        "--start",
        "2026-02-02",
        "--incident",
        "crypto-mining@+1d10h",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let template =
        trailwatch::opensearch::desired::template::index_template(&trailwatch::detector::shipped());
    block_on(admin.request("PUT", "/_index_template/trailwatch-cwl", Some(&template)))
        .unwrap()
        .check()
        .unwrap();
    // Every record through the forwarder, a few thousand per invocation.
    let records: Vec<String> = crate::util::records_under(sim.path())
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert!(records.len() > 10_000, "{}", records.len());
    let out = tempfile::tempdir().unwrap();
    let (dead, pages) = (
        out.path().join("dead.ndjson"),
        out.path().join("pages.ndjson"),
    );
    for chunk in records.chunks(4000) {
        let event = crate::util::awslogs_event(chunk);
        let o = as_admin(
            &[
                "lambda",
                "forward",
                "--opensearch-url",
                &n.url,
                "--opensearch-ca-cert",
                n.ca.to_str().unwrap(),
                "--dead-letter",
                dead.to_str().unwrap(),
                "--pages",
                pages.to_str().unwrap(),
            ],
            Some(event.to_string().as_bytes()),
        );
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    }
    block_on(admin.request("POST", "/cwl-2026.02.0*/_refresh", None)).unwrap();

    let from_files =
        crate::util::trailwatch(&["detect", dir, "--format", "ndjson", "--since", "2026-02-03"]);
    let from_index = as_admin(
        &[
            "detect",
            "--opensearch-url",
            &n.url,
            "--opensearch-ca-cert",
            n.ca.to_str().unwrap(),
            "--index",
            "cwl-2026.02.0*",
            "--format",
            "ndjson",
            "--since",
            "2026-02-03",
            "--stats",
        ],
        None,
    );
    assert_eq!(from_index.status.code(), Some(1), "{}", stderr(&from_index));
    assert!(
        stderr(&from_index).contains(&format!("stats: {} events", records.len())),
        "every forwarded record is read back: {}",
        stderr(&from_index)
    );
    let files = crate::util::ndjson(&from_files);
    let index = crate::util::ndjson(&from_index);
    assert_eq!(index, files, "the same findings, in the same order");
    assert!(
        index
            .iter()
            .any(|f| f["detector"] == "ec2-run-instances" && f["start"] == "2026-02-03T10:00:00Z"),
        "the incident is found: {index:#?}"
    );

    // The plugin's historical analysis beside the local engine, over the
    // same records. No plugin model runs here: the stand-in finishes the
    // task at once, and its results are written as the plugin writes them,
    // one at the incident and one where the local engine sees nothing.
    let plugins = Plugins::start(&n.url, &n.ca);
    let at = ["--opensearch-url", plugins.url.as_str()];
    let o = as_admin(
        &[&["opensearch", "apply"], &at[..], &["--yes"]].concat(),
        None,
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    fresh_result_index(&admin);
    let found: Vec<Value> = [
        ("2026-02-03T10:00:00Z", 0.93),
        ("2026-02-03T04:00:00Z", 0.71),
    ]
    .into_iter()
    .map(|(start, grade)| {
        let t = chrono::DateTime::parse_from_rfc3339(start)
            .unwrap()
            .timestamp_millis();
        json!({"anomaly_grade": grade, "confidence": 0.9,
            "anomaly_score": 3.0, "data_start_time": t, "data_end_time": t + 600_000,
            "execution_start_time": t + 600_000, "execution_end_time": t + 601_000, "schema_version": 5})
    })
    .collect();
    plugins.historical_findings("trailwatch-ec2-run-instances", found);
    // Another backtest holds the plugin's only slot: this one waits its turn.
    plugins.historical_tasks(std::time::Duration::from_secs(3), 1);
    let other = plugins.detector_id("trailwatch-api-errors").unwrap();
    let busy = block_on(n_client(&plugins).request(
        "POST",
        &format!("/_plugins/_anomaly_detection/detectors/{other}/_start"),
        Some(&json!({"start_time": 1_770_076_800_000i64, "end_time": 1_770_163_200_000i64})),
    ))
    .unwrap();
    assert_eq!(busy.status, 200, "{}", busy.text());
    let o = as_admin(
        &[
            &[
                "detectors",
                "backtest",
                "ec2-run-instances",
                "--from",
                "2026-02-03",
                "--to",
                "2026-02-04",
            ],
            &at[..],
            &[
                "--compare",
                "--index",
                "cwl-2026.02.0*",
                "--format",
                "ndjson",
            ],
        ]
        .concat(),
        None,
    );
    let lines = crate::util::ndjson(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "they disagree somewhere: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(
            "historical analysis of trailwatch-ec2-run-instances: waiting for a free slot"
        ),
        "queued, not failed: {}",
        stderr(&o)
    );
    assert!(
        lines
            .iter()
            .filter(|l| l["found_by"] != "both")
            .all(|l| l["why"]
                .as_str()
                .is_some_and(|w| w.contains("found nothing here"))),
        "each disagreement says why: {lines:#?}"
    );
    let by = |who: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["found_by"] == who)
            .map(|l| l["start"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(by("both"), ["2026-02-03T10:00:00Z"], "{lines:#?}");
    assert_eq!(by("plugin"), ["2026-02-03T04:00:00Z"], "{lines:#?}");
    let local_elsewhere: Vec<String> = files
        .iter()
        .filter(|f| f["detector"] == "ec2-run-instances" && f["start"] != "2026-02-03T10:00:00Z")
        .map(|f| f["start"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(by("local"), local_elsewhere, "{lines:#?}");
    assert!(
        stderr(&o).contains(&format!("({} records read)", records.len())),
        "{}",
        stderr(&o)
    );
    drop_result_index(&admin);
    let o = as_admin(
        &[&["opensearch", "delete"], &at[..], &["--yes"]].concat(),
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    block_on(admin.request("PUT", "/_index_template/trailwatch-cwl", Some(&template)))
        .unwrap()
        .check()
        .unwrap();

    // A cluster that refuses: said, naming the index, and exit 2.
    let o = run_trailwatch(
        &[
            "detect",
            "--opensearch-url",
            &n.url,
            "--opensearch-ca-cert",
            n.ca.to_str().unwrap(),
            "--index",
            "cwl-2026.02.0*",
        ],
        None,
        &[
            ("OPENSEARCH_USER", "admin"),
            ("OPENSEARCH_PASSWORD", "wrong"),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("{}/cwl-2026.02.0*", n.url)) && stderr(&o).contains("401"),
        "{}",
        stderr(&o)
    );
    block_on(admin.request("DELETE", "/cwl-2026.02.0*", None)).unwrap();
    block_on(admin.request("DELETE", "/_index_template/trailwatch-cwl", None)).unwrap();
}
