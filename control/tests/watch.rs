//! The router's watch against the project's own API server in process:
//! what the watch reports, applied to a `Cluster`, equals what the API
//! holds, through creations, endpoint changes, deletions, another proxy's
//! Service and an API server restart.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde_json::json;

use cluster::{Cluster, ClusterChange, ObjectKey};
use control::kube::{
    spawn, translate_node, translate_pod, translate_service, translate_slice, Received, Update,
    WatchConfig, SERVICE_PROXY_NAME,
};
use control::settings::ClusterSettings;

const NODE: &str = "mac-master";
/// How long one step may take.
const STEP: Duration = Duration::from_secs(5);
/// How long the resync after a restart may take (the watcher's back-off
/// starts at 0.8 s and doubles).
const RESTART: Duration = Duration::from_secs(15);

/// The API server in process, plain HTTP, no tokens, data on disk.
struct Server {
    runtime: tokio::runtime::Runtime,
    running: Option<apiserver::Running>,
}

impl Server {
    fn start(listen: SocketAddr, data: &Path) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = runtime
            .block_on(apiserver::start(apiserver::Config {
                listen: vec![listen],
                data_dir: Some(data.to_path_buf()),
                ..apiserver::Config::default()
            }))
            .expect("the API server starts");
        Server {
            runtime,
            running: Some(running),
        }
    }

    fn address(&self) -> SocketAddr {
        self.running.as_ref().expect("running").address()
    }

    /// A kube client on this server's runtime.
    fn client(&self, kubeconfig: &Path) -> Client {
        self.runtime.block_on(async {
            let kc = Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
            let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .expect("client config");
            Client::try_from(config).expect("client")
        })
    }

    /// Stops it like a killed process: listeners, connections, controllers.
    fn stop(mut self) {
        drop(self.running.take());
        self.runtime.shutdown_timeout(Duration::from_secs(2));
    }
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("ksr-control-watch-{}", apiserver::store::new_uid()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn kubeconfig(dir: &Path, address: SocketAddr) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = apiserver::init::plain_kubeconfig(&format!("http://{address}"));
    std::fs::write(&path, text).expect("kubeconfig");
    path
}

fn object<T: DeserializeOwned>(json: serde_json::Value) -> T {
    serde_json::from_value(json).expect("a valid object")
}

fn settings() -> ClusterSettings {
    ClusterSettings {
        pod_cidr: "10.10.0.0/16".parse().expect("cidr"),
        service_cidr: "10.96.0.0/12".parse().expect("cidr"),
        dns_domain: "cluster.local".into(),
        overlay: cluster::Overlay::default(),
    }
}

/// The router's side: the watch's updates applied to a `Cluster`.
struct Follower {
    rx: Receiver<Received>,
    cluster: Cluster,
    synced: bool,
    /// Every Service the watch ever sent.
    services_seen: BTreeSet<ObjectKey>,
    /// Every slice the watch ever sent.
    slices_seen: BTreeSet<ObjectKey>,
}

impl Follower {
    /// Applies updates until `done` holds, for at most `limit`.
    fn until(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&Follower) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(received) => self.apply(received.update),
                Err(_) => panic!(
                    "timed out after {limit:?} waiting for {what}; the router has {:#?}",
                    summary(&self.cluster)
                ),
            }
            while let Ok(received) = self.rx.try_recv() {
                self.apply(received.update);
            }
        }
    }

    fn apply(&mut self, update: Update) {
        match update {
            Update::Synced => self.synced = true,
            Update::Change(change) => {
                match &change {
                    ClusterChange::Service(s) => {
                        self.services_seen
                            .insert(ObjectKey::new(&s.namespace, &s.name));
                    }
                    ClusterChange::EndpointSlice(s) => {
                        self.slices_seen.insert(s.key.clone());
                    }
                    _ => {}
                }
                self.cluster.apply_change(&change);
            }
        }
    }

    fn ready_endpoints(&self, service: &str) -> Vec<String> {
        let Some(svc) = self.cluster.service("default", service) else {
            return Vec::new();
        };
        svc.ports
            .iter()
            .flat_map(|p| self.cluster.endpoints(svc, p))
            .map(|e| format!("{}:{}", e.ip, e.port))
            .collect()
    }
}

/// Services, slices, nodes and pods, for comparisons and failure messages
/// (nodes arrive in watch order, so they are sorted here).
type Summary = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

