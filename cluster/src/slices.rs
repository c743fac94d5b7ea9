//! EndpointSlices (`discovery.k8s.io/v1`) as the data plane needs them, and
//! how a Service port's endpoints are read from them the way kube-proxy
//! reads them.
//!
//! A cluster built from `config.toml` has no slices: its endpoints are
//! computed from the pods (what the EndpointSlice controller would
//! publish). A cluster watched from a Kubernetes API carries the slices the
//! API server published and no selector evaluation happens here, exactly
//! as kube-proxy never looks at pods.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::{Endpoint, ObjectKey, Protocol, ServicePort};

/// One EndpointSlice of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EndpointSlice {
    /// The slice's own namespace and name.
    pub key: ObjectKey,
    /// The Service it belongs to (label `kubernetes.io/service-name`), in
    /// the slice's namespace.
    pub service: String,
    /// The ports every endpoint of this slice serves.
    pub ports: Vec<EndpointPort>,
    /// The endpoints (IPv4 only; the router is IPv4-only).
    pub endpoints: Vec<SliceEndpoint>,
}

impl EndpointSlice {
    /// The key of the Service this slice belongs to.
    pub fn service_key(&self) -> ObjectKey {
        ObjectKey::new(self.key.namespace.clone(), self.service.clone())
    }
}

/// A port of an EndpointSlice: the Service port it serves (by name) and
/// the number on the endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EndpointPort {
    /// The Service port's name (`None` for an unnamed port).
    pub name: Option<String>,
    /// The port number on every endpoint of the slice.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// One endpoint (one pod's address) of a slice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SliceEndpoint {
    /// The address.
    pub ip: Ipv4Addr,
    /// `nodeName`, when the slice says where the endpoint runs.
    pub node: Option<String>,
    /// The pod (`targetRef.name`), when the endpoint is a pod.
    pub pod: Option<String>,
    /// `conditions`.
    pub conditions: EndpointConditions,
}

/// An endpoint's `conditions`, with Kubernetes' defaults for absent ones
/// (`ready` and `serving` true, `terminating` false).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EndpointConditions {
    /// Ready for new connections.
    pub ready: bool,
    /// Serving (ready or not, e.g. while terminating).
    pub serving: bool,
    /// Being deleted.
    pub terminating: bool,
}

impl Default for EndpointConditions {
    fn default() -> Self {
        Self {
            ready: true,
            serving: true,
            terminating: false,
        }
    }
}

/// The endpoints of Service port `port` in `slices` (the Service's slices),
/// sorted by IP, as kube-proxy chooses them: the ready endpoints; when
/// there are none, the ones that are serving while terminating (so a
/// rolling update or a drained node does not drop connections that could
/// still be served). A slice port matches by name and protocol.
pub fn slice_endpoints<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    port: &ServicePort,
) -> Vec<Endpoint> {
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    for slice in slices {
        let Some(number) = slice
            .ports
            .iter()
            .find(|p| p.protocol == port.protocol && p.name == port.name)
            .map(|p| p.port)
        else {
            continue;
        };
        for e in &slice.endpoints {
            let endpoint = Endpoint {
                ip: e.ip,
                port: number,
                pod: e.pod.clone().unwrap_or_else(|| e.ip.to_string()),
                node: e.node.clone().unwrap_or_default(),
            };
            if e.conditions.ready {
                ready.push(endpoint);
            } else if e.conditions.serving && e.conditions.terminating {
                terminating.push(endpoint);
            }
        }
    }
    let mut out = if ready.is_empty() { terminating } else { ready };
    out.sort_by(|a, b| (a.ip, a.port, &a.pod).cmp(&(b.ip, b.port, &b.pod)));
    out.dedup_by(|a, b| a.ip == b.ip && a.port == b.port);
    out
}
