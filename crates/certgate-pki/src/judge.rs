//! The chain judge: validates a client chain against trust anchors and CRLs with
//! rustls-webpki (client-auth usage). Serves mtls and header mode alike.
//!
//! The judge owns the compiled form of the trust store (webpki trust anchors plus each
//! anchor's notAfter) and the CRLs, and answers one question: is this chain, at this
//! time, a client certificate issued under one of the anchors and not revoked?
//!
//! webpki checks the dates of the leaf and the intermediates but not of the trust anchor
//! itself, whereas SPEC §5 says an expired trusted certificate validates nothing. The
//! anchors are therefore kept sorted by notAfter, latest first: the anchors still valid at
//! `now` are a prefix of that list, found by one binary search, so the common case (no
//! expired anchor) costs nothing extra.
//!
//! A verdict carries its end ([`Judgement::valid_until`]): the last second at which it
//! still holds. For an accepted chain that is the earliest notAfter of the leaf, of the
//! intermediates on the verified path and of the anchor, and the second before the
//! earliest nextUpdate of a CRL issued for a certificate of the path. Callers that cache
//! a verdict judge the chain again once their clock passes it. A CRL of the path whose
//! nextUpdate has passed makes the status unknowable: the chain is refused with
//! [`DenyReason::RevocationUnknown`] (SPEC §16, `revocation_failure = strict`, the
//! default), unless that CRL lists a certificate of the chain (still `revoked`).
//!
//! webpki looks for an issuer by comparing the name of every anchor it is given, which
//! with 1000 anchors costs about as much as a signature check. Large anchor sets are
//! therefore indexed by subject: the judge reads the issuer names of the presented
//! certificates (a few DER headers, no full parse) and hands webpki only the anchors
//! that could issue one of them. webpki still does every check; the index only narrows
//! the search, and anything it cannot read falls back to the full list.

use crate::der;
use std::collections::HashMap;
use std::fmt;

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, Der, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::certificate::X509CertificateParser;
use x509_parser::nom::Parser;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

/// Why a chain was not accepted (also the `reason` label of the denial counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// No path to a trust anchor valid at the time (unknown issuer, bad signature, an
    /// expired anchor, a certificate not for client authentication, ...).
    Untrusted,
    /// The leaf (or an intermediate) is past its notAfter.
    Expired,
    /// The leaf (or an intermediate) is before its notBefore.
    NotYetValid,
    /// A certificate of the chain is on a CRL.
    Revoked,
    /// The leaf (or an intermediate needed for the path) is not valid DER.
    Malformed,
    /// A CRL for a certificate of the chain is past its nextUpdate: the revocation
    /// status cannot be learned (SPEC §16, strict).
    RevocationUnknown,
}

impl DenyReason {
    /// The spelling used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Untrusted => "untrusted",
            DenyReason::Expired => "expired",
            DenyReason::NotYetValid => "not_yet_valid",
            DenyReason::Revoked => "revoked",
            DenyReason::Malformed => "malformed",
            DenyReason::RevocationUnknown => "revocation_unknown",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The judge's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The chain leads to a trust anchor valid at the time, for client authentication,
    /// and nothing on it is revoked.
    Trusted,
    /// The chain was refused, and why.
    Denied(DenyReason),
}

impl Verdict {
    /// True for [`Verdict::Trusted`].
    pub fn is_trusted(self) -> bool {
        self == Verdict::Trusted
    }
}

/// A `valid_until` that never comes: the verdict changes only with the trust store.
pub const FOREVER: u64 = u64::MAX;

/// A verdict and the last second it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// The answer at the judging time.
    pub verdict: Verdict,
    /// Unix seconds: the verdict holds for every `now` with `now.as_secs() <=
    /// valid_until`; after that the chain must be judged again. [`FOREVER`] when no date
    /// of the chain can change it.
    pub valid_until: u64,
}

/// A trust anchor or CRL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JudgeError {
    /// The anchor at `index` (0-based, in the order given) is not a usable certificate.
    #[error("trust anchor {index} is unusable: {reason}")]
    Anchor {
        /// 0-based position in the anchors given to [`Judge::new`].
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// The CRL at `index` (0-based, in the order given) does not parse.
    #[error("CRL {index} is unusable: {reason}")]
    Crl {
        /// 0-based position in the CRLs given to [`Judge::new`].
        index: usize,
        /// What was wrong.
        reason: String,
    },
}

