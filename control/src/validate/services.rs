//! `[[services]]`: type, ClusterIP, affinity, policies, external and
//! LoadBalancer IPs and ports, then the ClusterIP and node port allocators.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use cluster::{
    Node, Protocol, Service, ServicePort, ServiceType, SessionAffinity, TargetPort, TrafficPolicy,
};

use crate::allocate::{allocate_cluster_ips, allocate_node_ports, NODE_PORT_MAX, NODE_PORT_MIN};
use crate::error::ConfigError;
use crate::key::{describe, Keyed};
use crate::schema::{origin, RawIntOrString, RawService, RawServicePort, DEFAULT_NAMESPACE};
use crate::validate::{
    check_dns_label, check_dns_subdomain, check_labels, check_name, check_port_name, parse_ip,
    port_name, port_number, protocol, special_address, NameSyntax,
};

/// Kubernetes' default ClientIP affinity timeout.
pub(crate) const DEFAULT_AFFINITY_TIMEOUT: i64 = 10800;
/// Longest ClientIP affinity timeout Kubernetes accepts (one day).
pub(crate) const MAX_AFFINITY_TIMEOUT: i64 = 86400;

/// A Service before its ClusterIP and node ports are allocated.
pub(crate) struct ServicePlan {
    pub(crate) service: Service,
    pub(crate) obj: String,
    /// Key-path prefix (`services[0]`).
    pub(crate) label: String,
    /// The explicit ClusterIP.
    pub(crate) cluster_ip: Option<Ipv4Addr>,
    /// Whether it gets a ClusterIP at all (not headless, not ExternalName).
    pub(crate) virtual_ip: bool,
}

