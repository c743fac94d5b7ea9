use super::*;
use crate::wire::packet::{parse, rewrite_with, FlowKey};
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use std::net::Ipv4Addr;

const MSS: u16 = 1410;

/// A TCP super-packet as the kernel hands it to a TUN reader with
/// offload: `len` payload bytes, its checksum field holding the folded,
/// uncomplemented pseudo-header sum.
fn tcp_super_packet(len: usize, flags: u8) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let mut out = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 100], [10, 96, 0, 50], 64)
        .tcp(40000, 5201, 1_000_000, 64240)
        .ack(77)
        .write(&mut out, &payload)
        .expect("build");
    out[20 + 13] |= flags;
    make_partial(&mut out);
    out
}

fn udp_super_packet(len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
    let mut out = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 100], [10, 96, 0, 50], 64)
        .udp(40000, 53)
        .write(&mut out, &payload)
        .expect("build");
    make_partial(&mut out);
    out
}

/// Replaces the full checksum with the partial one the kernel leaves.
fn make_partial(p: &mut [u8]) {
    let proto = p[9];
    let off = 20 + if proto == PROTO_TCP { 16 } else { 6 };
    let l4_len = (p.len() - 20) as u16;
    let sum = checksum::pseudo_header_sum(
        [p[12], p[13], p[14], p[15]],
        [p[16], p[17], p[18], p[19]],
        proto,
        l4_len,
    );
    let folded = !checksum::checksum(sum, &[]);
    p[off..off + 2].copy_from_slice(&folded.to_be_bytes());
}

/// Checks every checksum with etherparse, an independent implementation.
fn assert_valid(buf: &[u8]) {
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
    let (src, dst) = (hdr.source, hdr.destination);
    match sliced.transport.expect("transport") {
        TransportSlice::Tcp(tcp) => {
            assert_eq!(
                tcp.checksum(),
                tcp.calc_checksum_ipv4(src, dst).expect("calc"),
                "TCP"
            );
        }
        TransportSlice::Udp(udp) => {
            let calc = udp
                .to_header()
                .calc_checksum_ipv4_raw(src, dst, udp.payload())
                .expect("calc");
            assert_eq!(udp.checksum(), calc, "UDP checksum");
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn dnat(pkt: &mut [u8], dst: Ipv4Addr, dport: u16, src: Ipv4Addr, sport: u16) {
    let p = parse(pkt).expect("parse");
    let to = FlowKey {
        src,
        sport,
        dst,
        dport,
        ..p.key
    };
    rewrite_with(pkt, &p, &to, L4Checksum::Partial);
}

fn segments(pkt: &[u8], gso: Gso, prefix: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Some(segs) = segment(pkt, gso, prefix, &mut out) else {
        assert!(out.is_empty());
        return Vec::new();
    };
    let v: Vec<Vec<u8>> = segs.iter(&out).map(<[u8]>::to_vec).collect();
    assert_eq!(v.len(), segs.count);
    for s in &v[..v.len() - 1] {
        assert_eq!(s.len(), segs.stride, "all but the last are stride long");
    }
    assert!(v[v.len() - 1].len() <= segs.stride);
    v
}

#[test]
fn nat_of_a_tcp_super_packet_keeps_every_segment_valid() {
    let mut pkt = tcp_super_packet(60_000, 0x08 | 0x01 | 0x80); // PSH FIN CWR
    dnat(
        &mut pkt,
        Ipv4Addr::new(10, 10, 2, 7),
        8080,
        Ipv4Addr::new(10, 10, 1, 1),
        33000,
    );
    let segs = segments(&pkt, Gso::Tcp { mss: MSS }, &[]);
    assert_eq!(segs.len(), 60_000usize.div_ceil(usize::from(MSS)));
    let mut payload = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        assert_valid(s);
        assert!(s.len() <= 40 + usize::from(MSS));
        let sliced = SlicedPacket::from_ip(s).expect("parse");
        let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
            panic!("tcp");
        };
        assert_eq!((tcp.source_port(), tcp.destination_port()), (33000, 8080));
        assert_eq!(
            tcp.sequence_number(),
            1_000_000 + (i * usize::from(MSS)) as u32
        );
        let last = i + 1 == segs.len();
        assert_eq!(tcp.fin(), last, "FIN on the last segment only");
        assert_eq!(tcp.psh(), last, "PSH on the last segment only");
        assert_eq!(tcp.cwr(), i == 0, "CWR on the first segment only");
        payload.extend_from_slice(tcp.payload());
    }
    let expected: Vec<u8> = (0..60_000usize).map(|i| (i * 7 + 3) as u8).collect();
    assert_eq!(payload, expected);
}

#[test]
fn finishing_a_nated_partial_checksum_gives_the_full_one() {
    for len in [0usize, 1, 100, 1410, 9000, 65_000] {
        let mut pkt = tcp_super_packet(len, 0);
        dnat(
            &mut pkt,
            Ipv4Addr::new(10, 10, 2, 7),
            80,
            Ipv4Addr::new(10, 10, 1, 100),
            40000,
        );
        finish_checksum(&mut pkt);
        assert_valid(&pkt);
        let mut udp = udp_super_packet(len.min(65_000));
        dnat(
            &mut udp,
            Ipv4Addr::new(10, 10, 1, 53),
            5353,
            Ipv4Addr::new(10, 10, 1, 1),
            1,
        );
        finish_checksum(&mut udp);
        assert_valid(&udp);
    }
}

#[test]
fn many_rewrites_of_partial_sums_agree_with_full_recomputation() {
    // A cheap property test: pseudo-random addresses and ports (a fixed
    // LCG, so failures reproduce).
    let mut x: u64 = 0x1234_5678;
    let mut next = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 32) as u32
    };
    for _ in 0..500 {
        let len = (next() % 3000) as usize;
        let mut pkt = tcp_super_packet(len, 0);
        let dst = Ipv4Addr::from(next());
        let src = Ipv4Addr::from(next());
        dnat(&mut pkt, dst, next() as u16, src, next() as u16);
        finish_checksum(&mut pkt);
        assert_valid(&pkt);
    }
}

