//! The echo upstream: a tiny HTTP/1.1 server that answers every request with what it received.
//!
//! `certgate quickstart` runs it as its demo upstream, and the end-to-end tests put it behind
//! the gateway, so both can see exactly what the gateway forwarded (path rewrite,
//! `X-Forwarded-*`, the `X-Client-Cert-*` identity headers of SPEC §7, and the absence of the
//! certificate header in header mode).
//!
//! Every request gets `200 OK` with `Content-Type: application/json` and the body
//!
//! ```json
//! {"method": "GET", "path": "/x", "query": "a=1", "headers": {"host": "…", "x-client-cert-subject": "…"}}
//! ```
//!
//! - `path` is the request path as received (still percent-encoded);
//! - `query` is the raw query string without the `?`, or `null` when the request had none;
//! - `headers` maps each lowercase header name to its value; a header that appears several
//!   times has its values joined with `", "` in the order received. Values that are not UTF-8
//!   are shown lossily (U+FFFD).
//!
//! The request body is read and discarded, so keep-alive connections stay usable.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use tokio::net::TcpListener;

/// How long [`serve_echo`] waits for open connections to finish after `shutdown` resolves.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the echo upstream saw of one request; serialised as the response body.
#[derive(Debug, Serialize)]
struct Echo {
    method: String,
    path: String,
    query: Option<String>,
    headers: BTreeMap<String, String>,
}

impl Echo {
    /// Describes a request head (method, path, query and headers).
    fn from_parts(parts: &http::request::Parts) -> Echo {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            // `HeaderName::as_str` is already lowercase.
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        Echo {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers,
        }
    }
}

/// Answers one request with its JSON description.
async fn echo(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, mut body) = request.into_parts();
    let description = Echo::from_parts(&parts);
    // Drain the body so the connection can be reused; a broken body does not change the answer.
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
    let (status, body) = match serde_json::to_vec(&description) {
        Ok(json) => (StatusCode::OK, json),
        // Serialising strings and maps cannot fail; answer 500 rather than panic if it ever does.
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, b"{}".to_vec()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Serves the echo upstream on `listener` until `shutdown` resolves.
///
/// Speaks HTTP/1.1 (keep-alive included) in plain text. After `shutdown` resolves it stops
/// accepting, lets open connections finish their current request (for up to 5 s) and returns.
/// A failing connection is dropped without affecting the others; only an accept error that is
/// not transient (e.g. the listener's socket is closed) ends the server with an error.
pub async fn serve_echo(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(error) if is_transient_accept_error(&error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    Err(error) => return Err(error),
                };
                let connection = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(echo));
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    // A client that disconnects mid-request is not the server's problem.
                    let _ = connection.await;
                });
            }
        }
    }
    drop(listener);
    // Open connections get the grace period; whatever is left after it is abandoned.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    Ok(())
}

/// Accept errors that concern one connection or a momentary shortage, not the listener.
fn is_transient_accept_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionRefused
            | ErrorKind::Interrupted
            | ErrorKind::WouldBlock
    ) || error.raw_os_error().is_some_and(|code| {
        // EMFILE, ENFILE, ENOBUFS, ENOMEM: resource exhaustion that may pass.
        matches!(code, 24 | 23 | 105 | 12)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Sends raw HTTP/1.1 bytes and returns the whole response (the server closes after it).
    async fn raw_exchange(request: &[u8]) -> (String, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_echo(listener, async move {
            let _ = stopped.await;
        }));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        (String::from_utf8(response).unwrap(), stop)
    }

    fn body_of(response: &str) -> serde_json::Value {
        let (_, body) = response.split_once("\r\n\r\n").unwrap();
        serde_json::from_str(body).unwrap()
    }

    #[tokio::test]
    async fn echoes_method_path_query_and_joined_lowercase_headers() {
        let (response, _stop) = raw_exchange(
            b"POST /orders/v1/items?id=7&x=a%20b HTTP/1.1\r\nHost: example.test\r\n\
              X-Client-Cert-Subject: CN=alice\r\nX-Multi: one\r\nx-multi: two\r\n\
              Content-Length: 5\r\nConnection: close\r\n\r\nhello",
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(
            response.contains("content-type: application/json\r\n"),
            "{response}"
        );
        let body = body_of(&response);
        assert_eq!(body["method"], "POST");
        assert_eq!(body["path"], "/orders/v1/items");
        assert_eq!(body["query"], "id=7&x=a%20b");
        assert_eq!(body["headers"]["host"], "example.test");
        assert_eq!(body["headers"]["x-client-cert-subject"], "CN=alice");
        assert_eq!(body["headers"]["x-multi"], "one, two");
        assert_eq!(body["headers"]["content-length"], "5");
        assert!(body["headers"].get("X-Multi").is_none());
    }

    #[tokio::test]
    async fn query_is_null_without_one() {
        let (response, _stop) =
            raw_exchange(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").await;
        let body = body_of(&response);
        assert_eq!(body["path"], "/");
        assert!(body["query"].is_null());
    }

    #[tokio::test]
    async fn keep_alive_serves_several_requests_and_shutdown_returns() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_echo(listener, async move {
            let _ = stopped.await;
        }));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert_eq!(response.matches("HTTP/1.1 200 OK").count(), 2, "{response}");
        assert!(response.contains(r#""path":"/one""#));
        assert!(response.contains(r#""path":"/two""#));
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
