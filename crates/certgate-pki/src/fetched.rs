//! Revocation sources named by the certificates themselves (SPEC §16 `crl_dp`, `ocsp`):
//! reading the CRL distribution points and AIA OCSP URLs of a certificate, and checking
//! a CRL fetched from one of them against a chain the judge has accepted.
//!
//! Pure: fetching, caching and policy (strict / soft) live in the proxy. A fetched CRL is
//! trusted only through its signature: [`crate::Judge::check_fetched`] has webpki verify
//! it against the key of the CA that issued the certificate it speaks for.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateRevocationListDer;
use webpki::{CertRevocationList, OwnedCertRevocationList};
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

/// The revocation URLs a certificate names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationUrls {
    /// The `fullName` URIs of its CRL distribution points.
    pub crl: Vec<String>,
    /// The OCSP responder URIs of its authority information access.
    pub ocsp: Vec<String>,
}

/// Reads the CRL distribution point and AIA OCSP URIs of a DER certificate (none when
/// it does not parse: it is refused elsewhere).
pub fn revocation_urls(cert_der: &[u8]) -> RevocationUrls {
    let mut out = RevocationUrls::default();
    let Ok((_, cert)) = X509Certificate::from_der(cert_der) else {
        return out;
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        for name in names {
                            if let GeneralName::URI(uri) = name {
                                out.crl.push((*uri).to_owned());
                            }
                        }
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for desc in &aia.accessdescs {
                    if desc.access_method == OID_PKIX_ACCESS_DESCRIPTOR_OCSP {
                        if let GeneralName::URI(uri) = &desc.access_location {
                            out.ocsp.push((*uri).to_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The issuer name (DER) of a certificate, `None` when it does not parse.
pub fn issuer_of(cert_der: &[u8]) -> Option<Vec<u8>> {
    X509Certificate::from_der(cert_der)
        .ok()
        .map(|(_, c)| c.issuer().as_raw().to_vec())
}

/// A CRL fetched from a distribution point, parsed once; its signature is checked at use
/// ([`crate::Judge::check_fetched`]), against the issuer of the certificate it speaks for.
pub struct FetchedCrl {
    pub(crate) crl: CertRevocationList<'static>,
    issuer: Vec<u8>,
    next_update: Option<u64>,
    revoked: usize,
}

impl std::fmt::Debug for FetchedCrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchedCrl")
            .field("next_update", &self.next_update)
            .field("revoked", &self.revoked)
            .finish()
    }
}

/// A fetched body that is not a CRL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CRL: {0}")]
pub struct FetchedCrlError(String);

impl FetchedCrl {
    /// Parses a CRL body: DER (`application/pkix-crl`), or one PEM `X509 CRL` block.
    pub fn parse(body: &[u8]) -> Result<FetchedCrl, FetchedCrlError> {
        let der: Vec<u8> = if body.starts_with(b"-----BEGIN") {
            CertificateRevocationListDer::pem_slice_iter(body)
                .next()
                .ok_or_else(|| FetchedCrlError("no CRL in the PEM".into()))?
                .map_err(|e| FetchedCrlError(e.to_string()))?
                .as_ref()
                .to_vec()
        } else {
            body.to_vec()
        };
        let (_, parsed) = CertificateRevocationList::from_der(&der)
            .map_err(|e| FetchedCrlError(e.to_string()))?;
        let issuer = parsed.issuer().as_raw().to_vec();
        let next_update = parsed
            .next_update()
            .map(|t| u64::try_from(t.timestamp()).unwrap_or(0));
        let revoked = parsed.iter_revoked_certificates().count();
        let crl = OwnedCertRevocationList::from_der(&der)
            .map(CertRevocationList::from)
            .map_err(|e| FetchedCrlError(e.to_string()))?;
        Ok(FetchedCrl {
            crl,
            issuer,
            next_update,
            revoked,
        })
    }

    /// The CRL issuer's name (DER).
    pub fn issuer(&self) -> &[u8] {
        &self.issuer
    }

    /// nextUpdate in Unix seconds, if the CRL has one.
    pub fn next_update(&self) -> Option<u64> {
        self.next_update
    }

    /// The issuer as a canonical DN (for metrics labels and logs).
    pub fn issuer_dn(&self) -> String {
        x509_parser::x509::X509Name::from_der(&self.issuer)
            .map(|(_, n)| crate::dn::Dn::from_x509_name(&n).to_string())
            .unwrap_or_default()
    }
}
