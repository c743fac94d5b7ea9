//! [`Node`]: everything one node's router does without I/O: the
//! [`Dataplane`] plus the pods the router hosts in process (the cluster
//! DNS, see [`crate::dns`]).
//!
//! # Contract
//!
//! The same as [`Dataplane`]'s (see [`crate::engine`]), with the same
//! verbs and signatures: [`Node::handle_packet`], [`Node::handle_timeout`],
//! [`Node::apply`]; after any of them drain [`Node::poll_transmit`], then
//! re-read [`Node::poll_timeout`]. Still sans-IO: no clock, no sockets.
//!
//! # Router-hosted pods
//!
//! A pod labelled [`ROUTER_HOSTED_LABEL`](cluster::ROUTER_HOSTED_LABEL)
//! on this node has no network namespace: the node keeps a smoltcp
//! [`VirtualHost`] for it, serving DNS on UDP and TCP port 53 (and on the
//! pod's declared container ports) from the current cluster. The data plane
//! routes packets for such a pod, after the usual Service DNAT, to
//! [`Egress::Stack`]; the node hands them to the pod's host at once and
//! feeds what the host sends back through the data plane as
//! [`Ingress::Stack`] (un-NAT of replies, encapsulation to other nodes),
//! queueing the results for [`Node::poll_transmit`]. So outside the node a
//! [`Transmit`] never has [`Egress::Stack`], and a verdict
//! `Forward(Egress::Stack { .. })` only says "delivered in process, nothing
//! to send".
//!
//! A host is created on its pod's first packet (that is when the node first
//! learns the time); [`Node::apply`] keeps the hosts of pods that remain
//! (their TCP connections go on), drops those of pods that are gone, and
//! gives every host a handler answering from the new cluster.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Instant;

use log::{debug, trace};
use netstack::{DnsHandler, DnsTransport, HostConfig, VirtualHost};

use crate::conntrack::{ConnTrack, CtChange, FlowCursor, FlowRecord, SavedEntry};
use crate::dns;
use crate::engine::{Dataplane, DataplaneConfig, Egress, Ingress, Transmit, UnknownNode, Verdict};
use crate::model::Model;
use crate::service::ServiceTable;
use crate::stats::Stats;
use crate::wire::buf::PacketBuf;
use cluster::{Cluster, ClusterChange, Pod, Protocol};

/// The port a router-hosted pod always serves DNS on.
pub const DNS_PORT: u16 = 53;

/// Upper bound on data plane / host exchanges settled within one call (a
/// host answering itself through a Service could otherwise loop).
const MAX_SETTLE_ROUNDS: usize = 64;

/// A router-hosted pod as the cluster describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostedPod {
    name: String,
    /// DNS is served on these ports (UDP and TCP).
    ports: Vec<u16>,
}

/// A router-hosted pod's host, once created.
struct Host {
    pod: HostedPod,
    host: VirtualHost,
    /// When the host next needs [`VirtualHost::poll`].
    deadline: Option<Instant>,
}

/// One node's router core: the data plane and its in-process pods. See the
/// module documentation.
pub struct Node {
    dataplane: Dataplane,
    node: String,
    /// What the DNS answers from: the data plane's model, shared.
    model: Arc<RwLock<Model>>,
    /// This node's pods' gateway and MTU, for new hosts.
    gateway: Ipv4Addr,
    pod_mtu: usize,
    /// Router-hosted pods of this node, by IP.
    hosted: BTreeMap<Ipv4Addr, HostedPod>,
    /// Their hosts, created on first use.
    hosts: BTreeMap<Ipv4Addr, Host>,
    /// Packets for hosts, not yet handed over.
    to_hosts: VecDeque<(Ipv4Addr, Vec<u8>)>,
    transmits: VecDeque<Transmit>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node", &self.node)
            .field("hosted", &self.hosted)
            .field("hosts", &self.hosts.keys().collect::<Vec<_>>())
            .field("transmits", &self.transmits.len())
            .finish_non_exhaustive()
    }
}

