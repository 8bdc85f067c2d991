//! `trailwatch simulate`: realistic CloudTrail S3 deliveries with injected
//! incidents, so the product can be seen working without any cloud.
//!
//! A small organisation (three accounts, people, CI and application roles,
//! AWS services, Lambda functions) calls AWS with a daily and weekly rhythm,
//! including a seasonal 08:00 autoscaling scale-out that must not alarm.
//! Deliveries are five-minute `.json.gz` files in CloudTrail's own key layout.
//! Incidents are written on top, and described in `incidents.json`.
//! Output is a pure function of the options: the same seed gives the same files.

mod incident;
mod look_alike;
mod profile;
mod quirks;
mod records;
pub mod technique;

pub use incident::{demo_incidents, Incident, IncidentKind, IncidentSpec};
pub use profile::{profile, Profile, PROFILES};
pub use quirks::Quirk;
use quirks::{Schedule, Span};

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use flate2::{write::GzEncoder, Compression};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use records::{Call, Principal, PrincipalKind};
use serde_json::{json, Value};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub out: PathBuf,
    pub start: DateTime<Utc>,
    pub days: u32,
    pub seed: u64,
    /// Multiplies every background rate (1.0: about 30,000 events a day).
    pub scale: f64,
    pub incidents: Vec<IncidentSpec>,
    /// What makes this organisation hard to watch ([`Quirk`]).
    pub quirks: Vec<Quirk>,
    /// Attack techniques to inject, described in `attacks.json`.
    pub attacks: Vec<technique::Attack>,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimSummary {
    pub files: u64,
    pub events: u64,
    pub bytes: u64,
    pub incidents: Vec<Incident>,
}

pub(crate) const SLOT_MINUTES: i64 = 5;

pub(crate) const ACCOUNTS: [(&str, &[&str]); 3] = [
    ("111122223333", &["us-east-1", "eu-west-1"]),
    ("444455556666", &["us-east-1"]),
    ("777788889999", &["us-east-1", "us-west-2"]),
];

const CLI_UA: &str = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22";
const TF_UA: &str = "APN/1.0 HashiCorp/1.0 Terraform/1.7.4 (+https://www.terraform.io) terraform-provider-aws/5.40.0 aws-sdk-go-v2/1.25.3";
const CONSOLE_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15";
const SDK_UA: &str =
    "aws-sdk-java/2.25.10 Linux/5.10 OpenJDK_64-Bit_Server_VM/17.0.10 java/17.0.10";

pub(crate) fn principal(account: &'static str, name: &'static str) -> Principal {
    let (kind, ip, user_agent) = match name {
        "alice" => (PrincipalKind::User, "198.51.100.10", CLI_UA),
        "bob" => (PrincipalKind::User, "198.51.100.11", TF_UA),
        "carol" => (PrincipalKind::User, "198.51.100.12", CONSOLE_UA),
        "ci-deploy" => (PrincipalKind::Role, "10.0.12.7", TF_UA),
        "dave" => (PrincipalKind::User, "198.51.100.13", CONSOLE_UA),
        "erin" => (PrincipalKind::User, "198.51.100.14", CLI_UA),
        "app-backend" | "thumbnailer-role" => (PrincipalKind::Role, "10.0.40.21", SDK_UA),
        "metrics-agent" => (PrincipalKind::Role, "10.0.50.12", SDK_UA),
        "batch-jobs" => (PrincipalKind::Role, "10.0.51.3", SDK_UA),
        "secrets-rotation" => (PrincipalKind::Role, "10.0.60.4", SDK_UA),
        _ => (PrincipalKind::Service, "", ""),
    };
    Principal {
        account,
        kind,
        name,
        ip,
        user_agent,
    }
}

/// The shape of a rate over the week.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rhythm {
    /// People: a midday peak on weekdays, quiet nights and weekends.
    Business,
    /// Machines: steady, a little busier when people are.
    Steady,
    /// The 08:00–08:30 autoscaling scale-out, every day.
    Morning,
    /// A nightly batch at 02:00–02:10.
    Nightly,
}

