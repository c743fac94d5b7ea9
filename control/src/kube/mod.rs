//! The router's watch of a Kubernetes API, as kube-proxy and flannel watch
//! it: Services, EndpointSlices, Nodes and this node's Pods, read with
//! kube-runtime's watcher and turned into the model's
//! [`ClusterChange`](cluster::ClusterChange)s.
//!
//! Three layers, pure to impure:
//!
//! * translation ([`translate_service`], [`translate_slice`],
//!   [`translate_node`], [`translate_pod`]): one `k8s-openapi` object into
//!   one model object, `Ok(None)` when the object is not for this router
//!   (another proxy's Service, an IPv6 one, a node without a pod CIDR or
//!   an address yet, a pod without an IP), a [`Skip`] naming the object
//!   and the field when it cannot be read;
//! * [`Mirror`]: what the router was told so far, per kind, turning
//!   watcher events (including a relist's `Init .. InitApply .. InitDone`)
//!   into exactly the changes that make the router's model equal the
//!   API's: an unchanged object is not sent again, a vanished one is
//!   deleted, another proxy's Service takes its slices with it;
//! * [`watch`]: the thread that runs the watchers on a current-thread
//!   tokio runtime of its own and sends the changes over a channel, so the
//!   router's event loop stays free of async code.

mod mirror;
mod node;
mod pod;
mod service;
mod skip;
mod slice;
pub mod watch;

pub use mirror::{Kind, Mirror, Received, Update};
pub use node::translate_node;
pub use pod::translate_pod;
pub use service::{translate_service, DEFAULT_AFFINITY_TIMEOUT, SERVICE_PROXY_NAME};
pub use skip::Skip;
pub use slice::{translate_slice, SERVICE_NAME_LABEL};
pub use watch::{spawn, trigger_time, WatchConfig, WatchError, WatchHandle, TRIGGER_TIME};

use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use cluster::{ObjectKey, Protocol};

/// An object's `namespace/name` from its metadata (`default` when the
/// namespace is absent, as for an object written without one).
pub(crate) fn meta_key(meta: &ObjectMeta) -> ObjectKey {
    ObjectKey::new(
        meta.namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        meta.name.clone().unwrap_or_default(),
    )
}

/// An address as the API writes it: `Some(v4)`, `None` for IPv6 (which
/// the router does not serve), a reason when it is neither.
pub(crate) fn ipv4_or_v6(text: &str) -> Result<Option<Ipv4Addr>, String> {
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(Some(ip)),
        Ok(IpAddr::V6(_)) => Ok(None),
        Err(_) => Err(format!("{text:?} is not an IP address")),
    }
}

/// A port's protocol: `Some` for TCP (the default) and UDP, `None` for
/// SCTP (the router does not carry it), a reason for anything else.
pub(crate) fn protocol(text: Option<&str>) -> Result<Option<Protocol>, String> {
    match text {
        None | Some("TCP") => Ok(Some(Protocol::Tcp)),
        Some("UDP") => Ok(Some(Protocol::Udp)),
        Some("SCTP") => Ok(None),
        Some(other) => Err(format!("{other:?} is not TCP, UDP or SCTP")),
    }
}

/// A port number from the API's `int32`.
pub(crate) fn port_number(value: i32) -> Result<u16, String> {
    match u16::try_from(value) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(format!("{value} is not a port number (1-65535)")),
    }
}

#[cfg(test)]
mod tests;
