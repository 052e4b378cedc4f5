//! Decoding a client certificate forwarded in a request header (SPEC §6).
//!
//! This module owns every header form a TLS-terminating load balancer uses to hand the
//! client certificate to the gateway, and turns a raw header value into DER certificates
//! (a leaf plus any intermediates). It checks only that each certificate is syntactically
//! an X.509 certificate; trust, dates and revocation are the [`crate::judge`]'s job.
//!
//! Forms understood (all of them by [`HeaderFormat::Auto`]):
//!
//! | form | sent by |
//! |---|---|
//! | URL-encoded PEM | nginx `$ssl_client_escaped_cert`, AWS ALB `X-Amzn-Mtls-Clientcert` |
//! | PEM with line breaks turned into spaces or tabs | nginx `$ssl_client_cert`, appliances |
//! | base64 DER (padded or not, standard or URL-safe alphabet) | Azure Application Gateway, Kong |
//! | comma-separated base64 DER, maybe URL-escaped as a whole | Traefik v3 / v2 |
//! | structured-field byte sequences `:b64:` (list) | RFC 9440 `Client-Cert`, `Client-Cert-Chain` |
//! | `x-forwarded-client-cert` element list | Envoy |
//!
//! The decoder works on bytes, allocates only what it returns or must rewrite, and never
//! panics whatever the input (it is fuzzed by `fuzz/fuzz_targets/header_decode.rs`).

use std::borrow::Cow;
use std::fmt;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

/// The largest header value accepted; longer is malformed.
pub const MAX_HEADER_VALUE_LEN: usize = 64 * 1024;

/// The most certificates (leaf included) one header value may carry. Real chains are a
/// handful long; the cap bounds the parsing and path-building work a peer can cause.
pub const MAX_HEADER_CERTIFICATES: usize = 16;

/// The `header_format` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderFormat {
    /// Every form of SPEC §6, recognised from the value.
    #[default]
    Auto,
    /// PEM, with real line breaks or with line breaks turned into spaces or tabs.
    Pem,
    /// Percent-encoded PEM (`+` stays `+`).
    UrlEncodedPem,
    /// Base64 DER: one certificate, a comma-separated list (Traefik, maybe URL-escaped as
    /// a whole) or RFC 9440 structured-field byte sequences (`:b64:, :b64:`).
    Base64Der,
    /// Envoy's `x-forwarded-client-cert`: the `Cert`/`Chain` of the first element.
    Xfcc,
}

impl HeaderFormat {
    /// Every format, `Auto` first.
    pub const ALL: [HeaderFormat; 5] = [
        HeaderFormat::Auto,
        HeaderFormat::Pem,
        HeaderFormat::UrlEncodedPem,
        HeaderFormat::Base64Der,
        HeaderFormat::Xfcc,
    ];

    /// The configuration spelling: `auto`, `pem`, `url_encoded_pem`, `base64_der`, `xfcc`.
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderFormat::Auto => "auto",
            HeaderFormat::Pem => "pem",
            HeaderFormat::UrlEncodedPem => "url_encoded_pem",
            HeaderFormat::Base64Der => "base64_der",
            HeaderFormat::Xfcc => "xfcc",
        }
    }
}

impl fmt::Display for HeaderFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded header: the leaf and any intermediates that followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderChain {
    /// The client's own certificate (the first one in the header).
    pub leaf: CertificateDer<'static>,
    /// The certificates after the leaf, in header order, without copies of the leaf.
    pub intermediates: Vec<CertificateDer<'static>>,
}

/// A header value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The value is empty or only white space.
    #[error("header value is empty")]
    Empty,
    /// The value is longer than [`MAX_HEADER_VALUE_LEN`] (its length in bytes).
    #[error("header value is {0} bytes, over the 64 KiB limit")]
    TooLong(usize),
    /// `auto` could not recognise any form in the value.
    #[error("header value is not in a recognised certificate format")]
    UnknownFormat,
    /// The value looks like `format` (the configuration spelling) but does not decode
    /// into certificates.
    #[error("malformed {format} value: {reason}")]
    Malformed {
        /// The form the value was decoded as (`pem`, `url_encoded_pem`, `base64_der`, `xfcc`).
        format: &'static str,
        /// What was wrong, for logs.
        reason: String,
    },
}

