//! A fault-injecting HTTP proxy in front of osmem-server: each `_bulk`
//! request takes the next fault of a script (then passes through); other
//! requests pass through. One request per connection (`Connection: close`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use super::wire::{read_request, Request};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to one `_bulk` request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer this status for the whole request, without passing it on.
    Status(u16),
    /// Close the connection without answering.
    Drop,
    /// Answer nothing for this long, then close.
    Stall(Duration),
    /// Pass on every other document; answer 429 for the others, item by item.
    HalfRejected,
    /// Pass it on.
    Pass,
}

pub struct FaultProxy {
    pub url: String,
    /// The faults applied so far, in order.
    pub applied: Arc<Mutex<Vec<Fault>>>,
}

/// Sends the request upstream; returns status and body.
fn forward(upstream: &str, request: &Request) -> (u16, Vec<u8>) {
    let addr = upstream.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("upstream listens");
    let head = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        request.method,
        request.path,
        request.body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&request.body).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let mut chunked = false;
    let mut length = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if header == "transfer-encoding: chunked" {
            chunked = true;
        }
        if let Some(v) = header.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body).unwrap();
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    (status, body)
}

fn respond(stream: &mut TcpStream, status: u16, body: &[u8]) {
    super::wire::respond(stream, status, "application/json", body)
}

/// Passes every other document of a `_bulk` body on and answers 429 for the rest.
fn half_rejected(upstream: &str, request: &Request) -> (u16, Vec<u8>) {
    let text = String::from_utf8_lossy(&request.body).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let pairs: Vec<(&str, &str)> = lines.chunks(2).map(|c| (c[0], c[1])).collect();
    let mut passed = String::new();
    for (i, (action, source)) in pairs.iter().enumerate() {
        if i % 2 == 0 {
            passed.push_str(&format!("{action}\n{source}\n"));
        }
    }
    let (status, body) = forward(
        upstream,
        &Request {
            method: request.method.clone(),
            path: request.path.clone(),
            headers: Vec::new(),
            body: passed.into_bytes(),
        },
    );
    if status != 200 {
        return (status, body);
    }
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut upstream_items = answer["items"].as_array().unwrap().iter();
    let items: Vec<serde_json::Value> = pairs
        .iter()
        .enumerate()
        .map(|(i, (action, _))| {
            if i % 2 == 0 {
                upstream_items.next().unwrap().clone()
            } else {
                let meta: serde_json::Value = serde_json::from_str(action).unwrap();
                serde_json::json!({"index": {
                    "_index": meta["index"]["_index"], "_id": meta["index"]["_id"], "status": 429,
                    "error": {"type": "es_rejected_execution_exception", "reason": "injected by the test proxy"}
                }})
            }
        })
        .collect();
    let merged = serde_json::json!({"took": 1, "errors": true, "items": items});
    (200, merged.to_string().into_bytes())
}

impl FaultProxy {
    pub fn start(upstream: &str, script: Vec<Fault>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let applied = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let upstream = upstream.to_owned();
        let log = applied.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let upstream = upstream.clone();
                let script = script.clone();
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let Some(request) = read_request(&mut reader) else {
                        return;
                    };
                    let mut stream = stream;
                    let fault = if request.path.contains("_bulk") {
                        script.lock().unwrap().next().unwrap_or(Fault::Pass)
                    } else {
                        Fault::Pass
                    };
                    log.lock().unwrap().push(fault.clone());
                    match fault {
                        Fault::Status(status) => respond(
                            &mut stream,
                            status,
                            br#"{"error":{"type":"injected","reason":"injected by the test proxy"}}"#,
                        ),
                        Fault::Drop => drop(stream),
                        Fault::Stall(d) => {
                            std::thread::sleep(d);
                            drop(stream)
                        }
                        Fault::HalfRejected => {
                            let (status, body) = half_rejected(&upstream, &request);
                            respond(&mut stream, status, &body)
                        }
                        Fault::Pass => {
                            let (status, body) = forward(&upstream, &request);
                            respond(&mut stream, status, &body)
                        }
                    }
                });
            }
        });
        FaultProxy { url, applied }
    }
}
