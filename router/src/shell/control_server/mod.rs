//! The control socket's server: a thread that answers the CLI. Questions
//! about the data plane (conntrack, counters) are passed to the packet loop
//! over a channel and a mio `Waker`, so the loop never blocks on a client.
//!
//! The socket is root's (its directory is), but what arrives on it is still
//! input: a request is bounded in size ([`MAX_REQUEST`]) and in time
//! ([`CLIENT_TIMEOUT`] for the whole request and for the answer), so one
//! slow or stuck client holds the single control thread for at most a few
//! seconds; and a new cluster state is validated as `config.toml` is
//! before the data plane sees it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use log::{debug, warn};

use dataplane::conntrack::FlowCursor;
use dataplane::model::Model;

use crate::protocol::{ProtocolError, Request, Response};
use cluster::Cluster;

mod limits;
#[cfg(test)]
mod tests;

use limits::{read_request, ReadError};
pub use limits::{CLIENT_TIMEOUT, MAX_REQUEST};

/// How long the control thread waits for the packet loop's answer.
const LOOP_TIMEOUT: Duration = Duration::from_secs(2);

/// A question for the packet loop, with where to send the answer.
pub struct Query {
    /// The question.
    pub request: Request,
    /// Where the loop sends its answer.
    pub reply: Sender<Response>,
}

/// Where the cluster the router serves comes from.
pub enum Served {
    /// An object file, fixed for the router's life: the control thread
    /// keeps it.
    File(Cluster),
    /// A watched Kubernetes API: `get` reads the data plane's own model
    /// (no copy of the cluster is kept for the socket).
    Watched(Arc<RwLock<Model>>),
}

/// What the control thread needs to answer on its own.
pub struct ControlState {
    /// This router's node.
    pub node: String,
    /// The cluster being served.
    pub served: Served,
    /// The object file it came from, or the settings file.
    pub config: PathBuf,
}

impl ControlState {
    /// The cluster as the router serves it now. (For a watched cluster,
    /// built from the model under its read lock: the packet loop waits
    /// for it only if a change arrives meanwhile.)
    fn current(&self) -> Cluster {
        match &self.served {
            Served::Watched(model) => model
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .to_cluster(),
            Served::File(cluster) => cluster.clone(),
        }
    }

    fn watched(&self) -> bool {
        matches!(self.served, Served::Watched(_))
    }
}

/// Creation times of every object, keyed `pod/<ns>/<name>`,
/// `service/<ns>/<name>` and `namespace/<name>`: a Service's own
/// (`metadata.creationTimestamp`, as kubectl shows it); for the rest
/// (what the router does not watch) objects already known keep theirs,
/// new ones get `now`; gone ones are forgotten.
fn stamp(created: &mut BTreeMap<String, i64>, cluster: &Cluster, now: i64) {
    // A set: at 10,000 Services a list made every `get` quadratic.
    let keys: BTreeSet<String> = cluster
        .pods
        .iter()
        .map(|p| format!("pod/{}/{}", p.namespace, p.name))
        .chain(
            cluster
                .services
                .iter()
                .map(|s| format!("service/{}/{}", s.namespace, s.name)),
        )
        .chain(
            cluster
                .namespaces()
                .into_iter()
                .map(|n| format!("namespace/{n}")),
        )
        .collect();
    created.retain(|k, _| keys.contains(k));
    for k in keys {
        created.entry(k).or_insert(now);
    }
    for s in &cluster.services {
        if let Some(t) = s.created {
            created.insert(format!("service/{}/{}", s.namespace, s.name), t);
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Binds `path` (replacing a stale socket left by a dead router, refusing to
/// touch anything that is not a socket or that a live router answers on)
/// and starts the server thread.
pub fn spawn(
    path: &Path,
    state: ControlState,
    queries: Sender<Query>,
    waker: Arc<mio::Waker>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::other(format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            )));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::other(format!(
                "another router is already serving {}",
                path.display()
            )));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    let mut created = BTreeMap::new();
    stamp(&mut created, &state.current(), unix_now());
    let mut state = state;
    let path: PathBuf = path.to_owned();
    thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if let Err(e) = serve(stream, &mut state, &mut created, &queries, &waker) {
                            debug!("control client on {}: {e}", path.display());
                        }
                    }
                    Err(e) => warn!("control socket {}: accept: {e}", path.display()),
                }
            }
        })?;
    Ok(())
}

