//! Watches: the backlog from the requested resourceVersion, then live
//! events, filtered by namespace and selectors (an object that stops
//! matching is sent as DELETED, one that starts matching as ADDED), with
//! BOOKMARKs when asked, as JSON lines on a chunked response.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::request::Query;
use crate::resources::Resource;
use crate::store::{Event, EventType, Store};
use crate::table;

/// What one watch sends.
pub struct WatchSpec {
    /// The resource.
    pub resource: Resource,
    /// The namespace, None for all.
    pub namespace: Option<String>,
    /// Selectors and options.
    pub query: Query,
    /// Objects as one-row Tables (`kubectl get -w`).
    pub table: bool,
}

/// How often a bookmark is sent to a watcher that asked for them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);
/// The longest watch when the client gives no timeout.
const MAX_WATCH: Duration = Duration::from_secs(30 * 60);

impl WatchSpec {
    fn matches(&self, event: &Event, object: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| event.key.namespace == ns)
            && self.query.labels.matches_object(object)
            && self.query.fields.matches(object)
    }

    /// The event type this watcher sees for an event, if any.
    fn translate(&self, event: &Event) -> Option<EventType> {
        if event.key.resource != self.resource {
            return None;
        }
        let now = self.matches(event, &event.object);
        let before = event
            .previous
            .as_deref()
            .is_some_and(|p| self.matches(event, p));
        match (event.kind, before, now) {
            (EventType::Deleted, true, _) => Some(EventType::Deleted),
            (EventType::Deleted, false, _) => None,
            (EventType::Added, _, true) => Some(EventType::Added),
            (EventType::Modified, true, true) => Some(EventType::Modified),
            (EventType::Modified, false, true) => Some(EventType::Added),
            (EventType::Modified, true, false) => Some(EventType::Deleted),
            _ => None,
        }
    }

    fn line(&self, kind: &str, object: &Value) -> Bytes {
        let object = if self.table {
            let rv = crate::store::object_rv(object).unwrap_or(0);
            table::table(
                self.resource,
                &[object],
                rv,
                table::IncludeObject::Metadata,
                chrono::Utc::now(),
            )
        } else {
            object.clone()
        };
        let mut line =
            serde_json::to_vec(&json!({ "type": kind, "object": object })).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let gv = self.resource.group_version();
        let mut object = json!({
            "kind": self.resource.kind(),
            "apiVersion": gv.api_version(),
            "metadata": { "resourceVersion": rv.to_string() },
        });
        if initial_events_end {
            object["metadata"]["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let mut line = serde_json::to_vec(&json!({ "type": "BOOKMARK", "object": object }))
            .unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

/// Starts a watch; the receiver yields the response chunks.
pub fn start(store: &Arc<Store>, spec: WatchSpec) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(256);
    // A streaming list starts from the current objects whatever the
    // resourceVersion says (NotOlderThan: the latest is never older).
    let from = if spec.query.send_initial_events {
        None
    } else {
        spec.query.resource_version
    };
    let start = store.watch(spec.resource, from);
    tokio::spawn(async move {
        let start = match start {
            Ok(s) => s,
            Err(e) => {
                // As the real watch cache does: 200 with one ERROR event
                // carrying the 410 Expired Status; the client relists.
                let _ = tx.send(spec.line("ERROR", &e.to_status())).await;
                return;
            }
        };
        let mut last = start.rv;
        for event in &start.backlog {
            if let Some(kind) = spec.translate(event) {
                if tx
                    .send(spec.line(kind.as_str(), &event.object))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        // A bookmark once the backlog is sent tells the client it is caught
        // up to the store's resourceVersion (and saves it a relist on 410).
        let initial_end = spec.query.send_initial_events;
        if (spec.query.bookmarks || initial_end)
            && tx.send(spec.bookmark(last, initial_end)).await.is_err()
        {
            return;
        }
        let mut live = start.live;
        let deadline = tokio::time::sleep(
            spec.query
                .timeout_seconds
                .map(Duration::from_secs)
                .unwrap_or(MAX_WATCH),
        );
        tokio::pin!(deadline);
        let mut bookmarks = tokio::time::interval(BOOKMARK_EVERY);
        bookmarks.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = bookmarks.tick(), if spec.query.bookmarks => {
                    if tx.send(spec.bookmark(last, false)).await.is_err() {
                        return;
                    }
                }
                event = live.recv() => match event {
                    Ok(event) => {
                        if event.rv <= start.rv {
                            continue;
                        }
                        last = event.rv;
                        if let Some(kind) = spec.translate(&event) {
                            if tx.send(spec.line(kind.as_str(), &event.object)).await.is_err() {
                                return;
                            }
                        }
                    }
                    // A watcher too slow for the buffer ends; it resumes
                    // from its last resourceVersion.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    rx
}
