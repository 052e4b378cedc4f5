//! [`CertificateInfo`]: the parsed fields of one X.509 certificate, PEM/DER parsing,
//! fingerprints and the expiry status of SPEC §8.

use std::net::IpAddr;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

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
    /// The input holds no certificate.
    #[error("no certificate found in the input")]
    Empty,
    /// The PEM armour or its base64 does not decode.
    #[error("PEM is malformed: {0}")]
    Pem(String),
    /// The DER is not an X.509 certificate.
    #[error("certificate DER is malformed: {0}")]
    Der(String),
}

/// The parsed fields of one X.509 certificate.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    /// The certificate as given.
    pub der: CertificateDer<'static>,
    /// The subject DN.
    pub subject: Dn,
    /// The issuer DN.
    pub issuer: Dn,
    /// Lowercase hex without separators.
    pub serial_hex: String,
    /// `sha256:` + lowercase hex of the DER.
    pub fingerprint_sha256: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// basicConstraints `cA` (false when the extension is absent).
    pub is_ca: bool,
    /// Subject alternative names, rendered as `DNS:…`, `IP:…`, `email:…`, `URI:…`.
    pub sans: Vec<String>,
}

impl CertificateInfo {
    /// Parses one DER certificate. Bytes after the certificate are an error.
    pub fn from_der(der: &[u8]) -> Result<CertificateInfo, CertError> {
        let (rest, x509) =
            X509Certificate::from_der(der).map_err(|e| CertError::Der(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertError::Der(format!(
                "{} bytes of trailing data after the certificate",
                rest.len()
            )));
        }
        let is_ca = match x509.basic_constraints() {
            Ok(Some(bc)) => bc.value.ca,
            Ok(None) => false,
            Err(e) => return Err(CertError::Der(e.to_string())),
        };
        let sans = match x509.subject_alternative_name() {
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .filter_map(render_san)
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(CertError::Der(e.to_string())),
        };
        let subject = Dn::try_from_x509_name(x509.subject())
            .map_err(|e| CertError::Der(format!("subject: {e}")))?;
        let issuer = Dn::try_from_x509_name(x509.issuer())
            .map_err(|e| CertError::Der(format!("issuer: {e}")))?;
        Ok(CertificateInfo {
            der: CertificateDer::from(der.to_vec()),
            subject,
            issuer,
            serial_hex: serial_hex(x509.raw_serial()),
            fingerprint_sha256: fingerprint_sha256(der),
            not_before: x509.validity().not_before.to_datetime(),
            not_after: x509.validity().not_after.to_datetime(),
            is_ca,
            sans,
        })
    }

    /// Parses every certificate of a PEM text (a chain in one PEM too), in order.
    /// Sections other than `CERTIFICATE` (a private key, a CRL) are skipped.
    pub fn parse_pem_chain(pem: &str) -> Result<Vec<CertificateInfo>, CertError> {
        let mut out = Vec::new();
        for item in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let der = item.map_err(|e| CertError::Pem(e.to_string()))?;
            out.push(CertificateInfo::from_der(der.as_ref())?);
        }
        if out.is_empty() {
            return Err(CertError::Empty);
        }
        Ok(out)
    }

    /// Parses PEM (first certificate) or DER, whichever the bytes are.
    pub fn parse_any(bytes: &[u8]) -> Result<CertificateInfo, CertError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(CertError::Empty);
        }
        if contains(bytes, b"-----BEGIN") {
            let der = CertificateDer::pem_slice_iter(bytes)
                .next()
                .ok_or(CertError::Empty)?
                .map_err(|e| CertError::Pem(e.to_string()))?;
            return CertificateInfo::from_der(der.as_ref());
        }
        CertificateInfo::from_der(bytes)
    }

    /// The expiry status at `now` (90-day window).
    pub fn expiry_status(&self, now: OffsetDateTime) -> ExpiryStatus {
        expiry_status(self.not_after, now)
    }

    /// Whole days from `now` to notAfter (negative once expired).
    pub fn days_to_expiry(&self, now: OffsetDateTime) -> i64 {
        days_to_expiry(self.not_after, now)
    }
}

/// The expiry status of a certificate with this notAfter at `now`: `Expired` once notAfter
/// is in the past, `ExpiringSoon` when it is at most 90 days away, else `Ok`.
pub fn expiry_status(not_after: OffsetDateTime, now: OffsetDateTime) -> ExpiryStatus {
    if not_after < now {
        ExpiryStatus::Expired
    } else if not_after - now <= EXPIRING_SOON_WINDOW {
        ExpiryStatus::ExpiringSoon
    } else {
        ExpiryStatus::Ok
    }
}

/// Whole days from `now` to `not_after`, rounded down: 0 on the last day, negative once
/// expired (-1 during the first day after notAfter).
pub fn days_to_expiry(not_after: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (not_after - now).whole_seconds().div_euclid(86_400)
}

/// How close to notAfter a certificate counts as `expiring_soon`.
pub const EXPIRING_SOON_WINDOW: Duration = Duration::days(90);

/// Wraps DER bytes in a PEM block labelled `label` (e.g. `CERTIFICATE`, `X509 CRL`) with
/// 64-character base64 lines (RFC 7468), the one PEM encoder of the workspace.
pub fn der_to_pem(der: &[u8], label: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// `sha256:` + lowercase hex of the SHA-256 of `der`.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// Lowercase hex of a DER INTEGER's content without the leading zero byte DER adds to keep
/// a positive number positive (`openssl x509 -serial`, lower-cased).
fn serial_hex(raw: &[u8]) -> String {
    let mut bytes = raw;
    while bytes.len() > 1 && bytes.first() == Some(&0) {
        bytes = bytes.get(1..).unwrap_or(&[]);
    }
    hex::encode(bytes)
}

/// One SAN as `DNS:…`, `IP:…`, `email:…`, `URI:…` or `DirName:…`; other kinds are left out.
fn render_san(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(s) => Some(format!("DNS:{s}")),
        GeneralName::RFC822Name(s) => Some(format!("email:{s}")),
        GeneralName::URI(s) => Some(format!("URI:{s}")),
        GeneralName::IPAddress(bytes) => {
            let ip = match bytes.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?),
                16 => IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?),
                _ => return None,
            };
            Some(format!("IP:{ip}"))
        }
        GeneralName::DirectoryName(n) => Some(format!("DirName:{}", Dn::from_x509_name(n))),
        _ => None,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
