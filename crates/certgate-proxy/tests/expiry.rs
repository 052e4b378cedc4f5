//! Verdicts carry their end (SPEC §5, DESIGN "Verdicts carry their end"): an anchor, an
//! intermediate or a leaf that expires, or a CRL whose nextUpdate passes, while its verdict
//! is cached, validates nothing from the next second on: on an existing connection (its
//! next request), on a new connection (the identity cache), and in header mode (the
//! header cache). The node runs with a [`ManualClock`] set just before and just after the
//! instant, so nothing sleeps.
//!
//! Each test routes to its own API (`api-<id>`) so the denial counter
//! `certgate_auth_denied_total{reason,api}` it reads is its own.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use certgate_proxy::{ManualClock, ProxySettings, Runtime};
use certgate_store::model::{GatewayConfig, ValidationFailure};
use common::{
    api, assert_denied, client_config, get_request, header_config, mtls_config, nginx_escaped, now,
    plain_get, spawn_echo, tls_settings, Ca, ClientError, ClientSpec, GatewayHandle, Pki, Reply,
};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rustls_pki_types::ServerName;
use time::{Duration, OffsetDateTime};
use tokio::net::{TcpListener, TcpStream};

const HEADER: &str = "x-ssl-client-cert";

/// The process-wide Prometheus recorder the data plane's counters go to.
fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("install the Prometheus recorder")
    })
}

