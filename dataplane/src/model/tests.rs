use super::*;
use cluster::{EndpointConditions, EndpointPort, Protocol, SliceEndpoint, TargetPort};
use std::net::Ipv4Addr;

fn watched() -> Cluster {
    let mut c =
        control::config::parse(include_str!("../../../control/tests/fixtures/cluster.toml"))
            .expect("config");
    c.endpoint_slices = Some(Vec::new());
    c
}

fn slice(name: &str, service: &str, ip: Ipv4Addr) -> EndpointSlice {
    EndpointSlice {
        key: ObjectKey::new("default", name),
        service: service.into(),
        ports: vec![EndpointPort {
            name: None,
            port: 80,
            protocol: Protocol::Tcp,
        }],
        endpoints: vec![SliceEndpoint {
            ip,
            node: None,
            pod: None,
            conditions: EndpointConditions::default(),
        }],
    }
}

fn port() -> ServicePort {
    ServicePort {
        name: None,
        protocol: Protocol::Tcp,
        port: 80,
        target_port: TargetPort::Number(80),
        node_port: None,
    }
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new("default", name)
}

#[test]
fn a_slice_touches_its_service_and_the_one_it_left() {
    let mut m = Model::from_cluster(&watched());
    let ip = Ipv4Addr::new(10, 10, 1, 9);
    let t = m.apply_change(&ClusterChange::EndpointSlice(slice("s", "nginx-svc", ip)));
    assert_eq!(t.services, [key("nginx-svc")].into());
    assert!(!t.all_services && !t.nodes && t.pod.is_none());
    let svc = m
        .service("default", "nginx-svc")
        .expect("nginx-svc")
        .clone();
    assert_eq!(m.endpoints(&svc, &port())[0].ip, ip);
    // The slice moves to another Service: both are touched, the first
    // loses the endpoint.
    let t = m.apply_change(&ClusterChange::EndpointSlice(slice("s", "other", ip)));
    assert_eq!(t.services, [key("nginx-svc"), key("other")].into());
    assert!(m.endpoints(&svc, &port()).is_empty());
    let t = m.apply_change(&ClusterChange::EndpointSliceDeleted(key("s")));
    assert_eq!(t.services, [key("other")].into());
}

#[test]
fn the_first_slice_of_a_config_cluster_switches_every_service_to_slices() {
    let c = control::config::parse(include_str!("../../../control/tests/fixtures/cluster.toml"))
        .expect("config");
    let mut m = Model::from_cluster(&c);
    let svc = m
        .service("default", "nginx-svc")
        .expect("nginx-svc")
        .clone();
    assert!(!m.endpoints(&svc, &svc.ports[0]).is_empty(), "from pods");
    let t = m.apply_change(&ClusterChange::EndpointSlice(slice(
        "s",
        "other",
        Ipv4Addr::new(10, 10, 1, 9),
    )));
    assert!(t.all_services);
    assert!(
        m.endpoints(&svc, &svc.ports[0]).is_empty(),
        "from slices now"
    );
}

#[test]
fn namespaces_exist_while_something_is_in_them() {
    let mut m = Model::from_cluster(&watched());
    assert!(m.namespace_exists("kube-public"), "builtin");
    assert!(!m.namespace_exists("team"));
    let mut svc = m
        .service("default", "nginx-svc")
        .expect("nginx-svc")
        .clone();
    svc.namespace = "team".into();
    let t = m.apply_change(&ClusterChange::Service(svc.clone()));
    assert_eq!(t.services, [ObjectKey::new("team", "nginx-svc")].into());
    assert!(m.namespace_exists("team"));
    m.apply_change(&ClusterChange::Service(svc));
    m.apply_change(&ClusterChange::ServiceDeleted(ObjectKey::new(
        "team",
        "nginx-svc",
    )));
    assert!(!m.namespace_exists("team"), "counted once per object");
}

#[test]
fn a_pod_change_reports_the_pod_before_and_after() {
    let c = watched();
    let mut m = Model::from_cluster(&c);
    let mut pod = c.pods[0].clone();
    let before = pod.clone();
    pod.ready = !pod.ready;
    let t = m.apply_change(&ClusterChange::Pod(pod.clone()));
    assert_eq!(t.pod, Some((Some(before), Some(pod.clone()))));
    assert!(t.services.is_empty(), "slices, not pods, give endpoints");
    let t = m.apply_change(&ClusterChange::PodDeleted(ObjectKey::new(
        pod.namespace.clone(),
        pod.name.clone(),
    )));
    assert_eq!(t.pod, Some((Some(pod), None)));
}

#[test]
fn the_model_gives_back_the_watched_cluster_it_was_told() {
    let mut c = watched();
    c.deployments.clear();
    c.pods.retain(|p| p.node == c.nodes[0].name);
    let mut m = Model::from_cluster(&c);
    let mut team = c.services[0].clone();
    team.namespace = "a-team".into();
    let mut node = c.nodes[0].clone();
    node.name = "n9".into();
    let changes = [
        ClusterChange::EndpointSlice(slice("z", "nginx-svc", Ipv4Addr::new(10, 10, 1, 9))),
        ClusterChange::EndpointSlice(slice("a", "nginx-svc", Ipv4Addr::new(10, 10, 1, 8))),
        ClusterChange::Service(team),
        ClusterChange::Node(node),
        ClusterChange::EndpointSliceDeleted(key("z")),
    ];
    for change in &changes {
        c.apply_change(change);
        m.apply_change(change);
    }
    assert_eq!(m.to_cluster(), c);
}
