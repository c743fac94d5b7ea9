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
        "kind": "Pod", "name": "nginx-1", "namespace": "default", "ready": true,
        "status": "Running", "ip": "10.10.0.2", "node": "mac-master",
        "ports": [
            { "name": null, "containerPort": 80, "protocol": "TCP" },
            { "name": "udp-echo", "containerPort": 9000, "protocol": "UDP" },
        ],
    }));
    assert_eq!(p.name, "nginx-1");
    assert_eq!(p.ip, "10.10.0.2");
    assert_eq!(p.node, "mac-master");
    assert!(p.ready);
    assert_eq!(p.status, "Running");
    assert_eq!(p.tcp, [80]);
    assert_eq!(p.udp, [9000]);
    assert!(p.has_ports());
}
