//! Building CloudTrail records of realistic shape.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{json, Value};

/// Who makes a call.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: &'static str,
    pub kind: PrincipalKind,
    pub name: &'static str,
    pub ip: &'static str,
    pub user_agent: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Role,
    Service,
}

impl Principal {
    pub fn arn(&self) -> String {
        match self.kind {
            PrincipalKind::User => format!("arn:aws:iam::{}:user/{}", self.account, self.name),
            PrincipalKind::Role => format!(
                "arn:aws:sts::{}:assumed-role/{}/session",
                self.account, self.name
            ),
            PrincipalKind::Service => self.name.to_owned(),
        }
    }

    fn identity(&self, rng: &mut impl Rng) -> Value {
        // One key per principal, as a person's or a role's is: what a
        // responder deactivates. (The draw stays, so every seed writes the
        // same records as before apart from the key.)
        let _ = id_chars(rng, 16);
        let key = format!(
            "AKIA{}",
            stable_id(&format!("{}:{}", self.account, self.name))
        );
        match self.kind {
            PrincipalKind::User => json!({
                "type": "IAMUser", "principalId": format!("AIDA{}", stable_id(self.name)),
                "arn": self.arn(), "accountId": self.account, "accessKeyId": key, "userName": self.name}),
            PrincipalKind::Role => json!({
                "type": "AssumedRole", "principalId": format!("AROA{}:session", stable_id(self.name)),
                "arn": self.arn(), "accountId": self.account, "accessKeyId": key.replacen("AKIA", "ASIA", 1),
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": format!("AROA{}", stable_id(self.name)),
                    "arn": format!("arn:aws:iam::{}:role/{}", self.account, self.name),
                    "accountId": self.account, "userName": self.name},
                    "attributes": {"creationDate": "2026-01-01T00:00:00Z", "mfaAuthenticated": "false"}}}),
            PrincipalKind::Service => json!({"type": "AWSService", "invokedBy": self.name}),
        }
    }
}

fn stable_id(name: &str) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

pub fn id_chars(rng: &mut impl Rng, n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..n)
        .map(|_| A[rng.random_range(0..A.len())] as char)
        .collect()
}

pub fn uuid(rng: &mut impl Rng) -> String {
    let b: [u8; 16] = rng.random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// One API call.
pub struct Call<'a> {
    pub time: DateTime<Utc>,
    pub who: &'a Principal,
    pub region: &'a str,
    pub source: &'a str,
    pub name: &'a str,
    pub read_only: bool,
    pub error: Option<(&'a str, &'a str)>,
    pub request: Value,
    pub response: Value,
}

impl Call<'_> {
    pub fn to_record(&self, rng: &mut impl Rng) -> Value {
        let data = (self.source == "lambda.amazonaws.com" && self.name == "Invoke")
            || (self.source == "s3.amazonaws.com" && self.name.ends_with("Object"));
        let console = self.source == "signin.amazonaws.com";
        let mut r = json!({
            "eventVersion": "1.09",
            "userIdentity": self.who.identity(rng),
            "eventTime": self.time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "eventSource": self.source,
            "eventName": self.name,
            "awsRegion": self.region,
            "sourceIPAddress": if self.who.kind == PrincipalKind::Service { self.who.name } else { self.who.ip },
            "userAgent": if self.who.kind == PrincipalKind::Service { self.who.name } else { self.who.user_agent },
            "requestParameters": self.request,
            "responseElements": self.response,
            "requestID": uuid(rng),
            "eventID": uuid(rng),
            "readOnly": self.read_only,
            "eventType": if console { "AwsConsoleSignIn" } else { "AwsApiCall" },
            "managementEvent": !data,
            "recipientAccountId": self.who.account,
            "eventCategory": if data { "Data" } else { "Management" },
        });
        if let Some((code, message)) = self.error {
            r["errorCode"] = json!(code);
            r["errorMessage"] = json!(message);
            r["responseElements"] = Value::Null;
        }
        if console {
            // A console sign-in says how it went in responseElements; a
            // failed one carries a message but no error code.
            let outcome = if self.error.is_some() {
                "Failure"
            } else {
                "Success"
            };
            r["responseElements"] = json!({ "ConsoleLogin": outcome });
            if let Some(m) = r.as_object_mut() {
                m.remove("errorCode");
            }
        }
        if !console && self.who.kind != PrincipalKind::Service {
            r["tlsDetails"] = json!({"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": format!("{}.{}.amazonaws.com", self.source.trim_end_matches(".amazonaws.com"), self.region)});
        }
        if data {
            if let Some(arn) = self.request.get("functionName") {
                r["resources"] = json!([{"accountId": self.who.account, "type": "AWS::Lambda::Function", "ARN": arn}]);
            }
            if let (Some(bucket), Some(key)) = (
                self.request["bucketName"].as_str(),
                self.request["key"].as_str(),
            ) {
                r["resources"] = json!([
                    {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{key}")},
                    {"accountId": self.who.account, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}
                ]);
                r["additionalEventData"] = json!({"bytesTransferredOut": rng.random_range(2_000..400_000), "x-amz-id-2": id_chars(rng, 24)});
            }
        }
        r
    }
}

/// RunInstances: `count` instances of `instance_type`.
pub fn run_instances(
    rng: &mut impl Rng,
    instance_type: &str,
    count: u32,
    zone: &str,
) -> (Value, Value) {
    let request = json!({
        "instancesSet": {"items": [{"imageId": format!("ami-0{}", id_chars(rng, 16).to_lowercase()), "minCount": 1, "maxCount": count}]},
        "instanceType": instance_type, "blockDeviceMapping": {}, "monitoring": {"enabled": false},
        "disableApiTermination": false, "clientToken": uuid(rng),
        "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": [{"key": "Name", "value": "worker"}]}]}});
    let items: Vec<Value> = (0..count)
        .map(|_| {
            json!({"instanceId": format!("i-0{}", id_chars(rng, 16).to_lowercase()),
                        "instanceType": instance_type, "placement": {"availabilityZone": zone},
                        "instanceState": {"code": 0, "name": "pending"}})
        })
        .collect();
    let response = json!({"requestId": uuid(rng), "reservationId": format!("r-0{}", id_chars(rng, 16).to_lowercase()),
                          "instancesSet": {"items": items}});
    (request, response)
}

/// CreateVolume of `size` GiB.
pub fn create_volume(
    rng: &mut impl Rng,
    size: u32,
    volume_type: &str,
    zone: &str,
) -> (Value, Value) {
    let request = json!({"size": size, "zone": zone, "volumeType": volume_type, "encrypted": true});
    let response = json!({"requestId": uuid(rng), "volumeId": format!("vol-0{}", id_chars(rng, 16).to_lowercase()),
        "size": size.to_string(), "zone": zone, "status": "creating", "volumeType": volume_type, "encrypted": true});
    (request, response)
}

/// The application's data bucket, read by app-backend.
pub const DATA_BUCKET: &str = "orders-archive-111122223333";

/// GetObject of one of the bucket's objects.
pub fn get_object(rng: &mut impl Rng, bucket: &str) -> Value {
    let key = format!(
        "orders/2026/{:02}/{}.json",
        rng.random_range(1..=12),
        id_chars(rng, 12).to_lowercase()
    );
    json!({"bucketName": bucket, "key": key, "Host": format!("{bucket}.s3.amazonaws.com")})
}

/// Invoke of a function.
pub fn invoke(account: &str, region: &str, function: &str) -> Value {
    json!({"functionName": format!("arn:aws:lambda:{region}:{account}:function:{function}"), "invocationType": "Event"})
}
