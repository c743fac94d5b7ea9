//! `get po|svc|endpoints|ns [NAME] -o json`: the objects as a kubectl-like
//! list, `{"apiVersion": "v1", "kind": "List", "items": [...]}`.
//!
//! Always a List, also for `get KIND NAME` (kubectl prints the bare object
//! there), so a consumer reads one shape. The items are flat, not
//! kubectl's `metadata`/`spec`/`status`: every item has `kind`, `name`,
//! `namespace` (not for namespaces), `age` (the AGE cell) and
//! `creationTimestamp` (unix seconds, `null` when read from a file), and
//! the fields the columns show, typed (addresses, numbers, booleans) and in
//! Kubernetes' field names:
//!
//! - `Pod`: `ready`, `status`, `restarts`, `ip`, `node`, `labels`,
//!   `ports` (`name`, `containerPort`, `protocol`), `routerHosted` (the
//!   router serves it in process: the cluster DNS);
//! - `Service`: `type`, `clusterIP` (`"None"` when headless, `null` for
//!   ExternalName), `externalIPs`, `loadBalancerIngress`, `externalName`,
//!   `ports` (`name`, `port`, `protocol`, `targetPort`, `nodePort`),
//!   `selector`, `labels`, `sessionAffinity`, `externalTrafficPolicy`,
//!   `internalTrafficPolicy`;
//! - `Endpoints`: `endpoints`, every ready endpoint of every port (`ip`,
//!   `port`, `protocol`, `portName`, `pod`, `node`), in the order the
//!   ENDPOINTS column lists them;
//! - `Namespace`: `status`.

use std::net::Ipv4Addr;

use serde::Serialize;

use cluster::{Cluster, Labels, Protocol, Service, ServiceType, SessionAffinity, TrafficPolicy};

use super::args::Resource;
use super::columns::service_key;
use super::table::{Ages, NamespaceFilter};
use super::CliError;

/// `kubectl get -o json`'s envelope.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<T> {
    api_version: &'static str,
    kind: &'static str,
    items: Vec<T>,
}

/// Name, namespace and age, common to every item.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    kind: &'static str,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    age: String,
    creation_timestamp: Option<i64>,
}

