//! In-process scenarios for Service features beyond plain load balancing:
//! session affinity.

use std::collections::BTreeSet;
use std::net::SocketAddrV4;
use std::time::Duration;

use cluster::SessionAffinity;
use sim::HttpOutcome;
use sim::{default_cluster, Sim};

#[track_caller]
fn hostname(outcome: HttpOutcome) -> String {
    match outcome {
        HttpOutcome::Done { status: 200, body } => body,
        other => panic!("expected a 200 response, got {other:?}"),
    }
}

#[test]
fn client_ip_affinity_sticks_until_its_timeout() {
    let mut c = default_cluster();
    let timeout = 60;
    let vip = {
        let svc = c
            .services
            .iter_mut()
            .find(|s| s.name == "nginx-svc")
            .expect("nginx-svc in config.toml");
        svc.session_affinity = SessionAffinity::ClientIP {
            timeout_seconds: timeout,
        };
        SocketAddrV4::new(svc.cluster_ip, 80)
    };
    let mut sim = Sim::new("affinity", &c);
    let first = hostname(sim.http_get("client", vip, "/hostname"));
    for _ in 0..15 {
        assert_eq!(
            hostname(sim.http_get("client", vip, "/hostname")),
            first,
            "affinity broken"
        );
    }
    // Another client is balanced on its own.
    let mut others = BTreeSet::new();
    for _ in 0..3 {
        others.insert(hostname(sim.http_get("client-master", vip, "/hostname")));
    }
    assert_eq!(others.len(), 1, "client-master is pinned too");
    // After the timeout without new connections, the pin is gone: flows
    // spread again.
    sim.advance(Duration::from_secs(u64::from(timeout) + 1));
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        seen.insert(hostname(sim.http_get("client", vip, "/hostname")));
        sim.advance(Duration::from_secs(u64::from(timeout) + 1));
    }
    assert_eq!(
        seen.len(),
        2,
        "after each timeout the choice is free again: {seen:?}"
    );
}

#[test]
fn affinity_never_points_at_a_removed_endpoint() {
    let mut c = default_cluster();
    let vip = {
        let svc = c
            .services
            .iter_mut()
            .find(|s| s.name == "nginx-svc")
            .expect("nginx-svc in config.toml");
        svc.session_affinity = SessionAffinity::ClientIP {
            timeout_seconds: 10800,
        };
        SocketAddrV4::new(svc.cluster_ip, 80)
    };
    let mut sim = Sim::new("affinity_removed_endpoint", &c);
    let pinned = hostname(sim.http_get("client", vip, "/hostname"));
    let mut without = c.clone();
    without.pods.retain(|p| p.name != pinned);
    sim.dataplane("mac-worker").apply(&without).expect("apply");
    let now = hostname(sim.http_get("client", vip, "/hostname"));
    assert_ne!(now, pinned, "still sent to the removed endpoint");
}
