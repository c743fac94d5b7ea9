//! An acknowledged write survives a kill -9 of the ksr-apiserver process,
//! with the embedded storage and with etcd.

mod common;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::store::EtcdServer;
use common::*;

/// The server process, killed (SIGKILL) when dropped, also when a test
/// assertion fails.
struct Process(Child);

impl Process {
    fn kill_9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Starts the binary on a free loopback port with its storage arguments
/// (`--data-dir DIR` or `--etcd URL`); its address from the log.
fn spawn(storage: &[OsString]) -> (Process, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksr-apiserver"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(storage)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ksr-apiserver starts");
    let stderr = child.stderr.take().expect("stderr");
    let child = Process(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("serving on ").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .expect("ksr-apiserver reports its address");
    (child, addr.parse().expect("address"))
}

fn data_dir(dir: &TempDir) -> Vec<OsString> {
    vec!["--data-dir".into(), dir.0.join("data").into()]
}

fn etcd(etcd: &EtcdServer) -> Vec<OsString> {
    vec!["--etcd".into(), etcd.url().into()]
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = TempDir::new("kill9");
    writes_survive_kill_9(&dir, &data_dir(&dir));
}

#[test]
fn acknowledged_writes_survive_kill_9_on_etcd() {
    let dir = TempDir::new("kill9-etcd");
    writes_survive_kill_9(&dir, &etcd(&EtcdServer::start()));
}

fn writes_survive_kill_9(dir: &TempDir, storage: &[OsString]) {
    let (mut server, address) = spawn(storage);
    let kc = plain_kubeconfig(&dir.0, address);
    apply(&kc, SERVICE);
    // Several acknowledged writes in a row, the last one just before the kill.
    for n in 0..5 {
        ok(
            &kc,
            &[
                "label",
                "svc",
                "nginx-svc",
                &format!("round={n}"),
                "--overwrite",
            ],
        );
    }
    server.kill_9();

    let (mut server, address) = spawn(storage);
    let kc = plain_kubeconfig(&dir.0, address);
    let label = ok(
        &kc,
        &[
            "get",
            "svc",
            "nginx-svc",
            "-o",
            "jsonpath={.metadata.labels.round}",
        ],
    );
    assert_eq!(label, "4");
    let svc = ok(&kc, &["get", "svc"]);
    assert_eq!(row(&svc, "nginx-svc").map(|r| r[2]), Some("10.101.182.177"));
    server.kill_9();
}

#[test]
fn concurrent_acknowledged_creates_survive_kill_9() {
    let dir = TempDir::new("kill9-concurrent");
    creates_survive_kill_9_under_load(&data_dir(&dir));
}

#[test]
fn concurrent_acknowledged_creates_survive_kill_9_on_etcd() {
    creates_survive_kill_9_under_load(&etcd(&EtcdServer::start()));
}

/// POSTs a Namespace; true when the server answered 201 Created.
fn create_namespace(address: SocketAddr, name: &str) -> bool {
    let body =
        format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
    let request = format!(
        "POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // Not common::http: a refused connection (the server was killed) is
    // an unacknowledged write here, not a failure.
    let answer = || -> std::io::Result<Vec<u8>> {
        let mut stream = std::net::TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(request.as_bytes())?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out)?;
        Ok(out)
    };
    answer().is_ok_and(|out| out.starts_with(b"HTTP/1.1 201"))
}

/// Many clients create Namespaces at once; the server is killed (-9) in
/// the middle of it; every create it acknowledged is there after a restart.
fn creates_survive_kill_9_under_load(storage: &[OsString]) {
    const CLIENTS: usize = 16;
    const EACH: usize = 100;
    let (mut server, address) = spawn(storage);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..EACH {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("ns-{c}-{i}");
                    if create_namespace(address, &name) {
                        acked.push(name);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                acked
            })
        })
        .collect();
    eventually("200 acknowledged creates", || {
        count.load(Ordering::Relaxed) >= 200
    });
    // Killed while the clients are still writing.
    server.kill_9();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    assert!(acked.len() >= 200);

    let (mut server, address) = spawn(storage);
    let list = http(
        address,
        "GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    let missing: Vec<&String> = acked
        .iter()
        .filter(|name| !list.contains(&format!("\"name\":\"{name}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged creates lost: {missing:?}",
        missing.len(),
        acked.len()
    );
    server.kill_9();
}
