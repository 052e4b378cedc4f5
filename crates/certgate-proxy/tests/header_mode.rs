//! Header mode end to end (SPEC §2, §3, §6, §7): the test client plays the TLS-terminating
//! load balancer on 127.0.0.1 and sends the client certificate in a request header, in each
//! form the common load balancers use; a certgate listener (plain HTTP) evaluates it and
//! forwards to the echo upstream, whose JSON answer shows what certgate forwarded.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use certgate_proxy::{ProxySettings, Runtime};
use certgate_store::model::GatewayConfig;
use common::*;

/// The header nginx is usually configured to send (`proxy_set_header X-SSL-Client-Cert …`).
const NGINX_HEADER: &str = "X-SSL-Client-Cert";
/// The load balancer's address as the gateway sees it.
const LOOPBACK: &[&str] = &["127.0.0.1/32"];

struct Env {
    pki: Pki,
    echo: SocketAddr,
}

async fn env() -> Env {
    Env {
        pki: Pki::new(),
        echo: spawn_echo().await,
    }
}

async fn gateway(config: &GatewayConfig) -> (SocketAddr, Arc<Runtime>, GatewayHandle) {
    spawn_gateway(ProxySettings::plain_for_tests(), config).await
}

/// A header-mode gateway with `header` from 127.0.0.1, certificate required, no trust table.
async fn header_gateway(env: &Env, header: &str) -> (SocketAddr, Arc<Runtime>, GatewayHandle) {
    gateway(&header_config(env.echo, header, LOOPBACK, true)).await
}

/// Sends `value` in `header` and expects the echo's 200 with `identity` forwarded and the
/// certificate header removed.
async fn assert_accepted(addr: SocketAddr, header: &str, value: &str, identity: &Identity) {
    let reply = plain_get(addr, "/", &[(header, value)]).await;
    reply.assert_identity(identity);
    assert_eq!(
        reply.upstream_header(&header.to_ascii_lowercase()),
        None,
        "the certificate header reached the upstream"
    );
}

/// Base64 of the DER of several certificates, comma separated (Traefik's list).
fn b64_list(certs: &[&str]) -> String {
    certs
        .iter()
        .map(|pem| pem_body(pem))
        .collect::<Vec<_>>()
        .join(",")
}

/// Go's `url.QueryEscape` (Traefik v2): unreserved kept, space as `+`, the rest `%XX`.
fn go_query_escape(text: &str) -> String {
    percent_encode(text, b"-._~").replace("%20", "+")
}

// ---------------------------------------------------------------------------------------------
// The formats of SPEC §6, each accepted with `header_format = auto`
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn nginx_ssl_client_escaped_cert_url_encoded_pem() {
    let env = env().await;
    let (addr, _runtime, _gw) = header_gateway(&env, NGINX_HEADER).await;
    let alice = env.pki.client_cn("alice");
    let value = nginx_escaped(&alice.pem);
    assert!(
        value.starts_with("-----BEGIN%20CERTIFICATE-----%0A"),
        "{value}"
    );
    assert_accepted(addr, NGINX_HEADER, &value, &alice).await;
}

#[tokio::test]
async fn nginx_ssl_client_cert_tab_continued_pem() {
    // nginx's `$ssl_client_cert` is the PEM with a tab before every line but the first
    // ("\n\t" between lines). A header value cannot carry the line feeds, so what arrives is
    // the tab-continued PEM with the line feeds gone, or with each fold made a space.
    let env = env().await;
    let (addr, _runtime, _gw) = header_gateway(&env, NGINX_HEADER).await;
    let alice = env.pki.client_cn("alice");
    let lines: Vec<&str> = alice.pem.lines().collect();
    let tabbed = lines.join("\t");
    assert_accepted(addr, NGINX_HEADER, &tabbed, &alice).await;
    let spaced = lines.join(" ");
    assert_accepted(addr, NGINX_HEADER, &spaced, &alice).await;
    let space_and_tab = lines.join(" \t");
    assert_accepted(addr, NGINX_HEADER, &space_and_tab, &alice).await;
}

