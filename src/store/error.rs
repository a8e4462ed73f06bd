//! The one error type of the on-disk store.
//!
//! Invariant defended: every store failure carries a human-readable message that
//! names the file involved, so the tool layer can surface it verbatim (the
//! original's tool errors are exactly the exception text, e.g.
//! `could not acquire lock at <path>`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A failure of a store operation.
#[derive(Debug)]
pub enum StoreError {
    /// The lock at `path` was still held after the whole retry budget.
    /// Display: `could not acquire lock at <path>` (the original's wording).
    LockTimeout { path: PathBuf },
    /// An I/O call failed. Display: `<op> <path>: <os error>`.
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The store file at `path` is not a regular file (`kind`: "symlink",
    /// "directory", "FIFO", …); it was neither read nor written through.
    /// Display: `<path> is a <kind>, not a regular file`.
    NotRegular { path: PathBuf, kind: &'static str },
    /// A record could not be serialised into a valid mailbox line (e.g. its `id`
    /// is not 16 lowercase hex, §2.2); nothing was written.
    InvalidRecord { reason: String },
}

impl StoreError {
    /// Wrap an `io::Error` with the operation and path it came from.
    pub fn io(op: &'static str, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// True for [`StoreError::LockTimeout`].
    pub fn is_lock_timeout(&self) -> bool {
        matches!(self, StoreError::LockTimeout { .. })
    }

    /// True for an I/O failure because the file (or its directory) is missing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// True when the store file was a symlink (never followed).
    pub fn is_symlink(&self) -> bool {
        matches!(
            self,
            StoreError::NotRegular {
                kind: "symlink",
                ..
            }
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::LockTimeout { path } => {
                write!(f, "could not acquire lock at {}", path.display())
            }
            StoreError::Io { op, path, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            StoreError::NotRegular { path, kind } => {
                write!(f, "{} is a {kind}, not a regular file", path.display())
            }
            StoreError::InvalidRecord { reason } => {
                write!(f, "refusing to write an invalid mailbox record: {reason}")
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<StoreError> for io::Error {
    fn from(e: StoreError) -> io::Error {
        let kind = match &e {
            StoreError::LockTimeout { .. } => io::ErrorKind::WouldBlock,
            StoreError::Io { source, .. } => source.kind(),
            StoreError::NotRegular { .. } | StoreError::InvalidRecord { .. } => {
                io::ErrorKind::InvalidData
            }
        };
        io::Error::new(kind, e.to_string())
    }
}

/// Result alias of the store.
pub type StoreResult<T> = Result<T, StoreError>;
