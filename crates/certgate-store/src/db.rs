//! The two database backends behind one small query interface, so the store's rules are
//! written once: [`Pool`] (SQLite or PostgreSQL), [`Tx`] (a transaction of either) and
//! [`Arg`] (a bound value). The SQL text is shared (`$n` placeholders, `RETURNING`,
//! BIGINT/TEXT/BOOLEAN columns); the few places where the dialects differ ask
//! [`Dialect`].
//!
//! An enum was preferred to `sqlx::Any`, which maps types by the lowest common
//! denominator and hides `PgListener`.

use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Decode, FromRow, Postgres, Sqlite, Type};

use crate::error::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I64(i64),
    Bool(bool),
    Text(String),
    OptText(Option<String>),
    OptBool(Option<bool>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}
impl From<Option<bool>> for Arg {
    fn from(v: Option<bool>) -> Self {
        Arg::OptBool(v)
    }
}

/// `args![a, b]`: a `Vec<Arg>`.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($crate::db::Arg::from($a)),*] };
}
pub(crate) use args;

/// Binds every argument to a query of either backend.
macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::I64(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::OptText(v) => q.bind(v),
                Arg::OptBool(v) => q.bind(v),
            };
        }
        q
    }};
}

/// A row type both backends can decode.
pub(crate) trait Row:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// A column type both backends can decode.
pub(crate) trait Scalar:
    for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + Send
    + Unpin
{
}
impl<T> Scalar for T where
    T: for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> Decode<'r, Postgres>
        + Type<Postgres>
        + Send
        + Unpin
{
}

/// Which SQL dialect a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The database clock as unix seconds (BIGINT).
    pub(crate) fn now_secs(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST(strftime('%s', 'now') AS INTEGER)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS BIGINT)",
        }
    }
}

/// A connection pool of either backend.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A read transaction.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A write transaction that holds the store's single writer lock: SQLite's write
    /// lock (`BEGIN IMMEDIATE`), or on PostgreSQL a row lock on the generation row, so
    /// writers of every node run one after the other and each sees what the previous
    /// one committed (READ COMMITTED reads after the lock).
    pub(crate) async fn begin_write(&self) -> Result<Tx> {
        match self {
            Pool::Sqlite(p) => Ok(Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?)),
            Pool::Postgres(p) => {
                let mut tx = Tx::Postgres(p.begin().await?);
                tx.exec(
                    "SELECT value FROM config_generation WHERE id = 1 FOR UPDATE",
                    vec![],
                )
                .await?;
                Ok(tx)
            }
        }
    }

    /// One statement outside a transaction; answers the rows affected.
    pub(crate) async fn exec(&self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Pool::Sqlite(p) => bind_all!(sqlx::query(sql), args)
                .execute(p)
                .await?
                .rows_affected(),
            Pool::Postgres(p) => bind_all!(sqlx::query(sql), args)
                .execute(p)
                .await?
                .rows_affected(),
        })
    }

    /// Every row of one query outside a transaction.
    pub(crate) async fn all<T: Row>(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Pool::Sqlite(p) => bind_all!(sqlx::query_as(sql), args).fetch_all(p).await?,
            Pool::Postgres(p) => bind_all!(sqlx::query_as(sql), args).fetch_all(p).await?,
        })
    }

    /// One value of one row outside a transaction.
    pub(crate) async fn scalar<T: Scalar>(&self, sql: &str, args: Vec<Arg>) -> Result<T> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Pool::Sqlite(p) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_one(p)
                    .await?
            }
            Pool::Postgres(p) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_one(p)
                    .await?
            }
        })
    }

    pub(crate) async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// A transaction of either backend. Dropped without [`commit`](Tx::commit): rolled back.
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Tx::Sqlite(_) => Dialect::Sqlite,
            Tx::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; answers the rows affected.
    pub(crate) async fn exec(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Tx::Sqlite(t) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::Postgres(t) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected(),
        })
    }

    /// Every row.
    pub(crate) async fn all<T: Row>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Tx::Sqlite(t) => {
                bind_all!(sqlx::query_as(sql), args)
                    .fetch_all(&mut **t)
                    .await?
            }
            Tx::Postgres(t) => {
                bind_all!(sqlx::query_as(sql), args)
                    .fetch_all(&mut **t)
                    .await?
            }
        })
    }

    /// At most one row.
    pub(crate) async fn opt<T: Row>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<T>> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Tx::Sqlite(t) => {
                bind_all!(sqlx::query_as(sql), args)
                    .fetch_optional(&mut **t)
                    .await?
            }
            Tx::Postgres(t) => {
                bind_all!(sqlx::query_as(sql), args)
                    .fetch_optional(&mut **t)
                    .await?
            }
        })
    }

    /// Exactly one row.
    pub(crate) async fn one<T: Row>(&mut self, sql: &str, args: Vec<Arg>) -> Result<T> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Tx::Sqlite(t) => {
                bind_all!(sqlx::query_as(sql), args)
                    .fetch_one(&mut **t)
                    .await?
            }
            Tx::Postgres(t) => {
                bind_all!(sqlx::query_as(sql), args)
                    .fetch_one(&mut **t)
                    .await?
            }
        })
    }

    /// The first column of exactly one row.
    pub(crate) async fn scalar<T: Scalar>(&mut self, sql: &str, args: Vec<Arg>) -> Result<T> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Tx::Sqlite(t) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_one(&mut **t)
                    .await?
            }
            Tx::Postgres(t) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_one(&mut **t)
                    .await?
            }
        })
    }

    /// The first column of at most one row.
    pub(crate) async fn scalar_opt<T: Scalar>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Option<T>> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Tx::Sqlite(t) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_optional(&mut **t)
                    .await?
            }
            Tx::Postgres(t) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_optional(&mut **t)
                    .await?
            }
        })
    }

    /// The first column of every row.
    pub(crate) async fn scalars<T: Scalar>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>> {
        let sql = AssertSqlSafe(sql.to_string());
        Ok(match self {
            Tx::Sqlite(t) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_all(&mut **t)
                    .await?
            }
            Tx::Postgres(t) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_all(&mut **t)
                    .await?
            }
        })
    }

    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}
