//! Controllers run in the API server process, as kube-controller-manager,
//! the scheduler and (for the lab, optionally) a stand-in kubelet would.
//!
//! One task watches every store event, turns it into the keys of the
//! objects to reconcile (a Pod event: its ReplicaSet, the Services that
//! select it, itself for scheduling), and reconciles them one at a time.
//! Every reconcile is level-based and idempotent, and writes only what
//! differs, so its own writes coming back as events settle at once.

mod endpoints;
mod gc;
mod index;
mod rollout;
mod scheduler;
mod workloads;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::api::{name_of, Api};
use crate::resources::Resource;
use crate::status::ApiError;
use crate::store::{Change, Event, EventType, ObjectKey};

/// Controller settings.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Run the controllers at all.
    pub enabled: bool,
    /// Play the kubelets' part (pods Running and Ready once bound, nodes
    /// Ready, terminating pods removed after this delay); None when real
    /// kubelets report.
    pub kubelet_standin: Option<Duration>,
}

impl Default for ControllerConfig {
    fn default() -> ControllerConfig {
        ControllerConfig {
            enabled: true,
            kubelet_standin: Some(Duration::from_millis(500)),
        }
    }
}

/// What to reconcile.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    /// A Deployment: its ReplicaSets and status.
    Deployment(ObjectKey),
    /// A ReplicaSet: its pods and status.
    ReplicaSet(ObjectKey),
    /// A Pod: scheduling, IP, the stand-in kubelet.
    Pod(ObjectKey),
    /// A Node: the stand-in kubelet's Ready condition, pending pods.
    Node(ObjectKey),
    /// A Service: its EndpointSlice.
    Service(ObjectKey),
    /// The Endpoints of a Service name (from its slices).
    Endpoints(ObjectKey),
    /// Objects owned by a deleted object's uid.
    Orphans(String, String),
}

/// The shared state of the controllers.
pub(crate) struct Controllers {
    api: Arc<Api>,
    config: ControllerConfig,
    ipam: scheduler::Ipam,
    index: index::Index,
}

/// Starts the controllers (none when disabled).
pub fn spawn(api: Arc<Api>, config: ControllerConfig) -> Vec<JoinHandle<()>> {
    if !config.enabled {
        return Vec::new();
    }
    let mut events = api.store().subscribe();
    let mut c = Controllers {
        api,
        config,
        ipam: scheduler::Ipam::default(),
        index: index::Index::default(),
    };
    vec![tokio::spawn(async move {
        let mut queue = BTreeSet::new();
        c.resync(&mut queue);
        loop {
            while let Some(work) = queue.pop_first() {
                if let Err(e) = c.reconcile(&work) {
                    // A conflict means a newer event is on its way; other
                    // errors are retried on the next event for the object.
                    if e.code != 409 {
                        log::warn!("controller {work:?}: {}", e.message);
                    }
                }
                drain(&mut events, &mut queue, &mut c);
            }
            match events.recv().await {
                Ok(event) => c.route(&event, &mut queue),
                Err(RecvError::Lagged(_)) => c.resync(&mut queue),
                Err(RecvError::Closed) => return,
            }
        }
    })]
}

/// Moves the events already waiting into the queue.
fn drain(
    events: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    queue: &mut BTreeSet<Work>,
    c: &mut Controllers,
) {
    loop {
        match events.try_recv() {
            Ok(event) => c.route(&event, queue),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => c.resync(queue),
            Err(_) => return,
        }
    }
}

/// The key of a stored object.
fn key_of(resource: Resource, object: &Value) -> ObjectKey {
    ObjectKey::new(resource, namespace_of(object), name_of(object))
}

