//! Where a packet goes once its destination is final: this node's TUN
//! device (a local pod, or the kernel's own routes), or another node over
//! the overlay. Also what this node's addresses are.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::model::Model;
use crate::overlay;
use cluster::{Cluster, Overlay, Pod};

fn sorted(ips: impl Iterator<Item = Ipv4Addr>) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = ips.collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn insert_sorted(v: &mut Vec<Ipv4Addr>, ip: Ipv4Addr) {
    if let Err(i) = v.binary_search(&ip) {
        v.insert(i, ip);
    }
}

fn remove_sorted(v: &mut Vec<Ipv4Addr>, ip: Ipv4Addr) {
    if let Ok(i) = v.binary_search(&ip) {
        v.remove(i);
    }
}

/// Another node, reachable over the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Node name.
    pub name: String,
    /// Its underlay address (the overlay's outer destination).
    pub underlay_ip: Ipv4Addr,
    /// Its pod CIDR.
    pub pod_cidr: Ipv4Net,
    /// Its VXLAN endpoint's MAC address.
    pub mac: [u8; 6],
}

/// The next hop of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    /// Back to the node's kernel through the TUN device.
    Tun,
    /// To a pod the router serves in process.
    Stack,
    /// To another node over the overlay (index into [`Topology::peers`]).
    Peer(usize),
}

/// This node's place in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// This node's name.
    pub node: String,
    /// This node's underlay address (NodePorts listen on it).
    pub underlay_ip: Ipv4Addr,
    /// This node's pod CIDR.
    pub pod_cidr: Ipv4Net,
    /// The whole cluster's pod CIDR.
    pub cluster_pod_cidr: Ipv4Net,
    /// The pods' gateway: the first host of the pod CIDR, a local address
    /// of the node.
    pub gateway: Ipv4Addr,
    /// The address masqueraded flows get as their source: the pod CIDR's
    /// network address, as flannel gives its `flannel.1` device. It is not
    /// assigned to any interface, so replies to it always come back through
    /// the router, from local pods and over the overlay alike.
    pub masquerade_ip: Ipv4Addr,
    /// Our VXLAN endpoint's MAC address.
    pub mac: [u8; 6],
    /// The other nodes.
    pub peers: Vec<Peer>,
    /// VXLAN network identifier.
    pub vni: u32,
    /// Largest IP packet that fits in the overlay (underlay MTU - 50).
    pub overlay_mtu: usize,
    /// IPs of the pods on this node, sorted (a binary search per packet is
    /// cheaper than hashing for a node's few hundred pods).
    pub local_pods: Vec<Ipv4Addr>,
    /// IPs of the pods on this node that the router serves in process
    /// (the cluster DNS), sorted.
    pub stack_pods: Vec<Ipv4Addr>,
}

impl Topology {
    /// The topology of node `node` in `cluster`; `None` if there is no such node.
    pub fn new(cluster: &Cluster, node: &str) -> Option<Self> {
        Self::build(
            &cluster.nodes,
            cluster.pod_cidr,
            cluster.overlay,
            cluster.pods.iter(),
            node,
        )
    }

    /// The topology of node `node` in `model`; `None` if there is no such node.
    pub fn from_model(model: &Model, node: &str) -> Option<Self> {
        Self::build(
            model.nodes(),
            model.pod_cidr,
            model.overlay,
            model.pods(),
            node,
        )
    }

