//! Decoding a client certificate forwarded in a request header (SPEC §6).

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

/// The largest header value accepted; longer is malformed.
pub const MAX_HEADER_VALUE_LEN: usize = 64 * 1024;

/// The `header_format` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderFormat {
    /// Every form of SPEC §6, recognised from the value.
    #[default]
    Auto,
    Pem,
    UrlEncodedPem,
    Base64Der,
    Xfcc,
}

/// A decoded header: the leaf and any intermediates that followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderChain {
    pub leaf: CertificateDer<'static>,
    pub intermediates: Vec<CertificateDer<'static>>,
}

/// A header value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header value is empty")]
    Empty,
    #[error("header value is {0} bytes, over the 64 KiB limit")]
    TooLong(usize),
    #[error("header value is not in a recognised certificate format")]
    UnknownFormat,
    #[error("malformed {format} value: {reason}")]
    Malformed {
        format: &'static str,
        reason: String,
    },
}

/// Decodes a header value into a leaf plus intermediates. Never panics.
pub fn decode_header(_value: &[u8], _format: HeaderFormat) -> Result<HeaderChain, HeaderError> {
    todo!()
}
