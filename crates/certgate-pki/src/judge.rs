//! The chain judge: validates a client chain against trust anchors and CRLs with
//! rustls-webpki (client-auth usage). Serves mtls and header mode alike.

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};

/// Why a chain was not accepted (also the `reason` label of the denial counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    Untrusted,
    Expired,
    NotYetValid,
    Revoked,
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

/// The judge's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Trusted,
    Denied(DenyReason),
}

/// A trust anchor or CRL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JudgeError {
    #[error("trust anchor {index} is unusable: {reason}")]
    Anchor { index: usize, reason: String },
    #[error("CRL {index} is unusable: {reason}")]
    Crl { index: usize, reason: String },
}

/// Trust anchors and CRLs compiled once, judging many chains.
#[derive(Debug)]
pub struct Judge {
    _private: (),
}

impl Judge {
    /// Compiles the anchors and CRLs (both DER).
    pub fn new(
        _anchors: &[CertificateDer<'_>],
        _crls: &[CertificateRevocationListDer<'_>],
    ) -> Result<Judge, JudgeError> {
        todo!()
    }

    /// Number of anchors.
    pub fn anchor_count(&self) -> usize {
        todo!()
    }

    /// Judges `leaf` (with `intermediates`) at `now`. An anchor expired at `now`
    /// validates nothing.
    pub fn verify(
        &self,
        _leaf: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Verdict {
        todo!()
    }
}
