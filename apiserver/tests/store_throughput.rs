//! Write throughput of the storages, a measurement rather than a test:
//! `cargo test -p apiserver --test store_throughput -- --ignored --nocapture --test-threads 1`
//! prints acknowledged writes per second for 2,000 concurrent creates,
//! through the store, the API's write path, and HTTP.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::api::{Api, ApiConfig, WriteOptions};
use apiserver::resources::Resource;
use apiserver::store::{Change, EtcdServer, EtcdStorage, LogStorage, ObjectKey, Storage, Store};
use apiserver::Config;
use serde_json::json;

const WRITES: usize = 2_000;
const WRITERS: usize = 64;

/// Creates `WRITES` Pods from `WRITERS` threads and prints
/// the rate.
fn measure(label: &str, storage: Box<dyn Storage>) {
    let store = Arc::new(Store::open(storage, 100_000).expect("storage opens"));
    let started = Instant::now();
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in (t..WRITES).step_by(WRITERS) {
                    let key = ObjectKey::new(Resource::Pods, "default", &format!("p{i}"));
                    let pod =
                        json!({ "metadata": { "name": key.name }, "spec": { "containers": [] } });
                    store
                        .modify(&key, |_| Ok(Change::Put(pod)))
                        .expect("write acknowledged");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let elapsed = started.elapsed();
    assert_eq!(store.list(Resource::Pods, None).0.len(), WRITES);
    println!(
        "{label}: {WRITES} creates from {WRITERS} threads in {:.2} s: {:.0} writes/s",
        elapsed.as_secs_f64(),
        WRITES as f64 / elapsed.as_secs_f64()
    );
}

/// The same through the API's write path (decode, defaults, validation),
/// as a client's creates take it.
fn measure_api(label: &str, storage: Box<dyn Storage>) {
    let store = Arc::new(Store::open(storage, 100_000).expect("storage opens"));
    let api = Arc::new(Api::new(store, ApiConfig::default()));
    let namespace =
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "default" } });
    let _ = api.create(
        Resource::Namespaces,
        None,
        namespace,
        WriteOptions::default(),
    );
    let started = Instant::now();
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let api = api.clone();
            std::thread::spawn(move || {
                for i in (t..WRITES).step_by(WRITERS) {
                    let pod = json!({
                        "apiVersion": "v1", "kind": "Pod",
                        "metadata": { "name": format!("p{i}") },
                        "spec": { "containers": [{ "name": "c", "image": "nginx" }] },
                    });
                    api.create(
                        Resource::Pods,
                        Some("default"),
                        pod,
                        WriteOptions::default(),
                    )
                    .expect("create acknowledged");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let elapsed = started.elapsed();
    println!(
        "{label} through the API: {WRITES} creates from {WRITERS} threads in {:.2} s: {:.0} writes/s",
        elapsed.as_secs_f64(),
        WRITES as f64 / elapsed.as_secs_f64()
    );
}

/// The same over HTTP (a server in process with two runtime workers, as
/// on this machine), one connection per create.
fn measure_http(label: &str, config: Config) {
    let server = common::Server::start(Config {
        controllers: apiserver::controllers::ControllerConfig {
            enabled: false,
            kubelet_standin: None,
        },
        ..config
    });
    let address = server.address();
    let started = Instant::now();
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            std::thread::spawn(move || {
                for i in (t..WRITES).step_by(WRITERS) {
                    let body = format!(
                        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p{i}"}},"spec":{{"containers":[{{"name":"c","image":"nginx"}}]}}}}"#
                    );
                    let request = format!(
                        "POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let answer = common::http(address, &request, Duration::from_secs(30));
                    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let elapsed = started.elapsed();
    println!(
        "{label} over HTTP: {WRITES} creates from {WRITERS} clients in {:.2} s: {:.0} writes/s",
        elapsed.as_secs_f64(),
        WRITES as f64 / elapsed.as_secs_f64()
    );
    server.stop();
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn embedded_http_writes_per_second() {
    let dir = common::TempDir::new("throughput");
    measure_http(
        "embedded",
        Config {
            data_dir: Some(dir.0.clone()),
            ..Config::default()
        },
    );
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn etcd_http_writes_per_second() {
    let etcd = EtcdServer::start();
    measure_http(
        "etcd",
        Config {
            etcd: Some(etcd.url()),
            ..Config::default()
        },
    );
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn embedded_api_writes_per_second() {
    let dir = common::TempDir::new("throughput");
    measure_api(
        "embedded",
        Box::new(LogStorage::open(&dir.0).expect("data dir")),
    );
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn embedded_writes_per_second() {
    let dir = common::TempDir::new("throughput");
    measure(
        "embedded",
        Box::new(LogStorage::open(&dir.0).expect("data dir")),
    );
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn etcd_writes_per_second() {
    let etcd = EtcdServer::start();
    measure(
        "etcd",
        Box::new(EtcdStorage::connect(&etcd.url()).expect("etcd reachable")),
    );
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn etcd_api_writes_per_second() {
    let etcd = EtcdServer::start();
    measure_api(
        "etcd",
        Box::new(EtcdStorage::connect(&etcd.url()).expect("etcd reachable")),
    );
}
