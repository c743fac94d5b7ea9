//! In-process scenarios: smoltcp pods and the router core on an in-memory
//! wire, with the default lab cluster (`config.toml`). What a user checks
//! with `curl` and `ping` in the lab, checked here without root.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use cluster::Cluster;
use dataplane::stats::DropReason;
use sim::HttpOutcome;
use sim::{default_cluster, Sim};

const NODE: &str = "mac-worker";

fn nginx_pods(c: &Cluster) -> Vec<(String, Ipv4Addr)> {
    c.pods
        .iter()
        .filter(|p| p.labels.get("app").is_some_and(|v| v == "nginx-deployment"))
        .map(|p| (p.name.clone(), p.ip))
        .collect()
}

fn vip(c: &Cluster, name: &str) -> Ipv4Addr {
    match c.service("default", name) {
        Some(s) => s.cluster_ip,
        None => panic!("service {name} missing from config.toml"),
    }
}

#[track_caller]
fn body(outcome: HttpOutcome) -> String {
    match outcome {
        HttpOutcome::Done { status: 200, body } => body,
        other => panic!("expected a 200 response, got {other:?}"),
    }
}

#[test]
fn http_through_cluster_ip_reaches_every_backend() {
    let c = default_cluster();
    let mut sim = Sim::new("http_through_cluster_ip", &c);
    let svc = SocketAddrV4::new(vip(&c, "nginx-svc"), 80);
    let backends = nginx_pods(&c);
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let b = body(sim.http_get("client", svc, "/"));
        let lines: Vec<&str> = b.lines().collect();
        assert_eq!(lines.len(), 4, "four lines, got {b:?}");
        let host = lines[1].strip_prefix("host: ").expect("host line");
        let (name, ip) = backends
            .iter()
            .find(|(n, _)| n == host)
            .unwrap_or_else(|| panic!("{host} is not an nginx pod"));
        assert_eq!(
            lines[0],
            format!("srv : {ip}:80"),
            "the backend saw its own address"
        );
        assert_eq!(
            lines[2],
            format!("uri : GET {} /", svc.ip()),
            "Host header kept the VIP"
        );
        seen.insert(name.clone());
    }
    assert_eq!(
        seen.len(),
        backends.len(),
        "20 requests reached {seen:?}, not every backend"
    );
    assert_eq!(sim.undeliverable, 0);
}

#[test]
fn backend_sees_the_client_pod_ip() {
    let c = default_cluster();
    let mut sim = Sim::new("client_ip_preserved", &c);
    let client_ip = sim.pod("client").ip();
    let svc = SocketAddrV4::new(vip(&c, "nginx-svc"), 80);
    let b = body(sim.http_get("client", svc, "/clientip"));
    assert!(
        b.starts_with(&format!("{client_ip}:")),
        "backend saw {b}, not the client pod {client_ip}"
    );
}

#[test]
fn pod_reaches_itself_through_its_service() {
    let c = default_cluster();
    let mut sim = Sim::new("hairpin", &c);
    let svc = SocketAddrV4::new(vip(&c, "nginx-svc"), 80);
    for (name, _) in nginx_pods(&c) {
        let mut answered_by_self = 0;
        for _ in 0..12 {
            if body(sim.http_get(&name, svc, "/hostname")) == name {
                answered_by_self += 1;
            }
        }
        assert!(
            answered_by_self > 0,
            "{name} never reached itself through nginx-svc"
        );
    }
}

#[test]
fn service_without_endpoints_refuses_at_once() {
    let c = default_cluster();
    let mut sim = Sim::new("no_endpoints", &c);
    let orphan = SocketAddrV4::new(vip(&c, "orphan-svc"), 80);
    let start = sim.now();
    assert_eq!(sim.http_get("client", orphan, "/"), HttpOutcome::Refused);
    assert!(
        sim.now() - start < Duration::from_millis(100),
        "refused only after {:?}",
        sim.now() - start
    );
    assert_eq!(
        sim.dataplane(NODE).stats().dropped(DropReason::NoEndpoints),
        1
    );
}

#[test]
fn ping_to_cluster_ip_is_dropped() {
    let c = default_cluster();
    let mut sim = Sim::new("ping_vip", &c);
    let svc = vip(&c, "nginx-svc");
    for seq in 0..3 {
        sim.pod("client").ping(svc, seq);
        sim.advance(Duration::from_secs(1));
    }
    assert_eq!(
        sim.pod("client").ping_replies(),
        0,
        "a ClusterIP answered ping"
    );
    assert_eq!(
        sim.dataplane(NODE)
            .stats()
            .dropped(DropReason::IcmpToServiceIp),
        3
    );
    // A pod IP, by contrast, answers.
    let (_, pod_ip) = nginx_pods(&c)[0].clone();
    sim.pod("client").ping(pod_ip, 9);
    sim.advance(Duration::from_secs(1));
    assert_eq!(
        sim.pod("client").ping_replies(),
        1,
        "a pod IP did not answer ping"
    );
}

#[test]
fn udp_through_a_udp_service() {
    let c = default_cluster();
    let mut sim = Sim::new("udp_service", &c);
    let svc = c
        .service("default", "echo-udp")
        .expect("echo-udp in config.toml");
    let dst = SocketAddrV4::new(svc.cluster_ip, svc.ports[0].port);
    let names: Vec<String> = nginx_pods(&c).into_iter().map(|(n, _)| n).collect();
    let id = sim.pod("client").udp_request(dst, 5353, b"hostname");
    let ok = sim.run_until(Duration::from_secs(2), |s| {
        !s.pod("client").udp_replies(id).is_empty()
    });
    assert!(ok, "no UDP answer through {dst}");
    let replies = sim.pod("client").udp_replies(id);
    let (from, payload) = &replies[0];
    assert_eq!(
        *from, dst,
        "the answer must come from the ClusterIP, un-NATed"
    );
    let text = String::from_utf8_lossy(payload);
    assert!(
        names.iter().any(|n| *n == text),
        "answer {text:?} is not an nginx pod name"
    );
}

#[test]
fn udp_to_a_port_the_service_does_not_serve_gets_port_unreachable() {
    let c = default_cluster();
    let mut sim = Sim::new("udp_unreachable", &c);
    let svc = c
        .service("default", "echo-udp")
        .expect("echo-udp in config.toml");
    let dst = SocketAddrV4::new(svc.cluster_ip, svc.ports[0].port + 1);
    sim.pod("client").udp_request(dst, 5354, b"hostname");
    sim.advance(Duration::from_millis(50));
    assert_eq!(sim.pod("client").icmp_unreachable_seen(), 1);
}
