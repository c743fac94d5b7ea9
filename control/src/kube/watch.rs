//! The watch thread: kube-runtime watchers of Services, EndpointSlices,
//! Nodes and this node's Pods on a current-thread tokio runtime of its
//! own, feeding a [`Mirror`] and sending its [`Update`]s over a channel.
//!
//! The watchers list, then watch from the list's resourceVersion with
//! bookmarks, relist on 410 Gone at once ([`relist_at_once`]), and back
//! off on other errors (`default_backoff`: 0.8 s doubling to 30 s). While the API server is
//! unreachable nothing is sent, so the router keeps forwarding with the
//! last state it was given; errors are logged.
//!
//! The router's event loop is not async: after each batch of updates the
//! thread calls a wake callback (the loop's `mio::Waker`), so this crate
//! needs no mio.

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use futures_util::stream::{select_all, BoxStream, StreamExt};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use log::{debug, info, warn};
use tokio::sync::oneshot;

use super::{Kind, Mirror, Received, Update};

/// Where and what to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The kubeconfig to use; `None`: `$KUBECONFIG`, `~/.kube/config`, else
    /// in-cluster credentials (`kube::Config::infer`).
    pub kubeconfig: Option<PathBuf>,
    /// This router's node: its pods are watched (`spec.nodeName`).
    pub node: String,
}

