//! Model supply: the catalog, the local store, fetching, conversion, verification and import.
//!
//! Layout on disk (under `$IRIS_HOME`, else `$XDG_DATA_HOME/iris`, else `~/.local/share/iris`):
//! `models/<id>/<file>` for installed files, `cache/` for downloads (kept for resume and
//! re-use) and `staging/` for work in progress. A file reaches `models/` only after its sha256
//! matched the catalog, by a rename, so a loader never sees a partial or unverified file.

pub mod bundle;
pub mod catalog;
pub mod convert;
pub mod digest;
pub mod fetch;
pub mod guard;
pub mod import;
pub mod own;
pub mod pull;
pub mod store;

use std::path::PathBuf;

pub use catalog::{Catalog, FileEntry, ModelEntry, Source};
pub use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("model catalog {0}")]
    Catalog(String),
    #[error("unknown model or pack `{name}` (known: {known})")]
    Unknown { name: String, known: String },
    #[error("model `{id}` is not installed ({path} is missing): run `iris models pull {id}`")]
    NotInstalled { id: String, path: PathBuf },
    #[error("{path}: sha256 is {actual}, expected {expected}; the file is damaged or not the right one: run `iris models pull {id}` to fetch it again")]
    Corrupt { id: String, path: PathBuf, expected: String, actual: String },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("could not get `{id}`: {}", attempts.join("; "))]
    Fetch { id: String, attempts: Vec<String> },
    #[error("{0}")]
    Import(String),
}

impl ModelsError {
    pub(crate) fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        ModelsError::Io { path: path.into(), message: e.to_string() }
    }
}

/// Progress of long operations, drawn by the caller (a progress bar, a web page, nothing).
pub trait Progress: Sync {
    fn start(&self, label: &str, total: Option<u64>);
    fn advance(&self, bytes: u64);
    fn finish(&self);
    /// A line for the user (a fallback taken, a file reused).
    fn note(&self, _line: &str) {}
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
