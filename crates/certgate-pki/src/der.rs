//! The one DER reader of the crate: splitting TLVs (tag, length, value) off a byte
//! string, and the one TLV writer. The DN decoder, the chain judge's issuer lookup and
//! OCSP all read DER through here; certificates and CRLs as a whole are parsed by
//! `x509-parser` and `webpki`. Definite lengths only (DER has no other), at most four
//! length octets (no certificate field is 4 GiB), and every length checked against the
//! input: hostile input answers `None`, never a panic.

/// One TLV split off an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet (class, constructed bit, low tag number or `0x1f`).
    pub(crate) identifier: u8,
    /// The tag number (also when it is written in the high-tag-number form).
    pub(crate) tag: u32,
    /// The value.
    pub(crate) content: &'a [u8],
    /// The whole TLV, identifier to the end of the value.
    pub(crate) whole: &'a [u8],
    /// What follows the TLV.
    pub(crate) rest: &'a [u8],
}

impl Tlv<'_> {
    /// The class (0 universal, 1 application, 2 context, 3 private).
    pub(crate) fn class(&self) -> u8 {
        self.identifier >> 6
    }

    /// Whether the value holds TLVs.
    pub(crate) fn constructed(&self) -> bool {
        self.identifier & 0x20 != 0
    }
}

/// Splits the first TLV off `input`.
pub(crate) fn split(input: &[u8]) -> Option<Tlv<'_>> {
    let (&identifier, mut rest) = input.split_first()?;
    let mut tag = u32::from(identifier & 0x1f);
    if tag == 0x1f {
        tag = 0;
        loop {
            let (&b, r) = rest.split_first()?;
            rest = r;
            tag = tag.checked_mul(128)? | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let (&first, r) = rest.split_first()?;
    rest = r;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, r) = rest.split_at_checked(count)?;
        rest = r;
        bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b))
    };
    let (content, rest) = rest.split_at_checked(len)?;
    let whole = &input[..input.len() - rest.len()];
    Some(Tlv {
        identifier,
        tag,
        content,
        whole,
        rest,
    })
}

/// Splits the first TLV off `input` when its identifier octet is `identifier`.
pub(crate) fn expect(input: &[u8], identifier: u8) -> Option<Tlv<'_>> {
    split(input).filter(|t| t.identifier == identifier && identifier & 0x1f != 0x1f)
}

/// `der` as exactly one TLV (nothing after it).
pub(crate) fn single(der: &[u8]) -> Option<Tlv<'_>> {
    split(der).filter(|t| t.rest.is_empty())
}

/// Writes one TLV with a low-tag-number `identifier`.
pub(crate) fn encode(identifier: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(identifier);
    push_value(&mut out, content);
    out
}

/// Writes one TLV: with `raw_identifier` (the identifier octets as they were read) when
/// given and non-empty, else from `class`, `constructed` and `tag` (high-tag-number form
/// from 31 on).
pub(crate) fn encode_tagged(
    raw_identifier: Option<&[u8]>,
    class: u8,
    constructed: bool,
    tag: u32,
    content: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 8);
    match raw_identifier {
        Some(raw) if !raw.is_empty() => out.extend_from_slice(raw),
        _ => {
            let first = (class << 6) | if constructed { 0x20 } else { 0 };
            if tag < 31 {
                out.push(first | tag as u8);
            } else {
                out.push(first | 0x1f);
                let mut groups = Vec::new();
                let mut t = tag;
                loop {
                    groups.push((t & 0x7f) as u8);
                    t >>= 7;
                    if t == 0 {
                        break;
                    }
                }
                let last = groups.len() - 1;
                for (i, g) in groups.iter().rev().enumerate() {
                    out.push(if i < last { g | 0x80 } else { *g });
                }
            }
        }
    }
    push_value(&mut out, content);
    out
}

/// Appends the definite length of `content` (short form below 128) and `content`.
fn push_value(out: &mut Vec<u8>, content: &[u8]) {
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_long_and_high_tag_forms() {
        let t = split(&[0x30, 0x02, 0x05, 0x00, 0xff]).unwrap();
        assert_eq!(
            (t.identifier, t.tag, t.content, t.rest),
            (0x30, 16, &[5, 0][..], &[0xff][..])
        );
        assert_eq!(t.whole, &[0x30, 0x02, 0x05, 0x00]);
        assert!(t.constructed() && t.class() == 0);
        let long = encode(0x04, &[7; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let t = single(&long).unwrap();
        assert_eq!(t.content.len(), 300);
        // [APPLICATION 200] primitive: 0x5f 0x81 0x48.
        let t = single(&[0x5f, 0x81, 0x48, 0x01, 0xaa]).unwrap();
        assert_eq!((t.class(), t.tag, t.content), (1, 200, &[0xaa][..]));
        assert!(expect(&[0x5f, 0x81, 0x48, 0x01, 0xaa], 0x5f).is_none());
        let der = encode_tagged(None, 0, false, 4, &[0u8; 200]);
        assert_eq!(&der[..3], &[0x04, 0x81, 200]);
        let der = encode_tagged(None, 2, true, 200, &[1]);
        assert_eq!(der, vec![0xbf, 0x81, 0x48, 0x01, 0x01]);
        let t = single(&der).unwrap();
        assert_eq!(
            (t.class(), t.constructed(), t.tag, t.content),
            (2, true, 200, &[1u8][..])
        );
        assert_eq!(
            encode_tagged(Some(&[0x5f, 0x81, 0x48]), 0, false, 0, &[0xaa]),
            [0x5f, 0x81, 0x48, 0x01, 0xaa]
        );
    }

    #[test]
    fn hostile_lengths_are_refused() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x00],          // shorter than its length
            &[0x30, 0x80, 0x00, 0x00],    // indefinite length
            &[0x30, 0x85, 1, 0, 0, 0, 0], // five length octets
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00], // tag overflow
        ] {
            assert!(split(bad).is_none(), "{bad:02x?}");
        }
        assert!(
            single(&[0x05, 0x00, 0x05, 0x00]).is_none(),
            "two TLVs are not one"
        );
        assert!(expect(&[0x05, 0x00], 0x30).is_none());
    }
}
