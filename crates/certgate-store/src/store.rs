//! [`Store`]: the configuration database. Every write runs in one transaction that checks
//! the rules, changes the rows and bumps the generation; a refused write changes nothing.
//! The generation is published to [`Store::subscribe`]rs after this process's commits and,
//! for commits of other processes (other nodes on PostgreSQL), by the change watcher:
//! `LISTEN/NOTIFY` as a hint plus a poll of the generation every [`POLL_INTERVAL`].

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use certgate_pki::{CertificateInfo, HeaderFormat};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::Connection;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::audit::{self, Audit, AuditRecord};
use crate::db::{args, Dialect, Pool, Tx};
use crate::error::StoreError;
use crate::model::{
    Api, ApiOverride, CertAuthMode, ClientCertAuthSettings, GatewayConfig, TrustedCertificate,
    ValidationFailure,
};
use crate::truststore::TrustStoreInfo;
use crate::validate::{self, MAX_ENTRIES};
use crate::views::{
    ApiBody, ApiCertAuthView, CertificateVersion, ClientCertAuthPatch, Component,
    EffectiveCertAuth, ExpiryStatus, GatewayView, NodeRecord, NodeState, NodeTrustStore, NodeView,
    TrustTableRow, Warning,
};

type Result<T> = std::result::Result<T, StoreError>;

/// How often the change watcher reads the generation (the fallback that alone meets the
/// 1 s propagation bound of SPEC §12).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// The longest wait between reconnection attempts while the store is unreachable (the
/// store's return is noticed within this, well inside the 2 s of SPEC §12).
pub const MAX_BACKOFF: Duration = Duration::from_millis(1000);
/// The `NOTIFY` channel of committed changes (payload: the new generation).
pub const NOTIFY_CHANNEL: &str = "certgate_config";
/// The advisory lock key taken around the PostgreSQL migrations, so nodes starting at
/// once migrate one after the other.
const MIGRATE_LOCK: i64 = 0x6365_7274_6761_7465; // "certgate"

fn migration(version: i64, name: &str, sql: &'static str) -> Migration {
    Migration::new(
        version,
        name.to_string().into(),
        MigrationType::Simple,
        sqlx::SqlSafeStr::into_sql_str(sql),
        false,
    )
}

/// The schema migrations of a dialect, embedded at build time from `migrations/<dialect>/`.
///
/// Built by hand rather than with `sqlx::migrate!`, which needs sqlx's `macros` feature
/// (and with it the offline query machinery) that nothing else in the workspace uses.
fn migrator(dialect: Dialect) -> Migrator {
    let migrations = match dialect {
        Dialect::Sqlite => vec![
            migration(
                1,
                "init",
                include_str!("../migrations/sqlite/0001_init.sql"),
            ),
            migration(
                2,
                "nodes",
                include_str!("../migrations/sqlite/0002_nodes.sql"),
            ),
            migration(
                3,
                "audit",
                include_str!("../migrations/sqlite/0003_audit.sql"),
            ),
            migration(
                4,
                "inventory",
                include_str!("../migrations/sqlite/0004_inventory.sql"),
            ),
        ],
        Dialect::Postgres => vec![
            migration(
                1,
                "init",
                include_str!("../migrations/postgres/0001_init.sql"),
            ),
            migration(
                2,
                "nodes",
                include_str!("../migrations/postgres/0002_nodes.sql"),
            ),
            migration(
                3,
                "audit",
                include_str!("../migrations/postgres/0003_audit.sql"),
            ),
            migration(
                4,
                "inventory",
                include_str!("../migrations/postgres/0004_inventory.sql"),
            ),
        ],
    };
    Migrator::with_migrations(migrations)
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    url: String,
    generation: watch::Sender<u64>,
    /// Whether the last contact with the database succeeded.
    reachable: watch::Sender<bool>,
    /// Whether the migrations have run (a store opened during an outage migrates on
    /// its first contact).
    migrated: AtomicBool,
    migrate_lock: tokio::sync::Mutex<()>,
    closed: AtomicBool,
}

/// The configuration store. Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// Set on the handle [`Store::rehearse`] passes to a write: its commit keeps the
    /// configuration the write would leave here and rolls back instead of committing.
    rehearsal: Option<Arc<std::sync::Mutex<Option<GatewayConfig>>>>,
    /// Who the writes of this handle are recorded as (SPEC §14); `None` is
    /// [`audit::SYSTEM_ACTOR`]. Set with [`Store::acting_as`].
    actor: Option<Arc<str>>,
}

/// The gateway settings other than `trusted_dns`, as the JSON column keeps them. Every
/// field has a default so rows written by older versions keep loading.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
struct StoredSettings {
    mode: CertAuthMode,
    required: bool,
    header_name: Option<String>,
    header_format: HeaderFormat,
    trusted_proxies: Vec<ipnet::IpNet>,
    validation_failure: ValidationFailure,
    crls: Vec<String>,
    forward_identity: bool,
    send_ca_names: bool,
    forward_formats: Vec<crate::model::ForwardFormat>,
    sni_host_check: bool,
    revocation_failure: crate::model::RevocationFailure,
    revocation: crate::model::RevocationSource,
    revocation_fetch_hosts: Vec<String>,
    revocation_fetch_timeout_ms: u64,
}

impl Default for StoredSettings {
    fn default() -> Self {
        Self::from(&ClientCertAuthSettings::default())
    }
}

impl From<&ClientCertAuthSettings> for StoredSettings {
    fn from(s: &ClientCertAuthSettings) -> Self {
        StoredSettings {
            mode: s.mode,
            required: s.required,
            header_name: s.header_name.clone(),
            header_format: s.header_format,
            trusted_proxies: s.trusted_proxies.clone(),
            validation_failure: s.validation_failure,
            crls: s.crls.clone(),
            forward_identity: s.forward_identity,
            send_ca_names: s.send_ca_names,
            forward_formats: s.forward_formats.clone(),
            sni_host_check: s.sni_host_check,
            revocation_failure: s.revocation_failure,
            revocation: s.revocation,
            revocation_fetch_hosts: s.revocation_fetch_hosts.clone(),
            revocation_fetch_timeout_ms: s.revocation_fetch_timeout_ms,
        }
    }
}

impl StoredSettings {
    fn into_settings(self, trusted_dns: Vec<String>) -> ClientCertAuthSettings {
        ClientCertAuthSettings {
            mode: self.mode,
            required: self.required,
            header_name: self.header_name,
            header_format: self.header_format,
            trusted_proxies: self.trusted_proxies,
            trusted_dns,
            validation_failure: self.validation_failure,
            crls: self.crls,
            forward_identity: self.forward_identity,
            send_ca_names: self.send_ca_names,
            forward_formats: self.forward_formats,
            sni_host_check: self.sni_host_check,
            revocation_failure: self.revocation_failure,
            revocation: self.revocation,
            revocation_fetch_hosts: self.revocation_fetch_hosts,
            revocation_fetch_timeout_ms: self.revocation_fetch_timeout_ms,
        }
    }
}

/// A `certificate_versions` row (also read by [`crate::migrate`]).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct VersionRow {
    pub(crate) component_id: i64,
    pub(crate) version: i64,
    pub(crate) pem: String,
    pub(crate) subject: String,
    pub(crate) issuer: String,
    pub(crate) serial: String,
    pub(crate) fingerprint: String,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) is_ca: bool,
    pub(crate) created_at: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct ComponentRow {
    id: i64,
    name: String,
    active: bool,
}

