use super::*;
use crate::dns::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use crate::dns::proto::rr::rdata::A;
use crate::dns::proto::rr::{Name, RData, RecordType};
use crate::stats::DropReason;
use crate::wire::packet::{self, Transport};
use etherparse::PacketBuilder;
use std::time::Duration;

const DNS_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const DNS_POD: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 53);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 100);
const NODE: &str = "mac-worker";

/// config.toml with only mac-worker's router-hosted DNS pod, so every
/// query to the kube-dns ClusterIP lands on this node.
fn cluster() -> Cluster {
    let mut c =
        control::config::parse(include_str!("../../../control/tests/fixtures/cluster.toml"))
            .expect("default config");
    c.pods.retain(|p| !p.is_router_hosted() || p.node == NODE);
    let dns = c
        .service("kube-system", "kube-dns")
        .expect("kube-dns in config.toml");
    assert_eq!(dns.cluster_ip, DNS_VIP);
    assert!(c
        .pods
        .iter()
        .any(|p| p.ip == DNS_POD && p.is_router_hosted()));
    c
}

fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(name).expect("name"),
        RecordType::A,
    ));
    m.to_vec().expect("encode")
}

fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, 53)
        .write(&mut p, payload)
        .expect("build");
    p
}

fn drain(node: &mut Node) -> Vec<Transmit> {
    std::iter::from_fn(|| node.poll_transmit()).collect()
}

#[test]
fn node_is_send() {
    fn send<T: Send>() {}
    send::<Node>();
}

#[test]
fn a_query_to_the_cluster_ip_is_answered_in_process() {
    let c = cluster();
    let mut node = Node::new(&DataplaneConfig::default(), &c, NODE).expect("node");
    let t0 = Instant::now();
    let mut buf = PacketBuf::from_slice(&udp(
        CLIENT,
        DNS_VIP,
        40000,
        &dns_query(42, "nginx-svc.default.svc.cluster.local"),
    ));
    assert_eq!(
        node.handle_packet(t0, Ingress::Tun, &mut buf),
        Verdict::Forward(Egress::Stack { pod: DNS_POD })
    );
    let out = drain(&mut node);
    let [answer] = out.as_slice() else {
        panic!("{out:?}");
    };
    assert_eq!(answer.egress, Egress::Tun);
    let p = packet::parse(&answer.packet).expect("parse");
    assert_eq!(
        (p.key.src, p.key.sport, p.key.dst, p.key.dport),
        (DNS_VIP, 53, CLIENT, 40000),
        "un-DNATed to the ClusterIP"
    );
    let m = Message::from_vec(&answer.packet[28..]).expect("a DNS response");
    assert_eq!(m.metadata.id, 42);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        m.answers[0].data,
        RData::A(A(Ipv4Addr::new(10, 101, 182, 177)))
    );
    assert_eq!(node.dns_answered(), 1);
    assert!(node.host_of(DNS_POD).is_some());
    assert_eq!(node.stats().dropped_total(), 0);
}

#[test]
fn host_timers_show_in_poll_timeout_and_run_in_handle_timeout() {
    let c = cluster();
    let mut node = Node::new(&DataplaneConfig::default(), &c, NODE).expect("node");
    let t0 = Instant::now();
    let mut syn = Vec::new();
    PacketBuilder::ipv4(CLIENT.octets(), DNS_VIP.octets(), 64)
        .tcp(40000, 53, 1000, 64240)
        .syn()
        .write(&mut syn, &[])
        .expect("build");
    let _ = node.handle_packet(t0, Ingress::Tun, &mut PacketBuf::from_slice(&syn));
    let synack = drain(&mut node);
    assert_eq!(synack.len(), 1);
    let p = packet::parse(&synack[0].packet).expect("parse");
    assert!(matches!(p.transport, Transport::Tcp { flags, .. } if flags.syn && flags.ack));
    assert_eq!((p.key.src, p.key.sport), (DNS_VIP, 53));
    // Nobody ACKs: the host retransmits its SYN-ACK when its timer fires.
    let due = node.poll_timeout().expect("a retransmission timer");
    assert!(due > t0 && due < t0 + Duration::from_secs(10), "{due:?}");
    node.handle_timeout(due);
    let again = drain(&mut node);
    assert_eq!(again.len(), 1, "SYN-ACK retransmitted");
    assert_eq!(again[0].packet, synack[0].packet);
}

