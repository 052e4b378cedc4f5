//! Wiring of one node: store, trust store, runtime snapshot, proxy listener and admin
//! listener, and the reload path that keeps the snapshot in step with the store.
//!
//! Propagation (SPEC §12): the store publishes every new generation (its own commits at
//! once; other nodes' through `NOTIFY` or the 250 ms generation poll); [`follow_changes`]
//! reloads, applies the snapshot, writes `last-config.json` and records the applied
//! generation in the node's row (which `?wait=cluster` reads). A failed reload (store
//! unreachable) keeps the last snapshot and retries every poll interval. The node renews
//! its row every [`HEARTBEAT`] and marks itself down on shutdown.
//! `serve` and `quickstart` both start a node through [`start`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use certgate_admin::cluster::{ConfigSource, NodeHandle};
use certgate_admin::{AdminState, ReloadFailed, ReloadHook};
use certgate_proxy::{ProxySettings, Runtime};
use certgate_store::node::NodeIdentity;
use certgate_store::views::NodeRecord;
use certgate_store::{last_config, Store, StoreError, TrustStore, TrustStoreStatus, POLL_INTERVAL};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::secrets::{self, TokenSource};

/// A running node.
pub struct RunningNode {
    /// The proxy listener's bound address.
    pub proxy_addr: SocketAddr,
    /// The admin listener's bound address.
    pub admin_addr: SocketAddr,
    /// The admin token in force, and where it came from.
    pub token: String,
    pub token_source: TokenSource,
    /// `https` or `http`.
    pub scheme: &'static str,
    /// The node id (`<data_dir>/node-id` or `[node] id`).
    pub node_id: String,
    store: Store,
    shutdown: watch::Sender<bool>,
    proxy_task: JoinHandle<std::io::Result<()>>,
    admin_task: JoinHandle<std::io::Result<()>>,
    /// The change follower and the heartbeat.
    background: Vec<JoinHandle<()>>,
    /// Held for the node's life: a second node on the same SQLite file is refused.
    _sqlite_lock: Option<std::fs::File>,
}

/// The process-wide Prometheus recorder (installed once; the data plane and the admin
/// API record into it).
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => {
                let upkeep = handle.clone();
                std::thread::spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                });
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .clone()
}

/// Reads and parses the configured server certificate chain and private key.
pub fn load_server_identity(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("listener.certificate: cannot read {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "listener.certificate: {} is not a PEM certificate chain",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!(
            "listener.certificate: {} holds no certificate",
            cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "listener.private_key: cannot read a PEM private key from {}",
            key.display()
        )
    })?;
    Ok((chain, key))
}

fn proxy_settings(cfg: &Config) -> anyhow::Result<ProxySettings> {
    let l = &cfg.listener;
    let mut settings = if l.ssl {
        let (cert, key) = match (&l.certificate, &l.private_key) {
            (Some(c), Some(k)) => {
                secrets::warn_if_shared(k);
                (c.clone(), k.clone())
            }
            _ => {
                let (c, k, made) = secrets::ensure_self_signed(&cfg.data_dir)?;
                if made {
                    tracing::info!(certificate = %c.display(), "made a self-signed server certificate");
                }
                (c, k)
            }
        };
        let (chain, key) = load_server_identity(&cert, &key)?;
        if let Ok(info) = certgate_pki::CertificateInfo::from_der(chain[0].as_ref()) {
            tracing::info!(
                certificate = %cert.display(),
                subject = %info.subject,
                fingerprint = %info.fingerprint_sha256,
                "server certificate"
            );
        }
        ProxySettings::tls(chain, key)
    } else {
        ProxySettings::default()
    };
    settings.ssl = l.ssl;
    settings.http2 = l.http2;
    settings.session_resumption = l.session_resumption;
    settings.header_read_timeout = Duration::from_secs(l.header_read_timeout_secs);
    settings.idle_timeout = Duration::from_secs(l.idle_timeout_secs);
    settings.max_header_bytes = l.max_header_bytes;
    settings.max_connections = l.max_connections;
    settings.shutdown_grace = Duration::from_secs(l.shutdown_grace_secs);
    settings.upstream_connect_timeout = Duration::from_millis(cfg.upstream.connect_timeout_ms);
    settings.upstream_response_timeout = Duration::from_millis(cfg.upstream.response_timeout_ms);
    settings.upstream_pool_max_idle_per_host = cfg.upstream.pool_max_idle_per_host;
    Ok(settings)
}

