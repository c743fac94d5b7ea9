//! The hidden `lab-*` commands: tab-separated lines for `scripts/lab`.

use std::fmt::Write as _;

use cluster::{Cluster, Protocol, ServiceType};

use super::columns::port_string;

/// For scripts: one tab-separated line per pod, `namespace name ip node
/// node_pod_cidr gateway tcp_ports udp_ports`. Ports are comma-separated
/// container ports, `-` when none; the gateway is the first host address of
/// the node's pod CIDR. Pods the router serves itself
/// ([`cluster::Pod::is_router_hosted`], the cluster DNS) are left
/// out: the lab makes no namespace for them.
pub fn lab_pods(c: &Cluster) -> String {
    let mut out = String::new();
    for p in c.pods.iter().filter(|p| !p.is_router_hosted()) {
        let (cidr, gateway) = match c.node(&p.node) {
            Some(n) => (n.pod_cidr.to_string(), n.gateway().to_string()),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let ports = |proto| {
            let list: Vec<String> = p
                .ports
                .iter()
                .filter(|cp| cp.protocol == proto)
                .map(|cp| cp.container_port.to_string())
                .collect();
            if list.is_empty() {
                "-".to_owned()
            } else {
                list.join(",")
            }
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{cidr}\t{gateway}\t{}\t{}",
            p.namespace,
            p.name,
            p.ip,
            p.node,
            ports(Protocol::Tcp),
            ports(Protocol::Udp),
        );
    }
    out
}

/// For scripts: one tab-separated line per node, `name address pod_cidr
/// vtep_mac`, where `vtep_mac` is the MAC of the node's VXLAN endpoint
/// ([`dataplane::overlay::vtep_mac`] of its address, `0e:6b:c0:a8:bf:91`).
pub fn lab_nodes(c: &Cluster) -> String {
    let mut out = String::new();
    for n in &c.nodes {
        let mac = dataplane::overlay::format_mac(dataplane::overlay::vtep_mac(n.underlay_ip));
        let _ = writeln!(out, "{}\t{}\t{}\t{mac}", n.name, n.underlay_ip, n.pod_cidr);
    }
    out
}

/// For scripts: one tab-separated line per Service, `namespace name type
/// cluster_ip external_ips ports`. `external_ips` are the LoadBalancer
/// ingress IPs then the external IPs, comma-separated, `-` when none (every
/// one of them must be routed to a node); `ports` is comma-separated
/// `port/PROTO`, or `port:nodePort/PROTO` when the port has a node port
/// (`80:30080/TCP,9000/UDP`).
pub fn lab_services(c: &Cluster) -> String {
    let mut out = String::new();
    for s in &c.services {
        let external: Vec<String> = s
            .load_balancer_ips
            .iter()
            .chain(&s.external_ips)
            .map(ToString::to_string)
            .collect();
        let external = if external.is_empty() {
            "-".to_owned()
        } else {
            external.join(",")
        };
        let ports = if s.ports.is_empty() {
            "-".to_owned()
        } else {
            port_string(s)
        };
        let cluster_ip = if s.headless {
            "None".to_owned()
        } else if s.service_type == ServiceType::ExternalName {
            "-".to_owned()
        } else {
            s.cluster_ip.to_string()
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{cluster_ip}\t{external}\t{ports}",
            s.namespace, s.name, s.service_type
        );
    }
    out
}

/// For scripts: the cluster-wide settings on one tab-separated line,
/// `pod_cidr service_cidr vni port underlay_mtu pod_mtu` (`port` is the
/// overlay's UDP port; pods get `pod_mtu`, the underlay's minus the VXLAN
/// overhead).
pub fn lab_cluster(c: &Cluster) -> String {
    let o = &c.overlay;
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\n",
        c.pod_cidr,
        c.service_cidr,
        o.vni,
        o.port,
        o.underlay_mtu,
        o.pod_mtu()
    )
}
