use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Pod as K8sPod;
use serde_json::json;

use cluster::{ContainerPort, Pod, Protocol};

use super::object;
use crate::kube::translate_pod;

fn translate(json: serde_json::Value) -> Option<Pod> {
    translate_pod(&object::<K8sPod>(json)).expect("readable")
}

#[test]
fn a_deployments_ready_pod() {
    let pod = translate(json!({
        "metadata": {"name": "nginx-deployment-756d6b7586-7plkf", "namespace": "default",
                     "labels": {"app": "nginx", "pod-template-hash": "756d6b7586"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "nginx-deployment-756d6b7586", "uid": "u", "controller": true}]},
        "spec": {"nodeName": "mac-master", "containers": [
            {"name": "nginx", "ports": [{"containerPort": 80, "name": "http"},
                                        {"containerPort": 53, "protocol": "UDP"},
                                        {"containerPort": 9, "protocol": "SCTP"}]},
            {"name": "side", "ports": [{"containerPort": 8080}]}]},
        "status": {"podIP": "10.10.0.2", "podIPs": [{"ip": "10.10.0.2"}],
                   "conditions": [{"type": "PodScheduled", "status": "True"},
                                  {"type": "Ready", "status": "True"}]}
    }));
    assert_eq!(
        pod,
        Some(Pod {
            name: "nginx-deployment-756d6b7586-7plkf".into(),
            namespace: "default".into(),
            labels: [
                ("app".to_owned(), "nginx".to_owned()),
                ("pod-template-hash".to_owned(), "756d6b7586".to_owned())
            ]
            .into(),
            ip: Ipv4Addr::new(10, 10, 0, 2),
            node: "mac-master".into(),
            ready: true,
            owner: Some("nginx-deployment".into()),
            ports: vec![
                ContainerPort {
                    name: Some("http".into()),
                    container_port: 80,
                    protocol: Protocol::Tcp
                },
                ContainerPort {
                    name: None,
                    container_port: 53,
                    protocol: Protocol::Udp
                },
                ContainerPort {
                    name: None,
                    container_port: 8080,
                    protocol: Protocol::Tcp
                },
            ],
        })
    );
}

#[test]
fn readiness_comes_from_the_ready_condition() {
    let pod = translate(json!({
        "metadata": {"name": "c"},
        "spec": {"nodeName": "n", "containers": [{"name": "c"}]},
        "status": {"podIP": "10.10.0.3", "conditions": [{"type": "Ready", "status": "False"}]}
    }))
    .expect("has an IP");
    assert!(!pod.ready);
    assert_eq!(pod.owner, None);
    let no_conditions = translate(json!({
        "metadata": {"name": "c"},
        "spec": {"nodeName": "n", "containers": [{"name": "c"}]},
        "status": {"podIP": "10.10.0.3"}
    }))
    .expect("has an IP");
    assert!(!no_conditions.ready);
}

#[test]
fn pods_without_an_address_of_their_own_are_absent() {
    let pending = json!({"metadata": {"name": "p"},
        "spec": {"nodeName": "n", "containers": [{"name": "c"}]}, "status": {}});
    assert_eq!(translate(pending), None);
    let unscheduled = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]},
        "status": {"podIP": "10.10.0.3"}});
    assert_eq!(translate(unscheduled), None);
    let host = json!({"metadata": {"name": "p"},
        "spec": {"nodeName": "n", "hostNetwork": true, "containers": [{"name": "c"}]},
        "status": {"podIP": "192.168.1.2"}});
    assert_eq!(translate(host), None);
    let v6 = json!({"metadata": {"name": "p"},
        "spec": {"nodeName": "n", "containers": [{"name": "c"}]},
        "status": {"podIP": "fd00::3", "podIPs": [{"ip": "fd00::3"}]}});
    assert_eq!(translate(v6), None);
}

#[test]
fn unreadable_fields_are_skips() {
    let bad = object::<K8sPod>(json!({"metadata": {"name": "p"},
        "spec": {"nodeName": "n", "containers": [{"name": "c", "ports": [{"containerPort": 0}]}]},
        "status": {"podIP": "10.10.0.3"}}));
    assert_eq!(
        translate_pod(&bad).expect_err("a skip").to_string(),
        "Pod default/p: spec.containers[0].ports[0].containerPort: 0 is not a port number (1-65535)"
    );
}
