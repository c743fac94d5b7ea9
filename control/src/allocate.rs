//! The allocators: pod IPs (round robin per node, as host-local IPAM),
//! ClusterIPs (hashed into the Service CIDR) and node ports (hashed into
//! 30000-32767), each stepping around the explicit values it reserves first.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use xxhash_rust::xxh3::xxh3_64;

use cluster::{Node, Pod, ServiceType};

use crate::deployments::PodPlan;
use crate::error::ConfigError;
use crate::validate::ServicePlan;

/// The NodePort range (Kubernetes' default `--service-node-port-range`).
pub(crate) const NODE_PORT_MIN: i64 = 30000;
/// Upper end of the NodePort range.
pub(crate) const NODE_PORT_MAX: i64 = 32767;

/// Checks that `ip` (at `key`) may be a pod address on `node`: inside its
/// pod CIDR, not the network, gateway (first host) or broadcast address.
pub(crate) fn check_pod_ip(key: &str, ip: Ipv4Addr, node: &Node) -> Result<(), ConfigError> {
    let cidr = node.pod_cidr;
    if !cidr.contains(&ip) {
        return Err(ConfigError::PodIpOutsideNode {
            key: key.to_owned(),
            value: ip,
            node: node.name.clone(),
            cidr,
        });
    }
    let what = if ip == cidr.network() {
        Some("network address")
    } else if ip == cidr.broadcast() {
        Some("broadcast address")
    } else if ip == node.gateway() {
        Some("gateway (first host address)")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(ConfigError::PodIpReserved {
            key: key.to_owned(),
            value: ip,
            what,
            node: node.name.clone(),
            cidr,
        });
    }
    Ok(())
}

/// Reserves the explicit pod IPs, then allocates the others in plan order,
/// round robin per node like the host-local IPAM plugin: from the node's
/// `next_pod_ip` (else `.2`) upward through the pod range (`.2` to the
/// last address before broadcast), wrapping around, skipping used
/// addresses. Leaves each node's `next_pod_ip` at the address after the
/// last one it allocated there.
pub(crate) fn assign_pod_ips(
    plans: Vec<PodPlan>,
    nodes: &mut [Node],
) -> Result<Vec<Pod>, ConfigError> {
    // Explicit addresses first, so allocation steps around them.
    let mut used: HashMap<Ipv4Addr, usize> = HashMap::new();
    for (idx, p) in plans.iter().enumerate() {
        let Some(ip) = p.ip else { continue };
        check_pod_ip(&p.ip_key, ip, &nodes[p.node.unwrap_or(0)])?;
        if let Some(&first) = used.get(&ip) {
            return Err(ConfigError::DuplicatePodIp {
                key: p.ip_key.clone(),
                value: ip,
                first: plans[first].obj.clone(),
            });
        }
        used.insert(ip, idx);
    }
    let mut pods = Vec::with_capacity(plans.len());
    for (idx, p) in plans.into_iter().enumerate() {
        let n = p.node.unwrap_or(0);
        let ip = match p.ip {
            Some(ip) => ip,
            None => {
                let node = &mut nodes[n];
                // The pod range as u64, so that nothing overflows at the
                // top of the address space.
                let first = u64::from(u32::from(node.pod_cidr.network())) + 2;
                let last = u64::from(u32::from(node.pod_cidr.broadcast())).saturating_sub(1);
                let size = (last + 1).saturating_sub(first);
                let start = node
                    .next_pod_ip
                    .map_or(first, |ip| u64::from(u32::from(ip)));
                let offset = start.saturating_sub(first);
                let found = (0..size)
                    .map(|step| first + (offset + step) % size)
                    .filter_map(|a| u32::try_from(a).ok().map(Ipv4Addr::from))
                    .find(|ip| !used.contains_key(ip));
                let Some(ip) = found else {
                    return Err(ConfigError::PodCidrExhausted {
                        node: node.name.clone(),
                        cidr: node.pod_cidr,
                        pod: p.obj,
                    });
                };
                used.insert(ip, idx);
                let after = u64::from(u32::from(ip)) + 1;
                let next = if after > last { first } else { after };
                node.next_pod_ip = u32::try_from(next).ok().map(Ipv4Addr::from);
                ip
            }
        };
        pods.push(Pod {
            name: p.name,
            namespace: p.namespace,
            labels: p.labels,
            ip,
            node: nodes[n].name.clone(),
            ready: p.ready,
            owner: p.owner,
            ports: p.ports,
        });
    }
    Ok(pods)
}

