//! Golden tests of the canonical DN (SPEC §4) against the real `openssl` binary.
//!
//! Each case builds the exact DER of a subject `Name` by hand (so that string types,
//! multi-valued RDNs and non-string values are under control), splices it into a
//! certificate generated with rcgen, and compares `Dn`'s `Display` with
//! `openssl x509 -noout -subject -nameopt RFC2253,-esc_msb,-dump_unknown` after these
//! documented adjustments:
//!
//! 1. keywords: OpenSSL prints `emailAddress`, `serialNumber`, `title`, `street`,
//!    `postalCode`, `x500UniqueIdentifier`; SPEC §4 prints `E`, `SERIALNUMBER`, `T`,
//!    `STREET` and the dotted OIDs `2.5.4.17`, `2.5.4.45`;
//! 2. multi-valued RDNs: OpenSSL's reversed order (`-nameopt dn_rev`) also reverses the
//!    attributes inside a multi-valued RDN; SPEC §4 keeps their encoding order;
//! 3. `-esc_msb` keeps UTF-8 as it is (SPEC §4), `-dump_unknown` prints the string value of
//!    an attribute OpenSSL does not know instead of its DER hex.
//!
//! Everything else (RDN order, escaping, `#hex` of non-string values, UTF-8 conversion
//! of BMPString/UniversalString/TeletexString) must be byte-for-byte what OpenSSL prints.

use std::process::Command;

use certgate_pki::{CertificateInfo, Dn};

// ---------------------------------------------------------------------------------------
// Minimal DER writing and splicing, for building test names.

fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        vec![len as u8]
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut body = Vec::new();
    let mut push = |mut v: u64| {
        let mut groups = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            groups.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        body.extend(groups.iter().rev());
    };
    push(arcs[0] * 40 + arcs[1]);
    for a in &arcs[2..] {
        push(*a);
    }
    tlv(0x06, &body)
}

/// ASN.1 tags of the value types used below.
const UTF8: u8 = 0x0c;
const PRINTABLE: u8 = 0x13;
const TELETEX: u8 = 0x14;
const IA5: u8 = 0x16;
const NUMERIC: u8 = 0x12;
const VISIBLE: u8 = 0x1a;
const BMP: u8 = 0x1e;
const UNIVERSAL: u8 = 0x1c;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const BIT_STRING: u8 = 0x03;

/// One attribute: (dotted OID, value tag, value content bytes).
type Atv = (&'static str, u8, Vec<u8>);

fn utf8(oid: &'static str, s: &str) -> Atv {
    (oid, UTF8, s.as_bytes().to_vec())
}

fn bmp(oid: &'static str, s: &str) -> Atv {
    (
        oid,
        BMP,
        s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
    )
}

fn universal(oid: &'static str, s: &str) -> Atv {
    (
        oid,
        UNIVERSAL,
        s.chars().flat_map(|c| (c as u32).to_be_bytes()).collect(),
    )
}

/// A `Name` from RDNs in ASN.1 order (the reverse of the canonical string).
fn name(rdns: &[Vec<Atv>]) -> Vec<u8> {
    let mut seq = Vec::new();
    for rdn in rdns {
        let mut set = Vec::new();
        for (o, tag, content) in rdn {
            let mut atv = oid(o);
            atv.extend(tlv(*tag, content));
            set.extend(tlv(0x30, &atv));
        }
        seq.extend(tlv(0x31, &set));
    }
    tlv(0x30, &seq)
}

/// Splits one TLV off the front: (whole TLV, rest).
fn split_tlv(input: &[u8]) -> (&[u8], &[u8]) {
    let l = input[1];
    let (hdr, len) = if l < 0x80 {
        (2, l as usize)
    } else {
        let n = (l & 0x7f) as usize;
        (
            2 + n,
            input[2..2 + n]
                .iter()
                .fold(0usize, |a, b| (a << 8) | *b as usize),
        )
    };
    input.split_at(hdr + len)
}

fn content(t: &[u8]) -> &[u8] {
    let l = t[1];
    if l < 0x80 {
        &t[2..]
    } else {
        &t[2 + (l & 0x7f) as usize..]
    }
}

/// A certificate whose subject is replaced by `subject` (signature left stale: OpenSSL
/// prints the subject without verifying it, and x509-parser does not verify either).
fn cert_with_subject(subject: &[u8]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "placeholder");
    let der = params.self_signed(&key).unwrap().der().to_vec();

    let (cert, _) = split_tlv(&der);
    let (tbs, rest) = split_tlv(content(cert));
    let mut fields = Vec::new();
    let mut body = content(tbs);
    while !body.is_empty() {
        let (f, r) = split_tlv(body);
        fields.push(f.to_vec());
        body = r;
    }
    // [0] version, serial, signature, issuer, validity, subject, ...
    assert_eq!(fields[0][0], 0xa0, "rcgen writes an explicit version");
    fields[5] = subject.to_vec();
    let new_tbs = tlv(0x30, &fields.concat());
    let mut cert_body = new_tbs;
    cert_body.extend_from_slice(rest);
    tlv(0x30, &cert_body)
}

