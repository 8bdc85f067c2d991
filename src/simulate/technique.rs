//! Attack techniques `simulate` can inject beside its incidents: what an
//! attacker does in AWS, one technique per entry, as CloudTrail records it
//! (request parameters shaped as AWS documents each API's record), each
//! mapped to its MITRE ATT&CK tactic and technique. Each comes in by one of
//! two ways ([`WayIn`]): an established person's stolen keys used from a
//! network they never used, or an IAM user of the organisation's own account
//! that was never seen before. `eval` scores how many of each tactic page.

use super::records::{Call, Principal, PrincipalKind};
use super::SLOT_MINUTES;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// The ATT&CK tactics the catalogue covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tactic {
    InitialAccess,
    Execution,
    Persistence,
    PrivilegeEscalation,
    DefenseEvasion,
    CredentialAccess,
    Exfiltration,
    Impact,
}

impl Tactic {
    pub fn name(self) -> &'static str {
        match self {
            Tactic::InitialAccess => "initial-access",
            Tactic::Execution => "execution",
            Tactic::Persistence => "persistence",
            Tactic::PrivilegeEscalation => "privilege-escalation",
            Tactic::DefenseEvasion => "defense-evasion",
            Tactic::CredentialAccess => "credential-access",
            Tactic::Exfiltration => "exfiltration",
            Tactic::Impact => "impact",
        }
    }
}

/// How the attacker got in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum WayIn {
    /// An established person's access keys, from a network they never used.
    StolenKeys,
    /// An IAM user of the organisation's own account, never seen before
    /// (made by an intruder with admin rights), from the intruder's network.
    NeverSeenPrincipal,
}

impl WayIn {
    pub const ALL: [WayIn; 2] = [WayIn::StolenKeys, WayIn::NeverSeenPrincipal];

    pub fn name(self) -> &'static str {
        match self {
            WayIn::StolenKeys => "stolen-keys",
            WayIn::NeverSeenPrincipal => "never-seen-principal",
        }
    }
}

/// One technique: its name, where ATT&CK puts it, and its calls.
pub struct Technique {
    pub name: &'static str,
    pub tactic: Tactic,
    /// The ATT&CK technique id.
    pub attack: &'static str,
    calls: fn(&Scene) -> Vec<Step>,
}

/// Where a technique plays: the account, and an account outside the
/// organisation the attacker owns.
struct Scene {
    account: &'static str,
    region: &'static str,
}

/// The attacker's own account, outside the organisation.
const OUTSIDER: &str = "999988887777";

/// One call of a technique, seconds after its start.
struct Step {
    after: i64,
    source: &'static str,
    name: &'static str,
    request: Value,
    /// Top-level fields besides the usual (`additionalEventData`).
    extra: Value,
}

fn step(after: i64, source: &'static str, name: &'static str, request: Value) -> Step {
    Step {
        after,
        source,
        name,
        request,
        extra: Value::Null,
    }
}

/// The same call `n` times, `every` seconds apart, from `after`.
fn repeated(
    (after, every, n): (i64, i64, i64),
    source: &'static str,
    name: &'static str,
    request: impl Fn(i64) -> Value,
) -> Vec<Step> {
    (0..n)
        .map(|i| step(after + i * every, source, name, request(i)))
        .collect()
}

const EC2: &str = "ec2.amazonaws.com";
const IAM: &str = "iam.amazonaws.com";

