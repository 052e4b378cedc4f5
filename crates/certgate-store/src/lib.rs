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
//! Only SQLite is implemented. The store holds its pool in a private `Backend` enum,
//! and all SQL is written portably (`$n` placeholders, `RETURNING`, BIGINT/TEXT/BOOLEAN
//! columns, timestamps as unix seconds, JSON as TEXT), so PostgreSQL is a second
//! variant with its own migrations directory, its pool, and `LISTEN/NOTIFY` feeding the
//! same generation channel. An enum was preferred to `sqlx::Any` because `Any` maps
//! types by the lowest common denominator and hides `PgListener`.
//!
//! ## Time
//!
//! Operations whose answer depends on the clock (expiry checks and statuses) take `now`
//! as an argument so they can be tested; callers pass `OffsetDateTime::now_utc()`.

pub mod error;
pub mod model;
mod store;
pub mod truststore;
pub mod validate;
pub mod views;

pub use error::{ErrorKind, StoreError};
pub use model::GatewayConfig;
pub use store::{crl_warnings, effective, gateway_view, trust_row, trust_rows, warnings, Store};
pub use truststore::{TrustStore, TrustStoreInfo, TrustStoreStatus};