/// Reads the store, syncs the trust store files and swaps a new snapshot in; then records
/// what it applied (`last-config.json`, the node's row). Reloads are serialised so a slow
/// older reload never overwrites a newer one.
struct Reloader {
    store: Store,
    truststore: Arc<TrustStore>,
    runtime: Arc<Runtime>,
    node: Arc<NodeHandle>,
    data_dir: PathBuf,
    /// `listener.ssl`, still to be mirrored into the store (a node that started during
    /// an outage does it once the store is back).
    ssl_pending: std::sync::Mutex<Option<bool>>,
    lock: Mutex<()>,
}

impl Reloader {
    /// Reloads and records the outcome on the node handle (`/readyz` reads it): `Ok` when
    /// the store's configuration is now live, else why not. A store outage is not
    /// recorded as a failure: `/readyz` reports the store itself (SPEC §12).
    async fn reload(&self) -> Result<(), String> {
        let _guard = self.lock.lock().await;
        let outcome = self.reload_locked().await;
        match &outcome {
            Ok(()) => self.node.set_reload_failure(None),
            Err((reason, outage)) => {
                if !outage && self.node.reload_failure().as_deref() != Some(reason.as_str()) {
                    tracing::error!(reason = %reason, "reload failed; keeping the previous configuration, not ready until it is live");
                }
                self.node
                    .set_reload_failure((!outage).then(|| reason.clone()));
            }
        }
        outcome.map_err(|(reason, _)| reason)
    }

    /// The reload itself; an error says why, and whether the store was unreachable.
    async fn reload_locked(&self) -> Result<(), (String, bool)> {
        let pending = *self.ssl_pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ssl) = pending {
            if let Err(e) = self.store.set_ssl_enabled(ssl).await {
                tracing::warn!(error = %e, "reload: cannot record listener.ssl yet");
                return Err((format!("cannot record listener.ssl: {e}"), is_outage(&e)));
            }
            *self.ssl_pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        let config = match self.store.load_config().await {
            Ok(c) => c,
            Err(e) => {
                // Keep serving the last good snapshot: the change loop retries.
                tracing::warn!(error = %e, "reload: cannot read the configuration store");
                return Err((format!("cannot read the configuration: {e}"), is_outage(&e)));
            }
        };
        let ts = self.truststore.clone();
        let cfg = config.clone();
        let info = match tokio::task::spawn_blocking(move || ts.sync(&cfg)).await {
            Ok(info) => info,
            Err(e) => {
                tracing::error!(error = %e, "reload: trust store sync panicked");
                self.truststore.status()
            }
        };
        let ok = info.status == TrustStoreStatus::Ok;
        if let Err(e) = self.runtime.apply(&config, ok) {
            tracing::debug!(error = %e, generation = config.generation, "reload: snapshot not built; keeping the previous one");
            return Err((
                format!("generation {} cannot be applied: {e}", config.generation),
                false,
            ));
        }
        tracing::debug!(
            generation = config.generation,
            truststore = info.status.as_str(),
            "configuration applied"
        );
        let generation = config.generation;
        let config = Arc::new(config);
        let (_, before) = self.node.applied();
        self.node.set_applied(config.clone(), ConfigSource::Store);
        if before == ConfigSource::LastConfig {
            tracing::info!(
                generation,
                "store reachable: now serving the store's configuration"
            );
        }
        let dir = self.data_dir.clone();
        let saved = tokio::task::spawn_blocking(move || last_config::save(&dir, &config)).await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write last-config.json"),
            Err(e) => tracing::warn!(error = %e, "last-config.json writer panicked"),
        }
        if let Err(e) = self.store.record_applied(self.node.id(), generation).await {
            tracing::debug!(error = %e, "cannot record the applied generation");
        }
        Ok(())
    }

    /// Whether the node serves something else than the store's current generation.
    fn behind(&self, generation: u64) -> bool {
        self.runtime.snapshot().config_generation < generation
            || self.node.applied().1 == ConfigSource::LastConfig
    }
}

