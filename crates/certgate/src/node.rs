//! Wiring of one node: store, trust store, runtime snapshot, proxy listener and admin
//! listener, and the reload path that keeps the snapshot in step with the store.
//! `serve` and `quickstart` both start a node through [`start`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use certgate_admin::{AdminState, ReloadHook};
use certgate_proxy::{ProxySettings, Runtime};
use certgate_store::{Store, TrustStore, TrustStoreStatus};
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
    shutdown: watch::Sender<bool>,
    proxy_task: JoinHandle<std::io::Result<()>>,
    admin_task: JoinHandle<std::io::Result<()>>,
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

fn load_server_identity(
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
        ProxySettings::plain_for_tests()
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

/// Reads the store, syncs the trust store files and swaps a new snapshot in. Reloads are
/// serialised so a slow older reload never overwrites a newer one.
struct Reloader {
    store: Store,
    truststore: Arc<TrustStore>,
    runtime: Arc<Runtime>,
    lock: Mutex<()>,
}

impl Reloader {
    async fn reload(&self) {
        let _guard = self.lock.lock().await;
        let config = match self.store.load_config().await {
            Ok(c) => c,
            Err(e) => {
                // Keep serving the last good snapshot: the store is the source of truth and
                // will be read again on the next change.
                tracing::error!(error = %e, "reload: cannot read the configuration store");
                return;
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
            tracing::error!(error = %e, generation = config.generation, "reload: snapshot not built; keeping the previous one");
        } else {
            tracing::debug!(
                generation = config.generation,
                truststore = info.status.as_str(),
                "configuration applied"
            );
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
                reloader.reload().await;
            }
        }
    });
}

/// Starts a node: opens the store, builds the trust store and the first snapshot, binds
/// both listeners and spawns their tasks.
pub async fn start(cfg: &Config) -> anyhow::Result<RunningNode> {
    secrets::prepare_data_dir(&cfg.data_dir)?;
    let (token, token_source) = secrets::admin_token(&cfg.data_dir, cfg.admin.token.as_deref())?;
    let metrics = metrics_handle();
    let settings = proxy_settings(cfg)?;

    let store_url = cfg.store_url();
    secrets::secure_sqlite_files(&store_url)?;
    let store = Store::open(&store_url)
        .await
        .with_context(|| format!("store: cannot open {store_url}"))?;
    secrets::secure_sqlite_files(&store_url)?;
    store
        .set_ssl_enabled(cfg.listener.ssl)
        .await
        .context("store: cannot record listener.ssl")?;

    let truststore = Arc::new(TrustStore::open(&cfg.data_dir, cfg.truststore.auto_recover));
    let config = store
        .load_config()
        .await
        .context("store: cannot read the configuration")?;
    let info = {
        let ts = truststore.clone();
        let c = config.clone();
        let force = cfg.truststore.force_recovery;
        tokio::task::spawn_blocking(move || ts.start(&c, force)).await?
    };
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

    let reloader = Arc::new(Reloader {
        store: store.clone(),
        truststore: truststore.clone(),
        runtime: runtime.clone(),
        lock: Mutex::new(()),
    });
    let hook: ReloadHook = {
        let r = reloader.clone();
        Arc::new(move || {
            let r = r.clone();
            Box::pin(async move { r.reload().await }) as Pin<Box<dyn Future<Output = ()> + Send>>
        })
    };
    // Changes committed elsewhere (another node of a cluster, a CLI on the same file) arrive
    // through the store's change feed.
    {
        let r = reloader.clone();
        let mut changes = store.subscribe();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let generation = *changes.borrow_and_update();
                // The admin API already reloaded for its own writes; skip what is applied.
                if r.runtime.snapshot().config_generation >= generation {
                    continue;
                }
                r.reload().await;
            }
        });
    }

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

    let scheme = if cfg.listener.ssl { "https" } else { "http" };
    let proxy_task = tokio::spawn(certgate_proxy::serve(
        proxy_listener,
        settings,
        runtime.clone(),
        wait_for(&shutdown),
    ));
    let state = AdminState::new(store, truststore, token.clone(), hook, metrics);
    let admin_task = tokio::spawn(certgate_admin::serve(
        admin_listener,
        state,
        wait_for(&shutdown),
    ));
    tracing::info!(proxy = %proxy_addr, scheme, admin = %admin_addr, data_dir = %cfg.data_dir.display(), "certgate node started");

    Ok(RunningNode {
        proxy_addr,
        admin_addr,
        token,
        token_source,
        scheme,
        shutdown,
        proxy_task,
        admin_task,
    })
}

impl RunningNode {
    /// Asks both listeners to stop: the proxy drains in-flight requests first.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Waits for both listeners to finish.
    pub async fn finished(self) -> anyhow::Result<()> {
        let (p, a) = tokio::join!(self.proxy_task, self.admin_task);
        p.context("proxy task")?.context("proxy listener")?;
        a.context("admin task")?.context("admin listener")?;
        Ok(())
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
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
