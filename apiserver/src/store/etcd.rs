//! etcd as the storage (`--etcd URL`), laid out like kube-apiserver's:
//! objects as JSON under `/registry/<resource>/<namespace>/<name>`
//! (`/registry/<resource>/<name>` when cluster-scoped), resourceVersion =
//! the key's mod_revision, writes as transactions that compare it, and the
//! cache fed from a watch of the whole prefix, so every API server on one
//! etcd serves the same objects and events.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue, Txn, TxnOp,
    WatchOptions,
};
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::storage::{with_rv, Committed, Loaded, Sink, Storage, StorageError};
use super::ObjectKey;
use crate::resources::Resource;

/// Where the objects live in etcd.
const PREFIX: &str = "/registry/";

/// Keys per range request when loading (etcd answers in pages).
const PAGE: i64 = 1_000;

/// The etcd storage: a client on its own small runtime, so the store's
/// synchronous callers can wait for it from any thread.
pub struct EtcdStorage {
    endpoint: String,
    runtime: Option<Runtime>,
    client: Client,
    watch: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EtcdStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EtcdStorage({})", self.endpoint)
    }
}

/// The etcd key of an object.
pub fn etcd_key(key: &ObjectKey) -> String {
    let resource = key.resource.plural();
    if key.namespace.is_empty() {
        format!("{PREFIX}{resource}/{}", key.name)
    } else {
        format!("{PREFIX}{resource}/{}/{}", key.namespace, key.name)
    }
}

/// The object key of an etcd key under [`PREFIX`].
fn object_key(etcd_key: &str) -> Option<ObjectKey> {
    let rest = etcd_key.strip_prefix(PREFIX)?;
    let (plural, rest) = rest.split_once('/')?;
    let resource = Resource::ALL.into_iter().find(|r| r.plural() == plural)?;
    let (namespace, name) = if resource.namespaced() {
        rest.split_once('/')?
    } else {
        ("", rest)
    };
    Some(ObjectKey::new(resource, namespace, name))
}

/// The object in a key-value, with its resourceVersion.
fn decode(kv: &KeyValue) -> Result<(ObjectKey, Value), StorageError> {
    let name = String::from_utf8_lossy(kv.key()).into_owned();
    let bad = |message: String| StorageError::BadValue {
        key: name.clone(),
        message,
    };
    let key = object_key(&name).ok_or_else(|| bad("not an object key of this server".into()))?;
    let object: Value = serde_json::from_slice(kv.value()).map_err(|e| bad(e.to_string()))?;
    let rv = u64::try_from(kv.mod_revision()).unwrap_or_default();
    Ok((key, with_rv(object, rv)))
}

impl EtcdStorage {
    /// A client of the etcd at `endpoint` (e.g. `http://127.0.0.1:2379`).
    pub fn connect(endpoint: &str) -> Result<EtcdStorage, StorageError> {
        let etcd_error = |message: String| StorageError::Etcd {
            endpoint: endpoint.to_string(),
            message,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ksr-etcd")
            .enable_all()
            .build()
            .map_err(|e| etcd_error(e.to_string()))?;
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(10));
        let url = endpoint.to_string();
        let client = run(&runtime, async move {
            Client::connect([url], Some(options)).await
        })
        .ok_or_else(|| etcd_error("the client stopped".into()))?
        .map_err(|e| etcd_error(e.to_string()))?;
        Ok(EtcdStorage {
            endpoint: endpoint.to_string(),
            runtime: Some(runtime),
            client,
            watch: None,
        })
    }

    fn error(&self, message: impl ToString) -> StorageError {
        StorageError::Etcd {
            endpoint: self.endpoint.clone(),
            message: message.to_string(),
        }
    }

    /// Runs a request on the client's runtime and waits for its answer.
    fn request<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let runtime = self.runtime.as_ref().ok_or_else(|| self.error("stopped"))?;
        run(runtime, f)
            .ok_or_else(|| self.error("the client stopped"))?
            .map_err(|e| self.error(e))
    }
}

/// Every object under the prefix at one revision, page by page.
async fn load(client: &Client, endpoint: &str) -> Result<Loaded, StorageError> {
    let mut objects = Vec::new();
    let mut from = PREFIX.as_bytes().to_vec();
    // The end of the prefix range: its last byte plus one.
    let mut end = PREFIX.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let mut revision = 0;
    loop {
        let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let page = client
            .kv_client()
            .get(from.clone(), Some(options))
            .await
            .map_err(|e| StorageError::Etcd {
                endpoint: endpoint.to_string(),
                message: e.to_string(),
            })?;
        if revision == 0 {
            revision = page.header().map(|h| h.revision()).unwrap_or_default();
        }
        for kv in page.kvs() {
            let (key, object) = decode(kv)?;
            objects.push((key, Arc::new(object)));
        }
        match page.kvs().last() {
            Some(last) if page.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => break,
        }
    }
    Ok(Loaded {
        rv: u64::try_from(revision).unwrap_or_default(),
        objects,
    })
}