pub(crate) fn rhythm(r: Rhythm, t: DateTime<Utc>) -> f64 {
    let h = t.hour() as f64 + t.minute() as f64 / 60.0;
    let weekend = t.weekday().number_from_monday() >= 6;
    let business =
        (if weekend { 0.25 } else { 1.0 }) * (0.12 + 0.88 * (-((h - 13.0) / 3.5).powi(2)).exp());
    match r {
        Rhythm::Business => business,
        Rhythm::Steady => 0.7 + 0.3 * business,
        Rhythm::Morning => f64::from((8.0..8.5).contains(&h)),
        Rhythm::Nightly => f64::from((2.0..2.1667).contains(&h)),
    }
}

/// What an activity's calls look like.
#[derive(Debug, Clone, Copy)]
enum Body {
    Plain(&'static [(&'static str, &'static str, bool)]),
    RunInstances(&'static [&'static str]),
    CreateVolume,
    Invoke(&'static str),
    ConsoleLogin,
    /// S3 data events: GetObject of the data bucket.
    GetObject,
    /// A principal's own access keys (CreateAccessKey names itself).
    OwnKeys,
    /// What an attack looks like and is not ([`look_alike`]).
    LookAlike,
}

/// When an activity happens.
#[derive(Debug, Clone, Copy)]
enum Timing {
    Rhythm(Rhythm),
    /// Only with the quirk, on its schedule.
    Quirk(Quirk, Schedule),
}

struct Activity {
    who: &'static [&'static str],
    body: Body,
    per_minute: f64,
    timing: Timing,
    /// Only in the account's home region (global services log there).
    home_only: bool,
    /// Only in these regions (empty: all).
    regions: &'static [&'static str],
    /// Only in these accounts (empty: all).
    accounts: &'static [&'static str],
    error: Option<(&'static str, &'static str, f64)>,
}

const USER_READS: &[(&str, &str, bool)] = &[
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("ec2.amazonaws.com", "DescribeVolumes", true),
    ("s3.amazonaws.com", "ListBuckets", true),
    ("s3.amazonaws.com", "GetBucketAcl", true),
    ("rds.amazonaws.com", "DescribeDBInstances", true),
    ("lambda.amazonaws.com", "ListFunctions20150331", true),
    ("monitoring.amazonaws.com", "GetMetricData", true),
    ("logs.amazonaws.com", "DescribeLogGroups", true),
];
const APP_CALLS: &[(&str, &str, bool)] = &[
    ("ssm.amazonaws.com", "GetParameter", true),
    ("kms.amazonaws.com", "Decrypt", true),
    ("secretsmanager.amazonaws.com", "GetSecretValue", true),
    ("sts.amazonaws.com", "AssumeRole", true),
    ("dynamodb.amazonaws.com", "DescribeTable", true),
];
const CI_WRITES: &[(&str, &str, bool)] = &[
    ("ec2.amazonaws.com", "CreateTags", false),
    ("ssm.amazonaws.com", "PutParameter", false),
    (
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        false,
    ),
    ("cloudformation.amazonaws.com", "DescribeStacks", true),
    ("ec2.amazonaws.com", "TerminateInstances", false),
];
const IAM_CHANGES: &[(&str, &str, bool)] = &[
    ("iam.amazonaws.com", "CreateUser", false),
    ("iam.amazonaws.com", "CreateAccessKey", false),
    ("iam.amazonaws.com", "AttachRolePolicy", false),
    ("iam.amazonaws.com", "PutRolePolicy", false),
];
const PEOPLE: &[&str] = &["alice", "bob", "carol"];