#[tokio::test]
async fn nginx_ssl_client_cert_raw_obs_fold_is_refused_by_http_parser() {
    // nginx sends `$ssl_client_cert` verbatim, i.e. as an obsolete line folding (RFC 9112
    // §5.2). certgate's HTTP/1.1 parser refuses obs-fold in requests with 400 before any
    // certificate logic runs: use `$ssl_client_escaped_cert` (as nginx's docs advise).
    let env = env().await;
    let (addr, _runtime, _gw) = header_gateway(&env, NGINX_HEADER).await;
    let alice = env.pki.client_cn("alice");
    let folded = alice
        .pem
        .trim_end()
        .lines()
        .collect::<Vec<_>>()
        .join("\r\n\t");
    let request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\n{NGINX_HEADER}: {folded}\r\nConnection: close\r\n\r\n"
    );
    let response = raw_http(addr, request.as_bytes()).await;
    assert!(
        response.starts_with("HTTP/1.1 400 "),
        "expected 400 for an obs-fold header, got {response:?}"
    );
}

#[tokio::test]
async fn envoy_xfcc_leftmost_element_wins_with_quoted_values() {
    let env = env().await;
    let header = "x-forwarded-client-cert";
    let (addr, _runtime, _gw) = header_gateway(&env, header).await;
    let alice = env.pki.client_cn("alice");
    let bob = env.pki.client_cn("bob");
    let element = |id: &Identity, by: &str| {
        format!(
            "By={by};Hash={hash};Cert=\"{cert}\";Subject=\"{subject}\";URI=spiffe://example.org/{cn};DNS=client.example.org",
            hash = id.fingerprint.trim_start_matches("sha256:"),
            cert = nginx_escaped(&id.pem),
            subject = id.dn,
            cn = if id.dn.starts_with("CN=alice") { "alice" } else { "bob" },
        )
    };
    // Envoy appends its element at the right: the leftmost is the one the proxy nearest the
    // client added, and the one that counts. The quoted Subject holds commas that must not
    // split the list.
    let value = format!(
        "{},{}",
        element(&alice, "spiffe://example.org/edge"),
        element(&bob, "spiffe://example.org/inner")
    );
    assert_accepted(addr, header, &value, &alice).await;
    let value = format!(
        "{},{}",
        element(&bob, "spiffe://example.org/edge"),
        element(&alice, "spiffe://example.org/inner")
    );
    assert_accepted(addr, header, &value, &bob).await;
}

#[tokio::test]
async fn envoy_xfcc_chain_brings_the_intermediate() {
    // Envoy's `Chain` is the whole client chain, leaf included, URL-encoded PEM.
    let env = env().await;
    let header = "X-Forwarded-Client-Cert";
    let mut config = header_config(env.echo, header, LOOPBACK, true);
    config.ssl_enabled = true;
    config.trusted_certificates = vec![env.pki.root.trusted(1)];
    let (addr, _runtime, _gw) = gateway(&config).await;
    let carol = env
        .pki
        .client(&ClientSpec::new("carol").issued_by(IssuedBy::Intermediate));
    let value = format!(
        "Hash={};Cert=\"{}\";Chain=\"{}\";Subject=\"{}\"",
        carol.fingerprint.trim_start_matches("sha256:"),
        nginx_escaped(&carol.pem),
        nginx_escaped(&carol.chain_pem),
        carol.dn
    );
    assert_accepted(addr, header, &value, &carol).await;
    // Without the Chain the intermediate is missing and the chain does not verify.
    let value = format!("Cert=\"{}\"", nginx_escaped(&carol.pem));
    let reply = plain_get(addr, "/", &[(header, &value)]).await;
    assert_denied(&reply, 403);
}

