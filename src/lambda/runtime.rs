//! The deployed Lambdas. One binary is the bootstrap of all three; the
//! template's `TRAILWATCH_FUNCTION` says which handler it runs. The handlers
//! here only read the environment, build the clients and log one line per
//! invocation; the work is in [`super::delivery`], [`super::enricher`] and
//! [`super::custom_resource`]. The environment is read here alone.

use super::dead_letter::DeadLetters;
use super::delivery::{batch_of_event, deliver, DeliveryError, Limits, Paging};
use super::enricher::{Enricher, Form, Publisher};
use super::rule_pages::Pager;
use crate::opensearch::{Auth, OpenSearch, Target};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Which handler the bootstrap runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Forwarder,
    Enricher,
    /// The OpenSearch bootstrap custom resource.
    Bootstrap,
    /// The engine, driven by the trail bucket's notifications.
    Engine,
}

/// The handler to run, when this process is a Lambda bootstrap (the
/// runtime API is set, and so is `TRAILWATCH_FUNCTION`).
pub fn function_from_env() -> Option<Result<Function, String>> {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API")?;
    let name = std::env::var("TRAILWATCH_FUNCTION").ok()?;
    Some(match name.as_str() {
        "forwarder" => Ok(Function::Forwarder),
        "enricher" => Ok(Function::Enricher),
        "bootstrap" => Ok(Function::Bootstrap),
        "engine" => Ok(Function::Engine),
        other => Err(format!(
            "TRAILWATCH_FUNCTION={other:?}: use forwarder, enricher, bootstrap or engine"
        )),
    })
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("the environment has no {name}; the stack sets it"))
}

/// The OpenSearch client a Lambda uses: signed with its role, or with the
/// role it is told to assume (an existing domain's); or, when
/// OPENSEARCH_USER and OPENSEARCH_PASSWORD are set (a domain whose master
/// is an internal user; the stack never sets them), basic auth.
pub async fn opensearch_from_env(
    sdk: &aws_config::SdkConfig,
    timeout: Duration,
) -> Result<OpenSearch, String> {
    let endpoint = env("OPENSEARCH_ENDPOINT")?;
    if let (Ok(user), Ok(password)) = (
        std::env::var("OPENSEARCH_USER"),
        std::env::var("OPENSEARCH_PASSWORD"),
    ) {
        let target = Target {
            auth: Auth::Basic { user, password },
            ..Target::new(&endpoint, timeout)
        };
        return OpenSearch::connect(&target).map_err(|e| e.to_string());
    }
    let sdk = match std::env::var("OPENSEARCH_ROLE_ARN") {
        Ok(role) if !role.is_empty() => crate::aws::assume_role(sdk, &role, "trailwatch").await,
        _ => sdk.clone(),
    };
    let target = Target {
        auth: Auth::sigv4(&sdk).map_err(|e| e.to_string())?,
        ..Target::new(&endpoint, timeout)
    };
    OpenSearch::connect(&target).map_err(|e| e.to_string())
}

