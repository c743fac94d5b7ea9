//! Property tests of the data path through a [`Node`] built from the
//! default `config.toml` (node mac-worker: one nginx endpoint here, one on
//! mac-master behind the overlay), public API only:
//!
//! - random valid IPv4 TCP, UDP and ICMP packets (etherparse-built, random
//!   sources, ports, flags and payloads) to the Services' ClusterIPs and to
//!   pods: whatever the node forwards or generates carries checksums that
//!   etherparse recomputes to the same values (the incremental updates of
//!   RFC 1624 agree with a full recomputation);
//! - NAT round trip: a request DNATed (and maybe masqueraded) to an
//!   endpoint, and that endpoint's reply un-NATed, gives the client back
//!   exactly the tuple it sent to, reversed.

// Tests need a starting instant; the core itself never reads the clock.
#![allow(clippy::disallowed_methods)]

use std::net::Ipv4Addr;
use std::sync::OnceLock;
use std::time::Instant;

use cluster::{Cluster, Protocol, ServiceType};
use dataplane::buf::PacketBuf;
use dataplane::engine::{DataplaneConfig, Egress, Ingress, Verdict};
use dataplane::node::Node;
use dataplane::overlay;
use dataplane::packet::{self, FlowKey, PROTO_TCP, PROTO_UDP};
use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use proptest::prelude::*;

const NODE: &str = "mac-worker";

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        match control::config::parse(include_str!("../../control/tests/fixtures/cluster.toml")) {
            Ok(c) => c,
            Err(e) => panic!("config.toml: {e}"),
        }
    })
}

fn node() -> Node {
    match Node::new(&DataplaneConfig::default(), cluster(), NODE) {
        Ok(n) => n,
        Err(e) => panic!("{e}"),
    }
}

/// Every ClusterIP frontend of the default config: (IP, port, protocol).
fn frontends() -> Vec<(Ipv4Addr, u16, Protocol)> {
    cluster()
        .services
        .iter()
        .filter(|s| !s.headless && s.service_type != ServiceType::ExternalName)
        .flat_map(|s| s.ports.iter().map(|p| (s.cluster_ip, p.port, p.protocol)))
        .collect()
}

/// Sources a packet read from mac-worker's TUN device may have: its pods
/// (not the router-hosted ones), its gateway, and addresses outside the
/// cluster (the node itself, routed clients), which are masqueraded.
fn sources() -> Vec<Ipv4Addr> {
    let c = cluster();
    let mut v: Vec<Ipv4Addr> = c
        .pods
        .iter()
        .filter(|p| p.node == NODE && !p.is_router_hosted())
        .map(|p| p.ip)
        .collect();
    if let Some(n) = c.node(NODE) {
        v.extend(n.pod_cidr.hosts().next());
        v.push(n.underlay_ip);
    }
    v.push(Ipv4Addr::new(172, 16, 5, 9));
    v
}

/// A packet a test sends: protocol and its fields.
#[derive(Debug, Clone)]
enum Kind {
    Tcp {
        syn: bool,
        ack: bool,
        fin: bool,
        rst: bool,
    },
    Udp,
    Echo {
        id: u16,
        seq: u16,
    },
}

#[derive(Debug, Clone)]
struct Send {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    ttl: u8,
    kind: Kind,
    payload: Vec<u8>,
}

fn build(s: &Send) -> Vec<u8> {
    let ip = PacketBuilder::ipv4(s.src.octets(), s.dst.octets(), s.ttl);
    let mut out = Vec::new();
    let written = match s.kind {
        Kind::Tcp { syn, ack, fin, rst } => {
            let mut b = ip.tcp(s.sport, s.dport, 0x1234_5678, 64_240);
            if syn {
                b = b.syn();
            }
            if ack {
                b = b.ack(0x0bad_cafe);
            }
            if fin {
                b = b.fin();
            }
            if rst {
                b = b.rst();
            }
            b.write(&mut out, &s.payload)
        }
        Kind::Udp => ip.udp(s.sport, s.dport).write(&mut out, &s.payload),
        Kind::Echo { id, seq } => ip.icmpv4_echo_request(id, seq).write(&mut out, &s.payload),
    };
    match written {
        Ok(()) => out,
        Err(e) => panic!("etherparse could not build {s:?}: {e}"),
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        any::<(bool, bool, bool, bool)>().prop_map(|(syn, ack, fin, rst)| Kind::Tcp {
            syn,
            ack,
            fin,
            rst
        }),
        Just(Kind::Udp),
        any::<(u16, u16)>().prop_map(|(id, seq)| Kind::Echo { id, seq }),
    ]
}

