//! The chain judge (rustls-webpki + CRLs, client-auth usage) against rcgen-made PKIs.

use certgate_pki::{DenyReason, Judge, JudgeError, Verdict};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use time::{Duration, OffsetDateTime};

/// The judging time of every test: 2026-06-01T00:00:00Z.
fn now_dt() -> OffsetDateTime {
    time::macros::datetime!(2026-06-01 00:00 UTC)
}

fn at(dt: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(dt.unix_timestamp()).unwrap(),
    ))
}

fn now() -> UnixTime {
    at(now_dt())
}

struct Ca {
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn named(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = named(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = not_before;
    params.not_after = not_after;
    params
}

fn root_ca(cn: &str) -> Ca {
    root_ca_valid(
        cn,
        now_dt() - Duration::days(365),
        now_dt() + Duration::days(3650),
    )
}

fn root_ca_valid(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Ca {
    let key = KeyPair::generate().unwrap();
    let params = ca_params(cn, not_before, not_after);
    let der = params.self_signed(&key).unwrap().der().clone();
    Ca {
        der,
        issuer: Issuer::new(params, key),
    }
}

fn sub_ca(parent: &Ca, cn: &str, serial: u64, not_after: OffsetDateTime) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = ca_params(cn, now_dt() - Duration::days(30), not_after);
    params.serial_number = Some(SerialNumber::from(serial));
    let der = params
        .signed_by(&key, &parent.issuer)
        .unwrap()
        .der()
        .clone();
    Ca {
        der,
        issuer: Issuer::new(params, key),
    }
}

struct LeafSpec {
    serial: u64,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    eku: Vec<ExtendedKeyUsagePurpose>,
}

impl Default for LeafSpec {
    fn default() -> Self {
        LeafSpec {
            serial: 0x1001,
            not_before: now_dt() - Duration::days(1),
            not_after: now_dt() + Duration::days(90),
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
        }
    }
}

fn leaf(issuer: &Ca, spec: LeafSpec) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = named("client");
    params.serial_number = Some(SerialNumber::from(spec.serial));
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    params.extended_key_usages = spec.eku;
    params
        .signed_by(&key, &issuer.issuer)
        .unwrap()
        .der()
        .clone()
}

fn client(issuer: &Ca) -> CertificateDer<'static> {
    leaf(issuer, LeafSpec::default())
}

fn crl(
    issuer: &Ca,
    revoked: &[u64],
    next_update: OffsetDateTime,
) -> CertificateRevocationListDer<'static> {
    let params = CertificateRevocationListParams {
        this_update: now_dt() - Duration::days(2),
        next_update,
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|&serial| RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: now_dt() - Duration::days(1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(&issuer.issuer).unwrap().der().clone()
}

fn fresh_crl(issuer: &Ca, revoked: &[u64]) -> CertificateRevocationListDer<'static> {
    crl(issuer, revoked, now_dt() + Duration::days(7))
}

