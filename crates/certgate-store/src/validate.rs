//! The value rules of SPEC §2 and §8 that need no database: names, base paths, upstream
//! URLs, DN pattern lists, CIDRs, CRLs, header names and the CA-names size.

use certgate_pki::{CertificateInfo, Pattern};
use ipnet::IpNet;

use crate::error::StoreError;

/// The most entries of the trust table and of each `trusted_dns` list.
pub const MAX_ENTRIES: usize = 1000;

/// The most bytes the CA names of a TLS CertificateRequest may take (a 2-byte length).
pub const MAX_CA_NAMES_BYTES: usize = 65535;

/// A name of a component or API: trimmed, non-empty, at most 200 characters.
pub fn name(what: &str, name: &str) -> Result<String, StoreError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(StoreError::invalid(
            "invalid_name",
            format!("The {what} name must not be empty."),
        ));
    }
    if trimmed.chars().count() > 200 {
        return Err(StoreError::invalid(
            "invalid_name",
            format!("The {what} name must be at most 200 characters."),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "invalid_name",
            format!("The {what} name must not contain control characters."),
        ));
    }
    Ok(trimmed.to_string())
}

/// `base_path`: `/` or `/seg(/seg)*` with no trailing `/`, no empty segment, no `?` or `#`.
pub fn base_path(path: &str) -> Result<(), StoreError> {
    let bad = |why: &str| {
        Err(StoreError::invalid(
            "invalid_base_path",
            format!("base_path {path:?} is invalid: {why}."),
        ))
    };
    if path == "/" {
        return Ok(());
    }
    if !path.starts_with('/') {
        return bad("it must start with /");
    }
    if path.ends_with('/') {
        return bad("it must not end with /");
    }
    if path.contains("//") {
        return bad("it must not contain an empty segment (//)");
    }
    if path.contains(['?', '#']) {
        return bad("it must not contain ? or #");
    }
    if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        return bad("it must hold only visible ASCII characters (percent-encode others)");
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return bad("it must not contain . or .. segments");
    }
    Ok(())
}

/// `upstream`: an absolute `http://` or `https://` URL with a host, no query or fragment.
pub fn upstream(url: &str) -> Result<(), StoreError> {
    let bad = |why: &str| {
        Err(StoreError::invalid(
            "invalid_upstream",
            format!("upstream {url:?} is invalid: {why}."),
        ))
    };
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return bad("it must be an absolute http:// or https:// URL");
    }
    let uri: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(_) => return bad("it is not a valid URL"),
    };
    match uri.authority() {
        Some(a) if a.as_str().contains('@') => return bad("it must not hold credentials"),
        Some(_) => {}
        None => return bad("it has no host"),
    }
    if uri.host().is_none_or(str::is_empty) {
        return bad("it has no host");
    }
    if uri.query().is_some() || url.contains('#') {
        return bad("it must not have a query or fragment");
    }
    Ok(())
}

/// A `trusted_dns` list: at most 1000 patterns, each parsing (SPEC §4).
pub fn patterns(list: &[String]) -> Result<(), StoreError> {
    if list.len() > MAX_ENTRIES {
        return Err(StoreError::invalid(
            "limit_exceeded",
            format!(
                "trusted_dns holds {} patterns; at most {MAX_ENTRIES} are allowed.",
                list.len()
            ),
        ));
    }
    for p in list {
        Pattern::parse(p).map_err(|e| StoreError::invalid("invalid_dn_pattern", e.to_string()))?;
    }
    Ok(())
}

/// `trusted_proxies`: CIDRs; a bare address is taken as that one host (/32 or /128).
pub fn cidrs(list: &[String]) -> Result<Vec<IpNet>, StoreError> {
    list.iter()
        .map(|s| {
            let t = s.trim();
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    StoreError::invalid(
                        "invalid_cidr",
                        format!("trusted_proxies entry {s:?} is not a CIDR (e.g. 10.0.0.0/8)."),
                    )
                })
        })
        .collect()
}

/// The largest `revocation_fetch_timeout_ms` accepted (one minute): a handshake may wait
/// that long.
pub const MAX_FETCH_TIMEOUT_MS: u64 = 60_000;

