//! Helpers shared by the integration tests.

pub mod golden;
pub mod proxy;
pub mod wire;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/data/cloudtrail`, the real CloudTrail deliveries beside the repo.
pub fn shared_cloudtrail() -> PathBuf {
    let p = root().join("../shared/data/cloudtrail");
    assert!(
        p.is_dir(),
        "{} is missing: the tests need ../shared beside the repository",
        p.display()
    );
    p
}

/// Runs the trailwatch binary from the repository root.
pub fn trailwatch(args: &[&str]) -> Output {
    trailwatch_with_stdin(args, None)
}

pub fn trailwatch_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_trailwatch(args, stdin, &[])
}

/// Runs the binary with `env` set, an empty value meaning unset (and, when
/// it is set, no AWS profile or session token inherited).
pub fn run_trailwatch(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut command = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
    command.args(args).current_dir(root());
    for (k, v) in env {
        if v.is_empty() {
            command.env_remove(k);
        } else {
            command.env(k, v);
        }
    }
    if !env.is_empty() {
        command
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
    }
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the trailwatch binary runs");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses NDJSON output.
pub fn ndjson(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The start of the shared simulation.
pub const SIM_START: &str = "2026-01-05T00:00:00Z";

/// Three simulated days with crypto-mining, a Lambda loop, a leaked key and
/// volume sprawl on the last day, written once for the whole suite.
pub fn simulated() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap();
        let o = trailwatch(&[
            "simulate",
            "--out",
            out,
            "--days",
            "3",
            "--seed",
            "7",
            "--start",
            SIM_START,
            "--incident",
            "crypto-mining@+2d3h10m",
            "--incident",
            "lambda-loop@+2d9h40m",
            "--incident",
            "leaked-key@+2d14h20m",
            "--incident",
            "volume-sprawl@+2d19h",
        ]);
        assert!(o.status.success(), "simulate failed: {}", stderr(&o));
        dir
    })
    .path()
}

/// Every record of a simulation's gzipped deliveries under `dir`.
pub fn records_under(dir: &Path) -> Vec<serde_json::Value> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if !path.to_string_lossy().ends_with(".json.gz") {
                continue;
            }
            let mut text = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            out.extend(v["Records"].as_array().cloned().unwrap_or_default());
        }
    }
    out
}

/// A running trailwatch whose output lines arrive on channels.
pub struct Running {
    pub child: std::process::Child,
    pub stdout: std::sync::mpsc::Receiver<String>,
    pub stderr: std::sync::mpsc::Receiver<String>,
}

impl Running {
    /// Waits for a line of `stream` that satisfies `want`, collecting every
    /// line seen into `seen`; panics after `secs` seconds.
    pub fn wait_for(
        &self,
        err: bool,
        secs: u64,
        seen: &mut Vec<String>,
        want: impl Fn(&str) -> bool,
    ) -> String {
        let rx = if err { &self.stderr } else { &self.stdout };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("waited {secs} s in vain; saw: {seen:#?}"),
            }
        }
    }

    /// Lines that arrived so far, without waiting.
    pub fn drain(&self, err: bool) -> Vec<String> {
        let rx = if err { &self.stderr } else { &self.stdout };
        rx.try_iter().collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn(args: &[&str]) -> Running {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the trailwatch binary runs");
    let lines = |r: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(r).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let stdout = lines(Box::new(child.stdout.take().unwrap()));
    let stderr = lines(Box::new(child.stderr.take().unwrap()));
    Running {
        child,
        stdout,
        stderr,
    }
}

/// A tool `make venv` installs into .venv/bin.
pub fn tool(name: &str) -> PathBuf {
    let p = root().join(".venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `make venv` (make test does)",
        p.display()
    );
    p
}

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process the test started; killed when dropped.
pub struct Server {
    child: std::process::Child,
    pub url: String,
}

impl Server {
    /// Starts `program args` and waits until `url` accepts connections.
    pub fn start(program: &Path, args: &[&str], url: String) -> Server {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let server = Server { child, url };
        let addr = server
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not listen on {addr} within 60 s",
                program.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        server
    }

    /// moto_server on a free port, with Lambda kept in-process (no Docker).
    pub fn moto() -> Server {
        let port = free_port().to_string();
        let server = Server::start(
            &tool("moto_server"),
            &["-H", "127.0.0.1", "-p", &port],
            format!("http://127.0.0.1:{port}"),
        );
        let o = http(
            &server.url,
            "POST",
            "/moto-api/config",
            br#"{"lambda":{"use_docker":false}}"#,
        );
        assert!(
            o.starts_with("HTTP/1.1 2") || o.starts_with("HTTP/1.0 2"),
            "{o}"
        );
        server
    }
}

impl Server {
    /// The SDK's configuration for this moto_server: throwaway credentials,
    /// us-east-1.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .load()
            .await
    }

    /// osmem-server (an in-memory OpenSearch) on a free port.
    pub fn osmem() -> Server {
        let lib = root().join(".venv/lib");
        let binary = std::fs::read_dir(&lib)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("site-packages/osmem_server/bin/osmem-server"))
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!(
                    "osmem-server is missing under {}: run `make venv` (make test does)",
                    lib.display()
                )
            });
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        Server::start(
            &binary,
            &["--addr", &addr, "--no-stdin-watch"],
            format!("http://{addr}"),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// One plain HTTP/1.1 request; the whole response as text.
pub fn http(base: &str, method: &str, path: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A JSON GET of an AWS REST API on moto_server, without an SDK for it:
/// moto picks the service from the credential scope of the (unchecked)
/// signature.
pub fn moto_get(base: &str, service: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {response}"))
}

/// Runs trailwatch against an emulator with throwaway credentials and no
/// shared config, so nothing on the machine leaks in.
pub fn trailwatch_aws(args: &[&str], stdin: Option<&[u8]>) -> Output {
    trailwatch_aws_with(args, stdin, &[])
}

/// [`trailwatch_aws`] with more environment variables.
pub fn trailwatch_aws_with(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut all = vec![
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
    ];
    all.extend_from_slice(env);
    run_trailwatch(args, stdin, &all)
}

/// A CloudWatch Logs subscription event (`{"awslogs":{"data":…}}`) holding
/// these messages as log events.
pub fn awslogs_event(messages: &[String]) -> serde_json::Value {
    use base64::Engine;
    use std::io::Write;
    let events: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| serde_json::json!({"id": format!("event-{i}"), "timestamp": 1_700_000_000_000u64 + i as u64, "message": m}))
        .collect();
    let payload = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "123456789012",
        "logGroup": "/trailwatch/cloudtrail", "logStream": "123456789012_CloudTrail_us-east-1",
        "subscriptionFilters": ["trailwatch"], "logEvents": events});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(payload.to_string().as_bytes()).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    serde_json::json!({"awslogs": {"data": data}})
}

pub mod node;
pub mod plugins;
pub mod scripted;

/// Serialises the tests that change the shared OpenSearch node.
pub fn node_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The invictus account, as if it had been delivering for two days before
/// its recorded hour: one quiet call in its stream then, beside the real
/// deliveries. Its baselines then start two days before the attack, as a
/// deployed trail's would.
pub fn invictus_with_history() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let quiet = serde_json::json!({"Records": [{
        "eventVersion": "1.08", "eventTime": "2023-07-08T11:00:00Z", "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeRegions", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.13.0", "eventID": "00000000-0000-0000-0000-000000000001",
        "readOnly": true, "eventType": "AwsApiCall", "managementEvent": true,
        "recipientAccountId": "123837392027", "eventCategory": "Management",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEQUIET0001",
            "arn": "arn:aws:iam::123837392027:user/ops", "accountId": "123837392027", "userName": "ops"}
    }]});
    std::fs::write(dir.path().join("quiet-before.json"), quiet.to_string()).unwrap();
    let real = shared_cloudtrail().join("invictus-aws-dataset/CloudTrail");
    for entry in std::fs::read_dir(real).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}
