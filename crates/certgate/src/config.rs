//! The configuration file (SPEC §10): every key has a default, an unknown key or a bad
//! value stops start-up with a message naming it, relative paths resolve against the
//! config file's directory, and two environment variables override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use certgate_proxy::ProxySettings;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Node-local state: SQLite file, trust store, generated server certificate, admin token.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data_dir>/certgate.db`.
    pub store: Option<String>,
    pub listener: ListenerConfig,
    pub admin: AdminConfig,
    pub truststore: TruststoreConfig,
    pub upstream: UpstreamConfig,
    pub node: NodeConfig,
}

/// `[node]`: the node's identity in a cluster (SPEC §12).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Node id; default: the UUID kept in `<data_dir>/node-id` (made on first start).
    pub id: Option<String>,
    /// Node name; default: the host name.
    pub name: Option<String>,
}

/// `[listener]`: the proxy listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    pub ssl: bool,
    /// PEM server certificate chain; absent with `ssl = true`: a generated self-signed one.
    pub certificate: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    pub http2: bool,
    pub session_resumption: bool,
    /// Time allowed to read a request's headers (seconds).
    pub header_read_timeout_secs: u64,
    /// A keep-alive connection with no request for this long is closed (seconds).
    pub idle_timeout_secs: u64,
    /// Largest request head accepted (bytes).
    pub max_header_bytes: usize,
    /// Connections held at once; further accepts wait.
    pub max_connections: usize,
    /// How long SIGTERM waits for in-flight requests (seconds).
    pub shutdown_grace_secs: u64,
}

/// `[admin]`: the admin listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub address: SocketAddr,
    /// Bearer token; env `CERTGATE_ADMIN_TOKEN` wins; none: generated on first start.
    pub token: Option<String>,
}

/// `[truststore]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TruststoreConfig {
    pub force_recovery: bool,
    pub auto_recover: bool,
}

/// `[upstream]`: the client towards APIs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// TCP (and TLS) connect timeout (milliseconds); exceeded → 502.
    pub connect_timeout_ms: u64,
    /// Time to the upstream's response head (milliseconds); exceeded → 504.
    pub response_timeout_ms: u64,
    /// Idle pooled connections kept per upstream host.
    pub pool_max_idle_per_host: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./certgate-data"),
            store: None,
            listener: ListenerConfig::default(),
            admin: AdminConfig::default(),
            truststore: TruststoreConfig::default(),
            upstream: UpstreamConfig::default(),
            node: NodeConfig::default(),
        }
    }
}

impl Default for ListenerConfig {
    fn default() -> Self {
        let d = ProxySettings::default();
        Self {
            address: SocketAddr::from(([0, 0, 0, 0], 8443)),
            ssl: true,
            certificate: None,
            private_key: None,
            http2: d.http2,
            session_resumption: d.session_resumption,
            header_read_timeout_secs: d.header_read_timeout.as_secs(),
            idle_timeout_secs: d.idle_timeout.as_secs(),
            max_header_bytes: d.max_header_bytes,
            max_connections: d.max_connections,
            shutdown_grace_secs: d.shutdown_grace.as_secs(),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token: None,
        }
    }
}

impl Default for TruststoreConfig {
    fn default() -> Self {
        Self {
            force_recovery: false,
            auto_recover: true,
        }
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        let d = ProxySettings::default();
        Self {
            connect_timeout_ms: d.upstream_connect_timeout.as_millis() as u64,
            response_timeout_ms: d.upstream_response_timeout.as_millis() as u64,
            pool_max_idle_per_host: d.upstream_pool_max_idle_per_host,
        }
    }
}

/// Reads an environment variable as a boolean (`true`/`false`/`1`/`0`).
fn env_bool(name: &str) -> anyhow::Result<Option<bool>> {
    match std::env::var(name) {
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" | "" => Ok(Some(false)),
            other => bail!("environment variable {name}: expected true or false, got {other:?}"),
        },
        Err(_) => Ok(None),
    }
}

impl Config {
    /// Loads the file (or the defaults when `path` is `None`), resolves relative paths and
    /// applies the environment overrides.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let (mut cfg, base) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                let cfg = Self::parse(&text)
                    .with_context(|| format!("invalid config file {}", p.display()))?;
                let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                (cfg, base)
            }
            None => (Config::default(), PathBuf::new()),
        };
        cfg.resolve_paths(&base);
        if let Ok(token) = std::env::var("CERTGATE_ADMIN_TOKEN") {
            if !token.is_empty() {
                cfg.admin.token = Some(token);
            }
        }
        if let Some(force) = env_bool("CERTGATE_TRUSTSTORE_FORCE_RECOVERY")? {
            cfg.truststore.force_recovery = force;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML text; serde's message names the unknown key or the bad value.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        self.data_dir = join(&self.data_dir);
        self.listener.certificate = self.listener.certificate.as_deref().map(join);
        self.listener.private_key = self.listener.private_key.as_deref().map(join);
        if let Some(store) = &self.store {
            if let Some(rest) = store.strip_prefix("sqlite://") {
                let (file, query) = rest
                    .split_once('?')
                    .map_or((rest, None), |(f, q)| (f, Some(q)));
                let resolved = join(Path::new(file));
                self.store = Some(match query {
                    Some(q) => format!("sqlite://{}?{q}", resolved.display()),
                    None => format!("sqlite://{}", resolved.display()),
                });
            }
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(store) = &self.store {
            if !(store.starts_with("sqlite://")
                || store.starts_with("postgres://")
                || store.starts_with("postgresql://"))
            {
                bail!("store: expected a sqlite:// or postgres:// URL, got {store:?}");
            }
        }
        if self.listener.certificate.is_some() != self.listener.private_key.is_some() {
            bail!("listener.certificate and listener.private_key must be given together");
        }
        if self.admin.token.as_deref().is_some_and(|t| t.len() < 16) {
            bail!("admin.token: must be at least 16 characters");
        }
        if self.node.id.as_deref().is_some_and(|id| {
            id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        }) {
            bail!("node.id: expected 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' or '.'");
        }
        if self.listener.max_connections == 0 {
            bail!("listener.max_connections: must be at least 1");
        }
        Ok(())
    }

    /// The store URL, defaulting to the SQLite file in the data dir.
    pub fn store_url(&self) -> String {
        self.store
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("certgate.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listener.address.port(), 8443);
        assert!(c.listener.ssl && c.listener.http2 && c.listener.session_resumption);
        assert_eq!(c.admin.address.to_string(), "127.0.0.1:9090");
        assert!(c.truststore.auto_recover && !c.truststore.force_recovery);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[listener]\nadress = \"1.2.3.4:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("adress"), "{e}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = Config::parse("[listener]\nssl = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ssl"), "{e}");
    }

    #[test]
    fn relative_paths_resolve_against_the_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "data_dir = \"d\"\nstore = \"sqlite://./d/x.db\"\n[listener]\ncertificate = \"s.pem\"\nprivate_key = \"s.key\"\n").unwrap();
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(c.data_dir, dir.path().join("d"));
        assert_eq!(
            c.listener.certificate.as_deref(),
            Some(dir.path().join("s.pem").as_path())
        );
        assert_eq!(
            c.store_url(),
            format!("sqlite://{}", dir.path().join("./d/x.db").display())
        );
    }
}
