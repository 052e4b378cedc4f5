//! The upstream side of a proxied request: pooled HTTP/1.1 connections ([`crate::pool`];
//! hyper-rustls for `https://` upstreams), the request rewrite of SPEC §3 step 6 (path, `X-Forwarded-*`,
//! hop-by-hop removal, identity headers of SPEC §7) and the 502/504 mapping. Bodies
//! stream both ways; nothing is buffered whole.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use certgate_pki::CertificateInfo;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use time::format_description::well_known::Rfc3339;

use crate::identity::ClientIdentity;
use crate::pool::Pool;
use crate::response::{error_response, ProxyBody};
use crate::route::Route;
use crate::settings::ProxySettings;
use crate::snapshot::ForwardSet;

/// `X-Client-Cert-Subject`.
pub const X_CLIENT_CERT_SUBJECT: &str = "x-client-cert-subject";
/// `X-Client-Cert-Issuer`.
pub const X_CLIENT_CERT_ISSUER: &str = "x-client-cert-issuer";
/// `X-Client-Cert-Serial`.
pub const X_CLIENT_CERT_SERIAL: &str = "x-client-cert-serial";
/// `X-Client-Cert-Fingerprint`.
pub const X_CLIENT_CERT_FINGERPRINT: &str = "x-client-cert-fingerprint";
/// `X-Client-Cert-Not-After`.
pub const X_CLIENT_CERT_NOT_AFTER: &str = "x-client-cert-not-after";

/// The prefix of every identity header; any incoming header with it is removed.
const IDENTITY_PREFIX: &str = "x-client-cert-";

/// The other identity formats certgate may forward (SPEC §16 `forward_formats`: Envoy's
/// XFCC, RFC 9440, and Traefik's header, which upstreams read alike): removed from every
/// incoming request whatever the settings.
const RESERVED_NAMES: [&str; 4] = [
    "x-forwarded-client-cert",
    "client-cert",
    "client-cert-chain",
    "x-forwarded-tls-client-cert",
];

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus the legacy ones proxies drop.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// How long an upstream connection may stay idle in the pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The pooled upstream client.
#[derive(Clone)]
pub(crate) struct UpstreamClient {
    pool: Pool,
    response_timeout: Duration,
}

/// What the rewrite needs to know about the downstream side.
pub(crate) struct Downstream<'a> {
    /// The TCP peer.
    pub peer: IpAddr,
    /// The TCP peer's address as a header value (`X-Forwarded-For`).
    pub peer_header: &'a HeaderValue,
    /// Whether the peer's `X-Forwarded-For` is kept and appended to.
    pub peer_is_trusted_proxy: bool,
    /// `https` or `http` (the listener's scheme).
    pub listener_https: bool,
    /// The verified identity to forward, when `forward_identity`.
    pub identity: Option<&'a ClientIdentity>,
    /// The formats to forward it in (SPEC §16 `forward_formats`).
    pub forward: ForwardSet,
    /// Header mode: the configured certificate header (already read), removed with
    /// every spelling that differs only in `_`/`-`.
    pub cert_header: Option<&'a HeaderName>,
}

impl UpstreamClient {
    /// Builds the client: connect timeout, pool size, native roots for https upstreams.
    pub(crate) fn new(settings: &ProxySettings) -> io::Result<UpstreamClient> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.upstream_connect_timeout));
        let provider = crate::tls::provider();
        let builder = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider.clone())
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "no system CA certificates: https upstreams will not verify");
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(io::Error::other)?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let connector: HttpsConnector<HttpConnector> =
            builder.https_or_http().enable_http1().wrap_connector(http);
        Ok(UpstreamClient {
            pool: Pool::new(
                connector,
                settings.upstream_pool_max_idle_per_host,
                POOL_IDLE_TIMEOUT,
            ),
            response_timeout: settings.upstream_response_timeout,
        })
    }

    /// Sends `req` to the route's upstream; maps failures to 502 and a missing response
    /// head within the response timeout to 504.
    pub(crate) async fn forward(
        &self,
        req: Request<Incoming>,
        route: &Route,
        down: &Downstream<'_>,
    ) -> Response<ProxyBody> {
        let req = match rewrite_request(req, route, down) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(api = %route.name, error = %e, "cannot build the upstream request");
                return error_response(StatusCode::BAD_GATEWAY);
            }
        };
        let upstream = &route.upstream;
        let sent = self.pool.send(&upstream.scheme, &upstream.authority, req);
        match tokio::time::timeout(self.response_timeout, sent).await {
            Err(_) => error_response(StatusCode::GATEWAY_TIMEOUT),
            Ok(Err(e)) => {
                tracing::warn!(api = %route.name, error = %e, connect = e.is_connect(), "upstream request failed");
                error_response(StatusCode::BAD_GATEWAY)
            }
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.map_err(Into::into).boxed())
            }
        }
    }
}

