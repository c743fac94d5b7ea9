//! A watched cluster at scale, for the cost of one change: `services`
//! ClusterIP Services (one UDP port each) with one EndpointSlice of 5
//! endpoints each, on two nodes; and the change that replaces one
//! endpoint of one Service. Shared by `benches/changes.rs` and the timing
//! test in `tests/change_cost.rs`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use cluster::{
    Cluster, ClusterChange, EndpointConditions, EndpointPort, EndpointSlice, ObjectKey, Overlay,
    Protocol, Service, ServicePort, ServiceType, SessionAffinity, SliceEndpoint, TargetPort,
    TrafficPolicy,
};

/// Endpoints per Service.
pub const ENDPOINTS: u32 = 5;

fn node(name: &str, i: u8) -> cluster::Node {
    cluster::Node {
        name: name.into(),
        underlay_ip: Ipv4Addr::new(192, 168, 0, i),
        pod_cidr: format!("10.{i}.0.0/16").parse().expect("cidr"),
        next_pod_ip: None,
    }
}

fn service(i: u32) -> Service {
    Service {
        name: format!("svc-{i}"),
        namespace: "default".into(),
        labels: BTreeMap::new(),
        selector: BTreeMap::new(),
        service_type: ServiceType::ClusterIP,
        cluster_ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + i + 1),
        headless: false,
        external_name: None,
        ports: vec![ServicePort {
            name: None,
            protocol: Protocol::Udp,
            port: 53,
            target_port: TargetPort::Number(5353),
            node_port: None,
        }],
        session_affinity: SessionAffinity::None,
        external_traffic_policy: TrafficPolicy::Cluster,
        internal_traffic_policy: TrafficPolicy::Cluster,
        external_ips: Vec::new(),
        load_balancer_ips: Vec::new(),
        created: None,
    }
}

/// Service `i`'s slice; endpoint `k` is `10.<1|2>.<hi>.<lo>` derived from
/// `i * ENDPOINTS + k`, `generation` shifting the last one.
pub fn slice(i: u32, generation: u32) -> EndpointSlice {
    let endpoints = (0..ENDPOINTS)
        .map(|k| {
            let n = i * ENDPOINTS + k + if k == ENDPOINTS - 1 { generation } else { 0 };
            let on = 1 + (n % 2) as u8;
            let [_, _, hi, lo] = n.to_be_bytes();
            SliceEndpoint {
                ip: Ipv4Addr::new(10, on, hi, lo),
                node: Some(format!("n{on}")),
                pod: Some(format!("pod-{n}")),
                conditions: EndpointConditions::default(),
            }
        })
        .collect();
    EndpointSlice {
        key: ObjectKey::new("default", format!("svc-{i}-abcde")),
        service: format!("svc-{i}"),
        ports: vec![EndpointPort {
            name: None,
            port: 5353,
            protocol: Protocol::Udp,
        }],
        endpoints,
    }
}

/// The cluster of `services` Services.
pub fn cluster(services: u32) -> Cluster {
    let mut svcs: Vec<Service> = (0..services).map(service).collect();
    svcs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut slices: Vec<EndpointSlice> = (0..services).map(|i| slice(i, 0)).collect();
    slices.sort_by(|a, b| a.key.cmp(&b.key));
    Cluster {
        pod_cidr: "10.0.0.0/8".parse().expect("cidr"),
        service_cidr: "10.96.0.0/12".parse().expect("cidr"),
        dns_domain: "cluster.local".into(),
        overlay: Overlay::default(),
        nodes: vec![node("n1", 1), node("n2", 2)],
        deployments: Vec::new(),
        pods: Vec::new(),
        services: svcs,
        endpoint_slices: Some(slices),
    }
}

/// The `round`th change: Service `round % services`'s last endpoint
/// replaced by a new address (another one each time it comes round).
pub fn replace_endpoint(services: u32, round: u32) -> ClusterChange {
    let services = services.max(1);
    ClusterChange::EndpointSlice(slice(round % services, 1 + round / services))
}
