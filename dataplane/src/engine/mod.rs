//! The data plane: a sans-IO state machine that decides, per packet, what
//! happens to it.
//!
//! # Contract
//!
//! [`Dataplane`] does no I/O: no sockets, no files, no clock, no threads.
//! The caller (the mio shell in `io`, or an in-process test) feeds it:
//!
//! - [`Dataplane::handle_packet`]`(now, ingress, buf)`: one IPv4 packet read
//!   from the TUN device. The packet is rewritten **in place** (NAT) and the
//!   returned [`Verdict`] says where to send it, or why it was dropped.
//! - [`Dataplane::handle_timeout`]`(now)`: when [`Dataplane::poll_timeout`]
//!   says so; expires conntrack entries.
//! - [`Dataplane::apply`]`(cluster)`: a new cluster state (Services,
//!   endpoints). Tracked flows keep their endpoint.
//!
//! After any `handle_*` call, drain [`Dataplane::poll_transmit`] until it
//! returns `None` (packets the router generated itself, such as a TCP RST
//! for a Service without endpoints), then re-read [`Dataplane::poll_timeout`].
//!
//! `now` must never go backwards between calls.
//!
//! # Per-packet path
//!
//! 1. Parse (malformed, fragmented or non-IPv4 packets are counted drops).
//! 2. Conntrack lookup by the packet's tuple: a hit gives the direction and
//!    the rewrite (DNAT forward, un-DNAT on replies).
//! 3. A miss is a new flow: if the destination is a Service IP, the Service
//!    table picks an endpoint (or rejects / drops); the flow is tracked and
//!    rewritten. Other destinations (pod to pod) are tracked unchanged.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Instant;

use log::{debug, trace};

use crate::affinity::AffinityTable;
use crate::conntrack::{
    ConnTrack, Direction, FlowCursor, FlowRecord, InsertError, TcpState, Timeouts, DEFAULT_CAPACITY,
};
use crate::overlay::{self, OVERLAY_HEADER_LEN};
use crate::route::{NextHop, Topology};
use crate::service::{flow_hash, Frontend, ServiceLookup, ServiceTable};
use crate::stats::{DropReason, Stats};
use crate::wire::buf::PacketBuf;
use crate::wire::packet::{self, FlowKey, Parsed, Transport, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::wire::reject;
use cluster::Cluster;
use cluster::TrafficPolicy;

/// Source ports used when a flow's source must be rewritten (masquerade, or
/// a tuple clash): Linux's default ephemeral range.
const NAT_PORT_FIRST: u16 = 32768;
const NAT_PORT_LAST: u16 = 60999;

/// Where a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// Read from the node's TUN device.
    Tun,
    /// A UDP datagram received on the overlay socket from this address: a
    /// VXLAN header, an Ethernet header and an IPv4 packet.
    Overlay {
        /// The sender's underlay address.
        from: Ipv4Addr,
    },
    /// Sent by a pod the router serves in process (the cluster DNS).
    Stack,
}

/// Where a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Written back to the node's TUN device; the node's kernel delivers it.
    Tun,
    /// Sent as a UDP datagram on the overlay socket to this node's underlay
    /// address; the packet already carries its VXLAN and Ethernet headers.
    Overlay {
        /// The peer node's underlay address.
        to: Ipv4Addr,
    },
    /// To the in-process pod with this IP (the cluster DNS).
    Stack {
        /// The pod's IP.
        pod: Ipv4Addr,
    },
}

/// What to do with the packet just handled.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (possibly rewritten) packet out of this egress.
    Forward(Egress),
    /// Drop it; counted under the reason.
    Drop(DropReason),
}

/// A packet the data plane generated itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub egress: Egress,
    /// The packet (with overlay headers when `egress` is the overlay).
    pub packet: Vec<u8>,
}

/// Settings of one node's data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataplaneConfig {
    /// Conntrack capacity.
    pub conntrack_capacity: usize,
    /// Conntrack timeouts.
    pub timeouts: Timeouts,
    /// Seed for the conntrack hash (randomness is injected, never global).
    pub seed: u64,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        Self {
            conntrack_capacity: DEFAULT_CAPACITY,
            timeouts: Timeouts::default(),
            seed: 0x5eed,
        }
    }
}

/// The node asked for is not in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node {0:?} is not in the cluster")]
pub struct UnknownNode(pub String);