/// `certgate_auth_denied_total{reason,api}` now (0 when never counted).
fn denied(reason: &str, api: &str) -> u64 {
    let text = metrics().render();
    let (reason, api) = (format!("reason=\"{reason}\""), format!("api=\"{api}\""));
    text.lines()
        .filter(|l| l.starts_with("certgate_auth_denied_total{"))
        .filter(|l| l.contains(&reason) && l.contains(&api))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn secs(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap()
}

/// A gateway like `common::spawn_gateway`, judging by `clock`.
async fn gateway(
    clock: Arc<ManualClock>,
    settings: ProxySettings,
    config: &GatewayConfig,
) -> (SocketAddr, Arc<Runtime>, GatewayHandle) {
    let runtime = Runtime::with_clock(clock);
    common::apply(&runtime, config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = common::serve_on(listener, settings, runtime.clone());
    (addr, runtime, handle)
}

/// One keep-alive HTTP/1.1 connection over TLS.
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    /// A new connection (own client config: no session to resume).
    async fn open(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Conn, ClientError> {
        let tcp = TcpStream::connect(addr).await?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(connection);
        Ok(Conn { sender })
    }

    async fn get(&mut self, path: &str) -> Result<Reply, ClientError> {
        self.sender.ready().await?;
        let response = self.sender.send_request(get_request(path, &[])).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

/// One request on a new connection presenting `id`.
async fn once(addr: SocketAddr, pki: &Pki, id: &common::Identity) -> Result<Reply, ClientError> {
    let mut conn = Conn::open(addr, client_config(pki, Some(id), &[])).await?;
    conn.get("/").await
}

/// mtls, `validation_failure = http`, trusting `anchors`, one API `api-<api_id>` at `/`.
fn mtls_http(upstream: SocketAddr, anchors: &[&Ca], api_id: i64) -> GatewayConfig {
    let trusted = anchors
        .iter()
        .enumerate()
        .map(|(i, ca)| ca.trusted(i as i64 + 1))
        .collect();
    let mut config = mtls_config(upstream, trusted, true, ValidationFailure::Http);
    config.apis = vec![api(api_id, "/", upstream)];
    config
}

#[tokio::test]
async fn an_expired_anchor_validates_nothing_from_the_next_second() {
    metrics();
    let pki = Pki::new();
    let end = now() + Duration::days(1);
    let ca = Ca::root_valid("Short-lived Root", now() - Duration::days(30), end);
    let alice = pki.client_from(&ca, &[], &ClientSpec::new("alice"));
    let upstream = spawn_echo().await;
    let clock = Arc::new(ManualClock::at_secs(secs(end)));
    let config = mtls_http(upstream, &[&ca], 11);
    let (addr, rt, _gw) = gateway(clock.clone(), tls_settings(&pki), &config).await;

    // The anchor's last second: a connection, and a second one served from the cache.
    let mut existing = Conn::open(addr, client_config(&pki, Some(&alice), &[]))
        .await
        .unwrap();
    existing.get("/").await.unwrap().assert_identity(&alice);
    once(addr, &pki, &alice)
        .await
        .unwrap()
        .assert_identity(&alice);
    let usage = rt.snapshot().trust.identity_cache_usage();
    assert_eq!((usage.trusted_entries, usage.refused_entries), (1, 0));

    // One second later: the existing connection's next request, and a new connection.
    clock.set_secs(secs(end) + 1);
    assert_denied(&existing.get("/").await.unwrap(), 403);
    assert_denied(&once(addr, &pki, &alice).await.unwrap(), 403);
    assert_eq!(denied("untrusted", "api-11"), 2);
    let usage = rt.snapshot().trust.identity_cache_usage();
    assert_eq!((usage.trusted_entries, usage.refused_entries), (0, 1));
}

#[tokio::test]
async fn a_leaf_that_expires_is_refused_on_its_connection_and_in_the_handshake() {
    metrics();
    let pki = Pki::new();
    let end = now() + Duration::days(2);
    let alice = pki.client(&ClientSpec::new("alice").validity(now() - Duration::days(1), end));
    let upstream = spawn_echo().await;
    let clock = Arc::new(ManualClock::at_secs(secs(end)));
    let mut config = mtls_config(
        upstream,
        vec![pki.root.trusted(1)],
        true,
        ValidationFailure::Handshake,
    );
    config.apis = vec![api(12, "/", upstream)];
    let (addr, _rt, _gw) = gateway(clock.clone(), tls_settings(&pki), &config).await;

    let mut existing = Conn::open(addr, client_config(&pki, Some(&alice), &[]))
        .await
        .unwrap();
    existing.get("/").await.unwrap().assert_identity(&alice);

    clock.set_secs(secs(end) + 1);
    // `validation_failure = handshake` cannot refuse a handshake that is over: the
    // connection's next request gets the 403.
    assert_denied(&existing.get("/").await.unwrap(), 403);
    assert_eq!(denied("expired", "api-12"), 1);
    // A new connection is refused in its handshake (no API routed yet: `api=""`).
    let before = denied("expired", "");
    let refused = once(addr, &pki, &alice).await;
    assert!(refused.is_err(), "a new connection got {refused:?}");
    assert_eq!(denied("expired", "") - before, 1);
}

#[tokio::test]
async fn an_intermediate_that_expires_is_refused_as_expired() {
    metrics();
    let pki = Pki::new();
    let end = now() + Duration::days(3);
    let short = pki
        .root
        .intermediate_valid("Short Intermediate", now() - Duration::days(30), end);
    let carol = pki.client_from(&short, &[&short], &ClientSpec::new("carol"));
    let upstream = spawn_echo().await;
    let clock = Arc::new(ManualClock::at_secs(secs(end)));
    let config = mtls_http(upstream, &[&pki.root], 13);
    let (addr, _rt, _gw) = gateway(clock.clone(), tls_settings(&pki), &config).await;

    let mut existing = Conn::open(addr, client_config(&pki, Some(&carol), &[]))
        .await
        .unwrap();
    existing.get("/").await.unwrap().assert_identity(&carol);
    clock.set_secs(secs(end) + 1);
    assert_denied(&existing.get("/").await.unwrap(), 403);
    assert_denied(&once(addr, &pki, &carol).await.unwrap(), 403);
    assert_eq!(denied("expired", "api-13"), 2);
}

#[tokio::test]
async fn a_crl_past_its_next_update_leaves_the_status_unknown() {
    metrics();
    let pki = Pki::new();
    let next_update = now() + Duration::days(4);
    let alice = pki.client_cn("alice");
    let upstream = spawn_echo().await;
    let clock = Arc::new(ManualClock::at_secs(secs(next_update) - 1));
    let mut config = mtls_http(upstream, &[&pki.root], 14);
    config.client_cert_auth.crls = vec![pki.root.crl_next_update(next_update)];
    let (addr, _rt, _gw) = gateway(clock.clone(), tls_settings(&pki), &config).await;

    let mut existing = Conn::open(addr, client_config(&pki, Some(&alice), &[]))
        .await
        .unwrap();
    existing.get("/").await.unwrap().assert_identity(&alice);
    once(addr, &pki, &alice)
        .await
        .unwrap()
        .assert_identity(&alice);
    // webpki: a CRL is stale from its nextUpdate second on.
    clock.set_secs(secs(next_update));
    assert_denied(&existing.get("/").await.unwrap(), 403);
    assert_denied(&once(addr, &pki, &alice).await.unwrap(), 403);
    assert_eq!(denied("revocation_unknown", "api-14"), 2);
}

/// Header mode from 127.0.0.1, one API `api-<api_id>`, the given trust table and CRLs.
fn header_mode(
    upstream: SocketAddr,
    anchors: &[&Ca],
    crls: Vec<String>,
    api_id: i64,
) -> GatewayConfig {
    let mut config = header_config(upstream, HEADER, &["127.0.0.1/32"], true);
    config.trusted_certificates = anchors
        .iter()
        .enumerate()
        .map(|(i, ca)| ca.trusted(i as i64 + 1))
        .collect();
    config.client_cert_auth.crls = crls;
    config.apis = vec![api(api_id, "/", upstream)];
    config
}

async fn header_get(addr: SocketAddr, id: &common::Identity) -> Reply {
    plain_get(addr, "/", &[(HEADER, &nginx_escaped(&id.pem))]).await
}

#[tokio::test]
async fn the_header_cache_drops_a_verdict_whose_anchor_expired() {
    metrics();
    let pki = Pki::new();
    let end = now() + Duration::days(5);
    let ca = Ca::root_valid("Short-lived Header Root", now() - Duration::days(30), end);
    let alice = pki.client_from(&ca, &[], &ClientSpec::new("alice"));
    let upstream = spawn_echo().await;
    let clock = Arc::new(ManualClock::at_secs(secs(end)));
    let config = header_mode(upstream, &[&ca], Vec::new(), 15);
    let (addr, rt, _gw) = gateway(clock.clone(), ProxySettings::plain_for_tests(), &config).await;

    header_get(addr, &alice).await.assert_identity(&alice);
    header_get(addr, &alice).await.assert_identity(&alice);
    let usage = rt.snapshot().header_cache_usage();
    assert_eq!((usage.trusted_entries, usage.refused_entries), (1, 0));

    clock.set_secs(secs(end) + 1);
    assert_denied(&header_get(addr, &alice).await, 403);
    assert_denied(&header_get(addr, &alice).await, 403);
    assert_eq!(denied("untrusted", "api-15"), 2);
    let usage = rt.snapshot().header_cache_usage();
    assert_eq!((usage.trusted_entries, usage.refused_entries), (0, 1));
}

#[tokio::test]
async fn without_a_trust_table_a_header_leaf_expires_and_a_stale_crl_refuses() {
    metrics();
    let pki = Pki::new();
    let end = now() + Duration::days(6);
    let next_update = end + Duration::days(1);
    let alice = pki.client(&ClientSpec::new("alice").validity(now() - Duration::days(1), end));
    let bob = pki.client_cn("bob");
    let upstream = spawn_echo().await;
    let clock = Arc::new(ManualClock::at_secs(secs(end)));
    let crls = vec![pki.root.crl_next_update(next_update)];
    let config = header_mode(upstream, &[], crls, 16);
    let (addr, _rt, _gw) = gateway(clock.clone(), ProxySettings::plain_for_tests(), &config).await;

    header_get(addr, &alice).await.assert_identity(&alice);
    header_get(addr, &bob).await.assert_identity(&bob);
    clock.set_secs(secs(end) + 1);
    assert_denied(&header_get(addr, &alice).await, 403);
    assert_eq!(denied("expired", "api-16"), 1);
    header_get(addr, &bob).await.assert_identity(&bob);

    clock.set_secs(secs(next_update) - 1);
    header_get(addr, &bob).await.assert_identity(&bob);
    clock.set_secs(secs(next_update));
    assert_denied(&header_get(addr, &bob).await, 403);
    assert_eq!(denied("revocation_unknown", "api-16"), 1);
}
