//! The cluster store: the file the routers serve (`/run/ksr/cluster.toml` in
//! the lab), changed by `router apply` / `router delete` the way kubectl
//! changes the API server's state, then pushed to every running router.
//!
//! A change is all-or-nothing: the new file is validated in full before it
//! replaces the old one (write to a temporary file, then rename), under an
//! exclusive lock so two changes never interleave; a refused change leaves
//! the file and every router exactly as they were.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::protocol::{self, ControlError, Request, Response};
use cluster::Cluster;
use control::config::{self, ConfigError};

/// The store's default path in the lab.
pub const DEFAULT_STORE: &str = "/run/ksr/cluster.toml";

/// Why a change could not be made.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be read, locked or written.
    #[error("cluster store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The change was refused; nothing was written.
    #[error("{0}")]
    Refused(#[from] ConfigError),
}

/// Applies `change` to the store at `path`: `change` gets the current text
/// and returns the new text (and whatever it wants to report). The new text
/// is validated; only then is it written. Returns the new cluster.
pub fn update<T>(
    path: &Path,
    change: impl FnOnce(&str) -> Result<(String, T), ConfigError>,
) -> Result<(Cluster, T), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let lock_path = path.with_extension("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io)?;
    lock.lock().map_err(io)?;
    let current = std::fs::read_to_string(path).map_err(io)?;
    let (text, report) = change(&current)?;
    let cluster = config::parse(&text)?;
    write_atomically(path, &text).map_err(io)?;
    drop(lock);
    Ok((cluster, report))
}

/// Replaces the file at `path` with `text` all at once: writes
/// `path.toml.new`, fsyncs it, renames it over `path`, then fsyncs the
/// directory so the rename survives a crash too. When writing or renaming
/// fails (a full disk, say) the temporary file is removed, so nothing is
/// left behind and `path` is as it was.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("toml.new");
    let replaced = File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = replaced {
        if let Err(cleanup) = std::fs::remove_file(&tmp) {
            // Nothing was created (or it is gone already): only a leftover
            // is worth a line.
            if cleanup.kind() != std::io::ErrorKind::NotFound {
                log::warn!("cannot remove {}: {cleanup}", tmp.display());
            }
        }
        return Err(e);
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// What one router said to a pushed state.
#[derive(Debug)]
pub struct Pushed {
    /// Its control socket.
    pub socket: PathBuf,
    /// Its answer, and how long the round trip took.
    pub result: Result<(Response, Duration), ControlError>,
}

/// Sends `cluster` to every running router that serves the store at
/// `store` (every socket in [`protocol::SOCKET_DIR`] whose router says it
/// serves that file; routers serving another file are left alone).
pub fn push(store: &Path, cluster: &Cluster) -> Vec<Pushed> {
    let want = std::fs::canonicalize(store).ok();
    protocol::all_sockets()
        .into_iter()
        .filter(|socket| match protocol::request(socket, &Request::State) {
            Ok(Response::State { config, .. }) => std::fs::canonicalize(&config).ok() == want,
            _ => true, // unreachable or odd: report it below
        })
        .map(|socket| {
            let start = Instant::now();
            let result = protocol::request(
                &socket,
                &Request::Apply {
                    cluster: cluster.clone(),
                },
            )
            .map(|r| (r, start.elapsed()));
            Pushed { socket, result }
        })
        .collect()
}

/// The store to change: the one given, else the file a running router
/// serves, else [`DEFAULT_STORE`].
pub fn locate(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_owned();
    }
    protocol::find_socket()
        .ok()
        .and_then(|s| protocol::request(&s, &Request::State).ok())
        .and_then(|r| match r {
            Response::State { config, .. } => Some(config),
            _ => None,
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_change_leaves_the_store_untouched() {
        let dir = std::env::temp_dir().join(format!("ksr-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("cluster.toml");
        let original = include_str!("../../../control/tests/fixtures/cluster.toml");
        std::fs::write(&path, original).expect("write");
        let r = update(&path, |text| Ok((format!("{text}\n[bogus]\n"), ())));
        assert!(matches!(r, Err(StoreError::Refused(_))), "{r:?}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), original);
        let (cluster, ()) = update(&path, |text| Ok((text.to_owned(), ()))).expect("valid");
        assert!(!cluster.services.is_empty());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// A fresh directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ksr-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = scratch("write");
        let path = dir.join("cluster.toml");
        std::fs::write(&path, "old").expect("write");
        write_atomically(&path, "new").expect("replaced");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        assert!(!path.with_extension("toml.new").exists());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary_and_the_old_state() {
        let dir = scratch("rename");
        // The rename fails: the target is a directory that is not empty.
        let path = dir.join("cluster.toml");
        std::fs::create_dir_all(&path).expect("dir");
        let old = path.join("kept");
        std::fs::write(&old, "old").expect("write");
        let e = write_atomically(&path, "new").expect_err("rename over a directory");
        assert!(
            !path.with_extension("toml.new").exists(),
            "{e}: .new left behind"
        );
        assert_eq!(std::fs::read_to_string(&old).expect("read"), "old");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_and_the_old_file() {
        let dir = scratch("full");
        let path = dir.join("cluster.toml");
        std::fs::write(&path, "old").expect("write");
        // The temporary's name is taken by a directory: creating it fails.
        let tmp = path.with_extension("toml.new");
        std::fs::create_dir_all(&tmp).expect("dir");
        write_atomically(&path, "new").expect_err("cannot create the temporary");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        assert!(tmp.is_dir(), "a directory in the way is not ours to remove");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
