//! Loading and validating `config.toml` into a [`cluster::Cluster`],
//! and the lab's live "API server" on top of it: [`apply`], [`delete_pod`],
//! [`delete_service`], [`delete_deployment`] and [`set_ready`] edit a
//! *store* (a file in this same schema with everything allocated written
//! out, see [`to_toml`]).
//!
//! Two layers, like a Kubernetes API server: the file is first deserialized
//! into raw structs that mirror the TOML exactly (`deny_unknown_fields`, so a
//! misspelt key is an error, and integers are read as `i64` so that an out of
//! range value gets a message from us rather than from serde); then those are
//! validated and turned into a [`Cluster`], allocating what the file leaves
//! out the way the control plane would:
//!
//! * The deployment controller: explicit `[[pods]]` with an `owner` count
//!   toward their Deployment's `replicas`; the missing ones are generated,
//!   the extra ones removed (not-ready first, then by name descending).
//!   The k-th pod a Deployment ever generates (`podsCreated` counts them) is
//!   named `<deployment>-<pod-template-hash>-<suffix>`, both parts drawn
//!   from Kubernetes' `SafeEncodeString` alphabet and derived with xxh3 of
//!   (namespace/name, hash, k), so the same file always yields the same
//!   names and a replacement never reuses one. A generated pod goes to the
//!   Deployment's pinned node, else to the node with the fewest of its pods
//!   (ties: the first in `[[nodes]]` order, so replica i of a new
//!   Deployment lands on node i mod the number of nodes).
//! * Pod IPs: explicit ones first, then round robin like the host-local
//!   IPAM plugin: from the node's `nextPodIP` (default `.2`; `.1` is the
//!   node's gateway) upward, wrapping around, skipping used addresses.
//! * ClusterIPs: xxh3 of `namespace/name` into the Service CIDR with linear
//!   probing, skipping the `kubernetes` (first host) and cluster DNS (tenth
//!   host) addresses. Headless (`clusterIP = "None"`) and ExternalName
//!   Services get none.
//! * NodePorts for NodePort/LoadBalancer ports that do not set one: xxh3 into
//!   30000-32767 with linear probing.
//!
//! Settings the file may leave out get flannel's and Kubernetes' defaults:
//! the VXLAN overlay (`vxlanVNI` 1, `vxlanPort` 8472, `underlayMTU` 1500),
//! `externalTrafficPolicy` (`Cluster`, on externally-accessible Services)
//! and `internalTrafficPolicy` (`Cluster`).
//! External and LoadBalancer IPs are never allocated: a Service has exactly
//! the `externalIPs` and `loadBalancerIPs` the file gives it.
//!
//! Every error names the key path and the offending value, e.g.
//! `services[1] "default/nginx-svc": clusterIP "10.200.0.1" is outside serviceCIDR 10.96.0.0/12`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;
use xxhash_rust::xxh3::xxh3_64;

use cluster::{
    Cluster, ContainerPort, Deployment, Labels, Node, Overlay, Pod, Protocol, Service, ServicePort,
    ServiceType, SessionAffinity, TargetPort, TrafficPolicy,
};

/// Kubernetes' `SafeEncodeString` alphabet (no vowels, no confusable digits),
/// used for pod-template-hashes and pod name suffixes.
const SAFE_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";
/// Length of a generated pod-template-hash.
const TEMPLATE_HASH_LEN: usize = 10;
/// Length of a generated pod name suffix.
const POD_SUFFIX_LEN: usize = 5;
/// Kubernetes truncates a `generateName` prefix to this many characters so
/// that prefix plus suffix fits a 63-character name.
const MAX_GENERATE_NAME_PREFIX: usize = 63 - POD_SUFFIX_LEN;
/// Most replicas a Deployment may ask for.
const MAX_REPLICAS: i64 = 1000;
/// The NodePort range (Kubernetes' default `--service-node-port-range`).
const NODE_PORT_MIN: i64 = 30000;
/// Upper end of the NodePort range.
const NODE_PORT_MAX: i64 = 32767;
/// Kubernetes' default ClientIP affinity timeout.
const DEFAULT_AFFINITY_TIMEOUT: i64 = 10800;
/// Longest ClientIP affinity timeout Kubernetes accepts (one day).
const MAX_AFFINITY_TIMEOUT: i64 = 86400;
/// Service CIDR when `cluster.serviceCIDR` is absent (kubeadm's default).
const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// DNS domain when `cluster.dnsDomain` is absent.
const DEFAULT_DNS_DOMAIN: &str = "cluster.local";
/// Namespace of objects that do not name one.
const DEFAULT_NAMESPACE: &str = "default";
/// Largest VXLAN network identifier (24 bits).
const MAX_VNI: i64 = 0xff_ffff;
/// Smallest underlay MTU: IPv6's minimum, so pods still get 1230 bytes.
const MIN_UNDERLAY_MTU: i64 = 1280;
/// Largest underlay MTU: a common jumbo frame.
const MAX_UNDERLAY_MTU: i64 = 9000;

/// Why a config file was refused. Every message names the key path and the
/// bad value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, a missing key or a
    /// value of the wrong type. Keeps the TOML parser's line and column.
    #[error("invalid config: {message}")]
    Toml {
        /// The TOML parser's message.
        message: String,
    },
    /// There is no `[[nodes]]` entry.
    #[error("no nodes: the config needs at least one [[nodes]] entry")]
    NoNodes,
    /// A required name is empty.
    #[error("{key} is empty: a name is required")]
    EmptyName {
        /// Key path.
        key: String,
    },
    /// A name is not a DNS-1123 label.
    #[error("{key} {value:?} is not a valid DNS-1123 label: {reason}")]
    InvalidName {
        /// Key path.
        key: String,
        /// The name.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `cluster.dnsDomain` is not a DNS-1123 subdomain.
    #[error("{key} {value:?} is not a valid DNS domain: {reason}")]
    InvalidDnsDomain {
        /// Key path.
        key: String,
        /// The domain.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A CIDR does not parse.
    #[error("{key} {value:?} is not a valid IPv4 CIDR (expected a.b.c.d/len): {reason}")]
    InvalidCidr {
        /// Key path.
        key: String,
        /// The text.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A CIDR has bits set after its prefix.
    #[error("{key} {value:?} has host bits set (did you mean {network}?)")]
    CidrHostBits {
        /// Key path.
        key: String,
        /// The text.
        value: String,
        /// The network it probably meant.
        network: Ipv4Net,
    },
    /// An IP address does not parse.
    #[error("{key} {value:?} is not a valid IPv4 address: {reason}")]
    InvalidIp {
        /// Key path.
        key: String,
        /// The text.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The Service CIDR and the pod CIDR overlap.
    #[error("cluster.serviceCIDR {service_cidr} overlaps cluster.podCIDR {pod_cidr}")]
    CidrsOverlap {
        /// The Service CIDR.
        service_cidr: Ipv4Net,
        /// The pod CIDR.
        pod_cidr: Ipv4Net,
    },
    /// A node's pod CIDR is not inside the cluster pod CIDR.
    #[error("{key} \"{value}\" is outside cluster.podCIDR {cluster}")]
    NodeCidrOutsideCluster {
        /// Key path.
        key: String,
        /// The node's pod CIDR.
        value: Ipv4Net,
        /// The cluster pod CIDR.
        cluster: Ipv4Net,
    },
    /// Two nodes' pod CIDRs overlap.
    #[error("{key} \"{value}\" overlaps {other_key} \"{other}\"")]
    NodeCidrOverlap {
        /// Key path.
        key: String,
        /// This node's pod CIDR.
        value: Ipv4Net,
        /// Key path of the other node's pod CIDR.
        other_key: String,
        /// The other node's pod CIDR.
        other: Ipv4Net,
    },
    /// Two nodes have the same name.
    #[error("{key} {value:?} is already used by {first}")]
    DuplicateNode {
        /// Key path.
        key: String,
        /// The name.
        value: String,
        /// The node that has it first.
        first: String,
    },
    /// Two nodes have the same underlay address.
    #[error("{key} \"{value}\" is already used by {first}")]
    DuplicateNodeAddress {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// The node that has it first.
        first: String,
    },
    /// A node's underlay address lies inside the pod or Service CIDR.
    #[error("{key} \"{value}\" lies inside {range_key} {range}; the underlay must be outside the cluster's ranges")]
    NodeAddressInClusterRange {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// `cluster.podCIDR` or `cluster.serviceCIDR`.
        range_key: &'static str,
        /// That range.
        range: Ipv4Net,
    },
    /// An object names a node that does not exist.
    #[error("{key} {value:?} is not a node of this cluster (nodes: {known})")]
    UnknownNode {
        /// Key path.
        key: String,
        /// The node name.
        value: String,
        /// The nodes that do exist, comma-separated.
        known: String,
    },
    /// Two objects of one kind have the same name in a namespace.
    #[error("{key} {value:?} is already used by {first} in namespace {namespace:?}")]
    DuplicateName {
        /// Key path.
        key: String,
        /// The name.
        value: String,
        /// The namespace.
        namespace: String,
        /// The object that has it first.
        first: String,
    },
    /// `replicas` is negative or more than 1000.
    #[error("{key} {value} is out of range 0-1000")]
    ReplicasOutOfRange {
        /// Key path.
        key: String,
        /// The value.
        value: i64,
    },
    /// `templateHash` is not 1-10 lowercase letters/digits.
    #[error("{key} {value:?} is not a valid pod-template-hash: it must be 1 to 10 lowercase letters or digits")]
    InvalidTemplateHash {
        /// Key path.
        key: String,
        /// The value.
        value: String,
    },
    /// A port number is 0 or above 65535.
    #[error("{key} {value} is out of range 1-65535")]
    PortOutOfRange {
        /// Key path.
        key: String,
        /// The value.
        value: i64,
    },
    /// A protocol is not `TCP` or `UDP`.
    #[error("{key} {value:?} is not supported: must be \"TCP\" or \"UDP\"")]
    UnsupportedProtocol {
        /// Key path.
        key: String,
        /// The value.
        value: String,
    },
    /// A container port name is not an IANA service name.
    #[error("{key} {value:?} is not a valid port name: {reason}")]
    InvalidPortName {
        /// Key path.
        key: String,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two ports of one pod template or Service share a name.
    #[error("{key} {value:?} is already used by {first}")]
    DuplicatePortName {
        /// Key path.
        key: String,
        /// The name.
        value: String,
        /// The port that has it first.
        first: String,
    },
    /// A Service's `targetPort` string is not a valid port name.
    #[error("{key} {value:?} is neither a port number nor a valid port name: {reason}")]
    InvalidTargetPort {
        /// Key path.
        key: String,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two ports of one Service have the same port and protocol.
    #[error("{key} {port}/{protocol} duplicates {first}")]
    DuplicateServicePort {
        /// Key path of the port.
        key: String,
        /// The port number.
        port: u16,
        /// The protocol.
        protocol: Protocol,
        /// The port that has it first.
        first: String,
    },
    /// A Service has no ports.
    #[error("{key} is empty: a Service needs at least one port")]
    NoServicePorts {
        /// Key path.
        key: String,
    },
    /// `type` is not ClusterIP, NodePort, LoadBalancer or ExternalName.
    #[error(
        "{key} {value:?} is not supported: must be \"ClusterIP\", \"NodePort\", \"LoadBalancer\" or \"ExternalName\""
    )]
    UnsupportedServiceType {
        /// Key path.
        key: String,
        /// The value.
        value: String,
    },
    /// A `nodePort` on a ClusterIP Service.
    #[error("{key} {value} is not allowed on a ClusterIP Service (set type = \"NodePort\")")]
    NodePortOnClusterIp {
        /// Key path.
        key: String,
        /// The value.
        value: i64,
    },
    /// A `nodePort` outside 30000-32767.
    #[error("{key} {value} is outside the node port range 30000-32767")]
    NodePortOutOfRange {
        /// Key path.
        key: String,
        /// The value.
        value: i64,
    },
    /// Two Service ports claim the same node port.
    #[error("{key} {value} is already used by {first}")]
    DuplicateNodePort {
        /// Key path.
        key: String,
        /// The node port.
        value: u16,
        /// The port that has it first.
        first: String,
    },
    /// Every node port is taken.
    #[error("{key}: no free node port left in 30000-32767")]
    NodePortsExhausted {
        /// Key path.
        key: String,
    },
    /// `sessionAffinity` is not `None` or `ClientIP`.
    #[error("{key} {value:?} is not supported: must be \"None\" or \"ClientIP\"")]
    InvalidSessionAffinity {
        /// Key path.
        key: String,
        /// The value.
        value: String,
    },
    /// `sessionAffinityTimeoutSeconds` outside 1-86400.
    #[error("{key} {value} is out of range 1-86400")]
    AffinityTimeoutOutOfRange {
        /// Key path.
        key: String,
        /// The value.
        value: i64,
    },
    /// `sessionAffinityTimeoutSeconds` without `sessionAffinity = "ClientIP"`.
    #[error("{key} {value} is only allowed with sessionAffinity = \"ClientIP\"")]
    AffinityTimeoutWithoutClientIp {
        /// Key path.
        key: String,
        /// The value.
        value: i64,
    },
    /// `clusterIP = "None"` (headless) on a NodePort or LoadBalancer
    /// Service.
    #[error("{key} \"None\" (headless) is not allowed on a {service_type} Service: node ports and load balancers need a ClusterIP to forward to")]
    HeadlessWithType {
        /// Key path.
        key: String,
        /// The Service's type.
        service_type: ServiceType,
    },
    /// `externalIPs` on a headless Service.
    #[error("{key} {value:?} is not allowed on a headless Service (clusterIP = \"None\"): there is no ClusterIP to serve them")]
    HeadlessWithExternalIps {
        /// Key path.
        key: String,
        /// The addresses as written.
        value: Vec<String>,
    },
    /// `type = "ExternalName"` without `externalName`.
    #[error("{key} is missing: an ExternalName Service needs the DNS name it aliases (externalName = \"example.com\")")]
    ExternalNameMissing {
        /// Key path.
        key: String,
    },
    /// `externalName` is not a DNS name.
    #[error("{key} {value:?} is not a valid DNS name: {reason}")]
    InvalidExternalName {
        /// Key path.
        key: String,
        /// The name.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `externalName` on a Service of another type.
    #[error("{key} {value:?} is only allowed on an ExternalName Service, this one is type {service_type} (set type = \"ExternalName\")")]
    ExternalNameWithoutType {
        /// Key path.
        key: String,
        /// The name.
        value: String,
        /// The Service's type.
        service_type: ServiceType,
    },
    /// A proxying field (`clusterIP`, `nodePort`, `externalIPs`,
    /// `externalTrafficPolicy`, ClientIP affinity) on an ExternalName Service.
    #[error("{key} {value} is not allowed on an ExternalName Service: it is only a DNS alias (CNAME), with no ClusterIP, node ports or proxying")]
    NotOnExternalName {
        /// Key path.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A ClusterIP outside the Service CIDR.
    #[error("{key} \"{value}\" is outside serviceCIDR {cidr}")]
    ClusterIpOutsideCidr {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// The Service CIDR.
        cidr: Ipv4Net,
    },
    /// A ClusterIP that is the network or broadcast address.
    #[error("{key} \"{value}\" is the {what} address of serviceCIDR {cidr}")]
    ClusterIpReserved {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// `network` or `broadcast`.
        what: &'static str,
        /// The Service CIDR.
        cidr: Ipv4Net,
    },
    /// Two Services have the same ClusterIP.
    #[error("{key} \"{value}\" is already used by {first}")]
    DuplicateClusterIp {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// The Service that has it first.
        first: String,
    },
    /// No ClusterIP left to allocate.
    #[error("{key}: no free address left in serviceCIDR {cidr}")]
    ServiceCidrExhausted {
        /// Key path.
        key: String,
        /// The Service CIDR.
        cidr: Ipv4Net,
    },
    /// A number outside its allowed range (`cluster.vxlanVNI`,
    /// `cluster.underlayMTU`).
    #[error("{key} {value} is out of range {min}-{max}")]
    ValueOutOfRange {
        /// Key path.
        key: String,
        /// The value.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// `externalTrafficPolicy` or `internalTrafficPolicy` is not `Cluster` or `Local`.
    #[error("{key} {value:?} is not supported: must be \"Cluster\" or \"Local\"")]
    InvalidTrafficPolicy {
        /// Key path.
        key: String,
        /// The value.
        value: String,
    },
    /// `externalTrafficPolicy` on a Service nothing outside the cluster can
    /// reach (type ClusterIP without externalIPs), refused like the API
    /// server does.
    #[error("{key} {value:?} may only be set for externally-accessible services: this ClusterIP Service has no externalIPs (set type = \"NodePort\" or \"LoadBalancer\")")]
    TrafficPolicyNotExternal {
        /// Key path.
        key: String,
        /// The value.
        value: String,
    },
    /// `loadBalancerIPs` on a Service that is not of type LoadBalancer.
    #[error("{key} {value:?} is only allowed on a LoadBalancer Service, this one is type {service_type} (set type = \"LoadBalancer\")")]
    LoadBalancerIpsNotLoadBalancer {
        /// Key path.
        key: String,
        /// The addresses as written.
        value: Vec<String>,
        /// The Service's type.
        service_type: ServiceType,
    },
    /// An external or LoadBalancer IP that no client can use as a
    /// destination: unspecified, loopback, link-local, multicast, broadcast.
    #[error("{key} \"{value}\" is not usable as an external address: it is {what}")]
    ExternalIpSpecial {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// `the unspecified address`, `a loopback address`, ...
        what: &'static str,
    },
    /// An external or LoadBalancer IP inside the pod or Service CIDR.
    #[error("{key} \"{value}\" lies inside {range_key} {range}; external and LoadBalancer IPs must be outside the cluster's ranges")]
    ExternalIpInClusterRange {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// `cluster.podCIDR` or `cluster.serviceCIDR`.
        range_key: &'static str,
        /// That range.
        range: Ipv4Net,
    },
    /// An external or LoadBalancer IP that is a node's address.
    #[error("{key} \"{value}\" is the address of node {node:?}; a node address already serves every NodePort, give the Service its own address")]
    ExternalIpIsNodeAddress {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// The node that has it.
        node: String,
    },
    /// Two Services (or one, twice) serve the same external address, port
    /// and protocol.
    #[error("{key} \"{value}\" port {port}/{protocol} is already used by {first}")]
    DuplicateExternalIp {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// The Service port.
        port: u16,
        /// Its protocol.
        protocol: Protocol,
        /// Key path of the address that has it first.
        first: String,
    },
    /// A pod IP outside its node's pod CIDR.
    #[error("{key} \"{value}\" is outside podCIDR {cidr} of node {node:?}")]
    PodIpOutsideNode {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// The node.
        node: String,
        /// The node's pod CIDR.
        cidr: Ipv4Net,
    },
    /// A pod IP that is the network, gateway or broadcast address.
    #[error("{key} \"{value}\" is reserved: it is the {what} of node {node:?}'s podCIDR {cidr}")]
    PodIpReserved {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// `network address`, `gateway (first host address)` or `broadcast address`.
        what: &'static str,
        /// The node.
        node: String,
        /// The node's pod CIDR.
        cidr: Ipv4Net,
    },
    /// Two pods have the same IP.
    #[error("{key} \"{value}\" is already used by {first}")]
    DuplicatePodIp {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// The pod that has it first.
        first: String,
    },
    /// A node's pod CIDR has no free address for another pod.
    #[error("node {node:?}: podCIDR {cidr} has no free address left for {pod}")]
    PodCidrExhausted {
        /// The node.
        node: String,
        /// Its pod CIDR.
        cidr: Ipv4Net,
        /// The pod that did not get an address.
        pod: String,
    },
    /// A pod's `owner` is not a Deployment of its namespace.
    #[error("{key} {value:?} is not a deployment in namespace {namespace:?}")]
    UnknownOwner {
        /// Key path.
        key: String,
        /// The owner's name.
        value: String,
        /// The pod's namespace.
        namespace: String,
    },
    /// An owned pod on another node than its Deployment pins pods to.
    #[error(
        "{key} {value:?} is not the node deployment {deployment:?} pins its pods to ({pin:?})"
    )]
    OwnedPodOffPin {
        /// Key path.
        key: String,
        /// The pod's node.
        value: String,
        /// The owning Deployment.
        deployment: String,
        /// The Deployment's `node`.
        pin: String,
    },
    /// A counter (`podsCreated`) below zero.
    #[error("{key} {value} is negative: it counts the pods created so far")]
    NegativeCount {
        /// Key path.
        key: String,
        /// The value.
        value: i64,
    },
    /// A file passed to [`apply`] holds `[cluster]` or `[[nodes]]`.
    #[error("{section} cannot be applied: a file passed to apply holds only [[deployments]], [[pods]] and [[services]] (the cluster's settings and nodes are fixed when the lab is built)")]
    ApplyClusterScoped {
        /// `[cluster]` or `[[nodes]]`.
        section: &'static str,
    },
    /// A file passed to [`apply`] holds no object.
    #[error(
        "no objects passed to apply: the file has no [[deployments]], [[pods]] or [[services]]"
    )]
    NothingToApply,
    /// [`delete_pod`] or [`set_ready`] of a pod that does not exist.
    #[error("pods {name:?} not found")]
    PodNotFound {
        /// The pod name asked for.
        name: String,
    },
    /// [`delete_service`] of a Service that does not exist.
    #[error("services {name:?} not found")]
    ServiceNotFound {
        /// The Service name asked for.
        name: String,
    },
    /// [`delete_deployment`] of a Deployment that does not exist.
    #[error("deployments.apps {name:?} not found")]
    DeploymentNotFound {
        /// The Deployment name asked for.
        name: String,
    },
}

// ------------------------------------------------------------------ raw layer

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    cluster: RawCluster,
    #[serde(default)]
    nodes: Vec<RawNode>,
    #[serde(default)]
    deployments: Vec<RawDeployment>,
    #[serde(default)]
    pods: Vec<RawPod>,
    #[serde(default)]
    services: Vec<RawService>,
}

/// A file passed to [`apply`]: objects only. `cluster` and `nodes` are
/// read only to be refused with our own message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApply {
    cluster: Option<IgnoredAny>,
    nodes: Option<IgnoredAny>,
    #[serde(default)]
    deployments: Vec<RawDeployment>,
    #[serde(default)]
    pods: Vec<RawPod>,
    #[serde(default)]
    services: Vec<RawService>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    #[serde(rename = "podCIDR")]
    pod_cidr: String,
    #[serde(rename = "serviceCIDR")]
    service_cidr: Option<String>,
    #[serde(rename = "dnsDomain")]
    dns_domain: Option<String>,
    #[serde(rename = "vxlanVNI")]
    vxlan_vni: Option<i64>,
    #[serde(rename = "vxlanPort")]
    vxlan_port: Option<i64>,
    #[serde(rename = "underlayMTU")]
    underlay_mtu: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    address: String,
    #[serde(rename = "podCIDR")]
    pod_cidr: String,
    #[serde(rename = "nextPodIP")]
    next_pod_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainerPort {
    name: Option<String>,
    #[serde(rename = "containerPort")]
    container_port: i64,
    protocol: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    name: String,
    namespace: Option<String>,
    #[serde(default = "one")]
    replicas: i64,
    #[serde(default)]
    labels: Labels,
    #[serde(rename = "templateHash")]
    template_hash: Option<String>,
    node: Option<String>,
    #[serde(default)]
    ports: Vec<RawContainerPort>,
    #[serde(rename = "podsCreated")]
    pods_created: Option<i64>,
    /// How errors name this object (`deployments[0]`); see [`origin`].
    #[serde(skip)]
    origin: Option<String>,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPod {
    name: String,
    namespace: Option<String>,
    owner: Option<String>,
    /// `None`: none for a standalone pod, the template's for an owned one.
    labels: Option<Labels>,
    node: Option<String>,
    ip: Option<String>,
    ready: Option<bool>,
    /// `None`: none for a standalone pod, the template's for an owned one.
    ports: Option<Vec<RawContainerPort>>,
    /// How errors name this object (`pods[0]`); see [`origin`].
    #[serde(skip)]
    origin: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    namespace: Option<String>,
    #[serde(rename = "type")]
    service_type: Option<String>,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    #[serde(rename = "externalName")]
    external_name: Option<String>,
    #[serde(default)]
    selector: Labels,
    #[serde(default)]
    labels: Labels,
    #[serde(rename = "sessionAffinity")]
    session_affinity: Option<String>,
    #[serde(rename = "sessionAffinityTimeoutSeconds")]
    session_affinity_timeout_seconds: Option<i64>,
    #[serde(rename = "externalTrafficPolicy")]
    external_traffic_policy: Option<String>,
    #[serde(rename = "internalTrafficPolicy")]
    internal_traffic_policy: Option<String>,
    #[serde(rename = "externalIPs", default)]
    external_ips: Vec<String>,
    #[serde(rename = "loadBalancerIPs", default)]
    load_balancer_ips: Vec<String>,
    #[serde(default)]
    ports: Vec<RawServicePort>,
    /// How errors name this object (`services[0]`); see [`origin`].
    #[serde(skip)]
    origin: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServicePort {
    name: Option<String>,
    port: i64,
    #[serde(rename = "targetPort")]
    target_port: Option<RawIntOrString>,
    #[serde(rename = "nodePort")]
    node_port: Option<i64>,
    protocol: Option<String>,
}

/// The key-path prefix errors use for the `i`-th object of `kind`
/// (`services[2]`), unless the object says where it came from: [`apply`]
/// names objects of the applied file by their index in that file and the
/// store's as `store services[2]`.
fn origin(given: &Option<String>, kind: &str, i: usize) -> String {
    given.clone().unwrap_or_else(|| format!("{kind}[{i}]"))
}

/// Kubernetes' `IntOrString`, as `targetPort` takes it.
#[derive(Debug, Clone)]
enum RawIntOrString {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for RawIntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawIntOrString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a container port name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawIntOrString::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(RawIntOrString::Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawIntOrString::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(RawIntOrString::Str(v))
            }
        }
        d.deserialize_any(V)
    }
}

// ------------------------------------------------------------------ entry points

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Cluster, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text)
}

