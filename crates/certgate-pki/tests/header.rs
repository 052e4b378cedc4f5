//! Header certificate decoding (SPEC §6): every form a load balancer sends, built from
//! rcgen certificates exactly as that load balancer writes it.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use certgate_pki::header::{MAX_HEADER_CERTIFICATES, MAX_HEADER_VALUE_LEN};
use certgate_pki::{decode_header, HeaderChain, HeaderError, HeaderFormat};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A root CA, an intermediate CA and a leaf, as DER and PEM.
struct Pki {
    root_der: Vec<u8>,
    inter_der: Vec<u8>,
    inter_pem: String,
    leaf_der: Vec<u8>,
    leaf_pem: String,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn pki() -> Pki {
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca_params("Header Test Root");
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, root_key);

    let inter_key = KeyPair::generate().unwrap();
    let inter_params = ca_params("Header Test Intermediate");
    let inter = inter_params.signed_by(&inter_key, &root_issuer).unwrap();
    let inter_issuer = Issuer::new(inter_params, inter_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["client.example".to_string()]).unwrap();
    leaf_params.distinguished_name = DistinguishedName::new();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "client, \"quoted\"");
    let leaf = leaf_params.signed_by(&leaf_key, &inter_issuer).unwrap();

    Pki {
        root_der: root.der().to_vec(),
        inter_der: inter.der().to_vec(),
        inter_pem: inter.pem(),
        leaf_der: leaf.der().to_vec(),
        leaf_pem: leaf.pem(),
    }
}