const ACTIVITIES: &[Activity] = &[
    Activity {
        who: PEOPLE,
        body: Body::Plain(USER_READS),
        per_minute: 1.5,
        timing: Timing::Rhythm(Rhythm::Business),
        home_only: false,
        regions: &[],
        accounts: &[],
        error: Some((
            "AccessDenied",
            "User is not authorized to perform this operation",
            0.01,
        )),
    },
    Activity {
        who: &["app-backend"],
        body: Body::Plain(APP_CALLS),
        per_minute: 3.0,
        timing: Timing::Rhythm(Rhythm::Steady),
        home_only: false,
        regions: &[],
        accounts: &[],
        error: Some(("ThrottlingException", "Rate exceeded", 0.005)),
    },
    Activity {
        who: &["ci-deploy"],
        body: Body::Plain(CI_WRITES),
        per_minute: 0.3,
        timing: Timing::Rhythm(Rhythm::Business),
        home_only: false,
        regions: &[],
        accounts: &[],
        error: None,
    },
    Activity {
        who: &["ci-deploy"],
        body: Body::RunInstances(&["t3.medium", "m5.large", "c5.xlarge"]),
        per_minute: 0.04,
        timing: Timing::Rhythm(Rhythm::Business),
        home_only: false,
        regions: &[],
        accounts: &[],
        error: None,
    },
    // An Auto Scaling group launches one instance per call.
    Activity {
        who: &["autoscaling.amazonaws.com"],
        body: Body::RunInstances(&["m5.large"]),
        per_minute: 0.2,
        timing: Timing::Rhythm(Rhythm::Morning),
        home_only: false,
        regions: &[],
        accounts: &["111122223333"],
        error: None,
    },
    Activity {
        who: &["ci-deploy"],
        body: Body::CreateVolume,
        per_minute: 0.03,
        timing: Timing::Rhythm(Rhythm::Business),
        home_only: false,
        regions: &[],
        accounts: &[],
        error: None,
    },
    Activity {
        who: &["apigateway.amazonaws.com"],
        body: Body::Invoke("orders-api"),
        per_minute: 6.0,
        timing: Timing::Rhythm(Rhythm::Business),
        home_only: false,
        regions: &[],
        accounts: &["111122223333", "444455556666"],
        error: None,
    },
    Activity {
        who: &["app-backend"],
        body: Body::Invoke("thumbnailer"),
        per_minute: 2.0,
        timing: Timing::Rhythm(Rhythm::Business),
        home_only: true,
        regions: &[],
        accounts: &["111122223333"],
        error: None,
    },
    Activity {
        who: &["events.amazonaws.com"],
        body: Body::Invoke("nightly-report"),
        per_minute: 3.0,
        timing: Timing::Rhythm(Rhythm::Nightly),
        home_only: true,
        regions: &[],
        accounts: &["111122223333"],
        error: None,
    },
    Activity {
        who: PEOPLE,
        body: Body::ConsoleLogin,
        per_minute: 0.02,
        timing: Timing::Rhythm(Rhythm::Business),
        home_only: true,
        regions: &[],
        accounts: &[],
        error: None,
    },
    Activity {
        who: &["ci-deploy"],
        body: Body::Plain(IAM_CHANGES),
        per_minute: 0.02,
        timing: Timing::Rhythm(Rhythm::Business),
        home_only: true,
        regions: &[],
        accounts: &[],
        error: None,
    },
    Activity {
        who: &["app-backend"],
        body: Body::GetObject,
        per_minute: 2.0,
        timing: Timing::Rhythm(Rhythm::Steady),
        home_only: true,
        regions: &[],
        accounts: &["111122223333"],
        error: None,
    },
];

