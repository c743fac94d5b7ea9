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
use crate::buf::PacketBuf;
use crate::conntrack::{ConnTrack, Direction, InsertError, TcpState, Timeouts, DEFAULT_CAPACITY};
use crate::overlay::{self, OVERLAY_HEADER_LEN};
use crate::packet::{self, FlowKey, Parsed, Transport, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::reject;
use crate::route::{NextHop, Topology};
use crate::service::{flow_hash, Frontend, ServiceLookup, ServiceTable};
use crate::stats::{DropReason, Stats};
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
                    .map_err(|_| DropReason::OverlayMalformed)?;
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

    /// The conntrack table like `conntrack -L`, one line per flow, newest
    /// state first by protocol then tuple.
    pub fn conntrack_listing(&self, now: Instant) -> Vec<String> {
        let mut entries: Vec<_> = self.conntrack.iter().map(|(_, e)| e).collect();
        entries.sort_by_key(|e| (e.original.proto, e.original));
        entries.iter().map(|e| e.render(now)).collect()
    }

    /// The Service table.
    pub fn services(&self) -> &ServiceTable {
        &self.services
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster::{Protocol, Service, ServicePort, ServiceType, SessionAffinity, TargetPort};
    use etherparse::PacketBuilder;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 101, 182, 177);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 100);
    const NODE: &str = "mac-worker";

    /// Runs one packet held in a `Vec` through the data plane, leaving the
    /// result (without overlay headers) in the `Vec`.
    fn handle(dp: &mut Dataplane, now: Instant, pkt: &mut Vec<u8>) -> Verdict {
        let mut buf = PacketBuf::from_slice(pkt);
        let v = dp.handle_packet(now, Ingress::Tun, &mut buf);
        let mut out = buf.data().to_vec();
        if let Verdict::Forward(Egress::Overlay { .. }) = v {
            out.drain(..OVERLAY_HEADER_LEN);
        }
        *pkt = out;
        v
    }

    fn cluster() -> Cluster {
        let mut c =
            control::config::parse(include_str!("../../config.toml")).expect("default config");
        // Pin down the shape this test relies on, independent of the file.
        c.services.retain(|s| s.name == "nginx-svc");
        c.services.push(Service {
            name: "empty".into(),
            namespace: "default".into(),
            labels: BTreeMap::new(),
            selector: BTreeMap::from([("app".into(), "none".into())]),
            service_type: ServiceType::ClusterIP,
            cluster_ip: Ipv4Addr::new(10, 96, 0, 20),
            ports: vec![ServicePort {
                name: None,
                protocol: Protocol::Udp,
                port: 53,
                target_port: TargetPort::Number(53),
                node_port: None,
            }],
            session_affinity: SessionAffinity::None,
            external_traffic_policy: Default::default(),
            internal_traffic_policy: Default::default(),
            headless: false,
            external_name: None,
            external_ips: vec![],
            load_balancer_ips: vec![],
        });
        c
    }

    fn tcp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, syn: bool) -> Vec<u8> {
        let b = PacketBuilder::ipv4(src.octets(), dst.octets(), 64).tcp(sport, dport, 1, 1000);
        let b = if syn { b.syn() } else { b.ack(1) };
        let mut out = Vec::new();
        b.write(&mut out, &[]).expect("build");
        out
    }

    fn endpoints(c: &Cluster) -> Vec<Ipv4Addr> {
        let svc = c.service("default", "nginx-svc").expect("nginx-svc");
        c.endpoints(svc, &svc.ports[0])
            .iter()
            .map(|e| e.ip)
            .collect()
    }

    #[test]
    fn dnat_then_reply_is_un_natted() {
        let c = cluster();
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
        let t0 = Instant::now();
        let mut syn = tcp(CLIENT, VIP, 40000, 80, true);
        assert_eq!(handle(&mut dp, t0, &mut syn), Verdict::Forward(Egress::Tun));
        let out = packet::parse(&syn).expect("parse");
        assert!(endpoints(&c).contains(&out.key.dst), "DNAT to an endpoint");
        assert_eq!(out.key.src, CLIENT, "source preserved");
        let mut synack = tcp(out.key.dst, CLIENT, 80, 40000, false);
        assert_eq!(
            handle(&mut dp, t0, &mut synack),
            Verdict::Forward(Egress::Tun)
        );
        let back = packet::parse(&synack).expect("parse");
        assert_eq!((back.key.src, back.key.sport), (VIP, 80));
        assert_eq!(dp.conntrack().len(), 1);
    }

    #[test]
    fn hairpin_is_masqueraded_to_the_node_address() {
        let c = cluster();
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
        let t0 = Instant::now();
        let node_cidr = c.node(NODE).expect("node").pod_cidr;
        let masq = node_cidr.network();
        // An endpoint on this node; find a source port whose flow picks it.
        let me = endpoints(&c)
            .into_iter()
            .find(|ip| node_cidr.contains(ip))
            .expect("an nginx pod on this node");
        let (mut syn, out) = (1000..2000)
            .find_map(|sport| {
                let mut d = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
                let mut syn = tcp(me, VIP, sport, 80, true);
                let _ = handle(&mut d, t0, &mut syn);
                let out = packet::parse(&syn).expect("parse");
                (out.key.dst == me).then(|| (tcp(me, VIP, sport, 80, true), out))
            })
            .expect("some flow hairpins");
        let _ = handle(&mut dp, t0, &mut syn);
        assert_eq!(packet::parse(&syn).expect("parse").key, out.key);
        assert_eq!(
            out.key.src, masq,
            "hairpin masqueraded to the node's address"
        );
        let mut reply = tcp(me, masq, 80, out.key.sport, false);
        let _ = handle(&mut dp, t0, &mut reply);
        let back = packet::parse(&reply).expect("parse").key;
        assert_eq!((back.src, back.sport, back.dst), (VIP, 80, me));
    }

    #[test]
    fn ping_to_vip_and_unknown_service_ip_dropped() {
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &cluster(), NODE).expect("node");
        let t0 = Instant::now();
        let mut ping = Vec::new();
        PacketBuilder::ipv4(CLIENT.octets(), VIP.octets(), 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut ping, b"ping")
            .expect("build");
        assert_eq!(
            handle(&mut dp, t0, &mut ping),
            Verdict::Drop(DropReason::IcmpToServiceIp)
        );
        let mut stray = tcp(CLIENT, Ipv4Addr::new(10, 96, 9, 9), 1, 80, true);
        assert_eq!(
            handle(&mut dp, t0, &mut stray),
            Verdict::Drop(DropReason::NoSuchServiceIp)
        );
        assert!(dp.poll_transmit().is_none(), "silently dropped");
    }

    #[test]
    fn no_endpoints_and_wrong_port_are_rejected() {
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &cluster(), NODE).expect("node");
        let t0 = Instant::now();
        let mut udp = Vec::new();
        PacketBuilder::ipv4(CLIENT.octets(), [10, 96, 0, 20], 64)
            .udp(5000, 53)
            .write(&mut udp, b"q")
            .expect("build");
        assert_eq!(
            handle(&mut dp, t0, &mut udp),
            Verdict::Drop(DropReason::NoEndpoints)
        );
        let icmp = dp.poll_transmit().expect("port unreachable");
        let p = packet::parse(&icmp.packet).expect("parse");
        assert_eq!(
            (p.key.src, p.key.dst),
            (Ipv4Addr::new(10, 96, 0, 20), CLIENT)
        );
        let mut syn = tcp(CLIENT, VIP, 1234, 8080, true);
        assert_eq!(
            handle(&mut dp, t0, &mut syn),
            Verdict::Drop(DropReason::ServicePortNotServed)
        );
        let rst = packet::parse(&dp.poll_transmit().expect("rst").packet).expect("parse");
        assert!(matches!(rst.transport, Transport::Tcp { flags, .. } if flags.rst));
        assert_eq!(dp.stats().generated, 2);
    }

    #[test]
    fn clashing_reply_tuple_gets_a_new_source_port() {
        let c = cluster();
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
        let t0 = Instant::now();
        let mut syn = tcp(CLIENT, VIP, 40000, 80, true);
        let _ = handle(&mut dp, t0, &mut syn);
        let ep = packet::parse(&syn).expect("parse").key.dst;
        // The same client, same source port, directly to that endpoint.
        let mut direct = tcp(CLIENT, ep, 40000, 80, true);
        assert_eq!(
            handle(&mut dp, t0, &mut direct),
            Verdict::Forward(Egress::Tun)
        );
        let d = packet::parse(&direct).expect("parse").key;
        assert_ne!(
            d.sport, 40000,
            "source port rewritten to avoid sharing a reply tuple"
        );
        assert_eq!(dp.conntrack().len(), 2);
    }

    #[test]
    fn malformed_packets_are_counted_drops() {
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &cluster(), NODE).expect("node");
        let t0 = Instant::now();
        for mut junk in [vec![], vec![0x45; 10], vec![0x60; 60], vec![0xff; 1500]] {
            assert!(matches!(handle(&mut dp, t0, &mut junk), Verdict::Drop(_)));
        }
        assert_eq!(dp.stats().dropped_total(), 4);
    }

    #[test]
    fn apply_forgets_udp_flows_to_removed_endpoints_only() {
        let mut c = cluster();
        let udp_vip = Ipv4Addr::new(10, 96, 0, 30);
        c.services.push(Service {
            name: "dns".into(),
            cluster_ip: udp_vip,
            selector: BTreeMap::from([("app".into(), "nginx-deployment".into())]),
            ports: vec![ServicePort {
                name: None,
                protocol: Protocol::Udp,
                port: 9000,
                target_port: TargetPort::Number(9000),
                node_port: None,
            }],
            ..c.services[0].clone()
        });
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
        let t0 = Instant::now();
        let mut chosen = Vec::new();
        for sport in 0..20u16 {
            let mut d = Vec::new();
            PacketBuilder::ipv4(CLIENT.octets(), udp_vip.octets(), 64)
                .udp(5000 + sport, 9000)
                .write(&mut d, b"hostname")
                .expect("build");
            let _ = handle(&mut dp, t0, &mut d);
            chosen.push(packet::parse(&d).expect("parse").key.dst);
        }
        let mut syn = tcp(CLIENT, VIP, 40000, 80, true);
        let _ = handle(&mut dp, t0, &mut syn);
        let gone = chosen[0];
        let survivors = chosen.iter().filter(|ip| **ip != gone).count();
        c.pods.retain(|p| p.ip != gone);
        let before = dp.conntrack().len();
        dp.apply(&c).expect("apply");
        let tcp_to_gone = usize::from(packet::parse(&syn).expect("parse").key.dst == gone);
        assert_eq!(
            dp.conntrack().len(),
            before - (20 - survivors),
            "only UDP flows to {gone} removed"
        );
        assert!(dp.conntrack().len() >= survivors + 1 - tcp_to_gone);
    }
    #[test]
    fn icmp_error_from_a_backend_is_translated_for_the_client() {
        let c = cluster();
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
        let t0 = Instant::now();
        let mut syn = tcp(CLIENT, VIP, 40000, 80, true);
        let _ = handle(&mut dp, t0, &mut syn);
        let sent = packet::parse(&syn).expect("parse").key;
        // The backend refuses with port unreachable, quoting the SYN as it got it.
        let mut err = Vec::new();
        PacketBuilder::ipv4(sent.dst.octets(), CLIENT.octets(), 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut err, &syn)
            .expect("build");
        assert_eq!(handle(&mut dp, t0, &mut err), Verdict::Forward(Egress::Tun));
        let back = packet::parse(&err).expect("parse");
        assert_eq!(
            (back.key.src, back.key.dst),
            (VIP, CLIENT),
            "error comes from the VIP"
        );
        let Transport::IcmpError { inner } = back.transport else {
            panic!("not an ICMP error");
        };
        assert_eq!(
            (inner.src, inner.dst, inner.dport),
            (CLIENT, VIP, 80),
            "quotes what the client sent"
        );
    }
    /// Two nodes, one nginx pod each, a client on mac-worker.
    const TWO_NODES: &str = r#"
