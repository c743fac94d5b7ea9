//! Property test of incremental updates: random sequences of
//! [`ClusterChange`]s (Services of every type, colliding addresses
//! included; EndpointSlices; nodes; this node's pods) applied one by one to
//! a [`Node`] with [`Node::apply_change`] leave it serving exactly what a
//! node given the whole resulting cluster ([`Cluster::apply_change`], then
//! [`Node::apply`], and at the end a fresh [`Node::new`]) serves:
//!
//! - the same Service table answer (entry, endpoints, Maglev table, so the
//!   same pick) for every probe frontend (Service, node and external
//!   addresses x ports x protocols);
//! - the same DNS answers for Service, SRV, headless-host, pod, namespace
//!   and apex names;
//! - the same verdicts for UDP probe flows sent before each change, and the
//!   same conntrack table after it (the same stale-UDP removals).
//!
//! Clusters start either from EndpointSlices (a Kubernetes API) or from
//! pods and selectors (`config.toml`), which a first slice switches over.

// Tests need a starting instant; the core itself never reads the clock.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use cluster::{
    Cluster, ClusterChange, ContainerPort, EndpointConditions, EndpointPort, EndpointSlice,
    ObjectKey, Overlay, Pod, Protocol, Service, ServicePort, ServiceType, SessionAffinity,
    SliceEndpoint, TargetPort, TrafficPolicy,
};
use dataplane::buf::PacketBuf;
use dataplane::dns::proto::op::{Message, MessageType, OpCode, Query};
use dataplane::dns::proto::rr::{Name, RecordType};
use dataplane::engine::{DataplaneConfig, Ingress};
use dataplane::node::Node;
use dataplane::packet::FlowKey;
use etherparse::PacketBuilder;
use proptest::prelude::*;

const ME: &str = "n1";
const NODES: [&str; 3] = ["n1", "n2", "n3"];
const NAMESPACES: [&str; 3] = ["default", "kube-system", "team"];
const SERVICES: [&str; 3] = ["a", "b", "kube-dns"];
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 7);

fn node(name: &str, alt: bool) -> cluster::Node {
    let i = NODES.iter().position(|n| *n == name).unwrap_or(0) as u8 + 1;
    cluster::Node {
        name: name.to_owned(),
        underlay_ip: Ipv4Addr::new(192, 168, 0, i + if alt { 10 } else { 0 }),
        pod_cidr: format!("10.10.{i}.0/24").parse().expect("cidr"),
        next_pod_ip: None,
    }
}

/// A UDP Service `name` on `vip`, port 53 (named `dns` or not),
/// selecting `app=<selector>`.
fn udp_service(ns: &str, name: &str, vip: u8, port_name: bool, selector: usize) -> Service {
    Service {
        name: name.into(),
        namespace: ns.into(),
        labels: BTreeMap::new(),
        selector: app(selector),
        service_type: ServiceType::NodePort,
        cluster_ip: Ipv4Addr::new(10, 96, 0, vip),
        headless: false,
        external_name: None,
        ports: vec![ServicePort {
            name: port_name.then(|| "dns".into()),
            protocol: Protocol::Udp,
            port: 53,
            target_port: TargetPort::Number(8080),
            node_port: Some(30000 + u16::from(vip)),
        }],
        session_affinity: SessionAffinity::None,
        external_traffic_policy: TrafficPolicy::Cluster,
        internal_traffic_policy: TrafficPolicy::Cluster,
        external_ips: Vec::new(),
        load_balancer_ips: Vec::new(),
        created: None,
    }
}

/// Its slice, with endpoints `10.10.<node>.<host>`.
fn udp_slice(svc: &Service, endpoints: &[(u8, u8)]) -> EndpointSlice {
    EndpointSlice {
        key: ObjectKey::new(svc.namespace.clone(), format!("{}-0", svc.name)),
        service: svc.name.clone(),
        ports: vec![EndpointPort {
            name: svc.ports[0].name.clone(),
            port: 8080,
            protocol: Protocol::Udp,
        }],
        endpoints: endpoints
            .iter()
            .map(|&(n, h)| SliceEndpoint {
                ip: Ipv4Addr::new(10, 10, n, h),
                node: Some(NODES[usize::from(n) - 1].into()),
                pod: Some(format!("pod-{n}-{h}")),
                conditions: EndpointConditions::default(),
            })
            .collect(),
    }
}

