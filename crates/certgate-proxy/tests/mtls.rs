//! mtls mode end to end, over real TLS on 127.0.0.1 with a Rust client (tokio-rustls +
//! hyper) presenting rcgen identities: 200 with the identity forwarded, 401, 403 for
//! every kind of bad certificate, handshake failures, intermediates, spoofed identity
//! headers, path rewrite and `X-Forwarded-*`, 502/504, HTTP/2 via ALPN, and 1000 trust
//! anchors with 1000 DN patterns.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certgate_proxy::ProxySettings;
use certgate_store::model::{Api, GatewayConfig, TrustedCertificate, ValidationFailure};
use common::{
    assert_denied, client_config, h2_connect, mtls_config, root_mtls_config, spawn_echo,
    spawn_gateway, tls_settings, ClientSpec, GatewayHandle, IssuedBy, Pki, TlsClient,
};
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};

async fn gateway(pki: &Pki, config: &GatewayConfig) -> (SocketAddr, GatewayHandle) {
    let (addr, _rt, handle) = spawn_gateway(tls_settings(pki), config).await;
    (addr, handle)
}

#[tokio::test]
async fn trusted_client_gets_200_and_its_identity_reaches_the_upstream() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let config = root_mtls_config(&pki, echo, true, ValidationFailure::Handshake);
    let (addr, _gw) = gateway(&pki, &config).await;
    let alice = pki.client_cn("alice");
    let reply = TlsClient::new(&pki, Some(&alice))
        .get(addr, "/hello?x=1", &[])
        .await
        .unwrap();
    reply.assert_identity(&alice);
    let json = reply.json();
    assert_eq!(json["path"], "/hello");
    assert_eq!(json["query"], "x=1");
    assert_eq!(
        reply.upstream_header("x-forwarded-proto").as_deref(),
        Some("https")
    );
    assert_eq!(
        reply.upstream_header("x-forwarded-host").as_deref(),
        Some("localhost")
    );
    assert_eq!(
        reply.upstream_header("x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(reply.upstream_header("host"), Some(echo.to_string()));
}

#[tokio::test]
async fn no_certificate_is_401_when_required_and_passes_when_not() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let config = root_mtls_config(&pki, echo, true, ValidationFailure::Handshake);
    let (addr, _gw) = gateway(&pki, &config).await;
    let anonymous = TlsClient::new(&pki, None);
    assert_denied(&anonymous.get(addr, "/", &[]).await.unwrap(), 401);

    let config = root_mtls_config(&pki, echo, false, ValidationFailure::Handshake);
    let (addr, _gw) = gateway(&pki, &config).await;
    anonymous
        .get(addr, "/", &[])
        .await
        .unwrap()
        .assert_no_identity();
}

/// Bad client certificates of every kind: `(name, identity, CRL of the root if any)`.
fn bad_clients(pki: &Pki) -> Vec<(&'static str, common::Identity, bool)> {
    let revoked = pki.client_cn("revoked");
    vec![
        (
            "untrusted",
            pki.client(&ClientSpec::new("mallory").issued_by(IssuedBy::Untrusted)),
            false,
        ),
        (
            "expired",
            pki.client(&ClientSpec::new("old").expired()),
            false,
        ),
        (
            "not yet valid",
            pki.client(&ClientSpec::new("early").not_yet_valid()),
            false,
        ),
        ("revoked", revoked, true),
    ]
}

/// A gateway trusting the test root for one of [`bad_clients`]; with `revoke` its CRL
/// revokes `identity`.
async fn bad_client_gateway(
    pki: &Pki,
    echo: SocketAddr,
    identity: &common::Identity,
    revoke: bool,
    validation_failure: ValidationFailure,
) -> (SocketAddr, GatewayHandle) {
    let mut config = root_mtls_config(pki, echo, false, validation_failure);
    if revoke {
        config.client_cert_auth.crls = vec![pki.root.crl(&[&identity.serial_hex])];
    }
    gateway(pki, &config).await
}

#[tokio::test]
async fn bad_certificates_are_403_with_validation_failure_http() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    for (name, identity, revoke) in bad_clients(&pki) {
        let (addr, _gw) =
            bad_client_gateway(&pki, echo, &identity, revoke, ValidationFailure::Http).await;
        let client = TlsClient::new(&pki, Some(&identity));
        let reply = client
            .get(addr, "/", &[])
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_denied(&reply, 403);
        // Every request of that connection, and of a new one, gets the same answer.
        assert_denied(&client.get(addr, "/other", &[]).await.unwrap(), 403);
        // A good certificate on the same gateway passes.
        let alice = pki.client_cn("alice");
        TlsClient::new(&pki, Some(&alice))
            .get(addr, "/", &[])
            .await
            .unwrap()
            .assert_identity(&alice);
    }
}

