//! Unit tests of the Service table and endpoint choice.

use super::*;
use crate::packet::PROTO_TCP;

fn endpoints(n: u8) -> Vec<SocketAddrV4> {
    (0..n)
        .map(|i| SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 10 + i), 80))
        .collect()
}

fn flows(count: u16) -> impl Iterator<Item = FlowKey> {
    (0..count).map(|i| FlowKey {
        proto: PROTO_TCP,
        src: Ipv4Addr::new(10, 10, 1, 100 + (i % 50) as u8),
        dst: Ipv4Addr::new(10, 101, 182, 177),
        sport: 30000 + i,
        dport: 80,
    })
}

#[test]
fn spread_is_even() {
    for n in [2u8, 3, 7] {
        let e = ServicePortEntry::new(
            "s".into(),
            (Ipv4Addr::new(10, 96, 0, 5), 80, 6),
            Frontend::ClusterIp,
            endpoints(n),
        );
        let mut counts = HashMap::new();
        let total = 20_000u16;
        for f in flows(total) {
            *counts.entry(e.pick(&f).expect("endpoint")).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), usize::from(n), "every endpoint used");
        let expected = f64::from(total) / f64::from(n);
        for (ep, c) in counts {
            let dev = (f64::from(c) - expected).abs() / expected;
            assert!(
                dev < 0.10,
                "{n} endpoints: {ep} got {c}, expected ~{expected}"
            );
        }
    }
}

#[test]
fn choice_is_deterministic_and_stable_when_an_endpoint_goes() {
    let all = endpoints(5);
    let a = ServicePortEntry::new(
        "s".into(),
        (Ipv4Addr::new(10, 96, 0, 5), 80, 6),
        Frontend::ClusterIp,
        all.clone(),
    );
    let b = ServicePortEntry::new(
        "s".into(),
        (Ipv4Addr::new(10, 96, 0, 5), 80, 6),
        Frontend::ClusterIp,
        all.clone(),
    );
    let removed = all[2];
    let fewer: Vec<_> = all.iter().copied().filter(|e| *e != removed).collect();
    let c = ServicePortEntry::new(
        "s".into(),
        (Ipv4Addr::new(10, 96, 0, 5), 80, 6),
        Frontend::ClusterIp,
        fewer,
    );
    let mut moved = 0;
    let mut kept = 0;
    for f in flows(5000) {
        let before = a.pick(&f).expect("endpoint");
        assert_eq!(Some(before), b.pick(&f), "same table, same choice");
        let after = c.pick(&f).expect("endpoint");
        assert_ne!(after, removed);
        if before != removed {
            kept += 1;
            if after != before {
                moved += 1;
            }
        }
    }
    // Maglev: only a small share of the surviving flows move.
    assert!(moved * 100 / kept < 10, "{moved} of {kept} flows moved");
}

#[test]
fn lookup_classifies_destinations() {
    let cidr: Ipv4Net = "10.96.0.0/12".parse().expect("cidr");
    let mut t = ServiceTable::new(cidr);
    let vip = Ipv4Addr::new(10, 101, 182, 177);
    t.insert(ServicePortEntry::new(
        "default/nginx-svc".into(),
        (vip, 80, 6),
        Frontend::ClusterIp,
        endpoints(2),
    ));
    let k = |dst, dport, proto| FlowKey {
        proto,
        src: Ipv4Addr::new(10, 10, 1, 100),
        dst,
        sport: 1,
        dport,
    };
    assert!(matches!(t.lookup(&k(vip, 80, 6)), ServiceLookup::Port(_)));
    assert_eq!(t.lookup(&k(vip, 81, 6)), ServiceLookup::PortNotServed);
    assert_eq!(t.lookup(&k(vip, 80, 17)), ServiceLookup::PortNotServed);
    assert_eq!(t.lookup(&k(vip, 0, 1)), ServiceLookup::Icmp);
    assert_eq!(
        t.lookup(&k(Ipv4Addr::new(10, 96, 7, 7), 80, 6)),
        ServiceLookup::NoSuchServiceIp
    );
    assert_eq!(
        t.lookup(&k(Ipv4Addr::new(10, 10, 1, 42), 80, 6)),
        ServiceLookup::NotServiceIp
    );
}

#[test]
fn no_endpoints_picks_nothing() {
    let e = ServicePortEntry::new(
        "s".into(),
        (Ipv4Addr::new(10, 96, 0, 5), 80, 6),
        Frontend::ClusterIp,
        vec![],
    );
    assert_eq!(flows(10).filter_map(|f| e.pick(&f)).count(), 0);
}

/// The cases (2 -> 3, 6 -> 5, 10 -> 11 endpoints), on sampled flows:
/// flows whose endpoint stays keep it, apart from about 1% (a flow moving
/// to a new endpoint is that endpoint's share, which must move).
#[test]
fn surviving_flows_stay_when_the_count_changes() {
    let vip = (Ipv4Addr::new(10, 96, 0, 5), 80, 6);
    for (from, to) in [(2u8, 3u8), (6, 5), (10, 11), (5, 4)] {
        let a = ServicePortEntry::new("s".into(), vip, Frontend::ClusterIp, endpoints(from));
        let b = ServicePortEntry::new("s".into(), vip, Frontend::ClusterIp, endpoints(to));
        let (mut kept, mut moved) = (0u32, 0u32);
        for f in flows(20_000) {
            let (x, y) = (a.pick(&f).expect("endpoint"), b.pick(&f).expect("endpoint"));
            if b.has_endpoint(x) {
                kept += 1;
                moved += u32::from(x != y && a.has_endpoint(y));
            }
        }
        assert!(
            f64::from(moved) / f64::from(kept) < 0.02,
            "{from} -> {to}: {moved} of {kept} surviving flows moved"
        );
    }
}

/// A rebuild after a change shares the tables of unchanged endpoint sets
/// (no rebuild cost) and gives the same choices as a build from scratch.
#[test]
fn rebuild_keeps_the_tables_of_unchanged_endpoints() {
    let mut c =
        control::config::parse(include_str!("../../../control/tests/fixtures/cluster.toml"))
            .expect("config");
    let before = ServiceTable::from_cluster(&c, None);
    // One Service loses its endpoints; the others keep theirs.
    let echo = c
        .services
        .iter_mut()
        .find(|s| s.name == "echo-udp")
        .expect("echo-udp in config.toml");
    echo.selector = [("app".to_owned(), "none".to_owned())].into();
    let after = before.rebuild(&c, None);
    let fresh = ServiceTable::from_cluster(&c, None);
    assert_eq!(after.entries(), fresh.entries());
    let shared = |name: &str| {
        let slots = |t: &ServiceTable| {
            t.entries()
                .iter()
                .find(|e| e.name.starts_with(name))
                .map(|e| e.maglev().slots().as_ptr())
        };
        slots(&before) == slots(&after)
    };
    assert!(
        shared("default/nginx-svc"),
        "unchanged endpoints: same table"
    );
    assert!(!shared("default/echo-udp"), "changed endpoints: new table");
}
