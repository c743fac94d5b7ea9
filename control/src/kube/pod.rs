//! A `v1` Pod into a [`cluster::Pod`]: the router needs its own node's pods
//! (the cluster DNS it hosts, `router get po`).

use k8s_openapi::api::core::v1 as k8s;

use cluster::{ContainerPort, Pod};

use super::{ipv4_or_v6, meta_key, port_number, protocol, Skip};

const KIND: &str = "Pod";

/// The label the ReplicaSet controller puts on its pods; the ReplicaSet's
/// name is the Deployment's followed by `-` and this value.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The router's view of `pod`: `Ok(None)` while it has no IPv4 pod IP or
/// no node, and for a `hostNetwork` pod (it has no address of its own), a
/// [`Skip`] when a field cannot be read. `ready` is the `Ready` condition;
/// the owner is the Deployment behind the pod's ReplicaSet, if any.
pub fn translate_pod(pod: &k8s::Pod) -> Result<Option<Pod>, Skip> {
    let key = meta_key(&pod.metadata);
    let skip = |field: String, reason: String| Skip::new(KIND, &key, field, reason);
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(None);
    };
    let Some(node) = spec.node_name.clone().filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if spec.host_network == Some(true) {
        return Ok(None);
    }
    let status = pod.status.clone().unwrap_or_default();
    let mut ips: Vec<(String, &str)> = Vec::new();
    if let Some(ip) = status.pod_ip.as_deref() {
        ips.push(("status.podIP".to_owned(), ip));
    }
    for (i, p) in status.pod_ips.iter().flatten().enumerate() {
        ips.push((format!("status.podIPs[{i}].ip"), p.ip.as_str()));
    }
    let mut ip = None;
    for (field, text) in ips {
        if let Some(v4) = ipv4_or_v6(text).map_err(|r| skip(field, r))? {
            ip = Some(v4);
            break;
        }
    }
    let Some(ip) = ip else {
        return Ok(None);
    };
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");

    let mut ports = Vec::new();
    for (ci, c) in spec.containers.iter().enumerate() {
        for (pi, p) in c.ports.iter().flatten().enumerate() {
            let field = |name: &str| format!("spec.containers[{ci}].ports[{pi}].{name}");
            let Some(protocol) =
                protocol(p.protocol.as_deref()).map_err(|r| skip(field("protocol"), r))?
            else {
                continue;
            };
            ports.push(ContainerPort {
                name: p.name.clone().filter(|n| !n.is_empty()),
                container_port: port_number(p.container_port)
                    .map_err(|r| skip(field("containerPort"), r))?,
                protocol,
            });
        }
    }

    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == "ReplicaSet")
        .and_then(|o| {
            let hash = labels.get(POD_TEMPLATE_HASH)?;
            o.name.strip_suffix(&format!("-{hash}")).map(str::to_owned)
        });
    Ok(Some(Pod {
        name: key.name.clone(),
        namespace: key.namespace.clone(),
        labels,
        ip,
        node,
        ready,
        owner,
        ports,
    }))
}
