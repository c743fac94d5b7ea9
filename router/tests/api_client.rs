//! `router get|delete` as a thin client of a Kubernetes API server: against
//! the project's API server in process, the router prints what the real
//! kubectl prints for the same request (the columns are the server's).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use apiserver::{Config, Running};

const MANIFESTS: &str = "apiVersion: v1
kind: Node
metadata:
  name: mac-master
spec:
  podCIDR: 10.10.0.0/24
---
apiVersion: v1
kind: Node
metadata:
  name: mac-worker
spec:
  podCIDR: 10.10.1.0/24
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx-deployment
  template:
    metadata:
      labels:
        app: nginx-deployment
    spec:
      containers:
      - name: nginx
        image: nginx:alpine
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: nginx-svc
spec:
  clusterIP: 10.101.182.177
  selector:
    app: nginx-deployment
  ports:
  - port: 80
    targetPort: 80
";

/// The API server in process, plain HTTP on 127.0.0.1, no credentials.
struct Server {
    _runtime: tokio::runtime::Runtime,
    running: Option<Running>,
    dir: PathBuf,
}

impl Server {
    fn start() -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = runtime
            .block_on(apiserver::start(Config::default()))
            .expect("the API server starts");
        let dir =
            std::env::temp_dir().join(format!("ksr-router-api-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Server {
            _runtime: runtime,
            running: Some(running),
            dir,
        }
    }

    fn address(&self) -> SocketAddr {
        self.running.as_ref().expect("running").address()
    }

    fn kubeconfig(&self) -> PathBuf {
        let path = self.dir.join("kubeconfig");
        let text = apiserver::init::plain_kubeconfig(&format!("http://{}", self.address()));
        std::fs::write(&path, text).expect("kubeconfig");
        path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.running.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(program: &str, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs {program} on PATH: {e}"));
    if let Some(mut pipe) = child.stdin.take() {
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).expect("stdin");
        }
    }
    child.wait_with_output().expect("output")
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    run("kubectl", kubeconfig, args, None)
}

fn router(kubeconfig: &Path, args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_router"), kubeconfig, args, None)
}

fn text(out: &Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

/// `router ARGS` prints what `kubectl ARGS` prints (asked up to three
/// times: an AGE cell may tick between the two requests).
fn same_as_kubectl(kubeconfig: &Path, args: &[&str]) {
    let mut last = String::new();
    for _ in 0..3 {
        let (k_ok, k_out, k_err) = text(&kubectl(kubeconfig, args));
        let (r_ok, r_out, r_err) = text(&router(kubeconfig, args));
        if k_ok == r_ok && k_out == r_out && k_err == r_err {
            return;
        }
        last = format!(
            "kubectl {args:?} (ok {k_ok}):\n{k_out}{k_err}\nrouter (ok {r_ok}):\n{r_out}{r_err}"
        );
    }
    panic!("router and kubectl differ:\n{last}");
}

#[test]
fn get_and_delete_print_what_kubectl_prints() {
    let server = Server::start();
    let kubeconfig = server.kubeconfig();
    let out = run(
        "kubectl",
        &kubeconfig,
        &["apply", "-f", "-"],
        Some(MANIFESTS),
    );
    assert!(out.status.success(), "kubectl apply: {}", text(&out).2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text(&kubectl(&kubeconfig, &["get", "endpoints", "nginx-svc"]))
        .1
        .contains(":80")
    {
        assert!(Instant::now() < deadline, "nginx-svc never got endpoints");
        std::thread::sleep(Duration::from_millis(100));
    }
    for args in [
        &["get", "svc"][..],
        &["get", "svc", "nginx-svc", "-o", "wide"],
        &["get", "po", "-o", "wide"],
        &["get", "endpoints"],
        &["get", "ns"],
        &["get", "svc", "-A"],
        &["get", "svc", "nope"],
        &["get", "po", "-n", "empty"],
    ] {
        same_as_kubectl(&kubeconfig, args);
    }
    // describe, from the API through the routers' translation.
    let (ok, out, err) = text(&router(&kubeconfig, &["describe", "svc", "nginx-svc"]));
    assert!(ok, "router describe svc: {err}");
    assert!(out.contains("Name:") && out.contains("nginx-svc"), "{out}");
    assert!(out.contains("10.101.182.177"), "{out}");
    let endpoints = text(&kubectl(
        &kubeconfig,
        &[
            "get",
            "endpoints",
            "nginx-svc",
            "-o",
            "jsonpath={.subsets[0].addresses[*].ip}",
        ],
    ))
    .1;
    for ip in endpoints.split_whitespace() {
        assert!(
            out.contains(ip),
            "describe svc should list endpoint {ip}:\n{out}"
        );
    }
    let (ok, _, err) = text(&router(&kubeconfig, &["describe", "svc", "nope"]));
    assert!(!ok);
    assert_eq!(
        err,
        "Error from server (NotFound): services \"nope\" not found"
    );
    let pods = text(&kubectl(&kubeconfig, &["get", "po", "-o", "name"])).1;
    let pod = pods
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("pod/"))
        .expect("a pod")
        .to_owned();
    let (ok, out, err) = text(&router(&kubeconfig, &["delete", "po", &pod]));
    assert!(ok, "router delete po {pod}: {err}");
    assert_eq!(out, format!("pod \"{pod}\" deleted\n"));
    // A manifest the server refuses: kubectl's error, nothing applied.
    let bad = server.dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad-svc\nspec:\n  ports:\n  - port: 70000\n",
    )
    .expect("manifest");
    let (ok, _, err) = text(&router(
        &kubeconfig,
        &["apply", "-f", &bad.to_string_lossy()],
    ));
    assert!(!ok, "a port of 70000 must be refused");
    assert!(
        err.contains("Error from server") && err.contains("70000"),
        "{err}"
    );
    assert!(!text(&kubectl(&kubeconfig, &["get", "svc"]))
        .1
        .contains("bad-svc"));
    let (ok, _, err) = text(&router(&kubeconfig, &["delete", "po", "nope"]));
    let (_, _, k_err) = text(&kubectl(&kubeconfig, &["delete", "po", "nope"]));
    assert!(!ok);
    assert_eq!(err, k_err, "deleting a missing pod: router vs kubectl");
}
