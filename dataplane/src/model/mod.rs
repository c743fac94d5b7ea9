//! [`Model`]: the cluster objects one node serves, indexed by key, so that
//! one watch event ([`ClusterChange`]) is applied at a cost independent of
//! the number of Services, and so that the node's data plane and DNS can
//! ask "this Service, its slices, its endpoints" without scanning.
//!
//! [`Model::apply_change`] reports what the change touched ([`Touched`]):
//! the Services whose frontends or endpoints may differ, whether the nodes
//! or this node's pods changed. The data plane recomputes exactly those.

use ipnet::Ipv4Net;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use cluster::{
    selector_endpoints, slice_endpoints, Cluster, ClusterChange, Endpoint, EndpointSlice, Node,
    ObjectKey, Overlay, Pod, Service, ServicePort, ServiceType,
};

/// The namespaces every Kubernetes cluster has.
const BUILTIN_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// What one change touched, for the data plane to recompute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Services whose frontends or endpoints may have changed (present in
    /// the model: recompute; absent: remove).
    pub services: BTreeSet<ObjectKey>,
    /// Every Service must be recomputed (the endpoint source changed from
    /// pods to EndpointSlices).
    pub all_services: bool,
    /// The nodes changed (peers, this node's address).
    pub nodes: bool,
    /// A pod changed: before and after (either may be absent).
    pub pod: Option<(Option<Pod>, Option<Pod>)>,
}

/// The cluster objects, indexed. See the module documentation.
#[derive(Debug, Clone)]
pub struct Model {
    /// The cluster-wide pod CIDR.
    pub pod_cidr: Ipv4Net,
    /// The Service CIDR.
    pub service_cidr: Ipv4Net,
    /// The cluster DNS domain.
    pub dns_domain: String,
    /// The overlay's settings.
    pub overlay: Overlay,
    /// Nodes, in the cluster's order (a new node goes last).
    nodes: Vec<Node>,
    services: HashMap<ObjectKey, Service>,
    /// `Some`: endpoints come from EndpointSlices only (a Kubernetes API);
    /// `None`: from the pods' labels (`config.toml`).
    slices: Option<HashMap<ObjectKey, EndpointSlice>>,
    /// Service key -> the keys of its slices, sorted as the cluster
    /// orders slices. (A sorted Vec: a Service has one slice or a few, and
    /// a one-key BTreeSet costs a 544-byte node: 5 MiB at 10,000 Services.)
    slices_of: HashMap<ObjectKey, Vec<ObjectKey>>,
    pods: BTreeMap<ObjectKey, Pod>,
    /// How many pods, Services and Deployments each namespace holds.
    namespaces: HashMap<String, usize>,
}

fn service_key(s: &Service) -> ObjectKey {
    ObjectKey::new(s.namespace.clone(), s.name.clone())
}

fn pod_key(p: &Pod) -> ObjectKey {
    ObjectKey::new(p.namespace.clone(), p.name.clone())
}

impl Model {
    /// The model of a whole cluster.
    pub fn from_cluster(cluster: &Cluster) -> Self {
        let mut m = Self {
            pod_cidr: cluster.pod_cidr,
            service_cidr: cluster.service_cidr,
            dns_domain: cluster.dns_domain.clone(),
            overlay: cluster.overlay,
            nodes: cluster.nodes.clone(),
            services: HashMap::with_capacity(cluster.services.len()),
            slices: cluster.endpoint_slices.as_ref().map(|_| HashMap::new()),
            slices_of: HashMap::new(),
            pods: BTreeMap::new(),
            namespaces: HashMap::new(),
        };
        for d in &cluster.deployments {
            m.count_namespace(&d.namespace, true);
        }
        for s in &cluster.services {
            m.upsert_service(s.clone());
        }
        for s in cluster.endpoint_slices.iter().flatten() {
            m.upsert_slice(s.clone());
        }
        for p in &cluster.pods {
            m.upsert_pod(p.clone());
        }
        m
    }