/// Parses, validates and completes (names, IPs, ClusterIPs, node ports) a
/// config file's text.
pub fn parse(text: &str) -> Result<Cluster, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, e))?;
    build(raw)
}

/// A TOML error (syntax, unknown or missing key, wrong type), naming the
/// object it is in when there is one (`services[1] "default/odd-svc":
/// unknown field ...`), and keeping the parser's line, column and snippet.
fn toml_error(text: &str, e: toml::de::Error) -> ConfigError {
    let full = e.to_string().trim_end().to_owned();
    let object = e.span().and_then(|span| object_at(text, span.start));
    ConfigError::Toml {
        message: match object {
            Some(object) => format!("{object}: {}\n{full}", e.message().trim_end()),
            None => full,
        },
    }
}

/// The `[[deployments]]`, `[[pods]]` or `[[services]]` entry that byte
/// `at` of `text` lies in, as errors name it: `services[1] "default/x"`.
fn object_at(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let mut current: Option<(&str, usize)> = None;
    let mut counts = [0usize; 3];
    const KINDS: [&str; 3] = ["deployments", "pods", "services"];
    for line in before.lines() {
        let t = line.trim();
        if !t.starts_with('[') {
            continue;
        }
        current = None;
        for (i, kind) in KINDS.iter().enumerate() {
            if t.starts_with(&format!("[[{kind}]]")) {
                current = Some((kind, counts[i]));
                counts[i] += 1;
            }
        }
    }
    let (kind, index) = current?;
    // The entry's name, if the rest of the file parses as plain TOML.
    let table: toml::Table = text.parse().ok()?;
    let entry = table.get(kind)?.as_array()?.get(index)?;
    let name = entry.get("name")?.as_str()?;
    let namespace = entry
        .get("namespace")
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    Some(format!("{kind}[{index}] \"{namespace}/{name}\""))
}

// ------------------------------------------------------------------ validation

/// A pod before its IP is known.
struct PodPlan {
    /// `deployments[0] "default/x" replica 1` or `pods[0] "default/client"`.
    obj: String,
    /// Key path of the explicit `ip`.
    ip_key: String,
    namespace: String,
    name: String,
    labels: Labels,
    /// `None` only for an owned pod of an unpinned Deployment that gives no
    /// node, until the deployment controller schedules it.
    node: Option<usize>,
    ip: Option<Ipv4Addr>,
    ready: bool,
    owner: Option<String>,
    ports: Vec<ContainerPort>,
}

fn build(raw: RawConfig) -> Result<Cluster, ConfigError> {
    let pod_cidr = parse_cidr("cluster.podCIDR", &raw.cluster.pod_cidr)?;
    let service_cidr = parse_cidr(
        "cluster.serviceCIDR",
        raw.cluster
            .service_cidr
            .as_deref()
            .unwrap_or(DEFAULT_SERVICE_CIDR),
    )?;
    if overlaps(pod_cidr, service_cidr) {
        return Err(ConfigError::CidrsOverlap {
            service_cidr,
            pod_cidr,
        });
    }
    let overlay = build_overlay(&raw.cluster)?;
    let dns_domain = raw
        .cluster
        .dns_domain
        .unwrap_or_else(|| DEFAULT_DNS_DOMAIN.to_owned());
    if let Err(reason) = check_dns_subdomain(&dns_domain) {
        return Err(ConfigError::InvalidDnsDomain {
            key: "cluster.dnsDomain".into(),
            value: dns_domain,
            reason,
        });
    }

    let mut nodes = build_nodes(&raw.nodes, pod_cidr, service_cidr)?;
    let mut deployments = build_deployments(&raw.deployments, &nodes)?;
    let explicit = build_pods(&raw.pods, &nodes, &deployments)?;
    let plans = run_deployment_controller(&mut deployments, explicit, &nodes);
    let mut pods = assign_pod_ips(plans, &mut nodes)?;
    let mut services = build_services(&raw.services, pod_cidr, service_cidr, &nodes)?;

    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(Cluster {
        pod_cidr,
        service_cidr,
        dns_domain,
        overlay,
        nodes,
        deployments: deployments.into_iter().map(|d| d.deployment).collect(),
        pods,
        services,
    })
}

/// `cluster.vxlanVNI`, `cluster.vxlanPort` and `cluster.underlayMTU`, each
/// defaulting to flannel's value.
fn build_overlay(raw: &RawCluster) -> Result<Overlay, ConfigError> {
    let defaults = Overlay::default();
    let in_range = |key: &str, value: i64, min: i64, max: i64| {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::ValueOutOfRange {
                key: key.to_owned(),
                value,
                min,
                max,
            })
        }
    };
    let vni = match raw.vxlan_vni {
        None => defaults.vni,
        Some(v) => {
            u32::try_from(in_range("cluster.vxlanVNI", v, 1, MAX_VNI)?).unwrap_or(defaults.vni)
        }
    };
    let port = match raw.vxlan_port {
        None => defaults.port,
        Some(p) => port_number("cluster.vxlanPort", p)?,
    };
    let underlay_mtu = match raw.underlay_mtu {
        None => defaults.underlay_mtu,
        Some(m) => u16::try_from(in_range(
            "cluster.underlayMTU",
            m,
            MIN_UNDERLAY_MTU,
            MAX_UNDERLAY_MTU,
        )?)
        .unwrap_or(defaults.underlay_mtu),
    };
    Ok(Overlay {
        vni,
        port,
        underlay_mtu,
    })
}

fn build_nodes(
    raw: &[RawNode],
    pod_cidr: Ipv4Net,
    service_cidr: Ipv4Net,
) -> Result<Vec<Node>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::NoNodes);
    }
    let mut nodes: Vec<Node> = Vec::with_capacity(raw.len());
    for (i, n) in raw.iter().enumerate() {
        let obj = format!("nodes[{i}] {:?}", n.name);
        check_name(&format!("nodes[{i}].name"), &n.name)?;
        if let Some(j) = nodes.iter().position(|m| m.name == n.name) {
            return Err(ConfigError::DuplicateNode {
                key: format!("nodes[{i}].name"),
                value: n.name.clone(),
                first: format!("nodes[{j}]"),
            });
        }
        let address = parse_ip(&format!("{obj}: address"), &n.address)?;
        for (range_key, range) in [
            ("cluster.podCIDR", pod_cidr),
            ("cluster.serviceCIDR", service_cidr),
        ] {
            if range.contains(&address) {
                return Err(ConfigError::NodeAddressInClusterRange {
                    key: format!("{obj}: address"),
                    value: address,
                    range_key,
                    range,
                });
            }
        }
        if let Some(j) = nodes.iter().position(|m| m.underlay_ip == address) {
            return Err(ConfigError::DuplicateNodeAddress {
                key: format!("{obj}: address"),
                value: address,
                first: format!("nodes[{j}] {:?}", nodes[j].name),
            });
        }
        let cidr = parse_cidr(&format!("{obj}: podCIDR"), &n.pod_cidr)?;
        if !pod_cidr.contains(&cidr) {
            return Err(ConfigError::NodeCidrOutsideCluster {
                key: format!("{obj}: podCIDR"),
                value: cidr,
                cluster: pod_cidr,
            });
        }
        if let Some(j) = nodes.iter().position(|m| overlaps(m.pod_cidr, cidr)) {
            return Err(ConfigError::NodeCidrOverlap {
                key: format!("{obj}: podCIDR"),
                value: cidr,
                other_key: format!("nodes[{j}] {:?}: podCIDR", nodes[j].name),
                other: nodes[j].pod_cidr,
            });
        }
        let mut node = Node {
            name: n.name.clone(),
            underlay_ip: address,
            pod_cidr: cidr,
            next_pod_ip: None,
        };
        if let Some(text) = &n.next_pod_ip {
            let key = format!("{obj}: nextPodIP");
            let ip = parse_ip(&key, text)?;
            check_pod_ip(&key, ip, &node)?;
            node.next_pod_ip = Some(ip);
        }
        nodes.push(node);
    }
    Ok(nodes)
}

/// A validated Deployment plus what pod generation needs.
struct DeploymentPlan {
    deployment: Deployment,
    obj: String,
    /// The node all replicas are pinned to, if any.
    node: Option<usize>,
}

fn build_deployments(
    raw: &[RawDeployment],
    nodes: &[Node],
) -> Result<Vec<DeploymentPlan>, ConfigError> {
    let mut out: Vec<DeploymentPlan> = Vec::with_capacity(raw.len());
    for (i, d) in raw.iter().enumerate() {
        let label = origin(&d.origin, "deployments", i);
        let namespace = d.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let obj = format!("{label} \"{namespace}/{}\"", d.name);
        check_name(&format!("{label}.name"), &d.name)?;
        check_name(&format!("{obj}: namespace"), namespace)?;
        if let Some(j) = out
            .iter()
            .position(|o| o.deployment.namespace == namespace && o.deployment.name == d.name)
        {
            return Err(ConfigError::DuplicateName {
                key: format!("{label}.name"),
                value: d.name.clone(),
                namespace: namespace.to_owned(),
                first: origin(&raw[j].origin, "deployments", j),
            });
        }
        if !(0..=MAX_REPLICAS).contains(&d.replicas) {
            return Err(ConfigError::ReplicasOutOfRange {
                key: format!("{obj}: replicas"),
                value: d.replicas,
            });
        }
        let replicas = u32::try_from(d.replicas).unwrap_or(0);
        let ports = container_ports(&label, &d.ports)?;
        let template_hash = match &d.template_hash {
            Some(h) => {
                let ok = (1..=TEMPLATE_HASH_LEN).contains(&h.len())
                    && h.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
                if !ok {
                    return Err(ConfigError::InvalidTemplateHash {
                        key: format!("{obj}: templateHash"),
                        value: h.clone(),
                    });
                }
                h.clone()
            }
            None => template_hash(&d.labels, &ports),
        };
        let node = match &d.node {
            Some(name) => Some(find_node(&format!("{obj}: node"), name, nodes)?),
            None => None,
        };
        let pods_created = match d.pods_created {
            None => 0,
            Some(n) => u64::try_from(n).map_err(|_| ConfigError::NegativeCount {
                key: format!("{obj}: podsCreated"),
                value: n,
            })?,
        };
        out.push(DeploymentPlan {
            deployment: Deployment {
                name: d.name.clone(),
                namespace: namespace.to_owned(),
                replicas,
                labels: d.labels.clone(),
                template_hash,
                ports,
                node: d.node.clone(),
                pods_created,
            },
            obj,
            node,
        });
    }
    Ok(out)
}

/// The labels of every pod of `d`: the template's plus `pod-template-hash`.
fn template_labels(d: &Deployment) -> Labels {
    let mut labels = d.labels.clone();
    labels.insert("pod-template-hash".into(), d.template_hash.clone());
    labels
}

/// The explicit `[[pods]]`, standalone and owned.
fn build_pods(
    raw: &[RawPod],
    nodes: &[Node],
    deployments: &[DeploymentPlan],
) -> Result<Vec<PodPlan>, ConfigError> {
    let mut out: Vec<PodPlan> = Vec::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        let label = origin(&p.origin, "pods", i);
        let namespace = p.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let obj = format!("{label} \"{namespace}/{}\"", p.name);
        check_name(&format!("{label}.name"), &p.name)?;
        check_name(&format!("{obj}: namespace"), namespace)?;
        if let Some(j) = out
            .iter()
            .position(|o| o.namespace == namespace && o.name == p.name)
        {
            return Err(ConfigError::DuplicateName {
                key: format!("{label}.name"),
                value: p.name.clone(),
                namespace: namespace.to_owned(),
                first: origin(&raw[j].origin, "pods", j),
            });
        }
        let owner = match &p.owner {
            None => None,
            Some(name) => Some(
                deployments
                    .iter()
                    .find(|d| d.deployment.namespace == namespace && d.deployment.name == *name)
                    .ok_or_else(|| ConfigError::UnknownOwner {
                        key: format!("{obj}: owner"),
                        value: name.clone(),
                        namespace: namespace.to_owned(),
                    })?,
            ),
        };
        let node = match (&p.node, owner) {
            (Some(name), _) => {
                let key = format!("{obj}: node");
                let n = find_node(&key, name, nodes)?;
                if let Some(d) = owner {
                    if let Some(pin) = &d.deployment.node {
                        if pin != name {
                            return Err(ConfigError::OwnedPodOffPin {
                                key,
                                value: name.clone(),
                                deployment: d.deployment.name.clone(),
                                pin: pin.clone(),
                            });
                        }
                    }
                }
                Some(n)
            }
            // The pin, else the node its address belongs to, else the
            // deployment controller places it.
            (None, Some(d)) => d.node.or_else(|| {
                let ip = p.ip.as_deref().and_then(|t| t.parse::<Ipv4Addr>().ok())?;
                nodes.iter().position(|n| n.pod_cidr.contains(&ip))
            }),
            (None, None) => Some(0),
        };
        let ip_key = format!("{obj}: ip");
        let ip = match &p.ip {
            Some(text) => Some(parse_ip(&ip_key, text)?),
            None => None,
        };
        let labels = match (&p.labels, owner) {
            (Some(l), _) => l.clone(),
            (None, Some(d)) => template_labels(&d.deployment),
            (None, None) => Labels::new(),
        };
        let ports = match (&p.ports, owner) {
            (Some(ports), _) => container_ports(&label, ports)?,
            (None, Some(d)) => d.deployment.ports.clone(),
            (None, None) => Vec::new(),
        };
        out.push(PodPlan {
            ports,
            obj,
            ip_key,
            namespace: namespace.to_owned(),
            name: p.name.clone(),
            labels,
            node,
            ip,
            ready: p.ready.unwrap_or(true),
            owner: owner.map(|d| d.deployment.name.clone()),
        });
    }
    Ok(out)
}

/// The node with the fewest of a Deployment's pods (`load`), the first in
/// node order on a tie.
fn least_loaded(load: &[usize]) -> usize {
    load.iter()
        .enumerate()
        .min_by_key(|&(i, &n)| (n, i))
        .map_or(0, |(i, _)| i)
}

/// The deployment controller, for every Deployment in order: its explicit
/// owned pods count toward `replicas`; extra ones are removed (not-ready
/// first, then by name descending); owned pods without a node are
/// scheduled; the missing ones are generated, the k-th ever
/// (`pods_created`) named from xxh3 of (namespace/name, hash, k),
/// rehashing with a counter on a collision with any other pod's name.
///
/// Returns the generated pods (in Deployment order) followed by the kept
/// explicit ones (in file order): the order IPs are allocated in.
fn run_deployment_controller(
    deployments: &mut [DeploymentPlan],
    mut explicit: Vec<PodPlan>,
    nodes: &[Node],
) -> Vec<PodPlan> {
    let mut taken: HashSet<(String, String)> = explicit
        .iter()
        .map(|p| (p.namespace.clone(), p.name.clone()))
        .collect();
    let mut keep = vec![true; explicit.len()];
    let mut generated = Vec::new();
    for d in deployments.iter_mut() {
        let dep = &mut d.deployment;
        let owned: Vec<usize> = explicit
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.namespace == dep.namespace && p.owner.as_deref() == Some(dep.name.as_str())
            })
            .map(|(i, _)| i)
            .collect();
        let replicas = dep.replicas as usize;
        if owned.len() > replicas {
            let mut victims = owned.clone();
            victims.sort_by(|&a, &b| {
                let (pa, pb) = (&explicit[a], &explicit[b]);
                pa.ready.cmp(&pb.ready).then_with(|| pb.name.cmp(&pa.name))
            });
            for &i in &victims[..owned.len() - replicas] {
                keep[i] = false;
            }
        }
        let kept: Vec<usize> = owned.into_iter().filter(|&i| keep[i]).collect();
        let mut load = vec![0usize; nodes.len()];
        for &i in &kept {
            if let Some(n) = explicit[i].node {
                load[n] += 1;
            }
        }
        for &i in &kept {
            if explicit[i].node.is_none() {
                let n = d.node.unwrap_or_else(|| least_loaded(&load));
                explicit[i].node = Some(n);
                load[n] += 1;
            }
        }
        let mut prefix = format!("{}-{}-", dep.name, dep.template_hash);
        prefix.truncate(MAX_GENERATE_NAME_PREFIX);
        for _ in kept.len()..replicas {
            let k = dep.pods_created;
            let seed = format!("{}/{}/{}/{k}", dep.namespace, dep.name, dep.template_hash);
            let mut counter = 0u64;
            let name = loop {
                let h = if counter == 0 {
                    xxh3_64(seed.as_bytes())
                } else {
                    xxh3_64(format!("{seed}#{counter}").as_bytes())
                };
                let name = format!("{prefix}{}", safe_encode_u64(h, POD_SUFFIX_LEN));
                if taken.insert((dep.namespace.clone(), name.clone())) {
                    break name;
                }
                counter += 1;
            };
            let node = d.node.unwrap_or_else(|| least_loaded(&load));
            load[node] += 1;
            generated.push(PodPlan {
                obj: format!("{} replica {k}", d.obj),
                ip_key: String::new(),
                namespace: dep.namespace.clone(),
                name,
                labels: template_labels(dep),
                node: Some(node),
                ip: None,
                ready: true,
                owner: Some(dep.name.clone()),
                ports: dep.ports.clone(),
            });
            dep.pods_created = dep.pods_created.saturating_add(1);
        }
    }
    generated.extend(
        explicit
            .into_iter()
            .zip(keep)
            .filter_map(|(p, k)| k.then_some(p)),
    );
    generated
}

/// Checks that `ip` (at `key`) may be a pod address on `node`: inside its
/// pod CIDR, not the network, gateway (first host) or broadcast address.
fn check_pod_ip(key: &str, ip: Ipv4Addr, node: &Node) -> Result<(), ConfigError> {
    let cidr = node.pod_cidr;
    if !cidr.contains(&ip) {
        return Err(ConfigError::PodIpOutsideNode {
            key: key.to_owned(),
            value: ip,
            node: node.name.clone(),
            cidr,
        });
    }
    let what = if ip == cidr.network() {
        Some("network address")
    } else if ip == cidr.broadcast() {
        Some("broadcast address")
    } else if u32::from(ip) == u32::from(cidr.network()).wrapping_add(1) {
        Some("gateway (first host address)")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(ConfigError::PodIpReserved {
            key: key.to_owned(),
            value: ip,
            what,
            node: node.name.clone(),
            cidr,
        });
    }
    Ok(())
}

/// Reserves the explicit pod IPs, then allocates the others in plan order,
/// round robin per node like the host-local IPAM plugin: from the node's
/// `next_pod_ip` (else `.2`) upward through the pod range (`.2` to the
/// last address before broadcast), wrapping around, skipping used
/// addresses. Leaves each node's `next_pod_ip` at the address after the
/// last one it allocated there.
fn assign_pod_ips(plans: Vec<PodPlan>, nodes: &mut [Node]) -> Result<Vec<Pod>, ConfigError> {
    // Explicit addresses first, so allocation steps around them.
    let mut used: HashMap<Ipv4Addr, usize> = HashMap::new();
    for (idx, p) in plans.iter().enumerate() {
        let Some(ip) = p.ip else { continue };
        check_pod_ip(&p.ip_key, ip, &nodes[p.node.unwrap_or(0)])?;
        if let Some(&first) = used.get(&ip) {
            return Err(ConfigError::DuplicatePodIp {
                key: p.ip_key.clone(),
                value: ip,
                first: plans[first].obj.clone(),
            });
        }
        used.insert(ip, idx);
    }
    let mut pods = Vec::with_capacity(plans.len());
    for (idx, p) in plans.into_iter().enumerate() {
        let n = p.node.unwrap_or(0);
        let ip = match p.ip {
            Some(ip) => ip,
            None => {
                let node = &mut nodes[n];
                // The pod range as u64, so that nothing overflows at the
                // top of the address space.
                let first = u64::from(u32::from(node.pod_cidr.network())) + 2;
                let last = u64::from(u32::from(node.pod_cidr.broadcast())).saturating_sub(1);
                let size = (last + 1).saturating_sub(first);
                let start = node
                    .next_pod_ip
                    .map_or(first, |ip| u64::from(u32::from(ip)));
                let offset = start.saturating_sub(first);
                let found = (0..size)
                    .map(|step| first + (offset + step) % size)
                    .filter_map(|a| u32::try_from(a).ok().map(Ipv4Addr::from))
                    .find(|ip| !used.contains_key(ip));
                let Some(ip) = found else {
                    return Err(ConfigError::PodCidrExhausted {
                        node: node.name.clone(),
                        cidr: node.pod_cidr,
                        pod: p.obj,
                    });
                };
                used.insert(ip, idx);
                let after = u64::from(u32::from(ip)) + 1;
                let next = if after > last { first } else { after };
                node.next_pod_ip = u32::try_from(next).ok().map(Ipv4Addr::from);
                ip
            }
        };
        pods.push(Pod {
            name: p.name,
            namespace: p.namespace,
            labels: p.labels,
            ip,
            node: nodes[n].name.clone(),
            ready: p.ready,
            owner: p.owner,
            ports: p.ports,
        });
    }
    Ok(pods)
}

/// A Service before its ClusterIP and node ports are allocated.
struct ServicePlan {
    service: Service,
    obj: String,
    /// Key-path prefix (`services[0]`).
    label: String,
    /// The explicit ClusterIP.
    cluster_ip: Option<Ipv4Addr>,
    /// Whether it gets a ClusterIP at all (not headless, not ExternalName).
    virtual_ip: bool,
}

