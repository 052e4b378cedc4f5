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
//! webpki looks for an issuer by comparing the name of every anchor it is given, which
//! with 1000 anchors costs about as much as a signature check. Large anchor sets are
//! therefore indexed by subject: the judge reads the issuer names of the presented
//! certificates (a few DER headers, no full parse) and hands webpki only the anchors
//! that could issue one of them. webpki still does every check; the index only narrows
//! the search, and anything it cannot read falls back to the full list.

use std::collections::HashMap;
use std::fmt;

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, Der, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

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

        let crls = crls
            .iter()
            .enumerate()
            .map(|(index, der)| {
                OwnedCertRevocationList::from_der(der)
                    .map(CertRevocationList::from)
                    .map_err(|e| JudgeError::Crl {
                        index,
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Judge {
            anchors,
            not_after,
            by_subject,
            crls,
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

    /// Judges `leaf` (with `intermediates`) at `now`. An anchor expired at `now`
    /// validates nothing.
    ///
    /// The leaf's own dates are checked before any path is built, so an expired or
    /// not-yet-valid leaf is reported as such even when its chain is fine (or unknown).
    /// Every certificate of the path is checked against the CRLs; a CA without a CRL is
    /// fine, and a CRL past its nextUpdate still counts.
    pub fn verify(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Verdict {
        if self.anchors.is_empty() {
            // An empty trust table fails closed (SPEC §2).
            return Verdict::Denied(DenyReason::Untrusted);
        }
        let Ok(end_entity) = EndEntityCert::try_from(leaf) else {
            return Verdict::Denied(DenyReason::Malformed);
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
            Ok(_) => Verdict::Trusted,
            Err(e) => Verdict::Denied(deny_reason(&e)),
        }
    }
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
    let (SEQUENCE, certificate, _) = der_tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = der_tlv(certificate)? else {
        return None;
    };
    let (tag, _, after_first) = der_tlv(tbs)?;
    let serial_and_on = if tag == VERSION { after_first } else { tbs };
    let (INTEGER, _, rest) = der_tlv(serial_and_on)? else {
        return None;
    };
    let (SEQUENCE, _, rest) = der_tlv(rest)? else {
        return None;
    };
    let (SEQUENCE, issuer, _) = der_tlv(rest)? else {
        return None;
    };
    Some(issuer)
}

/// Splits one DER TLV off `input`: (tag, content, rest). Low tag numbers and definite
/// lengths only, as DER certificates use.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// Maps a webpki error to the reason reported in logs and metrics.
fn deny_reason(error: &webpki::Error) -> DenyReason {
    use webpki::Error as E;
    match error {
        E::CertExpired { .. } => DenyReason::Expired,
        E::CertNotValidYet { .. } => DenyReason::NotYetValid,
        E::CertRevoked => DenyReason::Revoked,
        E::BadDer | E::BadDerTime | E::TrailingData(_) => DenyReason::Malformed,
        // Unknown issuer, bad signatures, wrong key usage, constraints, path limits.
        _ => DenyReason::Untrusted,
    }
}
