//! [`Skip`]: why an object from the API could not be read.

use std::fmt;

use cluster::ObjectKey;

/// An object the router cannot read: it is treated as absent, logged and
/// counted, never a reason to stop. Names the object and the field, e.g.
/// `Service default/web: spec.ports[0].port: 70000 is not a port number (1-65535)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The object's kind (`Service`).
    pub kind: &'static str,
    /// The object (`default/web`; a node's name alone).
    pub object: String,
    /// The field's path (`spec.ports[0].port`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Skip {
    /// A skip of `kind` `object` for `field`.
    pub(crate) fn new(
        kind: &'static str,
        object: &ObjectKey,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let object = if object.namespace.is_empty() {
            object.name.clone()
        } else {
            object.to_string()
        };
        Self {
            kind,
            object,
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}: {}",
            self.kind, self.object, self.field, self.reason
        )
    }
}

impl std::error::Error for Skip {}
