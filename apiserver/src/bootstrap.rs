//! The objects every cluster has: the system namespaces and the
//! `kubernetes` Service (the first ClusterIP, 443 -> the API server's own
//! address) with its EndpointSlice.

use std::net::SocketAddr;

use serde_json::json;

use crate::api::Api;
use crate::resources::Resource;
use crate::status::ApiError;
use crate::store::{Change, ObjectKey};

/// The namespaces that may not be deleted (as the real API server refuses).
pub const PROTECTED: [&str; 3] = ["default", "kube-system", "kube-public"];

/// The namespaces created at start.
pub const NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates what is missing and points the `kubernetes` endpoints at
/// `advertise` (it may have moved since the last start).
pub fn ensure(api: &Api, advertise: SocketAddr) -> Result<(), ApiError> {
    let options = Api::internal();
    for ns in NAMESPACES {
        match api.create(
            Resource::Namespaces,
            None,
            json!({"metadata": {"name": ns}}),
            options,
        ) {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let ip = api.allocator_first_ip();
    let service = json!({
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": ip.to_string(),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": advertise.port()}]},
    });
    match api.create(Resource::Services, Some("default"), service, options) {
        Ok(_) => {}
        Err(e) if e.code == 409 => {}
        Err(e) => return Err(e),
    }
    let slice = json!({
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {
            "kubernetes.io/service-name": "kubernetes",
            "endpointslice.kubernetes.io/managed-by": "ksr-apiserver"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [advertise.ip().to_string()], "conditions": {"ready": true, "serving": true, "terminating": false}}],
        "ports": [{"name": "https", "port": advertise.port(), "protocol": "TCP"}],
    });
    let key = ObjectKey::new(Resource::EndpointSlices, "default", "kubernetes");
    api.store().modify(&key, |current| {
        let same = current.is_some_and(|c| {
            c.get("endpoints") == slice.get("endpoints") && c.get("ports") == slice.get("ports")
        });
        Ok(if same {
            Change::Keep
        } else {
            Change::Put(slice.clone())
        })
    })?;
    Ok(())
}
