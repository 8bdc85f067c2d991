//! A scripted HTTP peer for what cannot run here (OpenSearch Dashboards):
//! it expects a list of calls in order, checks each one's method, path,
//! headers and body, answers as scripted, and fails the test on a call out
//! of script or a scripted call never made.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// Checks a body (and its content type); returns the problem, if any.
pub type BodyCheck = dyn Fn(&[u8], &str) -> Option<String> + Send;

/// One expected call and its answer.
pub struct Expect {
    pub method: &'static str,
    pub path: String,
    /// Headers that must be present with these values (names lowercase).
    pub headers: Vec<(&'static str, String)>,
    /// Checks the body; returns a problem.
    pub body: Box<BodyCheck>,
    pub status: u16,
    pub answer: String,
}

pub struct Scripted {
    pub url: String,
    left: Arc<Mutex<Vec<Expect>>>,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    pub fn start(script: Vec<Expect>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let left = Arc::new(Mutex::new(script));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let (l, p) = (left.clone(), problems.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.is_empty() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_owned();
                let path = parts.next().unwrap_or("").to_owned();
                let mut headers = Vec::new();
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end().to_owned();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
                        if k == "content-length" {
                            length = v.parse().unwrap_or(0);
                        }
                        headers.push((k, v));
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let content_type = headers
                    .iter()
                    .find(|(k, _)| k == "content-type")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let mut script = l.lock().unwrap();
                let (status, answer) = if script.is_empty() {
                    p.lock()
                        .unwrap()
                        .push(format!("a call out of script: {method} {path}"));
                    (500, "{}".to_owned())
                } else {
                    let e = script.remove(0);
                    let mut problems = Vec::new();
                    if e.method != method || e.path != path {
                        problems.push(format!(
                            "expected {} {}, got {method} {path}",
                            e.method, e.path
                        ));
                    }
                    for (k, v) in &e.headers {
                        if !headers.iter().any(|(hk, hv)| hk == k && hv == v) {
                            problems.push(format!(
                                "{method} {path}: header {k}: {v} missing (got {headers:?})"
                            ));
                        }
                    }
                    problems.extend(
                        (e.body)(&body, &content_type).map(|b| format!("{method} {path}: {b}")),
                    );
                    p.lock().unwrap().extend(problems);
                    (e.status, e.answer)
                };
                drop(script);
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Scripted {
            url,
            left,
            problems,
        }
    }

    /// Panics on any problem seen, or any scripted call not made.
    pub fn verify(&self) {
        let problems = self.problems.lock().unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
        let left = self.left.lock().unwrap();
        let never: Vec<String> = left
            .iter()
            .map(|e| format!("{} {}", e.method, e.path))
            .collect();
        assert!(never.is_empty(), "scripted calls never made: {never:?}");
    }
}
