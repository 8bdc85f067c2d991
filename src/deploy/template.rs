//! Rendering the CloudFormation template (`templates/stack.json.hbs`) from a
//! [`DeployConfig`]: a pure function, so what `plan` writes is what the tests
//! lint and inspect.

use super::config::DeployConfig;
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

#[derive(Serialize)]
struct Lambda {
    logical: &'static str,
    name: &'static str,
    description: &'static str,
    code_key: &'static str,
    timeout: u32,
    concurrency: u32,
    publishes: bool,
    es_actions: Vec<&'static str>,
}

#[derive(Serialize)]
struct DashboardRole {
    logical: &'static str,
    name: &'static str,
    actions: Vec<&'static str>,
}

#[derive(Serialize)]
struct Context<'a> {
    #[serde(flatten)]
    config: &'a DeployConfig,
    zone_count: Option<u32>,
    identity_pool_name: String,
    kms_admin_actions: &'static [&'static str],
    es_actions: &'static [&'static str],
    /// The endpoint as a JSON value: an attribute of the domain, or the given one.
    endpoint: String,
    lambdas: Vec<Lambda>,
    dashboard_roles: Vec<DashboardRole>,
    /// In a VPC: what the Lambdas may create network interfaces in.
    eni_create_resources: Vec<Value>,
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
    let context = Context {
        eni_create_resources,
        config,
        zone_count: config.zone_count(),
        identity_pool_name: config.prefix.replace('-', "_"),
        kms_admin_actions: &KMS_ADMIN_ACTIONS,
        es_actions: &ES_ALL,
        endpoint: endpoint.to_string(),
        lambdas: vec![
            Lambda {
                logical: "Forwarder",
                name: "forwarder",
                description: "trailwatch: CloudWatch Logs subscription to OpenSearch _bulk",
                code_key: "ForwarderCodeKey",
                timeout: 120,
                concurrency: 20,
                publishes: false,
                es_actions: ES_WRITE.to_vec(),
            },
            Lambda {
                logical: "Enricher",
                name: "enricher",
                description:
                    "trailwatch: alert in, readable notification with context and cost out",
                code_key: "EnricherCodeKey",
                timeout: 60,
                concurrency: 5,
                publishes: true,
                es_actions: ES_READ.to_vec(),
            },
        ],
        dashboard_roles: vec![
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
        ],
    };
    let text = hb.render_template(TEMPLATE, &context).map_err(Box::new)?;
    Ok(serde_json::from_str(&text)?)
}

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
        for s in d["AccessPolicies"]["Statement"].as_array().unwrap() {
            let principal = &s["Principal"];
            assert_ne!(principal, "*");
            assert_ne!(principal["AWS"], "*");
            let list = principal["AWS"]
                .as_array()
                .expect("principals are listed roles");
            assert_eq!(list.len(), 4);
            assert!(
                list.iter().all(|p| p.get("Fn::GetAtt").is_some()),
                "only the stack's own roles: {list:?}"
            );
        }
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

        let existing = render_with(DeployOptions {
            existing_domain_endpoint: Some("https://search-x.eu-west-1.es.amazonaws.com".into()),
            existing_domain_role_arn: Some("arn:aws:iam::123456789012:role/os".into()),
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
}
