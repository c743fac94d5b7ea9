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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use ipnet::Ipv4Net;
use xxhash_rust::xxh3::xxh3_64_with_seed;

mod frontends;
mod lazy;
pub mod maglev;

pub use lazy::LazyMaglev;
pub use maglev::{Maglev, TableSize, TableSizing};

use crate::model::Model;
use crate::packet::{FlowKey, PROTO_ICMP};
use crate::route::Topology;
use cluster::{Cluster, ObjectKey, TrafficPolicy};
use frontends::{frontends, has_node_ports, Built};

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

/// A frontend: address, port and IP protocol.
pub type FrontendKey = (Ipv4Addr, u16, u8);

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
    maglev: LazyMaglev,
}

impl ServicePortEntry {
    /// Creates an entry and builds its Maglev table (of the default size).
    pub fn new(
        name: String,
        frontend_key: (Ipv4Addr, u16, u8),
        frontend: Frontend,
        endpoints: Vec<SocketAddrV4>,
    ) -> Self {
        let mut tables = Tables::new(TableSizing::ByEndpoints, Build::Now);
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
        let i = self.maglev().pick(flow_hash(flow))?;
        self.endpoints.get(i).copied()
    }

    /// The frontend: address, port and IP protocol.
    pub fn key(&self) -> FrontendKey {
        (self.vip, self.port, self.proto)
    }

    /// The Maglev table endpoints are picked from (built now if it was
    /// not yet).
    #[inline]
    pub fn maglev(&self) -> &Maglev {
        self.maglev.get(&self.endpoints)
    }

    /// The table, built or not.
    pub fn lazy_maglev(&self) -> &LazyMaglev {
        &self.maglev
    }
}

/// When a new Maglev table is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    /// Now: a change to a running router's Services is programmed whole,
    /// so the first packet after it never waits for a table.
    Now,
    /// On first use (or by [`ServiceTable::warm_up`]): a whole table's
    /// build at start-up serves sooner.
    Lazily,
}

/// Maglev tables, built once per set of endpoints: a Service port's
/// ClusterIP, NodePorts, LoadBalancer and external IPs usually share their
/// endpoints, and so share one table.
struct Tables {
    size: TableSizing,
    build: Build,
    built: HashMap<Vec<SocketAddrV4>, LazyMaglev>,
}

impl Tables {
    fn new(size: TableSizing, build: Build) -> Self {
        Self {
            size,
            build,
            built: HashMap::new(),
        }
    }

    /// Keeps the tables of `entries` that have the size they would get
    /// now, for reuse.
    fn keep<'a>(&mut self, entries: impl IntoIterator<Item = &'a ServicePortEntry>) {
        for e in entries {
            if e.maglev.size() == self.size.size_for(e.endpoints.len()) {
                self.built
                    .entry(e.endpoints.clone())
                    .or_insert_with(|| e.maglev.clone());
            }
        }
    }

    /// The table for `endpoints` (sorted, deduplicated).
    fn get(&mut self, endpoints: &[SocketAddrV4]) -> LazyMaglev {
        if let Some(m) = self.built.get(endpoints) {
            if self.build == Build::Now {
                m.get(endpoints);
            }
            return m.clone();
        }
        let size = self.size.size_for(endpoints.len());
        let m = LazyMaglev::new(endpoints, size, self.build == Build::Now);
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

/// Who claims a frontend. Two Services may claim the same address and
/// port (a shared external IP, say); the greatest claim wins, which is the
/// one a build over the Services in key order writes last, so an update
/// gives the same table as a build from scratch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Claim {
    service: ObjectKey,
    /// The frontend's place in the Service's build order.
    ordinal: usize,
}

/// A frontend's entry and who claims it.
#[derive(Debug, Clone)]
struct Claimed {
    claim: Claim,
    /// Whether the address is a virtual IP (see `Built::vip`).
    vip: bool,
    entry: ServicePortEntry,
}