/// Trust anchors and CRLs compiled once, judging many chains.
pub struct Judge {
    /// Anchors sorted by notAfter, latest first (see the module docs).
    anchors: Vec<TrustAnchor<'static>>,
    /// `not_after[i]` is the notAfter (Unix seconds) of `anchors[i]`; non-increasing.
    not_after: Vec<i64>,
    /// Subject (DER content of the Name) → indices into `anchors`, ascending. Built only
    /// for sets larger than [`INDEX_THRESHOLD`].
    by_subject: Option<HashMap<Box<[u8]>, Vec<usize>>>,
    crls: Vec<CertRevocationList<'static>>,
    /// `crl_next_update[i]` is the nextUpdate (Unix seconds) of `crls[i]`.
    crl_next_update: Vec<u64>,
}

/// Below this many anchors webpki's own linear scan is cheaper than the index lookup.
const INDEX_THRESHOLD: usize = 16;

impl fmt::Debug for Judge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Judge")
            .field("anchors", &self.anchors.len())
            .field("crls", &self.crls.len())
            .finish()
    }
}

impl Judge {
    /// Compiles the anchors and CRLs (both DER).
    pub fn new(
        anchors: &[CertificateDer<'_>],
        crls: &[CertificateRevocationListDer<'_>],
    ) -> Result<Judge, JudgeError> {
        let mut compiled = Vec::with_capacity(anchors.len());
        for (index, der) in anchors.iter().enumerate() {
            let anchor_err = |reason: String| JudgeError::Anchor { index, reason };
            let not_after = match x509_parser::parse_x509_certificate(der) {
                Ok((_, cert)) => cert.validity().not_after.timestamp(),
                Err(e) => return Err(anchor_err(format!("not an X.509 certificate ({e})"))),
            };
            let anchor = webpki::anchor_from_trusted_cert(der)
                .map_err(|e| anchor_err(format!("not usable as a trust anchor ({e})")))?
                .to_owned();
            compiled.push((not_after, anchor));
        }
        // Latest notAfter first; stable, so equal dates keep the order given.
        compiled.sort_by_key(|(not_after, _)| std::cmp::Reverse(*not_after));
        let (not_after, anchors): (Vec<i64>, Vec<TrustAnchor<'static>>) =
            compiled.into_iter().unzip();
        let by_subject = (anchors.len() > INDEX_THRESHOLD).then(|| {
            let mut map: HashMap<Box<[u8]>, Vec<usize>> = HashMap::new();
            for (i, anchor) in anchors.iter().enumerate() {
                map.entry(Box::from(anchor.subject.as_ref()))
                    .or_default()
                    .push(i);
            }
            map
        });

        let mut compiled_crls = Vec::with_capacity(crls.len());
        let mut crl_next_update = Vec::with_capacity(crls.len());
        for (index, der) in crls.iter().enumerate() {
            let crl_err = |reason: String| JudgeError::Crl { index, reason };
            let crl = OwnedCertRevocationList::from_der(der)
                .map(CertRevocationList::from)
                .map_err(|e| crl_err(e.to_string()))?;
            // webpki keeps nextUpdate to itself; read it once here.
            let next_update = crl_next_update_secs(der).map_err(crl_err)?;
            compiled_crls.push(crl);
            crl_next_update.push(next_update);
        }
        Ok(Judge {
            anchors,
            not_after,
            by_subject,
            crls: compiled_crls,
            crl_next_update,
        })
    }

    /// Number of anchors.
    pub fn anchor_count(&self) -> usize {
        self.anchors.len()
    }

    /// Number of CRLs.
    pub fn crl_count(&self) -> usize {
        self.crls.len()
    }

    /// Number of anchors still valid (not past their notAfter) at `now`.
    pub fn anchors_valid_at(&self, now: UnixTime) -> usize {
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        // Same boundary as webpki: a certificate is expired once `now > notAfter`.
        self.not_after
            .partition_point(|&not_after| not_after >= now)
    }

    /// Judges `leaf` (with `intermediates`) at `now`; see [`Judge::judge`].
    pub fn verify(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Verdict {
        self.judge(leaf, intermediates, now).verdict
    }

    /// Judges `leaf` (with `intermediates`) at `now`, and says until when the answer
    /// holds. An anchor expired at `now` validates nothing.
    ///
    /// The leaf's own dates are checked before any path is built, so an expired or
    /// not-yet-valid leaf is reported as such even when its chain is fine (or unknown).
    /// Every certificate of the path is checked against the CRLs; a CA without a CRL is
    /// fine. A CRL past its nextUpdate still revokes what it lists; for anything else
    /// it leaves the status unknown (see the module docs).
    ///
    /// A refusal holds until the leaf's next date (its notBefore when not yet valid, its
    /// notAfter while within it): other dates change a refusal only into another one.
    pub fn judge(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Judgement {
        let denied = |reason, valid_until| Judgement {
            verdict: Verdict::Denied(reason),
            valid_until,
        };
        if self.anchors.is_empty() {
            // An empty trust table fails closed (SPEC §2).
            return denied(DenyReason::Untrusted, FOREVER);
        }
        let Ok(end_entity) = EndEntityCert::try_from(leaf) else {
            return denied(DenyReason::Malformed, FOREVER);
        };
        let now_secs = now.as_secs();
        let Some(leaf_validity) = validity(leaf) else {
            return denied(DenyReason::Malformed, FOREVER);
        };
        let valid = self.anchors_valid_at(now);
        let all_valid = self.anchors.get(..valid).unwrap_or_default();
        let candidates = self.candidate_anchors(leaf, intermediates, valid);
        let anchors = candidates.as_deref().unwrap_or(all_valid);

        let crl_refs: Vec<&CertRevocationList<'static>>;
        let revocation = if self.crls.is_empty() {
            None
        } else {
            crl_refs = self.crls.iter().collect();
            RevocationOptionsBuilder::new(&crl_refs)
                .ok()
                .map(|builder| {
                    builder
                        .with_depth(RevocationCheckDepth::Chain)
                        .with_status_policy(UnknownStatusPolicy::Allow)
                        // A stale CRL still revokes; staleness is judged below.
                        .with_expiration_policy(ExpirationPolicy::Ignore)
                        .build()
                })
        };

        match end_entity.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            anchors,
            intermediates,
            now,
            KeyUsage::client_auth(),
            revocation,
            None,
        ) {
            Ok(path) => {
                let mut until = leaf_validity.1;
                let mut issuers: Vec<&[u8]> = vec![end_entity.issuer()];
                for cert in path.intermediate_certificates() {
                    issuers.push(cert.issuer());
                    match validity(&cert.der()) {
                        Some((_, not_after)) => until = until.min(not_after),
                        // webpki read it; a date we cannot read fails closed.
                        None => return denied(DenyReason::Malformed, FOREVER),
                    }
                }
                until = until.min(self.anchor_not_after(path.anchor()));
                let mut crl_until = FOREVER;
                for (crl, &next_update) in self.crls.iter().zip(&self.crl_next_update) {
                    if issuers.contains(&crl.issuer()) {
                        // webpki: a CRL is stale once `now >= nextUpdate`.
                        crl_until = crl_until.min(next_update.saturating_sub(1));
                    }
                }
                if crl_until < now_secs {
                    // Until the path's own end: `revocation_failure = soft` passes it that long.
                    return denied(DenyReason::RevocationUnknown, until);
                }
                Judgement {
                    verdict: Verdict::Trusted,
                    valid_until: until.min(crl_until),
                }
            }
            Err(e) => denied(deny_reason(&e), next_leaf_date(leaf_validity, now_secs)),
        }
    }

    /// The notAfter of the anchor webpki chose (the latest of equal ones, fail-safe: the
    /// earliest notAfter among anchors with that subject and key).
    fn anchor_not_after(&self, chosen: &TrustAnchor<'_>) -> u64 {
        let same = |a: &TrustAnchor<'_>| {
            a.subject.as_ref() == chosen.subject.as_ref()
                && a.subject_public_key_info.as_ref() == chosen.subject_public_key_info.as_ref()
        };
        let indices: Box<dyn Iterator<Item = usize> + '_> = match &self.by_subject {
            Some(index) => Box::new(
                index
                    .get(chosen.subject.as_ref())
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .copied(),
            ),
            None => Box::new(0..self.anchors.len()),
        };
        indices
            .filter(|&i| self.anchors.get(i).is_some_and(same))
            .filter_map(|i| self.not_after.get(i))
            .map(|&t| u64::try_from(t).unwrap_or(0))
            .min()
            // Not found cannot happen (webpki returns one of ours); fail closed.
            .unwrap_or(0)
    }
}

impl Judge {
    /// The SubjectPublicKeyInfo contents (as [`crate::ocsp::query`] takes them) of the
    /// issuer of `cert`: the first of `intermediates` whose subject is `cert`'s issuer,
    /// else an anchor valid at `now` with that subject. Used for OCSP; the judge has
    /// already verified the chain, so this only finds the key on that path.
    pub fn issuer_spki(
        &self,
        cert: &[u8],
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Option<Vec<u8>> {
        // Name and SPKI contents (no outer tag), as webpki's anchors keep them.
        let issuer = issuer_name(cert)?.to_vec();
        for der in intermediates {
            if let Ok((_, c)) = x509_parser::parse_x509_certificate(der) {
                let subject = der::split(c.subject().as_raw()).map(|t| t.content);
                if subject == Some(issuer.as_slice()) {
                    return der::split(c.public_key().raw).map(|t| t.content.to_vec());
                }
            }
        }
        let valid = self.anchors_valid_at(now);
        self.anchors
            .get(..valid)
            .unwrap_or_default()
            .iter()
            .find(|a| a.subject.as_ref() == issuer.as_slice())
            .map(|a| a.subject_public_key_info.as_ref().to_vec())
    }

    /// Checks a chain this judge accepted against CRLs fetched from its distribution
    /// points (SPEC §16 `crl_dp`): `Err(Revoked)` when one lists a certificate of the
    /// path, `Err(RevocationUnknown)` when a CRL for a certificate of the path cannot be
    /// used (its signature does not verify with the issuing CA's key, the CA may not sign
    /// CRLs, an unsupported algorithm or critical extension). Freshness is the caller's:
    /// every CRL given is taken as current. A certificate without a CRL here is fine.
    pub fn check_fetched(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        crls: &[&crate::fetched::FetchedCrl],
    ) -> Result<(), DenyReason> {
        if crls.is_empty() {
            return Ok(());
        }
        let end_entity = EndEntityCert::try_from(leaf).map_err(|_| DenyReason::Malformed)?;
        let valid = self.anchors_valid_at(now);
        let anchors = self.anchors.get(..valid).unwrap_or_default();
        let refs: Vec<&CertRevocationList<'static>> = crls.iter().map(|c| &c.crl).collect();
        let revocation = RevocationOptionsBuilder::new(&refs)
            .map_err(|_| DenyReason::RevocationUnknown)?
            .with_depth(RevocationCheckDepth::Chain)
            .with_status_policy(UnknownStatusPolicy::Allow)
            .with_expiration_policy(ExpirationPolicy::Ignore)
            .build();
        match end_entity.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            anchors,
            intermediates,
            now,
            KeyUsage::client_auth(),
            Some(revocation),
            None,
        ) {
            Ok(_) => Ok(()),
            Err(webpki::Error::CertRevoked) => Err(DenyReason::Revoked),
            Err(
                webpki::Error::InvalidCrlSignatureForPublicKey
                | webpki::Error::UnsupportedCrlSignatureAlgorithmContext(_)
                | webpki::Error::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_)
                | webpki::Error::IssuerNotCrlSigner
                | webpki::Error::UnsupportedCrlVersion
                | webpki::Error::UnsupportedCriticalExtension
                | webpki::Error::UnsupportedDeltaCrl
                | webpki::Error::UnsupportedIndirectCrl
                | webpki::Error::UnsupportedRevocationReason
                | webpki::Error::UnsupportedRevocationReasonsPartitioning
                | webpki::Error::UnsupportedCrlIssuingDistributionPoint,
            ) => Err(DenyReason::RevocationUnknown),
            Err(e) => Err(deny_reason(&e)),
        }
    }
}

/// (notBefore, notAfter) of a DER certificate in Unix seconds (before 1970: 0). `None`
/// when it does not parse.
fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let mut parser = X509CertificateParser::new().with_deep_parse_extensions(false);
    let (_, cert) = parser.parse(der).ok()?;
    let secs = |t: i64| u64::try_from(t).unwrap_or(0);
    let v = cert.validity();
    Some((
        secs(v.not_before.timestamp()),
        secs(v.not_after.timestamp()),
    ))
}

