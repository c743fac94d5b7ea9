use super::*;
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

fn tcp_packet(syn: bool, payload: &[u8]) -> Vec<u8> {
    let b =
        PacketBuilder::ipv4([10, 10, 1, 100], [10, 101, 182, 177], 64).tcp(40000, 80, 1000, 64240);
    let b = if syn { b.syn() } else { b.ack(5) };
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("build");
    out
}

/// Checks every checksum with etherparse, an independent implementation.
fn assert_checksums_valid(buf: &[u8]) {
    let sliced = SlicedPacket::from_ip(buf).expect("etherparse parses");
    let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else {
        panic!("not ipv4");
    };
    let hdr = ip.header().to_header();
    assert_eq!(
        hdr.header_checksum,
        hdr.calc_header_checksum(),
        "IP checksum"
    );
    let src = hdr.source;
    let dst = hdr.destination;
    match sliced.transport.expect("transport") {
        TransportSlice::Tcp(tcp) => {
            let calc = tcp.calc_checksum_ipv4(src, dst).expect("calc");
            assert_eq!(tcp.checksum(), calc, "TCP checksum");
        }
        TransportSlice::Udp(udp) => {
            let calc = udp
                .to_header()
                .calc_checksum_ipv4_raw(src, dst, udp.payload())
                .expect("calc");
            assert_eq!(udp.checksum(), calc, "UDP checksum");
        }
        TransportSlice::Icmpv4(icmp) => {
            let calc = icmp.icmp_type().calc_checksum(icmp.payload());
            assert_eq!(icmp.checksum(), calc, "ICMP checksum");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn parses_tcp_syn() {
    let pkt = tcp_packet(true, b"");
    let p = parse(&pkt).expect("parse");
    assert_eq!(
        p.key,
        FlowKey {
            proto: 6,
            src: Ipv4Addr::new(10, 10, 1, 100),
            dst: Ipv4Addr::new(10, 101, 182, 177),
            sport: 40000,
            dport: 80
        }
    );
    let Transport::Tcp { flags, seg_len, .. } = p.transport else {
        panic!("not tcp");
    };
    assert!(flags.syn && !flags.ack);
    assert_eq!(seg_len, 1);
}

/// DNATs a TCP packet to 10.10.1.42:8080 and checks every checksum and
/// the new tuple.
fn dnat_and_check(pkt: &mut [u8]) {
    let p = parse(pkt).expect("parse");
    let to = FlowKey {
        dst: Ipv4Addr::new(10, 10, 1, 42),
        dport: 8080,
        ..p.key
    };
    rewrite(pkt, &p, &to);
    assert_checksums_valid(pkt);
    assert_eq!(parse(pkt).expect("reparse").key, to);
}

#[test]
fn tcp_dnat_rewrite_matches_independent_checksum() {
    let mut pkt = tcp_packet(false, b"GET / HTTP/1.1\r\n\r\n");
    dnat_and_check(&mut pkt);
}

/// Linux writes a computed TCP checksum of zero as 0xffff when it finishes
/// one in software (`skb_checksum_help`: `csum_fold(csum) ?: CSUM_MANGLED_0`);
/// both are zero in one's-complement arithmetic, and a rewrite from it must
/// still give a valid checksum.
#[test]
fn tcp_rewrite_from_an_all_ones_zero_checksum() {
    let mut pkt = tcp_packet(false, b"ab");
    // Make the true checksum 0: with payload word `c` the sum becomes all
    // ones. Then store it the way Linux does.
    let l4 = 20;
    let c = u16::from_be_bytes([pkt[l4 + 16], pkt[l4 + 17]]);
    let payload = pkt.len() - 2;
    let old_word = u16::from_be_bytes([pkt[payload], pkt[payload + 1]]);
    let word = checksum::update_u16(c, old_word, 0);
    pkt[payload..].copy_from_slice(&word.to_be_bytes());
    pkt[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
    assert_checksums_valid(&pkt);
    pkt[l4 + 16..l4 + 18].copy_from_slice(&[0xff, 0xff]);
    dnat_and_check(&mut pkt);
}

#[test]
fn udp_snat_and_dnat_rewrite_matches_independent_checksum() {
    let mut pkt = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 100], [10, 96, 0, 10], 64)
        .udp(5353, 53)
        .write(&mut pkt, b"hello, odd length")
        .expect("build");
    let p = parse(&pkt).expect("parse");
    let to = FlowKey {
        proto: 17,
        src: Ipv4Addr::new(10, 101, 0, 1),
        sport: 61000,
        dst: Ipv4Addr::new(10, 10, 1, 43),
        dport: 9000,
    };
    rewrite(&mut pkt, &p, &to);
    assert_checksums_valid(&pkt);
    assert_eq!(parse(&pkt).expect("reparse").key, to);
}

#[test]
fn udp_zero_checksum_stays_zero() {
    let mut pkt = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 100], [10, 96, 0, 10], 64)
        .udp(5353, 53)
        .write(&mut pkt, b"x")
        .expect("build");
    pkt[20 + 6] = 0;
    pkt[20 + 7] = 0;
    let p = parse(&pkt).expect("parse");
    let to = FlowKey {
        dst: Ipv4Addr::new(10, 10, 1, 43),
        ..p.key
    };
    rewrite(&mut pkt, &p, &to);
    assert_eq!(&pkt[26..28], &[0, 0]);
}