/// The catalogue, by tactic.
pub const CATALOGUE: [Technique; 29] = [
    Technique {
        name: "console-sign-in-without-mfa",
        tactic: Tactic::InitialAccess,
        attack: "T1078.004",
        calls: |_| {
            let mut s = step(0, "signin.amazonaws.com", "ConsoleLogin", Value::Null);
            s.extra = json!({"additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": "No"}});
            vec![s, step(60, "iam.amazonaws.com", "ListUsers", json!({}))]
        },
    },
    Technique {
        name: "ssm-run-command",
        tactic: Tactic::Execution,
        attack: "T1651",
        calls: |_| {
            vec![
                step(0, EC2, "DescribeInstances", json!({})),
                step(
                    40,
                    "ssm.amazonaws.com",
                    "SendCommand",
                    json!({"instanceIds": ["i-0a1b2c3d4e5f60718"], "documentName": "AWS-RunShellScript", "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
                ),
            ]
        },
    },
    Technique {
        name: "ssm-session",
        tactic: Tactic::Execution,
        attack: "T1651",
        calls: |_| {
            vec![step(
                0,
                "ssm.amazonaws.com",
                "StartSession",
                json!({"target": "i-0a1b2c3d4e5f60718"}),
            )]
        },
    },
    Technique {
        name: "user-data-changed",
        tactic: Tactic::Execution,
        attack: "T1059.009",
        calls: |_| {
            let instance =
                json!({"instancesSet": {"items": [{"instanceId": "i-0a1b2c3d4e5f60718"}]}});
            vec![
                step(0, EC2, "StopInstances", instance.clone()),
                step(
                    90,
                    EC2,
                    "ModifyInstanceAttribute",
                    json!({"instanceId": "i-0a1b2c3d4e5f60718", "userData": "<sensitiveDataRemoved>"}),
                ),
                step(120, EC2, "StartInstances", instance),
            ]
        },
    },
    Technique {
        name: "access-key-for-another-user",
        tactic: Tactic::Persistence,
        attack: "T1098.001",
        calls: |_| {
            vec![
                step(0, IAM, "ListUsers", json!({})),
                step(
                    30,
                    IAM,
                    "CreateAccessKey",
                    json!({"userName": "deploy-bot"}),
                ),
            ]
        },
    },
    Technique {
        name: "login-profile-for-another-user",
        tactic: Tactic::Persistence,
        attack: "T1098",
        calls: |_| {
            vec![step(
                0,
                IAM,
                "CreateLoginProfile",
                json!({"userName": "reporting", "passwordResetRequired": false}),
            )]
        },
    },
    Technique {
        name: "role-trusts-outside-account",
        tactic: Tactic::Persistence,
        attack: "T1098.003",
        calls: |_| {
            let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{OUTSIDER}:root")}, "Action": "sts:AssumeRole"}]}).to_string();
            vec![step(
                0,
                IAM,
                "UpdateAssumeRolePolicy",
                json!({"roleName": "OrganizationAccountAccessRole", "policyDocument": policy}),
            )]
        },
    },
    Technique {
        name: "lambda-open-to-everyone",
        tactic: Tactic::Persistence,
        attack: "T1546",
        calls: |_| {
            vec![step(
                0,
                "lambda.amazonaws.com",
                "AddPermission20150331v2",
                json!({"functionName": "thumbnailer", "statementId": "public", "action": "lambda:InvokeFunction", "principal": "*"}),
            )]
        },
    },
    Technique {
        name: "lambda-code-replaced",
        tactic: Tactic::Persistence,
        attack: "T1648",
        calls: |_| {
            vec![
                step(
                    0,
                    "lambda.amazonaws.com",
                    "GetFunction20150331v2",
                    json!({"functionName": "thumbnailer"}),
                ),
                step(
                    45,
                    "lambda.amazonaws.com",
                    "UpdateFunctionCode20150331v2",
                    json!({"functionName": "thumbnailer", "publish": true}),
                ),
            ]
        },
    },
    Technique {
        name: "roles-anywhere-trust-anchor",
        tactic: Tactic::Persistence,
        attack: "T1098",
        calls: |_| {
            vec![step(
                0,
                "rolesanywhere.amazonaws.com",
                "CreateTrustAnchor",
                json!({"name": "ops", "enabled": true, "source": {"sourceType": "CERTIFICATE_BUNDLE"}}),
            )]
        },
    },
    Technique {
        name: "federation-token",
        tactic: Tactic::Persistence,
        attack: "T1550.001",
        calls: |_| {
            vec![step(
                0,
                "sts.amazonaws.com",
                "GetFederationToken",
                json!({"name": "backup", "durationSeconds": 129600}),
            )]
        },
    },
    Technique {
        name: "administrator-policy-attached",
        tactic: Tactic::PrivilegeEscalation,
        attack: "T1098.003",
        calls: |_| {
            vec![step(
                0,
                IAM,
                "AttachUserPolicy",
                json!({"userName": "bob", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
            )]
        },
    },
    Technique {
        name: "policy-version-set-default",
        tactic: Tactic::PrivilegeEscalation,
        attack: "T1098.003",
        calls: |s| {
            let arn = format!("arn:aws:iam::{}:policy/app-deploy", s.account);
            let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}).to_string();
            vec![step(
                0,
                IAM,
                "CreatePolicyVersion",
                json!({"policyArn": arn, "policyDocument": doc, "setAsDefault": true}),
            )]
        },
    },
    Technique {
        name: "trail-stopped",
        tactic: Tactic::DefenseEvasion,
        attack: "T1562.008",
        calls: |s| {
            let arn = format!("arn:aws:cloudtrail:us-east-1:{}:trail/org-trail", s.account);
            vec![
                step(0, "cloudtrail.amazonaws.com", "DescribeTrails", json!({})),
                step(
                    40,
                    "cloudtrail.amazonaws.com",
                    "StopLogging",
                    json!({"name": arn}),
                ),
            ]
        },
    },
    Technique {
        name: "trail-narrowed",
        tactic: Tactic::DefenseEvasion,
        attack: "T1562.008",
        calls: |_| {
            vec![step(
                0,
                "cloudtrail.amazonaws.com",
                "PutEventSelectors",
                json!({"trailName": "org-trail", "eventSelectors": [{"readWriteType": "ReadOnly", "includeManagementEvents": false, "dataResources": []}]}),
            )]
        },
    },
    Technique {
        name: "guardduty-disabled",
        tactic: Tactic::DefenseEvasion,
        attack: "T1562.001",
        calls: |_| {
            vec![
                step(0, "guardduty.amazonaws.com", "ListDetectors", json!({})),
                step(
                    30,
                    "guardduty.amazonaws.com",
                    "DeleteDetector",
                    json!({"detectorId": "12abc34d567e8fa901bc2d34e56789f0"}),
                ),
            ]
        },
    },
    Technique {
        name: "config-stopped",
        tactic: Tactic::DefenseEvasion,
        attack: "T1562.001",
        calls: |_| {
            vec![step(
                0,
                "config.amazonaws.com",
                "StopConfigurationRecorder",
                json!({"configurationRecorderName": "default"}),
            )]
        },
    },
    Technique {
        name: "flow-logs-deleted",
        tactic: Tactic::DefenseEvasion,
        attack: "T1562.008",
        calls: |_| {
            vec![step(
                0,
                EC2,
                "DeleteFlowLogs",
                json!({"DeleteFlowLogsRequest": {"FlowLogId": {"tag": 1, "content": "fl-0a1b2c3d4e5f60718"}}}),
            )]
        },
    },
    Technique {
        name: "dns-query-logging-removed",
        tactic: Tactic::DefenseEvasion,
        attack: "T1562.008",
        calls: |_| {
            vec![step(
                0,
                "route53resolver.amazonaws.com",
                "DisassociateResolverQueryLogConfig",
                json!({"resolverQueryLogConfigId": "rqlc-0a1b2c3d4e5f6071", "resourceId": "vpc-0a1b2c3d"}),
            )]
        },
    },
    Technique {
        name: "organization-left",
        tactic: Tactic::DefenseEvasion,
        attack: "T1666",
        calls: |_| {
            vec![step(
                0,
                "organizations.amazonaws.com",
                "LeaveOrganization",
                Value::Null,
            )]
        },
    },
    Technique {
        name: "secrets-read",
        tactic: Tactic::CredentialAccess,
        attack: "T1555.006",
        calls: |s| {
            let mut out = vec![step(
                0,
                "secretsmanager.amazonaws.com",
                "ListSecrets",
                json!({}),
            )];
            out.extend(repeated((20, 15, 4), "secretsmanager.amazonaws.com", "GetSecretValue", |i| {
                json!({"secretId": format!("arn:aws:secretsmanager:{}:{}:secret:prod/db-{i}", s.region, s.account)})
            }));
            out
        },
    },
    Technique {
        name: "securestring-parameters-read",
        tactic: Tactic::CredentialAccess,
        attack: "T1552",
        calls: |_| {
            let mut out = vec![step(
                0,
                "ssm.amazonaws.com",
                "DescribeParameters",
                json!({}),
            )];
            out.extend(repeated(
                (20, 10, 3),
                "ssm.amazonaws.com",
                "GetParameter",
                |i| json!({"name": format!("/prod/api-key-{i}"), "withDecryption": true}),
            ));
            out
        },
    },
    Technique {
        name: "instance-password-read",
        tactic: Tactic::CredentialAccess,
        attack: "T1552.005",
        calls: |_| {
            vec![step(
                0,
                EC2,
                "GetPasswordData",
                json!({"instanceId": "i-0a1b2c3d4e5f60718"}),
            )]
        },
    },
    Technique {
        name: "snapshot-shared-outside",
        tactic: Tactic::Exfiltration,
        attack: "T1537",
        calls: |_| {
            vec![
                step(
                    0,
                    EC2,
                    "CreateSnapshot",
                    json!({"volumeId": "vol-0a1b2c3d4e5f60718"}),
                ),
                step(
                    100,
                    EC2,
                    "ModifySnapshotAttribute",
                    json!({"snapshotId": "snap-0a1b2c3d4e5f60718", "attributeType": "CREATE_VOLUME_PERMISSION", "createVolumePermission": {"add": {"items": [{"userId": OUTSIDER}]}}}),
                ),
            ]
        },
    },
    Technique {
        name: "image-made-public",
        tactic: Tactic::Exfiltration,
        attack: "T1537",
        calls: |_| {
            vec![step(
                0,
                EC2,
                "ModifyImageAttribute",
                json!({"imageId": "ami-0a1b2c3d4e5f60718", "launchPermission": {"add": {"items": [{"group": "all"}]}}, "attributeType": "launchPermission"}),
            )]
        },
    },
    Technique {
        name: "database-snapshot-shared-outside",
        tactic: Tactic::Exfiltration,
        attack: "T1537",
        calls: |_| {
            vec![step(
                0,
                "rds.amazonaws.com",
                "ModifyDBSnapshotAttribute",
                json!({"dBSnapshotIdentifier": "orders-2026-12", "attributeName": "restore", "valuesToAdd": [OUTSIDER]}),
            )]
        },
    },
    Technique {
        name: "model-invocation",
        tactic: Tactic::Impact,
        attack: "T1496.004",
        calls: |_| {
            repeated(
                (0, 20, 12),
                "bedrock.amazonaws.com",
                "InvokeModel",
                |_| json!({"modelId": "anthropic.claude-3-5-sonnet-20240620-v1:0"}),
            )
        },
    },
    Technique {
        name: "gpu-instances-of-a-new-type",
        tactic: Tactic::Impact,
        attack: "T1496.001",
        calls: |_| {
            vec![step(
                0,
                EC2,
                "RunInstances",
                json!({"instanceType": "p4d.24xlarge", "minCount": 4, "maxCount": 4,
                    "instancesSet": {"items": [{"imageId": "ami-0c55b159cbfafe1f0"}]}}),
            )]
        },
    },
    Technique {
        name: "buckets-deleted",
        tactic: Tactic::Impact,
        attack: "T1485",
        calls: |s| {
            repeated(
                (0, 30, 3),
                "s3.amazonaws.com",
                "DeleteBucket",
                |i| json!({"bucketName": format!("backups-{i}-{}", s.account), "Host": "s3.amazonaws.com"}),
            )
        },
    },
];

/// The organisation's accounts a technique plays in, in turn.
const ACCOUNTS: [&str; 3] = ["111122223333", "444455556666", "777788889999"];
/// Established people whose keys are stolen, in turn.
const PEOPLE: [&str; 3] = ["alice", "bob", "carol"];
const ATTACKER_UA: &str =
    "aws-cli/2.17.4 md/awscrt#0.20.11 ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.11.8";

/// A distinct public network for each injected attack (no two share a
/// `/24`, so each is new to its principal), and never-seen user names.
fn leaked(i: usize, way: WayIn) -> (&'static str, &'static str) {
    static NAMES: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    let all = NAMES.get_or_init(|| {
        (0..2 * CATALOGUE.len())
            .map(|k| {
                let ip: &'static str =
                    Box::leak(format!("185.{}.{}.23", 40 + k / 200, k % 200).into_boxed_str());
                let user: &'static str = Box::leak(format!("svc-sync-{k:02}").into_boxed_str());
                (ip, user)
            })
            .collect()
    });
    let k = i % CATALOGUE.len() + CATALOGUE.len() * (way as usize);
    all[k]
}

/// One technique injected at a time, by a way in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attack {
    pub technique: &'static str,
    pub tactic: Tactic,
    pub attack: &'static str,
    pub way_in: WayIn,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub account: &'static str,
    pub region: &'static str,
    /// The acting principal's ARN.
    pub principal: String,
    pub source_ip: &'static str,
    #[serde(skip)]
    index: usize,
}