/// `kind` made a packet of `proto` (a TCP kind keeps its flags).
fn for_protocol(proto: Protocol, kind: Kind) -> Kind {
    match (proto, kind) {
        (Protocol::Tcp, k @ Kind::Tcp { .. }) => k,
        (Protocol::Tcp, _) => Kind::Tcp {
            syn: true,
            ack: false,
            fin: false,
            rst: false,
        },
        (Protocol::Udp, _) => Kind::Udp,
    }
}

/// A packet to a Service (the protocol and port of one of its ports, or a
/// random one), to a pod or to anywhere, from a valid source.
fn send() -> impl Strategy<Value = Send> {
    let fronts = frontends();
    let pods: Vec<Ipv4Addr> = cluster().pods.iter().map(|p| p.ip).collect();
    let srcs = sources();
    (
        prop::sample::select(srcs),
        prop_oneof![
            3 => prop::sample::select(fronts).prop_map(|(ip, port, proto)| (ip, Some((port, proto)))),
            1 => prop::sample::select(pods).prop_map(|ip| (ip, None)),
            1 => any::<u32>().prop_map(|ip| (Ipv4Addr::from(ip), None)),
        ],
        1024u16..,
        any::<u16>(),
        1u8..,
        kind(),
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(src, (dst, svc), sport, dport, ttl, kind, payload)| {
            // Mostly the Service's own port and protocol (kept TCP flags),
            // so the packet is translated rather than rejected.
            let (dport, kind) = match svc {
                Some((port, proto)) if dport % 4 != 0 => (port, for_protocol(proto, kind)),
                _ => (dport, kind),
            };
            Send { src, dst, sport, dport, ttl, kind, payload }
        })
}

/// Checks an IPv4 packet's header checksum and its TCP, UDP or ICMP
/// checksum against etherparse's full computation.
fn checksums_ok(pkt: &[u8]) -> Result<(), String> {
    let h = PacketHeaders::from_ip_slice(pkt).map_err(|e| format!("etherparse: {e}"))?;
    let Some(NetHeaders::Ipv4(ip, _)) = &h.net else {
        return Err("not IPv4".into());
    };
    if ip.header_checksum != ip.calc_header_checksum() {
        return Err(format!(
            "IPv4 header checksum {:#06x}, recomputed {:#06x}",
            ip.header_checksum,
            ip.calc_header_checksum()
        ));
    }
    let payload = h.payload.slice();
    let (got, want) = match &h.transport {
        Some(TransportHeader::Tcp(t)) => (t.checksum, t.calc_checksum_ipv4(ip, payload)),
        // Zero means "no checksum" for UDP over IPv4 (RFC 768).
        Some(TransportHeader::Udp(u)) if u.checksum == 0 => return Ok(()),
        Some(TransportHeader::Udp(u)) => (u.checksum, u.calc_checksum_ipv4(ip, payload)),
        Some(TransportHeader::Icmpv4(i)) => (i.checksum, Ok(i.icmp_type.calc_checksum(payload))),
        _ => return Ok(()),
    };
    let want = want.map_err(|e| format!("checksum: {e}"))?;
    if got != want {
        return Err(format!(
            "transport checksum {got:#06x}, recomputed {want:#06x}"
        ));
    }
    Ok(())
}

/// The IPv4 packet inside what the node hands to `egress`.
fn inner(egress: Egress, data: &[u8]) -> Result<&[u8], String> {
    match egress {
        Egress::Overlay { to } => {
            let at = overlay::decapsulate(data, cluster().overlay.vni, overlay::vtep_mac(to))
                .map_err(|e| format!("overlay: {e:?}"))?;
            Ok(&data[at..])
        }
        Egress::Tun | Egress::Stack { .. } => Ok(data),
    }
}