/// Whether a store error is an outage (the store unreachable), not a bad configuration.
fn is_outage(e: &certgate_store::StoreError) -> bool {
    matches!(e, certgate_store::StoreError::Unavailable(_))
}

/// Keeps the node on the store's generation: reloads on every published change, and
/// retries every [`POLL_INTERVAL`] while a reload fails (store unreachable).
async fn follow_changes(r: Arc<Reloader>) {
    let mut changes = r.store.subscribe();
    loop {
        let generation = *changes.borrow_and_update();
        let failed = generation > 0 && r.behind(generation) && r.reload().await.is_err();
        if failed {
            // Retry after a poll interval, or sooner on a new generation.
            if let Ok(Err(_)) = tokio::time::timeout(POLL_INTERVAL, changes.changed()).await {
                return;
            }
        } else if changes.changed().await.is_err() {
            return;
        }
    }
}

/// The record this node writes about itself.
fn node_record(
    identity: &NodeIdentity,
    proxy_addr: SocketAddr,
    admin_addr: SocketAddr,
    runtime: &Runtime,
    truststore: &TrustStore,
) -> NodeRecord {
    let ts = truststore.status();
    NodeRecord {
        id: identity.id.clone(),
        name: identity.name.clone(),
        admin_address: admin_addr.to_string(),
        proxy_address: proxy_addr.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        config_generation: runtime.snapshot().config_generation,
        truststore_status: ts.status.as_str().to_string(),
        truststore_sha256: ts.sha256,
    }
}

/// Renews the node's record every [`HEARTBEAT`].
async fn heartbeat(
    store: Store,
    identity: NodeIdentity,
    addrs: (SocketAddr, SocketAddr),
    runtime: Arc<Runtime>,
    truststore: Arc<TrustStore>,
) {
    let mut starting = true;
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let cluster = store.backend_name() == "postgres";
    let mut inventory_written: Option<(u64, std::time::Instant)> = None;
    loop {
        tick.tick().await;
        let rec = node_record(&identity, addrs.0, addrs.1, &runtime, &truststore);
        match store.record_node(&rec, starting).await {
            Ok(()) => starting = false,
            Err(e) => tracing::debug!(error = %e, "cannot renew the node record"),
        }
        if cluster {
            write_inventory(&store, &identity.id, &runtime, &mut inventory_written).await;
        }
    }
}

/// How often a node in cluster mode writes its part of the client inventory when it
/// changed (SPEC §13: at least every 10 s).
pub const INVENTORY_WRITE: Duration = Duration::from_secs(4);

/// Writes this node's clients to the store when they changed and [`INVENTORY_WRITE`]
/// passed since the last write.
async fn write_inventory(
    store: &Store,
    node_id: &str,
    runtime: &Runtime,
    last: &mut Option<(u64, std::time::Instant)>,
) {
    let inventory = runtime.inventory();
    let changes = inventory.changes();
    if let Some((seen, at)) = *last {
        if seen == changes || at.elapsed() < INVENTORY_WRITE {
            return;
        }
    }
    if changes == 0 {
        return;
    }
    match store
        .write_inventory_part(node_id, &inventory.clients())
        .await
    {
        Ok(()) => *last = Some((changes, std::time::Instant::now())),
        Err(e) => tracing::debug!(error = %e, "cannot write this node's client inventory"),
    }
}