/// Why an upstream request could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RewriteError {
    #[error("upstream URI: {0}")]
    Uri(#[from] http::Error),
}

/// Rewrites a downstream request for the upstream (SPEC §3 step 6).
pub(crate) fn rewrite_request(
    req: Request<Incoming>,
    route: &Route,
    down: &Downstream<'_>,
) -> Result<Request<Incoming>, RewriteError> {
    let (mut parts, body) = req.into_parts();
    let path = route
        .upstream
        .rewrite_path(&route.base_path, parts.uri.path());
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    // Origin form: the connection already goes to the upstream's authority.
    let uri = Uri::builder().path_and_query(path_and_query).build()?;
    // The request's host: Host (HTTP/1.1) or the :authority (HTTP/2).
    let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    // Hop-by-hop first: a `Connection` that names an identity header drops the client's
    // copy here, never the one certgate sets below.
    remove_hop_by_hop(headers);
    headers.remove(header::UPGRADE);
    // The one place spoofed identity and certificate headers are removed: every proxied
    // request passes here, once.
    strip_client_headers(headers, down.cert_header);

    match &route.upstream.host_header {
        Some(h) => {
            headers.insert(header::HOST, h.clone());
        }
        None => {
            headers.remove(header::HOST);
        }
    }
    let xff = HeaderName::from_static("x-forwarded-for");
    let appended = match (down.peer_is_trusted_proxy, joined(headers, &xff)) {
        (true, Some(prev)) if !prev.trim().is_empty() => {
            let peer = down.peer.to_canonical();
            HeaderValue::from_str(&format!("{prev}, {peer}")).ok()
        }
        _ => None,
    };
    headers.remove(&xff);
    match appended {
        Some(v) => headers.insert(xff, v),
        // The common case: the peer alone, rendered once per connection.
        None => headers.insert(xff, down.peer_header.clone()),
    };
    let proto = if down.listener_https { "https" } else { "http" };
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(proto),
    );
    let xfh = HeaderName::from_static("x-forwarded-host");
    headers.remove(&xfh);
    if let Some(h) = original_host {
        headers.insert(xfh, h);
    }
    if let Some(id) = down.identity {
        let f = down.forward;
        let empty: &[(HeaderName, HeaderValue)] = &[];
        let sets = [
            if f.x_client_cert {
                id.identity_headers()
            } else {
                empty
            },
            if f.xfcc { id.xfcc_header() } else { empty },
            if f.rfc9440 {
                id.rfc9440_headers()
            } else {
                empty
            },
        ];
        for (name, value) in sets.into_iter().flatten() {
            headers.insert(name.clone(), value.clone());
        }
    }
    Ok(Request::from_parts(parts, body))
}

/// The values of a repeatable header joined with ", ".
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut out: Option<String> = None;
    for v in headers.get_all(name) {
        let s = v.to_str().ok()?;
        match out.as_mut() {
            Some(o) => {
                o.push_str(", ");
                o.push_str(s);
            }
            None => out = Some(s.to_owned()),
        }
    }
    out
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    // (Headers certgate sets itself are inserted after this runs, so naming them here
    // only removes the client's copies.)
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes every header a client may not send upstream (SPEC §7, §16): any
/// `X-Client-Cert-*`, the identity formats of [`RESERVED_NAMES`] and, in header mode,
/// the configured certificate header, each matched case-insensitively and with `_` and
/// `-` alike (CGI, WSGI, PHP and Rack read `X_Client_Cert_Subject` as
/// `X-Client-Cert-Subject`). One pass over the names; allocates only when it removes.
pub(crate) fn strip_client_headers(headers: &mut HeaderMap, cert_header: Option<&HeaderName>) {
    let cert = cert_header.map(HeaderName::as_str);
    let mut spoofed: Vec<HeaderName> = Vec::new();
    for name in headers.keys() {
        if is_reserved(name.as_str(), cert) {
            spoofed.push(name.clone());
        }
    }
    for name in spoofed {
        headers.remove(name);
    }
}