fn summary(c: &Cluster) -> Summary {
    let mut nodes: Vec<String> = c.nodes.iter().map(|n| format!("{n:?}")).collect();
    nodes.sort();
    (
        c.services.iter().map(|s| format!("{s:?}")).collect(),
        c.endpoint_slices
            .iter()
            .flatten()
            .map(|s| format!("{s:?}"))
            .collect(),
        nodes,
        c.pods.iter().map(|p| format!("{p:?}")).collect(),
    )
}

/// What the router should hold: the API's objects listed now, translated
/// one by one (another proxy's Services and their slices left out).
fn expected(server: &Server, client: &Client) -> Summary {
    let cluster = server.runtime.block_on(async {
        let all = ListParams::default();
        let services = Api::<Service>::all(client.clone())
            .list(&all)
            .await
            .expect("list");
        let slices = Api::<EndpointSlice>::all(client.clone())
            .list(&all)
            .await
            .expect("list");
        let nodes = Api::<Node>::all(client.clone())
            .list(&all)
            .await
            .expect("list");
        let pods = Api::<Pod>::all(client.clone())
            .list(&ListParams::default().fields(&format!("spec.nodeName={NODE}")))
            .await
            .expect("list");
        let mut c = settings().empty_cluster();
        let mut foreign = BTreeSet::new();
        for s in &services {
            if s.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(SERVICE_PROXY_NAME))
            {
                foreign.insert(ObjectKey::new(
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone().unwrap_or_default(),
                ));
            }
            if let Some(s) = translate_service(s).expect("readable") {
                c.apply_change(&ClusterChange::Service(s));
            }
        }
        for s in &slices {
            if let Some(s) = translate_slice(s).expect("readable") {
                if !foreign.contains(&s.service_key()) {
                    c.apply_change(&ClusterChange::EndpointSlice(s));
                }
            }
        }
        for n in &nodes {
            if let Some(n) = translate_node(n).expect("readable") {
                c.apply_change(&ClusterChange::Node(n));
            }
        }
        for p in &pods {
            if let Some(p) = translate_pod(p).expect("readable") {
                c.apply_change(&ClusterChange::Pod(p));
            }
        }
        c
    });
    summary(&cluster)
}

fn create<K>(server: &Server, api: &Api<K>, json: serde_json::Value) -> K
where
    K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    server
        .runtime
        .block_on(api.create(&PostParams::default(), &object(json)))
        .expect("created")
}

fn node(server: &Server, client: &Client, name: &str, cidr: &str, ip: &str) {
    let nodes = Api::<Node>::all(client.clone());
    create(
        server,
        &nodes,
        json!({"metadata": {"name": name}, "spec": {"podCIDR": cidr}}),
    );
    let status = json!({"status": {"addresses": [{"type": "InternalIP", "address": ip}]}});
    server
        .runtime
        .block_on(nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)))
        .expect("node status");
}

fn selectorless(server: &Server, client: &Client, name: &str, ip: &str, labels: serde_json::Value) {
    create(
        server,
        &Api::<Service>::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": name, "labels": labels},
               "spec": {"clusterIP": ip, "ports": [{"port": 80, "targetPort": 8080}]}}),
    );
}

fn slice_json(service: &str, name: &str, ips: &[&str]) -> serde_json::Value {
    let endpoints: Vec<_> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    json!({"metadata": {"name": name, "namespace": "default",
                        "labels": {"kubernetes.io/service-name": service}},
           "addressType": "IPv4", "ports": [{"port": 8080, "protocol": "TCP"}],
           "endpoints": endpoints})
}

