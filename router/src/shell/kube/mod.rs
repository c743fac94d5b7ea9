//! Kubernetes mode: the router's objects come from a watch of the API
//! ([`control::kube`]) instead of an object file.
//!
//! The watch runs on its own thread and sends [`Update`]s over a channel,
//! waking the packet loop with its `mio::Waker`. At start the shell waits
//! for the first complete list and for this node to be routable (a Node
//! with a pod CIDR and an InternalIP), then builds the data plane from
//! that state; afterwards the loop hands each change to
//! [`Node::apply_change`], a bounded number per turn so that packets are
//! never starved. (The control socket answers `get` from the data plane's
//! model: the router keeps no other copy of the cluster.) While the API server is unreachable nothing arrives and the
//! router forwards with the state it has.

use std::io::{ErrorKind, Read};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use log::{debug, info, warn};

use cluster::{Cluster, ClusterChange};
use control::kube::{Received, Update, WatchConfig, WatchHandle};
use control::settings::RouterSettings;
use dataplane::node::Node;

use super::metrics::Programming;

#[cfg(test)]
mod tests;

/// Changes applied per turn of the packet loop before packets get a turn.
const CHANGES_PER_TURN: usize = 256;
/// How often the wait for the first sync says what it is waiting for.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// The watch, as the packet loop sees it.
pub struct KubeFeed {
    updates: Receiver<Received>,
    /// Stops the watch thread when the router stops (`None` in tests).
    _watch: Option<WatchHandle>,
    /// The watch thread is gone (said once).
    ended: bool,
    /// When the watch started and how long the first list took, until
    /// [`KubeFeed::serving`] says so.
    started: Option<(Instant, Duration)>,
}

impl KubeFeed {
    /// Starts the watch for `node` and waits until its first complete list
    /// holds a routable `node`, saying every few seconds what it waits for;
    /// `None` if `signal` became readable (SIGINT or SIGTERM) meanwhile.
    pub fn start(
        settings: &RouterSettings,
        node: &str,
        waker: Arc<mio::Waker>,
        signal: &mut mio::net::UnixStream,
    ) -> Result<Option<(KubeFeed, Cluster)>, control::kube::WatchError> {
        let (tx, updates) = crossbeam_channel::unbounded();
        let config = WatchConfig {
            kubeconfig: settings.kubernetes.kubeconfig.clone(),
            node: node.to_owned(),
        };
        let wake = Box::new(move || {
            if let Err(e) = waker.wake() {
                warn!("cannot wake the packet loop for a Kubernetes change: {e}");
            }
        });
        let watch = control::kube::spawn(&config, tx, wake)?;
        info!(
            "watching the Kubernetes API at {} (Services, EndpointSlices, Nodes, Pods on {node})",
            watch.server
        );
        let start = Instant::now();
        let Some(cluster) = wait_for_sync(
            &updates,
            settings.cluster.empty_cluster(),
            node,
            &watch.server,
            signal,
        )?
        else {
            return Ok(None);
        };
        info!(
            "listed after {} ms: node {node} routable; {} services, {} endpoint slices, {} nodes, {} pods on {node}",
            start.elapsed().as_millis(),
            cluster.services.len(),
            cluster.endpoint_slices.as_ref().map_or(0, Vec::len),
            cluster.nodes.len(),
            cluster.pods.len()
        );
        let mut feed = KubeFeed::new(updates, Some(watch));
        feed.started = Some((start, start.elapsed()));
        Ok(Some((feed, cluster)))
    }

    /// Says, once the data plane `dp` is built from the first list, how
    /// long the router took from the start of the watch to serving every
    /// Service, and where the time went.
    pub fn serving(&mut self, dp: &Node) {
        let Some((start, listed)) = self.started.take() else {
            return;
        };
        let total = start.elapsed();
        info!(
            "serving after {} ms: the Kubernetes API listed in {} ms, the data plane built in {} ms; {} Service frontends",
            total.as_millis(),
            listed.as_millis(),
            total.saturating_sub(listed).as_millis(),
            dp.services().entries().len()
        );
    }

    /// The feed of `updates` to a router.
    fn new(updates: Receiver<Received>, watch: Option<WatchHandle>) -> Self {
        KubeFeed {
            updates,
            _watch: watch,
            ended: false,
            started: None,
        }
    }

