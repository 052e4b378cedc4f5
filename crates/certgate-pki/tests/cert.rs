//! `CertificateInfo`: parsing PEM/DER, the fields SPEC §8 shows (subject, issuer, serial,
//! fingerprint, validity, is_ca, SANs), checked against `openssl x509` where it prints them,
//! and the expiry status with its 90-day window.

use std::net::IpAddr;
use std::process::Command;

use certgate_pki::{CertError, CertificateInfo, ExpiryStatus};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, SanType,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

struct Pki {
    ca_pem: String,
    leaf_pem: String,
    leaf_der: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

fn dn(entries: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (t, v) in entries {
        dn.push(t.clone(), *v);
    }
    dn
}

/// A CA and a leaf it signed, with SANs and a serial whose top bit is set (so DER adds a
/// leading zero byte).
fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = dn(&[
        (DnType::CountryName, "US"),
        (DnType::OrganizationName, "Example Trust"),
        (DnType::CommonName, "Example Root CA"),
    ]);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["api.example.com".to_owned()]).unwrap();
    leaf.distinguished_name = dn(&[
        (DnType::CountryName, "IN"),
        (DnType::OrganizationName, "Acme, Inc."),
        (DnType::CommonName, "client 1 – ünïcode"),
    ]);
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
    leaf.subject_alt_names
        .push(SanType::IpAddress("::1".parse().unwrap()));
    leaf.subject_alt_names
        .push(SanType::Rfc822Name("ops@example.com".try_into().unwrap()));
    leaf.subject_alt_names.push(SanType::URI(
        "spiffe://example.com/client1".try_into().unwrap(),
    ));
    leaf.serial_number = Some(SerialNumber::from(vec![0x8f, 0x01, 0x02, 0x03]));
    let not_before = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let not_after = not_before + Duration::days(365);
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        leaf_pem: leaf_cert.pem(),
        leaf_der: leaf_cert.der().to_vec(),
        not_before,
        not_after,
    }
}

