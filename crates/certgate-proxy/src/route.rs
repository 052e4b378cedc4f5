//! Routing: the request target certgate accepts ([`normalize_target`]: origin-form, the
//! normal path of [`crate::path`]), the API whose `base_path` is the longest prefix of that
//! path on a `/` boundary (SPEC §3 step 1), and the upstream path rewrite (SPEC §3 step 6).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{header, HeaderValue, Method, Request, StatusCode, Uri};

use crate::path::{self, PathError};

use crate::snapshot::CompiledPatterns;
use crate::telemetry::RequestCounters;

/// Why a request is refused before it is routed. Answered with [`TargetError::status`]
/// and the data plane's JSON error body; the variant goes to the log only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// `CONNECT` (HTTP/1.1 or HTTP/2): certgate is no tunnel.
    #[error("the CONNECT method is not supported")]
    Connect,
    /// A `Transfer-Encoding` other than one `chunked`: the body would reach the upstream
    /// without its coding.
    #[error("a transfer coding other than chunked")]
    TransferCoding,
    /// The path is refused (see [`crate::path`]).
    #[error("path: {0}")]
    Path(#[from] PathError),
    /// An absolute-form target (or `:scheme`) other than `http`/`https`.
    #[error("a target scheme other than http or https")]
    Scheme,
    /// The target's authority (absolute-form, HTTP/2 `:authority`) names another host
    /// than the `Host` header (RFC 9112 §3.2.2, RFC 9113 §8.3.1).
    #[error("the request's authority and its Host header differ")]
    HostMismatch,
    /// More than one `Host` header (RFC 9112 §3.2).
    #[error("more than one Host header")]
    ManyHosts,
}

impl TargetError {
    /// 501 for what certgate does not implement (`CONNECT`, transfer codings), else 400.
    pub fn status(&self) -> StatusCode {
        match self {
            TargetError::Connect | TargetError::TransferCoding => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Checks a request's target before routing and puts the normal path of
/// [`path::normalize`] in its URI (query kept verbatim, scheme and authority kept), so
/// that routing, the forwarded path and the access log all read the same string. Leaves
/// the URI untouched (and allocates nothing) when the path is already normal.
pub fn normalize_target<B>(req: &mut Request<B>) -> Result<(), TargetError> {
    if req.method() == Method::CONNECT {
        return Err(TargetError::Connect);
    }
    let headers = req.headers();
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(TargetError::ManyHosts);
    }
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    if let Some(coding) = codings.next() {
        let chunked = coding
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"chunked");
        if !chunked || codings.next().is_some() {
            return Err(TargetError::TransferCoding);
        }
    }
    let uri = req.uri();
    if let Some(authority) = uri.authority() {
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
            _ => return Err(TargetError::Scheme),
        }
        if let Some(host) = host {
            if !host
                .as_bytes()
                .eq_ignore_ascii_case(authority.as_str().as_bytes())
            {
                return Err(TargetError::HostMismatch);
            }
        }
    }
    // `Uri::path` is "" for authority-form and "*" for asterisk-form: both refused here.
    let normal = match path::normalize(uri.path())? {
        Cow::Borrowed(_) => return Ok(()),
        Cow::Owned(p) => p,
    };
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    let path_and_query = match parts.path_and_query.as_ref().and_then(PathAndQuery::query) {
        Some(query) => format!("{normal}?{query}"),
        None => normal,
    };
    // The normal form only holds bytes the original path held, or `%XX`: it parses.
    parts.path_and_query =
        Some(PathAndQuery::try_from(path_and_query).map_err(|_| PathError::BadEscape)?);
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| PathError::BadEscape)?;
    Ok(())
}

/// A parsed upstream URL (`http://` or `https://`).
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// The upstream's path without a trailing `/` (empty for `http://host/`).
    pub path_prefix: String,
    /// The `Host` header sent upstream (the authority), made once.
    pub host_header: Option<HeaderValue>,
}

