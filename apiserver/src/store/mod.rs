//! The object store: objects by (resource, namespace, name) as JSON, one
//! global resourceVersion, the recent event history for watches, and a
//! durable [`Storage`] written before a change is visible or acknowledged.

mod storage;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::broadcast;

pub use storage::{Loaded, LogStorage, MemoryStorage, Record, Storage, StorageError};

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

struct State {
    rv: u64,
    objects: BTreeMap<ObjectKey, Arc<Value>>,
    history: VecDeque<Arc<Event>>,
    /// Watches from a resourceVersion below this cannot be served.
    oldest_rv: u64,
    storage: Box<dyn Storage>,
    /// Records written since the storage was last compacted.
    since_compaction: usize,
}

/// The in-memory store over a durable storage.
pub struct Store {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<Event>>,
    history_limit: usize,
    compact_after: usize,
}

/// Writes between two compactions of the storage, at least.
const COMPACT_AFTER: usize = 10_000;

/// How many events a live watcher may fall behind before it is dropped
/// (it then resumes from its last resourceVersion, or relists on 410).
const WATCH_BUFFER: usize = 16 * 1024;

impl Store {
    /// Loads the storage and serves from it; `history_limit` events are
    /// kept for watches from an older resourceVersion.
    pub fn open(
        mut storage: Box<dyn Storage>,
        history_limit: usize,
    ) -> Result<Store, StorageError> {
        let loaded = storage.load()?;
        let objects = loaded
            .objects
            .into_iter()
            .map(|(k, v)| (k, Arc::new(v)))
            .collect();
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        Ok(Store {
            state: Mutex::new(State {
                rv: loaded.rv,
                objects,
                history: VecDeque::new(),
                oldest_rv: loaded.rv,
                storage,
                since_compaction: 0,
            }),
            events,
            history_limit: history_limit.max(1),
            compact_after: COMPACT_AFTER,
        })
    }

    /// Compacts the storage after `writes` writes (at least four times the
    /// number of objects) instead of the default 10,000.
    pub fn with_compaction_after(mut self, writes: usize) -> Store {
        self.compact_after = writes;
        self
    }

