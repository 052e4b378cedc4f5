//! OCSP (RFC 6960) for SPEC §16 `revocation = ocsp`: the request for one certificate and
//! the check of a responder's answer. Pure: the proxy sends and caches.
//!
//! The CertID uses SHA-256 (RFC 6960 allows any hash; OpenSSL's responder answers in
//! the hash of the request). A response counts only when its signature verifies with
//! the key of the certificate's issuer (the CA signs its own OCSP answers) or with the key
//! of a delegated responder (RFC 6960 §4.2.2.2): a certificate in the response that the
//! same issuer signed, that carries the `id-kp-OCSPSigning` extended key usage and that
//! is valid at the time of the check. Anything else is "cannot be learned".

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

/// What an OCSP responder said about one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspStatus {
    /// Not revoked.
    Good,
    /// Revoked.
    Revoked,
    /// The responder does not know the certificate.
    Unknown,
}

/// A checked answer: the status and its validity window (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcspAnswer {
    /// The certificate's status.
    pub status: OcspStatus,
    /// thisUpdate.
    pub this_update: u64,
    /// nextUpdate, when the responder gave one.
    pub next_update: Option<u64>,
}

/// Why a response cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// Not DER of the expected shape.
    #[error("malformed OCSP response: {0}")]
    Malformed(&'static str),
    /// responseStatus other than successful (0).
    #[error("OCSP responder status {0}")]
    Status(u8),
    /// The signature verifies neither with the issuer's key nor with the key of a
    /// delegated responder the issuer authorised (or an unsupported algorithm).
    #[error(
        "OCSP response signature does not verify with the issuer's key or a delegated responder's"
    )]
    Signature,
    /// No SingleResponse for the certificate asked about.
    #[error("OCSP response does not answer for the certificate")]
    NotAnswered,
}

/// One OCSP question: the request DER and the CertID it asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspQuery {
    /// The DER `OCSPRequest` (POSTed as `application/ocsp-request`).
    pub request: Vec<u8>,
    /// The DER `CertID`, matched against the response.
    pub cert_id: Vec<u8>,
    /// The issuer's SubjectPublicKeyInfo *contents* (algorithm and key), which must sign
    /// the response (or the delegated responder's certificate).
    pub issuer_spki: Vec<u8>,
    /// The DER of the certificate's issuer Name, which a delegated responder's
    /// certificate must name as its issuer.
    pub issuer_name: Vec<u8>,
}

use crate::der::encode as tlv;

/// Reads one TLV: (identifier, content, rest).
fn read(input: &[u8]) -> Result<(u8, &[u8], &[u8]), OcspError> {
    let t = crate::der::split(input).ok_or(OcspError::Malformed("truncated DER"))?;
    Ok((t.identifier, t.content, t.rest))
}

/// (content, whole TLV, rest) of one DER element.
type Tlv<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// Reads one TLV that must have `tag`; returns (content, whole TLV, rest).
fn expect(input: &[u8], tag: u8) -> Result<Tlv<'_>, OcspError> {
    let t = crate::der::expect(input, tag).ok_or(OcspError::Malformed("unexpected DER tag"))?;
    Ok((t.content, t.whole, t.rest))
}

/// Builds the query for `cert` (DER) issued by the certificate whose
/// SubjectPublicKeyInfo contents are `issuer_spki` (algorithm identifier + key BIT
/// STRING, as webpki's trust anchors keep it). `None` when `cert` does not parse.
pub fn query(cert: &[u8], issuer_spki: &[u8]) -> Option<OcspQuery> {
    let (_, c) = X509Certificate::from_der(cert).ok()?;
    let name_hash = Sha256::digest(c.issuer().as_raw());
    // issuerKeyHash: the hash of the subjectPublicKey BIT STRING value (no unused-bits byte).
    let (_, _, after_alg) = read(issuer_spki).ok()?;
    let (key, _, _) = expect(after_alg, 0x03).ok()?;
    let key_hash = Sha256::digest(key.get(1..)?);
    // sha256 AlgorithmIdentifier with NULL parameters.
    let alg = tlv(
        0x30,
        &[
            &[
                0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
            ][..],
            &[0x05, 0x00],
        ]
        .concat(),
    );
    let cert_id = tlv(
        0x30,
        &[
            alg,
            tlv(0x04, &name_hash),
            tlv(0x04, &key_hash),
            tlv(0x02, c.raw_serial()),
        ]
        .concat(),
    );
    let request = tlv(0x30, &tlv(0x30, &tlv(0x30, &tlv(0x30, &cert_id))));
    Some(OcspQuery {
        request,
        cert_id,
        issuer_spki: issuer_spki.to_vec(),
        issuer_name: c.issuer().as_raw().to_vec(),
    })
}

/// GeneralizedTime `YYYYMMDDHHMMSSZ` to Unix seconds.
fn generalized_time(content: &[u8]) -> Result<u64, OcspError> {
    let s = std::str::from_utf8(content).map_err(|_| OcspError::Malformed("time"))?;
    let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(s, &fmt).map_err(|_| OcspError::Malformed("time"))?;
    Ok(u64::try_from(t.assume_utc().unix_timestamp()).unwrap_or(0))
}

