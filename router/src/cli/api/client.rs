//! A blocking Kubernetes API client for the CLI: kube-rs on a
//! current-thread runtime, credentials from a kubeconfig.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use crate::cli::CliError;

/// kubectl's `Accept` for `get`: a Table (`meta.k8s.io/v1`), else JSON.
const ACCEPT_TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// A connection to one API server.
pub struct ApiClient {
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) client: kube::Client,
}

/// A kube-rs error as the CLI reports it.
pub(super) fn api_error(e: kube::Error) -> CliError {
    match e {
        // A `Status` from the server: kubectl's "Error from server (Reason): message".
        kube::Error::Api(status) => CliError::Api {
            reason: status.reason,
            message: status.message,
        },
        other => CliError::Kube(other.to_string()),
    }
}

impl ApiClient {
    /// A client with the credentials of kubeconfig `path`.
    pub fn new(path: &Path) -> Result<Self, CliError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| CliError::Read {
                path: path.to_owned(),
                source,
            })?;
        let client = runtime.block_on(async {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| CliError::Kube(format!("kubeconfig {}: {e}", path.display())))?;
            let config =
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| CliError::Kube(format!("kubeconfig {}: {e}", path.display())))?;
            kube::Client::try_from(config).map_err(api_error)
        })?;
        Ok(Self { runtime, client })
    }

    fn send(&self, request: http::Request<Vec<u8>>) -> Result<Value, CliError> {
        let text = self
            .runtime
            .block_on(self.client.request_text(request))
            .map_err(api_error)?;
        Ok(serde_json::from_str(&text)?)
    }

    /// A body-less `method path` accepting `accept`, its answer as JSON.
    fn call(&self, method: http::Method, path: &str, accept: &str) -> Result<Value, CliError> {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::ACCEPT, accept)
            .body(Vec::new())
            .map_err(|e| CliError::Kube(e.to_string()))?;
        self.send(request)
    }

    /// `GET path` as kubectl's Table (with the rows' metadata, for the
    /// namespace column of `-A`).
    pub fn table(&self, path: &str) -> Result<Value, CliError> {
        let path = format!("{path}?includeObject=Metadata");
        self.call(http::Method::GET, &path, ACCEPT_TABLE)
    }

    /// `GET path` as JSON.
    pub fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(http::Method::GET, path, "application/json")
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.call(http::Method::DELETE, path, "application/json")
    }
}