#[tokio::test]
async fn traefik_v2_url_escaped_base64_list_with_intermediate() {
    let env = env().await;
    let header = "X-Forwarded-Tls-Client-Cert";
    let mut config = header_config(env.echo, header, LOOPBACK, true);
    config.ssl_enabled = true;
    config.trusted_certificates = vec![env.pki.root.trusted(1)];
    let (addr, _runtime, _gw) = gateway(&config).await;
    let dave = env
        .pki
        .client(&ClientSpec::new("dave").issued_by(IssuedBy::Intermediate));
    let value = go_query_escape(&b64_list(&[&dave.pem, &env.pki.intermediate.pem]));
    assert!(value.contains("%2C"), "the list separator is escaped too");
    assert_accepted(addr, header, &value, &dave).await;
}

#[tokio::test]
async fn traefik_v3_plain_base64_list() {
    let env = env().await;
    let header = "X-Forwarded-Tls-Client-Cert";
    let mut config = header_config(env.echo, header, LOOPBACK, true);
    config.ssl_enabled = true;
    config.trusted_certificates = vec![env.pki.root.trusted(1)];
    let (addr, _runtime, _gw) = gateway(&config).await;
    let erin = env
        .pki
        .client(&ClientSpec::new("erin").issued_by(IssuedBy::Intermediate));
    let value = b64_list(&[&erin.pem, &env.pki.intermediate.pem]);
    assert_accepted(addr, header, &value, &erin).await;
    // A single certificate (no intermediates needed) works as well.
    let frank = env.pki.client_cn("frank");
    assert_accepted(addr, header, &frank.b64(), &frank).await;
}

#[tokio::test]
async fn aws_alb_url_encoded_pem_keeps_plus() {
    let env = env().await;
    let header = "X-Amzn-Mtls-Clientcert";
    let (addr, _runtime, _gw) = header_gateway(&env, header).await;
    // The case that matters is a `+` in the base64: percent-decoding must not make it a space.
    let mut alice = env.pki.client_cn("alice");
    for _ in 0..64 {
        if alice.b64().contains('+') {
            break;
        }
        alice = env.pki.client_cn("alice");
    }
    let value = alb_escaped(&alice.pem);
    assert!(value.contains('+'), "no '+' in 64 certificates: {value}");
    assert!(value.contains("%0A") && value.contains("%20"));
    assert_accepted(addr, header, &value, &alice).await;
}

#[tokio::test]
async fn azure_application_gateway_base64_der() {
    let env = env().await;
    let header = "X-ARR-ClientCert";
    let (addr, _runtime, _gw) = header_gateway(&env, header).await;
    let alice = env.pki.client_cn("alice");
    assert_accepted(addr, header, &alice.b64(), &alice).await;
}

#[tokio::test]
async fn kong_base64_padded_unpadded_and_url_safe() {
    let env = env().await;
    let header = "X-Client-Certificate";
    let (addr, _runtime, _gw) = header_gateway(&env, header).await;
    // Pick a certificate whose base64 needs padding and uses `+` or `/`, so every variant
    // differs from the standard form.
    let mut alice = env.pki.client_cn("alice");
    for _ in 0..64 {
        let b64 = alice.b64();
        if b64.ends_with('=') && (b64.contains('+') || b64.contains('/')) {
            break;
        }
        alice = env.pki.client_cn("alice");
    }
    let padded = alice.b64();
    assert!(padded.ends_with('='), "no padded base64 in 64 certificates");
    let unpadded = padded.trim_end_matches('=').to_string();
    let url_safe = b64_url_safe(&padded);
    let url_safe_unpadded = b64_url_safe(&unpadded);
    for value in [&padded, &unpadded, &url_safe, &url_safe_unpadded] {
        assert_accepted(addr, header, value, &alice).await;
    }
}

#[tokio::test]
async fn rfc9440_client_cert_byte_sequence() {
    let env = env().await;
    let header = "Client-Cert";
    let (addr, _runtime, _gw) = header_gateway(&env, header).await;
    let alice = env.pki.client_cn("alice");
    let value = format!(":{}:", alice.b64());
    assert_accepted(addr, header, &value, &alice).await;
}