/// One node's data plane. See the module documentation for the contract.
pub struct Dataplane {
    topology: Topology,
    services: ServiceTable,
    conntrack: ConnTrack,
    affinity: AffinityTable,
    stats: Stats,
    transmits: VecDeque<Transmit>,
}

impl Dataplane {
    /// The data plane of node `node`, serving `cluster`'s Services.
    pub fn new(
        config: &DataplaneConfig,
        cluster: &Cluster,
        node: &str,
    ) -> Result<Self, UnknownNode> {
        let topology = Topology::new(cluster, node).ok_or_else(|| UnknownNode(node.to_owned()))?;
        Ok(Self {
            services: ServiceTable::from_cluster(cluster, Some(&topology)),
            topology,
            conntrack: ConnTrack::new(config.conntrack_capacity, config.timeouts, config.seed),
            affinity: AffinityTable::new(config.conntrack_capacity),
            stats: Stats::default(),
            transmits: VecDeque::new(),
        })
    }

    /// Applies a new cluster state. Tracked flows keep their endpoints,
    /// except UDP flows whose endpoint is gone: those are forgotten at once,
    /// so the client's next datagram picks a live endpoint (the stale UDP
    /// conntrack problem Kubernetes fixed in kube-proxy many times).
    pub fn apply(&mut self, cluster: &Cluster) -> Result<(), UnknownNode> {
        let topology = Topology::new(cluster, &self.topology.node)
            .ok_or_else(|| UnknownNode(self.topology.node.clone()))?;
        self.services = ServiceTable::from_cluster(cluster, Some(&topology));
        self.topology = topology;
        let services = &self.services;
        let removed = self.conntrack.remove_where(|e| {
            if e.original.proto != PROTO_UDP || !e.is_nat() {
                return false;
            }
            let endpoint = e.translated(Direction::Original);
            match services.lookup(&e.original) {
                ServiceLookup::Port(sp) => !sp
                    .endpoints
                    .iter()
                    .any(|ep| *ep.ip() == endpoint.dst && ep.port() == endpoint.dport),
                ServiceLookup::NotServiceIp => false,
                _ => true,
            }
        });
        if removed > 0 {
            debug!("removed {removed} UDP conntrack entries to endpoints that are gone");
        }
        Ok(())
    }

