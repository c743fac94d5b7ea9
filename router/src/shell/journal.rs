//! A journal of records in a file, so that state outlives the process.
//!
//! The data plane's conntrack lives in the router's memory; a restarted
//! kube-proxy keeps the kernel's. To keep ours, the shell appends every
//! change the core reports (a flow created, its state changed, a flow gone)
//! to a journal under the run directory (`/run/ksr`, a tmpfs): a `write`
//! returns once the bytes are in the page cache, so a SIGKILL loses nothing
//! already written. A new process replays the journal before its first
//! packet, then compacts it (a fresh snapshot, written aside and renamed).
//!
//! Format: a header (magic, format version, and an identity string: the
//! node and what the records mean), then records `[len: u32 LE][crc32 of
//! payload: u32 LE][payload: postcard]`. A file with another magic, version
//! or identity is refused whole; a record that is cut short or fails its
//! checksum ends the replay there (the tail of a write interrupted by the
//! kill), and the file is truncated to the records before it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

const MAGIC: &[u8; 8] = b"KSRJRNL\n";
const VERSION: u32 = 1;
/// The longest record accepted on replay: more is corruption.
const MAX_RECORD: usize = 64 * 1024;

/// Why a journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing the file failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not a journal this router wrote for this node.
    #[error("state file {path} is refused: {why}; starting with empty state")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What did not match.
        why: String,
    },
}

/// What [`Journal::open`] found in an existing file.
#[derive(Debug)]
pub struct Replay<T> {
    /// The records, in the order written.
    pub records: Vec<T>,
    /// Why the replay stopped early (a cut or corrupt record), if it did.
    pub truncated: Option<String>,
    /// Why an existing file was refused whole, if it was.
    pub refused: Option<JournalError>,
}

/// An append-only journal of `T` records.
pub struct Journal<T> {
    path: PathBuf,
    identity: String,
    file: File,
    written: u64,
    scratch: Vec<u8>,
    _records: PhantomData<T>,
}

impl<T: Serialize + DeserializeOwned> Journal<T> {
    /// Opens the journal at `path` for `identity` (e.g. `conntrack v1 node
    /// mac-worker`), replaying what a previous process wrote. A missing
    /// file starts empty; a foreign or unreadable one is reported in
    /// [`Replay::refused`] and replaced.
    pub fn open(path: &Path, identity: &str) -> Result<(Self, Replay<T>), JournalError> {
        let io_err = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let mut replay = Replay {
            records: Vec::new(),
            truncated: None,
            refused: None,
        };
        let mut keep_len = None;
        match std::fs::read(path) {
            Ok(bytes) => match parse(&bytes, identity) {
                Ok((records, valid_len, truncated)) => {
                    replay.records = records;
                    replay.truncated = truncated;
                    keep_len = Some(valid_len);
                }
                Err(why) => {
                    replay.refused = Some(JournalError::Foreign {
                        path: path.to_owned(),
                        why,
                    })
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                replay.refused = Some(JournalError::Foreign {
                    path: path.to_owned(),
                    why: format!("unreadable: {e}"),
                })
            }
        }
        let file = match keep_len {
            Some(len) => {
                let mut f = OpenOptions::new().write(true).open(path).map_err(io_err)?;
                f.set_len(len as u64).map_err(io_err)?;
                f.seek(SeekFrom::End(0)).map_err(io_err)?;
                f
            }
            None => fresh(path, identity).map_err(io_err)?,
        };
        Ok((
            Journal {
                path: path.to_owned(),
                identity: identity.to_owned(),
                file,
                written: replay.records.len() as u64,
                scratch: Vec::with_capacity(4096),
                _records: PhantomData,
            },
            replay,
        ))
    }

    /// Appends `records` with one write.
    pub fn append(&mut self, records: &[T]) -> Result<(), JournalError> {
        if records.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        for r in records {
            encode(&mut self.scratch, r);
        }
        self.file
            .write_all(&self.scratch)
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.written += records.len() as u64;
        Ok(())
    }

    /// Records written since the journal was opened or last compacted.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Replaces the journal with `snapshot` (the live state), written to a
    /// temporary file and renamed over the journal, so a kill during
    /// compaction leaves the old journal whole.
    pub fn compact(&mut self, snapshot: impl Iterator<Item = T>) -> Result<(), JournalError> {
        let io_err = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("compacting");
        let result = (|| {
            let mut f = fresh(&tmp, &self.identity)?;
            let mut buf = Vec::with_capacity(1 << 20);
            let mut n = 0u64;
            for r in snapshot {
                encode(&mut buf, &r);
                n += 1;
                if buf.len() >= 1 << 20 {
                    f.write_all(&buf)?;
                    buf.clear();
                }
            }
            f.write_all(&buf)?;
            std::fs::rename(&tmp, &self.path)?;
            Ok((f, n))
        })();
        match result {
            Ok((f, n)) => {
                self.file = f;
                self.written = n;
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(io_err(e))
            }
        }
    }
}

/// Creates (or truncates) a journal file holding only its header.
fn fresh(path: &Path, identity: &str) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    let mut header = Vec::with_capacity(16 + identity.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(identity.len() as u32).to_le_bytes());
    header.extend_from_slice(identity.as_bytes());
    f.write_all(&header)?;
    Ok(f)
}

