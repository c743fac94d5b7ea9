//! Durable storage behind the in-memory store: a trait, so etcd can join the
//! embedded log (`--etcd URL` is a later step), and the embedded log itself.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ObjectKey;

/// A committed change, in resourceVersion order.
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

/// What a storage holds at start: the live objects and the last resourceVersion.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The last resourceVersion ever committed.
    pub rv: u64,
    /// Live objects.
    pub objects: Vec<(ObjectKey, Value)>,
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
}

/// Where committed changes go. `commit` returns only once the record is
/// durable: the API server acknowledges a write after it.
pub trait Storage: Send {
    /// Reads back everything committed.
    fn load(&mut self) -> Result<Loaded, StorageError>;
    /// Makes one record durable.
    fn commit(&mut self, record: &Record) -> Result<(), StorageError>;
    /// Replaces the history with the live objects (a log that only grows
    /// would slow every start); storages without history ignore it.
    fn compact(
        &mut self,
        _rv: u64,
        _objects: &mut dyn Iterator<Item = (&ObjectKey, &Value)>,
    ) -> Result<(), StorageError> {
        Ok(())
    }
}

/// No durability: for tests and `--ephemeral`.
#[derive(Debug, Default)]
pub struct MemoryStorage;

impl Storage for MemoryStorage {
    fn load(&mut self) -> Result<Loaded, StorageError> {
        Ok(Loaded::default())
    }
    fn commit(&mut self, _: &Record) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The embedded default: an append-only log of JSON lines in a data
/// directory, fsynced per record, compacted at start.
#[derive(Debug)]
pub struct LogStorage {
    path: PathBuf,
    file: Option<File>,
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

impl LogStorage {
    /// The log in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<LogStorage, StorageError> {
        fs::create_dir_all(dir).map_err(|source| StorageError::Io {
            path: dir.into(),
            source,
        })?;
        Ok(LogStorage {
            path: dir.join("objects.log"),
            file: None,
        })
    }

    fn io(&self, source: io::Error) -> StorageError {
        StorageError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes the live objects as a fresh log beside the old one, then
    /// renames it over: a crash leaves either the old or the new log.
    fn rewrite(
        &mut self,
        rv: u64,
        objects: &mut dyn Iterator<Item = (&ObjectKey, &Value)>,
    ) -> Result<(), StorageError> {
        let tmp = self.path.with_extension("log.tmp");
        let mut out = io::BufWriter::new(File::create(&tmp).map_err(|e| self.io(e))?);
        let mut write = |line: String| -> io::Result<()> {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")
        };
        let header = serde_json::to_string(&Header { rv }).unwrap_or_default();
        write(header).map_err(|e| self.io(e))?;
        for (key, object) in objects {
            let record_rv = super::object_rv(object).unwrap_or(rv);
            let record = Record::Put {
                rv: record_rv,
                key: key.clone(),
                object: object.clone(),
            };
            let line = serde_json::to_string(&record).unwrap_or_default();
            write(line).map_err(|e| self.io(e))?;
        }
        let file = out.into_inner().map_err(|e| self.io(e.into_error()))?;
        file.sync_all().map_err(|e| self.io(e))?;
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io(e))?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        self.file = Some(file);
        Ok(())
    }
}

impl Storage for LogStorage {
    fn load(&mut self) -> Result<Loaded, StorageError> {
        let mut objects = std::collections::BTreeMap::new();
        let mut rv = 0;
        match File::open(&self.path) {
            Ok(file) => {
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
                            objects.insert(key, object);
                        }
                        Ok(Line::Record(Record::Delete { rv: r, key })) => {
                            rv = rv.max(r);
                            objects.remove(&key);
                        }
                        // A torn last line is a write that was never
                        // acknowledged (the fsync did not return): drop it.
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
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io(e)),
        }
        let loaded = Loaded {
            rv,
            objects: objects.into_iter().collect(),
        };
        self.rewrite(loaded.rv, &mut loaded.objects.iter().map(|(k, v)| (k, v)))?;
        Ok(loaded)
    }

    fn commit(&mut self, record: &Record) -> Result<(), StorageError> {
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        let path = self.path.clone();
        let io = |source| StorageError::Io {
            path: path.clone(),
            source,
        };
        let file = match self.file.as_mut() {
            Some(f) => f,
            None => return Err(io(io::Error::other("log not loaded"))),
        };
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)
    }

    fn compact(
        &mut self,
        rv: u64,
        objects: &mut dyn Iterator<Item = (&ObjectKey, &Value)>,
    ) -> Result<(), StorageError> {
        self.rewrite(rv, objects)
    }
}
