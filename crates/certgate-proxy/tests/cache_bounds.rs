//! The verdict caches are bounded (issue 9 defect 6): a refused chain is kept as its
//! verdict, never whole; accepted identities are bounded by count and by bytes; the same
//! for the header-mode cache. Without sockets: the caches are driven the way the
//! handshake and the header path drive them, and read back through their usage.
//! (The resident memory of a node under 10,000 refused handshakes is measured end to end
//! in `crates/certgate/tests/refused_memory.rs`.)

mod common;

use std::net::IpAddr;
use std::sync::Arc;

use certgate_proxy::header_mode::{take_header_cert, HeaderCert};
use certgate_proxy::{CertSource, ClientIdentity, DenialReason, IdentityVerdict, Runtime};
use certgate_store::model::ValidationFailure;
use common::{header_config, mtls_config, nginx_escaped, ClientSpec, IssuedBy, Pki};
use http::{HeaderMap, HeaderValue};
use rustls_pki_types::CertificateDer;

/// The byte bound of the accepted halves (docs/BEHAVIOUR.md).
const TRUSTED_BYTES: usize = 32 << 20;
/// The entry bound of every half.
const ENTRIES: usize = 10_000;

/// Distinct certificates from one template: `n` copies of `template` whose padding
/// extension carries a counter (the signature no longer matches, which no refusal
/// below depends on: the issuer is unknown before any signature is checked).
struct Variants {
    template: Vec<u8>,
    offset: usize,
}

impl Variants {
    fn new(template: &CertificateDer<'_>) -> Variants {
        let template = template.to_vec();
        let offset = template
            .windows(64)
            .position(|w| w.iter().all(|&b| b == 0))
            .expect("a padded template")
            + 8;
        Variants { template, offset }
    }

    fn get(&self, i: u64) -> CertificateDer<'static> {
        let mut der = self.template.clone();
        der[self.offset..self.offset + 8].copy_from_slice(&i.to_be_bytes());
        CertificateDer::from(der)
    }
}

fn padded(pki: &Pki, issued_by: IssuedBy, padding: usize) -> common::Identity {
    let mut spec = ClientSpec::new("padded").issued_by(issued_by);
    spec.padding = padding;
    pki.client(&spec)
}

fn mtls_runtime(pki: &Pki) -> Arc<Runtime> {
    let rt = Runtime::new();
    let config = mtls_config(
        "127.0.0.1:9".parse().unwrap(),
        vec![pki.root.trusted(1)],
        true,
        ValidationFailure::Handshake,
    );
    rt.apply(&config, true).unwrap();
    rt
}

#[test]
fn refused_chains_are_cached_as_verdicts_not_chains() {
    let pki = Pki::new();
    let rt = mtls_runtime(&pki);
    let trust = rt.snapshot().trust.clone();
    let big = Variants::new(&padded(&pki, IssuedBy::Untrusted, 60_000).der);
    for i in 0..300 {
        let id = ClientIdentity::shared(&[big.get(i)], CertSource::Mtls, &trust);
        assert_eq!(id.verdict, IdentityVerdict::Denied(DenialReason::Untrusted));
    }
    let usage = trust.identity_cache_usage();
    assert_eq!(usage.trusted_entries, 0);
    assert_eq!(usage.refused_entries, 300);
    // 300 chains of 60 KB are 18 MB; their verdicts a few dozen bytes each.
    assert!(
        usage.refused_bytes < 300 * 128,
        "refusals cost {} bytes",
        usage.refused_bytes
    );
    // A refusal seen again is answered from the cache with the same reason.
    let again = ClientIdentity::shared(&[big.get(7)], CertSource::Mtls, &trust);
    assert_eq!(
        again.verdict,
        IdentityVerdict::Denied(DenialReason::Untrusted)
    );
    assert_eq!(trust.identity_cache_usage().refused_entries, 300);

    // Entries are bounded too.
    let small = Variants::new(&padded(&pki, IssuedBy::Untrusted, 100).der);
    for i in 0..(ENTRIES as u64 + 50) {
        ClientIdentity::shared(&[small.get(i)], CertSource::Mtls, &trust);
        assert!(trust.identity_cache_usage().refused_entries <= ENTRIES);
    }
}

