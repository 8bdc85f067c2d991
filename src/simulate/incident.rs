//! Incidents injected by `trailwatch simulate`, and their description in
//! `incidents.json`.

use super::records::{self, Call};
use super::{principal, SLOT_MINUTES};
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use std::str::FromStr;

/// The kinds of incident the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentKind {
    /// A leaked key starts GPU instances in a sandbox account.
    CryptoMining,
    /// A Lambda function invokes itself in a loop.
    LambdaLoop,
    /// A stolen key probes the account: a burst of AccessDenied, calls never made before.
    LeakedKey,
    /// Someone creates large volumes in a burst.
    VolumeSprawl,
    /// A leaked key makes a new user with an access key, a password and the
    /// administrator policy: a way back in after the key is revoked.
    IamPersistence,
    /// Console sign-ins failing several times a minute from one unknown
    /// address, then one succeeding.
    ConsoleBruteForce,
    /// A leaked key stops the organisation's trail, then deletes it.
    LoggingTampering,
    /// A bucket policy allowing everyone to read, set by a person by mistake.
    PublicBucket,
    /// An application role's credentials read objects in a burst from a
    /// network it never used (S3 data events).
    Exfiltration,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 9] = [
        IncidentKind::CryptoMining,
        IncidentKind::LambdaLoop,
        IncidentKind::LeakedKey,
        IncidentKind::VolumeSprawl,
        IncidentKind::IamPersistence,
        IncidentKind::ConsoleBruteForce,
        IncidentKind::LoggingTampering,
        IncidentKind::PublicBucket,
        IncidentKind::Exfiltration,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IncidentKind::CryptoMining => "crypto-mining",
            IncidentKind::LambdaLoop => "lambda-loop",
            IncidentKind::LeakedKey => "leaked-key",
            IncidentKind::VolumeSprawl => "volume-sprawl",
            IncidentKind::IamPersistence => "iam-persistence",
            IncidentKind::ConsoleBruteForce => "console-brute-force",
            IncidentKind::LoggingTampering => "logging-tampering",
            IncidentKind::PublicBucket => "public-bucket",
            IncidentKind::Exfiltration => "exfiltration",
        }
    }

    fn duration(self) -> Duration {
        Duration::minutes(match self {
            IncidentKind::CryptoMining => 40,
            IncidentKind::LambdaLoop => 45,
            IncidentKind::LeakedKey => 30,
            IncidentKind::VolumeSprawl => 30,
            IncidentKind::IamPersistence => 10,
            IncidentKind::ConsoleBruteForce => 16,
            IncidentKind::LoggingTampering => 5,
            IncidentKind::PublicBucket => 5,
            IncidentKind::Exfiltration => 25,
        })
    }

    /// (account, region, principal name)
    fn target(self) -> (&'static str, &'static str, &'static str) {
        match self {
            IncidentKind::CryptoMining => ("777788889999", "us-west-2", "carol"),
            IncidentKind::LambdaLoop => ("111122223333", "us-east-1", "thumbnailer-role"),
            IncidentKind::LeakedKey => ("111122223333", "us-east-1", "bob"),
            IncidentKind::VolumeSprawl => ("444455556666", "us-east-1", "alice"),
            IncidentKind::IamPersistence => ("444455556666", "us-east-1", "bob"),
            IncidentKind::ConsoleBruteForce => ("111122223333", "us-east-1", "carol"),
            IncidentKind::LoggingTampering => ("777788889999", "us-east-1", "alice"),
            IncidentKind::PublicBucket => ("111122223333", "us-east-1", "alice"),
            IncidentKind::Exfiltration => ("111122223333", "us-east-1", "app-backend"),
        }
    }

    /// The shipped detector or rule that should catch it.
    pub fn detector(self) -> &'static str {
        match self {
            IncidentKind::CryptoMining => "ec2-run-instances",
            IncidentKind::LambdaLoop => "lambda-invoke",
            IncidentKind::LeakedKey => "api-errors",
            IncidentKind::VolumeSprawl => "ebs-create-volume",
            IncidentKind::IamPersistence => "iam-credentials-for-another-user",
            IncidentKind::ConsoleBruteForce => "console-login-failures",
            IncidentKind::LoggingTampering => "cloudtrail-stop-logging",
            IncidentKind::PublicBucket => "s3-bucket-made-public",
            IncidentKind::Exfiltration => "s3-get-object",
        }
    }
}

