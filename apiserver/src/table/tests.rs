use chrono::TimeZone;
use serde_json::json;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 0)
        .single()
        .expect("valid")
}

const CREATED: &str = "2026-01-01T00:00:13Z";

#[test]
fn human_durations_match_kubectl() {
    for (s, want) in [
        (-5, "<invalid>"),
        (-1, "0s"),
        (47, "47s"),
        (119, "119s"),
        (185, "3m5s"),
        (600, "10m"),
        (7800, "130m"),
        (3 * 3600 + 60 * 5, "3h5m"),
        (20 * 3600, "20h"),
        ((6 * 24 + 21) * 3600, "6d21h"),
        (30 * 24 * 3600, "30d"),
        ((365 * 3 + 4) * 24 * 3600, "3y4d"),
    ] {
        assert_eq!(human_duration(s), want, "{s}");
    }
}

#[test]
fn running_pod_row_wide() {
    let pod = json!({
        "metadata": {"name": "nginx-deployment-756d6b7586-7plkf", "creationTimestamp": CREATED},
        "spec": {"nodeName": "mac-worker", "containers": [{"name": "nginx"}]},
        "status": {"phase": "Running", "podIP": "10.10.1.42",
            "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0}]}
    });
    assert_eq!(
        cells(Resource::Pods, &pod, now()),
        vec![
            json!("nginx-deployment-756d6b7586-7plkf"),
            json!("1/1"),
            json!("Running"),
            json!("0"),
            json!("47s"),
            json!("10.10.1.42"),
            json!("mac-worker"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
}

#[test]
fn pending_and_terminating_pods() {
    let pending =
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{}, {}]}, "status": {}});
    let row = cells(Resource::Pods, &pending, now());
    assert_eq!(
        (&row[1], &row[2], &row[5]),
        (&json!("0/2"), &json!("Pending"), &json!("<none>"))
    );
    let terminating = json!({"metadata": {"name": "p", "deletionTimestamp": CREATED},
        "spec": {"containers": [{}]}, "status": {"phase": "Running"}});
    assert_eq!(
        cells(Resource::Pods, &terminating, now())[2],
        json!("Terminating")
    );
}

#[test]
fn service_rows() {
    let svc = json!({"metadata": {"name": "nginx-svc", "creationTimestamp": CREATED},
        "spec": {"type": "NodePort", "clusterIP": "10.101.182.177", "selector": {"app": "nginx-deployment"},
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30862}]}});
    assert_eq!(
        cells(Resource::Services, &svc, now()),
        vec![
            json!("nginx-svc"),
            json!("NodePort"),
            json!("10.101.182.177"),
            json!("<none>"),
            json!("80:30862/TCP"),
            json!("47s"),
            json!("app=nginx-deployment"),
        ]
    );
    let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.5"}});
    assert_eq!(cells(Resource::Services, &lb, now())[3], json!("<pending>"));
    assert_eq!(cells(Resource::Services, &lb, now())[4], json!("<none>"));
}

#[test]
fn endpoints_show_three_then_more() {
    let ep = json!({"metadata": {"name": "e"}, "subsets": [{
        "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
        "ports": [{"port": 80}]}]});
    assert_eq!(
        cells(Resource::Endpoints, &ep, now())[1],
        json!("10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...")
    );
    let empty = json!({"metadata": {"name": "e"}});
    assert_eq!(
        cells(Resource::Endpoints, &empty, now())[1],
        json!("<none>")
    );
}

#[test]
fn deployment_replicaset_namespace_node_rows() {
    let d = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2,
        "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
        "status": {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}});
    let row = cells(Resource::Deployments, &d, now());
    assert_eq!(&row[1..4], &[json!("1/2"), json!(2), json!(1)]);
    let ns = json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}});
    assert_eq!(cells(Resource::Namespaces, &ns, now())[1], json!("Active"));
    let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.32.0"},
            "addresses": [{"type": "InternalIP", "address": "192.168.191.144"}]}});
    let row = cells(Resource::Nodes, &node, now());
    assert_eq!(
        &row[1..3],
        &[json!("Ready,SchedulingDisabled"), json!("control-plane")]
    );
    assert_eq!(row[5], json!("192.168.191.144"));
}

#[test]
fn table_has_wide_columns_at_priority_one_and_metadata_objects() {
    let pod = json!({"metadata": {"name": "p", "namespace": "default"}});
    let t = table(Resource::Pods, &[&pod], 7, IncludeObject::Metadata, now());
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["columnDefinitions"][5]["name"], "IP");
    assert_eq!(t["columnDefinitions"][5]["priority"], 1);
    assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "default");
    assert_eq!(t["metadata"]["resourceVersion"], "7");
}
