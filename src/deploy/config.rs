//! The deploy configuration: flags over an optional `--config` file, checked
//! all at once, each refusal naming the flag.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Deploy options as given: every field optional, from flags or the file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeployOptions {
    /// The domain's shape: dev is two data nodes over two zones; prod is three over three zones with three dedicated masters and automatic software updates [default: dev].
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Names every resource: 3-28 of a-z, 0-9 and '-', starting with a letter [default: trailwatch].
    #[arg(long, value_name = "NAME")]
    pub prefix: Option<String>,
    /// OpenSearch engine version [default: OpenSearch_2.19].
    #[arg(long, value_name = "VERSION")]
    pub opensearch_version: Option<String>,
    /// Data node instance type [default: r6g.large.search].
    #[arg(long, value_name = "TYPE")]
    pub instance_type: Option<String>,
    /// Data nodes; 2 or more spread over 2 zones (3 over 3 when divisible by 3) [default: 2].
    #[arg(long, value_name = "N")]
    pub instance_count: Option<u32>,
    /// EBS GiB per node [default: 20].
    #[arg(long, value_name = "GIB")]
    pub ebs_size: Option<u32>,
    /// Days CloudWatch keeps the trail's log group [default: 90].
    #[arg(long, value_name = "DAYS")]
    pub log_retention_days: Option<u32>,
    /// Email address that receives the enriched alerts.
    #[arg(long, value_name = "EMAIL")]
    pub alert_email: Option<String>,
    /// Page at or above this severity [default: medium]: the forwarder on rule findings (StopLogging, a public bucket, …), the enricher on anomaly detectors' alerts.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub page_severity: Option<crate::engine::Severity>,
    /// Leave Lambda data events off the trail (the lambda-invoke detector then sees nothing).
    #[arg(long)]
    #[serde(default)]
    pub no_lambda_trail: bool,
    /// Log S3 object data events (GetObject, PutObject, …) on every bucket but the trail's own, for the s3-get-object detector; CloudTrail bills them per 100,000 events.
    #[arg(long)]
    #[serde(default)]
    pub s3_data_events: bool,
    /// Use this OpenSearch domain instead of creating one (needs both --existing-domain-*-role-arn).
    #[arg(long, value_name = "URL")]
    pub existing_domain_endpoint: Option<String>,
    /// A role that may create and write cwl-* on the existing domain, and nothing else; the forwarder assumes it.
    #[arg(long, value_name = "ARN")]
    pub existing_domain_writer_role_arn: Option<String>,
    /// A role that may read cwl-* and the anomaly results on the existing domain; the enricher assumes it.
    #[arg(long, value_name = "ARN")]
    pub existing_domain_reader_role_arn: Option<String>,
    /// A role with security admin rights on the existing domain (all_access and security_manager), which the stack's bootstrap Lambda assumes to apply the OpenSearch objects from inside the stack; without it, only deploy (from where it runs) applies them.
    #[arg(long, value_name = "ARN")]
    pub existing_domain_admin_role_arn: Option<String>,
    /// The only role that may delete trail log files or change the trail bucket's lifecycle [default: role/<prefix>-break-glass, which you create only when needed].
    #[arg(long, value_name = "ARN")]
    pub break_glass_role_arn: Option<String>,
    /// Subnets for the domain and the Lambdas (needs --vpc-security-group-ids).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    #[serde(default)]
    pub vpc_subnet_ids: Vec<String>,
    /// Security groups for the domain and the Lambdas (needs --vpc-subnet-ids).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    #[serde(default)]
    pub vpc_security_group_ids: Vec<String>,
    /// The organisation's other accounts (comma-separated ids), for the
    /// forwarder's rules: a snapshot, image or role shared with one of them
    /// is not shared outside. The accounts the trail itself shows count
    /// without it.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    #[serde(default)]
    pub org_accounts: Vec<String>,
    /// Principals whose findings neither page nor are kept, as `detect --mute` (comma-separated: an ARN, the short form detect prints such as assumed-role/deploy/ci@111122223333, or either with `*` for any text): the engine's and the forwarder's. Critical rule findings (a trail stopped) still page.
    #[arg(long, value_delimiter = ',', value_name = "PRINCIPALS")]
    #[serde(default)]
    pub mute: Vec<String>,
    /// Make the trail an organisation trail (deploy from the management
    /// account or a delegated administrator): every member account's
    /// activity, and the forwarder lists the organisation's accounts when
    /// it starts, so shares with them are not shared outside.
    #[arg(long)]
    #[serde(default)]
    pub organization_trail: bool,
    /// How the records reach trailwatch [default: cwl]. cwl: the trail's CloudWatch Logs group and the forwarder index them into OpenSearch. s3: the trail bucket's notifications; the engine Lambda reads each delivery and also indexes its records, with no log group (CloudWatch Logs drops events over 256 KB and bills ingestion; see plan --events-per-day). The engine Lambda runs in both.
    #[arg(long, value_enum)]
    pub ingest: Option<Ingest>,
    /// No OpenSearch domain, Cognito or dashboards: the engine Lambda and its pages alone, the cheapest stack (takes --ingest s3).
    #[arg(long)]
    #[serde(default)]
    pub no_opensearch: bool,
    /// Read an existing trail's bucket (for example Control Tower's, in this account and region) instead of making a trail: the stack adds the engine, its queue and the bucket's notification to it, and deploy refuses a bucket that already sends s3:ObjectCreated:* for AWSLogs/ elsewhere, as S3 allows one destination (takes --ingest s3).
    #[arg(long, value_name = "BUCKET")]
    pub trail_bucket: Option<String>,
    /// Who may page [default: both]: the engine Lambda, the anomaly detectors' monitors (through the enricher), or both, one page per incident (each skips an incident the other paged at that severity; with a domain, through the findings index).
    #[arg(long, value_enum, value_name = "WHO")]
    pub pager: Option<WhoPages>,
    /// Split the engine by account over N Lambdas [default: 1, at most 16], each with its own queue and state, the bucket's notifications fanned out to them through an SNS topic: for a trail beyond what one engine reads in time (see `plan --events-per-day`).
    #[arg(long, value_name = "N")]
    pub engine_shards: Option<u32>,
    /// Read options from a TOML file (kebab-case keys as the flags); flags win.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// A domain shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    Dev,
    Prod,
}