fn encode<T: Serialize>(out: &mut Vec<u8>, record: &T) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    // Serializing plain data into a Vec cannot fail; if a type ever made it
    // fail, the record is dropped (the journal stays valid without it).
    let Ok(payload) = postcard::to_extend(record, std::mem::take(out)) else {
        out.truncate(start);
        return;
    };
    *out = payload;
    let len = (out.len() - start - 8) as u32;
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Parses a journal: the records, the length of the valid prefix, and why
/// the replay stopped early; `Err` when the file is not ours.
type Parsed<T> = (Vec<T>, usize, Option<String>);

fn parse<T: DeserializeOwned>(bytes: &[u8], identity: &str) -> Result<Parsed<T>, String> {
    let mut r = bytes;
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| "too short for a header".to_owned())?;
    if &magic != MAGIC {
        return Err("not a router state journal (bad magic)".to_owned());
    }
    let version = read_u32(&mut r).ok_or("header cut short")?;
    if version != VERSION {
        return Err(format!(
            "format version {version}, this router writes {VERSION}"
        ));
    }
    let id_len = read_u32(&mut r).ok_or("header cut short")? as usize;
    if id_len > r.len() {
        return Err("header cut short".to_owned());
    }
    let (id, rest) = r.split_at(id_len);
    if id != identity.as_bytes() {
        return Err(format!(
            "written for {:?}, this router is {identity:?}",
            String::from_utf8_lossy(&id[..id.len().min(128)])
        ));
    }
    let mut records = Vec::new();
    let mut offset = bytes.len() - rest.len();
    let mut rest = rest;
    while !rest.is_empty() {
        let (Some(len), Some(crc)) = (read_u32(&mut rest), read_u32(&mut rest)) else {
            return Ok((records, offset, Some("a record header is cut short".into())));
        };
        let len = len as usize;
        if len > MAX_RECORD || len > rest.len() {
            return Ok((records, offset, Some("a record is cut short".into())));
        }
        let (payload, tail) = rest.split_at(len);
        if crc32fast::hash(payload) != crc {
            return Ok((records, offset, Some("a record fails its checksum".into())));
        }
        match postcard::from_bytes(payload) {
            Ok(record) => records.push(record),
            Err(e) => {
                return Ok((
                    records,
                    offset,
                    Some(format!("a record does not decode: {e}")),
                ))
            }
        }
        rest = tail;
        offset += 8 + len;
    }
    Ok((records, offset, None))
}