const METRICS: &[(&str, &str, bool)] = &[("monitoring.amazonaws.com", "PutMetricData", false)];
const BATCH_READS: &[(&str, &str, bool)] = &[
    ("secretsmanager.amazonaws.com", "GetSecretValue", true),
    ("ssm.amazonaws.com", "GetParameters", true),
    ("ssm.amazonaws.com", "GetParametersByPath", true),
    ("kms.amazonaws.com", "Decrypt", true),
];
const DEPLOY_WAVE: &[(&str, &str, bool)] = &[
    ("ec2.amazonaws.com", "CreateTags", false),
    ("ssm.amazonaws.com", "PutParameter", false),
    (
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        false,
    ),
    ("cloudformation.amazonaws.com", "DescribeStacks", true),
    ("cloudformation.amazonaws.com", "UpdateStack", false),
    ("cloudformation.amazonaws.com", "DescribeStackEvents", true),
    ("ecs.amazonaws.com", "RegisterTaskDefinition", false),
    ("ecs.amazonaws.com", "UpdateService", false),
    ("ec2.amazonaws.com", "TerminateInstances", false),
];
const ON_CALL: &[(&str, &str, bool)] = &[
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("monitoring.amazonaws.com", "GetMetricData", true),
    ("logs.amazonaws.com", "DescribeLogGroups", true),
    ("logs.amazonaws.com", "FilterLogEvents", true),
    ("rds.amazonaws.com", "DescribeDBInstances", true),
    ("ec2.amazonaws.com", "RebootInstances", false),
];
const SECRET_ROTATION: &[(&str, &str, bool)] = &[
    ("secretsmanager.amazonaws.com", "DescribeSecret", true),
    ("secretsmanager.amazonaws.com", "GetSecretValue", true),
    ("secretsmanager.amazonaws.com", "PutSecretValue", false),
    (
        "secretsmanager.amazonaws.com",
        "UpdateSecretVersionStage",
        false,
    ),
    ("secretsmanager.amazonaws.com", "RotateSecret", false),
];
const FAILOVER_OPS: &[(&str, &str, bool)] = &[
    ("route53.amazonaws.com", "ChangeResourceRecordSets", false),
    ("rds.amazonaws.com", "FailoverGlobalCluster", false),
    ("autoscaling.amazonaws.com", "UpdateAutoScalingGroup", false),
    (
        "autoscaling.amazonaws.com",
        "DescribeAutoScalingGroups",
        true,
    ),
];
const STEP_FUNCTIONS: &[(&str, &str, bool)] = &[
    ("states.amazonaws.com", "StartExecution", false),
    ("states.amazonaws.com", "DescribeExecution", true),
    ("states.amazonaws.com", "GetExecutionHistory", true),
];
const STEP_FUNCTIONS_SETUP: &[(&str, &str, bool)] = &[
    ("states.amazonaws.com", "CreateStateMachine", false),
    ("states.amazonaws.com", "TagResource", false),
    ("states.amazonaws.com", "UpdateStateMachine", false),
];
const FAILOVER_ACCOUNT: &[&str] = &["777788889999"];
const FAILOVER_REGION: &[&str] = &["us-west-2"];

/// A quirk's activity: `who` calls `body` at `per_minute` times its schedule.
const fn quirk(
    q: Quirk,
    schedule: Schedule,
    who: &'static [&'static str],
    body: Body,
    per_minute: f64,
    home_only: bool,
    accounts: &'static [&'static str],
    regions: &'static [&'static str],
) -> Activity {
    Activity {
        who,
        body,
        per_minute,
        timing: Timing::Quirk(q, schedule),
        home_only,
        regions,
        accounts,
        error: None,
    }
}

