//! Rendering the CloudFormation template (`templates/stack.json.hbs`) from a
//! [`DeployConfig`]: a pure function, so what `plan` writes is what the tests
//! lint and inspect.

use super::config::{DeployConfig, Ingest};
use handlebars::{handlebars_helper, Handlebars};
use serde::Serialize;
use serde_json::{json, Value};

const TEMPLATE: &str = include_str!("../../templates/stack.json.hbs");

/// Why rendering failed (a bug in the template, never the user's input).
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the stack template does not render: {0}")]
    Render(#[from] Box<handlebars::RenderError>),
    #[error("the stack template is not valid JSON once rendered: {0}")]
    Json(#[from] serde_json::Error),
}

/// Key administration and use, listed: key policies name actions, not `kms:*`.
const KMS_ADMIN_ACTIONS: [&str; 22] = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
];

/// The HTTP methods of the OpenSearch API, for roles that read and write.
const ES_ALL: [&str; 6] = [
    "es:ESHttpGet",
    "es:ESHttpHead",
    "es:ESHttpPost",
    "es:ESHttpPut",
    "es:ESHttpPatch",
    "es:ESHttpDelete",
];
/// Reading (searches are POSTs).
const ES_READ: [&str; 3] = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"];
/// Bulk indexing.
const ES_WRITE: [&str; 2] = ["es:ESHttpPost", "es:ESHttpPut"];

#[derive(Clone, Serialize)]
struct Lambda {
    /// Its resources' logical names start so (`EngineShard0Function`).
    logical: String,
    /// Its name after the prefix: function, log group, alarms.
    name: String,
    /// What it runs (`TRAILWATCH_FUNCTION`).
    function: &'static str,
    /// The role it runs as (`{role}Role`): its own, or shared by the
    /// engine's shards.
    role: String,
    /// It renders that role, whose policy covers these log groups and
    /// queues (ARNs as JSON: one, or a list for the engine's shards).
    own_role: bool,
    role_log_groups: Value,
    role_queues: Value,
    /// It declares its code key parameter (the shards share one).
    own_code_key: bool,
    /// Where its state lives in the state bucket (the engine).
    state_key: String,
    /// `K/N`: the accounts it reads when the engine is sharded.
    shard: Option<String>,
    description: &'static str,
    code_key: &'static str,
    timeout: u32,
    concurrency: u32,
    /// It publishes to the notification topic: what people receive (the
    /// enricher alone).
    publishes: bool,
    /// It sends its pages, judged and rendered, to the alert topic, for
    /// the enricher to pass on (the engine, the forwarder's rules).
    sends_pages: bool,
    es_actions: Vec<&'static str>,
    /// The role this Lambda assumes to reach the domain (an existing
    /// domain's role; the master role for the bootstrap), as JSON.
    domain_role: Option<Value>,
    /// From what severity it pages on rule findings (the forwarder).
    page_severity: Option<&'static str>,
    /// The organisation's other accounts, comma-separated (the forwarder).
    org_accounts: Option<String>,
    /// The principals it does not page on, comma-separated (`--mute`; the
    /// forwarder and the engine).
    mute: Option<String>,
    /// It lists an organisation trail's accounts when it starts (the
    /// forwarder, with `--organization-trail`).
    lists_org_accounts: bool,
    /// It sets the identity pool's sign-in role mapping (the bootstrap).
    maps_sign_in: bool,
    /// It reads the trail's deliveries from the engine queue's
    /// notifications and keeps its state in the state bucket (the engine).
    reads_deliveries: bool,
    /// It reaches the domain (its endpoint is in its environment).
    uses_domain: bool,
    /// It indexes the deliveries it reads (the engine with `--ingest s3`).
    indexes_deliveries: bool,
    /// Who may page (`--pager`), for the engine and the enricher.
    pager: Option<&'static str>,
    /// A throttle means work waits (not the engine, whose one reserved
    /// execution turns the queue's second poller away by design).
    alarm_throttles: bool,
}

/// One engine queue and what reads it.
#[derive(Serialize)]
struct EngineQueue {
    /// `Engine` (one engine) or `EngineShard{K}`: its queue is
    /// `{logical}Queue`, read by `{logical}Function`.
    logical: String,
    /// The queue's name after the prefix.
    name: String,
    /// The name of the engine Lambda that reads it, after the prefix.
    reader: String,
}

#[derive(Serialize)]
struct DashboardRole {
    logical: &'static str,
    name: &'static str,
    actions: Vec<&'static str>,
}

/// One statement of the domain's access policy: a role and its methods.
#[derive(Serialize)]
struct DomainAccess {
    logical: String,
    actions: Vec<&'static str>,
}

/// The roles each party reaches the domain as, as JSON: the stack's own
/// roles for a new domain, the given ones for an existing domain.
#[derive(Serialize)]
struct DomainRoles {
    forwarder: Value,
    /// The engine keeps its findings as a writer.
    engine: Value,
    enricher: Value,
    /// Cognito's admins and read-only dashboard users (a new domain's).
    admin: Option<Value>,
    reader: Option<Value>,
}

#[derive(Serialize)]
struct Context<'a> {
    #[serde(flatten)]
    config: &'a DeployConfig,
    /// The trail feeds a CloudWatch Logs group (`--ingest cwl`).
    cwl: bool,
    /// The stack makes a domain (neither an existing one nor none).
    new_domain: bool,
    /// The stack makes the trail and its bucket (no `--trail-bucket`).
    own_trail: bool,
    /// The bucket the engine reads, as an ARN in an `Fn::Sub`.
    trail_bucket_arn: String,
    /// The Lambdas that page to the notification topic, by logical name.
    /// The Lambdas' roles that send to the dead-letter queue.
    publishers: Vec<String>,
    /// Who may publish to the notification topic (the enricher).
    notifiers: Vec<String>,
    /// Who may publish to the alert topic: OpenSearch's alert publisher
    /// with a domain, and the Lambdas that send pages.
    alert_senders: Vec<String>,
    /// How long the engine queue hides a batch being worked on.
    engine_visibility_seconds: u32,
    /// The engine's queues, one per shard (`{logical}Queue`, fed by the
    /// bucket, or by the fan-out topic when sharded).
    engine_queues: Vec<EngineQueue>,
    /// The bucket's notifications go to a topic that fans them out to the
    /// shards' queues (`--engine-shards` over 1).
    fanout: bool,
    zone_count: Option<u32>,
    identity_pool_name: String,
    /// The break-glass role's ARN, as JSON.
    break_glass: String,
    /// The domain's name in ARNs: the stack's, or any for an existing domain.
    domain_name: String,
    kms_admin_actions: &'static [&'static str],
    es_actions: &'static [&'static str],
    /// The endpoint as a JSON value: an attribute of the domain, or the given one.
    endpoint: String,
    lambdas: Vec<Lambda>,
    dashboard_roles: Vec<DashboardRole>,
    /// A new domain's access policy, a statement per role.
    domain_access: Vec<DomainAccess>,
    /// In a VPC: what the Lambdas may create network interfaces in.
    eni_create_resources: Vec<Value>,
    /// The stack applies the OpenSearch objects itself (a custom resource)
    /// when there is a role for its bootstrap to act as.
    bootstrap: bool,
    domain_roles: DomainRoles,
}

handlebars_helper!(to_json: |v: Json| serde_json::to_string(v).unwrap_or_default());

