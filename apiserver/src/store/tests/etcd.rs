//! The store on etcd: keys and revisions as kube-apiserver lays them out,
//! compare-and-commit, and two stores on one etcd staying consistent.

use std::time::{Duration, Instant};

use super::*;

fn open(etcd: &EtcdServer) -> Store {
    let storage = EtcdStorage::connect(&etcd.url()).expect("etcd reachable");
    Store::open(Box::new(storage), 100).expect("opens")
}

/// Waits (at most 10 s) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The raw value and mod_revision of an etcd key, read with etcd's own client.
fn raw(etcd: &EtcdServer, key: &str) -> Option<(Value, i64)> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut client = etcd_client::Client::connect([etcd.url()], None)
            .await
            .expect("connects");
        let response = client.get(key, None).await.expect("get");
        response.kvs().first().map(|kv| {
            (
                serde_json::from_slice(kv.value()).expect("JSON value"),
                kv.mod_revision(),
            )
        })
    })
}

#[test]
fn objects_live_under_registry_with_mod_revision_as_resource_version() {
    let etcd = EtcdServer::start();
    let store = open(&etcd);
    let a = put(&store, "a");
    let (value, revision) = raw(&etcd, "/registry/pods/default/a").expect("stored in etcd");
    assert_eq!(value["metadata"]["name"], "a");
    assert_eq!(value["metadata"]["uid"], a["metadata"]["uid"]);
    assert_eq!(a["metadata"]["resourceVersion"], revision.to_string());
    assert_eq!(store.get(&key("a")).as_deref(), Some(&*a));
    let ns = ObjectKey::new(Resource::Namespaces, "", "web");
    store
        .modify(&ns, |_| Ok(Change::Put(json!({}))))
        .expect("stored");
    assert!(raw(&etcd, "/registry/namespaces/web").is_some());
    // A list is at the store's revision, past every object in it.
    let (pods, rv) = store.list(Resource::Pods, None);
    assert_eq!(pods.len(), 1);
    assert!(rv > u64::try_from(revision).unwrap_or(u64::MAX));
    store
        .modify(&key("a"), |_| Ok(Change::Delete))
        .expect("deleted");
    assert!(raw(&etcd, "/registry/pods/default/a").is_none());
    let err = store
        .modify(&key("a"), |_| Ok(Change::Delete))
        .map(|_| ())
        .map_err(|e| e.code);
    assert_eq!(err, Err(404));
}

#[test]
fn a_write_from_a_stale_revision_is_a_conflict_and_changes_nothing() {
    let etcd = EtcdServer::start();
    let store = open(&etcd);
    let a = put(&store, "a");
    let stale = object_rv(&a).expect("rv");
    let mut changed = pod("a");
    changed["metadata"]["labels"]["app"] = json!("y");
    store
        .modify(&key("a"), |_| Ok(Change::Put(changed.clone())))
        .expect("updated");
    let storage = EtcdStorage::connect(&etcd.url()).expect("etcd reachable");
    let outcome = storage.commit(&key("a"), Some(stale), Some(&pod("a")));
    assert!(
        matches!(outcome, Err(StorageError::Conflict(_))),
        "{outcome:?}"
    );
    let outcome = storage.commit(&key("a"), None, Some(&pod("a")));
    assert!(
        matches!(outcome, Err(StorageError::Conflict(_))),
        "{outcome:?}"
    );
    let (value, _) = raw(&etcd, "/registry/pods/default/a").expect("still there");
    assert_eq!(value["metadata"]["labels"]["app"], "y");
}

