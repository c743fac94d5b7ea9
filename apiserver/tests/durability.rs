//! An acknowledged write survives a kill -9 of the ksr-apiserver process.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// Starts the binary on a free loopback port; its address from the log.
fn spawn(data: &Path) -> (Process, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksr-apiserver"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
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

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = TempDir::new("kill9");
    let data = dir.0.join("data");
    let (mut server, address) = spawn(&data);
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

    let (mut server, address) = spawn(&data);
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
