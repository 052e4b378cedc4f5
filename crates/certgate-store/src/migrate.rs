//! `certgate store migrate` (SPEC §12): copies a whole configuration from one store into
//! an empty one, across backends, in one transaction on the target. Ids, version
//! numbers, order and timestamps are kept as they are, so the copy answers every request
//! exactly as the original.

use crate::store::VersionRow;
use serde::{Deserialize, Serialize};

use crate::db::{args, Dialect, Tx};
use crate::error::StoreError;
use crate::Store;

type Result<T> = std::result::Result<T, StoreError>;

/// What was copied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateReport {
    /// Certificate components.
    pub components: usize,
    /// Certificate versions.
    pub versions: usize,
    /// Trust-table entries.
    pub trusted_certificates: usize,
    /// Gateway DN patterns.
    pub trusted_dns: usize,
    /// APIs (with their overrides).
    pub apis: usize,
    /// The configuration generation, carried over.
    pub generation: u64,
}

#[derive(Debug, sqlx::FromRow)]
struct ComponentRow {
    id: i64,
    name: String,
    active: bool,
    created_at: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct TrustRow {
    component_id: i64,
    version: i64,
    position: i64,
    added_at: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct DnRow {
    position: i64,
    pattern: String,
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

/// Whether the store holds no configuration: generation 1 (never written) or no rows
/// in any configuration table with default settings.
async fn is_empty(tx: &mut Tx) -> Result<bool> {
    let rows: i64 = tx
        .scalar(
            "SELECT (SELECT COUNT(*) FROM certificate_components) \
             + (SELECT COUNT(*) FROM apis) \
             + (SELECT COUNT(*) FROM gateway_trusted_dns) \
             + (SELECT COUNT(*) FROM trusted_certificates)",
            args![],
        )
        .await?;
    let (ssl, settings): (bool, String) = tx
        .one(
            "SELECT ssl_enabled, settings FROM gateway_settings WHERE id = 1",
            args![],
        )
        .await?;
    Ok(rows == 0 && !ssl && settings == "{}")
}

impl Store {
    /// Copies everything of `self` into `target`, which must be empty (else 409
    /// `target_not_empty` and nothing changes).
    pub async fn migrate_into(&self, target: &Store) -> Result<MigrateReport> {
        let mut src = self.begin_read_tx().await?;
        let generation: i64 = src
            .scalar("SELECT value FROM config_generation WHERE id = 1", args![])
            .await?;
        let (ssl, settings): (bool, String) = src
            .one(
                "SELECT ssl_enabled, settings FROM gateway_settings WHERE id = 1",
                args![],
            )
            .await?;
        let comps: Vec<ComponentRow> = src
            .all(
                "SELECT id, name, active, created_at FROM certificate_components ORDER BY id",
                args![],
            )
            .await?;
        let versions: Vec<VersionRow> = src
            .all(
                "SELECT component_id, version, pem, subject, issuer, serial, fingerprint, \
                 not_before, not_after, is_ca, created_at FROM certificate_versions \
                 ORDER BY component_id, version",
                args![],
            )
            .await?;
        let trust: Vec<TrustRow> = src
            .all(
                "SELECT component_id, version, position, added_at FROM trusted_certificates \
                 ORDER BY position",
                args![],
            )
            .await?;
        let dns: Vec<DnRow> = src
            .all(
                "SELECT position, pattern FROM gateway_trusted_dns ORDER BY position",
                args![],
            )
            .await?;
        let apis: Vec<ApiRow> = src
            .all(
                "SELECT id, name, base_path, upstream, has_override, override_required, \
                 override_trusted_dns FROM apis ORDER BY id",
                args![],
            )
            .await?;
        src.rollback().await?;

        let mut tx = target.begin_write_tx().await?;
        if !is_empty(&mut tx).await? {
            return Err(StoreError::conflict(
                "target_not_empty",
                "The target store already holds a configuration; migrate only into an empty store.",
            ));
        }
        tx.exec(
            "UPDATE gateway_settings SET ssl_enabled = $1, settings = $2 WHERE id = 1",
            args![ssl, settings],
        )
        .await?;
        for c in &comps {
            tx.exec(
                "INSERT INTO certificate_components (id, name, active, created_at) VALUES ($1, $2, $3, $4)",
                args![c.id, &c.name, c.active, c.created_at],
            )
            .await?;
        }
        for v in &versions {
            tx.exec(
                "INSERT INTO certificate_versions (component_id, version, pem, subject, issuer, \
                 serial, fingerprint, not_before, not_after, is_ca, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                args![
                    v.component_id,
                    v.version,
                    &v.pem,
                    &v.subject,
                    &v.issuer,
                    &v.serial,
                    &v.fingerprint,
                    v.not_before,
                    v.not_after,
                    v.is_ca,
                    v.created_at
                ],
            )
            .await?;
        }
        for t in &trust {
            tx.exec(
                "INSERT INTO trusted_certificates (component_id, version, position, added_at) \
                 VALUES ($1, $2, $3, $4)",
                args![t.component_id, t.version, t.position, t.added_at],
            )
            .await?;
        }
        for d in &dns {
            tx.exec(
                "INSERT INTO gateway_trusted_dns (position, pattern) VALUES ($1, $2)",
                args![d.position, &d.pattern],
            )
            .await?;
        }
        for a in &apis {
            tx.exec(
                "INSERT INTO apis (id, name, base_path, upstream, has_override, override_required, \
                 override_trusted_dns) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                args![
                    a.id,
                    &a.name,
                    &a.base_path,
                    &a.upstream,
                    a.has_override,
                    a.override_required,
                    a.override_trusted_dns.clone()
                ],
            )
            .await?;
        }
        if tx.dialect() == Dialect::Postgres {
            // Explicit ids do not move the identity sequences: move them past the copy.
            for table in ["certificate_components", "apis"] {
                tx.exec(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                         COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                    ),
                    args![],
                )
                .await?;
            }
        }
        // One less than the source, so the commit's bump lands on the source generation.
        tx.exec(
            "UPDATE config_generation SET value = $1 WHERE id = 1",
            args![generation - 1],
        )
        .await?;
        let audit = crate::audit::Audit::new(
            "store.migrate",
            format!("store:{}", self.backend_name()),
            serde_json::Value::Null,
            serde_json::json!({
                "components": comps.len(),
                "versions": versions.len(),
                "trusted_certificates": trust.len(),
                "trusted_dns": dns.len(),
                "apis": apis.len(),
            }),
        )?;
        let g = target.commit_tx(tx, audit).await?;
        Ok(MigrateReport {
            components: comps.len(),
            versions: versions.len(),
            trusted_certificates: trust.len(),
            trusted_dns: dns.len(),
            apis: apis.len(),
            generation: g,
        })
    }
}
