//! The router's own settings file, like kube-proxy's
//! KubeProxyConfiguration plus flannel's `net-conf.json`: where the
//! Kubernetes API is and the cluster-wide network settings.
//!
//! ```toml
//! [kubernetes]
//! kubeconfig = "/etc/ksr/router.kubeconfig"   # optional
//!
//! [cluster]
//! podCIDR = "10.10.0.0/16"
//! serviceCIDR = "10.96.0.0/12"   # optional, as are the keys below
//! dnsDomain = "cluster.local"
//! vxlanVNI = 1
//! vxlanPort = 8472
//! underlayMTU = 1500
//! ```
//!
//! A file with `[kubernetes]` (or read with a kubeconfig given on the
//! command line) makes the router watch the API for its objects; it may
//! not hold `[[nodes]]`, `[[deployments]]`, `[[pods]]` or `[[services]]`.
//! A file without it is the object file the router has always read
//! ([`crate::parse`]), unchanged. The `[cluster]` keys are validated as in
//! the object file, with the same messages; unknown keys are errors.

use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::de::IgnoredAny;
use serde::Deserialize;

use cluster::{Cluster, Overlay};

use crate::error::ConfigError;
use crate::parse::build_cluster_settings;
use crate::schema::{toml_error, RawCluster};

#[cfg(test)]
mod tests;

/// The cluster-wide settings: CIDRs, DNS domain, overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The cluster's pod CIDR (every node's pod CIDR lies inside it).
    pub pod_cidr: Ipv4Net,
    /// The Service CIDR.
    pub service_cidr: Ipv4Net,
    /// The cluster DNS domain.
    pub dns_domain: String,
    /// The VXLAN overlay.
    pub overlay: Overlay,
}

impl ClusterSettings {
    /// A cluster with these settings and no objects yet, whose endpoints
    /// will come from EndpointSlices (`endpoint_slices: Some`).
    pub fn empty_cluster(&self) -> Cluster {
        Cluster::watched(
            self.pod_cidr,
            self.service_cidr,
            self.dns_domain.clone(),
            self.overlay,
        )
    }
}

/// `[kubernetes]`: how to reach the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesSettings {
    /// The kubeconfig (a relative path in the file is relative to the
    /// file's directory); `None`: `$KUBECONFIG`, else in-cluster.
    pub kubeconfig: Option<PathBuf>,
}

/// A settings file for Kubernetes mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterSettings {
    /// How to reach the API.
    pub kubernetes: KubernetesSettings,
    /// The cluster-wide settings.
    pub cluster: ClusterSettings,
}

/// What `router run --config FILE` runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterConfig {
    /// Watch a Kubernetes API.
    Kubernetes(RouterSettings),
    /// Serve the objects of an object file (the lab's `config.toml`).
    Objects(Cluster),
}

/// Why a settings file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file is unreadable or a key is invalid (the object file's
    /// errors and messages).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Kubernetes mode with objects in the file.
    #[error("{file}: holds {kinds} beside [kubernetes]: a router watching Kubernetes takes its objects from the API; move them to Kubernetes manifests and `kubectl apply -f` them (nodes register as Node objects with spec.podCIDR and an InternalIP)")]
    ObjectsWithKubernetes {
        /// The file.
        file: String,
        /// The object tables present (`[[nodes]], [[services]]`).
        kinds: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    kubernetes: Option<RawKubernetes>,
    cluster: RawCluster,
    nodes: Option<IgnoredAny>,
    deployments: Option<IgnoredAny>,
    pods: Option<IgnoredAny>,
    services: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    kubeconfig: Option<String>,
}

/// Reads `path`: Kubernetes mode when it has `[kubernetes]` or
/// `kubeconfig` is given (which then wins over the file's), else the
/// object file as [`crate::load`] reads it.
pub fn load(path: &Path, kubeconfig: Option<&Path>) -> Result<RouterConfig, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    parse(&text, &path.display().to_string(), dir, kubeconfig)
}

/// [`load`] on a file's text; `file` names it in errors and `dir` is
/// where a relative `kubeconfig` is taken from.
pub fn parse(
    text: &str,
    file: &str,
    dir: &Path,
    kubeconfig: Option<&Path>,
) -> Result<RouterConfig, SettingsError> {
    let raw: RawSettings = toml::from_str(text).map_err(|e| toml_error(text, e))?;
    if raw.kubernetes.is_none() && kubeconfig.is_none() {
        return Ok(RouterConfig::Objects(crate::parse(text)?));
    }
    let present = [
        ("[[nodes]]", raw.nodes.is_some()),
        ("[[deployments]]", raw.deployments.is_some()),
        ("[[pods]]", raw.pods.is_some()),
        ("[[services]]", raw.services.is_some()),
    ];
    let kinds: Vec<&str> = present
        .iter()
        .filter(|(_, p)| *p)
        .map(|(k, _)| *k)
        .collect();
    if !kinds.is_empty() {
        return Err(SettingsError::ObjectsWithKubernetes {
            file: file.to_owned(),
            kinds: kinds.join(", "),
        });
    }
    let from_file = raw
        .kubernetes
        .and_then(|k| k.kubeconfig)
        .map(|p| dir.join(p));
    Ok(RouterConfig::Kubernetes(RouterSettings {
        kubernetes: KubernetesSettings {
            kubeconfig: kubeconfig.map(Path::to_path_buf).or(from_file),
        },
        cluster: build_cluster_settings(&raw.cluster)?,
    }))
}
