//! [`OpenSearch`]: every request trailwatch makes to a cluster, through the
//! official `opensearch` crate, built from one typed [`Target`]: the URL, how
//! to authenticate ([`Auth`]: SigV4 for Amazon OpenSearch Service, basic auth
//! for a fine-grained-access master user, or none), a private CA to trust,
//! and a timeout. Answers outside 2xx become typed errors through
//! [`Response::check`], naming the method, path, status and the plugin's
//! reason.

use aws_credential_types::provider::SharedCredentialsProvider;
use opensearch::auth::Credentials;
use opensearch::cert::{Certificate, CertificateValidation};
use opensearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::http::{Method, Url};
use std::path::PathBuf;
use std::time::Duration;

/// How requests authenticate.
#[derive(Clone)]
pub enum Auth {
    /// No credentials (a local node without security, a test double).
    None,
    /// HTTP basic auth, as a fine-grained-access master user or an internal user.
    Basic { user: String, password: String },
    /// SigV4 for the `es` service, with these credentials in this region.
    SigV4 {
        credentials: SharedCredentialsProvider,
        region: String,
    },
}

impl Auth {
    /// SigV4 with the SDK configuration's credentials and region.
    pub fn sigv4(config: &aws_config::SdkConfig) -> Result<Auth, OpenSearchError> {
        let missing = |what: &str| OpenSearchError::Setup {
            url: String::new(),
            message: format!("cannot sign with SigV4: no AWS {what}"),
        };
        Ok(Auth::SigV4 {
            credentials: config
                .credentials_provider()
                .ok_or_else(|| missing("credentials"))?,
            region: config
                .region()
                .map(|r| r.to_string())
                .ok_or_else(|| missing("region"))?,
        })
    }

    /// What the credentials are, for messages ("basic auth as admin").
    pub fn describe(&self) -> String {
        match self {
            Auth::None => "no credentials".into(),
            Auth::Basic { user, .. } => format!("basic auth as {user:?}"),
            Auth::SigV4 { region, .. } => {
                format!("SigV4 with the AWS credentials of the environment ({region})")
            }
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Where a cluster is and how to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `https://host[:port]`, or `http://` for a local server.
    pub url: String,
    pub auth: Auth,
    /// A PEM file of the CA that signed the cluster's certificate, trusted
    /// besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// Longest wait for one answer, unless a request asks for less.
    pub timeout: Duration,
}

impl Target {
    /// A target with no credentials and no private CA.
    pub fn new(url: &str, timeout: Duration) -> Target {
        Target {
            url: url.to_owned(),
            auth: Auth::None,
            ca_cert: None,
            timeout,
        }
    }
}

/// True when `url` names an AWS-hosted domain (which wants SigV4).
pub fn is_aws_host(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    host.ends_with(".amazonaws.com") || host.ends_with(".on.aws")
}

/// A request that failed: no answer, a client that cannot be built, or an
/// answer outside 2xx.
#[derive(Debug, thiserror::Error)]
pub enum OpenSearchError {
    #[error("{method} {url}: {message}")]
    Transport {
        method: &'static str,
        url: String,
        message: String,
        /// A timeout or a connection that failed: worth another try.
        transient: bool,
    },
    #[error("cannot reach OpenSearch at {url}: {message}")]
    Setup { url: String, message: String },
    #[error("{method} {path} answered {status} with {auth}: {reason}; check the user and password (OPENSEARCH_USER, OPENSEARCH_PASSWORD), the AWS credentials, or the role mapping of that user on the cluster")]
    Unauthorized {
        method: &'static str,
        path: String,
        status: u16,
        auth: String,
        reason: String,
    },
    #[error("{method} {path}: the {plugin} plugin is not installed on this cluster; use one that has it: Amazon OpenSearch Service, or the Compose stack of docs/opensearch.md (`docker compose up`), which runs every plugin (`make opensearch` runs only security and job-scheduler)")]
    PluginMissing {
        method: &'static str,
        path: String,
        plugin: &'static str,
    },
    #[error("{method} {path} answered {status}: {reason}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        reason: String,
    },
}

impl OpenSearchError {
    /// The HTTP status of an answer that was an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            OpenSearchError::Status { status, .. }
            | OpenSearchError::Unauthorized { status, .. } => Some(*status),
            OpenSearchError::PluginMissing { .. } => Some(404),
            _ => None,
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    pub body: Vec<u8>,
    /// The credentials the request went with, for error messages.
    auth: String,
}

impl Response {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The answer when it is a success, else a typed error with the
    /// plugin's reason.
    pub fn check(self) -> Result<Response, OpenSearchError> {
        if self.is_success() {
            return Ok(self);
        }
        let reason = reason(&self.body);
        if let Some(plugin) = missing_plugin(&self.path, &reason) {
            return Err(OpenSearchError::PluginMissing {
                method: self.method,
                path: self.path,
                plugin,
            });
        }
        Err(if self.status == 401 || self.status == 403 {
            OpenSearchError::Unauthorized {
                method: self.method,
                path: self.path,
                status: self.status,
                auth: self.auth,
                reason,
            }
        } else {
            OpenSearchError::Status {
                method: self.method,
                path: self.path,
                status: self.status,
                reason,
            }
        })
    }

