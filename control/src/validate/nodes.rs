//! `[[nodes]]`: names, underlay addresses and pod CIDRs.

use ipnet::Ipv4Net;

use cluster::Node;

use crate::allocate::check_pod_ip;
use crate::error::ConfigError;
use crate::schema::RawNode;
use crate::validate::{check_name, overlaps, parse_cidr, parse_ip, special_address, NameSyntax};

pub(crate) fn build_nodes(
    raw: &[RawNode],
    pod_cidr: Ipv4Net,
    service_cidr: Ipv4Net,
) -> Result<Vec<Node>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::NoNodes);
    }
    let mut nodes: Vec<Node> = Vec::with_capacity(raw.len());
    for (i, n) in raw.iter().enumerate() {
        let obj = format!("nodes[{i}] {:?}", n.name);
        check_name(
            &format!("nodes[{i}].name"),
            &n.name,
            NameSyntax::Dns1123Label,
        )?;
        if let Some(j) = nodes.iter().position(|m| m.name == n.name) {
            return Err(ConfigError::DuplicateNode {
                key: format!("nodes[{i}].name"),
                value: (&n.name).into(),
                first: format!("nodes[{j}]"),
            });
        }
        let address = parse_ip(&format!("{obj}: address"), &n.address)?;
        // The overlay's outer destination: a peer must be able to send to it.
        if let Some(what) = special_address(address) {
            return Err(ConfigError::NodeAddressNotUnicast {
                key: format!("{obj}: address"),
                value: address,
                what,
            });
        }
        for (range_key, range) in [
            ("cluster.podCIDR", pod_cidr),
            ("cluster.serviceCIDR", service_cidr),
        ] {
            if range.contains(&address) {
                return Err(ConfigError::NodeAddressInClusterRange {
                    key: format!("{obj}: address"),
                    value: address,
                    range_key,
                    range,
                });
            }
        }
        if let Some(j) = nodes.iter().position(|m| m.underlay_ip == address) {
            return Err(ConfigError::DuplicateNodeAddress {
                key: format!("{obj}: address"),
                value: address,
                first: format!("nodes[{j}] {:?}", nodes[j].name),
            });
        }
        let cidr = parse_cidr(&format!("{obj}: podCIDR"), &n.pod_cidr)?;
        if !pod_cidr.contains(&cidr) {
            return Err(ConfigError::NodeCidrOutsideCluster {
                key: format!("{obj}: podCIDR"),
                value: cidr,
                cluster: pod_cidr,
            });
        }
        if let Some(j) = nodes.iter().position(|m| overlaps(m.pod_cidr, cidr)) {
            return Err(ConfigError::NodeCidrOverlap {
                key: format!("{obj}: podCIDR"),
                value: cidr,
                other_key: format!("nodes[{j}] {:?}: podCIDR", nodes[j].name),
                other: nodes[j].pod_cidr,
            });
        }
        let mut node = Node {
            name: n.name.clone(),
            underlay_ip: address,
            pod_cidr: cidr,
            next_pod_ip: None,
        };
        if let Some(text) = &n.next_pod_ip {
            let key = format!("{obj}: nextPodIP");
            let ip = parse_ip(&key, text)?;
            check_pod_ip(&key, ip, &node)?;
            node.next_pod_ip = Some(ip);
        }
        nodes.push(node);
    }
    Ok(nodes)
}

pub(crate) fn find_node(key: &str, name: &str, nodes: &[Node]) -> Result<usize, ConfigError> {
    nodes
        .iter()
        .position(|n| n.name == name)
        .ok_or_else(|| ConfigError::UnknownNode {
            key: key.to_owned(),
            value: name.into(),
            known: nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}
