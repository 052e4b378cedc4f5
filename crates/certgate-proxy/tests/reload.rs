//! Live changes without a restart (SPEC §2, §3): trust-table changes re-judge open
//! connections and resumed TLS sessions, mode changes close old keep-alive connections
//! after their current response without failing requests, and graceful shutdown lets an
//! in-flight request finish.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certgate_proxy::ProxySettings;
use certgate_store::model::{CertAuthMode, GatewayConfig, ValidationFailure};
use common::{
    apply, assert_denied, client_config, h2_connect, mtls_config, root_mtls_config, spawn_echo,
    spawn_gateway, tls_settings, Pki, Reply,
};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::HandshakeKind;
use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

type ClientError = Box<dyn std::error::Error + Send + Sync>;

/// A keep-alive HTTP/1.1 connection over TLS.
struct KeepAlive {
    sender: SendRequest<Full<Bytes>>,
    kind: Option<HandshakeKind>,
}

impl KeepAlive {
    async fn open(
        config: &Arc<rustls::ClientConfig>,
        addr: SocketAddr,
    ) -> Result<KeepAlive, ClientError> {
        let tcp = TcpStream::connect(addr).await?;
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let kind = tls.get_ref().1.handshake_kind();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(KeepAlive { sender, kind })
    }

    async fn get(&mut self, path: &str) -> Result<Reply, ClientError> {
        self.sender.ready().await?;
        let req = Request::get(path)
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))?;
        let resp = self.sender.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