    /// Handles one packet; see the module documentation. `buf` holds an IPv4
    /// packet (from the TUN device) or a VXLAN datagram's payload (from the
    /// overlay); on `Forward`, it holds what to send.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        ingress: Ingress,
        buf: &mut PacketBuf,
    ) -> Verdict {
        self.stats.received += 1;
        match self.process(now, ingress, buf) {
            Ok(egress) => {
                self.stats.forwarded += 1;
                Verdict::Forward(egress)
            }
            Err(reason) => {
                trace!("drop ({reason}), {} bytes", buf.len());
                self.stats.drop(reason);
                Verdict::Drop(reason)
            }
        }
    }

    fn process(
        &mut self,
        now: Instant,
        ingress: Ingress,
        buf: &mut PacketBuf,
    ) -> Result<Egress, DropReason> {
        let from_peer = match ingress {
            Ingress::Tun | Ingress::Stack => None,
            Ingress::Overlay { from } => {
                let (i, _) = self
                    .topology
                    .peer_by_underlay(from)
                    .ok_or(DropReason::UnknownPeer)?;
                let at = overlay::decapsulate(buf.data(), self.topology.vni)
                    .map_err(DropReason::from)?;
                buf.pull_front(at);
                self.stats.decapsulated += 1;
                Some(i)
            }
        };
        let p = packet::parse(buf.data())?;
        buf.truncate(p.len);
        match from_peer {
            // An in-process pod sends only as itself; the kernel's packets
            // only with a source that may be there.
            None if ingress == Ingress::Stack => {
                if !self.topology.is_stack_pod(p.key.src) {
                    return Err(DropReason::SpoofedSource);
                }
            }
            None => {
                if !self.topology.is_valid_local_source(p.key.src) {
                    return Err(DropReason::SpoofedSource);
                }
            }
            Some(i) => {
                if !self.topology.pod_cidr.contains(&p.key.dst) {
                    return Err(DropReason::OverlayNotForUs);
                }
                let peer_cidr = self.topology.peers[i].pod_cidr;
                if !peer_cidr.contains(&p.key.src) && !self.conntrack.contains(&p.key) {
                    return Err(DropReason::OverlaySpoofedSource);
                }
            }
        }
        self.route(now, buf.data_mut(), &p)?;
        self.egress(now, buf, from_peer.is_some())
    }

    /// Sends a routed packet on: back to the kernel, or over the overlay to
    /// the node that owns its (final) destination.
    fn egress(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf,
        from_overlay: bool,
    ) -> Result<Egress, DropReason> {
        let (_, dst) = packet::addresses(buf.data());
        let i = match self.topology.next_hop(dst) {
            NextHop::Tun => return Ok(Egress::Tun),
            NextHop::Stack => return Ok(Egress::Stack { pod: dst }),
            NextHop::Peer(i) => i,
        };
        if from_overlay {
            return Err(DropReason::OverlayNotForUs);
        }
        if buf.len() > self.topology.overlay_mtu {
            if packet::dont_fragment(buf.data()) {
                self.frag_needed(now, buf.data());
            }
            return Err(DropReason::TooBig);
        }
        let peer = &self.topology.peers[i];
        let (to, mac) = (peer.underlay_ip, peer.mac);
        let header = buf
            .push_front::<OVERLAY_HEADER_LEN>()
            .ok_or(DropReason::Truncated)?;
        overlay::write_header(header, self.topology.vni, self.topology.mac, mac);
        self.stats.encapsulated += 1;
        Ok(Egress::Overlay { to })
    }

    /// Answers a packet too big for the overlay with ICMP "fragmentation
    /// needed" carrying the overlay MTU (RFC 1191), from the pods' gateway
    /// to the packet's sender, translated like any ICMP error about a NATed
    /// flow so the sender's kernel matches it to its socket.
    fn frag_needed(&mut self, now: Instant, packet: &[u8]) {
        let Ok(p) = packet::parse(packet) else { return };
        let mut err = reject::icmp_frag_needed(
            packet,
            &p,
            self.topology.gateway,
            self.topology.overlay_mtu as u16,
        );
        if let Ok(ep) = packet::parse(&err) {
            if let Transport::IcmpError { inner } = ep.transport {
                self.translate_icmp_error(now, &mut err, &ep, &inner);
            }
        }
        self.emit(err);
    }

    /// Queues a generated packet, encapsulated if its destination is on
    /// another node.
    fn emit(&mut self, packet: Vec<u8>) {
        let (_, dst) = packet::addresses(&packet);
        let transmit = match self.topology.next_hop(dst) {
            NextHop::Tun => Transmit {
                egress: Egress::Tun,
                packet,
            },
            NextHop::Stack => Transmit {
                egress: Egress::Stack { pod: dst },
                packet,
            },
            NextHop::Peer(i) => {
                let peer = &self.topology.peers[i];
                let mut header = [0u8; OVERLAY_HEADER_LEN];
                overlay::write_header(&mut header, self.topology.vni, self.topology.mac, peer.mac);
                let mut framed = Vec::with_capacity(OVERLAY_HEADER_LEN + packet.len());
                framed.extend_from_slice(&header);
                framed.extend_from_slice(&packet);
                Transmit {
                    egress: Egress::Overlay {
                        to: peer.underlay_ip,
                    },
                    packet: framed,
                }
            }
        };
        self.stats.generated += 1;
        self.transmits.push_back(transmit);
    }

    /// Applies conntrack and Service NAT to the packet in place. `Ok` means
    /// forward it (to where its destination now says).
    fn route(&mut self, now: Instant, buf: &mut [u8], p: &Parsed) -> Result<(), DropReason> {
        match p.transport {
            Transport::Tcp { .. } | Transport::Udp | Transport::IcmpEcho { .. } => {}
            Transport::IcmpError { inner } if self.translate_icmp_error(now, buf, p, &inner) => {
                return Ok(());
            }
            Transport::IcmpError { .. } | Transport::Other => {
                return match self.services.lookup(&p.key) {
                    ServiceLookup::NotServiceIp => {
                        self.stats.untracked += 1;
                        Ok(())
                    }
                    ServiceLookup::NoSuchServiceIp => Err(DropReason::NoSuchServiceIp),
                    _ => Err(DropReason::IcmpToServiceIp),
                };
            }
        }
        if let Some((id, dir)) = self.conntrack.lookup(&p.key, now) {
            // A new connection reusing the tuple of one that has closed (a
            // SYN on TIME_WAIT or CLOSE, as the kernel's conntrack treats
            // it): forget the old flow and decide afresh, so it does not
            // inherit an endpoint that may be gone.
            let syn =
                matches!(p.transport, Transport::Tcp { flags, .. } if flags.syn && !flags.ack);
            let closed = self
                .conntrack
                .get(id)
                .and_then(|e| e.tcp)
                .is_some_and(|s| matches!(s, TcpState::TimeWait | TcpState::Close));
            if syn && closed && dir == Direction::Original {
                self.conntrack.remove(id);
                return self.new_flow(now, buf, p);
            }
            self.conntrack.update(id, dir, &p.transport, p.len, now);
            if let Some(entry) = self.conntrack.get(id) {
                let to = entry.translated(dir);
                if to != p.key {
                    packet::rewrite(buf, p, &to);
                    self.stats.translated += 1;
                }
            }
            return Ok(());
        }
        self.new_flow(now, buf, p)
    }

    fn new_flow(&mut self, now: Instant, buf: &mut [u8], p: &Parsed) -> Result<(), DropReason> {
        let key = p.key;
        let rst = matches!(p.transport, Transport::Tcp { flags, .. } if flags.rst);
        let translated = match self.services.lookup(&key) {
            // A RST of an unknown connection: pass it, track nothing.
            ServiceLookup::NotServiceIp if rst => return Ok(()),
            ServiceLookup::NotServiceIp => key,
            ServiceLookup::NoSuchServiceIp => return Err(DropReason::NoSuchServiceIp),
            ServiceLookup::Icmp => return Err(DropReason::IcmpToServiceIp),
            ServiceLookup::PortNotServed => {
                self.reject(buf, p);
                return Err(DropReason::ServicePortNotServed);
            }
            ServiceLookup::Port(_) if rst => return Err(DropReason::UntrackedServiceSegment),
            ServiceLookup::Port(sp) => {
                let affinity_key = (key.src, key.dst, key.dport, key.proto);
                let pinned = sp.affinity.and_then(|_| {
                    self.affinity
                        .get(&affinity_key, now)
                        .filter(|ep| sp.has_endpoint(*ep))
                });
                let Some(endpoint) = pinned.or_else(|| sp.pick(&key)) else {
                    if sp.local_only {
                        // kube-proxy drops, so that an external load balancer's
                        // health check moves traffic to a node that has one.
                        return Err(DropReason::NoLocalEndpoints);
                    }
                    debug!("rejected {key}: service {} has no endpoints", sp.name);
                    self.reject(buf, p);
                    return Err(DropReason::NoEndpoints);
                };
                let mut to = FlowKey {
                    dst: *endpoint.ip(),
                    dport: endpoint.port(),
                    ..key
                };
                let masquerade = match sp.frontend {
                    // Hairpin: the pod reaches itself through its Service (its
                    // reply would stay inside the pod, bypassing the un-DNAT)
                    // and traffic from the node itself, whose reply would be
                    // delivered locally.
                    Frontend::ClusterIp => {
                        to.dst == key.src || self.topology.needs_masquerade(key.src)
                    }
                    // Replies must come back through this node to be un-NATed.
                    Frontend::External(TrafficPolicy::Cluster) => true,
                    // The client's address is kept; the endpoint is local.
                    Frontend::External(TrafficPolicy::Local) => to.dst == key.src,
                };
                if masquerade {
                    to.src = self.topology.masquerade_ip;
                }
                trace!("{key} -> service {} endpoint {endpoint}", sp.name);
                if let Some(timeout) = sp.affinity {
                    self.affinity.pin(affinity_key, endpoint, now, timeout);
                }
                to
            }
        };
        let id = self.track(key, translated, &p.transport, now)?;
        self.conntrack
            .update(id, Direction::Original, &p.transport, p.len, now);
        if let Some(entry) = self.conntrack.get(id) {
            let to = entry.translated(Direction::Original);
            if to != key {
                packet::rewrite(buf, p, &to);
                self.stats.translated += 1;
            }
        }
        Ok(())
    }

    /// An ICMP error about a tracked flow (RELATED, in conntrack's words):
    /// translates the quoted packet back to what its sender sent, and the
    /// error's addresses to match. Returns `false` if the flow is unknown.
    fn translate_icmp_error(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        p: &Parsed,
        inner: &FlowKey,
    ) -> bool {
        // The quoted packet was sent after NAT, so its reverse is one of the
        // entry's pre-NAT tuples: the reply tuple if the quoted packet went in
        // the original direction, the original tuple if it was a reply.
        let Some((id, hit)) = self.conntrack.lookup(&inner.reversed(), now) else {
            return false;
        };
        let Some(entry) = self.conntrack.get(id) else {
            return false;
        };
        let restored = match hit {
            Direction::Reply => entry.original,
            Direction::Original => entry.reply,
        };
        // The error goes back to the quoted packet's sender; if the quoted
        // packet's destination itself sent it, it comes from what the sender
        // addressed (e.g. the ClusterIP).
        let outer_src = if p.key.src == inner.dst {
            restored.dst
        } else {
            p.key.src
        };
        let outer_dst = restored.src;
        if restored != *inner || outer_src != p.key.src || outer_dst != p.key.dst {
            packet::rewrite_icmp_error(buf, p, inner, &restored, outer_src, outer_dst);
            self.stats.translated += 1;
        }
        true
    }

    /// Inserts a flow whose packets are rewritten from `original` to
    /// `translated`. If the reply tuple is already taken by another flow, the
    /// source port is rewritten to a free one, so two flows never share a
    /// reply tuple.
    fn track(
        &mut self,
        original: FlowKey,
        mut translated: FlowKey,
        transport: &Transport,
        now: Instant,
    ) -> Result<crate::conntrack::EntryId, DropReason> {
        let range = u32::from(NAT_PORT_LAST - NAT_PORT_FIRST) + 1;
        let start = (flow_hash(&original) % u64::from(range)) as u32;
        for attempt in 0..=range {
            if attempt > 0 {
                let port = NAT_PORT_FIRST + ((start + attempt) % range) as u16;
                translated.sport = port;
                if translated.proto == PROTO_ICMP {
                    translated.dport = port;
                }
            }
            match self
                .conntrack
                .insert(original, translated.reversed(), transport, now)
            {
                Ok(id) => {
                    self.stats.flows_created += 1;
                    self.stats.flows_evicted = self.conntrack.evicted();
                    return Ok(id);
                }
                Err(InsertError::Full(_)) => return Err(DropReason::ConntrackFull),
                Err(InsertError::Clash) if self.conntrack.contains(&original) => {
                    return Err(DropReason::NatPortsExhausted);
                }
                Err(InsertError::Clash) => {}
            }
        }
        Err(DropReason::NatPortsExhausted)
    }

    /// Answers `p` the way kube-proxy's REJECT does: TCP gets a RST, UDP an
    /// ICMP port unreachable.
    fn reject(&mut self, buf: &[u8], p: &Parsed) {
        let packet = match p.key.proto {
            PROTO_TCP => reject::tcp_rst(p),
            PROTO_UDP => Some(reject::icmp_port_unreachable(buf, p)),
            _ => None,
        };
        if let Some(packet) = packet {
            self.emit(packet);
        }
    }

    /// Expires conntrack entries that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.affinity.handle_timeout(now);
        let expired = self.conntrack.handle_timeout(now);
        self.stats.flows_expired += expired as u64;
    }

    /// Whether generated packets wait in [`Dataplane::poll_transmit`].
    pub fn has_transmits(&self) -> bool {
        !self.transmits.is_empty()
    }

    /// The next generated packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When to call [`Dataplane::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.conntrack.poll_timeout(), self.affinity.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.topology.node
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The conntrack table (read-only).
    pub fn conntrack(&self) -> &ConnTrack {
        &self.conntrack
    }

    /// The whole conntrack table like `conntrack -L` (a [`FlowRecord`]'s
    /// `Display` is its line), sorted by protocol then original tuple.
    pub fn conntrack_listing(&self, now: Instant) -> Vec<FlowRecord> {
        let mut records: Vec<FlowRecord> =
            self.conntrack.iter().map(|(_, e)| e.record(now)).collect();
        records.sort_by_key(|r| (r.protocol, r.original));
        records
    }

    /// Up to `max` conntrack entries from `from` on, in table order, and
    /// the cursor of the next chunk (`None` at the end); see
    /// [`ConnTrack::records`].
    pub fn conntrack_records(
        &self,
        now: Instant,
        from: FlowCursor,
        max: usize,
    ) -> (Vec<FlowRecord>, Option<FlowCursor>) {
        self.conntrack.records(now, from, max)
    }

    /// The Service table.
    pub fn services(&self) -> &ServiceTable {
        &self.services
    }
}

#[cfg(test)]
mod tests;
