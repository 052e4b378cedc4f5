//! Revocation without a trust anchor: the serials that CRLs list, by issuer.
//!
//! In header mode with an empty trust table (SPEC §6) there is no anchor to verify a CRL's
//! signature with; the CRLs are then taken as the operator configured them (admin-API
//! input, not peer input) and a certificate is revoked when a CRL of its issuer lists its
//! serial. With a trust table, [`crate::Judge`] checks CRLs with their signatures instead.

use std::collections::HashSet;

use rustls_pki_types::CertificateRevocationListDer;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::judge::JudgeError;

/// The (issuer name DER, serial) pairs of a set of CRLs.
#[derive(Debug, Clone, Default)]
pub struct RevokedSerials {
    entries: HashSet<(Vec<u8>, Vec<u8>)>,
}

impl RevokedSerials {
    /// Reads every revoked serial of `crls` (DER). A CRL that does not parse is an error
    /// naming its index.
    pub fn from_crls(
        crls: &[CertificateRevocationListDer<'_>],
    ) -> Result<RevokedSerials, JudgeError> {
        let mut entries = HashSet::new();
        for (index, der) in crls.iter().enumerate() {
            let (_, crl) =
                CertificateRevocationList::from_der(der.as_ref()).map_err(|e| JudgeError::Crl {
                    index,
                    reason: e.to_string(),
                })?;
            let issuer = crl.issuer().as_raw().to_vec();
            for revoked in crl.iter_revoked_certificates() {
                entries.insert((
                    issuer.clone(),
                    strip_sign_byte(revoked.raw_serial()).to_vec(),
                ));
            }
        }
        Ok(RevokedSerials { entries })
    }

    /// True when no CRL lists anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a CRL of the certificate's issuer lists its serial. A certificate that does
    /// not parse is not "revoked" here (it is refused as malformed elsewhere).
    pub fn is_revoked(&self, cert_der: &[u8]) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let Ok((_, cert)) = X509Certificate::from_der(cert_der) else {
            return false;
        };
        let key = (
            cert.issuer().as_raw().to_vec(),
            strip_sign_byte(cert.raw_serial()).to_vec(),
        );
        self.entries.contains(&key)
    }
}

/// DER INTEGERs may carry a leading 0x00 for the sign; compare magnitudes.
fn strip_sign_byte(serial: &[u8]) -> &[u8] {
    match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        s => s,
    }
}
