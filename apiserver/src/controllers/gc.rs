//! Garbage collection: objects whose controller owner is gone are deleted
//! (background propagation: a deleted Deployment takes its ReplicaSets,
//! they take their pods, a Service its EndpointSlices).

use serde_json::Value;

use super::{controller_of, Controllers};
use crate::api::name_of;
use crate::request::ObjectPath;
use crate::resources::Resource;
use crate::status::ApiError;

/// Deletes the objects in `namespace` owned by `uid` if no object has that
/// uid any more.
pub fn orphans(c: &Controllers, namespace: &str, uid: &str) -> Result<(), ApiError> {
    if uid.is_empty() {
        return Ok(());
    }
    let store = c.api.store();
    let owners = [
        Resource::Deployments,
        Resource::ReplicaSets,
        Resource::Services,
    ];
    let alive = owners.iter().any(|r| {
        store
            .list(*r, Some(namespace))
            .0
            .iter()
            .any(|o| o.pointer("/metadata/uid").and_then(Value::as_str) == Some(uid))
    });
    if alive {
        return Ok(());
    }
    for resource in [
        Resource::ReplicaSets,
        Resource::Pods,
        Resource::EndpointSlices,
    ] {
        for object in store.list(resource, Some(namespace)).0 {
            if controller_of(&object).is_some_and(|(_, _, u)| u == uid) {
                let path = ObjectPath {
                    resource,
                    namespace: Some(namespace.to_string()),
                    name: Some(name_of(&object).to_string()),
                    subresource: None,
                };
                match c.api.delete(&path, None) {
                    Ok(_) => {}
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}
