//! Request evaluation and routing without sockets: every row of SPEC §3 (steps 1-5),
//! per-API overrides, longest-prefix routing on a `/` boundary, and the generations a
//! config change moves (trust, mode).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use certgate_proxy::{
    evaluate, CertSource, ClientIdentity, Decision, DenialReason, IdentityVerdict, Presented,
    Runtime,
};
use certgate_store::model::{CertAuthMode, GatewayConfig, ValidationFailure};
use common::{api, api_with_override, ClientSpec, Identity, IssuedBy, Pki};
use http::StatusCode;

fn upstream() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

fn runtime(config: &GatewayConfig) -> Arc<Runtime> {
    let rt = Runtime::new();
    rt.apply(config, true).unwrap();
    rt
}

fn mtls(pki: &Pki, required: bool) -> GatewayConfig {
    common::mtls_config(
        upstream(),
        vec![pki.root.trusted(1)],
        required,
        ValidationFailure::Http,
    )
}

fn judged(rt: &Runtime, id: &Identity, source: CertSource) -> ClientIdentity {
    ClientIdentity::judge(id.chain(), source, &rt.snapshot().trust)
}

/// Evaluates a request for `path` with the given certificate.
fn eval(rt: &Runtime, path: &str, presented: Presented<'_>) -> Decision {
    let snap = rt.snapshot();
    let route = snap.routes.lookup(path).cloned();
    evaluate(&snap, route.as_deref(), presented)
}

fn deny(status: u16, reason: DenialReason) -> Decision {
    Decision::Deny {
        status: StatusCode::from_u16(status).unwrap(),
        reason,
    }
}

#[test]
fn denial_reasons_render_as_the_counter_labels() {
    let all = [
        (DenialReason::NoCertificate, "no_certificate"),
        (DenialReason::Untrusted, "untrusted"),
        (DenialReason::Expired, "expired"),
        (DenialReason::NotYetValid, "not_yet_valid"),
        (DenialReason::Revoked, "revoked"),
        (DenialReason::MalformedHeader, "malformed_header"),
        (DenialReason::DnMismatch, "dn_mismatch"),
        (DenialReason::UntrustedProxy, "untrusted_proxy"),
        (
            DenialReason::TruststoreUnavailable,
            "truststore_unavailable",
        ),
    ];
    for (reason, label) in all {
        assert_eq!(reason.as_str(), label);
    }
}

#[test]
fn empty_runtime_routes_nothing_and_checks_nothing() {
    let rt = Runtime::new();
    assert_eq!(rt.snapshot().mode, CertAuthMode::None);
    assert_eq!(eval(&rt, "/", Presented::None), Decision::NotFound);
    assert_eq!(eval(&rt, "/anything", Presented::None), Decision::NotFound);
}

#[test]
fn mode_none_checks_nothing_whatever_required_and_trusted_dns_say() {
    let pki = Pki::new();
    let mut config = mtls(&pki, true);
    config.client_cert_auth.mode = CertAuthMode::None;
    config.client_cert_auth.trusted_dns = vec!["CN=nobody".into()];
    let rt = runtime(&config);
    assert_eq!(eval(&rt, "/x", Presented::None), Decision::Proxy);
    let stranger = judged(
        &rt,
        &pki.client(&ClientSpec::new("s").issued_by(IssuedBy::Untrusted)),
        CertSource::Mtls,
    );
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&stranger)),
        Decision::Proxy
    );
}

#[test]
fn no_certificate_is_401_when_required_and_passes_otherwise() {
    let pki = Pki::new();
    let rt = runtime(&mtls(&pki, true));
    assert_eq!(
        eval(&rt, "/x", Presented::None),
        deny(401, DenialReason::NoCertificate)
    );
    let rt = runtime(&mtls(&pki, false));
    assert_eq!(eval(&rt, "/x", Presented::None), Decision::Proxy);
}