/// How often a node renews its record (SPEC §12).
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Holds `<db>.lock` (flock + our pid) for a SQLite store: SQLite is single-node.
fn lock_sqlite(url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return Ok(None);
    };
    let file = rest.split('?').next().unwrap_or(rest);
    if file.is_empty() || file == ":memory:" || url.contains("mode=memory") {
        return Ok(None);
    }
    let db = Path::new(file);
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("store: cannot create {}", parent.display()))?;
    }
    let lock_path = PathBuf::from(format!("{file}.lock"));
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&lock_path)
        .with_context(|| format!("store: cannot open {}", lock_path.display()))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(&lock_path).unwrap_or_default();
            let pid = pid.trim();
            anyhow::bail!(
                "store: {} is in use by another certgate node (pid {}); SQLite is single-node — \
                 run several nodes on PostgreSQL (SPEC §12)",
                db.display(),
                if pid.is_empty() { "unknown" } else { pid }
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("store: cannot lock {}", lock_path.display()))
        }
    }
    use std::io::{Seek, Write};
    f.set_len(0)?;
    f.seek(std::io::SeekFrom::Start(0))?;
    writeln!(f, "{}", std::process::id())?;
    f.sync_all()?;
    Ok(Some(f))
}

/// Opens the store. PostgreSQL unreachable at start: with a `last-config.json` the node
/// serves it (and connects later); without one it waits for the store, retrying with
/// backoff, and does not become ready meanwhile.
async fn open_store(
    url: &str,
    data_dir: &Path,
) -> anyhow::Result<(Store, Option<certgate_store::GatewayConfig>)> {
    let mut delay = Duration::from_millis(250);
    loop {
        match Store::open(url).await {
            Ok(s) => return Ok((s, None)),
            Err(StoreError::Unavailable(e)) => {
                match last_config::load(data_dir) {
                    Ok(Some(c)) => {
                        tracing::warn!(error = %e, generation = c.generation, "store unreachable at start: serving the configuration of last-config.json until it is back");
                        let s = Store::open_lazy(url)
                            .await
                            .with_context(|| format!("store: cannot open {url}"))?;
                        return Ok((s, Some(c)));
                    }
                    Ok(None) => {
                        tracing::warn!(error = %e, "store unreachable at start and no last-config.json: waiting for the store")
                    }
                    Err(le) => {
                        tracing::error!(error = %e, last_config = %le, "store unreachable at start and last-config.json is unusable: waiting for the store")
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e).with_context(|| format!("store: cannot open {url}")),
        }
    }
}

/// How often the trust store files are stat'ed for changes made behind the node's back.
const TRUSTSTORE_WATCH: Duration = Duration::from_secs(2);

/// Watches the trust store files (two `stat` calls per period) and reloads when they
/// changed: a trust store damaged on disk while the node runs fails closed within one
/// period, or is rebuilt (and logged) with `auto_recover` (SPEC §5). Ends at shutdown.
fn spawn_truststore_watch(reloader: Arc<Reloader>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TRUSTSTORE_WATCH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            let ts = reloader.truststore.clone();
            // A failed stat task counts as a change: verify rather than trust.
            let changed = tokio::task::spawn_blocking(move || ts.changed_on_disk())
                .await
                .unwrap_or(true);
            if changed {
                tracing::info!("trust store files changed on disk; verifying them");
                // A failure is logged and kept for /readyz by reload itself.
                let _ = reloader.reload().await;
            }
        }
    });
}