/// Two nodes (n1 is this one), three UDP Services with endpoints (from
/// slices, or from this node's pods and selectors).
fn cluster(from_slices: bool) -> Cluster {
    let services = vec![
        udp_service("default", "a", 1, true, 0),
        udp_service("default", "b", 2, false, 1),
        udp_service("kube-system", "kube-dns", 3, true, 0),
    ];
    let slices = vec![
        udp_slice(&services[0], &[(1, 10), (2, 11), (3, 12)]),
        udp_slice(&services[1], &[(1, 11), (2, 12)]),
        udp_slice(&services[2], &[(1, 13), (2, 10), (2, 13)]),
    ];
    let pods = [
        ("default", 0, 10),
        ("default", 1, 11),
        ("default", 2, 12),
        ("kube-system", 0, 13),
    ]
    .into_iter()
    .map(|(ns, label, host)| Pod {
        name: format!("pod-{host}"),
        namespace: ns.into(),
        labels: app(label),
        ip: Ipv4Addr::new(10, 10, 1, host),
        node: ME.into(),
        ready: true,
        owner: None,
        ports: Vec::new(),
    })
    .collect();
    let mut c = Cluster {
        pod_cidr: "10.10.0.0/16".parse().expect("cidr"),
        service_cidr: "10.96.0.0/12".parse().expect("cidr"),
        dns_domain: "cluster.local".into(),
        overlay: Overlay::default(),
        nodes: vec![node("n1", false), node("n2", false)],
        deployments: Vec::new(),
        pods,
        services,
        endpoint_slices: from_slices.then_some(slices),
    };
    c.services
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    c
}

fn app(i: usize) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_owned(), ["x", "y"][i % 2].to_owned())])
}

/// Mostly UDP: the probe flows (and stale-UDP removals) are UDP.
fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![1 => Just(Protocol::Tcp), 3 => Just(Protocol::Udp)]
}

fn port_name() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), Just(Some("dns".into()))]
}

fn policy() -> impl Strategy<Value = TrafficPolicy> {
    prop_oneof![Just(TrafficPolicy::Cluster), Just(TrafficPolicy::Local)]
}

fn service() -> impl Strategy<Value = Service> {
    let ports = prop::collection::vec(
        (
            port_name(),
            protocol(),
            prop::sample::select(vec![53u16, 80]),
            prop::option::of(0u16..3),
            prop_oneof![
                (0u16..2).prop_map(|i| TargetPort::Number(8080 + i)),
                Just(TargetPort::Name("web".into()))
            ],
        ),
        0..3,
    );
    (
        (namespace(), 0..SERVICES.len(), 0..4usize, 0..3usize),
        (1u8..5, any::<bool>(), any::<bool>(), policy(), policy()),
        ports,
        (prop::option::of(1u8..3), prop::option::of(0..1u8)),
    )
        .prop_map(
            |((ns, name, kind, sel), (vip, headless, affinity, ext, int), ports, (ext_ip, lb))| {
                let service_type = [
                    ServiceType::ClusterIP,
                    ServiceType::NodePort,
                    ServiceType::LoadBalancer,
                    ServiceType::ExternalName,
                ][kind];
                let headless = headless && service_type == ServiceType::ClusterIP;
                let virtual_ip = !headless && service_type != ServiceType::ExternalName;
                Service {
                    name: SERVICES[name].into(),
                    namespace: NAMESPACES[ns].into(),
                    labels: BTreeMap::new(),
                    selector: if sel == 2 { BTreeMap::new() } else { app(sel) },
                    service_type,
                    cluster_ip: if virtual_ip {
                        Ipv4Addr::new(10, 96, 0, vip)
                    } else {
                        Ipv4Addr::UNSPECIFIED
                    },
                    headless,
                    external_name: (service_type == ServiceType::ExternalName)
                        .then(|| "example.com".into()),
                    ports: ports
                        .into_iter()
                        .map(
                            |(name, protocol, port, node_port, target_port)| ServicePort {
                                name,
                                protocol,
                                port,
                                target_port,
                                node_port: node_port
                                    .filter(|_| {
                                        matches!(
                                            service_type,
                                            ServiceType::NodePort | ServiceType::LoadBalancer
                                        )
                                    })
                                    .map(|n| 30000 + n),
                            },
                        )
                        .collect(),
                    session_affinity: if affinity {
                        SessionAffinity::ClientIP {
                            timeout_seconds: 30,
                        }
                    } else {
                        SessionAffinity::None
                    },
                    external_traffic_policy: ext,
                    internal_traffic_policy: int,
                    external_ips: ext_ip
                        .filter(|_| virtual_ip)
                        .map(|i| Ipv4Addr::new(203, 0, 113, i))
                        .into_iter()
                        .collect(),
                    load_balancer_ips: lb
                        .filter(|_| service_type == ServiceType::LoadBalancer)
                        .map(|_| Ipv4Addr::new(198, 51, 100, 1))
                        .into_iter()
                        .collect(),
                    created: None,
                }
            },
        )
}

