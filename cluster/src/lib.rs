//! The cluster's objects as the router sees them: nodes, pods, Services and
//! the Endpoints computed from them.
//!
//! These are the *validated* domain types. `config` turns a `config.toml`
//! into a [`Cluster`]; the data plane and the CLI only ever see a `Cluster`,
//! never the raw file. Everything here is plain data with no I/O, so a
//! `Cluster` can be sent over the control socket as JSON and rendered by the
//! CLI exactly as the running router holds it.

mod change;
mod duration;
mod key;
mod slices;

pub use change::ClusterChange;
pub use duration::human_duration;
pub use key::ObjectKey;
pub use slices::{slice_endpoints, EndpointConditions, EndpointPort, EndpointSlice, SliceEndpoint};

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// Labels and selectors: `key -> value`, ordered so output is stable.
pub type Labels = BTreeMap<String, String>;

/// The whole cluster: cluster-wide settings and every object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// The cluster-wide pod CIDR (`10.10.0.0/16` in the lab); every node's pod
    /// CIDR lies inside it.
    pub pod_cidr: Ipv4Net,
    /// The Service CIDR ClusterIPs are allocated from (`10.96.0.0/12`).
    pub service_cidr: Ipv4Net,
    /// The cluster DNS domain (`cluster.local`).
    pub dns_domain: String,
    /// The overlay between nodes.
    pub overlay: Overlay,
    /// Nodes in file order.
    pub nodes: Vec<Node>,
    /// Deployments in file order.
    pub deployments: Vec<Deployment>,
    /// Every pod, deployment-owned and standalone, with its allocated IP and
    /// node. Ordered by namespace, then name.
    pub pods: Vec<Pod>,
    /// Every Service with its ClusterIP allocated. Ordered by namespace, then name.
    pub services: Vec<Service>,
    /// `Some` when the cluster comes from a Kubernetes API: the
    /// EndpointSlices it published, ordered by namespace and name, and the
    /// only source of endpoints (as for kube-proxy, which never evaluates a
    /// selector). `None` for a cluster from `config.toml`: the endpoints are
    /// computed from [`Cluster::pods`].
    #[serde(default)]
    pub endpoint_slices: Option<Vec<EndpointSlice>>,
}

/// The VXLAN overlay's settings (flannel's `vxlan` backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    /// VXLAN network identifier (default [`Overlay::DEFAULT_VNI`]).
    pub vni: u32,
    /// UDP port (default [`Overlay::DEFAULT_PORT`]).
    pub port: u16,
    /// MTU of the underlay network; pods get this minus [`Overlay::OVERHEAD`].
    pub underlay_mtu: u16,
}

impl Overlay {
    /// flannel's default VNI.
    pub const DEFAULT_VNI: u32 = 1;
    /// flannel's and Linux's default VXLAN port (IANA's is 4789).
    pub const DEFAULT_PORT: u16 = 8472;
    /// The usual Ethernet underlay MTU.
    pub const DEFAULT_UNDERLAY_MTU: u16 = 1500;
    /// What the overlay costs on the underlay: outer IPv4 (20) + UDP (8) +
    /// VXLAN (8) + inner Ethernet (14) bytes. The one definition; the data
    /// plane's framing must add up to it.
    pub const OVERHEAD: u16 = 20 + 8 + 8 + 14;

    /// The MTU pods get: the underlay's minus the VXLAN overhead.
    pub fn pod_mtu(&self) -> u16 {
        self.underlay_mtu.saturating_sub(Self::OVERHEAD)
    }
}

impl Default for Overlay {
    fn default() -> Self {
        Self {
            vni: Self::DEFAULT_VNI,
            port: Self::DEFAULT_PORT,
            underlay_mtu: Self::DEFAULT_UNDERLAY_MTU,
        }
    }
}

/// A node: one router, one TUN device, one pod CIDR.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Node {
    /// Node name (`mac-worker`).
    pub name: String,
    /// The node's address on the underlay network (the overlay's outer IP).
    pub underlay_ip: Ipv4Addr,
    /// The pod CIDR this node allocates pod IPs from (`10.10.1.0/24`).
    pub pod_cidr: Ipv4Net,
    /// Where the next pod IP allocation starts scanning (round robin, as
    /// the host-local IPAM plugin does), so a replaced pod gets a new IP.
    pub next_pod_ip: Option<Ipv4Addr>,
}

impl Node {
    /// The pods' gateway on this node: the first host address of its pod
    /// CIDR (`10.10.1.1`), a local address of the node (flannel's `cni0`
    /// address). Pods route everything through it; the router answers
    /// from it (ICMP "fragmentation needed") and masquerades traffic from it.
    pub fn gateway(&self) -> Ipv4Addr {
        self.pod_cidr
            .hosts()
            .next()
            .unwrap_or(self.pod_cidr.network())
    }
}