pub(crate) fn build_services(
    raw: &[RawService],
    pod_cidr: Ipv4Net,
    cidr: Ipv4Net,
    nodes: &[Node],
) -> Result<Vec<Service>, ConfigError> {
    let mut plans: Vec<ServicePlan> = Vec::with_capacity(raw.len());
    // (address, port, protocol) -> key path of the address that serves it.
    let mut external: HashMap<(Ipv4Addr, u16, Protocol), String> = HashMap::new();
    for (i, s) in raw.iter().enumerate() {
        let label = origin(&s.origin, "services", i);
        let namespace = s.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let key = s.key();
        let obj = describe(&label, &key);
        check_name(&format!("{label}.name"), &s.name, NameSyntax::Dns1035Label)?;
        check_name(
            &format!("{obj}: namespace"),
            namespace,
            NameSyntax::Dns1123Label,
        )?;
        check_labels(&format!("{obj}: labels"), &s.labels)?;
        check_labels(&format!("{obj}: selector"), &s.selector)?;
        if let Some(j) = plans.iter().position(|o| o.service.has_key(&key)) {
            return Err(ConfigError::DuplicateName {
                key: format!("{label}.name"),
                value: (&s.name).into(),
                namespace: namespace.to_owned(),
                first: plans[j].label.clone(),
            });
        }
        let service_type = ServiceType::from_spec(s.service_type.as_deref()).ok_or_else(|| {
            ConfigError::UnsupportedServiceType {
                key: format!("{obj}: type"),
                value: s.service_type.as_deref().unwrap_or_default().into(),
            }
        })?;
        let is_external_name = service_type == ServiceType::ExternalName;
        let not_on_external_name = |field: &str, value: String| ConfigError::NotOnExternalName {
            key: format!("{obj}: {field}"),
            value: value.into(),
        };
        let external_name = match (&s.external_name, service_type) {
            (Some(name), ServiceType::ExternalName) => {
                // A fully qualified name may end in a dot, as in Kubernetes.
                let bare = name.strip_suffix('.').unwrap_or(name);
                if let Err(reason) = check_dns_subdomain(bare) {
                    return Err(ConfigError::InvalidExternalName {
                        key: format!("{obj}: externalName"),
                        value: name.into(),
                        reason,
                    });
                }
                Some(name.clone())
            }
            (None, ServiceType::ExternalName) => {
                return Err(ConfigError::ExternalNameMissing {
                    key: format!("{obj}: externalName"),
                })
            }
            (Some(name), _) => {
                return Err(ConfigError::ExternalNameWithoutType {
                    key: format!("{obj}: externalName"),
                    value: name.into(),
                    service_type,
                })
            }
            (None, _) => None,
        };
        let mut headless = false;
        let cluster_ip = match s.cluster_ip.as_deref() {
            None => None,
            Some(text) if is_external_name => {
                return Err(not_on_external_name("clusterIP", format!("{text:?}")));
            }
            Some("None") => {
                if service_type != ServiceType::ClusterIP {
                    return Err(ConfigError::HeadlessWithType {
                        key: format!("{obj}: clusterIP"),
                        service_type,
                    });
                }
                headless = true;
                None
            }
            Some(text) => {
                let key = format!("{obj}: clusterIP");
                let ip = parse_ip(&key, text)?;
                if !cidr.contains(&ip) {
                    return Err(ConfigError::ClusterIpOutsideCidr {
                        key,
                        value: ip,
                        cidr,
                    });
                }
                let what = if ip == cidr.network() {
                    Some("network")
                } else if ip == cidr.broadcast() {
                    Some("broadcast")
                } else {
                    None
                };
                if let Some(what) = what {
                    return Err(ConfigError::ClusterIpReserved {
                        key,
                        value: ip,
                        what,
                        cidr,
                    });
                }
                if let Some(first) = plans.iter().find(|p| p.cluster_ip == Some(ip)) {
                    return Err(ConfigError::DuplicateClusterIp {
                        key,
                        value: ip,
                        first: first.obj.clone(),
                    });
                }
                Some(ip)
            }
        };
        let session_affinity = match s.session_affinity.as_deref() {
            None | Some("None") => {
                if let Some(t) = s.session_affinity_timeout_seconds {
                    return Err(ConfigError::AffinityTimeoutWithoutClientIp {
                        key: format!("{obj}: sessionAffinityTimeoutSeconds"),
                        value: t,
                    });
                }
                SessionAffinity::None
            }
            Some("ClientIP") if is_external_name => {
                return Err(not_on_external_name(
                    "sessionAffinity",
                    "\"ClientIP\"".to_owned(),
                ));
            }
            Some("ClientIP") => {
                let t = s
                    .session_affinity_timeout_seconds
                    .unwrap_or(DEFAULT_AFFINITY_TIMEOUT);
                if !(1..=MAX_AFFINITY_TIMEOUT).contains(&t) {
                    return Err(ConfigError::AffinityTimeoutOutOfRange {
                        key: format!("{obj}: sessionAffinityTimeoutSeconds"),
                        value: t,
                    });
                }
                SessionAffinity::ClientIP {
                    timeout_seconds: u32::try_from(t).unwrap_or(u32::MAX),
                }
            }
            Some(other) => {
                return Err(ConfigError::InvalidSessionAffinity {
                    key: format!("{obj}: sessionAffinity"),
                    value: other.into(),
                })
            }
        };
        let ports = service_ports(&label, service_type, &s.ports)?;
        // Kubernetes: only a Service with a virtual IP needs ports.
        if ports.is_empty() && !headless && !is_external_name {
            return Err(ConfigError::NoServicePorts {
                key: format!("{obj}: ports"),
            });
        }
        if service_type != ServiceType::LoadBalancer && !s.load_balancer_ips.is_empty() {
            return Err(ConfigError::LoadBalancerIpsNotLoadBalancer {
                key: format!("{obj}: loadBalancerIPs"),
                value: format!("{:?}", s.load_balancer_ips).into(),
                service_type,
            });
        }
        if !s.external_ips.is_empty() {
            if is_external_name {
                return Err(not_on_external_name(
                    "externalIPs",
                    format!("{:?}", s.external_ips),
                ));
            }
            if headless {
                return Err(ConfigError::HeadlessWithExternalIps {
                    key: format!("{obj}: externalIPs"),
                    value: format!("{:?}", s.external_ips).into(),
                });
            }
        }
        let ranges = ExternalRanges {
            pod_cidr,
            service_cidr: cidr,
            nodes,
        };
        // LoadBalancer IPs first, as kubectl lists them first.
        let mut load_balancer_ips = Vec::with_capacity(s.load_balancer_ips.len());
        for (k, text) in s.load_balancer_ips.iter().enumerate() {
            let key = format!("{obj}: loadBalancerIPs[{k}]");
            let ip = ranges.check(&key, text)?;
            claim_external(&mut external, &key, ip, &ports)?;
            load_balancer_ips.push(ip);
        }
        let mut external_ips = Vec::with_capacity(s.external_ips.len());
        for (k, text) in s.external_ips.iter().enumerate() {
            let key = format!("{obj}: externalIPs[{k}]");
            let ip = ranges.check(&key, text)?;
            claim_external(&mut external, &key, ip, &ports)?;
            external_ips.push(ip);
        }
        let external_traffic_policy = match s.external_traffic_policy.as_deref() {
            None => TrafficPolicy::Cluster,
            Some(value) if is_external_name => {
                return Err(not_on_external_name(
                    "externalTrafficPolicy",
                    format!("{value:?}"),
                ));
            }
            Some(value) if !externally_accessible(service_type, &external_ips) => {
                return Err(ConfigError::TrafficPolicyNotExternal {
                    key: format!("{obj}: externalTrafficPolicy"),
                    value: value.into(),
                })
            }
            Some(value) => traffic_policy(&format!("{obj}: externalTrafficPolicy"), value)?,
        };
        let internal_traffic_policy = match s.internal_traffic_policy.as_deref() {
            None => TrafficPolicy::Cluster,
            Some(value) => traffic_policy(&format!("{obj}: internalTrafficPolicy"), value)?,
        };
        plans.push(ServicePlan {
            service: Service {
                name: s.name.clone(),
                namespace: namespace.to_owned(),
                labels: s.labels.clone(),
                selector: s.selector.clone(),
                service_type,
                cluster_ip: Ipv4Addr::UNSPECIFIED,
                ports,
                session_affinity,
                external_traffic_policy,
                internal_traffic_policy,
                external_ips,
                load_balancer_ips,
                created: None,
                headless,
                external_name,
            },
            obj,
            label,
            cluster_ip,
            virtual_ip: !headless && !is_external_name,
        });
    }
    allocate_node_ports(&mut plans)?;
    allocate_cluster_ips(&mut plans, cidr)?;
    Ok(plans.into_iter().map(|p| p.service).collect())
}

