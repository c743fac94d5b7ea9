use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use cluster::ClusterChange;
use control::settings::ClusterSettings;
use dataplane::engine::DataplaneConfig;
use dataplane::node::Node;

use super::{LockStats, SharedNode};

fn node() -> Node {
    let mut cluster = ClusterSettings {
        pod_cidr: "10.10.0.0/16".parse().expect("cidr"),
        service_cidr: "10.96.0.0/12".parse().expect("cidr"),
        dns_domain: "cluster.local".into(),
        overlay: cluster::Overlay::default(),
    }
    .empty_cluster();
    cluster.apply_change(&ClusterChange::Node(cluster::Node {
        name: "me".into(),
        underlay_ip: Ipv4Addr::new(192, 168, 1, 1),
        pod_cidr: "10.10.1.0/24".parse().expect("cidr"),
        next_pod_ip: None,
    }));
    Node::new(&DataplaneConfig::default(), &cluster, "me").expect("node")
}

#[test]
fn the_core_never_sees_time_go_back() {
    let t0 = Instant::now();
    let shared = SharedNode::new(node(), t0);
    let mut stats = LockStats::default();
    let later = t0 + Duration::from_millis(5);
    assert_eq!(shared.lock(&mut stats).now(later), later);
    // A worker that read the clock earlier but took the lock later.
    assert_eq!(shared.lock(&mut stats).now(t0), later);
    assert_eq!(stats.acquired, 2);
    assert_eq!(stats.contended, 0);
}

#[test]
fn workers_on_threads_share_one_node_and_count_their_waits() {
    let shared = SharedNode::new(node(), Instant::now());
    let per_worker = 20_000;
    let stats: Vec<LockStats> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut stats = LockStats::default();
                    for _ in 0..per_worker {
                        let mut core = shared.lock(&mut stats);
                        // What a worker does under the lock: ask the core.
                        let now = core.now(Instant::now());
                        core.node.handle_timeout(now);
                    }
                    stats
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    for s in &stats {
        assert_eq!(s.acquired, per_worker);
        assert!(s.contended <= s.acquired);
        assert_eq!(s.sampled, per_worker / LockStats::SAMPLE);
        // The figures a worker logs.
        assert!(s.to_string().starts_with("20000 acquisitions"), "{s}");
    }
}