/// The template for `config`, as JSON.
pub fn render(config: &DeployConfig) -> Result<Value, TemplateError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_helper("json", Box::new(to_json));
    let endpoint = match &config.existing_domain {
        Some(d) => json!(d.endpoint),
        None => {
            json!({"Fn::Join": ["", ["https://", {"Fn::GetAtt": ["Domain", "DomainEndpoint"]}]]})
        }
    };
    let arn = |kind: &str, id: &str| json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:ec2:${{AWS::Region}}:${{AWS::AccountId}}:{kind}/{id}")});
    let mut eni_create_resources = vec![arn("network-interface", "*")];
    if let Some(vpc) = &config.vpc {
        eni_create_resources.extend(vpc.subnet_ids.iter().map(|s| arn("subnet", s)));
        eni_create_resources.extend(
            vpc.security_group_ids
                .iter()
                .map(|s| arn("security-group", s)),
        );
    }
    let get_att = |logical: &str| json!({"Fn::GetAtt": [logical, "Arn"]});
    let cwl = config.ingest == Ingest::Cwl;
    // Who writes the records into the domain: the forwarder from the log
    // group, or the engine from the bucket.
    let writer = if cwl { "ForwarderRole" } else { "EngineRole" };
    let (bootstrap_role, domain_roles) = match &config.existing_domain {
        None => (
            config.opensearch.then(|| get_att("MasterRole")),
            DomainRoles {
                forwarder: get_att(writer),
                engine: get_att("EngineRole"),
                enricher: get_att("EnricherRole"),
                admin: Some(get_att("AdminRole")),
                reader: Some(get_att("ReadOnlyRole")),
            },
        ),
        Some(d) => (
            d.admin_role_arn.as_ref().map(|a| json!(a)),
            DomainRoles {
                forwarder: json!(d.writer_role_arn),
                engine: json!(d.writer_role_arn),
                enricher: json!(d.reader_role_arn),
                admin: None,
                reader: None,
            },
        ),
    };
    let lambdas = lambdas(config, bootstrap_role.clone());
    let dashboard_roles = vec![
        DashboardRole {
            logical: "AdminRole",
            name: "dashboards-admin",
            actions: ES_ALL.to_vec(),
        },
        DashboardRole {
            logical: "ReadOnlyRole",
            name: "dashboards-read-only",
            actions: ES_READ.to_vec(),
        },
    ];
    // The domain's access policy gives each role the methods its own policy has.
    let mut domain_access = vec![DomainAccess {
        logical: "MasterRole".into(),
        actions: ES_ALL.to_vec(),
    }];
    domain_access.extend(dashboard_roles.iter().map(|r| DomainAccess {
        logical: r.logical.into(),
        actions: r.actions.clone(),
    }));
    domain_access.extend(
        lambdas
            .iter()
            .filter(|l| l.domain_role.is_none() && !l.es_actions.is_empty())
            .map(|l| DomainAccess {
                logical: format!("{}Role", l.role),
                actions: l.es_actions.clone(),
            }),
    );
    domain_access.dedup_by(|a, b| a.logical == b.logical);
    let context = Context {
        cwl,
        new_domain: config.opensearch && config.existing_domain.is_none(),
        own_trail: config.trail_bucket.is_none(),
        trail_bucket_arn: match &config.trail_bucket {
            Some(name) => format!("arn:${{AWS::Partition}}:s3:::{name}"),
            None => "${TrailBucket.Arn}".into(),
        },
        publishers: roles(&lambdas, |l| l.publishes || l.sends_pages),
        notifiers: roles(&lambdas, |l| l.publishes),
        alert_senders: config
            .opensearch
            .then(|| "AlertPublishRole".to_owned())
            .into_iter()
            .chain(roles(&lambdas, |l| l.sends_pages))
            .collect(),
        engine_queues: lambdas
            .iter()
            .filter(|l| l.reads_deliveries)
            .map(|l| EngineQueue {
                logical: l.logical.clone(),
                reader: l.name.clone(),
                name: match &l.shard {
                    Some(k_of_n) => format!("deliveries-{}", k_of_n.replace('/', "-of-")),
                    None => "deliveries".into(),
                },
            })
            .collect(),
        fanout: config.engine_shards > 1,
        engine_visibility_seconds: 6 * ENGINE_TIMEOUT_SECONDS,
        bootstrap: bootstrap_role.is_some(),
        domain_roles,
        eni_create_resources,
        config,
        zone_count: config.zone_count(),
        break_glass: match &config.break_glass_role_arn {
            Some(arn) => json!(arn),
            None => json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{}-break-glass", config.prefix)}),
        }
        .to_string(),
        domain_name: match &config.existing_domain {
            Some(_) => "*".into(),
            None => config.prefix.clone(),
        },
        identity_pool_name: config.prefix.replace('-', "_"),
        kms_admin_actions: &KMS_ADMIN_ACTIONS,
        es_actions: &ES_ALL,
        endpoint: endpoint.to_string(),
        lambdas,
        dashboard_roles,
        domain_access,
    };
    let text = hb.render_template(TEMPLATE, &context).map_err(Box::new)?;
    Ok(serde_json::from_str(&text)?)
}

/// The ARNs of `{logical}{kind}` for each of `logicals`, as JSON: one
/// alone, several as a list.
fn arns(logicals: &[String], kind: &str) -> Value {
    let mut all: Vec<Value> = logicals
        .iter()
        .map(|l| json!({"Fn::GetAtt": [format!("{l}{kind}"), "Arn"]}))
        .collect();
    match all.len() {
        1 => all.remove(0),
        _ => Value::Array(all),
    }
}

/// The roles (`{role}Role`) of the Lambdas that `which` picks, each once.
fn roles(lambdas: &[Lambda], which: impl Fn(&Lambda) -> bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lambdas.iter().filter(|l| which(l)) {
        let role = format!("{}Role", l.role);
        if !out.contains(&role) {
            out.push(role);
        }
    }
    out
}

/// The stack's Lambdas for `config`: the forwarder with a log group, the
/// enricher with a domain, the engine always, and the bootstrap when it
/// has a role to act as on the domain (`acting_as`).
fn lambdas(config: &DeployConfig, acting_as: Option<Value>) -> Vec<Lambda> {
    let existing = config.existing_domain.as_ref();
    let cwl = config.ingest == Ingest::Cwl;
    let org_accounts = (!config.org_accounts.is_empty()).then(|| config.org_accounts.join(","));
    let mute = (!config.mute.is_empty()).then(|| config.mute.join(","));
    // A Lambda named `name` (`Forwarder`'s resources), with a role of
    // its own.
    let base = |function: &'static str, logical: &str| Lambda {
        logical: logical.to_owned(),
        name: function.to_owned(),
        function,
        role: logical.to_owned(),
        own_role: true,
        role_log_groups: arns(&[logical.to_owned()], "LogGroup"),
        role_queues: Value::Null,
        own_code_key: true,
        state_key: String::new(),
        shard: None,
        description: "",
        code_key: "",
        timeout: 60,
        concurrency: 1,
        publishes: false,
        sends_pages: false,
        es_actions: Vec::new(),
        domain_role: None,
        page_severity: None,
        org_accounts: None,
        mute: None,
        lists_org_accounts: false,
        maps_sign_in: false,
        reads_deliveries: false,
        uses_domain: false,
        indexes_deliveries: false,
        alarm_throttles: true,
        pager: None,
    };
    let mut out = Vec::new();
    if cwl {
        out.push(Lambda {
            description: "trailwatch: CloudWatch Logs subscription to OpenSearch _bulk",
            code_key: "ForwarderCodeKey",
            timeout: 120,
            concurrency: 20,
            // It pages on rule findings (StopLogging, …), through the
            // enricher.
            sends_pages: true,
            page_severity: Some(config.page_severity.name()),
            org_accounts: org_accounts.clone(),
            mute: mute.clone(),
            lists_org_accounts: config.organization_trail,
            es_actions: ES_WRITE.to_vec(),
            domain_role: existing.map(|d| json!(d.writer_role_arn)),
            uses_domain: true,
            ..base("forwarder", "Forwarder")
        });
    }
    // The enricher is the one door out: every page reaches people through
    // it. With a domain it also enriches the anomaly detectors' alerts.
    let domain = config.opensearch;
    out.push(Lambda {
        description: "trailwatch: alert in, readable notification with context and cost out",
        code_key: "EnricherCodeKey",
        timeout: 60,
        concurrency: 5,
        publishes: true,
        es_actions: if domain { ES_READ.to_vec() } else { Vec::new() },
        // It publishes an anomaly detector's alert from this severity.
        page_severity: Some(config.page_severity.name()),
        domain_role: existing
            .filter(|_| domain)
            .map(|d| json!(d.reader_role_arn)),
        uses_domain: domain,
        pager: Some(config.pager.name()),
        ..base("enricher", "Enricher")
    });
    // The engine: one execution at a time, so invocations never overlap
    // (its conditional state write is the second guard). With a domain it
    // keeps its findings in the findings index, as the forwarder's writer,
    // so an incident pages once; with `--ingest s3` it also indexes the
    // deliveries.
    // Sharded (`--engine-shards N`), each shard reads the accounts that
    // fall to it from a queue of its own and keeps its own state; the
    // shards share one role and one code key.
    let n = config.engine_shards.max(1);
    let shard_logical = |k: u32| {
        if n == 1 {
            "Engine".to_owned()
        } else {
            format!("EngineShard{k}")
        }
    };
    let shards: Vec<String> = (0..n).map(shard_logical).collect();
    for (k, logical) in (0..n).zip(&shards) {
        out.push(Lambda {
            name: if n == 1 {
                "engine".into()
            } else {
                format!("engine-shard-{k}")
            },
            role: "Engine".into(),
            own_role: k == 0,
            role_log_groups: arns(&shards, "LogGroup"),
            role_queues: arns(&shards, "Queue"),
            own_code_key: k == 0,
            state_key: if n == 1 {
                "engine/state.json.gz".into()
            } else {
                format!("engine/shard-{k}-of-{n}/state.json.gz")
            },
            shard: (n > 1).then(|| format!("{k}/{n}")),
            description: "trailwatch: the detect engine over the trail bucket's new deliveries; pages each incident once",
            code_key: "EngineCodeKey",
            timeout: ENGINE_TIMEOUT_SECONDS,
            concurrency: 1,
            sends_pages: true,
            page_severity: Some(config.page_severity.name()),
            org_accounts: org_accounts.clone(),
            mute: mute.clone(),
            lists_org_accounts: config.organization_trail,
            es_actions: if domain && existing.is_none() {
                ES_WRITE.to_vec()
            } else {
                Vec::new()
            },
            domain_role: existing
                .filter(|_| domain)
                .map(|d| json!(d.writer_role_arn)),
            reads_deliveries: true,
            uses_domain: domain,
            indexes_deliveries: domain && !cwl,
            alarm_throttles: false,
            pager: Some(config.pager.name()),
            ..base("engine", logical)
        });
    }
    // The bootstrap custom resources' Lambda acts as the master role of a
    // new domain, or as the admin role given for an existing one (without
    // it, an existing domain's objects are the CLI's).
    if let Some(acting_as) = acting_as {
        out.push(Lambda {
                        description: "trailwatch: applies the OpenSearch objects and the Dashboards sign-in role mapping on stack create and update (custom resources)",
            code_key: "BootstrapCodeKey",
            timeout: 600,
            concurrency: 1,
            maps_sign_in: existing.is_none(),
            domain_role: Some(acting_as),
            uses_domain: true,
            ..base("bootstrap", "Bootstrap")
        });
    }
    out
}