/// A leaf whose base64 holds a `+` (so `+` handling is really exercised), self-signed.
fn leaf_with_plus() -> (Vec<u8>, String) {
    for _ in 0..200 {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["plus.example".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        if STANDARD.encode(cert.der()).contains('+') {
            return (cert.der().to_vec(), cert.pem());
        }
    }
    panic!("no certificate with '+' in its base64 after 200 tries");
}

/// nginx `ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT)`: all but unreserved characters.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// AWS ALB: URL-encoded, but `+`, `=` and `/` are left as they are.
const ALB: &AsciiSet = &URI_COMPONENT.remove(b'+').remove(b'=').remove(b'/');

/// Go's `url.QueryEscape` (Traefik v2) on a value without spaces.
const GO_QUERY: &AsciiSet = URI_COMPONENT;

fn enc(text: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(text, set).to_string()
}

fn decode(value: &str, format: HeaderFormat) -> Result<HeaderChain, HeaderError> {
    decode_header(value.as_bytes(), format)
}

fn assert_leaf(chain: &HeaderChain, leaf: &[u8], intermediates: &[&[u8]]) {
    assert_eq!(chain.leaf.as_ref(), leaf, "leaf differs");
    let got: Vec<&[u8]> = chain.intermediates.iter().map(|c| c.as_ref()).collect();
    assert_eq!(got, intermediates, "intermediates differ");
}

fn malformed_format(err: HeaderError) -> &'static str {
    match err {
        HeaderError::Malformed { format, .. } => format,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// nginx

#[test]
fn nginx_escaped_cert_is_url_encoded_pem() {
    let p = pki();
    let value = enc(&p.leaf_pem, URI_COMPONENT);
    assert!(value.starts_with("-----BEGIN%20CERTIFICATE-----%0A"));
    for format in [HeaderFormat::Auto, HeaderFormat::UrlEncodedPem] {
        let chain = decode(&value, format).unwrap();
        assert_leaf(&chain, &p.leaf_der, &[]);
    }
}

#[test]
fn nginx_escaped_cert_with_chain_gives_intermediates() {
    let p = pki();
    let value = enc(&format!("{}{}", p.leaf_pem, p.inter_pem), URI_COMPONENT);
    let chain = decode(&value, HeaderFormat::Auto).unwrap();
    assert_leaf(&chain, &p.leaf_der, &[&p.inter_der]);
}

#[test]
fn nginx_ssl_client_cert_with_tab_continuation_lines() {
    let p = pki();
    // nginx's old $ssl_client_cert: a tab at the start of every line but the first.
    let folded = p.leaf_pem.trim_end().replace('\n', "\n\t");
    let tab_only = p.leaf_pem.trim_end().replace('\n', "\t");
    let spaces = p.leaf_pem.trim_end().replace('\n', " ");
    let space_tab = p.leaf_pem.trim_end().replace('\n', " \t");
    for value in [folded, tab_only, spaces, space_tab] {
        for format in [HeaderFormat::Auto, HeaderFormat::Pem] {
            let chain = decode(&value, format).unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_leaf(&chain, &p.leaf_der, &[]);
        }
    }
}

#[test]
fn pem_with_real_newlines_and_crlf_and_a_chain() {
    let p = pki();
    let lf = format!("{}{}", p.leaf_pem, p.inter_pem);
    let crlf = lf.replace('\n', "\r\n");
    for value in [lf, crlf] {
        let chain = decode(&value, HeaderFormat::Pem).unwrap();
        assert_leaf(&chain, &p.leaf_der, &[&p.inter_der]);
        let chain = decode(&value, HeaderFormat::Auto).unwrap();
        assert_leaf(&chain, &p.leaf_der, &[&p.inter_der]);
    }
}

#[test]
fn pem_chain_with_spaces_between_blocks() {
    let p = pki();
    let value = format!("{}{}", p.leaf_pem, p.inter_pem).replace('\n', " ");
    let chain = decode(&value, HeaderFormat::Auto).unwrap();
    assert_leaf(&chain, &p.leaf_der, &[&p.inter_der]);
}

// ---------------------------------------------------------------------------------------
// AWS ALB

#[test]
fn aws_alb_url_encoded_pem_keeps_plus_equals_slash() {
    let (der, pem) = leaf_with_plus();
    let value = enc(&pem, ALB);
    assert!(value.contains('+'), "the ALB form must carry a raw '+'");
    assert!(!value.contains("%2B"));
    for format in [HeaderFormat::Auto, HeaderFormat::UrlEncodedPem] {
        let chain = decode(&value, format).unwrap();
        assert_leaf(&chain, &der, &[]);
    }
}

#[test]
fn aws_alb_with_plus_escaped_too() {
    let (der, pem) = leaf_with_plus();
    let value = enc(&pem, URI_COMPONENT);
    assert!(value.contains("%2B"));
    let chain = decode(&value, HeaderFormat::Auto).unwrap();
    assert_leaf(&chain, &der, &[]);
}

// ---------------------------------------------------------------------------------------
// base64 DER: Azure Application Gateway, Kong

#[test]
fn azure_app_gateway_base64_der_without_pem_markers() {
    let p = pki();
    let value = STANDARD.encode(&p.leaf_der);
    for format in [HeaderFormat::Auto, HeaderFormat::Base64Der] {
        let chain = decode(&value, format).unwrap();
        assert_leaf(&chain, &p.leaf_der, &[]);
    }
}

#[test]
fn kong_base64_padded_unpadded_and_url_safe() {
    let (der, _) = leaf_with_plus();
    let values = [
        STANDARD.encode(&der),
        STANDARD_NO_PAD.encode(&der),
        URL_SAFE.encode(&der),
        URL_SAFE_NO_PAD.encode(&der),
    ];
    assert!(values[2].contains('-'), "URL-safe form must differ");
    for value in values {
        for format in [HeaderFormat::Auto, HeaderFormat::Base64Der] {
            let chain = decode(&value, format).unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_leaf(&chain, &der, &[]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Traefik

#[test]
fn traefik_v3_comma_separated_base64_leaf_first() {
    let p = pki();
    let value = format!(
        "{},{}",
        STANDARD.encode(&p.leaf_der),
        STANDARD.encode(&p.inter_der)
    );
    for format in [HeaderFormat::Auto, HeaderFormat::Base64Der] {
        let chain = decode(&value, format).unwrap();
        assert_leaf(&chain, &p.leaf_der, &[&p.inter_der]);
    }
}

#[test]
fn traefik_v2_url_escaped_list() {
    let (der, _) = leaf_with_plus();
    let p = pki();
    let raw = format!(
        "{},{}",
        STANDARD.encode(&der),
        STANDARD.encode(&p.inter_der)
    );
    let value = enc(&raw, GO_QUERY);
    assert!(value.contains("%2C") && value.contains("%2B"));
    for format in [HeaderFormat::Auto, HeaderFormat::Base64Der] {
        let chain = decode(&value, format).unwrap();
        assert_leaf(&chain, &der, &[&p.inter_der]);
    }
}

#[test]
fn traefik_list_with_spaces_after_commas() {
    let p = pki();
    let value = format!(
        "{}, {}",
        STANDARD.encode(&p.leaf_der),
        STANDARD.encode(&p.inter_der)
    );
    let chain = decode(&value, HeaderFormat::Auto).unwrap();
    assert_leaf(&chain, &p.leaf_der, &[&p.inter_der]);
}

// ---------------------------------------------------------------------------------------
// RFC 9440

#[test]
fn rfc9440_client_cert_byte_sequence() {
    let p = pki();
    let value = format!(":{}:", STANDARD.encode(&p.leaf_der));
    for format in [HeaderFormat::Auto, HeaderFormat::Base64Der] {
        let chain = decode(&value, format).unwrap();
        assert_leaf(&chain, &p.leaf_der, &[]);
    }
}

#[test]
fn rfc9440_client_cert_chain_list() {
    let p = pki();
    let value = format!(
        ":{}:, :{}:",
        STANDARD.encode(&p.leaf_der),
        STANDARD.encode(&p.inter_der)
    );
    let chain = decode(&value, HeaderFormat::Auto).unwrap();
    assert_leaf(&chain, &p.leaf_der, &[&p.inter_der]);
}

#[test]
fn rfc9440_unclosed_byte_sequence_is_malformed() {
    let p = pki();
    let value = format!(":{}", STANDARD.encode(&p.leaf_der));
    let err = decode(&value, HeaderFormat::Auto).unwrap_err();
    assert_eq!(malformed_format(err), "base64_der");
}

// ---------------------------------------------------------------------------------------
// Envoy XFCC

/// Envoy's Cert: the PEM URL-encoded.
fn xfcc_pem(pem: &str) -> String {
    enc(pem, URI_COMPONENT)
}

#[test]
fn envoy_xfcc_cert_of_the_only_element() {
    let p = pki();
    let value = format!(
        "By=spiffe://cluster.local/ns/default/sa/gw;Hash=5f3a;Cert=\"{}\";Subject=\"CN=client\";URI=spiffe://client;DNS=client.example",
        xfcc_pem(&p.leaf_pem)
    );
    for format in [HeaderFormat::Auto, HeaderFormat::Xfcc] {
        let chain = decode(&value, format).unwrap();
        assert_leaf(&chain, &p.leaf_der, &[]);
    }
}

#[test]
fn envoy_xfcc_docs_style_lowercase_escapes_and_raw_plus() {
    // As in Envoy's docs: `%0a` lower-case, only spaces and line breaks escaped.
    let (der, pem) = leaf_with_plus();
    let cert = pem.replace(' ', "%20").replace('\n', "%0a");
    assert!(cert.contains('+'));
    let value = format!(
        "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Cert=\"{cert}\";Subject=\"/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client\";URI=http://testclient.lyft.com"
    );
    let chain = decode(&value, HeaderFormat::Auto).unwrap();
    assert_leaf(&chain, &der, &[]);
}

#[test]
fn envoy_xfcc_unquoted_cert_and_lowercase_keys() {
    let p = pki();
    let value = format!("hash=5f3a;cert={}", xfcc_pem(&p.leaf_pem));
    let chain = decode(&value, HeaderFormat::Auto).unwrap();
    assert_leaf(&chain, &p.leaf_der, &[]);
}

#[test]
fn envoy_xfcc_chain_repeats_the_leaf_which_is_dropped() {
    let p = pki();
    let value = format!(
        "Hash=5f3a;Cert=\"{}\";Chain=\"{}\"",
        xfcc_pem(&p.leaf_pem),
        xfcc_pem(&format!("{}{}", p.leaf_pem, p.inter_pem))
    );
    let chain = decode(&value, HeaderFormat::Xfcc).unwrap();
    assert_leaf(&chain, &p.leaf_der, &[&p.inter_der]);
}

#[test]
fn envoy_xfcc_chain_without_cert() {
    let p = pki();
    let value = format!(
        "Hash=5f3a;Chain={}",
        xfcc_pem(&format!("{}{}", p.leaf_pem, p.inter_pem))
    );
    let chain = decode(&value, HeaderFormat::Auto).unwrap();
    assert_leaf(&chain, &p.leaf_der, &[&p.inter_der]);
}

#[test]
fn envoy_xfcc_takes_the_first_element() {
    let first = pki();
    let second = pki();
    let value = format!(
        "By=spiffe://a;Cert=\"{}\",By=spiffe://b;Cert=\"{}\"",
        xfcc_pem(&first.leaf_pem),
        xfcc_pem(&second.leaf_pem)
    );
    let chain = decode(&value, HeaderFormat::Auto).unwrap();
    assert_leaf(&chain, &first.leaf_der, &[]);
}

#[test]
fn envoy_xfcc_quoted_subject_with_commas_semicolons_and_escaped_quotes() {
    let p = pki();
    let other = pki();
    // The comma and `;` inside the quotes must not end the element or the pair.
    let value = format!(
        "By=spiffe://a;Subject=\"CN=client\\, \\\"quoted\\\";O=Acme, Inc.\";Cert=\"{}\";URI=spiffe://c,By=spiffe://b;Cert=\"{}\"",
        xfcc_pem(&p.leaf_pem),
        xfcc_pem(&other.leaf_pem)
    );
    let chain = decode(&value, HeaderFormat::Auto).unwrap();
    assert_leaf(&chain, &p.leaf_der, &[]);
}

#[test]
fn envoy_xfcc_first_element_without_cert_is_malformed() {
    let p = pki();
    // The cert is only in the second element: the first proxy hop sent no certificate.
    let value = format!(
        "By=spiffe://a;Hash=5f3a;Subject=\"CN=x, O=y\",By=spiffe://b;Cert=\"{}\"",
        xfcc_pem(&p.leaf_pem)
    );
    let err = decode(&value, HeaderFormat::Auto).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed xfcc value: the first element has no Cert or Chain"
    );
}

#[test]
fn envoy_xfcc_unterminated_quote_is_malformed() {
    let p = pki();
    let value = format!("Subject=\"CN=x;Cert=\"{}", xfcc_pem(&p.leaf_pem));
    let err = decode(&value, HeaderFormat::Xfcc).unwrap_err();
    assert_eq!(malformed_format(err), "xfcc");
}

#[test]
fn envoy_xfcc_pair_without_equals_is_malformed() {
    let err = decode("Hash=ab;Cert", HeaderFormat::Xfcc).unwrap_err();
    assert_eq!(err.to_string(), "malformed xfcc value: pair 2 has no '='");
}

#[test]
fn envoy_xfcc_two_certs_in_one_element_is_malformed() {
    let p = pki();
    let c = xfcc_pem(&p.leaf_pem);
    let err = decode(&format!("Cert={c};Cert={c}"), HeaderFormat::Xfcc).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed xfcc value: the first element has two Cert keys"
    );
}

// ---------------------------------------------------------------------------------------
// Garbage, truncation, limits, explicit formats

#[test]
fn empty_and_white_space_values_are_empty() {
    for value in ["", " ", "\t \r\n"] {
        assert_eq!(decode(value, HeaderFormat::Auto), Err(HeaderError::Empty));
        assert_eq!(decode(value, HeaderFormat::Xfcc), Err(HeaderError::Empty));
    }
    assert_eq!(HeaderError::Empty.to_string(), "header value is empty");
}

#[test]
fn over_64_kib_is_too_long() {
    let value = vec![b'A'; MAX_HEADER_VALUE_LEN + 1];
    for format in HeaderFormat::ALL {
        let err = decode_header(&value, format).unwrap_err();
        assert_eq!(err, HeaderError::TooLong(65537));
        assert_eq!(
            err.to_string(),
            "header value is 65537 bytes, over the 64 KiB limit"
        );
    }
}

#[test]
fn exactly_64_kib_is_accepted() {
    let p = pki();
    let mut value = STANDARD.encode(&p.leaf_der).into_bytes();
    value.resize(MAX_HEADER_VALUE_LEN, b' ');
    let chain = decode_header(&value, HeaderFormat::Auto).unwrap();
    assert_leaf(&chain, &p.leaf_der, &[]);
}

#[test]
fn garbage_is_unknown_format() {
    for value in [
        "hello world!",
        "not a cert; really",
        "{\"cert\": 1}",
        "\u{00e9}t\u{00e9}",
    ] {
        assert_eq!(
            decode(value, HeaderFormat::Auto),
            Err(HeaderError::UnknownFormat),
            "{value}"
        );
    }
    assert_eq!(
        HeaderError::UnknownFormat.to_string(),
        "header value is not in a recognised certificate format"
    );
}

#[test]
fn base64_of_something_else_is_malformed() {
    let value = STANDARD.encode(b"this is not a certificate at all");
    let err = decode(&value, HeaderFormat::Auto).unwrap_err();
    assert_eq!(malformed_format(err), "base64_der");
}

#[test]
fn truncated_forms_are_malformed() {
    let p = pki();
    let b64 = STANDARD.encode(&p.leaf_der);
    let cases = [
        // PEM without its END line.
        (p.leaf_pem[..p.leaf_pem.len() / 2].to_string(), "pem"),
        // PEM cut inside the base64 but with markers kept.
        (
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----",
                &b64[..b64.len() / 2]
            ),
            "pem",
        ),
        // URL-encoded PEM cut in the middle.
        (
            {
                let e = enc(&p.leaf_pem, URI_COMPONENT);
                e[..e.len() - 40].to_string()
            },
            "url_encoded_pem",
        ),
        // base64 DER cut at a 4-character boundary: decodes, but is not a whole certificate.
        (b64[..(b64.len() / 8) * 4].to_string(), "base64_der"),
        // base64 DER cut anywhere.
        (b64[..b64.len() - 7].to_string(), "base64_der"),
    ];
    for (value, format) in cases {
        let err = decode(&value, HeaderFormat::Auto).unwrap_err();
        assert_eq!(malformed_format(err), format, "{value}");
    }
}

#[test]
fn every_truncation_of_every_form_fails_cleanly() {
    let p = pki();
    let forms = [
        p.leaf_pem.clone(),
        enc(&p.leaf_pem, URI_COMPONENT),
        STANDARD.encode(&p.leaf_der),
        format!("Cert=\"{}\"", xfcc_pem(&p.leaf_pem)),
    ];
    for form in forms {
        // Cuts that leave something decodable only at the very end (trailing newline).
        for cut in 1..form.len().saturating_sub(4) {
            let value = &form.as_bytes()[..cut];
            for format in HeaderFormat::ALL {
                assert!(
                    decode_header(value, format).is_err(),
                    "cut {cut} of {form:?} decoded as {format}"
                );
            }
        }
    }
}

#[test]
fn text_around_pem_blocks_is_malformed() {
    let p = pki();
    for value in [
        format!("{} trailing", p.leaf_pem),
        format!("cert: {}", p.leaf_pem),
    ] {
        let err = decode(&value, HeaderFormat::Pem).unwrap_err();
        assert_eq!(malformed_format(err), "pem", "{value}");
    }
}

#[test]
fn a_private_key_block_is_malformed() {
    let value =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
    let err = decode(value, HeaderFormat::Auto).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed pem value: PEM block 1 is a PRIVATE KEY, not a CERTIFICATE"
    );
}

#[test]
fn explicit_format_refuses_other_forms() {
    let p = pki();
    let b64 = STANDARD.encode(&p.leaf_der);
    let xfcc = format!("Cert=\"{}\"", xfcc_pem(&p.leaf_pem));
    assert_eq!(
        malformed_format(decode(&b64, HeaderFormat::Pem).unwrap_err()),
        "pem"
    );
    assert_eq!(
        malformed_format(decode(&xfcc, HeaderFormat::Pem).unwrap_err()),
        "pem"
    );
    assert_eq!(
        malformed_format(decode(&p.leaf_pem, HeaderFormat::Base64Der).unwrap_err()),
        "base64_der"
    );
    assert_eq!(
        malformed_format(decode(&b64, HeaderFormat::Xfcc).unwrap_err()),
        "xfcc"
    );
    // url_encoded_pem also takes PEM that needed no escaping.
    let chain = decode(&p.leaf_pem, HeaderFormat::UrlEncodedPem).unwrap();
    assert_leaf(&chain, &p.leaf_der, &[]);
}

#[test]
fn der_with_trailing_bytes_is_malformed() {
    let p = pki();
    let mut der = p.leaf_der.clone();
    der.extend_from_slice(&[0, 0]);
    let err = decode(&STANDARD.encode(&der), HeaderFormat::Base64Der).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed base64_der value: certificate 1: 2 bytes after the certificate"
    );
}

#[test]
fn a_bad_intermediate_makes_the_value_malformed() {
    let p = pki();
    let value = format!(
        "{},{}",
        STANDARD.encode(&p.leaf_der),
        STANDARD.encode(b"junk")
    );
    let err = decode(&value, HeaderFormat::Auto).unwrap_err();
    assert_eq!(malformed_format(err), "base64_der");
}

#[test]
fn empty_list_member_is_malformed() {
    let p = pki();
    let value = format!("{},", STANDARD.encode(&p.leaf_der));
    let err = decode(&value, HeaderFormat::Auto).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed base64_der value: list member 2 is empty"
    );
}

#[test]
fn too_many_certificates_is_malformed() {
    let p = pki();
    let one = STANDARD.encode(&p.root_der);
    let at_limit = vec![one.as_str(); MAX_HEADER_CERTIFICATES].join(",");
    assert!(decode(&at_limit, HeaderFormat::Auto).is_ok());
    let over = vec![one.as_str(); MAX_HEADER_CERTIFICATES + 1].join(",");
    let err = decode(&over, HeaderFormat::Auto).unwrap_err();
    assert_eq!(malformed_format(err), "base64_der");
    let pem_over = vec![p.inter_pem.as_str(); MAX_HEADER_CERTIFICATES + 1].concat();
    let err = decode(&pem_over, HeaderFormat::Auto).unwrap_err();
    assert_eq!(malformed_format(err), "pem");
}

#[test]
fn format_spellings() {
    let names: Vec<&str> = HeaderFormat::ALL.iter().map(|f| f.as_str()).collect();
    assert_eq!(
        names,
        ["auto", "pem", "url_encoded_pem", "base64_der", "xfcc"]
    );
    assert_eq!(HeaderFormat::default(), HeaderFormat::Auto);
}