/// The `Instant` of a Lambda deadline given in milliseconds since the epoch.
pub fn deadline_instant(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Runs the Lambda runtime loop for `function` until the process is stopped.
pub fn run(function: Function) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // The Lambda's own environment: its role, region and nothing else.
        let sdk = crate::aws::AwsTarget::default().load().await;
        match function {
            Function::Forwarder => {
                let os = opensearch_from_env(&sdk, Duration::from_secs(30))
                    .await
                    .map_err(anyhow::Error::msg)?;
                let dead = DeadLetters::Sqs {
                    client: aws_sdk_sqs::Client::new(&sdk),
                    queue_url: env("DEAD_LETTER_QUEUE_URL").map_err(anyhow::Error::msg)?,
                };
                let mut paging = paging_from_env(&sdk).map_err(anyhow::Error::msg)?;
                if let Some(p) = paging.as_mut() {
                    p.org_accounts = org_accounts(&sdk, "forwarder").await;
                }
                let (os, dead, paging) = (&os, &dead, paging.as_ref());
                lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                    forward_invocation(os, dead, paging, event)
                        .await
                        .map_err(lambda_runtime::Error::from)
                }))
                .await
                .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
            }
            Function::Engine => {
                let set = packaged().map_err(anyhow::Error::msg)?;
                let s3 = aws_sdk_s3::Client::new(&sdk);
                let state = env("STATE_URL").map_err(anyhow::Error::msg)?;
                let store = super::engine::StateStore::parse(&state, || s3.clone());
                let shard = match std::env::var("SHARD") {
                    Ok(text) => Some(
                        super::shard::Shard::parse(&text)
                            .map_err(|e| anyhow::anyhow!("SHARD={e}"))?,
                    ),
                    Err(_) => None,
                };
                // Its pages go to the enricher, the one door out.
                let publisher = Publisher {
                    client: aws_sdk_sns::Client::new(&sdk),
                    topic_arn: env("ALERT_TOPIC_ARN").map_err(anyhow::Error::msg)?,
                    form: Form::Page,
                };
                let page_at = page_severity_from_env().map_err(anyhow::Error::msg)?;
                let mute = mute_from_env().map_err(anyhow::Error::msg)?;
                let org_accounts = org_accounts(&sdk, "engine").await;
                // With a domain the engine is a writer: of its findings, and
                // with `--ingest s3` of the deliveries.
                let indexer = match std::env::var("OPENSEARCH_ENDPOINT") {
                    Ok(_) => Some(Indexer {
                        deliveries: std::env::var("INDEX_DELIVERIES").as_deref() == Ok("true"),
                        os: opensearch_from_env(&sdk, Duration::from_secs(30))
                            .await
                            .map_err(anyhow::Error::msg)?,
                        dead: DeadLetters::Sqs {
                            client: aws_sdk_sqs::Client::new(&sdk),
                            queue_url: env("DEAD_LETTER_QUEUE_URL").map_err(anyhow::Error::msg)?,
                        },
                    }),
                    Err(_) => None,
                };
                let pages =
                    pager_from_env().map_err(anyhow::Error::msg)? != crate::deploy::WhoPages::Ad;
                let engine = EngineLambda {
                    pages,
                    set: &set,
                    s3: &s3,
                    store: &store,
                    publisher: &publisher,
                    page_at,
                    mute,
                    org_accounts: &org_accounts,
                    indexer: indexer.as_ref(),
                    resident: std::sync::Mutex::new(None),
                    shard,
                };
                let engine = &engine;
                lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                    engine_invocation(engine, event)
                        .await
                        .map_err(lambda_runtime::Error::from)
                }))
                .await
                .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
            }
            Function::Bootstrap => {
                let detectors = packaged().map_err(anyhow::Error::msg)?.detectors;
                let (sdk, detectors) = (&sdk, &detectors);
                lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                    bootstrap_invocation(sdk, detectors, event)
                        .await
                        .map_err(lambda_runtime::Error::from)
                }))
                .await
                .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
            }
            Function::Enricher => {
                let enricher = enricher_from_env(&sdk).await.map_err(anyhow::Error::msg)?;
                let enricher = &enricher;
                lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
                    enricher
                        .invocation(event.payload, &event.context.request_id)
                        .await
                }))
                .await
                .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
            }
        }
    })
}

/// The deployed enricher: the stack's environment, the shipped detectors.
/// Without `OPENSEARCH_ENDPOINT` (`--no-opensearch`) it only passes the
/// engine's pages on.
async fn enricher_from_env(sdk: &aws_config::SdkConfig) -> Result<Enricher, String> {
    let os = match std::env::var("OPENSEARCH_ENDPOINT") {
        Ok(_) => Some(opensearch_from_env(sdk, Duration::from_secs(20)).await?),
        Err(_) => None,
    };
    Ok(Enricher {
        dashboards: os.as_ref().map(|os| format!("{}/_dashboards", os.base())),
        findings_index: os.as_ref().map(|_| super::incidents::FINDINGS_INDEX.into()),
        os,
        detectors: crate::detector::shipped(),
        publisher: Some(Publisher {
            client: aws_sdk_sns::Client::new(sdk),
            topic_arn: env("NOTIFICATION_TOPIC_ARN")?,
            form: Form::Notification,
        }),
        baseline: chrono::Duration::days(1),
        top: 5,
        page_at: page_severity_from_env()?,
        pages_alerts: pager_from_env()? != crate::deploy::WhoPages::Engine,
    })
}