    /// The body as JSON, after [`check`](Self::check).
    pub fn checked_json(self) -> Result<serde_json::Value, OpenSearchError> {
        let answer = self.check()?;
        answer.json().ok_or_else(|| OpenSearchError::Status {
            method: answer.method,
            path: answer.path.clone(),
            status: answer.status,
            reason: format!(
                "the answer is not JSON: {}",
                answer.text().chars().take(200).collect::<String>()
            ),
        })
    }
}

/// The plugins trailwatch calls, by the path their REST API starts with.
const PLUGINS: [(&str, &str); 5] = [
    ("/_plugins/_anomaly_detection", "anomaly detection"),
    ("/_plugins/_alerting", "alerting"),
    ("/_plugins/_notifications", "notifications"),
    ("/_plugins/_ism", "index state management (ISM)"),
    ("/_plugins/_security", "security"),
];

/// The plugin whose route the cluster does not know: OpenSearch answers
/// "no handler found for uri" for a path no installed plugin serves.
pub fn missing_plugin(path: &str, reason: &str) -> Option<&'static str> {
    if !reason.contains("no handler found for uri") {
        return None;
    }
    PLUGINS
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map(|(_, name)| *name)
}

/// The reason an error answer gives: OpenSearch's `error.reason` (with the
/// root cause when it says more), a plugin's `message` or `error` string, or
/// the start of the body.
pub fn reason(body: &[u8]) -> String {
    let text = || {
        let t = String::from_utf8_lossy(body);
        let t = t.trim();
        if t.is_empty() {
            "(no body)".to_owned()
        } else {
            t.chars().take(300).collect()
        }
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return text();
    };
    let error = &json["error"];
    if let Some(reason) = error["reason"].as_str() {
        let root = error["root_cause"][0]["reason"].as_str();
        return match root {
            Some(root) if root != reason => format!("{reason} ({root})"),
            _ => reason.to_owned(),
        };
    }
    if let (Some(e), Some(m)) = (json["error"].as_str(), json["message"].as_str()) {
        return format!("{e}: {m}");
    }
    for s in [&json["error"], &json["message"], &json["reason"]] {
        if let Some(s) = s.as_str() {
            return s.to_owned();
        }
    }
    text()
}

/// A client of one OpenSearch endpoint.
pub struct OpenSearch {
    base: String,
    auth: String,
    client: opensearch::OpenSearch,
    timeout: Duration,
}

