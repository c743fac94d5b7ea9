use super::*;
use crate::wire::packet::{parse, FlowKey};
use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice};

#[test]
fn rst_answers_a_syn_with_valid_checksums() {
    let mut syn = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 100], [10, 96, 0, 20], 64)
        .tcp(40000, 80, 1_000_000, 64240)
        .syn()
        .write(&mut syn, &[])
        .expect("build");
    let p = parse(&syn).expect("parse");
    let rst = tcp_rst(&p).expect("rst");
    let s = SlicedPacket::from_ip(&rst).expect("etherparse parses the RST");
    let Some(etherparse::NetSlice::Ipv4(ip)) = &s.net else {
        panic!("ipv4");
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let Some(TransportSlice::Tcp(tcp)) = s.transport else {
        panic!("tcp");
    };
    assert!(tcp.rst() && tcp.ack() && !tcp.syn());
    assert_eq!(tcp.acknowledgment_number(), 1_000_001);
    assert_eq!((tcp.source_port(), tcp.destination_port()), (80, 40000));
    assert_eq!(
        tcp.checksum(),
        tcp.calc_checksum_ipv4(h.source, h.destination)
            .expect("csum")
    );
    assert_eq!(
        parse(&rst).expect("reparse").key,
        FlowKey { ..p.key.reversed() }
    );
}

#[test]
fn port_unreachable_quotes_the_datagram() {
    let mut dgram = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 100], [10, 96, 0, 20], 64)
        .udp(5000, 9000)
        .write(&mut dgram, b"hostname")
        .expect("build");
    let p = parse(&dgram).expect("parse");
    let err = icmp_port_unreachable(&dgram, &p);
    let s = SlicedPacket::from_ip(&err).expect("etherparse parses");
    let Some(TransportSlice::Icmpv4(icmp)) = s.transport else {
        panic!("icmp");
    };
    assert!(matches!(
        icmp.icmp_type(),
        Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port)
    ));
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type().calc_checksum(icmp.payload())
    );
    assert_eq!(icmp.payload(), &dgram[..]);
    let back = parse(&err).expect("reparse");
    assert_eq!(back.transport, Transport::IcmpError { inner: p.key });
}