/// Checks `response` (DER `OCSPResponse`) for `query` at `now` (Unix seconds):
/// successful, a basic response signed with the issuer's key or a delegated responder's
/// (see the module doc), and a SingleResponse for the query's CertID.
pub fn check(query: &OcspQuery, response: &[u8], now: u64) -> Result<OcspAnswer, OcspError> {
    let (body, _, _) = expect(response, 0x30)?;
    let (status, _, rest) = expect(body, 0x0a)?;
    match status {
        [0] => {}
        [s] => return Err(OcspError::Status(*s)),
        _ => return Err(OcspError::Malformed("responseStatus")),
    }
    let (bytes, _, _) = expect(rest, 0xa0)?;
    let (bytes, _, _) = expect(bytes, 0x30)?;
    let (_oid, _, rest) = expect(bytes, 0x06)?;
    let (basic, _, _) = expect(rest, 0x04)?;
    let (basic, _, _) = expect(basic, 0x30)?;
    let (tbs, tbs_whole, rest) = expect(basic, 0x30)?;
    let (sig_alg, _, rest) = expect(rest, 0x30)?;
    let (sig, _, certs) = expect(rest, 0x03)?;
    let sig = sig.get(1..).unwrap_or_default();
    if verify(&query.issuer_spki, sig_alg, tbs_whole, sig).is_err() {
        // certs [0] EXPLICIT SEQUENCE OF Certificate: a delegated responder's.
        let delegated = match expect(certs, 0xa0) {
            Ok((list, _, _)) => expect(list, 0x30)?.0,
            Err(_) => &[],
        };
        let mut believed = false;
        let mut list = delegated;
        while !list.is_empty() && !believed {
            let (_, cert, next) = expect(list, 0x30)?;
            list = next;
            believed = delegated_key(query, cert, now)
                .is_some_and(|key| verify(&key, sig_alg, tbs_whole, sig).is_ok());
        }
        if !believed {
            return Err(OcspError::Signature);
        }
    }

    // ResponseData: [0] version?, responderID, producedAt, responses, [1] extensions?
    let mut rest = tbs;
    let (tag, _, r) = read(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    let (_, _, r) = read(rest)?; // responderID
    let (_, _, r) = expect(r, 0x18)?; // producedAt
    let (mut responses, _, _) = expect(r, 0x30)?;
    while !responses.is_empty() {
        let (single, _, next) = expect(responses, 0x30)?;
        responses = next;
        let (_, cert_id, r) = expect(single, 0x30)?;
        if cert_id != query.cert_id.as_slice() {
            continue;
        }
        let (tag, _, r) = read(r)?;
        let status = match tag {
            0x80 => OcspStatus::Good,
            0xa1 => OcspStatus::Revoked,
            0x82 => OcspStatus::Unknown,
            _ => return Err(OcspError::Malformed("certStatus")),
        };
        let (this, _, r) = expect(r, 0x18)?;
        let this_update = generalized_time(this)?;
        let next_update = match read(r) {
            Ok((0xa0, inner, _)) => Some(generalized_time(expect(inner, 0x18)?.0)?),
            _ => None,
        };
        return Ok(OcspAnswer {
            status,
            this_update,
            next_update,
        });
    }
    Err(OcspError::NotAnswered)
}

/// The SubjectPublicKeyInfo contents of `cert` (DER) when it is a responder the query's
/// issuer delegated to at `now`: issued by that issuer (name and signature), with the
/// `id-kp-OCSPSigning` extended key usage, and within its validity.
fn delegated_key(query: &OcspQuery, cert: &[u8], now: u64) -> Option<Vec<u8>> {
    let (_, c) = X509Certificate::from_der(cert).ok()?;
    if c.issuer().as_raw() != query.issuer_name.as_slice() {
        return None;
    }
    let signing = c
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|eku| eku.value.ocsp_signing);
    let now = i64::try_from(now).ok()?;
    let validity = c.validity();
    if !signing || now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return None;
    }
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let (body, _, _) = expect(cert, 0x30).ok()?;
    let (_, tbs, rest) = expect(body, 0x30).ok()?;
    let (alg, _, rest) = expect(rest, 0x30).ok()?;
    let (sig, _, _) = expect(rest, 0x03).ok()?;
    verify(&query.issuer_spki, alg, tbs, sig.get(1..)?).ok()?;
    Some(expect(c.public_key().raw, 0x30).ok()?.0.to_vec())
}

/// Verifies `signature` over `message` with the key of `spki` (contents) under the
/// signature algorithm `sig_alg` (AlgorithmIdentifier contents), with webpki's algorithms.
fn verify(spki: &[u8], sig_alg: &[u8], message: &[u8], signature: &[u8]) -> Result<(), OcspError> {
    let (key_alg, _, after) = expect(spki, 0x30).map_err(|_| OcspError::Signature)?;
    let (key, _, _) = expect(after, 0x03).map_err(|_| OcspError::Signature)?;
    let key = key.get(1..).ok_or(OcspError::Signature)?;
    let ok = webpki::ALL_VERIFICATION_ALGS.iter().any(|alg| {
        alg.signature_alg_id().as_ref() == sig_alg
            && alg.public_key_alg_id().as_ref() == key_alg
            && alg.verify_signature(key, message, signature).is_ok()
    });
    ok.then_some(()).ok_or(OcspError::Signature)
}
