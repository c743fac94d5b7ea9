//! The cluster DNS against a small cluster: every kind of name, error and size limit.

use super::zone::{dashed, parse_dashed};
use super::*;
use cluster::{
    ContainerPort, Labels, Pod, Protocol, Service, ServicePort, ServiceType, SessionAffinity,
    TargetPort,
};
use proto::op::{Message, Query, ResponseCode};
use proto::rr::rdata::{A, CNAME, NS};
use proto::rr::{Name, RData, Record, RecordType};
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::str::FromStr;

const NGINX_VIP: Ipv4Addr = Ipv4Addr::new(10, 101, 182, 177);
const DNS_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn port(name: Option<&str>, protocol: Protocol, port: u16) -> ServicePort {
    ServicePort {
        name: name.map(str::to_owned),
        protocol,
        port,
        target_port: TargetPort::Number(port),
        node_port: None,
    }
}

fn service(name: &str, namespace: &str, selector: Labels, ports: Vec<ServicePort>) -> Service {
    Service {
        name: name.into(),
        namespace: namespace.into(),
        labels: BTreeMap::new(),
        selector,
        service_type: ServiceType::ClusterIP,
        cluster_ip: Ipv4Addr::UNSPECIFIED,
        headless: false,
        external_name: None,
        ports,
        session_affinity: SessionAffinity::None,
        external_traffic_policy: Default::default(),
        internal_traffic_policy: Default::default(),
        external_ips: vec![],
        load_balancer_ips: vec![],
        created: None,
    }
}

fn pod(name: &str, namespace: &str, ip: Ipv4Addr, labels: Labels) -> Pod {
    Pod {
        name: name.into(),
        namespace: namespace.into(),
        labels,
        ip,
        node: "mac-worker".into(),
        ready: true,
        owner: None,
        ports: vec![ContainerPort {
            name: Some("dns".into()),
            container_port: 53,
            protocol: Protocol::Udp,
        }],
    }
}

/// config.toml plus the cluster DNS, a headless, an ExternalName and a
/// named-port Service.
fn cluster() -> Cluster {
    let mut c =
        control::config::parse(include_str!("../../../control/tests/fixtures/cluster.toml"))
            .expect("default config");
    c.services.retain(|s| s.namespace != "kube-system");
    c.pods.retain(|p| !p.is_router_hosted());
    let dns = labels(&[("k8s-app", "kube-dns")]);
    let mut kube_dns = service(
        "kube-dns",
        "kube-system",
        dns.clone(),
        vec![
            port(Some("dns"), Protocol::Udp, 53),
            port(Some("dns-tcp"), Protocol::Tcp, 53),
        ],
    );
    kube_dns.cluster_ip = DNS_VIP;
    c.services.push(kube_dns);
    c.pods.push(pod(
        "coredns-mac-worker",
        "kube-system",
        Ipv4Addr::new(10, 10, 1, 53),
        dns,
    ));
    let nginx = labels(&[("app", "nginx-deployment")]);
    let mut headless = service(
        "nginx-headless",
        "default",
        nginx.clone(),
        vec![
            port(Some("http"), Protocol::Tcp, 80),
            port(Some("udp-echo"), Protocol::Udp, 9000),
        ],
    );
    headless.headless = true;
    c.services.push(headless);
    let mut empty = service(
        "empty-headless",
        "default",
        labels(&[("app", "none")]),
        vec![port(Some("http"), Protocol::Tcp, 80)],
    );
    empty.headless = true;
    c.services.push(empty);
    for (name, target) in [
        ("external", "example.com"),
        ("alias", "nginx-svc.default.svc.cluster.local"),
        ("dangling", "nothing.default.svc.cluster.local"),
    ] {
        let mut ext = service(name, "default", BTreeMap::new(), vec![]);
        ext.service_type = ServiceType::ExternalName;
        ext.external_name = Some(target.into());
        c.services.push(ext);
    }
    let mut named = service(
        "web",
        "default",
        nginx,
        vec![port(Some("http"), Protocol::Tcp, 8080)],
    );
    named.cluster_ip = Ipv4Addr::new(10, 96, 0, 80);
    c.services.push(named);
    c
}

fn nginx_ips(c: &Cluster) -> BTreeSet<Ipv4Addr> {
    c.pods
        .iter()
        .filter(|p| p.labels.get("app").is_some_and(|v| v == "nginx-deployment"))
        .map(|p| p.ip)
        .collect()
}

fn query(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    m
}

