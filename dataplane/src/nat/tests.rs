use super::*;
use crate::wire::packet::parse;
use etherparse::PacketBuilder;

#[test]
fn translate_reports_what_it_rewrote() {
    let mut pkt = Vec::new();
    PacketBuilder::ipv4([10, 10, 1, 100], [10, 96, 0, 10], 64)
        .udp(5000, 53)
        .write(&mut pkt, b"query")
        .expect("build");
    let p = parse(&pkt).expect("parse");
    let to = FlowKey {
        dst: Ipv4Addr::new(10, 10, 1, 53),
        ..p.key
    };
    let nat = Translation::Flow { to };
    assert_eq!(nat.to(&p), to);
    let done = nat.translate(&mut pkt, &p, L4Checksum::Full);
    assert_eq!(done, Rewritten { from: p.key, to });
    assert!(done.destination_changed() && !done.source_changed());
    assert_eq!(parse(&pkt).expect("reparse").key, to);
}

#[test]
fn source_ports_are_a_bounded_spread_over_the_range() {
    let key = FlowKey {
        proto: 6,
        src: Ipv4Addr::new(10, 10, 1, 100),
        dst: Ipv4Addr::new(10, 96, 0, 10),
        sport: 40000,
        dport: 80,
    };
    let ports: Vec<u16> = source_ports(&key).collect();
    assert_eq!(ports.len(), MAX_PORT_ATTEMPTS);
    assert!(ports
        .iter()
        .all(|p| (NAT_PORT_FIRST..=NAT_PORT_LAST).contains(p)));
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() >= MAX_PORT_ATTEMPTS - 2,
        "{}",
        distinct.len()
    );
    // Spread over the range, not a run from one start.
    let (lo, hi) = (distinct[0], distinct[distinct.len() - 1]);
    assert!(hi - lo > (NAT_PORT_LAST - NAT_PORT_FIRST) / 2);
    // Deterministic for a flow, different for another.
    assert_eq!(ports, source_ports(&key).collect::<Vec<_>>());
    let other: Vec<u16> = source_ports(&FlowKey {
        sport: 40001,
        ..key
    })
    .collect();
    assert_ne!(ports, other);
    let icmp = with_source_port(FlowKey { proto: 1, ..key }, 33000);
    assert_eq!((icmp.sport, icmp.dport), (33000, 33000));
}
