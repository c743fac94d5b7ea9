//! Scheduling, pod IPs and the stand-in kubelet.
//!
//! - A pod without `spec.nodeName` is bound to the schedulable node with the
//!   fewest pods (ties by name), as a spreading scheduler would.
//! - A bound pod gets an IP from its node's `spec.podCIDR`, host-local
//!   style: round robin from the last address handed out on that node,
//!   skipping addresses in use, the network, the gateway (.1) and the
//!   broadcast. The lab has no CNI, so the API server does it.
//! - With the stand-in kubelet, a bound pod becomes Running and Ready, a
//!   node gets a Ready condition, and a terminating pod is removed after a
//!   short delay (its grace period, as a quick container would end).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{json, Value};

use super::{key_of, terminating, Controllers};
use crate::api::name_of;
use crate::request::ObjectPath;
use crate::resources::Resource;
use crate::status::ApiError;
use crate::store::{Change, ObjectKey};

/// The last address handed out per node (host-local's `last_reserved_ip`).
#[derive(Debug, Default)]
pub struct Ipam {
    last: HashMap<String, u32>,
}

fn node_name(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn schedulable(node: &Value) -> bool {
    let cordoned = node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true);
    let not_ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] != "True")
        });
    !cordoned && !not_ready
}

impl Ipam {
    /// A free address of `cidr` for a pod on `node`, given the addresses
    /// in use there.
    pub fn allocate(&mut self, node: &str, cidr: Ipv4Net, used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
        let base = u32::from(cidr.network());
        let size = 1u64 << (32 - u32::from(cidr.prefix_len()));
        // .0 is the network, .1 the gateway (cni0), the last the broadcast.
        let first = 2u32;
        let last = u32::try_from(size.saturating_sub(2)).ok()?;
        if last < first {
            return None;
        }
        let start = self
            .last
            .get(node)
            .copied()
            .or_else(|| {
                used.iter()
                    .map(|ip| u32::from(*ip).wrapping_sub(base))
                    .filter(|o| *o <= last)
                    .max()
            })
            .unwrap_or(first - 1);
        let span = last - first + 1;
        for step in 1..=span {
            let offset = first + (start.wrapping_sub(first).wrapping_add(step)) % span;
            let ip = Ipv4Addr::from(base + offset);
            if !used.contains(&ip) {
                self.last.insert(node.to_string(), offset);
                return Some(ip);
            }
        }
        None
    }
}

/// Reconciles a pod: binding, IP, stand-in kubelet.
pub fn pod(c: &mut Controllers, key: &ObjectKey) -> Result<(), ApiError> {
    let store = c.api.store().clone();
    let Some(pod) = store.get(key) else {
        return Ok(());
    };
    if terminating(&pod) {
        if let Some(delay) = c.config.kubelet_standin {
            let grace = pod
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let delay = delay.min(std::time::Duration::from_secs(grace));
            let api = c.api.clone();
            let path = ObjectPath {
                resource: Resource::Pods,
                namespace: Some(key.namespace.clone()),
                name: Some(key.name.clone()),
                subresource: None,
            };
            let uid = pod.pointer("/metadata/uid").cloned();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // The same pod, not a new one that took its name.
                let same = api
                    .store()
                    .get(&ObjectKey::new(
                        Resource::Pods,
                        path.namespace.as_deref().unwrap_or(""),
                        path.name.as_deref().unwrap_or(""),
                    ))
                    .is_some_and(|p| p.pointer("/metadata/uid").cloned() == uid);
                if same {
                    let _ = api.delete(&path, Some(0));
                }
            });
        }
        return Ok(());
    }
    let (nodes, _) = store.list(Resource::Nodes, None);
    let mut node = node_name(&pod).to_string();
    if node.is_empty() {
        let Some(best) = nodes
            .iter()
            .filter(|n| schedulable(n))
            .min_by_key(|n| (c.index.on_node(name_of(n)).0, name_of(n).to_string()))
        else {
            return Ok(());
        };
        node = name_of(best).to_string();
    }
    let node_object = nodes.iter().find(|n| name_of(n) == node);
    let has_ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    let ip = match (has_ip, node_object) {
        (false, Some(n)) => {
            let cidr = n
                .pointer("/spec/podCIDR")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Ipv4Net>().ok());
            let (_, used) = c.index.on_node(&node);
            cidr.and_then(|cidr| c.ipam.allocate(&node, cidr, &used))
        }
        _ => None,
    };
    let host_ip = node_object
        .and_then(|n| n.pointer("/status/addresses"))
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
        .and_then(|a| a["address"].as_str())
        .map(str::to_string);
    let standin = c.config.kubelet_standin.is_some();
    store
        .modify(key, |current| {
            let Some(current) = current else {
                return Ok(Change::Keep);
            };
            let mut next = current.clone();
            if node_name(&next).is_empty() {
                next["spec"]["nodeName"] = json!(node);
            }
            if let Some(ip) = ip {
                next["status"]["podIP"] = json!(ip.to_string());
                next["status"]["podIPs"] = json!([{ "ip": ip.to_string() }]);
            }
            if let Some(h) = &host_ip {
                next["status"]["hostIP"] = json!(h);
                next["status"]["hostIPs"] = json!([{ "ip": h }]);
            }
            if standin {
                run(&mut next);
            }
            Ok(if next == *current {
                Change::Keep
            } else {
                Change::Put(next)
            })
        })
        .map(|_| ())
}