/// The DNS handler of a router-hosted pod: answers from the node's
/// current model (read-locked per query; the node updates it per change).
fn dns_handler(model: Arc<RwLock<Model>>) -> DnsHandler {
    Box::new(move |query, transport| {
        let model = model.read().unwrap_or_else(PoisonError::into_inner);
        match transport {
            DnsTransport::Udp => dns::answer_udp(query, &*model),
            DnsTransport::Tcp => dns::answer(query, &*model),
        }
    })
}

/// `p` as a router-hosted pod of `node`, if it is one.
fn hosted_pod(p: &Pod, node: &str) -> Option<HostedPod> {
    if p.node != node || !p.is_router_hosted() {
        return None;
    }
    let mut ports: Vec<u16> = std::iter::once(DNS_PORT)
        .chain(
            p.ports
                .iter()
                .filter(|cp| matches!(cp.protocol, Protocol::Udp | Protocol::Tcp))
                .map(|cp| cp.container_port),
        )
        .collect();
    ports.sort_unstable();
    ports.dedup();
    Some(HostedPod {
        name: p.name.clone(),
        ports,
    })
}

/// The router-hosted pods of `node` among `pods`.
fn hosted_pods<'a>(
    pods: impl Iterator<Item = &'a Pod>,
    node: &str,
) -> BTreeMap<Ipv4Addr, HostedPod> {
    pods.filter_map(|p| Some((p.ip, hosted_pod(p, node)?)))
        .collect()
}

impl Node {
    /// Node `node` of `cluster`: its data plane, and hosts for its
    /// router-hosted pods.
    pub fn new(
        config: &DataplaneConfig,
        cluster: &Cluster,
        node: &str,
    ) -> Result<Self, UnknownNode> {
        let dataplane = Dataplane::new(config, cluster, node)?;
        let me = cluster
            .node(node)
            .ok_or_else(|| UnknownNode(node.to_owned()))?;
        Ok(Self {
            model: dataplane.shared_model(),
            dataplane,
            node: node.to_owned(),
            gateway: me.gateway(),
            pod_mtu: usize::from(cluster.overlay.pod_mtu()),
            hosted: hosted_pods(cluster.pods.iter(), node),
            hosts: BTreeMap::new(),
            to_hosts: VecDeque::new(),
            transmits: VecDeque::new(),
        })
    }

    /// Applies a new cluster state: the data plane's (see
    /// [`Dataplane::apply`]), the set of router-hosted pods, and what the
    /// DNS answers.
    pub fn apply(&mut self, cluster: &Cluster) -> Result<(), UnknownNode> {
        self.dataplane.apply(cluster)?;
        self.hosted = hosted_pods(cluster.pods.iter(), &self.node);
        self.drop_changed_hosts();
        Ok(())
    }

    /// Applies one object's change (a Kubernetes watch event): the data
    /// plane's (see [`Dataplane::apply_change`]: only what depends on the
    /// object), and for a pod of this node its in-process host. The DNS
    /// answers from the updated model at once.
    pub fn apply_change(&mut self, change: &ClusterChange) -> Result<(), UnknownNode> {
        let old = match change {
            ClusterChange::Pod(p) => self.model().pod(&p.namespace, &p.name).cloned(),
            ClusterChange::PodDeleted(key) => self.model().pod(&key.namespace, &key.name).cloned(),
            _ => None,
        };
        self.dataplane.apply_change(change)?;
        let new = match change {
            ClusterChange::Pod(p) => Some(p),
            _ => None,
        };
        if old.is_none() && new.is_none() {
            return Ok(());
        }
        for p in old.iter().chain(new) {
            self.hosted.remove(&p.ip);
        }
        // Another pod of this node may hold the address a changed pod
        // released (the model has this node's pods, so this is cheap).
        let model = Arc::clone(&self.model);
        let model = model.read().unwrap_or_else(PoisonError::into_inner);
        for p in old.iter().chain(new) {
            let holder = model.pods().filter(|q| q.ip == p.ip);
            self.hosted.extend(hosted_pods(holder, &self.node));
        }
        drop(model);
        self.drop_changed_hosts();
        Ok(())
    }