    /// The cluster the model holds, ordered as [`Cluster::apply_change`]
    /// orders it (Services, slices and pods by namespace and name, nodes in
    /// arrival order), so a router answers `get` from its data plane's own
    /// objects instead of keeping a copy. A model holds no Deployments
    /// (only their namespaces): a watched cluster has none.
    pub fn to_cluster(&self) -> Cluster {
        let mut services: Vec<Service> = self.services.values().cloned().collect();
        services.sort_unstable_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let endpoint_slices = self.slices.as_ref().map(|slices| {
            let mut v: Vec<EndpointSlice> = slices.values().cloned().collect();
            v.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            v
        });
        Cluster {
            pod_cidr: self.pod_cidr,
            service_cidr: self.service_cidr,
            dns_domain: self.dns_domain.clone(),
            overlay: self.overlay,
            nodes: self.nodes.clone(),
            deployments: Vec::new(),
            pods: self.pods.values().cloned().collect(),
            services,
            endpoint_slices,
        }
    }

    /// Applies one change (as [`Cluster::apply_change`] does to the whole
    /// cluster) and reports what it touched.
    pub fn apply_change(&mut self, change: &ClusterChange) -> Touched {
        let mut touched = Touched::default();
        match change {
            ClusterChange::Service(svc) => {
                touched.services.insert(service_key(svc));
                self.upsert_service(svc.clone());
            }
            ClusterChange::ServiceDeleted(key) => {
                if let Some(old) = self.services.remove(key) {
                    self.count_namespace(&old.namespace, false);
                }
                touched.services.insert(key.clone());
            }
            ClusterChange::EndpointSlice(slice) => {
                if self.slices.is_none() {
                    // The endpoints' source changes from pods to slices.
                    self.slices = Some(HashMap::new());
                    touched.all_services = true;
                }
                touched.services.insert(slice.service_key());
                if let Some(old) = self.upsert_slice(slice.clone()) {
                    touched.services.insert(old.service_key());
                }
            }
            ClusterChange::EndpointSliceDeleted(key) => {
                if let Some(old) = self.remove_slice(key) {
                    touched.services.insert(old.service_key());
                }
            }
            ClusterChange::Node(node) => {
                touched.nodes = true;
                match self.nodes.iter_mut().find(|n| n.name == node.name) {
                    Some(n) => *n = node.clone(),
                    None => self.nodes.push(node.clone()),
                }
            }
            ClusterChange::NodeDeleted(name) => {
                touched.nodes = true;
                self.nodes.retain(|n| &n.name != name);
            }
            ClusterChange::Pod(pod) => {
                let old = self.upsert_pod(pod.clone());
                self.touch_selecting(&mut touched, [old.as_ref(), Some(pod)]);
                touched.pod = Some((old, Some(pod.clone())));
            }
            ClusterChange::PodDeleted(key) => {
                let old = self.pods.remove(key);
                if let Some(p) = &old {
                    self.count_namespace(&p.namespace, false);
                }
                self.touch_selecting(&mut touched, [old.as_ref(), None]);
                touched.pod = Some((old, None));
            }
        }
        touched
    }

    /// Without slices (a `config.toml` cluster), a pod's labels make it an
    /// endpoint: marks the Services selecting `pods` (this scans the
    /// Services; a Kubernetes-sourced model never does).
    fn touch_selecting(&self, touched: &mut Touched, pods: [Option<&Pod>; 2]) {
        if self.slices.is_some() {
            return;
        }
        for pod in pods.into_iter().flatten() {
            touched.services.extend(
                self.services
                    .iter()
                    .filter(|(_, s)| {
                        s.namespace == pod.namespace
                            && !s.selector.is_empty()
                            && s.selector
                                .iter()
                                .all(|(k, v)| pod.labels.get(k).is_some_and(|pv| pv == v))
                    })
                    .map(|(k, _)| k.clone()),
            );
        }
    }