impl Preset {
    /// Data nodes unless `--instance-count` says otherwise.
    pub fn instance_count(self) -> u32 {
        match self {
            Preset::Dev => 2,
            Preset::Prod => 3,
        }
    }

    /// Dedicated master nodes: type and count.
    pub fn masters(self) -> Option<(&'static str, u32)> {
        match self {
            Preset::Dev => None,
            Preset::Prod => Some(("m6g.large.search", 3)),
        }
    }
}

/// Who may page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum WhoPages {
    /// The engine Lambda alone; the monitors' alerts are kept and shown, not paged.
    Engine,
    /// The anomaly detectors' monitors alone; the engine keeps its findings.
    Ad,
    /// Both, one page per incident.
    Both,
}

impl WhoPages {
    pub fn name(self) -> &'static str {
        match self {
            WhoPages::Engine => "engine",
            WhoPages::Ad => "ad",
            WhoPages::Both => "both",
        }
    }

    pub fn parse(text: &str) -> Option<WhoPages> {
        [WhoPages::Engine, WhoPages::Ad, WhoPages::Both]
            .into_iter()
            .find(|w| w.name() == text)
    }
}

/// How the records reach trailwatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Ingest {
    /// The trail's CloudWatch Logs group, subscribed by the forwarder.
    Cwl,
    /// The trail bucket's notifications, read by the engine Lambda.
    S3,
}

/// An OpenSearch domain that exists already.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExistingDomain {
    pub endpoint: String,
    /// The forwarder's role there: writes.
    pub writer_role_arn: String,
    /// The enricher's role there: reads.
    pub reader_role_arn: String,
    /// The bootstrap's role there, when the stack applies the objects
    /// itself: security admin.
    pub admin_role_arn: Option<String>,
}

/// Where the domain and the Lambdas go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vpc {
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
}

/// A checked deploy configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployConfig {
    pub prefix: String,
    pub opensearch_version: String,
    pub instance_type: String,
    pub instance_count: u32,
    pub ebs_size_gib: u32,
    pub log_retention_days: u32,
    pub alert_email: Option<String>,
    /// From what severity the forwarder pages on rule findings and the
    /// enricher on anomaly detectors' alerts.
    pub page_severity: crate::engine::Severity,
    pub lambda_trail: bool,
    /// S3 object data events on the trail (all buckets but its own two).
    pub s3_data_events: bool,
    pub existing_domain: Option<ExistingDomain>,
    pub vpc: Option<Vpc>,
    pub preset: Preset,
    /// Dedicated masters (prod): type and count.
    pub dedicated_master_type: Option<String>,
    pub dedicated_master_count: Option<u32>,
    /// Off-peak automatic software updates (prod).
    pub auto_software_update: bool,
    /// The break-glass role's ARN; `None` is the default name in this account.
    pub break_glass_role_arn: Option<String>,
    /// The organisation's other accounts, for the forwarder's rules.
    pub org_accounts: Vec<String>,
    /// Principals the engine and the forwarder do not page on
    /// ([`crate::engine::mute`]), checked.
    pub mute: Vec<String>,
    /// An organisation trail, whose forwarder lists the accounts itself.
    pub organization_trail: bool,
    pub ingest: Ingest,
    /// A domain, new or existing (false with `--no-opensearch`).
    pub opensearch: bool,
    pub pager: WhoPages,
    /// An existing trail's bucket to read (`--trail-bucket`); None: the
    /// stack makes the trail and its bucket.
    pub trail_bucket: Option<String>,
    /// Engine Lambdas splitting the trail by account (`--engine-shards`).
    pub engine_shards: u32,
}