/// The stand-in kubelet's report of a started pod: Running, every container
/// ready, the usual conditions.
fn run(pod: &mut Value) {
    if pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running") {
        return;
    }
    let now = crate::api::timestamp();
    let statuses: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            json!({
                "name": c["name"], "image": c["image"], "imageID": "", "containerID": "",
                "ready": true, "started": true, "restartCount": 0,
                "state": { "running": { "startedAt": now } },
            })
        })
        .collect();
    let condition = |kind: &str| json!({ "type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": now });
    let status = &mut pod["status"];
    status["phase"] = json!("Running");
    status["startTime"] = now.clone();
    status["containerStatuses"] = json!(statuses);
    status["conditions"] = json!([
        condition("PodReadyToStartContainers"),
        condition("Initialized"),
        condition("Ready"),
        condition("ContainersReady"),
        condition("PodScheduled"),
    ]);
}

/// Reconciles a node: the stand-in kubelet reports it Ready.
pub fn node(c: &mut Controllers, key: &ObjectKey) -> Result<(), ApiError> {
    if c.config.kubelet_standin.is_none() {
        return Ok(());
    }
    let Some(node) = c.api.store().get(key) else {
        return Ok(());
    };
    let has_ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready"));
    if has_ready {
        return Ok(());
    }
    let mut status = node.get("status").cloned().unwrap_or(json!({}));
    if !status.is_object() {
        status = json!({});
    }
    let now = crate::api::timestamp();
    status["conditions"] = json!([{ "type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now }]);
    if status.pointer("/nodeInfo/kubeletVersion").is_none() {
        status["nodeInfo"] = json!({
            "kubeletVersion": format!("v{}.{}.0", crate::discovery::MAJOR, crate::discovery::MINOR),
            "kubeProxyVersion": "", "osImage": "ksr lab", "kernelVersion": "", "containerRuntimeVersion": "ksr://pod-server",
            "operatingSystem": "linux", "architecture": "amd64", "machineID": "", "systemUUID": "", "bootID": ""
        });
    }
    c.set_status(&key_of(Resource::Nodes, &node), status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_local_round_robin_skips_used_and_reserved() {
        let mut ipam = Ipam::default();
        let cidr: Ipv4Net = "10.10.1.0/29".parse().expect("cidr");
        let ip = |d| Ipv4Addr::new(10, 10, 1, d);
        assert_eq!(ipam.allocate("n", cidr, &[]), Some(ip(2)));
        assert_eq!(ipam.allocate("n", cidr, &[ip(2)]), Some(ip(3)));
        // Round robin: after .3 comes .4 even if .2 was freed.
        assert_eq!(ipam.allocate("n", cidr, &[ip(3)]), Some(ip(4)));
        assert_eq!(
            ipam.allocate("n", cidr, &[ip(3), ip(4), ip(5), ip(6)]),
            Some(ip(2))
        );
        assert_eq!(
            ipam.allocate("n", cidr, &[ip(2), ip(3), ip(4), ip(5), ip(6)]),
            None
        );
        // A fresh allocator continues after the highest address in use.
        let mut other = Ipam::default();
        assert_eq!(other.allocate("m", cidr, &[ip(4)]), Some(ip(5)));
    }
}
