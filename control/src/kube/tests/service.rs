use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service as K8sService;
use serde_json::json;

use cluster::{
    Protocol, Service, ServicePort, ServiceType, SessionAffinity, TargetPort, TrafficPolicy,
};

use super::object;
use crate::kube::{translate_service, DEFAULT_AFFINITY_TIMEOUT};

fn translate(json: serde_json::Value) -> Option<Service> {
    translate_service(&object::<K8sService>(json)).expect("readable")
}

fn skip(json: serde_json::Value) -> String {
    match translate_service(&object::<K8sService>(json)) {
        Err(e) => e.to_string(),
        Ok(s) => panic!("expected a skip, got {s:?}"),
    }
}

#[test]
fn a_cluster_ip_service_with_defaults() {
    let svc = translate(json!({
        "metadata": {"name": "nginx-svc", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"clusterIP": "10.101.182.177", "clusterIPs": ["10.101.182.177"],
                 "selector": {"app": "nginx"}, "ports": [{"port": 80}]}
    }))
    .expect("served");
    assert_eq!(
        svc,
        Service {
            name: "nginx-svc".into(),
            namespace: "default".into(),
            labels: [("app".to_owned(), "web".to_owned())].into(),
            selector: [("app".to_owned(), "nginx".to_owned())].into(),
            service_type: ServiceType::ClusterIP,
            cluster_ip: Ipv4Addr::new(10, 101, 182, 177),
            headless: false,
            external_name: None,
            ports: vec![ServicePort {
                name: None,
                protocol: Protocol::Tcp,
                port: 80,
                target_port: TargetPort::Number(80),
                node_port: None,
            }],
            session_affinity: SessionAffinity::None,
            external_traffic_policy: TrafficPolicy::Cluster,
            internal_traffic_policy: TrafficPolicy::Cluster,
            external_ips: vec![],
            load_balancer_ips: vec![],
            created: None,
        }
    );
}

/// AGE in `router get svc` is the Service's own, as in `kubectl get svc`.
#[test]
fn the_creation_time_is_kept_for_age() {
    let svc = translate(json!({
        "metadata": {"name": "web", "namespace": "default",
                     "creationTimestamp": "2026-11-30T02:00:00Z"},
        "spec": {"clusterIP": "10.96.0.60", "ports": [{"port": 80}]}
    }))
    .expect("served");
    assert_eq!(svc.created, Some(1_796_004_000));
}

#[test]
fn a_load_balancer_with_every_field() {
    let svc = translate(json!({
        "metadata": {"name": "lb", "namespace": "web"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.50",
                 "ports": [
                    {"name": "http", "port": 80, "targetPort": "http-alt", "nodePort": 30080},
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353, "nodePort": 30053},
                    {"name": "sctp", "port": 9, "protocol": "SCTP"}],
                 "sessionAffinity": "ClientIP",
                 "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
                 "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
                 "externalIPs": ["192.168.200.20", "2001:db8::1"]},
        "status": {"loadBalancer": {"ingress": [
            {"ip": "192.168.200.10"}, {"hostname": "lb.example.com"}, {"ip": "2001:db8::2"}]}}
    }))
    .expect("served");
    assert_eq!(svc.service_type, ServiceType::LoadBalancer);
    assert_eq!(svc.namespace, "web");
    assert_eq!(
        svc.ports,
        vec![
            ServicePort {
                name: Some("http".into()),
                protocol: Protocol::Tcp,
                port: 80,
                target_port: TargetPort::Name("http-alt".into()),
                node_port: Some(30080),
            },
            ServicePort {
                name: Some("dns".into()),
                protocol: Protocol::Udp,
                port: 53,
                target_port: TargetPort::Number(5353),
                node_port: Some(30053),
            },
        ],
        "SCTP ports are left out"
    );
    assert_eq!(
        svc.session_affinity,
        SessionAffinity::ClientIP {
            timeout_seconds: 60
        }
    );
    assert_eq!(svc.external_traffic_policy, TrafficPolicy::Local);
    assert_eq!(svc.internal_traffic_policy, TrafficPolicy::Local);
    assert_eq!(svc.external_ips, vec![Ipv4Addr::new(192, 168, 200, 20)]);
    assert_eq!(
        svc.load_balancer_ips,
        vec![Ipv4Addr::new(192, 168, 200, 10)]
    );
}

#[test]
fn client_ip_affinity_defaults_to_three_hours() {
    let svc = translate(json!({
        "metadata": {"name": "a"},
        "spec": {"clusterIP": "10.96.0.9", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}
    }))
    .expect("served");
    assert_eq!(svc.namespace, "default");
    assert_eq!(
        svc.session_affinity,
        SessionAffinity::ClientIP {
            timeout_seconds: DEFAULT_AFFINITY_TIMEOUT
        }
    );
    assert_eq!(DEFAULT_AFFINITY_TIMEOUT, 10800);
}