/// Starts a node: opens the store, builds the trust store and the first snapshot, binds
/// both listeners and spawns their tasks.
pub async fn start(cfg: &Config) -> anyhow::Result<RunningNode> {
    secrets::prepare_data_dir(&cfg.data_dir)?;
    let metrics = metrics_handle();
    let settings = proxy_settings(cfg)?;

    let store_url = cfg.store_url();
    let sqlite_lock = lock_sqlite(&store_url)?;
    secrets::secure_sqlite_files(&store_url)?;
    let (store, last) = open_store(&store_url, &cfg.data_dir).await?;
    secrets::secure_sqlite_files(&store_url)?;
    let (config, source) = match last {
        Some(c) => (c, ConfigSource::LastConfig),
        None => {
            store
                .set_ssl_enabled(cfg.listener.ssl)
                .await
                .context("store: cannot record listener.ssl")?;
            let c = store
                .load_config()
                .await
                .context("store: cannot read the configuration")?;
            (c, ConfigSource::Store)
        }
    };

    let truststore = Arc::new(TrustStore::open(&cfg.data_dir, cfg.truststore.auto_recover));
    let info = {
        let ts = truststore.clone();
        let c = config.clone();
        let force = cfg.truststore.force_recovery;
        tokio::task::spawn_blocking(move || ts.start(&c, force)).await?
    };
    // After the trust store's start, so a first start still counts as a new node there.
    let identity = certgate_store::node::load_or_create(
        &cfg.data_dir,
        cfg.node.id.as_deref(),
        cfg.node.name.as_deref(),
    )
    .with_context(|| {
        format!(
            "node-id: cannot read or create it in {}",
            cfg.data_dir.display()
        )
    })?;
    if identity.created {
        tracing::info!(node_id = %identity.id, "new node: made its node id");
    }
    if cfg.truststore.force_recovery {
        tracing::warn!(
            status = info.status.as_str(),
            "trust store rebuilt from the store (force_recovery)"
        );
    }
    let runtime = Runtime::new();
    runtime
        .apply(&config, info.status == TrustStoreStatus::Ok)
        .context("the stored configuration cannot be applied")?;
    let node = NodeHandle::new(identity.id.clone());
    let config = Arc::new(config);
    node.set_applied(config.clone(), source);
    if source == ConfigSource::Store {
        let dir = cfg.data_dir.clone();
        let c = config.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || last_config::save(&dir, &c)).await {
            tracing::warn!(error = %e, "cannot write last-config.json");
        }
    }

    let reloader = Arc::new(Reloader {
        store: store.clone(),
        truststore: truststore.clone(),
        runtime: runtime.clone(),
        node: node.clone(),
        data_dir: cfg.data_dir.clone(),
        ssl_pending: std::sync::Mutex::new(
            (source == ConfigSource::LastConfig).then_some(cfg.listener.ssl),
        ),
        lock: Mutex::new(()),
    });
    let hook: ReloadHook = {
        let r = reloader.clone();
        Arc::new(move || {
            let r = r.clone();
            Box::pin(async move { r.reload().await.map_err(ReloadFailed) })
                as Pin<Box<dyn Future<Output = Result<(), ReloadFailed>> + Send>>
        })
    };
    // Changes committed elsewhere (other nodes of a cluster, a CLI on the same store)
    // arrive through the store's change feed (NOTIFY + generation polling).
    let follower = tokio::spawn(follow_changes(reloader.clone()));

    let (shutdown, _) = watch::channel(false);
    spawn_truststore_watch(reloader.clone(), shutdown.subscribe());
    let wait_for = |tx: &watch::Sender<bool>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let proxy_listener = tokio::net::TcpListener::bind(cfg.listener.address)
        .await
        .with_context(|| format!("listener.address: cannot bind {}", cfg.listener.address))?;
    let admin_listener = tokio::net::TcpListener::bind(cfg.admin.address)
        .await
        .with_context(|| format!("admin.address: cannot bind {}", cfg.admin.address))?;
    let proxy_addr = proxy_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    // Made only once everything that can refuse the start has passed, so a refused start
    // never leaves a generated token that nobody saw printed.
    let (token, token_source) = secrets::admin_token(&cfg.data_dir, cfg.admin.token.as_deref())?;

    if store.reachable() {
        let rec = node_record(&identity, proxy_addr, admin_addr, &runtime, &truststore);
        if let Err(e) = store.record_node(&rec, true).await {
            tracing::warn!(error = %e, "cannot record the node in the store");
        }
    }
    let heartbeat_task = tokio::spawn(heartbeat(
        store.clone(),
        identity.clone(),
        (proxy_addr, admin_addr),
        runtime.clone(),
        truststore.clone(),
    ));

    let scheme = if cfg.listener.ssl { "https" } else { "http" };
    let proxy_task = tokio::spawn(certgate_proxy::serve(
        proxy_listener,
        settings,
        runtime.clone(),
        wait_for(&shutdown),
    ));
    let tools: certgate_admin::tools::ToolsHandle = Arc::new(NodeTools {
        runtime: runtime.clone(),
    });
    let state = AdminState::new(store.clone(), truststore, token.clone(), hook, metrics)
        .with_node(node)
        .with_tools(tools);
    let admin_task = tokio::spawn(certgate_admin::serve(
        admin_listener,
        state,
        wait_for(&shutdown),
    ));
    tracing::info!(proxy = %proxy_addr, scheme, admin = %admin_addr, data_dir = %cfg.data_dir.display(), node_id = %identity.id, node_name = %identity.name, store = store.backend_name(), config_source = source.as_str(), "certgate node started");

    Ok(RunningNode {
        proxy_addr,
        admin_addr,
        token,
        token_source,
        scheme,
        node_id: identity.id,
        store,
        shutdown,
        proxy_task,
        admin_task,
        background: vec![follower, heartbeat_task],
        _sqlite_lock: sqlite_lock,
    })
}