/// Until when a refusal of a leaf with `validity` holds at `now`: through the second
/// before notBefore, or through notAfter, or forever once expired.
fn next_leaf_date((not_before, not_after): (u64, u64), now: u64) -> u64 {
    if now < not_before {
        not_before - 1
    } else if now <= not_after {
        not_after
    } else {
        FOREVER
    }
}

/// The nextUpdate of a DER CRL in Unix seconds ([`FOREVER`] when it has none).
fn crl_next_update_secs(der: &[u8]) -> Result<u64, String> {
    let (_, crl) = CertificateRevocationList::from_der(der).map_err(|e| e.to_string())?;
    Ok(crl
        .next_update()
        .map(|t| u64::try_from(t.timestamp()).unwrap_or(0))
        .unwrap_or(FOREVER))
}

impl Judge {
    /// The anchors (valid at `now`: index `< valid`) whose subject is the issuer of the
    /// leaf or of an intermediate, borrowed, without duplicates. `None` when there is no
    /// index or a certificate's issuer cannot be read: then every valid anchor is used.
    fn candidate_anchors<'s>(
        &'s self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        valid: usize,
    ) -> Option<Vec<TrustAnchor<'s>>> {
        let index = self.by_subject.as_ref()?;
        let mut picked: Vec<usize> = Vec::new();
        for cert in std::iter::once(leaf).chain(intermediates) {
            let issuer = issuer_name(cert)?;
            for &i in index.get(issuer).map(Vec::as_slice).unwrap_or_default() {
                if i < valid && !picked.contains(&i) {
                    picked.push(i);
                }
            }
        }
        Some(
            picked
                .into_iter()
                .filter_map(|i| self.anchors.get(i))
                .map(|anchor| TrustAnchor {
                    subject: Der::from_slice(anchor.subject.as_ref()),
                    subject_public_key_info: Der::from_slice(
                        anchor.subject_public_key_info.as_ref(),
                    ),
                    name_constraints: anchor
                        .name_constraints
                        .as_ref()
                        .map(|nc| Der::from_slice(nc.as_ref())),
                })
                .collect(),
        )
    }
}

