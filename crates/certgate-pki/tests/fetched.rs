//! SPEC §16 revocation sources, the pure part: URLs read from certificates, fetched CRLs
//! checked against the issuing CA, and OCSP requests.

use certgate_pki::{revocation_urls, DenyReason, FetchedCrl, Judge};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use time::{Duration, OffsetDateTime};

struct Ca {
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(cn: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

fn leaf(ca: &Ca, serial: u8, dp: &[&str]) -> CertificateDer<'static> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.serial_number = Some(SerialNumber::from_slice(&[serial]));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if !dp.is_empty() {
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: dp.iter().map(|s| s.to_string()).collect(),
        }];
    }
    let key = KeyPair::generate().unwrap();
    params.signed_by(&key, &ca.issuer).unwrap().der().clone()
}

fn crl(ca: &Ca, revoked: &[u8]) -> Vec<u8> {
    CertificateRevocationListParams {
        this_update: OffsetDateTime::now_utc() - Duration::hours(1),
        next_update: OffsetDateTime::now_utc() + Duration::days(1),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&[*s]),
                revocation_time: OffsetDateTime::now_utc() - Duration::hours(1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)
    .unwrap()
    .der()
    .to_vec()
}

fn now() -> UnixTime {
    UnixTime::now()
}

#[test]
fn urls_are_read_from_the_distribution_points() {
    let root = ca("Root");
    let cert = leaf(
        &root,
        5,
        &["http://crl.test/a.crl", "http://crl2.test/b.crl"],
    );
    let urls = revocation_urls(&cert);
    assert_eq!(
        urls.crl,
        vec!["http://crl.test/a.crl", "http://crl2.test/b.crl"]
    );
    assert!(urls.ocsp.is_empty());
    assert!(revocation_urls(&leaf(&root, 6, &[])).crl.is_empty());
    assert!(revocation_urls(b"not a certificate").crl.is_empty());
}

#[test]
fn a_fetched_crl_revokes_only_when_the_issuing_ca_signed_it() {
    let root = ca("Root");
    let judge = Judge::new(std::slice::from_ref(&root.der), &[]).unwrap();
    let cert = leaf(&root, 7, &["http://crl.test/a.crl"]);
    let good = FetchedCrl::parse(&crl(&root, &[])).unwrap();
    let revoked = FetchedCrl::parse(&crl(&root, &[7])).unwrap();
    assert!(revoked.next_update().is_some());
    assert_eq!(judge.check_fetched(&cert, &[], now(), &[&good]), Ok(()));
    assert_eq!(
        judge.check_fetched(&cert, &[], now(), &[&revoked]),
        Err(DenyReason::Revoked)
    );
    // Same issuer name, another key: the status cannot be learned from it.
    let impostor = ca("Root");
    let forged = FetchedCrl::parse(&crl(&impostor, &[7])).unwrap();
    assert_eq!(forged.issuer(), good.issuer());
    assert_eq!(
        judge.check_fetched(&cert, &[], now(), &[&forged]),
        Err(DenyReason::RevocationUnknown)
    );
    assert!(FetchedCrl::parse(b"<html>").is_err());
}

#[test]
fn the_ocsp_request_names_the_certificate_by_sha256_cert_id() {
    let root = ca("Root");
    let judge = Judge::new(std::slice::from_ref(&root.der), &[]).unwrap();
    let cert = leaf(&root, 9, &[]);
    let spki = judge.issuer_spki(&cert, &[], now()).unwrap();
    let q = certgate_pki::ocsp::query(&cert, &spki).unwrap();
    // OCSPRequest > TBSRequest > requestList > Request > CertID, nothing else.
    assert_eq!(q.request[0], 0x30);
    assert!(q.request.ends_with(&q.cert_id));
    // sha256 OID, then two 32-byte hashes, then the serial INTEGER 9.
    assert!(q
        .cert_id
        .windows(9)
        .any(|w| w == [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]));
    assert!(q.cert_id.ends_with(&[0x02, 0x01, 0x09]));
    // An answer that is not a successful signed response is refused.
    assert!(certgate_pki::ocsp::check(&q, &[0x30, 0x03, 0x0a, 0x01, 0x06], 0).is_err());
    assert!(certgate_pki::ocsp::check(&q, b"junk", 0).is_err());
    // No issuer in the chain or the anchors: no key to ask about.
    let other = ca("Other");
    assert!(judge
        .issuer_spki(&leaf(&other, 1, &[]), &[], now())
        .is_none());
}