/// Decodes a header value into a leaf plus intermediates. Never panics.
///
/// Leading and trailing white space is ignored. Percent-decoding never turns `+` into a
/// space. Every certificate must parse as X.509 DER with nothing after it; a copy of the
/// leaf among the later certificates is dropped.
pub fn decode_header(value: &[u8], format: HeaderFormat) -> Result<HeaderChain, HeaderError> {
    if value.len() > MAX_HEADER_VALUE_LEN {
        return Err(HeaderError::TooLong(value.len()));
    }
    let value = value.trim_ascii();
    if value.is_empty() {
        return Err(HeaderError::Empty);
    }
    let (kind, decoded) = match format {
        HeaderFormat::Auto => decode_auto(value)?,
        HeaderFormat::Pem => (HeaderFormat::Pem, decode_pem(value)),
        HeaderFormat::UrlEncodedPem => {
            let text = percent_decode(value);
            (HeaderFormat::UrlEncodedPem, decode_pem(&text))
        }
        HeaderFormat::Base64Der => {
            // `%` is never part of base64, so a URL-escaped list (Traefik v2) decodes too.
            let text = percent_decode(value);
            (HeaderFormat::Base64Der, decode_base64_list(&text))
        }
        HeaderFormat::Xfcc => (HeaderFormat::Xfcc, decode_xfcc(value)),
    };
    let malformed = |reason: String| HeaderError::Malformed {
        format: kind.as_str(),
        reason,
    };
    let ders = decoded.map_err(malformed)?;
    finish(ders).map_err(malformed)
}

/// DER certificates in header order, or why the value does not decode.
type Decoded = Result<Vec<Vec<u8>>, String>;

/// Recognises the form of an `auto` value and decodes it.
fn decode_auto(value: &[u8]) -> Result<(HeaderFormat, Decoded), HeaderError> {
    if looks_like_xfcc(value) {
        return Ok((HeaderFormat::Xfcc, decode_xfcc(value)));
    }
    let encoded = value.contains(&b'%');
    let text = percent_decode(value);
    if find(&text, b"-----BEGIN").is_some() {
        let kind = if encoded {
            HeaderFormat::UrlEncodedPem
        } else {
            HeaderFormat::Pem
        };
        return Ok((kind, decode_pem(&text)));
    }
    if text.iter().all(|&b| is_base64_list_byte(b)) {
        return Ok((HeaderFormat::Base64Der, decode_base64_list(&text)));
    }
    Err(HeaderError::UnknownFormat)
}

/// Checks each DER certificate and splits leaf from intermediates.
fn finish(ders: Vec<Vec<u8>>) -> Result<HeaderChain, String> {
    if ders.len() > MAX_HEADER_CERTIFICATES {
        return Err(format!(
            "{} certificates, over the limit of {MAX_HEADER_CERTIFICATES}",
            ders.len()
        ));
    }
    for (index, der) in ders.iter().enumerate() {
        check_certificate(der).map_err(|e| format!("certificate {}: {e}", index + 1))?;
    }
    let mut certs = ders.into_iter();
    let leaf = certs.next().ok_or_else(|| "no certificate".to_string())?;
    let intermediates = certs
        .filter(|c| *c != leaf)
        .map(CertificateDer::from)
        .collect();
    Ok(HeaderChain {
        leaf: CertificateDer::from(leaf),
        intermediates,
    })
}

/// A syntactic X.509 check: the DER parses and nothing trails it.
fn check_certificate(der: &[u8]) -> Result<(), String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], _)) => Ok(()),
        Ok((rest, _)) => Err(format!("{} bytes after the certificate", rest.len())),
        Err(e) => Err(format!("not an X.509 certificate ({e})")),
    }
}

/// Percent-decodes without turning `+` into a space; borrows when there is no `%`.
fn percent_decode(value: &[u8]) -> Cow<'_, [u8]> {
    if value.contains(&b'%') {
        Cow::Owned(percent_encoding::percent_decode(value).collect())
    } else {
        Cow::Borrowed(value)
    }
}

/// The position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Bytes of a base64 list: either alphabet, padding, separators and white space.
fn is_base64_list_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=' | b',' | b':')
        || b.is_ascii_whitespace()
}

// ---------------------------------------------------------------------------------------
// PEM