#[test]
fn two_stores_on_one_etcd_see_each_others_writes_as_events() {
    let etcd = EtcdServer::start();
    let one = open(&etcd);
    let two = open(&etcd);
    let mut events = two.subscribe();
    let a = put(&one, "a");
    let event = events.blocking_recv().expect("event");
    assert_eq!(
        (event.kind, event.key.name.as_str()),
        (EventType::Added, "a")
    );
    assert_eq!(event.object, a);
    assert_eq!(two.get(&key("a")), Some(a));

    let mut events = one.subscribe();
    let mut changed = pod("a");
    changed["metadata"]["labels"]["app"] = json!("y");
    let Ok(Written::Stored { object, .. }) = two.modify(&key("a"), |_| Ok(Change::Put(changed)))
    else {
        panic!("update failed")
    };
    let event = events.blocking_recv().expect("event");
    assert_eq!(event.kind, EventType::Modified);
    assert_eq!(event.object, object);
    two.modify(&key("a"), |_| Ok(Change::Delete))
        .expect("deleted");
    let event = events.blocking_recv().expect("event");
    assert_eq!(event.kind, EventType::Deleted);
    eventually("the delete on the first store", || {
        one.get(&key("a")).is_none()
    });
    assert_eq!(one.resource_version(), two.resource_version());
}

#[test]
fn a_reopened_store_lists_everything_back_and_watches_from_there() {
    let etcd = EtcdServer::start();
    let (rv, b) = {
        let store = open(&etcd);
        put(&store, "a");
        let b = put(&store, "b");
        store
            .modify(&key("a"), |_| Ok(Change::Delete))
            .expect("deleted");
        (store.resource_version(), b)
    };
    let store = open(&etcd);
    assert_eq!(store.resource_version(), rv);
    let (pods, _) = store.list(Resource::Pods, None);
    assert_eq!(pods, vec![b]);
    let c = put(&store, "c");
    assert!(object_rv(&c).expect("rv") > rv);
    let start = store.watch(Resource::Pods, Some(rv)).expect("watch");
    let names: Vec<_> = start.backlog.iter().map(|e| e.key.name.as_str()).collect();
    assert_eq!(names, vec!["c"]);
}

#[test]
fn concurrent_writes_survive_a_restart_on_etcd() {
    let etcd = EtcdServer::start();
    assert_survive_restart(|| open(&etcd));
}

#[test]
fn a_watch_behind_an_etcd_compaction_reloads_and_reports_the_differences() {
    let etcd = EtcdServer::start();
    let store = open(&etcd);
    put(&store, "a");
    put(&store, "b");
    // A cache that saw everything up to here, then lost its watch.
    let cache = Arc::new(super::super::cache::Cache::new(100));
    let r0 = store.resource_version();
    let objects = ["a", "b"].map(|n| (key(n), store.get(&key(n)).expect("stored")));
    cache.load(Loaded {
        rv: r0,
        objects: objects.to_vec(),
    });
    let mut events = cache.subscribe();
    store
        .modify(&key("a"), |_| Ok(Change::Delete))
        .expect("deleted");
    let mut changed = pod("b");
    changed["metadata"]["labels"]["app"] = json!("y");
    store
        .modify(&key("b"), |_| Ok(Change::Put(changed)))
        .expect("updated");
    put(&store, "c");
    let now = store.resource_version();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut client = etcd_client::Client::connect([etcd.url()], None)
            .await
            .expect("connects");
        client
            .compact(i64::try_from(now).expect("revision"), None)
            .await
            .expect("compacted");
        let follow = super::super::etcd::follow(
            client,
            etcd.url(),
            i64::try_from(r0).expect("revision") + 1,
            cache.clone(),
        );
        let _ = tokio::time::timeout(Duration::from_secs(2), follow).await;
    });
    let seen: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| (e.kind, e.key.name.clone()))
        .collect();
    // In revision order; the delete is at the reload's revision, which is
    // c's (the last write), and removals come first there.
    assert_eq!(
        seen,
        vec![
            (EventType::Modified, "b".to_string()),
            (EventType::Deleted, "a".to_string()),
            (EventType::Added, "c".to_string()),
        ]
    );
    let state = cache.lock();
    assert_eq!(state.rv, now);
    let names: Vec<_> = state.objects.keys().map(|k| k.name.as_str()).collect();
    assert_eq!(names, vec!["b", "c"]);
    drop(state);
    // Watchers from before the gap relist.
    let expired = cache
        .watch(Resource::Pods, Some(r0))
        .map(|_| ())
        .map_err(|e| e.code);
    assert_eq!(expired, Err(410));
}