/// `KIND@TIME` from the command line; TIME is RFC 3339 or `+1d2h30m` after the start.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentSpec {
    pub kind: IncidentKind,
    pub at: When,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    Absolute(DateTime<Utc>),
    AfterStart(Duration),
}

impl IncidentSpec {
    /// Pins a relative time to the simulation start.
    pub fn anchor(&self, start: DateTime<Utc>) -> IncidentSpec {
        let at = match self.at {
            When::AfterStart(d) => When::Absolute(start + d),
            abs => abs,
        };
        IncidentSpec {
            kind: self.kind,
            at,
        }
    }

    /// The incident's full description (the time must be anchored).
    pub fn resolve(&self) -> Incident {
        let When::Absolute(start) = self.at else {
            panic!("anchor() the incident time before resolving it");
        };
        let kind = self.kind;
        let (account, region, who) = kind.target();
        let p = principal(account, who);
        let (description, details) = match kind {
            IncidentKind::CryptoMining => (
                "RunInstances burst of GPU instance types from carol's key in the sandbox account, from an unknown address",
                json!({"event_source": "ec2.amazonaws.com", "event_names": ["RunInstances"], "instance_types": GPU_TYPES, "source_ip": LEAK_IP}),
            ),
            IncidentKind::LambdaLoop => (
                "The thumbnailer function invokes itself about 300 times a minute",
                json!({"event_source": "lambda.amazonaws.com", "event_names": ["Invoke"], "function": "thumbnailer"}),
            ),
            IncidentKind::LeakedKey => (
                "bob's key calls IAM, S3, Secrets Manager and EC2 from an unknown address; most calls are denied",
                json!({"event_names": PROBES.iter().map(|p| p.1).collect::<Vec<_>>(), "source_ip": LEAK_IP, "user_agent": LEAK_UA}),
            ),
            IncidentKind::VolumeSprawl => (
                "CreateVolume burst of large io2 volumes",
                json!({"event_source": "ec2.amazonaws.com", "event_names": ["CreateVolume"], "volume_type": "io2"}),
            ),
            IncidentKind::IamPersistence => (
                "bob's key, from an unknown address, creates the user svc-backup with an access key, a console password and AdministratorAccess",
                json!({"event_source": "iam.amazonaws.com", "event_names": ["CreateUser", "CreateAccessKey", "CreateLoginProfile", "AttachUserPolicy"], "new_user": PERSISTENCE_USER, "source_ip": LEAK_IP}),
            ),
            IncidentKind::ConsoleBruteForce => (
                "Console sign-ins as carol fail five times a minute from one unknown address, until one succeeds",
                json!({"event_source": "signin.amazonaws.com", "event_names": ["ConsoleLogin"], "source_ip": BRUTE_IP}),
            ),
            IncidentKind::LoggingTampering => (
                "alice's key, from an unknown address, stops the organisation trail and deletes it",
                json!({"event_source": "cloudtrail.amazonaws.com", "event_names": ["StopLogging", "DeleteTrail"], "trail": TRAIL, "source_ip": LEAK_IP}),
            ),
            IncidentKind::PublicBucket => (
                "alice sets a bucket policy that lets anyone read the bucket",
                json!({"event_source": "s3.amazonaws.com", "event_names": ["PutBucketPolicy"], "bucket": PUBLIC_BUCKET}),
            ),
            IncidentKind::Exfiltration => (
                "The app-backend role's credentials read about 150 objects a minute from an unknown network",
                json!({"event_source": "s3.amazonaws.com", "event_names": ["GetObject"], "bucket": records::DATA_BUCKET, "source_ip": EXFIL_IP}),
            ),
        };
        Incident {
            kind,
            start,
            end: start + kind.duration(),
            account: account.into(),
            region: region.into(),
            principal: p.arn(),
            detector: kind.detector().into(),
            description: description.into(),
            details,
        }
    }
}