/// `metadata.namespace`.
fn namespace_of(object: &Value) -> &str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.uid`.
fn uid_of(object: &Value) -> &str {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The controller owner reference of an object, as (kind, name, uid).
fn controller_of(object: &Value) -> Option<(&str, &str, &str)> {
    object
        .pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or(""),
                r["uid"].as_str().unwrap_or(""),
            )
        })
}

/// An owner reference to `owner` marking it the controller.
fn owner_reference(resource: Resource, owner: &Value) -> Value {
    json!([{
        "apiVersion": resource.group_version().api_version(),
        "kind": resource.kind(),
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

/// Whether a pod is being deleted.
fn terminating(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

impl Controllers {
    /// Rebuilds the indexes and queues every object (at start, or after
    /// missing events).
    fn resync(&mut self, queue: &mut BTreeSet<Work>) {
        let store = self.api.store().clone();
        self.index = index::Index::default();
        let mut all = Vec::new();
        for resource in Resource::ALL {
            for object in store.list(resource, None).0 {
                let key = key_of(resource, &object);
                self.index.update(&key, None, Some(&object));
                all.push((key, object));
            }
        }
        for (key, object) in &all {
            let service = || ObjectKey::new(Resource::Services, &key.namespace, &key.name);
            match key.resource {
                Resource::Deployments => queue.insert(Work::Deployment(key.clone())),
                Resource::ReplicaSets => queue.insert(Work::ReplicaSet(key.clone())),
                Resource::Nodes => queue.insert(Work::Node(key.clone())),
                Resource::Pods => queue.insert(Work::Pod(key.clone())),
                Resource::Services => {
                    queue.insert(Work::Endpoints(service()));
                    queue.insert(Work::Service(service()))
                }
                Resource::Endpoints => queue.insert(Work::Endpoints(service())),
                Resource::Namespaces | Resource::EndpointSlices => false,
            };
            if let Some((_, _, uid)) = controller_of(object) {
                if !self.index.owner_alive(uid) {
                    queue.insert(Work::Orphans(key.namespace.clone(), uid.to_string()));
                }
            }
        }
    }

    /// The work an event causes.
    fn route(&mut self, event: &Event, queue: &mut BTreeSet<Work>) {
        let key = &event.key;
        let object = &event.object;
        let ns = key.namespace.as_str();
        match event.kind {
            EventType::Deleted => {
                let old = event.previous.as_deref().unwrap_or(object);
                self.index.update(key, Some(old), None);
            }
            _ => self
                .index
                .update(key, event.previous.as_deref(), Some(object)),
        }
        if event.kind == EventType::Deleted {
            queue.insert(Work::Orphans(ns.to_string(), uid_of(object).to_string()));
        }
        match key.resource {
            Resource::Deployments => {
                queue.insert(Work::Deployment(key.clone()));
            }
            Resource::ReplicaSets => {
                queue.insert(Work::ReplicaSet(key.clone()));
                if let Some(("Deployment", name, _)) = controller_of(object) {
                    queue.insert(Work::Deployment(ObjectKey::new(
                        Resource::Deployments,
                        ns,
                        name,
                    )));
                }
            }
            Resource::Pods => {
                queue.insert(Work::Pod(key.clone()));
                for version in std::iter::once(object).chain(event.previous.iter()) {
                    if let Some(("ReplicaSet", name, _)) = controller_of(version) {
                        queue.insert(Work::ReplicaSet(ObjectKey::new(
                            Resource::ReplicaSets,
                            ns,
                            name,
                        )));
                    }
                }
                let labels = [Some(object.as_ref()), event.previous.as_deref()];
                for version in labels.into_iter().flatten() {
                    for svc in self
                        .index
                        .services_selecting(ns, version.pointer("/metadata/labels"))
                    {
                        queue.insert(Work::Service(ObjectKey::new(Resource::Services, ns, &svc)));
                    }
                }
            }
            Resource::Nodes => {
                queue.insert(Work::Node(key.clone()));
                for pod in self.index.unbound() {
                    queue.insert(Work::Pod(pod));
                }
            }
            Resource::Services => {
                queue.insert(Work::Service(key.clone()));
                queue.insert(Work::Endpoints(key.clone()));
            }
            Resource::EndpointSlices => {
                let labels = [object.as_ref()]
                    .into_iter()
                    .chain(event.previous.as_deref());
                for version in labels {
                    if let Some(svc) = version
                        .pointer("/metadata/labels/kubernetes.io~1service-name")
                        .and_then(Value::as_str)
                    {
                        queue.insert(Work::Endpoints(ObjectKey::new(Resource::Services, ns, svc)));
                    }
                }
            }
            Resource::Namespaces | Resource::Endpoints => {}
        }
    }

    fn reconcile(&mut self, work: &Work) -> Result<(), ApiError> {
        match work {
            Work::Deployment(key) => workloads::deployment(self, key),
            Work::ReplicaSet(key) => workloads::replicaset(self, key),
            Work::Pod(key) => scheduler::pod(self, key),
            Work::Node(key) => scheduler::node(self, key),
            Work::Service(key) => endpoints::slices(self, key),
            Work::Endpoints(key) => endpoints::endpoints(self, key),
            Work::Orphans(ns, uid) => gc::orphans(self, ns, uid),
        }
    }

    /// Sets an object's `.status` when it differs (controller-owned, so
    /// written straight to the store).
    fn set_status(&self, key: &ObjectKey, status: Value) -> Result<(), ApiError> {
        self.api
            .store()
            .modify(key, |current| {
                let Some(current) = current else {
                    return Ok(Change::Keep);
                };
                if current.get("status") == Some(&status) {
                    return Ok(Change::Keep);
                }
                let mut next = current.clone();
                next["status"] = status;
                Ok(Change::Put(next))
            })
            .map(|_| ())
    }
}