#[test]
fn trusted_certificate_passes_and_identity_is_parsed() {
    let pki = Pki::new();
    let rt = runtime(&mtls(&pki, true));
    let alice = pki.client_cn("alice");
    let id = judged(&rt, &alice, CertSource::Mtls);
    assert_eq!(id.verdict, IdentityVerdict::Trusted);
    assert_eq!(id.info.as_ref().unwrap().subject.to_string(), alice.dn);
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&id)),
        Decision::Proxy
    );
}

#[test]
fn a_presented_certificate_must_be_valid_even_when_not_required() {
    let pki = Pki::new();
    let alice = pki.client_cn("alice");
    let cases = [
        (
            pki.client(&ClientSpec::new("u").issued_by(IssuedBy::Untrusted)),
            DenialReason::Untrusted,
        ),
        (
            pki.client(&ClientSpec::new("e").expired()),
            DenialReason::Expired,
        ),
        (
            pki.client(&ClientSpec::new("n").not_yet_valid()),
            DenialReason::NotYetValid,
        ),
    ];
    for required in [true, false] {
        let rt = runtime(&mtls(&pki, required));
        for (identity, reason) in &cases {
            let id = judged(&rt, identity, CertSource::Mtls);
            assert_eq!(
                eval(&rt, "/x", Presented::Certificate(&id)),
                deny(403, *reason),
                "{}",
                identity.dn
            );
        }
        // Revoked by a CRL of the root.
        let mut config = mtls(&pki, required);
        config.client_cert_auth.crls = vec![pki.root.crl(&[&alice.serial_hex])];
        let rt = runtime(&config);
        let id = judged(&rt, &alice, CertSource::Mtls);
        assert_eq!(
            eval(&rt, "/x", Presented::Certificate(&id)),
            deny(403, DenialReason::Revoked)
        );
        let bob = judged(&rt, &pki.client_cn("bob"), CertSource::Mtls);
        assert_eq!(
            eval(&rt, "/x", Presented::Certificate(&bob)),
            Decision::Proxy
        );
    }
}

#[test]
fn intermediates_presented_by_the_client_complete_the_chain() {
    let pki = Pki::new();
    let rt = runtime(&mtls(&pki, true));
    let carol = pki.client(&ClientSpec::new("carol").issued_by(IssuedBy::Intermediate));
    let id = judged(&rt, &carol, CertSource::Mtls);
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&id)),
        Decision::Proxy
    );
    // Without the intermediate the leaf does not chain to the root.
    let leaf_only = ClientIdentity::judge(
        vec![carol.der.clone()],
        CertSource::Mtls,
        &rt.snapshot().trust,
    );
    assert_eq!(
        leaf_only.verdict,
        IdentityVerdict::Denied(DenialReason::Untrusted)
    );
}

#[test]
fn mtls_with_an_empty_trust_table_fails_closed() {
    let pki = Pki::new();
    let config = common::mtls_config(upstream(), Vec::new(), false, ValidationFailure::Http);
    let rt = runtime(&config);
    let id = judged(&rt, &pki.client_cn("alice"), CertSource::Mtls);
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&id)),
        deny(403, DenialReason::Untrusted)
    );
    assert_eq!(eval(&rt, "/x", Presented::None), Decision::Proxy);
}

#[test]
fn unusable_trust_store_fails_closed_with_truststore_unavailable() {
    let pki = Pki::new();
    let rt = Runtime::new();
    rt.apply(&mtls(&pki, false), false).unwrap();
    let id = judged(&rt, &pki.client_cn("alice"), CertSource::Mtls);
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&id)),
        deny(403, DenialReason::TruststoreUnavailable)
    );
    // Back to ok: a new trust generation, and the same chain passes.
    let before = rt.snapshot().trust.generation;
    rt.apply(&mtls(&pki, false), true).unwrap();
    assert!(rt.snapshot().trust.generation > before);
    assert!(id.is_stale(&rt.snapshot().trust));
    let fresh = id.rejudge(&rt.snapshot().trust);
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&fresh)),
        Decision::Proxy
    );
}

