//! The controllers in process: Deployment -> ReplicaSet -> Pods, scheduling
//! and pod IPs, EndpointSlices and Endpoints, garbage collection.

mod common;

use std::sync::Arc;

use apiserver::api::Api;
use apiserver::request::ObjectPath;
use apiserver::resources::Resource;
use apiserver::store::ObjectKey;
use apiserver::Config;
use common::*;
use serde_json::{json, Value};

fn path(resource: Resource, name: &str) -> ObjectPath {
    ObjectPath {
        resource,
        namespace: resource.namespaced().then(|| "default".into()),
        name: Some(name.into()),
        subresource: None,
    }
}

fn list(api: &Api, resource: Resource) -> Vec<Arc<Value>> {
    api.store().list(resource, Some("default")).0
}

fn setup() -> (Server, Arc<Api>) {
    let server = Server::start(Config::default());
    let api = server.running.as_ref().expect("running").api.clone();
    for (name, cidr) in [("n1", "10.10.0.0/24"), ("n2", "10.10.1.0/24")] {
        let node = json!({"metadata": {"name": name}, "spec": {"podCIDR": cidr}});
        api.create(Resource::Nodes, None, node, Api::internal())
            .expect("node");
    }
    let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]}}}});
    api.create(Resource::Deployments, Some("default"), d, Api::internal())
        .expect("deployment");
    let svc = json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    api.create(Resource::Services, Some("default"), svc, Api::internal())
        .expect("service");
    (server, api)
}

fn ready_endpoints(api: &Api) -> Vec<Value> {
    list(api, Resource::EndpointSlices)
        .iter()
        .filter(|s| {
            s.pointer("/metadata/labels/kubernetes.io~1service-name") == Some(&json!("web"))
        })
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn deployment_to_endpoints() {
    let (server, api) = setup();
    eventually("3 ready endpoints", || {
        ready_endpoints(&api)
            .iter()
            .filter(|e| e["conditions"]["ready"] == json!(true))
            .count()
            == 3
    });
    let rs = list(&api, Resource::ReplicaSets);
    assert_eq!(rs.len(), 1);
    let rs_name = rs[0]["metadata"]["name"].as_str().unwrap_or("").to_string();
    let hash = rs[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(rs_name, format!("web-{hash}"));
    let d = api
        .store()
        .get(&ObjectKey::new(Resource::Deployments, "default", "web"))
        .expect("deployment");
    assert_eq!(d["status"]["readyReplicas"], 3);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );

    let pods = list(&api, Resource::Pods);
    let mut per_node = std::collections::BTreeMap::new();
    for p in &pods {
        let name = p["metadata"]["name"].as_str().unwrap_or("");
        assert!(
            name.starts_with(&format!("{rs_name}-")) && name.len() == rs_name.len() + 6,
            "{name}"
        );
        *per_node
            .entry(p["spec"]["nodeName"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
        let ip = p["status"]["podIP"].as_str().unwrap_or("");
        let cidr = if p["spec"]["nodeName"] == "n1" {
            "10.10.0."
        } else {
            "10.10.1."
        };
        assert!(ip.starts_with(cidr), "{ip} on {}", p["spec"]["nodeName"]);
    }
    assert_eq!(
        per_node.values().copied().collect::<Vec<_>>(),
        vec![2, 1],
        "spread: {per_node:?}"
    );

    let slice = list(&api, Resource::EndpointSlices)
        .into_iter()
        .find(|s| {
            s["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("web-"))
        })
        .expect("slice");
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["endpoints"][0]["targetRef"]["kind"], "Pod");
    let ep = api
        .store()
        .get(&ObjectKey::new(Resource::Endpoints, "default", "web"))
        .expect("endpoints");
    assert_eq!(
        ep["subsets"][0]["addresses"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(
        ep["subsets"][0]["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );

    // A deleted pod is terminating (not ready, still serving), then gone and replaced.
    let victim = pods[0]["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    api.delete(&path(Resource::Pods, &victim), None)
        .expect("deleted");
    let slice_of = |api: &Api| {
        ready_endpoints(api)
            .into_iter()
            .find(|e| e["targetRef"]["name"] == json!(victim.as_str()))
    };
    let terminating = json!({"ready": false, "serving": true, "terminating": true});
    let in_endpoints = |api: &Api| {
        api.store()
            .get(&ObjectKey::new(Resource::Endpoints, "default", "web"))
            .is_some_and(|ep| ep["subsets"].to_string().contains(victim.as_str()))
    };
    // The stand-in kubelet removes it after 500 ms: the state is seen first.
    eventually("a terminating endpoint, left out of Endpoints", || {
        slice_of(&api).is_some_and(|e| e["conditions"] == terminating) && !in_endpoints(&api)
    });
    eventually("the deleted pod gone and replaced", || {
        slice_of(&api).is_none()
            && ready_endpoints(&api)
                .iter()
                .filter(|e| e["conditions"]["ready"] == json!(true))
                .count()
                == 3
    });

    // Deleting the Deployment takes the ReplicaSet and pods; deleting the
    // Service its slice and Endpoints.
    api.delete(&path(Resource::Deployments, "web"), None)
        .expect("deleted");
    api.delete(&path(Resource::Services, "web"), None)
        .expect("deleted");
    eventually("everything collected", || {
        list(&api, Resource::ReplicaSets).is_empty()
            && list(&api, Resource::Pods).is_empty()
            && ready_endpoints(&api).is_empty()
            && api
                .store()
                .get(&ObjectKey::new(Resource::Endpoints, "default", "web"))
                .is_none()
    });
    server.stop();
}

#[test]
fn a_new_template_rolls_to_a_new_replicaset() {
    let (server, api) = setup();
    eventually("3 pods", || list(&api, Resource::Pods).len() == 3);
    let patch =
        br#"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}}}"#;
    api.patch(
        &path(Resource::Deployments, "web"),
        apiserver::patch::PatchType::Strategic,
        patch,
        Api::internal(),
    )
    .expect("patched");
    eventually("the new ReplicaSet owns all pods", || {
        let rs = list(&api, Resource::ReplicaSets);
        let pods = list(&api, Resource::Pods);
        rs.len() == 2
            && rs.iter().any(|r| r["spec"]["replicas"] == json!(0))
            && pods.len() == 3
            && pods
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "nginx:2")
    });
    let d = api
        .store()
        .get(&ObjectKey::new(Resource::Deployments, "default", "web"))
        .expect("deployment");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );

    // Back to the first template (a rollback): its ReplicaSet is reused and
    // becomes revision 3.
    let back = br#"{"spec":{"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#;
    api.patch(
        &path(Resource::Deployments, "web"),
        apiserver::patch::PatchType::Strategic,
        back,
        Api::internal(),
    )
    .expect("patched");
    eventually("the first ReplicaSet back at 3", || {
        let rs = list(&api, Resource::ReplicaSets);
        rs.len() == 2
            && rs.iter().any(|r| {
                r["spec"]["replicas"] == json!(3)
                    && r["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
                    && r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
            })
            && list(&api, Resource::Pods)
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "nginx")
    });
    server.stop();
}
