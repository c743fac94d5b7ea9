//! In-process scenarios for the cluster DNS: pods resolve names through the
//! `kube-dns` ClusterIP (10.96.0.10:53, UDP and TCP), answered by the
//! router-hosted CoreDNS pod of either node (over the overlay when Maglev
//! picks the other node's). The default lab cluster (`config.toml`: kube-dns
//! with one CoreDNS pod per node, `nginx-headless`, `example`) plus one more
//! ExternalName Service.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use cluster::{Cluster, Service, ServiceType};
use dataplane::dns::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use dataplane::dns::proto::rr::rdata::{A, CNAME};
use dataplane::dns::proto::rr::{Name, RData, RecordType};
use sim::DnsTcpOutcome;
use sim::{default_cluster, Sim, Tap, CLUSTER_DNS_IP};

const NGINX_VIP: Ipv4Addr = Ipv4Addr::new(10, 101, 182, 177);
const DNS: SocketAddrV4 = SocketAddrV4::new(CLUSTER_DNS_IP, 53);

/// The lab cluster (with the cluster DNS and the headless `nginx-headless`
/// from config.toml) and an ExternalName Service `search`.
fn cluster() -> Cluster {
    let mut c = default_cluster();
    assert!(
        c.service("kube-system", "kube-dns").is_some()
            && c.service("default", "nginx-headless").is_some(),
        "config.toml must define kube-dns and nginx-headless"
    );
    let nginx = c
        .service("default", "nginx-svc")
        .expect("nginx-svc in config.toml")
        .clone();
    c.services.push(Service {
        name: "search".into(),
        service_type: ServiceType::ExternalName,
        cluster_ip: Ipv4Addr::UNSPECIFIED,
        external_name: Some("www.example.com".into()),
        selector: Default::default(),
        ports: vec![],
        ..nginx
    });
    c
}

fn nginx_ips(c: &Cluster) -> BTreeSet<Ipv4Addr> {
    c.pods
        .iter()
        .filter(|p| p.labels.get("app").is_some_and(|v| v == "nginx-deployment"))
        .map(|p| p.ip)
        .collect()
}

fn query(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(name).expect("a valid name"),
        qtype,
    ));
    m.to_vec().expect("encodable query")
}

#[track_caller]
fn decode(bytes: &[u8]) -> Message {
    let m = Message::from_vec(bytes).expect("a DNS response");
    assert_eq!(m.metadata.message_type, MessageType::Response);
    m
}

fn addresses(m: &Message) -> BTreeSet<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(A(ip)) => Some(*ip),
            _ => None,
        })
        .collect()
}

/// Resolves over UDP from `pod`; panics without an answer.
#[track_caller]
fn udp(sim: &mut Sim, pod: &str, sport: u16, name: &str, qtype: RecordType) -> Message {
    let q = query(sport, name, qtype);
    let r = sim
        .dns_udp(pod, DNS, sport, &q)
        .unwrap_or_else(|| panic!("no answer from {DNS} for {name}"));
    let m = decode(&r);
    assert_eq!(m.metadata.id, sport);
    m
}

#[test]
fn a_pod_resolves_a_service_over_udp() {
    let c = cluster();
    let mut sim = Sim::new("dns_udp", &c);
    let id = sim.pod("client").udp_request(
        DNS,
        40000,
        &query(7, "nginx-svc.default.svc.cluster.local", RecordType::A),
    );
    assert!(sim.run_until(std::time::Duration::from_secs(2), |s| {
        !s.pod("client").udp_replies(id).is_empty()
    }));
    let replies = sim.pod("client").udp_replies(id);
    let (from, bytes) = &replies[0];
    assert_eq!(*from, DNS, "the answer comes from the ClusterIP");
    let m = decode(bytes);
    assert_eq!(m.metadata.id, 7);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative && !m.metadata.recursion_available);
    assert_eq!(addresses(&m), BTreeSet::from([NGINX_VIP]));
    assert_eq!(m.answers[0].ttl, 5);
    assert_eq!(sim.undeliverable, 0);
}