fn judge(anchors: &[&Ca], crls: &[CertificateRevocationListDer<'static>]) -> Judge {
    let ders: Vec<CertificateDer<'static>> = anchors.iter().map(|ca| ca.der.clone()).collect();
    Judge::new(&ders, crls).unwrap()
}

const DENIED_UNTRUSTED: Verdict = Verdict::Denied(DenyReason::Untrusted);

#[test]
fn trusted_leaf_directly_under_the_anchor() {
    let root = root_ca("Root");
    let judge = judge(&[&root], &[]);
    assert_eq!(judge.anchor_count(), 1);
    assert_eq!(judge.verify(&client(&root), &[], now()), Verdict::Trusted);
}

#[test]
fn leaf_via_an_intermediate_that_is_sent() {
    let root = root_ca("Root");
    let inter = sub_ca(&root, "Intermediate", 7, now_dt() + Duration::days(1000));
    let judge = judge(&[&root], &[]);
    let leaf = client(&inter);
    assert_eq!(
        judge.verify(&leaf, std::slice::from_ref(&inter.der), now()),
        Verdict::Trusted
    );
}

#[test]
fn missing_intermediate_is_untrusted() {
    let root = root_ca("Root");
    let inter = sub_ca(&root, "Intermediate", 7, now_dt() + Duration::days(1000));
    let judge = judge(&[&root], &[]);
    assert_eq!(judge.verify(&client(&inter), &[], now()), DENIED_UNTRUSTED);
}

#[test]
fn unknown_ca_is_untrusted() {
    let root = root_ca("Root");
    let stranger = root_ca("Stranger");
    let judge = judge(&[&root], &[]);
    assert_eq!(
        judge.verify(&client(&stranger), &[], now()),
        DENIED_UNTRUSTED
    );
}

#[test]
fn same_name_other_key_is_untrusted() {
    // A CA that copies the anchor's name but not its key: the signature check fails.
    let root = root_ca("Root");
    let impostor = root_ca("Root");
    let judge = judge(&[&root], &[]);
    assert_eq!(
        judge.verify(&client(&impostor), &[], now()),
        DENIED_UNTRUSTED
    );
}

#[test]
fn expired_leaf_is_expired() {
    let root = root_ca("Root");
    let judge = judge(&[&root], &[]);
    let leaf = leaf(
        &root,
        LeafSpec {
            not_before: now_dt() - Duration::days(400),
            not_after: now_dt() - Duration::days(1),
            ..LeafSpec::default()
        },
    );
    assert_eq!(
        judge.verify(&leaf, &[], now()),
        Verdict::Denied(DenyReason::Expired)
    );
}

#[test]
fn expired_leaf_is_expired_even_under_an_unknown_ca() {
    let root = root_ca("Root");
    let stranger = root_ca("Stranger");
    let judge = judge(&[&root], &[]);
    let leaf = leaf(
        &stranger,
        LeafSpec {
            not_after: now_dt() - Duration::seconds(1),
            not_before: now_dt() - Duration::days(10),
            ..LeafSpec::default()
        },
    );
    assert_eq!(
        judge.verify(&leaf, &[], now()),
        Verdict::Denied(DenyReason::Expired)
    );
}

#[test]
fn not_yet_valid_leaf_is_not_yet_valid() {
    let root = root_ca("Root");
    let judge = judge(&[&root], &[]);
    let leaf = leaf(
        &root,
        LeafSpec {
            not_before: now_dt() + Duration::days(1),
            not_after: now_dt() + Duration::days(30),
            ..LeafSpec::default()
        },
    );
    assert_eq!(
        judge.verify(&leaf, &[], now()),
        Verdict::Denied(DenyReason::NotYetValid)
    );
}

#[test]
fn leaf_at_its_not_after_second_is_still_valid() {
    let root = root_ca("Root");
    let judge = judge(&[&root], &[]);
    let not_after = now_dt() + Duration::days(5);
    let leaf = leaf(
        &root,
        LeafSpec {
            not_after,
            ..LeafSpec::default()
        },
    );
    assert_eq!(judge.verify(&leaf, &[], at(not_after)), Verdict::Trusted);
    assert_eq!(
        judge.verify(&leaf, &[], at(not_after + Duration::seconds(1))),
        Verdict::Denied(DenyReason::Expired)
    );
}

#[test]
fn expired_intermediate_is_expired() {
    let root = root_ca("Root");
    let inter = sub_ca(&root, "Intermediate", 7, now_dt() - Duration::days(1));
    let judge = judge(&[&root], &[]);
    let leaf = client(&inter);
    assert_eq!(
        judge.verify(&leaf, std::slice::from_ref(&inter.der), now()),
        Verdict::Denied(DenyReason::Expired)
    );
}

#[test]
fn revoked_leaf_is_revoked() {
    let root = root_ca("Root");
    let leaf = leaf(
        &root,
        LeafSpec {
            serial: 0xbeef,
            ..LeafSpec::default()
        },
    );
    let judge = judge(&[&root], &[fresh_crl(&root, &[0xbeef])]);
    assert_eq!(judge.crl_count(), 1);
    assert_eq!(
        judge.verify(&leaf, &[], now()),
        Verdict::Denied(DenyReason::Revoked)
    );
}

#[test]
fn crl_for_another_serial_leaves_the_leaf_trusted() {
    let root = root_ca("Root");
    let leaf = leaf(
        &root,
        LeafSpec {
            serial: 0xbeef,
            ..LeafSpec::default()
        },
    );
    let judge = judge(&[&root], &[fresh_crl(&root, &[0xbeee, 0xbef0])]);
    assert_eq!(judge.verify(&leaf, &[], now()), Verdict::Trusted);
}

#[test]
fn revoked_intermediate_revokes_its_leaves() {
    let root = root_ca("Root");
    let inter = sub_ca(&root, "Intermediate", 0x77, now_dt() + Duration::days(1000));
    let leaf = client(&inter);
    let judge = judge(&[&root], &[fresh_crl(&root, &[0x77])]);
    assert_eq!(
        judge.verify(&leaf, std::slice::from_ref(&inter.der), now()),
        Verdict::Denied(DenyReason::Revoked)
    );
}

#[test]
fn ca_without_a_crl_is_fine_when_another_ca_has_one() {
    let root = root_ca("Root");
    let other = root_ca("Other");
    let judge = judge(&[&root, &other], &[fresh_crl(&other, &[0x1001])]);
    // Same serial as revoked by `other`, but issued by `root`, which has no CRL.
    assert_eq!(judge.verify(&client(&root), &[], now()), Verdict::Trusted);
    assert_eq!(
        judge.verify(&client(&other), &[], now()),
        Verdict::Denied(DenyReason::Revoked)
    );
}

#[test]
fn a_crl_past_its_next_update_still_revokes() {
    let root = root_ca("Root");
    let leaf = leaf(
        &root,
        LeafSpec {
            serial: 0xbeef,
            ..LeafSpec::default()
        },
    );
    let stale = crl(&root, &[0xbeef], now_dt() - Duration::days(1));
    let judge = judge(&[&root], &[stale]);
    assert_eq!(
        judge.verify(&leaf, &[], now()),
        Verdict::Denied(DenyReason::Revoked)
    );
}

#[test]
fn expired_anchor_validates_nothing() {
    let old = root_ca_valid(
        "Old Root",
        now_dt() - Duration::days(3650),
        now_dt() - Duration::days(1),
    );
    // The leaf itself is within its dates; only the anchor is past its notAfter.
    let leaf = leaf(
        &old,
        LeafSpec {
            not_before: now_dt() - Duration::days(10),
            ..LeafSpec::default()
        },
    );
    let judge = judge(&[&old], &[]);
    assert_eq!(judge.anchors_valid_at(now()), 0);
    assert_eq!(judge.verify(&leaf, &[], now()), DENIED_UNTRUSTED);
    // The day before the anchor expired, the same chain was fine.
    let before = now_dt() - Duration::days(1) - Duration::hours(1);
    assert_eq!(judge.verify(&leaf, &[], at(before)), Verdict::Trusted);
}

#[test]
fn expired_anchor_among_valid_ones_only_loses_its_own_leaves() {
    let old = root_ca_valid(
        "Old Root",
        now_dt() - Duration::days(3650),
        now_dt() - Duration::days(1),
    );
    let current = root_ca("Current Root");
    let later = root_ca_valid(
        "Later Root",
        now_dt() - Duration::days(10),
        now_dt() + Duration::days(9000),
    );
    let judge = judge(&[&old, &current, &later], &[]);
    assert_eq!(judge.anchor_count(), 3);
    assert_eq!(judge.anchors_valid_at(now()), 2);
    assert_eq!(judge.verify(&client(&old), &[], now()), DENIED_UNTRUSTED);
    assert_eq!(
        judge.verify(&client(&current), &[], now()),
        Verdict::Trusted
    );
    assert_eq!(judge.verify(&client(&later), &[], now()), Verdict::Trusted);
}

#[test]
fn garbage_leaf_is_malformed() {
    let root = root_ca("Root");
    let judge = judge(&[&root], &[]);
    for bytes in [&b""[..], b"garbage", &[0x30, 0x82, 0x01]] {
        let leaf = CertificateDer::from(bytes.to_vec());
        assert_eq!(
            judge.verify(&leaf, &[], now()),
            Verdict::Denied(DenyReason::Malformed),
            "{bytes:?}"
        );
    }
}

#[test]
fn server_auth_only_leaf_is_untrusted() {
    let root = root_ca("Root");
    let judge = judge(&[&root], &[]);
    let leaf = leaf(
        &root,
        LeafSpec {
            eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
            ..LeafSpec::default()
        },
    );
    assert_eq!(judge.verify(&leaf, &[], now()), DENIED_UNTRUSTED);
}

#[test]
fn leaf_without_eku_is_trusted() {
    let root = root_ca("Root");
    let judge = judge(&[&root], &[]);
    let leaf = leaf(
        &root,
        LeafSpec {
            eku: vec![],
            ..LeafSpec::default()
        },
    );
    assert_eq!(judge.verify(&leaf, &[], now()), Verdict::Trusted);
}

#[test]
fn no_anchors_means_every_chain_is_untrusted() {
    let root = root_ca("Root");
    let judge = Judge::new(&[], &[]).unwrap();
    assert_eq!(judge.anchor_count(), 0);
    assert_eq!(judge.verify(&client(&root), &[], now()), DENIED_UNTRUSTED);
    assert_eq!(judge.verify(&root.der, &[], now()), DENIED_UNTRUSTED);
}

#[test]
fn thousand_anchors_with_the_right_one_last() {
    // 999 decoy CAs share one key (only their names differ) to keep the test quick.
    let decoy_key = KeyPair::generate().unwrap();
    let mut anchors: Vec<CertificateDer<'static>> = (0..999)
        .map(|i| {
            ca_params(
                &format!("Decoy CA {i:04}"),
                now_dt() - Duration::days(1),
                now_dt() + Duration::days(3650),
            )
            .self_signed(&decoy_key)
            .unwrap()
            .der()
            .clone()
        })
        .collect();
    let right = root_ca("The Right CA");
    anchors.push(right.der.clone());
    let judge = Judge::new(&anchors, &[]).unwrap();
    assert_eq!(judge.anchor_count(), 1000);
    assert_eq!(judge.verify(&client(&right), &[], now()), Verdict::Trusted);
    assert_eq!(
        judge.verify(&client(&root_ca("Stranger")), &[], now()),
        DENIED_UNTRUSTED
    );
}

#[test]
fn unusable_anchor_and_crl_are_errors_naming_their_index() {
    let root = root_ca("Root");
    let err = Judge::new(
        &[root.der.clone(), CertificateDer::from(b"nope".to_vec())],
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(err, JudgeError::Anchor { index: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("trust anchor 1 is unusable: "));

    let err = Judge::new(
        std::slice::from_ref(&root.der),
        &[CertificateRevocationListDer::from(b"nope".to_vec())],
    )
    .unwrap_err();
    assert!(matches!(err, JudgeError::Crl { index: 0, .. }), "{err:?}");
    assert!(err.to_string().starts_with("CRL 0 is unusable: "));
}

#[test]
fn deny_reason_spellings() {
    let all = [
        DenyReason::Untrusted,
        DenyReason::Expired,
        DenyReason::NotYetValid,
        DenyReason::Revoked,
        DenyReason::Malformed,
    ];
    let names: Vec<&str> = all.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "untrusted",
            "expired",
            "not_yet_valid",
            "revoked",
            "malformed"
        ]
    );
    assert!(Verdict::Trusted.is_trusted());
    assert!(!DENIED_UNTRUSTED.is_trusted());
}

#[test]
fn self_signed_client_certificate_pinned_as_its_own_anchor() {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = named("pinned client");
    params.not_before = now_dt() - Duration::days(1);
    params.not_after = now_dt() + Duration::days(30);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).unwrap().der().clone();
    let judge = Judge::new(std::slice::from_ref(&cert), &[]).unwrap();
    assert_eq!(judge.verify(&cert, &[], now()), Verdict::Trusted);
}