#[test]
fn accepted_identities_are_bounded_by_bytes() {
    let pki = Pki::new();
    let rt = mtls_runtime(&pki);
    let trust = rt.snapshot().trust.clone();
    let alice = pki.client_cn("alice");
    // One valid leaf, made distinct by a 60 KB unrelated certificate after it (webpki
    // skips it): 700 such chains are over 40 MiB.
    let junk = Variants::new(&padded(&pki, IssuedBy::Untrusted, 60_000).der);
    let mut max_bytes = 0;
    let mut max_entries = 0;
    for i in 0..700 {
        let chain = [alice.der.clone(), junk.get(i)];
        let id = ClientIdentity::shared(&chain, CertSource::Mtls, &trust);
        assert_eq!(id.verdict, IdentityVerdict::Trusted);
        assert!(id.approx_bytes() > 60_000, "{}", id.approx_bytes());
        let usage = trust.identity_cache_usage();
        assert!(usage.trusted_bytes <= TRUSTED_BYTES, "{usage:?}");
        max_bytes = max_bytes.max(usage.trusted_bytes);
        max_entries = max_entries.max(usage.trusted_entries);
    }
    // The byte bound, not the entry bound, is what stopped it.
    assert!(max_entries < 700 && max_entries > 100, "{max_entries}");
    assert!(max_bytes > TRUSTED_BYTES / 2, "{max_bytes}");
}

fn header_request(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-ssl-client-cert", HeaderValue::from_str(value).unwrap());
    headers
}

#[test]
fn the_header_cache_keeps_refusals_as_verdicts_and_is_bounded() {
    let pki = Pki::new();
    let rt = Runtime::new();
    let mut config = header_config(
        "127.0.0.1:9".parse().unwrap(),
        "x-ssl-client-cert",
        &["127.0.0.1/32"],
        true,
    );
    config.trusted_certificates = vec![pki.root.trusted(1)];
    rt.apply(&config, true).unwrap();
    let snapshot = rt.snapshot();
    let peer: IpAddr = "127.0.0.1".parse().unwrap();
    let big = Variants::new(&padded(&pki, IssuedBy::Untrusted, 30_000).der);
    for i in 0..200 {
        let pem = pem_of(&big.get(i));
        let mut headers = header_request(&nginx_escaped(&pem));
        let HeaderCert::Present(id) = take_header_cert(&snapshot, &mut headers, peer) else {
            panic!("the header was not taken");
        };
        assert_eq!(id.verdict, IdentityVerdict::Denied(DenialReason::Untrusted));
    }
    // Undecodable values are refusals too.
    for i in 0..100 {
        let mut headers = header_request(&format!("garbage-{i}-{}", "x".repeat(20_000)));
        let HeaderCert::Present(id) = take_header_cert(&snapshot, &mut headers, peer) else {
            panic!("the header was not taken");
        };
        assert_eq!(
            id.verdict,
            IdentityVerdict::Denied(DenialReason::MalformedHeader)
        );
    }
    let usage = snapshot.header_cache_usage();
    assert_eq!((usage.trusted_entries, usage.refused_entries), (0, 300));
    assert!(usage.refused_bytes < 300 * 128, "{usage:?}");

    // A trusted value is kept whole, once.
    let alice = pki.client_cn("alice");
    for _ in 0..3 {
        let mut headers = header_request(&nginx_escaped(&alice.pem));
        let HeaderCert::Present(id) = take_header_cert(&snapshot, &mut headers, peer) else {
            panic!("the header was not taken");
        };
        assert_eq!(id.verdict, IdentityVerdict::Trusted);
    }
    let usage = snapshot.header_cache_usage();
    assert_eq!((usage.trusted_entries, usage.refused_entries), (1, 300));
    assert!(usage.trusted_bytes > 0 && usage.trusted_bytes <= TRUSTED_BYTES);
}

/// PEM of one DER certificate.
fn pem_of(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