// ---------------------------------------------------------------------------------------------
// Malformed, oversized, untrusted peers, header name
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_value_is_403_even_when_not_required() {
    let env = env().await;
    // Not required: a presented certificate must still be valid (SPEC §3 step 5).
    let (addr, _runtime, _gw) =
        gateway(&header_config(env.echo, NGINX_HEADER, LOOPBACK, false)).await;
    let alice = env.pki.client_cn("alice");
    let b64 = alice.b64();
    let truncated_der = &b64[..b64.len() / 2];
    let broken_pem = alice.pem.replace(&b64[10..30], "!!!!!!!!!!!!!!!!!!!!");
    let malformed = [
        "not a certificate".to_string(),
        ":@@@@:".to_string(),
        "-----BEGIN CERTIFICATE-----%0AAAAA%0A-----END CERTIFICATE-----".to_string(),
        truncated_der.to_string(),
        nginx_escaped(&broken_pem),
        "Cert=\"unterminated".to_string(),
        "%ZZ%ZZ".to_string(),
    ];
    for value in &malformed {
        let reply = plain_get(addr, "/", &[(NGINX_HEADER, value)]).await;
        assert_denied(&reply, 403);
    }
    // Without the header the request passes (not required), with no identity.
    let reply = plain_get(addr, "/", &[]).await;
    reply.assert_no_identity();
}

#[tokio::test]
async fn value_over_64_kib_is_403_and_over_max_header_bytes_is_431() {
    // SPEC §6: a value longer than 64 KiB is malformed → 403. The listener's own limit on a
    // request head (`max_header_bytes`, 96 KiB by default) is larger, so such a value reaches
    // the decoder. A head well over `max_header_bytes` never reaches certgate's evaluation:
    // the HTTP/1.1 parser answers 431 Request Header Fields Too Large.
    const LIMIT: usize = 64 * 1024;
    let env = env().await;
    let (addr, _runtime, _gw) = header_gateway(&env, NGINX_HEADER).await;
    // One certificate made big with a padding extension, sent as tab-joined PEM; find the
    // padding where the value crosses 64 KiB (bounded binary search).
    let value_for = |padding: usize| {
        let mut spec = ClientSpec::new("big");
        spec.padding = padding;
        let id = env.pki.client(&spec);
        let value = id.pem.trim_end().lines().collect::<Vec<_>>().join("\t");
        (id, value)
    };
    // Keys and signatures vary in length by a byte or two: keep the certificates measured.
    let (mut low, mut high) = (40_000usize, 52_000usize);
    let (mut under_id, mut under) = value_for(low);
    let (_, mut over) = value_for(high);
    assert!(under.len() <= LIMIT && over.len() > LIMIT);
    for _ in 0..20 {
        if high - low <= 1 {
            break;
        }
        let mid = (low + high) / 2;
        let (id, value) = value_for(mid);
        if value.len() <= LIMIT {
            (low, under_id, under) = (mid, id, value);
        } else {
            (high, over) = (mid, value);
        }
    }
    assert!(
        under.len() <= LIMIT && under.len() > LIMIT - 16,
        "{}",
        under.len()
    );
    assert!(
        over.len() > LIMIT && over.len() < LIMIT + 16,
        "{}",
        over.len()
    );
    // At most 64 KiB: decoded and accepted (no trust table: dates and DN only).
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &under)]).await;
    reply.assert_identity(&under_id);
    // A few bytes more: malformed.
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &over)]).await;
    assert_denied(&reply, 403);

    // hyper enforces `max_header_bytes` through its read buffer, which can overshoot the
    // configured size (a 120 KB head passed a 96 KiB limit when measured), so the 431 is
    // asserted well past the limit.
    let settings = ProxySettings::plain_for_tests();
    let too_big = "A".repeat(4 * settings.max_header_bytes);
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &too_big)]).await;
    assert_eq!(reply.status, 431, "{:?}", reply.body);
}