/// Whether `name` (a lower-case header name) is reserved to certgate.
fn is_reserved(name: &str, cert_header: Option<&str>) -> bool {
    let n = name.as_bytes();
    let prefix = IDENTITY_PREFIX.as_bytes();
    (n.len() >= prefix.len() && folded_eq(&n[..prefix.len()], prefix))
        || RESERVED_NAMES.iter().any(|r| folded_eq(n, r.as_bytes()))
        || cert_header.is_some_and(|c| folded_eq(n, c.as_bytes()))
}

/// ASCII case-insensitive equality with `_` and `-` alike.
fn folded_eq(a: &[u8], b: &[u8]) -> bool {
    fn fold(b: u8) -> u8 {
        match b {
            b'_' => b'-',
            b => b.to_ascii_lowercase(),
        }
    }
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| fold(x) == fold(y))
}

/// The identity headers of SPEC §7 for a verified certificate (rendered once per
/// identity; see [`ClientIdentity::identity_headers`]). A value that is not a valid
/// header value is left out and logged.
pub(crate) fn identity_header_values(info: &CertificateInfo) -> Vec<(HeaderName, HeaderValue)> {
    let not_after = info
        .not_after
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default();
    let values = [
        (X_CLIENT_CERT_SUBJECT, info.subject.to_ascii_string()),
        (X_CLIENT_CERT_ISSUER, info.issuer.to_ascii_string()),
        (X_CLIENT_CERT_SERIAL, info.serial_hex.clone()),
        (X_CLIENT_CERT_FINGERPRINT, info.fingerprint_sha256.clone()),
        (X_CLIENT_CERT_NOT_AFTER, not_after),
    ];
    let mut out = Vec::with_capacity(values.len());
    for (name, value) in values {
        match HeaderValue::from_str(&value) {
            Ok(v) => out.push((HeaderName::from_static(name), v)),
            Err(_) => tracing::warn!(
                header = name,
                "identity value is not a valid header value; not forwarded"
            ),
        }
    }
    out
}

/// `x-forwarded-client-cert`.
pub const X_FORWARDED_CLIENT_CERT: &str = "x-forwarded-client-cert";
/// RFC 9440 `Client-Cert`.
pub const CLIENT_CERT: &str = "client-cert";
/// RFC 9440 `Client-Cert-Chain`.
pub const CLIENT_CERT_CHAIN: &str = "client-cert-chain";

/// Forwarded identity headers larger than this are logged and counted (nginx's default
/// `large_client_header_buffers` is 8 KiB per line, Envoy's header list limit 60 KiB;
/// 16 KiB is where common upstreams start refusing).
pub const FORWARDED_HEADERS_WARN_BYTES: usize = 16 * 1024;

/// One `x-forwarded-client-cert` element for a verified certificate (SPEC §16):
/// `Hash=<sha256 hex>;Cert="<url-encoded PEM>"[;Chain="<url-encoded PEM chain>"];
/// Subject="<canonical DN>"` and a `URI=` / `DNS=` pair per SAN of those kinds. `Chain`
/// (leaf first, as Envoy writes it) only when the client sent intermediates, so a
/// downstream judge can build the same path. Rendered once per identity.
pub(crate) fn xfcc_header_values(
    info: &CertificateInfo,
    chain: &[rustls_pki_types::CertificateDer<'_>],
) -> Vec<(HeaderName, HeaderValue)> {
    let hash = info
        .fingerprint_sha256
        .strip_prefix("sha256:")
        .unwrap_or(&info.fingerprint_sha256);
    let mut v = format!("Hash={hash};Cert=\"{}\"", url_encode(&pem(&info.der)));
    if chain.len() > 1 {
        let all: String = chain.iter().map(|c| pem(c)).collect();
        v.push_str(&format!(";Chain=\"{}\"", url_encode(&all)));
    }
    v.push_str(&format!(
        ";Subject={}",
        xfcc_quote(&info.subject.to_ascii_string())
    ));
    for san in &info.sans {
        let (key, value) = if let Some(u) = san.strip_prefix("URI:") {
            ("URI", u)
        } else if let Some(d) = san.strip_prefix("DNS:") {
            ("DNS", d)
        } else {
            continue;
        };
        // A SAN that cannot be a header value is left out rather than the whole element.
        if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            v.push_str(&format!(";{key}={}", xfcc_quote(value)));
        }
    }
    checked(vec![(X_FORWARDED_CLIENT_CERT, v)])
}

