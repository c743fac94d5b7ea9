//! Watches over HTTP: events from a resourceVersion, bookmarks, 410 for a
//! version older than the history, selectors turning into ADDED/DELETED;
//! in memory and on etcd (the watch cache fed from etcd's watch).

mod common;

use std::time::Duration;

use apiserver::api::Api;
use apiserver::resources::Resource;
use apiserver::store::EtcdServer;
use apiserver::Config;
use common::*;
use serde_json::json;

fn get(address: std::net::SocketAddr, path: &str) -> String {
    http(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        Duration::from_secs(5),
    )
}

fn create_pod(api: &Api, name: &str, app: &str) {
    let pod = json!({"metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    api.create(Resource::Pods, Some("default"), pod, Api::internal())
        .expect("pod created");
}

/// The default (in-memory) configuration, or one on `etcd`.
fn storage(etcd: Option<&EtcdServer>) -> Config {
    Config {
        etcd: etcd.map(EtcdServer::url),
        ..Config::default()
    }
}

#[test]
fn watch_from_a_version_with_selectors_and_bookmarks() {
    watch_from_a_version(storage(None));
}

#[test]
fn watch_from_a_version_with_selectors_and_bookmarks_on_etcd() {
    watch_from_a_version(storage(Some(&EtcdServer::start())));
}

fn watch_from_a_version(config: Config) {
    let server = Server::start(Config {
        controllers: apiserver::controllers::ControllerConfig {
            enabled: false,
            kubelet_standin: None,
        },
        ..config
    });
    let api = server.running.as_ref().expect("running").api.clone();
    let rv = api.store().resource_version();
    create_pod(&api, "a", "web");
    create_pod(&api, "b", "db");
    // a stops matching app=web: a watcher of app=web sees it DELETED.
    let path = apiserver::request::ObjectPath {
        resource: Resource::Pods,
        namespace: Some("default".into()),
        name: Some("a".into()),
        subresource: None,
    };
    api.patch(
        &path,
        apiserver::patch::PatchType::Merge,
        br#"{"metadata":{"labels":{"app":"db"}}}"#,
        Api::internal(),
    )
    .expect("patched");

    let out = get(
        server.address(),
        &format!("/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}&labelSelector=app%3Dweb&timeoutSeconds=1"),
    );
    let events: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .filter(|e| e.is_object())
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![("ADDED".into(), "a".into()), ("DELETED".into(), "a".into())],
        "{out}"
    );

    server.stop();
}

#[test]
fn too_old_versions_expire_and_bookmarks_come() {
    too_old_versions_expire(storage(None));
}

#[test]
fn too_old_versions_expire_and_bookmarks_come_on_etcd() {
    too_old_versions_expire(storage(Some(&EtcdServer::start())));
}

fn too_old_versions_expire(config: Config) {
    let server = Server::start(Config {
        watch_history: 2,
        controllers: apiserver::controllers::ControllerConfig {
            enabled: false,
            kubelet_standin: None,
        },
        ..config
    });
    let api = server.running.as_ref().expect("running").api.clone();
    let rv = api.store().resource_version();
    for name in ["a", "b", "c", "d"] {
        create_pod(&api, name, "web");
    }
    let out = get(
        server.address(),
        &format!("/api/v1/pods?watch=1&resourceVersion={rv}&timeoutSeconds=1"),
    );
    assert!(out.contains("\"type\":\"ERROR\""), "{out}");
    assert!(
        out.contains("\"code\":410") && out.contains("\"reason\":\"Expired\""),
        "{out}"
    );

    // No resourceVersion: the current objects as ADDED, then live events.
    let out = get(
        server.address(),
        "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1",
    );
    assert_eq!(out.matches("\"type\":\"ADDED\"").count(), 4, "{out}");

    let out = get(
        server.address(),
        &format!(
            "/api/v1/pods?watch=1&resourceVersion={}&allowWatchBookmarks=true&timeoutSeconds=1",
            api.store().resource_version()
        ),
    );
    assert!(out.contains("\"type\":\"BOOKMARK\""), "{out}");
    server.stop();
}

#[test]
fn streaming_lists_end_with_a_marked_bookmark() {
    streaming_lists(storage(None));
}

#[test]
fn streaming_lists_end_with_a_marked_bookmark_on_etcd() {
    streaming_lists(storage(Some(&EtcdServer::start())));
}

fn streaming_lists(config: Config) {
    let server = Server::start(Config {
        controllers: apiserver::controllers::ControllerConfig {
            enabled: false,
            kubelet_standin: None,
        },
        ..config
    });
    let api = server.running.as_ref().expect("running").api.clone();
    create_pod(&api, "a", "web");
    let out = get(
        server.address(),
        "/api/v1/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1",
    );
    let added = out.find("\"type\":\"ADDED\"").expect("the pod as ADDED");
    let end = out
        .find("k8s.io/initial-events-end")
        .expect("the end marker");
    assert!(added < end, "{out}");
    server.stop();
}
