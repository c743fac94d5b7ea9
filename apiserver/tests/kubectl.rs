//! The walkthrough with the real kubectl against the API server in process.

mod common;

use std::time::Duration;

use apiserver::Config;
use common::*;

fn pods_running(kc: &std::path::Path, n: usize) -> bool {
    let out = ok(kc, &["get", "po"]);
    out.lines()
        .filter(|l| l.contains(" Running ") && l.contains("1/1"))
        .count()
        == n
        && out.lines().count() == n + 1
}

#[test]
fn walkthrough_with_kubectl() {
    let dir = TempDir::new("walkthrough");
    let server = Server::start(Config {
        data_dir: Some(dir.0.join("data")),
        ..Config::default()
    });
    let kc = plain_kubeconfig(&dir.0, server.address());

    assert!(apply(&kc, NODES).contains("node/mac-worker created"));
    assert_eq!(
        apply(&kc, DEPLOYMENT).trim(),
        "deployment.apps/nginx-deployment created"
    );
    eventually("2 running pods", || pods_running(&kc, 2));

    let wide = ok(&kc, &["get", "po", "-o", "wide"]);
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    for line in wide.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert!(cols[0].starts_with("nginx-deployment-"), "{line}");
        // <deployment>-<10-char hash>-<5 chars>
        assert_eq!(cols[0].rsplit('-').next().map(str::len), Some(5), "{line}");
        assert!(cols[5].starts_with("10.10."), "{line}");
        assert!(cols[6] == "mac-master" || cols[6] == "mac-worker", "{line}");
        assert_eq!(&cols[7..], ["<none>", "<none>"]);
    }

    assert_eq!(apply(&kc, SERVICE).trim(), "service/nginx-svc created");
    let svc = ok(&kc, &["get", "svc"]);
    assert_eq!(
        row(&svc, "kubernetes").map(|r| r[1..5].to_vec()),
        Some(vec!["ClusterIP", "10.96.0.1", "<none>", "443/TCP"])
    );
    assert_eq!(
        row(&svc, "nginx-svc").map(|r| r[1..5].to_vec()),
        Some(vec!["ClusterIP", "10.101.182.177", "<none>", "80/TCP"])
    );
    assert_eq!(apply(&kc, SERVICE).trim(), "service/nginx-svc unchanged");

    eventually("two endpoints", || {
        let ep = ok(&kc, &["get", "endpoints"]);
        row(&ep, "nginx-svc").is_some_and(|r| r[1].split(',').count() == 2)
    });
    let describe = ok(&kc, &["describe", "svc", "nginx-svc"]);
    for expected in [
        "Selector:                 app=nginx-deployment",
        "Type:                     ClusterIP",
        "IP:                       10.101.182.177",
        "Port:                     <unset>  80/TCP",
        "TargetPort:               80/TCP",
        "Session Affinity:         None",
    ] {
        assert!(
            describe.contains(expected),
            "{expected:?} missing in:\n{describe}"
        );
    }
    let endpoints_line = describe
        .lines()
        .find(|l| l.starts_with("Endpoints:"))
        .unwrap_or("");
    assert_eq!(
        endpoints_line
            .split_whitespace()
            .nth(1)
            .map(|e| e.split(',').count()),
        Some(2)
    );
    let ep = ok(&kc, &["get", "endpoints"]);
    assert_eq!(
        row(&ep, "kubernetes").map(|r| r[1].to_string()),
        Some(server.address().to_string())
    );
    let describe_ep = ok(&kc, &["describe", "endpoints", "nginx-svc"]);
    assert!(
        describe_ep.contains("NotReadyAddresses:  <none>"),
        "{describe_ep}"
    );

    // A deleted pod is replaced under a new name; the endpoints follow.
    let before = ok(&kc, &["get", "po", "-o", "name"]);
    let victim = before.lines().next().unwrap_or("").to_string();
    let deleted = ok(&kc, &["delete", &victim]);
    assert_eq!(
        deleted.trim(),
        format!("{} deleted", victim.replace("pod/", "pod \"") + "\"")
    );
    eventually("a replacement pod", || {
        let now = ok(&kc, &["get", "po", "-o", "name"]);
        pods_running(&kc, 2) && !now.contains(&victim)
    });
    eventually("endpoints without the deleted pod", || {
        let ep = ok(
            &kc,
            &[
                "get",
                "endpoints",
                "nginx-svc",
                "-o",
                "jsonpath={.subsets[0].addresses[*].targetRef.name}",
            ],
        );
        ep.split_whitespace().count() == 2 && !ep.contains(victim.trim_start_matches("pod/"))
    });
    let slices = ok(&kc, &["get", "endpointslices"]);
    let slice = slices
        .lines()
        .find(|l| l.starts_with("nginx-svc-"))
        .unwrap_or("");
    assert_eq!(slice.split_whitespace().nth(1), Some("IPv4"), "{slices}");
    assert_eq!(slice.split_whitespace().nth(2), Some("80"), "{slices}");

    // ClusterIP -> NodePort keeps the ClusterIP and allocates a port.
    let nodeport = SERVICE.replace("spec:\n", "spec:\n  type: NodePort\n");
    assert_eq!(apply(&kc, &nodeport).trim(), "service/nginx-svc configured");
    let wide = ok(&kc, &["get", "svc", "nginx-svc", "-o", "wide"]);
    let r = row(&wide, "nginx-svc").unwrap_or_default();
    assert_eq!(r[1..3], ["NodePort", "10.101.182.177"]);
    let port: u16 = r[4]
        .trim_start_matches("80:")
        .trim_end_matches("/TCP")
        .parse()
        .expect("node port");
    assert!((30000..=32767).contains(&port), "{wide}");
    assert_eq!(r[6], "app=nginx-deployment");

    // Scale down and up.
    ok(
        &kc,
        &["scale", "deploy", "nginx-deployment", "--replicas=3"],
    );
    eventually("3 running pods", || pods_running(&kc, 3));
    let rs = ok(&kc, &["get", "rs"]);
    assert!(
        rs.lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().skip(1).take(3).eq(["3", "3", "3"])),
        "{rs}"
    );
    ok(
        &kc,
        &["scale", "deploy", "nginx-deployment", "--replicas=1"],
    );
    eventually("1 running pod", || pods_running(&kc, 1));
    let deploy = ok(&kc, &["get", "deploy"]);
    assert_eq!(
        row(&deploy, "nginx-deployment").map(|r| r[1..4].to_vec()),
        Some(vec!["1/1", "1", "1"])
    );
    let ns = ok(&kc, &["get", "ns"]);
    assert_eq!(row(&ns, "default").map(|r| r[1]), Some("Active"));
    let nodes = ok(&kc, &["get", "nodes"]);
    assert_eq!(
        row(&nodes, "mac-master").map(|r| r[1..3].to_vec()),
        Some(vec!["Ready", "control-plane"])
    );
    server.stop();
}

