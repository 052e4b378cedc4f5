//! Distinguished names: the parsed form ([`Dn`]), its canonical RFC 4514 rendering
//! (SPEC §4) and the ASCII-only rendering used in forwarded identity headers (SPEC §7).
//!
//! This module owns:
//! - the attribute keyword table of SPEC §4 (keywords, their OIDs and aliases),
//! - decoding a DN from a certificate ([`Dn::from_x509_name`], [`Dn::from_der`]) and from a
//!   string ([`Dn::parse`]),
//! - rendering ([`Dn`]'s `Display`, [`Dn::to_ascii_string`]),
//! - the matching-normalised form of every value (lower-cased, white space folded), computed
//!   once per DN so that the pattern matcher ([`crate::pattern`]) allocates nothing.
//!
//! The string lexer is shared with the pattern parser: a DN string and a pattern are the
//! same syntax, except that patterns add wildcards and DN strings add `#hex` values.
//!
//! Choices where SPEC §4 is silent:
//! - `#hex` of a non-string value is written in upper case, as OpenSSL and RFC 4514's
//!   examples do (matching compares it case-insensitively anyway).
//! - String types are UTF8String, PrintableString, IA5String, NumericString, VisibleString,
//!   TeletexString (read as Latin-1), BMPString and UniversalString; bytes invalid for
//!   their type fall back to `#hex`.
//! - Parsing a DN string accepts white space around `,`, `+` and `=`, keywords and aliases
//!   in any case, dotted OIDs, and `#hex` (decoded to text when it is the DER of a string
//!   type). Unescaped `"`, `;`, `<`, `>` are errors (RFC 4514 requires the escape, and `;`
//!   was an RDN separator in RFC 1779, so silently keeping it would mislead). `\` followed
//!   by anything other than an RFC 4514 special character or two hex digits is an error.
//!   Only plain spaces around a value are dropped, so `parse(dn.to_string()) == dn`.
//! - [`Dn::to_ascii_string`] also escapes ASCII control characters as `\XX`, so the value
//!   is always a valid HTTP header value.
//! - A name whose attribute type OID has no dotted form (an arc over 128 bits) makes the
//!   certificate malformed, rather than being shown in a form nothing can match.

use std::fmt;

use x509_parser::prelude::{FromDer, X509Name};