/// Kubernetes' `ExternallyAccessible`: NodePort, LoadBalancer, or a
/// ClusterIP Service with external IPs. Only these may set
/// `externalTrafficPolicy`.
pub(crate) fn externally_accessible(service_type: ServiceType, external_ips: &[Ipv4Addr]) -> bool {
    match service_type {
        ServiceType::NodePort | ServiceType::LoadBalancer => true,
        ServiceType::ClusterIP => !external_ips.is_empty(),
        ServiceType::ExternalName => false,
    }
}

/// `Cluster` or `Local`, for `externalTrafficPolicy` and
/// `internalTrafficPolicy`.
pub(crate) fn traffic_policy(key: &str, value: &str) -> Result<TrafficPolicy, ConfigError> {
    match value {
        "Cluster" => Ok(TrafficPolicy::Cluster),
        "Local" => Ok(TrafficPolicy::Local),
        other => Err(ConfigError::InvalidTrafficPolicy {
            key: key.to_owned(),
            value: other.into(),
        }),
    }
}

/// What an external or LoadBalancer IP must stay clear of.
pub(crate) struct ExternalRanges<'a> {
    pub(crate) pod_cidr: Ipv4Net,
    pub(crate) service_cidr: Ipv4Net,
    pub(crate) nodes: &'a [Node],
}

