//! The cluster's objects as the checks see them: pods and Services from
//! the lab's API server (`kubectl get ... -o json`, Kubernetes' own JSON),
//! Services and endpoints as the routers serve them (`router get ... -o
//! json`), and the lab-only lines of `router lab-nodes` and `router
//! lab-cluster` (the nodes and settings of `config.toml`), which have no
//! kubectl counterpart.

use std::net::Ipv4Addr;
use std::process::Output;

use serde_json::Value;

use crate::env::{config_arg, router, router_bin, run, show, stdout};
use crate::kubectl::{get_json, kubectl};

/// A pod, from `kubectl get po -o json`.
#[derive(Debug, Clone)]
pub struct Pod {
    /// Name.
    pub name: String,
    /// Pod IP (`status.podIP`; empty until it has one).
    pub ip: String,
    /// Its node (`spec.nodeName`).
    pub node: String,
    /// Whether its Ready condition is True.
    pub ready: bool,
    /// `status.phase`: `Running` once its kubelet built it.
    pub status: String,
    /// TCP container ports.
    pub tcp: Vec<u16>,
    /// UDP container ports.
    pub udp: Vec<u16>,
    /// Deleted, in its grace period (`metadata.deletionTimestamp`).
    pub terminating: bool,
    /// Served by its node's router in process (kube-dns's pods): no
    /// network namespace of its own.
    pub router_hosted: bool,
}

impl Pod {
    /// Whether it listens on anything (a server, not a client).
    pub fn has_ports(&self) -> bool {
        !self.tcp.is_empty() || !self.udp.is_empty()
    }
}

/// The `items` of a `{"kind": "List"}`.
pub fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// One pod item of `kubectl get po -o json`.
pub fn pod_of(v: &Value) -> Pod {
    let ports = |proto: &str| -> Vec<u16> {
        v.pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .filter(|p| p["protocol"].as_str().unwrap_or("TCP") == proto)
            .filter_map(|p| p["containerPort"].as_u64())
            .filter_map(|p| u16::try_from(p).ok())
            .collect()
    };
    let ready = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    Pod {
        name: str_at(v, "/metadata/name"),
        ip: str_at(v, "/status/podIP"),
        node: str_at(v, "/spec/nodeName"),
        ready,
        status: str_at(v, "/status/phase"),
        tcp: ports("TCP"),
        udp: ports("UDP"),
        terminating: v.pointer("/metadata/deletionTimestamp").is_some(),
        router_hosted: v.pointer("/metadata/labels/k8s-app") == Some(&Value::from("kube-dns")),
    }
}

/// Every pod of every namespace, terminating ones included.
fn api_pods() -> Result<Vec<Pod>, String> {
    Ok(items(&get_json(&["po", "-A"])?)
        .iter()
        .map(pod_of)
        .collect())
}

/// The pods now (new pods included) that have a namespace in the lab (not
/// the router-hosted DNS pods, not the deleted ones in their grace
/// period), every namespace; none if the API cannot be read (the check
/// that needs them then fails on its own).
pub fn live_pods() -> Vec<Pod> {
    api_pods()
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            Vec::new()
        })
        .into_iter()
        .filter(|p| !p.router_hosted && !p.terminating)
        .collect()
}

/// The router-hosted DNS pods (kube-dns's CoreDNS pods, one per node).
pub fn dns_pods() -> Vec<Pod> {
    api_pods()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|p| p.router_hosted)
        .collect()
}

/// The nginx pods now.
pub fn live_nginx() -> Vec<Pod> {
    live_pods()
        .into_iter()
        .filter(|p| p.name.starts_with("nginx-deployment-"))
        .collect()
}

/// `kubectl get po -o json` (namespace `default`): the output, and the
/// pods.
pub fn get_pods() -> (Output, Vec<Pod>) {
    let out = kubectl(&["get", "po", "-o", "json"]);
    let pods = serde_json::from_slice::<Value>(&out.stdout)
        .map(|v| items(&v).iter().map(pod_of).collect())
        .unwrap_or_default();
    (out, pods)
}

/// Service `name` (namespace `default`) as the API server has it
/// (`kubectl get svc NAME -o json`).
pub fn api_service(name: &str) -> Value {
    get_json(&["svc", name]).unwrap_or_else(|e| panic!("{e}"))
}