/// When, on the last day, `simulate` injects each kind when no
/// `--incident` is given: every kind, at least half an hour apart, so each
/// is its own incident.
pub const DEMO_TIMES: [(IncidentKind, u32, u32); 9] = [
    (IncidentKind::IamPersistence, 1, 30),
    (IncidentKind::CryptoMining, 3, 10),
    (IncidentKind::ConsoleBruteForce, 6, 0),
    (IncidentKind::LambdaLoop, 9, 40),
    (IncidentKind::LoggingTampering, 12, 0),
    (IncidentKind::LeakedKey, 14, 20),
    (IncidentKind::PublicBucket, 16, 30),
    (IncidentKind::VolumeSprawl, 19, 0),
    (IncidentKind::Exfiltration, 21, 30),
];

/// The default incidents of a simulation of `days` days ([`DEMO_TIMES`]).
pub fn demo_incidents(days: u32) -> Vec<IncidentSpec> {
    let last_day = Duration::days(i64::from(days.max(1)) - 1);
    DEMO_TIMES
        .iter()
        .map(|&(kind, h, m)| IncidentSpec {
            kind,
            at: When::AfterStart(
                last_day + Duration::hours(i64::from(h)) + Duration::minutes(i64::from(m)),
            ),
        })
        .collect()
}

impl FromStr for IncidentSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, time) = s
            .split_once('@')
            .ok_or_else(|| format!("{s:?}: write KIND@TIME, like crypto-mining@2026-01-07T14:00:00Z or leaked-key@+2d14h"))?;
        let kind = <IncidentKind as clap::ValueEnum>::from_str(kind, true).map_err(|_| {
            let names: Vec<_> = IncidentKind::ALL.iter().map(|k| k.name()).collect();
            format!(
                "{kind:?} is not an incident kind; use one of {}",
                names.join(", ")
            )
        })?;
        let at = if let Some(rel) = time.strip_prefix('+') {
            When::AfterStart(
                parse_offset(rel)
                    .ok_or_else(|| format!("{time:?}: write an offset like +2d14h30m"))?,
            )
        } else {
            When::Absolute(
                DateTime::parse_from_rfc3339(time)
                    .map_err(|e| format!("{time:?} is not an RFC 3339 time ({e}); or write an offset like +2d14h"))?
                    .with_timezone(&Utc),
            )
        };
        Ok(IncidentSpec { kind, at })
    }
}

/// `2d14h30m`, any parts in that order.
fn parse_offset(s: &str) -> Option<Duration> {
    let mut total = Duration::zero();
    let mut digits = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().ok()?;
        digits.clear();
        total += match c {
            'd' => Duration::days(n),
            'h' => Duration::hours(n),
            'm' => Duration::minutes(n),
            _ => return None,
        };
        any = true;
    }
    (any && digits.is_empty()).then_some(total)
}

/// One injected incident, as written to `incidents.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub kind: IncidentKind,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub account: String,
    pub region: String,
    pub principal: String,
    /// The shipped detector meant to catch it.
    pub detector: String,
    pub description: String,
    pub details: Value,
}

