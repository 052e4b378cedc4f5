//! A raw HTTP/1.1 upstream that records the bytes of every request head it receives and
//! the body as its framing delimits it, and answers `200 ok`. Unlike a hyper server it
//! hides nothing: a repeated header, both `Content-Length` and `Transfer-Encoding`, or a
//! second request inside a body all show in what it recorded.
//!
//! Included with `#[path = "common/recorder.rs"] mod recorder;` by the tests that need it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request line, e.g. `GET /files/admin HTTP/1.1`.
    pub line: String,
    /// Every header line in order, name as sent and value.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked if it was chunked.
    pub body: Vec<u8>,
}

impl Seen {
    /// The request target of the request line.
    pub fn target(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }

    /// The values of every header whose name equals `name` ignoring ASCII case.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Header names that, with `_` read as `-`, start with `prefix` or equal one of `names`
    /// (case-insensitively).
    pub fn folded(&self, prefix: &str, names: &[&str]) -> Vec<String> {
        self.headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase().replace('_', "-"))
            .filter(|n| n.starts_with(prefix) || names.contains(&n.as_str()))
            .collect()
    }
}

/// The recording upstream: its address and what it saw.
#[derive(Clone)]
pub struct Recorder {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    /// Starts it on `127.0.0.1:0` for the rest of the test.
    pub async fn spawn() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, log.clone()));
            }
        });
        Recorder { addr, seen }
    }

    /// The requests seen since the last call, in order.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// Serves one connection: heads and bodies until EOF or a framing it cannot read.
async fn serve(mut stream: TcpStream, log: Arc<Mutex<Vec<Seen>>>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(head_end) = read_until(&mut stream, &mut buf, b"\r\n\r\n").await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let line = lines.next().unwrap_or("").to_owned();
        let headers: Vec<(String, String)> = lines
            .map(|l| match l.split_once(':') {
                Some((n, v)) => (n.to_owned(), v.trim().to_owned()),
                None => (l.to_owned(), String::new()),
            })
            .collect();
        let mut seen = Seen {
            line,
            headers,
            body: Vec::new(),
        };
        let chunked = seen
            .all("transfer-encoding")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("chunked"));
        let length: Option<usize> = seen
            .all("content-length")
            .first()
            .and_then(|v| v.parse().ok());
        let ok = if chunked {
            read_chunked(&mut stream, &mut buf, &mut seen.body).await
        } else if let Some(n) = length {
            let ok = fill(&mut stream, &mut buf, n).await;
            if ok {
                seen.body = buf.drain(..n).collect();
            }
            ok
        } else {
            true
        };
        log.lock().unwrap().push(seen);
        if !ok {
            return;
        }
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// Reads until `buf` holds `needle`; its offset, or None at EOF or after 10 s.
async fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, needle: &[u8]) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(needle.len()).position(|w| w == needle) {
            return Some(i);
        }
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// Reads until `buf` holds `n` bytes; false at EOF or after 10 s.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> bool {
    while buf.len() < n {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(k)) if k > 0 => buf.extend_from_slice(&chunk[..k]),
            _ => return false,
        }
    }
    true
}

/// Reads a chunked body (and its trailers) into `body`.
async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>, body: &mut Vec<u8>) -> bool {
    loop {
        let Some(end) = read_until(stream, buf, b"\r\n").await else {
            return false;
        };
        let size_line = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 2);
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            return false;
        };
        if size == 0 {
            // Trailers up to the empty line.
            loop {
                let Some(end) = read_until(stream, buf, b"\r\n").await else {
                    return false;
                };
                buf.drain(..end + 2);
                if end == 0 {
                    return true;
                }
            }
        }
        if !fill(stream, buf, size + 2).await {
            return false;
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
    }
}