/// The most engine shards a stack makes.
pub const MAX_ENGINE_SHARDS: u32 = 16;

/// The retention periods CloudWatch Logs accepts.
pub const RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Why the options were refused: every problem, each naming its flag.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid deploy options:{}", .0.iter().map(|p| format!("\n  - {p}")).collect::<String>())]
pub struct InvalidOptions(pub Vec<String>);

/// What is wrong with a flag's role ARN, if anything: it must name one
/// role, as a wildcard would match any role that trusts the account.
fn role_problem(flag: &str, arn: &str) -> Option<String> {
    let ok = arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|r| r.split_once(":role/"))
        .is_some_and(|(account, name)| {
            account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
        });
    if arn.contains(['*', '?']) {
        Some(format!("{flag} {arn:?}: name one role, without wildcards; a wildcard would let it match any role that trusts this account"))
    } else if !ok {
        Some(format!(
            "{flag} {arn:?}: write arn:aws:iam::<account>:role/<name>"
        ))
    } else {
        None
    }
}

impl DeployOptions {
    /// These flags over `file` (a parsed `--config`): a flag given wins.
    pub fn over(self, file: DeployOptions) -> DeployOptions {
        DeployOptions {
            preset: self.preset.or(file.preset),
            prefix: self.prefix.or(file.prefix),
            opensearch_version: self.opensearch_version.or(file.opensearch_version),
            instance_type: self.instance_type.or(file.instance_type),
            instance_count: self.instance_count.or(file.instance_count),
            ebs_size: self.ebs_size.or(file.ebs_size),
            log_retention_days: self.log_retention_days.or(file.log_retention_days),
            alert_email: self.alert_email.or(file.alert_email),
            page_severity: self.page_severity.or(file.page_severity),
            no_lambda_trail: self.no_lambda_trail || file.no_lambda_trail,
            s3_data_events: self.s3_data_events || file.s3_data_events,
            existing_domain_endpoint: self
                .existing_domain_endpoint
                .or(file.existing_domain_endpoint),
            existing_domain_writer_role_arn: self
                .existing_domain_writer_role_arn
                .or(file.existing_domain_writer_role_arn),
            existing_domain_reader_role_arn: self
                .existing_domain_reader_role_arn
                .or(file.existing_domain_reader_role_arn),
            existing_domain_admin_role_arn: self
                .existing_domain_admin_role_arn
                .or(file.existing_domain_admin_role_arn),
            break_glass_role_arn: self.break_glass_role_arn.or(file.break_glass_role_arn),
            vpc_subnet_ids: if self.vpc_subnet_ids.is_empty() {
                file.vpc_subnet_ids
            } else {
                self.vpc_subnet_ids
            },
            vpc_security_group_ids: if self.vpc_security_group_ids.is_empty() {
                file.vpc_security_group_ids
            } else {
                self.vpc_security_group_ids
            },
            org_accounts: if self.org_accounts.is_empty() {
                file.org_accounts
            } else {
                self.org_accounts
            },
            mute: if self.mute.is_empty() {
                file.mute
            } else {
                self.mute
            },
            organization_trail: self.organization_trail || file.organization_trail,
            ingest: self.ingest.or(file.ingest),
            no_opensearch: self.no_opensearch || file.no_opensearch,
            trail_bucket: self.trail_bucket.or(file.trail_bucket),
            pager: self.pager.or(file.pager),
            engine_shards: self.engine_shards.or(file.engine_shards),
            config: self.config,
        }
    }

