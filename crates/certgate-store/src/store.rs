//! [`Store`]: the configuration database. Every write runs in one transaction that checks
//! the rules, changes the rows and bumps the generation; a refused write changes nothing.
//! After a commit the new generation is sent to [`Store::subscribe`]rs.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use certgate_pki::{CertificateInfo, HeaderFormat};
use serde::{Deserialize, Serialize};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::model::{
    Api, ApiOverride, CertAuthMode, ClientCertAuthSettings, GatewayConfig, TrustedCertificate,
    ValidationFailure,
};
use crate::truststore::TrustStoreInfo;
use crate::validate::{self, MAX_ENTRIES};
use crate::views::{
    ApiBody, ApiCertAuthView, CertificateVersion, ClientCertAuthPatch, Component,
    EffectiveCertAuth, ExpiryStatus, GatewayView, TrustTableRow, Warning,
};

type Result<T> = std::result::Result<T, StoreError>;
type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

/// The SQLite schema migrations, embedded at build time from `migrations/sqlite/`.
///
/// Built by hand rather than with `sqlx::migrate!`, which needs sqlx's `macros` feature
/// (and with it the offline query machinery) that nothing else in the workspace uses.
fn sqlite_migrator() -> Migrator {
    Migrator::with_migrations(vec![Migration::new(
        1,
        "init".into(),
        MigrationType::Simple,
        sqlx::SqlSafeStr::into_sql_str(include_str!("../migrations/sqlite/0001_init.sql")),
        false,
    )])
}

/// The database behind a [`Store`]. PostgreSQL becomes a second variant: the SQL text of
/// the operations is portable (`$n` placeholders, `RETURNING`, BIGINT/TEXT/BOOLEAN), so it
/// needs its own migrations and pool, plus `LISTEN/NOTIFY` for the change feed.
#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    generation: watch::Sender<u64>,
}

