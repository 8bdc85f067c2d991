//! A scripted HTTP peer for what cannot run here (OpenSearch Dashboards):
//! it expects a list of calls in order, checks each one's method, path,
//! headers and body, answers as scripted, and fails the test on a call out
//! of script or a scripted call never made.

use super::wire::{read_request, respond, Request};
use std::io::BufReader;
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
                let Some(request) = read_request(&mut reader) else {
                    continue;
                };
                let Request {
                    method,
                    path,
                    headers,
                    body,
                } = &request;
                let content_type = request.header("content-type").unwrap_or_default();
                let mut script = l.lock().unwrap();
                let (status, answer) = if script.is_empty() {
                    p.lock()
                        .unwrap()
                        .push(format!("a call out of script: {method} {path}"));
                    (500, "{}".to_owned())
                } else {
                    let e = script.remove(0);
                    let mut problems = Vec::new();
                    if e.method != method || e.path != *path {
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
                        (e.body)(body, content_type).map(|b| format!("{method} {path}: {b}")),
                    );
                    p.lock().unwrap().extend(problems);
                    (e.status, e.answer)
                };
                drop(script);
                let mut stream = stream;
                respond(&mut stream, status, "application/json", answer.as_bytes());
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