    /// The existing domain: an endpoint and both roles, or none of them.
    /// A role is one role: a wildcard would let the Lambdas assume any role
    /// that trusts the account.
    fn existing_domain(&self, problems: &mut Vec<String>) -> Option<ExistingDomain> {
        let given = [
            ("--existing-domain-endpoint", &self.existing_domain_endpoint),
            (
                "--existing-domain-writer-role-arn",
                &self.existing_domain_writer_role_arn,
            ),
            (
                "--existing-domain-reader-role-arn",
                &self.existing_domain_reader_role_arn,
            ),
        ];
        let missing: Vec<&str> = given
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(flag, _)| *flag)
            .collect();
        match missing.len() {
            3 => {
                if self.existing_domain_admin_role_arn.is_some() {
                    problems.push("--existing-domain-admin-role-arn needs --existing-domain-endpoint and its writer and reader roles: a new domain's bootstrap uses the stack's master role".into());
                }
                return None;
            }
            0 => {}
            _ => {
                let present: Vec<&str> = given
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(flag, _)| *flag)
                    .collect();
                problems.push(format!(
                    "{} needs {} (all three or none)",
                    present.join(" and "),
                    missing.join(" and ")
                ));
                return None;
            }
        }
        let endpoint = self.existing_domain_endpoint.as_deref()?;
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let host = endpoint.strip_prefix("https://").unwrap_or("");
        if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
            problems.push(format!("--existing-domain-endpoint {endpoint:?}: write https://<domain endpoint>, without a path"));
        }
        let mut role = |flag: &str, arn: &Option<String>| {
            let arn = arn.clone().unwrap_or_default();
            problems.extend(role_problem(flag, &arn));
            arn
        };
        let writer_role_arn = role(
            "--existing-domain-writer-role-arn",
            &self.existing_domain_writer_role_arn,
        );
        let reader_role_arn = role(
            "--existing-domain-reader-role-arn",
            &self.existing_domain_reader_role_arn,
        );
        if writer_role_arn == reader_role_arn {
            problems.push("--existing-domain-writer-role-arn and --existing-domain-reader-role-arn are the same role: give the forwarder a role that writes and the enricher one that only reads".into());
        }
        let admin_role_arn = self.existing_domain_admin_role_arn.as_ref().map(|arn| {
            let flag = "--existing-domain-admin-role-arn";
            problems.extend(role_problem(flag, arn));
            if *arn == writer_role_arn || *arn == reader_role_arn {
                problems.push(format!("{flag} is the writer or reader role: the Lambdas that assume those must not administer the domain; give the bootstrap a role of its own"));
            }
            arn.clone()
        });
        Some(ExistingDomain {
            endpoint,
            writer_role_arn,
            reader_role_arn,
            admin_role_arn,
        })
    }

    /// Parses a `--config` file's text.
    pub fn from_toml(text: &str) -> Result<DeployOptions, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))
    }

    /// Checks everything and fills the defaults.
    pub fn validate(&self) -> Result<DeployConfig, InvalidOptions> {
        let mut problems = Vec::new();
        let prefix = self.prefix.clone().unwrap_or_else(|| "trailwatch".into());
        let prefix_ok = (3..=28).contains(&prefix.len())
            && prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !prefix_ok {
            problems.push(format!("--prefix {prefix:?}: use 3-28 of a-z, 0-9 and '-', starting with a letter (^[a-z][a-z0-9-]{{2,27}}$)"));
        }
        let version = self
            .opensearch_version
            .clone()
            .unwrap_or_else(|| "OpenSearch_2.19".into());
        let version_ok = version.strip_prefix("OpenSearch_").is_some_and(|v| {
            let mut parts = v.split('.');
            parts.next().is_some_and(|p| p.parse::<u32>().is_ok())
                && parts.next().is_some_and(|p| p.parse::<u32>().is_ok())
                && parts.next().is_none()
        });
        if !version_ok {
            problems.push(format!("--opensearch-version {version:?}: write OpenSearch_<major>.<minor>, like OpenSearch_2.19"));
        }
        let instance_type = self
            .instance_type
            .clone()
            .unwrap_or_else(|| "r6g.large.search".into());
        if !instance_type.ends_with(".search") || instance_type.split('.').count() != 3 {
            problems.push(format!("--instance-type {instance_type:?}: use an OpenSearch instance type such as r6g.large.search"));
        }
        let preset = self.preset.unwrap_or(Preset::Dev);
        let instance_count = self.instance_count.unwrap_or(preset.instance_count());
        if preset == Preset::Prod && !instance_count.is_multiple_of(3) {
            problems.push(format!("--instance-count {instance_count}: --preset prod spreads the data nodes over three zones; use a multiple of 3"));
        }
        if !(1..=80).contains(&instance_count)
            || (instance_count > 1
                && !instance_count.is_multiple_of(2)
                && !instance_count.is_multiple_of(3))
        {
            problems.push(format!("--instance-count {instance_count}: use 1, or 2 or more that spread evenly over 2 or 3 zones (even, or a multiple of 3)"));
        }
        let ebs_size_gib = self.ebs_size.unwrap_or(20);
        if !(10..=3072).contains(&ebs_size_gib) {
            problems.push(format!("--ebs-size {ebs_size_gib}: use 10 to 3072 GiB"));
        }
        let log_retention_days = self.log_retention_days.unwrap_or(90);
        if !RETENTION_DAYS.contains(&log_retention_days) {
            problems.push(format!("--log-retention-days {log_retention_days}: CloudWatch Logs accepts {RETENTION_DAYS:?}"));
        }
        if let Some(email) = &self.alert_email {
            let ok = email.split_once('@').is_some_and(|(user, host)| {
                !user.is_empty()
                    && host.contains('.')
                    && !host.starts_with('.')
                    && !email.contains(char::is_whitespace)
            });
            if !ok {
                problems.push(format!("--alert-email {email:?}: not an email address"));
            }
        }
        let existing_domain = self.existing_domain(&mut problems);
        for account in &self.org_accounts {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(format!(
                    "--org-accounts {account:?}: an account id is 12 digits"
                ));
            }
        }
        if let Some(arn) = &self.break_glass_role_arn {
            problems.extend(role_problem("--break-glass-role-arn", arn));
        }
        if let Err(e) = crate::engine::mute::Mute::new(&self.mute) {
            problems.push(format!("--mute: {e}"));
        }
        if let Some(p) = self.mute.iter().find(|p| p.contains(',')) {
            problems.push(format!("--mute {p:?}: a pattern has no comma"));
        }
        let reads_a_bucket = self.no_opensearch || self.trail_bucket.is_some();
        let ingest = match (reads_a_bucket, self.ingest) {
            (true, Some(Ingest::Cwl)) => {
                let why = if self.no_opensearch {
                    "--no-opensearch with --ingest cwl: the log group feeds OpenSearch, which --no-opensearch leaves out"
                } else {
                    "--trail-bucket with --ingest cwl: the log group is fed by the trail the stack makes, and with --trail-bucket it makes none"
                };
                problems.push(format!("{why}; drop --ingest cwl (it takes s3)"));
                Ingest::S3
            }
            (true, _) => Ingest::S3,
            (false, given) => given.unwrap_or(Ingest::Cwl),
        };
        if let Some(bucket) = &self.trail_bucket {
            if !bucket_name_ok(bucket) {
                problems.push(format!("--trail-bucket {bucket:?}: not an S3 bucket name (3-63 of a-z, 0-9, '.' and '-', starting and ending with a letter or digit)"));
            }
            for (given, flag) in [
                (self.organization_trail, "--organization-trail"),
                (self.s3_data_events, "--s3-data-events"),
                (self.no_lambda_trail, "--no-lambda-trail"),
            ] {
                if given {
                    problems.push(format!("--trail-bucket with {flag}: {flag} shapes the trail the stack makes, and with --trail-bucket the trail exists already; set it on that trail"));
                }
            }
        }
        let engine_shards = self.engine_shards.unwrap_or(1);
        if !(1..=MAX_ENGINE_SHARDS).contains(&engine_shards) {
            problems.push(format!("--engine-shards {engine_shards}: give 1 to {MAX_ENGINE_SHARDS} (each shard is an engine Lambda with its own queue and state)"));
        }
        if engine_shards > 1 && self.trail_bucket.is_some() {
            problems.push("--engine-shards with --trail-bucket: deploy adds one queue to an existing bucket's notifications, not a fan-out topic, yet; deploy one engine, or subscribe the shard queues to a topic of your own by hand".into());
        }
        if self.no_opensearch && self.pager == Some(WhoPages::Ad) {
            problems.push("--no-opensearch with --pager ad: without a domain there are no anomaly detectors to page; drop --pager".into());
        }
        if self.no_opensearch && existing_domain.is_some() {
            problems.push("--no-opensearch with --existing-domain-endpoint: choose one (no domain, or that domain)".into());
        }
        let vpc = match (
            self.vpc_subnet_ids.is_empty(),
            self.vpc_security_group_ids.is_empty(),
        ) {
            (true, true) => None,
            (false, true) => {
                problems.push(
                    "--vpc-subnet-ids needs --vpc-security-group-ids (both or neither)".into(),
                );
                None
            }
            (true, false) => {
                problems.push(
                    "--vpc-security-group-ids needs --vpc-subnet-ids (both or neither)".into(),
                );
                None
            }
            (false, false) => {
                for (flag, ids, kind, what) in [
                    ("--vpc-subnet-ids", &self.vpc_subnet_ids, "subnet", "subnet"),
                    (
                        "--vpc-security-group-ids",
                        &self.vpc_security_group_ids,
                        "sg",
                        "security group",
                    ),
                ] {
                    for id in ids {
                        if !aws_id(id, kind) {
                            problems.push(format!("{flag}: {id:?} is not a {what} id ({kind}- and 8 or 17 hex digits)"));
                        }
                    }
                    let mut unique = ids.clone();
                    unique.sort();
                    unique.dedup();
                    if unique.len() != ids.len() {
                        problems.push(format!("{flag}: an id is given twice"));
                    }
                }
                if existing_domain.is_none() && instance_count > 1 && self.vpc_subnet_ids.len() < 2
                {
                    problems.push(format!("--vpc-subnet-ids: {instance_count} nodes over zones need a subnet in each of at least 2 zones"));
                }
                Some(Vpc {
                    subnet_ids: self.vpc_subnet_ids.clone(),
                    security_group_ids: self.vpc_security_group_ids.clone(),
                })
            }
        };
        if !problems.is_empty() {
            return Err(InvalidOptions(problems));
        }
        Ok(DeployConfig {
            prefix,
            opensearch_version: version,
            instance_type,
            instance_count,
            ebs_size_gib,
            log_retention_days,
            alert_email: self.alert_email.clone(),
            page_severity: self
                .page_severity
                .unwrap_or(crate::engine::severity::DEFAULT_PAGE),
            lambda_trail: !self.no_lambda_trail,
            s3_data_events: self.s3_data_events,
            existing_domain,
            vpc,
            preset,
            dedicated_master_type: preset.masters().map(|m| m.0.to_owned()),
            dedicated_master_count: preset.masters().map(|m| m.1),
            auto_software_update: preset == Preset::Prod,
            break_glass_role_arn: self.break_glass_role_arn.clone(),
            org_accounts: self.org_accounts.clone(),
            mute: self.mute.iter().map(|p| p.trim().to_owned()).collect(),
            organization_trail: self.organization_trail,
            ingest,
            opensearch: !self.no_opensearch,
            pager: self.pager.unwrap_or(if self.no_opensearch {
                WhoPages::Engine
            } else {
                WhoPages::Both
            }),
            trail_bucket: self.trail_bucket.clone(),
            engine_shards,
        })
    }
}

