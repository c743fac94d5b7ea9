//! Kubernetes mode's shell side: the wait for the first sync and the
//! bounded application of changes.

use std::io::Write;
use std::net::Ipv4Addr;

use cluster::{
    ClusterChange, Protocol, Service, ServicePort, ServiceType, SessionAffinity, TargetPort,
    TrafficPolicy,
};
use control::kube::{Received, Update};

use crate::shell::metrics::Programming;
use control::settings::ClusterSettings;
use dataplane::engine::DataplaneConfig;

use super::*;

fn empty() -> Cluster {
    ClusterSettings {
        pod_cidr: "10.10.0.0/16".parse().expect("cidr"),
        service_cidr: "10.96.0.0/12".parse().expect("cidr"),
        dns_domain: "cluster.local".into(),
        overlay: cluster::Overlay::default(),
    }
    .empty_cluster()
}

fn node(name: &str, third: u8) -> ClusterChange {
    ClusterChange::Node(cluster::Node {
        name: name.into(),
        underlay_ip: Ipv4Addr::new(192, 168, 1, third),
        pod_cidr: format!("10.10.{third}.0/24").parse().expect("cidr"),
        next_pod_ip: None,
    })
}

fn service(i: u16) -> ClusterChange {
    let [hi, lo] = i.to_be_bytes();
    ClusterChange::Service(Service {
        name: format!("svc-{i:04}"),
        namespace: "default".into(),
        labels: Default::default(),
        selector: Default::default(),
        service_type: ServiceType::ClusterIP,
        cluster_ip: Ipv4Addr::new(10, 97, hi, lo),
        headless: false,
        external_name: None,
        ports: vec![ServicePort {
            name: None,
            protocol: Protocol::Tcp,
            port: 80,
            target_port: TargetPort::Number(80),
            node_port: None,
        }],
        session_affinity: SessionAffinity::None,
        external_traffic_policy: TrafficPolicy::Cluster,
        internal_traffic_policy: TrafficPolicy::Cluster,
        external_ips: vec![],
        load_balancer_ips: vec![],
        created: None,
    })
}

fn signal_pipe() -> (std::os::unix::net::UnixStream, mio::net::UnixStream) {
    let (tx, rx) = std::os::unix::net::UnixStream::pair().expect("pair");
    rx.set_nonblocking(true).expect("nonblocking");
    (tx, mio::net::UnixStream::from_std(rx))
}

#[test]
fn the_wait_ends_when_the_list_is_complete_and_the_node_routable() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (_keep, mut signal) = signal_pipe();
    for update in [
        Update::Change(node("other", 2)),
        Update::Change(service(1)),
        Update::Synced,
        Update::Change(node("me", 1)),
        Update::Change(service(2)),
    ] {
        tx.send(Received::now(update)).expect("send");
    }
    let cluster = wait_for_sync(&rx, empty(), "me", "http://api", &mut signal)
        .expect("no error")
        .expect("synced");
    assert_eq!(cluster.nodes.len(), 2);
    assert_eq!(cluster.services.len(), 1, "what came after stays queued");
    assert_eq!(rx.len(), 1);
}

#[test]
fn a_complete_list_without_this_node_is_not_enough() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (_keep, mut signal) = signal_pipe();
    tx.send(Received::now(Update::Change(node("other", 2))))
        .expect("send");
    tx.send(Received::now(Update::Synced)).expect("send");
    drop(tx);
    // It waits on until the watch ends (which the router reports).
    let result = wait_for_sync(&rx, empty(), "me", "http://api", &mut signal);
    assert!(matches!(result, Err(control::kube::WatchError::Thread(_))));
}

#[test]
fn a_signal_ends_the_wait() {
    let (_tx, rx) = crossbeam_channel::unbounded();
    let (mut raise, mut signal) = signal_pipe();
    raise.write_all(&[15]).expect("signal");
    let result = wait_for_sync(&rx, empty(), "me", "http://api", &mut signal);
    assert!(matches!(result, Ok(None)));
}

#[test]
fn changes_are_applied_a_bounded_number_per_turn_and_shown_to_the_socket() {
    let mut cluster = empty();
    cluster.apply_change(&node("me", 1));
    let mut dp = Node::new(&DataplaneConfig::default(), &cluster, "me").expect("node");
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut feed = KubeFeed::new(rx, None);
    let total = CHANGES_PER_TURN + 44;
    for i in 0..total {
        tx.send(Received::now(Update::Change(service(i as u16))))
            .expect("send");
    }
    assert!(
        feed.drain(&mut dp, &Programming::default()),
        "more are waiting after one turn"
    );
    // The socket answers `get` from the data plane's model.
    assert_eq!(dp.model().to_cluster().services.len(), CHANGES_PER_TURN);
    assert!(!feed.drain(&mut dp, &Programming::default()));
    let view = dp.model().to_cluster();
    assert_eq!(view.services.len(), total);
    assert_eq!(
        dp.services().entries().len(),
        total,
        "the data plane serves every Service port the socket shows"
    );
}
