//! [`ClusterChange`]: one object added, changed or removed, as a watch of
//! the Kubernetes API reports it, and [`Cluster::apply_change`], its effect
//! on the whole model.
//!
//! The data plane applies the same changes incrementally (only what depends
//! on the object); `apply_change` is the reference those incremental
//! updates are tested against.

use serde::{Deserialize, Serialize};

use crate::{Cluster, EndpointSlice, Node, ObjectKey, Pod, Service};

/// One object added or changed (the whole new object) or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterChange {
    /// A Service was added or changed.
    Service(Service),
    /// A Service was removed.
    ServiceDeleted(ObjectKey),
    /// An EndpointSlice was added or changed.
    EndpointSlice(EndpointSlice),
    /// An EndpointSlice was removed.
    EndpointSliceDeleted(ObjectKey),
    /// A node was added or changed (it has a pod CIDR and an address).
    Node(Node),
    /// A node was removed (or lost its pod CIDR or address).
    NodeDeleted(String),
    /// A pod of interest (one on this node) was added or changed; it has
    /// an IP.
    Pod(Pod),
    /// A pod was removed (or lost its IP).
    PodDeleted(ObjectKey),
}

/// Inserts or replaces `item` in `list`, kept sorted by `key`.
fn upsert_sorted<T, K: Ord>(list: &mut Vec<T>, item: T, key: impl Fn(&T) -> K) {
    match list.binary_search_by(|probe| key(probe).cmp(&key(&item))) {
        Ok(i) => list[i] = item,
        Err(i) => list.insert(i, item),
    }
}

impl Cluster {
    /// A cluster with these settings and no objects yet, whose endpoints
    /// will come from EndpointSlices (`endpoint_slices: Some`): where a
    /// watch of the Kubernetes API starts, applying its changes.
    pub fn watched(
        pod_cidr: ipnet::Ipv4Net,
        service_cidr: ipnet::Ipv4Net,
        dns_domain: String,
        overlay: crate::Overlay,
    ) -> Self {
        Cluster {
            pod_cidr,
            service_cidr,
            dns_domain,
            overlay,
            nodes: Vec::new(),
            deployments: Vec::new(),
            pods: Vec::new(),
            services: Vec::new(),
            endpoint_slices: Some(Vec::new()),
        }
    }

    /// Applies one change to the whole model. Services, pods and slices stay
    /// sorted by namespace and name; a new node goes last.
    pub fn apply_change(&mut self, change: &ClusterChange) {
        match change {
            ClusterChange::Service(svc) => upsert_sorted(&mut self.services, svc.clone(), |s| {
                (s.namespace.clone(), s.name.clone())
            }),
            ClusterChange::ServiceDeleted(key) => self
                .services
                .retain(|s| s.namespace != key.namespace || s.name != key.name),
            ClusterChange::EndpointSlice(slice) => upsert_sorted(
                self.endpoint_slices.get_or_insert_with(Vec::new),
                slice.clone(),
                |s: &EndpointSlice| s.key.clone(),
            ),
            ClusterChange::EndpointSliceDeleted(key) => {
                if let Some(slices) = &mut self.endpoint_slices {
                    slices.retain(|s| &s.key != key);
                }
            }
            ClusterChange::Node(node) => {
                match self.nodes.iter_mut().find(|n| n.name == node.name) {
                    Some(n) => *n = node.clone(),
                    None => self.nodes.push(node.clone()),
                }
            }
            ClusterChange::NodeDeleted(name) => self.nodes.retain(|n| &n.name != name),
            ClusterChange::Pod(pod) => upsert_sorted(&mut self.pods, pod.clone(), |p| {
                (p.namespace.clone(), p.name.clone())
            }),
            ClusterChange::PodDeleted(key) => self
                .pods
                .retain(|p| p.namespace != key.namespace || p.name != key.name),
        }
    }

    /// The slices of Service `namespace/name` (empty for a cluster built
    /// from `config.toml`, whose endpoints come from its pods).
    pub fn slices_of<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        self.endpoint_slices
            .iter()
            .flatten()
            .filter(move |s| s.key.namespace == namespace && s.service == name)
    }
}