/// Runs `f` on `runtime` and blocks the calling thread for its output
/// (None if the runtime dropped it).
fn run<T, F>(runtime: &Runtime, f: F) -> Option<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(f.await);
    });
    super::blocking(|| rx.recv().ok())
}

/// Follows the prefix from revision `from` and reports every change to
/// the sink; reconnects after an error and resumes where it stopped.
pub(super) async fn follow(client: Client, endpoint: String, mut from: i64, sink: Arc<dyn Sink>) {
    loop {
        let options = WatchOptions::new().with_prefix().with_start_revision(from);
        let mut watch = client.watch_client();
        match watch.watch(PREFIX, Some(options)).await {
            Ok(mut stream) => loop {
                match stream.message().await {
                    Ok(Some(response)) if response.canceled() => {
                        // etcd compacted the revisions this server had not
                        // seen yet (while it was disconnected): take the
                        // whole prefix again and go on from there.
                        log::warn!(
                            "etcd at {endpoint} compacted revision {} before this API server saw it ({}); reloading",
                            response.compact_revision(),
                            response.cancel_reason()
                        );
                        match load(&client, &endpoint).await {
                            Ok(loaded) => {
                                from = i64::try_from(loaded.rv).unwrap_or(i64::MAX - 1) + 1;
                                sink.reloaded(loaded);
                            }
                            Err(e) => log::warn!("reloading: {e}"),
                        }
                        break;
                    }
                    Ok(Some(response)) => {
                        let mut batch = Vec::new();
                        for event in response.events() {
                            let Some(kv) = event.kv() else { continue };
                            let rv = kv.mod_revision();
                            from = from.max(rv + 1);
                            let committed = match event.event_type() {
                                EventType::Put => match decode(kv) {
                                    Ok((key, object)) => Committed {
                                        rv: u64::try_from(rv).unwrap_or_default(),
                                        key,
                                        object: Some(Arc::new(object)),
                                    },
                                    Err(e) => {
                                        log::warn!("skipping {e}");
                                        continue;
                                    }
                                },
                                EventType::Delete => {
                                    let name = String::from_utf8_lossy(kv.key());
                                    let Some(key) = object_key(&name) else {
                                        continue;
                                    };
                                    Committed {
                                        rv: u64::try_from(rv).unwrap_or_default(),
                                        key,
                                        object: None,
                                    }
                                }
                            };
                            batch.push(committed);
                        }
                        if !batch.is_empty() {
                            sink.committed(batch);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        log::warn!("etcd watch at {endpoint}: {e}; resuming from revision {from}");
                        break;
                    }
                }
            },
            Err(e) => log::warn!("etcd watch at {endpoint}: {e}; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Storage for EtcdStorage {
    fn start(&mut self, sink: Arc<dyn Sink>) -> Result<Loaded, StorageError> {
        let client = self.client.clone();
        let endpoint = self.endpoint.clone();
        let runtime = self.runtime.as_ref().ok_or_else(|| self.error("stopped"))?;
        let loaded = run(runtime, async move { load(&client, &endpoint).await })
            .ok_or_else(|| self.error("the client stopped"))??;
        let from = i64::try_from(loaded.rv).unwrap_or(i64::MAX - 1) + 1;
        let runtime = self.runtime.as_ref().ok_or_else(|| self.error("stopped"))?;
        let task = follow(self.client.clone(), self.endpoint.clone(), from, sink);
        self.watch = Some(runtime.spawn(task));
        Ok(loaded)
    }

    fn commit(
        &self,
        key: &ObjectKey,
        expected: Option<u64>,
        object: Option<&Value>,
    ) -> Result<u64, StorageError> {
        let name = etcd_key(key);
        let compare = match expected {
            None => Compare::create_revision(name.clone(), CompareOp::Equal, 0),
            Some(rv) => Compare::mod_revision(
                name.clone(),
                CompareOp::Equal,
                i64::try_from(rv).unwrap_or(-1),
            ),
        };
        let op = match object {
            Some(object) => {
                // The resourceVersion is the key's mod_revision, not part
                // of the value (as in kube-apiserver).
                let mut value = object.clone();
                if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("resourceVersion");
                }
                TxnOp::put(name, serde_json::to_vec(&value).unwrap_or_default(), None)
            }
            None => TxnOp::delete(name, None),
        };
        let mut kv = self.client.kv_client();
        let txn = Txn::new().when([compare]).and_then([op]);
        let response = self.request(async move { kv.txn(txn).await })?;
        if !response.succeeded() {
            return Err(StorageError::Conflict(key.clone()));
        }
        let rv = response.header().map(|h| h.revision()).unwrap_or_default();
        Ok(u64::try_from(rv).unwrap_or_default())
    }
}

impl Drop for EtcdStorage {
    fn drop(&mut self) {
        if let Some(watch) = self.watch.take() {
            watch.abort();
        }
        // Dropping a runtime may not block inside another runtime's task.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