/// The detector files the package carries (`detectors/` beside the
/// bootstrap, as `plan` rendered them), else the built-in set.
fn packaged() -> Result<crate::detector::DetectorSet, String> {
    let root = std::env::var("LAMBDA_TASK_ROOT").unwrap_or_else(|_| ".".into());
    let dir = std::path::Path::new(&root).join("detectors");
    crate::detector::DetectorSet::load(dir.is_dir().then_some(dir.as_path()))
        .map_err(|e| e.to_string())
}

/// Who may page: `PAGER`, which `deploy --pager` sets (default both).
pub fn pager_from_env() -> Result<crate::deploy::WhoPages, String> {
    match std::env::var("PAGER") {
        Ok(s) => crate::deploy::WhoPages::parse(&s)
            .ok_or_else(|| format!("PAGER={s:?}: use engine, ad or both")),
        Err(_) => Ok(crate::deploy::WhoPages::Both),
    }
}

/// From what severity a deployed Lambda pages: `PAGE_SEVERITY`, which
/// `deploy --page-severity` sets (default medium).
pub fn page_severity_from_env() -> Result<crate::engine::Severity, String> {
    match std::env::var("PAGE_SEVERITY") {
        Ok(s) => crate::engine::Severity::parse(&s)
            .ok_or_else(|| format!("PAGE_SEVERITY={s:?}: use low, medium, high or critical")),
        Err(_) => Ok(crate::engine::severity::DEFAULT_PAGE),
    }
}

/// The principals the deployed engine and forwarder do not page on:
/// `MUTE`, comma-separated, as `deploy --mute` sets it (none without it).
pub fn mute_from_env() -> Result<crate::engine::mute::Mute, String> {
    let text = std::env::var("MUTE").unwrap_or_default();
    let patterns: Vec<&str> = text.split(',').filter(|p| !p.trim().is_empty()).collect();
    crate::engine::mute::Mute::new(&patterns).map_err(|e| format!("MUTE={text:?}: {e}"))
}

/// The deployed forwarder's paging: the packaged rules, paged from
/// `PAGE_SEVERITY` through the enricher (`ALERT_TOPIC_ARN`); none without
/// a topic.
fn paging_from_env(sdk: &aws_config::SdkConfig) -> Result<Option<Paging>, String> {
    let Ok(topic_arn) = std::env::var("ALERT_TOPIC_ARN") else {
        return Ok(None);
    };
    Ok(Some(Paging {
        rules: packaged()?.rules,
        page_at: page_severity_from_env()?,
        pager: Pager::Sns(Publisher {
            client: aws_sdk_sns::Client::new(sdk),
            topic_arn,
            form: Form::Page,
        }),
        findings_index: Some(super::incidents::FINDINGS_INDEX.into()),
        // Filled in when the forwarder starts ([`org_accounts`]).
        org_accounts: Vec::new(),
        mute: mute_from_env()?,
    }))
}

