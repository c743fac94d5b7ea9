//! Writing the benchmark's cluster through the API: nodes, Services
//! without selectors and one EndpointSlice per Service written directly
//! (as an external controller would), and the endpoint changes measured.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use futures::{stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeSpec, NodeStatus, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

/// The namespace the benchmark's objects live in.
pub const NAMESPACE: &str = "default";
/// Label on everything the benchmark writes (slices: also their manager).
const MANAGER: &str = "control-bench";
/// Requests in flight while loading.
const IN_FLIGHT: usize = 64;

/// The benchmark's nodes: name, underlay IP, pod CIDR.
pub const NODES: [(&str, Ipv4Addr, &str); 2] = [
    (
        "bench-n1",
        Ipv4Addr::new(192, 168, 191, 144),
        "10.10.0.0/24",
    ),
    (
        "bench-n2",
        Ipv4Addr::new(192, 168, 191, 145),
        "10.10.1.0/24",
    ),
];

/// Service `i`'s name.
pub fn service_name(i: usize) -> String {
    format!("bench-{i:05}")
}

/// Endpoint `j` of Service `i` in generation `generation` (a change
/// replaces one endpoint with the next generation's): an address in the
/// cluster's pod CIDR, unique per (i, j, generation) for the sizes run.
fn endpoint_ip(i: usize, j: usize, generation: usize) -> Ipv4Addr {
    let n = (i * 8 + j + generation * 131_071) % (1 << 16);
    Ipv4Addr::new(10, 10, (n >> 8) as u8, (n & 0xff) as u8)
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(NAMESPACE.to_owned()),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_owned(),
            MANAGER.to_owned(),
        )])),
        ..ObjectMeta::default()
    }
}

fn service(i: usize) -> Service {
    Service {
        metadata: meta(&service_name(i)),
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::Int(8080)),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The endpoints of Service `i`: `per_service` pods, alternating nodes,
/// with endpoint `changed` (if any) in generation `generation`.
fn endpoints(i: usize, per_service: usize, changed: Option<(usize, usize)>) -> Vec<Endpoint> {
    (0..per_service)
        .map(|j| {
            let generation = match changed {
                Some((k, g)) if k == j => g,
                _ => 0,
            };
            Endpoint {
                addresses: vec![endpoint_ip(i, j, generation).to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                node_name: Some(NODES[j % NODES.len()].0.to_owned()),
                ..Endpoint::default()
            }
        })
        .collect()
}

fn slice(i: usize, per_service: usize) -> EndpointSlice {
    let mut metadata = meta(&format!("{}-bench", service_name(i)));
    if let Some(labels) = metadata.labels.as_mut() {
        labels.insert("kubernetes.io/service-name".into(), service_name(i));
        labels.insert(
            "endpointslice.kubernetes.io/managed-by".into(),
            MANAGER.into(),
        );
    }
    EndpointSlice {
        metadata,
        address_type: "IPv4".into(),
        endpoints: endpoints(i, per_service, None),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            ..EndpointPort::default()
        }]),
    }
}

/// Registers the benchmark's nodes (kept if they exist).
pub async fn nodes(client: &Client) -> Result<(), kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    for (name, ip, cidr) in NODES {
        let node = Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: Some(cidr.into()),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                addresses: Some(vec![NodeAddress {
                    type_: "InternalIP".into(),
                    address: ip.to_string(),
                }]),
                ..NodeStatus::default()
            }),
        };
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
        // Addresses are status: written through the status subresource.
        let status = serde_json::json!({ "status": node.status });
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
    }
    Ok(())
}

/// Creates Services `from..to` and their slices, `IN_FLIGHT` requests at
/// a time; returns how long it took.
pub async fn services(
    client: &Client,
    from: usize,
    to: usize,
    per_service: usize,
) -> Result<Duration, kube::Error> {
    let start = Instant::now();
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    stream::iter(from..to)
        .map(|i| {
            let (services, slices) = (services.clone(), slices.clone());
            async move {
                services.create(&PostParams::default(), &service(i)).await?;
                slices
                    .create(&PostParams::default(), &slice(i, per_service))
                    .await?;
                Ok::<(), kube::Error>(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(start.elapsed())
}

/// One endpoint change: Service `i`'s endpoint `j` replaced by generation
/// `generation`'s address, with kube-proxy's trigger-time annotation.
/// Returns when the request was sent (the API server commits after
/// that: the measured latencies are upper bounds).
pub async fn change(
    client: &Client,
    i: usize,
    per_service: usize,
    j: usize,
    generation: usize,
) -> Result<(Instant, SystemTime), kube::Error> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let sent = Instant::now();
    let wall = SystemTime::now();
    let trigger = chrono::DateTime::<chrono::Utc>::from(wall)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let patch = serde_json::json!({
        "metadata": { "annotations": { "endpoints.kubernetes.io/last-change-trigger-time": trigger } },
        "endpoints": endpoints(i, per_service, Some((j, generation))),
    });
    slices
        .patch(
            &format!("{}-bench", service_name(i)),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok((sent, wall))
}

/// The address a change of Service `i`'s endpoint `j` to `generation` adds.
pub fn changed_ip(i: usize, j: usize, generation: usize) -> Ipv4Addr {
    endpoint_ip(i, j, generation)
}