#[test]
fn a_pod_resolves_over_tcp_several_queries_per_connection() {
    let c = cluster();
    let mut sim = Sim::new("dns_tcp", &c);
    let queries = vec![
        query(1, "nginx-svc.default.svc.cluster.local", RecordType::A),
        query(2, "nope.default.svc.cluster.local", RecordType::A),
        query(
            3,
            "_dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local",
            RecordType::SRV,
        ),
    ];
    for round in 0..3 {
        let DnsTcpOutcome::Done(answers) = sim.dns_tcp("client", DNS, &queries) else {
            panic!("round {round}: no answers over TCP");
        };
        let answers: Vec<Message> = answers.iter().map(|a| decode(a)).collect();
        assert_eq!(
            answers.iter().map(|m| m.metadata.id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(addresses(&answers[0]), BTreeSet::from([NGINX_VIP]));
        assert_eq!(answers[1].metadata.response_code, ResponseCode::NXDomain);
        let RData::SRV(srv) = &answers[2].answers[0].data else {
            panic!("not an SRV answer: {}", answers[2]);
        };
        assert_eq!(
            (srv.port, srv.target.to_ascii().as_str()),
            (53, "kube-dns.kube-system.svc.cluster.local.")
        );
    }
    assert_eq!(sim.undeliverable, 0);
}

#[test]
fn missing_names_are_nxdomain_and_outside_names_refused() {
    let c = cluster();
    let mut sim = Sim::new("dns_nxdomain", &c);
    let m = udp(
        &mut sim,
        "client",
        40001,
        "nginx-svc.kube-system.svc.cluster.local",
        RecordType::A,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.answers.is_empty());
    assert!(matches!(m.authorities[0].data, RData::SOA(_)));
    let m = udp(&mut sim, "client", 40002, "example.com", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn both_nodes_dns_pods_answer_through_the_cluster_ip() {
    let c = cluster();
    let mut sim = Sim::new("dns_both_nodes", &c);
    let mut sport = 41000;
    while sim.node("mac-master").dns_answered() == 0 || sim.node("mac-worker").dns_answered() == 0 {
        assert!(sport < 41100, "100 flows never reached both DNS pods");
        let m = udp(
            &mut sim,
            "client",
            sport,
            "nginx-svc.default.svc.cluster.local",
            RecordType::A,
        );
        assert_eq!(addresses(&m), BTreeSet::from([NGINX_VIP]));
        sport += 1;
    }
    assert!(
        sim.capture().any(|(t, _)| t == Tap::Overlay),
        "the other node's DNS pod answered without the overlay?"
    );
    // Over TCP too, until the other node's pod has answered a connection.
    let before = sim.node("mac-master").dns_answered();
    for round in 0..40 {
        let q = vec![query(
            round,
            "nginx-svc.default.svc.cluster.local",
            RecordType::A,
        )];
        let DnsTcpOutcome::Done(a) = sim.dns_tcp("client", DNS, &q) else {
            panic!("no TCP answer");
        };
        assert_eq!(addresses(&decode(&a[0])), BTreeSet::from([NGINX_VIP]));
        if sim.node("mac-master").dns_answered() > before {
            break;
        }
    }
    assert!(
        sim.node("mac-master").dns_answered() > before,
        "TCP never crossed to mac-master"
    );
    // The other node's client, and the pod IPs directly.
    let m = udp(
        &mut sim,
        "client-master",
        42000,
        "nginx-svc.default.svc.cluster.local",
        RecordType::A,
    );
    assert_eq!(addresses(&m), BTreeSet::from([NGINX_VIP]));
    let dns_pods: Vec<(String, Ipv4Addr)> = c
        .pods
        .iter()
        .filter(|p| p.is_router_hosted())
        .map(|p| (p.name.clone(), p.ip))
        .collect();
    assert_eq!(dns_pods.len(), 2, "one DNS pod per node");
    for (pod, ip) in dns_pods {
        let q = query(9, "kube-dns.kube-system.svc.cluster.local", RecordType::A);
        let r = sim
            .dns_udp("client", SocketAddrV4::new(ip, 53), 43000, &q)
            .unwrap_or_else(|| panic!("{pod} did not answer directly"));
        assert_eq!(addresses(&decode(&r)), BTreeSet::from([CLUSTER_DNS_IP]));
    }
    assert_eq!(sim.undeliverable, 0);
}

#[test]
fn srv_headless_and_external_name() {
    let c = cluster();
    let mut sim = Sim::new("dns_records", &c);
    let m = udp(
        &mut sim,
        "client",
        44000,
        "_dns._udp.kube-dns.kube-system.svc.cluster.local",
        RecordType::SRV,
    );
    let RData::SRV(srv) = &m.answers[0].data else {
        panic!("not an SRV answer: {m}");
    };
    assert_eq!((srv.priority, srv.weight, srv.port), (0, 100, 53));
    assert_eq!(
        m.additionals
            .iter()
            .filter_map(|r| match r.data {
                RData::A(A(ip)) => Some(ip),
                _ => None,
            })
            .collect::<Vec<_>>(),
        vec![CLUSTER_DNS_IP]
    );
    // Headless: the pods themselves.
    let m = udp(
        &mut sim,
        "client",
        44001,
        "nginx-headless.default.svc.cluster.local",
        RecordType::A,
    );
    assert_eq!(addresses(&m), nginx_ips(&c));
    let m = udp(
        &mut sim,
        "client",
        44002,
        "_http._tcp.nginx-headless.default.svc.cluster.local",
        RecordType::SRV,
    );
    assert_eq!(m.answers.len(), 2, "{m}");
    // ExternalName: a CNAME, not followed (no upstream in the lab).
    let m = udp(
        &mut sim,
        "client",
        44003,
        "search.default.svc.cluster.local",
        RecordType::A,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        m.answers.iter().map(|r| r.data.clone()).collect::<Vec<_>>(),
        vec![RData::CNAME(CNAME(
            Name::from_ascii("www.example.com.").expect("name")
        ))]
    );
    // Pod records.
    let m = udp(
        &mut sim,
        "client",
        44004,
        "10-10-1-100.default.pod.cluster.local",
        RecordType::A,
    );
    assert_eq!(
        addresses(&m),
        BTreeSet::from([Ipv4Addr::new(10, 10, 1, 100)])
    );
}

#[test]
fn answers_follow_cluster_changes() {
    let mut c = cluster();
    let mut sim = Sim::new("dns_apply", &c);
    let name = "late.default.svc.cluster.local";
    let m = udp(&mut sim, "client", 45000, name, RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let mut late = c
        .service("default", "nginx-svc")
        .expect("nginx-svc")
        .clone();
    late.name = "late".into();
    late.cluster_ip = Ipv4Addr::new(10, 96, 7, 7);
    c.services.push(late);
    for node in ["mac-master", "mac-worker"] {
        sim.node(node).apply(&c).expect("apply");
    }
    // Whichever node's pod answers, it knows the new Service.
    for sport in 45001..45021 {
        let m = udp(&mut sim, "client", sport, name, RecordType::A);
        assert_eq!(addresses(&m), BTreeSet::from([Ipv4Addr::new(10, 96, 7, 7)]));
    }
}
