//! TUN offload through the engine: super-packets with partial checksums
//! are NATed once and keep (or finish) their offload state by next hop.

use super::*;
use crate::wire::checksum;
use crate::wire::offload::{self, Gso, L4Checksum, Offload};
use etherparse::{SlicedPacket, TransportSlice};

const MASTER_UNDERLAY: Ipv4Addr = Ipv4Addr::new(192, 168, 191, 144);
const SERVICE: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 50);
const SUPER: Offload = Offload {
    checksum: L4Checksum::Partial,
    gso: Gso::Tcp { mss: 1410 },
};

/// A client source port whose flow to the Service goes to `to`.
fn sport_towards(dp: &mut Dataplane, t0: Instant, to: Egress) -> u16 {
    (1000..2000u16)
        .find(|&sport| {
            let mut probe = tcp(CLIENT, SERVICE, sport, 80, true);
            handle(dp, t0, &mut probe) == Verdict::Forward(to)
        })
        .expect("some flow goes there")
}

/// A TCP super-packet of `len` payload bytes, its checksum field holding
/// the pseudo-header sum (as the kernel leaves it with NEEDS_CSUM).
fn super_packet(sport: u16, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv4(CLIENT.octets(), SERVICE.octets(), 64)
        .tcp(sport, 80, 2, 1000)
        .ack(1)
        .write(&mut p, &vec![7u8; len])
        .expect("build");
    p[6] |= 0x40; // DF, as TCP sets it
    p[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(0, &p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let sum =
        checksum::pseudo_header_sum(CLIENT.octets(), SERVICE.octets(), 6, (p.len() - 20) as u16);
    let partial = !checksum::checksum(sum, &[]);
    p[36..38].copy_from_slice(&partial.to_be_bytes());
    p
}

fn assert_valid_tcp(seg: &[u8], dst: Ipv4Addr) {
    let s = SlicedPacket::from_ip(seg).expect("parses");
    let Some(etherparse::NetSlice::Ipv4(ip)) = s.net else {
        panic!("ipv4");
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!(Ipv4Addr::from(h.destination), dst);
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        panic!("tcp");
    };
    assert_eq!(
        t.checksum(),
        t.calc_checksum_ipv4(h.source, h.destination).expect("calc")
    );
}

#[test]
fn a_super_packet_to_a_peer_is_natted_once_and_cut_into_valid_segments() {
    let (_, _, mut worker) = two_nodes();
    let t0 = Instant::now();
    let to = Egress::Overlay {
        to: MASTER_UNDERLAY,
    };
    let sport = sport_towards(&mut worker, t0, to);
    let mut buf = PacketBuf::from_slice(&super_packet(sport, 60_000));
    buf.set_offload(SUPER);
    assert_eq!(
        worker.handle_packet(t0, Ingress::Tun, &mut buf),
        Verdict::Forward(to)
    );
    assert_eq!(buf.offload(), SUPER, "the shell segments it");
    let (header, inner) = buf.data().split_at(OVERLAY_HEADER_LEN);
    let mut out = Vec::new();
    let segs = offload::segment(inner, SUPER.gso, header, &mut out).expect("segments");
    let mut count = 0;
    for seg in segs.iter(&out) {
        assert!(seg.len() - OVERLAY_HEADER_LEN <= 1450, "fits the overlay");
        assert_eq!(&seg[..OVERLAY_HEADER_LEN], header);
        assert_valid_tcp(&seg[OVERLAY_HEADER_LEN..], Ipv4Addr::new(10, 10, 0, 2));
        count += 1;
    }
    assert_eq!(count, 60_000usize.div_ceil(1410));
}

#[test]
fn a_super_packet_to_a_local_pod_goes_back_whole_with_its_partial_sum() {
    let (_, _, mut worker) = two_nodes();
    let t0 = Instant::now();
    let sport = sport_towards(&mut worker, t0, Egress::Tun);
    let mut buf = PacketBuf::from_slice(&super_packet(sport, 60_000));
    buf.set_offload(SUPER);
    assert_eq!(
        worker.handle_packet(t0, Ingress::Tun, &mut buf),
        Verdict::Forward(Egress::Tun)
    );
    assert_eq!(buf.offload(), SUPER, "the kernel segments it");
    assert_eq!(buf.len(), 60_040);
    let mut done = buf.data().to_vec();
    offload::finish_checksum(&mut done);
    assert_valid_tcp(&done, Ipv4Addr::new(10, 10, 1, 2));
}

#[test]
fn too_big_is_decided_on_the_segment_size_not_the_super_packet() {
    let (_, _, mut worker) = two_nodes();
    let t0 = Instant::now();
    let to = Egress::Overlay {
        to: MASTER_UNDERLAY,
    };
    let sport = sport_towards(&mut worker, t0, to);
    let mut buf = PacketBuf::from_slice(&super_packet(sport, 30_000));
    buf.set_offload(Offload {
        gso: Gso::Tcp { mss: 1460 },
        ..SUPER
    });
    assert_eq!(
        worker.handle_packet(t0, Ingress::Tun, &mut buf),
        Verdict::Drop(DropReason::TooBig)
    );
    let t = worker.poll_transmit().expect("frag needed");
    assert_eq!(&t.packet[20..22], &[3, 4], "ICMP fragmentation needed");
}

#[test]
fn a_partial_checksum_to_a_peer_is_finished_by_the_core() {
    let (_, _, mut worker) = two_nodes();
    let t0 = Instant::now();
    let to = Egress::Overlay {
        to: MASTER_UNDERLAY,
    };
    let sport = sport_towards(&mut worker, t0, to);
    let mut buf = PacketBuf::from_slice(&super_packet(sport, 1000));
    buf.set_offload(Offload {
        checksum: L4Checksum::Partial,
        gso: Gso::None,
    });
    assert_eq!(
        worker.handle_packet(t0, Ingress::Tun, &mut buf),
        Verdict::Forward(to)
    );
    assert!(buf.offload().is_none());
    assert_valid_tcp(
        &buf.data()[OVERLAY_HEADER_LEN..],
        Ipv4Addr::new(10, 10, 0, 2),
    );
}
