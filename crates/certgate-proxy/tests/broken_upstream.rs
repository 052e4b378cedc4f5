//! Broken upstreams (issue 9): a refused connect, a reset before the head, a garbage status
//! line, a head that never ends and a body cut half-way. The client gets 502/504 or a
//! truncated response it can detect, never a hang; the pool never hands a broken
//! connection out again (the next request makes a new upstream connection and succeeds).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use certgate_proxy::ProxySettings;
use certgate_store::model::GatewayConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the scripted upstream does with one connection, by its index.
#[derive(Clone, Copy)]
enum Script {
    /// Close right after reading the request.
    ResetBeforeHead,
    /// A status line that is not HTTP.
    Garbage,
    /// A head that never ends.
    EndlessHead,
    /// A head promising 100,000 bytes, 10 of them, then a close.
    CutBody,
    /// A complete `200 ok`.
    Good,
}

/// An upstream that plays `first` on its first connection and `Good` on every later one;
/// answers its address and the count of connections it accepted.
async fn scripted(first: Script) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let script = if n == 0 { first } else { Script::Good };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let reply: &[u8] = match script {
                        Script::ResetBeforeHead => return,
                        Script::Garbage => b"NOT-HTTP garbage\r\n\r\n",
                        Script::EndlessHead => b"HTTP/1.1 200 OK\r\nX-Slow: 1\r\n",
                        Script::CutBody => {
                            b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n0123456789"
                        }
                        Script::Good => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                    };
                    if conn.write_all(reply).await.is_err() {
                        return;
                    }
                    match script {
                        Script::Good => {}
                        Script::EndlessHead => {
                            // Hold the connection open without finishing the head.
                            let _ = conn.read(&mut buf).await;
                            return;
                        }
                        _ => return,
                    }
                }
            });
        }
    });
    (addr, accepted)
}

async fn gateway(upstream: SocketAddr) -> (SocketAddr, impl Drop) {
    let config = GatewayConfig {
        apis: vec![common::api(1, "/", upstream)],
        ..GatewayConfig::default()
    };
    let settings = ProxySettings {
        upstream_response_timeout: Duration::from_millis(800),
        ..ProxySettings::default()
    };
    let (addr, _rt, gw) = common::spawn_gateway(settings, &config).await;
    (addr, gw)
}

/// A `Connection: close` GET through the gateway, read to the end; bounded so a hang fails.
async fn get(addr: SocketAddr) -> String {
    tokio::time::timeout(
        Duration::from_secs(10),
        common::raw_http(
            addr,
            b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        ),
    )
    .await
    .expect("the gateway hung")
}

fn status(response: &str) -> &str {
    response.get(9..12).unwrap_or("")
}

/// The first request meets `first`; the second a good connection, which must be new.
async fn then_good(first: Script, want: &str) -> String {
    let (upstream, accepted) = scripted(first).await;
    let (addr, _gw) = gateway(upstream).await;
    let broken = get(addr).await;
    assert_eq!(status(&broken), want, "{broken}");
    let good = get(addr).await;
    assert_eq!(status(&good), "200", "{good}");
    assert!(good.ends_with("\r\n\r\nok"), "{good}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "the broken connection was reused"
    );
    broken
}

#[tokio::test]
async fn a_refused_connect_is_502() {
    // Port 1 on loopback: nothing listens there (a privileged port no test binds).
    let (addr, _gw) = gateway("127.0.0.1:1".parse().unwrap()).await;
    let r = get(addr).await;
    assert_eq!(status(&r), "502", "{r}");
}

#[tokio::test]
async fn a_reset_before_the_head_is_502_and_not_reused() {
    then_good(Script::ResetBeforeHead, "502").await;
}

#[tokio::test]
async fn a_garbage_status_line_is_502_and_not_reused() {
    then_good(Script::Garbage, "502").await;
}

#[tokio::test]
async fn a_head_that_never_ends_is_504_within_the_response_timeout() {
    then_good(Script::EndlessHead, "504").await;
}

#[tokio::test]
async fn a_body_cut_half_way_reaches_the_client_truncated_and_is_not_reused() {
    let (upstream, accepted) = scripted(Script::CutBody).await;
    let (addr, _gw) = gateway(upstream).await;
    let r = get(addr).await;
    assert_eq!(status(&r), "200", "{r}");
    // The client can tell: the head promised 100,000 bytes and the stream ended early
    // (or the gateway switched to chunked and never sent the final chunk).
    let body = r.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let promised = r.to_ascii_lowercase().contains("content-length: 100000");
    let chunked = r
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    assert!(promised || chunked, "{r}");
    if promised {
        assert!(body.len() < 100_000, "{}", body.len());
    } else {
        assert!(
            !body.ends_with("0\r\n\r\n"),
            "a truncated body ended cleanly: {body:?}"
        );
    }
    let good = get(addr).await;
    assert_eq!(status(&good), "200", "{good}");
    assert!(good.ends_with("\r\n\r\nok"), "{good}");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