#[test]
fn a_ca_certificate_presented_as_the_leaf_is_untrusted() {
    let root = root_ca("Root");
    let inter = sub_ca(&root, "Intermediate", 7, now_dt() + Duration::days(1000));
    let judge = judge(&[&root], &[]);
    assert_eq!(judge.verify(&inter.der, &[], now()), DENIED_UNTRUSTED);
}

/// 40 decoy anchors (enough for the judge to index anchors by subject) sharing one key.
fn decoys(count: usize) -> Vec<CertificateDer<'static>> {
    let key = KeyPair::generate().unwrap();
    (0..count)
        .map(|i| {
            ca_params(
                &format!("Decoy CA {i:04}"),
                now_dt() - Duration::days(1),
                now_dt() + Duration::days(3650),
            )
            .self_signed(&key)
            .unwrap()
            .der()
            .clone()
        })
        .collect()
}

#[test]
fn large_anchor_set_finds_the_anchor_behind_an_intermediate() {
    let root = root_ca("Root");
    let inter = sub_ca(&root, "Intermediate", 7, now_dt() + Duration::days(1000));
    let mut anchors = decoys(40);
    anchors.insert(20, root.der.clone());
    let judge = Judge::new(&anchors, &[fresh_crl(&root, &[0x99])]).unwrap();
    let leaf = client(&inter);
    assert_eq!(
        judge.verify(&leaf, std::slice::from_ref(&inter.der), now()),
        Verdict::Trusted
    );
    assert_eq!(judge.verify(&leaf, &[], now()), DENIED_UNTRUSTED);
    // A garbage intermediate next to the real one does not hide the path.
    let junk = CertificateDer::from(b"junk".to_vec());
    assert_eq!(
        judge.verify(&leaf, &[junk, inter.der.clone()], now()),
        Verdict::Trusted
    );
}

