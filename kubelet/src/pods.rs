//! The pods bound to this node, from kube-runtime's watcher with the field
//! selector `spec.nodeName=<node>`, each handed to its own task
//! ([`worker::run`]) by uid, so a pod replaced under the same name is a new
//! pod.

use std::collections::{HashMap, HashSet};
use std::pin::pin;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};
use tokio::sync::watch;

use crate::worker::{self, Context};

/// The running pod tasks by uid.
#[derive(Default)]
struct Workers {
    by_uid: HashMap<String, watch::Sender<Option<Pod>>>,
}

impl Workers {
    fn apply(&mut self, ctx: &Arc<Context>, pod: Pod) {
        let Some(uid) = pod.uid() else {
            return;
        };
        let pod = match self.by_uid.get(&uid) {
            Some(tx) => match tx.send(Some(pod)) {
                Ok(()) => return,
                // Its task has finished (released); a later view of the
                // same pod starts one again, which finds it deleted.
                Err(watch::error::SendError(pod)) => pod,
            },
            None => Some(pod),
        };
        let (tx, rx) = watch::channel(pod);
        tokio::spawn(worker::run(ctx.clone(), rx));
        self.by_uid.insert(uid, tx);
    }

    fn gone(&mut self, uid: &str) {
        if let Some(tx) = self.by_uid.remove(uid) {
            let _ = tx.send(None);
        }
    }
}

/// Follows the pods bound to this node until the stream ends (it does not:
/// the watcher relists and backs off by itself).
pub async fn follow(ctx: Context) {
    let ctx = Arc::new(ctx);
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let selector = format!("spec.nodeName={}", ctx.node.name);
    let config = watcher::Config::default().fields(&selector);
    // A 410 Gone (the resourceVersion is older than the API server has:
    // after its restart, every resumed watch) sends the watcher back to
    // listing; kept in the stream, the back-off would delay that relist
    // by its next step, the longest after an outage.
    let watch = watcher::watcher(pods, config).filter(|event| {
        let gone = matches!(event, Err(watcher::Error::WatchError(s)) if s.code == 410);
        if gone {
            log::info!("pod watch: resourceVersion expired (410 Gone): relisting at once");
        }
        std::future::ready(!gone)
    });
    let mut stream = pin!(watch.default_backoff());
    let mut workers = Workers::default();
    // The uids seen in the current (re)list: pods missing from it went
    // while the watch was down.
    let mut listed: HashSet<String> = HashSet::new();
    log::info!("watching pods with {selector}");
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(pod)) => {
                listed.extend(pod.uid());
                workers.apply(&ctx, pod);
            }
            Ok(Event::InitDone) => {
                let stale: Vec<String> = workers
                    .by_uid
                    .keys()
                    .filter(|uid| !listed.contains(*uid))
                    .cloned()
                    .collect();
                for uid in stale {
                    workers.gone(&uid);
                }
            }
            Ok(Event::Apply(pod)) => workers.apply(&ctx, pod),
            Ok(Event::Delete(pod)) => {
                if let Some(uid) = pod.uid() {
                    workers.gone(&uid);
                }
            }
            Err(e) => log::warn!("pod watch: {e} (retrying with back-off)"),
        }
        workers.by_uid.retain(|_, tx| !tx.is_closed());
    }
}
