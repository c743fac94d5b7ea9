//! The control socket: how the CLI (`router get ...`) talks to a running
//! router.
//!
//! One JSON request per connection, one JSON response back, over a Unix
//! stream socket (`/run/ksr/<node>.sock` by default). The running router
//! answers from its current state: the cluster it serves (so `get po` shows
//! what the data plane uses, with real ages), its conntrack table and its
//! counters.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dataplane::conntrack::{FlowCursor, FlowRecord};
use serde::{Deserialize, Serialize};

use cluster::Cluster;
use dataplane::stats::Stats;

/// Directory holding the control sockets, one per node's router.
pub const SOCKET_DIR: &str = "/run/ksr";

/// The default control socket of `node`'s router.
pub fn default_socket(node: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{node}.sock"))
}

/// A question to the running router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The cluster state and object creation times.
    State,
    /// The conntrack table, like `conntrack -L`. The control thread
    /// gathers it from the packet loop in [`Request::ConntrackChunk`]s, so
    /// listing a large table never stalls forwarding.
    Conntrack,
    /// Up to `max` conntrack entries from `from` on (the control thread
    /// asks the packet loop this, chunk by chunk).
    ConntrackChunk {
        /// Where to go on from.
        from: FlowCursor,
        /// At most this many entries.
        max: usize,
    },
    /// Data-path counters.
    Stats,
}

/// The router's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::State`].
    State {
        /// The node this router serves.
        node: String,
        /// The cluster it serves.
        cluster: Cluster,
        /// Creation times (unix seconds), keyed `pod/<ns>/<name>` and `service/<ns>/<name>`.
        created: BTreeMap<String, i64>,
        /// The router's clock (unix seconds) when it answered.
        now_unix: i64,
        /// The file the router was started with (an object file or its
        /// settings).
        config: PathBuf,
    },
    /// Answer to [`Request::Conntrack`] (sorted by protocol, then
    /// original tuple) and to [`Request::ConntrackChunk`] (in table order).
    Conntrack {
        /// One record per flow; its `Display` is the `conntrack -L` line.
        records: Vec<FlowRecord>,
        /// Where the next chunk starts (`None`: this was the last).
        next: Option<FlowCursor>,
        /// Table capacity.
        capacity: usize,
    },
    /// Answer to [`Request::Stats`].
    Stats {
        /// Counters.
        stats: Stats,
        /// Tracked flows.
        flows: usize,
    },
    /// The request failed.
    Error(ProtocolError),
}

/// Why the router refused or could not answer a request: the payload of
/// [`Response::Error`], sent over the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ProtocolError {
    /// The request was not valid JSON for a [`Request`].
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request was longer than the server takes.
    #[error("request larger than {limit} bytes refused")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The client did not send a whole request in time.
    #[error("no whole request within {secs} s")]
    Timeout {
        /// The limit, in seconds.
        secs: u64,
    },
    /// The packet loop's queue of questions is full.
    #[error("the packet loop is busy; try again")]
    Busy,
    /// The packet loop could not be woken.
    #[error("cannot wake the packet loop: {0}")]
    Wake(String),
    /// The packet loop did not answer in time.
    #[error("the packet loop did not answer within {secs} s")]
    NoAnswer {
        /// The wait, in seconds.
        secs: u64,
    },
    /// A question the control thread answers reached the packet loop.
    #[error("state is answered by the control thread")]
    Misrouted,
}

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing listens on the socket.
    #[error("cannot reach the router at {path}: {source} (is it running? `scripts/lab up` starts one; `--config FILE` reads a file instead)")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The exchange broke off.
    #[error("talking to the router at {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The answer was not a valid response.
    #[error("the router at {path} sent an invalid answer: {source}")]
    Decode {
        /// The socket path.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// No socket was given and none was found.
    #[error("no running router found in {SOCKET_DIR} (start one with `scripts/lab up`, pick one with --node NAME or --server PATH, or read a file with --config FILE)")]
    NoRouter,
}

/// Sends `request` to the router at `path` and waits (at most 5 s) for its answer.
pub fn request(path: &Path, request: &Request) -> Result<Response, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(|source| ControlError::Connect {
        path: path.to_owned(),
        source,
    })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    let mut line = serde_json::to_string(request).map_err(|source| ControlError::Decode {
        path: path.to_owned(),
        source,
    })?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(io)?;
    serde_json::from_str(&answer).map_err(|source| ControlError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// Every router's control socket in [`SOCKET_DIR`], sorted.
pub fn all_sockets() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(SOCKET_DIR)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The socket to use when the user named none: the only (or first, by name)
/// socket in [`SOCKET_DIR`].
pub fn find_socket() -> Result<PathBuf, ControlError> {
    all_sockets()
        .into_iter()
        .next()
        .ok_or(ControlError::NoRouter)
}