/// `revocation_fetch_hosts`: each entry a CIDR, an IP address or a DNS host name; at most
/// 1000 entries.
pub fn fetch_hosts(list: &[String]) -> Result<(), StoreError> {
    if list.len() > 1000 {
        return Err(StoreError::invalid(
            "limit_exceeded",
            "revocation_fetch_hosts holds at most 1000 entries.".to_string(),
        ));
    }
    for h in list {
        let t = h.trim();
        let is_net = t.parse::<IpNet>().is_ok() || t.parse::<std::net::IpAddr>().is_ok();
        let is_name = !t.is_empty()
            && t.len() <= 253
            && t.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !is_net && !is_name {
            return Err(StoreError::invalid(
                "invalid_fetch_host",
                format!(
                    "revocation_fetch_hosts entry {h:?} is not a host name or CIDR (e.g. crl.example.com or 10.0.0.0/8)."
                ),
            ));
        }
    }
    Ok(())
}

/// `revocation_fetch_timeout_ms`: 1 ..= [`MAX_FETCH_TIMEOUT_MS`].
pub fn fetch_timeout_ms(ms: u64) -> Result<(), StoreError> {
    if ms == 0 || ms > MAX_FETCH_TIMEOUT_MS {
        return Err(StoreError::invalid(
            "invalid_fetch_timeout",
            format!("revocation_fetch_timeout_ms must be between 1 and {MAX_FETCH_TIMEOUT_MS}."),
        ));
    }
    Ok(())
}

/// `header_name`: a non-empty HTTP field name (RFC 9110 token).
pub fn header_name(name: &str) -> Result<(), StoreError> {
    parse_header_name(name).map(drop)
}

/// The one rule for a configured header name (`header_name`): a valid HTTP header name,
/// as given (no trimming). The data plane builds its header from this too.
pub fn parse_header_name(name: &str) -> Result<http::HeaderName, StoreError> {
    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        StoreError::invalid(
            "invalid_header_name",
            format!("header_name {name:?} is not a valid HTTP header name."),
        )
    })
}

/// `crls`: each entry holds one or more PEM `X509 CRL` blocks that parse.
pub fn crls(list: &[String]) -> Result<(), StoreError> {
    for (i, text) in list.iter().enumerate() {
        let bad = |why: String| {
            Err(StoreError::invalid(
                "invalid_crl",
                format!("crls[{i}] is not a PEM CRL: {why}."),
            ))
        };
        let mut found = 0usize;
        for pem in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()) {
            let pem = match pem {
                Ok(p) => p,
                Err(e) => return bad(e.to_string()),
            };
            if pem.label != "X509 CRL" {
                return bad(format!("unexpected PEM block {:?}", pem.label));
            }
            if let Err(e) = x509_parser::parse_x509_crl(&pem.contents) {
                return bad(e.to_string());
            }
            found += 1;
        }
        if found == 0 {
            return bad("no X509 CRL block found".to_string());
        }
    }
    Ok(())
}

/// Parses an uploaded certificate: exactly one PEM certificate.
pub fn certificate(pem: &str) -> Result<CertificateInfo, StoreError> {
    let bad = |why: String| {
        Err(StoreError::invalid(
            "invalid_certificate",
            format!("pem is not a PEM certificate: {why}."),
        ))
    };
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return bad("no BEGIN CERTIFICATE block".to_string());
    }
    match CertificateInfo::parse_pem_chain(pem) {
        Ok(mut certs) if certs.len() == 1 => Ok(certs.remove(0)),
        Ok(certs) if certs.is_empty() => bad("no certificate found".to_string()),
        Ok(certs) => Err(StoreError::invalid(
            "invalid_certificate",
            format!(
                "pem holds {} certificates; upload exactly one per component version.",
                certs.len()
            ),
        )),
        Err(e) => bad(e.to_string()),
    }
}

/// Bytes the CA names of these PEM certificates take in a CertificateRequest: each
/// name is its subject's DER with a 2-byte length.
pub fn ca_names_size<'a>(pems: impl IntoIterator<Item = &'a str>) -> Result<usize, StoreError> {
    let mut total = 0usize;
    for pem in pems {
        for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
            let block = block.map_err(|e| StoreError::Corrupt(format!("stored PEM: {e}")))?;
            let cert = block
                .parse_x509()
                .map_err(|e| StoreError::Corrupt(format!("stored certificate: {e}")))?;
            total = total.saturating_add(2 + cert.subject().as_raw().len());
        }
    }
    Ok(total)
}

