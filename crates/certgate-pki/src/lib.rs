//! # certgate-pki
//!
//! The certificate core every other certgate crate stands on. Pure functions and plain
//! data: no I/O, no async.
//!
//! - [`dn`]: distinguished names, parsed from certificates or strings, rendered in the
//!   canonical RFC 4514 form of SPEC §4.
//! - [`cert`]: [`cert::CertificateInfo`], the parsed fields of an X.509 certificate.
//! - [`pattern`]: the Ant-style DN pattern language and [`pattern::PatternSet`].
//! - [`header`]: decoding a client certificate forwarded in a request header (SPEC §6).
//! - [`crl`]: revoked serials by issuer, for header mode without a trust table.
//! - [`fetched`]: revocation URLs of a certificate and CRLs fetched from them (SPEC §16).
//! - [`ocsp`]: OCSP requests and checked responses (SPEC §16 `ocsp`).
//! - [`judge`]: the chain judge (rustls-webpki plus CRLs) shared by mtls and header mode.

#![warn(missing_docs)]

pub mod cert;
pub mod crl;
mod der;
pub mod dn;
pub mod fetched;
pub mod header;
pub mod judge;
pub mod ocsp;
pub mod pattern;

pub use cert::{CertError, CertificateInfo, ExpiryStatus};
pub use crl::RevokedSerials;
pub use dn::{Dn, DnParseError};
pub use fetched::{revocation_urls, FetchedCrl, RevocationUrls};
pub use header::{decode_header, HeaderChain, HeaderError, HeaderFormat};
pub use judge::{DenyReason, Judge, JudgeError, Judgement, Verdict, FOREVER};
pub use pattern::{Pattern, PatternError, PatternSet};
