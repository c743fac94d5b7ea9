use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use kube::runtime::watcher::Event;
use serde_json::json;

use cluster::ClusterChange;

use super::object;
use crate::kube::{Kind, Mirror, Update};

fn service(name: &str, ip: &str) -> core::Service {
    object(json!({"metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": ip, "ports": [{"port": 80}]}}))
}

fn foreign(name: &str, ip: &str) -> core::Service {
    object(json!({"metadata": {"name": name, "namespace": "default",
            "labels": {"service.kubernetes.io/service-proxy-name": "other"}},
        "spec": {"clusterIP": ip, "ports": [{"port": 80}]}}))
}

fn slice(name: &str, service: &str, ip: &str) -> discovery::EndpointSlice {
    object(json!({"metadata": {"name": name, "namespace": "default",
            "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "ports": [{"port": 80}],
        "endpoints": [{"addresses": [ip]}]}))
}

/// The changes an event produced, as (kind of change, key) pairs.
fn names(out: &[Update]) -> Vec<String> {
    out.iter()
        .map(|u| match u {
            Update::Synced => "synced".to_owned(),
            Update::Change(c) => match c {
                ClusterChange::Service(s) => format!("+svc {}", s.name),
                ClusterChange::ServiceDeleted(k) => format!("-svc {}", k.name),
                ClusterChange::EndpointSlice(s) => format!("+slice {}", s.key.name),
                ClusterChange::EndpointSliceDeleted(k) => format!("-slice {}", k.name),
                ClusterChange::Node(n) => format!("+node {}", n.name),
                ClusterChange::NodeDeleted(n) => format!("-node {n}"),
                ClusterChange::Pod(p) => format!("+pod {}", p.name),
                ClusterChange::PodDeleted(k) => format!("-pod {}", k.name),
            },
        })
        .collect()
}

/// A mirror whose four kinds have been listed empty.
fn synced() -> Mirror {
    let mut m = Mirror::new();
    let mut out = Vec::new();
    for kind in Kind::ALL {
        assert_eq!(m.unsynced().first(), Some(&kind));
        match kind {
            Kind::Service => {
                m.service(Event::Init, &mut out);
                m.service(Event::InitDone, &mut out);
            }
            Kind::EndpointSlice => {
                m.slice(Event::Init, &mut out);
                m.slice(Event::InitDone, &mut out);
            }
            Kind::Node => {
                m.node(Event::Init, &mut out);
                m.node(Event::InitDone, &mut out);
            }
            Kind::Pod => {
                m.pod(Event::Init, &mut out);
                m.pod(Event::InitDone, &mut out);
            }
        }
    }
    assert_eq!(names(&out), ["synced"], "synced once, after the last kind");
    assert!(m.unsynced().is_empty());
    m
}

#[test]
fn synced_comes_once_after_every_kind_was_listed() {
    let mut m = synced();
    let mut out = Vec::new();
    m.service(Event::Init, &mut out);
    m.service(Event::InitDone, &mut out);
    assert!(out.is_empty(), "a relist does not say synced again");
}

#[test]
fn changes_are_sent_only_when_the_routers_view_changes() {
    let mut m = synced();
    let mut out = Vec::new();
    m.service(Event::Apply(service("a", "10.96.0.10")), &mut out);
    assert_eq!(names(&out), ["+svc a"]);
    out.clear();
    // The same Service again (a status or resourceVersion change).
    m.service(Event::Apply(service("a", "10.96.0.10")), &mut out);
    assert!(out.is_empty());
    m.service(Event::Apply(service("a", "10.96.0.11")), &mut out);
    assert_eq!(names(&out), ["+svc a"]);
    out.clear();
    m.service(Event::Delete(service("a", "10.96.0.11")), &mut out);
    assert_eq!(names(&out), ["-svc a"]);
    out.clear();
    // Deleting what was never sent sends nothing.
    m.service(Event::Delete(foreign("f", "10.96.0.12")), &mut out);
    assert!(out.is_empty());
}

#[test]
fn a_relist_deletes_what_vanished_and_repeats_nothing() {
    let mut m = synced();
    let mut out = Vec::new();
    m.service(Event::Apply(service("a", "10.96.0.10")), &mut out);
    m.service(Event::Apply(service("b", "10.96.0.11")), &mut out);
    m.slice(Event::Apply(slice("a-1", "a", "10.10.0.2")), &mut out);
    out.clear();
    // The API server restarted: b and a-1 were deleted meanwhile, c added.
    m.service(Event::Init, &mut out);
    m.service(Event::InitApply(service("a", "10.96.0.10")), &mut out);
    m.service(Event::InitApply(service("c", "10.96.0.13")), &mut out);
    m.service(Event::InitDone, &mut out);
    m.slice(Event::Init, &mut out);
    m.slice(Event::InitDone, &mut out);
    assert_eq!(names(&out), ["+svc c", "-svc b", "-slice a-1"]);
}

#[test]
fn another_proxys_service_takes_its_slices_with_it() {
    let mut m = synced();
    let mut out = Vec::new();
    m.service(Event::Apply(foreign("x", "10.96.0.20")), &mut out);
    m.slice(Event::Apply(slice("x-1", "x", "10.10.0.7")), &mut out);
    assert!(out.is_empty(), "neither is sent: {:?}", names(&out));
    // The label goes: the Service and its slice appear.
    m.service(Event::Apply(service("x", "10.96.0.20")), &mut out);
    assert_eq!(names(&out), ["+svc x", "+slice x-1"]);
    out.clear();
    // And comes back: both disappear.
    m.service(Event::Apply(foreign("x", "10.96.0.20")), &mut out);
    assert_eq!(names(&out), ["-svc x", "-slice x-1"]);
}

#[test]
fn an_unreadable_object_is_counted_and_treated_as_absent() {
    let mut m = synced();
    let mut out = Vec::new();
    m.service(Event::Apply(service("a", "10.96.0.10")), &mut out);
    out.clear();
    m.service(Event::Apply(service("a", "not-an-ip")), &mut out);
    assert_eq!(names(&out), ["-svc a"]);
    assert_eq!(m.skipped(), 1);
}

#[test]
fn nodes_appear_when_routable_and_go_when_deleted() {
    let mut m = synced();
    let mut out = Vec::new();
    let bare: core::Node = object(json!({"metadata": {"name": "n1"}}));
    m.node(Event::Apply(bare.clone()), &mut out);
    assert!(out.is_empty());
    let routable: core::Node = object(json!({"metadata": {"name": "n1"},
        "spec": {"podCIDR": "10.10.3.0/24"},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.3"}]}}));
    m.node(Event::Apply(routable.clone()), &mut out);
    m.node(Event::Delete(routable), &mut out);
    assert_eq!(names(&out), ["+node n1", "-node n1"]);
    let pod: core::Pod = object(json!({"metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
        "status": {"podIP": "10.10.3.2"}}));
    out.clear();
    m.pod(Event::Apply(pod.clone()), &mut out);
    m.pod(Event::Delete(pod), &mut out);
    assert_eq!(names(&out), ["+pod p", "-pod p"]);
}