impl OpenSearch {
    /// The one way to make a client.
    pub fn connect(target: &Target) -> Result<OpenSearch, OpenSearchError> {
        let setup = |message: String| OpenSearchError::Setup {
            url: target.url.clone(),
            message,
        };
        let base = target.url.trim_end_matches('/').to_owned();
        let url = Url::parse(&base).map_err(|e| setup(format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(setup(
                "not an http(s) URL; write https://host[:port]".into(),
            ));
        }
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(target.timeout)
            .disable_proxy();
        builder = match &target.auth {
            Auth::None => builder,
            Auth::Basic { user, password } => {
                builder.auth(Credentials::Basic(user.clone(), password.clone()))
            }
            Auth::SigV4 {
                credentials,
                region,
            } => builder
                .auth(Credentials::AwsSigV4(
                    credentials.clone(),
                    aws_config::Region::new(region.clone()),
                ))
                .service_name("es"),
        };
        if let Some(path) = &target.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| setup(format!("cannot read the CA file {}: {e}", path.display())))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                setup(format!(
                    "{} is not a PEM certificate: {}",
                    path.display(),
                    crate::aws::with_causes(&e)
                ))
            })?;
            builder = builder.cert_validation(CertificateValidation::Full(cert));
        }
        let transport = builder
            .build()
            .map_err(|e| setup(crate::aws::with_causes(&e)))?;
        Ok(OpenSearch {
            base,
            auth: target.auth.describe(),
            client: opensearch::OpenSearch::new(transport),
            timeout: target.timeout,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// What the client authenticates with, for messages.
    pub fn auth(&self) -> &str {
        &self.auth
    }

    /// Sends one request with a JSON body (or none); `path` starts with `/`
    /// and may carry a query string.
    pub async fn request(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, OpenSearchError> {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.send(method, path, body, None).await
    }

    /// Sends one request that must answer within `timeout` (when shorter
    /// than the client's).
    pub async fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        timeout: Option<Duration>,
    ) -> Result<Response, OpenSearchError> {
        self.send_with(method, path, &[], body, timeout).await
    }

    /// [`send`](Self::send) with extra headers (Dashboards wants `osd-xsrf`).
    pub async fn send_with(
        &self,
        method: &'static str,
        path: &str,
        extra: &[(&'static str, &str)],
        body: Option<(&str, Vec<u8>)>,
        timeout: Option<Duration>,
    ) -> Result<Response, OpenSearchError> {
        let url = format!("{}{path}", self.base);
        let verb = match method {
            "GET" => Method::Get,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            other => {
                return Err(OpenSearchError::Transport {
                    method,
                    url,
                    message: format!("{other} is not a method the client sends"),
                    transient: false,
                })
            }
        };
        let (path_only, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let query: Vec<(String, String)> = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|kv| !kv.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (kv.to_owned(), String::new()),
            })
            .collect();
        let mut headers = HeaderMap::new();
        let header_value = |v: &str| {
            HeaderValue::from_str(v).map_err(|_| OpenSearchError::Transport {
                method,
                url: url.clone(),
                message: format!("{v:?} is not a valid header value"),
                transient: false,
            })
        };
        if let Some((content_type, _)) = &body {
            headers.insert(CONTENT_TYPE, header_value(content_type)?);
        }
        for (name, value) in extra {
            headers.insert(*name, header_value(value)?);
        }
        let timeout = timeout.map_or(self.timeout, |t| t.min(self.timeout));
        let answer = match self
            .client
            .send(
                verb,
                path_only,
                headers,
                (!query.is_empty()).then_some(&query),
                body.map(|(_, bytes)| bytes),
                Some(timeout),
            )
            .await
        {
            Ok(answer) => answer,
            Err(e) => return Err(self.transport_error(method, &url, e).await),
        };
        let status = answer.status_code().as_u16();
        let body = match answer.bytes().await {
            Ok(body) => body.to_vec(),
            Err(e) => return Err(self.transport_error(method, &url, e).await),
        };
        Ok(Response {
            method,
            path: path.to_owned(),
            status,
            body,
            auth: self.auth.clone(),
        })
    }

    /// A request that got no answer, said with what to do when no retry
    /// can mend it ([`hopeless`]). A plain-HTTP request whose connection
    /// was closed is asked once more, over TLS: if the server answers that,
    /// the URL's scheme is wrong (a dropped connection, though, may pass).
    async fn transport_error(
        &self,
        method: &'static str,
        url: &str,
        e: opensearch::Error,
    ) -> OpenSearchError {
        let message = crate::aws::with_causes(&e);
        let mut what_to_do = hopeless(&message, &self.base);
        if what_to_do.is_none() && is_closed_connection(&message) && speaks_tls(&self.base).await {
            what_to_do = Some(format!(
                "{} closed the connection on a plain HTTP request, and it answers TLS: write https://",
                self.base
            ));
        }
        match what_to_do {
            Some(what_to_do) => OpenSearchError::Transport {
                method,
                url: url.to_owned(),
                message: format!("{what_to_do} ({message})"),
                transient: false,
            },
            None => OpenSearchError::Transport {
                method,
                url: url.to_owned(),
                message,
                transient: is_transient(&e),
            },
        }
    }

    /// `POST /_bulk` with an NDJSON body, answered within `timeout`.
    pub async fn bulk(
        &self,
        body: String,
        timeout: Option<Duration>,
    ) -> Result<Response, OpenSearchError> {
        self.bulk_at("/_bulk", body, timeout).await
    }

    /// `POST` of an NDJSON bulk body to `path` (`/_bulk?refresh=wait_for`).
    pub async fn bulk_at(
        &self,
        path: &str,
        body: String,
        timeout: Option<Duration>,
    ) -> Result<Response, OpenSearchError> {
        self.send(
            "POST",
            path,
            Some(("application/x-ndjson", body.into_bytes())),
            timeout,
        )
        .await
    }

    /// `POST /<index>/_search`.
    pub async fn search(
        &self,
        index: &str,
        query: &serde_json::Value,
    ) -> Result<Response, OpenSearchError> {
        self.request("POST", &format!("/{index}/_search"), Some(query))
            .await
    }
}

/// What to do about a failed connection that no retry can mend, said
/// before the error itself: a TLS certificate from a CA this machine does
/// not trust, nothing listening at the address, TLS sent to a plain port
/// (plain HTTP sent to a TLS port is told by asking again over TLS). `None`
/// for what may pass (a timeout, a dropped connection).
pub fn hopeless(message: &str, base: &str) -> Option<String> {
    let plain = base.starts_with("http://");
    let m = message.to_ascii_lowercase();
    if m.contains("unknownissuer") || m.contains("invalid peer certificate") {
        return Some(format!(
            "{base} presents a TLS certificate signed by a CA this machine does not trust: pass that CA's PEM file with --opensearch-ca-cert (the Compose stack's is root-ca.pem; see docs/opensearch.md)"
        ));
    }
    if m.contains("connection refused") {
        return Some(format!(
            "nothing listens at {base}: start OpenSearch there (`make opensearch`, or `docker compose up -d --wait` for every plugin), or check the URL and port"
        ));
    }
    let tls_to_plain = [
        "invalidcontenttype",
        "corrupt message",
        "wrong version number",
    ];
    if !plain && tls_to_plain.iter().any(|t| m.contains(t)) {
        return Some(format!(
            "{base} does not answer TLS: if the server has no TLS, write http://"
        ));
    }
    None
}

/// Whether a failure reads as the server closing the connection.
fn is_closed_connection(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "connection closed before message completed",
        "connection reset",
        "broken pipe",
    ]
    .iter()
    .any(|t| m.contains(t))
}

/// Whether `base`, an `http://` URL, answers TLS at its host and port:
/// one HTTPS request there, any certificate accepted (nothing is sent but
/// a `HEAD /`), within two seconds.
async fn speaks_tls(base: &str) -> bool {
    let Some(rest) = base.strip_prefix("http://") else {
        return false;
    };
    let Ok(client) = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
    else {
        return false;
    };
    client.head(format!("https://{rest}/")).send().await.is_ok()
}

/// A timeout, or a connection that could not be made or broke: another try
/// may work. Signing failures and bad URLs are not.
fn is_transient(e: &opensearch::Error) -> bool {
    if e.is_timeout() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(r) = cause.downcast_ref::<reqwest::Error>() {
            return r.is_timeout() || r.is_connect() || r.is_request() || r.is_body();
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// Serves one request on a local port, answering `answer`, and returns
    /// the request's head, lowercased.
    fn capture_one(answer: &str) -> (String, std::thread::JoinHandle<String>) {
        let answer = answer.to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            stream.write_all(answer.as_bytes()).unwrap();
            head
        });
        (url, handle)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn requests_are_signed_with_sigv4_for_the_es_service() {
        let (url, server) = capture_one(OK);
        let config = aws_config::SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"),
            ))
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let target = Target {
            auth: Auth::sigv4(&config).unwrap(),
            ..Target::new(&url, Duration::from_secs(5))
        };
        let client = OpenSearch::connect(&target).unwrap();
        let answer = block_on(client.search("cwl-*", &serde_json::json!({"size": 0}))).unwrap();
        assert_eq!(answer.status, 200);
        let head = server.join().unwrap();
        let today = chrono::Utc::now().format("%Y%m%d").to_string();
        assert!(head.starts_with("post /cwl-*/_search http/1.1"), "{head}");
        assert!(
            head.contains(&format!("authorization: aws4-hmac-sha256 credential=akidexample/{today}/eu-west-1/es/aws4_request")),
            "{head}"
        );
        assert!(head.contains("x-amz-date: "), "{head}");
        assert!(head.contains("x-amz-content-sha256: "), "{head}");
    }

    #[test]
    fn basic_auth_sends_the_user_and_password() {
        let (url, server) = capture_one(OK);
        let target = Target {
            auth: Auth::Basic {
                user: "admin".into(),
                password: "secret".into(),
            },
            ..Target::new(&url, Duration::from_secs(5))
        };
        let client = OpenSearch::connect(&target).unwrap();
        block_on(client.request("GET", "/_cluster/health?timeout=5s", None)).unwrap();
        let head = server.join().unwrap();
        assert!(
            head.starts_with("get /_cluster/health?timeout=5s http/1.1"),
            "{head}"
        );
        // base64("admin:secret")
        assert!(
            head.contains("authorization: basic ywrtaw46c2vjcmv0"),
            "{head}"
        );
    }

    #[test]
    fn unsigned_clients_send_no_authorization() {
        let (url, server) = capture_one(OK);
        let client = OpenSearch::connect(&Target::new(&url, Duration::from_secs(5))).unwrap();
        block_on(client.request("GET", "/", None)).unwrap();
        let head = server.join().unwrap();
        assert!(!head.contains("authorization"), "{head}");
    }

    #[test]
    fn an_error_answer_names_method_path_status_and_the_plugins_reason() {
        let body = r#"{"error":{"root_cause":[{"reason":"bad"}],"reason":"Can't create anomaly detector"},"status":400}"#;
        let (url, _server) = capture_one(&format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        let client = OpenSearch::connect(&Target::new(&url, Duration::from_secs(5))).unwrap();
        let err = block_on(client.request("POST", "/_plugins/_anomaly_detection/detectors", None))
            .unwrap()
            .check()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "POST /_plugins/_anomaly_detection/detectors answered 400: Can't create anomaly detector (bad)"
        );
        assert_eq!(err.status(), Some(400));
    }

    #[test]
    fn an_auth_failure_says_which_credentials_were_used() {
        let (url, _server) = capture_one(
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\nConnection: close\r\n\r\nUnauthorized",
        );
        let target = Target {
            auth: Auth::Basic {
                user: "reader".into(),
                password: "wrong".into(),
            },
            ..Target::new(&url, Duration::from_secs(5))
        };
        let client = OpenSearch::connect(&target).unwrap();
        let err = block_on(client.request("GET", "/", None))
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "GET / answered 401 with basic auth as \"reader\": Unauthorized; check"
            ),
            "{err}"
        );
        assert!(err.contains("OPENSEARCH_PASSWORD"), "{err}");
    }

    #[test]
    fn bad_targets_are_refused_before_any_request() {
        let err = |url: &str| {
            OpenSearch::connect(&Target::new(url, Duration::from_secs(1)))
                .err()
                .unwrap()
                .to_string()
        };
        assert!(
            err("localhost:9200").contains("write https://host"),
            "{}",
            err("localhost:9200")
        );
        assert!(err("ftp://x").contains("not an http(s) URL"));
        let target = Target {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            ..Target::new("https://127.0.0.1:9200", Duration::from_secs(1))
        };
        let e = OpenSearch::connect(&target).err().unwrap().to_string();
        assert!(
            e.contains("cannot read the CA file /nonexistent/ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn aws_hosts_are_recognised() {
        assert!(is_aws_host("https://search-x.us-east-1.es.amazonaws.com"));
        assert!(is_aws_host("https://abc.us-east-1.aoss.on.aws:443/"));
        assert!(!is_aws_host("https://127.0.0.1:9200"));
        assert!(!is_aws_host("http://amazonaws.com.evil.example"));
    }
}
