use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Node as K8sNode;
use serde_json::json;

use cluster::Node;

use super::object;
use crate::kube::translate_node;

fn translate(json: serde_json::Value) -> Option<Node> {
    translate_node(&object::<K8sNode>(json)).expect("readable")
}

#[test]
fn a_node_with_pod_cidr_and_internal_ip() {
    let node = translate(json!({
        "metadata": {"name": "mac-worker"},
        "spec": {"podCIDR": "10.10.1.0/24"},
        "status": {"addresses": [{"type": "Hostname", "address": "mac-worker"},
                                 {"type": "ExternalIP", "address": "203.0.113.1"},
                                 {"type": "InternalIP", "address": "192.168.191.145"}]}
    }));
    assert_eq!(
        node,
        Some(Node {
            name: "mac-worker".into(),
            underlay_ip: Ipv4Addr::new(192, 168, 191, 145),
            pod_cidr: "10.10.1.0/24".parse().expect("cidr"),
            next_pod_ip: None,
        })
    );
}

#[test]
fn pod_cidrs_and_dual_stack_addresses_give_the_ipv4_ones() {
    let node = translate(json!({
        "metadata": {"name": "n"},
        "spec": {"podCIDRs": ["fd00:10::/64", "10.10.2.0/24"]},
        "status": {"addresses": [{"type": "InternalIP", "address": "fd00::2"},
                                 {"type": "InternalIP", "address": "192.168.1.2"}]}
    }))
    .expect("routable");
    assert_eq!(node.pod_cidr.to_string(), "10.10.2.0/24");
    assert_eq!(node.underlay_ip, Ipv4Addr::new(192, 168, 1, 2));
}

#[test]
fn a_node_without_pod_cidr_or_address_is_not_routable_yet() {
    let no_cidr = json!({"metadata": {"name": "n"},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.2"}]}});
    assert_eq!(translate(no_cidr), None);
    let no_address = json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.10.2.0/24"}});
    assert_eq!(translate(no_address), None);
    let external_only = json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.10.2.0/24"},
        "status": {"addresses": [{"type": "ExternalIP", "address": "203.0.113.1"}]}});
    assert_eq!(translate(external_only), None);
}

#[test]
fn unreadable_fields_are_skips() {
    let bad =
        object::<K8sNode>(json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.10.2.1/24"}}));
    assert_eq!(
        translate_node(&bad).expect_err("a skip").to_string(),
        "Node n: spec.podCIDR: \"10.10.2.1/24\" has host bits set (did you mean 10.10.2.0/24?)"
    );
    let bad = object::<K8sNode>(
        json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.10.2.0/24"},
        "status": {"addresses": [{"type": "InternalIP", "address": "node-1"}]}}),
    );
    assert_eq!(
        translate_node(&bad).expect_err("a skip").to_string(),
        "Node n: status.addresses[0].address: \"node-1\" is not an IP address"
    );
}