/// Technique `index` of the [`CATALOGUE`] by `way`, at `start`.
pub fn attack(index: usize, way: WayIn, start: DateTime<Utc>) -> Attack {
    let t = &CATALOGUE[index % CATALOGUE.len()];
    let account = ACCOUNTS[index % ACCOUNTS.len()];
    let actor = actor(index, way);
    let last = (t.calls)(&Scene {
        account,
        region: "us-east-1",
    })
    .iter()
    .map(|s| s.after)
    .max()
    .unwrap_or(0);
    Attack {
        technique: t.name,
        tactic: t.tactic,
        attack: t.attack,
        way_in: way,
        start,
        end: start + Duration::seconds(last + 1),
        account,
        region: "us-east-1",
        principal: actor.arn(),
        source_ip: actor.ip,
        index,
    }
}

/// Every technique of the [`CATALOGUE`] by `way`, in catalogue order at
/// seed-chosen times from `from` to `to`, each in its own share of the span
/// and at least half an hour before the next.
pub fn every_technique(
    way: WayIn,
    seed: u64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Attack> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7ec4_0a11);
    let gap = ((to - from).num_minutes() / CATALOGUE.len() as i64).max(31);
    (0..CATALOGUE.len())
        .map(|i| {
            let at = from + Duration::minutes(i as i64 * gap + rng.random_range(0..gap - 30));
            attack(i, way, at)
        })
        .collect()
}