#[test]
fn trusted_dns_mismatch_is_403_and_a_match_passes() {
    let pki = Pki::new();
    let mut config = mtls(&pki, false);
    config.client_cert_auth.trusted_dns =
        vec!["CN=bob,**".into(), "CN=alice,O=Example Corp,C=US".into()];
    let rt = runtime(&config);
    let alice = judged(&rt, &pki.client_cn("alice"), CertSource::Mtls);
    let eve = judged(&rt, &pki.client_cn("eve"), CertSource::Mtls);
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&alice)),
        Decision::Proxy
    );
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&eve)),
        deny(403, DenialReason::DnMismatch)
    );
    // The cached answer stays the same on the next request.
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&eve)),
        deny(403, DenialReason::DnMismatch)
    );
}

#[test]
fn no_api_applies_gateway_settings_then_404() {
    let pki = Pki::new();
    let mut config = mtls(&pki, true);
    config.apis = vec![api(1, "/orders", upstream())];
    let rt = runtime(&config);
    assert_eq!(
        eval(&rt, "/other", Presented::None),
        deny(401, DenialReason::NoCertificate)
    );
    let stranger = judged(
        &rt,
        &pki.client(&ClientSpec::new("s").issued_by(IssuedBy::Untrusted)),
        CertSource::Mtls,
    );
    assert_eq!(
        eval(&rt, "/other", Presented::Certificate(&stranger)),
        deny(403, DenialReason::Untrusted)
    );
    let alice = judged(&rt, &pki.client_cn("alice"), CertSource::Mtls);
    assert_eq!(
        eval(&rt, "/other", Presented::Certificate(&alice)),
        Decision::NotFound
    );
    assert_eq!(
        eval(&rt, "/orders/1", Presented::Certificate(&alice)),
        Decision::Proxy
    );
}

#[test]
fn api_overrides_replace_required_and_trusted_dns() {
    let pki = Pki::new();
    let mut config = mtls(&pki, true);
    config.client_cert_auth.trusted_dns = vec!["CN=alice,**".into()];
    config.apis = vec![
        api(1, "/inherit", upstream()),
        api_with_override(2, "/open", upstream(), Some(false), None),
        api_with_override(3, "/bob-only", upstream(), None, Some(vec!["CN=bob,**"])),
        api_with_override(4, "/any-dn", upstream(), None, Some(vec![])),
        api_with_override(
            5,
            "/strict",
            upstream(),
            Some(true),
            Some(vec!["CN=carol,**"]),
        ),
    ];
    config.client_cert_auth.required = true;
    let rt = runtime(&config);
    let alice = judged(&rt, &pki.client_cn("alice"), CertSource::Mtls);
    let bob = judged(&rt, &pki.client_cn("bob"), CertSource::Mtls);
    let alice = Presented::Certificate(&alice);
    let bob = Presented::Certificate(&bob);

    // Inherits required=true and the gateway's patterns.
    assert_eq!(
        eval(&rt, "/inherit", Presented::None),
        deny(401, DenialReason::NoCertificate)
    );
    assert_eq!(eval(&rt, "/inherit", alice), Decision::Proxy);
    assert_eq!(
        eval(&rt, "/inherit", bob),
        deny(403, DenialReason::DnMismatch)
    );
    // required=false override: no certificate passes; a presented one is still checked
    // against the inherited patterns.
    assert_eq!(eval(&rt, "/open", Presented::None), Decision::Proxy);
    assert_eq!(eval(&rt, "/open", bob), deny(403, DenialReason::DnMismatch));
    // trusted_dns override replaces (not merges) the gateway's list.
    assert_eq!(eval(&rt, "/bob-only", bob), Decision::Proxy);
    assert_eq!(
        eval(&rt, "/bob-only", alice),
        deny(403, DenialReason::DnMismatch)
    );
    assert_eq!(
        eval(&rt, "/bob-only", Presented::None),
        deny(401, DenialReason::NoCertificate)
    );
    // An explicit empty list: no DN restriction for that API.
    assert_eq!(eval(&rt, "/any-dn", alice), Decision::Proxy);
    assert_eq!(eval(&rt, "/any-dn", bob), Decision::Proxy);
    assert_eq!(
        eval(&rt, "/strict", alice),
        deny(403, DenialReason::DnMismatch)
    );
}

