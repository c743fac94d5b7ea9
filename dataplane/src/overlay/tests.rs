use super::*;

#[test]
fn header_round_trip() {
    let mut h = [0u8; OVERLAY_HEADER_LEN];
    let a = vtep_mac(Ipv4Addr::new(192, 168, 191, 144));
    let b = vtep_mac(Ipv4Addr::new(192, 168, 191, 145));
    write_header(&mut h, 0x00ab_cdef, a, b);
    assert_eq!(&h[..8], &[0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0]);
    assert_eq!(&h[8..14], &b);
    assert_eq!(&h[14..20], &a);
    assert_eq!(decapsulate(&h, 0x00ab_cdef, b), Ok(OVERLAY_HEADER_LEN));
    assert_eq!(decapsulate(&h, 1, b), Err(DecapError::WrongVni));
    assert_eq!(
        decapsulate(&h[..21], 0x00ab_cdef, b),
        Err(DecapError::Truncated)
    );
    let mut arp = h;
    arp[20..22].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(decapsulate(&arp, 0x00ab_cdef, b), Err(DecapError::NotIpv4));
    // A frame for another VTEP (here the sender's own MAC), or broadcast.
    assert_eq!(decapsulate(&h, 0x00ab_cdef, a), Err(DecapError::WrongMac));
    let mut bcast = h;
    bcast[8..14].copy_from_slice(&[0xff; 6]);
    assert_eq!(
        decapsulate(&bcast, 0x00ab_cdef, b),
        Err(DecapError::WrongMac)
    );
    assert_eq!(format_mac(a), "0e:6b:c0:a8:bf:90");
}

/// The cluster model owns the overlay's settings and its 50-byte
/// overhead (`cluster::Overlay::pod_mtu`); this is what that figure is
/// made of: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
#[test]
fn the_cluster_models_overhead_is_our_headers() {
    let o = cluster::Overlay::default();
    let overhead = usize::from(o.underlay_mtu - o.pod_mtu());
    assert_eq!(overhead, 20 + 8 + OVERLAY_HEADER_LEN);
}

#[test]
fn etherparse_reads_our_frame() {
    let mut h = [0u8; OVERLAY_HEADER_LEN];
    write_header(&mut h, 1, [2; 6], [4; 6]);
    let mut frame = h[VXLAN_HEADER_LEN..].to_vec();
    etherparse::PacketBuilder::ipv4([10, 10, 1, 2], [10, 10, 0, 2], 64)
        .udp(1, 2)
        .write(&mut frame, b"x")
        .expect("build");
    let p = etherparse::SlicedPacket::from_ethernet(&frame).expect("ethernet");
    assert!(matches!(p.net, Some(etherparse::NetSlice::Ipv4(_))));
}