/// The configuration store. Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
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
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct VersionRow {
    component_id: i64,
    version: i64,
    pem: String,
    subject: String,
    issuer: String,
    serial: String,
    fingerprint: String,
    not_before: i64,
    not_after: i64,
    is_ca: bool,
    created_at: i64,
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

impl Store {
    /// Opens the store at `url` and applies the migrations. `sqlite://path` creates the
    /// file and its directory when missing and runs in WAL mode with foreign keys on.
    /// `postgres://…` is refused with [`StoreError::Unsupported`] until that backend exists.
    pub async fn open(url: &str) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Err(StoreError::Unsupported(
                "the PostgreSQL backend is not implemented yet; use sqlite://".to_string(),
            ));
        }
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Unsupported(format!(
                "{url:?}: expected sqlite://path"
            )));
        }
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
        let pool = SqlitePoolOptions::new()
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
            .connect_with(options)
            .await?;
        sqlite_migrator().run(&pool).await?;
        let generation: i64 =
            sqlx::query_scalar("SELECT value FROM config_generation WHERE id = 1")
                .fetch_one(&pool)
                .await?;
        let (tx, _) = watch::channel(generation as u64);
        Ok(Store {
            inner: Arc::new(Inner {
                backend: Backend::Sqlite(pool),
                generation: tx,
            }),
        })
    }

    fn pool(&self) -> &SqlitePool {
        match &self.inner.backend {
            Backend::Sqlite(p) => p,
        }
    }

    /// Closes the connections (the file can then be reopened or removed).
    pub async fn close(&self) {
        self.pool().close().await;
    }

    /// A receiver of the generation, updated after every commit of this process.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// The current generation, read from the database.
    pub async fn generation(&self) -> Result<u64> {
        let g: i64 = sqlx::query_scalar("SELECT value FROM config_generation WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        Ok(g as u64)
    }

    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        let _: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(self.pool())
            .await?;
        Ok(())
    }

    async fn begin_write(&self) -> Result<Tx> {
        // IMMEDIATE takes SQLite's write lock up front, so two writers queue instead of
        // failing to upgrade a read lock.
        Ok(self.pool().begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Runs a one-row `DELETE … WHERE … = $1` in its own write transaction; no row
    /// deleted is `missing(id)` and changes nothing.
    async fn delete_one(
        &self,
        sql: &'static str,
        id: i64,
        missing: fn(i64) -> StoreError,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(missing(id));
        }
        self.commit(tx).await?;
        Ok(())
    }

    async fn begin_read(&self) -> Result<Tx> {
        Ok(self.pool().begin().await?)
    }

    /// Bumps the generation, commits and notifies subscribers.
    async fn commit(&self, mut tx: Tx) -> Result<u64> {
        let g: i64 = sqlx::query_scalar(
            "UPDATE config_generation SET value = value + 1 WHERE id = 1 RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let g = g as u64;
        self.inner.generation.send_if_modified(|cur| {
            if g > *cur {
                *cur = g;
                true
            } else {
                false
            }
        });
        Ok(g)
    }

    // ---------------------------------------------------------------- reads

    /// Everything a node needs, read in one transaction.
    pub async fn load_config(&self) -> Result<GatewayConfig> {
        let mut tx = self.begin_read().await?;
        let generation: i64 =
            sqlx::query_scalar("SELECT value FROM config_generation WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let (ssl_enabled, client_cert_auth) = read_settings(&mut tx).await?;
        let trusted_certificates = read_trusted(&mut tx).await?;
        let apis = read_apis(&mut tx).await?;
        tx.commit().await?;
        Ok(GatewayConfig {
            generation: generation as u64,
            ssl_enabled,
            client_cert_auth,
            trusted_certificates,
            apis,
        })
    }

    /// Whether SSL is enabled, and the client certificate auth settings.
    pub async fn settings(&self) -> Result<(bool, ClientCertAuthSettings)> {
        let mut conn = self.pool().acquire().await?;
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
        let comps: Vec<ComponentRow> =
            sqlx::query_as("SELECT id, name, active FROM certificate_components ORDER BY id")
                .fetch_all(&mut *tx)
                .await?;
        let versions: Vec<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM certificate_versions ORDER BY component_id, version"
        )))
        .fetch_all(&mut *tx)
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
        let mut conn = self.pool().acquire().await?;
        fetch_component(&mut conn, id, true).await
    }

    /// Creates a component from one PEM certificate (version 1).
    pub async fn create_component(
        &self,
        name: &str,
        pem: &str,
        now: OffsetDateTime,
    ) -> Result<Component> {
        let name = validate::name("certificate", name)?;
        let info = validate::certificate(pem)?;
        let mut tx = self.begin_write().await?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM certificate_components WHERE name = $1")
                .bind(&name)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            return Err(StoreError::invalid(
                "duplicate_name",
                format!("A certificate named {name:?} already exists."),
            ));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO certificate_components (name, active, created_at) VALUES ($1, TRUE, $2) RETURNING id",
        )
        .bind(&name)
        .bind(whole_seconds(now))
        .fetch_one(&mut *tx)
        .await?;
        insert_version(&mut tx, id, 1, pem, &info, now).await?;
        let view = fetch_component(&mut tx, id, false).await?;
        self.commit(tx).await?;
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
        component_row(&mut tx, id).await?;
        let info = validate::certificate(pem)?;
        let latest = latest_version(&mut tx, id).await?;
        insert_version(&mut tx, id, latest + 1, pem, &info, now).await?;
        let row: VersionRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM certificate_versions WHERE component_id = $1 AND version = $2"
        )))
        .bind(id)
        .bind(latest + 1)
        .fetch_one(&mut *tx)
        .await?;
        self.commit(tx).await?;
        row.view(false)
    }

    /// Deactivates a component; 409 while the trust table uses it.
    pub async fn deactivate_component(&self, id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let c = component_row(&mut tx, id).await?;
        let trusted: Option<i64> = sqlx::query_scalar(
            "SELECT component_id FROM trusted_certificates WHERE component_id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
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
        sqlx::query("UPDATE certificate_components SET active = FALSE WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await?;
        Ok(())
    }

    // ---------------------------------------------------------------- gateway

    /// Mirrors the listener's SSL setting from the node's config file. Writes (and bumps
    /// the generation) only when it changes.
    pub async fn set_ssl_enabled(&self, enabled: bool) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let current: bool =
            sqlx::query_scalar("SELECT ssl_enabled FROM gateway_settings WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        if current == enabled {
            return Ok(());
        }
        sqlx::query("UPDATE gateway_settings SET ssl_enabled = $1 WHERE id = 1")
            .bind(enabled)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await?;
        Ok(())
    }

    /// Applies a partial update of the client certificate auth settings.
    pub async fn update_client_cert_auth(
        &self,
        patch: &ClientCertAuthPatch,
    ) -> Result<ClientCertAuthSettings> {
        // Value checks first: they need no transaction.
        if let Some(dns) = &patch.trusted_dns {
            validate::patterns(dns)?;
        }
        let proxies = patch
            .trusted_proxies
            .as_deref()
            .map(validate::cidrs)
            .transpose()?;
        if let Some(crls) = &patch.crls {
            validate::crls(crls)?;
        }
        if let Some(Some(h)) = &patch.header_name {
            validate::header_name(h)?;
        }

        let mut tx = self.begin_write().await?;
        let (ssl, mut s) = read_settings(&mut tx).await?;
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
            let trusted = read_trusted(&mut tx).await?;
            let size = validate::ca_names_size(trusted.iter().map(|t| t.pem.as_str()))?;
            validate::ca_names_fit(size)?;
        }

        let json = serde_json::to_string(&StoredSettings::from(&s))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query("UPDATE gateway_settings SET settings = $1 WHERE id = 1")
            .bind(json)
            .execute(&mut *tx)
            .await?;
        if let Some(dns) = &patch.trusted_dns {
            sqlx::query("DELETE FROM gateway_trusted_dns")
                .execute(&mut *tx)
                .await?;
            for (i, p) in dns.iter().enumerate() {
                sqlx::query("INSERT INTO gateway_trusted_dns (position, pattern) VALUES ($1, $2)")
                    .bind(i as i64)
                    .bind(p)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        self.commit(tx).await?;
        Ok(s)
    }

    // ---------------------------------------------------------------- trust table

    /// The trust table as a node reads it (with each pinned version's PEM).
    pub async fn trusted_certificates(&self) -> Result<Vec<TrustedCertificate>> {
        let mut conn = self.pool().acquire().await?;
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
        let comp = component_row(&mut tx, certificate_id).await?;
        let (ssl, settings) = read_settings(&mut tx).await?;
        if !ssl {
            return Err(StoreError::conflict(
                "ssl_disabled",
                "Certificates can be added only when SSL is enabled.",
            ));
        }
        let version = match version {
            Some(v) => v,
            None => latest_version(&mut tx, certificate_id).await?,
        };
        let row = version_row(&mut tx, certificate_id, version).await?;
        if !comp.active {
            return Err(StoreError::invalid(
                "certificate_inactive",
                format!("Certificate {certificate_id} ({:?}) is deleted (inactive) and cannot be trusted.", comp.name),
            ));
        }
        if read_trusted_one(&mut tx, certificate_id).await?.is_some() {
            return Err(StoreError::invalid(
                "already_trusted",
                format!(
                    "Certificate {certificate_id} ({:?}) is already in the trust table.",
                    comp.name
                ),
            ));
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trusted_certificates")
            .fetch_one(&mut *tx)
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
            let trusted = read_trusted(&mut tx).await?;
            let size = validate::ca_names_size(
                trusted
                    .iter()
                    .map(|t| t.pem.as_str())
                    .chain([row.pem.as_str()]),
            )?;
            validate::ca_names_fit(size)?;
        }
        sqlx::query(
            "INSERT INTO trusted_certificates (component_id, version, position, added_at) \
             VALUES ($1, $2, (SELECT COALESCE(MAX(position), 0) + 1 FROM trusted_certificates), $3)",
        )
        .bind(certificate_id)
        .bind(version)
        .bind(whole_seconds(now))
        .execute(&mut *tx)
        .await?;
        let entry = read_trusted_one(&mut tx, certificate_id)
            .await?
            .ok_or_else(|| not_in_table(certificate_id))?;
        self.commit(tx).await?;
        trust_row(&entry, now)
    }

    /// Pins the component's latest version. Already latest: answers the row unchanged.
    pub async fn upgrade_trusted(
        &self,
        certificate_id: i64,
        now: OffsetDateTime,
    ) -> Result<TrustTableRow> {
        let mut tx = self.begin_write().await?;
        let Some(entry) = read_trusted_one(&mut tx, certificate_id).await? else {
            return Err(not_in_table(certificate_id));
        };
        if entry.version == entry.latest_version {
            tx.rollback().await?;
            return trust_row(&entry, now);
        }
        let latest = version_row(&mut tx, certificate_id, entry.latest_version).await?;
        if latest.not_after <= whole_seconds(now) {
            return Err(StoreError::invalid(
                "certificate_expired",
                format!(
                    "The latest version ({}) of certificate {certificate_id} ({:?}) has expired; the trust table keeps version {}.",
                    entry.latest_version, entry.name, entry.version
                ),
            ));
        }
        let (_, settings) = read_settings(&mut tx).await?;
        if settings.send_ca_names {
            let trusted = read_trusted(&mut tx).await?;
            let size = validate::ca_names_size(trusted.iter().map(|t| {
                if t.certificate_id == certificate_id {
                    latest.pem.as_str()
                } else {
                    t.pem.as_str()
                }
            }))?;
            validate::ca_names_fit(size)?;
        }
        sqlx::query("UPDATE trusted_certificates SET version = $1 WHERE component_id = $2")
            .bind(entry.latest_version)
            .bind(certificate_id)
            .execute(&mut *tx)
            .await?;
        let entry = read_trusted_one(&mut tx, certificate_id)
            .await?
            .ok_or_else(|| not_in_table(certificate_id))?;
        self.commit(tx).await?;
        trust_row(&entry, now)
    }

    /// Removes a component from the trust table.
    pub async fn remove_trusted(&self, certificate_id: i64) -> Result<()> {
        self.delete_one(
            "DELETE FROM trusted_certificates WHERE component_id = $1",
            certificate_id,
            not_in_table,
        )
        .await
    }

    // ---------------------------------------------------------------- APIs

    /// Every API, by id.
    pub async fn list_apis(&self) -> Result<Vec<Api>> {
        let mut conn = self.pool().acquire().await?;
        read_apis(&mut conn).await
    }

    /// One API.
    pub async fn get_api(&self, id: i64) -> Result<Api> {
        let mut conn = self.pool().acquire().await?;
        api_row(&mut conn, id).await?.into_api()
    }

    /// Creates an API.
    pub async fn create_api(&self, body: &ApiBody) -> Result<Api> {
        let name = check_api_body(body)?;
        let mut tx = self.begin_write().await?;
        check_api_unique(&mut tx, None, &name, &body.base_path).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO apis (name, base_path, upstream, has_override) VALUES ($1, $2, $3, FALSE) RETURNING id",
        )
        .bind(&name)
        .bind(&body.base_path)
        .bind(&body.upstream)
        .fetch_one(&mut *tx)
        .await?;
        let api = api_row(&mut tx, id).await?.into_api()?;
        self.commit(tx).await?;
        Ok(api)
    }

    /// Replaces an API's name, base path and upstream (its override is kept).
    pub async fn update_api(&self, id: i64, body: &ApiBody) -> Result<Api> {
        let name = check_api_body(body)?;
        let mut tx = self.begin_write().await?;
        api_row(&mut tx, id).await?;
        check_api_unique(&mut tx, Some(id), &name, &body.base_path).await?;
        sqlx::query("UPDATE apis SET name = $1, base_path = $2, upstream = $3 WHERE id = $4")
            .bind(&name)
            .bind(&body.base_path)
            .bind(&body.upstream)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let api = api_row(&mut tx, id).await?.into_api()?;
        self.commit(tx).await?;
        Ok(api)
    }

    /// Deletes an API.
    pub async fn delete_api(&self, id: i64) -> Result<()> {
        self.delete_one("DELETE FROM apis WHERE id = $1", id, api_not_found)
            .await
    }

    /// Sets (replaces) an API's override.
    pub async fn set_api_override(&self, id: i64, ov: &ApiOverride) -> Result<ApiOverride> {
        if let Some(dns) = &ov.trusted_dns {
            validate::patterns(dns)?;
        }
        let dns_json = ov
            .trusted_dns
            .as_ref()
            .map(|d| serde_json::to_string(d).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?;
        let mut tx = self.begin_write().await?;
        api_row(&mut tx, id).await?;
        sqlx::query(
            "UPDATE apis SET has_override = TRUE, override_required = $1, override_trusted_dns = $2 WHERE id = $3",
        )
        .bind(ov.required)
        .bind(dns_json)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(ov.clone())
    }

    /// Removes an API's override: it inherits everything again.
    pub async fn clear_api_override(&self, id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        api_row(&mut tx, id).await?;
        sqlx::query(
            "UPDATE apis SET has_override = FALSE, override_required = NULL, override_trusted_dns = NULL WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
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
}

/// The override and effective settings of an API under gateway settings `s`.
pub fn effective(s: &ClientCertAuthSettings, ov: Option<ApiOverride>) -> ApiCertAuthView {
    let required = ov.as_ref().and_then(|o| o.required).unwrap_or(s.required);
    let trusted_dns = ov
        .as_ref()
        .and_then(|o| o.trusted_dns.clone())
        .unwrap_or_else(|| s.trusted_dns.clone());
    ApiCertAuthView {
        override_: ov,
        effective: EffectiveCertAuth {
            mode: s.mode,
            required,
            trusted_dns,
        },
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
    conn: &mut SqliteConnection,
    id: Option<i64>,
    name: &str,
    base_path: &str,
) -> Result<()> {
    let other = id.unwrap_or(-1);
    let by_name: Option<i64> =
        sqlx::query_scalar("SELECT id FROM apis WHERE name = $1 AND id <> $2")
            .bind(name)
            .bind(other)
            .fetch_optional(&mut *conn)
            .await?;
    if by_name.is_some() {
        return Err(StoreError::invalid(
            "duplicate_name",
            format!("An API named {name:?} already exists."),
        ));
    }
    let by_path: Option<i64> =
        sqlx::query_scalar("SELECT id FROM apis WHERE base_path = $1 AND id <> $2")
            .bind(base_path)
            .bind(other)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(dup) = by_path {
        return Err(StoreError::invalid(
            "duplicate_base_path",
            format!("base_path {base_path:?} is already used by API {dup}."),
        ));
    }
    Ok(())
}

async fn read_settings(conn: &mut SqliteConnection) -> Result<(bool, ClientCertAuthSettings)> {
    let (ssl, json): (bool, String) =
        sqlx::query_as("SELECT ssl_enabled, settings FROM gateway_settings WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
    let stored: StoredSettings = serde_json::from_str(&json)
        .map_err(|e| StoreError::Corrupt(format!("gateway settings: {e}")))?;
    let dns: Vec<String> =
        sqlx::query_scalar("SELECT pattern FROM gateway_trusted_dns ORDER BY position")
            .fetch_all(&mut *conn)
            .await?;
    Ok((ssl, stored.into_settings(dns)))
}

async fn read_trusted(conn: &mut SqliteConnection) -> Result<Vec<TrustedCertificate>> {
    let rows: Vec<TrustRow> = sqlx::query_as(TRUST_ROWS_SQL).fetch_all(&mut *conn).await?;
    rows.into_iter().map(TrustRow::into_trusted).collect()
}

async fn read_trusted_one(
    conn: &mut SqliteConnection,
    certificate_id: i64,
) -> Result<Option<TrustedCertificate>> {
    let row: Option<TrustRow> = sqlx::query_as(TRUST_ROW_SQL)
        .bind(certificate_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(TrustRow::into_trusted).transpose()
}

async fn read_apis(conn: &mut SqliteConnection) -> Result<Vec<Api>> {
    let rows: Vec<ApiRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {API_COLUMNS} FROM apis ORDER BY id"
    )))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(ApiRow::into_api).collect()
}

async fn api_row(conn: &mut SqliteConnection, id: i64) -> Result<ApiRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {API_COLUMNS} FROM apis WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| api_not_found(id))
}

async fn component_row(conn: &mut SqliteConnection, id: i64) -> Result<ComponentRow> {
    sqlx::query_as("SELECT id, name, active FROM certificate_components WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("No certificate with id {id}.")))
}

async fn latest_version(conn: &mut SqliteConnection, id: i64) -> Result<i64> {
    let v: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM certificate_versions WHERE component_id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    v.ok_or_else(|| StoreError::Corrupt(format!("certificate {id} has no version")))
}

async fn version_row(conn: &mut SqliteConnection, id: i64, version: i64) -> Result<VersionRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM certificate_versions WHERE component_id = $1 AND version = $2"
    )))
    .bind(id)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found(format!("Certificate {id} has no version {version}.")))
}

async fn insert_version(
    conn: &mut SqliteConnection,
    id: i64,
    version: i64,
    pem: &str,
    info: &CertificateInfo,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO certificate_versions (component_id, version, pem, subject, issuer, serial, \
         fingerprint, not_before, not_after, is_ca, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(version)
    .bind(pem)
    .bind(info.subject.to_string())
    .bind(info.issuer.to_string())
    .bind(&info.serial_hex)
    .bind(&info.fingerprint_sha256)
    .bind(info.not_before.unix_timestamp())
    .bind(info.not_after.unix_timestamp())
    .bind(info.is_ca)
    .bind(whole_seconds(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn fetch_component(
    conn: &mut SqliteConnection,
    id: i64,
    with_pem: bool,
) -> Result<Component> {
    let c = component_row(conn, id).await?;
    let versions: Vec<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM certificate_versions WHERE component_id = $1 ORDER BY version"
    )))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
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
