//! The Service table: which virtual IP and port lead to which endpoints, and
//! how a new flow picks one.
//!
//! Backend choice is deterministic per flow: a hash of the 5-tuple indexes a
//! Maglev lookup table (Eisenbud et al., NSDI 2016; the scheme Cilium and
//! IPVS `mh` use). Every node, and a restarted router, picks the same
//! endpoint for the same flow, flows spread evenly, and when an endpoint is
//! added or removed only about 1/N of the flows move.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use ipnet::Ipv4Net;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::packet::{FlowKey, PROTO_ICMP};
use crate::route::Topology;
use cluster::{Cluster, ServiceType, SessionAffinity, TrafficPolicy};

/// Maglev table sizes: primes, the smallest at least 100 x the endpoint
/// count is used (the paper's rule for < 1% imbalance), capped at the last.
const MAGLEV_SIZES: [usize; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131_071,
];

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
    maglev: Vec<u16>,
}

impl ServicePortEntry {
    /// Creates an entry and builds its Maglev table.
    pub fn new(
        name: String,
        (vip, port, proto): (Ipv4Addr, u16, u8),
        frontend: Frontend,
        mut endpoints: Vec<SocketAddrV4>,
    ) -> Self {
        endpoints.sort();
        endpoints.dedup();
        let maglev = maglev_table(&endpoints);
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
        if self.maglev.is_empty() {
            return None;
        }
        let slot = (flow_hash(flow) % self.maglev.len() as u64) as usize;
        self.endpoints.get(usize::from(self.maglev[slot])).copied()
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

/// Builds the Maglev lookup table for `endpoints` (empty for none).
fn maglev_table(endpoints: &[SocketAddrV4]) -> Vec<u16> {
    let n = endpoints.len().min(usize::from(u16::MAX));
    if n == 0 {
        return Vec::new();
    }
    let m = MAGLEV_SIZES
        .iter()
        .copied()
        .find(|&m| m >= 100 * n)
        .unwrap_or(MAGLEV_SIZES[MAGLEV_SIZES.len() - 1]);
    let perms: Vec<(usize, usize)> = endpoints[..n]
        .iter()
        .map(|e| {
            let mut b = [0u8; 6];
            b[..4].copy_from_slice(&e.ip().octets());
            b[4..].copy_from_slice(&e.port().to_be_bytes());
            let offset = (xxh3_64_with_seed(&b, 1) % m as u64) as usize;
            let skip = (xxh3_64_with_seed(&b, 2) % (m as u64 - 1)) as usize + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0usize; n];
    let mut table = vec![u16::MAX; m];
    let mut filled = 0;
    'fill: loop {
        for i in 0..n {
            let (offset, skip) = perms[i];
            let mut c = (offset + next[i] * skip) % m;
            while table[c] != u16::MAX {
                next[i] += 1;
                c = (offset + next[i] * skip) % m;
            }
            table[c] = i as u16;
            next[i] += 1;
            filled += 1;
            if filled == m {
                break 'fill;
            }
        }
    }
    table
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
                    ServicePortEntry::new(
                        name.clone(),
                        (svc.cluster_ip, port.port, proto),
                        Frontend::ClusterIp,
                        addrs(internal_local),
                    )
                    .with_affinity(affinity)
                    .with_local_only(internal_local),
                );
                let Some(node) = node else { continue };
                let policy = svc.external_traffic_policy;
                let local = policy == TrafficPolicy::Local;
                let external = |frontend: (Ipv4Addr, u16, u8)| {
                    ServicePortEntry::new(
                        name.clone(),
                        frontend,
                        Frontend::External(policy),
                        addrs(local),
                    )
                    .with_affinity(affinity)
                    .with_local_only(local)
                };
                if svc.service_type != ServiceType::ClusterIP {
                    if let Some(node_port) = port.node_port {
                        table.insert_node_port(external((node.underlay_ip, node_port, proto)));
                        // A pod here reaching another node's NodePort is
                        // served here, as that node would serve it (with a
                        // Local policy: that node's endpoints), so the flow
                        // never leaves the overlay with a pod source the
                        // underlay cannot route back.
                        for peer in &node.peers {
                            let on = local.then_some(peer.name.as_str());
                            table.insert_node_port(
                                ServicePortEntry::new(
                                    name.clone(),
                                    (peer.underlay_ip, node_port, proto),
                                    Frontend::External(policy),
                                    addrs_on(on),
                                )
                                .with_affinity(affinity)
                                .with_local_only(local),
                            );
                        }
                    }
                }
                for ip in svc.load_balancer_ips.iter().chain(&svc.external_ips) {
                    table.insert(external((*ip, port.port, proto)));
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

    /// Whether `ip` is a Service VIP.
    pub fn is_vip(&self, ip: Ipv4Addr) -> bool {
        self.vips.contains(&ip)
    }

    /// All Service ports.
    pub fn entries(&self) -> &[ServicePortEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PROTO_TCP;

    fn endpoints(n: u8) -> Vec<SocketAddrV4> {
        (0..n)
            .map(|i| SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 10 + i), 80))
            .collect()
    }

    fn flows(count: u16) -> impl Iterator<Item = FlowKey> {
        (0..count).map(|i| FlowKey {
            proto: PROTO_TCP,
            src: Ipv4Addr::new(10, 10, 1, 100 + (i % 50) as u8),
            dst: Ipv4Addr::new(10, 101, 182, 177),
            sport: 30000 + i,
            dport: 80,
        })
    }

    #[test]
    fn spread_is_even() {
        for n in [2u8, 3, 7] {
            let e = ServicePortEntry::new(
                "s".into(),
                (Ipv4Addr::new(10, 96, 0, 5), 80, 6),
                Frontend::ClusterIp,
                endpoints(n),
            );
            let mut counts = HashMap::new();
            let total = 20_000u16;
            for f in flows(total) {
                *counts.entry(e.pick(&f).expect("endpoint")).or_insert(0u32) += 1;
            }
            assert_eq!(counts.len(), usize::from(n), "every endpoint used");
            let expected = f64::from(total) / f64::from(n);
            for (ep, c) in counts {
                let dev = (f64::from(c) - expected).abs() / expected;
                assert!(
                    dev < 0.10,
                    "{n} endpoints: {ep} got {c}, expected ~{expected}"
                );
            }
        }
    }

    #[test]
    fn choice_is_deterministic_and_stable_when_an_endpoint_goes() {
        let all = endpoints(5);
        let a = ServicePortEntry::new(
            "s".into(),
            (Ipv4Addr::new(10, 96, 0, 5), 80, 6),
            Frontend::ClusterIp,
            all.clone(),
        );
        let b = ServicePortEntry::new(
            "s".into(),
            (Ipv4Addr::new(10, 96, 0, 5), 80, 6),
            Frontend::ClusterIp,
            all.clone(),
        );
        let removed = all[2];
        let fewer: Vec<_> = all.iter().copied().filter(|e| *e != removed).collect();
        let c = ServicePortEntry::new(
            "s".into(),
            (Ipv4Addr::new(10, 96, 0, 5), 80, 6),
            Frontend::ClusterIp,
            fewer,
        );
        let mut moved = 0;
        let mut kept = 0;
        for f in flows(5000) {
            let before = a.pick(&f).expect("endpoint");
            assert_eq!(Some(before), b.pick(&f), "same table, same choice");
            let after = c.pick(&f).expect("endpoint");
            assert_ne!(after, removed);
            if before != removed {
                kept += 1;
                if after != before {
                    moved += 1;
                }
            }
        }
        // Maglev: only a small share of the surviving flows move.
        assert!(moved * 100 / kept < 10, "{moved} of {kept} flows moved");
    }

    #[test]
    fn lookup_classifies_destinations() {
        let cidr: Ipv4Net = "10.96.0.0/12".parse().expect("cidr");
        let mut t = ServiceTable::new(cidr);
        let vip = Ipv4Addr::new(10, 101, 182, 177);
        t.insert(ServicePortEntry::new(
            "default/nginx-svc".into(),
            (vip, 80, 6),
            Frontend::ClusterIp,
            endpoints(2),
        ));
        let k = |dst, dport, proto| FlowKey {
            proto,
            src: Ipv4Addr::new(10, 10, 1, 100),
            dst,
            sport: 1,
            dport,
        };
        assert!(matches!(t.lookup(&k(vip, 80, 6)), ServiceLookup::Port(_)));
        assert_eq!(t.lookup(&k(vip, 81, 6)), ServiceLookup::PortNotServed);
        assert_eq!(t.lookup(&k(vip, 80, 17)), ServiceLookup::PortNotServed);
        assert_eq!(t.lookup(&k(vip, 0, 1)), ServiceLookup::Icmp);
        assert_eq!(
            t.lookup(&k(Ipv4Addr::new(10, 96, 7, 7), 80, 6)),
            ServiceLookup::NoSuchServiceIp
        );
        assert_eq!(
            t.lookup(&k(Ipv4Addr::new(10, 10, 1, 42), 80, 6)),
            ServiceLookup::NotServiceIp
        );
    }

    #[test]
    fn no_endpoints_picks_nothing() {
        let e = ServicePortEntry::new(
            "s".into(),
            (Ipv4Addr::new(10, 96, 0, 5), 80, 6),
            Frontend::ClusterIp,
            vec![],
        );
        assert_eq!(flows(10).filter_map(|f| e.pick(&f)).count(), 0);
    }
}
