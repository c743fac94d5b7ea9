//! The Service table: which virtual IP and port lead to which endpoints, and
//! how a new flow picks one.
//!
//! Backend choice is deterministic per flow: a hash of the 5-tuple (fixed
//! seed) indexes a [`maglev`] lookup table (Eisenbud et al., NSDI 2016; the
//! scheme Cilium and IPVS `mh` use) of one size for every Service. Every
//! node, and a restarted router, picks the same endpoint for the same flow
//! (which matters for flows without a conntrack entry: after a restart, on
//! another node, UDP after a change); flows spread evenly (within 1% of the
//! table for up to 64 endpoints); and when one endpoint is added or removed,
//! the flows that must move (1/N of them) move, and of the others at most
//! ~1.3% (asserted < 2% by the property test in `tests/maglev.rs`).

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use ipnet::Ipv4Net;
use xxhash_rust::xxh3::xxh3_64_with_seed;

pub mod maglev;

pub use maglev::{Maglev, TableSize};

use crate::packet::{FlowKey, PROTO_ICMP};
use crate::route::Topology;
use cluster::{Cluster, ServiceType, SessionAffinity, TrafficPolicy};

/// The fixed seed of the flow hash: the same on every node and every run, so
/// backend choice survives restarts and agrees across nodes.
const FLOW_HASH_SEED: u64 = 0x6b75_6265_7072_6f78; // "kubeprox"

/// How traffic reached a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// The ClusterIP, from inside the cluster: the client IP is kept.
    ClusterIp,
    /// A NodePort on this node's address, a LoadBalancer ingress IP or an
    /// external IP, with the Service's `externalTrafficPolicy`.
    External(TrafficPolicy),
}

/// One Service port: its VIP, port and protocol, and its ready endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePortEntry {
    /// `namespace/name:port` (or `namespace/name` for an unnamed port), for logs.
    pub name: String,
    /// The ClusterIP.
    pub vip: Ipv4Addr,
    /// The Service port.
    pub port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// How traffic reaches it.
    pub frontend: Frontend,
    /// `sessionAffinity: ClientIP` and its timeout.
    pub affinity: Option<Duration>,
    /// Only this node's endpoints are used (a `Local` traffic policy);
    /// without one, traffic is dropped rather than rejected.
    pub local_only: bool,
    /// Ready endpoints, sorted.
    pub endpoints: Vec<SocketAddrV4>,
    maglev: Maglev,
}

impl ServicePortEntry {
    /// Creates an entry and builds its Maglev table (of the default size).
    pub fn new(
        name: String,
        frontend_key: (Ipv4Addr, u16, u8),
        frontend: Frontend,
        endpoints: Vec<SocketAddrV4>,
    ) -> Self {
        let mut tables = Tables::new(TableSize::DEFAULT);
        Self::with_tables(name, frontend_key, frontend, endpoints, &mut tables)
    }

    /// Creates an entry, taking its Maglev table from `tables`.
    fn with_tables(
        name: String,
        (vip, port, proto): (Ipv4Addr, u16, u8),
        frontend: Frontend,
        mut endpoints: Vec<SocketAddrV4>,
        tables: &mut Tables,
    ) -> Self {
        endpoints.sort();
        endpoints.dedup();
        let maglev = tables.get(&endpoints);
        Self {
            name,
            vip,
            port,
            proto,
            frontend,
            affinity: None,
            local_only: false,
            endpoints,
            maglev,
        }
    }

    /// Sets `sessionAffinity: ClientIP` with this timeout.
    pub fn with_affinity(mut self, timeout: Option<Duration>) -> Self {
        self.affinity = timeout;
        self
    }

    /// Uses only this node's endpoints (a `Local` traffic policy).
    pub fn with_local_only(mut self, local_only: bool) -> Self {
        self.local_only = local_only;
        self
    }

    /// Whether `endpoint` is one of this port's endpoints.
    pub fn has_endpoint(&self, endpoint: SocketAddrV4) -> bool {
        self.endpoints.binary_search(&endpoint).is_ok()
    }

    /// The endpoint for a flow, or `None` when there are no endpoints.
    #[inline]
    pub fn pick(&self, flow: &FlowKey) -> Option<SocketAddrV4> {
        let i = self.maglev.pick(flow_hash(flow))?;
        self.endpoints.get(i).copied()
    }

    /// The Maglev table endpoints are picked from.
    pub fn maglev(&self) -> &Maglev {
        &self.maglev
    }
}

