//! In-process scenarios across two nodes joined by the VXLAN overlay, and
//! from an external client: ClusterIP with a backend on the other node,
//! NodePort on both nodes with both traffic policies, LoadBalancer and
//! external IPs. The default lab cluster (`config.toml`).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use cluster::Cluster;
use dataplane::stats::DropReason;
use sim::HttpOutcome;
use sim::{default_cluster, Sim, Tap, EXTERNAL, EXTERNAL_IP};

fn nginx(c: &Cluster) -> Vec<(String, Ipv4Addr, String)> {
    c.pods
        .iter()
        .filter(|p| p.labels.get("app").is_some_and(|v| v == "nginx-deployment"))
        .map(|p| (p.name.clone(), p.ip, p.node.clone()))
        .collect()
}

#[track_caller]
fn body(outcome: HttpOutcome) -> String {
    match outcome {
        HttpOutcome::Done { status: 200, body } => body,
        other => panic!("expected a 200 response, got {other:?}"),
    }
}

fn host_line(b: &str) -> String {
    b.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or_default()
        .to_owned()
}

fn node_port(c: &Cluster, svc: &str) -> u16 {
    c.service("default", svc)
        .and_then(|s| s.ports[0].node_port)
        .unwrap_or_else(|| panic!("{svc} has no nodePort in config.toml"))
}

#[test]
fn the_default_cluster_spreads_nginx_over_both_nodes() {
    let c = default_cluster();
    let nodes: BTreeSet<String> = nginx(&c).into_iter().map(|(_, _, n)| n).collect();
    assert_eq!(
        nodes.len(),
        2,
        "the scenarios below need one nginx pod per node"
    );
}

#[test]
fn cluster_ip_reaches_the_backend_on_the_other_node_with_the_client_ip() {
    let c = default_cluster();
    let mut sim = Sim::new("cluster_ip_across_nodes", &c);
    let vip = SocketAddrV4::new(
        c.service("default", "nginx-svc")
            .expect("nginx-svc")
            .cluster_ip,
        80,
    );
    let client_ip = sim.pod("client").ip();
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let b = body(sim.http_get("client", vip, "/"));
        assert_eq!(b.lines().count(), 4, "{b:?}");
        seen.insert(host_line(&b));
        let who = body(sim.http_get("client", vip, "/clientip"));
        assert!(
            who.starts_with(&format!("{client_ip}:")),
            "a backend saw {who}"
        );
    }
    let all: BTreeSet<String> = nginx(&c).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(seen, all, "20 requests did not reach both nodes' pods");
    let overlay = sim.capture().filter(|(t, _)| *t == Tap::Overlay).count();
    assert!(overlay > 0, "nothing crossed the overlay");
    assert_eq!(sim.undeliverable, 0);
    let master = sim.dataplane("mac-master").stats().clone();
    assert!(
        master.decapsulated > 0 && master.encapsulated > 0,
        "{master:?}"
    );
}

#[test]
fn pods_reach_each_other_across_nodes_both_ways() {
    let c = default_cluster();
    let mut sim = Sim::new("pod_to_pod_across_nodes", &c);
    for (client, node) in [("client", "mac-worker"), ("client-master", "mac-master")] {
        let client_ip = sim.pod(client).ip();
        for (name, ip, pod_node) in nginx(&c) {
            let b = body(sim.http_get(client, SocketAddrV4::new(ip, 80), "/clientip"));
            assert!(b.starts_with(&format!("{client_ip}:")), "{name} saw {b}");
            if pod_node != node {
                sim.pod(client).ping(ip, 1);
            }
        }
        sim.advance(Duration::from_millis(100));
        assert_eq!(
            sim.pod(client).ping_replies(),
            1,
            "{client}: ping to the other node's pod"
        );
    }
}

#[test]
fn node_port_answers_on_every_node_and_masquerades_to_the_node() {
    let c = default_cluster();
    let mut sim = Sim::new("node_port_cluster_policy", &c);
    let port = node_port(&c, "nginx-nodeport");
    for node in &c.nodes {
        let dst = SocketAddrV4::new(node.underlay_ip, port);
        let mut hosts = BTreeSet::new();
        for _ in 0..12 {
            let b = body(sim.http_get(EXTERNAL, dst, "/"));
            hosts.insert(host_line(&b));
            let who = body(sim.http_get(EXTERNAL, dst, "/clientip"));
            assert!(
                who.starts_with(&format!("{}:", node.pod_cidr.network())),
                "via {}: backend saw {who}, not the node's address {}",
                node.name,
                node.pod_cidr.network()
            );
        }
        assert_eq!(
            hosts.len(),
            2,
            "NodePort on {} reached only {hosts:?}",
            node.name
        );
    }
    assert_eq!(sim.undeliverable, 0);
}

