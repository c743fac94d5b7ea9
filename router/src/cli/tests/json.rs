//! `-o json`: the List envelope and the fields consumers read.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::cli::args::Resource;

fn get_json(resource: Resource, ns: &NamespaceFilter, ages: &Ages<'_>) -> Value {
    let text = crate::cli::json::get(&default_cluster(), resource, ns, ages).expect("json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn items(v: &Value) -> &Vec<Value> {
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["kind"], "List");
    v["items"].as_array().expect("items")
}

#[test]
fn pods_as_json() {
    let v = get_json(Resource::Pods, &default_ns(), &OFFLINE);
    let pods = items(&v);
    let names: Vec<&str> = pods.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "client",
            "client-master",
            "nginx-deployment-756d6b7586-cctx5",
            "nginx-deployment-756d6b7586-gwpsr"
        ]
    );
    let nginx = &pods[2];
    assert_eq!(nginx["kind"], "Pod");
    assert_eq!(nginx["namespace"], "default");
    assert_eq!(nginx["ready"], true);
    assert_eq!(nginx["status"], "Running");
    assert_eq!(nginx["restarts"], 0);
    assert_eq!(nginx["ip"], "10.10.1.2");
    assert_eq!(nginx["node"], "mac-worker");
    assert_eq!(nginx["age"], "<unknown>");
    assert_eq!(nginx["creationTimestamp"], Value::Null);
    assert_eq!(nginx["routerHosted"], false);
    assert_eq!(nginx["ports"][0]["containerPort"], 80);
    assert_eq!(nginx["ports"][0]["protocol"], "TCP");
    assert_eq!(nginx["labels"]["app"], "nginx-deployment");
}

#[test]
fn all_namespaces_include_the_router_hosted_dns() {
    let v = get_json(Resource::Pods, &NamespaceFilter::All, &OFFLINE);
    let dns: Vec<&Value> = items(&v)
        .iter()
        .filter(|p| p["namespace"] == "kube-system")
        .collect();
    assert_eq!(dns.len(), 2);
    assert!(dns.iter().all(|p| p["routerHosted"] == true));
}

#[test]
fn services_as_json() {
    let v = get_json(Resource::Services, &default_ns(), &OFFLINE);
    let svc = |name: &str| {
        items(&v)
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .clone()
    };
    let nginx = svc("nginx-svc");
    assert_eq!(nginx["kind"], "Service");
    assert_eq!(nginx["type"], "ClusterIP");
    assert_eq!(nginx["clusterIP"], "10.101.182.177");
    assert_eq!(nginx["ports"][0]["port"], 80);
    assert_eq!(nginx["ports"][0]["targetPort"], 80);
    assert_eq!(nginx["ports"][0]["nodePort"], Value::Null);
    assert_eq!(nginx["selector"]["app"], "nginx-deployment");
    assert_eq!(nginx["sessionAffinity"], "None");
    let np = svc("nginx-nodeport");
    assert_eq!(np["type"], "NodePort");
    assert_eq!(np["ports"][0]["nodePort"], 30080);
    let lb = svc("nginx-lb");
    assert_eq!(lb["loadBalancerIngress"][0], "192.168.200.10");
    assert_eq!(lb["externalIPs"][0], "192.168.200.20");
    assert_eq!(svc("nginx-headless")["clusterIP"], "None");
    let ext = svc("example");
    assert_eq!(ext["clusterIP"], Value::Null);
    assert_eq!(ext["externalName"], "example.com");
}

