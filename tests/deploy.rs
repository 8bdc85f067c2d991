//! `trailwatch deploy`, `outputs` and `destroy` against moto_server.
//!
//! moto skips the OpenSearch domain, Cognito, the trail, the subscription
//! filter, bucket policies and SNS subscriptions, and answers HTTP 500 on a
//! `GetAtt` of them. So these tests deploy the existing-domain variant of the
//! template, which has no `GetAtt` on a skipped type: the KMS key, buckets,
//! log groups, IAM roles, SQS queue, SNS topics and both Lambdas are made for
//! real by moto. moto also drops the outputs of stacks made through change
//! sets, so the `outputs` test makes its stack with CreateStack.

use crate::util::*;
use aws_sdk_cloudformation::types::{Capability, Parameter};

const ENDPOINT: &str = "https://search-tw.us-east-1.es.amazonaws.com";
const ROLE: &str = "arn:aws:iam::123456789012:role/opensearch-writer";
const READER: &str = "arn:aws:iam::123456789012:role/opensearch-reader";

/// `deploy` against the emulator, for an existing domain, leaving
/// OpenSearch alone (the domain is not there).
fn deploy(moto: &Server, extra: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut args = vec!["--skip-opensearch"];
    args.extend_from_slice(extra);
    deploy_and_bootstrap(moto, &args, stdin, &[])
}

/// `deploy` against the emulator, for an existing domain.
fn deploy_and_bootstrap(
    moto: &Server,
    extra: &[&str],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = vec![
        "deploy",
        "--endpoint-url",
        &moto.url,
        "--existing-domain-endpoint",
        ENDPOINT,
        "--existing-domain-writer-role-arn",
        ROLE,
        "--existing-domain-reader-role-arn",
        READER,
        "--poll-seconds",
        "0",
    ];
    args.extend_from_slice(extra);
    trailwatch_aws_with(&args, stdin, env)
}

/// `deploy --no-opensearch --yes` against the emulator.
fn deploy_lean(moto: &Server, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "deploy",
        "--endpoint-url",
        &moto.url,
        "--poll-seconds",
        "0",
        "--no-opensearch",
        "--yes",
    ];
    args.extend_from_slice(extra);
    trailwatch_aws(&args, None)
}

fn destroy(moto: &Server, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "destroy",
        "--endpoint-url",
        &moto.url,
        "--poll-seconds",
        "0",
    ];
    args.extend_from_slice(extra);
    trailwatch_aws(&args, None)
}

/// The test's own view of the emulator, through the SDK.
struct Aws {
    runtime: tokio::runtime::Runtime,
    config: aws_config::SdkConfig,
}

impl Aws {
    fn new(moto: &Server) -> Aws {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let config = runtime.block_on(moto.sdk());
        Aws { runtime, config }
    }

    fn cfn(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.config)
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.config)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// The stack's status, or `None` when there is none.
    fn status(&self, name: &str) -> Option<String> {
        let answer = self
            .runtime
            .block_on(self.cfn().describe_stacks().stack_name(name).send())
            .ok()?;
        let status = answer.stacks()[0].stack_status()?.as_str().to_owned();
        (status != "DELETE_COMPLETE").then_some(status)
    }

    fn parameter(&self, name: &str, key: &str) -> String {
        let answer = self
            .runtime
            .block_on(self.cfn().describe_stacks().stack_name(name).send())
            .unwrap();
        answer.stacks()[0]
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some(key))
            .and_then(|p| p.parameter_value())
            .unwrap_or_else(|| panic!("no parameter {key}"))
            .to_owned()
    }

    /// The physical id of a resource of the stack.
    fn resource(&self, name: &str, logical: &str) -> String {
        let answer = self
            .runtime
            .block_on(
                self.cfn()
                    .describe_stack_resources()
                    .stack_name(name)
                    .send(),
            )
            .unwrap();
        answer
            .stack_resources()
            .iter()
            .find(|r| r.logical_resource_id() == Some(logical))
            .and_then(|r| r.physical_resource_id())
            .unwrap_or_else(|| panic!("no resource {logical}"))
            .to_owned()
    }

    fn bucket_exists(&self, bucket: &str) -> bool {
        self.runtime
            .block_on(self.s3().head_bucket().bucket(bucket).send())
            .is_ok()
    }

    fn put(&self, bucket: &str, key: &str) {
        self.runtime
            .block_on(
                self.s3()
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(b"{\"Records\":[]}".to_vec().into())
                    .send(),
            )
            .unwrap();
    }

    fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.runtime.block_on(async {
            let object = self
                .s3()
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            object.body.collect().await.unwrap().into_bytes().to_vec()
        })
    }
}