/// A Deployment: `replicas` pods sharing a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Deployment name (`nginx-deployment`).
    pub name: String,
    /// Namespace (`default`).
    pub namespace: String,
    /// Desired number of pods.
    pub replicas: u32,
    /// Labels put on every pod of this deployment (the template's labels).
    pub labels: Labels,
    /// The pod-template-hash part of the pod names (`756d6b7586`).
    pub template_hash: String,
    /// Container ports of the template.
    pub ports: Vec<ContainerPort>,
    /// The node all replicas are pinned to, if any.
    pub node: Option<String>,
    /// How many pods this deployment has ever created; the next pod's name
    /// derives from it, so a replacement never reuses a name.
    pub pods_created: u64,
}

/// A container port a pod listens on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerPort {
    /// Optional port name, which a Service's `targetPort` may refer to.
    pub name: Option<String>,
    /// The port number inside the pod.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// A pod with its IP and node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pod {
    /// Pod name (`nginx-deployment-756d6b7586-7plkf`).
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Labels (selectors match on these).
    pub labels: Labels,
    /// The pod IP, inside its node's pod CIDR.
    pub ip: Ipv4Addr,
    /// Name of the node the pod runs on.
    pub node: String,
    /// Whether the pod is Ready; only ready pods become endpoints.
    pub ready: bool,
    /// The owning deployment's name, if any.
    pub owner: Option<String>,
    /// Container ports.
    pub ports: Vec<ContainerPort>,
}

/// The label that marks a pod the router serves itself, in process: the
/// cluster DNS (CoreDNS's pods carry `k8s-app: kube-dns`). Such a pod has
/// no network namespace; its node's router answers for its IP.
pub const ROUTER_HOSTED_LABEL: (&str, &str) = ("k8s-app", "kube-dns");

impl Pod {
    /// Whether the node's router serves this pod in process (see
    /// [`ROUTER_HOSTED_LABEL`]).
    pub fn is_router_hosted(&self) -> bool {
        self.labels
            .get(ROUTER_HOSTED_LABEL.0)
            .is_some_and(|v| v == ROUTER_HOSTED_LABEL.1)
    }
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP (IP protocol 6).
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP (IP protocol 17).
    #[serde(rename = "UDP")]
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn ip_number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        })
    }
}

/// Service type, as in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceType {
    /// A virtual IP inside the cluster.
    ClusterIP,
    /// ClusterIP plus a port on every node.
    NodePort,
    /// NodePort plus external ingress IPs.
    LoadBalancer,
    /// A DNS alias (CNAME) to `external_name`; no virtual IP, no proxying.
    ExternalName,
}

impl ServiceType {
    /// The type `spec.type` names (Kubernetes' spelling; absent means
    /// ClusterIP), or `None` for a type that does not exist.
    pub fn from_spec(spec_type: Option<&str>) -> Option<Self> {
        match spec_type {
            None | Some("ClusterIP") => Some(Self::ClusterIP),
            Some("NodePort") => Some(Self::NodePort),
            Some("LoadBalancer") => Some(Self::LoadBalancer),
            Some("ExternalName") => Some(Self::ExternalName),
            Some(_) => None,
        }
    }
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
            Self::ExternalName => "ExternalName",
        })
    }
}

/// `externalTrafficPolicy` / `internalTrafficPolicy`, as in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TrafficPolicy {
    /// Any ready endpoint in the cluster; external clients are masqueraded
    /// to the node so replies come back through it.
    #[default]
    Cluster,
    /// Only endpoints on the receiving node; the client IP is preserved; a
    /// node without a local endpoint drops the traffic.
    Local,
}

impl fmt::Display for TrafficPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cluster => "Cluster",
            Self::Local => "Local",
        })
    }
}

/// Session affinity, as in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionAffinity {
    /// Every flow picks its endpoint independently.
    None,
    /// The same client IP reaches the same endpoint for `timeout_seconds`.
    ClientIP {
        /// Affinity timeout (Kubernetes' default is 10800).
        timeout_seconds: u32,
    },
}

/// A Service's `targetPort`: a number, or the name of a container port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TargetPort {
    /// A port number.
    Number(u16),
    /// A container port name, resolved per pod.
    Name(String),
}

impl fmt::Display for TargetPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Name(s) => f.write_str(s),
        }
    }
}

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServicePort {
    /// Optional name (`<unset>` in `describe` when absent).
    pub name: Option<String>,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The port on the ClusterIP.
    pub port: u16,
    /// Where traffic goes on the endpoint.
    pub target_port: TargetPort,
    /// The node port, for NodePort and LoadBalancer Services.
    pub node_port: Option<u16>,
}