/// RFC 9440 `Client-Cert: :<base64 DER>:` and, when the client sent intermediates,
/// `Client-Cert-Chain` with them as a list of byte sequences (SPEC §16). Rendered once
/// per identity.
pub(crate) fn rfc9440_header_values(
    chain: &[rustls_pki_types::CertificateDer<'_>],
) -> Vec<(HeaderName, HeaderValue)> {
    use base64::Engine as _;
    let b64 = |c: &rustls_pki_types::CertificateDer<'_>| {
        format!(
            ":{}:",
            base64::engine::general_purpose::STANDARD.encode(c.as_ref())
        )
    };
    let Some((leaf, rest)) = chain.split_first() else {
        return Vec::new();
    };
    let mut out = vec![(CLIENT_CERT, b64(leaf))];
    if !rest.is_empty() {
        let list: Vec<String> = rest.iter().map(b64).collect();
        out.push((CLIENT_CERT_CHAIN, list.join(", ")));
    }
    checked(out)
}

/// Header values from rendered strings, leaving out (and logging) one that is not a
/// valid value, and logging and counting a set over [`FORWARDED_HEADERS_WARN_BYTES`].
fn checked(values: Vec<(&'static str, String)>) -> Vec<(HeaderName, HeaderValue)> {
    let size: usize = values.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    if size > FORWARDED_HEADERS_WARN_BYTES {
        crate::telemetry::record_forwarded_too_large();
        tracing::warn!(
            header = values.first().map(|(n, _)| *n).unwrap_or(""),
            bytes = size,
            limit = FORWARDED_HEADERS_WARN_BYTES,
            "forwarded identity headers are larger than 16 KiB; upstreams may refuse the request"
        );
    }
    let mut out = Vec::with_capacity(values.len());
    for (name, value) in values {
        match HeaderValue::from_str(&value) {
            Ok(v) => out.push((HeaderName::from_static(name), v)),
            Err(_) => tracing::warn!(
                header = name,
                "identity value is not a valid header value; not forwarded"
            ),
        }
    }
    out
}

/// A DER certificate as PEM (64-column base64, `\n` line ends).
fn pem(der: &[u8]) -> String {
    certgate_pki::cert::der_to_pem(der, "CERTIFICATE")
}

/// Percent-encodes every byte but the RFC 3986 unreserved ones (so `+` is `%2B`).
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An XFCC value in double quotes, `"` and `\` escaped with a backslash (Envoy's form).
fn xfcc_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(names: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for n in names {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        h
    }

    fn left(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn spoofed_spellings_are_removed() {
        let mut h = map(&[
            "X_Client_Cert_Subject",
            "X-Client-Cert_Subject",
            "x-client-cert-issuer",
            "X-CLIENT-CERT-SERIAL",
            "x-client-cert-anything",
            "x_client_cert_",
            "X_Forwarded_Client_Cert",
            "client-cert",
            "Client_Cert_Chain",
            "x-forwarded-tls-client-cert",
            "X_SSL_Client_Cert",
            "x-ssl-client-cert",
            "accept",
            "x-client-certificate",
            "client-certs",
            "x-client-cert",
        ]);
        let cert = HeaderName::from_static("x-ssl-client-cert");
        strip_client_headers(&mut h, Some(&cert));
        assert_eq!(
            left(&h),
            [
                "accept",
                "client-certs",
                "x-client-cert",
                "x-client-certificate"
            ]
        );
    }

    #[test]
    fn the_certificate_header_is_kept_outside_header_mode() {
        let mut h = map(&[
            "x-ssl-client-cert",
            "x_ssl_client_cert",
            "x-client-cert-subject",
        ]);
        strip_client_headers(&mut h, None);
        assert_eq!(left(&h), ["x-ssl-client-cert", "x_ssl_client_cert"]);
    }

    #[test]
    fn folding() {
        assert!(folded_eq(b"a_b-C", b"A-B_c"));
        assert!(!folded_eq(b"ab", b"abc"));
        assert!(!folded_eq(b"a.b", b"a-b"));
    }
}
