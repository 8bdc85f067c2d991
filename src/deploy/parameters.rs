//! The stack's parameters: what deploy passes (the Lambda package's bucket
//! and key, the in-stack bootstrap's alert channels and retention), and
//! whether a deployed stack already has them.
//!
//! Webhook URLs are secrets, so `NotifyChannels` is a `NoEcho` parameter:
//! CloudFormation reads it back as `****`. Its digest, a parameter of its
//! own, tells a re-run whether the channels changed.

use serde_json::Value;

/// What the in-stack bootstrap applies besides the stack's own SNS channel:
/// the `--notify` channels (`KIND:URL`) and the index retention.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapParameters {
    pub notify: Vec<String>,
    pub retention_days: u32,
}

impl Default for BootstrapParameters {
    /// The template's defaults: no channel besides the topic, 30 days.
    fn default() -> Self {
        BootstrapParameters {
            notify: Vec::new(),
            retention_days: 30,
        }
    }
}

/// The parameters `template` declares, with deploy's values: every
/// `*CodeKey` names the one package in `bucket`; the bootstrap's parameters
/// only where the template has a bootstrap (a new domain).
pub fn wanted(
    template: &Value,
    bucket: &str,
    package_key: &str,
    bootstrap: &BootstrapParameters,
) -> Vec<(String, String)> {
    let notify = bootstrap.notify.join(" ");
    let digest = if notify.is_empty() {
        String::new()
    } else {
        use sha2::Digest;
        let d = sha2::Sha256::digest(notify.as_bytes());
        d.iter().take(8).map(|b| format!("{b:02x}")).collect()
    };
    let declared = template["Parameters"].as_object();
    let mut parameters: Vec<(String, String)> = declared
        .into_iter()
        .flat_map(|p| p.keys())
        .filter_map(|name| {
            let value = match name.as_str() {
                "LambdaCodeBucket" => bucket.to_owned(),
                n if n.ends_with("CodeKey") => package_key.to_owned(),
                "NotifyChannels" => notify.clone(),
                "NotifyChannelsDigest" => digest.clone(),
                "IndexRetentionDays" => bootstrap.retention_days.to_string(),
                _ => return None,
            };
            Some((name.clone(), value))
        })
        .collect();
    parameters.sort();
    parameters
}

/// Whether a stack deployed with `deployed` already has `wanted`. Hidden
/// (`NoEcho`) parameters read back masked, so they are left to their digest.
pub fn unchanged(
    template: &Value,
    deployed: &[(String, String)],
    wanted: &[(String, String)],
) -> bool {
    let hidden = |name: &str| template["Parameters"][name]["NoEcho"] == Value::Bool(true);
    let visible = |list: &[(String, String)]| {
        let mut v: Vec<(String, String)> = list
            .iter()
            .filter(|(name, _)| !hidden(name))
            .cloned()
            .collect();
        v.sort();
        v
    };
    visible(deployed) == visible(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({"Parameters": {
            "LambdaCodeBucket": {"Type": "String"},
            "ForwarderCodeKey": {"Type": "String"},
            "BootstrapCodeKey": {"Type": "String"},
            "NotifyChannels": {"Type": "String", "NoEcho": true, "Default": ""},
            "NotifyChannelsDigest": {"Type": "String", "Default": ""},
            "IndexRetentionDays": {"Type": "Number", "Default": 30}
        }})
    }

    fn slack() -> BootstrapParameters {
        BootstrapParameters {
            notify: vec![
                "slack:https://hooks.slack.com/services/T0/B0/x".into(),
                "webhook:https://hooks.example.com/y".into(),
            ],
            retention_days: 14,
        }
    }

    fn value<'a>(list: &'a [(String, String)], name: &str) -> &'a str {
        &list.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn every_declared_parameter_gets_deploys_value() {
        let p = wanted(&template(), "b", "k.zip", &slack());
        assert_eq!(p.len(), 6);
        assert_eq!(value(&p, "LambdaCodeBucket"), "b");
        assert_eq!(value(&p, "ForwarderCodeKey"), "k.zip");
        assert_eq!(value(&p, "BootstrapCodeKey"), "k.zip");
        assert_eq!(
            value(&p, "NotifyChannels"),
            "slack:https://hooks.slack.com/services/T0/B0/x webhook:https://hooks.example.com/y"
        );
        assert_eq!(value(&p, "NotifyChannelsDigest").len(), 16);
        assert_eq!(value(&p, "IndexRetentionDays"), "14");
    }

    #[test]
    fn an_existing_domain_has_no_bootstrap_parameters() {
        let t = json!({"Parameters": {"LambdaCodeBucket": {}, "ForwarderCodeKey": {}, "EnricherCodeKey": {}}});
        let p = wanted(&t, "b", "k.zip", &slack());
        let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["EnricherCodeKey", "ForwarderCodeKey", "LambdaCodeBucket"]
        );
    }

    #[test]
    fn no_channels_is_the_templates_default() {
        let p = wanted(&template(), "b", "k", &BootstrapParameters::default());
        assert_eq!(value(&p, "NotifyChannels"), "");
        assert_eq!(value(&p, "NotifyChannelsDigest"), "");
        assert_eq!(value(&p, "IndexRetentionDays"), "30");
    }

    #[test]
    fn a_masked_hidden_parameter_is_judged_by_its_digest() {
        let t = template();
        let now = wanted(&t, "b", "k", &slack());
        let masked: Vec<(String, String)> = now
            .iter()
            .map(|(n, v)| match n.as_str() {
                "NotifyChannels" => (n.clone(), "****".into()),
                _ => (n.clone(), v.clone()),
            })
            .collect();
        assert!(unchanged(&t, &masked, &now));
        // Another channel changes the digest, so the re-run deploys.
        let mut other = slack();
        other.notify.pop();
        assert!(!unchanged(&t, &masked, &wanted(&t, "b", "k", &other)));
        // So does another retention, or another package.
        other = slack();
        other.retention_days = 7;
        assert!(!unchanged(&t, &masked, &wanted(&t, "b", "k", &other)));
        assert!(!unchanged(&t, &masked, &wanted(&t, "b", "k2", &slack())));
    }
}
