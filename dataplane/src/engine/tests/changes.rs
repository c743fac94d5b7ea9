//! One watch event at a time ([`Dataplane::apply_change`]): each kind of
//! change does what a whole apply of the changed cluster would, and
//! touches nothing else.

use std::net::SocketAddrV4;

use super::*;
use crate::conntrack::Direction;
use crate::packet::FlowKey;
use crate::service::{ServiceLookup, ServicePortEntry};
use cluster::{
    ClusterChange, EndpointConditions, EndpointPort, EndpointSlice, ObjectKey, Pod, SliceEndpoint,
};

const WEB_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 50);
const DNS_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 60);

fn slice(name: &str, service: &str, proto: Protocol, port: u16, ips: &[Ipv4Addr]) -> EndpointSlice {
    EndpointSlice {
        key: ObjectKey::new("default", name),
        service: service.into(),
        ports: vec![EndpointPort {
            name: None,
            port,
            protocol: proto,
        }],
        endpoints: ips
            .iter()
            .map(|ip| SliceEndpoint {
                ip: *ip,
                node: Some(
                    if ip.octets()[2] == 0 {
                        "mac-master"
                    } else {
                        NODE
                    }
                    .into(),
                ),
                pod: Some(format!("pod-{ip}")),
                conditions: EndpointConditions::default(),
            })
            .collect(),
    }
}

fn udp_service(name: &str, vip: Ipv4Addr) -> Service {
    Service {
        name: name.into(),
        namespace: "default".into(),
        labels: BTreeMap::new(),
        selector: BTreeMap::new(),
        service_type: ServiceType::ClusterIP,
        cluster_ip: vip,
        headless: false,
        external_name: None,
        ports: vec![ServicePort {
            name: None,
            protocol: Protocol::Udp,
            port: 53,
            target_port: TargetPort::Number(53),
            node_port: None,
        }],
        session_affinity: SessionAffinity::None,
        external_traffic_policy: Default::default(),
        internal_traffic_policy: Default::default(),
        external_ips: vec![],
        load_balancer_ips: vec![],
        created: None,
    }
}

/// The two-node cluster as a Kubernetes API would give it: endpoints
/// from slices (web: both nginx pods), plus a UDP Service `dns` with
/// three endpoints.
fn watched() -> Cluster {
    let mut c = control::config::parse(TWO_NODES).expect("two-node config");
    c.services.push(udp_service("dns", DNS_VIP));
    c.endpoint_slices = Some(vec![
        slice("dns-1", "dns", Protocol::Udp, 53, &dns_pods()),
        slice(
            "web-1",
            "web",
            Protocol::Tcp,
            80,
            &[Ipv4Addr::new(10, 10, 0, 2), Ipv4Addr::new(10, 10, 1, 2)],
        ),
    ]);
    c
}

fn dns_pods() -> [Ipv4Addr; 3] {
    [10, 11, 12].map(|h| Ipv4Addr::new(10, 10, 1, h))
}

fn worker(c: &Cluster) -> Dataplane {
    Dataplane::new(&DataplaneConfig::default(), c, NODE).expect("node")
}

fn key(dst: Ipv4Addr, dport: u16, proto: u8) -> FlowKey {
    FlowKey {
        src: CLIENT,
        dst,
        sport: 1000,
        dport,
        proto,
    }
}

fn endpoints_at(dp: &Dataplane, dst: Ipv4Addr, dport: u16, proto: u8) -> Option<Vec<SocketAddrV4>> {
    match dp.services().lookup(&key(dst, dport, proto)) {
        ServiceLookup::Port(sp) => Some(sp.endpoints.clone()),
        _ => None,
    }
}

fn udp(sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut d = Vec::new();
    PacketBuilder::ipv4(CLIENT.octets(), dst.octets(), 64)
        .udp(sport, dport)
        .write(&mut d, b"q")
        .expect("build");
    d
}

/// Whole applies and one-change applies agree: same lookups.
fn assert_as_whole(dp: &Dataplane, c: &Cluster) {
    let whole = worker(c);
    for dst in [
        WEB_VIP,
        DNS_VIP,
        Ipv4Addr::new(10, 96, 0, 70),
        Ipv4Addr::new(192, 168, 191, 144),
    ] {
        for (port, proto) in [(80, 6), (53, 17), (30080, 6)] {
            let k = key(dst, port, proto);
            assert_eq!(dp.services().lookup(&k), whole.services().lookup(&k), "{k}");
        }
    }
}

fn change(dp: &mut Dataplane, c: &mut Cluster, change: ClusterChange) {
    c.apply_change(&change);
    dp.apply_change(&change).expect("apply_change");
    assert_as_whole(dp, c);
}