fn openssl(pem: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pem");
    std::fs::write(&path, pem).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-in"])
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

#[test]
fn leaf_fields_match_openssl() {
    let pki = pki();
    let info = CertificateInfo::from_der(&pki.leaf_der).unwrap();

    assert_eq!(
        info.subject.to_string(),
        "CN=client 1 – ünïcode,O=Acme\\, Inc.,C=IN"
    );
    assert_eq!(
        info.issuer.to_string(),
        "CN=Example Root CA,O=Example Trust,C=US"
    );
    assert_eq!(
        openssl(&pki.leaf_pem, &["-subject", "-nameopt", "RFC2253,-esc_msb"]),
        format!("subject={}", info.subject)
    );
    assert_eq!(
        openssl(&pki.leaf_pem, &["-issuer", "-nameopt", "RFC2253,-esc_msb"]),
        format!("issuer={}", info.issuer)
    );

    // Serial: the DER leading zero is gone, lowercase, no separators.
    assert_eq!(info.serial_hex, "8f010203");
    assert_eq!(
        openssl(&pki.leaf_pem, &["-serial"]).to_lowercase(),
        format!("serial={}", info.serial_hex)
    );

    // Fingerprint: sha256: + lowercase hex of the DER.
    let openssl_fp = openssl(&pki.leaf_pem, &["-fingerprint", "-sha256"]);
    let openssl_hex = openssl_fp
        .split_once('=')
        .unwrap()
        .1
        .replace(':', "")
        .to_lowercase();
    assert_eq!(info.fingerprint_sha256, format!("sha256:{openssl_hex}"));
    assert_eq!(info.fingerprint_sha256.len(), "sha256:".len() + 64);

    assert_eq!(info.not_before, pki.not_before);
    assert_eq!(info.not_after, pki.not_after);
    assert!(!info.is_ca);
    assert_eq!(
        info.sans,
        vec![
            "DNS:api.example.com",
            "IP:127.0.0.1",
            "IP:::1",
            "email:ops@example.com",
            "URI:spiffe://example.com/client1",
        ]
    );
    assert_eq!(info.der.as_ref(), pki.leaf_der.as_slice());
}

#[test]
fn der_to_pem_is_what_openssl_writes() {
    let pki = pki();
    let pem = certgate_pki::cert::der_to_pem(&pki.leaf_der, "CERTIFICATE");
    // rcgen writes RFC 7468 PEM as openssl does: 64 columns, LF line ends.
    assert_eq!(
        pem.replace("\r\n", "\n"),
        pki.leaf_pem.replace("\r\n", "\n")
    );
    assert!(pem.lines().all(|l| l.len() <= 64), "{pem}");
    let back = CertificateInfo::parse_pem_chain(&pem).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(
        back[0].fingerprint_sha256,
        certgate_pki::cert::fingerprint_sha256(&pki.leaf_der)
    );
    assert_eq!(
        certgate_pki::cert::der_to_pem(b"", "X509 CRL"),
        "-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n"
    );
}

#[test]
fn ca_is_flagged_and_parse_any_takes_pem_or_der() {
    let pki = pki();
    let ca = CertificateInfo::parse_any(pki.ca_pem.as_bytes()).unwrap();
    assert!(ca.is_ca);
    assert_eq!(ca.subject, ca.issuer);
    assert!(ca.sans.is_empty());

    let from_der = CertificateInfo::parse_any(&pki.leaf_der).unwrap();
    let from_pem = CertificateInfo::parse_any(pki.leaf_pem.as_bytes()).unwrap();
    assert_eq!(from_der.fingerprint_sha256, from_pem.fingerprint_sha256);
    assert_eq!(from_der.subject, from_pem.subject);
}

#[test]
fn pem_chain_in_order_skipping_other_sections() {
    let pki = pki();
    let bundle = format!(
        "leading text\n{}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{}",
        pki.leaf_pem, pki.ca_pem
    );
    let chain = CertificateInfo::parse_pem_chain(&bundle).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(
        chain[0].subject.to_string(),
        "CN=client 1 – ünïcode,O=Acme\\, Inc.,C=IN"
    );
    assert_eq!(
        chain[1].subject.to_string(),
        "CN=Example Root CA,O=Example Trust,C=US"
    );
    assert_eq!(chain[0].issuer, chain[1].subject);
}

#[test]
fn parse_errors_are_typed() {
    assert_eq!(
        CertificateInfo::parse_pem_chain("").unwrap_err(),
        CertError::Empty
    );
    assert_eq!(
        CertificateInfo::parse_pem_chain("no pem here").unwrap_err(),
        CertError::Empty
    );
    assert_eq!(
        CertificateInfo::parse_any(b"  \n").unwrap_err(),
        CertError::Empty
    );
    let bad_b64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        CertificateInfo::parse_pem_chain(bad_b64),
        Err(CertError::Pem(_))
    ));
    let not_a_cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        CertificateInfo::parse_pem_chain(not_a_cert),
        Err(CertError::Der(_))
    ));
    assert!(matches!(
        CertificateInfo::from_der(b"\x30\x03\x02\x01\x01"),
        Err(CertError::Der(_))
    ));
    let pki = pki();
    let mut trailing = pki.leaf_der.clone();
    trailing.push(0);
    let err = CertificateInfo::from_der(&trailing).unwrap_err();
    assert_eq!(
        err.to_string(),
        "certificate DER is malformed: 1 bytes of trailing data after the certificate"
    );
    // Truncated DER never panics.
    for n in 0..pki.leaf_der.len() {
        assert!(CertificateInfo::from_der(&pki.leaf_der[..n]).is_err());
    }
}

#[test]
fn expiry_status_and_days_at_the_boundaries() {
    let pki = pki();
    let info = CertificateInfo::from_der(&pki.leaf_der).unwrap();
    let end = pki.not_after;
    let cases = [
        (end - Duration::days(200), ExpiryStatus::Ok, 200),
        (
            end - Duration::days(90) - Duration::seconds(1),
            ExpiryStatus::Ok,
            90,
        ),
        (end - Duration::days(90), ExpiryStatus::ExpiringSoon, 90),
        (end - Duration::hours(36), ExpiryStatus::ExpiringSoon, 1),
        (end - Duration::seconds(1), ExpiryStatus::ExpiringSoon, 0),
        (end, ExpiryStatus::ExpiringSoon, 0),
        (end + Duration::seconds(1), ExpiryStatus::Expired, -1),
        (end + Duration::days(3), ExpiryStatus::Expired, -3),
    ];
    for (now, status, days) in cases {
        assert_eq!(info.expiry_status(now), status, "at {now}");
        assert_eq!(info.days_to_expiry(now), days, "at {now}");
    }
    assert_eq!(ExpiryStatus::Ok.as_str(), "ok");
    assert_eq!(ExpiryStatus::ExpiringSoon.as_str(), "expiring_soon");
    assert_eq!(ExpiryStatus::Expired.as_str(), "expired");
}
