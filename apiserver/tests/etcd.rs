//! Two API servers on one etcd, as on two machines: what one writes the
//! other serves, lists and streams to its watchers, and a write from a
//! stale resourceVersion is refused with kubectl's usual conflict.

mod common;

use std::time::Duration;

use apiserver::controllers::ControllerConfig;
use apiserver::store::EtcdServer;
use apiserver::Config;
use common::*;

#[test]
fn two_api_servers_on_one_etcd_serve_the_same_cluster() {
    let etcd = EtcdServer::start();
    let dir_a = TempDir::new("etcd-a");
    let dir_b = TempDir::new("etcd-b");
    let a = Server::start(Config {
        etcd: Some(etcd.url()),
        ..Config::default()
    });
    // One set of controllers per cluster (there is no leader election):
    // the second server only serves.
    let b = Server::start(Config {
        etcd: Some(etcd.url()),
        controllers: ControllerConfig {
            enabled: false,
            kubelet_standin: None,
        },
        ..Config::default()
    });
    let kc_a = plain_kubeconfig(&dir_a.0, a.address());
    let kc_b = plain_kubeconfig(&dir_b.0, b.address());
    apply(&kc_a, NODES);
    apply(&kc_a, DEPLOYMENT);
    apply(&kc_a, SERVICE);
    eventually("the deployment's pods on the second server", || {
        ok(&kc_b, &["get", "po", "-o", "name"]).lines().count() == 2
    });
    let svc = ok(&kc_b, &["get", "svc"]);
    assert_eq!(row(&svc, "nginx-svc").map(|r| r[2]), Some("10.101.182.177"));

    // A watcher of the second server sees the first server's write.
    let rv = ok(
        &kc_b,
        &[
            "get",
            "svc",
            "nginx-svc",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    let stale = ok(&kc_b, &["get", "svc", "nginx-svc", "-o", "json"]);
    ok(&kc_a, &["label", "svc", "nginx-svc", "written=on-a"]);
    let out = http(
        b.address(),
        &format!("GET /api/v1/namespaces/default/services?watch=1&resourceVersion={rv}&timeoutSeconds=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        Duration::from_secs(5),
    );
    assert!(
        out.contains("\"type\":\"MODIFIED\"") && out.contains("\"written\":\"on-a\""),
        "{out}"
    );

    // A replace from before that write is refused, whichever server takes it.
    let refused = kubectl(&kc_b, &["replace", "-f", "-"], Some(&stale));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("the object has been modified"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // And the other way round: the first server serves the second's write.
    ok(
        &kc_b,
        &["label", "svc", "nginx-svc", "written=on-b", "--overwrite"],
    );
    eventually("the second server's write on the first", || {
        ok(
            &kc_a,
            &[
                "get",
                "svc",
                "nginx-svc",
                "-o",
                "jsonpath={.metadata.labels.written}",
            ],
        ) == "on-b"
    });
    b.stop();
    a.stop();
}
