//! Garbage collection: objects whose controller owner is gone are deleted
//! (background propagation: a deleted Deployment takes its ReplicaSets,
//! they take their pods, a Service its EndpointSlices).

use super::{controller_of, Controllers};
use crate::request::ObjectPath;
use crate::status::ApiError;

/// Deletes the dependents of `uid` if no owner has that uid any more.
pub fn orphans(c: &Controllers, _namespace: &str, uid: &str) -> Result<(), ApiError> {
    if uid.is_empty() || c.index.owner_alive(uid) {
        return Ok(());
    }
    for key in c.index.dependents(uid) {
        // The index may lag: delete only what still names this owner.
        let still_owned = c
            .api
            .store()
            .get(&key)
            .is_some_and(|o| controller_of(&o).is_some_and(|(_, _, u)| u == uid));
        if !still_owned {
            continue;
        }
        let path = ObjectPath {
            resource: key.resource,
            namespace: Some(key.namespace.clone()),
            name: Some(key.name.clone()),
            subresource: None,
        };
        match c.api.delete(&path, None) {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
