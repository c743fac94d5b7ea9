//! What `router run` is asked to do ([`RunOptions`]) and why it could not
//! start or had to stop ([`RunError`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use control::config::ConfigError;
use control::settings::SettingsError;
use dataplane::engine::DataplaneConfig;

use super::capture;

/// What `router run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The cluster file, or in Kubernetes mode the router's settings file
    /// ([`control::settings`]).
    pub config: PathBuf,
    /// Watch the Kubernetes API with this kubeconfig (Kubernetes mode even
    /// without `[kubernetes]` in the settings file).
    pub kubeconfig: Option<PathBuf>,
    /// This node's name in the cluster file.
    pub node: String,
    /// TUN device name.
    pub tun: String,
    /// TUN MTU.
    pub mtu: u16,
    /// Ask for TUN offload (virtio-net header, TSO/USO super-packets);
    /// without it, or when the kernel refuses, one read and one write per
    /// packet.
    pub offload: bool,
    /// TUN queues, one worker thread each (at least one; `IFF_MULTI_QUEUE`
    /// and an `SO_REUSEPORT` group of overlay sockets when more).
    pub queues: usize,
    /// Control socket path.
    pub control: PathBuf,
    /// Data plane settings.
    pub dataplane: DataplaneConfig,
    /// Write a pcapng capture here.
    pub capture: Option<PathBuf>,
    /// Capture only this Service (`ns/name` or `name`).
    pub capture_service: Option<String>,
    /// How large the capture may grow (size per file, files kept).
    pub capture_limit: capture::CaptureLimit,
    /// Install and keep the node's routing rules and routes
    /// ([`super::plumbing`]); off when something else manages them.
    pub manage_routing: bool,
    /// The conntrack journal's path (`None`: beside the control socket,
    /// `NODE.conntrack`; `none`: no journal).
    pub state: Option<PathBuf>,
    /// Where to serve `/metrics` and `/healthz` (`None`: nowhere).
    pub metrics: Option<SocketAddr>,
}

/// Why the router could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The cluster file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The settings file is invalid (Kubernetes mode).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The watch of the Kubernetes API could not start or stopped.
    #[error("watching the Kubernetes API: {0}")]
    Watch(#[from] control::kube::WatchError),
    /// The node is not in the cluster file.
    #[error("node {node:?} is not in {config} (nodes there: {known})")]
    UnknownNode {
        /// The name asked for.
        node: String,
        /// The file.
        config: String,
        /// The names present.
        known: String,
    },
    /// The TUN device could not be created.
    #[error(
        "creating TUN device {name:?}: {source} (needs root or CAP_NET_ADMIN, and /dev/net/tun)"
    )]
    Tun {
        /// Device name.
        name: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The overlay's UDP socket could not be bound.
    #[error("binding the overlay socket {addr}: {source} (is another router or a vxlan device using the port?)")]
    Overlay {
        /// The address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The capture could not be started.
    #[error(transparent)]
    Capture(#[from] capture::CaptureError),
    /// The control socket could not be set up.
    #[error("control socket {path}: {source}")]
    Control {
        /// Socket path.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// A worker thread panicked (a bug: the log has its message).
    #[error("worker {worker} panicked; stopping the router")]
    WorkerPanicked {
        /// The worker's index (its TUN queue).
        worker: usize,
    },
    /// The event loop failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// OS error.
        source: std::io::Error,
    },
}