#[test]
fn large_anchor_set_with_two_anchors_of_the_same_name() {
    // Same subject, different keys: the judge must offer both to webpki.
    let decoy_same_name = root_ca("Shared Name");
    let real = root_ca("Shared Name");
    let mut anchors = decoys(40);
    anchors.push(decoy_same_name.der.clone());
    anchors.push(real.der.clone());
    let judge = Judge::new(&anchors, &[]).unwrap();
    assert_eq!(judge.verify(&client(&real), &[], now()), Verdict::Trusted);
    assert_eq!(
        judge.verify(&client(&decoy_same_name), &[], now()),
        Verdict::Trusted
    );
}

#[test]
fn large_anchor_set_still_drops_expired_anchors() {
    let old = root_ca_valid(
        "Old Root",
        now_dt() - Duration::days(3650),
        now_dt() - Duration::days(1),
    );
    let leaf = leaf(
        &old,
        LeafSpec {
            not_before: now_dt() - Duration::days(10),
            ..LeafSpec::default()
        },
    );
    let mut anchors = decoys(40);
    anchors.push(old.der.clone());
    let judge = Judge::new(&anchors, &[]).unwrap();
    assert_eq!(judge.anchors_valid_at(now()), 40);
    assert_eq!(judge.verify(&leaf, &[], now()), DENIED_UNTRUSTED);
    let before = now_dt() - Duration::days(2);
    assert_eq!(judge.verify(&leaf, &[], at(before)), Verdict::Trusted);
}

