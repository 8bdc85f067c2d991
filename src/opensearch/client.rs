//! [`OpenSearch`]: requests to a domain's REST API, with a timeout, signed
//! with the caller's AWS credentials when asked.

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use std::time::{Duration, SystemTime};

/// A request that did not get an HTTP answer, or could not be signed.
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
    #[error("cannot sign {url} with SigV4: {message}")]
    Signing { url: String, message: String },
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Signer {
    credentials: SharedCredentialsProvider,
    region: String,
}

/// A client of one OpenSearch endpoint.
pub struct OpenSearch {
    base: String,
    http: reqwest::Client,
    signer: Option<Signer>,
}

impl OpenSearch {
    /// An unsigned client (a local server, a tunnel, a test double).
    pub fn new(base: &str, timeout: Duration) -> Result<OpenSearch, OpenSearchError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| OpenSearchError::Transport {
                method: "CONNECT",
                url: base.to_owned(),
                message: e.to_string(),
                transient: false,
            })?;
        Ok(OpenSearch {
            base: base.trim_end_matches('/').to_owned(),
            http,
            signer: None,
        })
    }

    /// A client signing with SigV4 for the Amazon OpenSearch Service, with
    /// the SDK configuration's credentials and region.
    pub fn signed(
        base: &str,
        config: &aws_config::SdkConfig,
        timeout: Duration,
    ) -> Result<OpenSearch, OpenSearchError> {
        let mut client = OpenSearch::new(base, timeout)?;
        let credentials =
            config
                .credentials_provider()
                .ok_or_else(|| OpenSearchError::Signing {
                    url: base.to_owned(),
                    message: "no AWS credentials".into(),
                })?;
        let region =
            config
                .region()
                .map(|r| r.to_string())
                .ok_or_else(|| OpenSearchError::Signing {
                    url: base.to_owned(),
                    message: "no AWS region".into(),
                })?;
        client.signer = Some(Signer {
            credentials,
            region,
        });
        Ok(client)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request; `path` starts with `/`.
    pub async fn request(
        &self,
        method: &'static str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, OpenSearchError> {
        self.request_within(method, path, body, None).await
    }

    /// Sends one request that must answer within `timeout` (when shorter
    /// than the client's).
    pub async fn request_within(
        &self,
        method: &'static str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        timeout: Option<Duration>,
    ) -> Result<Response, OpenSearchError> {
        let url = format!("{}{path}", self.base);
        let (content_type, bytes) = body.unwrap_or(("application/json", Vec::new()));
        let mut headers: Vec<(String, String)> = Vec::new();
        if method != "GET" || !bytes.is_empty() {
            headers.push(("content-type".into(), content_type.into()));
        }
        if let Some(signer) = &self.signer {
            headers.extend(self.sign(signer, method, &url, &headers, &bytes).await?);
        }
        let mut request = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method"),
            &url,
        );
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let answer = request
            .body(bytes)
            .send()
            .await
            .map_err(|e| transport(method, &url, &e))?;
        let status = answer.status().as_u16();
        let body = answer
            .bytes()
            .await
            .map_err(|e| transport(method, &url, &e))?
            .to_vec();
        Ok(Response { status, body })
    }

    async fn sign(
        &self,
        signer: &Signer,
        method: &'static str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, OpenSearchError> {
        let failed = |message: String| OpenSearchError::Signing {
            url: url.to_owned(),
            message,
        };
        let credentials = signer
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&signer.region)
            .name("es")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| failed(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| failed(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| failed(e.to_string()))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// `POST /_bulk` with an NDJSON body, answered within `timeout`.
    pub async fn bulk(
        &self,
        body: String,
        timeout: Option<Duration>,
    ) -> Result<Response, OpenSearchError> {
        self.request_within(
            "POST",
            "/_bulk",
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
        self.request(
            "POST",
            &format!("/{index}/_search"),
            Some(("application/json", query.to_string().into_bytes())),
        )
        .await
    }
}

fn transport(method: &'static str, url: &str, err: &reqwest::Error) -> OpenSearchError {
    OpenSearchError::Transport {
        method,
        url: url.to_owned(),
        message: crate::aws::with_causes(err),
        transient: err.is_timeout() || err.is_connect() || err.is_request() || err.is_body(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    /// Serves one request on a local port and returns its head, lowercased.
    fn capture_one() -> (String, std::thread::JoinHandle<String>) {
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
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                .unwrap();
            head
        });
        (url, handle)
    }

    #[test]
    fn requests_are_signed_with_sigv4_for_the_es_service() {
        let (url, server) = capture_one();
        let config = aws_config::SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"),
            ))
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let client = OpenSearch::signed(&url, &config, Duration::from_secs(5)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = rt
            .block_on(client.search("cwl-*", &serde_json::json!({"size": 0})))
            .unwrap();
        assert_eq!(answer.status, 200);
        let head = server.join().unwrap();
        let today = chrono::Utc::now().format("%Y%m%d").to_string();
        assert!(head.starts_with("post /cwl-*/_search http/1.1"), "{head}");
        assert!(
            head.contains(&format!("authorization: aws4-hmac-sha256 credential=akidexample/{today}/eu-west-1/es/aws4_request")),
            "{head}"
        );
        assert!(head.contains("x-amz-date: "), "{head}");
        assert!(
            head.contains("signedheaders=content-type;host;x-amz-date"),
            "{head}"
        );
    }

    #[test]
    fn unsigned_clients_send_no_authorization() {
        let (url, server) = capture_one();
        let client = OpenSearch::new(&url, Duration::from_secs(5)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(client.request("GET", "/", None)).unwrap();
        let head = server.join().unwrap();
        assert!(!head.contains("authorization"), "{head}");
    }
}
