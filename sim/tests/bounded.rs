//! The simulation's drive loops are bounded: a scenario that never settles
//! fails with a clear message (and the capture written) instead of hanging
//! the test run.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use cluster::Cluster;
use dataplane::stats::DropReason;
use sim::{default_cluster, Sim, EXTERNAL};

/// The name of the nginx pod on `node` (from the Deployment in config.toml).
fn nginx_on(c: &Cluster, node: &str) -> (String, Ipv4Addr) {
    match c
        .pods
        .iter()
        .find(|p| p.node == node && p.labels.get("app").is_some_and(|v| v == "nginx-deployment"))
    {
        Some(p) => (p.name.clone(), p.ip),
        None => panic!("config.toml has no nginx pod on {node}"),
    }
}

/// Two UDP echo servers answering each other: the nginx pod on mac-worker
/// sends from its echo port (9000) to the other nginx pod's echo port, and
/// each answer is a new request to the other.
#[test]
#[should_panic(expected = "did not settle within 1000 steps")]
fn echo_servers_answering_each_other_fail_instead_of_hanging() {
    let c = default_cluster();
    let (worker, _) = nginx_on(&c, "mac-worker");
    let (_, master_ip) = nginx_on(&c, "mac-master");
    let mut sim = Sim::new("echo_servers_answering_each_other", &c);
    sim.pod(&worker)
        .udp_request(SocketAddrV4::new(master_ip, 9000), 9000, b"ping");
    sim.advance(Duration::from_millis(1));
}

/// What would be a forwarding loop between routers is not one: mac-master's
/// router is given a cluster in which the two nodes' pod CIDRs are swapped,
/// so it sends a packet for an unused address of its own pod CIDR to
/// mac-worker; mac-worker's router refuses it (routing fails closed)
/// instead of sending it back, and the network settles within a few steps.
#[test]
fn routers_that_disagree_do_not_loop() {
    let c = default_cluster();
    let mut swapped = c.clone();
    let cidrs: Vec<_> = swapped.nodes.iter().map(|n| n.pod_cidr).collect();
    for (n, cidr) in swapped.nodes.iter_mut().zip(cidrs.into_iter().rev()) {
        n.pod_cidr = cidr;
    }
    let mut sim = Sim::new("routers_that_disagree_do_not_loop", &c);
    sim.max_steps(50);
    if let Err(e) = sim.node("mac-master").apply(&swapped) {
        panic!("{e}");
    }
    let unused = Ipv4Addr::new(10, 10, 0, 250);
    assert!(c.pods.iter().all(|p| p.ip != unused));
    sim.pod(EXTERNAL).ping(unused, 1);
    sim.advance(Duration::from_millis(1));
    assert_eq!(sim.node("mac-master").stats().encapsulated, 1);
    assert_eq!(
        sim.node("mac-worker")
            .stats()
            .dropped(DropReason::OverlayNotForUs),
        1,
        "{:?}",
        sim.node("mac-worker").stats()
    );
}
