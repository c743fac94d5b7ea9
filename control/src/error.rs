//! Why a config file or a change was refused. Every message names the key
//! path and the offending value, cut to a readable length when it is long.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

use cluster::{Protocol, ServiceType};

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
    /// A name is not in its kind's syntax (a DNS-1123 or DNS-1035 label).
    #[error("{key} {value:?} is not a valid {syntax}: {reason}")]
    InvalidName {
        /// Key path.
        key: String,
        /// The name.
        value: Shown,
        /// The syntax it must follow (`DNS-1123 label`).
        syntax: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A label or selector key is not a qualified name.
    #[error("{key}: key {value:?} is not a valid label key: {reason}")]
    InvalidLabelKey {
        /// Key path of the labels or selector.
        key: String,
        /// The label key.
        value: Shown,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A label or selector value is not a valid label value.
    #[error("{key} {value:?} is not a valid label value: {reason}")]
    InvalidLabelValue {
        /// Key path of the value (`...: labels.app`).
        key: String,
        /// The value.
        value: Shown,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A node's address is not a unicast address another node can reach.
    #[error("{key} \"{value}\" is not a unicast address: it is {what}")]
    NodeAddressNotUnicast {
        /// Key path.
        key: String,
        /// The address.
        value: Ipv4Addr,
        /// What kind of address it is.
        what: &'static str,
    },
    /// `cluster.vxlanPort` lies in the NodePort range.
    #[error("{key} {value} is inside the NodePort range 30000-32767: every node serves those ports for Services, so overlay packets and NodePort traffic would collide")]
    VxlanPortInNodePortRange {
        /// Key path.
        key: String,
        /// The port.
        value: u16,
    },
    /// `cluster.dnsDomain` is not a DNS-1123 subdomain.
    #[error("{key} {value:?} is not a valid DNS domain: {reason}")]
    InvalidDnsDomain {
        /// Key path.
        key: String,
        /// The domain.
        value: Shown,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A CIDR does not parse.
    #[error("{key} {value:?} is not a valid IPv4 CIDR (expected a.b.c.d/len): {reason}")]
    InvalidCidr {
        /// Key path.
        key: String,
        /// The text.
        value: Shown,
        /// The parser's complaint.
        reason: String,
    },
    /// A CIDR has bits set after its prefix.
    #[error("{key} {value:?} has host bits set (did you mean {network}?)")]
    CidrHostBits {
        /// Key path.
        key: String,
        /// The text.
        value: Shown,
        /// The network it probably meant.
        network: Ipv4Net,
    },
    /// An IP address does not parse.
    #[error("{key} {value:?} is not a valid IPv4 address: {reason}")]
    InvalidIp {
        /// Key path.
        key: String,
        /// The text.
        value: Shown,
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
        value: Shown,
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
        value: Shown,
        /// The nodes that do exist, comma-separated.
        known: String,
    },
    /// Two objects of one kind have the same name in a namespace.
    #[error("{key} {value:?} is already used by {first} in namespace {namespace:?}")]
    DuplicateName {
        /// Key path.
        key: String,
        /// The name.
        value: Shown,
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
        value: Shown,
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
        value: Shown,
    },
    /// A container port name is not an IANA service name.
    #[error("{key} {value:?} is not a valid port name: {reason}")]
    InvalidPortName {
        /// Key path.
        key: String,
        /// The value.
        value: Shown,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two ports of one pod template or Service share a name.
    #[error("{key} {value:?} is already used by {first}")]
    DuplicatePortName {
        /// Key path.
        key: String,
        /// The name.
        value: Shown,
        /// The port that has it first.
        first: String,
    },
    /// A Service's `targetPort` string is not a valid port name.
    #[error("{key} {value:?} is neither a port number nor a valid port name: {reason}")]
    InvalidTargetPort {
        /// Key path.
        key: String,
        /// The value.
        value: Shown,
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
        value: Shown,
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
        value: Shown,
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
    #[error("{key} {value} is not allowed on a headless Service (clusterIP = \"None\"): there is no ClusterIP to serve them")]
    HeadlessWithExternalIps {
        /// Key path.
        key: String,
        /// The addresses as written (the list, as `["a", "b"]`).
        value: Shown,
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
        value: Shown,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `externalName` on a Service of another type.
    #[error("{key} {value:?} is only allowed on an ExternalName Service, this one is type {service_type} (set type = \"ExternalName\")")]
    ExternalNameWithoutType {
        /// Key path.
        key: String,
        /// The name.
        value: Shown,
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
        value: Shown,
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
        value: Shown,
    },
    /// `externalTrafficPolicy` on a Service nothing outside the cluster can
    /// reach (type ClusterIP without externalIPs), refused like the API
    /// server does.
    #[error("{key} {value:?} may only be set for externally-accessible services: this ClusterIP Service has no externalIPs (set type = \"NodePort\" or \"LoadBalancer\")")]
    TrafficPolicyNotExternal {
        /// Key path.
        key: String,
        /// The value.
        value: Shown,
    },
    /// `loadBalancerIPs` on a Service that is not of type LoadBalancer.
    #[error("{key} {value} is only allowed on a LoadBalancer Service, this one is type {service_type} (set type = \"LoadBalancer\")")]
    LoadBalancerIpsNotLoadBalancer {
        /// Key path.
        key: String,
        /// The addresses as written (the list, as `["a", "b"]`).
        value: Shown,
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
        value: Shown,
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
        value: Shown,
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
    /// A cluster given whole (see [`validate`](fn@crate::validate)) is not what parsing
    /// it gives back.
    #[error("{key} is not as the control plane would store it: parsing the cluster changes it (pods that do not match their Deployment, objects out of order, or values the allocators would not keep)")]
    NotAsStored {
        /// Key path of the first object that differs.
        key: String,
    },
}

/// Longest value (in bytes) an error message repeats in full.
pub const SHOWN_MAX: usize = 64;

/// A value as an error message shows it: in full when it is short, else
/// its first [`SHOWN_MAX`] bytes and its length, so that a 10 MB value is
/// not repeated in full. `{value:?}` quotes it, `{value}` does not.
#[derive(Clone, PartialEq, Eq)]
pub struct Shown {
    /// The value, or its first [`SHOWN_MAX`] bytes (at a character boundary).
    start: String,
    /// The whole value's length in bytes.
    len: usize,
}

impl Shown {
    /// The value as far as it is kept: all of it when it is short.
    pub fn as_str(&self) -> &str {
        &self.start
    }

    /// Whether the value was cut.
    pub fn is_cut(&self) -> bool {
        self.start.len() < self.len
    }
}

impl From<&str> for Shown {
    fn from(s: &str) -> Self {
        Self {
            start: prefix(s, SHOWN_MAX).to_owned(),
            len: s.len(),
        }
    }
}

impl From<&String> for Shown {
    fn from(s: &String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<String> for Shown {
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.start)?;
        if self.is_cut() {
            write!(f, "... ({} bytes)", self.len)?;
        }
        Ok(())
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.start)?;
        if self.is_cut() {
            write!(f, "... ({} bytes)", self.len)?;
        }
        Ok(())
    }
}

/// `s` as an error shows it inside a key path or a message (see [`Shown`]).
pub(crate) fn cut(s: &str) -> String {
    Shown::from(s).to_string()
}

/// The longest start of `s` of at most `max` bytes that ends at a
/// character boundary.
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