/// The keywords of SPEC §4 with their OIDs, in a fixed order (the index is used as a
/// compact type key by the matcher).
pub(crate) const KEYWORDS: [(&str, &str); 14] = [
    ("CN", "2.5.4.3"),
    ("C", "2.5.4.6"),
    ("ST", "2.5.4.8"),
    ("L", "2.5.4.7"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("STREET", "2.5.4.9"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("UID", "0.9.2342.19200300.100.1.1"),
    ("E", "1.2.840.113549.1.9.1"),
    ("SERIALNUMBER", "2.5.4.5"),
    ("T", "2.5.4.12"),
    ("GN", "2.5.4.42"),
    ("SN", "2.5.4.4"),
];

/// Aliases accepted (case-insensitively) in DN strings and patterns, with their keyword.
const ALIASES: [(&str, &str); 4] = [
    ("EMAIL", "E"),
    ("EMAILADDRESS", "E"),
    ("S", "ST"),
    ("USERID", "UID"),
];

/// Number of per-type buckets in a DN's attribute census: one per keyword plus one shared
/// by every dotted-OID attribute.
pub(crate) const TYPE_BUCKETS: usize = KEYWORDS.len() + 1;

/// A DN attribute type: one of the keywords of SPEC §4, or a dotted OID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttributeType {
    /// A keyword of SPEC §4's table, stored as its canonical spelling (`CN`, `E`, ...).
    Keyword(&'static str),
    /// Any other attribute, as its dotted OID (`2.5.4.17`).
    Oid(String),
}

impl AttributeType {
    /// The type for a dotted OID: the keyword when the OID is one of SPEC §4's table
    /// (`2.5.4.3` is `CN`), otherwise the OID itself.
    pub fn from_oid(oid: &str) -> AttributeType {
        match KEYWORDS.iter().find(|(_, o)| *o == oid) {
            Some((kw, _)) => AttributeType::Keyword(kw),
            None => AttributeType::Oid(oid.to_owned()),
        }
    }

    /// The type for a keyword or alias, case-insensitively (`email` is `E`, `s` is `ST`).
    /// `None` for a name outside SPEC §4's table. Dotted OIDs are not accepted here; see
    /// [`AttributeType::from_oid`].
    pub fn from_keyword(name: &str) -> Option<AttributeType> {
        if let Some((kw, _)) = KEYWORDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return Some(AttributeType::Keyword(kw));
        }
        let (_, target) = ALIASES.iter().find(|(a, _)| a.eq_ignore_ascii_case(name))?;
        KEYWORDS
            .iter()
            .find(|(k, _)| k == target)
            .map(|(kw, _)| AttributeType::Keyword(kw))
    }

    /// The name shown in a canonical DN: the keyword, or the dotted OID.
    pub fn name(&self) -> &str {
        match self {
            AttributeType::Keyword(kw) => kw,
            AttributeType::Oid(oid) => oid,
        }
    }

    /// The dotted OID of this type.
    pub fn oid(&self) -> &str {
        match self {
            AttributeType::Keyword(kw) => KEYWORDS
                .iter()
                .find(|(k, _)| k == kw)
                .map(|(_, o)| *o)
                .unwrap_or(""),
            AttributeType::Oid(oid) => oid,
        }
    }

    /// The compact key the matcher compares.
    pub(crate) fn key(&self) -> TypeKey {
        match self {
            AttributeType::Keyword(kw) => match KEYWORDS.iter().position(|(k, _)| k == kw) {
                Some(i) => TypeKey::Kw(i as u8),
                // A Keyword built by hand with a name outside the table: compare by name.
                None => TypeKey::Oid(Box::from(*kw)),
            },
            AttributeType::Oid(oid) => TypeKey::Oid(Box::from(oid.as_str())),
        }
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The matcher's attribute type: a keyword index, or an OID compared as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TypeKey {
    Kw(u8),
    Oid(Box<str>),
}

impl TypeKey {
    /// The census bucket of this type (see [`TYPE_BUCKETS`]).
    pub(crate) fn bucket(&self) -> usize {
        match self {
            TypeKey::Kw(i) => usize::from(*i),
            TypeKey::Oid(_) => KEYWORDS.len(),
        }
    }
}

/// One attribute of an RDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute type.
    pub attr_type: AttributeType,
    /// The value as text (unescaped). For non-string ASN.1 types: `#` + hex of the DER.
    pub value: String,
    /// True when `value` is the `#hex` form of a non-string value (not escaped again).
    pub is_hex: bool,
}

/// A relative distinguished name: one or more attributes, in encoding order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    /// The attributes, in the order they are encoded (or written).
    pub attributes: Vec<Attribute>,
}

/// An attribute in matching form: type key plus the normalised value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NormAttr {
    pub(crate) key: TypeKey,
    pub(crate) value: Box<str>,
}

/// A distinguished name, RDNs in canonical (RFC 4514) order: the reverse of the
/// certificate's ASN.1 sequence. Matching-normalised values are computed once at
/// construction, so matching many patterns costs no allocation per pattern.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dn {
    rdns: Vec<Rdn>,
    /// Every attribute in matching form, RDN after RDN.
    norm: Vec<NormAttr>,
    /// `norm[bounds[i]..bounds[i + 1]]` are the attributes of RDN `i`.
    bounds: Vec<u32>,
    /// How many attributes of each type bucket the DN holds (saturating).
    census: [u16; TYPE_BUCKETS],
    /// Per type bucket, bit `j` set when RDN `j` (for `j < 64`) holds that type.
    rdns_with: [u64; TYPE_BUCKETS],
    /// Bloom signature of every (type, normalised value) pair, see [`value_bit`].
    signature: Signature,
}

/// A 256-bit Bloom signature of (type, normalised value) pairs: a pattern whose
/// wildcard-free values set a bit the DN lacks cannot match it.
pub(crate) type Signature = [u64; 4];

/// The signature bit of one (type, normalised value) pair: FNV-1a over both, folded to
/// 0..256. Returns (word, mask).
pub(crate) fn value_bit(key: &TypeKey, value: &str) -> (usize, u64) {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    };
    match key {
        TypeKey::Kw(i) => {
            eat(*i);
            eat(0xff);
        }
        TypeKey::Oid(oid) => {
            oid.bytes().for_each(&mut eat);
            eat(0xfe);
        }
    }
    value.bytes().for_each(&mut eat);
    let folded = (h ^ (h >> 29) ^ (h >> 47)) as usize;
    ((folded >> 6) & 3, 1u64 << (folded & 63))
}