#[test]
fn a_service_added_changed_and_deleted() {
    let mut c = watched();
    let mut dp = worker(&c);
    let other = udp_service("other", Ipv4Addr::new(10, 96, 0, 70));
    change(&mut dp, &mut c, ClusterChange::Service(other.clone()));
    assert_eq!(endpoints_at(&dp, other.cluster_ip, 53, 17), Some(vec![]));
    let mut moved = other.clone();
    moved.ports[0].port = 54;
    change(&mut dp, &mut c, ClusterChange::Service(moved));
    assert_eq!(
        dp.services().lookup(&key(other.cluster_ip, 53, 17)),
        ServiceLookup::PortNotServed
    );
    assert!(endpoints_at(&dp, other.cluster_ip, 54, 17).is_some());
    change(
        &mut dp,
        &mut c,
        ClusterChange::ServiceDeleted(ObjectKey::new("default", "other")),
    );
    assert_eq!(
        dp.services().lookup(&key(other.cluster_ip, 54, 17)),
        ServiceLookup::NoSuchServiceIp
    );
    assert!(dp
        .services()
        .frontends_of(&ObjectKey::new("default", "other"))
        .is_empty());
}

#[test]
fn a_slice_change_rebuilds_only_its_service_and_forgets_udp_flows_to_the_gone_endpoint() {
    let mut c = watched();
    let mut dp = worker(&c);
    let t0 = Instant::now();
    let mut chosen = Vec::new();
    for sport in 0..30u16 {
        let mut d = udp(5000 + sport, DNS_VIP, 53);
        assert!(matches!(handle(&mut dp, t0, &mut d), Verdict::Forward(_)));
        chosen.push(packet::parse(&d).expect("parse").key.dst);
    }
    let mut syn = tcp(CLIENT, WEB_VIP, 40000, 80, true);
    assert!(matches!(handle(&mut dp, t0, &mut syn), Verdict::Forward(_)));
    let web_slots = |dp: &Dataplane| match dp.services().lookup(&key(WEB_VIP, 80, 6)) {
        ServiceLookup::Port(sp) => sp.maglev().slots().as_ptr(),
        other => panic!("web: {other:?}"),
    };
    let web_before = web_slots(&dp);
    let gone = dns_pods()[0];
    let to_gone = chosen.iter().filter(|ip| **ip == gone).count();
    assert!(to_gone > 0, "some flows went to {gone}");
    let before = dp.conntrack().len();
    let replaced = [Ipv4Addr::new(10, 10, 1, 13), dns_pods()[1], dns_pods()[2]];
    change(
        &mut dp,
        &mut c,
        ClusterChange::EndpointSlice(slice("dns-1", "dns", Protocol::Udp, 53, &replaced)),
    );
    assert_eq!(
        dp.conntrack().len(),
        before - to_gone,
        "only the UDP flows to {gone}"
    );
    assert!(dp
        .conntrack()
        .iter()
        .all(|(_, e)| e.translated(Direction::Original).dst != gone));
    assert_eq!(web_slots(&dp), web_before, "web's table untouched");
    // The TCP flow keeps its endpoint when that endpoint goes.
    let web_gone = packet::parse(&syn).expect("parse").key.dst;
    let kept = [Ipv4Addr::new(10, 10, 0, 2), Ipv4Addr::new(10, 10, 1, 2)]
        .into_iter()
        .filter(|ip| *ip != web_gone)
        .collect::<Vec<_>>();
    let before = dp.conntrack().len();
    change(
        &mut dp,
        &mut c,
        ClusterChange::EndpointSlice(slice("web-1", "web", Protocol::Tcp, 80, &kept)),
    );
    assert_eq!(dp.conntrack().len(), before, "TCP flows stay");
    change(
        &mut dp,
        &mut c,
        ClusterChange::EndpointSliceDeleted(ObjectKey::new("default", "dns-1")),
    );
    assert_eq!(endpoints_at(&dp, DNS_VIP, 53, 17), Some(vec![]));
    assert!(dp
        .conntrack()
        .iter()
        .all(|(_, e)| e.original.dst != DNS_VIP));
}

