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
use std::time::Instant;

use log::{debug, trace};

use crate::cluster::Cluster;
use crate::conntrack::{ConnTrack, Direction, InsertError, Timeouts, DEFAULT_CAPACITY};
use crate::packet::{self, FlowKey, Parsed, Transport, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::reject;
use crate::service::{flow_hash, ServiceLookup, ServiceTable};
use crate::stats::{DropReason, Stats};

/// Source ports used when a flow's source must be rewritten (masquerade, or
/// a tuple clash): Linux's default ephemeral range.
const NAT_PORT_FIRST: u16 = 32768;
const NAT_PORT_LAST: u16 = 60999;

/// Where a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// Read from the node's TUN device.
    Tun,
}

/// Where a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Written back to the node's TUN device; the node's kernel delivers it.
    Tun,
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
    /// The IPv4 packet.
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

/// One node's data plane. See the module documentation for the contract.
pub struct Dataplane {
    services: ServiceTable,
    conntrack: ConnTrack,
    stats: Stats,
    transmits: VecDeque<Transmit>,
}

impl Dataplane {
    /// A data plane serving `cluster`'s Services.
    pub fn new(config: &DataplaneConfig, cluster: &Cluster) -> Self {
        Self {
            services: ServiceTable::from_cluster(cluster),
            conntrack: ConnTrack::new(config.conntrack_capacity, config.timeouts, config.seed),
            stats: Stats::default(),
            transmits: VecDeque::new(),
        }
    }

    /// Applies a new cluster state. Tracked flows keep their endpoints,
    /// except UDP flows whose endpoint is gone: those are forgotten at once,
    /// so the client's next datagram picks a live endpoint (the stale UDP
    /// conntrack problem Kubernetes fixed in kube-proxy many times).
    pub fn apply(&mut self, cluster: &Cluster) {
        self.services = ServiceTable::from_cluster(cluster);
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
    }

    /// Handles one packet; see the module documentation.
    pub fn handle_packet(&mut self, now: Instant, ingress: Ingress, buf: &mut [u8]) -> Verdict {
        let Ingress::Tun = ingress;
        self.stats.received += 1;
        let verdict = match packet::parse(buf) {
            Ok(p) => self.route(now, buf, &p),
            Err(reason) => Verdict::Drop(reason),
        };
        match verdict {
            Verdict::Forward(_) => self.stats.forwarded += 1,
            Verdict::Drop(reason) => {
                trace!("drop ({reason}), {} bytes", buf.len());
                self.stats.drop(reason);
            }
        }
        verdict
    }

    fn route(&mut self, now: Instant, buf: &mut [u8], p: &Parsed) -> Verdict {
        match p.transport {
            Transport::Tcp { .. } | Transport::Udp | Transport::IcmpEcho { .. } => {}
            Transport::IcmpError { inner } if self.translate_icmp_error(now, buf, p, &inner) => {
                return Verdict::Forward(Egress::Tun);
            }
            Transport::IcmpError { .. } | Transport::Other => {
                return match self.services.lookup(&p.key) {
                    ServiceLookup::NotServiceIp => {
                        self.stats.untracked += 1;
                        Verdict::Forward(Egress::Tun)
                    }
                    ServiceLookup::NoSuchServiceIp => Verdict::Drop(DropReason::NoSuchServiceIp),
                    _ => Verdict::Drop(DropReason::IcmpToServiceIp),
                };
            }
        }
        if let Some((id, dir)) = self.conntrack.lookup(&p.key, now) {
            self.conntrack.update(id, dir, &p.transport, p.len, now);
            if let Some(entry) = self.conntrack.get(id) {
                let to = entry.translated(dir);
                if to != p.key {
                    packet::rewrite(buf, p, &to);
                    self.stats.translated += 1;
                }
            }
            return Verdict::Forward(Egress::Tun);
        }
        self.new_flow(now, buf, p)
    }

