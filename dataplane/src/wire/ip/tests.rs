use super::*;

#[test]
fn udp_datagram_has_valid_checksums() {
    let mut out = vec![0xaa]; // appends after what is there
    let src = Ipv4Addr::new(192, 168, 191, 145);
    let dst = Ipv4Addr::new(192, 168, 191, 144);
    push_ipv4_udp(&mut out, (src, 8472), (dst, 8472), b"odd length");
    let s = etherparse::SlicedPacket::from_ip(&out[1..]).expect("parse");
    let Some(etherparse::NetSlice::Ipv4(ip)) = &s.net else {
        panic!("ipv4");
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert!(h.dont_fragment);
    assert_eq!((h.time_to_live, h.identification), (TTL, 0));
    let Some(etherparse::TransportSlice::Udp(udp)) = s.transport else {
        panic!("udp");
    };
    assert_eq!((udp.source_port(), udp.destination_port()), (8472, 8472));
    assert_eq!(udp.payload(), b"odd length");
    assert_eq!(
        udp.checksum(),
        udp.to_header()
            .calc_checksum_ipv4_raw(src.octets(), dst.octets(), udp.payload())
            .expect("csum")
    );
}