/// Why an upstream URL is unusable: the store's rule ([`certgate_store::validate::upstream`],
/// the one definition of a valid upstream) refused it; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UpstreamError(pub String);

impl Upstream {
    /// Parses an upstream URL that passes the store's rule (absolute `http://` or
    /// `https://`, a host, no credentials, query or fragment).
    pub fn parse(url: &str) -> Result<Upstream, UpstreamError> {
        certgate_store::validate::upstream(url).map_err(|e| UpstreamError(e.to_string()))?;
        let invalid = || UpstreamError(format!("upstream {url:?} is invalid."));
        let uri: http::Uri = url.parse().map_err(|_| invalid())?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::HTTP,
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::HTTPS,
            _ => return Err(invalid()),
        };
        let authority = uri.authority().cloned().ok_or_else(invalid)?;
        let path_prefix = uri.path().trim_end_matches('/').to_owned();
        let host_header = HeaderValue::from_str(authority.as_str()).ok();
        Ok(Upstream {
            scheme,
            authority,
            path_prefix,
            host_header,
        })
    }

    /// The upstream path for a request: the upstream's path + the request path after
    /// `base_path` (never empty).
    pub fn rewrite_path(&self, base_path: &str, request_path: &str) -> String {
        let rest = if base_path == "/" {
            request_path
        } else {
            request_path.get(base_path.len()..).unwrap_or("")
        };
        let mut out = String::with_capacity(self.path_prefix.len() + rest.len() + 1);
        out.push_str(&self.path_prefix);
        out.push_str(rest);
        if out.is_empty() {
            out.push('/');
        } else if !out.starts_with('/') {
            out.insert(0, '/');
        }
        out
    }
}

/// One deployed API with its effective auth settings (SPEC §3 step 2) precomputed.
#[derive(Debug)]
pub struct Route {
    /// The API's id in the store.
    pub api_id: i64,
    /// The API's unique name (the `api` label of metrics and logs).
    pub name: String,
    /// `/` or `/a/b` (no trailing `/`).
    pub base_path: String,
    /// Where requests go.
    pub upstream: Upstream,
    /// Effective `required`: the override if set, else the gateway's.
    pub required: bool,
    /// Effective `trusted_dns`: the override list if set (replacing), else the gateway's.
    pub patterns: Arc<CompiledPatterns>,
    /// `certgate_requests_total` handles for this API.
    pub counters: RequestCounters,
}

/// All routes, indexed by base path for longest-prefix lookup.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_base: HashMap<String, Arc<Route>>,
}

impl RouteTable {
    /// Builds the table; a later route with a duplicate base path replaces an earlier one
    /// (the store refuses duplicates).
    pub fn new(routes: Vec<Route>) -> RouteTable {
        let by_base = routes
            .into_iter()
            .map(|r| (r.base_path.clone(), Arc::new(r)))
            .collect();
        RouteTable { by_base }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.by_base.len()
    }

    /// True when no API is deployed.
    pub fn is_empty(&self) -> bool {
        self.by_base.is_empty()
    }