#[tokio::test]
async fn header_from_untrusted_peer_is_stripped_and_ignored() {
    let env = env().await;
    let alice = env.pki.client_cn("alice");
    let value = nginx_escaped(&alice.pem);
    // The only trusted proxies are in 10.0.0.0/8; the test client is 127.0.0.1.
    let (addr, runtime, _gw) = gateway(&header_config(
        env.echo,
        NGINX_HEADER,
        &["10.0.0.0/8"],
        true,
    ))
    .await;
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &value)]).await;
    assert_denied(&reply, 401);
    // Not required: the request passes, without the header and without an identity.
    apply(
        &runtime,
        &header_config(env.echo, NGINX_HEADER, &["10.0.0.0/8"], false),
    );
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &value)]).await;
    reply.assert_no_identity();
    assert_eq!(reply.upstream_header("x-ssl-client-cert"), None);
    // Even an undecodable value from an untrusted peer is ignored, not judged.
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, "garbage")]).await;
    reply.assert_no_identity();
    assert_eq!(reply.upstream_header("x-ssl-client-cert"), None);
}

#[tokio::test]
async fn empty_trusted_proxies_honours_any_peer() {
    let env = env().await;
    let (addr, _runtime, _gw) = gateway(&header_config(env.echo, NGINX_HEADER, &[], true)).await;
    let alice = env.pki.client_cn("alice");
    assert_accepted(addr, NGINX_HEADER, &nginx_escaped(&alice.pem), &alice).await;
}

#[tokio::test]
async fn header_name_is_matched_case_insensitively() {
    let env = env().await;
    // Configured in one spelling, sent in another (raw bytes: hyper's client would lowercase).
    let (addr, _runtime, _gw) = header_gateway(&env, "x-Ssl-CLIENT-cert").await;
    let alice = env.pki.client_cn("alice");
    let request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-SSL-CLIENT-CERT: {}\r\nConnection: close\r\n\r\n",
        nginx_escaped(&alice.pem)
    );
    let response = raw_http(addr, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    let body = response.split_once("\r\n\r\n").unwrap().1;
    let json: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(json["headers"]["x-client-cert-subject"], alice.dn.as_str());
    assert!(json["headers"].get("x-ssl-client-cert").is_none(), "{json}");
    // And through hyper (lowercase on the wire).
    assert_accepted(
        addr,
        "X-SSL-Client-Cert",
        &nginx_escaped(&alice.pem),
        &alice,
    )
    .await;
}

#[tokio::test]
async fn two_certificate_header_fields_are_403() {
    // A load balancer that appends its header instead of replacing it lets the client's own
    // field through first. Header mode has no proof of possession (a certificate is public),
    // so honouring either field would let a client pose as anyone: two fields are ambiguous
    // and refused, whatever their order.
    let env = env().await;
    let (addr, _runtime, _gw) = header_gateway(&env, NGINX_HEADER).await;
    let alice = env.pki.client_cn("alice");
    let mallory = env.pki.client_cn("mallory");
    for (first, second) in [(&alice, &mallory), (&mallory, &alice)] {
        let request = format!(
            "GET / HTTP/1.1\r\nHost: localhost\r\n{NGINX_HEADER}: {}\r\n{NGINX_HEADER}: {}\r\nConnection: close\r\n\r\n",
            nginx_escaped(&first.pem),
            nginx_escaped(&second.pem)
        );
        let response = raw_http(addr, request.as_bytes()).await;
        assert!(
            response.starts_with("HTTP/1.1 403 "),
            "two certificate fields must be refused, got: {response}"
        );
        assert!(response.contains(MSG_403), "{response}");
    }
}

#[tokio::test]
async fn spoofed_identity_headers_are_stripped() {
    let env = env().await;
    let (addr, _runtime, _gw) =
        gateway(&header_config(env.echo, NGINX_HEADER, LOOPBACK, false)).await;
    let alice = env.pki.client_cn("alice");
    let spoofed = [
        ("X-Client-Cert-Subject", "CN=admin,O=Example Corp,C=US"),
        ("X-Client-Cert-Issuer", "CN=Evil CA"),
        ("X-Client-Cert-Serial", "01"),
        ("X-Client-Cert-Fingerprint", "sha256:00"),
        ("X-Client-Cert-Not-After", "2999-01-01T00:00:00Z"),
    ];
    // With a certificate: the forwarded identity is the verified one.
    let value = nginx_escaped(&alice.pem);
    let mut headers = spoofed.to_vec();
    headers.push((NGINX_HEADER, &value));
    let reply = plain_get(addr, "/", &headers).await;
    reply.assert_identity(&alice);
    // Without one (not required): no identity header reaches the upstream at all.
    let reply = plain_get(addr, "/", &spoofed).await;
    reply.assert_no_identity();
}