#[test]
fn mode_is_always_the_gateways() {
    // An override cannot turn certificate checks on under mode none.
    let pki = Pki::new();
    let mut config = mtls(&pki, false);
    config.client_cert_auth.mode = CertAuthMode::None;
    config.apis = vec![api_with_override(
        1,
        "/",
        upstream(),
        Some(true),
        Some(vec!["CN=x"]),
    )];
    let rt = runtime(&config);
    assert_eq!(eval(&rt, "/a", Presented::None), Decision::Proxy);
}

#[test]
fn header_mode_rows() {
    let pki = Pki::new();
    let mut config =
        common::header_config(upstream(), "X-SSL-Client-Cert", &["127.0.0.1/32"], true);
    let rt = runtime(&config);
    // Empty trust table: dates and DN only (the load balancer vouched for the chain).
    let stranger = pki.client(&ClientSpec::new("s").issued_by(IssuedBy::Untrusted));
    let id = judged(&rt, &stranger, CertSource::Header);
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&id)),
        Decision::Proxy
    );
    let expired = judged(
        &rt,
        &pki.client(&ClientSpec::new("e").expired()),
        CertSource::Header,
    );
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&expired)),
        deny(403, DenialReason::Expired)
    );
    let early = judged(
        &rt,
        &pki.client(&ClientSpec::new("n").not_yet_valid()),
        CertSource::Header,
    );
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&early)),
        deny(403, DenialReason::NotYetValid)
    );
    // A header from an untrusted proxy counts as absent.
    assert_eq!(
        eval(&rt, "/x", Presented::FromUntrustedProxy),
        deny(401, DenialReason::UntrustedProxy)
    );
    config.client_cert_auth.required = false;
    let rt = runtime(&config);
    assert_eq!(
        eval(&rt, "/x", Presented::FromUntrustedProxy),
        Decision::Proxy
    );
    // Malformed: always 403.
    let malformed = ClientIdentity::malformed_header(rt.snapshot().trust.generation);
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&malformed)),
        deny(403, DenialReason::MalformedHeader)
    );
    let garbage = ClientIdentity::judge(
        vec![b"not a certificate".to_vec().into()],
        CertSource::Header,
        &rt.snapshot().trust,
    );
    assert_eq!(
        garbage.verdict,
        IdentityVerdict::Denied(DenialReason::MalformedHeader)
    );
    // Non-empty trust table: the chain is judged.
    config.trusted_certificates = vec![pki.root.trusted(1)];
    let rt = runtime(&config);
    let id = judged(&rt, &stranger, CertSource::Header);
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&id)),
        deny(403, DenialReason::Untrusted)
    );
    let alice = judged(&rt, &pki.client_cn("alice"), CertSource::Header);
    assert_eq!(
        eval(&rt, "/x", Presented::Certificate(&alice)),
        Decision::Proxy
    );
}

#[test]
fn trusted_proxies_decide_who_may_send_the_header() {
    let mut config = common::header_config(
        upstream(),
        "X-SSL-Client-Cert",
        &["10.0.0.0/8", "::1/128"],
        true,
    );
    let rt = runtime(&config);
    let snap = rt.snapshot();
    assert!(snap.is_trusted_proxy("10.1.2.3".parse().unwrap()));
    assert!(snap.is_trusted_proxy("::ffff:10.1.2.3".parse().unwrap()));
    assert!(snap.is_trusted_proxy("::1".parse().unwrap()));
    assert!(!snap.is_trusted_proxy("127.0.0.1".parse().unwrap()));
    // Empty list: any peer (header mode only).
    config.client_cert_auth.trusted_proxies.clear();
    let rt = runtime(&config);
    assert!(rt.snapshot().is_trusted_proxy("192.0.2.1".parse().unwrap()));
    config.client_cert_auth.mode = CertAuthMode::None;
    let rt = runtime(&config);
    assert!(!rt.snapshot().is_trusted_proxy("192.0.2.1".parse().unwrap()));
}