    /// Applies up to [`CHANGES_PER_TURN`] waiting changes to `dp`. Returns
    /// whether more may be waiting.
    pub fn drain(&mut self, dp: &mut Node, programming: &Programming) -> bool {
        let mut taken = 0;
        while taken < CHANGES_PER_TURN {
            let update = match self.updates.try_recv() {
                Ok(update) => update,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if !self.ended {
                        self.ended = true;
                        warn!("the watch of the Kubernetes API stopped; the router keeps forwarding with its last state");
                    }
                    break;
                }
            };
            taken += 1;
            let Received {
                update: Update::Change(change),
                at,
                trigger,
            } = update
            else {
                continue;
            };
            let start = Instant::now();
            let result = dp.apply_change(&change);
            let took = start.elapsed();
            let micros = took.as_micros();
            if result.is_ok() {
                // The trigger time is another machine's wall clock: a
                // skew that puts it in the future counts as no trigger.
                let since_trigger = trigger.and_then(|t| SystemTime::now().duration_since(t).ok());
                programming.observe(took, at.elapsed(), since_trigger);
            }
            match result {
                Ok(()) => debug!("applied {} in {micros} us", describe(&change)),
                Err(e) => warn!(
                    "not applied: {}: {e}; the router keeps its last state for it",
                    describe(&change)
                ),
            }
        }
        taken == CHANGES_PER_TURN
    }
}

/// Gives the memory freed since start back to the system. The first list
/// is decoded on the watch thread (its own malloc arena) and copied into
/// the data plane's model: at 10,000 Services the decoded lists, the
/// listed cluster and the channel's changes are tens of MiB that glibc
/// keeps mapped once freed (the router's RSS stayed ~40 MiB above what it
/// uses). Called once the data plane is built and the listed cluster
/// dropped. (The one `unsafe` of the shell: a libc call no crate wraps.)
#[allow(unsafe_code)]
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only returns free heap
    // pages (of every arena) to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Applies `updates` to `cluster` until the first complete list has
/// arrived and holds a routable `node`, saying every few seconds what it
/// waits for; `None` if `signal` became readable (SIGINT or SIGTERM).
fn wait_for_sync(
    updates: &Receiver<Received>,
    mut cluster: Cluster,
    node: &str,
    server: &str,
    signal: &mut mio::net::UnixStream,
) -> Result<Option<Cluster>, control::kube::WatchError> {
    let mut synced = false;
    let mut next_log = Instant::now();
    while !(synced && cluster.node(node).is_some()) {
        let now = Instant::now();
        if now >= next_log {
            next_log = now + WAIT_LOG_EVERY;
            info!("{}", waiting_for(&cluster, synced, node, server));
        }
        if signalled(signal) {
            info!("signal received while waiting for the Kubernetes API, stopping");
            return Ok(None);
        }
        match updates.recv_timeout(Duration::from_millis(200)) {
            Ok(Received {
                update: Update::Synced,
                ..
            }) => synced = true,
            Ok(Received {
                update: Update::Change(change),
                ..
            }) => cluster.apply_change(&change),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // The watch thread ended: nothing more will come.
                return Err(control::kube::WatchError::Thread(std::io::Error::other(
                    "the watch thread stopped",
                )));
            }
        }
    }
    Ok(Some(cluster))
}

/// What the first sync still lacks, for the log.
fn waiting_for(cluster: &Cluster, synced: bool, node: &str, server: &str) -> String {
    if !synced {
        return format!(
            "waiting for the first list of Services, EndpointSlices, Nodes and Pods from {server}"
        );
    }
    let known: Vec<&str> = cluster.nodes.iter().map(|n| n.name.as_str()).collect();
    format!(
        "waiting for Node {node} with spec.podCIDR and an InternalIP (routable nodes so far: {})",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

/// Whether the signal pipe has something (SIGINT or SIGTERM arrived).
fn signalled(signal: &mut mio::net::UnixStream) -> bool {
    let mut b = [0u8; 16];
    match signal.read(&mut b) {
        Ok(n) => n > 0,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => false,
    }
}

/// One change, for the logs: `Service default/nginx-svc`, `deleted Node n1`.
fn describe(change: &ClusterChange) -> String {
    match change {
        ClusterChange::Service(s) => format!("Service {}/{}", s.namespace, s.name),
        ClusterChange::ServiceDeleted(k) => format!("deleted Service {k}"),
        ClusterChange::EndpointSlice(s) => format!("EndpointSlice {}", s.key),
        ClusterChange::EndpointSliceDeleted(k) => format!("deleted EndpointSlice {k}"),
        ClusterChange::Node(n) => format!("Node {}", n.name),
        ClusterChange::NodeDeleted(n) => format!("deleted Node {n}"),
        ClusterChange::Pod(p) => format!("Pod {}/{}", p.namespace, p.name),
        ClusterChange::PodDeleted(k) => format!("deleted Pod {k}"),
    }
}
