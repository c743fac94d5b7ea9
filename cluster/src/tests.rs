//! Tests of the model's changes and of endpoints read from slices.

use std::net::Ipv4Addr;

use super::*;

fn service(name: &str, port_name: Option<&str>) -> Service {
    Service {
        name: name.into(),
        namespace: "default".into(),
        labels: Labels::new(),
        selector: Labels::new(),
        service_type: ServiceType::ClusterIP,
        cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
        headless: false,
        external_name: None,
        ports: vec![ServicePort {
            name: port_name.map(str::to_owned),
            protocol: Protocol::Tcp,
            port: 80,
            target_port: TargetPort::Number(8080),
            node_port: None,
        }],
        session_affinity: SessionAffinity::None,
        external_traffic_policy: TrafficPolicy::Cluster,
        internal_traffic_policy: TrafficPolicy::Cluster,
        external_ips: vec![],
        load_balancer_ips: vec![],
        created: None,
    }
}

fn endpoint(last: u8, ready: bool, terminating: bool) -> SliceEndpoint {
    SliceEndpoint {
        ip: Ipv4Addr::new(10, 10, 0, last),
        node: Some("n1".into()),
        pod: Some(format!("pod-{last}")),
        conditions: EndpointConditions {
            ready,
            serving: ready || terminating,
            terminating,
        },
    }
}

fn slice(name: &str, svc: &str, port_name: Option<&str>, eps: Vec<SliceEndpoint>) -> EndpointSlice {
    EndpointSlice {
        key: ObjectKey::new("default", name),
        service: svc.into(),
        ports: vec![EndpointPort {
            name: port_name.map(str::to_owned),
            port: 8080,
            protocol: Protocol::Tcp,
        }],
        endpoints: eps,
    }
}

fn empty() -> Cluster {
    Cluster::watched(
        "10.10.0.0/16".parse().expect("cidr"),
        "10.96.0.0/12".parse().expect("cidr"),
        "cluster.local".into(),
        Overlay::default(),
    )
}

fn ips(eps: &[Endpoint]) -> Vec<u8> {
    eps.iter().map(|e| e.ip.octets()[3]).collect()
}

#[test]
fn ready_endpoints_of_every_slice_of_the_service_by_port_name() {
    let svc = service("web", Some("http"));
    let slices = [
        slice(
            "web-a",
            "web",
            Some("http"),
            vec![endpoint(3, true, false), endpoint(2, true, false)],
        ),
        slice(
            "web-b",
            "web",
            Some("http"),
            vec![endpoint(4, false, false)],
        ),
        slice(
            "web-c",
            "web",
            Some("metrics"),
            vec![endpoint(5, true, false)],
        ),
    ];
    let eps = slice_endpoints(&slices, &svc.ports[0]);
    assert_eq!(
        ips(&eps),
        [2, 3],
        "ready ones of the port named http, sorted"
    );
    assert_eq!(eps[0].port, 8080);
    assert_eq!(eps[0].pod, "pod-2");
    assert_eq!(eps[0].node, "n1");
}

#[test]
fn serving_terminating_endpoints_only_when_none_is_ready() {
    let svc = service("web", None);
    let terminating = slice(
        "web-a",
        "web",
        None,
        vec![endpoint(2, false, true), endpoint(3, false, false)],
    );
    assert_eq!(ips(&slice_endpoints([&terminating], &svc.ports[0])), [2]);
    let mixed = slice("web-b", "web", None, vec![endpoint(4, true, false)]);
    assert_eq!(
        ips(&slice_endpoints([&terminating, &mixed], &svc.ports[0])),
        [4]
    );
}

#[test]
fn changes_keep_objects_sorted_and_endpoints_follow_the_slices() {
    let mut c = empty();
    c.apply_change(&ClusterChange::Service(service("web", None)));
    c.apply_change(&ClusterChange::Service(service("api", None)));
    assert_eq!(
        c.services
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["api", "web"]
    );
    c.apply_change(&ClusterChange::EndpointSlice(slice(
        "web-x",
        "web",
        None,
        vec![endpoint(2, true, false)],
    )));
    let web = c.service("default", "web").cloned().expect("web");
    assert_eq!(ips(&c.endpoints(&web, &web.ports[0])), [2]);
    let api = c.service("default", "api").cloned().expect("api");
    assert!(
        c.endpoints(&api, &api.ports[0]).is_empty(),
        "another Service's slice"
    );
    c.apply_change(&ClusterChange::EndpointSliceDeleted(ObjectKey::new(
        "default", "web-x",
    )));
    assert!(c.endpoints(&web, &web.ports[0]).is_empty());
    c.apply_change(&ClusterChange::ServiceDeleted(ObjectKey::new(
        "default", "web",
    )));
    assert!(c.service("default", "web").is_none());
    assert!(c.service("default", "api").is_some());
}