/// One custom resource event: handled within the time left (less a margin
/// to answer), then always answered at its ResponseURL; one log line.
pub async fn bootstrap_invocation(
    sdk: &aws_config::SdkConfig,
    detectors: &[crate::detector::Detector],
    event: LambdaEvent<Value>,
) -> Result<Value, super::custom_resource::CustomResourceError> {
    use super::custom_resource::{
        handle, handle_sign_in, respond, response, Event, HandleError, DASHBOARD_SIGN_IN,
        OPENSEARCH_OBJECTS,
    };
    let parsed = Event::parse(&event.payload)?;
    let left = deadline_instant(event.context.deadline)
        .saturating_duration_since(Instant::now())
        .saturating_sub(Duration::from_secs(15));
    // A peer that never answers is said as such, before the end.
    let wait = left.saturating_sub(Duration::from_secs(5));
    let work = async {
        match parsed.resource_type.as_str() {
            OPENSEARCH_OBJECTS => {
                let cluster = opensearch_from_env(sdk, Duration::from_secs(30));
                handle(&parsed, detectors, cluster, wait).await
            }
            DASHBOARD_SIGN_IN => {
                let client = aws_sdk_cognitoidentity::Client::new(sdk);
                handle_sign_in(&parsed, &client, wait).await
            }
            other => Err(HandleError::UnknownResource(other.to_owned())),
        }
    };
    let outcome = match tokio::time::timeout(left, work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(HandleError::OutOfTime {
            resource_type: parsed.resource_type.clone(),
            seconds: left.as_secs(),
        }),
    };
    let answer = response(&parsed, &outcome);
    let sent = respond(&parsed.response_url, &answer).await;
    println!(
        "{}",
        json!({"function": "bootstrap", "request_id": event.context.request_id,
               "resource_type": parsed.resource_type,
               "request_type": parsed.request_type, "status": answer["Status"],
               "reason": answer["Reason"], "answered": sent.is_ok()})
    );
    sent?;
    Ok(answer)
}

/// The organisation's accounts: `ORG_ACCOUNTS` (deploy's `--org-accounts`),
/// and for an organisation trail (`ORG_TRAIL=true`) every account
/// Organizations lists now; when it cannot, a warning and the rest.
async fn org_accounts(sdk: &aws_config::SdkConfig, function: &str) -> Vec<String> {
    let mut out: Vec<String> = std::env::var("ORG_ACCOUNTS")
        .unwrap_or_default()
        .split(',')
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    if super::organization::from_env() {
        let client = aws_sdk_organizations::Client::new(sdk);
        match super::organization::accounts(&client).await {
            Ok(accounts) => out.extend(accounts),
            Err(e) => println!(
                "{}",
                json!({"function": function, "warning": e.to_string()})
            ),
        }
    }
    out
}

/// What the deployed engine works with, made once per instance.
struct EngineLambda<'a> {
    /// It pages (`--pager engine` or `both`); otherwise it keeps its
    /// findings for the enricher to judge alerts with.
    pages: bool,
    set: &'a crate::detector::DetectorSet,
    s3: &'a aws_sdk_s3::Client,
    store: &'a super::engine::StateStore,
    publisher: &'a Publisher,
    page_at: crate::engine::Severity,
    /// Principals whose findings it drops (`MUTE`).
    mute: crate::engine::mute::Mute,
    org_accounts: &'a [String],
    indexer: Option<&'a Indexer>,
    /// The pipeline the last invocation saved, kept for the next: taken
    /// by an invocation, put back only when its state was saved.
    resident: std::sync::Mutex<Option<super::engine::Resident<'a>>>,
    /// The accounts it reads when engines share the trail (`SHARD=K/N`).
    shard: Option<super::shard::Shard>,
}

/// The engine's domain: where it keeps its findings, and (`--ingest s3`,
/// `deliveries`) indexes the deliveries' records.
struct Indexer {
    os: OpenSearch,
    dead: DeadLetters,
    deliveries: bool,
}

