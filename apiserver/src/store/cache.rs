//! The watch cache: the committed objects, the recent events for watches
//! from an older resourceVersion, and the live event stream, all fed only
//! by what the storage reports as committed (so a second API server on the
//! same etcd sees the same objects and events).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::storage::{Committed, Loaded, Sink};
use super::{object_rv, Event, EventType, ObjectKey, WatchStart};
use crate::resources::Resource;
use crate::status::ApiError;

/// How many events a live watcher may fall behind before it is dropped
/// (it then resumes from its last resourceVersion, or relists on 410).
const WATCH_BUFFER: usize = 16 * 1024;

pub(super) struct State {
    pub rv: u64,
    pub objects: BTreeMap<ObjectKey, Arc<Value>>,
    history: VecDeque<Arc<Event>>,
    /// Watches from a resourceVersion below this cannot be served.
    oldest_rv: u64,
    /// Changes reported before the snapshot they follow was loaded (etcd's
    /// watch starts as the storage starts): applied after it.
    early: Option<Vec<Committed>>,
}

/// The committed state shared by the store and its storage's sink.
pub(super) struct Cache {
    state: Mutex<State>,
    /// Notified whenever `rv` advances.
    advanced: Condvar,
    events: broadcast::Sender<Arc<Event>>,
    history_limit: usize,
}

impl Cache {
    pub fn new(history_limit: usize) -> Cache {
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        Cache {
            state: Mutex::new(State {
                rv: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                oldest_rv: 0,
                early: Some(Vec::new()),
            }),
            advanced: Condvar::new(),
            events,
            history_limit: history_limit.max(1),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // Changes are applied whole under the lock; a panic elsewhere
        // leaves consistent data, so go on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fills the cache from what the storage loaded at start.
    pub fn load(&self, loaded: Loaded) {
        let mut state = self.lock();
        state.rv = loaded.rv;
        state.oldest_rv = loaded.rv;
        state.objects = loaded.objects.into_iter().collect();
        let early = state.early.take().unwrap_or_default();
        self.apply(&mut state, early);
    }

    /// Applies committed changes in order and publishes their events.
    fn apply(&self, state: &mut State, batch: Vec<Committed>) {
        for c in batch {
            // What the snapshot already holds (several changes of one etcd
            // transaction, or of a reload, share a revision).
            if c.rv < state.rv {
                continue;
            }
            let previous = state.objects.get(&c.key).cloned();
            let (kind, object) = match (c.object, previous.as_ref()) {
                (Some(object), None) => (EventType::Added, object),
                (Some(object), Some(_)) => (EventType::Modified, object),
                (None, Some(old)) => {
                    let mut last = (**old).clone();
                    last["metadata"]["resourceVersion"] = json!(c.rv.to_string());
                    (EventType::Deleted, Arc::new(last))
                }
                (None, None) => {
                    state.rv = c.rv;
                    continue;
                }
            };
            if kind == EventType::Deleted {
                state.objects.remove(&c.key);
            } else {
                state.objects.insert(c.key.clone(), object.clone());
            }
            state.rv = c.rv;
            let event = Arc::new(Event {
                rv: c.rv,
                kind,
                key: c.key,
                object,
                previous,
            });
            state.history.push_back(event.clone());
            while state.history.len() > self.history_limit {
                if let Some(old) = state.history.pop_front() {
                    state.oldest_rv = old.rv;
                }
            }
            // Sent under the lock, so a watch that subscribes under the
            // lock sees every event after its snapshot exactly once. No
            // receiver is not an error.
            let _ = self.events.send(event);
        }
        self.advanced.notify_all();
    }

    /// The events that turn the cached objects into `loaded`'s, in
    /// revision order: changed objects at their own revision, removed ones
    /// at the reload's.
    fn differences(state: &State, loaded: Loaded) -> Vec<Committed> {
        let mut now: BTreeMap<ObjectKey, Arc<Value>> = loaded.objects.into_iter().collect();
        let mut batch: Vec<Committed> = state
            .objects
            .keys()
            .filter(|key| !now.contains_key(*key))
            .map(|key| Committed {
                rv: loaded.rv,
                key: key.clone(),
                object: None,
            })
            .collect();
        now.retain(|key, object| {
            state.objects.get(key).and_then(|o| object_rv(o)) != object_rv(object)
        });
        batch.extend(now.into_iter().map(|(key, object)| Committed {
            rv: object_rv(&object).unwrap_or(loaded.rv),
            key,
            object: Some(object),
        }));
        batch.sort_by_key(|c| c.rv);
        batch
    }

    /// Waits (at most `timeout`) until the cache has reached `rv`; returns
    /// the state either way.
    pub fn wait_for(&self, rv: u64, timeout: Duration) -> MutexGuard<'_, State> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.rv < rv {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .advanced
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state
    }

    pub fn scan(state: &State, resource: Resource, namespace: Option<&str>) -> Vec<Arc<Value>> {
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

    /// Starts a watch; see [`super::Store::watch`].
    pub fn watch(&self, resource: Resource, from: Option<u64>) -> Result<WatchStart, ApiError> {
        // A resourceVersion from another API server on the same etcd may be
        // a little ahead of this one's cache: wait for it, as the real API
        // server does, before calling it too new.
        let state = match from {
            Some(rv) => super::blocking(|| self.wait_for(rv, Duration::from_secs(3))),
            None => self.lock(),
        };
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
            None => state
                .objects
                .range(ObjectKey::new(resource, "", "")..)
                .take_while(|(k, _)| k.resource == resource)
                .map(|(key, object)| {
                    Arc::new(Event {
                        rv: object_rv(object).unwrap_or(state.rv),
                        kind: EventType::Added,
                        key: key.clone(),
                        object: object.clone(),
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

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }
}

impl Sink for Cache {
    fn committed(&self, batch: Vec<Committed>) {
        let mut state = self.lock();
        match state.early.as_mut() {
            Some(early) => early.extend(batch),
            None => self.apply(&mut state, batch),
        }
    }

    fn reloaded(&self, loaded: Loaded) {
        let mut state = self.lock();
        if state.early.is_some() {
            // Not started yet: the load at start follows.
            return;
        }
        let rv = loaded.rv;
        let batch = Cache::differences(&state, loaded);
        self.apply(&mut state, batch);
        state.rv = state.rv.max(rv);
        // The events in between are gone: watches from before the reload
        // relist (410) rather than miss them.
        state.oldest_rv = state.oldest_rv.max(rv);
        state.history.clear();
        self.advanced.notify_all();
    }
}
