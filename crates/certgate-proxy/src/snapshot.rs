//! The immutable [`Snapshot`] of the live configuration that every request reads.

/// The live configuration, compiled for the hot path.
#[derive(Debug)]
pub struct Snapshot {
    _private: (),
}

/// A stored configuration that cannot be compiled into a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A DN pattern (gateway or API override) does not parse.
    #[error(transparent)]
    Pattern(#[from] certgate_pki::PatternError),
    /// A trusted certificate's PEM does not parse.
    #[error("trusted certificate {name} (id {id}) is unusable: {reason}")]
    TrustedCertificate {
        /// The component id.
        id: i64,
        /// The component name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A CRL does not parse.
    #[error("CRL {index} is unusable: {reason}")]
    Crl {
        /// 0-based position in the `crls` list.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The judge refused an anchor or CRL.
    #[error(transparent)]
    Judge(#[from] certgate_pki::JudgeError),
    /// An API's upstream is not an `http://` or `https://` URL.
    #[error("API {name} has an unusable upstream {upstream:?}: {reason}")]
    Upstream {
        /// The API name.
        name: String,
        /// The upstream as stored.
        upstream: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Header mode without a header name.
    #[error("header mode needs a header_name")]
    MissingHeaderName,
    /// A header name that is not a valid HTTP field name.
    #[error("header_name {0:?} is not a valid HTTP header name")]
    InvalidHeaderName(String),
}