/// A DN string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DN \"{input}\" at position {position}: {reason}")]
pub struct DnParseError {
    /// The DN string as given.
    pub input: String,
    /// 1-based character position of the first problem.
    pub position: usize,
    /// What is wrong there.
    pub reason: String,
}

/// DER that is not an X.509 `Name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed DER Name: {0}")]
pub struct DnDerError(pub String);

impl Dn {
    /// Builds a DN from RDNs already in canonical (RFC 4514) order.
    pub fn from_rdns(rdns: Vec<Rdn>) -> Dn {
        let mut norm = Vec::with_capacity(rdns.iter().map(|r| r.attributes.len()).sum());
        let mut bounds = Vec::with_capacity(rdns.len() + 1);
        let mut census = [0u16; TYPE_BUCKETS];
        let mut rdns_with = [0u64; TYPE_BUCKETS];
        let mut signature = [0u64; 4];
        bounds.push(0);
        for (j, rdn) in rdns.iter().enumerate() {
            for a in &rdn.attributes {
                let key = a.attr_type.key();
                if let Some(c) = census.get_mut(key.bucket()) {
                    *c = c.saturating_add(1);
                }
                if let (Some(m), true) = (rdns_with.get_mut(key.bucket()), j < 64) {
                    *m |= 1 << j;
                }
                let mut value = String::with_capacity(a.value.len());
                normalize_into(a.value.chars(), &mut value);
                let (word, bit) = value_bit(&key, &value);
                if let Some(w) = signature.get_mut(word) {
                    *w |= bit;
                }
                norm.push(NormAttr {
                    key,
                    value: value.into_boxed_str(),
                });
            }
            bounds.push(u32::try_from(norm.len()).unwrap_or(u32::MAX));
        }
        Dn {
            rdns,
            norm,
            bounds,
            census,
            rdns_with,
            signature,
        }
    }

    /// The DN of an X.509 `Name` parsed by x509-parser (a certificate's subject or issuer).
    /// String values are decoded to text; a value of any other ASN.1 type, or a string
    /// whose bytes are invalid for its type, becomes `#` + hex of its DER.
    ///
    /// An attribute type OID that has no dotted form (empty, truncated, or an arc over 128
    /// bits) is kept as x509-parser renders it, which does not parse back as a DN string;
    /// [`Dn::try_from_x509_name`] refuses such names instead.
    pub fn from_x509_name(name: &X509Name<'_>) -> Dn {
        Dn::build(name, |oid| {
            Ok(oid_to_dotted(oid.as_bytes()).unwrap_or_else(|| oid.to_id_string()))
        })
        .unwrap_or_default()
    }

    /// Like [`Dn::from_x509_name`], but an attribute type OID without a dotted form is an
    /// error. Certificates are parsed with this one.
    pub fn try_from_x509_name(name: &X509Name<'_>) -> Result<Dn, DnDerError> {
        Dn::build(name, |oid| {
            oid_to_dotted(oid.as_bytes()).ok_or_else(|| {
                DnDerError(format!(
                    "attribute type OID {} has no dotted form",
                    hex::encode(oid.as_bytes())
                ))
            })
        })
    }