#[test]
fn node_port_with_local_policy_keeps_the_client_ip_and_stays_on_the_node() {
    let c = default_cluster();
    let mut sim = Sim::new("node_port_local_policy", &c);
    let port = node_port(&c, "nginx-local");
    for node in &c.nodes {
        let local_pod = nginx(&c)
            .into_iter()
            .find(|(_, _, n)| *n == node.name)
            .map(|(name, _, _)| name)
            .expect("an nginx pod on every node");
        let dst = SocketAddrV4::new(node.underlay_ip, port);
        for _ in 0..6 {
            assert_eq!(
                host_line(&body(sim.http_get(EXTERNAL, dst, "/"))),
                local_pod
            );
            let who = body(sim.http_get(EXTERNAL, dst, "/clientip"));
            assert!(
                who.starts_with(&format!("{EXTERNAL_IP}:")),
                "backend saw {who}"
            );
        }
    }
}

#[test]
fn node_port_with_local_policy_and_no_local_endpoint_drops() {
    let mut c = default_cluster();
    // Remove mac-master's nginx pod: mac-master has no local endpoint left.
    c.pods
        .retain(|p| !(p.node == "mac-master" && p.labels.contains_key("app")));
    let mut sim = Sim::new("node_port_local_no_endpoint", &c);
    let port = node_port(&c, "nginx-local");
    let master = c.node("mac-master").expect("mac-master").underlay_ip;
    let outcome = sim.http_get(EXTERNAL, SocketAddrV4::new(master, port), "/");
    assert!(
        !matches!(outcome, HttpOutcome::Done { .. } | HttpOutcome::Refused),
        "expected silence (dropped), got {outcome:?}"
    );
    assert!(
        sim.dataplane("mac-master")
            .stats()
            .dropped(DropReason::NoLocalEndpoints)
            > 0
    );
    // The Cluster-policy NodePort on the same node still works, via the worker's pod.
    let port = node_port(&c, "nginx-nodeport");
    body(sim.http_get(EXTERNAL, SocketAddrV4::new(master, port), "/"));
}

#[test]
fn load_balancer_and_external_ips_answer() {
    let c = default_cluster();
    let mut sim = Sim::new("load_balancer", &c);
    let lb = c
        .service("default", "nginx-lb")
        .expect("nginx-lb in config.toml");
    let addrs: Vec<Ipv4Addr> = lb
        .load_balancer_ips
        .iter()
        .chain(&lb.external_ips)
        .copied()
        .collect();
    assert!(
        !addrs.is_empty(),
        "nginx-lb has no LoadBalancer or external IP"
    );
    for ip in addrs {
        let b = body(sim.http_get(EXTERNAL, SocketAddrV4::new(ip, lb.ports[0].port), "/"));
        assert_eq!(b.lines().count(), 4, "{ip}: {b:?}");
    }
    // A LoadBalancer IP is a virtual IP: no ping.
    sim.pod(EXTERNAL).ping(lb.load_balancer_ips[0], 1);
    sim.advance(Duration::from_millis(200));
    assert_eq!(sim.pod(EXTERNAL).ping_replies(), 0);
}

#[test]
fn pods_on_either_node_reach_node_ports_and_load_balancer_ips() {
    let c = default_cluster();
    let mut sim = Sim::new("node_port_from_pods", &c);
    let port = node_port(&c, "nginx-nodeport");
    let lb = c
        .service("default", "nginx-lb")
        .expect("nginx-lb in config.toml");
    for client in ["client", "client-master"] {
        for node in &c.nodes {
            let b = body(sim.http_get(client, SocketAddrV4::new(node.underlay_ip, port), "/"));
            assert_eq!(
                b.lines().count(),
                4,
                "{client} -> {}:{port}: {b:?}",
                node.name
            );
        }
        for ip in lb.load_balancer_ips.iter().chain(&lb.external_ips) {
            let b = body(sim.http_get(client, SocketAddrV4::new(*ip, lb.ports[0].port), "/"));
            assert_eq!(b.lines().count(), 4, "{client} -> {ip}: {b:?}");
        }
    }
    // The Local-policy NodePort of the OTHER node: that node's pod answers
    // and sees the pod's own address.
    let local_port = node_port(&c, "nginx-local");
    let client_ip = sim.pod("client").ip();
    let master = c.node("mac-master").expect("mac-master").underlay_ip;
    let master_pod = nginx(&c)
        .into_iter()
        .find(|(_, _, n)| n == "mac-master")
        .map(|(name, _, _)| name)
        .expect("an nginx pod on mac-master");
    for _ in 0..4 {
        let dst = SocketAddrV4::new(master, local_port);
        assert_eq!(
            host_line(&body(sim.http_get("client", dst, "/"))),
            master_pod
        );
        let who = body(sim.http_get("client", dst, "/clientip"));
        assert!(
            who.starts_with(&format!("{client_ip}:")),
            "backend saw {who}"
        );
    }
    assert_eq!(sim.undeliverable, 0);
}