#[tokio::test]
async fn bad_certificates_fail_the_handshake_with_validation_failure_handshake() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    for (name, identity, revoke) in bad_clients(&pki) {
        let (addr, _gw) =
            bad_client_gateway(&pki, echo, &identity, revoke, ValidationFailure::Handshake).await;
        let result = TlsClient::new(&pki, Some(&identity))
            .get(addr, "/", &[])
            .await;
        assert!(
            result.is_err(),
            "{name}: the handshake should fail, got {result:?}"
        );
        // The same gateway still serves a good client.
        let alice = pki.client_cn("alice");
        TlsClient::new(&pki, Some(&alice))
            .get(addr, "/", &[])
            .await
            .unwrap()
            .assert_identity(&alice);
    }
}

#[tokio::test]
async fn dn_mismatch_is_403() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let mut config = root_mtls_config(&pki, echo, true, ValidationFailure::Handshake);
    config.client_cert_auth.trusted_dns = vec!["CN=alice,O=Example Corp,C=US".into()];
    let (addr, _gw) = gateway(&pki, &config).await;
    let bob = pki.client_cn("bob");
    assert_denied(
        &TlsClient::new(&pki, Some(&bob))
            .get(addr, "/", &[])
            .await
            .unwrap(),
        403,
    );
    let alice = pki.client_cn("alice");
    TlsClient::new(&pki, Some(&alice))
        .get(addr, "/", &[])
        .await
        .unwrap()
        .assert_identity(&alice);
}

#[tokio::test]
async fn intermediates_sent_by_the_client_complete_the_chain() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let config = root_mtls_config(&pki, echo, true, ValidationFailure::Handshake);
    let (addr, _gw) = gateway(&pki, &config).await;
    let carol = pki.client(&ClientSpec::new("carol").issued_by(IssuedBy::Intermediate));
    let reply = TlsClient::new(&pki, Some(&carol))
        .get(addr, "/", &[])
        .await
        .unwrap();
    reply.assert_identity(&carol);
    assert_eq!(
        reply.upstream_header("x-client-cert-issuer").as_deref(),
        Some(pki.intermediate.dn.as_str())
    );
}

#[tokio::test]
async fn spoofed_identity_headers_are_stripped() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let config = root_mtls_config(&pki, echo, false, ValidationFailure::Handshake);
    let (addr, _gw) = gateway(&pki, &config).await;
    let spoof = [
        ("X-Client-Cert-Subject", "CN=admin"),
        ("x-client-cert-issuer", "CN=evil"),
        ("X-Client-Cert-Serial", "01"),
        ("X-Client-Cert-Fingerprint", "sha256:00"),
        ("X-Client-Cert-Not-After", "2999-01-01T00:00:00Z"),
        ("X-Client-Cert-Anything", "x"),
    ];
    // Without a certificate: none reach the upstream.
    TlsClient::new(&pki, None)
        .get(addr, "/", &spoof)
        .await
        .unwrap()
        .assert_no_identity();
    // With one: the upstream sees the real identity only.
    let alice = pki.client_cn("alice");
    let reply = TlsClient::new(&pki, Some(&alice))
        .get(addr, "/", &spoof)
        .await
        .unwrap();
    reply.assert_identity(&alice);
    assert_eq!(reply.upstream_header("x-client-cert-anything"), None);
}

#[tokio::test]
async fn forward_identity_false_sends_no_identity_headers() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let mut config = root_mtls_config(&pki, echo, true, ValidationFailure::Handshake);
    config.client_cert_auth.forward_identity = false;
    let (addr, _gw) = gateway(&pki, &config).await;
    let alice = pki.client_cn("alice");
    TlsClient::new(&pki, Some(&alice))
        .get(addr, "/", &[("X-Client-Cert-Subject", "CN=admin")])
        .await
        .unwrap()
        .assert_no_identity();
}