    /// Drops the hosts (and queued packets) of router-hosted pods that are
    /// gone or changed; the others keep their connections.
    fn drop_changed_hosts(&mut self) {
        let hosted = &self.hosted;
        self.hosts.retain(|ip, h| {
            let keep = hosted.get(ip) == Some(&h.pod);
            if !keep {
                debug!("dropping the in-process host of {} ({ip})", h.pod.name);
            }
            keep
        });
        self.to_hosts.retain(|(ip, _)| hosted.contains_key(ip));
    }

    /// The cluster objects this node serves (read-locked while held).
    pub fn model(&self) -> RwLockReadGuard<'_, Model> {
        self.dataplane.model()
    }

    /// The model, shared (a router's control socket answers `get` from it).
    pub fn shared_model(&self) -> Arc<RwLock<Model>> {
        Arc::clone(&self.model)
    }

    /// The answer the node's router-hosted DNS pods give to `query` (over
    /// TCP: not size-limited), from the node's current model.
    pub fn dns_answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        dns::answer(query, &*self.model())
    }

    /// Handles one packet, like [`Dataplane::handle_packet`]. A packet for
    /// a router-hosted pod is delivered to it here (the verdict is then
    /// `Forward(Egress::Stack { pod })`: nothing for the caller to send);
    /// what the pod answers is in [`Node::poll_transmit`].
    pub fn handle_packet(
        &mut self,
        now: Instant,
        ingress: Ingress,
        buf: &mut PacketBuf,
    ) -> Verdict {
        let verdict = self.dataplane.handle_packet(now, ingress, buf);
        if let Verdict::Forward(Egress::Stack { pod }) = verdict {
            // Straight from the caller's buffer; the host's device copies
            // it into its receive queue (netstack's `VirtualHost` owns its
            // packets), the one copy on the way in.
            self.host(now, pod).handle_packet(now, buf.data());
        } else if !self.dataplane.has_transmits() {
            // The common case: nothing for (or from) the in-process pods;
            // their timers are run by `handle_timeout`.
            return verdict;
        }
        self.settle(now);
        verdict
    }

    /// Expires conntrack entries and runs the hosts' timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.dataplane.handle_timeout(now);
        for h in self.hosts.values_mut() {
            if h.deadline.is_some_and(|d| d <= now) {
                h.host.poll(now);
            }
        }
        self.settle(now);
    }

    /// The next packet to send (never to [`Egress::Stack`]).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When to call [`Node::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.hosts
            .values()
            .filter_map(|h| h.deadline)
            .chain(self.dataplane.poll_timeout())
            .min()
    }

    /// Moves packets between the data plane and the hosts until neither has
    /// anything left for the other, queueing what leaves the node.
    fn settle(&mut self, now: Instant) {
        for _ in 0..MAX_SETTLE_ROUNDS {
            while let Some(t) = self.dataplane.poll_transmit() {
                match t.egress {
                    Egress::Stack { pod } => self.to_hosts.push_back((pod, t.packet)),
                    _ => self.transmits.push_back(t),
                }
            }
            let mut moved = !self.to_hosts.is_empty();
            while let Some((ip, packet)) = self.to_hosts.pop_front() {
                self.host(now, ip).handle_packet(now, &packet);
            }
            for (ip, h) in &mut self.hosts {
                while let Some(packet) = h.host.poll_transmit() {
                    moved = true;
                    // The host's packet is rewritten in its own `Vec` and
                    // sent on in it: no copy, except that encapsulating it
                    // for another node moves it once (it has no headroom).
                    let mut buf = PacketBuf::from_vec(packet);
                    match self.dataplane.handle_packet(now, Ingress::Stack, &mut buf) {
                        Verdict::Forward(Egress::Stack { pod }) => {
                            self.to_hosts.push_back((pod, buf.into_vec()));
                        }
                        Verdict::Forward(egress) => self.transmits.push_back(Transmit {
                            egress,
                            packet: buf.into_vec(),
                        }),
                        Verdict::Drop(reason) => {
                            trace!("{ip}: packet from the in-process pod dropped: {reason}");
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
        for h in self.hosts.values_mut() {
            h.deadline = h.host.poll_timeout(now);
        }
    }

    /// The host of router-hosted pod `ip`, created if need be.
    fn host(&mut self, now: Instant, ip: Ipv4Addr) -> &mut VirtualHost {
        let hosted = &self.hosted;
        let model = &self.model;
        let (gateway, mtu) = (self.gateway, self.pod_mtu);
        &mut self
            .hosts
            .entry(ip)
            .or_insert_with(|| {
                let pod = hosted.get(&ip).cloned().unwrap_or_else(|| HostedPod {
                    name: ip.to_string(),
                    ports: vec![DNS_PORT],
                });
                debug!(
                    "in-process host for {} ({ip}): DNS on ports {:?}",
                    pod.name, pod.ports
                );
                let mut config = HostConfig::new(pod.name.clone(), ip, gateway);
                config.mtu = mtu;
                let mut host = VirtualHost::new(config, now);
                for &port in &pod.ports {
                    host.serve_dns(port, dns_handler(Arc::clone(model)));
                }
                Host {
                    pod,
                    host,
                    deadline: None,
                }
            })
            .host
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Counters (the data plane's).
    pub fn stats(&self) -> &Stats {
        self.dataplane.stats()
    }

    /// The conntrack table (read-only).
    pub fn conntrack(&self) -> &ConnTrack {
        self.dataplane.conntrack()
    }

    /// The conntrack table like `conntrack -L`; see
    /// [`Dataplane::conntrack_listing`].
    pub fn conntrack_listing(&self, now: Instant) -> Vec<FlowRecord> {
        self.dataplane.conntrack_listing(now)
    }

    /// One chunk of the conntrack table; see
    /// [`Dataplane::conntrack_records`].
    pub fn conntrack_records(
        &self,
        now: Instant,
        from: FlowCursor,
        max: usize,
    ) -> (Vec<FlowRecord>, Option<FlowCursor>) {
        self.dataplane.conntrack_records(now, from, max)
    }

    /// See [`Dataplane::set_conntrack_journaling`].
    pub fn set_conntrack_journaling(&mut self, on: bool) {
        self.dataplane.set_conntrack_journaling(on);
    }

    /// See [`Dataplane::drain_conntrack_changes`].
    pub fn drain_conntrack_changes(&mut self, out: &mut Vec<CtChange>) -> bool {
        self.dataplane.drain_conntrack_changes(out)
    }

    /// See [`Dataplane::conntrack_snapshot`].
    pub fn conntrack_snapshot(&self) -> Vec<SavedEntry> {
        self.dataplane.conntrack_snapshot()
    }

    /// See [`Dataplane::restore_conntrack`].
    pub fn restore_conntrack(
        &mut self,
        saved: impl IntoIterator<Item = SavedEntry>,
        now: Instant,
    ) -> (usize, usize) {
        self.dataplane.restore_conntrack(saved, now)
    }

    /// The Service table.
    pub fn services(&self) -> &ServiceTable {
        self.dataplane.services()
    }

    /// See [`Dataplane::warm_up`].
    pub fn warm_up(&mut self, budget: usize) -> usize {
        self.dataplane.warm_up(budget)
    }

    /// The data plane.
    pub fn dataplane(&self) -> &Dataplane {
        &self.dataplane
    }

    /// The in-process host of router-hosted pod `ip`, if it has been
    /// created (on the pod's first packet).
    pub fn host_of(&self, ip: Ipv4Addr) -> Option<&VirtualHost> {
        self.hosts.get(&ip).map(|h| &h.host)
    }

    /// The counters with the node's own filled in: the hosted DNS pods'
    /// TCP connections and the conntrack half-open gauge.
    pub fn stats_snapshot(&self) -> Stats {
        let mut s = self.dataplane.stats().clone();
        let dns: netstack::DnsTcpStats = self.hosts.values().map(|h| h.host.dns_tcp_stats()).sum();
        s.dns_tcp_open = dns.open as u64;
        s.dns_tcp_half_open = dns.half_open as u64;
        s.dns_tcp_shed = dns.refused + dns.evicted + dns.expired_half_open + dns.expired_idle;
        s.flows_half_open = self.dataplane.conntrack().half_open() as u64;
        s
    }

    /// DNS queries answered by this node's router-hosted pods (over the
    /// lifetime of their current hosts).
    pub fn dns_answered(&self) -> u64 {
        self.hosts.values().map(|h| h.host.dns_answered()).sum()
    }
}

#[cfg(test)]
mod tests;
