//! kubectl's cells for Services and endpoints, shared by `get` and
//! `describe`: CLUSTER-IP, EXTERNAL-IP, PORT(S), selectors, endpoint lists.

use cluster::{Cluster, Labels, Service, ServiceType};

pub fn service_key(s: &Service) -> String {
    format!("service/{}/{}", s.namespace, s.name)
}

/// kubectl's widest LoadBalancer ingress list in `get` without `-o wide`.
pub const LOAD_BALANCER_WIDTH: usize = 16;

/// kubectl's EXTERNAL-IP (`getServiceExternalIP`): the external IPs, or
/// `<none>`; for a LoadBalancer the ingress IPs (sorted as strings, cut to
/// 16 characters without `-o wide`) followed by the external IPs, or
/// `<pending>` when it has neither.
pub fn external_ip(s: &Service, wide: bool) -> String {
    let external = join_ips(&s.external_ips, ",");
    match s.service_type {
        ServiceType::ExternalName => s.external_name.clone().unwrap_or_default(),
        ServiceType::ClusterIP | ServiceType::NodePort => {
            if external.is_empty() {
                "<none>".to_owned()
            } else {
                external
            }
        }
        ServiceType::LoadBalancer => {
            let mut ingress: Vec<String> = s
                .load_balancer_ips
                .iter()
                .map(ToString::to_string)
                .collect();
            ingress.sort();
            ingress.dedup();
            let mut lb = ingress.join(",");
            if !wide && lb.len() > LOAD_BALANCER_WIDTH {
                lb.truncate(LOAD_BALANCER_WIDTH - 3);
                lb.push_str("...");
            }
            match (lb.is_empty(), external.is_empty()) {
                (true, true) => "<pending>".to_owned(),
                (false, true) => lb,
                (true, false) => external,
                (false, false) => format!("{lb},{external}"),
            }
        }
    }
}

/// Kubernetes' `ExternallyAccessible`: NodePort, LoadBalancer, or a
/// ClusterIP Service with external IPs. Only these carry an external
/// traffic policy.
pub fn externally_accessible(s: &Service) -> bool {
    match s.service_type {
        ServiceType::NodePort | ServiceType::LoadBalancer => true,
        ServiceType::ClusterIP => !s.external_ips.is_empty(),
        ServiceType::ExternalName => false,
    }
}

/// kubectl's CLUSTER-IP: the address, `None` for a headless Service,
/// `<none>` for an ExternalName one (it has no ClusterIP).
pub fn cluster_ip(s: &Service) -> String {
    if s.service_type == ServiceType::ExternalName {
        "<none>".to_owned()
    } else if s.headless {
        "None".to_owned()
    } else {
        s.cluster_ip.to_string()
    }
}

/// `ips` joined by `sep`.
pub fn join_ips(ips: &[std::net::Ipv4Addr], sep: &str) -> String {
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// kubectl's PORT(S): `80/TCP`, `80:30862/TCP`, comma-joined.
pub fn port_string(s: &Service) -> String {
    if s.ports.is_empty() {
        return "<none>".to_owned();
    }
    s.ports
        .iter()
        .map(|p| match p.node_port {
            Some(np) => format!("{}:{np}/{}", p.port, p.protocol),
            None => format!("{}/{}", p.port, p.protocol),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `labels.FormatLabels`: `k=v,k2=v2`, or `<none>`.
pub fn format_labels(l: &Labels) -> String {
    if l.is_empty() {
        return "<none>".to_owned();
    }
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `ip:port` of every ready endpoint of port `only` (or of every port, in
/// port order), each port's endpoints sorted by IP.
pub fn endpoint_list(c: &Cluster, s: &Service, only: Option<usize>) -> Vec<String> {
    s.ports
        .iter()
        .enumerate()
        .filter(|(i, _)| only.is_none_or(|o| o == *i))
        .flat_map(|(_, p)| c.endpoints(s, p))
        .map(|e| format!("{}:{}", e.ip, e.port))
        .collect()
}

/// kubectl's `formatEndpoints`: at most three, then ` + N more...`.
pub fn truncate_endpoints(eps: &[String]) -> String {
    const MAX: usize = 3;
    if eps.len() > MAX {
        format!("{} + {} more...", eps[..MAX].join(","), eps.len() - MAX)
    } else {
        eps.join(",")
    }
}
