//! SPEC §16 `forward_formats`: XFCC and RFC 9440 as an upstream receives them, and the
//! round trip through a second certgate in header mode (it must accept what the first
//! forwards and judge it identically).

mod common;

use certgate_pki::{decode_header, HeaderFormat};
use certgate_store::model::{ForwardFormat, GatewayConfig, ValidationFailure};
use common::*;

fn with_formats(mut config: GatewayConfig, formats: &[ForwardFormat]) -> GatewayConfig {
    config.client_cert_auth.forward_formats = formats.to_vec();
    config
}

fn hex_of(fingerprint: &str) -> &str {
    fingerprint.strip_prefix("sha256:").unwrap()
}

fn b64(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(der)
}

#[tokio::test]
async fn xfcc_and_rfc9440_as_the_upstream_receives_them() {
    let pki = Pki::new();
    let upstream = spawn_echo().await;
    let config = with_formats(
        root_mtls_config(&pki, upstream, true, ValidationFailure::Handshake),
        &[ForwardFormat::Xfcc, ForwardFormat::Rfc9440],
    );
    let (addr, _rt, _gw) = spawn_gateway(tls_settings(&pki), &config).await;
    // Issued by the intermediate: the client sends leaf + intermediate.
    let alice = pki.client(&ClientSpec::new("alice").issued_by(IssuedBy::Intermediate));
    let client = TlsClient::new(&pki, Some(&alice));
    let reply = client
        .get(
            addr,
            "/",
            &[
                ("x-forwarded-client-cert", "Hash=00;Subject=\"CN=mallory\""),
                ("client-cert", ":AAAA:"),
                ("client-cert-chain", ":AAAA:"),
            ],
        )
        .await
        .unwrap();
    reply.assert_echo();
    // Not among the formats: no X-Client-Cert-* headers.
    reply.assert_no_identity();

    let xfcc = reply.upstream_header("x-forwarded-client-cert").unwrap();
    let prefix = format!("Hash={};Cert=\"", hex_of(&alice.fingerprint));
    assert!(xfcc.starts_with(&prefix), "{xfcc}");
    assert!(
        xfcc.contains(&format!(";Subject=\"{}\"", alice.dn)),
        "{xfcc}"
    );
    assert!(!xfcc.contains("mallory"), "{xfcc}");
    let decoded = decode_header(xfcc.as_bytes(), HeaderFormat::Xfcc).unwrap();
    assert_eq!(decoded.leaf, alice.der);
    assert_eq!(decoded.intermediates, alice.intermediates);

    assert_eq!(
        reply.upstream_header("client-cert").unwrap(),
        format!(":{}:", b64(&alice.der))
    );
    assert_eq!(
        reply.upstream_header("client-cert-chain").unwrap(),
        format!(":{}:", b64(&pki.intermediate.der))
    );
}

#[tokio::test]
async fn forward_identity_false_or_an_empty_list_forwards_none() {
    let pki = Pki::new();
    let upstream = spawn_echo().await;
    let alice = pki.client_cn("alice");
    let all = [
        ForwardFormat::XClientCert,
        ForwardFormat::Xfcc,
        ForwardFormat::Rfc9440,
    ];
    let base = root_mtls_config(&pki, upstream, true, ValidationFailure::Handshake);
    let mut off = with_formats(base.clone(), &all);
    off.client_cert_auth.forward_identity = false;
    for config in [with_formats(base.clone(), &[]), off] {
        let (addr, _rt, _gw) = spawn_gateway(tls_settings(&pki), &config).await;
        let reply = TlsClient::new(&pki, Some(&alice))
            .get(addr, "/", &[("client-cert", ":AAAA:")])
            .await
            .unwrap();
        reply.assert_no_identity();
        for name in [
            "x-forwarded-client-cert",
            "client-cert",
            "client-cert-chain",
        ] {
            assert_eq!(reply.upstream_header(name), None, "{name}");
        }
    }
    // The default is today's X-Client-Cert-* alone.
    let (addr, _rt, _gw) = spawn_gateway(tls_settings(&pki), &base).await;
    let reply = TlsClient::new(&pki, Some(&alice))
        .get(addr, "/", &[])
        .await
        .unwrap();
    reply.assert_identity(&alice);
    assert_eq!(reply.upstream_header("x-forwarded-client-cert"), None);
    assert_eq!(reply.upstream_header("client-cert"), None);
}

/// certgate A (mtls, forwarding `format`) → certgate B (header mode reading `header`
/// with `header_format`, trusting the same root, forwarding X-Client-Cert-*) → echo.
async fn round_trip(
    pki: &Pki,
    client: &Identity,
    format: ForwardFormat,
    header: &str,
    header_format: HeaderFormat,
    trusted_dns: &[&str],
) -> Reply {
    let echo = spawn_echo().await;
    let mut b = header_config(echo, header, &["127.0.0.1/32"], true);
    b.client_cert_auth.header_format = header_format;
    b.client_cert_auth.trusted_dns = trusted_dns.iter().map(|s| s.to_string()).collect();
    b.trusted_certificates = vec![pki.root.trusted(1)];
    let (b_addr, _b_rt, _b_gw) =
        spawn_gateway(certgate_proxy::ProxySettings::plain_for_tests(), &b).await;
    let mut a = with_formats(
        root_mtls_config(pki, b_addr, true, ValidationFailure::Http),
        &[format],
    );
    a.client_cert_auth.trusted_dns = trusted_dns.iter().map(|s| s.to_string()).collect();
    let (a_addr, _a_rt, _a_gw) = spawn_gateway(tls_settings(pki), &a).await;
    TlsClient::new(pki, Some(client))
        .get(a_addr, "/", &[])
        .await
        .unwrap()
}

#[tokio::test]
async fn a_second_certgate_in_header_mode_accepts_and_judges_what_the_first_forwards() {
    let pki = Pki::new();
    let direct = pki.client_cn("alice");
    let chained = pki.client(&ClientSpec::new("bob").issued_by(IssuedBy::Intermediate));
    let cases = [
        (
            ForwardFormat::Xfcc,
            "x-forwarded-client-cert",
            HeaderFormat::Auto,
        ),
        (
            ForwardFormat::Xfcc,
            "x-forwarded-client-cert",
            HeaderFormat::Xfcc,
        ),
        (ForwardFormat::Rfc9440, "client-cert", HeaderFormat::Auto),
        (
            ForwardFormat::Rfc9440,
            "client-cert",
            HeaderFormat::Base64Der,
        ),
    ];
    for (format, header, header_format) in cases {
        // Same canonical DN and fingerprint reach B's upstream.
        round_trip(&pki, &direct, format, header, header_format, &[])
            .await
            .assert_identity(&direct);
        // Same DN judgement: a pattern both gateways apply.
        let reply = round_trip(
            &pki,
            &direct,
            format,
            header,
            header_format,
            &["CN=alice,**"],
        )
        .await;
        reply.assert_identity(&direct);
        if format == ForwardFormat::Xfcc {
            // XFCC carries the intermediates (Chain), so B builds the same path.
            round_trip(&pki, &chained, format, header, header_format, &[])
                .await
                .assert_identity(&chained);
        }
    }
}
