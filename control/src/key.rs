//! Object keys: what identifies a Deployment, pod or Service within its
//! kind, as Kubernetes' `namespace/name`.

use cluster::{Deployment, Pod, Service};

use crate::deployments::PodPlan;
use crate::error::cut;
use crate::schema::{RawDeployment, RawPod, RawService, DEFAULT_NAMESPACE};

pub use cluster::ObjectKey;

/// How errors name the object with `key` whose key-path prefix is
/// `label`: `services[1] "default/web"`, long parts cut (see
/// [`crate::error::Shown`]).
pub(crate) fn describe(label: &str, key: &ObjectKey) -> String {
    format!("{label} \"{}/{}\"", cut(&key.namespace), cut(&key.name))
}

/// A namespaced object, raw or validated.
pub(crate) trait Keyed {
    /// The namespace (`default` when a raw object names none).
    fn namespace(&self) -> &str;
    /// The name.
    fn name(&self) -> &str;
    /// Both, as a key.
    fn key(&self) -> ObjectKey {
        ObjectKey::new(self.namespace(), self.name())
    }
    /// Whether this object is the one `key` names.
    fn has_key(&self, key: &ObjectKey) -> bool {
        self.namespace() == key.namespace && self.name() == key.name
    }
}

impl Keyed for Deployment {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Keyed for Pod {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Keyed for Service {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Keyed for PodPlan {
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Keyed for RawDeployment {
    fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Keyed for RawPod {
    fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Keyed for RawService {
    fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }
    fn name(&self) -> &str {
        &self.name
    }
}