    fn build(
        name: &X509Name<'_>,
        dotted: impl Fn(&x509_parser::der_parser::oid::Oid<'_>) -> Result<String, DnDerError>,
    ) -> Result<Dn, DnDerError> {
        let mut rdns = Vec::new();
        for rdn in name.iter() {
            let mut attributes = Vec::new();
            for atv in rdn.iter() {
                let attr_type = AttributeType::from_oid(&dotted(atv.attr_type())?);
                let v = atv.attr_value();
                let hdr = &v.header;
                let class = hdr.class() as u8;
                let (value, is_hex) = match decode_string(class, hdr.tag().0, v.data) {
                    Some(s) if !hdr.constructed() => (s, false),
                    _ => {
                        let der = crate::der::encode_tagged(
                            hdr.raw_tag(),
                            class,
                            hdr.constructed(),
                            hdr.tag().0,
                            v.data,
                        );
                        (hex_value(&der), true)
                    }
                };
                attributes.push(Attribute {
                    attr_type,
                    value,
                    is_hex,
                });
            }
            rdns.push(Rdn { attributes });
        }
        rdns.reverse();
        Ok(Dn::from_rdns(rdns))
    }

    /// The DN of the DER encoding of an X.509 `Name` (the whole `SEQUENCE`).
    pub fn from_der(der: &[u8]) -> Result<Dn, DnDerError> {
        let (rest, name) = X509Name::from_der(der).map_err(|e| DnDerError(e.to_string()))?;
        if !rest.is_empty() {
            return Err(DnDerError(format!(
                "{} bytes of trailing data after the Name",
                rest.len()
            )));
        }
        Dn::try_from_x509_name(&name)
    }

    /// Parses a DN string (RFC 4514, keywords and aliases of SPEC §4).
    ///
    /// RDNs are taken in the order written (RFC 4514 order, most specific first). Beyond
    /// RFC 4514 it accepts white space around `,`, `+` and `=` (dropped), keyword aliases
    /// in any case and dotted OIDs. A `#hex` value that is the DER of a string type becomes
    /// that string; any other `#hex` value stays hex. The empty string is the empty DN.
    pub fn parse(input: &str) -> Result<Dn, DnParseError> {
        let to_err = |e: SyntaxError| DnParseError {
            input: input.to_owned(),
            position: e.position,
            reason: e.reason,
        };
        let segments = parse_syntax(input, Mode::Dn).map_err(to_err)?;
        let mut rdns = Vec::with_capacity(segments.len());
        for seg in segments {
            let RawSegment::Rdn(attrs) = seg else {
                // Wildcard segments exist only in pattern mode.
                return Err(to_err(SyntaxError::new(
                    1,
                    "wildcards are not allowed in a DN",
                )));
            };
            let attributes = attrs
                .into_iter()
                .map(|a| match a.value {
                    RawValue::Hex(text) => Attribute {
                        attr_type: a.attr_type,
                        value: text,
                        is_hex: true,
                    },
                    RawValue::Text(chars) => Attribute {
                        attr_type: a.attr_type,
                        value: chars
                            .into_iter()
                            .map(|c| match c {
                                VChar::Lit(c) => c,
                                VChar::One => '?',
                                VChar::Many => '*',
                            })
                            .collect(),
                        is_hex: false,
                    },
                })
                .collect();
            rdns.push(Rdn { attributes });
        }
        Ok(Dn::from_rdns(rdns))
    }

    /// The RDNs in canonical order.
    pub fn rdns(&self) -> &[Rdn] {
        &self.rdns
    }

    /// True for the empty DN (no RDN).
    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }

    /// The canonical string with non-ASCII characters as `\XX` escapes of their UTF-8
    /// bytes (SPEC §7), for HTTP headers. ASCII control characters are escaped the same
    /// way, so the result is always a valid header value.
    pub fn to_ascii_string(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.render(&mut out, true);
        out
    }

    /// Writes the canonical form; `ascii` selects the SPEC §7 variant.
    fn render(&self, out: &mut dyn fmt::Write, ascii: bool) -> fmt::Result {
        for (ri, rdn) in self.rdns.iter().enumerate() {
            if ri > 0 {
                out.write_char(',')?;
            }
            for (ai, a) in rdn.attributes.iter().enumerate() {
                if ai > 0 {
                    out.write_char('+')?;
                }
                out.write_str(a.attr_type.name())?;
                out.write_char('=')?;
                if a.is_hex {
                    out.write_str(&a.value)?;
                } else {
                    write_escaped(out, &a.value, ascii)?;
                }
            }
        }
        Ok(())
    }

    /// Number of RDNs.
    #[inline]
    pub(crate) fn rdn_count(&self) -> usize {
        self.rdns.len()
    }

    /// The attributes of RDN `i` (canonical order) in matching form.
    #[inline]
    pub(crate) fn norm_attrs(&self) -> &[NormAttr] {
        &self.norm
    }

    /// The matching form of the attributes of RDN `i`.
    pub(crate) fn norm_rdn(&self, i: usize) -> &[NormAttr] {
        let start = self.bounds.get(i).copied().unwrap_or(0) as usize;
        let end = self.bounds.get(i + 1).copied().unwrap_or(0) as usize;
        self.norm.get(start..end).unwrap_or(&[])
    }

    /// How many attributes of each type bucket the DN holds.
    #[inline]
    pub(crate) fn census(&self) -> &[u16; TYPE_BUCKETS] {
        &self.census
    }

    /// Bit `j` set when RDN `j` holds an attribute of type bucket `bucket` (RDNs 0..64).
    #[inline]
    pub(crate) fn rdns_with(&self, bucket: usize) -> u64 {
        self.rdns_with.get(bucket).copied().unwrap_or(0)
    }

