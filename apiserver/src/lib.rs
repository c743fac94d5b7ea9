//! ksr-apiserver: a Kubernetes-compatible API server for the lab.
//!
//! The layers, outside in:
//! - [`server`]: HTTP/1.1 (plain or TLS), bearer tokens, content
//!   negotiation (JSON or Table), watches as chunked JSON lines;
//! - [`request`]: a path and query parsed into what the API serves;
//! - [`api`]: the verbs, with the write path of the real API server
//!   (decode, defaults, allocation, validation, one atomic write);
//! - [`store`]: objects as JSON by (resource, namespace, name), one global
//!   resourceVersion, watch history, and a durable [`store::Storage`];
//! - [`controllers`]: what kube-controller-manager and the scheduler do
//!   (Deployments, ReplicaSets, scheduling and pod IPs, EndpointSlices,
//!   Endpoints, garbage collection), run in the same process;
//! - [`discovery`], [`table`], [`patch`], [`selector`], [`status`]: the
//!   documents and algorithms kubectl relies on.

pub mod api;
pub mod auth;
pub mod controllers;
pub mod discovery;
pub mod init;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod request;
pub mod resources;
pub mod selector;
pub mod server;
pub mod status;
pub mod store;
pub mod table;

mod bootstrap;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::api::{Api, ApiConfig};
use crate::server::Frontend;
use crate::store::{EtcdStorage, LogStorage, MemoryStorage, Storage, Store};

/// How to run the API server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on (port 0: any free port).
    pub listen: Vec<SocketAddr>,
    /// The address advertised to clients and in the `kubernetes` Service's
    /// endpoints; the first listen address when None.
    pub advertise: Option<SocketAddr>,
    /// The data directory of the embedded storage; None keeps nothing.
    pub data_dir: Option<PathBuf>,
    /// etcd's client URL: objects live there instead of the data directory.
    pub etcd: Option<String>,
    /// Serving certificate and key (PEM); None serves plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Tokens file; None lets every request in as admin.
    pub tokens: Option<PathBuf>,
    /// API settings.
    pub api: ApiConfig,
    /// Controller settings.
    pub controllers: controllers::ControllerConfig,
    /// Events kept for watches from an older resourceVersion.
    pub watch_history: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            advertise: None,
            data_dir: None,
            etcd: None,
            tls: None,
            tokens: None,
            api: ApiConfig::default(),
            controllers: controllers::ControllerConfig::default(),
            watch_history: 100_000,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Storage.
    #[error("storage: {0}")]
    Storage(#[from] store::StorageError),
    /// Listening.
    #[error("listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// TLS files.
    #[error("tls: {0}")]
    Tls(#[from] server::tls::TlsError),
    /// Tokens file.
    #[error("tokens: {0}")]
    Tokens(#[from] auth::TokensError),
    /// Bootstrap objects.
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] status::ApiError),
    /// No listen address.
    #[error("no listen address")]
    NoListen,
}

/// A running API server; dropping it stops its listeners and controllers.
pub struct Running {
    /// The bound addresses, in `Config::listen` order.
    pub addresses: Vec<SocketAddr>,
    /// The API (tests write through it directly).
    pub api: Arc<Api>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// The first bound address ([`start`] refuses to run without one).
    pub fn address(&self) -> SocketAddr {
        self.addresses
            .first()
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Opens the storage, bootstraps the default objects, binds the listeners
/// and starts the controllers. Must run inside a tokio runtime.
pub async fn start(config: Config) -> Result<Running, StartError> {
    if config.listen.is_empty() {
        return Err(StartError::NoListen);
    }
    let storage: Box<dyn Storage> = match (&config.etcd, &config.data_dir) {
        (Some(url), _) => Box::new(EtcdStorage::connect(url)?),
        (None, Some(dir)) => Box::new(LogStorage::open(dir)?),
        (None, None) => Box::<MemoryStorage>::default(),
    };
    let store = Arc::new(Store::open(storage, config.watch_history)?);
    let api = Arc::new(Api::new(store, config.api.clone()));
    let tls = match &config.tls {
        Some((cert, key)) => Some(server::tls::acceptor(cert, key)?),
        None => None,
    };
    let tokens = match &config.tokens {
        Some(path) => Some(auth::Tokens::load(path)?),
        None => None,
    };
    let mut listeners = Vec::new();
    for addr in &config.listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| StartError::Listen(*addr, e))?;
        let bound = l.local_addr().map_err(|e| StartError::Listen(*addr, e))?;
        listeners.push((l, bound));
    }
    let addresses: Vec<SocketAddr> = listeners.iter().map(|(_, a)| *a).collect();
    let advertise = config
        .advertise
        .or(addresses.first().copied())
        .ok_or(StartError::NoListen)?;
    bootstrap::ensure(&api, advertise)?;
    let frontend = Arc::new(Frontend {
        api: api.clone(),
        tokens,
        advertise: advertise.to_string(),
    });
    let mut tasks: Vec<JoinHandle<()>> = listeners
        .into_iter()
        .map(|(l, _)| tokio::spawn(server::serve(l, frontend.clone(), tls.clone())))
        .collect();
    tasks.extend(controllers::spawn(api.clone(), config.controllers.clone()));
    Ok(Running {
        addresses,
        api,
        tasks,
    })
}