#[test]
fn apply_drops_hosts_of_removed_pods_and_answers_from_the_new_cluster() {
    let mut c = cluster();
    let mut node = Node::new(&DataplaneConfig::default(), &c, NODE).expect("node");
    let t0 = Instant::now();
    let ask = |node: &mut Node, sport: u16| {
        let mut buf = PacketBuf::from_slice(&udp(
            CLIENT,
            DNS_POD,
            sport,
            &dns_query(1, "late.default.svc.cluster.local"),
        ));
        let _ = node.handle_packet(t0, Ingress::Tun, &mut buf);
        drain(node)
            .into_iter()
            .map(|t| Message::from_vec(&t.packet[28..]).expect("dns"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ask(&mut node, 1)[0].metadata.response_code,
        ResponseCode::NXDomain
    );
    let mut late = c
        .service("default", "nginx-svc")
        .expect("nginx-svc")
        .clone();
    late.name = "late".into();
    late.cluster_ip = Ipv4Addr::new(10, 96, 7, 7);
    c.services.push(late);
    node.apply(&c).expect("apply");
    assert!(node.host_of(DNS_POD).is_some(), "kept across apply");
    let m = ask(&mut node, 2);
    assert_eq!(
        m[0].answers[0].data,
        RData::A(A(Ipv4Addr::new(10, 96, 7, 7)))
    );
    c.pods.retain(|p| !p.is_router_hosted());
    node.apply(&c).expect("apply");
    assert!(node.host_of(DNS_POD).is_none());
    assert!(
        ask(&mut node, 3).is_empty(),
        "no pod answers at that IP any more"
    );
}

#[test]
fn a_pod_cannot_send_as_the_hosted_dns_pod() {
    // 100 of 100 spoofed packets used to be delivered.
    let c = cluster();
    let mut node = Node::new(&DataplaneConfig::default(), &c, NODE).expect("node");
    let t0 = Instant::now();
    for sport in 0..100 {
        let mut buf = PacketBuf::from_slice(&udp(DNS_POD, CLIENT, 1000 + sport, b"x"));
        assert_eq!(
            node.handle_packet(t0, Ingress::Tun, &mut buf),
            Verdict::Drop(DropReason::SpoofedSource)
        );
    }
    assert!(drain(&mut node).is_empty());
    assert_eq!(node.stats().dropped(DropReason::SpoofedSource), 100);
}

#[test]
fn dns_answers_go_only_to_sources_the_router_believes() {
    // A pod may put any address outside the cluster's pod network as its
    // source (the node's kernel cannot tell it from the node's own): the
    // answer would go to that victim. 50 spoofed queries made 50 answers.
    let c = cluster();
    let mut node = Node::new(&DataplaneConfig::default(), &c, NODE).expect("node");
    let t0 = Instant::now();
    let victim = Ipv4Addr::new(203, 0, 113, 7);
    for id in 0..50u16 {
        let q = dns_query(id, "nginx-svc.default.svc.cluster.local");
        for dst in [DNS_VIP, DNS_POD] {
            let mut buf = PacketBuf::from_slice(&udp(victim, dst, 40000 + id, &q));
            assert_eq!(
                node.handle_packet(t0, Ingress::Tun, &mut buf),
                Verdict::Drop(DropReason::HostedPodUntrustedSource)
            );
        }
    }
    assert!(drain(&mut node).is_empty(), "no answer to the victim");
    assert_eq!(node.dns_answered(), 0);
    // A pod's own query is still answered.
    let mut buf = PacketBuf::from_slice(&udp(
        CLIENT,
        DNS_VIP,
        40000,
        &dns_query(1, "nginx-svc.default.svc.cluster.local"),
    ));
    assert_eq!(
        node.handle_packet(t0, Ingress::Tun, &mut buf),
        Verdict::Forward(Egress::Stack { pod: DNS_POD })
    );
    assert_eq!(drain(&mut node).len(), 1);
}

#[test]
fn apply_change_answers_from_the_changed_model_and_keeps_or_drops_hosts() {
    let c = cluster();
    let mut node = Node::new(&DataplaneConfig::default(), &c, NODE).expect("node");
    let t0 = Instant::now();
    let ask = |node: &mut Node, sport: u16| {
        let mut buf = PacketBuf::from_slice(&udp(
            CLIENT,
            DNS_POD,
            sport,
            &dns_query(1, "late.default.svc.cluster.local"),
        ));
        let _ = node.handle_packet(t0, Ingress::Tun, &mut buf);
        drain(node)
            .into_iter()
            .map(|t| Message::from_vec(&t.packet[28..]).expect("dns"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ask(&mut node, 1)[0].metadata.response_code,
        ResponseCode::NXDomain
    );
    let mut late = c
        .service("default", "nginx-svc")
        .expect("nginx-svc")
        .clone();
    late.name = "late".into();
    late.cluster_ip = Ipv4Addr::new(10, 96, 7, 7);
    node.apply_change(&ClusterChange::Service(late))
        .expect("apply_change");
    assert!(
        node.host_of(DNS_POD).is_some(),
        "kept across a Service change"
    );
    assert_eq!(
        ask(&mut node, 2)[0].answers[0].data,
        RData::A(A(Ipv4Addr::new(10, 96, 7, 7)))
    );
    node.apply_change(&ClusterChange::ServiceDeleted(cluster::ObjectKey::new(
        "default", "late",
    )))
    .expect("apply_change");
    assert_eq!(
        ask(&mut node, 3)[0].metadata.response_code,
        ResponseCode::NXDomain
    );
    // The DNS pod loses its label: no longer router-hosted, its host goes.
    let dns_pod = c
        .pods
        .iter()
        .find(|p| p.ip == DNS_POD)
        .expect("DNS pod")
        .clone();
    let mut plain = dns_pod.clone();
    plain.labels.clear();
    node.apply_change(&ClusterChange::Pod(plain))
        .expect("apply_change");
    assert!(node.host_of(DNS_POD).is_none());
    assert!(ask(&mut node, 4).is_empty(), "no pod answers in process");
    // Back as a DNS pod: served in process again.
    node.apply_change(&ClusterChange::Pod(dns_pod))
        .expect("apply_change");
    assert_eq!(ask(&mut node, 5).len(), 1);
    assert!(node.host_of(DNS_POD).is_some());
}