const GPU_TYPES: [&str; 4] = [
    "p3.16xlarge",
    "g4dn.12xlarge",
    "p4d.24xlarge",
    "g5.48xlarge",
];
const LEAK_IP: &str = "203.0.113.66";
const BRUTE_IP: &str = "198.18.40.9";
const EXFIL_IP: &str = "192.0.2.77";
const PERSISTENCE_USER: &str = "svc-backup";
const TRAIL: &str = "org-trail";
const PUBLIC_BUCKET: &str = "marketing-assets-111122223333";
const LEAK_UA: &str =
    "Boto3/1.34.11 md/Botocore#1.34.11 ua/2.0 os/linux#5.15.0 md/arch#x86_64 lang/python#3.12.1";
/// What a stolen key tries: (source, name, error code or "" when allowed).
const PROBES: [(&str, &str, &str); 7] = [
    ("iam.amazonaws.com", "ListUsers", "AccessDenied"),
    ("iam.amazonaws.com", "ListRoles", "AccessDenied"),
    ("s3.amazonaws.com", "ListBuckets", "AccessDenied"),
    (
        "secretsmanager.amazonaws.com",
        "ListSecrets",
        "AccessDeniedException",
    ),
    (
        "ec2.amazonaws.com",
        "DescribeInstances",
        "Client.UnauthorizedOperation",
    ),
    (
        "organizations.amazonaws.com",
        "DescribeOrganization",
        "AccessDeniedException",
    ),
    ("sts.amazonaws.com", "GetCallerIdentity", ""),
];

/// One call of a scripted incident, at a fixed offset from its start.
struct Step {
    after_seconds: i64,
    source: &'static str,
    name: &'static str,
    read_only: bool,
    request: Value,
}

fn step(after_seconds: i64, source: &'static str, name: &'static str, request: Value) -> Step {
    Step {
        after_seconds,
        source,
        name,
        read_only: name.starts_with("Get")
            || name.starts_with("List")
            || name.starts_with("Describe"),
        request,
    }
}

impl Incident {
    /// Calls a minute, for the kinds that are a burst of one kind of call.
    fn per_minute(&self) -> Option<f64> {
        Some(match self.kind {
            IncidentKind::CryptoMining => 2.0,
            IncidentKind::LambdaLoop => 300.0,
            IncidentKind::LeakedKey => 20.0,
            IncidentKind::VolumeSprawl => 12.0,
            IncidentKind::ConsoleBruteForce => 5.0,
            IncidentKind::Exfiltration => 150.0,
            IncidentKind::IamPersistence
            | IncidentKind::LoggingTampering
            | IncidentKind::PublicBucket => return None,
        })
    }