    /// The Bloom signature of the DN's (type, value) pairs.
    #[inline]
    pub(crate) fn signature(&self) -> &Signature {
        &self.signature
    }
}

impl fmt::Display for Dn {
    /// The canonical DN string of SPEC §4.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(f, false)
    }
}

impl std::str::FromStr for Dn {
    type Err = DnParseError;

    fn from_str(s: &str) -> Result<Dn, DnParseError> {
        Dn::parse(s)
    }
}

/// Writes a string value with RFC 4514 §2.4 escaping.
fn write_escaped(out: &mut dyn fmt::Write, value: &str, ascii: bool) -> fmt::Result {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.write_char('\\')?;
                out.write_char(c)?;
            }
            '#' if i == 0 => out.write_str("\\#")?,
            ' ' if i == 0 || i == last => out.write_str("\\ ")?,
            '\0' => out.write_str("\\00")?,
            c if ascii && (!c.is_ascii() || c.is_ascii_control()) => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    write!(out, "\\{b:02X}")?;
                }
            }
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// Appends the matching form of a value: each character lower-cased (Unicode), leading
/// and trailing white space dropped, inner runs of white space folded to one space.
pub(crate) fn normalize_into(chars: impl Iterator<Item = char>, out: &mut String) {
    let mut started = false;
    let mut pending_space = false;
    for c in chars {
        if c.is_whitespace() {
            pending_space = started;
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        started = true;
        out.extend(c.to_lowercase());
    }
}

/// The dotted form of an OID's content bytes, arcs up to 128 bits; `None` when empty,
/// truncated (a last byte with the continuation bit) or too large.
fn oid_to_dotted(bytes: &[u8]) -> Option<String> {
    let mut arcs: Vec<u128> = Vec::new();
    let mut acc: u128 = 0;
    let mut pending = false;
    for &b in bytes {
        if acc > (u128::MAX >> 7) {
            return None;
        }
        acc = (acc << 7) | u128::from(b & 0x7f);
        pending = b & 0x80 != 0;
        if !pending {
            arcs.push(acc);
            acc = 0;
        }
    }
    if pending {
        return None;
    }
    let (&first, rest) = arcs.split_first()?;
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("{a}.{b}");
    for arc in rest {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    Some(out)
}

/// `#` followed by the upper-case hex of `der` (the RFC 4514 form, as OpenSSL prints it).
fn hex_value(der: &[u8]) -> String {
    let mut s = String::with_capacity(1 + der.len() * 2);
    s.push('#');
    s.push_str(&hex::encode_upper(der));
    s
}

/// Decodes the content of a universal string type to text; `None` for other types and
/// for bytes that are invalid for the type.
fn decode_string(class: u8, tag: u32, data: &[u8]) -> Option<String> {
    if class != 0 {
        return None;
    }
    match tag {
        // UTF8String, PrintableString, IA5String, NumericString, VisibleString
        12 | 19 | 22 | 18 | 26 => std::str::from_utf8(data).ok().map(str::to_owned),
        // TeletexString, read as Latin-1
        20 => Some(data.iter().map(|&b| char::from(b)).collect()),
        // BMPString (UCS-2 big-endian)
        30 => {
            let units = data.chunks_exact(2);
            if !units.remainder().is_empty() {
                return None;
            }
            units
                .map(|p| match *p {
                    [a, b] => char::from_u32(u32::from(u16::from_be_bytes([a, b]))),
                    _ => None,
                })
                .collect()
        }
        // UniversalString (UCS-4 big-endian)
        28 => {
            let units = data.chunks_exact(4);
            if !units.remainder().is_empty() {
                return None;
            }
            units
                .map(|q| match *q {
                    [a, b, c, d] => char::from_u32(u32::from_be_bytes([a, b, c, d])),
                    _ => None,
                })
                .collect()
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// The lexer shared by DN strings and patterns.

/// Which language is being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A DN string: `#hex` values, no wildcards.
    Dn,
    /// A pattern: `*`/`?` wildcards, `*` and `**` segments, no `#hex` values.
    Pattern,
}

/// A syntax error at a 1-based character position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) position: usize,
    pub(crate) reason: String,
}

impl SyntaxError {
    fn new(position: usize, reason: impl Into<String>) -> SyntaxError {
        SyntaxError {
            position,
            reason: reason.into(),
        }
    }
}

/// One character of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VChar {
    /// A literal character (escaped or not).
    Lit(char),
    /// `?`: exactly one character.
    One,
    /// `*`: zero or more characters.
    Many,
}

/// A value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawValue {
    /// Text (possibly with wildcards in pattern mode), unescaped and with unescaped
    /// surrounding white space removed.
    Text(Vec<VChar>),
    /// DN mode `#hex` of a non-string value: `#` + upper-case hex.
    Hex(String),
}

/// One `type=value` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawAttr {
    pub(crate) attr_type: AttributeType,
    pub(crate) value: RawValue,
}

