//! Helpers shared by the integration tests.

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
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(args)
        .current_dir(root())
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

/// Three simulated days with one incident of each kind on the last day,
/// written once for the whole suite.
pub fn simulated() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap();
        let o = trailwatch(&[
            "simulate", "--out", out, "--days", "3", "--seed", "7", "--start", SIM_START,
        ]);
        assert!(o.status.success(), "simulate failed: {}", stderr(&o));
        dir
    })
    .path()
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