fn read_u32(r: &mut &[u8]) -> Option<u32> {
    let (head, tail) = r.split_first_chunk::<4>()?;
    *r = tail;
    Some(u32::from_le_bytes(*head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Rec {
        Put(u32, String),
        Del(u32),
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ksr-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn records_survive_a_new_process() {
        let path = dir("round").join("ct");
        let (mut j, replay) = Journal::<Rec>::open(&path, "ct node a").expect("open");
        assert!(replay.records.is_empty() && replay.refused.is_none());
        j.append(&[Rec::Put(1, "x".into()), Rec::Del(1)])
            .expect("append");
        j.append(&[Rec::Put(2, "y".into())]).expect("append");
        drop(j); // as a kill would: nothing is flushed on drop
        let (_, replay) = Journal::<Rec>::open(&path, "ct node a").expect("reopen");
        assert_eq!(
            replay.records,
            [
                Rec::Put(1, "x".into()),
                Rec::Del(1),
                Rec::Put(2, "y".into())
            ]
        );
        assert!(replay.truncated.is_none());
    }

    #[test]
    fn a_cut_tail_is_dropped_and_the_rest_kept() {
        let path = dir("cut").join("ct");
        let (mut j, _) = Journal::<Rec>::open(&path, "id").expect("open");
        j.append(&[Rec::Put(1, "keep".into()), Rec::Put(2, "cut".into())])
            .expect("append");
        drop(j);
        let len = std::fs::metadata(&path).expect("meta").len();
        let f = OpenOptions::new().write(true).open(&path).expect("open");
        f.set_len(len - 3).expect("truncate");
        let (mut j, replay) = Journal::<Rec>::open(&path, "id").expect("reopen");
        assert_eq!(replay.records, [Rec::Put(1, "keep".into())]);
        assert!(replay.truncated.is_some());
        // Appending after the repair gives a valid journal again.
        j.append(&[Rec::Del(1)]).expect("append");
        drop(j);
        let (_, replay) = Journal::<Rec>::open(&path, "id").expect("reopen");
        assert_eq!(replay.records, [Rec::Put(1, "keep".into()), Rec::Del(1)]);
        assert!(replay.truncated.is_none());
    }

    #[test]
    fn a_flipped_byte_stops_the_replay_at_that_record() {
        let path = dir("flip").join("ct");
        let (mut j, _) = Journal::<Rec>::open(&path, "id").expect("open");
        j.append(&[Rec::Put(1, "a".into()), Rec::Put(2, "b".into())])
            .expect("append");
        drop(j);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let (_, replay) = Journal::<Rec>::open(&path, "id").expect("reopen");
        assert_eq!(replay.records, [Rec::Put(1, "a".into())]);
    }

    #[test]
    fn a_foreign_file_is_refused_and_replaced() {
        let d = dir("foreign");
        let path = d.join("ct");
        std::fs::write(&path, b"something else entirely").expect("write");
        let (mut j, replay) = Journal::<Rec>::open(&path, "id").expect("open");
        assert!(replay.records.is_empty());
        let why = replay.refused.expect("refused").to_string();
        assert!(why.contains("bad magic"), "{why}");
        j.append(&[Rec::Del(7)]).expect("append");
        drop(j);
        // Another node's journal is refused too.
        let (_, replay) = Journal::<Rec>::open(&path, "other").expect("open");
        assert!(replay.records.is_empty());
        assert!(replay
            .refused
            .expect("refused")
            .to_string()
            .contains("written for"));
    }

    #[test]
    fn compaction_replaces_the_journal_with_the_snapshot() {
        let path = dir("compact").join("ct");
        let (mut j, _) = Journal::<Rec>::open(&path, "id").expect("open");
        for i in 0..100 {
            j.append(&[Rec::Put(i, "v".into()), Rec::Del(i)])
                .expect("append");
        }
        j.compact([Rec::Put(5, "live".into())].into_iter())
            .expect("compact");
        assert_eq!(j.len(), 1);
        j.append(&[Rec::Put(6, "new".into())]).expect("append");
        drop(j);
        let (_, replay) = Journal::<Rec>::open(&path, "id").expect("reopen");
        assert_eq!(
            replay.records,
            [Rec::Put(5, "live".into()), Rec::Put(6, "new".into())]
        );
        assert!(!path.with_extension("compacting").exists());
    }
}