// ---------------------------------------------------------------------------------------
// Running OpenSSL and adjusting its output.

fn openssl_subject(der: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cert.der");
    std::fs::write(&path, der).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-subject", "-nameopt"])
        .arg("RFC2253,-esc_msb,-dump_unknown")
        .arg("-in")
        .arg(&path)
        .output()
        .expect("the openssl binary is installed");
    assert!(
        out.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("openssl printed UTF-8");
    text.trim_end_matches('\n')
        .strip_prefix("subject=")
        .expect("subject= prefix")
        .to_owned()
}

/// Splits on `sep` where it is not escaped by a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            parts.last_mut().unwrap().push(c);
            escaped = false;
        } else if c == '\\' {
            parts.last_mut().unwrap().push(c);
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().unwrap().push(c);
        }
    }
    parts
}

/// OpenSSL's RFC 2253 output, adjusted to SPEC §4 as the module docs describe.
fn adjust(openssl: &str) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("emailAddress", "E"),
        ("serialNumber", "SERIALNUMBER"),
        ("title", "T"),
        ("street", "STREET"),
        ("postalCode", "2.5.4.17"),
        ("x500UniqueIdentifier", "2.5.4.45"),
    ];
    split_unescaped(openssl, ',')
        .iter()
        .map(|rdn| {
            let mut attrs: Vec<String> = split_unescaped(rdn, '+')
                .into_iter()
                .map(|atv| {
                    let (ty, value) = atv.split_once('=').expect("type=value");
                    let ty = NAMES.iter().find(|(o, _)| *o == ty).map_or(ty, |(_, s)| *s);
                    format!("{ty}={value}")
                })
                .collect();
            attrs.reverse();
            attrs.join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Builds the certificate, checks our canonical string is `expected`, and checks that
/// OpenSSL, adjusted, prints the same.
fn golden(rdns: &[Vec<Atv>], expected: &str) {
    let der = cert_with_subject(&name(rdns));
    let info = CertificateInfo::from_der(&der).unwrap();
    assert_eq!(info.subject.to_string(), expected, "our canonical DN");
    let openssl = openssl_subject(&der);
    assert_eq!(adjust(&openssl), expected, "openssl printed {openssl:?}");
    // Dn::from_der of the Name alone gives the same DN.
    assert_eq!(Dn::from_der(&name(rdns)).unwrap(), info.subject);
}

const CN: &str = "2.5.4.3";
const C: &str = "2.5.4.6";
const ST: &str = "2.5.4.8";
const L: &str = "2.5.4.7";
const O: &str = "2.5.4.10";
const OU: &str = "2.5.4.11";
const STREET: &str = "2.5.4.9";
const DC: &str = "0.9.2342.19200300.100.1.25";
const UID: &str = "0.9.2342.19200300.100.1.1";
const E: &str = "1.2.840.113549.1.9.1";
const SERIAL: &str = "2.5.4.5";
const T: &str = "2.5.4.12";
const GN: &str = "2.5.4.42";
const SN: &str = "2.5.4.4";

// ---------------------------------------------------------------------------------------

#[test]
fn golden_spec_example_rdn_order_and_email() {
    golden(
        &[
            vec![(E, IA5, b"abc@test.com".to_vec())],
            vec![utf8(OU, "Boomi")],
            vec![utf8(O, "Boomi")],
            vec![utf8(L, "BLR")],
            vec![utf8(ST, "KA")],
            vec![(C, PRINTABLE, b"IND".to_vec())],
            vec![utf8(CN, "localhost")],
        ],
        "CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,E=abc@test.com",
    );
}

#[test]
fn golden_every_keyword() {
    golden(
        &[
            vec![(DC, IA5, b"com".to_vec())],
            vec![(DC, IA5, b"example".to_vec())],
            vec![utf8(STREET, "1 Main St")],
            vec![(SERIAL, PRINTABLE, b"42".to_vec())],
            vec![utf8(T, "Dr")],
            vec![utf8(GN, "Jo")],
            vec![utf8(SN, "Do")],
            vec![utf8(UID, "jdo")],
            vec![(E, IA5, b"jo@example.com".to_vec())],
            vec![utf8(CN, "Jo Do")],
        ],
        "CN=Jo Do,E=jo@example.com,UID=jdo,SN=Do,GN=Jo,T=Dr,SERIALNUMBER=42,STREET=1 Main St,DC=example,DC=com",
    );
}

#[test]
fn golden_special_characters_are_escaped() {
    golden(
        &[vec![utf8(O, "a,b+c\"d\\e<f>g;h")], vec![utf8(CN, "x=y")]],
        "CN=x=y,O=a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h",
    );
}

#[test]
fn golden_leading_hash_and_spaces_trailing_space() {
    golden(
        &[
            vec![utf8(OU, "#hash")],
            vec![utf8(OU, "in#side")],
            vec![utf8(O, "  two leading")],
            vec![utf8(L, "trailing ")],
            vec![utf8(CN, " both ")],
        ],
        "CN=\\ both\\ ,L=trailing\\ ,O=\\  two leading,OU=in#side,OU=\\#hash",
    );
}

#[test]
fn golden_nul_is_escaped_as_00() {
    golden(&[vec![utf8(CN, "a\0b")]], "CN=a\\00b");
}

#[test]
fn golden_utf8_and_other_string_types_stay_utf8() {
    golden(
        &[
            vec![utf8(O, "Société Générale 東京")],
            vec![bmp(L, "Łódź")],
            vec![universal(OU, "𝄞 music")],
            vec![(ST, TELETEX, b"caf\xe9".to_vec())],
            vec![(SERIAL, NUMERIC, b"0123 456".to_vec())],
            vec![(CN, PRINTABLE, b"Printable".to_vec())],
        ],
        "CN=Printable,SERIALNUMBER=0123 456,ST=café,OU=𝄞 music,L=Łódź,O=Société Générale 東京",
    );
}

/// VisibleString is a string type for SPEC §4 but OpenSSL refuses it in a Name (its
/// X509_NAME_ENTRY value set does not include it), so there is no OpenSSL to compare with.
#[test]
fn visible_string_is_text() {
    let dn = Dn::from_der(&name(&[vec![(GN, VISIBLE, b"Visible".to_vec())]])).unwrap();
    assert_eq!(dn.to_string(), "GN=Visible");
}

/// Bytes that are invalid for their string type fall back to the `#hex` form.
#[test]
fn invalid_string_bytes_fall_back_to_hex() {
    let dn = Dn::from_der(&name(&[
        vec![(CN, UTF8, vec![0xff, 0xfe])],
        vec![(CN, BMP, vec![0xd8, 0x00])],
        vec![(CN, UNIVERSAL, vec![0, 0x11, 0, 0])],
    ]))
    .unwrap();
    assert_eq!(dn.to_string(), "CN=#1C0400110000,CN=#1E02D800,CN=#0C02FFFE");
}

#[test]
fn golden_multi_valued_rdns_keep_encoding_order() {
    golden(
        &[
            vec![utf8(O, "Acme")],
            vec![utf8(CN, "John"), utf8(UID, "j1")],
            vec![utf8(OU, "b"), utf8(OU, "a"), utf8(CN, "c\\+")],
        ],
        "OU=b+OU=a+CN=c\\\\\\+,CN=John+UID=j1,O=Acme",
    );
}

#[test]
fn golden_unknown_oids_as_dotted_oid() {
    golden(
        &[
            vec![utf8("1.2.3.4", "zz")],
            vec![utf8("2.5.4.17", "560001")],
            vec![utf8(CN, "x")],
        ],
        "CN=x,2.5.4.17=560001,1.2.3.4=zz",
    );
}

#[test]
fn golden_non_string_values_as_hex_der() {
    // OpenSSL accepts BIT STRING and SEQUENCE values in a Name and prints their DER hex.
    golden(
        &[
            vec![("2.5.4.45", BIT_STRING, vec![0, 0xff])],
            vec![("1.2.3.7", 0x30, vec![0x02, 0x01, 0x2a])],
            vec![utf8(CN, "x")],
        ],
        "CN=x,1.2.3.7=#300302012A,2.5.4.45=#030200FF",
    );
}

/// INTEGER and OCTET STRING values (which OpenSSL refuses to load in a Name) are `#` +
/// the hex of their whole DER (tag, length, content), including long lengths.
#[test]
fn integer_and_octet_string_values_as_hex_der() {
    let long = vec![0xabu8; 130];
    let dn = Dn::from_der(&name(&[
        vec![("1.2.3.5", OCTET_STRING, vec![1, 2, 3])],
        vec![("1.2.3.6", INTEGER, vec![0x2a])],
        vec![("1.2.3.8", OCTET_STRING, long.clone())],
    ]))
    .unwrap();
    let long_hex = format!("#048182{}", "AB".repeat(130));
    assert_eq!(
        dn.to_string(),
        format!("1.2.3.8={long_hex},1.2.3.6=#02012A,1.2.3.5=#0403010203")
    );
    let attr = &dn.rdns()[1].attributes[0];
    assert!(attr.is_hex);
    assert_eq!(attr.value, "#02012A");
    assert_eq!(attr.attr_type.oid(), "1.2.3.6");
}

// ---------------------------------------------------------------------------------------
// The same names through Dn::parse, and the ASCII form of SPEC §7.

#[test]
fn parsed_strings_render_canonically() {
    let cases: &[(&str, &str)] = &[
        ("CN=localhost, C=IND, ST=KA", "CN=localhost,C=IND,ST=KA"),
        (
            "cn=a,emailAddress=x@y,s=KA,userid=u1",
            "CN=a,E=x@y,ST=KA,UID=u1",
        ),
        ("Email=x@y,EMAIL=z@y", "E=x@y,E=z@y"),
        ("2.5.4.3=a,1.2.840.113549.1.9.1=x@y", "CN=a,E=x@y"),
        ("0.9.2342.19200300.100.1.25=com", "DC=com"),
        ("2.5.4.17=560001", "2.5.4.17=560001"),
        (
            "CN=a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h",
            "CN=a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h",
        ),
        ("CN=\\#x,O=a#b", "CN=\\#x,O=a#b"),
        ("CN=\\ lead,O=trail\\ ", "CN=\\ lead,O=trail\\ "),
        ("CN=  unescaped spaces  ,O=x", "CN=unescaped spaces,O=x"),
        ("CN=a\\00b", "CN=a\\00b"),
        ("CN=\\C3\\A9t\\C3\\A9", "CN=été"),
        ("CN=été", "CN=été"),
        ("CN=a\\=b,O=c=d", "CN=a=b,O=c=d"),
        ("CN=John+UID=j1,O=Acme", "CN=John+UID=j1,O=Acme"),
        ("CN = John + UID = j1 , O = Acme", "CN=John+UID=j1,O=Acme"),
        ("CN=#0C0161", "CN=a"),
        ("CN=#1E02004C", "CN=L"),
        ("2.5.4.45=#030200ff", "2.5.4.45=#030200FF"),
        ("1.2.3.6=#02012A", "1.2.3.6=#02012A"),
        ("CN=", "CN="),
        ("CN=*?", "CN=*?"),
        ("", ""),
    ];
    for (input, want) in cases {
        let dn = Dn::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(dn.to_string(), *want, "input {input:?}");
        // Canonical strings are a fixed point.
        assert_eq!(Dn::parse(want).unwrap(), dn, "re-parse of {want:?}");
    }
}

#[test]
fn parsed_dn_errors_name_the_position() {
    let cases: &[(&str, usize, &str)] = &[
        ("CN=a,,O=b", 6, "empty RDN"),
        ("FOO=bar", 1, "unknown attribute type \"FOO\""),
        ("CN=a\\x", 5, "invalid escape sequence \"\\x\""),
        ("CN=a\\*", 5, "invalid escape sequence \"\\*\""),
        ("CN=#0C01", 4, "a #hex value must be one DER element"),
        (
            "CN=#0C0",
            4,
            "a #hex value needs an even, non-zero number of hex digits",
        ),
        (
            "CN=#",
            4,
            "a #hex value needs an even, non-zero number of hex digits",
        ),
        ("CN=#0C0161x", 11, "unexpected 'x' in a #hex value"),
        ("CN=a;O=b", 5, "';' must be escaped as '\\;'"),
        ("CN=a,", 6, "empty RDN"),
        ("CN", 3, "expected '=' after the attribute type"),
        ("*", 1, "expected an attribute type, found '*'"),
        ("**,CN=a", 1, "expected an attribute type, found '*'"),
    ];
    for (input, position, reason) in cases {
        let err = Dn::parse(input).unwrap_err();
        assert_eq!(
            (err.position, err.reason.as_str()),
            (*position, *reason),
            "input {input:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("invalid DN \"{input}\" at position {position}: {reason}")
        );
    }
}

#[test]
fn ascii_form_escapes_non_ascii_as_utf8_bytes() {
    let dn = Dn::parse("CN=Émile Zoë,O=東京,OU=plain\\, text").unwrap();
    assert_eq!(dn.to_string(), "CN=Émile Zoë,O=東京,OU=plain\\, text");
    assert_eq!(
        dn.to_ascii_string(),
        "CN=\\C3\\89mile Zo\\C3\\AB,O=\\E6\\9D\\B1\\E4\\BA\\AC,OU=plain\\, text"
    );
    // The ASCII form is what OpenSSL prints with plain `-nameopt RFC2253` (esc_msb on).
    let der = cert_with_subject(&name(&[vec![utf8(O, "東京")], vec![utf8(CN, "Émile Zoë")]]));
    let info = CertificateInfo::from_der(&der).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.der");
    std::fs::write(&path, &der).unwrap();
    let out = Command::new("openssl")
        .args([
            "x509", "-inform", "DER", "-noout", "-subject", "-nameopt", "RFC2253", "-in",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let openssl = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        openssl.trim_end(),
        format!("subject={}", info.subject.to_ascii_string())
    );
    // Control characters are escaped too, so the value is always a valid header value.
    let dn = Dn::parse("CN=a\\0Ab\\00").unwrap();
    assert_eq!(dn.to_string(), "CN=a\nb\\00");
    assert_eq!(dn.to_ascii_string(), "CN=a\\0Ab\\00");
}

/// A certificate generated by OpenSSL itself (`req -subj … -multivalue-rdn -utf8`), not by
/// the DER splicing above.
#[test]
fn golden_openssl_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let cert = dir.path().join("c.pem");
    let ok = Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(ok.success());
    let subject = "/DC=com/O=A, \"B\" <c>;d/OU=x\\+y/CN=John+UID=j1/emailAddress=a@b.c/title=Dr/street=Main/CN=Zoë #1 ";
    let ok = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-x509",
            "-days",
            "2",
            "-multivalue-rdn",
            "-utf8",
            "-key",
        ])
        .arg(&key)
        .args(["-subj", subject, "-out"])
        .arg(&cert)
        .status()
        .unwrap();
    assert!(ok.success());
    let pem = std::fs::read_to_string(&cert).unwrap();
    let info = CertificateInfo::parse_pem_chain(&pem).unwrap().remove(0);
    let expected =
        "CN=Zoë #1\\ ,STREET=Main,T=Dr,E=a@b.c,CN=John+UID=j1,OU=x\\+y,O=A\\, \\\"B\\\" \\<c\\>\\;d,DC=com";
    assert_eq!(info.subject.to_string(), expected);
    assert_eq!(adjust(&openssl_subject(info.der.as_ref())), expected);
}

