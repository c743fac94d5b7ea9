use serde_json::json;

use super::*;
use crate::resources::Resource;

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(Resource::Services, "default", name)
}

fn alloc() -> ServiceAllocator {
    ServiceAllocator::new("10.96.0.0/12".parse().expect("cidr"))
}

#[test]
fn ips_are_unique_and_checked() {
    let mut a = alloc();
    assert_eq!(a.first_ip(), Ipv4Addr::new(10, 96, 0, 1));
    let ip = a.allocate_ip().expect("ip");
    // Above the static band 10.96.0.0/24 that manifests' fixed IPs use.
    assert_eq!(ip, Ipv4Addr::new(10, 96, 1, 1));
    a.record(
        &key("a"),
        Some(&json!({"spec": {"clusterIP": "10.96.1.1"}})),
    );
    assert_eq!(a.check_ip(&key("a"), ip), Ok(()));
    assert_eq!(a.check_ip(&key("b"), ip), Err(AllocError::IpTaken));
    assert_eq!(
        a.check_ip(&key("b"), Ipv4Addr::new(10, 112, 0, 1)),
        Err(AllocError::OutOfRange(a.cidr()))
    );
    assert_ne!(a.allocate_ip().expect("ip"), ip);
    a.record(&key("a"), None);
    assert_eq!(a.check_ip(&key("b"), ip), Ok(()));
}

#[test]
fn node_ports_are_unique_freed_and_rolled_back() {
    let mut a = alloc();
    let p = a.allocate_port().expect("port");
    assert_eq!(p, 30086, "above the static band 30000-30085");
    a.record(
        &key("a"),
        Some(&json!({"spec": {"ports": [{"port": 80, "nodePort": p}]}})),
    );
    assert_eq!(a.check_port(&key("b"), p), Err(AllocError::PortTaken));
    assert_eq!(a.check_port(&key("b"), 80), Err(AllocError::PortOutOfRange));
    let q = a.allocate_port().expect("port");
    assert_ne!(p, q);
    a.rollback();
    assert_eq!(a.check_port(&key("b"), q), Ok(()));
    // Type change to ClusterIP drops the NodePort.
    a.record(&key("a"), Some(&json!({"spec": {"ports": [{"port": 80}]}})));
    assert_eq!(a.check_port(&key("b"), p), Ok(()));
}

#[test]
fn the_static_band_is_used_last() {
    let mut a = ServiceAllocator::new("10.96.0.0/27".parse().expect("cidr"));
    // A /27: 32 addresses, band 16 (.1-.16), dynamic .17-.30 first.
    let ips: Vec<Ipv4Addr> = (0..30).map_while(|_| a.allocate_ip().ok()).collect();
    assert_eq!(ips.len(), 30, "every host, none twice: {ips:?}");
    assert_eq!(ips[0], Ipv4Addr::new(10, 96, 0, 17));
    assert_eq!(ips[13], Ipv4Addr::new(10, 96, 0, 30));
    assert_eq!(ips[14], Ipv4Addr::new(10, 96, 0, 1));
    let mut unique = ips.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ips.len());
}