#[test]
fn udp_super_packets_are_cut_into_datagrams() {
    let mut pkt = udp_super_packet(5000);
    dnat(
        &mut pkt,
        Ipv4Addr::new(10, 10, 2, 9),
        9999,
        Ipv4Addr::new(10, 10, 1, 100),
        40000,
    );
    let segs = segments(&pkt, Gso::Udp { size: 1200 }, &[]);
    assert_eq!(segs.len(), 5);
    for s in &segs {
        assert_valid(s);
    }
    assert_eq!(segs[4].len(), 28 + 5000 - 4 * 1200);
}

#[test]
fn segments_follow_the_prefix() {
    let pkt = tcp_super_packet(3000, 0);
    let prefix = [0xaa; 22];
    for s in segments(&pkt, Gso::Tcp { mss: 1000 }, &prefix) {
        assert_eq!(&s[..22], &prefix);
        assert_valid(&s[22..]);
    }
}

#[test]
fn malformed_or_mismatched_packets_give_no_segments() {
    let tcp = tcp_super_packet(3000, 0);
    assert!(segments(&tcp, Gso::Udp { size: 1000 }, &[]).is_empty());
    assert!(segments(&tcp, Gso::Tcp { mss: 0 }, &[]).is_empty());
    assert!(segments(&tcp, Gso::None, &[]).is_empty());
    assert!(segments(&tcp[..30], Gso::Tcp { mss: 100 }, &[]).is_empty());
    assert!(segments(&[], Gso::Tcp { mss: 100 }, &[]).is_empty());
}

#[test]
fn too_big_is_decided_on_the_segment_size() {
    let tcp = tcp_super_packet(60_000, 0);
    assert_eq!(largest_segment(&tcp, Gso::Tcp { mss: MSS }), Some(1450));
    assert_eq!(largest_segment(&tcp, Gso::None), None);
    let small = tcp_super_packet(100, 0);
    assert_eq!(largest_segment(&small, Gso::Tcp { mss: MSS }), Some(140));
}