#[test]
fn routing_is_longest_prefix_on_a_slash_boundary() {
    let mut config = GatewayConfig {
        apis: vec![
            api(1, "/orders", upstream()),
            api(2, "/orders/v1", upstream()),
            api(3, "/", upstream()),
            api(4, "/users", upstream()),
        ],
        ..GatewayConfig::default()
    };
    let rt = runtime(&config);
    let snap = rt.snapshot();
    let route = |p: &str| snap.routes.lookup(p).map(|r| r.api_id);
    assert_eq!(route("/orders"), Some(1));
    assert_eq!(route("/orders/"), Some(1));
    assert_eq!(route("/orders/7"), Some(1));
    assert_eq!(route("/orders/v1"), Some(2));
    assert_eq!(route("/orders/v1/items/3"), Some(2));
    assert_eq!(route("/orders/v10"), Some(1));
    assert_eq!(route("/ordersX"), Some(3));
    assert_eq!(route("/users/1"), Some(4));
    assert_eq!(route("/"), Some(3));
    assert_eq!(route("/u"), Some(3));

    config.apis.retain(|a| a.base_path != "/");
    let rt = runtime(&config);
    let snap = rt.snapshot();
    assert!(snap.routes.lookup("/ordersX").is_none());
    assert!(snap.routes.lookup("/").is_none());
    assert!(snap.routes.lookup("/order").is_none());
    assert_eq!(snap.routes.lookup("/orders/v1/").map(|r| r.api_id), Some(2));
}

#[test]
fn rewrite_keeps_the_rest_of_the_path() {
    let config = GatewayConfig {
        apis: vec![certgate_store::model::Api {
            upstream: "http://127.0.0.1:9/backend/v2/".into(),
            ..api(1, "/orders", upstream())
        }],
        ..GatewayConfig::default()
    };
    let rt = runtime(&config);
    let snap = rt.snapshot();
    let route = snap.routes.lookup("/orders/7").unwrap();
    assert_eq!(
        route.upstream.rewrite_path(&route.base_path, "/orders/7"),
        "/backend/v2/7"
    );
    assert_eq!(
        route.upstream.rewrite_path(&route.base_path, "/orders"),
        "/backend/v2"
    );
}

#[test]
fn generations_move_only_with_what_they_track() {
    let pki = Pki::new();
    let config = mtls(&pki, false);
    let rt = runtime(&config);
    let s1 = rt.snapshot();
    // The same config again: nothing moves (connections keep their verdicts).
    rt.apply(&config, true).unwrap();
    let s2 = rt.snapshot();
    assert_eq!(s1.trust.generation, s2.trust.generation);
    assert_eq!(s1.mode_generation, s2.mode_generation);
    assert_eq!(s1.tls_generation, s2.tls_generation);
    assert_eq!(s1.gateway_patterns.id, s2.gateway_patterns.id);
    // A trust-table change moves the trust generation only.
    let mut c = config.clone();
    c.trusted_certificates.push(pki.intermediate.trusted(2));
    rt.apply(&c, true).unwrap();
    let s3 = rt.snapshot();
    assert!(s3.trust.generation > s2.trust.generation);
    assert_eq!(s3.mode_generation, s2.mode_generation);
    assert_eq!(s3.tls_generation, s2.tls_generation);
    // A CRL change moves it too.
    c.client_cert_auth.crls = vec![pki.root.crl(&[])];
    rt.apply(&c, true).unwrap();
    let s4 = rt.snapshot();
    assert!(s4.trust.generation > s3.trust.generation);
    // A mode change moves the mode and TLS generations.
    c.client_cert_auth.mode = CertAuthMode::None;
    rt.apply(&c, true).unwrap();
    let s5 = rt.snapshot();
    assert!(s5.mode_generation > s4.mode_generation);
    assert!(s5.tls_generation > s4.tls_generation);
    // A pattern change gets a new pattern-set id.
    c.client_cert_auth.trusted_dns = vec!["CN=x".into()];
    rt.apply(&c, true).unwrap();
    assert_ne!(rt.snapshot().gateway_patterns.id, s5.gateway_patterns.id);
}

