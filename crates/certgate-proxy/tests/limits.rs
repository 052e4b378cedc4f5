//! Slow and greedy peers (docs/SECURITY.md "Limits"): a request head sent a byte at a
//! time is cut at the header-read timeout, a TLS handshake that never finishes at the
//! handshake timeout, a client that never reads its response holds only its own
//! connection, and HTTP/2 stream floods (rapid reset, more streams than allowed) are
//! bounded; in each case another client is served meanwhile.
//!
//! Every test runs well under 20 s: the timeouts are set to 2 s here, and the slow
//! peers would need far longer to finish what they send.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certgate_proxy::ProxySettings;
use certgate_store::model::GatewayConfig;
use common::{api, plain_get, spawn_echo, spawn_gateway, tls_settings, Pki, TlsClient};
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The header-read (and TLS handshake) timeout of these tests.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// Bounds a step that must end long before it: a failing test ends instead of hanging.
const BOUND: Duration = Duration::from_secs(15);

fn short_timeouts(mut settings: ProxySettings) -> ProxySettings {
    settings.header_read_timeout = HEAD_TIMEOUT;
    settings
}

fn echo_config(echo: SocketAddr) -> GatewayConfig {
    GatewayConfig {
        apis: vec![api(1, "/", echo)],
        ..GatewayConfig::default()
    }
}

/// Sends `bytes` one per `every` until the peer closes; returns how many were sent.
/// Panics if the peer answers anything or if all of them were accepted. While the
/// third byte goes out, `meanwhile` runs (another client's request).
async fn trickle<F, Fut>(
    stream: &mut TcpStream,
    bytes: &[u8],
    every: Duration,
    meanwhile: F,
) -> usize
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut meanwhile = Some(meanwhile);
    let mut tick = tokio::time::interval(every);
    let mut buf = [0u8; 512];
    let mut sent = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                assert!(sent < bytes.len(), "all {} slow bytes were accepted", bytes.len());
                if stream.write_all(&bytes[sent..=sent]).await.is_err() {
                    return sent;
                }
                sent += 1;
                if sent == 3 {
                    if let Some(f) = meanwhile.take() {
                        f().await;
                    }
                }
            }
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => return sent,
                Ok(n) => panic!("the slow peer got an answer: {:?}", String::from_utf8_lossy(&buf[..n])),
            },
        }
    }
}

#[tokio::test]
async fn slowloris_head_is_cut_at_the_header_read_timeout_while_another_client_is_served() {
    let echo = spawn_echo().await;
    let settings = short_timeouts(ProxySettings::plain_for_tests());
    let (addr, _runtime, _gw) = spawn_gateway(settings, &echo_config(echo)).await;
    // 80 bytes at 4 per second would take 20 s; the timeout is 2 s (+ the 1 s sweep).
    let head = format!(
        "GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(28)
    );
    assert_eq!(head.len(), 80);
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let s = served.clone();
    let sent = tokio::time::timeout(
        BOUND,
        trickle(
            &mut slow,
            head.as_bytes(),
            Duration::from_millis(250),
            || async move {
                let reply = plain_get(addr, "/fast", &[]).await;
                assert_eq!(reply.status, 200);
                s.fetch_add(1, Ordering::Relaxed);
            },
        ),
    )
    .await
    .expect("the slow head was never cut");
    assert!(sent < head.len());
    assert_eq!(served.load(Ordering::Relaxed), 1);
    // The listener still serves.
    assert_eq!(plain_get(addr, "/after", &[]).await.status, 200);
}

#[tokio::test]
async fn slow_tls_handshake_is_cut_at_the_handshake_timeout_while_another_client_is_served() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let settings = short_timeouts(tls_settings(&pki));
    let (addr, _runtime, _gw) = spawn_gateway(settings, &echo_config(echo)).await;
    // A TLS record header announcing a 255-byte ClientHello, then its bytes, slowly:
    // 260 bytes at 4 per second would take over a minute.
    let mut hello = vec![0x16, 0x03, 0x01, 0x00, 0xff];
    hello.extend(std::iter::repeat_n(0u8, 255));
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let client = TlsClient::new(&pki, None);
    let served = Arc::new(AtomicUsize::new(0));
    let s = served.clone();
    let sent = tokio::time::timeout(
        BOUND,
        trickle(
            &mut slow,
            &hello,
            Duration::from_millis(250),
            || async move {
                let reply = client.get(addr, "/fast", &[]).await.unwrap();
                assert_eq!(reply.status, 200);
                s.fetch_add(1, Ordering::Relaxed);
            },
        ),
    )
    .await
    .expect("the slow handshake was never cut");
    assert!(sent < hello.len());
    assert_eq!(served.load(Ordering::Relaxed), 1);

    // A connection that sends nothing at all is cut too.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(BOUND, silent.read(&mut buf))
        .await
        .expect("a silent connection was never cut");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
}