#[test]
fn large_anchor_set_revocation_and_dates_still_apply() {
    let root = root_ca("Root");
    let mut anchors = decoys(40);
    anchors.push(root.der.clone());
    let judge = Judge::new(&anchors, &[fresh_crl(&root, &[0xdead])]).unwrap();
    let revoked = leaf(
        &root,
        LeafSpec {
            serial: 0xdead,
            ..LeafSpec::default()
        },
    );
    assert_eq!(
        judge.verify(&revoked, &[], now()),
        Verdict::Denied(DenyReason::Revoked)
    );
    let expired = leaf(
        &root,
        LeafSpec {
            not_before: now_dt() - Duration::days(9),
            not_after: now_dt() - Duration::days(1),
            ..LeafSpec::default()
        },
    );
    assert_eq!(
        judge.verify(&expired, &[], now()),
        Verdict::Denied(DenyReason::Expired)
    );
}

// ---------------------------------------------------------------------------------------------
// Verdicts carry their end (SPEC §5): `valid_until`
// ---------------------------------------------------------------------------------------------

fn secs(dt: OffsetDateTime) -> u64 {
    u64::try_from(dt.unix_timestamp()).unwrap()
}

#[test]
fn a_trusted_verdict_ends_at_the_earliest_not_after_of_leaf_path_and_anchor() {
    let anchor_end = now_dt() + Duration::days(30);
    let inter_end = now_dt() + Duration::days(20);
    let leaf_end = now_dt() + Duration::days(10);
    let root = root_ca_valid("Root", now_dt() - Duration::days(30), anchor_end);
    let inter = sub_ca(&root, "Intermediate", 7, inter_end);
    let judge = judge(&[&root], &[]);
    let mk = |issuer: &Ca, not_after| {
        leaf(
            issuer,
            LeafSpec {
                not_after,
                ..LeafSpec::default()
            },
        )
    };
    let chain = std::slice::from_ref(&inter.der);
    // Leaf first, then the intermediate, then the anchor bound the verdict.
    let j = judge.judge(&mk(&inter, leaf_end), chain, now());
    assert_eq!(
        (j.verdict, j.valid_until),
        (Verdict::Trusted, secs(leaf_end))
    );
    let far = now_dt() + Duration::days(100);
    let j = judge.judge(&mk(&inter, far), chain, now());
    assert_eq!(
        (j.verdict, j.valid_until),
        (Verdict::Trusted, secs(inter_end))
    );
    let j = judge.judge(&mk(&root, far), &[], now());
    assert_eq!(
        (j.verdict, j.valid_until),
        (Verdict::Trusted, secs(anchor_end))
    );
    // The last second holds; the next one is judged otherwise.
    assert_eq!(
        judge.verify(&mk(&root, far), &[], at(anchor_end)),
        Verdict::Trusted
    );
    assert_eq!(
        judge.verify(&mk(&root, far), &[], at(anchor_end + Duration::seconds(1))),
        DENIED_UNTRUSTED
    );
    assert_eq!(
        judge.verify(
            &mk(&inter, far),
            chain,
            at(inter_end + Duration::seconds(1))
        ),
        Verdict::Denied(DenyReason::Expired)
    );
}

