//! In-process echo origin: answers every request 200 with JSON
//! `{method, path, query, headers, body}` (header names lowercased, repeated fields joined with ", ")
//! and the header `x-echo-origin: keyward-e2e`, and records every request it received.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use serde_json::{json, Map, Value};

use crate::http1::{read_body, read_head};

/// One request as the origin saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`; empty when there is none.
    pub query: String,
    /// Lowercased names, in arrival order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// All values of header `name` (case-insensitive).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        crate::util::header_values(&self.headers, name)
    }

    /// The single value of header `name`; None if absent, an error if repeated.
    pub fn header(&self, name: &str) -> Result<Option<&str>, String> {
        match self.header_values(name).as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            many => Err(format!("origin got header {name} {} times: {many:?}", many.len())),
        }
    }

    /// Whether `needle` occurs anywhere in the request (target, headers, body).
    pub fn contains(&self, needle: &str) -> bool {
        self.path.contains(needle)
            || self.query.contains(needle)
            || self
                .headers
                .iter()
                .any(|(n, v)| n.contains(needle) || v.contains(needle))
            || String::from_utf8_lossy(&self.body).contains(needle)
    }
}

#[derive(Clone)]
pub struct EchoOrigin {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Recorded>>>,
}

impl EchoOrigin {
    /// Binds 127.0.0.1 on a free port and serves from a background thread (a thread per connection).
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let origin = EchoOrigin {
            addr: listener.local_addr()?,
            received: Arc::default(),
        };
        let received = Arc::clone(&origin.received);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let received = Arc::clone(&received);
                thread::spawn(move || {
                    if let Err(e) = serve(stream, &received) {
                        eprintln!("echo origin: connection error: {e}");
                    }
                });
            }
        });
        Ok(origin)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.received).clone()
    }

    /// Every request received so far for exactly this path.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        lock(&self.received)
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn lock(m: &Mutex<Vec<Recorded>>) -> MutexGuard<'_, Vec<Recorded>> {
    // A panicking connection thread cannot leave the Vec half-updated: keep using it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn serve(stream: TcpStream, received: &Mutex<Vec<Recorded>>) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(head) = read_head(&mut reader)? {
        let mut parts = head.start_line.split(' ');
        let (method, target, version) = (parts.next(), parts.next(), parts.next());
        let (Some(method), Some(target), Some(version)) = (method, target, version) else {
            out.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
            return Ok(());
        };
        if head
            .get("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = read_body(&mut reader, &head, false)?;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let request = Recorded {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: head.headers.clone(),
            body,
        };

        let mut headers = Map::new();
        for (name, value) in &request.headers {
            let joined = match headers.get(name) {
                Some(Value::String(prev)) => format!("{prev}, {value}"),
                _ => value.clone(),
            };
            headers.insert(name.clone(), Value::String(joined));
        }
        let answer = json!({
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": headers,
            "body": String::from_utf8_lossy(&request.body),
        })
        .to_string();
        lock(received).push(request);

        let close = version == "HTTP/1.0" || head.get("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-echo-origin: keyward-e2e\r\n\
             content-length: {}\r\nconnection: {}\r\n\r\n{answer}",
            answer.len(),
            if close { "close" } else { "keep-alive" }
        )?;
        out.flush()?;
        if close {
            break;
        }
    }
    Ok(())
}