/// What one Service's update changed, for the stale-UDP cleanup: the
/// tracked UDP flows that may now point at an endpoint their frontend no
/// longer has are those *to* an address in `frontend_ips` (a frontend
/// appeared or went, or an address started or stopped being a virtual IP)
/// and those *towards* an endpoint address in `backend_ips` (an endpoint a
/// frontend lost).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FrontendDiff {
    pub(crate) frontend_ips: BTreeSet<Ipv4Addr>,
    pub(crate) backend_ips: BTreeSet<Ipv4Addr>,
}

impl FrontendDiff {
    /// Adds `other`'s addresses.
    pub(crate) fn extend(&mut self, other: Self) {
        self.frontend_ips.extend(other.frontend_ips);
        self.backend_ips.extend(other.backend_ips);
    }
}

/// The key `insert` claims frontends with: lower than any Service's.
fn manual_key() -> ObjectKey {
    ObjectKey::new("", "")
}

/// All Service ports of the cluster, indexed by VIP, port and protocol,
/// and which frontends each Service holds, so that one Service is updated
/// without touching the others.
#[derive(Debug, Clone, Default)]
pub struct ServiceTable {
    service_cidr: Option<Ipv4Net>,
    size: TableSizing,
    /// Virtual IPs, with how many frontend claims use each.
    vips: HashMap<Ipv4Addr, usize>,
    /// The winning claim of each frontend.
    ports: HashMap<FrontendKey, Claimed>,
    /// Claims that lost to another on the same frontend (rare).
    shadowed: HashMap<FrontendKey, Vec<Claimed>>,
    /// Service key -> the frontends it claims.
    by_service: HashMap<ObjectKey, Vec<FrontendKey>>,
    /// Services with NodePort frontends (which depend on the nodes).
    node_port_services: HashSet<ObjectKey>,
    /// Claims made by [`ServiceTable::insert`].
    manual: usize,
    /// Frontends whose Maglev table a whole build left for later, for
    /// [`ServiceTable::warm_up`].
    unbuilt: Vec<FrontendKey>,
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
        Self::from_cluster_with(cluster, node, TableSizing::ByEndpoints)
    }

    /// [`ServiceTable::from_cluster`] with Maglev tables sized by `size`.
    pub fn from_cluster_with(
        cluster: &Cluster,
        node: Option<&Topology>,
        size: TableSizing,
    ) -> Self {
        Self::build(
            &Model::from_cluster(cluster),
            node,
            Tables::new(size, Build::Lazily),
        )
    }

    /// [`ServiceTable::from_cluster`] for a changed cluster, keeping this
    /// table's Maglev tables for every set of
    /// endpoints that did not change: a change then costs a table build
    /// (a fraction of a millisecond) per Service port whose endpoints
    /// changed, not per Service port of the cluster.
    pub fn rebuild(&self, cluster: &Cluster, node: Option<&Topology>) -> Self {
        self.rebuild_from(&Model::from_cluster(cluster), node)
    }

    /// [`ServiceTable::rebuild`] from a [`Model`].
    pub fn rebuild_from(&self, model: &Model, node: Option<&Topology>) -> Self {
        let mut tables = Tables::new(self.size, Build::Lazily);
        tables.keep(self.all_claims().map(|c| &c.entry));
        Self::build(model, node, tables)
    }

    /// The table of a [`Model`]'s Services.
    pub fn from_model(model: &Model, node: Option<&Topology>) -> Self {
        Self::build(
            model,
            node,
            Tables::new(TableSizing::ByEndpoints, Build::Lazily),
        )
    }

    fn build(model: &Model, node: Option<&Topology>, mut tables: Tables) -> Self {
        let mut table = Self::new(model.service_cidr);
        table.size = tables.size;
        for (key, svc) in model.services() {
            let built = frontends(svc, |p| model.endpoints(svc, p), node, &mut tables);
            table.set_service(key, has_node_ports(svc), built);
        }
        table.unbuilt = table
            .ports
            .iter()
            .filter(|(_, c)| !c.entry.maglev.is_built())
            .map(|(k, _)| *k)
            .collect();
        table
    }

    /// Builds up to `budget` of the Maglev tables a whole build left for
    /// later (a shell calls this when it is idle, so that tables are ready
    /// before their first packet); returns how many are still unbuilt.
    pub fn warm_up(&mut self, budget: usize) -> usize {
        let mut done = 0;
        while done < budget {
            let Some(key) = self.unbuilt.pop() else { break };
            if let Some(c) = self.ports.get(&key) {
                if !c.entry.maglev.is_built() {
                    c.entry.maglev();
                    done += 1;
                }
            }
        }
        self.unbuilt.len()
    }

    /// Recomputes Service `key` from `model` (removes it if the model has
    /// no such Service): its frontends and their endpoints. Maglev tables
    /// are kept for the endpoint sets the Service already had.
    pub(crate) fn update_service(
        &mut self,
        model: &Model,
        key: &ObjectKey,
        node: Option<&Topology>,
    ) -> FrontendDiff {
        let mut tables = Tables::new(self.size, Build::Now);
        let mine = self.by_service.get(key).into_iter().flatten();
        tables.keep(mine.flat_map(|k| self.claims_at(k, key)).map(|c| &c.entry));
        let (node_ports, built) = match model.service_by_key(key) {
            Some(svc) => (
                has_node_ports(svc),
                frontends(svc, |p| model.endpoints(svc, p), node, &mut tables),
            ),
            None => (false, Vec::new()),
        };
        self.set_service(key, node_ports, built)
    }

    /// The Services with NodePort frontends (to update when the nodes change).
    pub(crate) fn node_port_services(&self) -> impl Iterator<Item = &ObjectKey> {
        self.node_port_services.iter()
    }

    /// Every claim, winning or not.
    fn all_claims(&self) -> impl Iterator<Item = &Claimed> {
        self.ports.values().chain(self.shadowed.values().flatten())
    }

    /// The claims of Service `service` at frontend `key`.
    fn claims_at<'a>(
        &'a self,
        key: &FrontendKey,
        service: &'a ObjectKey,
    ) -> impl Iterator<Item = &'a Claimed> {
        self.ports
            .get(key)
            .into_iter()
            .chain(self.shadowed.get(key).into_iter().flatten())
            .filter(move |c| &c.claim.service == service)
    }

    /// Replaces Service `key`'s frontends with `built`, and reports what
    /// changed for the frontends involved.
    fn set_service(
        &mut self,
        key: &ObjectKey,
        node_ports: bool,
        built: Vec<Built>,
    ) -> FrontendDiff {
        let old = self.by_service.remove(key).unwrap_or_default();
        let new: Vec<FrontendKey> = built.iter().map(|b| b.entry.key()).collect();
        let mut involved: Vec<FrontendKey> = old.iter().chain(&new).copied().collect();
        involved.sort_unstable();
        involved.dedup();
        let before: Vec<(Option<Vec<SocketAddrV4>>, bool)> =
            involved.iter().map(|k| self.state_of(k)).collect();
        for k in &old {
            self.release(k, key);
        }
        for (ordinal, b) in built.into_iter().enumerate() {
            let claim = Claim {
                service: key.clone(),
                ordinal,
            };
            self.claim(claim, b.vip, b.entry);
        }
        if !new.is_empty() {
            self.by_service.insert(key.clone(), new);
        }
        if node_ports {
            self.node_port_services.insert(key.clone());
        } else {
            self.node_port_services.remove(key);
        }
        let mut diff = FrontendDiff::default();
        for (k, (old_eps, old_vip)) in involved.iter().zip(before) {
            let (new_eps, new_vip) = self.state_of(k);
            match (old_eps, new_eps) {
                (Some(old_eps), Some(new_eps)) => diff.backend_ips.extend(
                    old_eps
                        .iter()
                        .filter(|e| new_eps.binary_search(e).is_err())
                        .map(|e| *e.ip()),
                ),
                (None, None) => {}
                _ => {
                    diff.frontend_ips.insert(k.0);
                }
            }
            if old_vip != new_vip {
                diff.frontend_ips.insert(k.0);
            }
        }
        diff
    }

    /// The endpoints served at frontend `key` (if any) and whether its
    /// address is a virtual IP.
    fn state_of(&self, key: &FrontendKey) -> (Option<Vec<SocketAddrV4>>, bool) {
        (
            self.ports.get(key).map(|c| c.entry.endpoints.clone()),
            self.vips.contains_key(&key.0),
        )
    }

    /// Adds a claim on its frontend; the greatest claim there wins.
    fn claim(&mut self, claim: Claim, vip: bool, entry: ServicePortEntry) {
        let key = entry.key();
        if vip {
            *self.vips.entry(key.0).or_default() += 1;
        }
        let new = Claimed { claim, vip, entry };
        let loser = match self.ports.get_mut(&key) {
            None => {
                self.ports.insert(key, new);
                return;
            }
            Some(current) if new.claim > current.claim => std::mem::replace(current, new),
            Some(_) => new,
        };
        self.shadowed.entry(key).or_default().push(loser);
    }

    /// Removes every claim of `service` on frontend `key`; the greatest
    /// remaining claim, if any, wins.
    fn release(&mut self, key: &FrontendKey, service: &ObjectKey) {
        let mut released = Vec::new();
        if let Some(list) = self.shadowed.get_mut(key) {
            list.retain(|c| {
                let mine = &c.claim.service == service;
                if mine {
                    released.push(c.vip);
                }
                !mine
            });
        }
        if self
            .ports
            .get(key)
            .is_some_and(|c| &c.claim.service == service)
        {
            if let Some(c) = self.ports.remove(key) {
                released.push(c.vip);
            }
            let next = self.shadowed.get_mut(key).and_then(|list| {
                let best = (0..list.len()).max_by(|&a, &b| list[a].claim.cmp(&list[b].claim))?;
                Some(list.swap_remove(best))
            });
            if let Some(next) = next {
                self.ports.insert(*key, next);
            }
        }
        if self.shadowed.get(key).is_some_and(Vec::is_empty) {
            self.shadowed.remove(key);
        }
        for _ in released.into_iter().filter(|vip| *vip) {
            if let Some(n) = self.vips.get_mut(&key.0) {
                *n -= 1;
                if *n == 0 {
                    self.vips.remove(&key.0);
                }
            }
        }
    }

    /// Adds (or replaces) one Service port, outside any Service (tests,
    /// tools): it wins over earlier inserts, and loses to a Service's
    /// claim on the same frontend.
    pub fn insert(&mut self, entry: ServicePortEntry) {
        let service = manual_key();
        self.release(&entry.key(), &service);
        self.manual += 1;
        let claim = Claim {
            service,
            ordinal: self.manual,
        };
        self.claim(claim, true, entry);
    }

    /// Classifies a packet's destination.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> ServiceLookup<'_> {
        if !self.vips.contains_key(&key.dst) {
            if self.service_cidr.is_some_and(|c| c.contains(&key.dst)) {
                return ServiceLookup::NoSuchServiceIp;
            }
            // Not a virtual IP; maybe a NodePort on this node's address.
            return match self.ports.get(&(key.dst, key.dport, key.proto)) {
                Some(c) if key.proto != PROTO_ICMP => ServiceLookup::Port(&c.entry),
                _ => ServiceLookup::NotServiceIp,
            };
        }
        if key.proto == PROTO_ICMP {
            return ServiceLookup::Icmp;
        }
        match self.ports.get(&(key.dst, key.dport, key.proto)) {
            Some(c) => ServiceLookup::Port(&c.entry),
            None => ServiceLookup::PortNotServed,
        }
    }

    /// All Service ports (the winning one of each frontend), ordered by
    /// address, port and protocol.
    pub fn entries(&self) -> Vec<&ServicePortEntry> {
        let mut out: Vec<&ServicePortEntry> = self.ports.values().map(|c| &c.entry).collect();
        out.sort_unstable_by_key(|e| e.key());
        out
    }

    /// The frontends Service `key` claims (its ClusterIP ports, NodePorts,
    /// LoadBalancer and external IPs), in build order.
    pub fn frontends_of(&self, key: &ObjectKey) -> &[FrontendKey] {
        self.by_service.get(key).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests;