/// Decodes every PEM certificate block of `text`. Inside a block all white space is
/// ignored, so line breaks that became spaces or tabs (or vanished) do not matter.
/// Anything but white space outside the blocks is an error.
fn decode_pem(text: &[u8]) -> Decoded {
    const BEGIN: &[u8] = b"-----BEGIN";
    const END: &[u8] = b"-----END";
    const DASHES: &[u8] = b"-----";
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            break;
        }
        let Some(after_begin) = rest.strip_prefix(BEGIN) else {
            return Err(if out.is_empty() {
                "no -----BEGIN line at the start".to_string()
            } else {
                "text after the last PEM block".to_string()
            });
        };
        let label_len = find(after_begin, DASHES).ok_or("unterminated -----BEGIN line")?;
        let label = after_begin.get(..label_len).unwrap_or_default();
        if !is_certificate_label(label) {
            return Err(format!(
                "PEM block {} is a {}, not a CERTIFICATE",
                out.len() + 1,
                String::from_utf8_lossy(label).trim()
            ));
        }
        let body_and_rest = after_begin
            .get(label_len + DASHES.len()..)
            .unwrap_or_default();
        let body_len = find(body_and_rest, END).ok_or("PEM block without -----END line")?;
        let body = body_and_rest.get(..body_len).unwrap_or_default();
        let after_end = body_and_rest
            .get(body_len + END.len()..)
            .unwrap_or_default();
        let end_label_len = find(after_end, DASHES).ok_or("unterminated -----END line")?;
        let end_label = after_end.get(..end_label_len).unwrap_or_default();
        if !labels_equal(label, end_label) {
            return Err("-----END label differs from the -----BEGIN label".to_string());
        }
        rest = after_end
            .get(end_label_len + DASHES.len()..)
            .unwrap_or_default();
        if out.len() == MAX_HEADER_CERTIFICATES {
            return Err(format!(
                "more than {MAX_HEADER_CERTIFICATES} certificates in the value"
            ));
        }
        let der = decode_base64(body)
            .map_err(|e| format!("PEM block {} is not base64: {e}", out.len() + 1))?;
        out.push(der);
    }
    if out.is_empty() {
        return Err("no PEM block".to_string());
    }
    Ok(out)
}

/// The words of a PEM label, white space runs folded.
fn label_words(label: &[u8]) -> impl Iterator<Item = &[u8]> {
    label
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
}

fn labels_equal(a: &[u8], b: &[u8]) -> bool {
    label_words(a).eq(label_words(b))
}

/// `CERTIFICATE` or the older `X509 CERTIFICATE`, whatever white space separates them.
fn is_certificate_label(label: &[u8]) -> bool {
    let mut words = label_words(label);
    matches!(
        (words.next(), words.next(), words.next()),
        (Some(b"CERTIFICATE"), None, None) | (Some(b"X509"), Some(b"CERTIFICATE"), None)
    )
}

// ---------------------------------------------------------------------------------------
// base64

/// Standard alphabet, padding optional (the URL-safe alphabet is mapped onto it first).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes base64 in the standard or URL-safe alphabet, padded or not, ignoring white
/// space.
fn decode_base64(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut normalised = Vec::with_capacity(text.len());
    for &b in text {
        match b {
            b'-' => normalised.push(b'+'),
            b'_' => normalised.push(b'/'),
            b if b.is_ascii_whitespace() => {}
            b => normalised.push(b),
        }
    }
    if normalised.is_empty() {
        return Err("empty".to_string());
    }
    BASE64.decode(&normalised).map_err(|e| e.to_string())
}

