//! SPEC §16 CRL expiry: a configured CRL past its nextUpdate is the admin warning
//! `crl_expired` and is judged per `revocation_failure` (strict: 403 `revocation_unknown`;
//! soft: passes, counted in `certgate_revocation_soft_pass_total`).

mod common;

use certgate_store::model::{RevocationFailure, ValidationFailure};
use common::*;
use time::Duration;

fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("install the Prometheus recorder")
    })
}

/// The sum of a counter's series whose labels contain `label` (0 when never counted).
fn counter(name: &str, label: &str) -> u64 {
    metrics()
        .render()
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test]
async fn a_lapsed_crl_is_refused_when_strict_and_passes_counted_when_soft() {
    metrics();
    let pki = Pki::new();
    let upstream = spawn_echo().await;
    let alice = pki.client_cn("alice");
    let mut strict = root_mtls_config(&pki, upstream, true, ValidationFailure::Http);
    strict.apis[0].name = "strict-api".into();
    strict.client_cert_auth.crls = vec![pki.root.crl_next_update(now() - Duration::hours(1))];
    let mut soft = strict.clone();
    soft.apis[0].name = "soft-api".into();
    soft.client_cert_auth.revocation_failure = RevocationFailure::Soft;

    let (addr, _rt, _gw) = spawn_gateway(tls_settings(&pki), &strict).await;
    let client = TlsClient::new(&pki, Some(&alice));
    assert_denied(&client.get(addr, "/", &[]).await.unwrap(), 403);
    assert_eq!(
        counter(
            "certgate_auth_denied_total",
            "reason=\"revocation_unknown\",api=\"strict-api\""
        ) + counter(
            "certgate_auth_denied_total",
            "api=\"strict-api\",reason=\"revocation_unknown\""
        ),
        1
    );

    let (addr, _rt, _gw) = spawn_gateway(tls_settings(&pki), &soft).await;
    for _ in 0..2 {
        client
            .get(addr, "/", &[])
            .await
            .unwrap()
            .assert_identity(&alice);
    }
    assert_eq!(
        counter("certgate_revocation_soft_pass_total", "api=\"soft-api\""),
        2
    );
    // A CRL that is fresh leaves nothing to count.
    let mut fresh = soft.clone();
    fresh.apis[0].name = "fresh-api".into();
    fresh.client_cert_auth.crls = vec![pki.root.crl_next_update(now() + Duration::days(1))];
    let (addr, _rt, _gw) = spawn_gateway(tls_settings(&pki), &fresh).await;
    client
        .get(addr, "/", &[])
        .await
        .unwrap()
        .assert_identity(&alice);
    assert_eq!(
        counter("certgate_revocation_soft_pass_total", "api=\"fresh-api\""),
        0
    );
    // The next update of each configured CRL is a gauge.
    assert!(
        metrics()
            .render()
            .lines()
            .any(|l| l.starts_with("certgate_crl_next_update_seconds{")),
        "{}",
        metrics().render()
    );
}

#[test]
fn the_admin_api_warns_crl_expired_for_a_lapsed_crl_only() {
    let pki = Pki::new();
    let upstream = "127.0.0.1:9".parse().unwrap();
    let mut config = root_mtls_config(&pki, upstream, true, ValidationFailure::Handshake);
    config.client_cert_auth.crls = vec![
        pki.root.crl_next_update(now() + Duration::days(1)),
        pki.root.crl_next_update(now() - Duration::hours(1)),
    ];
    let warnings = certgate_store::crl_warnings(&config, now());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].code, "crl_expired");
    assert!(
        warnings[0].message.starts_with("crls[1] "),
        "{}",
        warnings[0].message
    );
    config.client_cert_auth.crls.pop();
    assert!(certgate_store::crl_warnings(&config, now()).is_empty());
}