    /// The route whose base path is the longest prefix of `path` on a `/` boundary:
    /// `/orders` matches `/orders` and `/orders/x`, never `/ordersX`; `/` matches all.
    /// Costs one hash lookup per path segment.
    pub fn lookup(&self, path: &str) -> Option<&Arc<Route>> {
        if self.by_base.is_empty() {
            return None;
        }
        let mut candidate = path;
        loop {
            // A base path never ends with `/`, so "/orders/" is looked up as "/orders".
            let trimmed = candidate.trim_end_matches('/');
            if !trimmed.is_empty() {
                if let Some(route) = self.by_base.get(trimmed) {
                    return Some(route);
                }
            }
            match trimmed.rfind('/') {
                Some(idx) if idx > 0 => candidate = &trimmed[..idx],
                _ => break,
            }
        }
        self.by_base.get("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(method: &str, uri: &str, hosts: &[&str]) -> Result<String, TargetError> {
        let mut b = Request::builder().method(method).uri(uri);
        for h in hosts {
            b = b.header(header::HOST, *h);
        }
        let mut req = b.body(()).unwrap();
        normalize_target(&mut req).map(|()| req.uri().to_string())
    }

    #[test]
    fn targets() {
        assert_eq!(
            target("GET", "/a/./b?x=%2F..", &[]).as_deref(),
            Ok("/a/b?x=%2F..")
        );
        assert_eq!(target("GET", "/a/b?", &[]).as_deref(), Ok("/a/b?"));
        assert_eq!(
            target("GET", "https://localhost/files//admin?q", &["localhost"]).as_deref(),
            Ok("https://localhost/files/admin?q")
        );
        assert_eq!(
            target("GET", "http://LocalHost:8443/x", &["localhost:8443"]).as_deref(),
            Ok("http://LocalHost:8443/x")
        );
        assert_eq!(
            target("GET", "http://other/x", &["localhost"]),
            Err(TargetError::HostMismatch)
        );
        assert_eq!(target("GET", "ftp://h/x", &[]), Err(TargetError::Scheme));
        assert_eq!(
            target("GET", "/x", &["a", "a"]),
            Err(TargetError::ManyHosts)
        );
        assert_eq!(target("CONNECT", "h:443", &[]), Err(TargetError::Connect));
        assert_eq!(
            target("OPTIONS", "*", &[]),
            Err(TargetError::Path(PathError::NotOriginForm))
        );
        assert_eq!(
            target("GET", "/a%2Fb", &[]),
            Err(TargetError::Path(PathError::EncodedSeparator))
        );
        assert_eq!(TargetError::Connect.status(), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(
            TargetError::Path(PathError::AboveRoot).status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn transfer_codings_other_than_chunked_are_not_implemented() {
        let te = |values: &[&str]| {
            let mut b = Request::get("/x");
            for v in values {
                b = b.header(header::TRANSFER_ENCODING, *v);
            }
            normalize_target(&mut b.body(()).unwrap())
        };
        assert_eq!(te(&["chunked"]), Ok(()));
        assert_eq!(te(&[" Chunked "]), Ok(()));
        assert_eq!(te(&["gzip, chunked"]), Err(TargetError::TransferCoding));
        assert_eq!(te(&["gzip", "chunked"]), Err(TargetError::TransferCoding));
    }

    #[test]
    fn rewrite_joins_upstream_path_and_rest() {
        let up = Upstream::parse("http://127.0.0.1:9000/api").unwrap();
        assert_eq!(up.rewrite_path("/orders", "/orders/1"), "/api/1");
        assert_eq!(up.rewrite_path("/orders", "/orders"), "/api");
        assert_eq!(up.rewrite_path("/", "/x/y"), "/api/x/y");
        let root = Upstream::parse("http://127.0.0.1:9000/").unwrap();
        assert_eq!(root.rewrite_path("/orders", "/orders"), "/");
        assert_eq!(root.rewrite_path("/orders", "/orders/"), "/");
        assert_eq!(root.rewrite_path("/", "/"), "/");
        let bare = Upstream::parse("https://example.com").unwrap();
        assert_eq!(bare.rewrite_path("/a", "/a/b"), "/b");
        assert_eq!(bare.scheme, Scheme::HTTPS);
    }

    #[test]
    fn upstream_errors_are_the_stores_rule() {
        for bad in [
            "ftp://x/",
            "/relative",
            "http://",
            "http://u:p@h/",
            "http://h/p?q=1",
            "http://h/#x",
        ] {
            let e = Upstream::parse(bad).unwrap_err();
            let store = certgate_store::validate::upstream(bad).unwrap_err();
            assert_eq!(e.0, store.to_string(), "{bad}");
        }
    }
}
