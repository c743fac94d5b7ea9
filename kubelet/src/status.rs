//! The pod status a kubelet reports, as merge patches of the status
//! subresource.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

/// RFC 3339 now, seconds precision (as the kubelet writes it).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Running, every container started and ready, the usual conditions, and
/// the pod's and node's IPs: what kubectl shows as `1/1 Running` and the
/// EndpointSlice controller as a ready endpoint.
pub fn running(containers: &[(String, String)], ip: Ipv4Addr, host_ip: Ipv4Addr) -> Value {
    let now = now();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|(name, image)| {
            json!({
                "name": name, "image": image, "imageID": "", "containerID": "",
                "ready": true, "started": true, "restartCount": 0,
                "state": { "running": { "startedAt": now } },
            })
        })
        .collect();
    let condition = |kind: &str| json!({ "type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": now });
    json!({
        "status": {
            "phase": "Running",
            "podIP": ip.to_string(),
            "podIPs": [{ "ip": ip.to_string() }],
            "hostIP": host_ip.to_string(),
            "hostIPs": [{ "ip": host_ip.to_string() }],
            "startTime": now,
            "containerStatuses": statuses,
            "conditions": [
                condition("PodReadyToStartContainers"),
                condition("Initialized"),
                condition("Ready"),
                condition("ContainersReady"),
                condition("PodScheduled"),
            ],
        }
    })
}
