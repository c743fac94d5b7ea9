use super::*;
use crate::conntrack::TcpState;
use std::time::Duration;

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

/// Runs `pkt` through `dp`, journaling, and returns what `dp` recorded.
fn journaled(dp: &mut Dataplane, t: Instant, pkt: &mut Vec<u8>) -> Vec<CtChange> {
    let _ = handle(dp, t, pkt);
    let mut out = Vec::new();
    assert!(dp.drain_conntrack_changes(&mut out));
    out
}

#[test]
fn a_restarted_data_plane_un_nats_a_reply_that_arrives_first() {
    // The client's router restarts mid-stream; the server's next segment
    // arrives before the client's. Without the saved flow it would reach
    // the client from the endpoint's address (a RST); with it, it comes
    // from the ClusterIP as before.
    let c = cluster();
    let t0 = Instant::now();
    let mut old = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
    old.set_conntrack_journaling(true);
    let mut journal = Vec::new();
    let mut syn = tcp(CLIENT, VIP, 40000, 80, true);
    journal.extend(journaled(&mut old, t0, &mut syn));
    let endpoint = packet::parse(&syn).expect("parse").key.dst;
    let mut synack = Vec::new();
    PacketBuilder::ipv4(endpoint.octets(), CLIENT.octets(), 64)
        .tcp(80, 40000, 1, 1000)
        .syn()
        .ack(1)
        .write(&mut synack, &[])
        .expect("build");
    journal.extend(journaled(&mut old, t0, &mut synack));
    journal.extend(journaled(
        &mut old,
        t0,
        &mut tcp(CLIENT, VIP, 40000, 80, false),
    ));
    // Created, answered (SYN_RECV), established: three records.
    assert_eq!(journal.len(), 3, "{journal:?}");
    let Some(CtChange::Saved(last)) = journal.last() else {
        panic!("{journal:?}");
    };
    assert_eq!(last.tcp, Some(TcpState::Established));
    // A new process replays the journal.
    let mut saved = std::collections::HashMap::new();
    for change in journal {
        match change {
            CtChange::Saved(s) => {
                saved.insert(s.original, s);
            }
            CtChange::Removed(k) => {
                saved.remove(&k);
            }
        }
    }
    let t1 = t0 + Duration::from_secs(1);
    let mut new = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
    assert_eq!(new.restore_conntrack(saved.into_values(), t1), (1, 0));
    let mut data = tcp(endpoint, CLIENT, 80, 40000, false);
    assert_eq!(
        handle(&mut new, t1, &mut data),
        Verdict::Forward(Egress::Tun)
    );
    let back = packet::parse(&data).expect("parse").key;
    assert_eq!(
        (back.src, back.sport),
        (VIP, 80),
        "un-NATed as before the restart"
    );
    let flow = new.conntrack_listing(t1);
    assert_eq!(flow.len(), 1);
    assert_eq!(flow[0].state, Some(TcpState::Established));
}

#[test]
fn restored_udp_flows_to_gone_endpoints_are_dropped() {
    // The default cluster's UDP Service; its endpoint is deleted while the
    // router is down: the restored flow must not keep sending into the void.
    let c = control::config::parse(include_str!(
        "../../../../control/tests/fixtures/cluster.toml"
    ))
    .expect("config");
    let svc = c.service("default", "echo-udp").expect("echo-udp");
    let (vip, port) = (svc.cluster_ip, svc.ports[0].port);
    let t0 = Instant::now();
    let mut old = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
    let mut q = Vec::new();
    PacketBuilder::ipv4(CLIENT.octets(), vip.octets(), 64)
        .udp(5000, port)
        .write(&mut q, b"x")
        .expect("build");
    assert_eq!(handle(&mut old, t0, &mut q), Verdict::Forward(Egress::Tun));
    let endpoint = packet::parse(&q).expect("parse").key.dst;
    let saved = old.conntrack_snapshot();
    assert_eq!(saved.len(), 1);
    // Restored into the same cluster: kept.
    let mut same = Dataplane::new(&DataplaneConfig::default(), &c, NODE).expect("node");
    assert_eq!(same.restore_conntrack(saved.clone(), t0), (1, 0));
    // Restored after the endpoint went: dropped.
    let mut gone = c.clone();
    gone.pods.retain(|p| p.ip != endpoint);
    let mut new = Dataplane::new(&DataplaneConfig::default(), &gone, NODE).expect("node");
    assert_eq!(new.restore_conntrack(saved, t0), (1, 1));
    assert!(new.conntrack().is_empty());
}