/// A Service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Service {
    /// Service name (`nginx-svc`).
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// The Service's own labels.
    pub labels: Labels,
    /// Pods whose labels contain all of these are its endpoints. An empty
    /// selector selects nothing (as for a Kubernetes Service without selector).
    pub selector: Labels,
    /// ClusterIP, NodePort or LoadBalancer.
    pub service_type: ServiceType,
    /// The allocated or configured ClusterIP (`0.0.0.0` when headless or
    /// ExternalName).
    pub cluster_ip: Ipv4Addr,
    /// `clusterIP: None`: no virtual IP; DNS answers with the endpoints.
    pub headless: bool,
    /// For `type: ExternalName`, the DNS name it aliases.
    pub external_name: Option<String>,
    /// The ports.
    pub ports: Vec<ServicePort>,
    /// Session affinity.
    pub session_affinity: SessionAffinity,
    /// How NodePort, LoadBalancer and external-IP traffic picks endpoints.
    pub external_traffic_policy: TrafficPolicy,
    /// How traffic from inside the cluster to the ClusterIP picks endpoints
    /// (`Local`: only the client node's endpoints, else dropped).
    pub internal_traffic_policy: TrafficPolicy,
    /// `spec.externalIPs`: addresses routed to a node that serve the ports.
    pub external_ips: Vec<Ipv4Addr>,
    /// LoadBalancer ingress IPs (`status.loadBalancer.ingress`, as MetalLB
    /// would assign them).
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// When the API server created it (`metadata.creationTimestamp`, unix
    /// seconds), for AGE; `None` for a Service read from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
}

/// One ready endpoint of one Service port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The pod's IP.
    pub ip: Ipv4Addr,
    /// The resolved target port on that pod.
    pub port: u16,
    /// The pod's name.
    pub pod: String,
    /// The pod's node.
    pub node: String,
}

impl Cluster {
    /// The Service `namespace/name`, if it exists.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.namespace == namespace && s.name == name)
    }

    /// The node called `name`, if it exists.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Every namespace: kubectl's four defaults (`default`,
    /// `kube-node-lease`, `kube-public`, `kube-system`) and every namespace
    /// an object is in, sorted.
    pub fn namespaces(&self) -> std::collections::BTreeSet<&str> {
        let mut names: std::collections::BTreeSet<&str> =
            ["default", "kube-node-lease", "kube-public", "kube-system"]
                .into_iter()
                .collect();
        names.extend(self.deployments.iter().map(|d| d.namespace.as_str()));
        names.extend(self.pods.iter().map(|p| p.namespace.as_str()));
        names.extend(self.services.iter().map(|s| s.namespace.as_str()));
        names
    }

    /// The pod `namespace/name`, if it exists.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Pod> {
        self.pods
            .iter()
            .find(|p| p.namespace == namespace && p.name == name)
    }

    /// The Deployment `namespace/name`, if it exists.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|d| d.namespace == namespace && d.name == name)
    }

    /// The ready endpoints of one port of `svc`, sorted by IP.
    ///
    /// As the Kubernetes endpoints controller computes them: the ready pods
    /// in the Service's namespace whose labels contain every selector pair
    /// (an empty selector selects nothing; an ExternalName Service, a DNS
    /// alias, has no endpoints). A numeric `targetPort` is used as is; a
    /// named one is looked up per pod among its container ports with the
    /// Service port's protocol, and pods without such a port are skipped.
    ///
    /// A cluster watched from a Kubernetes API reads them from the
    /// Service's EndpointSlices instead (see [`slice_endpoints`]).
    pub fn endpoints(&self, svc: &Service, port: &ServicePort) -> Vec<Endpoint> {
        if svc.service_type == ServiceType::ExternalName {
            return Vec::new();
        }
        if self.endpoint_slices.is_some() {
            return slice_endpoints(self.slices_of(&svc.namespace, &svc.name), port);
        }
        selector_endpoints(&self.pods, svc, port)
    }
}

/// The ready endpoints of one port of `svc` among `pods`, sorted by IP, as
/// the Kubernetes endpoints controller computes them from a selector (see
/// [`Cluster::endpoints`]; `pods` may be any superset of the Service's
/// namespace's pods).
pub fn selector_endpoints<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    svc: &Service,
    port: &ServicePort,
) -> Vec<Endpoint> {
    if svc.selector.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Endpoint> = pods
        .into_iter()
        .filter(|p| p.ready && p.namespace == svc.namespace)
        .filter(|p| {
            svc.selector
                .iter()
                .all(|(k, v)| p.labels.get(k).is_some_and(|pv| pv == v))
        })
        .filter_map(|p| {
            let target = match &port.target_port {
                TargetPort::Number(n) => *n,
                TargetPort::Name(name) => {
                    p.ports
                        .iter()
                        .find(|cp| {
                            cp.protocol == port.protocol
                                && cp.name.as_deref() == Some(name.as_str())
                        })?
                        .container_port
                }
            };
            Some(Endpoint {
                ip: p.ip,
                port: target,
                pod: p.name.clone(),
                node: p.node.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| (a.ip, a.port, &a.pod).cmp(&(b.ip, b.port, &b.pod)));
    out
}

#[cfg(test)]
mod tests;