/// An endpoint address: a pod IP on one of the three nodes.
fn endpoint_ip() -> impl Strategy<Value = (usize, Ipv4Addr)> {
    (0..NODES.len(), 10u8..14).prop_map(|(n, i)| (n, Ipv4Addr::new(10, 10, n as u8 + 1, i)))
}

/// A namespace index, mostly the first, so objects often meet.
fn namespace() -> impl Strategy<Value = usize> {
    prop_oneof![4 => Just(0), 1 => Just(1), 1 => Just(2)]
}

fn slice() -> impl Strategy<Value = EndpointSlice> {
    // Each (name, protocol) pair served or not, so that Service ports
    // often find theirs.
    let ports = prop::collection::vec(
        (
            port_name(),
            protocol(),
            prop::sample::select(vec![53u16, 8080]),
        ),
        0..5,
    );
    let endpoints = prop::collection::vec((endpoint_ip(), any::<bool>(), 0..4u8), 0..5);
    (namespace(), 0..3usize, 0..SERVICES.len(), ports, endpoints).prop_map(
        |(ns, name, svc, ports, endpoints)| EndpointSlice {
            key: ObjectKey::new(NAMESPACES[ns], format!("{}-{name}", SERVICES[svc])),
            service: SERVICES[svc].into(),
            ports: ports
                .into_iter()
                .map(|(name, protocol, port)| EndpointPort {
                    name,
                    port,
                    protocol,
                })
                .collect(),
            endpoints: endpoints
                .into_iter()
                .map(|((n, ip), named, cond)| SliceEndpoint {
                    ip,
                    node: named.then(|| NODES[n].into()),
                    pod: named.then(|| format!("pod-{ip}")),
                    conditions: EndpointConditions {
                        ready: cond != 0,
                        serving: cond != 1,
                        terminating: cond == 2 || cond == 0,
                    },
                })
                .collect(),
        },
    )
}

fn pod() -> impl Strategy<Value = Pod> {
    (
        namespace(),
        0..4u8,
        10u8..14,
        0..3usize,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(ns, name, ip, label, ready, elsewhere)| {
            let mut labels = app(label);
            if label == 2 {
                labels = BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())]);
            }
            Pod {
                name: format!("pod-{name}"),
                namespace: NAMESPACES[ns].into(),
                labels,
                ip: Ipv4Addr::new(10, 10, if elsewhere { 2 } else { 1 }, ip),
                node: if elsewhere { "n2" } else { ME }.into(),
                ready,
                owner: None,
                ports: vec![ContainerPort {
                    name: Some("web".into()),
                    container_port: 8081,
                    protocol: Protocol::Tcp,
                }],
            }
        })
}

fn key(ns: usize, name: String) -> ObjectKey {
    ObjectKey::new(NAMESPACES[ns], name)
}