fn build_services(
    raw: &[RawService],
    pod_cidr: Ipv4Net,
    cidr: Ipv4Net,
    nodes: &[Node],
) -> Result<Vec<Service>, ConfigError> {
    let mut plans: Vec<ServicePlan> = Vec::with_capacity(raw.len());
    // (address, port, protocol) -> key path of the address that serves it.
    let mut external: HashMap<(Ipv4Addr, u16, Protocol), String> = HashMap::new();
    for (i, s) in raw.iter().enumerate() {
        let label = origin(&s.origin, "services", i);
        let namespace = s.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let obj = format!("{label} \"{namespace}/{}\"", s.name);
        check_name(&format!("{label}.name"), &s.name)?;
        check_name(&format!("{obj}: namespace"), namespace)?;
        if let Some(j) = plans
            .iter()
            .position(|o| o.service.namespace == namespace && o.service.name == s.name)
        {
            return Err(ConfigError::DuplicateName {
                key: format!("{label}.name"),
                value: s.name.clone(),
                namespace: namespace.to_owned(),
                first: plans[j].label.clone(),
            });
        }
        let service_type = match s.service_type.as_deref() {
            None | Some("ClusterIP") => ServiceType::ClusterIP,
            Some("NodePort") => ServiceType::NodePort,
            Some("LoadBalancer") => ServiceType::LoadBalancer,
            Some("ExternalName") => ServiceType::ExternalName,
            Some(other) => {
                return Err(ConfigError::UnsupportedServiceType {
                    key: format!("{obj}: type"),
                    value: other.to_owned(),
                })
            }
        };
        let is_external_name = service_type == ServiceType::ExternalName;
        let not_on_external_name = |field: &str, value: String| ConfigError::NotOnExternalName {
            key: format!("{obj}: {field}"),
            value,
        };
        let external_name = match (&s.external_name, service_type) {
            (Some(name), ServiceType::ExternalName) => {
                // A fully qualified name may end in a dot, as in Kubernetes.
                let bare = name.strip_suffix('.').unwrap_or(name);
                if let Err(reason) = check_dns_subdomain(bare) {
                    return Err(ConfigError::InvalidExternalName {
                        key: format!("{obj}: externalName"),
                        value: name.clone(),
                        reason,
                    });
                }
                Some(name.clone())
            }
            (None, ServiceType::ExternalName) => {
                return Err(ConfigError::ExternalNameMissing {
                    key: format!("{obj}: externalName"),
                })
            }
            (Some(name), _) => {
                return Err(ConfigError::ExternalNameWithoutType {
                    key: format!("{obj}: externalName"),
                    value: name.clone(),
                    service_type,
                })
            }
            (None, _) => None,
        };
        let mut headless = false;
        let cluster_ip = match s.cluster_ip.as_deref() {
            None => None,
            Some(text) if is_external_name => {
                return Err(not_on_external_name("clusterIP", format!("{text:?}")));
            }
            Some("None") => {
                if service_type != ServiceType::ClusterIP {
                    return Err(ConfigError::HeadlessWithType {
                        key: format!("{obj}: clusterIP"),
                        service_type,
                    });
                }
                headless = true;
                None
            }
            Some(text) => {
                let key = format!("{obj}: clusterIP");
                let ip = parse_ip(&key, text)?;
                if !cidr.contains(&ip) {
                    return Err(ConfigError::ClusterIpOutsideCidr {
                        key,
                        value: ip,
                        cidr,
                    });
                }
                let what = if ip == cidr.network() {
                    Some("network")
                } else if ip == cidr.broadcast() {
                    Some("broadcast")
                } else {
                    None
                };
                if let Some(what) = what {
                    return Err(ConfigError::ClusterIpReserved {
                        key,
                        value: ip,
                        what,
                        cidr,
                    });
                }
                if let Some(first) = plans.iter().find(|p| p.cluster_ip == Some(ip)) {
                    return Err(ConfigError::DuplicateClusterIp {
                        key,
                        value: ip,
                        first: first.obj.clone(),
                    });
                }
                Some(ip)
            }
        };
        let session_affinity = match s.session_affinity.as_deref() {
            None | Some("None") => {
                if let Some(t) = s.session_affinity_timeout_seconds {
                    return Err(ConfigError::AffinityTimeoutWithoutClientIp {
                        key: format!("{obj}: sessionAffinityTimeoutSeconds"),
                        value: t,
                    });
                }
                SessionAffinity::None
            }
            Some("ClientIP") if is_external_name => {
                return Err(not_on_external_name(
                    "sessionAffinity",
                    "\"ClientIP\"".to_owned(),
                ));
            }
            Some("ClientIP") => {
                let t = s
                    .session_affinity_timeout_seconds
                    .unwrap_or(DEFAULT_AFFINITY_TIMEOUT);
                if !(1..=MAX_AFFINITY_TIMEOUT).contains(&t) {
                    return Err(ConfigError::AffinityTimeoutOutOfRange {
                        key: format!("{obj}: sessionAffinityTimeoutSeconds"),
                        value: t,
                    });
                }
                SessionAffinity::ClientIP {
                    timeout_seconds: u32::try_from(t).unwrap_or(u32::MAX),
                }
            }
            Some(other) => {
                return Err(ConfigError::InvalidSessionAffinity {
                    key: format!("{obj}: sessionAffinity"),
                    value: other.to_owned(),
                })
            }
        };
        let ports = service_ports(&label, service_type, &s.ports)?;
        // Kubernetes: only a Service with a virtual IP needs ports.
        if ports.is_empty() && !headless && !is_external_name {
            return Err(ConfigError::NoServicePorts {
                key: format!("{obj}: ports"),
            });
        }
        if service_type != ServiceType::LoadBalancer && !s.load_balancer_ips.is_empty() {
            return Err(ConfigError::LoadBalancerIpsNotLoadBalancer {
                key: format!("{obj}: loadBalancerIPs"),
                value: s.load_balancer_ips.clone(),
                service_type,
            });
        }
        if !s.external_ips.is_empty() {
            if is_external_name {
                return Err(not_on_external_name(
                    "externalIPs",
                    format!("{:?}", s.external_ips),
                ));
            }
            if headless {
                return Err(ConfigError::HeadlessWithExternalIps {
                    key: format!("{obj}: externalIPs"),
                    value: s.external_ips.clone(),
                });
            }
        }
        let ranges = ExternalRanges {
            pod_cidr,
            service_cidr: cidr,
            nodes,
        };
        // LoadBalancer IPs first, as kubectl lists them first.
        let mut load_balancer_ips = Vec::with_capacity(s.load_balancer_ips.len());
        for (k, text) in s.load_balancer_ips.iter().enumerate() {
            let key = format!("{obj}: loadBalancerIPs[{k}]");
            let ip = ranges.check(&key, text)?;
            claim_external(&mut external, &key, ip, &ports)?;
            load_balancer_ips.push(ip);
        }
        let mut external_ips = Vec::with_capacity(s.external_ips.len());
        for (k, text) in s.external_ips.iter().enumerate() {
            let key = format!("{obj}: externalIPs[{k}]");
            let ip = ranges.check(&key, text)?;
            claim_external(&mut external, &key, ip, &ports)?;
            external_ips.push(ip);
        }
        let external_traffic_policy = match s.external_traffic_policy.as_deref() {
            None => TrafficPolicy::Cluster,
            Some(value) if is_external_name => {
                return Err(not_on_external_name(
                    "externalTrafficPolicy",
                    format!("{value:?}"),
                ));
            }
            Some(value) if !externally_accessible(service_type, &external_ips) => {
                return Err(ConfigError::TrafficPolicyNotExternal {
                    key: format!("{obj}: externalTrafficPolicy"),
                    value: value.to_owned(),
                })
            }
            Some(value) => traffic_policy(&format!("{obj}: externalTrafficPolicy"), value)?,
        };
        let internal_traffic_policy = match s.internal_traffic_policy.as_deref() {
            None => TrafficPolicy::Cluster,
            Some(value) => traffic_policy(&format!("{obj}: internalTrafficPolicy"), value)?,
        };
        plans.push(ServicePlan {
            service: Service {
                name: s.name.clone(),
                namespace: namespace.to_owned(),
                labels: s.labels.clone(),
                selector: s.selector.clone(),
                service_type,
                cluster_ip: Ipv4Addr::UNSPECIFIED,
                ports,
                session_affinity,
                external_traffic_policy,
                internal_traffic_policy,
                external_ips,
                load_balancer_ips,
                headless,
                external_name,
            },
            obj,
            label,
            cluster_ip,
            virtual_ip: !headless && !is_external_name,
        });
    }
    allocate_node_ports(&mut plans)?;
    allocate_cluster_ips(&mut plans, cidr)?;
    Ok(plans.into_iter().map(|p| p.service).collect())
}

/// Kubernetes' `ExternallyAccessible`: NodePort, LoadBalancer, or a
/// ClusterIP Service with external IPs. Only these may set
/// `externalTrafficPolicy`.
fn externally_accessible(service_type: ServiceType, external_ips: &[Ipv4Addr]) -> bool {
    match service_type {
        ServiceType::NodePort | ServiceType::LoadBalancer => true,
        ServiceType::ClusterIP => !external_ips.is_empty(),
        ServiceType::ExternalName => false,
    }
}

/// `Cluster` or `Local`, for `externalTrafficPolicy` and
/// `internalTrafficPolicy`.
fn traffic_policy(key: &str, value: &str) -> Result<TrafficPolicy, ConfigError> {
    match value {
        "Cluster" => Ok(TrafficPolicy::Cluster),
        "Local" => Ok(TrafficPolicy::Local),
        other => Err(ConfigError::InvalidTrafficPolicy {
            key: key.to_owned(),
            value: other.to_owned(),
        }),
    }
}

/// What an external or LoadBalancer IP must stay clear of.
struct ExternalRanges<'a> {
    pod_cidr: Ipv4Net,
    service_cidr: Ipv4Net,
    nodes: &'a [Node],
}

impl ExternalRanges<'_> {
    /// Parses the external or LoadBalancer IP `text` at `key` and checks
    /// that a client outside the cluster can address it: not a special
    /// address, outside the pod and Service CIDRs, not a node's address.
    fn check(&self, key: &str, text: &str) -> Result<Ipv4Addr, ConfigError> {
        let ip = parse_ip(key, text)?;
        let special = if ip.is_unspecified() {
            Some("the unspecified address")
        } else if ip.is_loopback() {
            Some("a loopback address")
        } else if ip.is_link_local() {
            Some("a link-local address")
        } else if ip.is_multicast() {
            Some("a multicast address")
        } else if ip.is_broadcast() {
            Some("the broadcast address")
        } else {
            None
        };
        if let Some(what) = special {
            return Err(ConfigError::ExternalIpSpecial {
                key: key.to_owned(),
                value: ip,
                what,
            });
        }
        for (range_key, range) in [
            ("cluster.podCIDR", self.pod_cidr),
            ("cluster.serviceCIDR", self.service_cidr),
        ] {
            if range.contains(&ip) {
                return Err(ConfigError::ExternalIpInClusterRange {
                    key: key.to_owned(),
                    value: ip,
                    range_key,
                    range,
                });
            }
        }
        if let Some(n) = self.nodes.iter().find(|n| n.underlay_ip == ip) {
            return Err(ConfigError::ExternalIpIsNodeAddress {
                key: key.to_owned(),
                value: ip,
                node: n.name.clone(),
            });
        }
        Ok(ip)
    }
}

/// Records that the external address `ip` (at `key`) serves every one of
/// `ports`, refusing an (address, port, protocol) that is already served.
fn claim_external(
    taken: &mut HashMap<(Ipv4Addr, u16, Protocol), String>,
    key: &str,
    ip: Ipv4Addr,
    ports: &[ServicePort],
) -> Result<(), ConfigError> {
    for p in ports {
        if let Some(first) = taken.get(&(ip, p.port, p.protocol)) {
            return Err(ConfigError::DuplicateExternalIp {
                key: key.to_owned(),
                value: ip,
                port: p.port,
                protocol: p.protocol,
                first: first.clone(),
            });
        }
    }
    for p in ports {
        taken.insert((ip, p.port, p.protocol), key.to_owned());
    }
    Ok(())
}

/// The ports of the Service whose key-path prefix is `label`.
fn service_ports(
    label: &str,
    service_type: ServiceType,
    raw: &[RawServicePort],
) -> Result<Vec<ServicePort>, ConfigError> {
    let mut out: Vec<ServicePort> = Vec::with_capacity(raw.len());
    for (j, p) in raw.iter().enumerate() {
        let key = |field: &str| format!("{label}.ports[{j}].{field}");
        let name = port_name(
            &key("name"),
            p.name.as_deref(),
            out.iter().map(|o| o.name.as_deref()),
            check_dns_label,
            label,
        )?;
        let port = port_number(&key("port"), p.port)?;
        let protocol = protocol(&key("protocol"), p.protocol.as_deref())?;
        if let Some(k) = out
            .iter()
            .position(|o| o.port == port && o.protocol == protocol)
        {
            return Err(ConfigError::DuplicateServicePort {
                key: format!("{label}.ports[{j}]"),
                port,
                protocol,
                first: format!("{label}.ports[{k}]"),
            });
        }
        let target_port = match &p.target_port {
            None => TargetPort::Number(port),
            Some(RawIntOrString::Int(n)) => {
                TargetPort::Number(port_number(&key("targetPort"), *n)?)
            }
            Some(RawIntOrString::Str(s)) => {
                if let Err(reason) = check_port_name(s) {
                    return Err(ConfigError::InvalidTargetPort {
                        key: key("targetPort"),
                        value: s.clone(),
                        reason,
                    });
                }
                TargetPort::Name(s.clone())
            }
        };
        let node_port = match p.node_port {
            None => None,
            Some(n) => {
                if service_type == ServiceType::ClusterIP {
                    return Err(ConfigError::NodePortOnClusterIp {
                        key: key("nodePort"),
                        value: n,
                    });
                }
                if service_type == ServiceType::ExternalName {
                    return Err(ConfigError::NotOnExternalName {
                        key: key("nodePort"),
                        value: n.to_string(),
                    });
                }
                if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&n) {
                    return Err(ConfigError::NodePortOutOfRange {
                        key: key("nodePort"),
                        value: n,
                    });
                }
                u16::try_from(n).ok()
            }
        };
        out.push(ServicePort {
            name,
            protocol,
            port,
            target_port,
            node_port,
        });
    }
    Ok(out)
}

/// Reserves explicit node ports (refusing duplicates), then allocates one
/// for every NodePort/LoadBalancer port without.
fn allocate_node_ports(plans: &mut [ServicePlan]) -> Result<(), ConfigError> {
    let mut used: HashMap<u16, String> = HashMap::new();
    for p in plans.iter() {
        for (j, port) in p.service.ports.iter().enumerate() {
            let Some(np) = port.node_port else { continue };
            let key = format!("{}.ports[{j}].nodePort", p.label);
            if let Some(first) = used.get(&np) {
                return Err(ConfigError::DuplicateNodePort {
                    key,
                    value: np,
                    first: first.clone(),
                });
            }
            used.insert(np, key);
        }
    }
    let span = (NODE_PORT_MAX - NODE_PORT_MIN + 1) as u64;
    for p in plans.iter_mut() {
        if !matches!(
            p.service.service_type,
            ServiceType::NodePort | ServiceType::LoadBalancer
        ) {
            continue;
        }
        for (j, port) in p.service.ports.iter_mut().enumerate() {
            if port.node_port.is_some() {
                continue;
            }
            let key = format!("{}.ports[{j}].nodePort", p.label);
            let h = xxh3_64(
                format!(
                    "{}/{}/{}/{}",
                    p.service.namespace, p.service.name, port.port, port.protocol
                )
                .as_bytes(),
            );
            let found = (0..span)
                .map(|k| (h % span + k) % span)
                .filter_map(|off| u16::try_from(NODE_PORT_MIN as u64 + off).ok())
                .find(|np| !used.contains_key(np));
            let Some(np) = found else {
                return Err(ConfigError::NodePortsExhausted { key });
            };
            used.insert(np, key);
            port.node_port = Some(np);
        }
    }
    Ok(())
}

/// Explicit ClusterIPs were checked and are reserved; the rest are hashed
/// into the Service CIDR's host range with linear probing, never taking the
/// first host (`kubernetes`) or the tenth (cluster DNS). Headless and
/// ExternalName Services get `0.0.0.0`.
fn allocate_cluster_ips(plans: &mut [ServicePlan], cidr: Ipv4Net) -> Result<(), ConfigError> {
    let mut used: HashSet<Ipv4Addr> = plans.iter().filter_map(|p| p.cluster_ip).collect();
    let network = u64::from(u32::from(cidr.network()));
    let broadcast = u64::from(u32::from(cidr.broadcast()));
    let hosts = broadcast.saturating_sub(network + 1);
    for p in plans.iter_mut() {
        let ip = match p.cluster_ip {
            Some(ip) => ip,
            None if !p.virtual_ip => Ipv4Addr::UNSPECIFIED,
            None => {
                let h = xxh3_64(format!("{}/{}", p.service.namespace, p.service.name).as_bytes());
                let found = (0..hosts)
                    .map(|k| network + 1 + (h % hosts.max(1) + k) % hosts)
                    .filter(|&a| a != network + 1 && a != network + 10)
                    .filter_map(|a| u32::try_from(a).ok().map(Ipv4Addr::from))
                    .find(|ip| !used.contains(ip));
                let Some(ip) = found else {
                    return Err(ConfigError::ServiceCidrExhausted {
                        key: format!("{}: clusterIP", p.obj),
                        cidr,
                    });
                };
                used.insert(ip);
                ip
            }
        };
        p.service.cluster_ip = ip;
    }
    Ok(())
}

// ------------------------------------------------------------------ the store

/// The first lines of every [`to_toml`] output.
const STORE_HEADER: &str = "\
# Generated by `router` (config::to_toml): the cluster as the lab's API server holds it,
# with every allocated value (pod names and IPs, ClusterIPs, node ports, counters)
# written out. `router apply -f FILE` and `router delete` rewrite this file.
";

/// Materializes `c` in this module's schema with everything explicit:
/// every `[cluster]` key, each node's `nextPodIP` when set, each
/// Deployment's `templateHash`, `podsCreated` and pin, every pod (owned ones
/// with `owner`, their labels and ports left out when they are the
/// template's), every Service's ClusterIP (`"None"` when headless), node
/// ports, policies and IP lists.
///
/// `parse(&to_toml(&c))` gives `c` back for any `c` that [`parse`] made.
pub fn to_toml(c: &Cluster) -> String {
    emit(&to_raw(c))
}

/// What [`apply`] or a delete did to one object, printed as kubectl prints
/// it: `service/nginx-svc configured`, `deployment.apps/web created`,
/// `pod "client" deleted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `deployment`, `pod` or `service`.
    pub kind: &'static str,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// What happened to it.
    pub action: ChangeAction,
}

/// What happened to an object, in kubectl's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    /// It did not exist before.
    Created,
    /// It existed and its spec changed.
    Configured,
    /// It existed with the same spec.
    Unchanged,
    /// It was removed.
    Deleted,
}

impl fmt::Display for ChangeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Configured => "configured",
            Self::Unchanged => "unchanged",
            Self::Deleted => "deleted",
        })
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // kubectl names Deployments by their API group.
        let kind = match self.kind {
            "deployment" => "deployment.apps",
            other => other,
        };
        match self.action {
            ChangeAction::Deleted => write!(f, "{kind} \"{}\" deleted", self.name),
            action => write!(f, "{kind}/{} {action}", self.name),
        }
    }
}

/// `kubectl apply -f FILE` against the store: `file` holds `[[deployments]]`,
/// `[[pods]]` and/or `[[services]]` in this module's schema (no `[cluster]`,
/// no `[[nodes]]`); each replaces the store's object of the same kind,
/// namespace and name, or is added.
///
/// Allocated values survive a re-apply: a Service without `clusterIP`
/// keeps its ClusterIP (or stays headless), a NodePort/LoadBalancer port
/// without `nodePort` keeps the one of the old port with the same number and
/// protocol (a ClusterIP -> NodePort change allocates one, NodePort ->
/// ClusterIP drops it). A Deployment with the same template (labels, ports,
/// pin and, when given, `templateHash`) keeps its hash, `podsCreated` and
/// pods, so changing `replicas` scales it; with another template its old
/// pods are removed and new ones generated (a simplified rollout). A pod
/// without `node`/`ip` keeps its node and IP.
///
/// The merged document is then validated with every rule of [`parse`]; on
/// error nothing is returned to write, and the error names the applied
/// object by its place in `file` (`services[0] "default/web": ...`) and a
/// stored one as `store services[3] ...`. Pods this apply creates are
/// written not ready (`ready = false`: the lab's kubelet marks them ready
/// when their server answers), except router-hosted ones (the router
/// answers for those itself); existing pods keep their readiness.
///
/// Returns the new store text ([`to_toml`]) and one [`Change`] per applied
/// object: Deployments, then pods, then Services, each in file order.
pub fn apply(store: &str, file: &str) -> Result<(String, Vec<Change>), ConfigError> {
    let before = parse(store)?;
    let applied: RawApply = toml::from_str(file).map_err(|e| toml_error(file, e))?;
    if applied.cluster.is_some() {
        return Err(ConfigError::ApplyClusterScoped {
            section: "[cluster]",
        });
    }
    if applied.nodes.is_some() {
        return Err(ConfigError::ApplyClusterScoped {
            section: "[[nodes]]",
        });
    }
    if applied.deployments.is_empty() && applied.pods.is_empty() && applied.services.is_empty() {
        return Err(ConfigError::NothingToApply);
    }
    let mut stored = store_raw(&before);
    let key = |namespace: &Option<String>, name: &str| {
        (
            namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            name.to_owned(),
        )
    };

    let mut deployments = Vec::with_capacity(applied.deployments.len());
    for (i, mut d) in applied.deployments.into_iter().enumerate() {
        d.origin = Some(format!("deployments[{i}]"));
        let (ns, name) = key(&d.namespace, &d.name);
        if let Some(old) = before.deployment(&ns, &name) {
            if same_template(old, &d) {
                d.template_hash
                    .get_or_insert_with(|| old.template_hash.clone());
            } else {
                // A rollout: the old template's pods go, the controller
                // generates new ones.
                stored.pods.retain(|p| {
                    key(&p.namespace, &p.name).0 != ns || p.owner.as_deref() != Some(name.as_str())
                });
            }
            d.pods_created
                .get_or_insert(i64::try_from(old.pods_created).unwrap_or(i64::MAX));
            stored
                .deployments
                .retain(|o| key(&o.namespace, &o.name) != (ns.clone(), name.clone()));
        }
        deployments.push(d);
    }

    let mut pods = Vec::with_capacity(applied.pods.len());
    for (i, mut p) in applied.pods.into_iter().enumerate() {
        p.origin = Some(format!("pods[{i}]"));
        let (ns, name) = key(&p.namespace, &p.name);
        if let Some(old) = before.pod(&ns, &name) {
            let node = p.node.get_or_insert_with(|| old.node.clone());
            if p.ip.is_none() && *node == old.node {
                p.ip = Some(old.ip.to_string());
            }
            stored
                .pods
                .retain(|o| key(&o.namespace, &o.name) != (ns.clone(), name.clone()));
        }
        pods.push(p);
    }

    let mut services = Vec::with_capacity(applied.services.len());
    for (i, mut s) in applied.services.into_iter().enumerate() {
        s.origin = Some(format!("services[{i}]"));
        let (ns, name) = key(&s.namespace, &s.name);
        if let Some(old) = before.service(&ns, &name) {
            keep_allocations(old, &mut s);
            stored
                .services
                .retain(|o| key(&o.namespace, &o.name) != (ns.clone(), name.clone()));
        }
        services.push(s);
    }

    // Applied objects last: a clash is reported on the applied object.
    let applied_keys = (
        deployments
            .iter()
            .map(|d| key(&d.namespace, &d.name))
            .collect::<Vec<_>>(),
        pods.iter()
            .map(|p| key(&p.namespace, &p.name))
            .collect::<Vec<_>>(),
        services
            .iter()
            .map(|s| key(&s.namespace, &s.name))
            .collect::<Vec<_>>(),
    );
    stored.deployments.extend(deployments);
    stored.pods.extend(pods);
    stored.services.extend(services);
    let mut after = build(stored)?;
    settle_readiness(&before, &mut after);
    // Deployments keep their place; new ones follow in file order.
    after.deployments.sort_by_key(|d| {
        before
            .deployments
            .iter()
            .position(|o| o.namespace == d.namespace && o.name == d.name)
            .unwrap_or(usize::MAX)
    });

    let mut changes = Vec::new();
    let action = |existed: bool, same: bool| match (existed, same) {
        (false, _) => ChangeAction::Created,
        (true, true) => ChangeAction::Unchanged,
        (true, false) => ChangeAction::Configured,
    };
    for (ns, name) in applied_keys.0 {
        let old = before.deployment(&ns, &name);
        let same = old.is_some_and(|o| {
            after
                .deployment(&ns, &name)
                .is_some_and(|n| same_deployment_spec(o, n))
        });
        changes.push(Change {
            kind: "deployment",
            action: action(old.is_some(), same),
            namespace: ns,
            name,
        });
    }
    for (ns, name) in applied_keys.1 {
        let old = before.pod(&ns, &name);
        let same = old.is_some_and(|o| {
            after.pod(&ns, &name).is_some_and(|n| {
                Pod {
                    ready: n.ready,
                    ..o.clone()
                } == *n
            })
        });
        changes.push(Change {
            kind: "pod",
            action: action(old.is_some(), same),
            namespace: ns,
            name,
        });
    }
    for (ns, name) in applied_keys.2 {
        let old = before.service(&ns, &name);
        let same = old.is_some_and(|o| after.service(&ns, &name) == Some(o));
        changes.push(Change {
            kind: "service",
            action: action(old.is_some(), same),
            namespace: ns,
            name,
        });
    }
    Ok((to_toml(&after), changes))
}

/// `kubectl delete pod NAME -n NAMESPACE` against the store. A pod owned
/// by a Deployment is replaced by the deployment controller, as the
/// ReplicaSet would: a new name (the next `podsCreated`), a new IP (the
/// node's `nextPodIP`, round robin), not ready.
///
/// Returns the new store text and kubectl's line (`pod "NAME" deleted`);
/// an unknown pod is [`ConfigError::PodNotFound`] (`pods "NAME" not found`).
pub fn delete_pod(
    store: &str,
    namespace: &str,
    name: &str,
) -> Result<(String, Vec<Change>), ConfigError> {
    let before = parse(store)?;
    if before.pod(namespace, name).is_none() {
        return Err(ConfigError::PodNotFound {
            name: name.to_owned(),
        });
    }
    let mut raw = store_raw(&before);
    raw.pods.retain(|p| {
        p.name != name || p.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE) != namespace
    });
    let mut after = build(raw)?;
    settle_readiness(&before, &mut after);
    Ok((
        to_toml(&after),
        vec![Change {
            kind: "pod",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            action: ChangeAction::Deleted,
        }],
    ))
}

/// `kubectl delete service NAME -n NAMESPACE` against the store: returns
/// the new store text and kubectl's line (`service "NAME" deleted`); an
/// unknown Service is [`ConfigError::ServiceNotFound`].
pub fn delete_service(
    store: &str,
    namespace: &str,
    name: &str,
) -> Result<(String, Vec<Change>), ConfigError> {
    let mut c = parse(store)?;
    let Some(i) = c
        .services
        .iter()
        .position(|s| s.namespace == namespace && s.name == name)
    else {
        return Err(ConfigError::ServiceNotFound {
            name: name.to_owned(),
        });
    };
    c.services.remove(i);
    Ok((
        to_toml(&c),
        vec![Change {
            kind: "service",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            action: ChangeAction::Deleted,
        }],
    ))
}