#[test]
fn invalid_manifests_are_refused_and_nothing_changes() {
    let dir = TempDir::new("invalid");
    let server = Server::start(Config::default());
    let kc = plain_kubeconfig(&dir.0, server.address());
    let before = ok(&kc, &["get", "svc", "-o", "name"]);

    let bad_port = SERVICE.replace("port: 80\n", "port: 70000\n");
    let out = kubectl(&kc, &["apply", "-f", "-"], Some(&bad_port));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("The Service \"nginx-svc\" is invalid: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"),
        "{stderr}"
    );

    let unknown = SERVICE.replace("spec:\n", "spec:\n  bogus: 1\n");
    let out = kubectl(&kc, &["apply", "-f", "-"], Some(&unknown));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("strict decoding error: unknown field \"spec.bogus\""),
        "{stderr}"
    );

    let mismatch = DEPLOYMENT.replace(
        "        app: nginx-deployment\n    spec:",
        "        app: other\n    spec:",
    );
    let out = kubectl(&kc, &["apply", "-f", "-"], Some(&mismatch));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("The Deployment \"nginx-deployment\" is invalid: spec.template.metadata.labels: Invalid value"),
        "{stderr}"
    );

    let taken = SERVICE
        .replace("nginx-svc", "other")
        .replace("10.101.182.177", "10.96.0.1");
    let out = kubectl(&kc, &["apply", "-f", "-"], Some(&taken));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("provided IP is already allocated"),
        "{stderr}"
    );

    let out = kubectl(&kc, &["get", "svc", "nope"], None);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (NotFound): services \"nope\" not found"
    );
    let out = kubectl(&kc, &["delete", "endpoints", "kubernetes"], None);
    assert!(!out.status.success(), "endpoints are read-only");

    assert_eq!(ok(&kc, &["get", "svc", "-o", "name"]), before);
    assert_eq!(ok(&kc, &["get", "deploy", "-o", "name"]), "");
    server.stop();
}

#[test]
fn objects_survive_a_restart() {
    let dir = TempDir::new("restart");
    let data = dir.0.join("data");
    objects_survive_restart(&dir, || Config {
        data_dir: Some(data.clone()),
        ..Config::default()
    });
}

/// On etcd the restarted server is a new one on the same etcd, as if on
/// another machine: nothing of the first is kept but etcd.
#[test]
fn objects_survive_a_restart_on_etcd() {
    let dir = TempDir::new("restart-etcd");
    let etcd = apiserver::store::EtcdServer::start();
    objects_survive_restart(&dir, || Config {
        etcd: Some(etcd.url()),
        ..Config::default()
    });
}

