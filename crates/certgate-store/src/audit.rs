//! The audit log (SPEC §14): the record a committed write leaves ([`Audit`], written by
//! the store's commit in the write's own transaction), its answer shape
//! ([`AuditRecord`]), the redaction of PEMs ([`redact`]) and the reads of
//! `GET /api/v1/audit`.
//!
//! A write whose `before` equals its `after` changes nothing: the commit rolls it back,
//! bumps no generation and records nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::db::{args, Tx};
use crate::error::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// How many records the store keeps (SPEC §14); older ones are pruned by each write.
pub const RETENTION: i64 = 100_000;
/// The default `limit` of `GET /api/v1/audit`.
pub const DEFAULT_LIMIT: i64 = 100;
/// The largest `limit` of `GET /api/v1/audit`; more is 422 `limit_exceeded`.
pub const MAX_LIMIT: i64 = 1000;
/// The actor of writes a node makes on its own (the SSL setting mirrored from its config
/// file, `certgate store migrate`): neither the token nor a console session.
pub const SYSTEM_ACTOR: &str = "system";

/// One record of `GET /api/v1/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Increasing with every record.
    pub id: i64,
    /// When the write committed (database clock, whole seconds).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `token`, `console:<session id prefix>` or `system`.
    pub actor: String,
    /// The endpoint's action, e.g. `trusted_certificate.add` (docs/ADMIN_API.md lists them).
    pub action: String,
    /// `<kind>:<name or id>`.
    pub target: String,
    /// The changed object before the write (`null` when it did not exist).
    pub before: Value,
    /// The changed object after the write (`null` when it no longer exists).
    pub after: Value,
    /// The configuration generation the write committed.
    pub generation: u64,
}

/// What a write hands to the commit: its action, target and the changed object before
/// and after (unredacted; the commit redacts).
#[derive(Debug, Clone)]
pub(crate) struct Audit {
    pub(crate) action: &'static str,
    pub(crate) target: String,
    pub(crate) before: Value,
    pub(crate) after: Value,
}

impl Audit {
    pub(crate) fn new(
        action: &'static str,
        target: impl Into<String>,
        before: impl Serialize,
        after: impl Serialize,
    ) -> Result<Audit> {
        Ok(Audit {
            action,
            target: target.into(),
            before: to_value(before)?,
            after: to_value(after)?,
        })
    }

    /// Whether the write changes nothing.
    pub(crate) fn is_noop(&self) -> bool {
        self.before == self.after
    }
}

pub(crate) fn to_value(v: impl Serialize) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| StoreError::Corrupt(format!("audit value: {e}")))
}

/// `v` with every string that holds a PEM block (certificates, CRLs, and so any key that
/// would slip in) replaced by `sha256:<hex of the PEM text>`.
pub fn redact(v: Value) -> Value {
    match v {
        Value::String(s) if s.contains("-----BEGIN") => Value::String(pem_sha256(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(redact).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, redact(v))).collect()),
        other => other,
    }
}

/// `sha256:` + lowercase hex of the PEM text's bytes: what an audit record shows of a PEM.
pub fn pem_sha256(pem: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(pem.as_bytes())))
}

/// Inserts the record of a write committing `generation` and prunes to [`RETENTION`]
/// (one indexed range delete by id).
pub(crate) async fn insert(tx: &mut Tx, actor: &str, audit: Audit, generation: i64) -> Result<i64> {
    let before = serde_json::to_string(&redact(audit.before))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let after = serde_json::to_string(&redact(audit.after))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let sql = format!(
        "INSERT INTO audit_log (at, actor, action, target, before_json, after_json, generation) \
         VALUES ({}, $1, $2, $3, $4, $5, $6) RETURNING id",
        tx.dialect().now_secs()
    );
    let id: i64 = tx
        .scalar(
            &sql,
            args![actor, audit.action, audit.target, before, after, generation],
        )
        .await?;
    prune(tx, id).await?;
    Ok(id)
}

/// Deletes every record older than the latest [`RETENTION`] (ids are increasing, so
/// `id <= newest - RETENTION`).
pub(crate) async fn prune(tx: &mut Tx, newest: i64) -> Result<u64> {
    tx.exec(
        "DELETE FROM audit_log WHERE id <= $1",
        args![newest - RETENTION],
    )
    .await
}

#[derive(Debug, sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    before_json: String,
    after_json: String,
    generation: i64,
}

impl AuditRow {
    fn into_record(self) -> Result<AuditRecord> {
        let parse = |s: &str| {
            serde_json::from_str(s)
                .map_err(|e| StoreError::Corrupt(format!("audit record {}: {e}", self.id)))
        };
        Ok(AuditRecord {
            id: self.id,
            at: OffsetDateTime::from_unix_timestamp(self.at)
                .map_err(|e| StoreError::Corrupt(format!("audit record {}: {e}", self.id)))?,
            actor: self.actor.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            before: parse(&self.before_json)?,
            after: parse(&self.after_json)?,
            generation: self.generation.max(0) as u64,
        })
    }
}

/// The newest `limit` records with an id below `before` (all when `None`), newest first.
pub(crate) async fn read(tx: &mut Tx, limit: i64, before: Option<i64>) -> Result<Vec<AuditRecord>> {
    let rows: Vec<AuditRow> = tx
        .all(
            "SELECT id, at, actor, action, target, before_json, after_json, generation \
             FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
            args![before.unwrap_or(i64::MAX), limit],
        )
        .await?;
    rows.into_iter().map(AuditRow::into_record).collect()
}