#[test]
fn a_node_change_moves_routes_and_nodeports() {
    let mut c = watched();
    let web = c
        .services
        .iter_mut()
        .find(|s| s.name == "web")
        .expect("web");
    web.service_type = ServiceType::NodePort;
    web.ports[0].node_port = Some(30080);
    let mut dp = worker(&c);
    let master = c.node("mac-master").expect("master").clone();
    assert!(endpoints_at(&dp, master.underlay_ip, 30080, 6).is_some());
    let moved = cluster::Node {
        underlay_ip: Ipv4Addr::new(192, 168, 191, 150),
        ..master.clone()
    };
    change(&mut dp, &mut c, ClusterChange::Node(moved.clone()));
    assert!(endpoints_at(&dp, master.underlay_ip, 30080, 6).is_none());
    assert!(endpoints_at(&dp, moved.underlay_ip, 30080, 6).is_some());
    assert_eq!(dp.topology.peers[0].underlay_ip, moved.underlay_ip);
    change(
        &mut dp,
        &mut c,
        ClusterChange::NodeDeleted("mac-master".into()),
    );
    assert!(dp.topology.peers.is_empty());
    assert!(endpoints_at(&dp, moved.underlay_ip, 30080, 6).is_none());
    // This node itself cannot go: refused, nothing changed.
    assert_eq!(
        dp.apply_change(&ClusterChange::NodeDeleted(NODE.into())),
        Err(UnknownNode(NODE.into()))
    );
    assert_as_whole(&dp, &c);
}

#[test]
fn a_local_pod_change_updates_the_node_pods() {
    let mut c = watched();
    let mut dp = worker(&c);
    let pod = Pod {
        name: "dns-0".into(),
        namespace: "kube-system".into(),
        labels: BTreeMap::from([("k8s-app".into(), "kube-dns".into())]),
        ip: Ipv4Addr::new(10, 10, 1, 53),
        node: NODE.into(),
        ready: true,
        owner: None,
        ports: vec![],
    };
    change(&mut dp, &mut c, ClusterChange::Pod(pod.clone()));
    assert!(dp.topology.is_stack_pod(pod.ip));
    assert!(dp.topology.local_pods.contains(&pod.ip));
    let plain = Pod {
        labels: BTreeMap::new(),
        ..pod.clone()
    };
    change(&mut dp, &mut c, ClusterChange::Pod(plain));
    assert!(!dp.topology.is_stack_pod(pod.ip));
    assert!(dp.topology.is_valid_local_source(pod.ip));
    change(
        &mut dp,
        &mut c,
        ClusterChange::PodDeleted(ObjectKey::new("kube-system", "dns-0")),
    );
    assert!(!dp.topology.is_valid_local_source(pod.ip));
    assert_eq!(dp.topology, Topology::new(&c, NODE).expect("topology"));
}

/// A whole build leaves Maglev tables for later (start-up serves sooner);
/// a lazily built table picks what an eager one would, `warm_up` builds
/// the rest, and a change builds its Service's new tables at once.
#[test]
fn tables_are_built_lazily_at_start_and_at_once_on_a_change() {
    let mut c = watched();
    let mut dp = worker(&c);
    let unbuilt = |dp: &Dataplane| {
        dp.services()
            .entries()
            .iter()
            .filter(|e| !e.lazy_maglev().is_built())
            .count()
    };
    let at_start = unbuilt(&dp);
    assert!(at_start > 0, "a whole build defers the tables");
    let dns = match dp.services().lookup(&key(DNS_VIP, 53, 17)) {
        ServiceLookup::Port(sp) => sp.clone(),
        other => panic!("dns: {other:?}"),
    };
    assert!(!dns.lazy_maglev().is_built());
    let eager = ServicePortEntry::new(
        "eager".into(),
        dns.key(),
        dns.frontend,
        dns.endpoints.clone(),
    );
    for sport in 0..500u16 {
        let flow = FlowKey {
            proto: 17,
            src: CLIENT,
            dst: DNS_VIP,
            sport: 1000 + sport,
            dport: 53,
        };
        assert_eq!(dns.pick(&flow), eager.pick(&flow), "flow {flow:?}");
    }
    assert!(dns.lazy_maglev().is_built(), "built by its first pick");
    assert!(unbuilt(&dp) < at_start, "shared with the table's entry");
    assert_eq!(dp.warm_up(usize::MAX), 0);
    assert_eq!(unbuilt(&dp), 0, "warm_up builds every table");

    let mut dp = worker(&c);
    let moved = [Ipv4Addr::new(10, 10, 1, 13), dns_pods()[1]];
    change(
        &mut dp,
        &mut c,
        ClusterChange::EndpointSlice(slice("dns-1", "dns", Protocol::Udp, 53, &moved)),
    );
    match dp.services().lookup(&key(DNS_VIP, 53, 17)) {
        ServiceLookup::Port(sp) => assert!(sp.lazy_maglev().is_built(), "a change builds now"),
        other => panic!("dns: {other:?}"),
    }
}