#[tokio::test]
async fn path_rewrite_routing_and_404() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let mut config = root_mtls_config(&pki, echo, false, ValidationFailure::Handshake);
    config.apis = vec![
        Api {
            upstream: format!("http://{echo}/backend"),
            ..common::api(1, "/orders", echo)
        },
        Api {
            upstream: format!("http://{echo}/v1-backend/"),
            ..common::api(2, "/orders/v1", echo)
        },
    ];
    let (addr, _gw) = gateway(&pki, &config).await;
    let client = TlsClient::new(&pki, None);
    let reply = client.get(addr, "/orders/7?a=1&b=%2B", &[]).await.unwrap();
    assert_eq!(reply.assert_echo()["path"], "/backend/7");
    assert_eq!(reply.json()["query"], "a=1&b=%2B");
    assert_eq!(
        client
            .get(addr, "/orders", &[])
            .await
            .unwrap()
            .assert_echo()["path"],
        "/backend"
    );
    assert_eq!(
        client
            .get(addr, "/orders/v1/x", &[])
            .await
            .unwrap()
            .assert_echo()["path"],
        "/v1-backend/x"
    );
    assert_denied(&client.get(addr, "/ordersX", &[]).await.unwrap(), 404);
    assert_denied(&client.get(addr, "/", &[]).await.unwrap(), 404);
}

#[tokio::test]
async fn hop_by_hop_headers_do_not_reach_the_upstream() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let config = root_mtls_config(&pki, echo, false, ValidationFailure::Handshake);
    let (addr, _gw) = gateway(&pki, &config).await;
    let reply = TlsClient::new(&pki, None)
        .get(
            addr,
            "/",
            &[
                ("Connection", "keep-alive, X-Secret"),
                ("X-Secret", "s"),
                ("Keep-Alive", "timeout=5"),
                ("X-Kept", "k"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(reply.upstream_header("x-secret"), None);
    assert_eq!(reply.upstream_header("keep-alive"), None);
    assert_eq!(reply.upstream_header("x-kept").as_deref(), Some("k"));
}

#[tokio::test]
async fn closed_upstream_port_is_502_with_the_exact_body() {
    let pki = Pki::new();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let config = root_mtls_config(&pki, closed, false, ValidationFailure::Handshake);
    let (addr, _gw) = gateway(&pki, &config).await;
    let reply = TlsClient::new(&pki, None)
        .get(addr, "/", &[])
        .await
        .unwrap();
    assert_eq!(reply.status, 502);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(
        reply.body,
        Bytes::from_static(
            br#"{"code": 502, "message": "The upstream service could not be reached."}"#
        )
    );
}

#[tokio::test]
async fn silent_upstream_is_504_with_the_exact_body() {
    let pki = Pki::new();
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..16 {
            match silent.accept().await {
                Ok((s, _)) => held.push(s),
                Err(_) => break,
            }
        }
        std::future::pending::<()>().await;
    });
    let config = root_mtls_config(&pki, silent_addr, false, ValidationFailure::Handshake);
    let mut settings = tls_settings(&pki);
    settings.upstream_response_timeout = Duration::from_millis(300);
    let (addr, _rt, _gw) = spawn_gateway(settings, &config).await;
    let reply = TlsClient::new(&pki, None)
        .get(addr, "/", &[])
        .await
        .unwrap();
    assert_eq!(reply.status, 504);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(
        reply.body,
        Bytes::from_static(
            br#"{"code": 504, "message": "The upstream service did not answer in time."}"#
        )
    );
    holder.abort();
}

