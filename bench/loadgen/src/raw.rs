//! A minimal HTTP/1.1 keep-alive client: writes a pre-serialised request and reads the
//! response (Content-Length, chunked, or until close) with no per-request allocation.
//!
//! The load generator shares a CPU with the upstream, so its own cost per request bounds
//! what the benchmark can measure; this path costs well under hyper's client (no channel
//! and task hand-off per request). hyper stays in use for HTTP/2 and the handshake mode.

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// One HTTP/1.1 connection over any byte stream.
pub struct RawConn<S> {
    io: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// What a response said about the connection.
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// The server will close the connection (or already did).
    pub close: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_usize(v: &[u8], radix: u32) -> anyhow::Result<usize> {
    let s = std::str::from_utf8(v).context("non-UTF-8 number")?.trim();
    usize::from_str_radix(s, radix).with_context(|| format!("bad number {s:?}"))
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawConn<S> {
    /// Wraps a connected stream.
    pub fn new(io: S) -> Self {
        Self {
            io,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// Reads more bytes into the buffer; errors at EOF.
    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.start > 0 && self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_HEAD * 2 {
                self.buf.resize(self.buf.len() * 2, 0);
            } else {
                bail!("response too large for the buffer");
            }
        }
        let n = self
            .io
            .read(&mut self.buf[self.end..])
            .await
            .context("read")?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        self.end += n;
        Ok(())
    }

    /// Takes one CRLF-terminated line (without the CRLF).
    async fn line(&mut self) -> anyhow::Result<(usize, usize)> {
        loop {
            if let Some(p) = find(&self.buf[self.start..self.end], b"\r\n") {
                let l = (self.start, self.start + p);
                self.start += p + 2;
                return Ok(l);
            }
            if self.end - self.start > MAX_HEAD {
                bail!("line too long");
            }
            self.fill().await?;
        }
    }

    /// Skips `n` body bytes.
    async fn skip(&mut self, mut n: usize) -> anyhow::Result<()> {
        loop {
            let have = self.end - self.start;
            if have >= n {
                self.start += n;
                return Ok(());
            }
            n -= have;
            self.start = self.end;
            self.fill().await?;
        }
    }

    /// Sends `req` (a complete request) and reads the whole response.
    pub async fn request(&mut self, req: &[u8]) -> anyhow::Result<RawResponse> {
        self.io.write_all(req).await.context("write")?;
        self.io.flush().await.context("flush")?;
        // Head.
        let head_end = loop {
            if let Some(p) = find(&self.buf[self.start..self.end], b"\r\n\r\n") {
                break self.start + p + 4;
            }
            if self.end - self.start > MAX_HEAD {
                bail!("response head too large");
            }
            self.fill().await?;
        };
        let head = &self.buf[self.start..head_end];
        let mut lines = head.split(|&b| b == b'\n');
        let status_line = lines.next().ok_or_else(|| anyhow!("empty response"))?;
        let mut parts = status_line.split(|&b| b == b' ');
        let version = parts.next().unwrap_or_default();
        let code = parts.next().ok_or_else(|| anyhow!("bad status line"))?;
        let status = u16::try_from(parse_usize(code, 10)?).context("bad status")?;
        let mut close = version != b"HTTP/1.1";
        let mut length = None;
        let mut chunked = false;
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                length = Some(parse_usize(value, 10)?);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"connection") {
                for t in value.split(|&b| b == b',') {
                    let t = t.trim_ascii();
                    if t.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        close = false;
                    }
                }
            }
        }
        self.start = head_end;
        // Body.
        if status == 204 || status == 304 || (100..200).contains(&status) {
        } else if chunked {
            loop {
                let (a, b) = self.line().await?;
                let size_field = self.buf[a..b]
                    .split(|&c| c == b';')
                    .next()
                    .unwrap_or_default();
                let size = parse_usize(size_field, 16)?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    loop {
                        let (a, b) = self.line().await?;
                        if a == b {
                            break;
                        }
                    }
                    break;
                }
                self.skip(size + 2).await?;
            }
        } else if let Some(n) = length {
            self.skip(n).await?;
        } else {
            // Delimited by close.
            while self.fill().await.is_ok() {
                self.start = self.end;
            }
            close = true;
        }
        Ok(RawResponse { status, close })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(server_bytes: &'static [u8]) -> anyhow::Result<RawResponse> {
        let (client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut sink = [0u8; 1024];
            let _ = server.read(&mut sink).await;
            let _ = server.write_all(server_bytes).await;
        });
        RawConn::new(client)
            .request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
    }

    #[tokio::test]
    async fn content_length_response() {
        let r = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert!(!r.close);
    }

    #[tokio::test]
    async fn chunked_response_with_close() {
        let r = answer(
            b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
        assert_eq!(r.status, 403);
        assert!(r.close);
    }

    #[tokio::test]
    async fn two_responses_on_one_connection() {
        let (client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut sink = [0u8; 1024];
            for body in ["a", "bcd"] {
                let _ = server.read(&mut sink).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = server.write_all(resp.as_bytes()).await;
            }
        });
        let mut c = RawConn::new(client);
        for _ in 0..2 {
            let r = c
                .request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            assert_eq!(r.status, 200);
        }
    }

    #[tokio::test]
    async fn a_closed_connection_is_an_error() {
        let e = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
            .await
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("closed"), "{e:#}");
    }
}