/// `kubectl delete deployment NAME -n NAMESPACE` against the store: the
/// Deployment and its pods go (cascading, as by default). Returns the new
/// store text and kubectl's line (`deployment.apps "NAME" deleted`); an
/// unknown Deployment is [`ConfigError::DeploymentNotFound`].
pub fn delete_deployment(
    store: &str,
    namespace: &str,
    name: &str,
) -> Result<(String, Vec<Change>), ConfigError> {
    let mut c = parse(store)?;
    let Some(i) = c
        .deployments
        .iter()
        .position(|d| d.namespace == namespace && d.name == name)
    else {
        return Err(ConfigError::DeploymentNotFound {
            name: name.to_owned(),
        });
    };
    c.deployments.remove(i);
    c.pods
        .retain(|p| p.namespace != namespace || p.owner.as_deref() != Some(name));
    Ok((
        to_toml(&c),
        vec![Change {
            kind: "deployment",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            action: ChangeAction::Deleted,
        }],
    ))
}

/// Marks the pod `namespace/name` ready or not (the lab's kubelet, when
/// the pod's server answers or stops answering). Returns the new store
/// text; an unknown pod is [`ConfigError::PodNotFound`].
pub fn set_ready(
    store: &str,
    namespace: &str,
    name: &str,
    ready: bool,
) -> Result<String, ConfigError> {
    let mut c = parse(store)?;
    let Some(pod) = c
        .pods
        .iter_mut()
        .find(|p| p.namespace == namespace && p.name == name)
    else {
        return Err(ConfigError::PodNotFound {
            name: name.to_owned(),
        });
    };
    pod.ready = ready;
    Ok(to_toml(&c))
}

/// `c` as raw objects named for errors as the store's (`store pods[3]`).
fn store_raw(c: &Cluster) -> RawConfig {
    let mut raw = to_raw(c);
    for (i, d) in raw.deployments.iter_mut().enumerate() {
        d.origin = Some(format!("store deployments[{i}]"));
    }
    for (i, p) in raw.pods.iter_mut().enumerate() {
        p.origin = Some(format!("store pods[{i}]"));
    }
    for (i, s) in raw.services.iter_mut().enumerate() {
        s.origin = Some(format!("store services[{i}]"));
    }
    raw
}

/// Pods that existed in `before` keep their readiness; new ones start not
/// ready, except the ones the router serves itself.
fn settle_readiness(before: &Cluster, after: &mut Cluster) {
    for p in &mut after.pods {
        p.ready = match before.pod(&p.namespace, &p.name) {
            Some(old) => old.ready,
            None => p.is_router_hosted(),
        };
    }
}

/// Whether the applied Deployment `new` has `old`'s pod template: labels,
/// ports, pinned node and, when it gives one, pod-template-hash.
fn same_template(old: &Deployment, new: &RawDeployment) -> bool {
    new.labels == old.labels
        && new.node == old.node
        && new
            .template_hash
            .as_ref()
            .is_none_or(|h| *h == old.template_hash)
        && container_ports("", &new.ports).is_ok_and(|p| p == old.ports)
}

/// Equal but for the `pods_created` counter (status, not spec).
fn same_deployment_spec(a: &Deployment, b: &Deployment) -> bool {
    Deployment {
        pods_created: b.pods_created,
        ..a.clone()
    } == *b
}

/// Carries `old`'s allocated ClusterIP and node ports into the applied
/// `new` where it leaves them out and still needs them.
fn keep_allocations(old: &Service, new: &mut RawService) {
    let ty = new.service_type.as_deref().unwrap_or("ClusterIP");
    if new.cluster_ip.is_none() && ty != "ExternalName" {
        if old.headless {
            if ty == "ClusterIP" {
                new.cluster_ip = Some("None".to_owned());
            }
        } else if old.service_type != ServiceType::ExternalName {
            new.cluster_ip = Some(old.cluster_ip.to_string());
        }
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        for port in new.ports.iter_mut().filter(|p| p.node_port.is_none()) {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            port.node_port = old
                .ports
                .iter()
                .find(|o| i64::from(o.port) == port.port && o.protocol.to_string() == protocol)
                .and_then(|o| o.node_port)
                .map(i64::from);
        }
    }
}

/// `c` as the raw objects [`build`] would turn back into `c`.
fn to_raw(c: &Cluster) -> RawConfig {
    let raw_ports = |ports: &[ContainerPort]| -> Vec<RawContainerPort> {
        ports
            .iter()
            .map(|p| RawContainerPort {
                name: p.name.clone(),
                container_port: i64::from(p.container_port),
                protocol: Some(p.protocol.to_string()),
            })
            .collect()
    };
    let cluster = RawCluster {
        pod_cidr: c.pod_cidr.to_string(),
        service_cidr: Some(c.service_cidr.to_string()),
        dns_domain: Some(c.dns_domain.clone()),
        vxlan_vni: Some(i64::from(c.overlay.vni)),
        vxlan_port: Some(i64::from(c.overlay.port)),
        underlay_mtu: Some(i64::from(c.overlay.underlay_mtu)),
    };
    let nodes = c
        .nodes
        .iter()
        .map(|n| RawNode {
            name: n.name.clone(),
            address: n.underlay_ip.to_string(),
            pod_cidr: n.pod_cidr.to_string(),
            next_pod_ip: n.next_pod_ip.map(|ip| ip.to_string()),
        })
        .collect();
    let deployments = c
        .deployments
        .iter()
        .map(|d| RawDeployment {
            name: d.name.clone(),
            namespace: Some(d.namespace.clone()),
            replicas: i64::from(d.replicas),
            labels: d.labels.clone(),
            template_hash: Some(d.template_hash.clone()),
            node: d.node.clone(),
            ports: raw_ports(&d.ports),
            pods_created: Some(i64::try_from(d.pods_created).unwrap_or(i64::MAX)),
            origin: None,
        })
        .collect();
    let pods = c
        .pods
        .iter()
        .map(|p| {
            let template = p.owner.as_ref().and_then(|o| c.deployment(&p.namespace, o));
            RawPod {
                name: p.name.clone(),
                namespace: Some(p.namespace.clone()),
                owner: p.owner.clone(),
                labels: match template {
                    Some(d) if template_labels(d) == p.labels => None,
                    _ => Some(p.labels.clone()),
                },
                node: Some(p.node.clone()),
                ip: Some(p.ip.to_string()),
                ready: Some(p.ready),
                ports: match template {
                    Some(d) if d.ports == p.ports => None,
                    _ => Some(raw_ports(&p.ports)),
                },
                origin: None,
            }
        })
        .collect();
    let services = c
        .services
        .iter()
        .map(|s| {
            let ips = |ips: &[Ipv4Addr]| ips.iter().map(ToString::to_string).collect();
            RawService {
                name: s.name.clone(),
                namespace: Some(s.namespace.clone()),
                service_type: Some(s.service_type.to_string()),
                cluster_ip: if s.headless {
                    Some("None".to_owned())
                } else if s.service_type == ServiceType::ExternalName {
                    None
                } else {
                    Some(s.cluster_ip.to_string())
                },
                external_name: s.external_name.clone(),
                selector: s.selector.clone(),
                labels: s.labels.clone(),
                session_affinity: Some(
                    match s.session_affinity {
                        SessionAffinity::None => "None",
                        SessionAffinity::ClientIP { .. } => "ClientIP",
                    }
                    .to_owned(),
                ),
                session_affinity_timeout_seconds: match s.session_affinity {
                    SessionAffinity::None => None,
                    SessionAffinity::ClientIP { timeout_seconds } => {
                        Some(i64::from(timeout_seconds))
                    }
                },
                external_traffic_policy: externally_accessible(s.service_type, &s.external_ips)
                    .then(|| s.external_traffic_policy.to_string()),
                internal_traffic_policy: Some(s.internal_traffic_policy.to_string()),
                external_ips: ips(&s.external_ips),
                load_balancer_ips: ips(&s.load_balancer_ips),
                ports: s
                    .ports
                    .iter()
                    .map(|p| RawServicePort {
                        name: p.name.clone(),
                        port: i64::from(p.port),
                        target_port: Some(match &p.target_port {
                            TargetPort::Number(n) => RawIntOrString::Int(i64::from(*n)),
                            TargetPort::Name(n) => RawIntOrString::Str(n.clone()),
                        }),
                        node_port: p.node_port.map(i64::from),
                        protocol: Some(p.protocol.to_string()),
                    })
                    .collect(),
                origin: None,
            }
        })
        .collect();
    RawConfig {
        cluster,
        nodes,
        deployments,
        pods,
        services,
    }
}

/// Writes raw objects as TOML in `config.toml`'s layout: one table per
/// object, labels as inline tables, ports one per line.
fn emit(raw: &RawConfig) -> String {
    let mut out = String::from(STORE_HEADER);
    let c = &raw.cluster;
    out.push_str("\n[cluster]\n");
    put(&mut out, "podCIDR", Some(quote(&c.pod_cidr)));
    put(
        &mut out,
        "serviceCIDR",
        c.service_cidr.as_deref().map(quote),
    );
    put(&mut out, "dnsDomain", c.dns_domain.as_deref().map(quote));
    put(&mut out, "vxlanVNI", c.vxlan_vni.map(|v| v.to_string()));
    put(&mut out, "vxlanPort", c.vxlan_port.map(|v| v.to_string()));
    put(
        &mut out,
        "underlayMTU",
        c.underlay_mtu.map(|v| v.to_string()),
    );
    for n in &raw.nodes {
        out.push_str("\n[[nodes]]\n");
        put(&mut out, "name", Some(quote(&n.name)));
        put(&mut out, "address", Some(quote(&n.address)));
        put(&mut out, "podCIDR", Some(quote(&n.pod_cidr)));
        put(&mut out, "nextPodIP", n.next_pod_ip.as_deref().map(quote));
    }
    for d in &raw.deployments {
        out.push_str("\n[[deployments]]\n");
        put(&mut out, "name", Some(quote(&d.name)));
        put(&mut out, "namespace", d.namespace.as_deref().map(quote));
        put(&mut out, "replicas", Some(d.replicas.to_string()));
        put(&mut out, "labels", Some(inline_labels(&d.labels)));
        put(
            &mut out,
            "templateHash",
            d.template_hash.as_deref().map(quote),
        );
        put(&mut out, "node", d.node.as_deref().map(quote));
        put(
            &mut out,
            "podsCreated",
            d.pods_created.map(|n| n.to_string()),
        );
        put(&mut out, "ports", Some(container_port_list(&d.ports)));
    }
    for p in &raw.pods {
        out.push_str("\n[[pods]]\n");
        put(&mut out, "name", Some(quote(&p.name)));
        put(&mut out, "namespace", p.namespace.as_deref().map(quote));
        put(&mut out, "owner", p.owner.as_deref().map(quote));
        put(&mut out, "node", p.node.as_deref().map(quote));
        put(&mut out, "ip", p.ip.as_deref().map(quote));
        put(&mut out, "ready", p.ready.map(|r| r.to_string()));
        put(&mut out, "labels", p.labels.as_ref().map(inline_labels));
        put(
            &mut out,
            "ports",
            p.ports.as_deref().map(container_port_list),
        );
    }
    for s in &raw.services {
        out.push_str("\n[[services]]\n");
        put(&mut out, "name", Some(quote(&s.name)));
        put(&mut out, "namespace", s.namespace.as_deref().map(quote));
        put(&mut out, "type", s.service_type.as_deref().map(quote));
        put(&mut out, "clusterIP", s.cluster_ip.as_deref().map(quote));
        put(
            &mut out,
            "externalName",
            s.external_name.as_deref().map(quote),
        );
        put(&mut out, "selector", Some(inline_labels(&s.selector)));
        put(&mut out, "labels", Some(inline_labels(&s.labels)));
        put(
            &mut out,
            "sessionAffinity",
            s.session_affinity.as_deref().map(quote),
        );
        put(
            &mut out,
            "sessionAffinityTimeoutSeconds",
            s.session_affinity_timeout_seconds.map(|t| t.to_string()),
        );
        put(
            &mut out,
            "externalTrafficPolicy",
            s.external_traffic_policy.as_deref().map(quote),
        );
        put(
            &mut out,
            "internalTrafficPolicy",
            s.internal_traffic_policy.as_deref().map(quote),
        );
        put(&mut out, "externalIPs", Some(string_list(&s.external_ips)));
        put(
            &mut out,
            "loadBalancerIPs",
            Some(string_list(&s.load_balancer_ips)),
        );
        let ports: Vec<String> = s
            .ports
            .iter()
            .map(|p| {
                let mut fields = Vec::new();
                if let Some(n) = &p.name {
                    fields.push(format!("name = {}", quote(n)));
                }
                fields.push(format!("port = {}", p.port));
                match &p.target_port {
                    Some(RawIntOrString::Int(n)) => fields.push(format!("targetPort = {n}")),
                    Some(RawIntOrString::Str(n)) => {
                        fields.push(format!("targetPort = {}", quote(n)));
                    }
                    None => {}
                }
                if let Some(n) = p.node_port {
                    fields.push(format!("nodePort = {n}"));
                }
                if let Some(proto) = &p.protocol {
                    fields.push(format!("protocol = {}", quote(proto)));
                }
                format!("{{ {} }}", fields.join(", "))
            })
            .collect();
        put(&mut out, "ports", Some(multiline_array(&ports)));
    }
    out
}

/// `key = value` on its own line, when there is a value.
fn put(out: &mut String, key: &str, value: Option<String>) {
    if let Some(v) = value {
        out.push_str(key);
        out.push_str(" = ");
        out.push_str(&v);
        out.push('\n');
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML key: bare when it can be, else quoted (`"app.kubernetes.io/name"`).
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        k.to_owned()
    } else {
        quote(k)
    }
}

/// `{ app = "web", tier = "front" }`, or `{}`.
fn inline_labels(l: &Labels) -> String {
    if l.is_empty() {
        return "{}".to_owned();
    }
    let pairs: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{} = {}", toml_key(k), quote(v)))
        .collect();
    format!("{{ {} }}", pairs.join(", "))
}

/// `["a", "b"]`, or `[]`.
fn string_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Container ports, one inline table per line.
fn container_port_list(ports: &[RawContainerPort]) -> String {
    let items: Vec<String> = ports
        .iter()
        .map(|p| {
            let mut fields = Vec::new();
            if let Some(n) = &p.name {
                fields.push(format!("name = {}", quote(n)));
            }
            fields.push(format!("containerPort = {}", p.container_port));
            if let Some(proto) = &p.protocol {
                fields.push(format!("protocol = {}", quote(proto)));
            }
            format!("{{ {} }}", fields.join(", "))
        })
        .collect();
    multiline_array(&items)
}

/// `[]`, or one item per line with a trailing comma.
fn multiline_array(items: &[String]) -> String {
    if items.is_empty() {
        return "[]".to_owned();
    }
    let mut out = String::from("[\n");
    for item in items {
        out.push_str("    ");
        out.push_str(item);
        out.push_str(",\n");
    }
    out.push(']');
    out
}

// ------------------------------------------------------------------ helpers

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b) || b.contains(&a)
}

fn parse_cidr(key: &str, text: &str) -> Result<Ipv4Net, ConfigError> {
    let net: Ipv4Net =
        text.parse()
            .map_err(|e: ipnet::AddrParseError| ConfigError::InvalidCidr {
                key: key.to_owned(),
                value: text.to_owned(),
                reason: e.to_string(),
            })?;
    if net.trunc() != net {
        return Err(ConfigError::CidrHostBits {
            key: key.to_owned(),
            value: text.to_owned(),
            network: net.trunc(),
        });
    }
    Ok(net)
}

fn parse_ip(key: &str, text: &str) -> Result<Ipv4Addr, ConfigError> {
    text.parse()
        .map_err(|e: std::net::AddrParseError| ConfigError::InvalidIp {
            key: key.to_owned(),
            value: text.to_owned(),
            reason: e.to_string(),
        })
}

fn find_node(key: &str, name: &str, nodes: &[Node]) -> Result<usize, ConfigError> {
    nodes
        .iter()
        .position(|n| n.name == name)
        .ok_or_else(|| ConfigError::UnknownNode {
            key: key.to_owned(),
            value: name.to_owned(),
            known: nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::EmptyName {
            key: key.to_owned(),
        });
    }
    check_dns_label(name).map_err(|reason| ConfigError::InvalidName {
        key: key.to_owned(),
        value: name.to_owned(),
        reason,
    })
}

/// Kubernetes' `IsDNS1123Label`.
fn check_dns_label(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > 63 {
        return Err("must be no more than 63 characters");
    }
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    let inner_ok = bytes.iter().all(|&b| ok_char(b) || b == b'-');
    let ends_ok =
        bytes.first().is_some_and(|&b| ok_char(b)) && bytes.last().is_some_and(|&b| ok_char(b));
    if !inner_ok || !ends_ok {
        return Err("it must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character");
    }
    Ok(())
}

/// Kubernetes' `IsDNS1123Subdomain`, checked label by label.
fn check_dns_subdomain(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > 253 {
        return Err("must be no more than 253 characters");
    }
    if s.split('.').all(|l| check_dns_label(l).is_ok()) {
        Ok(())
    } else {
        Err("it must be dot-separated DNS-1123 labels (lower case alphanumeric characters or '-', starting and ending with an alphanumeric character)")
    }
}

/// Kubernetes' `IsValidPortName` (an IANA service name).
fn check_port_name(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > 15 {
        return Err("must be no more than 15 characters");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(
            "must contain only lower case alphanumeric characters (a-z, 0-9) and hyphens (-)",
        );
    }
    if s.contains("--") {
        return Err("must not contain consecutive hyphens");
    }
    if !s.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err("must contain at least one letter (a-z)");
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must not begin or end with a hyphen");
    }
    Ok(())
}

fn port_number(key: &str, value: i64) -> Result<u16, ConfigError> {
    u16::try_from(value)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| ConfigError::PortOutOfRange {
            key: key.to_owned(),
            value,
        })
}

fn protocol(key: &str, value: Option<&str>) -> Result<Protocol, ConfigError> {
    match value {
        None | Some("TCP") => Ok(Protocol::Tcp),
        Some("UDP") => Ok(Protocol::Udp),
        Some(other) => Err(ConfigError::UnsupportedProtocol {
            key: key.to_owned(),
            value: other.to_owned(),
        }),
    }
}

/// A port's optional name (`""` is no name): valid by `check`, and not
/// used by an earlier port of the same object (`taken`, in order) whose
/// key-path prefix is `owner`.
fn port_name<'a>(
    key: &str,
    name: Option<&str>,
    taken: impl Iterator<Item = Option<&'a str>>,
    check: fn(&str) -> Result<(), &'static str>,
    owner: &str,
) -> Result<Option<String>, ConfigError> {
    let Some(n) = name.filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if let Err(reason) = check(n) {
        return Err(ConfigError::InvalidPortName {
            key: key.to_owned(),
            value: n.to_owned(),
            reason,
        });
    }
    if let Some(k) = taken.into_iter().position(|o| o == Some(n)) {
        return Err(ConfigError::DuplicatePortName {
            key: key.to_owned(),
            value: n.to_owned(),
            first: format!("{owner}.ports[{k}]"),
        });
    }
    Ok(Some(n.to_owned()))
}

/// Validates the container ports of `owner` (`deployments[0]`, `pods[1]`).
fn container_ports(
    owner: &str,
    raw: &[RawContainerPort],
) -> Result<Vec<ContainerPort>, ConfigError> {
    let mut out: Vec<ContainerPort> = Vec::with_capacity(raw.len());
    for (j, p) in raw.iter().enumerate() {
        let key = |field: &str| format!("{owner}.ports[{j}].{field}");
        let name = port_name(
            &key("name"),
            p.name.as_deref(),
            out.iter().map(|o| o.name.as_deref()),
            check_port_name,
            owner,
        )?;
        out.push(ContainerPort {
            name,
            container_port: port_number(&key("containerPort"), p.container_port)?,
            protocol: protocol(&key("protocol"), p.protocol.as_deref())?,
        });
    }
    Ok(out)
}

/// A pod-template-hash the way Kubernetes spells one: a hash of the
/// template, printed in decimal, each digit mapped through
/// `SafeEncodeString` (so it only uses `456789bcdf`, like `756d6b7586`).
fn template_hash(labels: &Labels, ports: &[ContainerPort]) -> String {
    let mut s = String::from("labels\n");
    for (k, v) in labels {
        s.push_str(&format!("{k}={v}\n"));
    }
    s.push_str("ports\n");
    for p in ports {
        s.push_str(&format!(
            "{}/{}/{}\n",
            p.name.as_deref().unwrap_or(""),
            p.container_port,
            p.protocol
        ));
    }
    let digits = format!("{:010}", xxh3_64(s.as_bytes()) % 10_000_000_000);
    digits
        .bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .take(TEMPLATE_HASH_LEN)
        .collect()
}

