//! [`StoreError`]: every way a store operation can fail, each with the HTTP status the
//! admin API answers, a snake_case code and the exact message shown to the user.

/// What kind of failure a [`StoreError`] is; maps one to one onto an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 400: the request itself is malformed.
    BadRequest,
    /// 404: an unknown id.
    NotFound,
    /// 409: the request conflicts with the current state (SSL off, certificate in use).
    Conflict,
    /// 422: an invalid value (including `limit_exceeded`).
    Invalid,
    /// 500: the database or the file system failed.
    Internal,
    /// 503: the store cannot be reached (SPEC §12 `store_unavailable`).
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status code of this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Invalid => 422,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
        }
    }
}

/// A refused or failed store operation. A refused write has changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A rule refused the operation; `message` is the exact sentence for the user.
    #[error("{message}")]
    Refused {
        /// The HTTP-ish kind.
        kind: ErrorKind,
        /// snake_case code, e.g. `limit_exceeded`.
        code: &'static str,
        /// The exact message.
        message: String,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database cannot be reached (connection refused or lost, pool timed out).
    /// Nothing was changed.
    #[error(
        "The configuration store is unreachable; nothing was changed. Try again when it is back."
    )]
    Unavailable(String),
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// The store's files could not be prepared (e.g. the SQLite file's directory).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The store URL names a backend this build does not implement.
    #[error("unsupported store URL: {0}")]
    Unsupported(String),
    /// Stored data that no longer parses (the database was edited by hand or is damaged).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The kind (and so the HTTP status) of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Refused { kind, .. } => *kind,
            StoreError::Unavailable(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.kind().status()
    }

    /// The snake_case error code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Refused { code, .. } => code,
            StoreError::Unavailable(_) => "store_unavailable",
            _ => "internal_error",
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::refused(ErrorKind::NotFound, "not_found", message)
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::refused(ErrorKind::Conflict, code, message)
    }

    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::refused(ErrorKind::Invalid, code, message)
    }

    fn refused(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        StoreError::Refused {
            kind,
            code,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_connection_error(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Database(e)
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) if is_connection_error(&inner) => {
                StoreError::Unavailable(inner.to_string())
            }
            other => StoreError::Migrate(other),
        }
    }
}

/// Whether `e` means "the database is not reachable" rather than "the statement failed":
/// I/O and TLS errors, a pool that timed out or closed, and PostgreSQL's connection
/// exceptions (class 08) and shutdown codes (57P01-57P03).
fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}