/// An S3 bucket name as S3 accepts it for a new bucket: 3-63 of a-z, 0-9,
/// '.' and '-', starting and ending with a letter or digit, no "..".
fn bucket_name_ok(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..")
}

/// `subnet-0123abcd` or `sg-0123456789abcdef0`: the kind, then 8 or 17 hex digits.
fn aws_id(id: &str, kind: &str) -> bool {
    id.strip_prefix(kind)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
        })
}

impl DeployConfig {
    /// Availability zones for the domain: none for one node, else 3 when
    /// the count divides by 3, else 2.
    /// What the domain would cost a month under `preset` (this
    /// configuration's instance type and volume size; the preset's node
    /// counts unless this configuration is that preset): priced lines and
    /// the total. `None` with an existing domain or none, which trailwatch does not
    /// make.
    pub fn monthly_cost(&self, preset: Preset) -> Option<crate::cost::MonthlyCost> {
        if self.existing_domain.is_some() || !self.opensearch {
            return None;
        }
        let count = if preset == self.preset {
            self.instance_count
        } else {
            preset.instance_count()
        };
        Some(crate::cost::domain_per_month(
            (&self.instance_type, count),
            preset.masters(),
            self.ebs_size_gib,
        ))
    }

    pub fn zone_count(&self) -> Option<u32> {
        if !self.opensearch {
            return None;
        }
        match self.instance_count {
            0 | 1 => None,
            n if n.is_multiple_of(3) => Some(3),
            _ => Some(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> DeployOptions {
        DeployOptions::default()
    }

    #[test]
    fn the_defaults_are_valid() {
        let c = opts().validate().unwrap();
        assert_eq!(
            (
                c.prefix.as_str(),
                c.instance_count,
                c.zone_count(),
                c.lambda_trail
            ),
            ("trailwatch", 2, Some(2), true)
        );
        assert_eq!(c.existing_domain, None);
    }

    #[test]
    fn every_refusal_names_its_flag_and_all_come_at_once() {
        let bad = DeployOptions {
            prefix: Some("Trail_Watch".into()),
            opensearch_version: Some("2.19".into()),
            instance_type: Some("m5.large".into()),
            instance_count: Some(5),
            ebs_size: Some(1),
            log_retention_days: Some(10),
            alert_email: Some("ops".into()),
            existing_domain_endpoint: Some("https://search-x.eu-west-1.es.amazonaws.com".into()),
            vpc_subnet_ids: vec!["subnet-1".into()],
            org_accounts: vec!["444455556666".into(), "12345".into()],
            mute: vec!["user/ci@111122223333".into(), " * ".into()],
            ..opts()
        };
        let InvalidOptions(problems) = bad.validate().unwrap_err();
        for flag in [
            "--prefix",
            "--opensearch-version",
            "--instance-type",
            "--instance-count",
            "--ebs-size",
            "--log-retention-days",
            "--alert-email",
            "--existing-domain-endpoint needs --existing-domain-writer-role-arn",
            "--vpc-subnet-ids needs --vpc-security-group-ids",
            "--org-accounts \"12345\": an account id is 12 digits",
            "--mute: mute pattern \"*\" is empty or only `*`",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(flag)),
                "no refusal for {flag}: {problems:#?}"
            );
        }
        assert_eq!(problems.len(), 11);
    }

    #[test]
    fn existing_domain_and_vpc_values_are_checked() {
        let o = DeployOptions {
            existing_domain_writer_role_arn: Some("arn:aws:iam::123456789012:role/os".into()),
            ..opts()
        };
        assert_eq!(
            o.validate().unwrap_err().0,
            ["--existing-domain-writer-role-arn needs --existing-domain-endpoint and --existing-domain-reader-role-arn (all three or none)"]
        );
        let o = DeployOptions {
            existing_domain_endpoint: Some("search-x.es.amazonaws.com/path".into()),
            existing_domain_writer_role_arn: Some("role/os".into()),
            existing_domain_reader_role_arn: Some(
                "arn:aws:iam::123456789012:role/os-reader".into(),
            ),
            vpc_subnet_ids: vec!["net-1".into()],
            vpc_security_group_ids: vec!["sg-01".into(), "sg-01".into()],
            ..opts()
        };
        let p = o.validate().unwrap_err().0;
        assert_eq!(
            p.len(),
            6,
            "endpoint, role, the subnet id, each bad security group id, and the repeat: {p:#?}"
        );
        assert!(p.contains(&"--vpc-security-group-ids: an id is given twice".to_string()));
        let ok = DeployOptions {
            existing_domain_endpoint: Some("https://search-x.eu-west-1.es.amazonaws.com/".into()),
            existing_domain_writer_role_arn: Some("arn:aws:iam::123456789012:role/os".into()),
            existing_domain_reader_role_arn: Some(
                "arn:aws:iam::123456789012:role/path/os-reader".into(),
            ),
            ..opts()
        };
        let d = ok.validate().unwrap().existing_domain.unwrap();
        assert_eq!(d.endpoint, "https://search-x.eu-west-1.es.amazonaws.com");
        assert_eq!(
            d.reader_role_arn,
            "arn:aws:iam::123456789012:role/path/os-reader"
        );
    }

    #[test]
    fn an_existing_domains_bootstrap_role_is_one_role_of_its_own_and_only_with_that_domain() {
        let with = |admin: &str| DeployOptions {
            existing_domain_endpoint: Some("https://search-x.eu-west-1.es.amazonaws.com".into()),
            existing_domain_writer_role_arn: Some("arn:aws:iam::123456789012:role/os".into()),
            existing_domain_reader_role_arn: Some(
                "arn:aws:iam::123456789012:role/os-reader".into(),
            ),
            existing_domain_admin_role_arn: Some(admin.into()),
            ..opts()
        };
        let d = with("arn:aws:iam::123456789012:role/os-admin")
            .validate()
            .unwrap()
            .existing_domain
            .unwrap();
        assert_eq!(
            d.admin_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/os-admin")
        );
        let p = with("arn:aws:iam::123456789012:role/*")
            .validate()
            .unwrap_err()
            .0;
        assert!(p[0].contains("without wildcards"), "{p:#?}");
        let p = with("arn:aws:iam::123456789012:role/os")
            .validate()
            .unwrap_err()
            .0;
        assert!(
            p[0].contains("give the bootstrap a role of its own"),
            "{p:#?}"
        );
        let alone = DeployOptions {
            existing_domain_admin_role_arn: Some("arn:aws:iam::123456789012:role/os-admin".into()),
            ..opts()
        };
        let p = alone.validate().unwrap_err().0;
        assert!(
            p[0].starts_with("--existing-domain-admin-role-arn needs --existing-domain-endpoint"),
            "{p:#?}"
        );
    }

    #[test]
    fn existing_domain_roles_are_single_and_separate() {
        let with = |writer: &str, reader: &str| DeployOptions {
            existing_domain_endpoint: Some("https://search-x.eu-west-1.es.amazonaws.com".into()),
            existing_domain_writer_role_arn: Some(writer.into()),
            existing_domain_reader_role_arn: Some(reader.into()),
            ..opts()
        };
        let p = with(
            "arn:aws:iam::123456789012:role/*",
            "arn:aws:iam::123456789012:role/os-read?",
        )
        .validate()
        .unwrap_err()
        .0;
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p.iter().all(|x| x.contains("without wildcards")), "{p:#?}");
        let p = with(
            "arn:aws:iam::123456789012:role/os",
            "arn:aws:iam::123456789012:role/os",
        )
        .validate()
        .unwrap_err()
        .0;
        assert!(p[0].contains("are the same role"), "{p:#?}");
    }

