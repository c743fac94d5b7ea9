use super::*;

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
    assert_eq!(
        overlay::decapsulate(buf.data(), 1, overlay::vtep_mac(to)),
        Ok(OVERLAY_HEADER_LEN)
    );
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
    // An inner frame for another VTEP (here the sender's own) or broadcast.
    for mac in [overlay::vtep_mac(worker_ip), [0xff; 6]] {
        assert_eq!(
            from_peer_to_mac(&mut master, t0, worker_ip, 1, mac, &good),
            Verdict::Drop(DropReason::OverlayWrongMac)
        );
    }
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
fn an_icmp_error_about_an_untracked_gre_flow_is_forwarded() {
    // A router on the path tells the pod its GRE packet was too big: the
    // error quotes GRE, which conntrack does not track. It must reach the
    // pod, not be dropped as "truncated".
    let (_, _, mut worker) = two_nodes();
    let t0 = Instant::now();
    let mut quoted = vec![
        0x45, 0, 0, 48, 0, 0, 0x40, 0, 64, 47, 0, 0, 10, 10, 1, 100, 10, 10, 0, 2,
    ];
    quoted.extend_from_slice(&[0; 8]);
    let mut err = Vec::new();
    etherparse::PacketBuilder::ipv4([192, 168, 191, 1], CLIENT.octets(), 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ))
        .write(&mut err, &quoted)
        .expect("build");
    assert_eq!(
        handle(&mut worker, t0, &mut err),
        Verdict::Forward(Egress::Tun)
    );
}
