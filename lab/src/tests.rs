use serde_json::json;

use crate::objects::{pod_of, stat_count};
use crate::text::{client_ip_of, contains_ip, veth_name};

#[test]
fn contains_ip_matches_whole_addresses() {
    assert!(contains_ip("src=10.10.1.4 dst=x", "10.10.1.4"));
    assert!(contains_ip("10.10.1.4:5000", "10.10.1.4"));
    assert!(contains_ip("(10.10.1.4)", "10.10.1.4"));
    assert!(!contains_ip("src=10.10.1.40 dst=x", "10.10.1.4"));
    assert!(!contains_ip("src=110.10.1.4", "10.10.1.4"));
    assert!(!contains_ip("10.10.1.4.5", "10.10.1.4"));
}

#[test]
fn parses_counters() {
    let stats = json!({
        "received": 278,
        "dropped_total": 2,
        "dropped": { "spoofed-source": 2, "too-big": 0 },
    });
    assert_eq!(stat_count(&stats, "spoofed-source"), 2);
    assert_eq!(stat_count(&stats, "received"), 278);
    assert_eq!(stat_count(&stats, "too-big"), 0);
    assert_eq!(stat_count(&stats, "no-such-counter"), 0);
    assert_eq!(veth_name("10.10.1.100"), "ksr0a0a0164");
    assert_eq!(client_ip_of("10.10.1.100:4242\n"), Some("10.10.1.100"));
}

#[test]
fn reads_a_pod_item() {
    let p = pod_of(&json!({
        "kind": "Pod",
        "metadata": { "name": "nginx-1", "namespace": "default", "labels": { "app": "nginx" } },
        "spec": {
            "nodeName": "mac-master",
            "containers": [{ "name": "nginx", "ports": [
                { "containerPort": 80 },
                { "name": "udp-echo", "containerPort": 9000, "protocol": "UDP" },
            ] }],
        },
        "status": {
            "phase": "Running", "podIP": "10.10.0.2",
            "conditions": [{ "type": "Ready", "status": "True" }],
        },
    }));
    assert_eq!(p.name, "nginx-1");
    assert_eq!(p.ip, "10.10.0.2");
    assert_eq!(p.node, "mac-master");
    assert!(p.ready && !p.terminating && !p.router_hosted);
    assert_eq!(p.status, "Running");
    assert_eq!(p.tcp, [80]);
    assert_eq!(p.udp, [9000]);
    assert!(p.has_ports());
    let dns = pod_of(&json!({
        "metadata": { "name": "coredns-a", "labels": { "k8s-app": "kube-dns" },
                      "deletionTimestamp": "2026-01-01T00:00:00Z" },
        "status": { "conditions": [{ "type": "Ready", "status": "False" }] },
    }));
    assert!(dns.router_hosted && dns.terminating && !dns.ready && !dns.has_ports());
}

#[test]
fn writes_nginx_svc_as_its_manifest() {
    let manifest = include_str!("../manifests/nginx-svc.yaml");
    let body: String = manifest
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let ours = crate::kubectl::nginx_svc("");
    let sorted = |t: &str| {
        let mut v: Vec<String> = t.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&ours), sorted(&body), "{ours}");
    let np = crate::kubectl::nginx_svc_labelled(&[("round", "r1")], "  type: NodePort\n");
    assert!(np.contains("  labels:\n    round: \"r1\"\nspec:\n  type: NodePort\n  selector:"));
}

#[test]
fn parses_synflood_reports() {
    let r = crate::flood::parse_report("sent 300000 packets in 15.00 s (20000/s), 0 send errors\n")
        .expect("a report");
    assert_eq!(r.sent, 300_000);
    assert!((r.secs - 15.0).abs() < 1e-9 && (r.rate - 20_000.0).abs() < 1e-9);
    assert!(crate::flood::parse_report("synflood: cannot open a raw socket").is_none());
}

#[test]
fn tallies_percent() {
    let mut t = crate::probes::Tally::default();
    assert_eq!(t.percent(), 100.0);
    t.add(true);
    t.add(false);
    assert_eq!((t.ok, t.total, t.percent()), (1, 2, 50.0));
    assert_eq!(t.to_string(), "1/2 (50.0%)");
}
