//! A `v1` Service into a [`cluster::Service`], as kube-proxy reads it.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use cluster::{
    Labels, Service, ServicePort, ServiceType, SessionAffinity, TargetPort, TrafficPolicy,
};

use super::{ipv4_or_v6, meta_key, port_number, protocol, Skip};

/// The label that hands a Service to another proxy: kube-proxy (and so the
/// router) serves only Services without it.
pub const SERVICE_PROXY_NAME: &str = "service.kubernetes.io/service-proxy-name";

/// `sessionAffinityConfig.clientIP.timeoutSeconds` when absent (3 hours,
/// Kubernetes' default).
pub const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;

const KIND: &str = "Service";

/// The router's view of `svc`: `Ok(None)` when it is not the router's to
/// serve (labelled [`SERVICE_PROXY_NAME`], or IPv6-only), a [`Skip`] when
/// a field cannot be read. SCTP ports are left out (the router carries TCP
/// and UDP only); IPv6 external and ingress addresses too.
pub fn translate_service(svc: &k8s::Service) -> Result<Option<Service>, Skip> {
    let key = meta_key(&svc.metadata);
    let labels: Labels = svc.metadata.labels.clone().unwrap_or_default();
    if labels.contains_key(SERVICE_PROXY_NAME) {
        return Ok(None);
    }
    let skip = |field: &str, reason: String| Skip::new(KIND, &key, field, reason);
    let default_spec = k8s::ServiceSpec::default();
    let spec = svc.spec.as_ref().unwrap_or(&default_spec);

    let service_type = match ServiceType::from_spec(spec.type_.as_deref()) {
        Some(t) => t,
        None => {
            let other = spec.type_.as_deref().unwrap_or_default();
            return Err(skip(
                "spec.type",
                format!("{other:?} is not ClusterIP, NodePort, LoadBalancer or ExternalName"),
            ));
        }
    };
    let (cluster_ip, headless) = match cluster_ip(spec, service_type) {
        Ok(Some(ip)) => ip,
        Ok(None) => return Ok(None),
        Err((field, reason)) => return Err(skip(field, reason)),
    };
    let external_name = match service_type {
        ServiceType::ExternalName => Some(
            spec.external_name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| skip("spec.externalName", "is missing".into()))?,
        ),
        _ => None,
    };

    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        let field = |name: &str| format!("spec.ports[{i}].{name}");
        let Some(protocol) =
            protocol(p.protocol.as_deref()).map_err(|r| skip(&field("protocol"), r))?
        else {
            continue;
        };
        let port = port_number(p.port).map_err(|r| skip(&field("port"), r))?;
        let target_port = match &p.target_port {
            None => TargetPort::Number(port),
            Some(IntOrString::Int(n)) => {
                TargetPort::Number(port_number(*n).map_err(|r| skip(&field("targetPort"), r))?)
            }
            Some(IntOrString::String(name)) if name.is_empty() => TargetPort::Number(port),
            Some(IntOrString::String(name)) => TargetPort::Name(name.clone()),
        };
        let node_port = match p.node_port {
            None | Some(0) => None,
            Some(n) => Some(port_number(n).map_err(|r| skip(&field("nodePort"), r))?),
        };
        ports.push(ServicePort {
            name: p.name.clone().filter(|n| !n.is_empty()),
            protocol,
            port,
            target_port,
            node_port,
        });
    }

    let session_affinity = match spec.session_affinity.as_deref() {
        None | Some("None") => SessionAffinity::None,
        Some("ClientIP") => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            let timeout_seconds = match timeout {
                None => DEFAULT_AFFINITY_TIMEOUT,
                Some(t) => u32::try_from(t).ok().filter(|t| *t > 0).ok_or_else(|| {
                    skip(
                        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                        format!("{t} is not a positive number of seconds"),
                    )
                })?,
            };
            SessionAffinity::ClientIP { timeout_seconds }
        }
        Some(other) => {
            return Err(skip(
                "spec.sessionAffinity",
                format!("{other:?} is not None or ClientIP"),
            ))
        }
    };
    let policy = |field: &str, value: Option<&str>| match value {
        None | Some("Cluster") => Ok(TrafficPolicy::Cluster),
        Some("Local") => Ok(TrafficPolicy::Local),
        Some(other) => Err(skip(field, format!("{other:?} is not Cluster or Local"))),
    };
    let external_traffic_policy = policy(
        "spec.externalTrafficPolicy",
        spec.external_traffic_policy.as_deref(),
    )?;
    let internal_traffic_policy = policy(
        "spec.internalTrafficPolicy",
        spec.internal_traffic_policy.as_deref(),
    )?;

    let mut external_ips = Vec::new();
    for (i, text) in spec.external_ips.iter().flatten().enumerate() {
        let ip = ipv4_or_v6(text).map_err(|r| skip(&format!("spec.externalIPs[{i}]"), r))?;
        external_ips.extend(ip);
    }
    let mut load_balancer_ips = Vec::new();
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    for (i, entry) in ingress.into_iter().flatten().enumerate() {
        // An ingress given by hostname only has nothing to route here.
        let Some(text) = entry.ip.as_deref() else {
            continue;
        };
        let ip = ipv4_or_v6(text)
            .map_err(|r| skip(&format!("status.loadBalancer.ingress[{i}].ip"), r))?;
        load_balancer_ips.extend(ip);
    }

    Ok(Some(Service {
        name: key.name.clone(),
        namespace: key.namespace.clone(),
        labels,
        selector: spec.selector.clone().unwrap_or_default(),
        service_type,
        cluster_ip,
        headless,
        external_name,
        ports,
        session_affinity,
        external_traffic_policy,
        internal_traffic_policy,
        external_ips,
        load_balancer_ips,
        created: svc
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second()),
    }))
}

/// The Service's IPv4 ClusterIP and whether it is headless; `None` for an
/// IPv6-only Service; the field and the reason when it cannot be read.
#[allow(clippy::type_complexity)]
fn cluster_ip(
    spec: &k8s::ServiceSpec,
    service_type: ServiceType,
) -> Result<Option<(Ipv4Addr, bool)>, (&'static str, String)> {
    if service_type == ServiceType::ExternalName {
        return Ok(Some((Ipv4Addr::UNSPECIFIED, false)));
    }
    // clusterIPs holds clusterIP first and, on a dual-stack Service, the
    // other family's address: the router takes the IPv4 one.
    let mut listed: Vec<(&'static str, &str)> = Vec::new();
    listed.extend(spec.cluster_ip.as_deref().map(|ip| ("spec.clusterIP", ip)));
    listed.extend(
        spec.cluster_ips
            .iter()
            .flatten()
            .map(|ip| ("spec.clusterIPs", ip.as_str())),
    );
    listed.retain(|(_, ip)| !ip.is_empty());
    let Some((_, first)) = listed.first() else {
        return Err(("spec.clusterIP", "is not allocated yet".to_owned()));
    };
    if *first == "None" {
        return Ok(Some((Ipv4Addr::UNSPECIFIED, true)));
    }
    for (field, text) in &listed {
        if let Some(ip) = ipv4_or_v6(text).map_err(|r| (*field, r))? {
            return Ok(Some((ip, false)));
        }
    }
    Ok(None)
}
