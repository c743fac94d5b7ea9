//! A test cluster: the API server in process on 127.0.0.1 (an ephemeral
//! port) with a temporary data directory, driven by the real kubectl.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use apiserver::{Config, Running};

/// The kubectl the tests drive.
pub const KUBECTL: &str = "kubectl";

/// The walkthrough's manifests.
pub const NODES: &str = "apiVersion: v1
kind: Node
metadata:
  name: mac-master
  labels:
    node-role.kubernetes.io/control-plane: \"\"
spec:
  podCIDR: 10.10.0.0/24
---
apiVersion: v1
kind: Node
metadata:
  name: mac-worker
spec:
  podCIDR: 10.10.1.0/24
";

/// nginx-deployment with 2 replicas.
pub const DEPLOYMENT: &str = "apiVersion: apps/v1
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
";

/// nginx-svc, ClusterIP 10.101.182.177 port 80.
pub const SERVICE: &str = "apiVersion: v1
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

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory.
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ksr-apiserver-{tag}-{}",
            apiserver::store::new_uid()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server with its runtime.
pub struct Server {
    pub runtime: tokio::runtime::Runtime,
    pub running: Option<Running>,
}

impl Server {
    /// Starts a server with `config` (listen defaults to 127.0.0.1:0).
    pub fn start(config: Config) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = runtime
            .block_on(apiserver::start(config))
            .expect("server starts");
        Server {
            runtime,
            running: Some(running),
        }
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.running.as_ref().expect("running").address()
    }

    /// Stops the server (listeners and controllers) and its runtime, like
    /// a killed process: nothing is flushed on the way out.
    pub fn stop(mut self) {
        drop(self.running.take());
        self.runtime.shutdown_timeout(Duration::from_secs(2));
    }
}

/// Writes a kubeconfig for a plain-HTTP server without credentials.
pub fn plain_kubeconfig(dir: &Path, address: SocketAddr) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = apiserver::init::plain_kubeconfig(&format!("http://{address}"));
    std::fs::write(&path, text).expect("kubeconfig");
    path
}

/// Runs kubectl with a kubeconfig; panics (loudly) if kubectl is missing,
/// kills it after 30 s.
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=10s")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("KUBECONFIG")
        .spawn()
        .unwrap_or_else(|e| panic!("these tests need kubectl ({KUBECTL}) on PATH: {e}"));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("kubectl stdin");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait().expect("wait") {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                panic!("kubectl {args:?} did not finish in 30 s");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    child.wait_with_output().expect("kubectl output")
}

/// kubectl that must succeed; its stdout.
pub fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args, None);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl apply -f -` of a manifest that must succeed.
pub fn apply(kubeconfig: &Path, manifest: &str) -> String {
    let out = kubectl(kubeconfig, &["apply", "-f", "-"], Some(manifest));
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` for up to 10 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One raw HTTP/1.1 request; the whole response as text (the connection
/// is closed by the server or after `timeout`).
pub fn http(address: SocketAddr, request: &str, timeout: Duration) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rows of `kubectl get` output whose first column is `name`.
pub fn row<'a>(output: &'a str, name: &str) -> Option<Vec<&'a str>> {
    output
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&name))
}
