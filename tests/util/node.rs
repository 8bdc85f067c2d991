//! The suite's real OpenSearch node (`tests/opensearch/node.sh`): started
//! once per run on a free port, shared, and stopped when the test process
//! ends (a watchdog waits for it), its folder removed.

use super::{free_port, root};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub const ADMIN_PASSWORD: &str = "Trailwatch-Suite-2026!";

pub struct Node {
    pub url: String,
    pub ca: PathBuf,
}

/// The shared node; the first caller starts it (about 20 s).
pub fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        let port = free_port();
        let script = root().join("tests/opensearch/node.sh");
        let home = std::env::var("TRAILWATCH_OPENSEARCH_HOME").unwrap_or_else(|_| {
            format!(
                "{}/.cache/trailwatch/opensearch",
                std::env::var("HOME").unwrap()
            )
        });
        let env = [
            ("OPENSEARCH_PORT", port.to_string()),
            (
                "OPENSEARCH_INITIAL_ADMIN_PASSWORD",
                ADMIN_PASSWORD.to_string(),
            ),
            ("TRAILWATCH_OPENSEARCH_HOME", home.clone()),
            ("TRAILWATCH_OPENSEARCH_EPHEMERAL", "1".to_string()),
        ];
        // Stops the node when this process ends, however it ends; it
        // outlives us, so it is never waited for.
        #[allow(clippy::zombie_processes)]
        let _watchdog = Command::new("bash")
            .arg("-c")
            .arg("while kill -0 \"$0\" 2>/dev/null; do sleep 1; done; exec \"$1\" stop")
            .arg(std::process::id().to_string())
            .arg(&script)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the node's watchdog starts");
        let out = Command::new(&script)
            .arg("start")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("node.sh runs");
        assert!(
            out.status.success(),
            "the OpenSearch node did not start:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Node {
            url: format!("https://127.0.0.1:{port}"),
            ca: PathBuf::from(format!(
                "{home}/node-2.19.4-{port}/config/certs/root-ca.pem"
            )),
        }
    })
}

impl Node {
    /// A client of the node as `user`.
    pub fn client(&self, user: &str, password: &str) -> trailwatch::opensearch::OpenSearch {
        use trailwatch::opensearch::{Auth, OpenSearch, Target};
        OpenSearch::connect(&Target {
            auth: Auth::Basic {
                user: user.into(),
                password: password.into(),
            },
            ca_cert: Some(self.ca.clone()),
            ..Target::new(&self.url, std::time::Duration::from_secs(30))
        })
        .unwrap()
    }

    pub fn admin(&self) -> trailwatch::opensearch::OpenSearch {
        self.client("admin", ADMIN_PASSWORD)
    }
}

/// Runs a future to completion on a fresh runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
