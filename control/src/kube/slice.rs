//! A `discovery.k8s.io/v1` EndpointSlice into a [`cluster::EndpointSlice`],
//! as kube-proxy reads it.

use k8s_openapi::api::discovery::v1 as k8s;

use cluster::{EndpointConditions, EndpointPort, EndpointSlice, SliceEndpoint};

use super::{ipv4_or_v6, meta_key, port_number, protocol, Skip, SERVICE_PROXY_NAME};

/// The label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

const KIND: &str = "EndpointSlice";

/// The router's view of `slice`: `Ok(None)` for a slice that is not the
/// router's (addressType other than IPv4, no [`SERVICE_NAME_LABEL`], or
/// labelled [`SERVICE_PROXY_NAME`] as kube-proxy's selector leaves out),
/// a [`Skip`] when a field cannot be read. Ports without a number and SCTP
/// ports are left out; an endpoint's first address is its address, as
/// kube-proxy takes it, and absent conditions get Kubernetes' defaults.
pub fn translate_slice(slice: &k8s::EndpointSlice) -> Result<Option<EndpointSlice>, Skip> {
    let key = meta_key(&slice.metadata);
    let labels = slice.metadata.labels.as_ref();
    let label = |name: &str| labels.and_then(|l| l.get(name));
    if slice.address_type != "IPv4" || label(SERVICE_PROXY_NAME).is_some() {
        return Ok(None);
    }
    let Some(service) = label(SERVICE_NAME_LABEL).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let skip = |field: String, reason: String| Skip::new(KIND, &key, field, reason);

    let mut ports = Vec::new();
    for (i, p) in slice.ports.iter().flatten().enumerate() {
        let Some(protocol) =
            protocol(p.protocol.as_deref()).map_err(|r| skip(format!("ports[{i}].protocol"), r))?
        else {
            continue;
        };
        let Some(number) = p.port else {
            continue;
        };
        let port = port_number(number).map_err(|r| skip(format!("ports[{i}].port"), r))?;
        ports.push(EndpointPort {
            name: p.name.clone().filter(|n| !n.is_empty()),
            port,
            protocol,
        });
    }

    let mut endpoints = Vec::new();
    for (i, e) in slice.endpoints.iter().enumerate() {
        let Some(text) = e.addresses.first() else {
            continue;
        };
        let ip = ipv4_or_v6(text)
            .map_err(|r| skip(format!("endpoints[{i}].addresses[0]"), r))?
            .ok_or_else(|| {
                skip(
                    format!("endpoints[{i}].addresses[0]"),
                    format!("{text:?} is IPv6 in an IPv4 slice"),
                )
            })?;
        let c = e.conditions.clone().unwrap_or_default();
        let defaults = EndpointConditions::default();
        endpoints.push(SliceEndpoint {
            ip,
            node: e.node_name.clone(),
            pod: e.target_ref.as_ref().and_then(|r| r.name.clone()),
            conditions: EndpointConditions {
                ready: c.ready.unwrap_or(defaults.ready),
                serving: c.serving.unwrap_or(defaults.serving),
                terminating: c.terminating.unwrap_or(defaults.terminating),
            },
        });
    }

    Ok(Some(EndpointSlice {
        service: service.clone(),
        key,
        ports,
        endpoints,
    }))
}