    /// A store with no durability (tests).
    pub fn in_memory() -> Store {
        // MemoryStorage cannot fail to load.
        match Store::open(Box::new(MemoryStorage), 10_000) {
            Ok(s) => s,
            Err(e) => unreachable!("memory storage failed: {e}"),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (changes are
        // applied only after the storage commit), so go on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last committed resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<Value>> {
        self.lock().objects.get(key).cloned()
    }

    /// The objects of a resource, in one namespace or all, with the
    /// resourceVersion of the snapshot.
    pub fn list(&self, resource: Resource, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let state = self.lock();
        (Self::scan(&state, resource, namespace), state.rv)
    }

    fn scan(state: &State, resource: Resource, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let start = ObjectKey::new(resource, namespace.unwrap_or(""), "");
        state
            .objects
            .range(start..)
            .take_while(|(k, _)| {
                k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Atomically reads the object at `key`, lets `f` decide, stamps the
    /// metadata (uid, creationTimestamp, resourceVersion, generation),
    /// commits it to storage, and publishes the event.
    pub fn modify<F>(&self, key: &ObjectKey, f: F) -> Result<Written, ApiError>
    where
        F: FnOnce(Option<&Value>) -> Result<Change, ApiError>,
    {
        let mut state = self.lock();
        let current = state.objects.get(key).cloned();
        let change = f(current.as_deref())?;
        let rv = state.rv + 1;
        let (record, event) = match change {
            Change::Keep => return Ok(Written::Unchanged(current)),
            Change::Delete => {
                let Some(old) = current else {
                    return Err(ApiError::not_found(key.resource, &key.name));
                };
                let mut last = (*old).clone();
                last["metadata"]["resourceVersion"] = json!(rv.to_string());
                let event = Event {
                    rv,
                    kind: EventType::Deleted,
                    key: key.clone(),
                    object: Arc::new(last),
                    previous: Some(old),
                };
                (
                    Record::Delete {
                        rv,
                        key: key.clone(),
                    },
                    event,
                )
            }
            Change::Put(mut object) => {
                stamp(&mut object, key, current.as_deref(), rv);
                let kind = if current.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                let record = Record::Put {
                    rv,
                    key: key.clone(),
                    object: object.clone(),
                };
                let event = Event {
                    rv,
                    kind,
                    key: key.clone(),
                    object: Arc::new(object),
                    previous: current,
                };
                (record, event)
            }
        };
        state
            .storage
            .commit(&record)
            .map_err(|e| ApiError::internal(format!("storage: {e}")))?;
        state.rv = rv;
        state.since_compaction += 1;
        let event = Arc::new(event);
        let written = match event.kind {
            EventType::Deleted => {
                state.objects.remove(key);
                Written::Deleted(event.object.clone())
            }
            kind => {
                state.objects.insert(key.clone(), event.object.clone());
                Written::Stored {
                    object: event.object.clone(),
                    created: kind == EventType::Added,
                }
            }
        };
        state.history.push_back(event.clone());
        while state.history.len() > self.history_limit {
            if let Some(old) = state.history.pop_front() {
                state.oldest_rv = old.rv;
            }
        }
        // The log holds every write since the last compaction: rewrite it
        // as the live objects once it is several times their number. A
        // failed compaction leaves the old log, which is still complete.
        if state.since_compaction > self.compact_after.max(4 * state.objects.len()) {
            let State {
                rv,
                objects,
                storage,
                ..
            } = &mut *state;
            if let Err(e) = storage.compact(*rv, &mut objects.iter().map(|(k, v)| (k, v.as_ref())))
            {
                log::warn!("compacting the storage: {e}");
            }
            state.since_compaction = 0;
        }
        // Sent under the lock, so a watch that subscribes under the lock
        // sees every event after its snapshot exactly once. No receiver is
        // not an error.
        let _ = self.events.send(event);
        Ok(written)
    }

    /// Starts a watch of `resource` (all namespaces; the caller filters).
    /// From `Some(rv)`: the kept events after rv, or 410 Expired when rv is
    /// older than the history. From `None`: the current objects as
    /// synthetic ADDED events (the "0"/unset semantics).
    pub fn watch(&self, resource: Resource, from: Option<u64>) -> Result<WatchStart, ApiError> {
        let state = self.lock();
        let backlog = match from {
            Some(rv) if rv < state.oldest_rv => return Err(ApiError::expired(rv, state.oldest_rv)),
            Some(rv) if rv > state.rv => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersion {rv} is newer than the latest {}",
                    state.rv
                )))
            }
            Some(rv) => state
                .history
                .iter()
                .filter(|e| e.rv > rv && e.key.resource == resource)
                .cloned()
                .collect(),
            None => Self::scan(&state, resource, None)
                .into_iter()
                .map(|object| {
                    let meta = object.get("metadata");
                    let field = |f: &str| {
                        meta.and_then(|m| m.get(f))
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    };
                    Arc::new(Event {
                        rv: object_rv(&object).unwrap_or(state.rv),
                        kind: EventType::Added,
                        key: ObjectKey {
                            resource,
                            namespace: field("namespace"),
                            name: field("name"),
                        },
                        object,
                        previous: None,
                    })
                })
                .collect(),
        };
        Ok(WatchStart {
            backlog,
            live: self.events.subscribe(),
            rv: state.rv,
        })
    }

    /// Subscribes to every future event (the controllers).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
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

/// Sets the server-owned metadata of an object about to be stored.
fn stamp(object: &mut Value, key: &ObjectKey, current: Option<&Value>, rv: u64) {
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
    meta["resourceVersion"] = json!(rv.to_string());
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