/// Hands `pkt` to the node; returns the verdict and the packet as it left.
fn handle(node: &mut Node, now: Instant, ingress: Ingress, pkt: &[u8]) -> (Verdict, Vec<u8>) {
    let mut buf = PacketBuf::from_slice(pkt);
    let v = node.handle_packet(now, ingress, &mut buf);
    (v, buf.data().to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        // Integration tests have no lib.rs beside them to persist failures
        // next to; a failure prints its minimal case.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Everything the node forwards or generates has correct checksums.
    #[test]
    fn rewritten_packets_keep_valid_checksums(sends in prop::collection::vec(send(), 1..24)) {
        let mut node = node();
        let now = Instant::now();
        for s in &sends {
            let pkt = build(s);
            let (v, out) = handle(&mut node, now, Ingress::Tun, &pkt);
            if let Verdict::Forward(egress) = v {
                let ip = inner(egress, &out).map_err(TestCaseError::fail)?;
                checksums_ok(ip).map_err(|e| TestCaseError::fail(format!("{s:?} -> {egress:?}: {e}")))?;
            }
            while let Some(t) = node.poll_transmit() {
                let ip = inner(t.egress, &t.packet).map_err(TestCaseError::fail)?;
                checksums_ok(ip).map_err(|e| TestCaseError::fail(format!("generated for {s:?}: {e}")))?;
            }
        }
        let st = node.stats();
        prop_assert_eq!(st.received, st.forwarded + st.dropped_total(), "{:?}", st);
    }

    /// A request DNATed to an endpoint and the endpoint's reply un-NATed
    /// restore the client's tuple; the reply's checksums are valid too.
    #[test]
    fn nat_round_trip_restores_the_tuple(
        s in send().prop_filter("to a Service port", |s| {
            frontends().iter().any(|&(ip, port, proto)| {
                ip == s.dst && port == s.dport && matches!(
                    (proto, &s.kind),
                    (Protocol::Tcp, Kind::Tcp { .. }) | (Protocol::Udp, Kind::Udp)
                )
            })
        }),
        reply_payload in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut node = node();
        let now = Instant::now();
        let mut s = s;
        if let Kind::Tcp { .. } = s.kind {
            // A connection's first packet.
            s.kind = Kind::Tcp { syn: true, ack: false, fin: false, rst: false };
        }
        let (v, out) = handle(&mut node, now, Ingress::Tun, &build(&s));
        let egress = match v {
            // The cluster DNS answers in process: no endpoint on the wire.
            Verdict::Forward(Egress::Stack { .. }) => return Ok(()),
            Verdict::Forward(e) => e,
            // No endpoint for this client (a Local policy elsewhere).
            Verdict::Drop(_) => return Ok(()),
        };
        let request = packet::parse(inner(egress, &out).map_err(TestCaseError::fail)?)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?
            .key;
        prop_assert!(request.dst != s.dst, "DNATed away from the ClusterIP: {request}");
        // The endpoint answers the tuple it saw.
        let reply = Send {
            src: request.dst,
            dst: request.src,
            sport: request.dport,
            dport: request.sport,
            ttl: 64,
            kind: match s.kind {
                Kind::Tcp { .. } => Kind::Tcp { syn: true, ack: true, fin: false, rst: false },
                _ => Kind::Udp,
            },
            payload: reply_payload,
        };
        let wire = build(&reply);
        let (ingress, wire) = match egress {
            Egress::Overlay { to } => {
                let mut header = [0u8; overlay::OVERLAY_HEADER_LEN];
                // From the peer's VTEP to ours (the router checks the
                // inner destination MAC).
                let ours = cluster().node(NODE).map(|n| n.underlay_ip);
                let ours = overlay::vtep_mac(ours.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED));
                overlay::write_header(&mut header, cluster().overlay.vni, overlay::vtep_mac(to), ours);
                let mut framed = header.to_vec();
                framed.extend_from_slice(&wire);
                (Ingress::Overlay { from: to }, framed)
            }
            _ => (Ingress::Tun, wire),
        };
        let (v, back) = handle(&mut node, now, ingress, &wire);
        let Verdict::Forward(egress) = v else {
            return Err(TestCaseError::fail(format!("reply {reply:?} dropped: {v:?}")));
        };
        let back = inner(egress, &back).map_err(TestCaseError::fail)?;
        checksums_ok(back).map_err(TestCaseError::fail)?;
        let got = packet::parse(back).map_err(|e| TestCaseError::fail(format!("{e:?}")))?.key;
        let sent = FlowKey {
            proto: if matches!(s.kind, Kind::Tcp { .. }) { PROTO_TCP } else { PROTO_UDP },
            src: s.src,
            dst: s.dst,
            sport: s.sport,
            dport: s.dport,
        };
        prop_assert_eq!(got, sent.reversed(), "request went out as {}", request);
    }
}