/// Maglev tables of one size, built once per set of endpoints: a Service
/// port's ClusterIP, NodePorts, LoadBalancer and external IPs usually share
/// their endpoints, and so share one table.
struct Tables {
    size: TableSize,
    built: HashMap<Vec<SocketAddrV4>, Maglev>,
}

impl Tables {
    fn new(size: TableSize) -> Self {
        Self {
            size,
            built: HashMap::new(),
        }
    }

    /// Keeps the tables of `entries` that have this size, for reuse.
    fn keep(&mut self, entries: &[ServicePortEntry]) {
        for e in entries {
            let slots = e.maglev.slots().len();
            if slots == 0 || slots == self.size.get() {
                self.built
                    .entry(e.endpoints.clone())
                    .or_insert_with(|| e.maglev.clone());
            }
        }
    }

    /// The table for `endpoints` (sorted, deduplicated).
    fn get(&mut self, endpoints: &[SocketAddrV4]) -> Maglev {
        if let Some(m) = self.built.get(endpoints) {
            return m.clone();
        }
        let m = Maglev::new(endpoints, self.size);
        self.built.insert(endpoints.to_vec(), m.clone());
        m
    }
}

/// The hash that picks a flow's endpoint (xxh3 of the 5-tuple, fixed seed).
#[inline]
pub fn flow_hash(k: &FlowKey) -> u64 {
    let mut b = [0u8; 13];
    b[0] = k.proto;
    b[1..5].copy_from_slice(&k.src.octets());
    b[5..9].copy_from_slice(&k.dst.octets());
    b[9..11].copy_from_slice(&k.sport.to_be_bytes());
    b[11..13].copy_from_slice(&k.dport.to_be_bytes());
    xxh3_64_with_seed(&b, FLOW_HASH_SEED)
}

/// What the Service table says about a packet's destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceLookup<'a> {
    /// The destination is outside the Service CIDR.
    NotServiceIp,
    /// In the Service CIDR, but no Service has this IP: drop.
    NoSuchServiceIp,
    /// A Service IP, but ICMP (ping): drop; a VIP is not a host.
    Icmp,
    /// A Service IP on a port/protocol it does not serve: reject.
    PortNotServed,
    /// The Service port.
    Port(&'a ServicePortEntry),
}

/// All Service ports of the cluster, indexed by VIP, port and protocol.
#[derive(Debug, Clone, Default)]
pub struct ServiceTable {
    service_cidr: Option<Ipv4Net>,
    vips: HashSet<Ipv4Addr>,
    ports: HashMap<(Ipv4Addr, u16, u8), usize>,
    entries: Vec<ServicePortEntry>,
}

impl ServiceTable {
    /// An empty table for `service_cidr`.
    pub fn new(service_cidr: Ipv4Net) -> Self {
        Self {
            service_cidr: Some(service_cidr),
            ..Self::default()
        }
    }

    /// Builds the table from the cluster: every port of every Service, with
    /// the endpoints the Endpoints controller would publish. With a node's
    /// topology, also that node's NodePorts and every LoadBalancer and
    /// external IP, whose `externalTrafficPolicy: Local` keeps only the
    /// node's own endpoints.
    pub fn from_cluster(cluster: &Cluster, node: Option<&Topology>) -> Self {
        Self::from_cluster_with(cluster, node, TableSize::DEFAULT)
    }

    /// [`ServiceTable::from_cluster`] with Maglev tables of `size` slots.
    pub fn from_cluster_with(cluster: &Cluster, node: Option<&Topology>, size: TableSize) -> Self {
        Self::build(cluster, node, Tables::new(size))
    }

    /// [`ServiceTable::from_cluster`] for a changed cluster, keeping this
    /// table's Maglev tables (of the default size) for every set of
    /// endpoints that did not change: a change then costs a table build
    /// (a fraction of a millisecond) per Service port whose endpoints
    /// changed, not per Service port of the cluster.
    pub fn rebuild(&self, cluster: &Cluster, node: Option<&Topology>) -> Self {
        let mut tables = Tables::new(TableSize::DEFAULT);
        tables.keep(&self.entries);
        Self::build(cluster, node, tables)
    }

