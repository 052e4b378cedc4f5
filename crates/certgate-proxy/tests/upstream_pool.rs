//! The upstream connection pool, seen from a real upstream: connections are reused across
//! requests (and downstream connections), a connection the upstream closes is not reused,
//! and a response abandoned half-way does not put its connection back.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certgate_proxy::ProxySettings;
use certgate_store::model::GatewayConfig;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An HTTP/1.1 upstream that counts the TCP connections it accepts; with `close` it
/// answers `Connection: close` (and closes) every time.
async fn counting_upstream(close: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<Incoming>| async move {
                    let mut resp = Response::builder().status(200);
                    if close {
                        resp = resp.header("connection", "close");
                    }
                    Ok::<_, Infallible>(resp.body(Full::new(Bytes::from_static(b"ok"))).unwrap())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, accepted)
}

async fn gateway_to(upstream: SocketAddr) -> (SocketAddr, impl Drop) {
    let config = GatewayConfig {
        apis: vec![common::api(1, "/", upstream)],
        ..GatewayConfig::default()
    };
    let (addr, _rt, gw) = common::spawn_gateway(ProxySettings::plain_for_tests(), &config).await;
    (addr, gw)
}

/// Five requests through a gateway to a [`counting_upstream`], each on a new downstream
/// connection; returns how many upstream connections were made.
async fn five_requests(close: bool) -> usize {
    let (upstream, accepted) = counting_upstream(close).await;
    let (addr, _gw) = gateway_to(upstream).await;
    for _ in 0..5 {
        let reply = common::plain_get(addr, "/", &[]).await;
        assert_eq!(reply.status, 200);
        // Let the upstream connection finish its response before the next request.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    accepted.load(Ordering::SeqCst)
}

#[tokio::test]
async fn upstream_connections_are_reused_across_requests_and_clients() {
    assert_eq!(five_requests(false).await, 1);
}

#[tokio::test]
async fn an_upstream_connection_closed_by_the_upstream_is_not_reused() {
    assert_eq!(five_requests(true).await, 5);
}

#[tokio::test]
async fn an_abandoned_response_does_not_return_its_connection() {
    // An upstream that sends a head and part of a long body, then waits; a second
    // connection gets a complete answer.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let n = count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if n == 0 {
                        let _ = conn
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\npartial")
                            .await;
                    } else {
                        let _ = conn
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .await;
                    }
                }
            });
        }
    });
    let (addr, _gw) = gateway_to(upstream).await;
    // The client reads the head and a little of the body, then goes away.
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = client.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(client);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The next request must not wait behind the abandoned body on the first connection.
    let reply = tokio::time::timeout(Duration::from_secs(10), common::plain_get(addr, "/", &[]))
        .await
        .expect("the second request hung on the abandoned connection");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