fn closes(reply: &Reply) -> bool {
    reply
        .headers
        .get(http::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

#[tokio::test]
async fn keep_alive_connection_gets_403_on_its_next_request_after_its_ca_is_removed() {
    for vf in [ValidationFailure::Handshake, ValidationFailure::Http] {
        let pki = Pki::new();
        let echo = spawn_echo().await;
        let config = mtls_config(
            echo,
            vec![pki.root.trusted(1), pki.untrusted_root.trusted(2)],
            true,
            vf,
        );
        let (addr, runtime, _gw) = spawn_gateway(tls_settings(&pki), &config).await;
        let alice = pki.client_cn("alice");
        let mut conn = KeepAlive::open(&client_config(&pki, Some(&alice), &[]), addr)
            .await
            .unwrap();
        conn.get("/1").await.unwrap().assert_identity(&alice);

        let mut without_root = config.clone();
        without_root.trusted_certificates = vec![pki.untrusted_root.trusted(2)];
        apply(&runtime, &without_root);
        assert_denied(&conn.get("/2").await.unwrap(), 403);
        assert_denied(&conn.get("/3").await.unwrap(), 403);

        // The CA comes back: the same connection is judged again and passes.
        apply(&runtime, &config);
        conn.get("/4").await.unwrap().assert_identity(&alice);
    }
}

#[tokio::test]
async fn adding_a_ca_lets_an_open_connection_through_with_validation_failure_http() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let config = mtls_config(
        echo,
        vec![pki.untrusted_root.trusted(2)],
        true,
        ValidationFailure::Http,
    );
    let (addr, runtime, _gw) = spawn_gateway(tls_settings(&pki), &config).await;
    let alice = pki.client_cn("alice");
    let mut conn = KeepAlive::open(&client_config(&pki, Some(&alice), &[]), addr)
        .await
        .unwrap();
    assert_denied(&conn.get("/").await.unwrap(), 403);
    let mut with_root = config.clone();
    with_root.trusted_certificates.push(pki.root.trusted(1));
    apply(&runtime, &with_root);
    conn.get("/").await.unwrap().assert_identity(&alice);
}

#[tokio::test]
async fn resumed_session_after_ca_removal_does_not_get_200() {
    for vf in [ValidationFailure::Handshake, ValidationFailure::Http] {
        let pki = Pki::new();
        let echo = spawn_echo().await;
        let config = mtls_config(
            echo,
            vec![pki.root.trusted(1), pki.untrusted_root.trusted(2)],
            true,
            vf,
        );
        let (addr, runtime, _gw) = spawn_gateway(tls_settings(&pki), &config).await;
        let alice = pki.client_cn("alice");
        let client = client_config(&pki, Some(&alice), &[]);

        // A full handshake; its answer carries the session tickets.
        let mut first = KeepAlive::open(&client, addr).await.unwrap();
        assert_eq!(first.kind, Some(HandshakeKind::Full));
        first.get("/").await.unwrap().assert_identity(&alice);
        drop(first);
        // Control: without a change, the session resumes and passes.
        let mut resumed = KeepAlive::open(&client, addr).await.unwrap();
        assert_eq!(resumed.kind, Some(HandshakeKind::Resumed), "{vf:?}");
        resumed.get("/").await.unwrap().assert_identity(&alice);
        drop(resumed);

        let mut without_root = config.clone();
        without_root.trusted_certificates = vec![pki.untrusted_root.trusted(2)];
        apply(&runtime, &without_root);
        let outcome = match KeepAlive::open(&client, addr).await {
            Err(e) => Err(e),
            Ok(mut conn) => {
                assert_eq!(
                    conn.kind,
                    Some(HandshakeKind::Resumed),
                    "{vf:?}: the test must exercise resumption"
                );
                conn.get("/").await
            }
        };
        match (vf, outcome) {
            // Closed right after the resumed handshake, before any HTTP.
            (ValidationFailure::Handshake, Err(_)) => {}
            (ValidationFailure::Http, Ok(reply)) => assert_denied(&reply, 403),
            (vf, other) => panic!("{vf:?}: unexpected outcome {other:?}"),
        }
    }
}

#[tokio::test]
async fn mode_change_closes_old_keep_alive_connections_after_their_response() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let mtls = root_mtls_config(&pki, echo, true, ValidationFailure::Handshake);
    let mut none = mtls.clone();
    none.client_cert_auth.mode = CertAuthMode::None;
    let (addr, runtime, _gw) = spawn_gateway(tls_settings(&pki), &none).await;
    let alice = pki.client_cn("alice");
    let client = client_config(&pki, Some(&alice), &[]);

    let mut served = KeepAlive::open(&client, addr).await.unwrap();
    let reply = served.get("/a").await.unwrap();
    reply.assert_no_identity();
    assert!(!closes(&reply));
    // Opened under `none`, no request yet.
    let mut fresh = KeepAlive::open(&client, addr).await.unwrap();

    apply(&runtime, &mtls);
    // Both old connections serve one more request (no certificate could be presented on
    // them, yet the client satisfies both modes), with `Connection: close`.
    let reply = served.get("/b").await.unwrap();
    reply.assert_echo();
    assert!(closes(&reply), "{:?}", reply.headers);
    let reply = fresh.get("/c").await.unwrap();
    reply.assert_echo();
    assert!(closes(&reply), "{:?}", reply.headers);
    // A new connection uses the new mode: the certificate is requested and forwarded.
    let mut new = KeepAlive::open(&client, addr).await.unwrap();
    let reply = new.get("/d").await.unwrap();
    reply.assert_identity(&alice);
    assert!(!closes(&reply));
    // Without a certificate, the new mode answers 401.
    let anonymous = client_config(&pki, None, &[]);
    assert_denied(
        &KeepAlive::open(&anonymous, addr)
            .await
            .unwrap()
            .get("/e")
            .await
            .unwrap(),
        401,
    );
}

