//! Durable storage behind the watch cache: the trait the embedded log and
//! etcd implement, and the storage without durability for tests.
//!
//! A storage is a small etcd: keys with the revision of their last write,
//! a compare-and-commit on that revision, and an ordered stream of every
//! committed change (its own and, for etcd, other API servers').

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::ObjectKey;

/// A committed change, as a storage reports it to the cache.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The revision of the change (the object's resourceVersion).
    pub rv: u64,
    /// Where.
    pub key: ObjectKey,
    /// The object with its `metadata.resourceVersion` set; None when deleted.
    pub object: Option<Arc<Value>>,
}

/// Where a storage reports what was committed: the watch cache.
pub trait Sink: Send + Sync {
    /// Changes committed after everything reported so far, in revision order.
    fn committed(&self, batch: Vec<Committed>);
    /// Everything stored now, when changes in between could not be
    /// followed one by one (etcd compacted them away): the cache takes the
    /// differences as events.
    fn reloaded(&self, loaded: Loaded);
}

/// What a storage holds at start: the live objects and the revision they are at.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The last revision ever committed.
    pub rv: u64,
    /// Live objects, each with its `metadata.resourceVersion` set.
    pub objects: Vec<(ObjectKey, Arc<Value>)>,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A record in the middle of the log does not parse.
    #[error("{path} line {line}: corrupt record: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The parse error.
        source: serde_json::Error,
    },
    /// etcd refused or could not be reached.
    #[error("etcd at {endpoint}: {message}")]
    Etcd {
        /// The `--etcd` URL.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// A value in etcd is not an object this server wrote.
    #[error("etcd key {key}: {message}")]
    BadValue {
        /// The etcd key.
        key: String,
        /// Why it does not decode.
        message: String,
    },
    /// An earlier write failed to become durable: the log's state on disk
    /// is unknown, so nothing more is written until a restart reads it back.
    #[error("storage failed earlier ({0}); restart the API server")]
    Failed(String),
    /// The object changed since it was read (another writer, e.g. a second
    /// API server on the same etcd): nothing was written.
    #[error("{0:?} was modified concurrently")]
    Conflict(ObjectKey),
}

/// Where committed changes go.
pub trait Storage: Send + Sync {
    /// Reads back everything committed, then reports every later commit
    /// (this server's and, for a shared storage, other servers') to
    /// `sink`, in revision order.
    fn start(&mut self, sink: Arc<dyn Sink>) -> Result<Loaded, StorageError>;

    /// Writes `object` at `key` (None: deletes it) if the key's last
    /// revision is still `expected` (None: the key is absent), else
    /// [`StorageError::Conflict`]. Returns the revision once the write is
    /// durable and was reported to the sink: the API server acknowledges a
    /// write after this.
    fn commit(
        &self,
        key: &ObjectKey,
        expected: Option<u64>,
        object: Option<&Value>,
    ) -> Result<u64, StorageError>;
}

/// Sets `metadata.resourceVersion`, as every stored object carries it.
pub(crate) fn with_rv(mut object: Value, rv: u64) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
    object
}

/// The revisions of the live keys, for compare-and-commit.
#[derive(Debug, Default)]
pub(crate) struct Revisions {
    /// The last revision assigned.
    pub rv: u64,
    live: HashMap<ObjectKey, u64>,
}

impl Revisions {
    /// Revisions from loaded objects.
    pub fn new(rv: u64, objects: &[(ObjectKey, Arc<Value>)]) -> Revisions {
        let live = objects
            .iter()
            .map(|(k, v)| (k.clone(), super::object_rv(v).unwrap_or(rv)))
            .collect();
        Revisions { rv, live }
    }

    /// Checks `expected` and assigns the next revision to the write.
    pub fn next(
        &mut self,
        key: &ObjectKey,
        expected: Option<u64>,
        deleted: bool,
    ) -> Result<u64, StorageError> {
        if self.live.get(key).copied() != expected {
            return Err(StorageError::Conflict(key.clone()));
        }
        self.rv += 1;
        if deleted {
            self.live.remove(key);
        } else {
            self.live.insert(key.clone(), self.rv);
        }
        Ok(self.rv)
    }
}

/// No durability: for tests and `--ephemeral`.
#[derive(Default)]
pub struct MemoryStorage {
    inner: Mutex<(Revisions, Option<Arc<dyn Sink>>)>,
}

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStorage")
    }
}

impl Storage for MemoryStorage {
    fn start(&mut self, sink: Arc<dyn Sink>) -> Result<Loaded, StorageError> {
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        inner.1 = Some(sink);
        Ok(Loaded::default())
    }

    fn commit(
        &self,
        key: &ObjectKey,
        expected: Option<u64>,
        object: Option<&Value>,
    ) -> Result<u64, StorageError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let rv = inner.0.next(key, expected, object.is_none())?;
        let committed = Committed {
            rv,
            key: key.clone(),
            object: object.map(|o| Arc::new(with_rv(o.clone(), rv))),
        };
        // Reported under the lock, so the sink sees revisions in order.
        if let Some(sink) = &inner.1 {
            sink.committed(vec![committed]);
        }
        Ok(rv)
    }
}
