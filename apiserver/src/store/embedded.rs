//! The embedded storage: an append-only log of JSON lines in a data
//! directory, compacted at start and while serving.
//!
//! Group commit: writers queue their records and wait; one writer thread
//! appends everything queued since its last fsync in one write and makes
//! it durable with one fsync, then acknowledges the whole batch. A write
//! is acknowledged only after the fsync that covers it, and writes that
//! arrive during an fsync share the next one instead of waiting for one
//! each.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::storage::{with_rv, Committed, Loaded, Revisions, Sink, Storage, StorageError};
use super::ObjectKey;

/// One line of the log: a committed change, in resourceVersion order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// The object at `key` is now `object` (create or update).
    Put {
        /// The resourceVersion of the write.
        rv: u64,
        /// Where.
        key: ObjectKey,
        /// The whole object as stored.
        object: Value,
    },
    /// The object at `key` is gone.
    Delete {
        /// The resourceVersion of the delete.
        rv: u64,
        /// Where.
        key: ObjectKey,
    },
}

/// [`Record`] by reference, for writing without copying the object.
#[derive(Serialize)]
enum RecordRef<'a> {
    Put {
        rv: u64,
        key: &'a ObjectKey,
        object: &'a Value,
    },
    Delete {
        rv: u64,
        key: &'a ObjectKey,
    },
}

/// The header line of a compacted log: the resourceVersion reached, so
/// resourceVersions never go back even when the last objects were deleted.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    rv: u64,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Line {
    Record(Record),
    Header(Header),
}

/// Writes between two compactions of the log, at least.
const COMPACT_AFTER: usize = 10_000;

/// The embedded default storage.
pub struct LogStorage {
    path: PathBuf,
    compact_after: usize,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LogStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogStorage({})", self.path.display())
    }
}

/// What writers and the writer thread share.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// The writer thread waits here for records.
    work: Condvar,
    /// Writers wait here for their fsync.
    durable: Condvar,
}

#[derive(Default)]
struct Queue {
    revisions: Revisions,
    /// Records waiting for the writer thread.
    queued: Vec<Committed>,
    /// Every revision up to this one is on disk.
    durable: u64,
    /// Why the log stopped taking writes.
    failed: Option<String>,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LogStorage {
    /// The log in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<LogStorage, StorageError> {
        fs::create_dir_all(dir).map_err(|source| StorageError::Io {
            path: dir.into(),
            source,
        })?;
        Ok(LogStorage {
            path: dir.join("objects.log"),
            compact_after: COMPACT_AFTER,
            shared: Arc::default(),
            writer: None,
        })
    }

    /// Compacts the log after `writes` writes (at least four times the
    /// number of objects) instead of the default 10,000.
    pub fn with_compaction_after(mut self, writes: usize) -> LogStorage {
        self.compact_after = writes;
        self
    }

    fn io(&self, source: io::Error) -> StorageError {
        io_error(&self.path, source)
    }

    /// Reads the log: the live objects and the last revision.
    fn read(&self) -> Result<Loaded, StorageError> {
        let mut objects = BTreeMap::new();
        let mut rv = 0;
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
            Err(e) => return Err(self.io(e)),
        };
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| self.io(e))?;
        let last = lines.len();
        for (i, text) in lines.iter().enumerate() {
            match serde_json::from_str::<Line>(text) {
                Ok(Line::Header(h)) => rv = rv.max(h.rv),
                Ok(Line::Record(Record::Put { rv: r, key, object })) => {
                    rv = rv.max(r);
                    objects.insert(key, Arc::new(with_rv(object, r)));
                }
                Ok(Line::Record(Record::Delete { rv: r, key })) => {
                    rv = rv.max(r);
                    objects.remove(&key);
                }
                // A torn last line is a write that was never acknowledged
                // (the fsync did not return): drop it.
                Err(_) if i + 1 == last => {
                    log::warn!("{}: dropping a torn last record", self.path.display())
                }
                Err(source) => {
                    return Err(StorageError::Corrupt {
                        path: self.path.clone(),
                        line: i + 1,
                        source,
                    })
                }
            }
        }
        Ok(Loaded {
            rv,
            objects: objects.into_iter().collect(),
        })
    }
}

fn io_error(path: &Path, source: io::Error) -> StorageError {
    StorageError::Io {
        path: path.into(),
        source,
    }
}

