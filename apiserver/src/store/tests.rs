use serde_json::json;

use super::*;

fn pod(name: &str) -> Value {
    json!({ "metadata": { "name": name, "labels": { "app": "x" } }, "spec": { "containers": [] } })
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(Resource::Pods, "default", name)
}

fn put(store: &Store, name: &str) -> Arc<Value> {
    match store.modify(&key(name), |_| Ok(Change::Put(pod(name)))) {
        Ok(Written::Stored { object, .. }) => object,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn create_stamps_metadata_and_bumps_rv() {
    let store = Store::in_memory();
    let a = put(&store, "a");
    assert_eq!(a["metadata"]["resourceVersion"], "1");
    assert_eq!(a["metadata"]["namespace"], "default");
    assert_eq!(a["kind"], "Pod");
    assert_eq!(a["apiVersion"], "v1");
    assert_eq!(a["metadata"]["generation"], 1);
    assert_eq!(a["metadata"]["uid"].as_str().map(str::len), Some(36));
    let b = put(&store, "b");
    assert_eq!(b["metadata"]["resourceVersion"], "2");
    assert_eq!(store.resource_version(), 2);
}

#[test]
fn update_keeps_uid_and_counts_generation_on_spec_change() {
    let store = Store::in_memory();
    let a = put(&store, "a");
    let mut changed = pod("a");
    changed["spec"]["nodeName"] = json!("n1");
    let Ok(Written::Stored {
        object,
        created: false,
    }) = store.modify(&key("a"), |_| Ok(Change::Put(changed)))
    else {
        panic!("update failed")
    };
    assert_eq!(object["metadata"]["uid"], a["metadata"]["uid"]);
    assert_eq!(object["metadata"]["generation"], 2);
    let mut labels_only = (*object).clone();
    labels_only["metadata"]["labels"]["x"] = json!("y");
    let Ok(Written::Stored { object, .. }) =
        store.modify(&key("a"), |_| Ok(Change::Put(labels_only)))
    else {
        panic!("update failed")
    };
    assert_eq!(object["metadata"]["generation"], 2);
}

#[test]
fn list_is_scoped_by_resource_and_namespace() {
    let store = Store::in_memory();
    put(&store, "a");
    put(&store, "b");
    let other = ObjectKey::new(Resource::Pods, "kube-system", "c");
    store
        .modify(&other, |_| Ok(Change::Put(pod("c"))))
        .expect("stored");
    let svc = ObjectKey::new(Resource::Services, "default", "s");
    store
        .modify(&svc, |_| Ok(Change::Put(json!({}))))
        .expect("stored");
    assert_eq!(store.list(Resource::Pods, Some("default")).0.len(), 2);
    assert_eq!(store.list(Resource::Pods, None).0.len(), 3);
    assert_eq!(store.list(Resource::Services, None).0.len(), 1);
    assert_eq!(store.list(Resource::Nodes, None).0.len(), 0);
}

#[test]
fn delete_of_missing_is_not_found() {
    let store = Store::in_memory();
    let err = store
        .modify(&key("nope"), |_| Ok(Change::Delete))
        .map(|_| ())
        .map_err(|e| e.code);
    assert_eq!(err, Err(404));
}

#[test]
fn watch_replays_history_and_expires_old_versions() {
    let store = Store::open(Box::<MemoryStorage>::default(), 2).expect("opens");
    put(&store, "a");
    put(&store, "b");
    put(&store, "c");
    store
        .modify(&key("a"), |_| Ok(Change::Delete))
        .expect("deleted");
    // History keeps rv 3 and 4: from 2 is fine, from 1 is gone.
    let start = store.watch(Resource::Pods, Some(2)).expect("watch");
    let kinds: Vec<_> = start.backlog.iter().map(|e| (e.rv, e.kind)).collect();
    assert_eq!(kinds, vec![(3, EventType::Added), (4, EventType::Deleted)]);
    assert_eq!(
        store
            .watch(Resource::Pods, Some(1))
            .map(|_| ())
            .map_err(|e| e.code),
        Err(410)
    );
    let now = store.watch(Resource::Pods, None).expect("watch");
    assert_eq!(now.backlog.len(), 2);
}

#[tokio::test]
async fn live_events_follow_the_backlog() {
    let store = Store::in_memory();
    put(&store, "a");
    let mut start = store.watch(Resource::Pods, Some(1)).expect("watch");
    assert!(start.backlog.is_empty());
    put(&store, "b");
    let event = start.live.recv().await.expect("event");
    assert_eq!(event.key.name, "b");
    assert_eq!(event.kind, EventType::Added);
}

#[test]
fn the_log_survives_a_restart_and_drops_a_torn_tail() {
    let dir = std::env::temp_dir().join(format!("ksr-store-{}", new_uid()));
    {
        let store =
            Store::open(Box::new(LogStorage::open(&dir).expect("dir")), 100).expect("opens");
        put(&store, "a");
        put(&store, "b");
        store
            .modify(&key("a"), |_| Ok(Change::Delete))
            .expect("deleted");
    }
    // A crash in the middle of an append leaves half a line.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("objects.log"))
        .expect("log");
    f.write_all(b"{\"Put\":{\"rv\":9,").expect("write");
    drop(f);
    let store = Store::open(Box::new(LogStorage::open(&dir).expect("dir")), 100).expect("reopens");
    assert_eq!(store.resource_version(), 3);
    let (pods, _) = store.list(Resource::Pods, None);
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["metadata"]["name"], "b");
    let c = put(&store, "c");
    assert_eq!(c["metadata"]["resourceVersion"], "4");
    drop(store);
    let store = Store::open(Box::new(LogStorage::open(&dir).expect("dir")), 100).expect("reopens");
    assert_eq!(store.list(Resource::Pods, None).0.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_log_is_compacted_while_serving() {
    let dir = std::env::temp_dir().join(format!("ksr-store-{}", new_uid()));
    let log = dir.join("objects.log");
    {
        let storage = LogStorage::open(&dir)
            .expect("dir")
            .with_compaction_after(20);
        let store = Store::open(Box::new(storage), 100).expect("opens");
        for round in 0..30 {
            let mut p = pod("a");
            p["metadata"]["labels"]["round"] = json!(round.to_string());
            store
                .modify(&key("a"), |_| Ok(Change::Put(p)))
                .expect("stored");
        }
        put(&store, "b");
        let lines = std::fs::read_to_string(&log).expect("log").lines().count();
        assert!(lines < 15, "{lines} lines: compacted once past 20 writes");
    }
    let store = Store::open(Box::new(LogStorage::open(&dir).expect("dir")), 100).expect("reopens");
    assert_eq!(store.resource_version(), 31);
    let a = store.get(&key("a")).expect("a");
    assert_eq!(a["metadata"]["labels"]["round"], "29");
    assert!(store.get(&key("b")).is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Creates `threads` x `each` Pods concurrently; returns each name with the
/// resourceVersion its write was acknowledged with.
fn concurrent_creates(store: &Arc<Store>, threads: usize, each: usize) -> Vec<(String, String)> {
    let writers: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..each)
                    .map(|i| {
                        let name = format!("p{t}-{i}");
                        let object = put(&store, &name);
                        (name, object["metadata"]["resourceVersion"].to_string())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked: Vec<_> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer"))
        .collect();
    acked.sort();
    acked
}

/// Every acknowledged write is there after a restart, with the
/// resourceVersion it was acknowledged with.
fn assert_survive_restart(open: impl Fn() -> Store) {
    let store = Arc::new(open());
    let acked = concurrent_creates(&store, 16, 32);
    let rvs: std::collections::HashSet<_> = acked.iter().map(|(_, rv)| rv).collect();
    assert_eq!(
        rvs.len(),
        acked.len(),
        "every write has its own resourceVersion"
    );
    drop(store);
    let store = open();
    let mut found: Vec<_> = store
        .list(Resource::Pods, Some("default"))
        .0
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["metadata"]["resourceVersion"].to_string(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(found, acked);
}

#[test]
fn concurrent_writes_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("ksr-store-{}", new_uid()));
    assert_survive_restart(|| {
        Store::open(Box::new(LogStorage::open(&dir).expect("dir")), 100).expect("opens")
    });
    let _ = std::fs::remove_dir_all(&dir);
}

mod etcd;
