//! The Node object: registered by its kubelet, as `kubelet
//! --register-node` does, with the pod CIDR the lab gives it (there is no
//! node IPAM controller) and its underlay address.

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// What the kubelet knows of its node.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// spec.podCIDR.
    pub pod_cidr: Ipv4Net,
    /// InternalIP: the underlay address.
    pub ip: Ipv4Addr,
}

/// The Node as this kubelet registers it.
fn node_object(info: &NodeInfo) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": info.name,
            "labels": {
                "kubernetes.io/hostname": info.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": std::env::consts::ARCH,
            },
        },
        "spec": {
            "podCIDR": info.pod_cidr.to_string(),
            "podCIDRs": [info.pod_cidr.to_string()],
        },
    })
}

/// The status the kubelet reports: addresses, Ready, what it runs.
fn node_status(info: &NodeInfo) -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "status": {
            "addresses": [
                { "type": "InternalIP", "address": info.ip.to_string() },
                { "type": "Hostname", "address": info.name },
            ],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
            "nodeInfo": {
                "kubeletVersion": concat!("ksr-kubelet/", env!("CARGO_PKG_VERSION")),
                "kubeProxyVersion": "", "osImage": "ksr lab", "kernelVersion": "",
                "containerRuntimeVersion": "ksr://pod-server", "operatingSystem": "linux",
                "architecture": std::env::consts::ARCH, "machineID": "", "systemUUID": "", "bootID": "",
            },
        },
    })
}

/// Creates the Node (or updates its pod CIDR) and reports it Ready; retries
/// until the API server takes it (it may still be starting).
pub async fn register(client: &Client, info: &NodeInfo) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut delay = Duration::from_millis(200);
    loop {
        match try_register(&nodes, info).await {
            Ok(()) => {
                log::info!(
                    "registered node {} (podCIDR {}, InternalIP {}), Ready",
                    info.name,
                    info.pod_cidr,
                    info.ip
                );
                return;
            }
            Err(e) => log::warn!("registering node {}: {e}; retrying in {delay:?}", info.name),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn try_register(nodes: &Api<Node>, info: &NodeInfo) -> Result<(), kube::Error> {
    let object: Node =
        serde_json::from_value(node_object(info)).map_err(kube::Error::SerdeError)?;
    match nodes.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.is_already_exists() || s.code == 409 => {
            let spec = json!({ "spec": node_object(info)["spec"] });
            nodes
                .patch(&info.name, &PatchParams::default(), &Patch::Merge(&spec))
                .await?;
        }
        Err(e) => return Err(e),
    }
    nodes
        .patch_status(
            &info.name,
            &PatchParams::default(),
            &Patch::Merge(&node_status(info)),
        )
        .await?;
    Ok(())
}