fn ask_message(c: &Cluster, m: &Message) -> Message {
    let bytes = answer(&m.to_vec().expect("encode"), c).expect("a response");
    Message::from_vec(&bytes).expect("decodable response")
}

fn ask(c: &Cluster, name: &str, qtype: RecordType) -> Message {
    ask_message(c, &query(name, qtype))
}

fn a_records(records: &[Record]) -> BTreeSet<Ipv4Addr> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(A(ip)) => Some(*ip),
            _ => None,
        })
        .collect()
}

fn srv_records(records: &[Record]) -> Vec<(u16, u16, u16, String)> {
    let mut out: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.priority, s.weight, s.port, s.target.to_ascii())),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[track_caller]
fn assert_negative(r: &Message, code: ResponseCode) {
    assert_eq!(r.metadata.response_code, code, "{r}");
    assert!(r.answers.is_empty(), "{r}");
    assert!(r.metadata.authoritative);
    let [soa] = r.authorities.as_slice() else {
        panic!("no SOA in authority: {r}");
    };
    assert_eq!(soa.name.to_ascii(), "cluster.local.");
    assert_eq!(soa.ttl, TTL);
    let RData::SOA(soa) = &soa.data else {
        panic!("not an SOA: {soa}");
    };
    assert_eq!(soa.mname.to_ascii(), "ns.dns.cluster.local.");
    assert_eq!(soa.minimum, TTL);
}

#[test]
fn service_a_record_is_the_cluster_ip() {
    let c = cluster();
    let r = ask(&c, "nginx-svc.default.svc.cluster.local.", RecordType::A);
    assert_eq!(r.metadata.id, 0x1234);
    assert_eq!(r.metadata.message_type, MessageType::Response);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.metadata.authoritative);
    assert!(r.metadata.recursion_desired, "RD is copied");
    assert!(!r.metadata.recursion_available);
    assert_eq!(
        r.queries,
        query("nginx-svc.default.svc.cluster.local.", RecordType::A).queries
    );
    let [a] = r.answers.as_slice() else {
        panic!("{r}");
    };
    assert_eq!(a.data, RData::A(A(NGINX_VIP)));
    assert_eq!(a.ttl, TTL);
    assert_eq!(a.name.to_ascii(), "nginx-svc.default.svc.cluster.local.");
    assert!(r.authorities.is_empty() && r.additionals.is_empty());
}

#[test]
fn matching_ignores_case_and_answers_with_the_name_as_asked() {
    let c = cluster();
    let r = ask(&c, "NGINX-svc.Default.SVC.cluster.LOCAL.", RecordType::A);
    assert_eq!(a_records(&r.answers), BTreeSet::from([NGINX_VIP]));
    assert_eq!(
        r.answers[0].name.to_ascii(),
        "NGINX-svc.Default.SVC.cluster.LOCAL."
    );
    assert_eq!(
        r.queries[0].name.to_ascii(),
        "NGINX-svc.Default.SVC.cluster.LOCAL."
    );
}

#[test]
fn aaaa_of_an_existing_name_is_empty() {
    let c = cluster();
    for name in [
        "nginx-svc.default.svc.cluster.local.",
        "10-10-1-100.default.pod.cluster.local.",
    ] {
        let r = ask(&c, name, RecordType::AAAA);
        assert_negative(&r, ResponseCode::NoError);
    }
}

#[test]
fn missing_names_are_nxdomain_with_the_soa() {
    let c = cluster();
    for name in [
        "nothing.default.svc.cluster.local.",
        // Namespaces are part of the name.
        "nginx-svc.kube-system.svc.cluster.local.",
        "nginx-svc.default.svc.cluster.local.default.svc.cluster.local.",
        "no-such-namespace.svc.cluster.local.",
        "x.cluster.local.",
        "a.b.c.d.e.f.svc.cluster.local.",
        "empty-headless.default.svc.cluster.local.",
    ] {
        assert_negative(&ask(&c, name, RecordType::A), ResponseCode::NXDomain);
    }
}

#[test]
fn namespaces_exist_without_records() {
    let c = cluster();
    for name in [
        "default.svc.cluster.local.",
        "kube-system.svc.cluster.local.",
        "kube-public.svc.cluster.local.",
        "kube-node-lease.pod.cluster.local.",
        "svc.cluster.local.",
        "pod.cluster.local.",
    ] {
        assert_negative(&ask(&c, name, RecordType::A), ResponseCode::NoError);
    }
    let mut other = c.clone();
    other.pods[0].namespace = "team-a".into();
    assert_negative(
        &ask(&other, "team-a.svc.cluster.local.", RecordType::A),
        ResponseCode::NoError,
    );
}