    #[test]
    fn prod_has_three_zones_dedicated_masters_and_costs_more() {
        let dev = opts().validate().unwrap();
        let prod = DeployOptions {
            preset: Some(Preset::Prod),
            ..opts()
        }
        .validate()
        .unwrap();
        assert_eq!((dev.instance_count, dev.zone_count()), (2, Some(2)));
        assert_eq!((prod.instance_count, prod.zone_count()), (3, Some(3)));
        assert_eq!(prod.dedicated_master_count, Some(3));
        assert!(prod.auto_software_update && !dev.auto_software_update);
        let cost = dev.monthly_cost(Preset::Dev).unwrap();
        let dev_total = cost.total;
        // 2 × r6g.large.search at 0.167/h over 730 h, and 40 GiB of gp3.
        assert_eq!(cost.lines[0].0, "2 × r6g.large.search (data)");
        assert!(
            (dev_total - (2.0 * 0.167 * 730.0 + 40.0 * 0.122)).abs() < 0.01,
            "{dev_total}"
        );
        let prod_total = dev.monthly_cost(Preset::Prod).unwrap().total;
        assert_eq!(prod.monthly_cost(Preset::Prod).unwrap().total, prod_total);
        assert!(prod_total > dev_total * 2.0, "{prod_total} vs {dev_total}");
        let p = DeployOptions {
            preset: Some(Preset::Prod),
            instance_count: Some(4),
            ..opts()
        }
        .validate()
        .unwrap_err()
        .0;
        assert!(p[0].contains("--preset prod"), "{p:?}");
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let file = DeployOptions::from_toml(
            "prefix = \"from-file\"\ninstance-count = 3\nvpc-subnet-ids = [\"subnet-a\"]\n",
        )
        .unwrap();
        let flags = DeployOptions {
            prefix: Some("from-flag".into()),
            ..opts()
        };
        let merged = flags.over(file);
        assert_eq!(merged.prefix.as_deref(), Some("from-flag"));
        assert_eq!(merged.instance_count, Some(3));
        assert_eq!(merged.vpc_subnet_ids, ["subnet-a"]);
        assert!(DeployOptions::from_toml("colour = \"red\"")
            .unwrap_err()
            .contains("unknown field"));
    }