#[tokio::test]
async fn forward_identity_false_sends_no_identity_headers() {
    let env = env().await;
    let mut config = header_config(env.echo, NGINX_HEADER, LOOPBACK, true);
    config.client_cert_auth.forward_identity = false;
    let (addr, _runtime, _gw) = gateway(&config).await;
    let alice = env.pki.client_cn("alice");
    let reply = plain_get(
        addr,
        "/",
        &[
            (NGINX_HEADER, &nginx_escaped(&alice.pem)),
            ("X-Client-Cert-Subject", "CN=admin"),
        ],
    )
    .await;
    reply.assert_no_identity();
    assert_eq!(reply.upstream_header("x-ssl-client-cert"), None);
}

// ---------------------------------------------------------------------------------------------
// What is judged
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_certificate_when_required_is_401() {
    let env = env().await;
    let (addr, _runtime, _gw) = header_gateway(&env, NGINX_HEADER).await;
    assert_denied(&plain_get(addr, "/", &[]).await, 401);
    // An empty value is how a load balancer says "no certificate": 401 when required.
    for empty in ["", "  "] {
        assert_denied(&plain_get(addr, "/", &[(NGINX_HEADER, empty)]).await, 401);
    }
}

#[tokio::test]
async fn empty_value_when_not_required_passes_without_identity() {
    let env = env().await;
    let (addr, _runtime, _gw) =
        gateway(&header_config(env.echo, NGINX_HEADER, LOOPBACK, false)).await;
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, "")]).await;
    assert_eq!(reply.status, 200);
    reply.assert_no_identity();
    assert_eq!(reply.upstream_header("x-ssl-client-cert"), None);
}

#[tokio::test]
async fn revoked_by_crl_is_403_without_a_trust_table_too() {
    let env = env().await;
    let alice = env.pki.client_cn("alice");
    let bob = env.pki.client_cn("bob");
    let mut config = header_config(env.echo, NGINX_HEADER, LOOPBACK, true);
    config.client_cert_auth.crls = vec![env.pki.root.crl(&[&alice.serial_hex])];
    let (addr, _runtime, _gw) = gateway(&config).await;
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &nginx_escaped(&alice.pem))]).await;
    assert_denied(&reply, 403);
    assert_accepted(addr, NGINX_HEADER, &nginx_escaped(&bob.pem), &bob).await;
}

#[tokio::test]
async fn empty_trust_table_checks_dates_and_dn_only() {
    let env = env().await;
    let mut config = header_config(env.echo, NGINX_HEADER, LOOPBACK, true);
    config.client_cert_auth.trusted_dns = vec!["CN=*,O=Example Corp,C=US".into()];
    let (addr, _runtime, _gw) = gateway(&config).await;
    // Any issuer: the load balancer vouched for the chain.
    let stranger = env
        .pki
        .client(&ClientSpec::new("stranger").issued_by(IssuedBy::Untrusted));
    assert_accepted(addr, NGINX_HEADER, &nginx_escaped(&stranger.pem), &stranger).await;
    // Dates still count.
    for spec in [
        ClientSpec::new("old").expired(),
        ClientSpec::new("early").not_yet_valid(),
    ] {
        let id = env.pki.client(&spec);
        let reply = plain_get(addr, "/", &[(NGINX_HEADER, &nginx_escaped(&id.pem))]).await;
        assert_denied(&reply, 403);
    }
    // And the DN.
    let mut spec = ClientSpec::new("mallory");
    spec.dn[1].1 = "Other Corp".into();
    let mallory = env.pki.client(&spec);
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &nginx_escaped(&mallory.pem))]).await;
    assert_denied(&reply, 403);
}