#[tokio::test]
async fn http2_via_alpn_works_and_carries_the_identity() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let config = root_mtls_config(&pki, echo, true, ValidationFailure::Handshake);
    let (addr, _gw) = gateway(&pki, &config).await;
    let alice = pki.client_cn("alice");
    let connector =
        tokio_rustls::TlsConnector::from(client_config(&pki, Some(&alice), &[b"h2", b"http/1.1"]));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    // Several streams on the one connection.
    for i in 0..3 {
        let req = Request::get(format!("https://localhost/h2/{i}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.version(), Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["path"], format!("/h2/{i}"));
        assert_eq!(json["headers"]["x-client-cert-subject"], alice.dn.as_str());
        assert_eq!(json["headers"]["x-forwarded-host"], "localhost");
    }
}

#[tokio::test]
async fn http2_disabled_negotiates_http1() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let config = root_mtls_config(&pki, echo, false, ValidationFailure::Handshake);
    let mut settings = tls_settings(&pki);
    settings.http2 = false;
    let (addr, _rt, _gw) = spawn_gateway(settings, &config).await;
    let alice = pki.client_cn("alice");
    let connector =
        tokio_rustls::TlsConnector::from(client_config(&pki, Some(&alice), &[b"h2", b"http/1.1"]));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn plain_listener_serves_h2_prior_knowledge_and_http1() {
    let echo = spawn_echo().await;
    let config = GatewayConfig {
        apis: vec![common::api(1, "/", echo)],
        ..GatewayConfig::default()
    };
    let (addr, _rt, _gw) = spawn_gateway(ProxySettings::plain_for_tests(), &config).await;
    let reply = common::plain_get(addr, "/p", &[]).await;
    assert_eq!(reply.assert_echo()["headers"]["x-forwarded-proto"], "http");
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("http://localhost/h2c")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn request_bodies_stream_to_the_upstream() {
    // The echo discards bodies; a 1 MiB POST must still go through and answer 200.
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let config = root_mtls_config(&pki, echo, false, ValidationFailure::Handshake);
    let (addr, _gw) = gateway(&pki, &config).await;
    let req = Request::post("/upload")
        .header("host", "localhost")
        .body(Full::new(Bytes::from(vec![b'x'; 1 << 20])))
        .unwrap();
    let reply = TlsClient::new(&pki, None).request(addr, req).await.unwrap();
    assert_eq!(reply.assert_echo()["method"], "POST");
    assert_eq!(
        reply.upstream_header("content-length").as_deref(),
        Some("1048576")
    );
}

#[tokio::test]
async fn thousand_anchors_and_thousand_patterns_handshake_and_match() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    // 999 unrelated CAs (one key, distinct names) plus the real root, last.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut trusted: Vec<TrustedCertificate> = (0..999)
        .map(|i| {
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, format!("Filler CA {i}"));
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let cert = params.self_signed(&key).unwrap();
            TrustedCertificate {
                certificate_id: 1000 + i,
                pem: cert.pem(),
                ..pki.root.trusted(1000 + i)
            }
        })
        .collect();
    trusted.push(pki.root.trusted(1));
    let mut config = mtls_config(echo, trusted, true, ValidationFailure::Handshake);
    let mut patterns: Vec<String> = (0..999)
        .map(|i| format!("CN=user-{i},O=Example Corp,C=US"))
        .collect();
    patterns.push("CN=alice,O=Example Corp,C=US".into());
    config.client_cert_auth.trusted_dns = patterns;
    let (addr, gw) = gateway(&pki, &config).await;
    let alice = pki.client_cn("alice");
    let client = TlsClient::new(&pki, Some(&alice));
    for _ in 0..3 {
        client
            .get(addr, "/", &[])
            .await
            .unwrap()
            .assert_identity(&alice);
    }
    assert_denied(
        &TlsClient::new(&pki, Some(&pki.client_cn("zed")))
            .get(addr, "/", &[])
            .await
            .unwrap(),
        403,
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn ssl_without_a_key_fails_serve_at_once() {
    let pki = Pki::new();
    let mut settings = tls_settings(&pki);
    settings.server_key = None;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = certgate_proxy::serve(
        listener,
        settings,
        certgate_proxy::Runtime::new(),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("private key"), "{err}");
}

/// A client certificate resolver that records the CA names the server sent.
#[derive(Debug)]
struct RecordingResolver {
    key: Arc<rustls::sign::CertifiedKey>,
    hints: std::sync::Mutex<Option<Vec<Vec<u8>>>>,
}

impl rustls::client::ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        *self.hints.lock().unwrap() = Some(root_hint_subjects.iter().map(|h| h.to_vec()).collect());
        Some(self.key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Connects with `identity` and returns the CA names of the CertificateRequest.
async fn ca_names_sent(pki: &Pki, addr: SocketAddr, identity: &common::Identity) -> Vec<Vec<u8>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let signing = provider
        .key_provider
        .load_private_key(identity.key_der())
        .unwrap();
    let resolver = Arc::new(RecordingResolver {
        key: Arc::new(rustls::sign::CertifiedKey::new(identity.chain(), signing)),
        hints: std::sync::Mutex::new(None),
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.root.der.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(resolver.clone());
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    drop(tls);
    let hints = resolver.hints.lock().unwrap().take();
    hints.expect("the server requested a client certificate")
}

#[tokio::test]
async fn ca_names_are_sent_only_with_send_ca_names() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let mut config = mtls_config(
        echo,
        vec![pki.root.trusted(1), pki.intermediate.trusted(2)],
        true,
        ValidationFailure::Handshake,
    );
    let (addr, runtime, _gw) = spawn_gateway(tls_settings(&pki), &config).await;
    let alice = pki.client_cn("alice");
    assert!(ca_names_sent(&pki, addr, &alice).await.is_empty());
    config.client_cert_auth.send_ca_names = true;
    common::apply(&runtime, &config);
    let names = ca_names_sent(&pki, addr, &alice).await;
    assert_eq!(names.len(), 2);
    // Each is the DER of the anchor's subject Name (a SEQUENCE).
    assert!(names.iter().all(|n| n.first() == Some(&0x30)));
}

#[tokio::test]
async fn connection_limit_holds_further_connections_in_the_queue() {
    let pki = Pki::new();
    let echo = spawn_echo().await;
    let config = root_mtls_config(&pki, echo, false, ValidationFailure::Handshake);
    let mut settings = tls_settings(&pki);
    settings.max_connections = 1;
    let (addr, _rt, _gw) = spawn_gateway(settings, &config).await;
    let alice = pki.client_cn("alice");
    let client = client_config(&pki, Some(&alice), &[]);
    // The first connection holds the only slot. How long it takes to be served (connect,
    // handshake, one request) sets the window below: a second connection that the limit
    // did not hold would be served in about that time, so waiting ten times as long (at
    // least 300 ms) cannot pass on a slow machine with the limit broken.
    let started = std::time::Instant::now();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(client.clone())
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut first, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    let first_driver = tokio::spawn(conn);
    let req = Request::get("/1")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(first.send_request(req).await.unwrap().status(), 200);
    let window = (started.elapsed() * 10).max(Duration::from_millis(300));
    // A second connection is not served while the first is open...
    let second_client = TlsClient::new(&pki, Some(&alice));
    let second = tokio::spawn(async move { second_client.get(addr, "/2", &[]).await });
    tokio::time::sleep(window).await;
    assert!(
        !second.is_finished(),
        "a connection over the limit was served"
    );
    // ...and is served as soon as the first closes.
    drop(first);
    first_driver.abort();
    second.await.unwrap().unwrap().assert_identity(&alice);
}

#[tokio::test]
async fn slow_request_head_is_cut_by_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let echo = spawn_echo().await;
    let config = GatewayConfig {
        apis: vec![common::api(1, "/", echo)],
        ..GatewayConfig::default()
    };
    let mut settings = ProxySettings::plain_for_tests();
    settings.header_read_timeout = Duration::from_millis(200);
    let (addr, _rt, _gw) = spawn_gateway(settings, &config).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    // The server closes the connection (the outer timeout only bounds a failing test).
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection stayed open");
}

#[tokio::test]
async fn slow_response_body_outlives_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An upstream that streams a chunked body over about 1.5 s.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = upstream.accept().await.unwrap();
        let mut head = vec![0u8; 4096];
        let _ = conn.read(&mut head).await.unwrap();
        conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            conn.write_all(b"5\r\nchunk\r\n").await.unwrap();
        }
        conn.write_all(b"0\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let config = GatewayConfig {
        apis: vec![common::api(1, "/", upstream_addr)],
        ..GatewayConfig::default()
    };
    let mut settings = ProxySettings::plain_for_tests();
    settings.header_read_timeout = Duration::from_millis(200);
    let (addr, _rt, _gw) = spawn_gateway(settings, &config).await;
    let reply = tokio::time::timeout(
        Duration::from_secs(30),
        common::raw_http(
            addr,
            b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        ),
    )
    .await
    .expect("the response never ended");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // All six chunks arrived: the connection was not cut while the body streamed.
    assert_eq!(reply.matches("\r\nchunk\r\n").count(), 6, "{reply}");
}