impl Meta {
    fn new(
        kind: &'static str,
        name: &str,
        namespace: Option<&str>,
        key: &str,
        ages: &Ages<'_>,
    ) -> Meta {
        Meta {
            kind,
            name: name.to_owned(),
            namespace: namespace.map(str::to_owned),
            age: ages.age(key),
            creation_timestamp: ages.created.and_then(|m| m.get(key).copied()),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodItem {
    #[serde(flatten)]
    meta: Meta,
    ready: bool,
    status: &'static str,
    restarts: u32,
    ip: Ipv4Addr,
    node: String,
    labels: Labels,
    ports: Vec<ContainerPortItem>,
    router_hosted: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerPortItem {
    name: Option<String>,
    container_port: u16,
    protocol: Protocol,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceItem {
    #[serde(flatten)]
    meta: Meta,
    #[serde(rename = "type")]
    service_type: String,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    #[serde(rename = "externalIPs")]
    external_ips: Vec<Ipv4Addr>,
    load_balancer_ingress: Vec<Ipv4Addr>,
    external_name: Option<String>,
    ports: Vec<ServicePortItem>,
    selector: Labels,
    labels: Labels,
    session_affinity: &'static str,
    external_traffic_policy: String,
    internal_traffic_policy: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServicePortItem {
    name: Option<String>,
    port: u16,
    protocol: Protocol,
    /// A number, or a container port's name.
    target_port: serde_json::Value,
    node_port: Option<u16>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EndpointsItem {
    #[serde(flatten)]
    meta: Meta,
    endpoints: Vec<EndpointItem>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EndpointItem {
    ip: Ipv4Addr,
    port: u16,
    protocol: Protocol,
    port_name: Option<String>,
    pod: String,
    node: String,
}

#[derive(Serialize)]
struct NamespaceItem {
    #[serde(flatten)]
    meta: Meta,
    status: &'static str,
}

/// `get RESOURCE -o json` for pods, services, endpoints and namespaces.
pub fn get(
    c: &Cluster,
    resource: Resource,
    ns: &NamespaceFilter,
    ages: &Ages<'_>,
) -> Result<String, CliError> {
    let services = || c.services.iter().filter(|s| ns.matches(&s.namespace));
    match resource {
        Resource::Pods => list(
            c.pods
                .iter()
                .filter(|p| ns.matches(&p.namespace))
                .map(|p| PodItem {
                    meta: Meta::new(
                        "Pod",
                        &p.name,
                        Some(&p.namespace),
                        &format!("pod/{}/{}", p.namespace, p.name),
                        ages,
                    ),
                    ready: p.ready,
                    status: "Running",
                    restarts: 0,
                    ip: p.ip,
                    node: p.node.clone(),
                    labels: p.labels.clone(),
                    ports: p
                        .ports
                        .iter()
                        .map(|cp| ContainerPortItem {
                            name: cp.name.clone(),
                            container_port: cp.container_port,
                            protocol: cp.protocol,
                        })
                        .collect(),
                    router_hosted: p.is_router_hosted(),
                })
                .collect(),
        ),
        Resource::Services => list(services().map(|s| service(s, ages)).collect()),
        Resource::Endpoints => list(
            services()
                // An ExternalName Service has no Endpoints object.
                .filter(|s| s.service_type != ServiceType::ExternalName)
                .map(|s| endpoints(c, s, ages))
                .collect(),
        ),
        Resource::Namespaces => list(
            c.namespaces()
                .into_iter()
                .map(|n| NamespaceItem {
                    meta: Meta::new("Namespace", n, None, &format!("namespace/{n}"), ages),
                    status: "Active",
                })
                .collect(),
        ),
        Resource::Conntrack | Resource::Stats => Err(CliError::Usage(
            "-o json of this kind is not a list of objects",
        )),
    }
}

fn list<T: Serialize>(items: Vec<T>) -> Result<String, CliError> {
    let list = List {
        api_version: "v1",
        kind: "List",
        items,
    };
    Ok(format!("{}\n", serde_json::to_string_pretty(&list)?))
}

fn service(s: &Service, ages: &Ages<'_>) -> ServiceItem {
    let cluster_ip = match s.service_type {
        ServiceType::ExternalName => None,
        _ if s.headless => Some("None".to_owned()),
        _ => Some(s.cluster_ip.to_string()),
    };
    let policy = |p: TrafficPolicy| p.to_string();
    ServiceItem {
        meta: Meta::new(
            "Service",
            &s.name,
            Some(&s.namespace),
            &service_key(s),
            ages,
        ),
        service_type: s.service_type.to_string(),
        cluster_ip,
        external_ips: s.external_ips.clone(),
        load_balancer_ingress: s.load_balancer_ips.clone(),
        external_name: s.external_name.clone(),
        ports: s
            .ports
            .iter()
            .map(|p| ServicePortItem {
                name: p.name.clone(),
                port: p.port,
                protocol: p.protocol,
                target_port: match &p.target_port {
                    cluster::TargetPort::Number(n) => (*n).into(),
                    cluster::TargetPort::Name(n) => n.clone().into(),
                },
                node_port: p.node_port,
            })
            .collect(),
        selector: s.selector.clone(),
        labels: s.labels.clone(),
        session_affinity: match s.session_affinity {
            SessionAffinity::None => "None",
            SessionAffinity::ClientIP { .. } => "ClientIP",
        },
        external_traffic_policy: policy(s.external_traffic_policy),
        internal_traffic_policy: policy(s.internal_traffic_policy),
    }
}

fn endpoints(c: &Cluster, s: &Service, ages: &Ages<'_>) -> EndpointsItem {
    EndpointsItem {
        meta: Meta::new(
            "Endpoints",
            &s.name,
            Some(&s.namespace),
            &service_key(s),
            ages,
        ),
        endpoints: s
            .ports
            .iter()
            .flat_map(|p| {
                c.endpoints(s, p).into_iter().map(|e| EndpointItem {
                    ip: e.ip,
                    port: e.port,
                    protocol: p.protocol,
                    port_name: p.name.clone(),
                    pod: e.pod,
                    node: e.node,
                })
            })
            .collect(),
    }
}
