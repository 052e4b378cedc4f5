//! # certgate-store
//!
//! The control plane's data: the configuration model ([`model`]), its validation rules
//! ([`validate`]), the admin API's JSON shapes ([`views`]), the [`Store`] that keeps it
//! all in a database with transactions, migrations and a change feed, and the node's
//! on-disk trust store ([`truststore`]).
//!
//! ## Store
//!
//! [`Store::open`]`("sqlite://path")` creates the file (and its directory) when missing,
//! turns on WAL and foreign keys and applies the embedded migrations
//! (`migrations/sqlite/`). Every write method runs in one transaction that checks the
//! rules of SPEC §2/§8, changes the rows and bumps the generation; a refused write returns
//! a [`StoreError`] (with its HTTP status, snake_case code and exact message) and changes
//! nothing. After the commit the new generation is sent to every
//! [`Store::subscribe`] receiver. [`Store::load_config`] reads the whole
//! [`GatewayConfig`] in one transaction.
//!
//! ## Backends
//!
//! `sqlite://path` (single node) and `postgres://…` (PostgreSQL 13+, a cluster, SPEC §12).
//! The store holds a private pool enum (`db::Pool`) and writes every rule once against a
//! small query interface (`db::Tx`); the SQL text is shared (`$n` placeholders,
//! `RETURNING`, `ON CONFLICT`, BIGINT/TEXT/BOOLEAN columns, timestamps as unix seconds,
//! JSON as TEXT) and branches only where the dialects differ: the migrations
//! (`migrations/sqlite/`, `migrations/postgres/`: identity columns), the database clock,
//! the write lock (SQLite `BEGIN IMMEDIATE`; PostgreSQL a row lock on the generation row,
//! so writers of every node serialize) and `NOTIFY`. An enum was preferred to
//! `sqlx::Any`, which maps types by the lowest common denominator and hides `PgListener`.
//! PostgreSQL migrations run under `pg_advisory_lock`, so nodes may start at once.
//!
//! ## Change feed and outages
//!
//! Each store runs a watcher that reads the generation every [`POLL_INTERVAL`] (a
//! one-row primary-key read) and, on PostgreSQL, wakes early on `NOTIFY certgate_config`
//! (sent in the writing transaction, so delivered at commit). A lost notification costs
//! at most one poll. A failed poll marks the store unreachable ([`Store::reachable`]) and
//! backs off up to [`MAX_BACKOFF`]; operations then fail with
//! [`StoreError::Unavailable`] (503 `store_unavailable`) and change nothing.
//!
//! ## Node files
//!
//! [`node`] (`<data_dir>/node-id`, the new-node marker of SPEC §5) and [`last_config`]
//! (`<data_dir>/last-config.json`, the configuration a node applied last).

#![warn(missing_docs)]

//! ## Time
//!
//! Operations whose answer depends on the clock (expiry checks and statuses) take `now`
//! as an argument so they can be tested; callers pass `OffsetDateTime::now_utc()`.

pub mod audit;
pub mod config;
mod db;
pub mod error;
pub mod inventory;
pub mod last_config;
mod migrate;
pub mod model;
pub mod node;
mod store;
pub mod truststore;
pub mod validate;
pub mod views;

pub use audit::AuditRecord;
pub use error::{ErrorKind, StoreError};
pub use migrate::MigrateReport;
pub use model::GatewayConfig;
pub use store::{
    crl_warnings, effective, gateway_view, trust_row, trust_rows, warnings, Store, MAX_BACKOFF,
    NOTIFY_CHANNEL, POLL_INTERVAL,
};
pub use truststore::{TrustStore, TrustStoreInfo, TrustStoreStatus};