const QUIRK_ACTIVITIES: &[Activity] = &[
    quirk(
        Quirk::BurstyAutomation,
        Schedule::Bursts,
        &["metrics-agent"],
        Body::Plain(METRICS),
        0.3,
        false,
        &[],
        &[],
    ),
    quirk(
        Quirk::BurstyAutomation,
        Schedule::Bursts,
        &["batch-jobs"],
        Body::Plain(BATCH_READS),
        0.15,
        false,
        &[],
        &[],
    ),
    quirk(
        Quirk::DeployWaves,
        Schedule::Waves,
        &["ci-deploy"],
        Body::Plain(DEPLOY_WAVE),
        3.0,
        false,
        &[],
        &[],
    ),
    quirk(
        Quirk::DeployWaves,
        Schedule::Waves,
        &["ci-deploy"],
        Body::RunInstances(&["t3.medium", "m5.large"]),
        0.3,
        false,
        &[],
        &[],
    ),
    quirk(
        Quirk::NightOnCall,
        Schedule::OnCallNight,
        &["carol"],
        Body::ConsoleLogin,
        0.1,
        true,
        &["111122223333"],
        &[],
    ),
    quirk(
        Quirk::NightOnCall,
        Schedule::OnCallNight,
        &["carol"],
        Body::Plain(ON_CALL),
        3.0,
        true,
        &["111122223333"],
        &[],
    ),
    quirk(
        Quirk::NewTeamMember,
        Schedule::NewFromMorning,
        &["dave"],
        Body::ConsoleLogin,
        0.02,
        true,
        &[],
        &[],
    ),
    quirk(
        Quirk::NewTeamMember,
        Schedule::NewFromMorning,
        &["dave"],
        Body::Plain(USER_READS),
        1.0,
        false,
        &["111122223333", "444455556666"],
        &[],
    ),
    quirk(
        Quirk::CredentialRotation,
        Schedule::Rotation,
        PEOPLE,
        Body::OwnKeys,
        1.0,
        true,
        &[],
        &[],
    ),
    quirk(
        Quirk::CredentialRotation,
        Schedule::Rotation,
        &["secrets-rotation"],
        Body::Plain(SECRET_ROTATION),
        4.0,
        true,
        &[],
        &[],
    ),
    quirk(
        Quirk::RegionalFailover,
        Schedule::Failover,
        &["app-backend"],
        Body::Plain(APP_CALLS),
        3.0,
        false,
        FAILOVER_ACCOUNT,
        FAILOVER_REGION,
    ),
    quirk(
        Quirk::RegionalFailover,
        Schedule::Failover,
        &["autoscaling.amazonaws.com"],
        Body::RunInstances(&["m5.large"]),
        0.5,
        false,
        FAILOVER_ACCOUNT,
        FAILOVER_REGION,
    ),
    quirk(
        Quirk::RegionalFailover,
        Schedule::Failover,
        &["bob"],
        Body::Plain(FAILOVER_OPS),
        0.5,
        false,
        FAILOVER_ACCOUNT,
        FAILOVER_REGION,
    ),
    quirk(
        Quirk::NewService,
        Schedule::NewFromLateMorning,
        &["app-backend"],
        Body::Plain(STEP_FUNCTIONS),
        1.5,
        true,
        &["111122223333"],
        &[],
    ),
    quirk(
        Quirk::NewService,
        Schedule::NewFromLateMorning,
        &["ci-deploy"],
        Body::Plain(STEP_FUNCTIONS_SETUP),
        0.02,
        true,
        &["111122223333"],
        &[],
    ),
    quirk(
        Quirk::BusyAdmin,
        Schedule::WorkingDays,
        &["erin"],
        Body::Plain(USER_READS),
        0.1,
        true,
        &[],
        &[],
    ),
    quirk(
        Quirk::BusyAdmin,
        Schedule::WorkingDays,
        &["erin"],
        Body::Plain(&[("bedrock.amazonaws.com", "InvokeModel", false)]),
        0.02,
        true,
        &[],
        &[],
    ),
    quirk(
        Quirk::BusyAdmin,
        Schedule::WorkingDays,
        &["erin"],
        Body::LookAlike,
        0.05,
        true,
        &[],
        &[],
    ),
];

/// A Poisson draw (Knuth for small means, a rounded normal for large ones).
pub(crate) fn poisson(rng: &mut impl Rng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean > 30.0 {
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        return (mean + z * mean.sqrt()).round().max(0.0) as u32;
    }
    let limit = (-mean).exp();
    let (mut k, mut p) = (0, 1.0);
    loop {
        p *= rng.random::<f64>();
        if p <= limit {
            return k;
        }
        k += 1;
    }
}

/// Where and when a slot's background is drawn.
struct Slot<'a> {
    account: &'static str,
    region: &'static str,
    start: DateTime<Utc>,
    config: &'a SimConfig,
    span: Span,
}