#[test]
fn endpoints_as_json() {
    let v = get_json(Resource::Endpoints, &default_ns(), &OFFLINE);
    let eps = items(&v);
    assert!(
        eps.iter().all(|e| e["name"] != "example"),
        "an ExternalName Service has no Endpoints"
    );
    let nginx = eps
        .iter()
        .find(|e| e["name"] == "nginx-svc")
        .expect("nginx-svc");
    assert_eq!(nginx["kind"], "Endpoints");
    let ips: Vec<&str> = nginx["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e["ip"].as_str())
        .collect();
    assert_eq!(ips, ["10.10.0.2", "10.10.1.2"]);
    assert_eq!(nginx["endpoints"][0]["port"], 80);
    assert_eq!(nginx["endpoints"][0]["protocol"], "TCP");
    let orphan = eps
        .iter()
        .find(|e| e["name"] == "orphan-svc")
        .expect("orphan-svc");
    assert_eq!(orphan["endpoints"], Value::Array(Vec::new()));
}

#[test]
fn namespaces_as_json_with_ages() {
    let created = BTreeMap::from([("namespace/default".to_owned(), 100)]);
    let ages = Ages {
        now_unix: 160,
        created: Some(&created),
    };
    let v = get_json(Resource::Namespaces, &NamespaceFilter::All, &ages);
    let default = items(&v)
        .iter()
        .find(|n| n["name"] == "default")
        .expect("default")
        .clone();
    assert_eq!(default["kind"], "Namespace");
    assert_eq!(default["status"], "Active");
    assert_eq!(default["age"], "60s");
    assert_eq!(default["creationTimestamp"], 100);
    assert!(default.get("namespace").is_none());
}

#[test]
fn stats_as_json() {
    let mut s = dataplane::stats::Stats {
        received: 278,
        ..Default::default()
    };
    s.drop(dataplane::stats::DropReason::ALL[0]);
    let v: Value =
        serde_json::from_str(&crate::cli::stats::json(&s, 7).expect("json")).expect("valid JSON");
    assert_eq!(v["received"], 278);
    assert_eq!(v["flows"], 7);
    assert_eq!(v["dropped_total"], 1);
    let reasons = v["dropped"].as_object().expect("dropped by reason");
    assert_eq!(reasons.len(), dataplane::stats::DropReason::ALL.len());
    assert_eq!(reasons[dataplane::stats::DropReason::ALL[0].as_str()], 1);
}

/// Two flows as the data plane lists them.
fn flows() -> Vec<dataplane::conntrack::FlowRecord> {
    use dataplane::conntrack::{FlowRecord, TcpState};
    use dataplane::packet::FlowKey;
    let key = |proto, src: [u8; 4], dst: [u8; 4], sport, dport| FlowKey {
        proto,
        src: src.into(),
        dst: dst.into(),
        sport,
        dport,
    };
    vec![
        FlowRecord {
            protocol: 6,
            state: Some(TcpState::Established),
            seconds_left: 86399,
            original: key(6, [10, 10, 1, 100], [10, 101, 182, 177], 40000, 80),
            reply: key(6, [10, 10, 0, 2], [10, 10, 1, 100], 80, 40000),
            unreplied: false,
            assured: true,
            packets: [3, 2],
            bytes: [180, 120],
        },
        FlowRecord {
            protocol: 17,
            state: None,
            seconds_left: 29,
            original: key(17, [10, 10, 1, 100], [10, 96, 0, 10], 5353, 53),
            reply: key(17, [10, 10, 1, 53], [10, 10, 1, 100], 53, 5353),
            unreplied: true,
            assured: false,
            packets: [1, 0],
            bytes: [60, 0],
        },
    ]
}

#[test]
fn conntrack_json_has_every_flow_with_its_tuples() {
    let out = crate::cli::conntrack::json(&flows(), 131072).expect("json");
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["capacity"], 131072);
    let f = v["flows"].as_array().expect("flows");
    assert_eq!(f.len(), 2);
    assert_eq!(f[0]["protocolName"], "tcp");
    assert_eq!(f[0]["state"], "Established");
    assert_eq!(f[0]["original"]["dst"], "10.101.182.177");
    assert_eq!(f[0]["reply"]["src"], "10.10.0.2");
    assert_eq!(f[1]["unreplied"], true);
}

#[test]
fn conntrack_filters_like_conntrack_l() {
    use crate::cli::conntrack::Filter;
    let by_proto = Filter {
        proto: Some("udp".into()),
        src: None,
        dst: None,
    };
    assert_eq!(by_proto.apply(flows()).len(), 1);
    // -s matches either tuple's source: the endpoint answers from 10.10.0.2.
    let by_src = Filter {
        proto: None,
        src: Some("10.10.0.2".parse().expect("ip")),
        dst: None,
    };
    let only = by_src.apply(flows());
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].protocol, 6);
    let text = crate::cli::conntrack::render(&only, 10);
    assert!(
        text.starts_with("tcp      6 86399 ESTABLISHED src=10.10.1.100"),
        "{text}"
    );
    assert!(
        text.ends_with("1 flow entries have been shown (capacity 10).\n"),
        "{text}"
    );
}
