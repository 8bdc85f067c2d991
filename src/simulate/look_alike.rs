//! The busy administrator ([`super::Quirk::BusyAdmin`]): every working day
//! erin, from her usual network, does what the attack techniques look like
//! and is not one: reads secrets and SecureString parameters, opens
//! sessions and sends patch commands to instances, shares snapshots and
//! images with the organisation's own accounts, opens web ports to the
//! world and SSH to the office, makes users, keys and console passwords for
//! new people, grants read-only policies, deploys Lambda code, lets S3
//! invoke a function, makes roles trusted by the organisation's own
//! accounts, adds data events to the trail, resizes instances, reads a
//! Windows password, shares a database snapshot with a sister account,
//! deletes scratch buckets; and she asks a model for her reports several
//! times a day. None of it may page.

use rand::Rng;
use serde_json::{json, Value};

/// One look-alike call: (source, name, read-only, request parameters).
pub type LookAlike = (&'static str, &'static str, bool, Value);

/// The organisation's other account erin shares with.
const SISTER_ACCOUNT: &str = "444455556666";

/// Kinds of look-alike erin does.
pub const KINDS: usize = 20;

/// Look-alike number `kind` (of [`KINDS`]) in `account`; `n` varies names.
pub fn call(kind: usize, n: u32, account: &str) -> LookAlike {
    let ec2 = "ec2.amazonaws.com";
    let iam = "iam.amazonaws.com";
    let hire = format!("new-hire-{n}");
    match kind % KINDS {
        0 => (
            "secretsmanager.amazonaws.com",
            "GetSecretValue",
            true,
            json!({"secretId": format!("arn:aws:secretsmanager:us-east-1:{account}:secret:ops/grafana")}),
        ),
        1 => (
            "ssm.amazonaws.com",
            "GetParameter",
            true,
            json!({"name": "/ops/pagerduty-key", "withDecryption": true}),
        ),
        2 => (
            "ssm.amazonaws.com",
            "StartSession",
            false,
            json!({"target": format!("i-0ops{n:013}")}),
        ),
        3 => (
            "ssm.amazonaws.com",
            "SendCommand",
            false,
            json!({"instanceIds": [format!("i-0ops{n:013}")], "documentName": "AWS-RunPatchBaseline"}),
        ),
        4 => (
            ec2,
            "ModifySnapshotAttribute",
            false,
            json!({"snapshotId": format!("snap-0ops{n:012}"), "attributeType": "CREATE_VOLUME_PERMISSION",
                "createVolumePermission": {"add": {"items": [{"userId": SISTER_ACCOUNT}]}}}),
        ),
        5 => (
            ec2,
            "ModifyImageAttribute",
            false,
            json!({"imageId": format!("ami-0ops{n:012}"), "attributeType": "launchPermission",
                "launchPermission": {"add": {"items": [{"userId": SISTER_ACCOUNT}]}}}),
        ),
        6 => (
            ec2,
            "AuthorizeSecurityGroupIngress",
            false,
            json!({"groupId": "sg-0web0000000000001", "ipPermissions": {"items": [
                {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}),
        ),
        7 => (
            ec2,
            "AuthorizeSecurityGroupIngress",
            false,
            json!({"groupId": "sg-0bastion000000001", "ipPermissions": {"items": [
                {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "198.51.100.0/24"}]}}]}}),
        ),
        8 => (iam, "CreateUser", false, json!({"userName": hire})),
        9 => (
            iam,
            "CreateLoginProfile",
            false,
            json!({"userName": hire, "passwordResetRequired": true}),
        ),
        10 => (iam, "CreateAccessKey", false, json!({"userName": hire})),
        11 => (
            iam,
            "AttachUserPolicy",
            false,
            json!({"userName": hire, "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        ),
        12 => (
            "lambda.amazonaws.com",
            "UpdateFunctionCode20150331v2",
            false,
            json!({"functionName": "ops-reports", "publish": true}),
        ),
        13 => (
            "lambda.amazonaws.com",
            "AddPermission20150331v2",
            false,
            json!({"functionName": "thumbnailer", "statementId": format!("s3-{n}"), "action": "lambda:InvokeFunction",
                "principal": "s3.amazonaws.com", "sourceArn": format!("arn:aws:s3:::uploads-{account}"), "sourceAccount": account}),
        ),
        14 => {
            let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{SISTER_ACCOUNT}:root")}, "Action": "sts:AssumeRole"}]});
            (
                iam,
                "CreateRole",
                false,
                json!({"roleName": format!("ops-cross-account-{n}"), "assumeRolePolicyDocument": trust.to_string()}),
            )
        }
        15 => (
            "cloudtrail.amazonaws.com",
            "PutEventSelectors",
            false,
            json!({"trailName": "org-trail", "eventSelectors": [{"readWriteType": "All", "includeManagementEvents": true,
                "dataResources": [{"type": "AWS::S3::Object", "values": [format!("arn:aws:s3:::uploads-{account}/")]}]}]}),
        ),
        16 => (
            ec2,
            "ModifyInstanceAttribute",
            false,
            json!({"instanceId": format!("i-0ops{n:013}"), "instanceType": {"value": "m5.xlarge"}}),
        ),
        17 => (
            ec2,
            "GetPasswordData",
            true,
            json!({"instanceId": "i-0win0000000000001"}),
        ),
        18 => (
            "rds.amazonaws.com",
            "ModifyDBSnapshotAttribute",
            false,
            json!({"dBSnapshotIdentifier": format!("ops-{n}"), "attributeName": "restore", "valuesToAdd": [SISTER_ACCOUNT]}),
        ),
        _ => (
            "s3.amazonaws.com",
            "DeleteBucket",
            false,
            json!({"bucketName": format!("scratch-{n}-{account}")}),
        ),
    }
}

/// One look-alike at random.
pub fn any(rng: &mut impl Rng, account: &str) -> LookAlike {
    let kind = rng.random_range(0..KINDS);
    call(kind, rng.random_range(0..1000), account)
}