#[tokio::test]
async fn http2_connection_gets_goaway_on_a_mode_change() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let mtls = root_mtls_config(&pki, echo, false, ValidationFailure::Handshake);
    let mut none = mtls.clone();
    none.client_cert_auth.mode = CertAuthMode::None;
    let (addr, runtime, _gw) = spawn_gateway(tls_settings(&pki), &mtls).await;
    let alice = pki.client_cn("alice");
    let (mut sender, driver) = h2_connect(addr, client_config(&pki, Some(&alice), &[b"h2"])).await;
    let req = Request::get("https://localhost/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), 200);
    apply(&runtime, &none);
    // The server sends GOAWAY and closes; the client's connection ends cleanly. (The
    // timeout only bounds a failing test.)
    let ended = tokio::time::timeout(Duration::from_secs(30), driver).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

#[tokio::test]
async fn mode_toggles_under_concurrent_load_fail_no_request() {
    const TASKS: usize = 8;
    const REQUESTS: usize = 200;
    let pki = Pki::new();
    let echo = spawn_echo().await;
    // Required, and every client holds a trusted certificate: each request satisfies
    // both modes.
    let mtls = root_mtls_config(&pki, echo, true, ValidationFailure::Handshake);
    let mut none = mtls.clone();
    none.client_cert_auth.mode = CertAuthMode::None;
    let (addr, runtime, _gw) = spawn_gateway(tls_settings(&pki), &mtls).await;
    let alice = pki.client_cn("alice");
    let client = client_config(&pki, Some(&alice), &[]);

    let (done_tx, mut done_rx) = mpsc::channel::<(usize, Vec<String>)>(TASKS);
    for task in 0..TASKS {
        let client = client.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut reconnects = 0;
            let mut conn: Option<KeepAlive> = None;
            for i in 0..REQUESTS {
                if conn.is_none() {
                    reconnects += 1;
                    match KeepAlive::open(&client, addr).await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            failures.push(format!("task {task} request {i}: connect: {e}"));
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                match c.get(&format!("/t{task}/{i}")).await {
                    Ok(reply) if reply.status == 200 => {
                        if closes(&reply) {
                            conn = None;
                        }
                    }
                    Ok(reply) => {
                        failures.push(format!(
                            "task {task} request {i}: {} {:?}",
                            reply.status, reply.body
                        ));
                        conn = None;
                    }
                    Err(e) => {
                        failures.push(format!("task {task} request {i}: {e}"));
                        conn = None;
                    }
                }
            }
            let _ = done.send((reconnects, failures)).await;
        });
    }
    drop(done_tx);

    // Toggle the mode while the load runs, until every task is done (at most 400 times).
    let mut toggles = 0;
    let mut results = Vec::new();
    while results.len() < TASKS && toggles < 400 {
        tokio::select! {
            r = done_rx.recv() => match r {
                Some(r) => results.push(r),
                None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(5)) => {
                toggles += 1;
                apply(&runtime, if toggles % 2 == 1 { &none } else { &mtls });
            }
        }
    }
    while results.len() < TASKS {
        match done_rx.recv().await {
            Some(r) => results.push(r),
            None => break,
        }
    }
    assert_eq!(results.len(), TASKS);
    let failures: Vec<String> = results.iter().flat_map(|(_, f)| f.clone()).collect();
    assert!(
        failures.is_empty(),
        "{} failures after {toggles} toggles: {failures:#?}",
        failures.len()
    );
    assert!(toggles >= 2, "the mode never changed during the load");
    let reconnects: usize = results.iter().map(|(r, _)| *r).sum();
    assert!(
        reconnects > TASKS,
        "no connection was closed by a mode change"
    );
}

/// An upstream that tells the test when a request arrived and answers only when released.
async fn slow_upstream() -> (SocketAddr, mpsc::Receiver<oneshot::Sender<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrived_tx, arrived_rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let arrived = arrived_tx.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let arrived = arrived.clone();
                    async move {
                        let (release_tx, release_rx) = oneshot::channel::<()>();
                        let _ = arrived.send(release_tx).await;
                        let _ = release_rx.await;
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(b"slow done"),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, arrived_rx)
}

#[tokio::test]
async fn graceful_shutdown_completes_a_slow_request_in_flight() {
    let (upstream, mut arrived) = slow_upstream().await;
    let config = GatewayConfig {
        apis: vec![common::api(1, "/", upstream)],
        ..GatewayConfig::default()
    };
    let (addr, _runtime, gw) = spawn_gateway(ProxySettings::plain_for_tests(), &config).await;
    let request = tokio::spawn(common::plain_request(
        addr,
        common::get_request("/slow", &[]),
    ));
    let release = arrived.recv().await.unwrap();
    // Shut down while the request waits at the upstream; then let the upstream answer.
    let shutdown = tokio::spawn(gw.shutdown());
    tokio::task::yield_now().await;
    release.send(()).unwrap();
    let reply = request.await.unwrap().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, Bytes::from_static(b"slow done"));
    // serve returns once the connection is drained.
    shutdown.await.unwrap();
    // Nothing listens any more.
    assert!(TcpStream::connect(addr).await.is_err());
}