const CODE_BUCKET: &str = "trailwatch-code-123456789012-us-east-1";

#[test]
fn deploy_creates_the_stack_through_a_change_set_and_a_rerun_changes_nothing() {
    let moto = Server::moto();
    let aws = Aws::new(&moto);

    let o = deploy(&moto, &["--yes"], None);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("made the artifact bucket {CODE_BUCKET}")),
        "{err}"
    );
    assert!(err.contains("uploaded the Lambda package"), "{err}");
    assert!(err.contains("Changes to stack trailwatch (43):"), "{err}");
    assert!(err.contains("Add      ForwarderFunction"), "{err}");
    assert!(err.contains("CREATE_COMPLETE"), "{err}");
    assert_eq!(aws.status("trailwatch").as_deref(), Some("CREATE_COMPLETE"));
    assert_eq!(
        aws.resource("trailwatch", "ForwarderFunction"),
        "trailwatch-forwarder"
    );
    assert_eq!(
        aws.resource("trailwatch", "EnricherFunction"),
        "trailwatch-enricher"
    );
    let key = aws.parameter("trailwatch", "ForwarderCodeKey");
    assert_eq!(aws.parameter("trailwatch", "EnricherCodeKey"), key);
    assert_eq!(aws.parameter("trailwatch", "LambdaCodeBucket"), CODE_BUCKET);

    // The uploaded package is this binary as `bootstrap`, and it runs on
    // provided.al2023: no glibc symbol newer than 2.34 (checked by objdump,
    // not by our own scan).
    let zip = aws.get(CODE_BUCKET, &key);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join("bootstrap");
    {
        let mut entry = archive.by_name("bootstrap").unwrap();
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut file = std::fs::File::create(&bootstrap).unwrap();
        std::io::copy(&mut entry, &mut file).unwrap();
    }
    let o = std::process::Command::new("objdump")
        .arg("-T")
        .arg(&bootstrap)
        .output()
        .expect("objdump (binutils) runs");
    assert!(o.status.success());
    let symbols = String::from_utf8_lossy(&o.stdout);
    let newest = symbols
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .max()
        .expect("the bootstrap links glibc");
    assert!(
        newest <= (2, 34),
        "the bootstrap needs GLIBC_{}.{}",
        newest.0,
        newest.1
    );
    assert_eq!(
        std::fs::read(&bootstrap).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_trailwatch")).unwrap()
    );

    // The same deploy again: same package key, no change set executed.
    let o = deploy(&moto, &["--yes"], None);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("is there already"), "{err}");
    assert!(
        err.contains("no changes: stack trailwatch is up to date"),
        "{err}"
    );
    assert!(!err.contains("Changes to stack"), "{err}");

    // A changed option is an update of what it touches.
    let o = deploy(&moto, &["--yes", "--log-retention-days", "30"], None);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("Modify   LogGroup"), "{err}");
    assert_eq!(aws.status("trailwatch").as_deref(), Some("UPDATE_COMPLETE"));

    // Destroy keeps the data and says where it is.
    let trail_bucket = aws.resource("trailwatch", "TrailBucket");
    aws.put(&trail_bucket, "AWSLogs/123456789012/CloudTrail/x.json.gz");
    let o = destroy(&moto, &["--yes"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("stack trailwatch deleted"), "{err}");
    // What goes, what stays, and the code bucket deploy made beside it.
    assert!(
        err.contains("its data stays (--delete-data deletes it):"),
        "{err}"
    );
    assert!(
        err.contains(
            "not the stack's, and kept: the code bucket trailwatch-code-123456789012-us-east-1"
        ),
        "{err}"
    );
    assert!(
        err.contains(&format!("AWS::S3::Bucket TrailBucket: {trail_bucket}")),
        "{err}"
    );
    assert!(
        err.contains("AWS::Logs::LogGroup LogGroup: /trailwatch/cloudtrail"),
        "{err}"
    );
    assert_eq!(aws.status("trailwatch"), None);
    assert!(aws.bucket_exists(&trail_bucket));

    let o = destroy(&moto, &["--yes"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("nothing to destroy"), "{}", stderr(&o));
}

#[test]
fn a_failed_deploy_names_the_failing_resource_and_a_declined_one_changes_nothing() {
    let moto = Server::moto();
    let aws = Aws::new(&moto);

    let o = deploy(&moto, &[], Some(b"n\n"));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("Changes to stack trailwatch (43):"), "{err}");
    assert!(err.contains("Apply these changes? [y/N]"), "{err}");
    assert!(err.contains("declined: nothing was changed"), "{err}");
    assert_eq!(aws.status("trailwatch"), None);
    // Nothing made for the review stays: not the package, not the bucket.
    assert!(
        err.contains("what was made for the review was removed: s3://trailwatch-code-"),
        "{err}"
    );
    let code_bucket = err
        .split("the code bucket ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the code bucket is named")
        .trim_end_matches(',');
    assert!(!aws.bucket_exists(code_bucket), "{code_bucket} stays");

    // Deployed and destroyed, the named log group stays: deploying the same
    // prefix again cannot make it, and says so. (moto refuses the change set
    // at once; AWS would roll back and our events name the resource, which
    // `changes::first_failure` is specified for.)
    let o = deploy(&moto, &[], Some(b"yes\n"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = destroy(&moto, &["--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = deploy(&moto, &["--yes"], None);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("deploy failed: "), "{err}");
    assert!(err.contains("log group already exists"), "{err}");
}

#[test]
fn destroy_with_delete_data_removes_the_retained_data() {
    let moto = Server::moto();
    let aws = Aws::new(&moto);
    let o = deploy(&moto, &["--yes", "--prefix", "tw-data"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let trail_bucket = aws.resource("tw-data", "TrailBucket");
    aws.put(&trail_bucket, "AWSLogs/123456789012/CloudTrail/a.json.gz");
    aws.put(&trail_bucket, "AWSLogs/123456789012/CloudTrail/b.json.gz");

    // Data cannot come back: without --yes, the stack's name is typed;
    // anything else deletes nothing.
    let args = [
        "destroy",
        "--endpoint-url",
        &moto.url,
        "--poll-seconds",
        "0",
        "--delete-data",
        "--prefix",
        "tw-data",
    ];
    let o = trailwatch_aws(&args, Some(b"yes\n"));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("Type the stack's name (tw-data) to go on: declined: nothing was deleted"),
        "{err}"
    );
    assert_eq!(aws.status("tw-data").as_deref(), Some("CREATE_COMPLETE"));
    let o = destroy(&moto, &["--yes", "--delete-data", "--prefix", "tw-data"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("its data goes too, once the stack is gone:"),
        "{err}"
    );
    assert!(!err.contains("kept (delete them yourself"), "{err}");
    assert!(
        err.contains(&format!(
            "AWS::S3::Bucket TrailBucket ({trail_bucket}): emptied (2 object versions) and deleted"
        )),
        "{err}"
    );
    assert!(
        err.contains("AWS::Logs::LogGroup LogGroup (/tw-data/cloudtrail): deleted"),
        "{err}"
    );
    assert!(err.contains("AWS::KMS::Key Key ("), "{err}");
    assert!(err.contains("scheduled for deletion in 7 days"), "{err}");
    assert_eq!(aws.status("tw-data"), None);
    assert!(!aws.bucket_exists(&trail_bucket), "{err}");

    // The same prefix deploys again: nothing of the old stack is in the way.
    let o = deploy(&moto, &["--yes", "--prefix", "tw-data"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn outputs_prints_what_the_stack_exports() {
    let moto = Server::moto();
    let aws = Aws::new(&moto);
    let o = outputs(&moto, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no stack named trailwatch"),
        "{}",
        stderr(&o)
    );

    // moto drops the outputs of change-set stacks: make this one directly.
    let dir = tempfile::tempdir().unwrap();
    let o = trailwatch(&[
        "plan",
        "--out",
        dir.path().to_str().unwrap(),
        "--existing-domain-endpoint",
        ENDPOINT,
        "--existing-domain-writer-role-arn",
        ROLE,
        "--existing-domain-reader-role-arn",
        READER,
    ]);
    assert!(o.status.success());
    let template = std::fs::read_to_string(dir.path().join("stack.json")).unwrap();
    aws.runtime.block_on(async {
        let s3 = aws.s3();
        s3.create_bucket().bucket("code").send().await.unwrap();
        let mut request = aws
            .cfn()
            .create_stack()
            .stack_name("trailwatch")
            .template_body(template)
            .capabilities(Capability::CapabilityNamedIam);
        for (k, v) in [
            ("LambdaCodeBucket", "code"),
            ("ForwarderCodeKey", "f.zip"),
            ("EnricherCodeKey", "e.zip"),
            ("EngineCodeKey", "g.zip"),
        ] {
            s3.put_object()
                .bucket("code")
                .key(v)
                .body(
                    b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
                        .to_vec()
                        .into(),
                )
                .send()
                .await
                .unwrap();
            request = request.parameters(
                Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build(),
            );
        }
        request.send().await.unwrap();
    });

    let o = outputs(&moto, &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["DomainEndpoint"], ENDPOINT);
    assert_eq!(
        json["AlertTopicArn"],
        "arn:aws:sns:us-east-1:123456789012:trailwatch-alerts"
    );
    assert_eq!(json["LogGroupName"], "/trailwatch/cloudtrail");
    // What deploy hands the OpenSearch bootstrap: the role each Lambda
    // reaches the domain as, here the existing domain's roles it assumes.
    assert_eq!(json["ForwarderRoleArn"], ROLE);
    assert_eq!(json["EnricherRoleArn"], READER);
    assert_eq!(
        json["EngineQueueUrl"],
        "https://sqs.us-east-1.amazonaws.com/123456789012/trailwatch-deliveries"
    );
    assert!(json["StateBucketName"].as_str().is_some(), "{json}");

    let o = outputs(&moto, &[]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.lines()
            .any(|l| l.starts_with("DomainEndpoint") && l.ends_with(ENDPOINT)),
        "{text}"
    );
}

fn outputs(moto: &Server, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["outputs", "--endpoint-url", &moto.url];
    args.extend_from_slice(extra);
    trailwatch_aws(&args, None)
}

#[test]
fn bad_deploy_input_is_refused_before_any_aws_call() {
    // Nothing listens here: a refusal that needed AWS would say it cannot reach it.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let refused = |args: &[&str], says: &str| {
        let o = trailwatch_aws(args, None);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
        assert!(!err.contains("cannot reach AWS"), "{args:?}: {err}");
    };
    refused(
        &[
            "deploy",
            "--endpoint-url",
            &closed,
            "--prefix",
            "Bad_Prefix",
            "--yes",
        ],
        "--prefix \"Bad_Prefix\"",
    );
    refused(
        &[
            "deploy",
            "--endpoint-url",
            &closed,
            "--existing-domain-endpoint",
            ENDPOINT,
            "--yes",
        ],
        "--existing-domain-endpoint needs --existing-domain-writer-role-arn",
    );
    refused(
        &[
            "deploy",
            "--endpoint-url",
            &closed,
            "--lambda-binary",
            "README.md",
            "--yes",
        ],
        "not an ELF executable",
    );
    refused(
        &[
            "deploy",
            "--endpoint-url",
            &closed,
            "--lambda-binary",
            "no/such/file",
            "--yes",
        ],
        "cannot read --lambda-binary no/such/file",
    );
    refused(
        &["deploy", "--endpoint-url", "127.0.0.1:5000"],
        "is not a URL",
    );
    // What the OpenSearch bootstrap after the stack would refuse.
    refused(
        &[
            "deploy",
            "--endpoint-url",
            &closed,
            "--skip-opensearch",
            "--notify",
            "webhook:http://127.0.0.1:9/alerts",
        ],
        "'--skip-opensearch' cannot be used with '--notify <KIND:URL>'",
    );
    refused(
        &[
            "deploy",
            "--endpoint-url",
            &closed,
            "--opensearch-url",
            &closed,
            "--yes",
        ],
        &format!("--opensearch-url {closed} does not answer"),
    );
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("x.toml"), "interval = \"90s\"\n").unwrap();
    refused(
        &[
            "deploy",
            "--endpoint-url",
            &closed,
            "--detectors",
            bad.path().to_str().unwrap(),
            "--yes",
        ],
        "x.toml",
    );
    let o = trailwatch_aws_with(
        &["deploy", "--endpoint-url", &closed, "--yes"],
        None,
        &[("OPENSEARCH_USER", "admin")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("OPENSEARCH_PASSWORD is not set"),
        "{}",
        stderr(&o)
    );

    // Valid options, unreachable AWS: said plainly.
    let o = trailwatch_aws(&["deploy", "--endpoint-url", &closed, "--yes"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot reach AWS"), "{}", stderr(&o));
}

#[test]
fn deploy_applies_the_opensearch_objects_after_the_stack_and_a_rerun_changes_nothing() {
    use crate::util::node::{node, ADMIN_PASSWORD};
    use crate::util::plugins::Plugins;
    let _lock = node_lock();
    let n = node();
    let plugins = Plugins::start(&n.url, &n.ca);
    let moto = Server::moto();
    let admin = [
        ("OPENSEARCH_USER", "admin"),
        ("OPENSEARCH_PASSWORD", ADMIN_PASSWORD),
    ];
    let at = ["--opensearch-url", plugins.url.as_str(), "--wait", "60"];

    // One command: the stack, then every OpenSearch object on the cluster.
    let o = deploy_and_bootstrap(&moto, &[&at[..], &["--yes"]].concat(), None, &admin);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("CREATE_COMPLETE"), "{err}");
    assert!(
        err.contains(&format!(
            "applying the OpenSearch objects to {}",
            plugins.url
        )),
        "{err}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("detector")
            && l.contains("trailwatch-api-errors")
            && l.ends_with("created")),
        "{out}"
    );
    let (_, running) = plugins.detector("trailwatch-api-errors").unwrap();
    assert!(running, "the detector is started");
    assert!(plugins.monitor("trailwatch-api-errors").is_some());

    // Again, without --yes: the stack has no changes, OpenSearch has none,
    // nothing is asked and nothing is written.
    let before = plugins.requests();
    let o = deploy_and_bootstrap(&moto, &at, None, &admin);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("no changes: stack trailwatch is up to date"),
        "{err}"
    );
    assert!(
        err.contains(&format!("nothing to change on {}", plugins.url)),
        "{err}"
    );
    assert!(!err.contains("[y/N]"), "{err}");
    assert_eq!(
        plugins.writes_since(before),
        vec![],
        "a re-run writes nothing"
    );

    // --skip-opensearch leaves the cluster alone.
    let before = plugins.requests();
    let o = deploy(&moto, &["--yes"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("OpenSearch left as it is"),
        "{}",
        stderr(&o)
    );
    assert_eq!(plugins.requests(), before);

    // Leave the node as it was found.
    let o = run_trailwatch(
        &[
            "opensearch",
            "delete",
            "--opensearch-url",
            &plugins.url,
            "--yes",
        ],
        None,
        &admin,
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `--engine-shards 2` on moto: the stack deploys, each shard's engine
/// reads its share (`SHARD`) into a state of its own from a queue of its
/// own, subscribed to the fan-out topic the bucket notifies (each engine
/// keeps only its accounts' deliveries, tested against moto in
/// `two_engine_shards_split_the_trail_by_account`).
#[test]
fn a_sharded_stack_fans_every_delivery_out_to_each_engine_shard() {
    let moto = Server::moto();
    let aws = Aws::new(&moto);
    let o = deploy_lean(&moto, &["--engine-shards", "2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("the engine in 2 shards by account"), "{err}");
    assert_eq!(aws.status("trailwatch").as_deref(), Some("CREATE_COMPLETE"));
    let state_bucket = aws.resource("trailwatch", "StateBucket");
    for k in 0..2 {
        let f = moto_get(
            &moto.url,
            "lambda",
            &format!("/2015-03-31/functions/trailwatch-engine-shard-{k}/configuration"),
        );
        let vars = &f["Environment"]["Variables"];
        assert_eq!(vars["SHARD"], format!("{k}/2").as_str(), "{vars}");
        assert_eq!(
            vars["STATE_URL"],
            format!("s3://{state_bucket}/engine/shard-{k}-of-2/state.json.gz").as_str()
        );
    }
    // Each shard's queue feeds its engine. moto makes the fan-out topic
    // and the queues but leaves the topic's subscriptions out of the stack
    // (and sends no bucket notification): those only AWS exercises; the
    // template's test checks what they say.
    assert!(aws
        .resource("trailwatch", "EngineFanout")
        .ends_with(":trailwatch-deliveries"));
    for k in 0..2 {
        let queue = format!("arn:aws:sqs:us-east-1:123456789012:trailwatch-deliveries-{k}-of-2");
        assert_eq!(
            event_sources(&moto, &format!("trailwatch-engine-shard-{k}")),
            [serde_json::json!(queue)],
            "shard {k}"
        );
    }
    let o = deploy_lean(&moto, &["--engine-shards", "2"]);
    assert!(stderr(&o).contains("no changes"), "{}", stderr(&o));
}

/// The queues the Lambda `function` reads (its event source mappings).
fn event_sources(moto: &Server, function: &str) -> Vec<serde_json::Value> {
    let path = format!("/2015-03-31/event-source-mappings/?FunctionName={function}");
    let mappings = moto_get(&moto.url, "lambda", &path);
    mappings["EventSourceMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["EventSourceArn"].clone())
        .collect()
}

/// The lean stack (`--no-opensearch`): no domain, log group or
/// forwarder; the engine fed by its queue, its state in the stack's state
/// bucket, its pages passed on by the enricher. moto makes every resource
/// but the trail and does not run the
/// Lambdas or deliver the bucket's notifications (only AWS does), so the
/// engine's invocation runs here, on the stack's own bucket and state,
/// with the queue's batch as the Lambda service would hand it over.
#[test]
fn the_lean_stack_deploys_the_engine_alone_and_it_runs_on_the_stacks_buckets() {
    let moto = Server::moto();
    let aws = Aws::new(&moto);
    let lean = |extra: &[&str]| deploy_lean(&moto, extra);
    let o = lean(&[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("no OpenSearch (the engine pages alone)"),
        "{err}"
    );
    for made in [
        "EngineFunction",
        "EngineEventSource",
        "EngineQueue",
        "StateBucket",
        "EnricherFunction",
        "EnricherSubscription",
    ] {
        assert!(err.contains(&format!("Add      {made} ")), "{made}: {err}");
    }
    for absent in ["Domain", "LogGroup", "ForwarderFunction", "UserPool"] {
        assert!(
            !err.contains(&format!("Add      {absent} ")),
            "{absent}: {err}"
        );
    }
    assert!(!err.contains("OpenSearch left as it is"), "{err}");
    assert_eq!(aws.status("trailwatch").as_deref(), Some("CREATE_COMPLETE"));
    let o = lean(&[]);
    assert!(stderr(&o).contains("no changes"), "{}", stderr(&o));

    // The engine the stack made reads its queue, one at a time.
    assert_eq!(
        event_sources(&moto, "trailwatch-engine"),
        [serde_json::json!(
            "arn:aws:sqs:us-east-1:123456789012:trailwatch-deliveries"
        )]
    );
    let f = moto_get(
        &moto.url,
        "lambda",
        "/2015-03-31/functions/trailwatch-engine/configuration",
    );
    let concurrency = moto_get(
        &moto.url,
        "lambda",
        "/2019-09-30/functions/trailwatch-engine/concurrency",
    );
    assert_eq!(
        concurrency["ReservedConcurrentExecutions"], 1,
        "{concurrency}"
    );
    let vars = &f["Environment"]["Variables"];
    let state_bucket = aws.resource("trailwatch", "StateBucket");
    let state_url = format!("s3://{state_bucket}/engine/state.json.gz");
    assert_eq!(vars["STATE_URL"], state_url.as_str());
    assert!(vars.get("OPENSEARCH_ENDPOINT").is_none(), "{vars}");
    // Its pages go to the alert topic, which the enricher alone passes on
    // to people, with no domain to reach.
    let topic = |name: &str| format!("arn:aws:sns:us-east-1:123456789012:trailwatch-{name}");
    assert_eq!(vars["ALERT_TOPIC_ARN"], topic("alerts").as_str(), "{vars}");
    assert!(vars.get("NOTIFICATION_TOPIC_ARN").is_none(), "{vars}");
    let enricher = moto_get(
        &moto.url,
        "lambda",
        "/2015-03-31/functions/trailwatch-enricher/configuration",
    );
    let enricher = &enricher["Environment"]["Variables"];
    assert_eq!(
        enricher["NOTIFICATION_TOPIC_ARN"],
        topic("notifications").as_str(),
        "{enricher}"
    );
    assert!(enricher.get("OPENSEARCH_ENDPOINT").is_none(), "{enricher}");

    // A delivery lands in the trail bucket; its notification comes in a batch.
    let trail_bucket = aws.resource("trailwatch", "TrailBucket");
    let (key, path) = crate::engine_lambda::deliveries(simulated()).remove(0);
    aws.runtime.block_on(async {
        aws.s3()
            .put_object()
            .bucket(&trail_bucket)
            .key(&key)
            .body(std::fs::read(&path).unwrap().into())
            .send()
            .await
            .unwrap()
    });
    let event = serde_json::json!({"Records": [{
        "eventSource": "aws:sqs",
        "body": serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": trail_bucket}, "object": {"key": key}}}]}).to_string()
    }]})
    .to_string();
    let run = || {
        trailwatch_aws(
            &[
                "lambda",
                "engine",
                "--state",
                &state_url,
                "--endpoint-url",
                &moto.url,
            ],
            Some(event.as_bytes()),
        )
    };
    let o = run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(stderr(&o).lines().last().unwrap()).unwrap();
    assert_eq!(summary["deliveries"], 1, "{summary}");
    assert!(!aws.get(&state_bucket, "engine/state.json.gz").is_empty());
    let o = run();
    let summary: serde_json::Value =
        serde_json::from_str(stderr(&o).lines().last().unwrap()).unwrap();
    assert_eq!(
        (&summary["deliveries"], &summary["seen"]),
        (&serde_json::json!(0), &serde_json::json!(1))
    );

    // Beside it, `--ingest s3` with a domain: no log group or forwarder;
    // the engine writes the records as the domain's writer role.
    let o = deploy(
        &moto,
        &["--yes", "--prefix", "tw-s3", "--ingest", "s3"],
        None,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("Add      EnricherFunction "), "{err}");
    for absent in ["LogGroup", "ForwarderFunction", "ForwarderSubscription"] {
        assert!(
            !err.contains(&format!("Add      {absent} ")),
            "{absent}: {err}"
        );
    }
    let f = moto_get(
        &moto.url,
        "lambda",
        "/2015-03-31/functions/tw-s3-engine/configuration",
    );
    let vars = &f["Environment"]["Variables"];
    assert_eq!(vars["OPENSEARCH_ENDPOINT"], ENDPOINT, "{vars}");
    assert_eq!(vars["OPENSEARCH_ROLE_ARN"], ROLE, "{vars}");
}

/// `--trail-bucket`: an existing trail's bucket (Control Tower's, say) is
/// read where it is. The stack makes no trail or trail bucket; deploy
/// gives the bucket a notification to the engine queue (once: a re-run
/// leaves it), refuses a bucket that already sends its deliveries
/// elsewhere before making anything, and destroy takes the notification
/// away with the stack.
#[test]
fn an_existing_trail_bucket_notifies_the_engine_and_one_taken_is_refused() {
    let moto = Server::moto();
    let aws = Aws::new(&moto);
    let s3 = aws.s3();
    // Each destination of a bucket's notifications, as a line.
    let notifications = |bucket: &str| {
        let c = aws
            .runtime
            .block_on(
                s3.get_bucket_notification_configuration()
                    .bucket(bucket)
                    .send(),
            )
            .unwrap();
        let line =
            |arn: &str,
             events: &[aws_sdk_s3::types::Event],
             filter: Option<&aws_sdk_s3::types::NotificationConfigurationFilter>| {
                let rules: Vec<&str> = filter
                    .and_then(|f| f.key())
                    .map(|k| k.filter_rules())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| r.value())
                    .collect();
                let events: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
                format!("{arn} {} {}", events.join(","), rules.join(" "))
            };
        let mut lines: Vec<String> = c
            .queue_configurations()
            .iter()
            .map(|q| line(q.queue_arn(), q.events(), q.filter()))
            .collect();
        lines.extend(
            c.topic_configurations()
                .iter()
                .map(|t| line(t.topic_arn(), t.events(), t.filter())),
        );
        lines
    };
    // moto answers a bucket with no notifications in a form the SDK cannot
    // read (S3 itself answers an empty NotificationConfiguration), so each
    // bucket has one already; the first is the engine's to keep.
    let deletions = "arn:aws:sns:us-east-1:123456789012:deletions";
    let other = "arn:aws:sqs:us-east-1:123456789012:someone-elses";
    for (bucket, queue) in [("org-trail-logs", None), ("taken-logs", Some(other))] {
        use aws_sdk_s3::types::{
            Event, NotificationConfiguration, QueueConfiguration, TopicConfiguration,
        };
        let mut c = NotificationConfiguration::builder().topic_configurations(
            TopicConfiguration::builder()
                .topic_arn(deletions)
                .events(Event::from("s3:ObjectRemoved:*"))
                .build()
                .unwrap(),
        );
        if let Some(queue) = queue {
            c = c.queue_configurations(
                QueueConfiguration::builder()
                    .queue_arn(queue)
                    .events(Event::from("s3:ObjectCreated:*"))
                    .build()
                    .unwrap(),
            );
        }
        aws.runtime.block_on(async {
            s3.create_bucket().bucket(bucket).send().await.unwrap();
            s3.put_bucket_notification_configuration()
                .bucket(bucket)
                .notification_configuration(c.build())
                .send()
                .await
                .unwrap();
        });
    }
    let kept = format!("{deletions} s3:ObjectRemoved:* ");
    let lean = |extra: &[&str]| deploy_lean(&moto, extra);
    let o = lean(&["--trail-bucket", "org-trail-logs"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    for absent in ["Trail", "TrailBucket", "TrailBucketPolicy"] {
        assert!(
            !err.contains(&format!("Add      {absent} ")),
            "{absent}: {err}"
        );
    }
    assert!(err.contains("Add      EngineQueue "), "{err}");
    assert!(
        err.contains("the trail bucket org-trail-logs now notifies the engine queue"),
        "{err}"
    );
    let queue = "arn:aws:sqs:us-east-1:123456789012:trailwatch-deliveries";
    let ours = vec![
        format!("{queue} s3:ObjectCreated:* AWSLogs/ .json.gz"),
        kept.clone(),
    ];
    assert_eq!(notifications("org-trail-logs"), ours);
    let o = lean(&["--trail-bucket", "org-trail-logs"]);
    let err = stderr(&o);
    assert!(err.contains("no changes"), "{err}");
    assert!(
        err.contains("the trail bucket org-trail-logs notifies the engine queue"),
        "{err}"
    );
    assert_eq!(notifications("org-trail-logs"), ours);

    // A bucket that sends its new objects to another queue is refused,
    // and nothing is made: no stack, no code bucket.
    let o = lean(&["--trail-bucket", "taken-logs", "--prefix", "tw-taken"]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("--trail-bucket taken-logs: it already sends s3:ObjectCreated:* for every key to arn:aws:sqs:us-east-1:123456789012:someone-elses")
            && err.contains("Nothing was changed"),
        "{err}"
    );
    assert_eq!(aws.status("tw-taken"), None);
    assert!(!aws.bucket_exists("tw-taken-code-123456789012-us-east-1"));
    assert_eq!(notifications("taken-logs").len(), 2);

    // Destroy takes the engine's notification away; the bucket stays.
    let o = destroy(&moto, &["--yes"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("the trail bucket org-trail-logs no longer notifies the deleted engine queue"),
        "{err}"
    );
    assert_eq!(notifications("org-trail-logs"), [kept]);
    assert!(aws.bucket_exists("org-trail-logs"));
}