#[tokio::test]
async fn non_empty_trust_table_judges_the_chain() {
    let env = env().await;
    let mut config = header_config(env.echo, NGINX_HEADER, LOOPBACK, true);
    config.ssl_enabled = true;
    config.trusted_certificates = vec![env.pki.root.trusted(1)];
    let (addr, _runtime, _gw) = gateway(&config).await;

    let direct = env.pki.client_cn("direct");
    assert_accepted(addr, NGINX_HEADER, &nginx_escaped(&direct.pem), &direct).await;

    // Intermediates come in the header, after the leaf.
    let via = env
        .pki
        .client(&ClientSpec::new("via").issued_by(IssuedBy::Intermediate));
    assert_accepted(addr, NGINX_HEADER, &nginx_escaped(&via.chain_pem), &via).await;
    // Leaf alone: the intermediate is missing → the chain does not verify.
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &nginx_escaped(&via.pem))]).await;
    assert_denied(&reply, 403);

    // Another CA's certificate.
    let stranger = env
        .pki
        .client(&ClientSpec::new("stranger").issued_by(IssuedBy::Untrusted));
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &nginx_escaped(&stranger.pem))]).await;
    assert_denied(&reply, 403);

    // The trust anchor itself is not a client certificate that chains to... itself plus a
    // bogus "intermediate" (another root) does not help a stranger either.
    let bogus = format!("{}{}", stranger.pem, env.pki.untrusted_root.pem);
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &nginx_escaped(&bogus))]).await;
    assert_denied(&reply, 403);
}

#[tokio::test]
async fn expired_and_not_yet_valid_are_403_with_a_trust_table() {
    let env = env().await;
    let mut config = header_config(env.echo, NGINX_HEADER, LOOPBACK, false);
    config.ssl_enabled = true;
    config.trusted_certificates = vec![env.pki.root.trusted(1)];
    let (addr, _runtime, _gw) = gateway(&config).await;
    for spec in [
        ClientSpec::new("old").expired(),
        ClientSpec::new("early").not_yet_valid(),
    ] {
        let id = env.pki.client(&spec);
        let reply = plain_get(addr, "/", &[(NGINX_HEADER, &nginx_escaped(&id.pem))]).await;
        assert_denied(&reply, 403);
    }
}

#[tokio::test]
async fn revoked_by_crl_is_403() {
    let env = env().await;
    let alice = env.pki.client_cn("alice");
    let bob = env.pki.client_cn("bob");
    let carol = env
        .pki
        .client(&ClientSpec::new("carol").issued_by(IssuedBy::Intermediate));
    let mut config = header_config(env.echo, NGINX_HEADER, LOOPBACK, true);
    config.ssl_enabled = true;
    config.trusted_certificates = vec![env.pki.root.trusted(1)];
    config.client_cert_auth.crls = vec![
        env.pki.root.crl(&[&alice.serial_hex]),
        env.pki.intermediate.crl(&[&carol.serial_hex]),
    ];
    let (addr, _runtime, _gw) = gateway(&config).await;
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &nginx_escaped(&alice.pem))]).await;
    assert_denied(&reply, 403);
    let reply = plain_get(
        addr,
        "/",
        &[(NGINX_HEADER, &nginx_escaped(&carol.chain_pem))],
    )
    .await;
    assert_denied(&reply, 403);
    // Not revoked: passes.
    assert_accepted(addr, NGINX_HEADER, &nginx_escaped(&bob.pem), &bob).await;
}

#[tokio::test]
async fn dn_mismatch_is_403() {
    let env = env().await;
    let mut config = header_config(env.echo, NGINX_HEADER, LOOPBACK, true);
    config.client_cert_auth.trusted_dns = vec!["CN=alice,**".into(), "CN=bob,O=*,C=US".into()];
    let (addr, _runtime, _gw) = gateway(&config).await;
    let alice = env.pki.client_cn("alice");
    let bob = env.pki.client_cn("bob");
    let mallory = env.pki.client_cn("mallory");
    assert_accepted(addr, NGINX_HEADER, &nginx_escaped(&alice.pem), &alice).await;
    assert_accepted(addr, NGINX_HEADER, &nginx_escaped(&bob.pem), &bob).await;
    let reply = plain_get(addr, "/", &[(NGINX_HEADER, &nginx_escaped(&mallory.pem))]).await;
    assert_denied(&reply, 403);
}

