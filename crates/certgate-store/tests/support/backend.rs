//! One test suite, both backends: a test is an `async fn` that reaches its store through
//! [`store_url`]; [`both_backends!`] generates `sqlite::<name>` and `postgres::<name>`
//! variants that run it with [`BACKEND`] set. With PostgreSQL, each data dir gets its own
//! database on the binary's shared server (the same dir gives the same database, so
//! restart tests reopen what they wrote).
//!
//! Included by path together with `pg.rs`:
//! `#[path = "…/support/pg.rs"] mod pg;` and `#[path = "…/support/backend.rs"] mod backend;`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A store backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's data dir.
    Sqlite,
    /// A database on the shared PostgreSQL server.
    Postgres,
}

tokio::task_local! {
    /// The backend of the running test variant.
    pub static BACKEND: Backend;
}

/// The backend of the running test (SQLite outside [`both_backends!`]).
pub fn current() -> Backend {
    BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite)
}

/// The store URL for `dir`: `sqlite://<dir>/<sqlite_file>`, or a PostgreSQL database
/// made for `dir` on first use.
pub fn store_url(dir: &Path, sqlite_file: &str) -> String {
    match current() {
        Backend::Sqlite => format!("sqlite://{}", dir.join(sqlite_file).display()),
        Backend::Postgres => {
            static DBS: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);
            let mut dbs = DBS.lock().unwrap_or_else(|p| p.into_inner());
            dbs.get_or_insert_with(HashMap::new)
                .entry(dir.to_path_buf())
                .or_insert_with(super::pg::database)
                .clone()
        }
    }
}

/// `both_backends!(test_a, test_b, …)`: for each `async fn test_a()` of the file, the
/// tests `sqlite::test_a` and `postgres::test_a`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::backend::BACKEND
                        .scope(super::backend::Backend::Sqlite, super::$name())
                        .await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::backend::BACKEND
                        .scope(super::backend::Backend::Postgres, super::$name())
                        .await
                }
            )*
        }
    };
}
