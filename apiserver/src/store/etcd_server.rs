//! A throwaway etcd for tests and local runs: Debian's `/usr/bin/etcd` on
//! free loopback ports with a temporary data directory, killed (by its
//! pid) and removed when dropped, also when a test fails.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running etcd.
pub struct EtcdServer {
    child: Child,
    dir: PathBuf,
    url: String,
}

/// A free port on 127.0.0.1 (free when asked; etcd binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port for etcd: {e}"))
}

impl EtcdServer {
    /// Starts etcd and waits until it serves clients. Panics with what to
    /// do when etcd is not installed or does not come up: a test that
    /// needs etcd fails loudly rather than skipping.
    pub fn start() -> EtcdServer {
        let dir = std::env::temp_dir().join(format!("ksr-etcd-{}", super::new_uid()));
        let url = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut child = Command::new("etcd")
            .arg("--name")
            .arg("ksr-test")
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .arg("--initial-cluster")
            .arg(format!("ksr-test={peer}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run etcd ({e}): install it with scripts/install-deps (Debian package etcd-server)"
                )
            });
        let (tx, rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            // Drained to the end, so etcd never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("ready to serve client requests") {
                        let _ = tx.send(());
                    }
                }
            });
        }
        let server = EtcdServer { child, dir, url };
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            panic!("etcd at {} did not become ready within 30 s", server.url);
        }
        server
    }

    /// The client URL, for `--etcd`.
    pub fn url(&self) -> String {
        self.url.clone()
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
