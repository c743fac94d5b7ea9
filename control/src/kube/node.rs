//! A `v1` Node into a [`cluster::Node`], as flannel reads it.

use ipnet::IpNet;
use k8s_openapi::api::core::v1 as k8s;

use cluster::{Node, ObjectKey};

use super::{ipv4_or_v6, Skip};

const KIND: &str = "Node";

/// The router's view of `node`: `Ok(None)` while it is not routable yet
/// (no IPv4 `spec.podCIDR`/`podCIDRs` or no IPv4 `InternalIP` address), a
/// [`Skip`] when a field cannot be read.
pub fn translate_node(node: &k8s::Node) -> Result<Option<Node>, Skip> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let key = ObjectKey::new("", name.clone());
    let skip = |field: String, reason: String| Skip::new(KIND, &key, field, reason);
    let spec = node.spec.as_ref();
    let mut cidrs: Vec<(String, &str)> = Vec::new();
    if let Some(c) = spec.and_then(|s| s.pod_cidr.as_deref()) {
        cidrs.push(("spec.podCIDR".to_owned(), c));
    }
    for (i, c) in spec
        .and_then(|s| s.pod_cidrs.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        cidrs.push((format!("spec.podCIDRs[{i}]"), c));
    }
    let mut pod_cidr = None;
    for (field, text) in cidrs {
        match text.parse::<IpNet>() {
            Ok(IpNet::V4(net)) if net == net.trunc() => {
                pod_cidr = Some(net);
                break;
            }
            Ok(IpNet::V4(net)) => {
                return Err(skip(
                    field,
                    format!("{text:?} has host bits set (did you mean {}?)", net.trunc()),
                ))
            }
            Ok(IpNet::V6(_)) => {}
            Err(e) => return Err(skip(field, format!("{text:?} is not a CIDR: {e}"))),
        }
    }
    let addresses = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    let mut underlay_ip = None;
    for (i, a) in addresses.into_iter().flatten().enumerate() {
        if a.type_ != "InternalIP" {
            continue;
        }
        let ip = ipv4_or_v6(&a.address)
            .map_err(|r| skip(format!("status.addresses[{i}].address"), r))?;
        if ip.is_some() {
            underlay_ip = ip;
            break;
        }
    }
    let (Some(pod_cidr), Some(underlay_ip)) = (pod_cidr, underlay_ip) else {
        return Ok(None);
    };
    Ok(Some(Node {
        name,
        underlay_ip,
        pod_cidr,
        next_pod_ip: None,
    }))
}
