//! Revocation without a trust anchor: the serials that CRLs list, by issuer.
//!
//! In header mode with an empty trust table (SPEC §6) there is no anchor to verify a CRL's
//! signature with; the CRLs are then taken as the operator configured them (admin-API
//! input, not peer input) and a certificate is revoked when a CRL of its issuer lists its
//! serial. With a trust table, [`crate::Judge`] checks CRLs with their signatures instead.
//!
//! As with the judge, a CRL past its nextUpdate still revokes what it lists, and leaves the
//! status of any other certificate of its issuer unknown (SPEC §16, strict).

use std::collections::{HashMap, HashSet};

use rustls_pki_types::CertificateRevocationListDer;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::judge::{DenyReason, JudgeError, FOREVER};

/// The (issuer name DER, serial) pairs of a set of CRLs.
#[derive(Debug, Clone, Default)]
pub struct RevokedSerials {
    entries: HashSet<(Vec<u8>, Vec<u8>)>,
    /// Issuer name DER → the earliest nextUpdate (Unix seconds) of its CRLs.
    next_update: HashMap<Vec<u8>, u64>,
}

impl RevokedSerials {
    /// Reads every revoked serial of `crls` (DER). A CRL that does not parse is an error
    /// naming its index.
    pub fn from_crls(
        crls: &[CertificateRevocationListDer<'_>],
    ) -> Result<RevokedSerials, JudgeError> {
        let mut entries = HashSet::new();
        let mut next_update: HashMap<Vec<u8>, u64> = HashMap::new();
        for (index, der) in crls.iter().enumerate() {
            let (_, crl) =
                CertificateRevocationList::from_der(der.as_ref()).map_err(|e| JudgeError::Crl {
                    index,
                    reason: e.to_string(),
                })?;
            let issuer = crl.issuer().as_raw().to_vec();
            let next = crl
                .next_update()
                .map(|t| u64::try_from(t.timestamp()).unwrap_or(0))
                .unwrap_or(FOREVER);
            let slot = next_update.entry(issuer.clone()).or_insert(FOREVER);
            *slot = (*slot).min(next);
            for revoked in crl.iter_revoked_certificates() {
                entries.insert((
                    issuer.clone(),
                    strip_sign_byte(revoked.raw_serial()).to_vec(),
                ));
            }
        }
        Ok(RevokedSerials {
            entries,
            next_update,
        })
    }

    /// True when no CRL lists anything (and there is no CRL whose staleness matters).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.next_update.is_empty()
    }

    /// The revocation status of a certificate at `now` (Unix seconds): `Err(Revoked)` when
    /// a CRL of its issuer lists it, `Err(RevocationUnknown)` when a CRL of its issuer is
    /// past its nextUpdate, else `Ok` with the last second that answer holds (the second
    /// before the issuer's earliest nextUpdate, [`FOREVER`] without a CRL). A certificate
    /// that does not parse is `Ok(FOREVER)` (it is refused as malformed elsewhere).
    pub fn status(&self, cert_der: &[u8], now: u64) -> Result<u64, DenyReason> {
        if self.is_empty() {
            return Ok(FOREVER);
        }
        let Ok((_, cert)) = X509Certificate::from_der(cert_der) else {
            return Ok(FOREVER);
        };
        let issuer = cert.issuer().as_raw();
        let key = (issuer.to_vec(), strip_sign_byte(cert.raw_serial()).to_vec());
        if self.entries.contains(&key) {
            return Err(DenyReason::Revoked);
        }
        match self.next_update.get(issuer) {
            None => Ok(FOREVER),
            Some(&next) if now >= next => Err(DenyReason::RevocationUnknown),
            Some(&next) => Ok(next - 1),
        }
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

/// The (canonical issuer DN, nextUpdate in Unix seconds) of every CRL in a PEM text, for
/// the admin API's `crl_expired` warning (SPEC §16). CRLs without a nextUpdate and blocks
/// that do not parse are left out (the store refuses those on input).
pub fn next_updates_pem(pem: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()).flatten() {
        if block.label != "X509 CRL" {
            continue;
        }
        let Ok((_, crl)) = CertificateRevocationList::from_der(&block.contents) else {
            continue;
        };
        if let Some(next) = crl.next_update() {
            out.push((
                crate::dn::Dn::from_x509_name(crl.issuer()).to_string(),
                next.timestamp(),
            ));
        }
    }
    out
}