/// One engine invocation: the batch's deliveries read into the pipeline
/// (its state from the bucket), indexed into the domain with `--ingest
/// s3`, each paging incident published, then the state saved over the
/// version read; one JSON log line. A delivery that cannot be indexed, a
/// page that cannot be sent, or a state another writer moved fails the
/// invocation before the state moves: the batch comes back.
async fn engine_invocation(
    engine: &EngineLambda<'_>,
    event: LambdaEvent<Value>,
) -> Result<Value, anyhow::Error> {
    use crate::engine::pipeline::Pipeline;
    let EngineLambda {
        pages: may_page,
        set,
        s3,
        store,
        publisher,
        page_at,
        mute,
        org_accounts,
        indexer,
        resident,
        shard,
    } = engine;
    let fresh = || {
        let options = crate::engine::EngineOptions {
            rules: set.rules.clone(),
            org_accounts: org_accounts.to_vec(),
            ..crate::engine::EngineOptions::all()
        };
        let mut pipeline = Pipeline::new(&set.detectors, options, *page_at);
        pipeline.mute = mute.clone();
        pipeline
    };
    // A poisoned lock only means an invocation panicked: start afresh.
    let kept = resident.lock().map(|mut r| r.take()).unwrap_or_default();
    let problem = |e: &crate::cloudtrail::ReadError| {
        println!(
            "{}",
            json!({"function": "engine", "warning": e.to_string()})
        );
    };
    let invocation =
        super::engine::invoke(kept, fresh, s3, (store, *shard), &event.payload, &problem).await?;
    let indexed = match indexer.filter(|i| i.deliveries) {
        Some(Indexer { os, dead, .. }) => {
            let limits = Limits::until(deadline_instant(event.context.deadline));
            Some(super::engine::index(os, dead, &invocation.inputs, &limits).await?)
        }
        None => None,
    };
    // With a domain, one page per incident across invocations and the
    // monitors' alerts, through the findings index.
    let index = indexer.map(|Indexer { os, .. }| super::incidents::FindingsIndex {
        os,
        index: super::incidents::FINDINGS_INDEX,
    });
    let judged = match &index {
        Some(index) => super::engine::judged_pages(&invocation.step, index, *page_at).await,
        None => super::engine::Judged {
            pages: super::engine::pages(&invocation.step),
            kept: Vec::new(),
            error: None,
        },
    };
    let (mut pages, mut kept) = (judged.pages, judged.kept);
    if !may_page {
        // `--pager ad`: kept as seen, not as paged.
        pages.clear();
        kept.iter_mut().for_each(|k| k.paged = None);
    }
    for page in &pages {
        publisher.publish(page).await?;
    }
    // Kept once the pages went: a retried invocation pages again.
    let mut findings_error = judged.error;
    if let Some(index) = &index {
        if let Err(e) = index.keep_all(&kept).await {
            findings_error.get_or_insert(e);
        }
    }
    let (_, summary, saved) = super::engine::commit(store, invocation).await?;
    if let Ok(mut r) = resident.lock() {
        *r = saved;
    }
    let mut line = serde_json::to_value(&summary)?;
    line["function"] = json!("engine");
    line["request_id"] = json!(event.context.request_id);
    line["pages"] = json!(pages.len());
    if let Some(indexed) = indexed {
        line["indexed"] = json!(indexed);
    }
    if let Some(e) = findings_error {
        line["findings_not_kept"] = json!(e.to_string());
    }
    println!("{line}");
    Ok(line)
}

/// One forwarder invocation: deliver, then log one JSON line with the counts.
pub async fn forward_invocation(
    os: &OpenSearch,
    dead: &DeadLetters,
    paging: Option<&Paging>,
    event: LambdaEvent<Value>,
) -> Result<Value, DeliveryError> {
    let started = Instant::now();
    let limits = Limits::until(deadline_instant(event.context.deadline));
    let result = match batch_of_event(&event.payload) {
        Ok(batch) => deliver(os, &batch, dead, paging, &limits).await,
        Err(err) => Err(err),
    };
    let mut line = json!({
        "function": "forwarder",
        "request_id": event.context.request_id,
        "duration_ms": started.elapsed().as_millis() as u64,
    });
    let report = match &result {
        Ok(report) => Some(report.clone()),
        Err(e) => e.report().cloned(),
    };
    if let Some(report) = report {
        if let (Value::Object(line), Value::Object(counts)) = (&mut line, json!(report)) {
            line.extend(counts);
        }
    }
    if let Err(err) = &result {
        line["error"] = json!(err.to_string());
    }
    println!("{line}");
    result.map(|report| json!(report))
}