#[test]
fn an_unused_intermediate_does_not_shorten_the_verdict() {
    let root = root_ca("Root");
    let stale_end = now_dt() + Duration::days(2);
    let unrelated = sub_ca(&root, "Unrelated", 8, stale_end);
    let judge = judge(&[&root], &[]);
    let j = judge.judge(&client(&root), std::slice::from_ref(&unrelated.der), now());
    assert_eq!(j.verdict, Verdict::Trusted);
    assert_eq!(j.valid_until, secs(LeafSpec::default().not_after));
}

#[test]
fn a_crl_of_the_path_ends_the_verdict_the_second_before_its_next_update() {
    let root = root_ca("Root");
    let other = root_ca("Other");
    let next_update = now_dt() + Duration::days(3);
    let judge = judge(
        &[&root, &other],
        &[
            crl(&root, &[0x9999], next_update),
            crl(&other, &[], now_dt() + Duration::days(1)),
        ],
    );
    let leaf = client(&root);
    let j = judge.judge(&leaf, &[], now());
    // `other`'s CRL is not on this path and does not count.
    assert_eq!(
        (j.verdict, j.valid_until),
        (Verdict::Trusted, secs(next_update) - 1)
    );
    let j = judge.judge(&leaf, &[], at(next_update));
    assert_eq!(j.verdict, Verdict::Denied(DenyReason::RevocationUnknown));
    assert_eq!(DenyReason::RevocationUnknown.as_str(), "revocation_unknown");
}

#[test]
fn a_refusal_ends_at_the_leaf_next_date() {
    let root = root_ca("Root");
    let judge = judge(&[&root], &[]);
    let spec = LeafSpec::default();
    let not_after = spec.not_after;
    let stranger = root_ca("Stranger");
    let j = judge.judge(&leaf(&stranger, spec), &[], now());
    assert_eq!(
        (j.verdict, j.valid_until),
        (DENIED_UNTRUSTED, secs(not_after))
    );
    let early = leaf(
        &root,
        LeafSpec {
            not_before: now_dt() + Duration::days(1),
            ..LeafSpec::default()
        },
    );
    let j = judge.judge(&early, &[], now());
    assert_eq!(
        (j.verdict, j.valid_until),
        (
            Verdict::Denied(DenyReason::NotYetValid),
            secs(now_dt() + Duration::days(1)) - 1
        )
    );
    let j = judge.judge(
        &leaf(&root, LeafSpec::default()),
        &[],
        at(not_after + Duration::seconds(1)),
    );
    assert_eq!(
        (j.verdict, j.valid_until),
        (Verdict::Denied(DenyReason::Expired), certgate_pki::FOREVER)
    );
}
