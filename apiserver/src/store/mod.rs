//! The object store: objects by (resource, namespace, name) as JSON, one
//! global resourceVersion, the recent event history for watches, and a
//! durable [`Storage`] written before a change is visible or acknowledged.
//!
//! Writes go to the storage first; the cache (objects, history, live
//! events) is fed only by what the storage reports committed, in revision
//! order, like the real API server's watch cache over etcd.

mod cache;
mod embedded;
mod etcd;
mod etcd_server;
mod storage;

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use cache::Cache;
pub use embedded::{LogStorage, Record};
pub use etcd::EtcdStorage;
pub use etcd_server::EtcdServer;
pub use storage::{Committed, Loaded, MemoryStorage, Sink, Storage, StorageError};

use crate::resources::Resource;
use crate::status::ApiError;

/// Where an object lives. Cluster-scoped objects have an empty namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    /// The resource type.
    pub resource: Resource,
    /// The namespace, "" for cluster-scoped resources.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl ObjectKey {
    /// A key.
    pub fn new(resource: Resource, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            resource,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

impl EventType {
    /// The watch event `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// Added, modified or deleted.
    pub kind: EventType,
    /// The object's key.
    pub key: ObjectKey,
    /// The object after the change (the last state for a delete).
    pub object: Arc<Value>,
    /// The object before the change (None for a create); a filtered watch
    /// uses it to turn "no longer matches" into DELETED.
    pub previous: Option<Arc<Value>>,
}

/// What a read-modify-write closure decides.
#[derive(Debug)]
pub enum Change {
    /// Store this object (create or replace).
    Put(Value),
    /// Remove the object.
    Delete,
    /// Leave it as it is (a no-op update answers the current object).
    Keep,
}

/// The outcome of [`Store::modify`].
#[derive(Debug, Clone)]
pub enum Written {
    /// The object as stored, with whether it was created.
    Stored {
        /// The stored object.
        object: Arc<Value>,
        /// True for a create.
        created: bool,
    },
    /// The object that was removed.
    Deleted(Arc<Value>),
    /// Nothing changed; the current object if any.
    Unchanged(Option<Arc<Value>>),
}

/// The resourceVersion of an object's metadata.
pub fn object_rv(object: &Value) -> Option<u64> {
    object
        .pointer("/metadata/resourceVersion")?
        .as_str()?
        .parse()
        .ok()
}

/// The current time as Kubernetes writes timestamps.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A random RFC 4122 version 4 UID.
pub fn new_uid() -> String {
    let mut b = [0u8; 16];
    // Without entropy the UID is still unique enough for a lab: fall back
    // to the clock rather than refusing the write.
    if getrandom::fill(&mut b).is_err() {
        let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        b[..8].copy_from_slice(&t.to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The store: the watch cache over a durable storage, and the write path.
pub struct Store {
    cache: Arc<Cache>,
    storage: Box<dyn Storage>,
    writing: Writing,
}

/// How long a write waits for the cache to show it (etcd reports commits
/// through its watch, normally within milliseconds).
const CACHE_WAIT: Duration = Duration::from_secs(10);

impl Store {
    /// Loads the storage and serves from it; `history_limit` events are
    /// kept for watches from an older resourceVersion.
    pub fn open(
        mut storage: Box<dyn Storage>,
        history_limit: usize,
    ) -> Result<Store, StorageError> {
        let cache = Arc::new(Cache::new(history_limit));
        let loaded = storage.start(cache.clone())?;
        cache.load(loaded);
        Ok(Store {
            cache,
            storage,
            writing: Writing::default(),
        })
    }

    /// A store with no durability (tests).
    pub fn in_memory() -> Store {
        // MemoryStorage cannot fail to load.
        match Store::open(Box::<MemoryStorage>::default(), 10_000) {
            Ok(s) => s,
            Err(e) => unreachable!("memory storage failed: {e}"),
        }
    }

    /// The last committed resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.cache.lock().rv
    }

    /// One object.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<Value>> {
        self.cache.lock().objects.get(key).cloned()
    }

    /// The objects of a resource, in one namespace or all, with the
    /// resourceVersion of the snapshot.
    pub fn list(&self, resource: Resource, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let state = self.cache.lock();
        (Cache::scan(&state, resource, namespace), state.rv)
    }

    /// Atomically reads the object at `key`, lets `f` decide, stamps the
    /// metadata (uid, creationTimestamp, resourceVersion, generation),
    /// commits it to storage, and returns once it is durable and visible.
    /// Writes to one key take turns; writes to different keys go to the
    /// storage together (one fsync for all of them in the embedded log).
    /// A write that lost a race with another API server on the same etcd
    /// is a 409 Conflict.
    pub fn modify<F>(&self, key: &ObjectKey, f: F) -> Result<Written, ApiError>
    where
        F: FnOnce(Option<&Value>) -> Result<Change, ApiError>,
    {
        let _turn = blocking(|| self.writing.take_turn(key));
        let current = self.get(key);
        let expected = current.as_deref().map(|c| object_rv(c).unwrap_or(0));
        match f(current.as_deref())? {
            Change::Keep => Ok(Written::Unchanged(current)),
            Change::Delete => {
                let Some(old) = current else {
                    return Err(ApiError::not_found(key.resource, &key.name));
                };
                let rv = self.commit(key, expected, None)?;
                let mut last = (*old).clone();
                last["metadata"]["resourceVersion"] = json!(rv.to_string());
                Ok(Written::Deleted(Arc::new(last)))
            }
            Change::Put(mut object) => {
                stamp(&mut object, key, current.as_deref());
                let rv = self.commit(key, expected, Some(&object))?;
                object["metadata"]["resourceVersion"] = json!(rv.to_string());
                Ok(Written::Stored {
                    object: Arc::new(object),
                    created: current.is_none(),
                })
            }
        }
    }

    /// Commits one write and waits until the cache shows it.
    fn commit(
        &self,
        key: &ObjectKey,
        expected: Option<u64>,
        object: Option<&Value>,
    ) -> Result<u64, ApiError> {
        let rv = blocking(|| self.storage.commit(key, expected, object)).map_err(|e| match e {
            StorageError::Conflict(_) => ApiError::conflict(key.resource, &key.name),
            e => ApiError::internal(format!("storage: {e}")),
        })?;
        let state = blocking(|| self.cache.wait_for(rv, CACHE_WAIT));
        if state.rv < rv {
            log::warn!(
                "the write of {key:?} at {rv} is durable but not yet visible (cache at {})",
                state.rv
            );
        }
        Ok(rv)
    }

    /// Starts a watch of `resource` (all namespaces; the caller filters).
    /// From `Some(rv)`: the kept events after rv, or 410 Expired when rv is
    /// older than the history. From `None`: the current objects as
    /// synthetic ADDED events (the "0"/unset semantics).
    pub fn watch(&self, resource: Resource, from: Option<u64>) -> Result<WatchStart, ApiError> {
        self.cache.watch(resource, from)
    }

    /// Subscribes to every future event (the controllers).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.cache.subscribe()
    }
}

/// Runs `f`, which blocks on a lock, a condition or I/O: on a worker of a
/// multi-threaded tokio runtime (the API server's handlers and controllers
/// call the store synchronously), the runtime moves its other tasks to
/// another thread meanwhile, so many writes can wait for one fsync.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The keys with a write in flight: one write per key at a time, so each
/// reads the object its predecessor wrote.
#[derive(Default)]
struct Writing {
    keys: Mutex<HashSet<ObjectKey>>,
    done: Condvar,
}

/// A key's turn to be written; the next writer goes on when it drops.
struct Turn<'a> {
    writing: &'a Writing,
    key: ObjectKey,
}