/// Writes the live objects as a fresh log beside the old one, then
/// renames it over: a crash leaves either the old or the new log. Returns
/// the new log, open for appending.
fn rewrite<'a>(
    path: &Path,
    rv: u64,
    objects: impl Iterator<Item = (&'a ObjectKey, &'a Arc<Value>)>,
) -> Result<File, StorageError> {
    let io = |e| io_error(path, e);
    let tmp = path.with_extension("log.tmp");
    let mut out = io::BufWriter::new(File::create(&tmp).map_err(io)?);
    let mut write = |line: Vec<u8>| -> io::Result<()> {
        out.write_all(&line)?;
        out.write_all(b"\n")
    };
    write(serde_json::to_vec(&Header { rv }).unwrap_or_default()).map_err(io)?;
    for (key, object) in objects {
        let record = RecordRef::Put {
            rv: super::object_rv(object).unwrap_or(rv),
            key,
            object,
        };
        write(serde_json::to_vec(&record).unwrap_or_default()).map_err(io)?;
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    OpenOptions::new().append(true).open(path).map_err(io)
}

impl Storage for LogStorage {
    fn start(&mut self, sink: Arc<dyn Sink>) -> Result<Loaded, StorageError> {
        let loaded = self.read()?;
        let objects: BTreeMap<ObjectKey, Arc<Value>> = loaded.objects.iter().cloned().collect();
        let file = rewrite(&self.path, loaded.rv, objects.iter())?;
        {
            let mut queue = self.shared.lock();
            queue.revisions = Revisions::new(loaded.rv, &loaded.objects);
            queue.durable = loaded.rv;
        }
        let writer = Writer {
            path: self.path.clone(),
            file,
            objects,
            rv: loaded.rv,
            since_compaction: 0,
            compact_after: self.compact_after,
            sink,
            shared: self.shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("ksr-store-log".into())
            .spawn(move || writer.run())
            .map_err(|e| self.io(e))?;
        self.writer = Some(thread);
        Ok(loaded)
    }

    fn commit(
        &self,
        key: &ObjectKey,
        expected: Option<u64>,
        object: Option<&Value>,
    ) -> Result<u64, StorageError> {
        let mut queue = self.shared.lock();
        if let Some(why) = &queue.failed {
            return Err(StorageError::Failed(why.clone()));
        }
        if self.writer.is_none() {
            return Err(self.io(io::Error::other("log not loaded")));
        }
        let rv = queue.revisions.next(key, expected, object.is_none())?;
        queue.queued.push(Committed {
            rv,
            key: key.clone(),
            object: object.map(|o| Arc::new(with_rv(o.clone(), rv))),
        });
        self.shared.work.notify_one();
        while queue.durable < rv && queue.failed.is_none() {
            queue = self
                .shared
                .durable
                .wait(queue)
                .unwrap_or_else(|p| p.into_inner());
        }
        match &queue.failed {
            Some(why) if queue.durable < rv => Err(StorageError::Failed(why.clone())),
            _ => Ok(rv),
        }
    }
}

impl Drop for LogStorage {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.writer.take() {
            // Every acknowledged write is on disk already; this only waits
            // for the thread to let go of the file.
            let _ = thread.join();
        }
    }
}

/// The writer thread: the only one that touches the file after start.
struct Writer {
    path: PathBuf,
    file: File,
    /// The live objects on disk, for compaction.
    objects: BTreeMap<ObjectKey, Arc<Value>>,
    rv: u64,
    since_compaction: usize,
    compact_after: usize,
    sink: Arc<dyn Sink>,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self) {
        loop {
            let batch = {
                let mut queue = self.shared.lock();
                while queue.queued.is_empty() && !queue.stop {
                    queue = self
                        .shared
                        .work
                        .wait(queue)
                        .unwrap_or_else(|p| p.into_inner());
                }
                if queue.queued.is_empty() {
                    return;
                }
                std::mem::take(&mut queue.queued)
            };
            if let Err(e) = self.append(&batch) {
                log::error!("{e}; refusing further writes until a restart");
                let mut queue = self.shared.lock();
                queue.failed = Some(e.to_string());
                self.shared.durable.notify_all();
                return;
            }
            // The cache sees the batch before its writers are acknowledged,
            // so a client reads its own write.
            self.sink.committed(batch.clone());
            {
                let mut queue = self.shared.lock();
                queue.durable = self.rv;
                self.shared.durable.notify_all();
            }
            for c in batch {
                match c.object {
                    Some(object) => self.objects.insert(c.key, object),
                    None => self.objects.remove(&c.key),
                };
            }
            self.compact();
        }
    }

    /// Appends a batch in one write and makes it durable with one fsync.
    fn append(&mut self, batch: &[Committed]) -> Result<(), StorageError> {
        let mut buf = Vec::with_capacity(batch.len() * 512);
        for c in batch {
            let record = match &c.object {
                Some(object) => RecordRef::Put {
                    rv: c.rv,
                    key: &c.key,
                    object,
                },
                None => RecordRef::Delete {
                    rv: c.rv,
                    key: &c.key,
                },
            };
            // A Value with string keys always serializes.
            serde_json::to_writer(&mut buf, &record).unwrap_or_default();
            buf.push(b'\n');
            self.rv = c.rv;
        }
        let io = |e| io_error(&self.path, e);
        self.file.write_all(&buf).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.since_compaction += batch.len();
        Ok(())
    }

    /// The log holds every write since the last compaction: rewrite it as
    /// the live objects once it is several times their number. A failed
    /// compaction leaves the old log, which is still complete.
    fn compact(&mut self) {
        if self.since_compaction <= self.compact_after.max(4 * self.objects.len()) {
            return;
        }
        match rewrite(&self.path, self.rv, self.objects.iter()) {
            Ok(file) => self.file = file,
            Err(e) => log::warn!("compacting the storage: {e}"),
        }
        self.since_compaction = 0;
    }
}
