//! The cluster's objects as the router's CLI prints them in JSON
//! (`router get po -o json` ...), and the lab-only lines of `router lab-nodes`
//! and `router lab-cluster`, which have no kubectl counterpart.

use std::net::Ipv4Addr;
use std::process::Output;

use serde_json::Value;

use crate::env::{config_arg, router, router_bin, run, show, stdout, STORE};

/// A pod, from `router get po -o json`.
#[derive(Debug, Clone)]
pub struct Pod {
    /// Name.
    pub name: String,
    /// Pod IP.
    pub ip: String,
    /// Its node.
    pub node: String,
    /// Whether it is Ready.
    pub ready: bool,
    /// `Running`.
    pub status: String,
    /// TCP container ports.
    pub tcp: Vec<u16>,
    /// UDP container ports.
    pub udp: Vec<u16>,
}

impl Pod {
    /// Whether it listens on anything (a server, not a client).
    pub fn has_ports(&self) -> bool {
        !self.tcp.is_empty() || !self.udp.is_empty()
    }
}

/// Runs `router ARGS` expecting JSON on stdout.
fn json(args: &[&str]) -> Result<Value, String> {
    let out = run(15, router_bin(), args);
    if !out.status.success() {
        return Err(show(&format!("router {}", args.join(" ")), &out));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "router {}: not JSON ({e})\n{}",
            args.join(" "),
            show("router", &out)
        )
    })
}

/// The `items` of a `{"kind": "List"}`.
pub fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// One pod item of `get po -o json`.
pub fn pod_of(v: &Value) -> Pod {
    let ports = |proto: &str| -> Vec<u16> {
        v["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["protocol"] == proto)
            .filter_map(|p| p["containerPort"].as_u64())
            .filter_map(|p| u16::try_from(p).ok())
            .collect()
    };
    Pod {
        name: str_of(v, "name"),
        ip: str_of(v, "ip"),
        node: str_of(v, "node"),
        ready: v["ready"] == true,
        status: str_of(v, "status"),
        tcp: ports("TCP"),
        udp: ports("UDP"),
    }
}

/// The pods of a cluster file that have a namespace in the lab (not the
/// router-hosted DNS pods), every namespace.
fn file_pods(file: &str) -> Result<Vec<Pod>, String> {
    let list = json(&["--config", file, "get", "po", "-A", "-o", "json"])?;
    Ok(items(&list)
        .iter()
        .filter(|p| p["routerHosted"] != true)
        .map(pod_of)
        .collect())
}

/// The pods of `config.toml` (as the lab starts).
pub fn lab_pods() -> Vec<Pod> {
    file_pods(&config_arg()).unwrap_or_else(|e| panic!("{e}"))
}

/// The pods of the store now (new pods included); none if it cannot be
/// read (the check that needs them then fails on its own).
pub fn live_pods() -> Vec<Pod> {
    file_pods(STORE).unwrap_or_else(|e| {
        eprintln!("{e}");
        Vec::new()
    })
}

/// The nginx pods of the store now.
pub fn live_nginx() -> Vec<Pod> {
    live_pods()
        .into_iter()
        .filter(|p| p.name.starts_with("nginx-deployment-"))
        .collect()
}

/// `router get po -o json` from the running routers (namespace
/// `default`): the output, and the pods.
pub fn get_pods() -> (Output, Vec<Pod>) {
    let out = router(&["get", "po", "-o", "json"]);
    let pods = serde_json::from_slice::<Value>(&out.stdout)
        .map(|v| items(&v).iter().map(pod_of).collect())
        .unwrap_or_default();
    (out, pods)
}

/// Service `name` (namespace `default`) of `config.toml`, as
/// `router --config config.toml get svc NAME -o json` prints it.
pub fn file_service(name: &str) -> Value {
    let list = json(&["--config", &config_arg(), "get", "svc", name, "-o", "json"])
        .unwrap_or_else(|e| panic!("{e}"));
    items(&list)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("service {name} not in `get svc {name} -o json`"))
}

/// Service `name` (namespace `default`) as the running routers serve it.
pub fn live_service(name: &str) -> Option<Value> {
    let list = json(&["get", "svc", name, "-o", "json"]).ok()?;
    items(&list).into_iter().next()
}

/// A Service's ClusterIP.
pub fn cluster_ip(service: &str) -> String {
    str_of(&file_service(service), "clusterIP")
}

/// The first nodePort of a Service.
pub fn node_port(service: &str) -> String {
    let s = file_service(service);
    s["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|p| p["nodePort"].as_u64())
        .map(|p| p.to_string())
        .unwrap_or_else(|| panic!("service {service} has no nodePort: {s}"))
}

/// The LoadBalancer ingress and external IPs of a Service (what
/// EXTERNAL-IP lists).
pub fn external_ips(service: &str) -> Vec<String> {
    let s = file_service(service);
    ["loadBalancerIngress", "externalIPs"]
        .iter()
        .flat_map(|k| s[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|ip| ip.as_str().map(str::to_string))
        .collect()
}

/// The ready endpoints' IPs of Service `name` as the running routers
/// serve it, with the output of `router get endpoints NAME -o json`.
pub fn live_endpoint_ips(name: &str) -> (Output, Vec<String>) {
    let out = router(&["get", "endpoints", name, "-o", "json"]);
    let ips = serde_json::from_slice::<Value>(&out.stdout)
        .map(|v| {
            items(&v)
                .iter()
                .flat_map(|e| e["endpoints"].as_array().cloned().unwrap_or_default())
                .filter_map(|e| e["ip"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (out, ips)
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