fn objects_survive_restart(dir: &TempDir, config: impl Fn() -> Config) {
    let server = Server::start(config());
    let kc = plain_kubeconfig(&dir.0, server.address());
    apply(&kc, NODES);
    apply(&kc, DEPLOYMENT);
    apply(&kc, SERVICE);
    eventually("2 running pods", || pods_running(&kc, 2));
    let pods = ok(&kc, &["get", "po", "-o", "name"]);
    let uid = ok(
        &kc,
        &["get", "svc", "nginx-svc", "-o", "jsonpath={.metadata.uid}"],
    );
    let rv: u64 = ok(
        &kc,
        &[
            "get",
            "svc",
            "nginx-svc",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    )
    .parse()
    .expect("rv");
    server.stop();

    let server = Server::start(config());
    let kc = plain_kubeconfig(&dir.0, server.address());
    assert_eq!(ok(&kc, &["get", "po", "-o", "name"]), pods);
    assert_eq!(
        ok(
            &kc,
            &["get", "svc", "nginx-svc", "-o", "jsonpath={.metadata.uid}"]
        ),
        uid
    );
    let svc = ok(&kc, &["get", "svc"]);
    assert_eq!(row(&svc, "nginx-svc").map(|r| r[2]), Some("10.101.182.177"));
    // resourceVersions go on from where they were.
    let ns = ok(
        &kc,
        &[
            "create",
            "namespace",
            "after-restart",
            "--dry-run=client",
            "-o",
            "json",
        ],
    );
    apply(&kc, &ns);
    let later: u64 = ok(
        &kc,
        &[
            "get",
            "ns",
            "after-restart",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    )
    .parse()
    .expect("rv");
    assert!(later > rv, "{later} <= {rv}");
    // The allocators were rebuilt: the ClusterIP is still taken.
    let taken = SERVICE.replace("nginx-svc", "again");
    let out = kubectl(&kc, &["apply", "-f", "-"], Some(&taken));
    assert!(String::from_utf8_lossy(&out.stderr).contains("provided IP is already allocated"));
    std::thread::sleep(Duration::from_millis(200));
    server.stop();
}

#[test]
fn kubectl_create_sends_protobuf() {
    let dir = TempDir::new("protobuf");
    let server = Server::start(Config::default());
    let kc = plain_kubeconfig(&dir.0, server.address());
    apply(&kc, NODES);
    assert_eq!(
        ok(&kc, &["create", "namespace", "demo"]).trim(),
        "namespace/demo created"
    );
    assert_eq!(
        ok(
            &kc,
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx",
                "--replicas=2",
                "--port=80",
                "-n",
                "demo"
            ]
        )
        .trim(),
        "deployment.apps/web created"
    );
    assert_eq!(
        ok(
            &kc,
            &[
                "create",
                "service",
                "nodeport",
                "web",
                "--tcp=80:8080",
                "-n",
                "demo"
            ]
        )
        .trim(),
        "service/web created"
    );
    eventually("2 running pods in demo", || {
        ok(&kc, &["get", "po", "-n", "demo"])
            .lines()
            .filter(|l| l.contains("Running"))
            .count()
            == 2
    });
    let svc = ok(&kc, &["get", "svc", "web", "-n", "demo", "-o", "wide"]);
    let r = row(&svc, "web").unwrap_or_default();
    assert_eq!(r[1], "NodePort");
    assert!(r[4].starts_with("80:3") && r[4].ends_with("/TCP"), "{svc}");
    assert_eq!(r[6], "app=web");
    let target = ok(
        &kc,
        &[
            "get",
            "svc",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.ports[0].targetPort}",
        ],
    );
    assert_eq!(target, "8080");
    let out = kubectl(&kc, &["create", "namespace", "demo"], None);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (AlreadyExists): namespaces \"demo\" already exists"
    );
    server.stop();
}

#[test]
fn two_listeners_and_an_advertised_address() {
    // As in the lab: the node address (here 127.0.0.2) and the host's
    // loopback; the `kubernetes` Service points at the advertised one.
    let dir = TempDir::new("listeners");
    let server = Server::start(Config {
        listen: vec![([127, 0, 0, 2], 0).into(), ([127, 0, 0, 1], 0).into()],
        advertise: Some(([127, 0, 0, 2], 6443).into()),
        ..Config::default()
    });
    let addresses = server.running.as_ref().expect("running").addresses.clone();
    assert_eq!(addresses.len(), 2);
    for address in addresses {
        let kc = plain_kubeconfig(&dir.0, address);
        let ep = ok(&kc, &["get", "endpoints", "kubernetes"]);
        assert_eq!(
            row(&ep, "kubernetes").map(|r| r[1]),
            Some("127.0.0.2:6443"),
            "{ep}"
        );
        let svc = ok(
            &kc,
            &[
                "get",
                "svc",
                "kubernetes",
                "-o",
                "jsonpath={.spec.ports[0].targetPort}",
            ],
        );
        assert_eq!(svc, "6443");
    }
    server.stop();
}
