use std::net::Ipv4Addr;

use k8s_openapi::api::discovery::v1::EndpointSlice as K8sSlice;
use serde_json::json;

use cluster::{
    EndpointConditions, EndpointPort, EndpointSlice, ObjectKey, Protocol, SliceEndpoint,
};

use super::object;
use crate::kube::translate_slice;

fn translate(json: serde_json::Value) -> Option<EndpointSlice> {
    translate_slice(&object::<K8sSlice>(json)).expect("readable")
}

#[test]
fn a_slice_with_conditions_nodes_and_pods() {
    let slice = translate(json!({
        "metadata": {"name": "nginx-svc-abcde", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "nginx-svc"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                  {"port": 53, "protocol": "UDP"},
                  {"name": "all"},
                  {"name": "s", "port": 9, "protocol": "SCTP"}],
        "endpoints": [
            {"addresses": ["10.10.0.2"], "nodeName": "mac-master",
             "targetRef": {"kind": "Pod", "name": "nginx-1", "namespace": "default"}},
            {"addresses": ["10.10.1.2"], "nodeName": "mac-worker",
             "conditions": {"ready": false, "serving": true, "terminating": true},
             "targetRef": {"kind": "Pod", "name": "nginx-2"}},
            {"addresses": ["192.168.1.9"], "conditions": {"ready": false}}
        ]
    }))
    .expect("served");
    assert_eq!(
        slice,
        EndpointSlice {
            key: ObjectKey::new("default", "nginx-svc-abcde"),
            service: "nginx-svc".into(),
            ports: vec![
                EndpointPort {
                    name: Some("http".into()),
                    port: 8080,
                    protocol: Protocol::Tcp
                },
                EndpointPort {
                    name: None,
                    port: 53,
                    protocol: Protocol::Udp
                },
            ],
            endpoints: vec![
                SliceEndpoint {
                    ip: Ipv4Addr::new(10, 10, 0, 2),
                    node: Some("mac-master".into()),
                    pod: Some("nginx-1".into()),
                    conditions: EndpointConditions {
                        ready: true,
                        serving: true,
                        terminating: false
                    },
                },
                SliceEndpoint {
                    ip: Ipv4Addr::new(10, 10, 1, 2),
                    node: Some("mac-worker".into()),
                    pod: Some("nginx-2".into()),
                    conditions: EndpointConditions {
                        ready: false,
                        serving: true,
                        terminating: true
                    },
                },
                SliceEndpoint {
                    ip: Ipv4Addr::new(192, 168, 1, 9),
                    node: None,
                    pod: None,
                    conditions: EndpointConditions {
                        ready: false,
                        serving: true,
                        terminating: false
                    },
                },
            ],
        }
    );
}

#[test]
fn slices_not_for_the_router_are_absent() {
    let ipv6 = json!({
        "metadata": {"name": "v6", "labels": {"kubernetes.io/service-name": "s"}},
        "addressType": "IPv6", "endpoints": [{"addresses": ["fd00::1"]}]
    });
    assert_eq!(translate(ipv6), None);
    let fqdn = json!({
        "metadata": {"name": "f", "labels": {"kubernetes.io/service-name": "s"}},
        "addressType": "FQDN", "endpoints": [{"addresses": ["example.com"]}]
    });
    assert_eq!(translate(fqdn), None);
    let orphan = json!({"metadata": {"name": "o"}, "addressType": "IPv4", "endpoints": []});
    assert_eq!(translate(orphan), None);
    let foreign = json!({
        "metadata": {"name": "x", "labels": {"kubernetes.io/service-name": "s",
                     "service.kubernetes.io/service-proxy-name": "other"}},
        "addressType": "IPv4", "endpoints": []
    });
    assert_eq!(translate(foreign), None);
}

#[test]
fn a_headless_services_slice_is_kept_for_the_dns() {
    let slice = translate(json!({
        "metadata": {"name": "h-1", "labels": {"kubernetes.io/service-name": "h",
                     "service.kubernetes.io/headless": ""}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.10.0.5"]}]
    }))
    .expect("kept");
    assert_eq!(slice.endpoints.len(), 1);
}

#[test]
fn unreadable_fields_are_skips() {
    let bad = object::<K8sSlice>(json!({
        "metadata": {"name": "s-1", "namespace": "ns", "labels": {"kubernetes.io/service-name": "s"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.10.0.5"]}, {"addresses": ["fd00::5"]}]
    }));
    assert_eq!(
        translate_slice(&bad).expect_err("a skip").to_string(),
        "EndpointSlice ns/s-1: endpoints[1].addresses[0]: \"fd00::5\" is IPv6 in an IPv4 slice"
    );
    let bad = object::<K8sSlice>(json!({
        "metadata": {"name": "s-1", "labels": {"kubernetes.io/service-name": "s"}},
        "addressType": "IPv4", "ports": [{"port": -1}], "endpoints": []
    }));
    assert_eq!(
        translate_slice(&bad).expect_err("a skip").to_string(),
        "EndpointSlice default/s-1: ports[0].port: -1 is not a port number (1-65535)"
    );
}