/// Refuses `send_ca_names` when the CA names would overflow the TLS limit.
pub fn ca_names_fit(size: usize) -> Result<(), StoreError> {
    if size > MAX_CA_NAMES_BYTES {
        return Err(StoreError::invalid(
            "ca_names_too_large",
            format!(
                "The CA names of the trusted certificates would take {size} bytes, over the \
                 {MAX_CA_NAMES_BYTES}-byte limit of a TLS CertificateRequest; keep send_ca_names \
                 off or trust fewer certificates."
            ),
        ));
    }
    Ok(())
}

/// The value rules of a settings patch (SPEC §2, §16) that need no database, in one place
/// for `PUT /api/v1/gateway/client-cert-auth` and the declarative apply: a refusal comes
/// with the name of the field it is about (the apply prefixes its document path). Answers
/// the parsed `trusted_proxies`.
pub fn settings_patch(
    p: &crate::views::ClientCertAuthPatch,
) -> Result<Option<Vec<IpNet>>, (&'static str, StoreError)> {
    let at = |field: &'static str| move |e: StoreError| (field, e);
    if let Some(dns) = &p.trusted_dns {
        patterns(dns).map_err(at("trusted_dns"))?;
    }
    let proxies = p
        .trusted_proxies
        .as_deref()
        .map(cidrs)
        .transpose()
        .map_err(at("trusted_proxies"))?;
    if let Some(list) = &p.crls {
        crls(list).map_err(at("crls"))?;
    }
    if let Some(Some(h)) = &p.header_name {
        header_name(h).map_err(at("header_name"))?;
    }
    if let Some(h) = &p.revocation_fetch_hosts {
        fetch_hosts(h).map_err(at("revocation_fetch_hosts"))?;
    }
    if let Some(t) = p.revocation_fetch_timeout_ms {
        fetch_timeout_ms(t).map_err(at("revocation_fetch_timeout_ms"))?;
    }
    Ok(proxies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths() {
        for ok in ["/", "/orders", "/orders/v1", "/a-b_c.d~e/%20"] {
            assert!(base_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "orders", "/orders/", "//", "/a//b", "/a?b", "/a#b", "/a b", "/a/../b",
        ] {
            let e = base_path(bad).unwrap_err();
            assert_eq!(e.status(), 422, "{bad}");
            assert_eq!(e.code(), "invalid_base_path");
        }
    }

    #[test]
    fn upstreams() {
        for ok in [
            "http://127.0.0.1:8080",
            "https://api.example.com/v1",
            "HTTP://h",
        ] {
            assert!(upstream(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ftp://h",
            "http://",
            "/relative",
            "h:80",
            "http://h/p?q=1",
            "http://u:p@h/",
            "http://h/#x",
        ] {
            assert_eq!(
                upstream(bad).unwrap_err().code(),
                "invalid_upstream",
                "{bad}"
            );
        }
    }

    #[test]
    fn cidr_list() {
        let nets = cidrs(&["10.0.0.0/8".into(), "192.168.1.7".into(), "::1".into()]).unwrap();
        assert_eq!(
            nets.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.0.0.0/8", "192.168.1.7/32", "::1/128"]
        );
        let e = cidrs(&["10.0.0.0/33".into()]).unwrap_err();
        assert_eq!(e.code(), "invalid_cidr");
        assert_eq!(
            e.to_string(),
            "trusted_proxies entry \"10.0.0.0/33\" is not a CIDR (e.g. 10.0.0.0/8)."
        );
    }

    #[test]
    fn header_names() {
        assert!(header_name("X-SSL-Client-Cert").is_ok());
        assert_eq!(header_name("").unwrap_err().code(), "invalid_header_name");
        assert_eq!(
            header_name("bad name").unwrap_err().code(),
            "invalid_header_name"
        );
    }

    #[test]
    fn crl_rules() {
        let e = crls(&["not a crl".into()]).unwrap_err();
        assert_eq!((e.status(), e.code()), (422, "invalid_crl"));
        let cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(crls(&[cert_pem.into()]).unwrap_err().code(), "invalid_crl");
    }

    #[test]
    fn names() {
        assert_eq!(name("API", "  orders ").unwrap(), "orders");
        let e = name("API", "  ").unwrap_err();
        assert_eq!(e.to_string(), "The API name must not be empty.");
    }
}