/// Reserves explicit node ports (refusing duplicates), then allocates one
/// for every NodePort/LoadBalancer port without.
pub(crate) fn allocate_node_ports(plans: &mut [ServicePlan]) -> Result<(), ConfigError> {
    let mut used: HashMap<u16, String> = HashMap::new();
    for p in plans.iter() {
        for (j, port) in p.service.ports.iter().enumerate() {
            let Some(np) = port.node_port else { continue };
            let key = format!("{}.ports[{j}].nodePort", p.label);
            if let Some(first) = used.get(&np) {
                return Err(ConfigError::DuplicateNodePort {
                    key,
                    value: np,
                    first: first.clone(),
                });
            }
            used.insert(np, key);
        }
    }
    let span = (NODE_PORT_MAX - NODE_PORT_MIN + 1) as u64;
    for p in plans.iter_mut() {
        if !matches!(
            p.service.service_type,
            ServiceType::NodePort | ServiceType::LoadBalancer
        ) {
            continue;
        }
        for (j, port) in p.service.ports.iter_mut().enumerate() {
            if port.node_port.is_some() {
                continue;
            }
            let key = format!("{}.ports[{j}].nodePort", p.label);
            let h = xxh3_64(
                format!(
                    "{}/{}/{}/{}",
                    p.service.namespace, p.service.name, port.port, port.protocol
                )
                .as_bytes(),
            );
            let found = (0..span)
                .map(|k| (h % span + k) % span)
                .filter_map(|off| u16::try_from(NODE_PORT_MIN as u64 + off).ok())
                .find(|np| !used.contains_key(np));
            let Some(np) = found else {
                return Err(ConfigError::NodePortsExhausted { key });
            };
            used.insert(np, key);
            port.node_port = Some(np);
        }
    }
    Ok(())
}

/// Explicit ClusterIPs were checked and are reserved; the rest are hashed
/// into the Service CIDR's host range with linear probing, never taking the
/// first host (`kubernetes`) or the tenth (cluster DNS). Headless and
/// ExternalName Services get `0.0.0.0`.
pub(crate) fn allocate_cluster_ips(
    plans: &mut [ServicePlan],
    cidr: Ipv4Net,
) -> Result<(), ConfigError> {
    let mut used: HashSet<Ipv4Addr> = plans.iter().filter_map(|p| p.cluster_ip).collect();
    let network = u64::from(u32::from(cidr.network()));
    let broadcast = u64::from(u32::from(cidr.broadcast()));
    let hosts = broadcast.saturating_sub(network + 1);
    for p in plans.iter_mut() {
        let ip = match p.cluster_ip {
            Some(ip) => ip,
            None if !p.virtual_ip => Ipv4Addr::UNSPECIFIED,
            None => {
                let h = xxh3_64(format!("{}/{}", p.service.namespace, p.service.name).as_bytes());
                let found = (0..hosts)
                    .map(|k| network + 1 + (h % hosts.max(1) + k) % hosts)
                    .filter(|&a| a != network + 1 && a != network + 10)
                    .filter_map(|a| u32::try_from(a).ok().map(Ipv4Addr::from))
                    .find(|ip| !used.contains(ip));
                let Some(ip) = found else {
                    return Err(ConfigError::ServiceCidrExhausted {
                        key: format!("{}: clusterIP", p.obj),
                        cidr,
                    });
                };
                used.insert(ip);
                ip
            }
        };
        p.service.cluster_ip = ip;
    }
    Ok(())
}
