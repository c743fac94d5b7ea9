//! `control`: the control plane. It turns `config.toml` (the cluster in
//! Kubernetes' field names) into the validated [`cluster::Cluster`] the data
//! plane serves, allocates pod IPs, ClusterIPs and NodePorts, runs the
//! deployment controller, and computes the store's changes for
//! `router apply` / `router delete`. No packet code lives here.

pub mod config;

pub use config::ConfigError;