#[test]
fn headless_and_external_name_services_have_no_virtual_ip() {
    let headless = translate(json!({
        "metadata": {"name": "h"},
        "spec": {"clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "db"},
                 "ports": [{"port": 5432}]}
    }))
    .expect("kept: the cluster DNS answers with its endpoints");
    assert!(headless.headless);
    assert_eq!(headless.cluster_ip, Ipv4Addr::UNSPECIFIED);

    let external = translate(json!({
        "metadata": {"name": "e"},
        "spec": {"type": "ExternalName", "externalName": "example.com"}
    }))
    .expect("kept: the cluster DNS answers with a CNAME");
    assert_eq!(external.service_type, ServiceType::ExternalName);
    assert_eq!(external.external_name.as_deref(), Some("example.com"));
    assert_eq!(external.cluster_ip, Ipv4Addr::UNSPECIFIED);
    assert!(!external.headless);
}

#[test]
fn another_proxys_service_is_not_served() {
    let svc = translate(json!({
        "metadata": {"name": "x", "labels": {"service.kubernetes.io/service-proxy-name": "other"}},
        "spec": {"clusterIP": "10.96.0.7", "ports": [{"port": 80}]}
    }));
    assert_eq!(svc, None);
}

#[test]
fn ipv6_only_services_are_skipped_and_dual_stack_ones_use_their_ipv4_address() {
    let v6 = translate(json!({
        "metadata": {"name": "v6"},
        "spec": {"clusterIP": "fd00::10", "clusterIPs": ["fd00::10"], "ipFamilies": ["IPv6"],
                 "ports": [{"port": 80}]}
    }));
    assert_eq!(v6, None);
    let dual = translate(json!({
        "metadata": {"name": "dual"},
        "spec": {"clusterIP": "fd00::11", "clusterIPs": ["fd00::11", "10.96.0.11"],
                 "ports": [{"port": 80}]}
    }))
    .expect("served on its IPv4 address");
    assert_eq!(dual.cluster_ip, Ipv4Addr::new(10, 96, 0, 11));
}

#[test]
fn unreadable_fields_are_skips_naming_the_object_and_the_field() {
    assert_eq!(
        skip(json!({"metadata": {"name": "p", "namespace": "ns"},
                    "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80}, {"port": 70000}]}})),
        "Service ns/p: spec.ports[1].port: 70000 is not a port number (1-65535)"
    );
    assert_eq!(
        skip(json!({"metadata": {"name": "p"},
                    "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80, "targetPort": 0}]}})),
        "Service default/p: spec.ports[0].targetPort: 0 is not a port number (1-65535)"
    );
    assert_eq!(
        skip(json!({"metadata": {"name": "p"},
                    "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80, "protocol": "QUIC"}]}})),
        "Service default/p: spec.ports[0].protocol: \"QUIC\" is not TCP, UDP or SCTP"
    );
    assert_eq!(
        skip(json!({"metadata": {"name": "p"}, "spec": {"clusterIP": "10.96.0.300"}})),
        "Service default/p: spec.clusterIP: \"10.96.0.300\" is not an IP address"
    );
    assert_eq!(
        skip(json!({"metadata": {"name": "p"}, "spec": {"type": "Magic", "clusterIP": "10.96.0.3"}})),
        "Service default/p: spec.type: \"Magic\" is not ClusterIP, NodePort, LoadBalancer or ExternalName"
    );
    assert_eq!(
        skip(json!({"metadata": {"name": "p"}, "spec": {"ports": [{"port": 80}]}})),
        "Service default/p: spec.clusterIP: is not allocated yet"
    );
    assert_eq!(
        skip(json!({"metadata": {"name": "p"},
                    "spec": {"clusterIP": "10.96.0.3", "externalTrafficPolicy": "Nearby"}})),
        "Service default/p: spec.externalTrafficPolicy: \"Nearby\" is not Cluster or Local"
    );
    assert_eq!(
        skip(json!({"metadata": {"name": "p"},
                    "spec": {"clusterIP": "10.96.0.3", "externalIPs": ["nowhere"]}})),
        "Service default/p: spec.externalIPs[0]: \"nowhere\" is not an IP address"
    );
    assert_eq!(
        skip(json!({"metadata": {"name": "p"}, "spec": {"type": "ExternalName"}})),
        "Service default/p: spec.externalName: is missing"
    );
}