/// Why the watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The kubeconfig given could not be read or used.
    #[error("kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: kube::config::KubeconfigError,
    },
    /// No kubeconfig given, none in `$KUBECONFIG` or `~/.kube/config`, and
    /// not running in a pod.
    #[error("no Kubernetes credentials: give --kubeconfig PATH or [kubernetes] kubeconfig in the settings, set KUBECONFIG, or run in a pod ({0})")]
    Infer(#[from] kube::config::InferConfigError),
    /// The client could not be built from the credentials.
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    /// The runtime or the thread could not be started.
    #[error("starting the watch thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The running watch; dropping it stops the thread (at its next event).
#[derive(Debug)]
pub struct WatchHandle {
    /// The API server's URL, for logs.
    pub server: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl WatchHandle {
    /// Stops the watch and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Loads the credentials, then starts the watch thread. The thread sends
/// [`Update`]s on `tx` and calls `wake` after each batch; it ends when the
/// handle is dropped or `tx`'s receiver is gone.
pub fn spawn(
    config: &WatchConfig,
    tx: Sender<Received>,
    wake: Box<dyn Fn() + Send>,
) -> Result<WatchHandle, WatchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client_config = runtime.block_on(client_config(config.kubeconfig.as_ref()))?;
    let server = client_config.cluster_url.to_string();
    // The client's connection pool lives on this runtime.
    let client = runtime.block_on(async { Client::try_from(client_config) })?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let node = config.node.clone();
    let thread = std::thread::Builder::new()
        .name("kube-watch".into())
        .spawn(move || runtime.block_on(run(client, node, tx, wake, stop_rx)))?;
    Ok(WatchHandle {
        server,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

async fn client_config(path: Option<&PathBuf>) -> Result<kube::Config, WatchError> {
    let Some(path) = path else {
        return Ok(kube::Config::infer().await?);
    };
    let error = |source| WatchError::Kubeconfig {
        path: path.clone(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(error)?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(error)
}

/// One watcher's item, tagged with its kind. (Each is moved once, from
/// the stream into the mirror: boxing the large ones would buy nothing.)
#[allow(clippy::large_enum_variant)]
enum Input {
    Service(Result<watcher::Event<core::Service>, watcher::Error>),
    Slice(Result<watcher::Event<discovery::EndpointSlice>, watcher::Error>),
    Node(Result<watcher::Event<core::Node>, watcher::Error>),
    Pod(Result<watcher::Event<core::Pod>, watcher::Error>),
}

/// The annotation the EndpointSlice controller sets to when the change
/// that led to a slice's new endpoints happened.
pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The [`TRIGGER_TIME`] of an object, if it has a readable one (RFC 3339).
pub fn trigger_time(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<std::time::SystemTime> {
    let text = meta.annotations.as_ref()?.get(TRIGGER_TIME)?;
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    let nanos = u64::try_from(t.timestamp_nanos_opt()?).ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos))
}

/// Whether a watcher's error is 410 Gone: its resourceVersion is older
/// than the API server can serve (after a restart the server has no
/// events from before it), and the watcher has already gone back to
/// listing.
pub fn is_gone(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchError(status) if status.code == 410)
}

/// A watcher's stream without its 410 Gone errors (logged), so that the
/// back-off after it does not delay the relist the watcher already does:
/// after an outage the back-off's next step is its longest (6 s and more
/// after a few seconds down), and a restarted API server answers every
/// resumed watch with 410.
pub fn relist_at_once<K, S>(stream: S) -> impl futures_util::Stream<Item = S::Item>
where
    S: futures_util::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    stream.filter(|item| {
        let keep = match item {
            Err(e) if is_gone(e) => {
                info!("watch: {e}; relisting at once");
                false
            }
            _ => true,
        };
        std::future::ready(keep)
    })
}

/// One kind's watcher as the watch thread runs it: 410 Gone relists at
/// once ([`relist_at_once`]), other errors back off, items tagged `tag`.
fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    tag: fn(Result<watcher::Event<K>, watcher::Error>) -> Input,
) -> BoxStream<'static, Input>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    relist_at_once(watcher(api, config))
        .default_backoff()
        .map(tag)
        .boxed()
}

async fn run(
    client: Client,
    node: String,
    tx: Sender<Received>,
    wake: Box<dyn Fn() + Send>,
    mut stop: oneshot::Receiver<()>,
) {
    let all = watcher::Config::default();
    let pods = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let streams = vec![
        watch(Api::all(client.clone()), all.clone(), Input::Service),
        watch(Api::all(client.clone()), all.clone(), Input::Slice),
        watch(Api::all(client.clone()), all, Input::Node),
        watch(Api::all(client), pods, Input::Pod),
    ];
    let mut inputs = select_all(streams);
    let mut mirror = Mirror::new();
    let mut out = Vec::new();
    loop {
        let mut trigger = None;
        let input = tokio::select! {
            _ = &mut stop => return,
            input = inputs.next() => input,
        };
        let Some(input) = input else {
            return;
        };
        let (kind, error) = match input {
            Input::Service(Ok(e)) => {
                mirror.service(e, &mut out);
                (Kind::Service, None)
            }
            Input::Slice(Ok(e)) => {
                if let watcher::Event::Apply(s) | watcher::Event::InitApply(s) = &e {
                    trigger = trigger_time(&s.metadata);
                }
                mirror.slice(e, &mut out);
                (Kind::EndpointSlice, None)
            }
            Input::Node(Ok(e)) => {
                mirror.node(e, &mut out);
                (Kind::Node, None)
            }
            Input::Pod(Ok(e)) => {
                mirror.pod(e, &mut out);
                (Kind::Pod, None)
            }
            Input::Service(Err(e)) => (Kind::Service, Some(e)),
            Input::Slice(Err(e)) => (Kind::EndpointSlice, Some(e)),
            Input::Node(Err(e)) => (Kind::Node, Some(e)),
            Input::Pod(Err(e)) => (Kind::Pod, Some(e)),
        };
        if let Some(e) = error {
            warn!(
                "watch of {kind:?}s: {e}; retrying with back-off, the router keeps its last state"
            );
            continue;
        }
        if out.is_empty() {
            continue;
        }
        debug!("watch: {} updates", out.len());
        let at = std::time::Instant::now();
        for update in out.drain(..) {
            if update == Update::Synced {
                info!("watch: every kind listed (Services, EndpointSlices, Nodes, Pods on {node})");
            }
            let trigger = match &update {
                Update::Change(cluster::ClusterChange::EndpointSlice(_)) => trigger,
                _ => None,
            };
            if tx
                .send(Received {
                    update,
                    at,
                    trigger,
                })
                .is_err()
            {
                return;
            }
        }
        wake();
    }
}