#[test]
fn icmp_echo_ident_rewrite() {
    let mut pkt = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 100], [10, 10, 1, 42], 64)
        .icmpv4_echo_request(77, 1)
        .write(&mut pkt, b"abcdefgh")
        .expect("build");
    let p = parse(&pkt).expect("parse");
    assert_eq!(p.key.sport, 77);
    let to = FlowKey {
        src: Ipv4Addr::new(10, 101, 182, 177),
        sport: 1234,
        dport: 1234,
        ..p.key
    };
    rewrite(&mut pkt, &p, &to);
    assert_checksums_valid(&pkt);
    assert_eq!(parse(&pkt).expect("reparse").key, to);
}

#[test]
fn refuses_bad_input_without_panicking() {
    assert_eq!(parse(&[]), Err(DropReason::Truncated));
    assert_eq!(parse(&[0x60; 40]), Err(DropReason::NotIpv4));
    let pkt = tcp_packet(true, b"");
    for cut in 0..pkt.len() {
        assert!(parse(&pkt[..cut]).is_err(), "truncated at {cut} accepted");
    }
    let mut frag = pkt.clone();
    frag[6] = 0x20; // more fragments
    assert_eq!(parse(&frag), Err(DropReason::Fragment));
    let mut bad_ihl = pkt.clone();
    bad_ihl[0] = 0x43;
    assert!(parse(&bad_ihl).is_err());
    // Every byte pattern of a short packet: no panic.
    for b in 0..=255u8 {
        let mut p = pkt.clone();
        p[0] = b;
        let _ = parse(&p);
        let mut p = pkt.clone();
        p[32] = b; // TCP data offset
        let _ = parse(&p);
    }
}
#[test]
fn icmp_error_quoting_a_natted_datagram_is_translated() {
    // A backend (10.10.1.42) answers a DNATed datagram with port unreachable.
    let mut dgram = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 100], [10, 10, 1, 42], 64)
        .udp(5000, 9000)
        .write(&mut dgram, b"hostname")
        .expect("build");
    let mut err = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 42], [10, 10, 1, 100], 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut err, &dgram)
        .expect("build");
    let p = parse(&err).expect("parse");
    let Transport::IcmpError { inner } = p.transport else {
        panic!("not an ICMP error");
    };
    let vip = Ipv4Addr::new(10, 101, 182, 177);
    let to = FlowKey {
        dst: vip,
        dport: 80,
        ..inner
    };
    rewrite_icmp_error(&mut err, &p, &inner, &to, vip, inner.src);
    assert_checksums_valid(&err);
    let back = parse(&err).expect("reparse");
    assert_eq!(
        (back.key.src, back.key.dst),
        (vip, Ipv4Addr::new(10, 10, 1, 100))
    );
    assert_eq!(back.transport, Transport::IcmpError { inner: to });
    // The quoted datagram's own checksums are right too.
    let quoted = &err[28..];
    let q = etherparse::Ipv4Slice::from_slice(quoted).expect("quoted ip");
    let h = q.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let udp = etherparse::UdpSlice::from_slice(q.payload().payload).expect("quoted udp");
    assert_eq!(
        udp.checksum(),
        udp.to_header()
            .calc_checksum_ipv4_raw(h.source, h.destination, udp.payload())
            .expect("csum")
    );
}

/// An ICMP error quoting an `proto` packet (a GRE, ESP or SCTP header after
/// the IP header; only 8 bytes of it, as RFC 792 asks).
fn icmp_error_quoting(proto: u8) -> Vec<u8> {
    let mut quoted = vec![
        0x45, 0, 0, 48, 0, 0, 0x40, 0, 64, proto, 0, 0, 10, 10, 1, 100, 10, 10, 0, 2,
    ];
    quoted.extend_from_slice(&[0xaa; 8]);
    let mut err = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 1], [10, 10, 1, 100], 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1450 },
        ))
        .write(&mut err, &quoted)
        .expect("build");
    err
}

#[test]
fn icmp_errors_quoting_any_protocol_parse() {
    // GRE, ESP, SCTP: the router's own "fragmentation needed" for them was
    // dropped as truncated by the next router.
    for proto in [47u8, 50, 132] {
        let p = parse(&icmp_error_quoting(proto)).expect("parses");
        let Transport::IcmpError { inner } = p.transport else {
            panic!("not an ICMP error: {:?}", p.transport);
        };
        assert_eq!(inner.proto, proto);
        assert_eq!(
            (inner.src, inner.dst, inner.sport, inner.dport),
            (
                Ipv4Addr::new(10, 10, 1, 100),
                Ipv4Addr::new(10, 10, 0, 2),
                0,
                0
            )
        );
    }
    // A TCP quote still needs its 8 transport bytes.
    let mut short = icmp_error_quoting(PROTO_TCP);
    short.truncate(short.len() - 4);
    assert_eq!(parse(&short).map(|_| ()), Err(DropReason::Truncated));
}

#[test]
fn an_icmp_error_quoting_gre_is_rewritten_addresses_only() {
    let mut err = icmp_error_quoting(47);
    let p = parse(&err).expect("parse");
    let Transport::IcmpError { inner } = p.transport else {
        panic!("not an ICMP error");
    };
    let to = FlowKey {
        src: Ipv4Addr::new(10, 10, 1, 0),
        ..inner
    };
    rewrite_icmp_error(&mut err, &p, &inner, &to, p.key.src, p.key.dst);
    assert_checksums_valid(&err);
    let back = parse(&err).expect("reparse");
    assert_eq!(back.transport, Transport::IcmpError { inner: to });
}