/// The DER content of a certificate's issuer Name (what webpki compares with an
/// anchor's subject), read from the TLV headers only. `None` if the DER is not shaped
/// like a certificate.
fn issuer_name(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const VERSION: u8 = 0xa0; // [0] EXPLICIT, optional
    let certificate = der::expect(cert, SEQUENCE)?.content;
    let tbs = der::expect(certificate, SEQUENCE)?.content;
    let serial_and_on = match der::expect(tbs, VERSION) {
        Some(version) => version.rest,
        None => tbs,
    };
    let rest = der::expect(serial_and_on, INTEGER)?.rest;
    let rest = der::expect(rest, SEQUENCE)?.rest; // signature algorithm
    Some(der::expect(rest, SEQUENCE)?.content)
}

/// Maps a webpki error to the reason reported in logs and metrics.
fn deny_reason(error: &webpki::Error) -> DenyReason {
    use webpki::Error as E;
    match error {
        E::CertExpired { .. } => DenyReason::Expired,
        E::CertNotValidYet { .. } => DenyReason::NotYetValid,
        E::CertRevoked => DenyReason::Revoked,
        E::BadDer | E::BadDerTime | E::TrailingData(_) => DenyReason::Malformed,
        E::CrlExpired { .. } => DenyReason::RevocationUnknown,
        // Unknown issuer, bad signatures, wrong key usage, constraints, path limits.
        _ => DenyReason::Untrusted,
    }
}