    fn build<'a>(
        nodes: &[cluster::Node],
        cluster_pod_cidr: Ipv4Net,
        overlay: Overlay,
        pods: impl Iterator<Item = &'a Pod> + Clone,
        node: &str,
    ) -> Option<Self> {
        let mut topology = Self {
            node: node.to_owned(),
            underlay_ip: Ipv4Addr::UNSPECIFIED,
            pod_cidr: cluster_pod_cidr,
            cluster_pod_cidr,
            gateway: Ipv4Addr::UNSPECIFIED,
            masquerade_ip: Ipv4Addr::UNSPECIFIED,
            mac: [0; 6],
            peers: Vec::new(),
            vni: overlay.vni,
            overlay_mtu: usize::from(overlay.pod_mtu()),
            local_pods: sorted(pods.clone().filter(|p| p.node == node).map(|p| p.ip)),
            stack_pods: sorted(
                pods.filter(|p| p.node == node && p.is_router_hosted())
                    .map(|p| p.ip),
            ),
        };
        topology.set_nodes(nodes).then_some(topology)
    }

    /// Takes this node's address and pod CIDR and its peers from `nodes`;
    /// false (and nothing changed) if this node is not among them.
    pub fn set_nodes(&mut self, nodes: &[cluster::Node]) -> bool {
        let Some(me) = nodes.iter().find(|n| n.name == self.node) else {
            return false;
        };
        self.underlay_ip = me.underlay_ip;
        self.pod_cidr = me.pod_cidr;
        self.gateway = me.gateway();
        self.masquerade_ip = me.pod_cidr.network();
        self.mac = overlay::vtep_mac(me.underlay_ip);
        self.peers = nodes
            .iter()
            .filter(|n| n.name != self.node)
            .map(|n| Peer {
                name: n.name.clone(),
                underlay_ip: n.underlay_ip,
                pod_cidr: n.pod_cidr,
                mac: overlay::vtep_mac(n.underlay_ip),
            })
            .collect();
        true
    }

    /// Updates this node's pods after pod `old` became `new` (either may
    /// be absent); `pods` are the pods after the change, asked whether
    /// another pod of this node still holds a released address.
    pub fn update_pod<'a>(
        &mut self,
        old: Option<&Pod>,
        new: Option<&Pod>,
        pods: impl Iterator<Item = &'a Pod> + Clone,
    ) {
        let node = self.node.clone();
        if let Some(p) = old.filter(|p| p.node == node) {
            let still = |hosted: bool| {
                pods.clone()
                    .any(|q| q.node == node && q.ip == p.ip && (!hosted || q.is_router_hosted()))
            };
            if !still(false) {
                remove_sorted(&mut self.local_pods, p.ip);
            }
            if !still(true) {
                remove_sorted(&mut self.stack_pods, p.ip);
            }
        }
        if let Some(p) = new.filter(|p| p.node == node) {
            insert_sorted(&mut self.local_pods, p.ip);
            if p.is_router_hosted() {
                insert_sorted(&mut self.stack_pods, p.ip);
            }
        }
    }

    /// Longest-prefix match over the pod CIDRs: a peer's pod CIDR goes over
    /// the overlay, everything else to the TUN device.
    #[inline]
    pub fn next_hop(&self, dst: Ipv4Addr) -> NextHop {
        if self.is_stack_pod(dst) {
            return NextHop::Stack;
        }
        if self.pod_cidr.contains(&dst) {
            return NextHop::Tun;
        }
        match self.peers.iter().position(|p| p.pod_cidr.contains(&dst)) {
            Some(i) => NextHop::Peer(i),
            None => NextHop::Tun,
        }
    }

    /// The peer with underlay address `ip`.
    pub fn peer_by_underlay(&self, ip: Ipv4Addr) -> Option<(usize, &Peer)> {
        self.peers
            .iter()
            .enumerate()
            .find(|(_, p)| p.underlay_ip == ip)
    }

    /// Whether `ip` is a pod this router serves in process.
    #[inline]
    pub fn is_stack_pod(&self, ip: Ipv4Addr) -> bool {
        !self.stack_pods.is_empty() && self.stack_pods.binary_search(&ip).is_ok()
    }

    /// Whether a flow from `src` must be masqueraded to reach a Service:
    /// sources outside the cluster's pod CIDR (the node itself, anything
    /// routed to it) and the node's own gateway address, whose replies would
    /// otherwise be delivered locally without passing the router (what
    /// kube-proxy's `--cluster-cidr` masquerade rule is for).
    pub fn needs_masquerade(&self, src: Ipv4Addr) -> bool {
        !self.cluster_pod_cidr.contains(&src) || src == self.gateway
    }

    /// Whether the router believes a packet's (validated) source enough to
    /// answer it from a router-hosted pod: the cluster's pods (sources in
    /// pod CIDRs are checked against the pods on every ingress) and this
    /// node itself (its underlay address and gateway, which the kernel
    /// never accepts as a source from a pod's veth). Any other address
    /// could be a pod's spoof of a victim.
    pub fn is_trusted_source(&self, src: Ipv4Addr) -> bool {
        self.cluster_pod_cidr.contains(&src) || src == self.underlay_ip || src == self.gateway
    }

    /// Whether a packet read from the TUN device may carry source `src`: a
    /// source inside this node's pod CIDR must be one of its pods (or the
    /// node's gateway address), and a source in another node's pod CIDR
    /// never comes from this node's kernel (those arrive over the overlay):
    /// anything else is a pod lying about itself.
    pub fn is_valid_local_source(&self, src: Ipv4Addr) -> bool {
        if self.pod_cidr.contains(&src) {
            // A router-hosted pod (the cluster DNS) lives in the router, not
            // behind the TUN device: its address from there is a spoof.
            src == self.gateway
                || (self.local_pods.binary_search(&src).is_ok() && !self.is_stack_pod(src))
        } else {
            !self.cluster_pod_cidr.contains(&src)
        }
    }
}