/// One comma-separated segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawSegment {
    /// A segment that is exactly `*`.
    AnyOne,
    /// A segment that is exactly `**`.
    AnyMany,
    /// `type=value[+type=value...]`.
    Rdn(Vec<RawAttr>),
}

/// Characters that RFC 4514 requires to be escaped inside a value; unescaped, they are an
/// error rather than silently part of the value (`;` was an RDN separator in RFC 1779,
/// `"` a quote in RFC 2253).
const MUST_ESCAPE: [char; 4] = ['"', ';', '<', '>'];

/// Parses a DN string or a pattern into segments.
pub(crate) fn parse_syntax(input: &str, mode: Mode) -> Result<Vec<RawSegment>, SyntaxError> {
    let chars: Vec<char> = input.chars().collect();
    let mut p = Lexer {
        chars: &chars,
        i: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return match mode {
            Mode::Dn => Ok(Vec::new()),
            Mode::Pattern => Err(SyntaxError::new(1, "empty pattern")),
        };
    }
    let mut segments = Vec::new();
    loop {
        p.skip_ws();
        match p.peek() {
            None | Some(',') => return Err(SyntaxError::new(p.pos(), "empty RDN")),
            _ => {}
        }
        if mode == Mode::Pattern {
            if let Some(seg) = p.wildcard_segment()? {
                segments.push(seg);
                if p.at_end() {
                    return Ok(segments);
                }
                p.i += 1; // the ','
                continue;
            }
        }
        segments.push(RawSegment::Rdn(p.rdn(mode)?));
        match p.peek() {
            None => return Ok(segments),
            Some(',') => p.i += 1,
            // rdn() stops only at ',' or the end.
            Some(c) => {
                return Err(SyntaxError::new(
                    p.pos(),
                    format!("unexpected character '{c}'"),
                ))
            }
        }
    }
}