/// `len` characters of `SafeEncodeString`'s alphabet drawn from `h`.
fn safe_encode_u64(mut h: u64, len: usize) -> String {
    let n = SAFE_ALPHABET.len() as u64;
    (0..len)
        .map(|_| {
            let c = SAFE_ALPHABET[(h % n) as usize];
            h /= n;
            char::from(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = include_str!("../../config.toml");

    /// A minimal valid cluster; tests append sections to it.
    const BASE: &str = r#"
[cluster]
podCIDR = "10.10.0.0/16"
serviceCIDR = "10.96.0.0/12"

[[nodes]]
name = "n1"
address = "192.168.0.1"
podCIDR = "10.10.1.0/24"
"#;

    fn ok(text: &str) -> Cluster {
        match parse(text) {
            Ok(c) => c,
            Err(e) => panic!("config should parse, got: {e}\n{text}"),
        }
    }

    /// Parses `text`, expects an error, and checks that its message contains
    /// every one of `needles`. Returns the message.
    #[track_caller]
    fn bad(text: &str, needles: &[&str]) -> String {
        let msg = match parse(text) {
            Ok(_) => panic!("config should be refused:\n{text}"),
            Err(e) => e.to_string(),
        };
        for n in needles {
            assert!(msg.contains(n), "error {msg:?} should contain {n:?}");
        }
        msg
    }

    fn with(extra: &str) -> String {
        format!("{BASE}\n{extra}")
    }

    fn host(net: Ipv4Net, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(net.network()) + n)
    }

    fn in_alphabet(s: &str) -> bool {
        s.bytes().all(|b| SAFE_ALPHABET.contains(&b))
    }

    // ---------------------------------------------------------- the default file

    #[test]
    fn default_config_is_the_two_node_walkthrough() {
        let c = ok(DEFAULT);
        assert_eq!(c.pod_cidr, "10.10.0.0/16".parse::<Ipv4Net>().expect("cidr"));
        assert_eq!(
            c.service_cidr,
            "10.96.0.0/12".parse::<Ipv4Net>().expect("cidr")
        );
        assert_eq!(c.dns_domain, "cluster.local");
        assert_eq!(
            c.overlay,
            Overlay {
                vni: 1,
                port: 8472,
                underlay_mtu: 1500
            }
        );

        // Two nodes, in file order.
        let nodes: Vec<(&str, Ipv4Addr, Ipv4Net)> = c
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.underlay_ip, n.pod_cidr))
            .collect();
        assert_eq!(
            nodes,
            vec![
                (
                    "mac-master",
                    Ipv4Addr::new(192, 168, 191, 144),
                    "10.10.0.0/24".parse().expect("cidr")
                ),
                (
                    "mac-worker",
                    Ipv4Addr::new(192, 168, 191, 145),
                    "10.10.1.0/24".parse().expect("cidr")
                ),
            ]
        );
        let master = c.node("mac-master").expect("mac-master").pod_cidr;
        let worker = c.node("mac-worker").expect("mac-worker").pod_cidr;

        // One nginx replica per node, round-robin in node order: replica 0
        // on mac-master, replica 1 on mac-worker, each at its node's .2.
        let nginx: Vec<&Pod> = c
            .pods
            .iter()
            .filter(|p| p.owner.as_deref() == Some("nginx-deployment"))
            .collect();
        assert_eq!(nginx.len(), 2);
        let mut placed: Vec<(&str, Ipv4Addr)> =
            nginx.iter().map(|p| (p.node.as_str(), p.ip)).collect();
        placed.sort();
        assert_eq!(
            placed,
            vec![
                ("mac-master", host(master, 2)),
                ("mac-worker", host(worker, 2))
            ]
        );
        let hash = &c.deployments[0].template_hash;
        let replica = |r: u32| {
            let seed = xxh3_64(format!("default/nginx-deployment/{hash}/{r}").as_bytes());
            format!("nginx-deployment-{hash}-{}", safe_encode_u64(seed, 5))
        };
        let node_of = |name: &str| {
            c.pods
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.node.as_str())
        };
        assert_eq!(node_of(&replica(0)), Some("mac-master"));
        assert_eq!(node_of(&replica(1)), Some("mac-worker"));
        for p in &nginx {
            let suffix = p
                .name
                .strip_prefix("nginx-deployment-756d6b7586-")
                .unwrap_or_else(|| panic!("pod name {}", p.name));
            assert_eq!(suffix.len(), 5, "{}", p.name);
            assert!(in_alphabet(suffix), "{}", p.name);
            assert!(p.ready);
            assert_eq!(
                p.labels.get("app").map(String::as_str),
                Some("nginx-deployment")
            );
            assert_eq!(
                p.labels.get("pod-template-hash").map(String::as_str),
                Some("756d6b7586")
            );
            assert_eq!(p.ports.len(), 2);
        }

        // The two clients, one per node, at their explicit addresses.
        for (name, node, ip, run) in [
            (
                "client",
                "mac-worker",
                Ipv4Addr::new(10, 10, 1, 100),
                "client",
            ),
            (
                "client-master",
                "mac-master",
                Ipv4Addr::new(10, 10, 0, 100),
                "client-master",
            ),
        ] {
            let p = c.pods.iter().find(|p| p.name == name).expect(name);
            assert_eq!((p.node.as_str(), p.ip), (node, ip), "{name}");
            assert_eq!(p.owner, None);
            assert!(p.ports.is_empty());
            assert!(p.ready);
            assert_eq!(p.labels, Labels::from([("run".into(), run.into())]));
        }
        // Two nginx pods, two clients, one CoreDNS pod per node.
        assert_eq!(c.pods.len(), 6);

        let both = vec![(host(master, 2), 80), (host(worker, 2), 80)];
        let eps = |svc: &Service| -> Vec<(Ipv4Addr, u16)> {
            c.endpoints(svc, &svc.ports[0])
                .iter()
                .map(|e| (e.ip, e.port))
                .collect()
        };

        let svc = c.service("default", "nginx-svc").expect("nginx-svc");
        assert_eq!(svc.cluster_ip, Ipv4Addr::new(10, 101, 182, 177));
        assert_eq!(svc.service_type, ServiceType::ClusterIP);
        assert_eq!(svc.session_affinity, SessionAffinity::None);
        assert_eq!(svc.external_traffic_policy, TrafficPolicy::Cluster);
        assert!(svc.external_ips.is_empty() && svc.load_balancer_ips.is_empty());
        assert_eq!(
            svc.ports,
            vec![ServicePort {
                name: None,
                protocol: Protocol::Tcp,
                port: 80,
                target_port: TargetPort::Number(80),
                node_port: None,
            }]
        );
        assert_eq!(eps(svc), both);

        let echo = c.service("default", "echo-udp").expect("echo-udp");
        assert_eq!(echo.ports[0].protocol, Protocol::Udp);
        assert_eq!(
            eps(echo),
            vec![(host(master, 2), 9000), (host(worker, 2), 9000)]
        );
        assert_ne!(echo.cluster_ip, host(c.service_cidr, 1));
        assert_ne!(echo.cluster_ip, host(c.service_cidr, 10));

        let orphan = c.service("default", "orphan-svc").expect("orphan-svc");
        assert!(eps(orphan).is_empty());
        assert_eq!(orphan.ports[0].target_port, TargetPort::Number(80));

        // The NodePort, Local NodePort and LoadBalancer Services.
        for (name, ty, node_port, policy, lb, ext) in [
            (
                "nginx-nodeport",
                ServiceType::NodePort,
                30080,
                TrafficPolicy::Cluster,
                vec![],
                vec![],
            ),
            (
                "nginx-local",
                ServiceType::NodePort,
                30081,
                TrafficPolicy::Local,
                vec![],
                vec![],
            ),
            (
                "nginx-lb",
                ServiceType::LoadBalancer,
                30082,
                TrafficPolicy::Cluster,
                vec![Ipv4Addr::new(192, 168, 200, 10)],
                vec![Ipv4Addr::new(192, 168, 200, 20)],
            ),
        ] {
            let s = c.service("default", name).expect(name);
            assert_eq!(s.service_type, ty, "{name}");
            assert_eq!(s.external_traffic_policy, policy, "{name}");
            assert_eq!(s.load_balancer_ips, lb, "{name}");
            assert_eq!(s.external_ips, ext, "{name}");
            assert_eq!(s.session_affinity, SessionAffinity::None, "{name}");
            assert_eq!(
                s.selector,
                Labels::from([("app".into(), "nginx-deployment".into())])
            );
            assert_eq!(
                s.ports,
                vec![ServicePort {
                    name: None,
                    protocol: Protocol::Tcp,
                    port: 80,
                    target_port: TargetPort::Number(80),
                    node_port: Some(node_port),
                }],
                "{name}"
            );
            assert_eq!(eps(s), both, "{name}");
        }

        // Every allocated ClusterIP is distinct, inside the Service CIDR, and
        // none is the reserved first or tenth host (kube-dns has the tenth,
        // explicitly; headless and ExternalName Services have none).
        let dns = c.service("kube-system", "kube-dns").expect("kube-dns");
        assert_eq!(dns.cluster_ip, host(c.service_cidr, 10));
        let mut ips: Vec<Ipv4Addr> = c
            .services
            .iter()
            .filter(|s| {
                !s.headless && s.service_type != ServiceType::ExternalName && s.name != "kube-dns"
            })
            .map(|s| s.cluster_ip)
            .collect();
        assert_eq!(ips.len(), 6);
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 6);
        for ip in ips {
            assert!(c.service_cidr.contains(&ip), "{ip}");
            assert_ne!(ip, host(c.service_cidr, 1));
            assert_ne!(ip, host(c.service_cidr, 10));
        }

        assert_eq!(c.deployments.len(), 1);
        assert_eq!(c.deployments[0].template_hash, "756d6b7586");
        assert!(c.service("default", "nope").is_none());
        assert!(c.node("nope").is_none());
    }

    #[test]
    fn parsing_is_deterministic() {
        assert_eq!(ok(DEFAULT), ok(DEFAULT));
        let text = with(
            r#"
[[deployments]]
name = "web"
replicas = 5
labels = { app = "web" }
ports = [ { containerPort = 8080 } ]

[[services]]
name = "a"
type = "NodePort"
selector = { app = "web" }
ports = [ { port = 80, targetPort = 8080 } ]
"#,
        );
        assert_eq!(ok(&text), ok(&text));
    }

    #[test]
    fn pods_and_services_are_sorted_by_namespace_then_name() {
        let c = ok(&with(
            r#"
[[pods]]
name = "zeta"
[[pods]]
name = "alpha"
namespace = "zzz"
[[pods]]
name = "beta"
[[services]]
name = "s2"
selector = { a = "b" }
ports = [ { port = 1 } ]
[[services]]
name = "s1"
namespace = "aaa"
selector = { a = "b" }
ports = [ { port = 1 } ]
"#,
        ));
        let pods: Vec<(&str, &str)> = c
            .pods
            .iter()
            .map(|p| (p.namespace.as_str(), p.name.as_str()))
            .collect();
        assert_eq!(
            pods,
            vec![("default", "beta"), ("default", "zeta"), ("zzz", "alpha")]
        );
        let svcs: Vec<(&str, &str)> = c
            .services
            .iter()
            .map(|s| (s.namespace.as_str(), s.name.as_str()))
            .collect();
        assert_eq!(svcs, vec![("aaa", "s1"), ("default", "s2")]);
    }

    // ---------------------------------------------------------- allocation

    #[test]
    fn computed_template_hash_looks_like_kubernetes() {
        let text = with(
            r#"
[[deployments]]
name = "web"
replicas = 3
labels = { app = "web" }
ports = [ { name = "http", containerPort = 80 } ]
"#,
        );
        let c = ok(&text);
        let hash = &c.deployments[0].template_hash;
        assert_eq!(hash.len(), 10);
        assert!(in_alphabet(hash), "{hash}");
        for p in &c.pods {
            let suffix = p
                .name
                .strip_prefix(&format!("web-{hash}-"))
                .unwrap_or_else(|| panic!("{}", p.name));
            assert_eq!(suffix.len(), 5);
            assert!(in_alphabet(suffix), "{}", p.name);
        }
        // The hash depends on the template, not on the name or replicas.
        let other = ok(&text
            .replace("name = \"web\"", "name = \"api\"")
            .replace("replicas = 3", "replicas = 1"));
        assert_eq!(&other.deployments[0].template_hash, hash);
        let changed = ok(&text.replace("containerPort = 80", "containerPort = 81"));
        assert_ne!(&changed.deployments[0].template_hash, hash);
    }

    #[test]
    fn pod_ips_lowest_free_from_dot_two_in_declaration_order() {
        let c = ok(&with(
            r#"
[[deployments]]
name = "a"
replicas = 2
labels = { app = "a" }

[[deployments]]
name = "b"
replicas = 1
labels = { app = "b" }

[[pods]]
name = "fixed"
ip = "10.10.1.3"

[[pods]]
name = "free"
"#,
        ));
        let ip_of = |owner: Option<&str>, name: Option<&str>| -> Vec<Ipv4Addr> {
            let mut v: Vec<Ipv4Addr> = c
                .pods
                .iter()
                .filter(|p| owner.is_none_or(|o| p.owner.as_deref() == Some(o)))
                .filter(|p| name.is_none_or(|n| p.name == n))
                .map(|p| p.ip)
                .collect();
            v.sort();
            v
        };
        // .3 is taken explicitly, so: a -> .2 .4, b -> .5, free -> .6.
        assert_eq!(
            ip_of(Some("a"), None),
            vec![Ipv4Addr::new(10, 10, 1, 2), Ipv4Addr::new(10, 10, 1, 4)]
        );
        assert_eq!(ip_of(Some("b"), None), vec![Ipv4Addr::new(10, 10, 1, 5)]);
        assert_eq!(
            ip_of(None, Some("fixed")),
            vec![Ipv4Addr::new(10, 10, 1, 3)]
        );
        assert_eq!(ip_of(None, Some("free")), vec![Ipv4Addr::new(10, 10, 1, 6)]);
        // Replica 0 of `a` got the lower address.
        let a: Vec<&Pod> = c
            .pods
            .iter()
            .filter(|p| p.owner.as_deref() == Some("a"))
            .collect();
        let seed0 = xxh3_64(format!("default/a/{}/0", c.deployments[0].template_hash).as_bytes());
        let name0 = format!(
            "a-{}-{}",
            c.deployments[0].template_hash,
            safe_encode_u64(seed0, 5)
        );
        let r0 = a.iter().find(|p| p.name == name0).expect("replica 0");
        assert_eq!(r0.ip, Ipv4Addr::new(10, 10, 1, 2));
    }

    #[test]
    fn replicas_spread_round_robin_or_pinned() {
        let c = ok(&with(
            r#"
[[nodes]]
name = "n2"
address = "192.168.0.2"
podCIDR = "10.10.2.0/24"

[[deployments]]
name = "spread"
replicas = 3
labels = { app = "spread" }

[[deployments]]
name = "pinned"
replicas = 2
labels = { app = "pinned" }
node = "n2"

[[pods]]
name = "solo"
"#,
        ));
        let mut spread: Vec<(String, Ipv4Addr)> = c
            .pods
            .iter()
            .filter(|p| p.owner.as_deref() == Some("spread"))
            .map(|p| (p.node.clone(), p.ip))
            .collect();
        spread.sort();
        assert_eq!(
            spread,
            vec![
                ("n1".into(), Ipv4Addr::new(10, 10, 1, 2)),
                ("n1".into(), Ipv4Addr::new(10, 10, 1, 3)),
                ("n2".into(), Ipv4Addr::new(10, 10, 2, 2)),
            ]
        );
        let pinned: Vec<&Pod> = c
            .pods
            .iter()
            .filter(|p| p.owner.as_deref() == Some("pinned"))
            .collect();
        assert!(pinned.iter().all(|p| p.node == "n2"));
        let solo = c.pods.iter().find(|p| p.name == "solo").expect("solo");
        assert_eq!(
            (solo.node.as_str(), solo.ip),
            ("n1", Ipv4Addr::new(10, 10, 1, 4))
        );
    }

    #[test]
    fn generated_name_collision_rehashes() {
        let text = with(
            r#"
[[deployments]]
name = "web"
replicas = 1
labels = { app = "web" }
templateHash = "abc"
"#,
        );
        let first = ok(&text).pods[0].name.clone();
        let c = ok(&format!("{text}\n[[pods]]\nname = \"{first}\"\n"));
        assert_eq!(c.pods.len(), 2);
        let generated = c
            .pods
            .iter()
            .find(|p| p.owner.is_some())
            .expect("generated");
        assert_ne!(generated.name, first);
        assert!(generated.name.starts_with("web-abc-"));
        assert!(c.pods.iter().any(|p| p.name == first && p.owner.is_none()));
    }

    #[test]
    fn long_deployment_names_are_truncated_like_generate_name() {
        let name = "d".repeat(63);
        let c = ok(&with(&format!(
            "[[deployments]]\nname = \"{name}\"\nreplicas = 1\nlabels = {{ app = \"x\" }}\n"
        )));
        assert_eq!(c.pods[0].name.len(), 63);
        assert!(c.pods[0].name.starts_with(&name[..58]));
    }

    #[test]
    fn cluster_ips_skip_reserved_and_taken_addresses() {
        // A /28 has 14 hosts; .1 and .10 are never allocated, so 12 fit.
        let mut text = BASE.replace("10.96.0.0/12", "10.96.0.0/28");
        text.push_str("[[services]]\nname = \"fixed\"\nclusterIP = \"10.96.0.5\"\nselector = { a = \"b\" }\nports = [ { port = 1 } ]\n");
        for i in 0..11 {
            text.push_str(&format!(
                "[[services]]\nname = \"s{i}\"\nselector = {{ a = \"b\" }}\nports = [ {{ port = 1 }} ]\n"
            ));
        }
        let c = ok(&text);
        let mut ips: Vec<Ipv4Addr> = c.services.iter().map(|s| s.cluster_ip).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 12);
        let expected: Vec<Ipv4Addr> = (2..=14)
            .filter(|&h| h != 10)
            .map(|h| Ipv4Addr::new(10, 96, 0, h))
            .collect();
        assert_eq!(ips, expected);
        assert_eq!(
            c.service("default", "fixed").map(|s| s.cluster_ip),
            Some(Ipv4Addr::new(10, 96, 0, 5))
        );
        text.push_str("[[services]]\nname = \"one-too-many\"\nselector = { a = \"b\" }\nports = [ { port = 1 } ]\n");
        bad(
            &text,
            &[
                "services[12] \"default/one-too-many\": clusterIP",
                "no free address",
                "10.96.0.0/28",
            ],
        );
    }

    #[test]
    fn node_ports_allocated_in_range_and_explicit_ones_kept() {
        let c = ok(&with(
            r#"
[[services]]
name = "np"
type = "NodePort"
selector = { a = "b" }
ports = [ { name = "a", port = 80, nodePort = 30862 }, { name = "b", port = 81 } ]

[[services]]
name = "lb"
type = "LoadBalancer"
selector = { a = "b" }
ports = [ { port = 80 } ]

[[services]]
name = "cip"
selector = { a = "b" }
ports = [ { port = 80 } ]
"#,
        ));
        let np = c.service("default", "np").expect("np");
        assert_eq!(np.ports[0].node_port, Some(30862));
        let auto = np.ports[1].node_port.expect("allocated");
        assert!((30000..=32767).contains(&auto));
        assert_ne!(auto, 30862);
        let lb = c.service("default", "lb").expect("lb");
        let lb_port = lb.ports[0].node_port.expect("allocated");
        assert!((30000..=32767).contains(&lb_port));
        assert_ne!(lb_port, auto);
        assert_eq!(
            c.service("default", "cip").expect("cip").ports[0].node_port,
            None
        );
    }

    #[test]
    fn defaults_and_client_ip_affinity() {
        let c = ok(&with(
            r#"
[[services]]
name = "s"
namespace = "other"
selector = { a = "b" }
sessionAffinity = "ClientIP"
ports = [ { port = 53, protocol = "UDP", targetPort = "dns" } ]

[[services]]
name = "t"
selector = { a = "b" }
sessionAffinity = "ClientIP"
sessionAffinityTimeoutSeconds = 60
ports = [ { port = 1, name = "" } ]
"#,
        ));
        let s = c.service("other", "s").expect("s");
        assert_eq!(
            s.session_affinity,
            SessionAffinity::ClientIP {
                timeout_seconds: 10800
            }
        );
        assert_eq!(s.ports[0].target_port, TargetPort::Name("dns".into()));
        assert_eq!(s.ports[0].protocol, Protocol::Udp);
        let t = c.service("default", "t").expect("t");
        assert_eq!(
            t.session_affinity,
            SessionAffinity::ClientIP {
                timeout_seconds: 60
            }
        );
        assert_eq!(t.ports[0].name, None);
        assert_eq!(t.ports[0].protocol, Protocol::Tcp);
        assert_eq!(t.ports[0].target_port, TargetPort::Number(1));
    }

    // ---------------------------------------------------------- endpoints

    #[test]
    fn endpoints_follow_selector_readiness_namespace_and_named_ports() {
        let c = ok(&with(
            r#"
[[pods]]
name = "web-1"
labels = { app = "web", tier = "fe" }
ports = [ { name = "http", containerPort = 8080 }, { name = "dns", containerPort = 5353, protocol = "UDP" } ]

[[pods]]
name = "web-2"
labels = { app = "web" }
ports = [ { name = "http", containerPort = 9090 } ]

[[pods]]
name = "web-unready"
labels = { app = "web" }
ready = false
ports = [ { name = "http", containerPort = 8080 } ]

[[pods]]
name = "web-noport"
labels = { app = "web" }

[[pods]]
name = "web-elsewhere"
namespace = "other"
labels = { app = "web" }
ports = [ { name = "http", containerPort = 8080 } ]

[[services]]
name = "by-name"
selector = { app = "web" }
ports = [ { name = "h", port = 80, targetPort = "http" }, { name = "d", port = 53, targetPort = "dns", protocol = "UDP" }, { name = "x", port = 54, targetPort = "http", protocol = "UDP" } ]

[[services]]
name = "by-number"
selector = { app = "web" }
ports = [ { port = 80, targetPort = 8000 } ]

[[services]]
name = "two-labels"
selector = { app = "web", tier = "fe" }
ports = [ { port = 80 } ]

[[services]]
name = "no-selector"
ports = [ { port = 80 } ]
"#,
        ));
        let eps = |svc: &str, port: usize| -> Vec<(String, u16)> {
            let s = c.service("default", svc).expect("svc");
            c.endpoints(s, &s.ports[port])
                .into_iter()
                .map(|e| (e.pod, e.port))
                .collect()
        };
        // Sorted by IP: web-1 .2, web-2 .3, web-unready .4, web-noport .5.
        assert_eq!(
            eps("by-name", 0),
            vec![("web-1".into(), 8080), ("web-2".into(), 9090)]
        );
        assert_eq!(eps("by-name", 1), vec![("web-1".into(), 5353)]);
        assert_eq!(
            eps("by-name", 2),
            vec![],
            "named port with another protocol"
        );
        assert_eq!(
            eps("by-number", 0),
            vec![
                ("web-1".into(), 8000),
                ("web-2".into(), 8000),
                ("web-noport".into(), 8000)
            ]
        );
        assert_eq!(eps("two-labels", 0), vec![("web-1".into(), 80)]);
        assert_eq!(eps("no-selector", 0), vec![]);
    }

    // ---------------------------------------------------------- refusals

    #[test]
    fn load_names_a_missing_file() {
        let path = Path::new("/nonexistent/ksr/config.toml");
        let e = load(path).expect_err("missing file");
        assert!(matches!(e, ConfigError::Read { .. }));
        assert!(
            e.to_string().contains("/nonexistent/ksr/config.toml"),
            "{e}"
        );
    }

    #[test]
    fn load_reads_the_default_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.toml");
        assert_eq!(load(&path).expect("default config"), ok(DEFAULT));
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_column() {
        bad(
            &with("[[service]]\nname = \"x\"\n"),
            &["unknown field `service`", "line 11"],
        );
        bad(
            &BASE.replace("podCIDR = \"10.10.1.0/24\"", "podCidr = \"10.10.1.0/24\""),
            &["unknown field `podCidr`", "line 9"],
        );
        bad(
            &with("[[services]]\nname = \"s\"\nselector = { a = \"b\" }\nports = [ { port = 80, tagetPort = 80 } ]\n"),
            &["unknown field `tagetPort`", "line 14"],
        );
        bad(&format!("{BASE}\n[cluster.extra]\n"), &["line"]);
        bad(
            &with("[[pods]]\nname = \"p\"\nredy = true\n"),
            &["unknown field `redy`"],
        );
        bad(
            &with("[[deployments]]\nname = \"d\"\nreplica = 2\n"),
            &["unknown field `replica`"],
        );
    }

    #[test]
    fn malformed_cidrs_and_ips() {
        bad(
            &BASE.replace("10.10.0.0/16", "10.10.0.0/33"),
            &[
                "cluster.podCIDR",
                "\"10.10.0.0/33\"",
                "not a valid IPv4 CIDR",
            ],
        );
        bad(
            &BASE.replace("10.96.0.0/12", "banana"),
            &["cluster.serviceCIDR", "\"banana\""],
        );
        bad(
            &BASE.replace("10.10.1.0/24", "10.10.1.5/24"),
            &[
                "nodes[0] \"n1\": podCIDR",
                "\"10.10.1.5/24\"",
                "10.10.1.0/24",
            ],
        );
        bad(
            &BASE.replace("192.168.0.1", "192.168.0.300"),
            &[
                "nodes[0] \"n1\": address",
                "\"192.168.0.300\"",
                "not a valid IPv4 address",
            ],
        );
        bad(
            &with("[[pods]]\nname = \"p\"\nip = \"10.10.1\"\n"),
            &["pods[0] \"default/p\": ip", "\"10.10.1\""],
        );
        bad(
            &with("[[services]]\nname = \"s\"\nclusterIP = \"10.96.x.1\"\nselector = { a = \"b\" }\nports = [ { port = 1 } ]\n"),
            &["services[0] \"default/s\": clusterIP", "\"10.96.x.1\""],
        );
    }

    #[test]
    fn cluster_level_rules() {
        bad(
            &BASE.replace("10.96.0.0/12", "10.0.0.0/8"),
            &["cluster.serviceCIDR 10.0.0.0/8 overlaps cluster.podCIDR 10.10.0.0/16"],
        );
        bad(
            &BASE.replace(
                "serviceCIDR = \"10.96.0.0/12\"",
                "dnsDomain = \"Cluster_Local\"",
            ),
            &["cluster.dnsDomain", "\"Cluster_Local\""],
        );
        let no_nodes = BASE
            .split("[[nodes]]")
            .next()
            .unwrap_or_default()
            .to_owned();
        let msg = bad(&no_nodes, &["no nodes"]);
        assert!(msg.contains("[[nodes]]"), "{msg}");
        bad("[nodes]\n", &["invalid config"]);
    }

    #[test]
    fn node_rules() {
        bad(
            &BASE.replace("10.10.1.0/24", "10.11.1.0/24"),
            &[
                "nodes[0] \"n1\": podCIDR",
                "\"10.11.1.0/24\"",
                "outside cluster.podCIDR 10.10.0.0/16",
            ],
        );
        let second = |name: &str, addr: &str, cidr: &str| {
            with(&format!(
                "[[nodes]]\nname = \"{name}\"\naddress = \"{addr}\"\npodCIDR = \"{cidr}\"\n"
            ))
        };
        bad(
            &second("n2", "192.168.0.2", "10.10.1.128/25"),
            &[
                "nodes[1] \"n2\": podCIDR",
                "\"10.10.1.128/25\"",
                "overlaps nodes[0] \"n1\": podCIDR \"10.10.1.0/24\"",
            ],
        );
        bad(
            &second("n1", "192.168.0.2", "10.10.2.0/24"),
            &["nodes[1].name", "\"n1\"", "already used by nodes[0]"],
        );
        bad(
            &second("n2", "192.168.0.1", "10.10.2.0/24"),
            &[
                "nodes[1] \"n2\": address",
                "\"192.168.0.1\"",
                "already used by nodes[0] \"n1\"",
            ],
        );
        bad(
            &BASE.replace("192.168.0.1", "10.10.200.1"),
            &[
                "nodes[0] \"n1\": address",
                "\"10.10.200.1\"",
                "cluster.podCIDR",
            ],
        );
        bad(
            &BASE.replace("name = \"n1\"", "name = \"\""),
            &["nodes[0].name is empty"],
        );
        bad(
            &BASE.replace("name = \"n1\"", "name = \"Node_1\""),
            &["nodes[0].name", "\"Node_1\"", "DNS-1123 label"],
        );
    }

    #[test]
    fn names_must_be_dns_labels() {
        bad(&with("[[pods]]\nname = \"\"\n"), &["pods[0].name is empty"]);
        bad(
            &with("[[pods]]\nname = \"Client\"\n"),
            &["pods[0].name", "\"Client\"", "DNS-1123"],
        );
        bad(
            &with("[[pods]]\nname = \"-client\"\n"),
            &["pods[0].name", "\"-client\""],
        );
        let long = "a".repeat(64);
        bad(
            &with(&format!("[[pods]]\nname = \"{long}\"\n")),
            &["pods[0].name", &long, "63 characters"],
        );
        bad(
            &with("[[pods]]\nname = \"p\"\nnamespace = \"Kube_System\"\n"),
            &["pods[0] \"Kube_System/p\": namespace", "\"Kube_System\""],
        );
        bad(
            &with("[[deployments]]\nname = \"my.app\"\n"),
            &["deployments[0].name", "\"my.app\""],
        );
        bad(
            &with("[[services]]\nname = \"my_svc\"\nports = [ { port = 1 } ]\n"),
            &["services[0].name", "\"my_svc\""],
        );
        bad(
            &with("[[services]]\nname = \"\"\nports = [ { port = 1 } ]\n"),
            &["services[0].name is empty"],
        );
        bad(
            &with("[[deployments]]\nname = \"\"\n"),
            &["deployments[0].name is empty"],
        );
    }

    #[test]
    fn duplicate_names_in_a_namespace() {
        bad(
            &with("[[pods]]\nname = \"p\"\n[[pods]]\nname = \"p\"\nnamespace = \"default\"\n"),
            &[
                "pods[1].name",
                "\"p\"",
                "already used by pods[0]",
                "namespace \"default\"",
            ],
        );
        // Same name in another namespace is fine.
        ok(&with(
            "[[pods]]\nname = \"p\"\n[[pods]]\nname = \"p\"\nnamespace = \"other\"\n",
        ));
        bad(
            &with("[[deployments]]\nname = \"d\"\n[[deployments]]\nname = \"d\"\n"),
            &[
                "deployments[1].name",
                "\"d\"",
                "already used by deployments[0]",
            ],
        );
        bad(
            &with("[[services]]\nname = \"s\"\nports = [ { port = 1 } ]\n[[services]]\nname = \"s\"\nports = [ { port = 2 } ]\n"),
            &["services[1].name", "\"s\"", "already used by services[0]"],
        );
    }

    #[test]
    fn replicas_range() {
        bad(
            &with("[[deployments]]\nname = \"d\"\nreplicas = 1001\n"),
            &["deployments[0] \"default/d\": replicas 1001", "0-1000"],
        );
        bad(
            &with("[[deployments]]\nname = \"d\"\nreplicas = -1\n"),
            &["deployments[0] \"default/d\": replicas -1"],
        );
        let c = ok(&with("[[deployments]]\nname = \"d\"\nreplicas = 0\n"));
        assert!(c.pods.is_empty());
    }

    #[test]
    fn template_hash_must_be_short_lowercase_alphanumerics() {
        bad(
            &with("[[deployments]]\nname = \"d\"\ntemplateHash = \"ABC\"\n"),
            &["deployments[0] \"default/d\": templateHash", "\"ABC\""],
        );
        bad(
            &with("[[deployments]]\nname = \"d\"\ntemplateHash = \"12345678901\"\n"),
            &["templateHash", "\"12345678901\""],
        );
    }

    #[test]
    fn unknown_nodes() {
        bad(
            &with("[[deployments]]\nname = \"d\"\nnode = \"ghost\"\n"),
            &[
                "deployments[0] \"default/d\": node",
                "\"ghost\"",
                "nodes: n1",
            ],
        );
        bad(
            &with("[[pods]]\nname = \"p\"\nnode = \"ghost\"\n"),
            &["pods[0] \"default/p\": node", "\"ghost\""],
        );
    }

    fn svc(ports: &str) -> String {
        with(&format!(
            "[[services]]\nname = \"s\"\nselector = {{ a = \"b\" }}\nports = [ {ports} ]\n"
        ))
    }

    fn svc_typed(ty: &str, ports: &str) -> String {
        with(&format!(
            "[[services]]\nname = \"s\"\ntype = \"{ty}\"\nselector = {{ a = \"b\" }}\nports = [ {ports} ]\n"
        ))
    }

    #[test]
    fn port_numbers_out_of_range_get_our_message() {
        let msg = bad(
            &svc("{ port = 70000 }"),
            &["services[0].ports[0].port 70000", "1-65535"],
        );
        assert!(!msg.contains("invalid config"), "{msg}");
        bad(&svc("{ port = 0 }"), &["services[0].ports[0].port 0"]);
        bad(&svc("{ port = -5 }"), &["services[0].ports[0].port -5"]);
        bad(
            &svc("{ port = 80 }, { port = 81, targetPort = 65536 }"),
            &["services[0].ports[1].targetPort 65536"],
        );
        bad(
            &svc("{ port = 80, targetPort = 0 }"),
            &["services[0].ports[0].targetPort 0"],
        );
        bad(
            &with("[[deployments]]\nname = \"d\"\nports = [ { containerPort = 70000 } ]\n"),
            &["deployments[0].ports[0].containerPort 70000"],
        );
        bad(
            &with("[[pods]]\nname = \"p\"\nports = [ { containerPort = 80 }, { containerPort = 0 } ]\n"),
            &["pods[0].ports[1].containerPort 0"],
        );
    }

    #[test]
    fn node_port_rules() {
        bad(
            &svc_typed("NodePort", "{ port = 80, nodePort = 29999 }"),
            &["services[0].ports[0].nodePort 29999", "30000-32767"],
        );
        bad(
            &svc_typed("NodePort", "{ port = 80, nodePort = 32768 }"),
            &["services[0].ports[0].nodePort 32768"],
        );
        bad(
            &svc("{ port = 80, nodePort = 30080 }"),
            &["services[0].ports[0].nodePort 30080", "ClusterIP"],
        );
        bad(
            &svc_typed("NodePort", "{ name = \"a\", port = 80, nodePort = 30080 }, { name = \"b\", port = 81, nodePort = 30080 }"),
            &["services[0].ports[1].nodePort 30080", "already used by services[0].ports[0].nodePort"],
        );
        let two = with(
            "[[services]]\nname = \"a\"\ntype = \"NodePort\"\nports = [ { port = 80, nodePort = 31000 } ]\n\
             [[services]]\nname = \"b\"\ntype = \"LoadBalancer\"\nports = [ { port = 80, nodePort = 31000 } ]\n",
        );
        bad(
            &two,
            &[
                "services[1].ports[0].nodePort 31000",
                "services[0].ports[0].nodePort",
            ],
        );
    }

    #[test]
    fn service_port_rules() {
        bad(
            &svc("{ name = \"a\", port = 80 }, { name = \"b\", port = 80, protocol = \"TCP\" }"),
            &["services[0].ports[1] 80/TCP duplicates services[0].ports[0]"],
        );
        // Same number, other protocol: fine.
        ok(&svc(
            "{ name = \"a\", port = 53 }, { name = \"b\", port = 53, protocol = \"UDP\" }",
        ));
        bad(
            &svc("{ name = \"a\", port = 80 }, { name = \"a\", port = 81 }"),
            &[
                "services[0].ports[1].name",
                "\"a\"",
                "already used by services[0].ports[0]",
            ],
        );
        bad(
            &svc("{ name = \"Web\", port = 80 }"),
            &["services[0].ports[0].name", "\"Web\""],
        );
        bad(
            &svc("{ port = 80, protocol = \"SCTP\" }"),
            &[
                "services[0].ports[0].protocol",
                "\"SCTP\"",
                "\"TCP\" or \"UDP\"",
            ],
        );
        bad(
            &svc("{ port = 80, protocol = \"tcp\" }"),
            &["services[0].ports[0].protocol", "\"tcp\""],
        );
        bad(
            &with("[[deployments]]\nname = \"d\"\nports = [ { containerPort = 80, protocol = \"ICMP\" } ]\n"),
            &["deployments[0].ports[0].protocol", "\"ICMP\""],
        );
        bad(
            &with("[[services]]\nname = \"s\"\nselector = { a = \"b\" }\n"),
            &["services[0] \"default/s\": ports is empty"],
        );
    }

    #[test]
    fn target_port_names_must_be_valid_port_names() {
        for (name, why) in [
            ("HTTP", "lower case"),
            ("http_alt", "lower case"),
            ("8080", "at least one letter"),
            ("a-very-long-port-name", "15 characters"),
            ("web--1", "consecutive hyphens"),
            ("-web", "begin or end"),
            ("", "empty"),
        ] {
            bad(
                &svc(&format!("{{ port = 80, targetPort = \"{name}\" }}")),
                &[
                    "services[0].ports[0].targetPort",
                    &format!("\"{name}\""),
                    why,
                ],
            );
        }
        bad(
            &with("[[pods]]\nname = \"p\"\nports = [ { name = \"Http\", containerPort = 80 } ]\n"),
            &["pods[0].ports[0].name", "\"Http\"", "not a valid port name"],
        );
        bad(
            &with("[[pods]]\nname = \"p\"\nports = [ { name = \"h\", containerPort = 80 }, { name = \"h\", containerPort = 81 } ]\n"),
            &["pods[0].ports[1].name", "already used by pods[0].ports[0]"],
        );
        bad(
            &svc("{ port = 80, targetPort = 1.5 }"),
            &["invalid config", "targetPort"],
        );
    }

    #[test]
    fn service_level_rules() {
        bad(
            &svc_typed("Ingress", "{ port = 80 }"),
            &[
                "services[0] \"default/s\": type",
                "\"Ingress\"",
                "\"ExternalName\"",
            ],
        );
        let with_svc = |fields: &str| {
            with(&format!(
                "[[services]]\nname = \"s\"\nselector = {{ a = \"b\" }}\n{fields}\nports = [ {{ port = 80 }} ]\n"
            ))
        };
        bad(
            &with_svc("sessionAffinity = \"Sticky\""),
            &["services[0] \"default/s\": sessionAffinity", "\"Sticky\""],
        );
        bad(
            &with_svc("sessionAffinity = \"ClientIP\"\nsessionAffinityTimeoutSeconds = 0"),
            &[
                "services[0] \"default/s\": sessionAffinityTimeoutSeconds 0",
                "1-86400",
            ],
        );
        bad(
            &with_svc("sessionAffinity = \"ClientIP\"\nsessionAffinityTimeoutSeconds = 86401"),
            &["sessionAffinityTimeoutSeconds 86401"],
        );
        bad(
            &with_svc("sessionAffinityTimeoutSeconds = 60"),
            &[
                "services[0] \"default/s\": sessionAffinityTimeoutSeconds 60",
                "ClientIP",
            ],
        );
        // Headless is allowed now (see headless_services).
        assert!(ok(&with_svc("clusterIP = \"None\"")).services[0].headless);
    }

    #[test]
    fn cluster_ip_rules() {
        let text = with(
            "[[services]]\nname = \"other\"\nselector = { a = \"b\" }\nports = [ { port = 1 } ]\n\
             [[services]]\nname = \"nginx-svc\"\nclusterIP = \"10.200.0.1\"\nselector = { a = \"b\" }\nports = [ { port = 80 } ]\n",
        );
        let e = parse(&text).expect_err("outside");
        assert_eq!(
            e.to_string(),
            "services[1] \"default/nginx-svc\": clusterIP \"10.200.0.1\" is outside serviceCIDR 10.96.0.0/12"
        );
        let dup = with(
            "[[services]]\nname = \"a\"\nclusterIP = \"10.96.5.5\"\nports = [ { port = 1 } ]\n\
             [[services]]\nname = \"b\"\nclusterIP = \"10.96.5.5\"\nports = [ { port = 1 } ]\n",
        );
        bad(
            &dup,
            &[
                "services[1] \"default/b\": clusterIP \"10.96.5.5\"",
                "already used by services[0] \"default/a\"",
            ],
        );
        bad(
            &with(
                "[[services]]\nname = \"a\"\nclusterIP = \"10.96.0.0\"\nports = [ { port = 1 } ]\n",
            ),
            &["clusterIP \"10.96.0.0\"", "network address"],
        );
        bad(
            &with("[[services]]\nname = \"a\"\nclusterIP = \"10.111.255.255\"\nports = [ { port = 1 } ]\n"),
            &["clusterIP \"10.111.255.255\"", "broadcast address"],
        );
    }

    #[test]
    fn pod_ip_rules() {
        let pod = |ip: &str| with(&format!("[[pods]]\nname = \"p\"\nip = \"{ip}\"\n"));
        bad(
            &pod("10.10.2.5"),
            &[
                "pods[0] \"default/p\": ip \"10.10.2.5\"",
                "outside podCIDR 10.10.1.0/24 of node \"n1\"",
            ],
        );
        bad(&pod("10.10.1.0"), &["ip \"10.10.1.0\"", "network address"]);
        bad(&pod("10.10.1.1"), &["ip \"10.10.1.1\"", "gateway"]);
        bad(
            &pod("10.10.1.255"),
            &["ip \"10.10.1.255\"", "broadcast address"],
        );
        bad(
            &with("[[pods]]\nname = \"p\"\nip = \"10.10.1.7\"\n[[pods]]\nname = \"q\"\nip = \"10.10.1.7\"\n"),
            &["pods[1] \"default/q\": ip \"10.10.1.7\"", "already used by pods[0] \"default/p\""],
        );
    }

    #[test]
    fn pod_cidr_exhaustion_names_the_node() {
        // A /30 has one pod address (.2) after the gateway.
        let text = BASE.replace("10.10.1.0/24", "10.10.1.0/30")
            + "[[deployments]]\nname = \"d\"\nreplicas = 2\nlabels = { app = \"d\" }\n";
        bad(
            &text,
            &[
                "node \"n1\"",
                "podCIDR 10.10.1.0/30",
                "no free address",
                "deployments[0] \"default/d\" replica 1",
            ],
        );
        let text = BASE.replace("10.10.1.0/24", "10.10.1.0/30")
            + "[[pods]]\nname = \"a\"\n[[pods]]\nname = \"b\"\n";
        bad(&text, &["node \"n1\"", "pods[1] \"default/b\""]);
    }

    #[test]
    fn type_errors_keep_the_toml_position() {
        bad(
            &with("[[deployments]]\nname = \"d\"\nreplicas = \"two\"\n"),
            &["invalid config", "line 13", "replicas"],
        );
        bad(
            &with("[[pods]]\nname = \"p\"\nready = \"yes\"\n"),
            &["line 13"],
        );
        bad(
            &with("[[pods]]\nname = \"p\"\nlabels = { app = 1 }\n"),
            &["line 13"],
        );
    }

    // ---------------------------------------------------------- overlay settings

    /// BASE with `extra` lines added to `[cluster]`.
    fn cluster_with(extra: &str) -> String {
        BASE.replace(
            "serviceCIDR = \"10.96.0.0/12\"",
            &format!("serviceCIDR = \"10.96.0.0/12\"\n{extra}"),
        )
    }

    #[test]
    fn overlay_defaults_to_flannels_settings() {
        let c = ok(BASE);
        assert_eq!(
            c.overlay,
            Overlay {
                vni: 1,
                port: 8472,
                underlay_mtu: 1500
            }
        );
        assert_eq!(c.overlay.pod_mtu(), 1450);
        let c = ok(&cluster_with(
            "vxlanVNI = 16777215\nvxlanPort = 4789\nunderlayMTU = 9000",
        ));
        assert_eq!(
            c.overlay,
            Overlay {
                vni: 16_777_215,
                port: 4789,
                underlay_mtu: 9000
            }
        );
        let c = ok(&cluster_with(
            "vxlanVNI = 1\nvxlanPort = 1\nunderlayMTU = 1280",
        ));
        assert_eq!(
            c.overlay,
            Overlay {
                vni: 1,
                port: 1,
                underlay_mtu: 1280
            }
        );
        assert_eq!(c.overlay.pod_mtu(), 1230);
    }

    #[test]
    fn overlay_ranges() {
        for (line, msg) in [
            (
                "vxlanVNI = 0",
                "cluster.vxlanVNI 0 is out of range 1-16777215",
            ),
            (
                "vxlanVNI = 16777216",
                "cluster.vxlanVNI 16777216 is out of range 1-16777215",
            ),
            (
                "vxlanVNI = -1",
                "cluster.vxlanVNI -1 is out of range 1-16777215",
            ),
            (
                "vxlanPort = 0",
                "cluster.vxlanPort 0 is out of range 1-65535",
            ),
            (
                "vxlanPort = 65536",
                "cluster.vxlanPort 65536 is out of range 1-65535",
            ),
            (
                "underlayMTU = 1279",
                "cluster.underlayMTU 1279 is out of range 1280-9000",
            ),
            (
                "underlayMTU = 9001",
                "cluster.underlayMTU 9001 is out of range 1280-9000",
            ),
        ] {
            let e = parse(&cluster_with(line)).expect_err(line);
            assert_eq!(e.to_string(), msg);
        }
        bad(
            &cluster_with("vxlanVNI = \"1\""),
            &["invalid config", "vxlanVNI"],
        );
        bad(&cluster_with("vxlanVni = 1"), &["unknown field `vxlanVni`"]);
        bad(
            &cluster_with("underlayMtu = 1500"),
            &["unknown field `underlayMtu`"],
        );
    }

    // ---------------------------------------------------------- external traffic

    /// One Service `s` of type `ty` with `fields`, selecting `a=b`, one port.
    fn svc_with(ty: &str, fields: &str, ports: &str) -> String {
        with(&format!(
            "[[services]]\nname = \"s\"\ntype = \"{ty}\"\nselector = {{ a = \"b\" }}\n{fields}\nports = [ {ports} ]\n"
        ))
    }

    #[test]
    fn external_traffic_policy_defaults_and_values() {
        let policy = |ty: &str, fields: &str| {
            ok(&svc_with(ty, fields, "{ port = 80 }"))
                .service("default", "s")
                .map(|s| s.external_traffic_policy)
        };
        assert_eq!(policy("NodePort", ""), Some(TrafficPolicy::Cluster));
        assert_eq!(policy("LoadBalancer", ""), Some(TrafficPolicy::Cluster));
        assert_eq!(policy("ClusterIP", ""), Some(TrafficPolicy::Cluster));
        for ty in ["NodePort", "LoadBalancer"] {
            assert_eq!(
                policy(ty, "externalTrafficPolicy = \"Local\""),
                Some(TrafficPolicy::Local)
            );
            assert_eq!(
                policy(ty, "externalTrafficPolicy = \"Cluster\""),
                Some(TrafficPolicy::Cluster)
            );
        }
        // A ClusterIP Service with external IPs is externally accessible.
        assert_eq!(
            policy(
                "ClusterIP",
                "externalIPs = [\"192.168.200.20\"]\nexternalTrafficPolicy = \"Local\""
            ),
            Some(TrafficPolicy::Local)
        );
    }

    #[test]
    fn external_traffic_policy_refused_on_cluster_ip() {
        let e = parse(&svc_with(
            "ClusterIP",
            "externalTrafficPolicy = \"Local\"",
            "{ port = 80 }",
        ))
        .expect_err("ClusterIP with a policy");
        assert_eq!(
            e.to_string(),
            "services[0] \"default/s\": externalTrafficPolicy \"Local\" may only be set for \
             externally-accessible services: this ClusterIP Service has no externalIPs \
             (set type = \"NodePort\" or \"LoadBalancer\")"
        );
        // Even the default value, like the API server.
        bad(
            &with("[[services]]\nname = \"s\"\nexternalTrafficPolicy = \"Cluster\"\nports = [ { port = 80 } ]\n"),
            &[
                "services[0] \"default/s\": externalTrafficPolicy \"Cluster\"",
                "externally-accessible",
            ],
        );
        bad(
            &svc_with(
                "NodePort",
                "externalTrafficPolicy = \"local\"",
                "{ port = 80 }",
            ),
            &[
                "services[0] \"default/s\": externalTrafficPolicy \"local\"",
                "must be \"Cluster\" or \"Local\"",
            ],
        );
        bad(
            &svc_with(
                "NodePort",
                "externalTrafficPolicy = \"Node\"",
                "{ port = 80 }",
            ),
            &["externalTrafficPolicy \"Node\"", "not supported"],
        );
        bad(
            &svc_with("NodePort", "externalTrafficPolicy = 1", "{ port = 80 }"),
            &["invalid config", "externalTrafficPolicy"],
        );
    }

    #[test]
    fn load_balancer_ips_only_on_load_balancer_services() {
        for ty in ["ClusterIP", "NodePort"] {
            let e = parse(&svc_with(
                ty,
                "loadBalancerIPs = [\"192.168.200.10\"]",
                "{ port = 80 }",
            ))
            .expect_err(ty);
            assert_eq!(
                e.to_string(),
                format!(
                    "services[0] \"default/s\": loadBalancerIPs [\"192.168.200.10\"] is only \
                     allowed on a LoadBalancer Service, this one is type {ty} \
                     (set type = \"LoadBalancer\")"
                )
            );
        }
        // An empty list says nothing, so it is fine anywhere.
        ok(&svc_with(
            "NodePort",
            "loadBalancerIPs = []",
            "{ port = 80 }",
        ));
        // A LoadBalancer keeps its IPs in file order; none is `<pending>`.
        let c = ok(&svc_with(
            "LoadBalancer",
            "loadBalancerIPs = [\"192.168.200.11\", \"192.168.200.9\"]",
            "{ port = 80 }",
        ));
        let s = c.service("default", "s").expect("s");
        assert_eq!(
            s.load_balancer_ips,
            vec![
                Ipv4Addr::new(192, 168, 200, 11),
                Ipv4Addr::new(192, 168, 200, 9)
            ]
        );
        assert!(s.external_ips.is_empty());
        let c = ok(&svc_with("LoadBalancer", "", "{ port = 80 }"));
        assert!(c.services[0].load_balancer_ips.is_empty());
    }

    #[test]
    fn external_ips_on_every_type() {
        for ty in ["ClusterIP", "NodePort", "LoadBalancer"] {
            let c = ok(&svc_with(
                ty,
                "externalIPs = [\"192.168.200.20\", \"203.0.113.7\"]",
                "{ port = 80 }",
            ));
            assert_eq!(
                c.services[0].external_ips,
                vec![
                    Ipv4Addr::new(192, 168, 200, 20),
                    Ipv4Addr::new(203, 0, 113, 7)
                ],
                "{ty}"
            );
        }
        bad(
            &svc_with("NodePort", "externalIps = []", "{ port = 80 }"),
            &["unknown field `externalIps`"],
        );
        bad(
            &svc_with(
                "NodePort",
                "externalIPs = \"192.168.200.20\"",
                "{ port = 80 }",
            ),
            &["invalid config", "externalIPs"],
        );
    }

    #[test]
    fn external_and_load_balancer_ips_must_be_outside_the_cluster() {
        for field in ["externalIPs", "loadBalancerIPs"] {
            let one = |ip: &str| {
                svc_with(
                    "LoadBalancer",
                    &format!("{field} = [\"192.168.200.20\", \"{ip}\"]"),
                    "{ port = 80 }",
                )
            };
            let key = format!("services[0] \"default/s\": {field}[1]");
            let e = parse(&one("10.10.1.7")).expect_err("pod CIDR");
            assert_eq!(
                e.to_string(),
                format!(
                    "{key} \"10.10.1.7\" lies inside cluster.podCIDR 10.10.0.0/16; external \
                     and LoadBalancer IPs must be outside the cluster's ranges"
                )
            );
            // Inside the cluster pod CIDR but no node's: still refused.
            bad(
                &one("10.10.200.1"),
                &[&key, "\"10.10.200.1\"", "cluster.podCIDR"],
            );
            bad(
                &one("10.96.0.7"),
                &[&key, "\"10.96.0.7\"", "cluster.serviceCIDR 10.96.0.0/12"],
            );
            let e = parse(&one("192.168.0.1")).expect_err("node address");
            assert_eq!(
                e.to_string(),
                format!(
                    "{key} \"192.168.0.1\" is the address of node \"n1\"; a node address \
                     already serves every NodePort, give the Service its own address"
                )
            );
            for (ip, what) in [
                ("0.0.0.0", "the unspecified address"),
                ("127.0.0.1", "a loopback address"),
                ("169.254.0.5", "a link-local address"),
                ("224.0.0.251", "a multicast address"),
                ("255.255.255.255", "the broadcast address"),
            ] {
                let e = parse(&one(ip)).expect_err(ip);
                assert_eq!(
                    e.to_string(),
                    format!("{key} \"{ip}\" is not usable as an external address: it is {what}")
                );
            }
            for text in ["192.168.200", "fd00::1", "", "192.168.200.300"] {
                bad(
                    &one(text),
                    &[&key, &format!("{text:?}"), "not a valid IPv4 address"],
                );
            }
        }
    }

    #[test]
    fn an_external_address_port_and_protocol_belongs_to_one_service() {
        let two = |a: &str, a_ports: &str, b: &str, b_ports: &str| {
            with(&format!(
                "[[services]]\nname = \"a\"\ntype = \"LoadBalancer\"\n{a}\nports = [ {a_ports} ]\n\
                 [[services]]\nname = \"b\"\ntype = \"LoadBalancer\"\n{b}\nports = [ {b_ports} ]\n"
            ))
        };
        let ext = "externalIPs = [\"192.168.200.20\"]";
        let lb = "loadBalancerIPs = [\"192.168.200.20\"]";
        let e = parse(&two(ext, "{ port = 80 }", ext, "{ port = 80 }")).expect_err("dup");
        assert_eq!(
            e.to_string(),
            "services[1] \"default/b\": externalIPs[0] \"192.168.200.20\" port 80/TCP is \
             already used by services[0] \"default/a\": externalIPs[0]"
        );
        // LoadBalancer and external IPs share one space.
        bad(
            &two(lb, "{ port = 80 }", ext, "{ port = 8080 }, { port = 80 }"),
            &[
                "services[1] \"default/b\": externalIPs[0] \"192.168.200.20\" port 80/TCP",
                "already used by services[0] \"default/a\": loadBalancerIPs[0]",
            ],
        );
        bad(
            &two(
                ext,
                "{ port = 53, protocol = \"UDP\" }",
                lb,
                "{ port = 53, protocol = \"UDP\" }",
            ),
            &[
                "services[1] \"default/b\": loadBalancerIPs[0] \"192.168.200.20\" port 53/UDP",
                "services[0] \"default/a\": externalIPs[0]",
            ],
        );
        // Another port, or another protocol, on the same address is fine,
        // as MetalLB shares an IP between Services.
        let c = ok(&two(ext, "{ port = 80 }", ext, "{ port = 443 }"));
        assert_eq!(c.services[0].external_ips, c.services[1].external_ips);
        ok(&two(
            lb,
            "{ port = 53 }",
            lb,
            "{ port = 53, protocol = \"UDP\" }",
        ));
        // The same address twice in one Service serves its ports twice.
        bad(
            &with(
                "[[services]]\nname = \"a\"\ntype = \"LoadBalancer\"\n\
                 loadBalancerIPs = [\"192.168.200.10\"]\nexternalIPs = [\"192.168.200.10\"]\n\
                 ports = [ { port = 80 } ]\n",
            ),
            &[
                "services[0] \"default/a\": externalIPs[0] \"192.168.200.10\" port 80/TCP",
                "already used by services[0] \"default/a\": loadBalancerIPs[0]",
            ],
        );
        bad(
            &with(
                "[[services]]\nname = \"a\"\nexternalIPs = [\"192.168.200.10\", \"192.168.200.10\"]\n\
                 ports = [ { port = 80 } ]\n",
            ),
            &["externalIPs[1] \"192.168.200.10\" port 80/TCP", "externalIPs[0]"],
        );
        // Same name, other namespace: still one address space.
        bad(
            &with(
                "[[services]]\nname = \"a\"\nexternalIPs = [\"192.168.200.10\"]\nports = [ { port = 80 } ]\n\
                 [[services]]\nname = \"a\"\nnamespace = \"other\"\nexternalIPs = [\"192.168.200.10\"]\nports = [ { port = 80 } ]\n",
            ),
            &["services[1] \"other/a\": externalIPs[0]", "services[0] \"default/a\""],
        );
    }

    #[test]
    fn node_port_messages_name_key_and_value() {
        let e = parse(&svc_typed("NodePort", "{ port = 80, nodePort = 29999 }"))
            .expect_err("out of range");
        assert_eq!(
            e.to_string(),
            "services[0].ports[0].nodePort 29999 is outside the node port range 30000-32767"
        );
        let e = parse(&with(
            "[[services]]\nname = \"a\"\ntype = \"NodePort\"\nports = [ { port = 80, nodePort = 30080 } ]\n\
             [[services]]\nname = \"b\"\ntype = \"LoadBalancer\"\nports = [ { port = 81, nodePort = 30080 } ]\n",
        ))
        .expect_err("used twice");
        assert_eq!(
            e.to_string(),
            "services[1].ports[0].nodePort 30080 is already used by services[0].ports[0].nodePort"
        );
        // Allocation steps around every explicit one, whatever the order.
        let c = ok(&with(
            "[[services]]\nname = \"auto\"\ntype = \"NodePort\"\nports = [ { port = 80 } ]\n\
             [[services]]\nname = \"fixed\"\ntype = \"NodePort\"\nports = [ { port = 80, nodePort = 30080 } ]\n",
        ));
        let auto = c.service("default", "auto").expect("auto").ports[0].node_port;
        assert!(auto.is_some_and(|p| (30000..=32767).contains(&p) && p != 30080));
    }

    // ---------------------------------------------------------- owned pods

    /// The name the deployment controller gives the k-th pod it generates.
    fn generated_name(ns: &str, name: &str, hash: &str, k: u64) -> String {
        let seed = xxh3_64(format!("{ns}/{name}/{hash}/{k}").as_bytes());
        format!("{name}-{hash}-{}", safe_encode_u64(seed, 5))
    }

    fn pod<'a>(c: &'a Cluster, name: &str) -> &'a Pod {
        c.pod("default", name)
            .unwrap_or_else(|| panic!("pod {name} in {:?}", names(c)))
    }

    fn names(c: &Cluster) -> Vec<&str> {
        c.pods.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn owned_pods_count_toward_replicas_and_default_to_the_template() {
        let c = ok(&with(
            r#"
[[nodes]]
name = "n2"
address = "192.168.0.2"
podCIDR = "10.10.2.0/24"

[[deployments]]
name = "web"
replicas = 3
labels = { app = "web" }
templateHash = "abc"
node = "n2"
ports = [ { name = "http", containerPort = 8080 } ]

[[pods]]
name = "web-abc-first"
owner = "web"
ip = "10.10.2.9"

[[pods]]
name = "web-abc-custom"
owner = "web"
node = "n2"
labels = { app = "web", extra = "yes" }
ports = []
ready = false
"#,
        ));
        let d = c.deployment("default", "web").expect("web");
        assert_eq!(d.node.as_deref(), Some("n2"));
        // Two explicit pods count; one is generated, the first ever (k = 0).
        assert_eq!(d.pods_created, 1);
        assert_eq!(c.pods.len(), 3);
        let template = Labels::from([
            ("app".into(), "web".into()),
            ("pod-template-hash".into(), "abc".into()),
        ]);
        let first = pod(&c, "web-abc-first");
        assert_eq!(first.owner.as_deref(), Some("web"));
        assert_eq!(first.labels, template);
        assert_eq!(first.ports, d.ports);
        assert_eq!(first.node, "n2");
        assert!(first.ready);
        let custom = pod(&c, "web-abc-custom");
        assert_eq!(custom.labels.get("extra").map(String::as_str), Some("yes"));
        assert!(custom.ports.is_empty());
        assert!(!custom.ready);
        let generated = pod(&c, &generated_name("default", "web", "abc", 0));
        assert_eq!(generated.labels, template);
        assert_eq!(
            (generated.node.as_str(), generated.ip),
            ("n2", Ipv4Addr::new(10, 10, 2, 2))
        );
        // The two without IP got .2 and .3 (generated first).
        assert_eq!(custom.ip, Ipv4Addr::new(10, 10, 2, 3));
        assert_eq!(
            c.node("n2").and_then(|n| n.next_pod_ip),
            Some(Ipv4Addr::new(10, 10, 2, 4))
        );
    }

    #[test]
    fn extra_owned_pods_go_not_ready_first_then_by_name_descending() {
        let pods = |replicas: u32| {
            ok(&with(&format!(
                "[[deployments]]\nname = \"d\"\nreplicas = {replicas}\nlabels = {{ app = \"d\" }}\n\
                 [[pods]]\nname = \"a\"\nowner = \"d\"\n\
                 [[pods]]\nname = \"b\"\nowner = \"d\"\nready = false\n\
                 [[pods]]\nname = \"c\"\nowner = \"d\"\n\
                 [[pods]]\nname = \"d\"\nowner = \"d\"\n\
                 [[pods]]\nname = \"solo\"\n"
            )))
        };
        assert_eq!(names(&pods(4)), vec!["a", "b", "c", "d", "solo"]);
        assert_eq!(names(&pods(3)), vec!["a", "c", "d", "solo"]);
        assert_eq!(names(&pods(2)), vec!["a", "c", "solo"]);
        assert_eq!(names(&pods(0)), vec!["solo"]);
        let c = pods(2);
        assert_eq!(c.deployments[0].pods_created, 0);
    }

    #[test]
    fn unpinned_owned_pods_and_replacements_go_to_the_least_loaded_node() {
        let two = |extra: &str| {
            ok(&with(&format!(
                "[[nodes]]\nname = \"n2\"\naddress = \"192.168.0.2\"\npodCIDR = \"10.10.2.0/24\"\n\
                 [[deployments]]\nname = \"d\"\nreplicas = 3\nlabels = {{ app = \"d\" }}\n{extra}"
            )))
        };
        // Fresh: replica i on node i mod 2, as before.
        let c = two("");
        let mut placed: Vec<&str> = c.pods.iter().map(|p| p.node.as_str()).collect();
        placed.sort();
        assert_eq!(placed, vec!["n1", "n1", "n2"]);
        // Two explicit pods on n1: both generated ones... one goes to n2.
        let c = two("[[pods]]\nname = \"x\"\nowner = \"d\"\nnode = \"n1\"\n\
             [[pods]]\nname = \"y\"\nowner = \"d\"\nnode = \"n1\"\n");
        let generated: Vec<&Pod> = c.pods.iter().filter(|p| p.name.len() > 1).collect();
        assert_eq!(generated.len(), 1);
        assert_eq!(generated[0].node, "n2");
    }

    #[test]
    fn owned_pod_rules() {
        let base = with(
            "[[deployments]]\nname = \"web\"\nlabels = { app = \"web\" }\nnode = \"n1\"\n\
             [[nodes]]\nname = \"n2\"\naddress = \"192.168.0.2\"\npodCIDR = \"10.10.2.0/24\"\n",
        );
        bad(
            &format!("{base}[[pods]]\nname = \"p\"\nnamespace = \"other\"\nowner = \"web\"\n"),
            &[
                "pods[0] \"other/p\": owner \"web\"",
                "not a deployment in namespace \"other\"",
            ],
        );
        bad(
            &format!("{base}[[pods]]\nname = \"p\"\nowner = \"ghost\"\n"),
            &["pods[0] \"default/p\": owner \"ghost\""],
        );
        let e = parse(&format!(
            "{base}[[pods]]\nname = \"p\"\nowner = \"web\"\nnode = \"n2\"\n"
        ))
        .expect_err("off pin");
        assert_eq!(
            e.to_string(),
            "pods[0] \"default/p\": node \"n2\" is not the node deployment \"web\" pins its pods to (\"n1\")"
        );
        bad(
            &with("[[deployments]]\nname = \"d\"\npodsCreated = -1\n"),
            &["deployments[0] \"default/d\": podsCreated -1", "negative"],
        );
        bad(
            &with("[[deployments]]\nname = \"d\"\npodsCreatd = 1\n"),
            &["unknown field `podsCreatd`"],
        );
    }

    #[test]
    fn pods_created_picks_the_name_counter() {
        let text = |created: &str| {
            with(&format!(
                "[[deployments]]\nname = \"web\"\nreplicas = 2\nlabels = {{ app = \"web\" }}\ntemplateHash = \"abc\"\n{created}"
            ))
        };
        let fresh = ok(&text(""));
        assert_eq!(fresh, ok(&text("podsCreated = 0\n")));
        assert_eq!(fresh.deployments[0].pods_created, 2);
        let mut want = vec![
            generated_name("default", "web", "abc", 0),
            generated_name("default", "web", "abc", 1),
        ];
        want.sort();
        assert_eq!(names(&fresh), want);
        let later = ok(&text("podsCreated = 7\n"));
        assert_eq!(later.deployments[0].pods_created, 9);
        let mut want = vec![
            generated_name("default", "web", "abc", 7),
            generated_name("default", "web", "abc", 8),
        ];
        want.sort();
        assert_eq!(names(&later), want);
    }

    // ---------------------------------------------------------- IPAM

    #[test]
    fn pod_ips_round_robin_from_next_pod_ip_wrapping_around() {
        let text = |next: &str, extra: &str| {
            BASE.replace(
                "podCIDR = \"10.10.1.0/24\"",
                &format!("podCIDR = \"10.10.1.0/24\"\n{next}"),
            ) + "[[deployments]]\nname = \"d\"\nreplicas = 6\nlabels = { app = \"d\" }\n"
                + extra
        };
        let c = ok(&text(
            "nextPodIP = \"10.10.1.252\"",
            "[[pods]]\nname = \"fixed\"\nip = \"10.10.1.253\"\n",
        ));
        let mut ips: Vec<Ipv4Addr> = c
            .pods
            .iter()
            .filter(|p| p.owner.is_some())
            .map(|p| p.ip)
            .collect();
        ips.sort();
        let want: Vec<Ipv4Addr> = [2, 3, 4, 5, 252, 254]
            .into_iter()
            .map(|h| Ipv4Addr::new(10, 10, 1, h))
            .collect();
        assert_eq!(ips, want);
        assert_eq!(c.nodes[0].next_pod_ip, Some(Ipv4Addr::new(10, 10, 1, 6)));
        // The first allocation after .254 wraps to .2.
        let c = ok(&text("nextPodIP = \"10.10.1.254\"", ""));
        assert_eq!(c.nodes[0].next_pod_ip, Some(Ipv4Addr::new(10, 10, 1, 7)));
        // Without the key: from .2, and nothing allocated leaves it unset.
        let c = ok(&text("", ""));
        assert_eq!(c.nodes[0].next_pod_ip, Some(Ipv4Addr::new(10, 10, 1, 8)));
        let c = ok(BASE);
        assert_eq!(c.nodes[0].next_pod_ip, None);
        let c = ok(&BASE.replace(
            "podCIDR = \"10.10.1.0/24\"",
            "podCIDR = \"10.10.1.0/24\"\nnextPodIP = \"10.10.1.9\"",
        ));
        assert_eq!(c.nodes[0].next_pod_ip, Some(Ipv4Addr::new(10, 10, 1, 9)));
    }

    #[test]
    fn next_pod_ip_rules() {
        let node = |ip: &str| {
            BASE.replace(
                "podCIDR = \"10.10.1.0/24\"",
                &format!("podCIDR = \"10.10.1.0/24\"\nnextPodIP = \"{ip}\""),
            )
        };
        bad(
            &node("10.10.2.5"),
            &[
                "nodes[0] \"n1\": nextPodIP \"10.10.2.5\"",
                "outside podCIDR 10.10.1.0/24",
            ],
        );
        bad(&node("10.10.1.1"), &["nextPodIP \"10.10.1.1\"", "gateway"]);
        bad(
            &node("10.10.1.255"),
            &["nextPodIP \"10.10.1.255\"", "broadcast"],
        );
        bad(&node("ten"), &["nodes[0] \"n1\": nextPodIP \"ten\""]);
        // A full range still fails, naming the pod that did not fit.
        let full = BASE.replace("10.10.1.0/24", "10.10.1.0/29").replace(
            "podCIDR = \"10.10.1.0/29\"",
            "podCIDR = \"10.10.1.0/29\"\nnextPodIP = \"10.10.1.5\"",
        ) + "[[deployments]]\nname = \"d\"\nreplicas = 6\nlabels = { app = \"d\" }\n";
        bad(
            &full,
            &[
                "podCIDR 10.10.1.0/29",
                "deployments[0] \"default/d\" replica 5",
            ],
        );
    }

    // ---------------------------------------------------------- Service kinds

    #[test]
    fn headless_services() {
        let c = ok(&with(
            r#"
[[deployments]]
name = "web"
replicas = 2
labels = { app = "web" }

[[services]]
name = "web"
clusterIP = "None"
selector = { app = "web" }
ports = [ { port = 80 } ]

[[services]]
name = "bare"
clusterIP = "None"
selector = { app = "web" }
"#,
        ));
        let s = c.service("default", "web").expect("web");
        assert!(s.headless);
        assert_eq!(s.cluster_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(s.service_type, ServiceType::ClusterIP);
        assert_eq!(c.endpoints(s, &s.ports[0]).len(), 2);
        assert!(c.service("default", "bare").expect("bare").ports.is_empty());
        bad(
            &svc_with("NodePort", "clusterIP = \"None\"", "{ port = 80 }"),
            &[
                "services[0] \"default/s\": clusterIP \"None\" (headless)",
                "not allowed on a NodePort Service",
            ],
        );
        bad(
            &svc_with("LoadBalancer", "clusterIP = \"None\"", "{ port = 80 }"),
            &["LoadBalancer Service"],
        );
        bad(
            &svc_with(
                "ClusterIP",
                "clusterIP = \"None\"\nexternalIPs = [\"192.168.200.20\"]",
                "{ port = 80 }",
            ),
            &[
                "services[0] \"default/s\": externalIPs [\"192.168.200.20\"]",
                "headless",
            ],
        );
        bad(
            &svc_with(
                "ClusterIP",
                "clusterIP = \"None\"",
                "{ port = 80, nodePort = 30080 }",
            ),
            &["services[0].ports[0].nodePort 30080", "ClusterIP"],
        );
    }

    #[test]
    fn external_name_services() {
        let text = |fields: &str, ports: &str| {
            with(&format!(
                "[[pods]]\nname = \"p\"\nlabels = {{ a = \"b\" }}\n\
                 [[services]]\nname = \"db\"\ntype = \"ExternalName\"\nselector = {{ a = \"b\" }}\n{fields}\n{ports}\n"
            ))
        };
        let c = ok(&text("externalName = \"db.example.com\"", ""));
        let s = c.service("default", "db").expect("db");
        assert_eq!(s.service_type, ServiceType::ExternalName);
        assert_eq!(s.external_name.as_deref(), Some("db.example.com"));
        assert_eq!(s.cluster_ip, Ipv4Addr::UNSPECIFIED);
        assert!(!s.headless && s.ports.is_empty());
        // With ports, still no endpoints: the selector is ignored.
        let c = ok(&text(
            "externalName = \"db.example.com.\"",
            "ports = [ { port = 5432 } ]",
        ));
        let s = c.service("default", "db").expect("db");
        assert!(c.endpoints(s, &s.ports[0]).is_empty());
        assert_eq!(s.ports[0].node_port, None);

        bad(
            &text("", ""),
            &["services[0] \"default/db\": externalName is missing"],
        );
        bad(
            &text("externalName = \"DB_host\"", ""),
            &[
                "services[0] \"default/db\": externalName \"DB_host\"",
                "not a valid DNS name",
            ],
        );
        for (fields, ports, needle) in [
            ("clusterIP = \"10.96.0.5\"", "", "clusterIP \"10.96.0.5\""),
            ("clusterIP = \"None\"", "", "clusterIP \"None\""),
            (
                "externalIPs = [\"192.168.200.20\"]",
                "",
                "externalIPs [\"192.168.200.20\"]",
            ),
            (
                "externalTrafficPolicy = \"Local\"",
                "",
                "externalTrafficPolicy \"Local\"",
            ),
            (
                "sessionAffinity = \"ClientIP\"",
                "",
                "sessionAffinity \"ClientIP\"",
            ),
            (
                "",
                "ports = [ { port = 80, nodePort = 30080 } ]",
                "services[0].ports[0].nodePort 30080",
            ),
        ] {
            bad(
                &text(
                    &format!("externalName = \"db.example.com\"\n{fields}"),
                    ports,
                ),
                &[needle, "not allowed on an ExternalName Service"],
            );
        }
        bad(
            &svc_with(
                "ClusterIP",
                "externalName = \"db.example.com\"",
                "{ port = 80 }",
            ),
            &[
                "services[0] \"default/s\": externalName \"db.example.com\"",
                "only allowed on an ExternalName Service, this one is type ClusterIP",
            ],
        );
    }

    #[test]
    fn internal_traffic_policy_defaults_and_values() {
        let policy = |ty: &str, fields: &str| {
            ok(&svc_with(ty, fields, "{ port = 80 }"))
                .service("default", "s")
                .map(|s| s.internal_traffic_policy)
        };
        for ty in ["ClusterIP", "NodePort", "LoadBalancer"] {
            assert_eq!(policy(ty, ""), Some(TrafficPolicy::Cluster));
            assert_eq!(
                policy(ty, "internalTrafficPolicy = \"Local\""),
                Some(TrafficPolicy::Local)
            );
            assert_eq!(
                policy(ty, "internalTrafficPolicy = \"Cluster\""),
                Some(TrafficPolicy::Cluster)
            );
        }
        bad(
            &svc_with(
                "ClusterIP",
                "internalTrafficPolicy = \"local\"",
                "{ port = 80 }",
            ),
            &[
                "services[0] \"default/s\": internalTrafficPolicy \"local\"",
                "must be \"Cluster\" or \"Local\"",
            ],
        );
    }

    // ---------------------------------------------------------- to_toml

    /// A cluster with one of everything the schema can say.
    const RICH: &str = r#"
[cluster]
podCIDR = "10.10.0.0/16"
serviceCIDR = "10.96.0.0/12"
dnsDomain = "lab.local"
vxlanVNI = 42
vxlanPort = 4789
underlayMTU = 9000

[[nodes]]
name = "n1"
address = "192.168.0.1"
podCIDR = "10.10.1.0/24"
nextPodIP = "10.10.1.200"

[[nodes]]
name = "n2"
address = "192.168.0.2"
podCIDR = "10.10.2.0/24"

[[nodes]]
name = "idle"
address = "192.168.0.3"
podCIDR = "10.10.3.0/24"
nextPodIP = "10.10.3.7"

[[deployments]]
name = "web"
namespace = "apps"
replicas = 3
labels = { app = "web", "app.kubernetes.io/name" = "web" }
ports = [ { name = "http", containerPort = 8080 }, { name = "dns", containerPort = 53, protocol = "UDP" } ]

[[deployments]]
name = "pinned"
replicas = 1
labels = { app = "pinned" }
node = "n2"
podsCreated = 12

[[deployments]]
name = "none"
replicas = 0

[[pods]]
name = "web-custom"
namespace = "apps"
owner = "web"
labels = { app = "web", "quote\"d" = "back\\slash" }
ready = false

[[pods]]
name = "client"
node = "n2"

[[pods]]
name = "coredns"
namespace = "kube-system"
labels = { k8s-app = "kube-dns" }
ip = "10.10.1.10"
ports = [ { name = "dns", containerPort = 53, protocol = "UDP" } ]

[[services]]
name = "web"
namespace = "apps"
type = "NodePort"
selector = { app = "web" }
labels = { team = "a" }
sessionAffinity = "ClientIP"
sessionAffinityTimeoutSeconds = 60
externalTrafficPolicy = "Local"
internalTrafficPolicy = "Local"
ports = [ { name = "http", port = 80, targetPort = "http" }, { name = "dns", port = 53, targetPort = 53, protocol = "UDP", nodePort = 30053 } ]

[[services]]
name = "lb"
namespace = "apps"
type = "LoadBalancer"
selector = { app = "web" }
loadBalancerIPs = ["192.168.200.10", "192.168.200.11"]
externalIPs = ["192.168.200.20"]
ports = [ { port = 443, targetPort = 8080 } ]

[[services]]
name = "ext"
selector = { app = "pinned" }
externalIPs = ["192.168.200.21"]
externalTrafficPolicy = "Cluster"
ports = [ { port = 80 } ]

[[services]]
name = "web-headless"
namespace = "apps"
clusterIP = "None"
selector = { app = "web" }

[[services]]
name = "db"
type = "ExternalName"
externalName = "db.example.com."
ports = [ { port = 5432 } ]

[[services]]
name = "kube-dns"
namespace = "kube-system"
clusterIP = "10.96.0.10"
selector = { k8s-app = "kube-dns" }
ports = [ { name = "dns", port = 53, protocol = "UDP" } ]
"#;

    #[track_caller]
    fn round_trips(c: &Cluster) -> String {
        let text = to_toml(c);
        match parse(&text) {
            Ok(back) => assert_eq!(&back, c, "{text}"),
            Err(e) => panic!("to_toml output refused: {e}\n{text}"),
        }
        assert_eq!(to_toml(&ok(&text)), text);
        text
    }

    #[test]
    fn to_toml_round_trips_the_default_cluster() {
        let c = ok(DEFAULT);
        let text = round_trips(&c);
        assert!(text.starts_with("# Generated by `router`"), "{text}");
        assert_eq!(text.matches("\n[[pods]]\n").count(), 6);
        assert_eq!(text.matches("\n[[services]]\n").count(), 9);
        assert_eq!(text.matches("owner = \"nginx-deployment\"").count(), 2);
        for needle in [
            "[cluster]\npodCIDR = \"10.10.0.0/16\"\nserviceCIDR = \"10.96.0.0/12\"\ndnsDomain = \"cluster.local\"\nvxlanVNI = 1\nvxlanPort = 8472\nunderlayMTU = 1500\n",
            "name = \"mac-master\"\naddress = \"192.168.191.144\"\npodCIDR = \"10.10.0.0/24\"\nnextPodIP = \"10.10.0.3\"\n",
            "templateHash = \"756d6b7586\"\npodsCreated = 2\nports = [\n    { name = \"http\", containerPort = 80, protocol = \"TCP\" },\n",
            "\n[[pods]]\nname = \"nginx-deployment-756d6b7586-cctx5\"\nnamespace = \"default\"\nowner = \"nginx-deployment\"\nnode = \"mac-worker\"\nip = \"10.10.1.2\"\nready = true\n\n",
            "name = \"client\"\nnamespace = \"default\"\nnode = \"mac-worker\"\nip = \"10.10.1.100\"\nready = true\nlabels = { run = \"client\" }\nports = []\n",
            "name = \"nginx-svc\"\nnamespace = \"default\"\ntype = \"ClusterIP\"\nclusterIP = \"10.101.182.177\"\n",
            "{ port = 80, targetPort = 80, nodePort = 30080, protocol = \"TCP\" }",
            "loadBalancerIPs = [\"192.168.200.10\"]",
        ] {
            assert!(text.contains(needle), "{needle:?} not in\n{text}");
        }
        // externalTrafficPolicy only where the API server allows it.
        assert_eq!(text.matches("externalTrafficPolicy").count(), 3);
        assert_eq!(
            text.matches("internalTrafficPolicy = \"Cluster\"").count(),
            9
        );
    }

    #[test]
    fn to_toml_round_trips_every_kind_of_object() {
        let c = ok(RICH);
        // The inputs exercise what they should.
        let web = c.service("apps", "web").expect("web");
        assert_eq!(web.ports[1].node_port, Some(30053));
        assert!(web.ports[0].node_port.is_some());
        assert!(
            c.service("apps", "web-headless")
                .expect("headless")
                .headless
        );
        assert_eq!(
            c.service("default", "db")
                .and_then(|s| s.external_name.clone()),
            Some("db.example.com.".into())
        );
        assert_eq!(c.pods.len(), 6);
        // web's three pods spread over the three nodes; on "idle" from .7.
        assert_eq!(
            c.node("idle").and_then(|n| n.next_pod_ip),
            Some(Ipv4Addr::new(10, 10, 3, 8))
        );
        assert_eq!(c.deployments[1].pods_created, 13);
        let text = round_trips(&c);
        for needle in [
            "clusterIP = \"None\"",
            "type = \"ExternalName\"\nexternalName = \"db.example.com.\"\nselector = {}\n",
            "labels = { app = \"web\", \"app.kubernetes.io/name\" = \"web\" }",
            "labels = { app = \"web\", \"quote\\\"d\" = \"back\\\\slash\" }",
            "sessionAffinity = \"ClientIP\"\nsessionAffinityTimeoutSeconds = 60\nexternalTrafficPolicy = \"Local\"\ninternalTrafficPolicy = \"Local\"\n",
            "{ name = \"http\", port = 80, targetPort = \"http\", nodePort = ",
            "node = \"n2\"\npodsCreated = 13\n",
            "ready = false\n",
        ] {
            assert!(text.contains(needle), "{needle:?} not in\n{text}");
        }
        // The ExternalName Service has no ClusterIP line.
        let db = text
            .split("\n[[services]]\n")
            .find(|t| t.starts_with("name = \"db\""))
            .expect("db table");
        assert!(!db.contains("clusterIP"), "{db}");
    }

    #[test]
    fn to_toml_quotes_strings() {
        assert_eq!(quote("a\"b\\c\nd\te\u{1}"), r#""a\"b\\c\nd\te\u0001""#);
        assert_eq!(toml_key("k8s-app"), "k8s-app");
        assert_eq!(toml_key("a.b/c"), "\"a.b/c\"");
        assert_eq!(toml_key(""), "\"\"");
    }

    // ---------------------------------------------------------- apply

    fn store() -> String {
        to_toml(&ok(DEFAULT))
    }

    #[track_caller]
    fn applied(store: &str, file: &str) -> (String, Vec<String>, Cluster) {
        match apply(store, file) {
            Ok((text, changes)) => {
                let c = ok(&text);
                assert_eq!(to_toml(&c), text, "apply's output is to_toml's");
                (text, changes.iter().map(ToString::to_string).collect(), c)
            }
            Err(e) => panic!("apply refused: {e}\n{file}"),
        }
    }

    #[track_caller]
    fn apply_fails(store: &str, file: &str) -> String {
        match apply(store, file) {
            Ok((text, _)) => panic!("apply should fail:\n{file}\ngot:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    const NEW_APP: &str = r#"
[[deployments]]
name = "web"
replicas = 2
labels = { app = "web" }
ports = [ { containerPort = 8080 } ]

[[services]]
name = "web"
selector = { app = "web" }
ports = [ { port = 80, targetPort = 8080 } ]
"#;

    #[test]
    fn apply_creates_then_leaves_unchanged() {
        let before = ok(&store());
        let (text, changes, c) = applied(&store(), NEW_APP);
        assert_eq!(
            changes,
            vec!["deployment.apps/web created", "service/web created"]
        );
        // The old objects are untouched, the new pods are not ready yet.
        for p in &before.pods {
            assert_eq!(c.pod(&p.namespace, &p.name), Some(p));
        }
        for s in &before.services {
            assert_eq!(c.service(&s.namespace, &s.name), Some(s));
        }
        let web: Vec<&Pod> = c
            .pods
            .iter()
            .filter(|p| p.owner.as_deref() == Some("web"))
            .collect();
        assert_eq!(web.len(), 2);
        assert!(web.iter().all(|p| !p.ready));
        // One per node, at each node's nextPodIP.
        let mut ips: Vec<Ipv4Addr> = web.iter().map(|p| p.ip).collect();
        ips.sort();
        assert_eq!(
            ips,
            vec![Ipv4Addr::new(10, 10, 0, 3), Ipv4Addr::new(10, 10, 1, 3)]
        );
        assert_eq!(c.deployments[1].name, "web");
        let svc = c.service("default", "web").expect("web");
        assert!(c.service_cidr.contains(&svc.cluster_ip));
        // Not ready: no endpoints until the kubelet says so.
        assert!(c.endpoints(svc, &svc.ports[0]).is_empty());

        let (again, changes, _) = applied(&text, NEW_APP);
        assert_eq!(
            changes,
            vec!["deployment.apps/web unchanged", "service/web unchanged"]
        );
        assert_eq!(again, text);
    }

    #[test]
    fn apply_configures_and_keeps_allocated_values() {
        let (text, _, c) = applied(&store(), NEW_APP);
        let ip = c.service("default", "web").expect("web").cluster_ip;
        // ClusterIP kept when the file leaves it out.
        let changed = NEW_APP.replace(
            "selector = { app = \"web\" }",
            "selector = { app = \"web\", tier = \"x\" }",
        );
        let (text, changes, c) = applied(&text, &changed);
        assert_eq!(
            changes,
            vec!["deployment.apps/web unchanged", "service/web configured"]
        );
        assert_eq!(c.service("default", "web").expect("web").cluster_ip, ip);

        // ClusterIP -> NodePort allocates a node port, which a re-apply
        // without it keeps.
        let node_port = changed.replace(
            "name = \"web\"\nselector",
            "name = \"web\"\ntype = \"NodePort\"\nselector",
        );
        let (text, changes, c) = applied(&text, &node_port);
        assert_eq!(changes[1], "service/web configured");
        let s = c.service("default", "web").expect("web");
        assert_eq!(s.cluster_ip, ip);
        let np = s.ports[0].node_port.expect("allocated");
        assert!((30000..=32767).contains(&np));
        let (text, changes, c) = applied(&text, &node_port);
        assert_eq!(changes[1], "service/web unchanged");
        assert_eq!(
            c.service("default", "web").expect("web").ports[0].node_port,
            Some(np)
        );
        // NodePort -> ClusterIP drops it.
        let (_, changes, c) = applied(&text, &changed);
        assert_eq!(changes[1], "service/web configured");
        let s = c.service("default", "web").expect("web");
        assert_eq!((s.cluster_ip, s.ports[0].node_port), (ip, None));

        // The walkthrough's nginx-svc, re-applied as NodePort without an
        // address, keeps 10.101.182.177.
        let (_, changes, c) = applied(
            &store(),
            "[[services]]\nname = \"nginx-svc\"\ntype = \"NodePort\"\nselector = { app = \"nginx-deployment\" }\nports = [ { port = 80, targetPort = 80 } ]\n",
        );
        assert_eq!(changes, vec!["service/nginx-svc configured"]);
        let s = c.service("default", "nginx-svc").expect("nginx-svc");
        assert_eq!(s.cluster_ip, Ipv4Addr::new(10, 101, 182, 177));
        assert!(s.ports[0].node_port.is_some());
    }

    #[test]
    fn apply_scales_a_deployment_up_and_down() {
        let (text, _, c) = applied(&store(), NEW_APP);
        let hash = c.deployments[1].template_hash.clone();
        let first: Vec<String> = c
            .pods
            .iter()
            .filter(|p| p.owner.as_deref() == Some("web"))
            .map(|p| p.name.clone())
            .collect();
        let text = set_ready(&text, "default", &first[0], true).expect("ready");
        let text = set_ready(&text, "default", &first[1], true).expect("ready");

        let (text, changes, c) = applied(&text, &NEW_APP.replace("replicas = 2", "replicas = 4"));
        assert_eq!(changes[0], "deployment.apps/web configured");
        let web: Vec<&Pod> = c
            .pods
            .iter()
            .filter(|p| p.owner.as_deref() == Some("web"))
            .collect();
        assert_eq!(web.len(), 4);
        assert_eq!(c.deployments[1].pods_created, 4);
        for name in &first {
            assert!(pod(&c, name).ready, "{name} kept its readiness");
        }
        let new: Vec<&&Pod> = web.iter().filter(|p| !first.contains(&p.name)).collect();
        assert_eq!(new.len(), 2);
        assert!(new.iter().all(|p| !p.ready));
        let mut new_names: Vec<&str> = new.iter().map(|p| p.name.as_str()).collect();
        new_names.sort();
        let mut want = vec![
            generated_name("default", "web", &hash, 2),
            generated_name("default", "web", &hash, 3),
        ];
        want.sort();
        assert_eq!(new_names, want);
        let mut ips: Vec<Ipv4Addr> = new.iter().map(|p| p.ip).collect();
        ips.sort();
        assert_eq!(
            ips,
            vec![Ipv4Addr::new(10, 10, 0, 4), Ipv4Addr::new(10, 10, 1, 4)]
        );

        // Down to 2: the two not-ready ones go first.
        let (text, _, c) = applied(&text, NEW_APP);
        let mut left: Vec<String> = c
            .pods
            .iter()
            .filter(|p| p.owner.as_deref() == Some("web"))
            .map(|p| p.name.clone())
            .collect();
        left.sort();
        let mut want = first.clone();
        want.sort();
        assert_eq!(left, want);
        assert_eq!(c.deployments[1].pods_created, 4);
        // Down to 1: then by name, descending.
        let (_, _, c) = applied(&text, &NEW_APP.replace("replicas = 2", "replicas = 1"));
        let left: Vec<&str> = c
            .pods
            .iter()
            .filter(|p| p.owner.as_deref() == Some("web"))
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(left, vec![want[0].as_str()]);
    }

    #[test]
    fn apply_with_a_new_template_rolls_the_pods() {
        let (text, _, c) = applied(&store(), NEW_APP);
        let old_hash = c.deployments[1].template_hash.clone();
        let old: Vec<String> = c
            .pods
            .iter()
            .filter(|p| p.owner.is_some())
            .map(|p| p.name.clone())
            .collect();
        let (_, changes, c) = applied(
            &text,
            &NEW_APP.replace(
                "labels = { app = \"web\" }",
                "labels = { app = \"web\", v = \"2\" }",
            ),
        );
        assert_eq!(changes[0], "deployment.apps/web configured");
        let d = c.deployment("default", "web").expect("web");
        assert_ne!(d.template_hash, old_hash);
        assert_eq!(d.pods_created, 4);
        let web: Vec<&Pod> = c
            .pods
            .iter()
            .filter(|p| p.owner.as_deref() == Some("web"))
            .collect();
        assert_eq!(web.len(), 2);
        for p in &web {
            assert!(!old.contains(&p.name), "{}", p.name);
            assert!(p.name.starts_with(&format!("web-{}-", d.template_hash)));
            assert_eq!(p.labels.get("v").map(String::as_str), Some("2"));
            assert!(!p.ready);
        }
        // The nginx pods are not affected.
        assert_eq!(
            c.pods
                .iter()
                .filter(|p| p.owner.as_deref() == Some("nginx-deployment"))
                .count(),
            2
        );
    }

    #[test]
    fn apply_pods() {
        let pod_file =
            "[[pods]]\nname = \"debug\"\nnode = \"mac-master\"\nlabels = { run = \"debug\" }\n";
        let (text, changes, c) = applied(&store(), pod_file);
        assert_eq!(changes, vec!["pod/debug created"]);
        let p = pod(&c, "debug");
        assert_eq!(p.ip, Ipv4Addr::new(10, 10, 0, 3));
        assert!(!p.ready);
        let text = set_ready(&text, "default", "debug", true).expect("ready");
        let (_, changes, c) = applied(&text, pod_file);
        assert_eq!(changes, vec!["pod/debug unchanged"]);
        assert_eq!(pod(&c, "debug").ip, Ipv4Addr::new(10, 10, 0, 3));
        assert!(pod(&c, "debug").ready);
        let (_, changes, c) = applied(&text, &pod_file.replace("debug\" }", "dbg\" }"));
        assert_eq!(changes, vec!["pod/debug configured"]);
        assert!(pod(&c, "debug").ready);
        // A router-hosted pod is ready at once.
        let (_, _, c) = applied(
            &text,
            "[[pods]]\nname = \"coredns\"\nnamespace = \"kube-system\"\nlabels = { k8s-app = \"kube-dns\" }\n",
        );
        assert!(c.pod("kube-system", "coredns").expect("coredns").ready);
    }

    #[test]
    fn reapplying_the_config_files_objects_changes_nothing() {
        let objects = &DEFAULT[DEFAULT.find("\n[[deployments]]\n").expect("deployments")..];
        let (text, changes, _) = applied(&store(), objects);
        assert_eq!(text, store());
        assert_eq!(
            changes,
            vec![
                "deployment.apps/nginx-deployment unchanged",
                "pod/client unchanged",
                "pod/client-master unchanged",
                "pod/coredns-mac-master unchanged",
                "pod/coredns-mac-worker unchanged",
                "service/nginx-svc unchanged",
                "service/echo-udp unchanged",
                "service/orphan-svc unchanged",
                "service/nginx-nodeport unchanged",
                "service/nginx-local unchanged",
                "service/nginx-lb unchanged",
                "service/kube-dns unchanged",
                "service/nginx-headless unchanged",
                "service/example unchanged",
            ]
        );
    }

    #[test]
    fn an_owned_pod_with_an_address_goes_to_that_addresss_node() {
        let c = ok(&with(
            "[[nodes]]\nname = \"n2\"\naddress = \"192.168.0.2\"\npodCIDR = \"10.10.2.0/24\"\n\
             [[deployments]]\nname = \"d\"\nreplicas = 2\nlabels = { app = \"d\" }\n\
             [[pods]]\nname = \"x\"\nowner = \"d\"\nip = \"10.10.2.50\"\n",
        ));
        assert_eq!(pod(&c, "x").node, "n2");
        // The generated one goes to the other node.
        assert!(c.pods.iter().any(|p| p.name != "x" && p.node == "n1"));
    }

    #[test]
    fn a_bad_apply_names_the_object_and_key() {
        let s = store();
        let e = apply_fails(
            &s,
            "[[services]]\nname = \"x\"\nclusterIP = \"10.101.182.177\"\nports = [ { port = 80 } ]\n",
        );
        assert_eq!(
            e,
            "services[0] \"default/x\": clusterIP \"10.101.182.177\" is already used by store services[6] \"default/nginx-svc\""
        );
        let e = apply_fails(
            &s,
            "[[services]]\nname = \"ok\"\nports = [ { port = 80 } ]\n\
             [[services]]\nname = \"x\"\ntype = \"NodePort\"\nports = [ { port = 80, nodePort = 30080 } ]\n",
        );
        assert_eq!(
            e,
            "services[1].ports[0].nodePort 30080 is already used by store services[5].ports[0].nodePort"
        );
        let e = apply_fails(
            &s,
            "[[services]]\nname = \"x\"\nports = [ { port = 80 } ]\nselectr = {}\n",
        );
        assert!(
            e.contains("unknown field `selectr`") && e.contains("line 4"),
            "{e}"
        );
        let e = apply_fails(&s, "[[deployments]]\nname = \"d\"\nreplicas = 5000\n");
        assert_eq!(
            e,
            "deployments[0] \"default/d\": replicas 5000 is out of range 0-1000"
        );
        let e = apply_fails(
            &s,
            "[[pods]]\nname = \"p\"\nip = \"10.10.1.2\"\nnode = \"mac-worker\"\n",
        );
        assert!(
            e.starts_with("pods[0] \"default/p\": ip \"10.10.1.2\" is already used by store pods["),
            "{e}"
        );
        let e = apply_fails(
            &s,
            "[[services]]\nname = \"x\"\nports = [ { port = 1 } ]\n[[services]]\nname = \"x\"\nports = [ { port = 2 } ]\n",
        );
        assert!(
            e.contains("services[1].name \"x\" is already used by services[0]"),
            "{e}"
        );
        let e = apply_fails(&s, "[cluster]\npodCIDR = \"10.0.0.0/16\"\n");
        assert!(e.starts_with("[cluster] cannot be applied"), "{e}");
        let e = apply_fails(
            &s,
            "[[nodes]]\nname = \"n3\"\naddress = \"1.2.3.4\"\npodCIDR = \"10.10.9.0/24\"\n",
        );
        assert!(e.starts_with("[[nodes]] cannot be applied"), "{e}");
        assert_eq!(
            apply_fails(&s, "# nothing\n"),
            "no objects passed to apply: the file has no [[deployments]], [[pods]] or [[services]]"
        );
        // A broken store is reported as such.
        assert!(apply_fails("[cluster]\n", NEW_APP).contains("invalid config"));
    }

    // ---------------------------------------------------------- delete, readiness

    #[test]
    fn delete_pod_replaces_an_owned_pod_with_a_new_name_and_ip() {
        let s = store();
        let before = ok(&s);
        let victim = before
            .pods
            .iter()
            .find(|p| p.owner.is_some() && p.node == "mac-worker")
            .expect("nginx on mac-worker")
            .clone();
        assert_eq!(victim.ip, Ipv4Addr::new(10, 10, 1, 2));
        let (text, changes) = delete_pod(&s, "default", &victim.name).expect("delete");
        assert_eq!(
            changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec![format!("pod \"{}\" deleted", victim.name)]
        );
        let c = ok(&text);
        assert!(c.pod("default", &victim.name).is_none());
        let replacement = c
            .pods
            .iter()
            .find(|p| p.owner.is_some() && p.node == "mac-worker")
            .expect("replacement on the same node");
        assert_eq!(
            replacement.name,
            generated_name("default", "nginx-deployment", "756d6b7586", 2)
        );
        assert_eq!(replacement.ip, Ipv4Addr::new(10, 10, 1, 3));
        assert!(!replacement.ready);
        assert_eq!(c.deployments[0].pods_created, 3);
        assert_eq!(
            c.node("mac-worker").and_then(|n| n.next_pod_ip),
            Some(Ipv4Addr::new(10, 10, 1, 4))
        );
        // Everything else is as it was.
        assert_eq!(c.pods.len(), before.pods.len());
        assert_eq!(c.services, before.services);

        // A standalone pod just goes.
        let (text, _) = delete_pod(&s, "default", "client").expect("delete client");
        let c = ok(&text);
        assert!(c.pod("default", "client").is_none());
        assert_eq!(c.pods.len(), 5);

        let e = delete_pod(&s, "default", "nope").expect_err("unknown");
        assert_eq!(e.to_string(), "pods \"nope\" not found");
        let e = delete_pod(&s, "kube-system", "client").expect_err("other namespace");
        assert_eq!(e.to_string(), "pods \"client\" not found");
    }

    #[test]
    fn a_replacement_gets_the_ip_after_the_highest_given_out() {
        // .2 and .3 taken, nextPodIP .4: deleting .3 gives the new pod .4,
        // not .3 again.
        let c = ok(&with(
            "[[deployments]]\nname = \"d\"\nreplicas = 2\nlabels = { app = \"d\" }\n",
        ));
        assert_eq!(c.nodes[0].next_pod_ip, Some(Ipv4Addr::new(10, 10, 1, 4)));
        let s = to_toml(&c);
        let at3 = c
            .pods
            .iter()
            .find(|p| p.ip == Ipv4Addr::new(10, 10, 1, 3))
            .expect(".3");
        let (text, _) = delete_pod(&s, "default", &at3.name).expect("delete");
        let c = ok(&text);
        let mut ips: Vec<Ipv4Addr> = c.pods.iter().map(|p| p.ip).collect();
        ips.sort();
        assert_eq!(
            ips,
            vec![Ipv4Addr::new(10, 10, 1, 2), Ipv4Addr::new(10, 10, 1, 4)]
        );

        // The walkthrough: .42 and .43 on mac-worker, .43 deleted -> .44.
        let mut c = ok(DEFAULT);
        c.deployments[0].node = Some("mac-worker".into());
        let worker: Vec<usize> = (0..c.pods.len())
            .filter(|&i| c.pods[i].owner.is_some())
            .collect();
        for (n, &i) in worker.iter().enumerate() {
            c.pods[i].node = "mac-worker".into();
            c.pods[i].ip = Ipv4Addr::new(10, 10, 1, 42 + n as u8);
        }
        c.nodes[1].next_pod_ip = Some(Ipv4Addr::new(10, 10, 1, 44));
        let victim = c.pods[worker[1]].name.clone();
        let (text, _) = delete_pod(&to_toml(&c), "default", &victim).expect("delete");
        let after = ok(&text);
        let replacement = after
            .pods
            .iter()
            .find(|p| p.owner.is_some() && p.ip != Ipv4Addr::new(10, 10, 1, 42))
            .expect("replacement");
        assert_eq!(replacement.ip, Ipv4Addr::new(10, 10, 1, 44));
        assert_eq!(replacement.node, "mac-worker");
    }

    #[test]
    fn set_ready_and_deletes() {
        let s = store();
        let text = set_ready(&s, "default", "client", false).expect("set");
        assert!(!pod(&ok(&text), "client").ready);
        let text = set_ready(&text, "default", "client", true).expect("set");
        assert_eq!(text, s);
        assert_eq!(
            set_ready(&s, "default", "ghost", true)
                .expect_err("unknown")
                .to_string(),
            "pods \"ghost\" not found"
        );

        let (text, changes) = delete_service(&s, "default", "orphan-svc").expect("delete");
        assert_eq!(changes[0].to_string(), "service \"orphan-svc\" deleted");
        assert!(ok(&text).service("default", "orphan-svc").is_none());
        assert_eq!(ok(&text).services.len(), 8);
        assert_eq!(
            delete_service(&s, "default", "x")
                .expect_err("unknown")
                .to_string(),
            "services \"x\" not found"
        );

        let (text, changes) = delete_deployment(&s, "default", "nginx-deployment").expect("delete");
        assert_eq!(
            changes[0].to_string(),
            "deployment.apps \"nginx-deployment\" deleted"
        );
        let c = ok(&text);
        assert!(c.deployments.is_empty());
        assert_eq!(
            names(&c),
            vec![
                "client",
                "client-master",
                "coredns-mac-master",
                "coredns-mac-worker"
            ]
        );
        assert_eq!(
            delete_deployment(&s, "default", "x")
                .expect_err("unknown")
                .to_string(),
            "deployments.apps \"x\" not found"
        );
    }

    #[test]
    fn change_lines_read_like_kubectl() {
        let line = |kind, action| {
            Change {
                kind,
                namespace: "default".into(),
                name: "x".into(),
                action,
            }
            .to_string()
        };
        assert_eq!(line("service", ChangeAction::Created), "service/x created");
        assert_eq!(
            line("service", ChangeAction::Configured),
            "service/x configured"
        );
        assert_eq!(line("pod", ChangeAction::Unchanged), "pod/x unchanged");
        assert_eq!(
            line("deployment", ChangeAction::Created),
            "deployment.apps/x created"
        );
        assert_eq!(line("pod", ChangeAction::Deleted), "pod \"x\" deleted");
    }
    #[test]
    fn unknown_fields_name_the_object() {
        let text = format!(
            "{}\n[[services]]\nname = \"odd-svc\"\ncolour = \"red\"\nports = [{{ port = 80 }}]\n",
            DEFAULT
        );
        let e = parse(&text).expect_err("unknown field").to_string();
        assert!(
            e.contains("services[9] \"default/odd-svc\": unknown field `colour`"),
            "{e}"
        );
        assert!(e.contains("line "), "keeps the position: {e}");
        let e = apply(
            &store(),
            "[[services]]\nname = \"odd-svc\"\ncolour = \"red\"\n",
        )
        .expect_err("unknown field")
        .to_string();
        assert!(
            e.contains("services[0] \"default/odd-svc\": unknown field `colour`"),
            "{e}"
        );
    }
}
