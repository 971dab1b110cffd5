//! The crate's one error type. Only starting a fleet can fail: once running, connection
//! trouble is retried and counted (see [`crate::FleetStats`]), never returned.

use std::path::PathBuf;
use thiserror::Error;

/// Why a fleet could not be started.
#[derive(Debug, Error)]
pub enum SimError {
    /// A [`crate::FleetConfig`] value is out of range; fix the value the message names.
    #[error("invalid fleet config: {0}")]
    Config(String),
    /// The key file could not be read or holds no valid key: point `key` at a file written by
    /// `meshmon keygen` (the same one the target node uses).
    #[error("key file '{path}': {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// [`crate::Fleet::start`] was called outside a tokio runtime: call it from async code.
    #[error("no tokio runtime: start the fleet from within a runtime")]
    NoRuntime,
}