/// An upstream whose every response is an endless body of 64 KiB chunks.
async fn endless_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    let chunks = futures_util::stream::repeat_with(|| {
                        Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![
                            b'x';
                            64 * 1024
                        ])))
                    });
                    Ok::<_, std::convert::Infallible>(http::Response::new(StreamBody::new(chunks)))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn clients_that_never_read_their_response_do_not_block_others() {
    let echo = spawn_echo().await;
    let endless = endless_upstream().await;
    let config = GatewayConfig {
        apis: vec![api(1, "/", echo), api(2, "/endless", endless)],
        ..GatewayConfig::default()
    };
    let (addr, _runtime, _gw) = spawn_gateway(ProxySettings::plain_for_tests(), &config).await;
    // Ten clients ask for an endless body and never read a byte of it: their
    // connections fill their socket buffers and stall.
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /endless HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        stalled.push(s);
    }
    // Everyone else is served, repeatedly.
    for i in 0..20 {
        let reply = tokio::time::timeout(BOUND, plain_get(addr, &format!("/ok/{i}"), &[]))
            .await
            .expect("a reading client was blocked");
        assert_eq!(reply.status, 200);
    }
    drop(stalled);
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 on raw frames (a well-behaved client library would not send these floods)
// ---------------------------------------------------------------------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const REFUSED_STREAM: u32 = 0x7;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap();
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// `GET http://…/` as an HPACK block of static-table indices (:method GET, :scheme
/// http, :path /).
const GET_ROOT: &[u8] = &[0x82, 0x86, 0x84];

/// A server frame: type, stream, payload.
type ServerFrame = (u8, u32, Vec<u8>);

/// Reads server frames until `done` says so or the connection ends (bounded).
async fn read_frames(
    stream: &mut TcpStream,
    mut done: impl FnMut(&ServerFrame) -> bool,
) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    let read = async {
        loop {
            let mut head = [0u8; 9];
            if stream.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; len];
            if stream.read_exact(&mut payload).await.is_err() {
                return;
            }
            let f = (head[3], id, payload);
            let stop = done(&f);
            frames.push(f);
            if stop {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(BOUND, read).await;
    frames
}

fn error_code(payload: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([
        payload[at],
        payload[at + 1],
        payload[at + 2],
        payload[at + 3],
    ])
}

/// An upstream that accepts connections, counts them and never answers.
async fn silent_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::Relaxed);
            held.push(s);
        }
    });
    (addr, count)
}

#[tokio::test]
async fn http2_rapid_reset_ends_the_connection_with_enhance_your_calm() {
    let echo = spawn_echo().await;
    let (silent, upstream_conns) = silent_upstream().await;
    let config = GatewayConfig {
        apis: vec![api(1, "/", silent)],
        ..GatewayConfig::default()
    };
    let (addr, runtime, _gw) = spawn_gateway(ProxySettings::plain_for_tests(), &config).await;
    // 10,000 streams, each opened (HEADERS) and reset (RST_STREAM CANCEL) at once.
    const STREAMS: u32 = 10_000;
    let mut out = PREFACE.to_vec();
    frame(&mut out, SETTINGS, 0, 0, &[]);
    for i in 0..STREAMS {
        let id = 1 + 2 * i;
        frame(&mut out, HEADERS, END_HEADERS | END_STREAM, id, GET_ROOT);
        frame(&mut out, RST_STREAM, 0, id, &CANCEL.to_be_bytes());
    }
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = conn.split();
    let write = async {
        // The server may close before it has read everything.
        let _ = wr.write_all(&out).await;
    };
    let read = async {
        let mut goaway = None;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let _ = tokio::time::timeout(BOUND, async {
            loop {
                match rd.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                // Walk the complete frames read so far.
                let mut at = 0;
                while buf.len() >= at + 9 {
                    let len = u32::from_be_bytes([0, buf[at], buf[at + 1], buf[at + 2]]) as usize;
                    if buf.len() < at + 9 + len {
                        break;
                    }
                    if buf[at + 3] == GOAWAY {
                        goaway = Some(error_code(&buf[at + 9..at + 9 + len], 4));
                        return;
                    }
                    at += 9 + len;
                }
            }
        })
        .await;
        goaway
    };
    let ((), goaway) = tokio::join!(write, read);
    drop(conn);
    assert_eq!(goaway, Some(ENHANCE_YOUR_CALM));
    let reached = upstream_conns.load(Ordering::Relaxed);
    assert!(
        reached < 1_000,
        "{reached} of {STREAMS} reset streams reached the upstream"
    );
    // Another client is served.
    let other = GatewayConfig {
        apis: vec![api(1, "/", echo)],
        ..GatewayConfig::default()
    };
    common::apply(&runtime, &other);
    assert_eq!(plain_get(addr, "/after", &[]).await.status, 200);
}