[cluster]
podCIDR = "10.10.0.0/16"
[[nodes]]
name = "mac-master"
address = "192.168.191.144"
podCIDR = "10.10.0.0/24"
[[nodes]]
name = "mac-worker"
address = "192.168.191.145"
podCIDR = "10.10.1.0/24"
[[pods]]
name = "web-master"
node = "mac-master"
ip = "10.10.0.2"
labels = { app = "web" }
[[pods]]
name = "web-worker"
node = "mac-worker"
ip = "10.10.1.2"
labels = { app = "web" }
[[pods]]
name = "client"
node = "mac-worker"
ip = "10.10.1.100"
[[services]]
name = "web"
clusterIP = "10.96.0.50"
selector = { app = "web" }
ports = [{ port = 80 }]
"#;

    fn two_nodes() -> (Cluster, Dataplane, Dataplane) {
        let c = control::config::parse(TWO_NODES).expect("two-node config");
        let master = Dataplane::new(&DataplaneConfig::default(), &c, "mac-master").expect("node");
        let worker = Dataplane::new(&DataplaneConfig::default(), &c, "mac-worker").expect("node");
        (c, master, worker)
    }

    fn from_peer(
        dp: &mut Dataplane,
        now: Instant,
        from: Ipv4Addr,
        vni: u32,
        inner: &[u8],
    ) -> Verdict {
        let mut header = [0u8; OVERLAY_HEADER_LEN];
        overlay::write_header(&mut header, vni, [0; 6], [0; 6]);
        let mut framed = header.to_vec();
        framed.extend_from_slice(inner);
        dp.handle_packet(
            now,
            Ingress::Overlay { from },
            &mut PacketBuf::from_slice(&framed),
        )
    }

    #[test]
    fn remote_pod_traffic_is_encapsulated_to_its_node() {
        let (_, mut master, mut worker) = two_nodes();
        let t0 = Instant::now();
        let syn = tcp(CLIENT, Ipv4Addr::new(10, 10, 0, 2), 40000, 80, true);
        let mut buf = PacketBuf::from_slice(&syn);
        let to = Ipv4Addr::new(192, 168, 191, 144);
        assert_eq!(
            worker.handle_packet(t0, Ingress::Tun, &mut buf),
            Verdict::Forward(Egress::Overlay { to })
        );
        assert_eq!(overlay::decapsulate(buf.data(), 1), Ok(OVERLAY_HEADER_LEN));
        assert_eq!(
            &buf.data()[8..14],
            &overlay::vtep_mac(to),
            "inner destination MAC is the peer's VTEP"
        );
        assert_eq!(
            &buf.data()[OVERLAY_HEADER_LEN..],
            &syn[..],
            "inner packet unchanged"
        );
        // The peer takes it off the overlay and delivers it locally.
        let mut rx = PacketBuf::from_slice(buf.data());
        let from = Ipv4Addr::new(192, 168, 191, 145);
        assert_eq!(
            master.handle_packet(t0, Ingress::Overlay { from }, &mut rx),
            Verdict::Forward(Egress::Tun)
        );
        assert_eq!(rx.data(), &syn[..]);
    }

    #[test]
    fn overlay_accepts_only_peers_with_their_own_pod_sources() {
        let (_, mut master, _) = two_nodes();
        let t0 = Instant::now();
        let worker_ip = Ipv4Addr::new(192, 168, 191, 145);
        let good = tcp(CLIENT, Ipv4Addr::new(10, 10, 0, 2), 1, 80, true);
        assert_eq!(
            from_peer(&mut master, t0, worker_ip, 1, &good),
            Verdict::Forward(Egress::Tun)
        );
        let stranger = Ipv4Addr::new(192, 168, 191, 99);
        assert_eq!(
            from_peer(&mut master, t0, stranger, 1, &good),
            Verdict::Drop(DropReason::UnknownPeer)
        );
        assert_eq!(
            from_peer(&mut master, t0, worker_ip, 2, &good),
            Verdict::Drop(DropReason::OverlayMalformed),
            "wrong VNI"
        );
        // Inner source outside the sending node's pod CIDR.
        let spoofed = tcp(
            Ipv4Addr::new(10, 10, 0, 77),
            Ipv4Addr::new(10, 10, 0, 2),
            2,
            80,
            true,
        );
        assert_eq!(
            from_peer(&mut master, t0, worker_ip, 1, &spoofed),
            Verdict::Drop(DropReason::OverlaySpoofedSource)
        );
        // Not for this node's pods: the router is no transit hop.
        let transit = tcp(CLIENT, Ipv4Addr::new(10, 10, 1, 2), 3, 80, true);
        assert_eq!(
            from_peer(&mut master, t0, worker_ip, 1, &transit),
            Verdict::Drop(DropReason::OverlayNotForUs)
        );
        assert_eq!(
            from_peer(&mut master, t0, worker_ip, 1, &[0x45, 0, 0]),
            Verdict::Drop(DropReason::Truncated)
        );
    }

    #[test]
    fn a_pod_cannot_use_an_address_that_is_not_its_own() {
        let (_, _, mut worker) = two_nodes();
        let t0 = Instant::now();
        let mut spoofed = tcp(Ipv4Addr::new(10, 10, 1, 77), VIP, 1, 80, true);
        assert_eq!(
            handle(&mut worker, t0, &mut spoofed),
            Verdict::Drop(DropReason::SpoofedSource)
        );
    }

    #[test]
    fn too_big_for_the_overlay_gets_frag_needed_through_the_cluster_ip() {
        let (_, _, mut worker) = two_nodes();
        let t0 = Instant::now();
        let vip = Ipv4Addr::new(10, 96, 0, 50);
        // Find a flow the worker sends to the master's pod (over the overlay).
        let (sport, mut big) = (1000..2000u16)
            .find_map(|sport| {
                let mut probe = tcp(CLIENT, vip, sport, 80, true);
                let v = handle(&mut worker, t0, &mut probe);
                (v == Verdict::Forward(Egress::Overlay {
                    to: Ipv4Addr::new(192, 168, 191, 144),
                }))
                .then(|| {
                    let mut p = Vec::new();
                    PacketBuilder::ipv4(CLIENT.octets(), vip.octets(), 64)
                        .tcp(sport, 80, 2, 1000)
                        .ack(1)
                        .write(&mut p, &[7u8; 1460])
                        .expect("build");
                    (sport, p)
                })
            })
            .expect("some flow goes to the other node");
        assert_eq!(big.len(), 1500);
        big[6] |= 0x40; // DF
        big[10] = 0;
        big[11] = 0;
        let c = crate::checksum::checksum(0, &big[..20]);
        big[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            handle(&mut worker, t0, &mut big),
            Verdict::Drop(DropReason::TooBig)
        );
        let t = worker.poll_transmit().expect("frag needed");
        assert_eq!(t.egress, Egress::Tun);
        let p = packet::parse(&t.packet).expect("parse");
        assert_eq!(p.key.dst, CLIENT);
        assert_eq!(&t.packet[20..22], &[3, 4], "ICMP fragmentation needed");
        assert_eq!(
            u16::from_be_bytes([t.packet[26], t.packet[27]]),
            1450,
            "next-hop MTU"
        );
        let Transport::IcmpError { inner } = p.transport else {
            panic!("not an ICMP error");
        };
        assert_eq!(
            (inner.src, inner.dst, inner.sport, inner.dport),
            (CLIENT, vip, sport, 80)
        );
    }
    #[test]
    fn traffic_from_the_node_itself_is_masqueraded() {
        let c = cluster();
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
        let t0 = Instant::now();
        let node = c.node(NODE).expect("node");
        let gateway = node.pod_cidr.hosts().next().expect("gateway");
        for src in [node.underlay_ip, gateway] {
            let mut syn = tcp(src, VIP, 40000, 80, true);
            let _ = handle(&mut dp, t0, &mut syn);
            let out = packet::parse(&syn).expect("parse").key;
            assert_eq!(out.src, node.pod_cidr.network(), "from {src}");
        }
        // Pods keep their address.
        let mut syn = tcp(CLIENT, VIP, 40000, 80, true);
        let _ = handle(&mut dp, t0, &mut syn);
        assert_eq!(packet::parse(&syn).expect("parse").key.src, CLIENT);
    }
    /// Random corruptions of valid packets, from the TUN device and from
    /// the overlay: never a panic, and every packet is either forwarded or
    /// a counted drop.
    #[test]
    fn corrupted_packets_never_panic_and_are_all_accounted_for() {
        let (_, mut master, mut worker) = two_nodes();
        let t0 = Instant::now();
        let mut seeds = vec![
            tcp(CLIENT, VIP, 40000, 80, true),
            tcp(CLIENT, Ipv4Addr::new(10, 10, 0, 2), 40001, 80, false),
        ];
        let mut udp = Vec::new();
        PacketBuilder::ipv4(CLIENT.octets(), [10, 96, 0, 50], 64)
            .udp(5000, 80)
            .write(&mut udp, b"hostname")
            .expect("build");
        seeds.push(udp);
        let mut err = Vec::new();
        PacketBuilder::ipv4([10, 10, 1, 2], CLIENT.octets(), 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut err, &seeds[0])
            .expect("build");
        seeds.push(err);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let worker_ip = Ipv4Addr::new(192, 168, 191, 145);
        for i in 0..20_000u32 {
            let mut pkt = seeds[i as usize % seeds.len()].clone();
            for _ in 0..(1 + next() % 4) {
                let at = (next() % pkt.len() as u64) as usize;
                pkt[at] = next() as u8;
            }
            if next() % 5 == 0 {
                pkt.truncate((next() % (pkt.len() as u64 + 1)) as usize);
            }
            let _ = worker.handle_packet(t0, Ingress::Tun, &mut PacketBuf::from_slice(&pkt));
            let _ = from_peer(&mut master, t0, worker_ip, 1, &pkt);
            while worker.poll_transmit().is_some() {}
            while master.poll_transmit().is_some() {}
        }
        for dp in [&worker, &master] {
            let s = dp.stats();
            assert_eq!(s.received, 20_000);
            assert_eq!(s.received, s.forwarded + s.dropped_total(), "{s:?}");
        }
    }
    #[test]
    fn a_new_connection_on_a_closed_tuple_picks_a_live_endpoint() {
        let mut c = cluster();
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
        let t0 = Instant::now();
        let mut syn = tcp(CLIENT, VIP, 40000, 80, true);
        let _ = handle(&mut dp, t0, &mut syn);
        let first = packet::parse(&syn).expect("parse").key.dst;
        // The connection closes with a RST (state CLOSE, kept for 10 s).
        let mut rst = Vec::new();
        PacketBuilder::ipv4(first.octets(), CLIENT.octets(), 64)
            .tcp(80, 40000, 1, 0)
            .rst()
            .write(&mut rst, &[])
            .expect("build");
        let _ = handle(&mut dp, t0, &mut rst);
        // Its endpoint goes away; the client reuses the same source port.
        c.pods.retain(|p| p.ip != first);
        dp.apply(&c).expect("apply");
        let mut again = tcp(CLIENT, VIP, 40000, 80, true);
        assert!(matches!(
            handle(&mut dp, t0, &mut again),
            Verdict::Forward(_)
        ));
        let second = packet::parse(&again).expect("parse").key.dst;
        assert_ne!(
            second, first,
            "the reused tuple went to the removed endpoint"
        );
        assert_eq!(dp.conntrack().len(), 1);
    }
}