impl Writing {
    fn take_turn(&self, key: &ObjectKey) -> Turn<'_> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        while keys.contains(key) {
            keys = self.done.wait(keys).unwrap_or_else(|p| p.into_inner());
        }
        keys.insert(key.clone());
        Turn {
            writing: self,
            key: key.clone(),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut keys = self.writing.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.remove(&self.key);
        self.writing.done.notify_all();
    }
}

/// The start of a watch: events to send first, then the live stream.
pub struct WatchStart {
    /// Events before the live stream.
    pub backlog: Vec<Arc<Event>>,
    /// Live events (filter by resource; skip rv <= `rv`, already covered).
    pub live: broadcast::Receiver<Arc<Event>>,
    /// The resourceVersion the backlog reaches.
    pub rv: u64,
}

/// Sets the server-owned metadata of an object about to be stored (the
/// storage assigns the resourceVersion).
fn stamp(object: &mut Value, key: &ObjectKey, current: Option<&Value>) {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    let resource = key.resource;
    let gv = resource.group_version();
    object["apiVersion"] = json!(gv.api_version());
    object["kind"] = json!(resource.kind());
    let meta = &mut object["metadata"];
    meta["name"] = json!(key.name);
    if resource.namespaced() {
        meta["namespace"] = json!(key.namespace);
    } else if let Some(m) = meta.as_object_mut() {
        m.remove("namespace");
    }
    if let Some(m) = meta.as_object_mut() {
        m.remove("resourceVersion");
    }
    match current {
        None => {
            meta["uid"] = json!(new_uid());
            meta["creationTimestamp"] = json!(now_rfc3339());
            if resource.has_generation() {
                meta["generation"] = json!(1);
            }
        }
        Some(old) => {
            let old_meta = &old["metadata"];
            meta["uid"] = old_meta["uid"].clone();
            meta["creationTimestamp"] = old_meta["creationTimestamp"].clone();
            if resource.has_generation() {
                let generation = old_meta["generation"].as_i64().unwrap_or(1);
                let spec_changed = old.get("spec") != object.get("spec");
                object["metadata"]["generation"] = json!(if spec_changed {
                    generation + 1
                } else {
                    generation
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