fn background(rng: &mut impl Rng, at: &Slot, out: &mut Vec<Value>) {
    let (account, region, slot) = (at.account, at.region, at.start);
    let home = region == "us-east-1";
    let key: u64 = account.parse().unwrap_or(0);
    let mid = slot + Duration::seconds(SLOT_MINUTES * 30);
    for a in ACTIVITIES.iter().chain(QUIRK_ACTIVITIES) {
        if (a.home_only && !home)
            || (!a.accounts.is_empty() && !a.accounts.contains(&account))
            || (!a.regions.is_empty() && !a.regions.contains(&region))
        {
            continue;
        }
        let shape = match a.timing {
            Timing::Rhythm(r) => rhythm(r, mid),
            Timing::Quirk(q, _) if !at.config.quirks.contains(&q) => continue,
            Timing::Quirk(_, schedule) => at.span.rate(schedule, key, mid),
        };
        let n = poisson(
            rng,
            a.per_minute * SLOT_MINUTES as f64 * shape * at.config.scale,
        );
        for _ in 0..n {
            let time = slot + Duration::seconds(rng.random_range(0..SLOT_MINUTES * 60));
            let who = principal(account, a.who[rng.random_range(0..a.who.len())]);
            let mut error = a
                .error
                .filter(|e| rng.random::<f64>() < e.2)
                .map(|e| (e.0, e.1));
            let zone = format!("{region}a");
            let (source, name, read_only, request, response) = match a.body {
                Body::Plain(calls) => {
                    let (s, n, ro) = calls[rng.random_range(0..calls.len())];
                    (s, n, ro, json!({}), Value::Null)
                }
                Body::RunInstances(types) => {
                    let count = if who.kind == PrincipalKind::Service {
                        1
                    } else {
                        rng.random_range(1..=2)
                    };
                    let kind = types[rng.random_range(0..types.len())];
                    let (req, resp) = records::run_instances(rng, kind, count, &zone);
                    ("ec2.amazonaws.com", "RunInstances", false, req, resp)
                }
                Body::CreateVolume => {
                    let size = rng.random_range(2..=20) * 10;
                    let (req, resp) = records::create_volume(rng, size, "gp3", &zone);
                    ("ec2.amazonaws.com", "CreateVolume", false, req, resp)
                }
                Body::GetObject => (
                    "s3.amazonaws.com",
                    "GetObject",
                    true,
                    records::get_object(rng, records::DATA_BUCKET),
                    Value::Null,
                ),
                Body::OwnKeys => {
                    let names = [
                        "CreateAccessKey",
                        "UpdateAccessKey",
                        "DeleteAccessKey",
                        "ListAccessKeys",
                    ];
                    let n = names[rng.random_range(0..names.len())];
                    // The CLI names the caller itself half the time.
                    let request = if rng.random::<bool>() {
                        json!({ "userName": who.name })
                    } else {
                        json!({})
                    };
                    (
                        "iam.amazonaws.com",
                        n,
                        n.starts_with("List"),
                        request,
                        Value::Null,
                    )
                }
                Body::Invoke(function) => (
                    "lambda.amazonaws.com",
                    "Invoke",
                    false,
                    records::invoke(account, region, function),
                    Value::Null,
                ),
                Body::LookAlike => {
                    let (source, name, read_only, request) = look_alike::any(rng, account);
                    (source, name, read_only, request, Value::Null)
                }
                Body::ConsoleLogin => {
                    // One sign-in in twenty fails (a mistyped password).
                    if rng.random::<f64>() < 0.05 {
                        error = Some(("", "Failed authentication"));
                    }
                    let n = "ConsoleLogin";
                    ("signin.amazonaws.com", n, false, Value::Null, Value::Null)
                }
            };
            let call = Call {
                time,
                who: &who,
                region,
                source,
                name,
                read_only,
                error,
                request,
                response,
            };
            out.push(call.to_record(rng));
        }
    }
}