#[test]
fn the_watch_follows_the_api_through_changes_and_a_restart() {
    let dir = TempDir::new();
    let data = dir.0.join("data");
    let server = Server::start(SocketAddr::from(([127, 0, 0, 1], 0)), &data);
    let address = server.address();
    let kubeconfig = kubeconfig(&dir.0, address);
    let client = server.client(&kubeconfig);
    node(&server, &client, NODE, "10.10.0.0/24", "192.168.191.144");
    node(
        &server,
        &client,
        "mac-worker",
        "10.10.1.0/24",
        "192.168.191.145",
    );

    let (tx, rx) = crossbeam_channel::unbounded();
    let watch = spawn(
        &WatchConfig {
            kubeconfig: Some(kubeconfig.clone()),
            node: NODE.into(),
        },
        tx,
        Box::new(|| {}),
    )
    .expect("the watch starts");
    let mut router = Follower {
        rx,
        cluster: settings().empty_cluster(),
        synced: false,
        services_seen: BTreeSet::new(),
        slices_seen: BTreeSet::new(),
    };
    router.until("the first sync", STEP, |r| r.synced);
    assert_eq!(summary(&router.cluster), expected(&server, &client));
    assert!(router.cluster.service("default", "kubernetes").is_some());
    assert_eq!(router.cluster.nodes.len(), 2);

    // A Deployment and its Service: the controllers make pods and a slice.
    create(
        &server,
        &Api::<Deployment>::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "nginx-deployment"},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "nginx"}},
                        "template": {"metadata": {"labels": {"app": "nginx"}},
                                     "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                        "ports": [{"containerPort": 80, "name": "http"}]}]}}}}),
    );
    create(
        &server,
        &Api::<Service>::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "nginx-svc"},
               "spec": {"clusterIP": "10.101.182.177", "selector": {"app": "nginx"},
                        "ports": [{"port": 80, "targetPort": "http"}]}}),
    );
    router.until("nginx-svc with two ready endpoints", STEP, |r| {
        r.ready_endpoints("nginx-svc").len() == 2
    });

    // Another proxy's Service and its slice never appear; a Service and a
    // slice written after them do.
    selectorless(
        &server,
        &client,
        "other-proxy",
        "10.96.0.40",
        json!({SERVICE_PROXY_NAME: "someone-else"}),
    );
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), "default");
    create(
        &server,
        &slices,
        slice_json("other-proxy", "other-proxy-1", &["10.10.0.40"]),
    );
    selectorless(&server, &client, "manual", "10.96.0.41", json!({}));
    create(
        &server,
        &slices,
        slice_json("manual", "manual-1", &["10.10.0.41"]),
    );
    router.until("manual with its endpoint", STEP, |r| {
        r.ready_endpoints("manual") == ["10.10.0.41:8080"]
    });
    let other = ObjectKey::new("default", "other-proxy");
    let other_slice = ObjectKey::new("default", "other-proxy-1");
    assert!(!router.services_seen.contains(&other));
    assert!(!router.slices_seen.contains(&other_slice));

    // An endpoint change.
    let mut slice = server
        .runtime
        .block_on(slices.get("manual-1"))
        .expect("slice");
    let more: EndpointSlice = object(slice_json(
        "manual",
        "manual-1",
        &["10.10.0.41", "10.10.1.41"],
    ));
    slice.endpoints = more.endpoints;
    server
        .runtime
        .block_on(slices.replace("manual-1", &PostParams::default(), &slice))
        .expect("replaced");
    router.until("manual's second endpoint", STEP, |r| {
        r.ready_endpoints("manual") == ["10.10.0.41:8080", "10.10.1.41:8080"]
    });

    // A deletion.
    let services = Api::<Service>::namespaced(client.clone(), "default");
    server
        .runtime
        .block_on(services.delete("manual", &DeleteParams::default()))
        .expect("deleted");
    router.until("manual's deletion", STEP, |r| {
        r.cluster.service("default", "manual").is_none()
    });
    router.until("the router's model to equal the API's", STEP, |r| {
        summary(&r.cluster) == expected(&server, &client)
    });

    // The API server restarts on the same data and address; changes made
    // after it reach the router, and the model equals the API's again.
    server.stop();
    let server = Server::start(address, &data);
    let client = server.client(&kubeconfig);
    let services = Api::<Service>::namespaced(client.clone(), "default");
    server
        .runtime
        .block_on(services.delete("nginx-svc", &DeleteParams::default()))
        .expect("deleted");
    selectorless(&server, &client, "after-restart", "10.96.0.42", json!({}));
    router.until("the changes made after the restart", RESTART, |r| {
        r.cluster.service("default", "nginx-svc").is_none()
            && r.cluster.service("default", "after-restart").is_some()
    });
    router.until(
        "the router's model to equal the API's after the restart",
        STEP,
        |r| summary(&r.cluster) == expected(&server, &client),
    );
    assert!(!router.services_seen.contains(&other));
    assert!(!router.slices_seen.contains(&other_slice));
    watch.stop();
    server.stop();
}
