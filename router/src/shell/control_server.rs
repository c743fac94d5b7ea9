//! The control socket's server: a thread that answers the CLI. Questions
//! about the data plane (conntrack, counters) are passed to the packet loop
//! over a channel and a mio `Waker`, so the loop never blocks on a client.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use log::{debug, warn};

use crate::protocol::{Request, Response};
use cluster::Cluster;

/// A question for the packet loop, with where to send the answer.
pub struct Query {
    /// The question.
    pub request: Request,
    /// Where the loop sends its answer.
    pub reply: Sender<Response>,
}

/// What the control thread needs to answer on its own.
pub struct ControlState {
    /// This router's node.
    pub node: String,
    /// The cluster being served.
    pub cluster: Cluster,
    /// The cluster file (the store) it came from.
    pub config: PathBuf,
}

/// Creation times of every object, keyed `pod/<ns>/<name>`,
/// `service/<ns>/<name>` and `namespace/<name>`: objects already known keep theirs, new ones get
/// `now`, gone ones are forgotten.
fn stamp(created: &mut BTreeMap<String, i64>, cluster: &Cluster, now: i64) {
    let keys: Vec<String> = cluster
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
    stamp(&mut created, &state.cluster, unix_now());
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
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let response = match serde_json::from_str::<Request>(&line) {
        Err(e) => Response::Error(format!("bad request: {e}")),
        Ok(Request::State) => Response::State {
            node: state.node.clone(),
            cluster: state.cluster.clone(),
            created: created.clone(),
            now_unix: unix_now(),
            config: state.config.clone(),
        },
        Ok(Request::Apply { cluster }) => {
            let answer = ask_loop(
                Request::Apply {
                    cluster: cluster.clone(),
                },
                queries,
                waker,
            );
            if let Response::Applied { .. } = answer {
                stamp(created, &cluster, unix_now());
                state.cluster = cluster;
            }
            answer
        }
        Ok(request) => ask_loop(request, queries, waker),
    };
    let mut out = serde_json::to_string(&response).map_err(std::io::Error::other)?;
    out.push('\n');
    (&stream).write_all(out.as_bytes())
}

fn ask_loop(request: Request, queries: &Sender<Query>, waker: &mio::Waker) -> Response {
    let (reply, answer): (Sender<Response>, Receiver<Response>) = crossbeam_channel::bounded(1);
    if queries.try_send(Query { request, reply }).is_err() {
        return Response::Error("the packet loop is busy; try again".into());
    }
    if let Err(e) = waker.wake() {
        return Response::Error(format!("cannot wake the packet loop: {e}"));
    }
    answer
        .recv_timeout(Duration::from_secs(2))
        .unwrap_or_else(|_| Response::Error("the packet loop did not answer within 2 s".into()))
}