fn serve(
    stream: UnixStream,
    state: &mut ControlState,
    created: &mut BTreeMap<String, i64>,
    queries: &Sender<Query>,
    waker: &mio::Waker,
) -> std::io::Result<()> {
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let response = match read_request(&stream, MAX_REQUEST, CLIENT_TIMEOUT) {
        Err(ReadError::Io(e)) => return Err(e),
        Err(ReadError::TooLarge) => Response::Error(ProtocolError::TooLarge { limit: MAX_REQUEST }),
        Err(ReadError::Timeout) => Response::Error(ProtocolError::Timeout {
            secs: CLIENT_TIMEOUT.as_secs(),
        }),
        Ok(bytes) => match serde_json::from_slice::<Request>(&bytes) {
            Err(e) => Response::Error(ProtocolError::BadRequest(e.to_string())),
            Ok(request) => answer(request, state, created, queries, waker),
        },
    };
    // The whole cluster, copied and serialized for this answer (tens of
    // MiB at 10,000 Services): given back to the system once sent.
    let whole_cluster = matches!(response, Response::State { .. });
    let mut out = serde_json::to_string(&response).map_err(std::io::Error::other)?;
    drop(response);
    out.push('\n');
    let sent = (&stream).write_all(out.as_bytes());
    drop(out);
    if whole_cluster {
        super::kube::release_freed_memory();
    }
    sent
}

/// The answer to one well-formed request.
fn answer(
    request: Request,
    state: &mut ControlState,
    created: &mut BTreeMap<String, i64>,
    queries: &Sender<Query>,
    waker: &mio::Waker,
) -> Response {
    match request {
        Request::State => {
            let cluster = state.current();
            if state.watched() {
                stamp(created, &cluster, unix_now());
            }
            Response::State {
                node: state.node.clone(),
                cluster,
                created: created.clone(),
                now_unix: unix_now(),
                config: state.config.clone(),
            }
        }
        Request::Conntrack => conntrack(queries, waker),
        request => ask_loop(request, queries, waker),
    }
}

/// Entries the packet loop lists per turn: ~1 ms of work, so forwarding
/// goes on between chunks (the whole table at once stalled it ~50 ms per
/// 56,000 flows).
const CONNTRACK_CHUNK: usize = 4096;

/// The whole conntrack table, gathered chunk by chunk from the packet loop
/// and sorted here, off the loop.
fn conntrack(queries: &Sender<Query>, waker: &mio::Waker) -> Response {
    let mut all = Vec::new();
    let mut from = FlowCursor::START;
    loop {
        let chunk = Request::ConntrackChunk {
            from,
            max: CONNTRACK_CHUNK,
        };
        match ask_loop(chunk, queries, waker) {
            Response::Conntrack {
                mut records,
                next,
                capacity,
            } => {
                all.append(&mut records);
                match next {
                    Some(n) => from = n,
                    None => {
                        all.sort_by_key(|r| (r.protocol, r.original));
                        return Response::Conntrack {
                            records: all,
                            next: None,
                            capacity,
                        };
                    }
                }
            }
            other => return other,
        }
    }
}

/// Asks the packet loop `request` and waits (bounded) for its answer.
pub(crate) fn ask_loop(request: Request, queries: &Sender<Query>, waker: &mio::Waker) -> Response {
    let (reply, answer): (Sender<Response>, Receiver<Response>) = crossbeam_channel::bounded(1);
    if queries.try_send(Query { request, reply }).is_err() {
        return Response::Error(ProtocolError::Busy);
    }
    if let Err(e) = waker.wake() {
        return Response::Error(ProtocolError::Wake(e.to_string()));
    }
    answer.recv_timeout(LOOP_TIMEOUT).unwrap_or_else(|_| {
        Response::Error(ProtocolError::NoAnswer {
            secs: LOOP_TIMEOUT.as_secs(),
        })
    })
}