    fn count_namespace(&mut self, namespace: &str, add: bool) {
        if add {
            *self.namespaces.entry(namespace.to_owned()).or_default() += 1;
        } else if let Some(n) = self.namespaces.get_mut(namespace) {
            *n -= 1;
            if *n == 0 {
                self.namespaces.remove(namespace);
            }
        }
    }

    fn upsert_service(&mut self, svc: Service) {
        match self.services.entry(service_key(&svc)) {
            Entry::Occupied(mut e) => {
                e.insert(svc);
            }
            Entry::Vacant(e) => {
                let namespace = svc.namespace.clone();
                e.insert(svc);
                self.count_namespace(&namespace, true);
            }
        }
    }

    /// Inserts or replaces a slice; returns the one it replaced.
    fn upsert_slice(&mut self, slice: EndpointSlice) -> Option<EndpointSlice> {
        let old = self.remove_slice(&slice.key);
        let keys = self.slices_of.entry(slice.service_key()).or_default();
        if let Err(at) = keys.binary_search(&slice.key) {
            keys.insert(at, slice.key.clone());
        }
        self.slices
            .get_or_insert_with(HashMap::new)
            .insert(slice.key.clone(), slice);
        old
    }

    fn remove_slice(&mut self, key: &ObjectKey) -> Option<EndpointSlice> {
        let old = self.slices.as_mut()?.remove(key)?;
        let service = old.service_key();
        if let Some(keys) = self.slices_of.get_mut(&service) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.slices_of.remove(&service);
            }
        }
        Some(old)
    }

    /// Inserts or replaces a pod; returns the one it replaced.
    fn upsert_pod(&mut self, pod: Pod) -> Option<Pod> {
        let namespace = pod.namespace.clone();
        let old = self.pods.insert(pod_key(&pod), pod);
        if old.is_none() {
            self.count_namespace(&namespace, true);
        }
        old
    }

    /// The Service `namespace/name`.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.services.get(&ObjectKey::new(namespace, name))
    }

    /// The Service with `key`.
    pub fn service_by_key(&self, key: &ObjectKey) -> Option<&Service> {
        self.services.get(key)
    }

    /// Every Service, in no particular order.
    pub fn services(&self) -> impl Iterator<Item = (&ObjectKey, &Service)> {
        self.services.iter()
    }

    /// The nodes, in the cluster's order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The pods (every pod of a `config.toml` cluster; this node's pods of
    /// a watched one).
    pub fn pods(&self) -> impl Iterator<Item = &Pod> + Clone {
        self.pods.values()
    }

    /// The pod `namespace/name`.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Pod> {
        self.pods.get(&ObjectKey::new(namespace, name))
    }

    /// Whether namespace `ns` exists: a builtin one, or one holding a pod,
    /// Service or Deployment.
    pub fn namespace_exists(&self, ns: &str) -> bool {
        BUILTIN_NAMESPACES.contains(&ns) || self.namespaces.contains_key(ns)
    }

    /// The endpoints of one port of `svc`, as [`Cluster::endpoints`]
    /// computes them: from the Service's slices (read through the index),
    /// or from the selected pods of its namespace.
    pub fn endpoints(&self, svc: &Service, port: &ServicePort) -> Vec<Endpoint> {
        if svc.service_type == ServiceType::ExternalName {
            return Vec::new();
        }
        match &self.slices {
            Some(slices) => {
                let keys = self
                    .slices_of
                    .get(&ObjectKey::new(svc.namespace.clone(), svc.name.clone()));
                slice_endpoints(
                    keys.into_iter().flatten().filter_map(|k| slices.get(k)),
                    port,
                )
            }
            None => {
                let from = ObjectKey::new(svc.namespace.clone(), String::new());
                let in_namespace = self
                    .pods
                    .range(from..)
                    .take_while(|(k, _)| k.namespace == svc.namespace)
                    .map(|(_, p)| p);
                selector_endpoints(in_namespace, svc, port)
            }
        }
    }
}

#[cfg(test)]
mod tests;