#[test]
fn names_outside_the_domain_are_refused() {
    let c = cluster();
    for name in ["example.com.", "local.", "cluster.local.example.com.", "."] {
        let r = ask(&c, name, RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(!r.metadata.authoritative && !r.metadata.recursion_available);
        assert!(r.answers.is_empty() && r.authorities.is_empty());
    }
}

#[test]
fn srv_for_named_ports() {
    let c = cluster();
    let r = ask(
        &c,
        "_dns._udp.kube-dns.kube-system.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        srv_records(&r.answers),
        vec![(0, 100, 53, "kube-dns.kube-system.svc.cluster.local.".into())]
    );
    assert_eq!(r.additionals.len(), 1);
    assert_eq!(
        r.additionals[0].name.to_ascii(),
        "kube-dns.kube-system.svc.cluster.local."
    );
    assert_eq!(a_records(&r.additionals), BTreeSet::from([DNS_VIP]));
    let r = ask(
        &c,
        "_DNS-TCP._TCP.kube-dns.kube-system.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(srv_records(&r.answers).len(), 1);
    // Service port, not target port.
    let r = ask(
        &c,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        srv_records(&r.answers),
        vec![(0, 100, 8080, "web.default.svc.cluster.local.".into())]
    );
    // Wrong protocol, unknown or unnamed port.
    for name in [
        "_dns._tcp.kube-dns.kube-system.svc.cluster.local.",
        "_nope._udp.kube-dns.kube-system.svc.cluster.local.",
        "_http._tcp.nginx-svc.default.svc.cluster.local.",
        "_dns._sctp.kube-dns.kube-system.svc.cluster.local.",
        "_http._tcp.external.default.svc.cluster.local.",
    ] {
        assert_negative(&ask(&c, name, RecordType::SRV), ResponseCode::NXDomain);
    }
    // The protocol label alone is an empty non-terminal; an A query of
    // an SRV name has no data.
    assert_negative(
        &ask(
            &c,
            "_udp.kube-dns.kube-system.svc.cluster.local.",
            RecordType::SRV,
        ),
        ResponseCode::NoError,
    );
    assert_negative(
        &ask(
            &c,
            "_dns._udp.kube-dns.kube-system.svc.cluster.local.",
            RecordType::A,
        ),
        ResponseCode::NoError,
    );
}

#[test]
fn headless_service_answers_with_its_ready_endpoints() {
    let mut c = cluster();
    let ips = nginx_ips(&c);
    assert_eq!(ips.len(), 2);
    let r = ask(
        &c,
        "nginx-headless.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(a_records(&r.answers), ips);
    assert_eq!(r.answers.len(), 2, "deduplicated over the two ports: {r}");
    let r = ask(
        &c,
        "_http._tcp.nginx-headless.default.svc.cluster.local.",
        RecordType::SRV,
    );
    let expected: Vec<_> = ips
        .iter()
        .map(|ip| {
            (
                0,
                50,
                80,
                format!("{}.nginx-headless.default.svc.cluster.local.", dashed(*ip)),
            )
        })
        .collect();
    assert_eq!(srv_records(&r.answers), expected);
    assert_eq!(a_records(&r.additionals), ips);
    for ip in &ips {
        let name = format!("{}.nginx-headless.default.svc.cluster.local.", dashed(*ip));
        assert_eq!(
            a_records(&ask(&c, &name, RecordType::A).answers),
            BTreeSet::from([*ip])
        );
    }
    assert_negative(
        &ask(
            &c,
            "10-10-9-9.nginx-headless.default.svc.cluster.local.",
            RecordType::A,
        ),
        ResponseCode::NXDomain,
    );
    // Not-ready pods are not endpoints.
    let first = *ips.iter().next().expect("an ip");
    for p in c.pods.iter_mut().filter(|p| p.ip == first) {
        p.ready = false;
    }
    let r = ask(
        &c,
        "nginx-headless.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(a_records(&r.answers).len(), 1);
    assert!(!a_records(&r.answers).contains(&first));
}

#[test]
fn external_name_is_a_cname() {
    let c = cluster();
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
        let r = ask(&c, "external.default.svc.cluster.local.", qtype);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        let [cname] = r.answers.as_slice() else {
            panic!("{r}");
        };
        assert_eq!(
            cname.data,
            RData::CNAME(CNAME(Name::from_str("example.com.").expect("name")))
        );
    }
    // Inside the cluster domain, the chain is followed.
    let r = ask(&c, "alias.default.svc.cluster.local.", RecordType::A);
    assert_eq!(r.answers.len(), 2, "{r}");
    assert_eq!(
        r.answers[1].name.to_ascii(),
        "nginx-svc.default.svc.cluster.local."
    );
    assert_eq!(a_records(&r.answers), BTreeSet::from([NGINX_VIP]));
    let r = ask(&c, "dangling.default.svc.cluster.local.", RecordType::A);
    assert_eq!(r.answers.len(), 1, "{r}");
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn pod_records_any_address_in_an_existing_namespace() {
    let c = cluster();
    let r = ask(&c, "10-10-1-100.default.pod.cluster.local.", RecordType::A);
    assert_eq!(
        a_records(&r.answers),
        BTreeSet::from([Ipv4Addr::new(10, 10, 1, 100)])
    );
    let r = ask(&c, "1-2-3-4.kube-system.pod.cluster.local.", RecordType::A);
    assert_eq!(
        a_records(&r.answers),
        BTreeSet::from([Ipv4Addr::new(1, 2, 3, 4)])
    );
    for name in [
        "10-10-1-100.nope.pod.cluster.local.",
        "10-10-1.default.pod.cluster.local.",
        "10-10-1-300.default.pod.cluster.local.",
        "10-10-1-1-1.default.pod.cluster.local.",
        "10-10--1.default.pod.cluster.local.",
        "client.default.pod.cluster.local.",
    ] {
        assert_negative(&ask(&c, name, RecordType::A), ResponseCode::NXDomain);
    }
}

#[test]
fn apex_has_soa_and_ns() {
    let c = cluster();
    let r = ask(&c, "cluster.local.", RecordType::SOA);
    assert!(matches!(r.answers.as_slice(), [soa] if matches!(soa.data, RData::SOA(_))));
    let r = ask(&c, "cluster.local.", RecordType::NS);
    let [ns] = r.answers.as_slice() else {
        panic!("{r}");
    };
    assert_eq!(
        ns.data,
        RData::NS(NS(Name::from_str("ns.dns.cluster.local.").expect("name")))
    );
    assert_eq!(a_records(&r.additionals), BTreeSet::from([DNS_VIP]));
    let r = ask(&c, "ns.dns.cluster.local.", RecordType::A);
    assert_eq!(a_records(&r.answers), BTreeSet::from([DNS_VIP]));
    assert_negative(
        &ask(&c, "cluster.local.", RecordType::A),
        ResponseCode::NoError,
    );
}

#[test]
fn the_domain_comes_from_the_cluster() {
    let mut c = cluster();
    c.dns_domain = "k8s.example".into();
    let r = ask(&c, "nginx-svc.default.svc.k8s.example.", RecordType::A);
    assert_eq!(a_records(&r.answers), BTreeSet::from([NGINX_VIP]));
    let r = ask(&c, "nginx-svc.default.svc.cluster.local.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn any_returns_every_record() {
    let c = cluster();
    let r = ask(
        &c,
        "kube-dns.kube-system.svc.cluster.local.",
        RecordType::ANY,
    );
    assert_eq!(a_records(&r.answers), BTreeSet::from([DNS_VIP]));
}

#[test]
fn errors_formerr_notimp_and_nothing() {
    let c = cluster();
    // Two questions.
    let mut two = query("nginx-svc.default.svc.cluster.local.", RecordType::A);
    two.add_query(Query::query(
        Name::from_str("a.cluster.local.").expect("name"),
        RecordType::A,
    ));
    let r = ask_message(&c, &two);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    // No question.
    let none = Message::new(7, MessageType::Query, OpCode::Query);
    assert_eq!(
        ask_message(&c, &none).metadata.response_code,
        ResponseCode::FormErr
    );
    // Header, then garbage.
    let mut bytes = query("nginx-svc.default.svc.cluster.local.", RecordType::A)
        .to_vec()
        .expect("encode");
    bytes.truncate(20);
    let r = Message::from_vec(&answer(&bytes, &c).expect("a response")).expect("decode");
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(r.metadata.id, 0x1234);
    // Not a standard query.
    let mut notify = query("cluster.local.", RecordType::SOA);
    notify.metadata.op_code = OpCode::Notify;
    let r = ask_message(&c, &notify);
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(r.metadata.op_code, OpCode::Notify);
    // Another class.
    let mut chaos = query("version.bind.", RecordType::TXT);
    chaos.queries[0].query_class = DNSClass::CH;
    assert_eq!(
        ask_message(&c, &chaos).metadata.response_code,
        ResponseCode::Refused
    );
    // Too short for a header, or a response: nothing.
    assert_eq!(answer(&bytes[..11], &c), None);
    let mut response = query("cluster.local.", RecordType::SOA);
    response.metadata.message_type = MessageType::Response;
    assert_eq!(answer(&response.to_vec().expect("encode"), &c), None);
}

#[test]
fn edns_is_answered_with_edns_and_other_versions_get_badvers() {
    let c = cluster();
    let mut q = query("nginx-svc.default.svc.cluster.local.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    q.edns = Some(edns.clone());
    let r = ask_message(&c, &q);
    assert_eq!(
        r.edns.as_ref().map(Edns::max_payload),
        Some(MAX_UDP_PAYLOAD)
    );
    assert_eq!(a_records(&r.answers), BTreeSet::from([NGINX_VIP]));
    edns.set_version(1);
    q.edns = Some(edns);
    let r = ask_message(&c, &q);
    // BADVERS (16) needs the EDNS extended code; the crate decodes 16 as BADSIG.
    assert_eq!(u16::from(r.metadata.response_code), 16);
    assert_eq!(u16::from(ResponseCode::BADVERS), 16);
    assert!(r.answers.is_empty());
}

#[test]
fn large_udp_answers_are_truncated() {
    let mut c = cluster();
    let template = c
        .pods
        .iter()
        .find(|p| p.labels.get("app").is_some_and(|v| v == "nginx-deployment"))
        .expect("an nginx pod")
        .clone();
    for i in 0..50u8 {
        c.pods.push(Pod {
            name: format!("extra-{i}"),
            ip: Ipv4Addr::new(10, 10, 1, 120 + i),
            ..template.clone()
        });
    }
    let q = query("nginx-headless.default.svc.cluster.local.", RecordType::A);
    let bytes = q.to_vec().expect("encode");
    let udp = answer_udp(&bytes, &c).expect("a response");
    assert!(udp.len() <= 512);
    let r = Message::from_vec(&udp).expect("decode");
    assert!(r.metadata.truncation, "{r}");
    assert!(r.answers.is_empty());
    assert_eq!(r.queries, q.queries);
    let tcp = Message::from_vec(&answer(&bytes, &c).expect("a response")).expect("decode");
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 52);
    // An EDNS client's larger buffer fits more, up to our limit.
    let mut q = q;
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    q.edns = Some(edns);
    let bytes = q.to_vec().expect("encode");
    let udp = answer_udp(&bytes, &c).expect("a response");
    assert!(udp.len() <= usize::from(MAX_UDP_PAYLOAD));
    let r = Message::from_vec(&udp).expect("decode");
    assert_eq!(r.answers.len(), 52, "{} bytes", udp.len());
    assert!(!r.metadata.truncation && udp.len() > 512);
    // A small answer is not truncated over UDP.
    let q = query("nginx-svc.default.svc.cluster.local.", RecordType::A);
    let r = Message::from_vec(&answer_udp(&q.to_vec().expect("encode"), &c).expect("a response"))
        .expect("decode");
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 1);
}

#[test]
fn dashed_addresses() {
    assert_eq!(parse_dashed("10-10-1-5"), Some(Ipv4Addr::new(10, 10, 1, 5)));
    assert_eq!(dashed(Ipv4Addr::new(10, 10, 1, 5)), "10-10-1-5");
    for bad in [
        "10-10-1",
        "10-10-1-5-6",
        "a-b-c-d",
        "10-10-1-256",
        "+1-1-1-1",
        "1-1-1-0001",
    ] {
        assert_eq!(parse_dashed(bad), None, "{bad}");
    }
}

#[test]
fn a_query_with_many_questions_gets_a_short_formerr() {
    // Found by the dns fuzz target: 15 questions made a 1,245-byte UDP
    // answer (the truncated form repeated every question).
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    for i in 0..15 {
        m.add_query(Query::query(
            Name::from_ascii(format!(
                "a-rather-long-name-number-{i}.default.svc.cluster.local"
            ))
            .expect("name"),
            RecordType::A,
        ));
    }
    let q = m.to_vec().expect("encode");
    let c = control::config::parse(include_str!("../../../control/tests/fixtures/cluster.toml"))
        .expect("config");
    let a = answer_udp(&q, &c).expect("answered");
    assert!(a.len() <= 512, "{} bytes", a.len());
    let r = Message::from_vec(&a).expect("decodes");
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(r.metadata.id, 7);
}