/// The engine's timeout; its queue hides a batch six times as long, as
/// the Lambda service advises.
const ENGINE_TIMEOUT_SECONDS: u32 = 300;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::DeployOptions;

    fn render_with(o: DeployOptions) -> Value {
        render(&o.validate().unwrap()).unwrap()
    }

    /// Every IAM-style statement in the template: (where, statement).
    pub(crate) fn statements(t: &Value) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        fn walk(path: String, v: &Value, out: &mut Vec<(String, Value)>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::Array(list)) = m.get("Statement") {
                        out.extend(list.iter().map(|s| (path.clone(), s.clone())));
                    }
                    for (k, x) in m {
                        walk(format!("{path}.{k}"), x, out);
                    }
                }
                Value::Array(list) => list
                    .iter()
                    .enumerate()
                    .for_each(|(i, x)| walk(format!("{path}[{i}]"), x, out)),
                _ => {}
            }
        }
        walk(String::new(), t, &mut out);
        out
    }

    fn actions(s: &Value) -> Vec<String> {
        match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(l) => l
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn no_allow_statement_has_a_wildcard_action() {
        for o in [
            DeployOptions::default(),
            DeployOptions {
                vpc_subnet_ids: vec!["subnet-0a1b2c3d".into(), "subnet-0a1b2c3e".into()],
                vpc_security_group_ids: vec!["sg-0a1b2c3d".into()],
                ..Default::default()
            },
        ] {
            let t = render_with(o);
            let all = statements(&t);
            assert!(all.len() > 15, "{}", all.len());
            for (at, s) in all.iter().filter(|(_, s)| s["Effect"] == "Allow") {
                for a in actions(s) {
                    assert!(!a.contains('*'), "{at}: Allow with wildcard action {a}");
                }
                // A resource "*" only where AWS allows nothing narrower: key
                // policies (the key itself) and describing network interfaces.
                if s["Resource"] == "*" {
                    let a = actions(s);
                    assert!(
                        at.contains("Key.Properties.KeyPolicy")
                            || a == ["ec2:DescribeNetworkInterfaces"],
                        "{at}: {a:?} on every resource"
                    );
                }
            }
        }
    }

    #[test]
    fn the_domain_is_encrypted_tls_only_fine_grained_and_not_public() {
        let t = render_with(DeployOptions::default());
        let d = &t["Resources"]["Domain"]["Properties"];
        assert_eq!(d["EncryptionAtRestOptions"]["Enabled"], true);
        assert_eq!(d["NodeToNodeEncryptionOptions"]["Enabled"], true);
        assert_eq!(d["DomainEndpointOptions"]["EnforceHTTPS"], true);
        assert!(d["DomainEndpointOptions"]["TLSSecurityPolicy"]
            .as_str()
            .unwrap()
            .starts_with("Policy-Min-TLS-1-2"));
        assert_eq!(d["AdvancedSecurityOptions"]["Enabled"], true);
        assert_eq!(
            d["AdvancedSecurityOptions"]["InternalUserDatabaseEnabled"],
            false
        );
        assert_eq!(d["CognitoOptions"]["Enabled"], true);
        assert_eq!(
            d["ClusterConfig"]["ZoneAwarenessConfig"]["AvailabilityZoneCount"],
            2
        );
        assert_eq!(t["Resources"]["Domain"]["DeletionPolicy"], "Retain");
        assert_eq!(t["Resources"]["TrailBucket"]["DeletionPolicy"], "Retain");
        assert_eq!(t["Resources"]["LogGroup"]["DeletionPolicy"], "Retain");
        let trail = &t["Resources"]["Trail"]["Properties"];
        assert_eq!(
            (
                trail["IsMultiRegionTrail"].clone(),
                trail["EnableLogFileValidation"].clone()
            ),
            (json!(true), json!(true))
        );
        assert_eq!(
            trail["EventSelectors"][0]["DataResources"][0]["Type"],
            "AWS::Lambda::Function"
        );
        let pool = &t["Resources"]["UserPool"]["Properties"];
        assert_eq!(
            pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
            true
        );
        assert_eq!(pool["Policies"]["PasswordPolicy"]["MinimumLength"], 14);
    }

    #[test]
    fn option_families_change_what_they_should() {
        let no_lambda = render_with(DeployOptions {
            no_lambda_trail: true,
            ..Default::default()
        });
        assert!(
            no_lambda["Resources"]["Trail"]["Properties"]["EventSelectors"][0]
                .get("DataResources")
                .is_none()
        );

        // The forwarder pages on rule findings from --page-severity, and
        // the enricher on anomaly detectors' alerts.
        let env = |t: &Value, f: &str| {
            t["Resources"][f]["Properties"]["Environment"]["Variables"].clone()
        };
        let default = render_with(DeployOptions::default());
        assert_eq!(
            env(&default, "ForwarderFunction")["PAGE_SEVERITY"],
            "medium"
        );
        assert_eq!(env(&default, "EnricherFunction")["PAGE_SEVERITY"], "medium");
        let high = render_with(DeployOptions {
            page_severity: Some(crate::engine::Severity::High),
            ..Default::default()
        });
        assert_eq!(env(&high, "ForwarderFunction")["PAGE_SEVERITY"], "high");
        assert_eq!(env(&high, "EnricherFunction")["PAGE_SEVERITY"], "high");

        // The organisation's other accounts reach the forwarder's rules;
        // without them the variable is not there (the trail's own count).
        assert!(env(&default, "ForwarderFunction")
            .get("ORG_ACCOUNTS")
            .is_none());
        let org = render_with(DeployOptions {
            org_accounts: vec!["444455556666".into(), "777788889999".into()],
            ..Default::default()
        });
        assert_eq!(
            env(&org, "ForwarderFunction")["ORG_ACCOUNTS"],
            "444455556666,777788889999"
        );
        assert!(env(&org, "EnricherFunction").get("ORG_ACCOUNTS").is_none());
        // Muted principals reach the two that page on their own findings.
        let muted = render_with(DeployOptions {
            mute: vec!["assumed-role/deploy/*".into(), "user/\"odd\"@1".into()],
            ..Default::default()
        });
        for f in ["ForwarderFunction", "EngineFunction"] {
            assert_eq!(
                env(&muted, f)["MUTE"],
                "assumed-role/deploy/*,user/\"odd\"@1",
                "{f}"
            );
            assert!(env(&default, f).get("MUTE").is_none(), "{f}");
        }
        assert!(env(&muted, "EnricherFunction").get("MUTE").is_none());
        // An organisation trail: the trail says so, CloudTrail may write the
        // member accounts' deliveries (under the organisation's id, still
        // only as this trail), and the forwarder, alone, may list the
        // accounts when it starts.
        assert!(env(&default, "ForwarderFunction")
            .get("ORG_TRAIL")
            .is_none());
        assert!(default["Resources"]["Trail"]["Properties"]
            .get("IsOrganizationTrail")
            .is_none());
        let whole = render_with(DeployOptions {
            organization_trail: true,
            ..Default::default()
        });
        assert_eq!(
            whole["Resources"]["Trail"]["Properties"]["IsOrganizationTrail"],
            true
        );
        assert_eq!(env(&whole, "ForwarderFunction")["ORG_TRAIL"], "true");
        let role_statements = |t: &Value, role: &str| {
            t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap()
                .clone()
        };
        let lists =
            json!({"Effect": "Allow", "Action": "organizations:ListAccounts", "Resource": "*"});
        assert!(role_statements(&whole, "ForwarderRole").contains(&lists));
        assert!(!role_statements(&whole, "EnricherRole").contains(&lists));
        assert!(!role_statements(&default, "ForwarderRole").contains(&lists));
        let writes = whole["Resources"]["TrailBucketPolicy"]["Properties"]["PolicyDocument"]
            ["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "CloudTrailWrites")
            .unwrap()
            .clone();
        assert_eq!(
            writes["Resource"][1],
            json!({"Fn::Sub": "${TrailBucket.Arn}/AWSLogs/o-*"})
        );
        assert!(writes["Condition"]["StringEquals"]["aws:SourceArn"].is_object());

        // S3 data events: advanced selectors (they cannot mix with basic
        // ones), every bucket's objects but the trail's own two, which would
        // log the trail's own deliveries in a loop.
        for lambda in [true, false] {
            let t = render_with(DeployOptions {
                s3_data_events: true,
                no_lambda_trail: !lambda,
                ..Default::default()
            });
            let trail = &t["Resources"]["Trail"]["Properties"];
            assert!(trail.get("EventSelectors").is_none());
            let selectors = trail["AdvancedEventSelectors"].as_array().unwrap();
            assert_eq!(selectors.len(), if lambda { 3 } else { 2 });
            let fields = |i: usize| selectors[i]["FieldSelectors"].as_array().unwrap().clone();
            assert_eq!(
                fields(0),
                [json!({"Field": "eventCategory", "Equals": ["Management"]})]
            );
            let s3 = fields(selectors.len() - 1);
            assert!(s3.contains(&json!({"Field": "resources.type", "Equals": ["AWS::S3::Object"]})));
            assert!(
                s3.contains(&json!({"Field": "resources.ARN", "NotStartsWith": [
                {"Fn::Sub": "${TrailBucket.Arn}/"}, {"Fn::Sub": "${AccessLogBucket.Arn}/"}]}))
            );
            let has_lambda = selectors.iter().any(|s| {
                s["FieldSelectors"][1]
                    == json!({"Field": "resources.type", "Equals": ["AWS::Lambda::Function"]})
            });
            assert_eq!(has_lambda, lambda);
        }

        let existing = render_with(DeployOptions {
            existing_domain_endpoint: Some("https://search-x.eu-west-1.es.amazonaws.com".into()),
            existing_domain_writer_role_arn: Some("arn:aws:iam::123456789012:role/os".into()),
            existing_domain_reader_role_arn: Some(
                "arn:aws:iam::123456789012:role/os-reader".into(),
            ),
            ..Default::default()
        });
        let r = existing["Resources"].as_object().unwrap();
        for gone in [
            "Domain",
            "UserPool",
            "IdentityPool",
            "AdminRole",
            "CognitoAccessRole",
        ] {
            assert!(
                !r.contains_key(gone),
                "{gone} is not made with an existing domain"
            );
        }
        let env = &r["ForwarderFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            env["OPENSEARCH_ENDPOINT"],
            "https://search-x.eu-west-1.es.amazonaws.com"
        );
        assert_eq!(
            env["OPENSEARCH_ROLE_ARN"],
            "arn:aws:iam::123456789012:role/os"
        );
        // The enricher reads through a role of its own, which cannot write.
        let env = &r["EnricherFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            env["OPENSEARCH_ROLE_ARN"],
            "arn:aws:iam::123456789012:role/os-reader"
        );
        let assumed = |role: &str| -> Vec<Value> {
            statements(&r[role])
                .into_iter()
                .filter(|(_, s)| s["Action"] == "sts:AssumeRole" && s.get("Resource").is_some())
                .map(|(_, s)| s["Resource"].clone())
                .collect()
        };
        assert_eq!(
            assumed("ForwarderRole"),
            [json!("arn:aws:iam::123456789012:role/os")]
        );
        assert_eq!(
            assumed("EnricherRole"),
            [json!("arn:aws:iam::123456789012:role/os-reader")]
        );
        assert_eq!(
            existing["Outputs"]["DomainEndpoint"]["Value"],
            "https://search-x.eu-west-1.es.amazonaws.com"
        );

        let vpc = render_with(DeployOptions {
            vpc_subnet_ids: vec!["subnet-0a1b2c3d".into(), "subnet-0a1b2c3e".into()],
            vpc_security_group_ids: vec!["sg-0a1b2c3d".into()],
            alert_email: Some("ops@example.com".into()),
            ..Default::default()
        });
        assert_eq!(
            vpc["Resources"]["Domain"]["Properties"]["VPCOptions"]["SubnetIds"],
            json!(["subnet-0a1b2c3d", "subnet-0a1b2c3e"])
        );
        assert_eq!(
            vpc["Resources"]["EnricherFunction"]["Properties"]["VpcConfig"]["SecurityGroupIds"],
            json!(["sg-0a1b2c3d"])
        );
        assert_eq!(
            vpc["Resources"]["NotificationEmail"]["Properties"]["Endpoint"],
            "ops@example.com"
        );

        let named = render_with(DeployOptions {
            prefix: Some("acme-tw".into()),
            ..Default::default()
        });
        assert_eq!(
            named["Resources"]["Domain"]["Properties"]["DomainName"],
            "acme-tw"
        );
        assert_eq!(
            named["Resources"]["IdentityPool"]["Properties"]["IdentityPoolName"],
            "acme_tw"
        );
    }

    /// Every variant the options make: a new domain, an existing one, no
    /// Lambda data events, and a VPC.
    fn variants() -> Vec<(&'static str, Value)> {
        vec![
            ("default", render_with(DeployOptions::default())),
            (
                "engine shards",
                render_with(DeployOptions {
                    engine_shards: Some(3),
                    ..Default::default()
                }),
            ),
            (
                "existing domain",
                render_with(DeployOptions {
                    existing_domain_endpoint: Some(
                        "https://search-x.eu-west-1.es.amazonaws.com".into(),
                    ),
                    existing_domain_writer_role_arn: Some(
                        "arn:aws:iam::123456789012:role/os".into(),
                    ),
                    existing_domain_reader_role_arn: Some(
                        "arn:aws:iam::123456789012:role/os-reader".into(),
                    ),
                    ..Default::default()
                }),
            ),
            (
                "no lambda trail",
                render_with(DeployOptions {
                    no_lambda_trail: true,
                    prefix: Some("acme-tw".into()),
                    ..Default::default()
                }),
            ),
            (
                "s3 data events",
                render_with(DeployOptions {
                    s3_data_events: true,
                    ..Default::default()
                }),
            ),
            (
                "vpc",
                render_with(DeployOptions {
                    vpc_subnet_ids: vec!["subnet-0a1b2c3d".into(), "subnet-0a1b2c3e".into()],
                    vpc_security_group_ids: vec!["sg-0a1b2c3d".into()],
                    ..Default::default()
                }),
            ),
            (
                "ingest s3",
                render_with(DeployOptions {
                    ingest: Some(Ingest::S3),
                    ..Default::default()
                }),
            ),
            (
                "no opensearch",
                render_with(DeployOptions {
                    no_opensearch: true,
                    organization_trail: true,
                    ..Default::default()
                }),
            ),
            (
                "trail bucket",
                render_with(DeployOptions {
                    trail_bucket: Some(CONTROL_TOWER.into()),
                    ..Default::default()
                }),
            ),
        ]
    }

    /// A Control Tower log archive bucket's name.
    const CONTROL_TOWER: &str = "aws-controltower-logs-123456789012-eu-west-1";

    /// With `--trail-bucket` the stack makes no trail and no trail bucket:
    /// the engine reads that bucket's deliveries, and its queue admits
    /// that bucket's notifications alone.
    #[test]
    fn an_existing_trail_bucket_is_read_and_no_trail_is_made() {
        let t = render_with(DeployOptions {
            trail_bucket: Some(CONTROL_TOWER.into()),
            no_opensearch: true,
            ..Default::default()
        });
        let resources = t["Resources"].as_object().unwrap();
        for gone in ["Trail", "TrailBucket", "TrailBucketPolicy", "LogGroup"] {
            assert!(!resources.contains_key(gone), "{gone}");
        }
        assert!(of_type(&t, "AWS::CloudTrail::Trail").is_empty());
        let text = t.to_string();
        assert!(
            !text.contains("cloudtrail.amazonaws.com"),
            "CloudTrail is not a principal of this stack"
        );
        let reads = format!("arn:${{AWS::Partition}}:s3:::{CONTROL_TOWER}/AWSLogs/*");
        let engine = t["Resources"]["EngineRole"]["Properties"]["Policies"].to_string();
        assert!(engine.contains(&reads), "{engine}");
        let queue =
            &t["Resources"]["EngineQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
        assert_eq!(
            sub(&queue["Condition"]["ArnLike"]["aws:SourceArn"]),
            format!("arn:${{AWS::Partition}}:s3:::{CONTROL_TOWER}")
        );
        assert_eq!(t["Outputs"]["TrailBucketName"]["Value"], CONTROL_TOWER);
        assert!(t["Outputs"]["EngineQueueArn"].is_object());
    }

    fn of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
        t["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["Type"] == kind)
            .collect()
    }

    /// `pattern` with `*` matching any run of characters.
    fn glob(pattern: &str, text: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == text,
            Some((head, tail)) => {
                text.starts_with(head) && (head.len()..=text.len()).any(|i| glob(tail, &text[i..]))
            }
        }
    }

    fn sub(v: &Value) -> &str {
        v["Fn::Sub"].as_str().or(v.as_str()).unwrap_or("")
    }

    fn key_statement<'a>(t: &'a Value, sid: &str) -> &'a Value {
        t["Resources"]["Key"]["Properties"]["KeyPolicy"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no key policy statement {sid}"))
    }

    /// The engine may read the trail's deliveries, keep its state, take
    /// its queue's messages and page, and nothing more: no wildcard
    /// action, no S3 beyond the two prefixes, the domain only to index
    /// (`--ingest s3`), Organizations only for an organisation trail.
    #[test]
    fn the_engine_reads_the_trail_keeps_its_state_and_pages_and_nothing_more() {
        for (variant, t) in variants() {
            let role = &t["Resources"]["EngineRole"]["Properties"]["Policies"];
            let mut granted = Vec::new();
            for (_, s) in statements(role) {
                assert_eq!(s["Effect"], "Allow", "{variant}");
                let resource = s["Resource"].to_string();
                for a in actions(&s) {
                    assert!(!a.contains('*'), "{variant}: {a}");
                    granted.push((a, resource.clone()));
                }
            }
            let on = |action: &str| -> Vec<&str> {
                granted
                    .iter()
                    .filter(|(a, _)| a == action)
                    .map(|(_, r)| r.as_str())
                    .collect()
            };
            let trail = if variant == "trail bucket" {
                format!(r#"{{"Fn::Sub":"arn:${{AWS::Partition}}:s3:::{CONTROL_TOWER}/AWSLogs/*"}}"#)
            } else {
                r#"{"Fn::Sub":"${TrailBucket.Arn}/AWSLogs/*"}"#.to_owned()
            };
            assert_eq!(
                on("s3:GetObject"),
                [
                    trail.as_str(),
                    r#"{"Fn::Sub":"${StateBucket.Arn}/engine/*"}"#
                ],
                "{variant}"
            );
            assert_eq!(
                on("s3:PutObject"),
                [r#"{"Fn::Sub":"${StateBucket.Arn}/engine/*"}"#],
                "{variant}"
            );
            // Its pages go to the enricher, not to people directly.
            assert_eq!(on("sns:Publish"), [r#"{"Ref":"AlertTopic"}"#], "{variant}");
            // Its queue; the shards' one role, each shard's queue.
            let queues = if variant == "engine shards" {
                r#"[{"Fn::GetAtt":["EngineShard0Queue","Arn"]},{"Fn::GetAtt":["EngineShard1Queue","Arn"]},{"Fn::GetAtt":["EngineShard2Queue","Arn"]}]"#
            } else {
                r#"{"Fn::GetAtt":["EngineQueue","Arn"]}"#
            };
            assert_eq!(on("sqs:ReceiveMessage"), [queues], "{variant}");
            // A writer on the domain when there is one: its findings, and
            // with `--ingest s3` the deliveries.
            let writes = on("es:ESHttpPost").len() + on("sts:AssumeRole").len();
            assert_eq!(writes, usize::from(variant != "no opensearch"), "{variant}");
            assert_eq!(
                on("organizations:ListAccounts").len(),
                usize::from(variant == "no opensearch"),
                "{variant}"
            );
            let services: std::collections::BTreeSet<&str> = granted
                .iter()
                .map(|(a, _)| a.split(':').next().unwrap())
                .collect();
            let allowed = [
                "es",
                "ec2",
                "kms",
                "logs",
                "organizations",
                "s3",
                "sns",
                "sqs",
                // An existing domain's writer role, assumed.
                "sts",
            ];
            assert!(
                services.iter().all(|s| allowed.contains(s)),
                "{variant}: {services:?}"
            );
            assert!(
                !granted
                    .iter()
                    .any(|(a, r)| a.starts_with("s3:") && r == "\"*\""),
                "{variant}"
            );
        }
    }

    /// Every delivery the trail writes is announced to the engine's queue,
    /// which only this account's S3 may send to, encrypted with the key
    /// S3 may use through SQS; one engine runs at a time, batched, and a
    /// batch stays hidden while it is worked on.
    /// `--engine-shards 3`: the bucket notifies one encrypted topic that
    /// only this account's S3 may publish to; it fans every delivery out
    /// to three encrypted queues that only it may send to; each queue
    /// feeds one engine, one execution at a time, that reads its share of
    /// the accounts (`SHARD=K/3`) and keeps its state apart. The shards
    /// run as one role and one package.
    #[test]
    fn engine_shards_each_read_a_queue_of_their_own_fed_by_one_topic() {
        let t = render_with(DeployOptions {
            engine_shards: Some(3),
            ..Default::default()
        });
        let r = &t["Resources"];
        let notification = &r["TrailBucket"]["Properties"]["NotificationConfiguration"];
        assert!(notification.get("QueueConfigurations").is_none());
        let topics = &notification["TopicConfigurations"];
        assert_eq!(topics.as_array().map(Vec::len), Some(1));
        assert_eq!(topics[0]["Topic"], json!({"Ref": "EngineFanout"}));
        assert_eq!(topics[0]["Event"], "s3:ObjectCreated:*");
        assert_eq!(r["TrailBucket"]["DependsOn"], json!(["EngineFanoutPolicy"]));
        assert_eq!(
            r["EngineFanout"]["Properties"]["KmsMasterKeyId"],
            json!({"Ref": "Key"})
        );
        let publish = &r["EngineFanoutPolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
        assert_eq!(publish["Principal"], json!({"Service": "s3.amazonaws.com"}));
        assert_eq!(
            publish["Condition"]["StringEquals"]["aws:SourceAccount"],
            json!({"Ref": "AWS::AccountId"})
        );
        // S3 encrypts through SNS, SNS through SQS.
        let s3 = key_statement(&t, "S3NotifiesTheEngineQueue");
        assert_eq!(
            s3["Condition"]["StringEquals"]["kms:ViaService"],
            json!({"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"})
        );
        let sns = key_statement(&t, "SnsFansOutToTheShards");
        assert_eq!(sns["Principal"], json!({"Service": "sns.amazonaws.com"}));
        assert!(r.get("EngineQueue").is_none() && r.get("EngineFunction").is_none());
        let mut states = std::collections::BTreeSet::new();
        for k in 0..3 {
            let shard = format!("EngineShard{k}");
            let queue = json!({"Fn::GetAtt": [format!("{shard}Queue"), "Arn"]});
            assert_eq!(
                r[format!("{shard}Queue")]["Properties"]["KmsMasterKeyId"],
                json!({"Ref": "Key"})
            );
            let send =
                &r[format!("{shard}QueuePolicy")]["Properties"]["PolicyDocument"]["Statement"][0];
            assert_eq!(send["Principal"], json!({"Service": "sns.amazonaws.com"}));
            assert_eq!(
                send["Condition"]["ArnEquals"]["aws:SourceArn"],
                json!({"Ref": "EngineFanout"})
            );
            let sub = &r[format!("{shard}Subscription")]["Properties"];
            assert_eq!(sub["TopicArn"], json!({"Ref": "EngineFanout"}));
            assert_eq!(sub["Protocol"], "sqs");
            assert_eq!(sub["Endpoint"], queue);
            let source = &r[format!("{shard}EventSource")]["Properties"];
            assert_eq!(source["EventSourceArn"], queue);
            assert_eq!(
                source["FunctionName"],
                json!({"Ref": format!("{shard}Function")})
            );
            let f = &r[format!("{shard}Function")]["Properties"];
            assert_eq!(f["ReservedConcurrentExecutions"], 1);
            assert_eq!(f["Role"], json!({"Fn::GetAtt": ["EngineRole", "Arn"]}));
            assert_eq!(f["Code"]["S3Key"], json!({"Ref": "EngineCodeKey"}));
            let vars = &f["Environment"]["Variables"];
            assert_eq!(vars["TRAILWATCH_FUNCTION"], "engine");
            assert_eq!(vars["SHARD"], format!("{k}/3"));
            states.insert(vars["STATE_URL"]["Fn::Sub"].as_str().unwrap().to_owned());
        }
        assert_eq!(
            states.len(),
            3,
            "each shard keeps its own state: {states:?}"
        );
        assert!(states
            .iter()
            .all(|s| s.starts_with("s3://${StateBucket}/engine/")));
        let roles = of_type(&t, "AWS::IAM::Role");
        assert_eq!(
            roles
                .iter()
                .filter(|(id, _)| id.starts_with("Engine"))
                .count(),
            1
        );
        assert_eq!(
            t["Outputs"]["EngineFanoutTopicArn"]["Value"],
            json!({"Ref": "EngineFanout"})
        );
    }

    #[test]
    fn deliveries_reach_one_engine_at_a_time_through_an_encrypted_queue() {
        for (variant, t) in variants() {
            let r = &t["Resources"];
            if variant == "trail bucket" {
                // Deploy gives the existing bucket its notification
                // (`deploy::notification`).
                assert!(r.get("TrailBucket").is_none());
                continue;
            }
            if variant == "engine shards" {
                // Through a fan-out topic: see the test of the shards.
                continue;
            }
            let queues =
                &r["TrailBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"];
            assert_eq!(queues.as_array().map(Vec::len), Some(1), "{variant}");
            assert_eq!(queues[0]["Event"], "s3:ObjectCreated:*");
            assert_eq!(
                queues[0]["Queue"],
                json!({"Fn::GetAtt": ["EngineQueue", "Arn"]})
            );
            assert_eq!(
                queues[0]["Filter"]["S3Key"]["Rules"][0],
                json!({"Name": "prefix", "Value": "AWSLogs/"})
            );
            assert!(r["TrailBucket"]["DependsOn"]
                .as_array()
                .unwrap()
                .contains(&json!("EngineQueuePolicy")));
            let queue = &r["EngineQueue"]["Properties"];
            assert_eq!(queue["KmsMasterKeyId"], json!({"Ref": "Key"}));
            let send = &r["EngineQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
            assert_eq!(send["Principal"], json!({"Service": "s3.amazonaws.com"}));
            assert_eq!(send["Action"], "sqs:SendMessage");
            assert_eq!(
                send["Condition"]["StringEquals"]["aws:SourceAccount"],
                json!({"Ref": "AWS::AccountId"})
            );
            let key = key_statement(&t, "S3NotifiesTheEngineQueue");
            assert_eq!(key["Principal"], json!({"Service": "s3.amazonaws.com"}));
            assert!(key["Condition"]["StringEquals"]
                .get("aws:SourceAccount")
                .is_some());
            let function = &r["EngineFunction"]["Properties"];
            assert_eq!(function["ReservedConcurrentExecutions"], 1, "{variant}");
            let timeout = function["Timeout"].as_u64().unwrap();
            assert!(queue["VisibilityTimeout"].as_u64().unwrap() >= 6 * timeout);
            let mapping = &r["EngineEventSource"]["Properties"];
            assert_eq!(mapping["FunctionName"], json!({"Ref": "EngineFunction"}));
            assert!(mapping["MaximumBatchingWindowInSeconds"].as_u64().unwrap() > 0);
            let env = &function["Environment"]["Variables"];
            assert_eq!(env["TRAILWATCH_FUNCTION"], "engine");
            assert_eq!(
                env["STATE_URL"],
                json!({"Fn::Sub": "s3://${StateBucket}/engine/state.json.gz"})
            );
            assert_eq!(
                env.get("OPENSEARCH_ENDPOINT").is_some(),
                variant != "no opensearch",
                "{variant}"
            );
            assert_eq!(
                env.get("INDEX_DELIVERIES").is_some(),
                variant == "ingest s3",
                "{variant}"
            );
        }
    }

    #[test]
    fn every_kms_encrypted_log_group_is_admitted_by_the_key_policy() {
        for (variant, t) in variants() {
            let patterns: Vec<String> = key_statement(&t, "CloudWatchLogsEncrypts")["Condition"]
                ["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    sub(p)
                        .strip_prefix("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:")
                        .unwrap()
                        .to_owned()
                })
                .collect();
            let groups = of_type(&t, "AWS::Logs::LogGroup");
            assert!(!groups.is_empty(), "{variant}");
            for (id, g) in groups {
                if g["Properties"].get("KmsKeyId").is_none() {
                    continue;
                }
                let name = g["Properties"]["LogGroupName"].as_str().unwrap();
                assert!(
                    patterns.iter().any(|p| glob(p, name)),
                    "{variant}: {id} ({name}) uses the key, which admits only {patterns:?}"
                );
            }
        }
    }

    #[test]
    fn cloudtrail_describes_the_key_in_a_statement_of_its_own() {
        // With --trail-bucket the stack makes no trail: CloudTrail is no
        // principal of its key (an_existing_trail_bucket_is_read_…).
        for (variant, t) in variants().into_iter().filter(|(v, _)| *v != "trail bucket") {
            let describe = key_statement(&t, "CloudTrailDescribesKey");
            assert_eq!(describe["Action"], "kms:DescribeKey", "{variant}");
            let condition = describe["Condition"].to_string();
            assert!(
                condition.contains("aws:SourceArn"),
                "{variant}: {condition}"
            );
            assert!(
                !condition.contains("EncryptionContext"),
                "{variant}: {condition}"
            );
            // The encrypting statement no longer carries DescribeKey.
            let encrypts = key_statement(&t, "CloudTrailEncrypts");
            assert!(!actions(encrypts).contains(&"kms:DescribeKey".to_owned()));
        }
    }

    #[test]
    fn roles_trusted_by_a_service_for_a_resource_name_that_resource() {
        for (variant, t) in variants() {
            let mut checked = 0;
            for (id, role) in of_type(&t, "AWS::IAM::Role") {
                for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
                    .as_array()
                    .unwrap()
                {
                    if s["Principal"]["Service"] != "es.amazonaws.com" {
                        continue;
                    }
                    checked += 1;
                    let c = &s["Condition"];
                    assert!(
                        c["StringEquals"].get("aws:SourceAccount").is_some(),
                        "{variant}: {id} trusts es.amazonaws.com for any account"
                    );
                    assert!(
                        sub(&c["ArnLike"]["aws:SourceArn"])
                            .contains(":es:${AWS::Region}:${AWS::AccountId}:domain/"),
                        "{variant}: {id} trusts es.amazonaws.com for any domain"
                    );
                }
            }
            let expected = match variant {
                "existing domain" => 1,
                "no opensearch" => 0,
                _ => 2,
            };
            assert_eq!(checked, expected, "{variant}");
            if let Some(policy) = t["Resources"].get("DomainLogPolicy") {
                let text = sub(&policy["Properties"]["PolicyDocument"]);
                assert!(
                    text.contains("aws:SourceArn") && text.contains("aws:SourceAccount"),
                    "{variant}: {text}"
                );
            }
        }
    }

    #[test]
    fn the_trail_bucket_records_access_keeps_versions_and_refuses_deletes() {
        for (variant, t) in variants().into_iter().filter(|(v, _)| *v != "trail bucket") {
            let bucket = &t["Resources"]["TrailBucket"]["Properties"];
            assert_eq!(
                bucket["LoggingConfiguration"]["DestinationBucketName"],
                json!({"Ref": "AccessLogBucket"}),
                "{variant}"
            );
            for b in ["TrailBucket", "AccessLogBucket"] {
                let rule = &t["Resources"][b]["Properties"]["LifecycleConfiguration"]["Rules"][0];
                let kept = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
                    .as_u64()
                    .unwrap();
                assert!(kept > 365, "{variant}: {b} keeps old versions {kept} days");
            }
            let skips_nothing = t["Resources"]["TrailBucket"]["Metadata"].is_null();
            assert!(skips_nothing, "{variant}: the trail bucket skips no check");
            for policy in ["TrailBucketPolicy", "AccessLogBucketPolicy"] {
                let deny = t["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["Sid"] == "NoDeletesButBreakGlass")
                    .unwrap_or_else(|| panic!("{variant}: {policy} does not deny deletes"));
                assert_eq!(deny["Effect"], "Deny");
                assert_eq!(deny["Principal"], "*");
                for a in [
                    "s3:DeleteObject",
                    "s3:DeleteObjectVersion",
                    "s3:PutLifecycleConfiguration",
                ] {
                    assert!(
                        actions(deny).contains(&a.to_owned()),
                        "{variant}: {policy} allows {a}"
                    );
                }
                assert!(
                    sub(&deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
                        .ends_with("-break-glass"),
                    "{variant}: {deny}"
                );
            }
        }
    }

    #[test]
    fn cognito_requires_mfa_enforces_threat_protection_and_resists_deletion() {
        for (variant, t) in variants() {
            let Some(pool) = t["Resources"].get("UserPool") else {
                assert!(matches!(variant, "existing domain" | "no opensearch"));
                continue;
            };
            let p = &pool["Properties"];
            assert_eq!(p["MfaConfiguration"], "ON", "{variant}");
            assert_eq!(
                p["UserPoolAddOns"]["AdvancedSecurityMode"], "ENFORCED",
                "{variant}"
            );
            assert_eq!(p["DeletionProtection"], "ACTIVE", "{variant}");
            assert_eq!(
                t["Resources"]["IdentityPool"]["Properties"]["AllowClassicFlow"], false,
                "{variant}"
            );
        }
    }

    #[test]
    fn only_the_publisher_and_the_lambdas_that_page_publish_and_only_over_tls() {
        for (variant, t) in variants() {
            // The monitors' alerts (through OpenSearch's publisher), the
            // forwarder's rule pages and the engine's incidents go to the
            // alert topic; the enricher alone publishes to people.
            let senders: Vec<&str> = ["AlertPublishRole", "ForwarderRole", "EngineRole"]
                .into_iter()
                .filter(|r| t["Resources"].get(r).is_some())
                .collect();
            assert!(senders.contains(&"EngineRole"), "{variant}");
            assert!(
                t["Resources"].get("EnricherFunction").is_some(),
                "{variant}"
            );
            for (policy, topic, publishers) in [
                ("AlertTopicPolicy", "AlertTopic", &senders[..]),
                (
                    "NotificationTopicPolicy",
                    "NotificationTopic",
                    &["EnricherRole"][..],
                ),
            ] {
                let p = &t["Resources"][policy]["Properties"];
                assert_eq!(p["Topics"], json!([{"Ref": topic}]), "{variant}");
                let statements = p["PolicyDocument"]["Statement"].as_array().unwrap();
                let roles: Vec<Value> = publishers
                    .iter()
                    .map(|p| json!({"Fn::GetAtt": [p, "Arn"]}))
                    .collect();
                let allows: Vec<&Value> = statements
                    .iter()
                    .filter(|s| s["Effect"] == "Allow")
                    .collect();
                for r in &roles {
                    assert!(
                        allows.iter().any(|s| &s["Principal"]["AWS"] == r),
                        "{variant}: {policy} {r}"
                    );
                }
                for s in &allows {
                    assert_eq!(s["Action"], "sns:Publish", "{variant}: {policy} allows {s}");
                    assert_ne!(s["Principal"], "*", "{variant}: {policy}");
                }
                let others = statements
                    .iter()
                    .find(|s| s["Effect"] == "Deny" && s["Condition"].get("ArnNotEquals").is_some())
                    .unwrap_or_else(|| panic!("{variant}: {policy} lets others publish"));
                let excepted = &others["Condition"]["ArnNotEquals"]["aws:PrincipalArn"];
                let excepted = match excepted {
                    Value::Array(list) => list.clone(),
                    one => vec![one.clone()],
                };
                assert_eq!(excepted, roles, "{variant}: {policy}");
                assert!(
                    statements.iter().any(|s| s["Effect"] == "Deny"
                        && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"),
                    "{variant}: {policy} is not TLS-only"
                );
            }
            let queue = &t["Resources"]["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"];
            assert!(
                queue["Statement"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["Effect"] == "Deny"
                        && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"),
                "{variant}: the queue is not TLS-only"
            );
        }
    }

    #[test]
    fn roles_use_the_key_only_through_the_services_that_need_it() {
        for (variant, t) in variants() {
            let mut checked = 0;
            for (id, role) in of_type(&t, "AWS::IAM::Role") {
                for (at, s) in statements(&role["Properties"]["Policies"]) {
                    if actions(&s).iter().any(|a| a.starts_with("kms:")) {
                        checked += 1;
                        assert!(
                            s["Condition"]["StringEquals"]
                                .get("kms:ViaService")
                                .is_some(),
                            "{variant}: {id}{at} uses the key directly"
                        );
                    }
                }
            }
            // At least once per role a Lambda runs as (the engine's
            // shards share one).
            let lambda_roles: std::collections::BTreeSet<String> =
                of_type(&t, "AWS::Lambda::Function")
                    .iter()
                    .map(|(_, f)| f["Properties"]["Role"].to_string())
                    .collect();
            assert!(checked >= lambda_roles.len(), "{variant}: {checked}");
        }
    }

    #[test]
    fn the_watcher_is_watched() {
        for (variant, t) in variants() {
            let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
            let watched: Vec<(String, String)> = alarms
                .iter()
                .map(|(_, a)| {
                    let p = &a["Properties"];
                    assert_eq!(
                        p["AlarmActions"],
                        json!([{"Ref": "NotificationTopic"}]),
                        "{variant}"
                    );
                    let dimension = p["Dimensions"][0]["Value"]
                        .get("Ref")
                        .or(p["Dimensions"][0]["Value"]["Fn::GetAtt"].get(0))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    (p["MetricName"].as_str().unwrap().to_owned(), dimension)
                })
                .collect();
            let mut wants = vec![("ApproximateNumberOfMessagesVisible", "DeadLetterQueue")];
            // Each engine, and each engine's queue.
            let engines: &[&str] = if variant == "engine shards" {
                &["EngineShard0", "EngineShard1", "EngineShard2"]
            } else {
                &["Engine"]
            };
            let names: Vec<(String, String)> = engines
                .iter()
                .map(|e| (format!("{e}Queue"), format!("{e}Function")))
                .collect();
            for (queue, function) in &names {
                wants.extend([
                    ("ApproximateAgeOfOldestMessage", queue.as_str()),
                    ("Errors", function.as_str()),
                ]);
            }
            if t["Resources"].get("EnricherFunction").is_some() {
                wants.extend([
                    ("Errors", "EnricherFunction"),
                    ("Throttles", "EnricherFunction"),
                ]);
            }
            // Without a log group, the engine's rules page on trail changes.
            let cwl = t["Resources"].get("LogGroup").is_some();
            if cwl {
                wants.extend([
                    ("Errors", "ForwarderFunction"),
                    ("Throttles", "ForwarderFunction"),
                    ("TrailChanges", ""),
                ]);
            }
            for want in wants {
                assert!(
                    watched.contains(&(want.0.to_owned(), want.1.to_owned())),
                    "{variant}: no alarm on {want:?}: {watched:?}"
                );
            }
            if !cwl {
                continue;
            }
            let filter = &t["Resources"]["TrailChangesFilter"]["Properties"];
            assert_eq!(filter["LogGroupName"], json!({"Ref": "LogGroup"}));
            let pattern = filter["FilterPattern"].as_str().unwrap();
            for event in [
                "StopLogging",
                "DeleteTrail",
                "UpdateTrail",
                "PutEventSelectors",
            ] {
                assert!(
                    pattern.contains(&format!("\"{event}\"")),
                    "{variant}: {pattern}"
                );
            }
        }
    }

    #[test]
    fn each_role_has_its_own_methods_on_the_domain_and_the_master_is_apart() {
        for (variant, t) in variants() {
            if t["Resources"].get("Domain").is_none() {
                assert!(matches!(variant, "existing domain" | "no opensearch"));
                continue;
            }
            // The role that writes the records: the forwarder's from the
            // log group, or the engine's from the bucket.
            let writer = if matches!(variant, "ingest s3" | "trail bucket") {
                "EngineRole"
            } else {
                "ForwarderRole"
            };
            // A statement per role, each with the methods that role needs: the
            // readers and the enricher cannot write or delete.
            let mut methods = std::collections::BTreeMap::new();
            for s in t["Resources"]["Domain"]["Properties"]["AccessPolicies"]["Statement"]
                .as_array()
                .unwrap()
            {
                let principal = &s["Principal"]["AWS"];
                assert_ne!(s["Principal"], "*");
                let role = principal["Fn::GetAtt"][0].as_str().unwrap_or_else(|| {
                    panic!("{variant}: only the stack's own roles: {principal}")
                });
                methods.insert(role.to_owned(), actions(s));
            }
            let all = ES_ALL.map(String::from).to_vec();
            let read = ES_READ.map(String::from).to_vec();
            let write = ES_WRITE.map(String::from).to_vec();
            assert_eq!(
                methods,
                [
                    ("AdminRole", &all),
                    ("EngineRole", &write),
                    ("EnricherRole", &read),
                    (writer, &write),
                    ("MasterRole", &all),
                    ("ReadOnlyRole", &read),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect()
            );
            for reader in ["ReadOnlyRole", "EnricherRole"] {
                assert!(
                    !methods[reader]
                        .iter()
                        .any(|m| m == "es:ESHttpDelete" || m == "es:ESHttpPut"),
                    "{reader} can write: {:?}",
                    methods[reader]
                );
            }
            // The master user is its own role, which Cognito never hands out.
            assert_eq!(
                t["Resources"]["Domain"]["Properties"]["AdvancedSecurityOptions"]
                    ["MasterUserOptions"]["MasterUserARN"],
                json!({"Fn::GetAtt": ["MasterRole", "Arn"]})
            );
            let master = &t["Resources"]["MasterRole"]["Properties"]["AssumeRolePolicyDocument"];
            assert_eq!(
                master["Statement"][0]["Principal"],
                json!({"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}})
            );
            let handed_out = [
                "IdentityPoolRoles",
                "AdminGroup",
                "ReaderGroup",
                "DashboardSignIn",
            ]
            .map(|r| serde_json::to_string(&t["Resources"][r]).unwrap())
            .concat();
            assert!(!handed_out.contains("MasterRole"), "{handed_out}");
            assert_eq!(
                t["Resources"]["IdentityPool"]["Properties"]["AllowClassicFlow"],
                false
            );
        }
    }

    #[test]
    fn a_new_domain_is_configured_from_inside_the_stack_by_the_bootstrap() {
        for (variant, t) in variants() {
            let r = &t["Resources"];
            if matches!(variant, "existing domain" | "no opensearch") {
                assert!(r.get("OpenSearchObjects").is_none());
                assert!(r.get("BootstrapFunction").is_none());
                for name in ["BootstrapCodeKey", "NotifyChannels", "IndexRetentionDays"] {
                    assert!(t["Parameters"].get(name).is_none(), "{name}");
                }
                continue;
            }
            let custom = &r["OpenSearchObjects"];
            assert_eq!(custom["Type"], "Custom::OpenSearchObjects", "{variant}");
            assert_eq!(custom["DependsOn"], json!(["Domain"]));
            let p = &custom["Properties"];
            assert_eq!(
                p["ServiceToken"],
                json!({"Fn::GetAtt": ["BootstrapFunction", "Arn"]})
            );
            // A new package (new detector files) is an update of the objects.
            assert_eq!(p["PackageKey"], json!({"Ref": "BootstrapCodeKey"}));
            for role in [
                "ForwarderRoleArn",
                "EnricherRoleArn",
                "AdminRoleArn",
                "ReaderRoleArn",
                "AlertPublishRoleArn",
            ] {
                assert!(p.get(role).is_some(), "{variant}: {role}");
            }
            // deploy's --notify and --index-retention-days reach the
            // bootstrap as parameters; the channels' URLs are secrets, so
            // hidden, with a digest that shows a change.
            let params = &t["Parameters"];
            assert_eq!(params["NotifyChannels"]["NoEcho"], true, "{variant}");
            assert_eq!(params["NotifyChannels"]["Default"], "");
            assert_eq!(params["IndexRetentionDays"]["Default"], 30);
            assert_eq!(p["Notify"], json!({"Ref": "NotifyChannels"}));
            assert_eq!(p["NotifyDigest"], json!({"Ref": "NotifyChannelsDigest"}));
            assert_eq!(p["RetentionDays"], json!({"Ref": "IndexRetentionDays"}));
            let hidden = serde_json::to_string(&t["Outputs"]).unwrap();
            assert!(!hidden.contains("NotifyChannels"), "never in an output");
            let f = &r["BootstrapFunction"]["Properties"];
            let env = &f["Environment"]["Variables"];
            assert_eq!(env["TRAILWATCH_FUNCTION"], "bootstrap");
            let master = json!({"Fn::GetAtt": ["MasterRole", "Arn"]});
            assert_eq!(env["OPENSEARCH_ROLE_ARN"], master, "it acts as the master");
            let assumes = statements(&r["BootstrapRole"])
                .into_iter()
                .any(|(_, s)| s["Action"] == "sts:AssumeRole" && s["Resource"] == master);
            assert!(assumes, "{variant}");
            assert_eq!(f["Code"]["S3Key"], json!({"Ref": "BootstrapCodeKey"}));
        }
    }

    #[test]
    fn sign_in_maps_roles_by_token_once_the_domain_exists_so_only_admins_get_the_admin_role() {
        for (variant, t) in variants() {
            let r = &t["Resources"];
            if matches!(variant, "existing domain" | "no opensearch") {
                assert!(r.get("DashboardSignIn").is_none());
                assert!(r.get("ReaderGroup").is_none());
                continue;
            }
            let custom = &r["DashboardSignIn"];
            assert_eq!(custom["Type"], "Custom::DashboardSignIn", "{variant}");
            // The domain adds its app client to the identity pool and the
            // mapping names that client, so it comes after the domain; and
            // after CloudFormation's own attachment, which would replace it.
            let after = custom["DependsOn"].as_array().unwrap();
            for name in ["Domain", "IdentityPoolRoles", "AdminGroup", "ReaderGroup"] {
                assert!(after.contains(&json!(name)), "{variant}: {name}");
            }
            let p = &custom["Properties"];
            assert_eq!(
                p["ServiceToken"],
                json!({"Fn::GetAtt": ["BootstrapFunction", "Arn"]})
            );
            assert_eq!(p["IdentityPoolId"], json!({"Ref": "IdentityPool"}));
            assert_eq!(p["UserPoolId"], json!({"Ref": "UserPool"}));
            let reader_role = json!({"Fn::GetAtt": ["ReadOnlyRole", "Arn"]});
            assert_eq!(p["ReaderRoleArn"], reader_role);
            // Admins' role comes first by precedence; readers have a group
            // of their own, as a token with no role is denied.
            let admin = &r["AdminGroup"]["Properties"];
            let reader = &r["ReaderGroup"]["Properties"];
            assert_eq!(
                admin["RoleArn"],
                json!({"Fn::GetAtt": ["AdminRole", "Arn"]})
            );
            assert_eq!(reader["GroupName"], crate::users::READER_GROUP);
            assert_eq!(admin["GroupName"], crate::users::ADMIN_GROUP);
            assert_eq!(reader["RoleArn"], reader_role);
            assert!(admin["Precedence"].as_u64() < reader["Precedence"].as_u64());
            assert_eq!(
                r["IdentityPoolRoles"]["Properties"]["Roles"],
                json!({"authenticated": reader_role}),
                "the default is never the admin role"
            );
            // The bootstrap may read and set this pool's roles, and pass
            // the read-only role, to Cognito only.
            let bootstrap = statements(&r["BootstrapRole"]);
            let on_pool: Vec<&Value> = bootstrap
                .iter()
                .map(|(_, s)| s)
                .filter(|s| {
                    actions(s)
                        .iter()
                        .any(|a| a.starts_with("cognito-identity:"))
                })
                .collect();
            assert_eq!(on_pool.len(), 1, "{variant}");
            assert_eq!(
                on_pool[0]["Resource"],
                json!({"Fn::Sub": "arn:${AWS::Partition}:cognito-identity:${AWS::Region}:${AWS::AccountId}:identitypool/${IdentityPool}"})
            );
            assert!(actions(on_pool[0]).contains(&"cognito-identity:SetIdentityPoolRoles".into()));
            let passes: Vec<&Value> = bootstrap
                .iter()
                .map(|(_, s)| s)
                .filter(|s| actions(s).contains(&"iam:PassRole".into()))
                .collect();
            assert_eq!(passes.len(), 1, "{variant}");
            assert_eq!(passes[0]["Resource"], reader_role);
            assert_eq!(
                passes[0]["Condition"]["StringEquals"]["iam:PassedToService"],
                "cognito-identity.amazonaws.com"
            );
            for other in ["ForwarderRole", "EnricherRole"] {
                let text = serde_json::to_string(&r[other]).unwrap();
                assert!(
                    !text.contains("cognito-identity:") && !text.contains("iam:PassRole"),
                    "{variant}: {other}"
                );
            }
        }
    }

    #[test]
    fn an_existing_domain_is_configured_from_inside_the_stack_when_given_a_role_for_it() {
        const WRITER: &str = "arn:aws:iam::123456789012:role/os";
        const READER: &str = "arn:aws:iam::123456789012:role/os-reader";
        const ADMIN: &str = "arn:aws:iam::123456789012:role/os-admin";
        let existing = DeployOptions {
            existing_domain_endpoint: Some("https://vpc-x.eu-west-1.es.amazonaws.com".into()),
            existing_domain_writer_role_arn: Some(WRITER.into()),
            existing_domain_reader_role_arn: Some(READER.into()),
            ..Default::default()
        };
        // Either way the outputs name the roles the Lambdas reach the
        // domain as, which the OpenSearch objects map.
        let without = render_with(existing.clone());
        assert_eq!(without["Outputs"]["ForwarderRoleArn"]["Value"], WRITER);
        assert_eq!(without["Outputs"]["EnricherRoleArn"]["Value"], READER);
        assert!(without["Resources"].get("OpenSearchObjects").is_none());
        assert!(without["Parameters"].get("BootstrapCodeKey").is_none());

        let t = render_with(DeployOptions {
            existing_domain_admin_role_arn: Some(ADMIN.into()),
            ..existing
        });
        let r = &t["Resources"];
        let custom = &r["OpenSearchObjects"];
        assert_eq!(custom["Type"], "Custom::OpenSearchObjects");
        assert!(custom.get("DependsOn").is_none(), "no domain in the stack");
        let p = &custom["Properties"];
        assert_eq!(p["ForwarderRoleArn"], WRITER);
        assert_eq!(p["EnricherRoleArn"], READER);
        assert!(p.get("AdminRoleArn").is_none() && p.get("ReaderRoleArn").is_none());
        assert_eq!(p["Notify"], json!({"Ref": "NotifyChannels"}));
        assert_eq!(t["Parameters"]["IndexRetentionDays"]["Default"], 30);
        // No Cognito here, so no sign-in mapping.
        assert!(r.get("DashboardSignIn").is_none());
        let env = &r["BootstrapFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            env["OPENSEARCH_ROLE_ARN"], ADMIN,
            "it acts as the given role"
        );
        let role = statements(&r["BootstrapRole"]);
        assert!(role
            .iter()
            .any(|(_, s)| s["Action"] == "sts:AssumeRole" && s["Resource"] == ADMIN));
        let text = serde_json::to_string(&r["BootstrapRole"]).unwrap();
        assert!(!text.contains("cognito-identity:") && !text.contains("iam:PassRole"));
        // The other Lambdas still assume only their own roles there.
        for (lambda, assumed) in [("ForwarderRole", WRITER), ("EnricherRole", READER)] {
            let assumes: Vec<Value> = statements(&r[lambda])
                .into_iter()
                // The trust policy's statement names no resource.
                .filter(|(_, s)| s["Action"] == "sts:AssumeRole" && !s["Resource"].is_null())
                .map(|(_, s)| s["Resource"].clone())
                .collect();
            assert_eq!(assumes, [json!(assumed)], "{lambda}");
        }
    }
}
