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
        control::config::parse(include_str!("../../../config.toml")).expect("default config");
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

fn from_peer(dp: &mut Dataplane, now: Instant, from: Ipv4Addr, vni: u32, inner: &[u8]) -> Verdict {
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
        Verdict::Drop(DropReason::OverlayWrongVni),
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
    let c = crate::wire::checksum::checksum(0, &big[..20]);
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
    let gateway = node.gateway();
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