    fn build(cluster: &Cluster, node: Option<&Topology>, mut tables: Tables) -> Self {
        let mut table = Self::new(cluster.service_cidr);
        for svc in &cluster.services {
            if svc.headless || svc.service_type == ServiceType::ExternalName {
                // No virtual IP: DNS answers for these.
                continue;
            }
            for port in &svc.ports {
                let all = cluster.endpoints(svc, port);
                // The endpoints, or only those on node `on` (a Local policy).
                let addrs_on = |on: Option<&str>| -> Vec<SocketAddrV4> {
                    all.iter()
                        .filter(|e| on.is_none_or(|n| n == e.node))
                        .map(|e| SocketAddrV4::new(e.ip, e.port))
                        .collect()
                };
                let addrs = |local_only: bool| -> Vec<SocketAddrV4> {
                    addrs_on(if local_only {
                        node.map(|n| n.node.as_str())
                    } else {
                        None
                    })
                };
                let name = match &port.name {
                    Some(p) => format!("{}/{}:{p}", svc.namespace, svc.name),
                    None => format!("{}/{}", svc.namespace, svc.name),
                };
                let proto = port.protocol.ip_number();
                let affinity = match svc.session_affinity {
                    SessionAffinity::None => None,
                    SessionAffinity::ClientIP { timeout_seconds } => {
                        Some(Duration::from_secs(u64::from(timeout_seconds)))
                    }
                };
                let internal_local =
                    node.is_some() && svc.internal_traffic_policy == TrafficPolicy::Local;
                table.insert(
                    ServicePortEntry::with_tables(
                        name.clone(),
                        (svc.cluster_ip, port.port, proto),
                        Frontend::ClusterIp,
                        addrs(internal_local),
                        &mut tables,
                    )
                    .with_affinity(affinity)
                    .with_local_only(internal_local),
                );
                let Some(node) = node else { continue };
                let policy = svc.external_traffic_policy;
                let local = policy == TrafficPolicy::Local;
                let external = |frontend: (Ipv4Addr, u16, u8), tables: &mut Tables| {
                    ServicePortEntry::with_tables(
                        name.clone(),
                        frontend,
                        Frontend::External(policy),
                        addrs(local),
                        tables,
                    )
                    .with_affinity(affinity)
                    .with_local_only(local)
                };
                if svc.service_type != ServiceType::ClusterIP {
                    if let Some(node_port) = port.node_port {
                        table.insert_node_port(external(
                            (node.underlay_ip, node_port, proto),
                            &mut tables,
                        ));
                        // A pod here reaching another node's NodePort is
                        // served here, as that node would serve it (with a
                        // Local policy: that node's endpoints), so the flow
                        // never leaves the overlay with a pod source the
                        // underlay cannot route back.
                        for peer in &node.peers {
                            let on = local.then_some(peer.name.as_str());
                            table.insert_node_port(
                                ServicePortEntry::with_tables(
                                    name.clone(),
                                    (peer.underlay_ip, node_port, proto),
                                    Frontend::External(policy),
                                    addrs_on(on),
                                    &mut tables,
                                )
                                .with_affinity(affinity)
                                .with_local_only(local),
                            );
                        }
                    }
                }
                for ip in svc.load_balancer_ips.iter().chain(&svc.external_ips) {
                    table.insert(external((*ip, port.port, proto), &mut tables));
                }
            }
        }
        table
    }

    /// Adds a NodePort: served on the node's address, which stays a normal
    /// address for every other port.
    fn insert_node_port(&mut self, entry: ServicePortEntry) {
        let key = (entry.vip, entry.port, entry.proto);
        self.ports.insert(key, self.entries.len());
        self.entries.push(entry);
    }

    /// Adds (or replaces) one Service port.
    pub fn insert(&mut self, entry: ServicePortEntry) {
        let key = (entry.vip, entry.port, entry.proto);
        self.vips.insert(entry.vip);
        match self.ports.get(&key) {
            Some(&i) => self.entries[i] = entry,
            None => {
                self.ports.insert(key, self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    /// Classifies a packet's destination.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> ServiceLookup<'_> {
        if !self.vips.contains(&key.dst) {
            if self.service_cidr.is_some_and(|c| c.contains(&key.dst)) {
                return ServiceLookup::NoSuchServiceIp;
            }
            // Not a virtual IP; maybe a NodePort on this node's address.
            return match self.ports.get(&(key.dst, key.dport, key.proto)) {
                Some(&i) if key.proto != PROTO_ICMP => ServiceLookup::Port(&self.entries[i]),
                _ => ServiceLookup::NotServiceIp,
            };
        }
        if key.proto == PROTO_ICMP {
            return ServiceLookup::Icmp;
        }
        match self.ports.get(&(key.dst, key.dport, key.proto)) {
            Some(&i) => ServiceLookup::Port(&self.entries[i]),
            None => ServiceLookup::PortNotServed,
        }
    }

    /// All Service ports.
    pub fn entries(&self) -> &[ServicePortEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests;
