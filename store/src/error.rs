//! The store's error type: every failure says what went wrong and, where there is one, the fix.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(
        "unsupported store URL `{0}`: use `sqlite://PATH` or a bare file path, `sqlite::memory:` or `postgres://USER@HOST:PORT/DB`"
    )]
    BadUrl(String),
    /// A command that only reads was pointed at a SQLite file that does not exist.
    #[error(
        "no store at `{0}`: point `--db` (or the MLC_DB variable) at an existing store, e.g. `--db sqlite://PATH` or `--db postgres://...`; `mlc ingest --checks RULES` and `mlc serve` create one"
    )]
    NoStore(String),
    #[error("bad store URL parameter: {0}")]
    BadParameter(String),
    #[error("cannot open the store at `{url}`: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot apply the store's schema migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// An error of the SQLite read path (rusqlite connections to the same file).
    #[error("database error: {0}")]
    SqliteRead(#[from] rusqlite::Error),
    #[error(
        "unknown component `{0}`: the store has no schema for it; pass `--checks PATH` with its `component` declaration"
    )]
    UnknownComponent(String),
    #[error("component `{component}` has no column `{column}`")]
    UnknownColumn { component: String, column: String },
    /// A declaration that storage cannot follow without losing or converting data.
    #[error("{0}")]
    SchemaConflict(String),
    #[error("stored schema of `{component}` is unreadable: {reason}")]
    CorruptSchema { component: String, reason: String },
    #[error("{0}")]
    Ingest(String),
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
