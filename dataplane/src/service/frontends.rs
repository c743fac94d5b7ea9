//! One Service's frontends on one node: its ClusterIP ports, the NodePorts
//! (this node's and, served here for local pods, the peers'), and its
//! LoadBalancer and external IPs, each with the endpoints its traffic
//! policy allows.

use std::net::SocketAddrV4;
use std::time::Duration;

use super::{Frontend, ServicePortEntry, Tables};
use crate::route::Topology;
use cluster::{Endpoint, Service, ServicePort, ServiceType, SessionAffinity, TrafficPolicy};

/// A frontend of a Service, in the order a build writes them (which
/// decides who wins when two claim the same address and port).
pub(super) struct Built {
    /// Whether the address is a virtual IP (ClusterIP, LoadBalancer,
    /// external IP): such an address serves only its ports. A NodePort's
    /// node address stays a normal address for every other port.
    pub(super) vip: bool,
    pub(super) entry: ServicePortEntry,
}

/// The frontends of `svc`, in build order, with `endpoints` giving each
/// port's endpoints. Without a topology, only the ClusterIP ports.
/// Headless and ExternalName Services have none (DNS answers for them).
pub(super) fn frontends(
    svc: &Service,
    endpoints: impl Fn(&ServicePort) -> Vec<Endpoint>,
    node: Option<&Topology>,
    tables: &mut Tables,
) -> Vec<Built> {
    let mut out = Vec::new();
    if svc.headless || svc.service_type == ServiceType::ExternalName {
        return out;
    }
    let affinity = match svc.session_affinity {
        SessionAffinity::None => None,
        SessionAffinity::ClientIP { timeout_seconds } => {
            Some(Duration::from_secs(u64::from(timeout_seconds)))
        }
    };
    for port in &svc.ports {
        let all = endpoints(port);
        // The endpoints, or only those on node `on` (a Local policy).
        let addrs_on = |on: Option<&str>| -> Vec<SocketAddrV4> {
            all.iter()
                .filter(|e| on.is_none_or(|n| n == e.node))
                .map(|e| SocketAddrV4::new(e.ip, e.port))
                .collect()
        };
        let here = |local_only: bool| local_only.then(|| node.map(|n| n.node.as_str())).flatten();
        let name = match &port.name {
            Some(p) => format!("{}/{}:{p}", svc.namespace, svc.name),
            None => format!("{}/{}", svc.namespace, svc.name),
        };
        let proto = port.protocol.ip_number();
        let mut add = |vip: bool,
                       key,
                       frontend,
                       on: Option<&str>,
                       local_only: bool,
                       tables: &mut Tables| {
            let entry =
                ServicePortEntry::with_tables(name.clone(), key, frontend, addrs_on(on), tables)
                    .with_affinity(affinity)
                    .with_local_only(local_only);
            out.push(Built { vip, entry });
        };
        let internal_local = node.is_some() && svc.internal_traffic_policy == TrafficPolicy::Local;
        add(
            true,
            (svc.cluster_ip, port.port, proto),
            Frontend::ClusterIp,
            here(internal_local),
            internal_local,
            tables,
        );
        let Some(node) = node else { continue };
        let policy = svc.external_traffic_policy;
        let local = policy == TrafficPolicy::Local;
        let external = Frontend::External(policy);
        if svc.service_type != ServiceType::ClusterIP {
            if let Some(node_port) = port.node_port {
                let key = (node.underlay_ip, node_port, proto);
                add(false, key, external, here(local), local, tables);
                // A pod here reaching another node's NodePort is served
                // here, as that node would serve it (with a Local policy:
                // that node's endpoints), so the flow never leaves the
                // overlay with a pod source the underlay cannot route back.
                for peer in &node.peers {
                    let on = local.then_some(peer.name.as_str());
                    let key = (peer.underlay_ip, node_port, proto);
                    add(false, key, external, on, local, tables);
                }
            }
        }
        for ip in svc.load_balancer_ips.iter().chain(&svc.external_ips) {
            add(
                true,
                (*ip, port.port, proto),
                external,
                here(local),
                local,
                tables,
            );
        }
    }
    out
}

/// Whether `svc` has NodePort frontends, which depend on the nodes.
pub(super) fn has_node_ports(svc: &Service) -> bool {
    !svc.headless
        && matches!(
            svc.service_type,
            ServiceType::NodePort | ServiceType::LoadBalancer
        )
        && svc.ports.iter().any(|p| p.node_port.is_some())
}