impl RunningNode {
    /// Asks both listeners to stop: the proxy drains in-flight requests first.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Waits for both listeners to finish, then marks the node `down` in the store.
    pub async fn finished(self) -> anyhow::Result<()> {
        let (p, a) = tokio::join!(self.proxy_task, self.admin_task);
        for t in &self.background {
            t.abort();
        }
        match tokio::time::timeout(
            Duration::from_secs(2),
            self.store.mark_node_down(&self.node_id),
        )
        .await
        {
            Ok(Ok(())) => tracing::info!(node_id = %self.node_id, "node marked down in the store"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot mark the node down in the store"),
            Err(_) => tracing::warn!("marking the node down timed out"),
        }
        self.store.close().await;
        p.context("proxy task")?.context("proxy listener")?;
        a.context("admin task")?.context("admin listener")?;
        Ok(())
    }
}

/// Builds the tokio runtime; `CERTGATE_WORKER_THREADS` sets the worker count (default: one
/// per core). With one worker the runtime is tokio's current-thread scheduler: the same
/// single thread without the work-stealing machinery (less CPU per request, see
/// docs/BENCHMARKS.md).
pub fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let workers = match std::env::var("CERTGATE_WORKER_THREADS") {
        Ok(n) => Some(
            n.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| {
                    format!("CERTGATE_WORKER_THREADS: expected a positive number, got {n:?}")
                })?,
        ),
        Err(_) => None,
    };
    let mut b = match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    b.enable_all();
    Ok(b.build()?)
}

/// Installs the JSON log subscriber (stderr; `RUST_LOG` filters, default `info`).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .try_init();
}

/// The SPEC §13 tools of this node: the data plane's own evaluation on its live snapshot.
struct NodeTools {
    runtime: Arc<certgate_proxy::Runtime>,
}

impl certgate_admin::tools::Tools for NodeTools {
    fn explain(&self, input: certgate_admin::tools::ExplainInput) -> serde_json::Value {
        use certgate_proxy::explain::{explain, ExplainRequest};
        let req = ExplainRequest {
            path: input.path,
            // The admin API validated the method.
            method: input
                .method
                .and_then(|m| http::Method::from_bytes(m.as_bytes()).ok()),
            host: input.host,
            sni: input.sni,
            chain: input.chain_der.map(|c| {
                c.into_iter()
                    .map(rustls_pki_types::CertificateDer::from)
                    .collect()
            }),
        };
        let answer = explain(&self.runtime.snapshot(), &req);
        serde_json::to_value(answer).unwrap_or(serde_json::Value::Null)
    }

    fn clients(&self) -> Vec<certgate_store::inventory::SeenClient> {
        self.runtime.inventory().clients()
    }

    fn access_changes(
        &self,
        next: &certgate_store::GatewayConfig,
        clients: &[certgate_store::inventory::SeenClient],
    ) -> Result<certgate_store::inventory::AccessChanges, String> {
        let candidate = self.runtime.rehearse(next).map_err(|e| e.to_string())?;
        Ok(certgate_proxy::inventory::access_changes(
            &self.runtime.snapshot(),
            &candidate,
            clients,
        ))
    }
}
