//! Routing: the API whose `base_path` is the longest prefix of the request path on a `/`
//! boundary (SPEC §3 step 1), and the upstream path rewrite (SPEC §3 step 6).

use std::collections::HashMap;
use std::sync::Arc;

use http::uri::{Authority, Scheme};
use http::HeaderValue;

use crate::snapshot::CompiledPatterns;
use crate::telemetry::RequestCounters;

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

/// Why an upstream URL is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// Not a URI at all.
    #[error("not a valid URL")]
    Invalid,
    /// A scheme other than `http`/`https`, or none.
    #[error("the scheme must be http or https")]
    Scheme,
    /// No host.
    #[error("the URL has no host")]
    NoHost,
}

impl Upstream {
    /// Parses an `http://` or `https://` URL; a query part is ignored.
    pub fn parse(url: &str) -> Result<Upstream, UpstreamError> {
        let uri: http::Uri = url.parse().map_err(|_| UpstreamError::Invalid)?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::HTTP,
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::HTTPS,
            _ => return Err(UpstreamError::Scheme),
        };
        let authority = uri.authority().cloned().ok_or(UpstreamError::NoHost)?;
        if authority.host().is_empty() {
            return Err(UpstreamError::NoHost);
        }
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
    fn upstream_errors() {
        assert_eq!(
            Upstream::parse("ftp://x/").unwrap_err(),
            UpstreamError::Scheme
        );
        assert_eq!(
            Upstream::parse("/relative").unwrap_err(),
            UpstreamError::Scheme
        );
        assert_eq!(
            Upstream::parse("http://").unwrap_err(),
            UpstreamError::Invalid
        );
    }
}