/// One step: a change, or an edit of a slice the cluster has (resolved
/// when it is applied: which slice, which endpoint goes, which comes), so
/// that endpoints are often replaced under live flows.
#[derive(Debug, Clone)]
enum Step {
    Change(ClusterChange),
    ReplaceEndpoint {
        slice: usize,
        endpoint: usize,
        by: (usize, Ipv4Addr),
    },
}

impl Step {
    fn resolve(&self, cluster: &Cluster) -> Option<ClusterChange> {
        match self {
            Step::Change(c) => Some(c.clone()),
            Step::ReplaceEndpoint {
                slice,
                endpoint,
                by: (n, ip),
            } => {
                let slices = cluster.endpoint_slices.as_ref()?;
                let mut s = slices.get(slice % slices.len().max(1))?.clone();
                if !s.endpoints.is_empty() {
                    s.endpoints.remove(endpoint % s.endpoints.len());
                }
                s.endpoints.push(SliceEndpoint {
                    ip: *ip,
                    node: Some(NODES[*n].into()),
                    pod: Some(format!("pod-{ip}")),
                    conditions: EndpointConditions::default(),
                });
                Some(ClusterChange::EndpointSlice(s))
            }
        }
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => change().prop_map(Step::Change),
        1 => (any::<usize>(), any::<usize>(), endpoint_ip())
            .prop_map(|(slice, endpoint, by)| Step::ReplaceEndpoint { slice, endpoint, by }),
    ]
}

fn change() -> impl Strategy<Value = ClusterChange> {
    prop_oneof![
        4 => service().prop_map(ClusterChange::Service),
        1 => (0..NAMESPACES.len(), 0..SERVICES.len())
            .prop_map(|(ns, s)| ClusterChange::ServiceDeleted(key(ns, SERVICES[s].into()))),
        5 => slice().prop_map(ClusterChange::EndpointSlice),
        1 => (0..NAMESPACES.len(), 0..3usize, 0..SERVICES.len()).prop_map(|(ns, n, s)| {
            ClusterChange::EndpointSliceDeleted(key(ns, format!("{}-{n}", SERVICES[s])))
        }),
        1 => (0..NODES.len(), any::<bool>())
            .prop_map(|(n, alt)| ClusterChange::Node(node(NODES[n], alt))),
        1 => (0..NODES.len()).prop_map(|n| ClusterChange::NodeDeleted(NODES[n].into())),
        2 => pod().prop_map(ClusterChange::Pod),
        1 => (0..NAMESPACES.len(), 0..4u8)
            .prop_map(|(ns, n)| ClusterChange::PodDeleted(key(ns, format!("pod-{n}")))),
    ]
}

/// Addresses probed: ClusterIPs (and one unused), external and
/// LoadBalancer IPs, the nodes' addresses (both variants), a pod.
fn probe_ips() -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = (1..6).map(|i| Ipv4Addr::new(10, 96, 0, i)).collect();
    ips.extend([
        Ipv4Addr::new(203, 0, 113, 1),
        Ipv4Addr::new(203, 0, 113, 2),
        Ipv4Addr::new(198, 51, 100, 1),
        Ipv4Addr::new(10, 10, 2, 10),
    ]);
    ips.extend((1..4).flat_map(|i| {
        [
            Ipv4Addr::new(192, 168, 0, i),
            Ipv4Addr::new(192, 168, 0, i + 10),
        ]
    }));
    ips
}

const PROBE_PORTS: [u16; 7] = [53, 80, 81, 30000, 30001, 30002, 30003];

fn probe_keys(sport: u16) -> impl Iterator<Item = FlowKey> {
    probe_ips().into_iter().flat_map(move |dst| {
        PROBE_PORTS.into_iter().flat_map(move |dport| {
            [1u8, 6, 17].into_iter().map(move |proto| FlowKey {
                src: CLIENT,
                dst,
                sport,
                dport,
                proto,
            })
        })
    })
}

