//! Distinguished names: the parsed form ([`Dn`]), its canonical RFC 4514 rendering
//! (SPEC §4) and the ASCII-only rendering used in forwarded identity headers (SPEC §7).

use std::fmt;

/// A DN attribute type: one of the keywords of SPEC §4, or a dotted OID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttributeType {
    /// A keyword of SPEC §4's table, stored as its canonical spelling (`CN`, `E`, ...).
    Keyword(&'static str),
    /// Any other attribute, as its dotted OID (`2.5.4.17`).
    Oid(String),
}

/// One attribute of an RDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub attr_type: AttributeType,
    /// The value as text (unescaped). For non-string ASN.1 types: `#` + hex of the DER.
    pub value: String,
    /// True when `value` is the `#hex` form of a non-string value (not escaped again).
    pub is_hex: bool,
}

/// A relative distinguished name: one or more attributes, in encoding order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    pub attributes: Vec<Attribute>,
}

/// A distinguished name, RDNs in canonical (RFC 4514) order: the reverse of the
/// certificate's ASN.1 sequence. Matching-normalised values are computed once at
/// construction, so matching many patterns costs no allocation per pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn {
    rdns: Vec<Rdn>,
}

/// A DN string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DN \"{input}\" at position {position}: {reason}")]
pub struct DnParseError {
    pub input: String,
    /// 1-based character position of the first problem.
    pub position: usize,
    pub reason: String,
}

impl Dn {
    /// Parses a DN string (RFC 4514, keywords and aliases of SPEC §4).
    pub fn parse(_input: &str) -> Result<Dn, DnParseError> {
        todo!()
    }

    /// The RDNs in canonical order.
    pub fn rdns(&self) -> &[Rdn] {
        &self.rdns
    }

    /// The canonical string with non-ASCII characters as `\XX` escapes of their UTF-8
    /// bytes (SPEC §7), for HTTP headers.
    pub fn to_ascii_string(&self) -> String {
        todo!()
    }
}

impl fmt::Display for Dn {
    /// The canonical DN string of SPEC §4.
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}
