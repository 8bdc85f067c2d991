//! `trailwatch plan`: the deploy configuration, checked, rendered offline.

use super::EXIT_OK;
use crate::deploy::{render, DeployConfig, DeployOptions};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(
    after_help = "Offline: no credentials needed. Review DIR/stack.json, or deploy it with your own pipeline \
(parameters LambdaCodeBucket, ForwarderCodeKey, EnricherCodeKey name the Lambda packages)."
)]
pub struct PlanArgs {
    /// Folder to write stack.json into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub options: DeployOptions,
}

/// Flags over the `--config` file, checked.
pub fn config(options: &DeployOptions) -> anyhow::Result<DeployConfig> {
    let merged = match &options.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --config {}", path.display()))?;
            let file = DeployOptions::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))?;
            options.clone().over(file)
        }
        None => options.clone(),
    };
    Ok(merged.validate()?)
}

pub fn plan(args: PlanArgs) -> anyhow::Result<i32> {
    let config = config(&args.options)?;
    let template = render(&config)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let path = args.out.join("stack.json");
    let text = serde_json::to_string_pretty(&template)? + "\n";
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let resources = template["Resources"].as_object().map_or(0, |r| r.len());
    eprintln!(
        "wrote {} ({resources} resources): prefix {}, {}, trail {}{}{}",
        path.display(),
        config.prefix,
        match &config.existing_domain {
            Some(d) => format!("existing domain {}", d.endpoint),
            None => format!(
                "new domain {} × {} ({} GiB each)",
                config.instance_count, config.instance_type, config.ebs_size_gib
            ),
        },
        if config.lambda_trail {
            "with Lambda data events"
        } else {
            "management events only"
        },
        if config.vpc.is_some() {
            ", in a VPC"
        } else {
            ""
        },
        config
            .alert_email
            .as_ref()
            .map(|e| format!(", alerts to {e}"))
            .unwrap_or_default()
    );
    Ok(EXIT_OK)
}