fn dns_names() -> Vec<(String, RecordType)> {
    let mut names = vec![
        ("cluster.local.".to_owned(), RecordType::NS),
        ("ns.dns.cluster.local.".to_owned(), RecordType::A),
    ];
    for ns in NAMESPACES {
        names.push((format!("{ns}.svc.cluster.local."), RecordType::A));
        names.push((format!("10-10-1-10.{ns}.pod.cluster.local."), RecordType::A));
        for svc in SERVICES {
            names.push((format!("{svc}.{ns}.svc.cluster.local."), RecordType::A));
            names.push((
                format!("_dns._udp.{svc}.{ns}.svc.cluster.local."),
                RecordType::SRV,
            ));
            names.push((
                format!("_web._tcp.{svc}.{ns}.svc.cluster.local."),
                RecordType::SRV,
            ));
            for host in ["10-10-1-10", "10-10-2-11", "10-10-3-13"] {
                names.push((
                    format!("{host}.{svc}.{ns}.svc.cluster.local."),
                    RecordType::A,
                ));
            }
        }
    }
    names
}

fn query(name: &str, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
    m.to_vec().expect("encode")
}

fn udp(dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv4(CLIENT.octets(), dst.octets(), 64)
        .udp(sport, dport)
        .write(&mut p, b"probe")
        .expect("build");
    p
}

/// Sends one UDP datagram of every probe flow; returns the verdicts and
/// what the node sent.
fn send_probes(node: &mut Node, now: Instant, sport: u16) -> Vec<String> {
    let mut out = Vec::new();
    for k in probe_keys(sport).filter(|k| k.proto == 17) {
        let mut buf = PacketBuf::from_vec(udp(k.dst, k.sport, k.dport));
        let verdict = node.handle_packet(now, Ingress::Tun, &mut buf);
        out.push(format!("{k}: {verdict:?} {:?}", buf.data()));
        while let Some(t) = node.poll_transmit() {
            out.push(format!("{:?} {:?}", t.egress, t.packet));
        }
    }
    out
}

/// Asserts that `node` serves what `reference` (built from `cluster`) does.
fn assert_same(node: &Node, reference: &Node, cluster: &Cluster) -> Result<(), TestCaseError> {
    for k in probe_keys(40000) {
        prop_assert_eq!(
            node.services().lookup(&k),
            reference.services().lookup(&k),
            "lookup {}",
            k
        );
    }
    for (name, rtype) in dns_names() {
        let q = query(&name, rtype);
        let expected = dataplane::dns::answer(&q, cluster);
        prop_assert_eq!(node.dns_answer(&q), expected.clone(), "{} {}", name, rtype);
        prop_assert_eq!(reference.dns_answer(&q), expected, "{} {}", name, rtype);
    }
    Ok(())
}

fn new_node(cluster: &Cluster) -> Node {
    match Node::new(&DataplaneConfig::default(), cluster, ME) {
        Ok(n) => n,
        Err(e) => panic!("{e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn incremental_changes_match_whole_applies(
        from_slices in any::<bool>(),
        steps in prop::collection::vec(step(), 1..32),
    ) {
        let mut cluster = cluster(from_slices);
        let mut node = new_node(&cluster);
        let mut reference = new_node(&cluster);
        let start = Instant::now();
        for (step, change) in steps.iter().enumerate() {
            let Some(change) = change.resolve(&cluster) else { continue };
            let change = &change;
            let now = start + Duration::from_secs(step as u64);
            let sport = 10_000 + step as u16;
            let sent = send_probes(&mut node, now, sport);
            prop_assert_eq!(sent, send_probes(&mut reference, now, sport));
            let mut next = cluster.clone();
            next.apply_change(change);
            let applied = node.apply_change(change);
            let expected = reference.apply(&next);
            prop_assert_eq!(applied.is_ok(), expected.is_ok(), "{:?}", change);
            if expected.is_ok() {
                cluster = next;
            }
            assert_same(&node, &reference, &cluster)?;
            prop_assert_eq!(
                node.conntrack_listing(now),
                reference.conntrack_listing(now),
                "conntrack after {:?}",
                change
            );
        }
        assert_same(&node, &new_node(&cluster), &cluster)?;
    }
}