    fn new_flow(&mut self, now: Instant, buf: &mut [u8], p: &Parsed) -> Verdict {
        let key = p.key;
        let rst = matches!(p.transport, Transport::Tcp { flags, .. } if flags.rst);
        let translated = match self.services.lookup(&key) {
            ServiceLookup::NotServiceIp => {
                if rst {
                    // A RST of an unknown connection: pass it, track nothing.
                    return Verdict::Forward(Egress::Tun);
                }
                key
            }
            ServiceLookup::NoSuchServiceIp => return Verdict::Drop(DropReason::NoSuchServiceIp),
            ServiceLookup::Icmp => return Verdict::Drop(DropReason::IcmpToServiceIp),
            ServiceLookup::PortNotServed => {
                self.reject(buf, p);
                return Verdict::Drop(DropReason::ServicePortNotServed);
            }
            ServiceLookup::Port(sp) => {
                if rst {
                    return Verdict::Drop(DropReason::UntrackedServiceSegment);
                }
                let Some(endpoint) = sp.pick(&key) else {
                    let name = sp.name.clone();
                    self.reject(buf, p);
                    debug!("rejected {key}: service {name} has no endpoints");
                    return Verdict::Drop(DropReason::NoEndpoints);
                };
                let mut to = FlowKey {
                    dst: *endpoint.ip(),
                    dport: endpoint.port(),
                    ..key
                };
                if to.dst == key.src {
                    // Hairpin: the pod reaches itself through its Service. Its
                    // reply would go straight back to itself, bypassing the
                    // un-DNAT, so masquerade the source to the Service IP.
                    to.src = sp.vip;
                }
                trace!("{key} -> service {} endpoint {endpoint}", sp.name);
                to
            }
        };
        let id = match self.track(key, translated, &p.transport, now) {
            Ok(id) => id,
            Err(reason) => return Verdict::Drop(reason),
        };
        self.conntrack
            .update(id, Direction::Original, &p.transport, p.len, now);
        if let Some(entry) = self.conntrack.get(id) {
            let to = entry.translated(Direction::Original);
            if to != key {
                packet::rewrite(buf, p, &to);
                self.stats.translated += 1;
            }
        }
        Verdict::Forward(Egress::Tun)
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
            self.stats.generated += 1;
            self.transmits.push_back(Transmit {
                egress: Egress::Tun,
                packet,
            });
        }
    }

    /// Expires conntrack entries that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired = self.conntrack.handle_timeout(now);
        self.stats.flows_expired += expired as u64;
    }

    /// The next generated packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When to call [`Dataplane::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conntrack.poll_timeout()
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
    use crate::cluster::{
        Protocol, Service, ServicePort, ServiceType, SessionAffinity, TargetPort,
    };
    use etherparse::PacketBuilder;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 101, 182, 177);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 100);

    fn cluster() -> Cluster {
        let mut c =
            crate::config::parse(include_str!("../../config.toml")).expect("default config");
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
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c);
        let t0 = Instant::now();
        let mut syn = tcp(CLIENT, VIP, 40000, 80, true);
        assert_eq!(
            dp.handle_packet(t0, Ingress::Tun, &mut syn),
            Verdict::Forward(Egress::Tun)
        );
        let out = packet::parse(&syn).expect("parse");
        assert!(endpoints(&c).contains(&out.key.dst), "DNAT to an endpoint");
        assert_eq!(out.key.src, CLIENT, "source preserved");
        let mut synack = tcp(out.key.dst, CLIENT, 80, 40000, false);
        assert_eq!(
            dp.handle_packet(t0, Ingress::Tun, &mut synack),
            Verdict::Forward(Egress::Tun)
        );
        let back = packet::parse(&synack).expect("parse");
        assert_eq!((back.key.src, back.key.sport), (VIP, 80));
        assert_eq!(dp.conntrack().len(), 1);
    }

    #[test]
    fn hairpin_is_masqueraded_to_the_vip() {
        let c = cluster();
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c);
        let t0 = Instant::now();
        let eps = endpoints(&c);
        // Find a source port whose flow picks the client itself.
        let me = eps[0];
        let (mut syn, out) = (1000..2000)
            .find_map(|sport| {
                let mut d = Dataplane::new(&DataplaneConfig::default(), &c);
                let mut syn = tcp(me, VIP, sport, 80, true);
                let _ = d.handle_packet(t0, Ingress::Tun, &mut syn);
                let out = packet::parse(&syn).expect("parse");
                (out.key.dst == me).then(|| (tcp(me, VIP, sport, 80, true), out))
            })
            .expect("some flow hairpins");
        let _ = dp.handle_packet(t0, Ingress::Tun, &mut syn);
        assert_eq!(packet::parse(&syn).expect("parse").key, out.key);
        assert_eq!(out.key.src, VIP, "hairpin masqueraded to the VIP");
        let mut reply = tcp(me, VIP, 80, out.key.sport, false);
        let _ = dp.handle_packet(t0, Ingress::Tun, &mut reply);
        let back = packet::parse(&reply).expect("parse").key;
        assert_eq!((back.src, back.sport, back.dst), (VIP, 80, me));
    }

    #[test]
    fn ping_to_vip_and_unknown_service_ip_dropped() {
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &cluster());
        let t0 = Instant::now();
        let mut ping = Vec::new();
        PacketBuilder::ipv4(CLIENT.octets(), VIP.octets(), 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut ping, b"ping")
            .expect("build");
        assert_eq!(
            dp.handle_packet(t0, Ingress::Tun, &mut ping),
            Verdict::Drop(DropReason::IcmpToServiceIp)
        );
        let mut stray = tcp(CLIENT, Ipv4Addr::new(10, 96, 9, 9), 1, 80, true);
        assert_eq!(
            dp.handle_packet(t0, Ingress::Tun, &mut stray),
            Verdict::Drop(DropReason::NoSuchServiceIp)
        );
        assert!(dp.poll_transmit().is_none(), "silently dropped");
    }

    #[test]
    fn no_endpoints_and_wrong_port_are_rejected() {
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &cluster());
        let t0 = Instant::now();
        let mut udp = Vec::new();
        PacketBuilder::ipv4(CLIENT.octets(), [10, 96, 0, 20], 64)
            .udp(5000, 53)
            .write(&mut udp, b"q")
            .expect("build");
        assert_eq!(
            dp.handle_packet(t0, Ingress::Tun, &mut udp),
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
            dp.handle_packet(t0, Ingress::Tun, &mut syn),
            Verdict::Drop(DropReason::ServicePortNotServed)
        );
        let rst = packet::parse(&dp.poll_transmit().expect("rst").packet).expect("parse");
        assert!(matches!(rst.transport, Transport::Tcp { flags, .. } if flags.rst));
        assert_eq!(dp.stats().generated, 2);
    }

    #[test]
    fn clashing_reply_tuple_gets_a_new_source_port() {
        let c = cluster();
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c);
        let t0 = Instant::now();
        let mut syn = tcp(CLIENT, VIP, 40000, 80, true);
        let _ = dp.handle_packet(t0, Ingress::Tun, &mut syn);
        let ep = packet::parse(&syn).expect("parse").key.dst;
        // The same client, same source port, directly to that endpoint.
        let mut direct = tcp(CLIENT, ep, 40000, 80, true);
        assert_eq!(
            dp.handle_packet(t0, Ingress::Tun, &mut direct),
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
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &cluster());
        let t0 = Instant::now();
        for mut junk in [vec![], vec![0x45; 10], vec![0x60; 60], vec![0xff; 1500]] {
            assert!(matches!(
                dp.handle_packet(t0, Ingress::Tun, &mut junk),
                Verdict::Drop(_)
            ));
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
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c);
        let t0 = Instant::now();
        let mut chosen = Vec::new();
        for sport in 0..20u16 {
            let mut d = Vec::new();
            PacketBuilder::ipv4(CLIENT.octets(), udp_vip.octets(), 64)
                .udp(5000 + sport, 9000)
                .write(&mut d, b"hostname")
                .expect("build");
            let _ = dp.handle_packet(t0, Ingress::Tun, &mut d);
            chosen.push(packet::parse(&d).expect("parse").key.dst);
        }
        let mut syn = tcp(CLIENT, VIP, 40000, 80, true);
        let _ = dp.handle_packet(t0, Ingress::Tun, &mut syn);
        let gone = chosen[0];
        let survivors = chosen.iter().filter(|ip| **ip != gone).count();
        c.pods.retain(|p| p.ip != gone);
        let before = dp.conntrack().len();
        dp.apply(&c);
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
        let mut dp = Dataplane::new(&DataplaneConfig::default(), &c);
        let t0 = Instant::now();
        let mut syn = tcp(CLIENT, VIP, 40000, 80, true);
        let _ = dp.handle_packet(t0, Ingress::Tun, &mut syn);
        let sent = packet::parse(&syn).expect("parse").key;
        // The backend refuses with port unreachable, quoting the SYN as it got it.
        let mut err = Vec::new();
        PacketBuilder::ipv4(sent.dst.octets(), CLIENT.octets(), 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut err, &syn)
            .expect("build");
        assert_eq!(
            dp.handle_packet(t0, Ingress::Tun, &mut err),
            Verdict::Forward(Egress::Tun)
        );
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
}