fn actor(index: usize, way: WayIn) -> Principal {
    let account = ACCOUNTS[index % ACCOUNTS.len()];
    let (ip, user) = leaked(index, way);
    let name = match way {
        WayIn::StolenKeys => PEOPLE[(index / ACCOUNTS.len()) % PEOPLE.len()],
        WayIn::NeverSeenPrincipal => user,
    };
    Principal {
        account,
        kind: PrincipalKind::User,
        name,
        ip,
        user_agent: ATTACKER_UA,
    }
}

impl Attack {
    /// Adds its calls in one five-minute slot of one account and region.
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
        let who = actor(self.index, self.way_in);
        let t = &CATALOGUE[self.index % CATALOGUE.len()];
        let scene = Scene {
            account: self.account,
            region: self.region,
        };
        for s in (t.calls)(&scene) {
            let time = self.start + Duration::seconds(s.after);
            if time < slot || time >= slot_end {
                continue;
            }
            let read_only = ["Get", "List", "Describe"]
                .iter()
                .any(|p| s.name.starts_with(p));
            let call = Call {
                time,
                who: &who,
                region,
                source: s.source,
                name: s.name,
                read_only,
                error: None,
                request: s.request,
                response: Value::Null,
            };
            let mut record = call.to_record(rng);
            if let (Some(r), Some(extra)) = (record.as_object_mut(), s.extra.as_object()) {
                for (k, v) in extra {
                    r.insert(k.clone(), v.clone());
                }
            }
            out.push(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tactic_the_issue_names_has_a_technique_and_names_are_unique() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
        for tactic in [
            Tactic::InitialAccess,
            Tactic::Execution,
            Tactic::Persistence,
            Tactic::PrivilegeEscalation,
            Tactic::DefenseEvasion,
            Tactic::CredentialAccess,
            Tactic::Exfiltration,
            Tactic::Impact,
        ] {
            assert!(CATALOGUE.iter().any(|t| t.tactic == tactic), "{tactic:?}");
        }
    }

    #[test]
    fn each_attack_comes_from_its_own_network_and_a_never_seen_user_is_new() {
        let start: DateTime<Utc> = "2026-03-05T10:00:00Z".parse().unwrap();
        let a = attack(0, WayIn::StolenKeys, start);
        let b = attack(1, WayIn::StolenKeys, start);
        let c = attack(0, WayIn::NeverSeenPrincipal, start);
        assert_ne!(a.source_ip, b.source_ip);
        assert_ne!(a.source_ip, c.source_ip);
        assert_eq!(a.principal, "arn:aws:iam::111122223333:user/alice");
        assert_eq!(c.principal, "arn:aws:iam::111122223333:user/svc-sync-29");
    }
}