#[derive(Debug, sqlx::FromRow)]
struct ApiRow {
    id: i64,
    name: String,
    base_path: String,
    upstream: String,
    has_override: bool,
    override_required: Option<bool>,
    override_trusted_dns: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct TrustRow {
    component_id: i64,
    name: String,
    version: i64,
    latest_version: i64,
    pem: String,
    subject: String,
    fingerprint: String,
    not_before: i64,
    not_after: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct NodeRow {
    id: String,
    name: String,
    admin_address: String,
    proxy_address: String,
    version: String,
    started_at: i64,
    last_seen: i64,
    config_generation: i64,
    truststore_status: String,
    truststore_sha256: Option<String>,
    stopped: bool,
    db_now: i64,
}

impl NodeRow {
    fn into_view(self) -> Result<NodeView> {
        Ok(NodeView {
            state: NodeState::from_age(self.db_now - self.last_seen, self.stopped),
            id: self.id,
            name: self.name,
            admin_address: self.admin_address,
            proxy_address: self.proxy_address,
            version: self.version,
            started_at: ts(self.started_at)?,
            last_seen: ts(self.last_seen)?,
            config_generation: self.config_generation.max(0) as u64,
            truststore: NodeTrustStore {
                status: self.truststore_status,
                sha256: self.truststore_sha256,
            },
        })
    }
}

fn ts(secs: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {secs}: {e}")))
}

/// Whole seconds, so every timestamp renders without a fraction.
fn whole_seconds(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

impl VersionRow {
    fn view(self, with_pem: bool) -> Result<CertificateVersion> {
        Ok(CertificateVersion {
            version: self.version,
            subject: self.subject,
            issuer: self.issuer,
            serial: self.serial,
            fingerprint_sha256: self.fingerprint,
            not_before: ts(self.not_before)?,
            not_after: ts(self.not_after)?,
            is_ca: self.is_ca,
            created_at: ts(self.created_at)?,
            pem: with_pem.then_some(self.pem),
        })
    }
}

impl ApiRow {
    fn into_api(self) -> Result<Api> {
        let override_ = if self.has_override {
            let trusted_dns = match self.override_trusted_dns {
                Some(json) => Some(serde_json::from_str::<Vec<String>>(&json).map_err(|e| {
                    StoreError::Corrupt(format!("API {} trusted_dns: {e}", self.id))
                })?),
                None => None,
            };
            Some(ApiOverride {
                required: self.override_required,
                trusted_dns,
            })
        } else {
            None
        };
        Ok(Api {
            id: self.id,
            name: self.name,
            base_path: self.base_path,
            upstream: self.upstream,
            override_,
        })
    }
}

impl TrustRow {
    fn into_trusted(self) -> Result<TrustedCertificate> {
        Ok(TrustedCertificate {
            certificate_id: self.component_id,
            name: self.name,
            version: self.version,
            latest_version: self.latest_version,
            pem: self.pem,
            subject: self.subject,
            fingerprint_sha256: self.fingerprint,
            not_before: ts(self.not_before)?,
            not_after: ts(self.not_after)?,
        })
    }
}

/// The trust table joined with names and pinned versions (one macro so both queries agree).
macro_rules! trust_select {
    () => {
        "SELECT t.component_id, c.name, t.version, \
       (SELECT MAX(v2.version) FROM certificate_versions v2 WHERE v2.component_id = t.component_id) AS latest_version, \
       v.pem, v.subject, v.fingerprint, v.not_before, v.not_after \
     FROM trusted_certificates t \
     JOIN certificate_components c ON c.id = t.component_id \
     JOIN certificate_versions v ON v.component_id = t.component_id AND v.version = t.version"
    };
}

const TRUST_ROWS_SQL: &str = concat!(trust_select!(), " ORDER BY t.position");
const TRUST_ROW_SQL: &str = concat!(trust_select!(), " WHERE t.component_id = $1");

const VERSION_COLUMNS: &str = "component_id, version, pem, subject, issuer, serial, fingerprint, \
     not_before, not_after, is_ca, created_at";

const API_COLUMNS: &str =
    "id, name, base_path, upstream, has_override, override_required, override_trusted_dns";

/// Splits `sqlite://path?query` into the file path (`None` for in-memory databases).
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        None
    } else {
        Some(path)
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

async fn open_sqlite(url: &str) -> Result<sqlx::SqlitePool> {
    let file = sqlite_file(url);
    if let Some(parent) = file.and_then(|f| std::path::Path::new(f).parent()) {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    // An in-memory database exists once per connection: keep exactly one.
    let max = if file.is_some() { 4 } else { 1 };
    let file_backed = file.is_some();
    Ok(SqlitePoolOptions::new()
        .max_connections(max)
        .min_connections(if file.is_some() { 0 } else { 1 })
        .idle_timeout(if file.is_some() {
            Some(Duration::from_secs(600))
        } else {
            None
        })
        .max_lifetime(if file.is_some() {
            Some(Duration::from_secs(3600))
        } else {
            None
        })
        .after_release(move |conn, _| Box::pin(release_sqlite(conn, file_backed)))
        .connect_with(options)
        .await?)
}

/// Whether a connection handed back to the pool may be used again.
///
/// A transaction dropped without commit or rollback (an error path) queues its `ROLLBACK`
/// on the connection. When SQLite has already rolled the transaction back by itself (a
/// full disk: `SQLITE_FULL` during `COMMIT`), that `ROLLBACK` fails and sqlx keeps
/// counting an open transaction that SQLite no longer has; every later `BEGIN IMMEDIATE`
/// on the connection would fail. Such a connection is closed (a file database loses
/// nothing by that; an in-memory one would lose everything, so it is kept).
async fn release_sqlite(
    conn: &mut sqlx::SqliteConnection,
    file_backed: bool,
) -> std::result::Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !conn.is_in_transaction() || !file_backed {
        return Ok(true);
    }
    // Runs after the queued rollback: afterwards the count is what the rollback left.
    sqlx::query("SELECT 1").execute(&mut *conn).await?;
    if conn.is_in_transaction() {
        tracing::warn!(
            "closing a store connection whose transaction state is unknown after a failed write"
        );
        return Ok(false);
    }
    Ok(true)
}

/// Runs the dialect's migrations (PostgreSQL: on one connection holding the advisory
/// lock, because sqlx creates its bookkeeping table before taking its own lock).
/// `run_direct` on a connection rather than `run` on the pool: `run`'s `Acquire` bound
/// is not general enough for its future to be `Send` inside a spawned task.
fn run_migrations(
    pool: &Pool,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + '_>> {
    Box::pin(async move {
        let migrator = migrator(pool.dialect());
        match pool {
            Pool::Sqlite(p) => {
                let mut conn = p.acquire().await?;
                migrator.run_direct(None, &mut *conn, false).await?
            }
            Pool::Postgres(p) => {
                let mut conn = p.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(MIGRATE_LOCK)
                    .execute(&mut *conn)
                    .await?;
                let result = migrator.run_direct(None, &mut *conn, false).await;
                let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(MIGRATE_LOCK)
                    .execute(&mut *conn)
                    .await;
                result?;
                if unlock.is_err() {
                    // The lock goes with the session: do not return this one to the pool.
                    let _ = conn.detach().close().await;
                }
            }
        }
        Ok(())
    })
}

/// The change watcher (see [`Store::spawn_watcher`]). Holds only a weak reference, so
/// it ends with the last [`Store`] clone.
async fn watch_changes(weak: Weak<Inner>) {
    let mut listener: Option<PgListener> = None;
    let mut delay = POLL_INTERVAL;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let store = Store {
            inner,
            rehearsal: None,
            actor: None,
        };
        let polled = match store.ensure_migrated().await {
            Ok(()) => store.generation().await,
            Err(e) => Err(e),
        };
        match polled {
            Ok(g) => {
                if !store.reachable() {
                    tracing::info!(generation = g, "store reachable again");
                }
                store
                    .inner
                    .reachable
                    .send_if_modified(|r| !std::mem::replace(r, true));
                store.publish(g);
                delay = POLL_INTERVAL;
            }
            Err(e) => {
                if store.reachable() {
                    tracing::warn!(error = %e, "store unreachable; serving the last configuration, retrying");
                }
                store
                    .inner
                    .reachable
                    .send_if_modified(|r| std::mem::replace(r, false));
                listener = None;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
        if listener.is_none() && store.reachable() {
            if let Pool::Postgres(pool) = store.pool() {
                listener = connect_listener(pool).await;
            }
        }
        drop(store);
        match listener.as_mut() {
            Some(l) => {
                tokio::select! {
                    r = l.try_recv() => match r {
                        Ok(Some(_)) => {}
                        // The connection was lost (notifications meanwhile are lost too:
                        // the next poll catches them).
                        Ok(None) | Err(_) => listener = None,
                    },
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            None => tokio::time::sleep(delay).await,
        }
    }
}

async fn connect_listener(pool: &sqlx::PgPool) -> Option<PgListener> {
    let connect = async {
        let mut l = PgListener::connect_with(pool).await?;
        l.listen(NOTIFY_CHANNEL).await?;
        Ok::<_, sqlx::Error>(l)
    };
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(l)) => Some(l),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "LISTEN failed; polling only");
            None
        }
        Err(_) => None,
    }
}

impl Store {
    /// Opens the store at `url` and applies the migrations.
    ///
    /// - `sqlite://path` creates the file and its directory when missing and runs in WAL
    ///   mode with foreign keys on.
    /// - `postgres://…` (PostgreSQL 13+) connects and migrates under an advisory lock, so
    ///   several nodes starting at once are safe; an unreachable server is
    ///   [`StoreError::Unavailable`].
    pub async fn open(url: &str) -> Result<Store> {
        let store = Self::connect(url, false).await?;
        store.ensure_migrated().await?;
        store.spawn_watcher();
        Ok(store)
    }

    /// Like [`open`](Self::open) for PostgreSQL, but does not need the server now: the
    /// pool connects lazily and the migrations run on the first successful contact (the
    /// change watcher retries with backoff). Until then every operation is
    /// [`StoreError::Unavailable`]. For a node starting during a store outage.
    pub async fn open_lazy(url: &str) -> Result<Store> {
        if !is_postgres(url) {
            return Self::open(url).await;
        }
        let store = Self::connect(url, true).await?;
        let _ = store.ensure_migrated().await;
        store.spawn_watcher();
        Ok(store)
    }

    async fn connect(url: &str, lazy: bool) -> Result<Store> {
        let pool = if is_postgres(url) {
            let options = PgConnectOptions::from_str(url)?;
            let pool_options = PgPoolOptions::new()
                .max_connections(8)
                .min_connections(0)
                // A write during an outage answers 503 within this instead of hanging.
                .acquire_timeout(Duration::from_secs(2))
                .idle_timeout(Some(Duration::from_secs(300)));
            let pool = if lazy {
                pool_options.connect_lazy_with(options)
            } else {
                pool_options.connect_with(options).await?
            };
            Pool::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            Pool::Sqlite(open_sqlite(url).await?)
        } else {
            return Err(StoreError::Unsupported(format!(
                "{url:?}: expected sqlite://path or postgres://user:password@host:port/db"
            )));
        };
        let (generation, _) = watch::channel(0);
        let (reachable, _) = watch::channel(!lazy);
        Ok(Store {
            rehearsal: None,
            actor: None,
            inner: Arc::new(Inner {
                pool,
                url: url.to_string(),
                generation,
                reachable,
                migrated: AtomicBool::new(false),
                migrate_lock: tokio::sync::Mutex::new(()),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Runs the migrations once, then publishes the generation.
    async fn ensure_migrated(&self) -> Result<()> {
        if self.inner.migrated.load(Ordering::Acquire) {
            return Ok(());
        }
        let _guard = self.inner.migrate_lock.lock().await;
        if self.inner.migrated.load(Ordering::Acquire) {
            return Ok(());
        }
        run_migrations(self.pool()).await?;
        self.inner.migrated.store(true, Ordering::Release);
        let g = self.generation().await?;
        self.publish(g);
        self.inner.reachable.send_replace(true);
        Ok(())
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.pool().dialect() {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// The URL this store was opened with.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Closes the connections (the file can then be reopened or removed) and stops the
    /// change watcher.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.pool().close().await;
    }

    /// A receiver of the generation: updated after every commit of this process, and
    /// within [`POLL_INTERVAL`] (sooner through `NOTIFY`) of a commit of another.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// Whether the last contact with the database succeeded (SPEC §12 `/readyz`
    /// `"store"`).
    pub fn reachable(&self) -> bool {
        *self.inner.reachable.borrow()
    }

    /// A receiver of [`reachable`](Self::reachable).
    pub fn subscribe_reachable(&self) -> watch::Receiver<bool> {
        self.inner.reachable.subscribe()
    }

    fn publish(&self, g: u64) {
        self.inner.generation.send_if_modified(|cur| {
            if g > *cur {
                *cur = g;
                true
            } else {
                false
            }
        });
    }

    /// The current generation, read from the database.
    pub async fn generation(&self) -> Result<u64> {
        let g: i64 = self
            .pool()
            .scalar("SELECT value FROM config_generation WHERE id = 1", args![])
            .await
            .inspect_err(|e| self.note_error(e))?;
        Ok(g as u64)
    }

    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        self.check_migrated()?;
        let _: i64 = self
            .pool()
            .scalar("SELECT CAST(1 AS BIGINT)", args![])
            .await
            .inspect_err(|e| self.note_error(e))?;
        self.inner
            .reachable
            .send_if_modified(|r| !std::mem::replace(r, true));
        Ok(())
    }

    pub(crate) fn note_error(&self, e: &StoreError) {
        if matches!(e, StoreError::Unavailable(_)) {
            self.inner
                .reachable
                .send_if_modified(|r| std::mem::replace(r, false));
        }
    }

    pub(crate) fn check_migrated(&self) -> Result<()> {
        if self.inner.migrated.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "the store has not been reached since this node started".to_string(),
            ))
        }
    }

    /// Starts the change watcher: polls the generation every [`POLL_INTERVAL`] and, on
    /// PostgreSQL, wakes early on a `NOTIFY`. While the database is unreachable it backs
    /// off up to [`MAX_BACKOFF`]. Ends when the store is closed or dropped.
    fn spawn_watcher(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(watch_changes(weak));
    }

    async fn begin_write(&self) -> Result<Tx> {
        self.check_migrated()?;
        self.pool()
            .begin_write()
            .await
            .inspect_err(|e| self.note_error(e))
    }

    async fn begin_read(&self) -> Result<Tx> {
        self.check_migrated()?;
        self.pool()
            .begin()
            .await
            .inspect_err(|e| self.note_error(e))
    }

    pub(crate) async fn begin_read_tx(&self) -> Result<Tx> {
        self.begin_read().await
    }

    pub(crate) async fn begin_write_tx(&self) -> Result<Tx> {
        self.begin_write().await
    }

    pub(crate) async fn commit_tx(&self, tx: Tx, audit: Audit) -> Result<u64> {
        self.commit(tx, audit).await
    }

    pub(crate) async fn commit_all_tx(&self, tx: Tx, audits: Vec<Audit>) -> Result<u64> {
        self.commit_all(tx, audits).await
    }

    /// This store, its writes recorded in the audit log as `actor` (`token`,
    /// `console:<session id prefix>`, SPEC §14).
    pub fn acting_as(&self, actor: impl Into<String>) -> Store {
        Store {
            inner: Arc::clone(&self.inner),
            rehearsal: self.rehearsal.clone(),
            actor: Some(Arc::from(actor.into())),
        }
    }

    /// The audit log (SPEC §14): at most `limit` records with an id below `before`,
    /// newest first. `limit` over [`audit::MAX_LIMIT`] (or below 1) is 422
    /// `limit_exceeded`.
    pub async fn audit_log(&self, limit: i64, before: Option<i64>) -> Result<Vec<AuditRecord>> {
        if !(1..=audit::MAX_LIMIT).contains(&limit) {
            return Err(StoreError::invalid(
                "limit_exceeded",
                format!("limit must be between 1 and {}.", audit::MAX_LIMIT),
            ));
        }
        let mut tx = self.begin_read().await?;
        let records = audit::read(&mut tx, limit, before).await?;
        tx.commit().await?;
        Ok(records)
    }

    /// Runs `write` as a dry run (SPEC §13): the write gets a handle of this store whose
    /// commit reads the configuration the write would leave, inside the write's own
    /// transaction, and rolls back. So a dry run checks exactly the rules of the real write
    /// (a refused write answers the same error) and changes nothing, not the generation.
    /// A write that returns without committing (it changes nothing) leaves the current
    /// configuration. Answers the write's own result beside that configuration.
    pub async fn rehearse<T, F, Fut>(&self, write: F) -> Result<(T, GatewayConfig)>
    where
        F: FnOnce(Store) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let slot = Arc::new(std::sync::Mutex::new(None));
        let handle = Store {
            inner: Arc::clone(&self.inner),
            rehearsal: Some(Arc::clone(&slot)),
            actor: self.actor.clone(),
        };
        let out = write(handle).await?;
        let left = slot.lock().map(|mut s| s.take()).unwrap_or(None);
        match left {
            Some(config) => Ok((out, config)),
            None => Ok((out, self.load_config().await?)),
        }
    }

    /// Bumps the generation, tells the other nodes (`NOTIFY`, delivered at commit),
    /// commits and publishes the new generation. On a [`rehearse`](Self::rehearse)
    /// handle: keeps the configuration as the transaction sees it and rolls back.
    ///
    /// `audit` is the write's record (SPEC §14), inserted in the same transaction; a write
    /// whose record shows no change is rolled back instead (no generation, no record).
    async fn commit(&self, tx: Tx, audit: Audit) -> Result<u64> {
        self.commit_all(tx, vec![audit]).await
    }

    /// [`commit`](Self::commit) of a write made of several changes (`PUT /api/v1/config`):
    /// one record per change that changes something, all with the one new generation.
    /// When none changes anything, rolls back (no generation, no record).
    pub(crate) async fn commit_all(&self, mut tx: Tx, audits: Vec<Audit>) -> Result<u64> {
        let audits: Vec<Audit> = audits.into_iter().filter(|a| !a.is_noop()).collect();
        if let Some(slot) = &self.rehearsal {
            let config = read_config(&mut tx).await?;
            let generation = config.generation;
            tx.rollback().await?;
            if let Ok(mut s) = slot.lock() {
                *s = Some(config);
            }
            return Ok(generation);
        }
        if audits.is_empty() {
            let g: i64 = tx
                .scalar("SELECT value FROM config_generation WHERE id = 1", args![])
                .await?;
            tx.rollback().await?;
            return Ok(g as u64);
        }
        let g: i64 = tx
            .scalar(
                "UPDATE config_generation SET value = value + 1 WHERE id = 1 RETURNING value",
                args![],
            )
            .await?;
        let actor = self.actor.as_deref().unwrap_or(audit::SYSTEM_ACTOR);
        for audit in audits {
            audit::insert(&mut tx, actor, audit, g).await?;
        }
        if tx.dialect() == Dialect::Postgres {
            tx.exec(
                "SELECT pg_notify($1, $2)",
                args![NOTIFY_CHANNEL, g.to_string()],
            )
            .await?;
        }
        tx.commit().await.inspect_err(|e| self.note_error(e))?;
        let g = g as u64;
        self.publish(g);
        Ok(g)
    }

    // ---------------------------------------------------------------- reads

    /// Everything a node needs, read in one transaction.
    pub async fn load_config(&self) -> Result<GatewayConfig> {
        let mut tx = self.begin_read().await?;
        let config = read_config(&mut tx).await?;
        tx.commit().await?;
        Ok(config)
    }

    /// Whether SSL is enabled, and the client certificate auth settings.
    pub async fn settings(&self) -> Result<(bool, ClientCertAuthSettings)> {
        let mut conn = self.begin_read().await?;
        read_settings(&mut conn).await
    }

    /// Every component; with `lookup` only active ones whose latest version is unexpired
    /// at `now`. Versions carry no PEM.
    pub async fn list_components(
        &self,
        lookup: bool,
        now: OffsetDateTime,
    ) -> Result<Vec<Component>> {
        let mut tx = self.begin_read().await?;
        let comps: Vec<ComponentRow> = tx
            .all(
                "SELECT id, name, active FROM certificate_components ORDER BY id",
                args![],
            )
            .await?;
        let versions: Vec<VersionRow> = tx
            .all(
                &format!(
            "SELECT {VERSION_COLUMNS} FROM certificate_versions ORDER BY component_id, version"
        ),
                args![],
            )
            .await?;
        tx.commit().await?;
        let mut by_comp: HashMap<i64, Vec<VersionRow>> = HashMap::new();
        for v in versions {
            by_comp.entry(v.component_id).or_default().push(v);
        }
        let now = whole_seconds(now);
        let mut out = Vec::with_capacity(comps.len());
        for c in comps {
            let vs = by_comp.remove(&c.id).unwrap_or_default();
            if lookup && !(c.active && vs.last().is_some_and(|v| v.not_after > now)) {
                continue;
            }
            out.push(component_view(c, vs, false)?);
        }
        Ok(out)
    }

    /// One component with every version and its PEM.
    pub async fn get_component(&self, id: i64) -> Result<Component> {
        let mut conn = self.begin_read().await?;
        fetch_component(&mut conn, id, true).await
    }

    /// Creates a component from one PEM certificate (version 1).
    pub async fn create_component(
        &self,
        name: &str,
        pem: &str,
        now: OffsetDateTime,
    ) -> Result<Component> {
        let mut tx = self.begin_write().await?;
        let (id, audit) = create_component_in(&mut tx, name, pem, now).await?;
        let view = fetch_component(&mut tx, id, false).await?;
        self.commit(tx, audit).await?;
        Ok(view)
    }

    /// Adds version n+1 to a component.
    pub async fn add_version(
        &self,
        id: i64,
        pem: &str,
        now: OffsetDateTime,
    ) -> Result<CertificateVersion> {
        let mut tx = self.begin_write().await?;
        let (view, audit) = add_version_in(&mut tx, id, pem, now).await?;
        self.commit(tx, audit).await?;
        Ok(CertificateVersion { pem: None, ..view })
    }

    /// Deactivates a component; 409 while the trust table uses it.
    pub async fn deactivate_component(&self, id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let audit = set_component_active_in(&mut tx, id, false).await?;
        self.commit(tx, audit).await?;
        Ok(())
    }

    // ---------------------------------------------------------------- gateway

    /// Mirrors the listener's SSL setting from the node's config file. Writes (and bumps
    /// the generation) only when it changes.
    pub async fn set_ssl_enabled(&self, enabled: bool) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let current: bool = tx
            .scalar(
                "SELECT ssl_enabled FROM gateway_settings WHERE id = 1",
                args![],
            )
            .await?;
        if current == enabled {
            return Ok(());
        }
        tx.exec(
            "UPDATE gateway_settings SET ssl_enabled = $1 WHERE id = 1",
            args![enabled],
        )
        .await?;
        let audit = Audit::new(
            "gateway.ssl_enabled.set",
            "gateway:ssl_enabled",
            serde_json::json!({ "ssl_enabled": current }),
            serde_json::json!({ "ssl_enabled": enabled }),
        )?;
        self.commit(tx, audit).await?;
        Ok(())
    }

    /// Applies a partial update of the client certificate auth settings.
    pub async fn update_client_cert_auth(
        &self,
        patch: &ClientCertAuthPatch,
    ) -> Result<ClientCertAuthSettings> {
        let mut tx = self.begin_write().await?;
        let (s, audit) = update_client_cert_auth_in(&mut tx, patch).await?;
        self.commit(tx, audit).await?;
        Ok(s)
    }

    // ---------------------------------------------------------------- trust table

    /// The trust table as a node reads it (with each pinned version's PEM).
    pub async fn trusted_certificates(&self) -> Result<Vec<TrustedCertificate>> {
        let mut conn = self.begin_read().await?;
        read_trusted(&mut conn).await
    }

    /// The trust table rows at `now`.
    pub async fn trust_table(&self, now: OffsetDateTime) -> Result<Vec<TrustTableRow>> {
        let trusted = self.trusted_certificates().await?;
        trust_rows(&trusted, now)
    }

    /// Adds a component to the trust table, pinned at `version` (default: the latest).
    pub async fn add_trusted(
        &self,
        certificate_id: i64,
        version: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<TrustTableRow> {
        let mut tx = self.begin_write().await?;
        let (entry, audit) = add_trusted_in(&mut tx, certificate_id, version, now).await?;
        self.commit(tx, audit).await?;
        trust_row(&entry, now)
    }

    /// Pins the component's latest version. Already latest: answers the row unchanged.
    pub async fn upgrade_trusted(
        &self,
        certificate_id: i64,
        now: OffsetDateTime,
    ) -> Result<TrustTableRow> {
        let mut tx = self.begin_write().await?;
        let (entry, audit) = pin_trusted_in(&mut tx, certificate_id, None, now).await?;
        self.commit(tx, audit).await?;
        trust_row(&entry, now)
    }

    /// Removes a component from the trust table.
    pub async fn remove_trusted(&self, certificate_id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let audit = remove_trusted_in(&mut tx, certificate_id).await?;
        self.commit(tx, audit).await?;
        Ok(())
    }

    // ---------------------------------------------------------------- APIs

    /// Every API, by id.
    pub async fn list_apis(&self) -> Result<Vec<Api>> {
        let mut conn = self.begin_read().await?;
        read_apis(&mut conn).await
    }

    /// One API.
    pub async fn get_api(&self, id: i64) -> Result<Api> {
        let mut conn = self.begin_read().await?;
        api_row(&mut conn, id).await?.into_api()
    }

    /// Creates an API.
    pub async fn create_api(&self, body: &ApiBody) -> Result<Api> {
        let mut tx = self.begin_write().await?;
        let (api, audit) = create_api_in(&mut tx, body).await?;
        self.commit(tx, audit).await?;
        Ok(api)
    }

    /// Replaces an API's name, base path and upstream (its override is kept).
    pub async fn update_api(&self, id: i64, body: &ApiBody) -> Result<Api> {
        let mut tx = self.begin_write().await?;
        let (api, audit) = update_api_in(&mut tx, id, body).await?;
        self.commit(tx, audit).await?;
        Ok(api)
    }

    /// Deletes an API.
    pub async fn delete_api(&self, id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let audit = delete_api_in(&mut tx, id).await?;
        self.commit(tx, audit).await?;
        Ok(())
    }

    /// Sets (replaces) an API's override.
    pub async fn set_api_override(&self, id: i64, ov: &ApiOverride) -> Result<ApiOverride> {
        let mut tx = self.begin_write().await?;
        let audit = set_api_override_in(&mut tx, id, ov).await?;
        self.commit(tx, audit).await?;
        Ok(ov.clone())
    }

    /// Removes an API's override: it inherits everything again.
    pub async fn clear_api_override(&self, id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let audit = clear_api_override_in(&mut tx, id).await?;
        self.commit(tx, audit).await?;
        Ok(())
    }

    /// An API's override and the settings it runs with.
    pub async fn api_cert_auth(&self, id: i64) -> Result<ApiCertAuthView> {
        let mut tx = self.begin_read().await?;
        let api = api_row(&mut tx, id).await?.into_api()?;
        let (_, s) = read_settings(&mut tx).await?;
        tx.commit().await?;
        Ok(effective(&s, api.override_))
    }

    // ---------------------------------------------------------------- nodes

    /// Records this node at start (`started_at` = now by the database clock) or renews
    /// its record (`started_at` kept). Not a configuration change: no generation bump.
    pub async fn record_node(&self, rec: &NodeRecord, starting: bool) -> Result<()> {
        self.check_migrated()?;
        let now = self.pool().dialect().now_secs();
        let started = if starting {
            "excluded.started_at"
        } else {
            "nodes.started_at"
        };
        let sql = format!(
            "INSERT INTO nodes (id, name, admin_address, proxy_address, version, started_at, \
             last_seen, config_generation, truststore_status, truststore_sha256, stopped) \
             VALUES ($1, $2, $3, $4, $5, {now}, {now}, $6, $7, $8, FALSE) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             admin_address = excluded.admin_address, proxy_address = excluded.proxy_address, \
             version = excluded.version, started_at = {started}, last_seen = excluded.last_seen, \
             config_generation = excluded.config_generation, \
             truststore_status = excluded.truststore_status, \
             truststore_sha256 = excluded.truststore_sha256, stopped = FALSE"
        );
        self.pool()
            .exec(
                &sql,
                args![
                    &rec.id,
                    &rec.name,
                    &rec.admin_address,
                    &rec.proxy_address,
                    &rec.version,
                    rec.config_generation as i64,
                    &rec.truststore_status,
                    rec.truststore_sha256.clone()
                ],
            )
            .await
            .inspect_err(|e| self.note_error(e))?;
        Ok(())
    }

    /// Records that node `id` applied `generation` (so `?wait=cluster` sees it at once).
    pub async fn record_applied(&self, id: &str, generation: u64) -> Result<()> {
        self.check_migrated()?;
        let sql = format!(
            "UPDATE nodes SET config_generation = $1, last_seen = {} \
             WHERE id = $2 AND config_generation < $1",
            self.pool().dialect().now_secs()
        );
        self.pool()
            .exec(&sql, args![generation as i64, id])
            .await
            .inspect_err(|e| self.note_error(e))?;
        Ok(())
    }

    /// Marks node `id` down (it is stopping).
    pub async fn mark_node_down(&self, id: &str) -> Result<()> {
        self.check_migrated()?;
        self.pool()
            .exec("UPDATE nodes SET stopped = TRUE WHERE id = $1", args![id])
            .await?;
        Ok(())
    }

    /// Every recorded node with its state by the database clock, by name.
    pub async fn nodes(&self) -> Result<Vec<NodeView>> {
        self.check_migrated()?;
        let sql = format!(
            "SELECT id, name, admin_address, proxy_address, version, started_at, last_seen, \
             config_generation, truststore_status, truststore_sha256, stopped, {} AS db_now \
             FROM nodes ORDER BY name, id",
            self.pool().dialect().now_secs()
        );
        let rows: Vec<NodeRow> = self
            .pool()
            .all(&sql, args![])
            .await
            .inspect_err(|e| self.note_error(e))?;
        rows.into_iter().map(NodeRow::into_view).collect()
    }
}

/// The override and effective settings of an API under gateway settings `s`.
pub fn effective(s: &ClientCertAuthSettings, ov: Option<ApiOverride>) -> ApiCertAuthView {
    let e = s.effective(ov.as_ref());
    let effective = EffectiveCertAuth {
        mode: e.mode,
        required: e.required,
        trusted_dns: e.trusted_dns.to_vec(),
    };
    ApiCertAuthView {
        override_: ov,
        effective,
    }
}

/// The trust-table rows of `trusted` at `now`.
pub fn trust_rows(
    trusted: &[TrustedCertificate],
    now: OffsetDateTime,
) -> Result<Vec<TrustTableRow>> {
    trusted.iter().map(|t| trust_row(t, now)).collect()
}

/// One trust-table row at `now`; expiry from the pinned certificate (SPEC §8: within 90
/// days is `expiring_soon`).
pub fn trust_row(t: &TrustedCertificate, now: OffsetDateTime) -> Result<TrustTableRow> {
    let info = CertificateInfo::parse_pem_chain(&t.pem)
        .map_err(|e| StoreError::Corrupt(format!("certificate {}: {e}", t.certificate_id)))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            StoreError::Corrupt(format!("certificate {}: empty PEM", t.certificate_id))
        })?;
    Ok(TrustTableRow {
        certificate_id: t.certificate_id,
        name: t.name.clone(),
        version: t.version,
        latest_version: t.latest_version,
        update_available: t.latest_version > t.version,
        subject: t.subject.clone(),
        fingerprint_sha256: t.fingerprint_sha256.clone(),
        issued_on: t.not_before,
        expires_on: t.not_after,
        days_to_expiry: info.days_to_expiry(now),
        expiry_status: info.expiry_status(now).into(),
    })
}

/// A trust-table entry as its audit record shows it (the PEM is redacted at commit).
fn trusted_audit(t: &TrustedCertificate) -> Value {
    serde_json::json!({
        "certificate_id": t.certificate_id,
        "name": &t.name,
        "version": t.version,
        "fingerprint_sha256": &t.fingerprint_sha256,
        "pem": &t.pem,
    })
}

fn not_in_table(id: i64) -> StoreError {
    StoreError::not_found(format!(
        "Certificate {id} is not in the gateway trust table."
    ))
}

fn api_not_found(id: i64) -> StoreError {
    StoreError::not_found(format!("No API with id {id}."))
}

fn check_api_body(body: &ApiBody) -> Result<String> {
    let name = validate::name("API", &body.name)?;
    validate::base_path(&body.base_path)?;
    validate::upstream(&body.upstream)?;
    Ok(name)
}

async fn check_api_unique(
    conn: &mut Tx,
    id: Option<i64>,
    name: &str,
    base_path: &str,
) -> Result<()> {
    let other = id.unwrap_or(-1);
    let by_name: Option<i64> = conn
        .scalar_opt(
            "SELECT id FROM apis WHERE name = $1 AND id <> $2",
            args![name, other],
        )
        .await?;
    if by_name.is_some() {
        return Err(StoreError::invalid(
            "duplicate_name",
            format!("An API named {name:?} already exists."),
        ));
    }
    let by_path: Option<i64> = conn
        .scalar_opt(
            "SELECT id FROM apis WHERE base_path = $1 AND id <> $2",
            args![base_path, other],
        )
        .await?;
    if let Some(dup) = by_path {
        return Err(StoreError::invalid(
            "duplicate_base_path",
            format!("base_path {base_path:?} is already used by API {dup}."),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- writes in a transaction
//
// Each single write of the admin API is one of these on an open write transaction: it
// checks the write's rules, changes the rows and answers its audit record; the method of
// `Store` around it begins and commits. `PUT /api/v1/config` (config.rs) runs many of them
// in one transaction, so a document is judged by exactly the rules of the single endpoints.

/// Creates component `name` from one PEM certificate (version 1); answers its id.
pub(crate) async fn create_component_in(
    tx: &mut Tx,
    name: &str,
    pem: &str,
    now: OffsetDateTime,
) -> Result<(i64, Audit)> {
    let name = validate::name("certificate", name)?;
    let info = validate::certificate(pem)?;
    let exists: Option<i64> = tx
        .scalar_opt(
            "SELECT id FROM certificate_components WHERE name = $1",
            args![&name],
        )
        .await?;
    if exists.is_some() {
        return Err(StoreError::invalid(
            "duplicate_name",
            format!("A certificate named {name:?} already exists."),
        ));
    }
    let id: i64 = tx.scalar("INSERT INTO certificate_components (name, active, created_at) VALUES ($1, TRUE, $2) RETURNING id", args![&name, whole_seconds(now)]).await?;
    insert_version(tx, id, 1, pem, &info, now).await?;
    let after = fetch_component(tx, id, true).await?;
    let audit = Audit::new(
        "certificate.create",
        format!("certificate:{name}"),
        Value::Null,
        after,
    )?;
    Ok((id, audit))
}

/// Adds version n+1 to component `id`; answers the version (with its PEM).
pub(crate) async fn add_version_in(
    tx: &mut Tx,
    id: i64,
    pem: &str,
    now: OffsetDateTime,
) -> Result<(CertificateVersion, Audit)> {
    let comp = component_row(tx, id).await?;
    let info = validate::certificate(pem)?;
    let latest = latest_version(tx, id).await?;
    insert_version(tx, id, latest + 1, pem, &info, now).await?;
    let view = version_row(tx, id, latest + 1).await?.view(true)?;
    let audit = Audit::new(
        "certificate_version.add",
        format!("certificate_version:{}/{}", comp.name, latest + 1),
        Value::Null,
        &view,
    )?;
    Ok((view, audit))
}

/// Sets component `id` active or not; deactivating is 409 while the trust table uses it.
pub(crate) async fn set_component_active_in(tx: &mut Tx, id: i64, active: bool) -> Result<Audit> {
    let c = component_row(tx, id).await?;
    if !active {
        let trusted: Option<i64> = tx
            .scalar_opt(
                "SELECT component_id FROM trusted_certificates WHERE component_id = $1",
                args![id],
            )
            .await?;
        if trusted.is_some() {
            return Err(StoreError::conflict(
                "certificate_in_use",
                format!(
                    "Certificate {id} ({:?}) is in the gateway trust table; remove it from the trust table first.",
                    c.name
                ),
            ));
        }
    }
    tx.exec(
        "UPDATE certificate_components SET active = $1 WHERE id = $2",
        args![active, id],
    )
    .await?;
    Audit::new(
        if active {
            "certificate.activate"
        } else {
            "certificate.deactivate"
        },
        format!("certificate:{}", c.name),
        serde_json::json!({"id": c.id, "name": &c.name, "active": c.active}),
        serde_json::json!({"id": c.id, "name": &c.name, "active": active}),
    )
}

/// Applies a partial update of the client certificate auth settings; answers the new
/// settings.
pub(crate) async fn update_client_cert_auth_in(
    tx: &mut Tx,
    patch: &ClientCertAuthPatch,
) -> Result<(ClientCertAuthSettings, Audit)> {
    // Value checks first: they need no transaction.
    let proxies = validate::settings_patch(patch).map_err(|(_, e)| e)?;

    let (ssl, mut s) = read_settings(tx).await?;
    let before = s.clone();
    if let Some(m) = patch.mode {
        s.mode = m;
    }
    if let Some(r) = patch.required {
        s.required = r;
    }
    if let Some(h) = &patch.header_name {
        s.header_name = h.clone();
    }
    if let Some(f) = patch.header_format {
        s.header_format = f;
    }
    if let Some(p) = proxies {
        s.trusted_proxies = p;
    }
    if let Some(d) = &patch.trusted_dns {
        s.trusted_dns = d.clone();
    }
    if let Some(v) = patch.validation_failure {
        s.validation_failure = v;
    }
    if let Some(c) = &patch.crls {
        s.crls = c.clone();
    }
    if let Some(f) = patch.forward_identity {
        s.forward_identity = f;
    }
    if let Some(c) = patch.send_ca_names {
        s.send_ca_names = c;
    }
    if let Some(f) = &patch.forward_formats {
        // Order is not meaningful (SPEC §16): kept sorted, without duplicates.
        let mut f = f.clone();
        f.sort_unstable();
        f.dedup();
        s.forward_formats = f;
    }
    if let Some(c) = patch.sni_host_check {
        s.sni_host_check = c;
    }
    if let Some(r) = patch.revocation_failure {
        s.revocation_failure = r;
    }
    if let Some(r) = patch.revocation {
        s.revocation = r;
    }
    if let Some(h) = &patch.revocation_fetch_hosts {
        s.revocation_fetch_hosts = h.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
    }
    if let Some(t) = patch.revocation_fetch_timeout_ms {
        s.revocation_fetch_timeout_ms = t;
    }

    if patch.mode == Some(CertAuthMode::Mtls) && !ssl {
        return Err(StoreError::conflict(
            "ssl_disabled",
            "mtls mode needs SSL enabled on the listener ([listener] ssl = true).",
        ));
    }
    if s.mode == CertAuthMode::Header && s.header_name.is_none() {
        return Err(StoreError::invalid(
            "header_name_required",
            "header mode needs header_name: the request header that carries the client certificate.",
        ));
    }
    if s.send_ca_names {
        let trusted = read_trusted(tx).await?;
        let size = validate::ca_names_size(trusted.iter().map(|t| t.pem.as_str()))?;
        validate::ca_names_fit(size)?;
    }

    let json = serde_json::to_string(&StoredSettings::from(&s))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.exec(
        "UPDATE gateway_settings SET settings = $1 WHERE id = 1",
        args![json],
    )
    .await?;
    if let Some(dns) = &patch.trusted_dns {
        tx.exec("DELETE FROM gateway_trusted_dns", args![]).await?;
        for (i, p) in dns.iter().enumerate() {
            tx.exec(
                "INSERT INTO gateway_trusted_dns (position, pattern) VALUES ($1, $2)",
                args![i as i64, p],
            )
            .await?;
        }
    }
    let audit = Audit::new(
        "client_cert_auth.update",
        "client_cert_auth:gateway",
        &before,
        &s,
    )?;
    Ok((s, audit))
}

/// Adds component `certificate_id` to the trust table, pinned at `version` (default: the
/// latest); answers the new entry.
pub(crate) async fn add_trusted_in(
    tx: &mut Tx,
    certificate_id: i64,
    version: Option<i64>,
    now: OffsetDateTime,
) -> Result<(TrustedCertificate, Audit)> {
    let comp = component_row(tx, certificate_id).await?;
    let (ssl, settings) = read_settings(tx).await?;
    if !ssl {
        return Err(StoreError::conflict(
            "ssl_disabled",
            "Certificates can be added only when SSL is enabled.",
        ));
    }
    let version = match version {
        Some(v) => v,
        None => latest_version(tx, certificate_id).await?,
    };
    let row = version_row(tx, certificate_id, version).await?;
    if !comp.active {
        return Err(StoreError::invalid(
            "certificate_inactive",
            format!(
                "Certificate {certificate_id} ({:?}) is deleted (inactive) and cannot be trusted.",
                comp.name
            ),
        ));
    }
    if read_trusted_one(tx, certificate_id).await?.is_some() {
        return Err(StoreError::invalid(
            "already_trusted",
            format!(
                "Certificate {certificate_id} ({:?}) is already in the trust table.",
                comp.name
            ),
        ));
    }
    let count: i64 = tx
        .scalar("SELECT COUNT(*) FROM trusted_certificates", args![])
        .await?;
    if count >= MAX_ENTRIES as i64 {
        return Err(StoreError::invalid(
            "limit_exceeded",
            format!("The trust table already holds {MAX_ENTRIES} certificates, the maximum."),
        ));
    }
    if row.not_after <= whole_seconds(now) {
        return Err(StoreError::invalid(
            "certificate_expired",
            format!(
                "Version {version} of certificate {certificate_id} ({:?}) has expired and cannot be trusted.",
                comp.name
            ),
        ));
    }
    if settings.send_ca_names {
        let trusted = read_trusted(tx).await?;
        let size = validate::ca_names_size(
            trusted
                .iter()
                .map(|t| t.pem.as_str())
                .chain([row.pem.as_str()]),
        )?;
        validate::ca_names_fit(size)?;
    }
    tx.exec(
        "INSERT INTO trusted_certificates (component_id, version, position, added_at) \
         VALUES ($1, $2, (SELECT COALESCE(MAX(position), 0) + 1 FROM trusted_certificates), $3)",
        args![certificate_id, version, whole_seconds(now)],
    )
    .await?;
    let entry = read_trusted_one(tx, certificate_id)
        .await?
        .ok_or_else(|| not_in_table(certificate_id))?;
    let audit = Audit::new(
        "trusted_certificate.add",
        format!("trusted_certificate:{}", entry.name),
        Value::Null,
        trusted_audit(&entry),
    )?;
    Ok((entry, audit))
}

/// Removes component `certificate_id` from the trust table.
pub(crate) async fn remove_trusted_in(tx: &mut Tx, certificate_id: i64) -> Result<Audit> {
    let Some(entry) = read_trusted_one(tx, certificate_id).await? else {
        return Err(not_in_table(certificate_id));
    };
    tx.exec(
        "DELETE FROM trusted_certificates WHERE component_id = $1",
        args![certificate_id],
    )
    .await?;
    let audit = Audit::new(
        "trusted_certificate.remove",
        format!("trusted_certificate:{}", entry.name),
        trusted_audit(&entry),
        Value::Null,
    )?;
    Ok(audit)
}

/// Creates an API; answers it (with its id).
pub(crate) async fn create_api_in(tx: &mut Tx, body: &ApiBody) -> Result<(Api, Audit)> {
    let name = check_api_body(body)?;
    check_api_unique(tx, None, &name, &body.base_path).await?;
    let id: i64 = tx.scalar("INSERT INTO apis (name, base_path, upstream, has_override) VALUES ($1, $2, $3, FALSE) RETURNING id", args![&name, &body.base_path, &body.upstream]).await?;
    let api = api_row(tx, id).await?.into_api()?;
    let audit = Audit::new("api.create", format!("api:{}", api.name), Value::Null, &api)?;
    Ok((api, audit))
}

/// Replaces API `id`'s name, base path and upstream (its override is kept).
pub(crate) async fn update_api_in(tx: &mut Tx, id: i64, body: &ApiBody) -> Result<(Api, Audit)> {
    let name = check_api_body(body)?;
    let before = api_row(tx, id).await?.into_api()?;
    check_api_unique(tx, Some(id), &name, &body.base_path).await?;
    tx.exec(
        "UPDATE apis SET name = $1, base_path = $2, upstream = $3 WHERE id = $4",
        args![&name, &body.base_path, &body.upstream, id],
    )
    .await?;
    let api = api_row(tx, id).await?.into_api()?;
    let audit = Audit::new("api.update", format!("api:{}", before.name), &before, &api)?;
    Ok((api, audit))
}

/// Deletes API `id`.
pub(crate) async fn delete_api_in(tx: &mut Tx, id: i64) -> Result<Audit> {
    let before = api_row(tx, id).await?.into_api()?;
    tx.exec("DELETE FROM apis WHERE id = $1", args![id]).await?;
    let audit = Audit::new(
        "api.delete",
        format!("api:{}", before.name),
        &before,
        Value::Null,
    )?;
    Ok(audit)
}

/// Removes API `id`'s override: it inherits everything again.
pub(crate) async fn clear_api_override_in(tx: &mut Tx, id: i64) -> Result<Audit> {
    let before = api_row(tx, id).await?.into_api()?;
    tx.exec("UPDATE apis SET has_override = FALSE, override_required = NULL, override_trusted_dns = NULL WHERE id = $1", args![id]).await?;
    let audit = Audit::new(
        "api_client_cert_auth.clear",
        format!("client_cert_auth:{}", before.name),
        &before.override_,
        Value::Null,
    )?;
    Ok(audit)
}

/// Pins trust-table entry `certificate_id` at `version` (default: the component's latest).
/// Already pinned there: the audit record shows no change.
pub(crate) async fn pin_trusted_in(
    tx: &mut Tx,
    certificate_id: i64,
    version: Option<i64>,
    now: OffsetDateTime,
) -> Result<(TrustedCertificate, Audit)> {
    let Some(entry) = read_trusted_one(tx, certificate_id).await? else {
        return Err(not_in_table(certificate_id));
    };
    let before = trusted_audit(&entry);
    let target = version.unwrap_or(entry.latest_version);
    if entry.version == target {
        let audit = Audit::new(
            "trusted_certificate.upgrade",
            format!("trusted_certificate:{}", entry.name),
            &before,
            &before,
        )?;
        return Ok((entry, audit));
    }
    let row = version_row(tx, certificate_id, target).await?;
    if row.not_after <= whole_seconds(now) {
        let which = match version {
            None => format!("The latest version ({target})"),
            Some(_) => format!("Version {target}"),
        };
        return Err(StoreError::invalid(
            "certificate_expired",
            format!(
                "{which} of certificate {certificate_id} ({:?}) has expired; the trust table keeps version {}.",
                entry.name, entry.version
            ),
        ));
    }
    let (_, settings) = read_settings(tx).await?;
    if settings.send_ca_names {
        let trusted = read_trusted(tx).await?;
        let size = validate::ca_names_size(trusted.iter().map(|t| {
            if t.certificate_id == certificate_id {
                row.pem.as_str()
            } else {
                t.pem.as_str()
            }
        }))?;
        validate::ca_names_fit(size)?;
    }
    tx.exec(
        "UPDATE trusted_certificates SET version = $1 WHERE component_id = $2",
        args![target, certificate_id],
    )
    .await?;
    let entry = read_trusted_one(tx, certificate_id)
        .await?
        .ok_or_else(|| not_in_table(certificate_id))?;
    let audit = Audit::new(
        "trusted_certificate.upgrade",
        format!("trusted_certificate:{}", entry.name),
        before,
        trusted_audit(&entry),
    )?;
    Ok((entry, audit))
}

/// Sets (replaces) API `id`'s override.
pub(crate) async fn set_api_override_in(tx: &mut Tx, id: i64, ov: &ApiOverride) -> Result<Audit> {
    if let Some(dns) = &ov.trusted_dns {
        validate::patterns(dns)?;
    }
    let dns_json = ov
        .trusted_dns
        .as_ref()
        .map(|d| serde_json::to_string(d).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()?;
    let before = api_row(tx, id).await?.into_api()?;
    tx.exec("UPDATE apis SET has_override = TRUE, override_required = $1, override_trusted_dns = $2 WHERE id = $3", args![ov.required, dns_json, id]).await?;
    Audit::new(
        "api_client_cert_auth.set",
        format!("client_cert_auth:{}", before.name),
        &before.override_,
        Some(ov),
    )
}

/// The whole configuration as `tx` sees it.
async fn read_config(tx: &mut Tx) -> Result<GatewayConfig> {
    let generation: i64 = tx
        .scalar("SELECT value FROM config_generation WHERE id = 1", args![])
        .await?;
    let (ssl_enabled, client_cert_auth) = read_settings(tx).await?;
    let trusted_certificates = read_trusted(tx).await?;
    let apis = read_apis(tx).await?;
    Ok(GatewayConfig {
        generation: generation as u64,
        ssl_enabled,
        client_cert_auth,
        trusted_certificates,
        apis,
    })
}

pub(crate) async fn read_settings(conn: &mut Tx) -> Result<(bool, ClientCertAuthSettings)> {
    let (ssl, json): (bool, String) = conn
        .one(
            "SELECT ssl_enabled, settings FROM gateway_settings WHERE id = 1",
            args![],
        )
        .await?;
    let stored: StoredSettings = serde_json::from_str(&json)
        .map_err(|e| StoreError::Corrupt(format!("gateway settings: {e}")))?;
    let dns: Vec<String> = conn
        .scalars(
            "SELECT pattern FROM gateway_trusted_dns ORDER BY position",
            args![],
        )
        .await?;
    Ok((ssl, stored.into_settings(dns)))
}

pub(crate) async fn read_trusted(conn: &mut Tx) -> Result<Vec<TrustedCertificate>> {
    let rows: Vec<TrustRow> = conn.all(TRUST_ROWS_SQL, args![]).await?;
    rows.into_iter().map(TrustRow::into_trusted).collect()
}

async fn read_trusted_one(
    conn: &mut Tx,
    certificate_id: i64,
) -> Result<Option<TrustedCertificate>> {
    let row: Option<TrustRow> = conn.opt(TRUST_ROW_SQL, args![certificate_id]).await?;
    row.map(TrustRow::into_trusted).transpose()
}

pub(crate) async fn read_apis(conn: &mut Tx) -> Result<Vec<Api>> {
    let rows: Vec<ApiRow> = conn
        .all(
            &format!("SELECT {API_COLUMNS} FROM apis ORDER BY id"),
            args![],
        )
        .await?;
    rows.into_iter().map(ApiRow::into_api).collect()
}

async fn api_row(conn: &mut Tx, id: i64) -> Result<ApiRow> {
    conn.opt(
        &format!("SELECT {API_COLUMNS} FROM apis WHERE id = $1"),
        args![id],
    )
    .await?
    .ok_or_else(|| api_not_found(id))
}

async fn component_row(conn: &mut Tx, id: i64) -> Result<ComponentRow> {
    conn.opt(
        "SELECT id, name, active FROM certificate_components WHERE id = $1",
        args![id],
    )
    .await?
    .ok_or_else(|| StoreError::not_found(format!("No certificate with id {id}.")))
}

async fn latest_version(conn: &mut Tx, id: i64) -> Result<i64> {
    let v: Option<i64> = conn
        .scalar(
            "SELECT MAX(version) FROM certificate_versions WHERE component_id = $1",
            args![id],
        )
        .await?;
    v.ok_or_else(|| StoreError::Corrupt(format!("certificate {id} has no version")))
}

async fn version_row(conn: &mut Tx, id: i64, version: i64) -> Result<VersionRow> {
    conn.opt(&format!(
        "SELECT {VERSION_COLUMNS} FROM certificate_versions WHERE component_id = $1 AND version = $2"
    ), args![id, version]).await?
    .ok_or_else(|| StoreError::not_found(format!("Certificate {id} has no version {version}.")))
}

async fn insert_version(
    conn: &mut Tx,
    id: i64,
    version: i64,
    pem: &str,
    info: &CertificateInfo,
    now: OffsetDateTime,
) -> Result<()> {
    conn.exec(
        "INSERT INTO certificate_versions (component_id, version, pem, subject, issuer, serial, \
         fingerprint, not_before, not_after, is_ca, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        args![
            id,
            version,
            pem,
            info.subject.to_string(),
            info.issuer.to_string(),
            &info.serial_hex,
            &info.fingerprint_sha256,
            info.not_before.unix_timestamp(),
            info.not_after.unix_timestamp(),
            info.is_ca,
            whole_seconds(now)
        ],
    )
    .await?;
    Ok(())
}

async fn fetch_component(conn: &mut Tx, id: i64, with_pem: bool) -> Result<Component> {
    let c = component_row(conn, id).await?;
    let versions: Vec<VersionRow> = conn.all(&format!(
        "SELECT {VERSION_COLUMNS} FROM certificate_versions WHERE component_id = $1 ORDER BY version"
    ), args![id]).await?;
    component_view(c, versions, with_pem)
}

fn component_view(c: ComponentRow, versions: Vec<VersionRow>, with_pem: bool) -> Result<Component> {
    let latest_version = versions.last().map_or(0, |v| v.version);
    Ok(Component {
        id: c.id,
        name: c.name,
        active: c.active,
        latest_version,
        versions: versions
            .into_iter()
            .map(|v| v.view(with_pem))
            .collect::<Result<_>>()?,
    })
}

/// The warnings of `GET /api/v1/gateway` (SPEC §8) for `config` and its trust-table rows.
pub fn warnings(config: &GatewayConfig, rows: &[TrustTableRow]) -> Vec<Warning> {
    let s = &config.client_cert_auth;
    let mut out = Vec::new();
    let mut warn = |code: &str, message: String| {
        out.push(Warning {
            code: code.to_string(),
            message,
        })
    };
    if s.mode == CertAuthMode::Mtls && rows.is_empty() {
        warn(
            "mtls_without_trusted_certificates",
            "mtls mode is on but the trust table is empty: every client certificate is rejected."
                .to_string(),
        );
    }
    if s.mode == CertAuthMode::Header && s.trusted_proxies.is_empty() {
        warn(
            "header_source_unrestricted",
            "header mode is on with no trusted_proxies: a certificate header from any peer is honoured."
                .to_string(),
        );
    }
    if s.mode == CertAuthMode::Header && rows.is_empty() {
        warn(
            "header_mode_without_trust_table",
            "header mode is on with an empty trust table: header certificates are checked for their dates and DN only."
                .to_string(),
        );
    }
    for r in rows {
        match r.expiry_status {
            ExpiryStatus::ExpiringSoon => warn(
                "trusted_certificate_expiring",
                format!(
                    "Trusted certificate {} ({:?}) version {} expires in {} days.",
                    r.certificate_id, r.name, r.version, r.days_to_expiry
                ),
            ),
            ExpiryStatus::Expired => warn(
                "trusted_certificate_expired",
                format!(
                    "Trusted certificate {} ({:?}) version {} has expired and no longer validates anything.",
                    r.certificate_id, r.name, r.version
                ),
            ),
            ExpiryStatus::Ok => {}
        }
        if r.update_available {
            warn(
                "trusted_certificate_update_available",
                format!(
                    "Trusted certificate {} ({:?}) is pinned at version {}; version {} is available.",
                    r.certificate_id, r.name, r.version, r.latest_version
                ),
            );
        }
    }
    out
}

/// `GET /api/v1/gateway` from one consistent `config`, the node's trust store status and `now`.
pub fn gateway_view(
    config: &GatewayConfig,
    truststore: TrustStoreInfo,
    now: OffsetDateTime,
) -> Result<GatewayView> {
    let rows = trust_rows(&config.trusted_certificates, now)?;
    Ok(GatewayView {
        ssl_enabled: config.ssl_enabled,
        generation: config.generation,
        client_cert_auth: config.client_cert_auth.clone(),
        warnings: {
            let mut w = warnings(config, &rows);
            w.extend(crl_warnings(config, now));
            w
        },
        trusted_certificates: rows,
        truststore,
    })
}

/// `crl_expired` (SPEC §16) for every configured CRL whose nextUpdate is before `now`.
pub fn crl_warnings(config: &GatewayConfig, now: OffsetDateTime) -> Vec<Warning> {
    let now = now.unix_timestamp();
    let mut out = Vec::new();
    for (i, pem) in config.client_cert_auth.crls.iter().enumerate() {
        for (issuer, next) in certgate_pki::crl::next_updates_pem(pem) {
            if next <= now {
                let when = OffsetDateTime::from_unix_timestamp(next)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default();
                let policy = match config.client_cert_auth.revocation_failure {
                    crate::model::RevocationFailure::Strict => {
                        "certificates of this issuer are refused as revocation_unknown (revocation_failure = strict)"
                    }
                    crate::model::RevocationFailure::Soft => {
                        "certificates of this issuer that it does not list pass and are counted (revocation_failure = soft)"
                    }
                };
                out.push(Warning {
                    code: "crl_expired".to_string(),
                    message: format!(
                        "crls[{i}] (issuer {issuer}) passed its nextUpdate {when}: {policy} until a fresh CRL is configured."
                    ),
                });
            }
        }
    }
    out
}