    /// The records come through CloudWatch Logs unless asked otherwise;
    /// without a domain they can only come from the bucket, and neither
    /// a log group nor an existing domain goes with no domain.
    #[test]
    fn ingest_defaults_to_the_log_group_and_no_opensearch_takes_the_bucket() {
        assert_eq!(opts().validate().unwrap().ingest, Ingest::Cwl);
        let lean = DeployOptions {
            no_opensearch: true,
            ..opts()
        }
        .validate()
        .unwrap();
        assert_eq!((lean.ingest, lean.opensearch), (Ingest::S3, false));
        assert_eq!(lean.monthly_cost(Preset::Dev), None);
        let p = DeployOptions {
            no_opensearch: true,
            ingest: Some(Ingest::Cwl),
            existing_domain_endpoint: Some("https://search-x.eu-west-1.es.amazonaws.com".into()),
            existing_domain_writer_role_arn: Some("arn:aws:iam::123456789012:role/w".into()),
            existing_domain_reader_role_arn: Some("arn:aws:iam::123456789012:role/r".into()),
            ..opts()
        }
        .validate()
        .unwrap_err()
        .0;
        assert!(
            p[0].starts_with("--no-opensearch with --ingest cwl"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("--no-opensearch with --existing-domain-endpoint"),
            "{p:?}"
        );
        let file = DeployOptions::from_toml("ingest = \"s3\"\nno-opensearch = true\n").unwrap();
        assert_eq!((file.ingest, file.no_opensearch), (Some(Ingest::S3), true));
    }

    /// An existing trail's bucket is read as it is: the records come from
    /// it, and the flags that shape a trail of the stack's own are refused.
    #[test]
    fn engine_shards_are_one_to_sixteen_and_need_a_bucket_of_the_stacks() {
        assert_eq!(opts().validate().unwrap().engine_shards, 1);
        let four = DeployOptions {
            engine_shards: Some(4),
            ..opts()
        };
        assert_eq!(four.validate().unwrap().engine_shards, 4);
        for bad in [0, MAX_ENGINE_SHARDS + 1] {
            let p = DeployOptions {
                engine_shards: Some(bad),
                ..opts()
            }
            .validate()
            .unwrap_err()
            .0;
            assert!(
                p[0].starts_with(&format!("--engine-shards {bad}: give 1 to 16")),
                "{p:?}"
            );
        }
        let p = DeployOptions {
            engine_shards: Some(2),
            trail_bucket: Some("aws-controltower-logs-123456789012-eu-west-1".into()),
            ..opts()
        }
        .validate()
        .unwrap_err()
        .0;
        assert!(
            p[0].starts_with("--engine-shards with --trail-bucket"),
            "{p:?}"
        );
    }

    #[test]
    fn a_trail_bucket_takes_the_bucket_and_refuses_trail_flags() {
        let given = DeployOptions {
            trail_bucket: Some("aws-controltower-logs-123456789012-eu-west-1".into()),
            ..opts()
        }
        .validate()
        .unwrap();
        assert_eq!(given.ingest, Ingest::S3);
        assert!(given.opensearch);
        let p = DeployOptions {
            trail_bucket: Some("Not_A_Bucket".into()),
            ingest: Some(Ingest::Cwl),
            organization_trail: true,
            ..opts()
        }
        .validate()
        .unwrap_err()
        .0;
        assert!(
            p[0].starts_with("--trail-bucket with --ingest cwl"),
            "{p:?}"
        );
        assert!(p[1].starts_with("--trail-bucket \"Not_A_Bucket\""), "{p:?}");
        assert!(
            p[2].starts_with("--trail-bucket with --organization-trail"),
            "{p:?}"
        );
        assert!(!bucket_name_ok("a..b") && !bucket_name_ok("-ab") && bucket_name_ok("a.b-c"));
    }
}