/// Decodes a comma-separated list of base64 DER certificates, each member bare or an
/// RFC 8941 byte sequence (`:b64:`).
fn decode_base64_list(text: &[u8]) -> Decoded {
    let mut out = Vec::new();
    for (index, member) in text.split(|&b| b == b',').enumerate() {
        let member = member.trim_ascii();
        if member.is_empty() {
            return Err(format!("list member {} is empty", index + 1));
        }
        if out.len() == MAX_HEADER_CERTIFICATES {
            return Err(format!(
                "more than {MAX_HEADER_CERTIFICATES} certificates in the value"
            ));
        }
        let body = match member.strip_prefix(b":") {
            Some(inner) => inner.strip_suffix(b":").ok_or_else(|| {
                format!(
                    "list member {} opens a byte sequence with ':' but does not close it",
                    index + 1
                )
            })?,
            None => member,
        };
        if body.contains(&b':') {
            return Err(format!("list member {} has a stray ':'", index + 1));
        }
        let der = decode_base64(body)
            .map_err(|e| format!("list member {} is not base64: {e}", index + 1))?;
        out.push(der);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Envoy x-forwarded-client-cert

/// The keys Envoy writes; `auto` takes a value starting with one of them as XFCC.
const XFCC_KEYS: [&[u8]; 7] = [
    b"by", b"hash", b"cert", b"chain", b"subject", b"uri", b"dns",
];

/// Whether the value starts with `KEY=` for a known XFCC key (case-insensitive).
fn looks_like_xfcc(value: &[u8]) -> bool {
    let Some(eq) = value.iter().position(|&b| b == b'=') else {
        return false;
    };
    let key = value.get(..eq).unwrap_or_default().trim_ascii();
    XFCC_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// Decodes the `Cert` and `Chain` of the first (leftmost) XFCC element.
fn decode_xfcc(value: &[u8]) -> Decoded {
    let pairs = first_xfcc_element(value)?;
    let mut cert: Option<Vec<u8>> = None;
    let mut chain: Option<Vec<u8>> = None;
    for (key, val) in pairs {
        let slot = if key.eq_ignore_ascii_case(b"cert") {
            &mut cert
        } else if key.eq_ignore_ascii_case(b"chain") {
            &mut chain
        } else {
            // Hash, Subject, URI, DNS, By and keys of future Envoy versions.
            continue;
        };
        if slot.is_some() {
            return Err(format!(
                "the first element has two {} keys",
                String::from_utf8_lossy(key)
            ));
        }
        *slot = Some(val.into_owned());
    }
    let cert = cert
        .map(|v| decode_xfcc_certs(&v).map_err(|e| format!("Cert: {e}")))
        .transpose()?;
    let chain = chain
        .map(|v| decode_xfcc_certs(&v).map_err(|e| format!("Chain: {e}")))
        .transpose()?;
    match (cert, chain) {
        (None, None) => Err("the first element has no Cert or Chain".to_string()),
        (Some(certs), None) | (None, Some(certs)) => Ok(certs),
        (Some(mut certs), Some(chain)) => {
            // Chain repeats the leaf first; `finish` drops copies of the leaf.
            certs.extend(chain);
            Ok(certs)
        }
    }
}

/// A `Cert` or `Chain` value: URL-encoded PEM (tolerating base64 DER too).
fn decode_xfcc_certs(value: &[u8]) -> Decoded {
    let text = percent_decode(value.trim_ascii());
    if text.trim_ascii().is_empty() {
        return Err("empty value".to_string());
    }
    if find(&text, b"-----BEGIN").is_some() {
        decode_pem(&text)
    } else {
        decode_base64_list(&text)
    }
}

/// One `key=value` pair of an XFCC element, the value unquoted.
type XfccPair<'a> = (&'a [u8], Cow<'a, [u8]>);

/// The `key=value` pairs of the first element: elements are separated by `,` and pairs by
/// `;`, both only outside double quotes; a quoted value may hold `\"` and `\\`.
fn first_xfcc_element(value: &[u8]) -> Result<Vec<XfccPair<'_>>, String> {
    let mut pairs = Vec::new();
    let mut pos = 0;
    let at = |pos: usize| value.get(pos).copied();
    let skip_ws = |mut pos: usize| {
        while at(pos).is_some_and(|b| b == b' ' || b == b'\t') {
            pos += 1;
        }
        pos
    };
    // Each turn consumes at least one byte (a key is followed by `=`), so this ends.
    loop {
        pos = skip_ws(pos);
        match at(pos) {
            None | Some(b',') => break,
            Some(_) => {}
        }
        let key_start = pos;
        while at(pos).is_some_and(|b| !matches!(b, b'=' | b';' | b',')) {
            pos += 1;
        }
        let key = value.get(key_start..pos).unwrap_or_default().trim_ascii();
        if at(pos) != Some(b'=') {
            return Err(format!("pair {} has no '='", pairs.len() + 1));
        }
        if key.is_empty() {
            return Err(format!("pair {} has an empty key", pairs.len() + 1));
        }
        pos = skip_ws(pos + 1);
        let val: Cow<'_, [u8]> = if at(pos) == Some(b'"') {
            pos += 1;
            let mut text = Vec::new();
            let mut closed = false;
            while let Some(b) = at(pos) {
                match b {
                    b'\\' if matches!(at(pos + 1), Some(b'"' | b'\\')) => {
                        text.extend(at(pos + 1));
                        pos += 2;
                    }
                    b'"' => {
                        pos += 1;
                        closed = true;
                        break;
                    }
                    b => {
                        text.push(b);
                        pos += 1;
                    }
                }
            }
            if !closed {
                return Err(format!(
                    "pair {} has an unterminated quoted value",
                    pairs.len() + 1
                ));
            }
            pos = skip_ws(pos);
            if !matches!(at(pos), None | Some(b';' | b',')) {
                return Err(format!(
                    "pair {} has text after its quoted value",
                    pairs.len() + 1
                ));
            }
            Cow::Owned(text)
        } else {
            let start = pos;
            while at(pos).is_some_and(|b| b != b';' && b != b',') {
                pos += 1;
            }
            Cow::Borrowed(value.get(start..pos).unwrap_or_default().trim_ascii())
        };
        pairs.push((key, val));
        if at(pos) == Some(b';') {
            pos += 1;
        }
    }
    Ok(pairs)
}