struct Lexer<'a> {
    chars: &'a [char],
    i: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.chars.len()
    }

    /// 1-based position of the current character.
    fn pos(&self) -> usize {
        self.i + 1
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    /// Skips the white space that may surround a value (see [`is_value_space`]).
    fn skip_value_space(&mut self, mode: Mode) {
        while self.peek().is_some_and(|c| is_value_space(c, mode)) {
            self.i += 1;
        }
    }

    /// A segment that is only `*` or `**` (plus white space): consumes it up to the ','
    /// or the end. `None` (nothing consumed) when the segment is something else.
    fn wildcard_segment(&mut self) -> Result<Option<RawSegment>, SyntaxError> {
        let start = self.i;
        let mut j = self.i;
        while self.chars.get(j) == Some(&'*') {
            j += 1;
        }
        let stars = j - start;
        if stars == 0 {
            return Ok(None);
        }
        let mut k = j;
        while self.chars.get(k).is_some_and(|c| c.is_whitespace()) {
            k += 1;
        }
        match self.chars.get(k) {
            None | Some(',') => {}
            Some(_) => return Ok(None),
        }
        let seg = match stars {
            1 => RawSegment::AnyOne,
            2 => RawSegment::AnyMany,
            _ => {
                return Err(SyntaxError::new(
                    start + 1,
                    "a wildcard segment is '*' (one RDN) or '**' (any number of RDNs)",
                ))
            }
        };
        self.i = k;
        Ok(Some(seg))
    }

    /// `type=value[+type=value...]`, stopping at an unescaped ',' or the end.
    fn rdn(&mut self, mode: Mode) -> Result<Vec<RawAttr>, SyntaxError> {
        let mut attrs = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some(',') | Some('+') => {
                    let reason = if attrs.is_empty() && self.peek() != Some('+') {
                        "empty RDN"
                    } else {
                        "empty attribute"
                    };
                    return Err(SyntaxError::new(self.pos(), reason));
                }
                _ => {}
            }
            let attr_type = self.attr_type()?;
            self.skip_ws();
            match self.peek() {
                Some('=') => self.i += 1,
                Some(c) => {
                    return Err(SyntaxError::new(
                        self.pos(),
                        format!("expected '=' after the attribute type, found '{c}'"),
                    ))
                }
                None => {
                    return Err(SyntaxError::new(
                        self.pos(),
                        "expected '=' after the attribute type",
                    ))
                }
            }
            self.skip_value_space(mode);
            let value = self.value(mode)?;
            attrs.push(RawAttr { attr_type, value });
            match self.peek() {
                Some('+') => self.i += 1,
                _ => return Ok(attrs),
            }
        }
    }

    /// A keyword (letters, digits, '-', starting with a letter) or a dotted OID.
    fn attr_type(&mut self) -> Result<AttributeType, SyntaxError> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            self.i += 1;
        }
        let name: String = self
            .chars
            .get(start..self.i)
            .unwrap_or(&[])
            .iter()
            .collect();
        if name.is_empty() {
            let found = match self.peek() {
                Some(c) => format!(", found '{c}'"),
                None => String::new(),
            };
            return Err(SyntaxError::new(
                start + 1,
                format!("expected an attribute type{found}"),
            ));
        }
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            if !is_dotted_oid(&name) {
                return Err(SyntaxError::new(
                    start + 1,
                    format!("invalid OID \"{name}\""),
                ));
            }
            return Ok(AttributeType::from_oid(&name));
        }
        AttributeType::from_keyword(&name).ok_or_else(|| {
            SyntaxError::new(start + 1, format!("unknown attribute type \"{name}\""))
        })
    }

    /// A value, up to an unescaped ',' or '+' or the end.
    fn value(&mut self, mode: Mode) -> Result<RawValue, SyntaxError> {
        if mode == Mode::Dn && self.peek() == Some('#') {
            return self.hex_value();
        }
        // (character, protected from trimming because it was escaped or is a wildcard)
        let mut out: Vec<(VChar, bool)> = Vec::new();
        // Consecutive `\XX` escapes form one UTF-8 byte sequence.
        let mut bytes: Vec<u8> = Vec::new();
        let mut bytes_start = 0usize;
        while let Some(c) = self.peek() {
            if c != '\\' {
                flush_bytes(&mut bytes, bytes_start, &mut out)?;
            }
            match c {
                ',' | '+' => break,
                '\\' => {
                    let at = self.pos();
                    let Some(next) = self.chars.get(self.i + 1).copied() else {
                        return Err(SyntaxError::new(at, "'\\' at the end of a value"));
                    };
                    if let Some(hi) = next.to_digit(16) {
                        let lo = self
                            .chars
                            .get(self.i + 2)
                            .and_then(|c| c.to_digit(16))
                            .ok_or_else(|| {
                                SyntaxError::new(at, "'\\' must be followed by two hex digits")
                            })?;
                        if bytes.is_empty() {
                            bytes_start = at;
                        }
                        bytes.push((hi * 16 + lo) as u8);
                        self.i += 3;
                        continue;
                    }
                    flush_bytes(&mut bytes, bytes_start, &mut out)?;
                    let literal = matches!(
                        next,
                        ',' | '+' | '"' | '\\' | ';' | '<' | '>' | '#' | '=' | ' '
                    ) || (mode == Mode::Pattern && matches!(next, '*' | '?'));
                    if !literal {
                        return Err(SyntaxError::new(
                            at,
                            format!("invalid escape sequence \"\\{next}\""),
                        ));
                    }
                    out.push((VChar::Lit(next), true));
                    self.i += 2;
                }
                c if MUST_ESCAPE.contains(&c) => {
                    return Err(SyntaxError::new(
                        self.pos(),
                        format!("'{c}' must be escaped as '\\{c}'"),
                    ));
                }
                '*' if mode == Mode::Pattern => {
                    out.push((VChar::Many, true));
                    self.i += 1;
                }
                '?' if mode == Mode::Pattern => {
                    out.push((VChar::One, true));
                    self.i += 1;
                }
                c => {
                    out.push((VChar::Lit(c), false));
                    self.i += 1;
                }
            }
        }
        flush_bytes(&mut bytes, bytes_start, &mut out)?;
        // Unescaped white space before the ',' / '+' / end is not part of the value.
        while out.last().is_some_and(|(c, protected)| {
            !protected && matches!(c, VChar::Lit(c) if is_value_space(*c, mode))
        }) {
            out.pop();
        }
        Ok(RawValue::Text(out.into_iter().map(|(c, _)| c).collect()))
    }

    /// DN mode `#hex`: the DER of the value.
    fn hex_value(&mut self) -> Result<RawValue, SyntaxError> {
        let at = self.pos();
        self.i += 1; // '#'
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
            self.i += 1;
        }
        let digits: String = self
            .chars
            .get(start..self.i)
            .unwrap_or(&[])
            .iter()
            .collect();
        self.skip_ws();
        match self.peek() {
            None | Some(',') | Some('+') => {}
            Some(c) => {
                return Err(SyntaxError::new(
                    self.pos(),
                    format!("unexpected '{c}' in a #hex value"),
                ))
            }
        }
        let der = hex::decode(&digits)
            .ok()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| {
                SyntaxError::new(
                    at,
                    "a #hex value needs an even, non-zero number of hex digits",
                )
            })?;
        let tlv = crate::der::single(&der)
            .ok_or_else(|| SyntaxError::new(at, "a #hex value must be one DER element"))?;
        if !tlv.constructed() {
            if let Some(s) = decode_string(tlv.class(), tlv.tag, tlv.content) {
                return Ok(RawValue::Text(s.chars().map(VChar::Lit).collect()));
            }
        }
        Ok(RawValue::Hex(hex_value(&der)))
    }
}