    /// The calls of the kinds that are a short sequence.
    fn script(&self) -> Vec<Step> {
        let iam = "iam.amazonaws.com";
        let user = json!({ "userName": PERSISTENCE_USER });
        match self.kind {
            IncidentKind::IamPersistence => vec![
                step(0, iam, "GetUser", json!({})),
                step(20, iam, "ListUsers", json!({})),
                step(60, iam, "CreateUser", user.clone()),
                step(95, iam, "CreateAccessKey", user.clone()),
                step(
                    130,
                    iam,
                    "CreateLoginProfile",
                    json!({ "userName": PERSISTENCE_USER, "passwordResetRequired": false }),
                ),
                step(
                    170,
                    iam,
                    "AttachUserPolicy",
                    json!({ "userName": PERSISTENCE_USER, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess" }),
                ),
                step(400, iam, "ListAttachedUserPolicies", user),
            ],
            IncidentKind::LoggingTampering => {
                let ct = "cloudtrail.amazonaws.com";
                let arn = format!(
                    "arn:aws:cloudtrail:us-east-1:{}:trail/{TRAIL}",
                    self.account
                );
                vec![
                    step(0, ct, "DescribeTrails", json!({})),
                    step(30, ct, "GetTrailStatus", json!({ "name": arn })),
                    step(75, ct, "StopLogging", json!({ "name": arn })),
                    step(190, ct, "DeleteTrail", json!({ "name": arn })),
                ]
            }
            IncidentKind::PublicBucket => {
                let s3 = "s3.amazonaws.com";
                let policy = json!({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": format!("arn:aws:s3:::{PUBLIC_BUCKET}/*")
                    }]
                });
                vec![
                    step(
                        0,
                        s3,
                        "GetBucketPolicy",
                        json!({ "bucketName": PUBLIC_BUCKET, "policy": "" }),
                    ),
                    step(
                        40,
                        s3,
                        "DeleteBucketPublicAccessBlock",
                        json!({ "bucketName": PUBLIC_BUCKET, "publicAccessBlock": "" }),
                    ),
                    step(
                        100,
                        s3,
                        "PutBucketPolicy",
                        json!({ "bucketName": PUBLIC_BUCKET, "bucketPolicy": policy, "policy": "" }),
                    ),
                    step(
                        160,
                        s3,
                        "GetBucketPolicyStatus",
                        json!({ "bucketName": PUBLIC_BUCKET, "policyStatus": "" }),
                    ),
                ]
            }
            _ => Vec::new(),
        }
    }

    /// Who acts, from where.
    fn actor(&self) -> super::records::Principal {
        let (acct, _, who) = self.kind.target();
        let mut p = principal(acct, who);
        match self.kind {
            IncidentKind::CryptoMining
            | IncidentKind::LeakedKey
            | IncidentKind::IamPersistence
            | IncidentKind::LoggingTampering => (p.ip, p.user_agent) = (LEAK_IP, LEAK_UA),
            IncidentKind::ConsoleBruteForce => {
                (p.ip, p.user_agent) = (
                    BRUTE_IP,
                    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                )
            }
            IncidentKind::Exfiltration => (p.ip, p.user_agent) = (EXFIL_IP, LEAK_UA),
            IncidentKind::LambdaLoop | IncidentKind::VolumeSprawl | IncidentKind::PublicBucket => {}
        }
        p
    }

    /// Adds this incident's events for one five-minute slot of one account and region.
    pub fn generate(
        &self,
        rng: &mut impl Rng,
        account: &str,
        region: &str,
        slot: DateTime<Utc>,
        out: &mut Vec<Value>,
    ) {
        if account != self.account || region != self.region {
            return;
        }
        let slot_end = slot + Duration::minutes(SLOT_MINUTES);
        let (from, to) = (slot.max(self.start), slot_end.min(self.end));
        if from >= to {
            return;
        }
        let p = self.actor();
        let call = |time, source, name, read_only, request| Call {
            time,
            who: &p,
            region,
            source,
            name,
            read_only,
            error: None,
            request,
            response: Value::Null,
        };
        let Some(per_minute) = self.per_minute() else {
            for s in self.script() {
                let time = self.start + Duration::seconds(s.after_seconds);
                if (from..to).contains(&time) {
                    let c = call(time, s.source, s.name, s.read_only, s.request);
                    out.push(c.to_record(rng));
                }
            }
            return;
        };
        let seconds = (to - from).num_seconds();
        let n = (per_minute * seconds as f64 / 60.0).round() as u32;
        let zone = format!("{region}b");
        for _ in 0..n {
            let time = from + Duration::seconds(rng.random_range(0..seconds));
            let mut call = call(time, "", "", false, json!({}));
            match self.kind {
                IncidentKind::CryptoMining => {
                    let (kind, count) = (
                        GPU_TYPES[rng.random_range(0..GPU_TYPES.len())],
                        rng.random_range(4..=8),
                    );
                    let (req, resp) = records::run_instances(rng, kind, count, &zone);
                    (call.source, call.name, call.request, call.response) =
                        ("ec2.amazonaws.com", "RunInstances", req, resp);
                    if rng.random::<f64>() < 0.15 {
                        call.error = Some(("Client.VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit allows"));
                    }
                }
                IncidentKind::LambdaLoop => {
                    (call.source, call.name, call.request) = (
                        "lambda.amazonaws.com",
                        "Invoke",
                        records::invoke(account, region, "thumbnailer"),
                    );
                }
                IncidentKind::LeakedKey => {
                    let (source, name, code) = PROBES[rng.random_range(0..PROBES.len())];
                    (call.source, call.name, call.read_only) = (source, name, true);
                    if !code.is_empty() {
                        call.error =
                            Some((code, "User is not authorized to perform this operation"));
                    }
                }
                IncidentKind::VolumeSprawl => {
                    let size = rng.random_range(5..=20) * 100;
                    let (req, resp) = records::create_volume(rng, size, "io2", &zone);
                    (call.source, call.name, call.request, call.response) =
                        ("ec2.amazonaws.com", "CreateVolume", req, resp);
                }
                IncidentKind::ConsoleBruteForce => {
                    (call.source, call.name) = ("signin.amazonaws.com", "ConsoleLogin");
                    // The attempt in its last seconds gets in.
                    let last = time >= self.end - Duration::seconds(12);
                    if !last {
                        call.error = Some(("", "Failed authentication"));
                    }
                }
                IncidentKind::Exfiltration => {
                    (call.source, call.name, call.read_only, call.request) = (
                        "s3.amazonaws.com",
                        "GetObject",
                        true,
                        records::get_object(rng, records::DATA_BUCKET),
                    );
                }
                IncidentKind::IamPersistence
                | IncidentKind::LoggingTampering
                | IncidentKind::PublicBucket => unreachable!("scripted kinds return above"),
            }
            out.push(call.to_record(rng));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_injects_every_kind_on_the_last_day_each_apart() {
        let specs = demo_incidents(7);
        let start: DateTime<Utc> = "2026-11-15T00:00:00Z".parse().unwrap();
        let kinds: std::collections::BTreeSet<&str> = specs.iter().map(|s| s.kind.name()).collect();
        assert_eq!(kinds.len(), IncidentKind::ALL.len());
        let mut spans: Vec<Incident> = specs.iter().map(|s| s.anchor(start).resolve()).collect();
        spans.sort_by_key(|i| i.start);
        let last_day = start + Duration::days(6);
        for w in spans.windows(2) {
            assert!(
                w[1].start - w[0].end >= Duration::minutes(30),
                "{:?} too close to {:?}",
                w[1].kind,
                w[0].kind
            );
        }
        assert!(spans[0].start >= last_day);
        assert!(spans[8].end <= last_day + Duration::days(1));
    }

    #[test]
    fn specs_parse_absolute_and_relative_times() {
        let s: IncidentSpec = "lambda-loop@2026-01-07T14:00:00Z".parse().unwrap();
        assert_eq!(s.kind, IncidentKind::LambdaLoop);
        let s: IncidentSpec = "leaked-key@+2d14h30m".parse().unwrap();
        assert_eq!(
            s.at,
            When::AfterStart(Duration::minutes(2 * 1440 + 14 * 60 + 30))
        );
        let start = "2026-01-05T00:00:00Z".parse().unwrap();
        let inc = s.anchor(start).resolve();
        assert_eq!(inc.start.to_rfc3339(), "2026-01-07T14:30:00+00:00");
        assert_eq!(inc.end - inc.start, Duration::minutes(30));
        assert_eq!(inc.principal, "arn:aws:iam::111122223333:user/bob");
    }

    #[test]
    fn bad_specs_say_what_to_write() {
        assert!("mining"
            .parse::<IncidentSpec>()
            .unwrap_err()
            .contains("KIND@TIME"));
        assert!("bitcoin@+1d"
            .parse::<IncidentSpec>()
            .unwrap_err()
            .contains("crypto-mining, lambda-loop"));
        assert!("leaked-key@+1x"
            .parse::<IncidentSpec>()
            .unwrap_err()
            .contains("offset"));
        assert!("leaked-key@tuesday"
            .parse::<IncidentSpec>()
            .unwrap_err()
            .contains("RFC 3339"));
    }
}