/// Service `name` (namespace `default`) as the running routers serve it
/// (`router get svc NAME -o json`: the first control socket).
pub fn live_service(name: &str) -> Option<Value> {
    let out = router(&["get", "svc", name, "-o", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).ok()?;
    items(&list).into_iter().next()
}

/// A Service's ClusterIP.
pub fn cluster_ip(service: &str) -> String {
    str_at(&api_service(service), "/spec/clusterIP")
}

/// The first nodePort of a Service.
pub fn node_port(service: &str) -> String {
    let s = api_service(service);
    s.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|p| p["nodePort"].as_u64())
        .map(|p| p.to_string())
        .unwrap_or_else(|| panic!("service {service} has no nodePort: {s}"))
}

/// The LoadBalancer ingress and external IPs of a Service (what
/// EXTERNAL-IP lists).
pub fn external_ips(service: &str) -> Vec<String> {
    let s = api_service(service);
    let ingress = s
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let external = s
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ingress
        .iter()
        .filter_map(|i| i["ip"].as_str())
        .chain(external.iter().filter_map(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// The ready endpoints' IPs of Service `name` as the running routers
/// serve it, with the output of `router get endpoints NAME -o json`.
pub fn live_endpoint_ips(name: &str) -> (Output, Vec<String>) {
    let out = router(&["get", "endpoints", name, "-o", "json"]);
    let ips = endpoint_ips(&out);
    (out, ips)
}

/// The endpoints' IPs in the output of `router get endpoints -o json`.
pub fn endpoint_ips(out: &Output) -> Vec<String> {
    serde_json::from_slice::<Value>(&out.stdout)
        .map(|v| {
            items(&v)
                .iter()
                .flat_map(|e| e["endpoints"].as_array().cloned().unwrap_or_default())
                .filter_map(|e| e["ip"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A counter of `router get stats -o json`: a field (`received`) or a drop
/// reason (`spoofed-source`); 0 if absent.
pub fn stat_count(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .or_else(|| stats["dropped"][name].as_u64())
        .unwrap_or(0)
}

/// One node as `router lab-nodes` prints it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Name.
    pub name: String,
    /// Underlay address (NodePorts listen on it).
    pub address: String,
    /// The pod CIDR's network address: what flows masqueraded by this
    /// node's router come from.
    pub pod_network: String,
    /// The pods' gateway (first host of the pod CIDR).
    pub gateway: String,
}

/// The nodes of `config.toml`.
pub fn lab_nodes() -> Vec<Node> {
    let out = run(10, router_bin(), &["lab-nodes", "--config", &config_arg()]);
    assert!(out.status.success(), "{}", show("router lab-nodes", &out));
    stdout(&out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(
                f.len() >= 3,
                "router lab-nodes line {l:?}: expected name, address, pod CIDR"
            );
            let (net, len) = f[2]
                .split_once('/')
                .unwrap_or_else(|| panic!("bad pod CIDR in {l:?}"));
            let net: Ipv4Addr = net
                .parse()
                .unwrap_or_else(|e| panic!("bad pod CIDR in {l:?}: {e}"));
            let len: u32 = len
                .parse()
                .unwrap_or_else(|e| panic!("bad pod CIDR in {l:?}: {e}"));
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            let network = u32::from(net) & mask;
            Node {
                name: f[0].to_string(),
                address: f[1].to_string(),
                pod_network: Ipv4Addr::from(network).to_string(),
                gateway: Ipv4Addr::from(network + 1).to_string(),
            }
        })
        .collect()
}

/// The overlay's settings, from `router lab-cluster` (`POD_CIDR
/// SERVICE_CIDR [VNI PORT UNDERLAY_MTU POD_MTU]`), with flannel's defaults
/// for the columns it does not print.
#[derive(Debug, Clone, Copy)]
pub struct Overlay {
    /// VXLAN network identifier.
    pub vni: u32,
    /// VXLAN UDP port.
    pub port: u16,
    /// The pods' MTU.
    pub pod_mtu: u32,
}

/// The overlay of `config.toml`.
pub fn overlay() -> Overlay {
    let out = run(
        10,
        router_bin(),
        &["lab-cluster", "--config", &config_arg()],
    );
    assert!(out.status.success(), "{}", show("router lab-cluster", &out));
    let text = stdout(&out);
    let f: Vec<&str> = text.trim().split('\t').collect();
    let col = |i: usize| f.get(i).and_then(|v| v.parse::<u32>().ok());
    let underlay_mtu = col(4).unwrap_or(1500);
    Overlay {
        vni: col(2).unwrap_or(1),
        port: col(3).and_then(|p| u16::try_from(p).ok()).unwrap_or(8472),
        pod_mtu: col(5).unwrap_or(underlay_mtu - 50),
    }
}