/// White space around a value that is not part of it. A pattern's values are compared
/// with white space folded, so any white space goes; in a DN string only the plain space,
/// which the canonical form escapes where it matters, so that a value from a certificate
/// that starts or ends with, say, a tab reads back unchanged.
fn is_value_space(c: char, mode: Mode) -> bool {
    match mode {
        Mode::Pattern => c.is_whitespace(),
        Mode::Dn => c == ' ',
    }
}

/// Turns pending `\XX` bytes into characters (they must be valid UTF-8).
fn flush_bytes(
    bytes: &mut Vec<u8>,
    start: usize,
    out: &mut Vec<(VChar, bool)>,
) -> Result<(), SyntaxError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let s = std::str::from_utf8(bytes)
        .map_err(|_| SyntaxError::new(start, "hex escapes are not valid UTF-8"))?;
    out.extend(s.chars().map(|c| (VChar::Lit(c), true)));
    bytes.clear();
    Ok(())
}

/// `digits(.digits)+`, no empty arc, no leading zero in an arc.
fn is_dotted_oid(s: &str) -> bool {
    let mut arcs = 0;
    for arc in s.split('.') {
        if arc.is_empty()
            || !arc.bytes().all(|b| b.is_ascii_digit())
            || (arc.len() > 1 && arc.starts_with('0'))
        {
            return false;
        }
        arcs += 1;
    }
    arcs >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_decoding() {
        assert_eq!(
            oid_to_dotted(&[0x55, 0x04, 0x03]).as_deref(),
            Some("2.5.4.3")
        );
        assert_eq!(
            oid_to_dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).as_deref(),
            Some("1.2.840.113549.1.9.1")
        );
        assert_eq!(
            oid_to_dotted(&[0x09, 0x92, 0x26]).as_deref(),
            Some("0.9.2342")
        );
        // 2.25.<128-bit UUID>
        let mut uuid_oid = vec![0x69];
        let v = u128::MAX;
        let mut groups = Vec::new();
        let mut t = v;
        while t > 0 {
            groups.push((t & 0x7f) as u8);
            t >>= 7;
        }
        for (i, g) in groups.iter().enumerate().rev() {
            uuid_oid.push(if i > 0 { g | 0x80 } else { *g });
        }
        assert_eq!(
            oid_to_dotted(&uuid_oid),
            Some(format!("2.25.{}", u128::MAX))
        );
        assert_eq!(oid_to_dotted(&[]), None);
        assert_eq!(oid_to_dotted(&[0x55, 0x84]), None);
        assert_eq!(oid_to_dotted(&[0xff; 20]), None);
    }

    #[test]
    fn oid_syntax() {
        assert!(is_dotted_oid("2.5.4.3"));
        assert!(is_dotted_oid("0.9.2342.19200300.100.1.25"));
        assert!(!is_dotted_oid("2"));
        assert!(!is_dotted_oid("2..4"));
        assert!(!is_dotted_oid("2.05.4"));
        assert!(!is_dotted_oid("2.5."));
    }
}