/// Writes the deliveries and `incidents.json` into `config.out`.
pub fn simulate(config: &SimConfig, progress: &(dyn Fn(u64) + Sync)) -> io::Result<SimSummary> {
    let incidents: Vec<Incident> = config.incidents.iter().map(IncidentSpec::resolve).collect();
    let slots = config.days as i64 * 24 * 60 / SLOT_MINUTES;
    let span = Span {
        start: config.start,
        days: config.days,
        seed: config.seed,
    };
    let mut accounts = ACCOUNTS.to_vec();
    if config.quirks.contains(&Quirk::MoreAccounts) {
        accounts.extend(quirks::MORE_ACCOUNTS);
    }
    let files = AtomicU64::new(0);
    let events = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    (0..slots)
        .into_par_iter()
        .try_for_each(|i| -> io::Result<()> {
            let slot = config.start + Duration::minutes(i * SLOT_MINUTES);
            for (ai, (account, regions)) in accounts.iter().enumerate() {
                for (ri, region) in regions.iter().enumerate() {
                    let mut rng = ChaCha8Rng::seed_from_u64(
                        config.seed
                            ^ ((i as u64) << 16 | (ai as u64) << 8 | ri as u64)
                                .wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    );
                    let mut records = Vec::new();
                    let at = Slot {
                        account,
                        region,
                        start: slot,
                        config,
                        span,
                    };
                    background(&mut rng, &at, &mut records);
                    for inc in &incidents {
                        inc.generate(&mut rng, account, region, slot, &mut records);
                    }
                    for attack in &config.attacks {
                        attack.generate(&mut rng, account, region, slot, &mut records);
                    }
                    if records.is_empty() {
                        continue;
                    }
                    records.sort_by(|a, b| a["eventTime"].as_str().cmp(&b["eventTime"].as_str()));
                    let n = records.len() as u64;
                    let written =
                        write_delivery(&config.out, account, region, slot, &mut rng, records)?;
                    files.fetch_add(1, Ordering::Relaxed);
                    events.fetch_add(n, Ordering::Relaxed);
                    bytes.fetch_add(written, Ordering::Relaxed);
                }
            }
            progress(1);
            Ok(())
        })?;
    std::fs::create_dir_all(&config.out)?;
    let doc = serde_json::to_vec_pretty(&incidents).map_err(io::Error::other)?;
    std::fs::write(config.out.join("incidents.json"), doc)?;
    if !config.attacks.is_empty() {
        let doc = serde_json::to_vec_pretty(&config.attacks).map_err(io::Error::other)?;
        std::fs::write(config.out.join("attacks.json"), doc)?;
    }
    Ok(SimSummary {
        files: files.into_inner(),
        events: events.into_inner(),
        bytes: bytes.into_inner(),
        incidents,
    })
}

/// The S3 key CloudTrail would use for a delivery of this slot.
pub fn delivery_key(account: &str, region: &str, slot: DateTime<Utc>, random: &str) -> String {
    let delivered = slot + Duration::minutes(SLOT_MINUTES);
    format!(
        "AWSLogs/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}_{random}.json.gz",
        slot.format("%Y/%m/%d"),
        delivered.format("%Y%m%dT%H%MZ")
    )
}

fn write_delivery(
    out: &Path,
    account: &str,
    region: &str,
    slot: DateTime<Utc>,
    rng: &mut impl Rng,
    records: Vec<Value>,
) -> io::Result<u64> {
    let random: String = records::id_chars(rng, 16);
    let path = out.join(delivery_key(account, region, slot, &random));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    serde_json::to_writer(&mut gz, &json!({ "Records": records })).map_err(io::Error::other)?;
    let body = gz.finish()?;
    std::fs::File::create(&path)?.write_all(&body)?;
    Ok(body.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rhythms_have_their_shape() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // 2026-01-07 is a Wednesday, 2026-01-10 a Saturday.
        assert!(rhythm(Rhythm::Business, t("2026-01-07T13:00:00Z")) > 0.95);
        assert!(rhythm(Rhythm::Business, t("2026-01-07T03:00:00Z")) < 0.15);
        assert!(rhythm(Rhythm::Business, t("2026-01-10T13:00:00Z")) < 0.3);
        assert_eq!(rhythm(Rhythm::Morning, t("2026-01-07T08:10:00Z")), 1.0);
        assert_eq!(rhythm(Rhythm::Morning, t("2026-01-07T09:10:00Z")), 0.0);
    }

    #[test]
    fn keys_follow_the_cloudtrail_layout() {
        let slot = "2026-01-07T13:55:00Z".parse().unwrap();
        assert_eq!(
            delivery_key("111122223333", "us-east-1", slot, "abc"),
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/07/111122223333_CloudTrail_us-east-1_20260107T1400Z_abc.json.gz"
        );
    }

    #[test]
    fn poisson_means_are_right() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for mean in [0.3, 4.0, 50.0] {
            let n = 4000;
            let avg = (0..n).map(|_| poisson(&mut rng, mean) as f64).sum::<f64>() / n as f64;
            assert!(
                (avg - mean).abs() < mean * 0.08 + 0.03,
                "mean {mean}: {avg}"
            );
        }
    }
}
