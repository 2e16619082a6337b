//! Zones: the files ([`mod@file`]: reading, `$INCLUDE`, error lines) and the
//! immutable lookup structure they load into ([`store`]). Neither knows
//! about pools: [`crate::snapshot`] overlays those.

pub mod file;
pub mod nodes;
pub mod parsed;
pub mod rdata;
mod split;
pub mod store;
mod text;

use std::path::PathBuf;

pub use file::load_zone_file;
pub use nodes::NodeMap;
pub use nodes::{Node, RrSet};
pub use store::{Zone, ZoneFailure, Zones};

/// Errors from loading zone files and checking pools against them.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("{dir}: cannot read zones folder: {source}")]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot read zone file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A syntax error; `line` is 1-based and refers to `path` (which may be
    /// a file pulled in with `$INCLUDE`).
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The file parsed but is not a usable zone (no SOA, data outside the
    /// zone, CNAME next to other data, ...).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// Like `Invalid`, for a problem with one record: `line` (1-based)
    /// refers to `path`, which may be a file pulled in with `$INCLUDE`.
    #[error("{path}:{line}: {message}")]
    InvalidAt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{dir}: no *.zone files found")]
    NoZones { dir: PathBuf },
    #[error("{path}: zone {origin} is also defined in {other}")]
    Duplicate {
        path: PathBuf,
        origin: String,
        other: PathBuf,
    },
    /// A `[[pool]]` whose name no zone contains (or that clashes with the
    /// zone data).
    #[error("{config}: {key}: expected {expected}")]
    Pool {
        config: PathBuf,
        key: String,
        expected: String,
    },
}
