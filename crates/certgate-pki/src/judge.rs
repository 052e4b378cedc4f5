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
//! expired anchor) costs nothing extra and needs no allocation.

use std::fmt;

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor, UnixTime};
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
    crls: Vec<CertRevocationList<'static>>,
}

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
        let (not_after, anchors) = compiled.into_iter().unzip();

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
        let anchors = self.anchors.get(..valid).unwrap_or_default();

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