#[tokio::test]
async fn http2_streams_over_max_concurrent_streams_are_refused() {
    let (silent, upstream_conns) = silent_upstream().await;
    let config = GatewayConfig {
        apis: vec![api(1, "/", silent)],
        ..GatewayConfig::default()
    };
    let (addr, _runtime, _gw) = spawn_gateway(ProxySettings::plain_for_tests(), &config).await;
    // 300 requests at once on one connection; the upstream never answers, so every
    // accepted stream stays open.
    const STREAMS: u32 = 300;
    const LIMIT: u32 = 200;
    let mut out = PREFACE.to_vec();
    frame(&mut out, SETTINGS, 0, 0, &[]);
    for i in 0..STREAMS {
        frame(
            &mut out,
            HEADERS,
            END_HEADERS | END_STREAM,
            1 + 2 * i,
            GET_ROOT,
        );
    }
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(&out).await.unwrap();
    let mut refused = 0;
    let mut advertised = None;
    let frames = read_frames(&mut conn, |(kind, _, payload)| {
        if *kind == SETTINGS && advertised.is_none() {
            // id 0x3 = SETTINGS_MAX_CONCURRENT_STREAMS
            advertised = payload
                .chunks(6)
                .find(|s| s.len() == 6 && s[..2] == [0, 3])
                .map(|s| error_code(s, 2));
        }
        if *kind == RST_STREAM && error_code(payload, 0) == REFUSED_STREAM {
            refused += 1;
        }
        refused == STREAMS - LIMIT
    })
    .await;
    assert_eq!(advertised, Some(LIMIT));
    assert_eq!(refused, STREAMS - LIMIT, "{} frames", frames.len());
    // Every refused stream is one of the last 100.
    for (kind, id, payload) in &frames {
        if *kind == RST_STREAM && error_code(payload, 0) == REFUSED_STREAM {
            assert!(*id > 2 * LIMIT, "stream {id} refused under the limit");
        }
        assert_ne!(*kind, GOAWAY, "the connection was closed");
    }
    // The upstream saw at most the 200 accepted requests.
    let reached = upstream_conns.load(Ordering::Relaxed);
    assert!(reached <= LIMIT as usize, "{reached}");
}

const WINDOW_UPDATE: u8 = 0x8;
const FLOW_CONTROL_ERROR: u32 = 0x3;

#[tokio::test]
async fn http2_window_update_past_the_maximum_window_ends_the_connection() {
    let echo = spawn_echo().await;
    let config = GatewayConfig {
        apis: vec![api(1, "/", echo)],
        ..GatewayConfig::default()
    };
    let (addr, _runtime, _gw) = spawn_gateway(ProxySettings::plain_for_tests(), &config).await;
    // Two increments of 2^31-1 on the connection window: the sum is past 2^31-1, which
    // RFC 9113 §6.9.1 makes a FLOW_CONTROL_ERROR of the connection.
    let mut out = PREFACE.to_vec();
    frame(&mut out, SETTINGS, 0, 0, &[]);
    for _ in 0..2 {
        frame(&mut out, WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes());
    }
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(&out).await.unwrap();
    let frames = read_frames(&mut conn, |(kind, _, _)| *kind == GOAWAY).await;
    let goaway = frames.iter().find(|(kind, _, _)| *kind == GOAWAY);
    let code = goaway.map(|(_, _, p)| error_code(p, 4));
    assert_eq!(code, Some(FLOW_CONTROL_ERROR), "{} frames", frames.len());
    assert_eq!(plain_get(addr, "/after", &[]).await.status, 200);
}

#[tokio::test]
async fn http2_settings_flood_is_bounded_and_others_are_served() {
    let echo = spawn_echo().await;
    let config = GatewayConfig {
        apis: vec![api(1, "/", echo)],
        ..GatewayConfig::default()
    };
    let (addr, _runtime, _gw) = spawn_gateway(ProxySettings::plain_for_tests(), &config).await;
    // 100,000 SETTINGS frames (each needing an ACK) from a client that never reads:
    // the server must not queue an unbounded number of ACKs for it.
    const FLOOD: usize = 100_000;
    let mut out = PREFACE.to_vec();
    for _ in 0..FLOOD {
        // SETTINGS_INITIAL_WINDOW_SIZE (0x4) = 65535
        frame(&mut out, SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]);
    }
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let written = tokio::time::timeout(BOUND, conn.write_all(&out)).await;
    // Either the server closed the connection (write error), or stopped reading once its
    // unread ACKs filled the socket (the write does not finish in time): in both cases
    // it did not take all 100,000. Reading nothing here is what makes the ACKs pile up.
    let all_taken = matches!(written, Ok(Ok(())));
    // Meanwhile, and after, another client is served.
    assert_eq!(plain_get(addr, "/during", &[]).await.status, 200);
    if all_taken {
        // Everything was accepted: then the server must end the connection rather than
        // keep 100,000 ACKs for a peer that reads none.
        let mut buf = vec![0u8; 64 * 1024];
        let closed = tokio::time::timeout(BOUND, async {
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap_or(false);
        assert!(closed, "the flooding connection was kept open");
    }
    drop(conn);
    assert_eq!(plain_get(addr, "/after", &[]).await.status, 200);
}
