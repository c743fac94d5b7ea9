//! API paths and Table rendering.

use serde_json::json;

use super::*;

#[test]
fn paths_of_namespaced_and_cluster_scoped_resources() {
    let default = NamespaceFilter::One("default".into());
    assert_eq!(
        path(Resource::Pods, &default, None).as_deref(),
        Some("/api/v1/namespaces/default/pods")
    );
    assert_eq!(
        path(Resource::Services, &NamespaceFilter::All, None).as_deref(),
        Some("/api/v1/services")
    );
    assert_eq!(
        path(Resource::Namespaces, &default, Some("kube-system")).as_deref(),
        Some("/api/v1/namespaces/kube-system")
    );
    assert_eq!(
        path(Resource::Endpoints, &default, Some("nginx-svc")).as_deref(),
        Some("/api/v1/namespaces/default/endpoints/nginx-svc")
    );
    assert_eq!(path(Resource::Conntrack, &default, None), None);
}

fn services_table() -> Table {
    serde_json::from_value(json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "columnDefinitions": [
            {"name": "Name", "type": "string", "priority": 0},
            {"name": "Type", "type": "string", "priority": 0},
            {"name": "Cluster-IP", "type": "string", "priority": 0},
            {"name": "Selector", "type": "string", "priority": 1}
        ],
        "rows": [
            {"cells": ["kubernetes", "ClusterIP", "10.96.0.1", null],
             "object": {"metadata": {"name": "kubernetes", "namespace": "default"}}},
            {"cells": ["nginx-svc", "ClusterIP", "10.101.182.177", "app=nginx"],
             "object": {"metadata": {"name": "nginx-svc", "namespace": "default"}}}
        ]
    }))
    .expect("a Table")
}

#[test]
fn a_table_prints_like_kubectl_get() {
    let table = services_table();
    let one = NamespaceFilter::One("default".into());
    assert_eq!(
        render(&table, false, &one),
        "NAME         TYPE        CLUSTER-IP\n\
         kubernetes   ClusterIP   10.96.0.1\n\
         nginx-svc    ClusterIP   10.101.182.177\n"
    );
    assert_eq!(
        render(&table, true, &NamespaceFilter::All),
        "NAMESPACE   NAME         TYPE        CLUSTER-IP       SELECTOR\n\
         default     kubernetes   ClusterIP   10.96.0.1        <none>\n\
         default     nginx-svc    ClusterIP   10.101.182.177   app=nginx\n"
    );
    let empty: Table =
        serde_json::from_value(json!({"columnDefinitions": [], "rows": []})).expect("a Table");
    assert_eq!(
        render(&empty, false, &one),
        "No resources found in default namespace.\n"
    );
}

#[test]
fn manifests_split_into_objects_lists_flattened() {
    let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\n---\n\
                apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: b\n";
    let objects = apply::objects(text).expect("parses");
    let names: Vec<&str> = objects
        .iter()
        .filter_map(|o| {
            o.pointer("/metadata/name")
                .and_then(serde_json::Value::as_str)
        })
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(apply::objects("- just\n- a list\n").is_err());
    assert!(apply::objects("key: [unclosed\n").is_err());
}
