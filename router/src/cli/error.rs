//! Why a CLI command failed.

use crate::protocol::{ControlError, ProtocolError, Response};
use control::config::ConfigError;

use super::table::NotFound;

/// Why a CLI command failed; `main` prints it on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line asks for something the command does not do.
    #[error("{0}")]
    Usage(&'static str),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The cluster file does not load.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The router could not be asked.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The router refused or failed the request.
    #[error("the router says: {0}")]
    Router(ProtocolError),
    /// The router answered something else than what was asked.
    #[error("unexpected answer from the router: {0:?}")]
    Unexpected(Box<Response>),
    /// The object asked for does not exist (kubectl's words).
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// The data plane could not run.
    #[error(transparent)]
    Run(#[from] crate::shell::RunError),
    /// The Kubernetes API server refused the request (its `Status`).
    #[error("Error from server ({reason}): {message}")]
    Api {
        /// `Status.reason` (`NotFound`, `Forbidden`, ...).
        reason: String,
        /// `Status.message`.
        message: String,
    },
    /// A YAML manifest that cannot be applied.
    #[error("error: {0}")]
    Manifest(String),
    /// The Kubernetes API server could not be reached or used.
    #[error("{0}")]
    Kube(String),
    /// JSON output could not be made.
    #[error("JSON output: {0}")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    /// Whether kubectl prints this error as it is (`Error from server ...`)
    /// rather than after `error: `.
    pub fn is_from_server(&self) -> bool {
        matches!(self, Self::NotFound(_) | Self::Api { .. })
    }
}