#[test]
fn a_trust_change_makes_verdicts_stale_and_rejudging_follows_it() {
    let pki = Pki::new();
    let rt = runtime(&mtls(&pki, false));
    let alice = judged(&rt, &pki.client_cn("alice"), CertSource::Mtls);
    assert_eq!(alice.verdict, IdentityVerdict::Trusted);
    assert!(!alice.is_stale(&rt.snapshot().trust));
    // The root leaves the trust table (another CA stays).
    let mut config = mtls(&pki, false);
    config.trusted_certificates = vec![pki.untrusted_root.trusted(9)];
    rt.apply(&config, true).unwrap();
    assert!(alice.is_stale(&rt.snapshot().trust));
    let again = alice.rejudge(&rt.snapshot().trust);
    assert_eq!(
        again.verdict,
        IdentityVerdict::Denied(DenialReason::Untrusted)
    );
    assert_eq!(
        eval(&rt, "/", Presented::Certificate(&again)),
        deny(403, DenialReason::Untrusted)
    );
}

#[test]
fn bad_config_is_refused_and_changes_nothing() {
    let pki = Pki::new();
    let good = mtls(&pki, true);
    let rt = runtime(&good);
    let generation = rt.snapshot().config_generation;

    let mut bad = good.clone();
    bad.generation = 99;
    bad.client_cert_auth.trusted_dns = vec!["CN=a,,O=b".into()];
    let err = rt.apply(&bad, true).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid DN pattern "CN=a,,O=b" at position 6: empty RDN"#
    );
    assert_eq!(rt.snapshot().config_generation, generation);

    let mut bad = good.clone();
    bad.apis[0].upstream = "ftp://x".into();
    assert!(rt.apply(&bad, true).is_err());
    let mut bad = good.clone();
    bad.client_cert_auth.mode = CertAuthMode::Header;
    bad.client_cert_auth.header_name = None;
    assert!(rt.apply(&bad, true).is_err());
    assert_eq!(rt.snapshot().mode, CertAuthMode::Mtls);
}

#[test]
fn an_unusable_anchor_fails_closed_but_applies_the_rest() {
    let pki = Pki::new();
    let mut config = mtls(&pki, false);
    config.trusted_certificates[0].pem =
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into();
    config.apis = vec![api(1, "/new", upstream())];
    let rt = Runtime::new();
    assert!(rt.apply(&config, true).is_err());
    let snap = rt.snapshot();
    assert!(snap.routes.lookup("/new").is_some());
    let id = judged(&rt, &pki.client_cn("alice"), CertSource::Mtls);
    assert_eq!(
        eval(&rt, "/new", Presented::Certificate(&id)),
        deny(403, DenialReason::TruststoreUnavailable)
    );
}

#[test]
fn connections_of_one_client_share_its_judged_identity_within_a_trust_generation() {
    let pki = Pki::new();
    let rt = runtime(&mtls(&pki, false));
    let alice = pki.client_cn("alice");
    let chain = vec![alice.der.clone()];
    let first = ClientIdentity::shared(&chain, CertSource::Mtls, &rt.snapshot().trust);
    let second = ClientIdentity::shared(&chain, CertSource::Mtls, &rt.snapshot().trust);
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second handshake re-judged the chain"
    );
    assert_eq!(first.verdict, IdentityVerdict::Trusted);
    // Another client is judged on its own.
    let bob = ClientIdentity::shared(
        &[pki.client_cn("bob").der.clone()],
        CertSource::Mtls,
        &rt.snapshot().trust,
    );
    assert!(!Arc::ptr_eq(&first, &bob));
    // A trust change (the CA removed) judges the same chain again, and refuses it.
    let mut config = mtls(&pki, false);
    config.generation += 1;
    config.trusted_certificates.clear();
    rt.apply(&config, true).unwrap();
    let after = ClientIdentity::shared(&chain, CertSource::Mtls, &rt.snapshot().trust);
    assert!(!Arc::ptr_eq(&first, &after));
    assert_eq!(
        after.verdict,
        IdentityVerdict::Denied(DenialReason::Untrusted)
    );
}