/// A gateway with a 500 ms idle timeout and a header-read timeout long enough that it is
/// not what closes an idle connection.
async fn idle_timeout_gateway(pki: &Pki) -> (SocketAddr, impl Drop) {
    let echo = spawn_echo().await;
    let config = root_mtls_config(pki, echo, false, ValidationFailure::Handshake);
    let mut settings = tls_settings(pki);
    settings.idle_timeout = Duration::from_millis(500);
    settings.header_read_timeout = Duration::from_secs(120);
    let (addr, _rt, gw) = spawn_gateway(settings, &config).await;
    (addr, gw)
}

#[tokio::test]
async fn idle_http2_connection_is_closed_after_the_idle_timeout() {
    let pki = Pki::new();
    let (addr, _gw) = idle_timeout_gateway(&pki).await;
    let alice = pki.client_cn("alice");
    let (mut sender, driver) = h2_connect(addr, client_config(&pki, Some(&alice), &[b"h2"])).await;
    let req = Request::get("https://localhost/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), 200);
    let ended = tokio::time::timeout(Duration::from_secs(30), driver).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}

#[tokio::test]
async fn idle_http1_connection_is_closed_after_the_idle_timeout() {
    let pki = Pki::new();
    let (addr, _gw) = idle_timeout_gateway(&pki).await;
    let alice = pki.client_cn("alice");
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config(&pki, Some(&alice), &[b"http/1.1"]))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let req = Request::get("https://localhost/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
    // The gateway closes the idle keep-alive connection (the outer timeout only bounds a
    // failing test).
    let ended = tokio::time::timeout(Duration::from_secs(30), driver).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
}