// ---------------------------------------------------------------------------------------
// Round trips and OIDs.

/// An OID whose arcs do not fit 128 bits has no dotted form: certificates and
/// `Dn::from_der` refuse it; a 128-bit arc (2.25.<UUID>) is fine.
#[test]
fn oversized_oid_arcs() {
    let mut uuid = vec![0x69u8]; // 2.25
    uuid.extend([
        0x83, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    uuid.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    let name_der = |oid_content: &[u8]| {
        let mut atv = tlv(0x06, oid_content);
        atv.extend(tlv(UTF8, b"v"));
        tlv(0x30, &tlv(0x31, &tlv(0x30, &atv)))
    };
    let dn = Dn::from_der(&name_der(&uuid)).unwrap();
    assert_eq!(dn.to_string(), format!("2.25.{}=v", u128::MAX));
    assert_eq!(Dn::parse(&dn.to_string()).unwrap(), dn);

    let mut huge = vec![0x69u8];
    huge.extend([0xff; 20]);
    huge.push(0x7f);
    let err = Dn::from_der(&name_der(&huge)).unwrap_err();
    assert!(err.to_string().contains("has no dotted form"), "{err}");
    let cert = cert_with_subject(&name_der(&huge));
    let err = CertificateInfo::from_der(&cert).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("certificate DER is malformed: subject: "),
        "{err}"
    );
}

mod round_trip {
    use super::*;
    use proptest::prelude::*;

    fn string_value() -> impl Strategy<Value = (u8, String)> {
        let text = "[ \t\n\0#=+,;<>\"\\\\aZ09é東\u{a0}\u{1F600}]{0,8}";
        prop_oneof![
            text.prop_map(|s| (UTF8, s)),
            text.prop_map(|s| (BMP, s.chars().filter(|c| (*c as u32) < 0x10000).collect())),
            text.prop_map(|s| (UNIVERSAL, s)),
            "[ -~]{0,8}".prop_map(|s| (PRINTABLE, s)),
            "[ -~\u{a0}-\u{ff}]{0,8}".prop_map(|s| (TELETEX, s)),
        ]
    }

    fn encode(tag: u8, s: &str) -> Vec<u8> {
        match tag {
            BMP => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            UNIVERSAL => s.chars().flat_map(|c| (c as u32).to_be_bytes()).collect(),
            TELETEX => s.chars().map(|c| c as u32 as u8).collect(),
            _ => s.as_bytes().to_vec(),
        }
    }

    fn attr() -> impl Strategy<Value = Atv> {
        let oid = prop::sample::select(vec![
            CN,
            O,
            OU,
            E,
            UID,
            DC,
            "2.5.4.17",
            "1.3.6.1.4.1.99999.1",
        ]);
        prop_oneof![
            4 => (oid.clone(), string_value()).prop_map(|(o, (tag, s))| (o, tag, encode(tag, &s))),
            1 => (oid, prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(o, b)| (o, OCTET_STRING, b)),
        ]
    }

    proptest! {
        #[test]
        fn canonical_and_ascii_forms_parse_back(
            rdns in prop::collection::vec(prop::collection::vec(attr(), 1..3), 0..5)
        ) {
            let dn = Dn::from_der(&name(&rdns)).unwrap();
            let text = dn.to_string();
            prop_assert_eq!(&Dn::parse(&text).unwrap(), &dn, "canonical {:?}", text);
            let ascii = dn.to_ascii_string();
            prop_assert!(ascii.bytes().all(|b| (0x20..0x7f).contains(&b)), "{:?}", ascii);
            prop_assert_eq!(&Dn::parse(&ascii).unwrap(), &dn, "ascii {:?}", ascii);
        }
    }
}