#[tokio::test]
async fn api_override_of_required_and_trusted_dns() {
    let env = env().await;
    let mut config = header_config(env.echo, NGINX_HEADER, LOOPBACK, true);
    config.client_cert_auth.trusted_dns = vec!["CN=bob,**".into()];
    config.apis = vec![
        api(1, "/", env.echo),
        // Certificate optional here.
        api_with_override(2, "/open", env.echo, Some(false), None),
        // Only alice here (the list replaces the gateway's).
        api_with_override(3, "/alice", env.echo, None, Some(vec!["CN=alice,**"])),
        // An explicit empty list: no DN restriction.
        api_with_override(4, "/any", env.echo, None, Some(vec![])),
    ];
    let (addr, _runtime, _gw) = gateway(&config).await;
    let alice = env.pki.client_cn("alice");
    let bob = env.pki.client_cn("bob");
    let alice_v = nginx_escaped(&alice.pem);
    let bob_v = nginx_escaped(&bob.pem);
    let with = |value: &str| vec![(NGINX_HEADER, value.to_string())];

    // required: inherited (true) vs overridden (false).
    assert_denied(&plain_get(addr, "/", &[]).await, 401);
    plain_get(addr, "/open/x", &[]).await.assert_no_identity();
    assert_denied(&plain_get(addr, "/alice", &[]).await, 401);
    // trusted_dns: inherited (bob), replaced (alice), emptied (anyone).
    let get = |path: &'static str, headers: Vec<(&'static str, String)>| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        plain_get(addr, path, &headers).await
    };
    assert_denied(&get("/", with(&alice_v)).await, 403);
    get("/", with(&bob_v)).await.assert_identity(&bob);
    get("/alice/orders", with(&alice_v))
        .await
        .assert_identity(&alice);
    assert_denied(&get("/alice/orders", with(&bob_v)).await, 403);
    get("/any", with(&alice_v)).await.assert_identity(&alice);
    get("/any", with(&bob_v)).await.assert_identity(&bob);
    // /open inherits the gateway's DNs: a presented certificate must still match.
    assert_denied(&get("/open", with(&alice_v)).await, 403);
    get("/open", with(&bob_v)).await.assert_identity(&bob);
}

// ---------------------------------------------------------------------------------------------
// X-Forwarded-*
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn x_forwarded_for_replaced_from_untrusted_peer_appended_from_trusted() {
    let env = env().await;
    let alice = env.pki.client_cn("alice");
    let value = nginx_escaped(&alice.pem);

    // Untrusted peer: the incoming X-Forwarded-For is replaced by the peer address.
    let (addr, runtime, _gw) = gateway(&header_config(
        env.echo,
        NGINX_HEADER,
        &["10.0.0.0/8"],
        false,
    ))
    .await;
    let reply = plain_get(addr, "/", &[("X-Forwarded-For", "203.0.113.7")]).await;
    let json = reply.assert_echo();
    assert_eq!(json["headers"]["x-forwarded-for"], "127.0.0.1", "{json}");
    assert_eq!(json["headers"]["x-forwarded-proto"], "http", "{json}");
    assert_eq!(json["headers"]["x-forwarded-host"], "localhost", "{json}");

    // Trusted peer: appended.
    apply(
        &runtime,
        &header_config(env.echo, NGINX_HEADER, LOOPBACK, true),
    );
    let reply = plain_get(
        addr,
        "/",
        &[("X-Forwarded-For", "203.0.113.7"), (NGINX_HEADER, &value)],
    )
    .await;
    reply.assert_identity(&alice);
    assert_eq!(
        reply.upstream_header("x-forwarded-for").as_deref(),
        Some("203.0.113.7, 127.0.0.1")
    );
}