impl ExternalRanges<'_> {
    /// Parses the external or LoadBalancer IP `text` at `key` and checks
    /// that a client outside the cluster can address it: not a special
    /// address, outside the pod and Service CIDRs, not a node's address.
    fn check(&self, key: &str, text: &str) -> Result<Ipv4Addr, ConfigError> {
        let ip = parse_ip(key, text)?;
        if let Some(what) = special_address(ip) {
            return Err(ConfigError::ExternalIpSpecial {
                key: key.to_owned(),
                value: ip,
                what,
            });
        }
        for (range_key, range) in [
            ("cluster.podCIDR", self.pod_cidr),
            ("cluster.serviceCIDR", self.service_cidr),
        ] {
            if range.contains(&ip) {
                return Err(ConfigError::ExternalIpInClusterRange {
                    key: key.to_owned(),
                    value: ip,
                    range_key,
                    range,
                });
            }
        }
        if let Some(n) = self.nodes.iter().find(|n| n.underlay_ip == ip) {
            return Err(ConfigError::ExternalIpIsNodeAddress {
                key: key.to_owned(),
                value: ip,
                node: n.name.clone(),
            });
        }
        Ok(ip)
    }
}

/// Records that the external address `ip` (at `key`) serves every one of
/// `ports`, refusing an (address, port, protocol) that is already served.
pub(crate) fn claim_external(
    taken: &mut HashMap<(Ipv4Addr, u16, Protocol), String>,
    key: &str,
    ip: Ipv4Addr,
    ports: &[ServicePort],
) -> Result<(), ConfigError> {
    for p in ports {
        if let Some(first) = taken.get(&(ip, p.port, p.protocol)) {
            return Err(ConfigError::DuplicateExternalIp {
                key: key.to_owned(),
                value: ip,
                port: p.port,
                protocol: p.protocol,
                first: first.clone(),
            });
        }
    }
    for p in ports {
        taken.insert((ip, p.port, p.protocol), key.to_owned());
    }
    Ok(())
}

/// The ports of the Service whose key-path prefix is `label`.
pub(crate) fn service_ports(
    label: &str,
    service_type: ServiceType,
    raw: &[RawServicePort],
) -> Result<Vec<ServicePort>, ConfigError> {
    let mut out: Vec<ServicePort> = Vec::with_capacity(raw.len());
    for (j, p) in raw.iter().enumerate() {
        let key = |field: &str| format!("{label}.ports[{j}].{field}");
        let name = port_name(
            &key("name"),
            p.name.as_deref(),
            out.iter().map(|o| o.name.as_deref()),
            check_dns_label,
            label,
        )?;
        let port = port_number(&key("port"), p.port)?;
        let protocol = protocol(&key("protocol"), p.protocol.as_deref())?;
        if let Some(k) = out
            .iter()
            .position(|o| o.port == port && o.protocol == protocol)
        {
            return Err(ConfigError::DuplicateServicePort {
                key: format!("{label}.ports[{j}]"),
                port,
                protocol,
                first: format!("{label}.ports[{k}]"),
            });
        }
        let target_port = match &p.target_port {
            None => TargetPort::Number(port),
            Some(RawIntOrString::Int(n)) => {
                TargetPort::Number(port_number(&key("targetPort"), *n)?)
            }
            Some(RawIntOrString::Str(s)) => {
                if let Err(reason) = check_port_name(s) {
                    return Err(ConfigError::InvalidTargetPort {
                        key: key("targetPort"),
                        value: s.into(),
                        reason,
                    });
                }
                TargetPort::Name(s.clone())
            }
        };
        let node_port = match p.node_port {
            None => None,
            Some(n) => {
                if service_type == ServiceType::ClusterIP {
                    return Err(ConfigError::NodePortOnClusterIp {
                        key: key("nodePort"),
                        value: n,
                    });
                }
                if service_type == ServiceType::ExternalName {
                    return Err(ConfigError::NotOnExternalName {
                        key: key("nodePort"),
                        value: n.to_string().into(),
                    });
                }
                if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&n) {
                    return Err(ConfigError::NodePortOutOfRange {
                        key: key("nodePort"),
                        value: n,
                    });
                }
                u16::try_from(n).ok()
            }
        };
        out.push(ServicePort {
            name,
            protocol,
            port,
            target_port,
            node_port,
        });
    }
    Ok(out)
}
