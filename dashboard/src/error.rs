//! The crate's error type, and the classification of SQLite failures into the causes an
//! operator can act on (full disk, read-only file, corrupt database, I/O error).

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the store, the writer and queries.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No store file at this path (a reader never creates one): wrong `--db`, or not a
    /// dashboard node.
    #[error("no store at '{}' (is this a dashboard node? see store.path)", .0.display())]
    NotFound(PathBuf),
    /// The disk (or the database's size limit) is full. The writer keeps samples in memory
    /// (bounded) and retries; it resumes by itself once space is freed.
    #[error("store '{}': database or disk is full", .0.display())]
    Full(PathBuf),
    /// The file or its directory cannot be written. The writer retries and resumes once it
    /// can write again.
    #[error("store '{}' cannot be written: {detail}", .path.display())]
    ReadOnly {
        /// The store file.
        path: PathBuf,
        /// SQLite's or the OS's words.
        detail: String,
    },
    /// The file is damaged or is not a meshmon store. Nothing fixes this by itself: restore
    /// or remove the file; the writer then creates a new one and resumes.
    #[error("store '{}' is corrupt or not a meshmon database: {detail}", .path.display())]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// An I/O error under SQLite (failing disk, file removed underneath). Retried.
    #[error("store '{}': i/o error: {detail}", .path.display())]
    Io {
        /// The store file.
        path: PathBuf,
        /// SQLite's or the OS's words.
        detail: String,
    },
    /// The file was written by a newer meshmon (schema version above this build's).
    #[error("store '{}' has schema version {found}; this meshmon reads up to {supported}", .path.display())]
    NewerSchema {
        /// The store file.
        path: PathBuf,
        /// `PRAGMA user_version` in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// Any other SQLite failure (a bug, or a lock held for longer than the busy timeout).
    #[error("store '{}': {source}", .path.display())]
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// A query argument is wrong (selector, time, step, ambiguous metric); the message says
    /// what was expected.
    #[error("{0}")]
    BadArgument(String),
    /// The host is not in the store.
    #[error("no host '{0}' in the store")]
    UnknownHost(String),
    /// The writer thread could not be started, or is gone.
    #[error("store writer: {0}")]
    Writer(String),
    /// Writing query output failed (for example a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// The operator-facing cause of a store failure, used to log each cause once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Disk or size limit full.
    Full,
    /// Not writable.
    ReadOnly,
    /// Damaged file.
    Corrupt,
    /// I/O error.
    Io,
    /// Anything else.
    Other,
}

impl StoreError {
    /// Classifies a SQLite error on the store at `path`.
    pub fn sqlite(path: &Path, e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode as C;
        let path = path.to_path_buf();
        let detail = e.to_string();
        match e.sqlite_error_code() {
            Some(C::DiskFull) => StoreError::Full(path),
            Some(C::ReadOnly | C::PermissionDenied | C::CannotOpen) => {
                StoreError::ReadOnly { path, detail }
            }
            Some(C::DatabaseCorrupt | C::NotADatabase) => StoreError::Corrupt { path, detail },
            Some(C::SystemIoFailure) => StoreError::Io { path, detail },
            _ => StoreError::Sqlite { path, source: e },
        }
    }

    /// A blob that does not decode.
    pub fn corrupt_blob(path: &Path, what: &str, e: crate::codec::CodecError) -> StoreError {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("{what}: {e}"),
        }
    }

    /// The cause an operator would act on.
    pub fn cause(&self) -> Cause {
        match self {
            StoreError::Full(_) => Cause::Full,
            StoreError::ReadOnly { .. } => Cause::ReadOnly,
            StoreError::Corrupt { .. } | StoreError::NewerSchema { .. } => Cause::Corrupt,
            StoreError::Io { .. } => Cause::Io,
            _ => Cause::Other,
        }
    }
}
