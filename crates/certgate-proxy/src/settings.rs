//! [`ProxySettings`]: the listener and upstream settings a node reads from its config
//! file (SPEC §10 `[listener]`, `[upstream]`), as opposed to the live configuration of
//! the store.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Listener + upstream settings from the node's config file (SPEC §10 `[listener]`,
/// `[upstream]`).
#[derive(Debug)]
pub struct ProxySettings {
    /// Serve TLS (`https`) rather than plain HTTP.
    pub ssl: bool,
    /// Server chain, leaf first (required when `ssl`).
    pub server_cert_chain: Vec<CertificateDer<'static>>,
    /// Server private key (required when `ssl`).
    pub server_key: Option<PrivateKeyDer<'static>>,
    /// Offer HTTP/2 via ALPN (`h2` and `http/1.1`); plain listeners accept the h2 preface.
    pub http2: bool,
    /// TLS session tickets and session cache; resumed sessions are still re-judged.
    pub session_resumption: bool,
    /// Longest time a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Largest request head accepted (HTTP/1.1 buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Connections served at once; further ones wait in the accept queue.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Upstream TCP (+TLS) connect timeout: past it → 502.
    pub upstream_connect_timeout: Duration,
    /// Time to the upstream's response head: past it → 504.
    pub upstream_response_timeout: Duration,
    /// Idle keep-alive connections kept per upstream host.
    pub upstream_pool_max_idle_per_host: usize,
}

impl Clone for ProxySettings {
    fn clone(&self) -> Self {
        ProxySettings {
            server_cert_chain: self.server_cert_chain.clone(),
            server_key: self.server_key.as_ref().map(|k| k.clone_key()),
            ..*self
        }
    }
}

/// The one set of defaults of the node's listener and upstream settings: the config file's
/// `[listener]` / `[upstream]` defaults (crates/certgate `config.rs`) are read from here.
impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            ssl: false,
            server_cert_chain: Vec::new(),
            server_key: None,
            http2: true,
            session_resumption: true,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            // 64 KiB of headers plus room for a forwarded certificate chain.
            max_header_bytes: 64 * 1024 + 16 * 1024,
            max_connections: 50_000,
            shutdown_grace: Duration::from_secs(30),
            upstream_connect_timeout: Duration::from_secs(5),
            upstream_response_timeout: Duration::from_secs(60),
            upstream_pool_max_idle_per_host: 256,
        }
    }
}

impl ProxySettings {
    /// Plain HTTP listener with the defaults (header mode and mode `none` tests).
    pub fn plain_for_tests() -> Self {
        Self::default()
    }

    /// TLS listener with the given server chain and key, and the defaults otherwise.
    pub fn tls(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        ProxySettings {
            ssl: true,
            server_cert_chain: chain,
            server_key: Some(key),
            ..Self::default()
        }
    }
}
