use serde_json::json;

use super::*;

fn smp(current: Value, patch: Value) -> Value {
    apply(PatchType::Strategic, &current, patch.to_string().as_bytes()).expect("patch applies")
}

#[test]
fn containers_merge_by_name_and_ports_by_container_port() {
    let current = json!({"spec": {"containers": [
        {"name": "a", "image": "nginx:1", "ports": [{"containerPort": 80}, {"containerPort": 81}]},
        {"name": "b", "image": "busybox"}
    ]}});
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "a", "image": "nginx:2", "ports": [{"containerPort": 81, "name": "alt"}]}]
    }});
    let out = smp(current, patch);
    assert_eq!(out["spec"]["containers"][0]["name"], "b");
    assert_eq!(out["spec"]["containers"][1]["image"], "nginx:2");
    assert_eq!(out["spec"]["containers"][1]["ports"][1]["name"], "alt");
    assert_eq!(
        out["spec"]["containers"][1]["ports"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn service_ports_merge_by_port_and_delete_directive_removes() {
    let current = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.9",
        "ports": [{"port": 80, "targetPort": 80}, {"port": 443}]}});
    let patch = json!({"spec": {"type": "NodePort",
        "ports": [{"port": 80, "nodePort": 30080}, {"port": 443, "$patch": "delete"}]}});
    let out = smp(current, patch);
    assert_eq!(out["spec"]["type"], "NodePort");
    assert_eq!(out["spec"]["clusterIP"], "10.96.0.9");
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "targetPort": 80, "nodePort": 30080}])
    );
}

#[test]
fn null_deletes_and_unkeyed_lists_replace_and_retain_keys() {
    let current = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
        "spec": {"args": ["x", "y"], "strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}});
    let patch = json!({"metadata": {"labels": {"a": null}},
        "spec": {"args": ["z"], "strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let out = smp(current, patch);
    assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
    assert_eq!(out["spec"]["args"], json!(["z"]));
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn merge_and_json_patch() {
    let current = json!({"spec": {"replicas": 2, "x": [1, 2]}});
    let m = apply(
        PatchType::Merge,
        &current,
        br#"{"spec":{"replicas":3,"x":null}}"#,
    )
    .expect("merge");
    assert_eq!(m, json!({"spec": {"replicas": 3}}));
    let j = apply(
        PatchType::Json,
        &current,
        br#"[{"op":"replace","path":"/spec/replicas","value":5}]"#,
    )
    .expect("json patch");
    assert_eq!(j["spec"]["replicas"], 5);
    let bad = apply(
        PatchType::Json,
        &current,
        br#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
    );
    assert_eq!(bad.map_err(|e| e.code), Err(422));
    assert_eq!(
        apply(PatchType::Merge, &current, b"{").map_err(|e| e.code),
        Err(400)
    );
}

#[test]
fn content_types() {
    assert_eq!(
        PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
        Ok(PatchType::Strategic)
    );
    assert_eq!(
        PatchType::from_content_type("text/plain").map_err(|e| e.code),
        Err(415)
    );
}
