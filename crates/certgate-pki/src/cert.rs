//! [`CertificateInfo`]: the parsed fields of one X.509 certificate, and PEM/DER parsing.

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::dn::Dn;

/// How close a certificate is to its notAfter (SPEC §8 `expiry_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryStatus {
    /// More than 90 days left.
    Ok,
    /// Expires within 90 days.
    ExpiringSoon,
    /// notAfter is in the past.
    Expired,
}

impl ExpiryStatus {
    /// The API spelling: `ok`, `expiring_soon`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryStatus::Ok => "ok",
            ExpiryStatus::ExpiringSoon => "expiring_soon",
            ExpiryStatus::Expired => "expired",
        }
    }
}

/// A certificate that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("no certificate found in the input")]
    Empty,
    #[error("PEM is malformed: {0}")]
    Pem(String),
    #[error("certificate DER is malformed: {0}")]
    Der(String),
}

/// The parsed fields of one X.509 certificate.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    pub der: CertificateDer<'static>,
    pub subject: Dn,
    pub issuer: Dn,
    /// Lowercase hex without separators.
    pub serial_hex: String,
    /// `sha256:` + lowercase hex of the DER.
    pub fingerprint_sha256: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub is_ca: bool,
    /// Subject alternative names, rendered as `DNS:…`, `IP:…`, `email:…`, `URI:…`.
    pub sans: Vec<String>,
}

impl CertificateInfo {
    /// Parses one DER certificate.
    pub fn from_der(_der: &[u8]) -> Result<CertificateInfo, CertError> {
        todo!()
    }

    /// Parses every certificate of a PEM text (a chain in one PEM too), in order.
    pub fn parse_pem_chain(_pem: &str) -> Result<Vec<CertificateInfo>, CertError> {
        todo!()
    }

    /// Parses PEM (first certificate) or DER, whichever the bytes are.
    pub fn parse_any(_bytes: &[u8]) -> Result<CertificateInfo, CertError> {
        todo!()
    }

    /// The expiry status at `now` (90-day window).
    pub fn expiry_status(&self, _now: OffsetDateTime) -> ExpiryStatus {
        todo!()
    }

    /// Whole days from `now` to notAfter (negative once expired).
    pub fn days_to_expiry(&self, _now: OffsetDateTime) -> i64 {
        todo!()
    }
}
