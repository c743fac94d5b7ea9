//! TUN offload end to end: bulk TCP from a pod whose `eth0` has TSO and tx
//! checksumming on (so the routers see GSO super-packets with partial
//! checksums), on one node and across nodes: every byte arrives, and the
//! receiving pod sees only correct TCP checksums. Runs the same with
//! `KSR_OFFLOAD=off` (routers started with `--offload off`).
//!
//! No Service of the lab's manifests has a TCP target port free for a bulk
//! server (the nginx pods' port 80 is pod-server's), so the transfers go
//! pod IP to pod IP, still through the routers (both of them across
//! nodes): a `socat` listens in the receiving nginx pod's namespace on a
//! port of its own.

use std::io::Read;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use lab::checks::Checks;
use lab::env::*;
use lab::objects::Pod;
use lab::tshark::*;

/// The bulk servers' port (pod-server does not use it).
const PORT: u16 = 5001;

/// A file of `bytes` random bytes under the temp dir, removed on drop.
struct Payload {
    path: String,
    sha256: String,
}

impl Payload {
    fn random(name: &str, bytes: u64) -> Result<Payload, String> {
        let path = std::env::temp_dir()
            .join(format!("ksr-offload-{name}.bin"))
            .to_str()
            .ok_or("temp dir is not utf-8")?
            .to_string();
        let cmd = format!("head -c {bytes} /dev/urandom >'{path}'");
        let out = run(60, "sh", &["-c", &cmd]);
        if !out.status.success() {
            return Err(show(&cmd, &out));
        }
        let payload = Payload {
            sha256: sha256_of(&run(60, "sha256sum", &[&path])),
            path,
        };
        if payload.sha256.len() == 64 {
            Ok(payload)
        } else {
            Err(format!("sha256sum {} failed", payload.path))
        }
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The hash `sha256sum` printed first.
fn sha256_of(out: &Output) -> String {
    stdout(out)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Sets `eth0`'s tx checksumming and TSO in `pod` on or off; `on` is
/// checked by reading the features back.
fn pod_tso(c: &mut Checks, pod: &str, on: bool) -> bool {
    let v = if on { "on" } else { "off" };
    let out = lab_exec(pod, &["ethtool", "-K", "eth0", "tx", v, "tso", v]);
    if !c.check(out.status.success(), || {
        show(&format!("ethtool -K eth0 tx {v} tso {v} in {pod}"), &out)
    }) {
        return false;
    }
    let out = lab_exec(pod, &["ethtool", "-k", "eth0"]);
    let want = format!("tcp-segmentation-offload: {v}");
    c.check(stdout(&out).contains(&want), || {
        format!(
            "{pod}'s eth0 should have {want}\n{}",
            show("ethtool -k", &out)
        )
    })
}

/// `socat` receiving one connection on [`PORT`] in `pod`, hashing it.
fn start_sink(pod: &str) -> Result<Child, String> {
    let sink = format!("socat -u TCP-LISTEN:{PORT},reuseaddr - | sha256sum");
    let child = command("timeout")
        .args(["-k", "2", "70"])
        .arg(lab_script())
        .args(["exec", pod, "--", "sh", "-c", &sink])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start socat in {pod}: {e}"))?;
    // Listening within 5 s, or the transfer below fails and says so.
    let port = format!(":{PORT} ");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let out = lab_exec(pod, &["ss", "-Hltn"]);
        if stdout(&out).contains(&port) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(child)
}

/// What one transfer got: the receiver's sha256 and the time it took.
struct Received {
    sha256: String,
    took: Duration,
}

/// Sends `data` from `from` to `to`'s pod IP on [`PORT`], bounded by 60 s.
fn transfer(from: &Pod, to: &Pod, data: &Payload) -> Result<Received, String> {
    let mut sink = start_sink(&to.name)?;
    let start = Instant::now();
    let dest = format!("TCP:{}:{PORT}", to.ip);
    let src = format!("OPEN:{}", data.path);
    let sent = run(
        60,
        lab_script(),
        &["exec", &from.name, "--", "socat", "-u", &src, &dest],
    );
    let took = start.elapsed();
    if !sent.status.success() {
        let _ = sink.kill();
        let _ = sink.wait();
        return Err(show(
            &format!("socat -u {src} {dest} in {}", from.name),
            &sent,
        ));
    }
    // The sink ends as the sender closes; its `timeout` bounds the wait.
    let mut text = String::new();
    if let Some(mut out) = sink.stdout.take() {
        let _ = out.read_to_string(&mut text);
    }
    let _ = sink.wait();
    Ok(Received {
        sha256: text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
        took,
    })
}

/// The sending and receiving pods of the transfers: across nodes, and on
/// the client's node.
fn paths(k: &lab::Cluster) -> [(&'static str, &Pod, &Pod); 2] {
    [
        ("cross-node", &k.client, &k.far),
        ("same-node", &k.client, &k.near),
    ]
}

/// The `--offload` the worker's router runs with (`scripts/lab` passes
/// `KSR_OFFLOAD`), read from its command line, for the report lines.
fn offload_mode(k: &lab::Cluster) -> String {
    let pid_file = format!("{RUN_DIR}/router-{}.pid", k.worker.name);
    let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
    let argv = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
    let mut args = argv.split(|b| *b == 0);
    args.find(|a| *a == b"--offload");
    args.next()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| "unknown".to_string())
}

/// 100 MB from a pod with TSO on, to a pod on the other node and to one on
/// the same node: the receiver's sha256 is the sender's.
#[test]
fn a_100_mb_transfer_keeps_its_bytes() {
    lab::check(|c, k| {
        let data = match Payload::random("100m", 100_000_000) {
            Ok(d) => d,
            Err(e) => {
                c.check(false, || e);
                return;
            }
        };
        let offload_on = offload_mode(k) == "on";
        for (what, from, to) in paths(k) {
            if !pod_tso(c, &from.name, true) {
                continue;
            }
            let coalesced_before = coalesced(&to.node);
            match transfer(from, to, &data) {
                Ok(got) => {
                    // Across nodes with offload, the receiving router
                    // writes the overlay's segments to its TUN device as
                    // super-packets: most of the ~70,000 segments join one.
                    if what == "cross-node" && offload_on {
                        let merged = coalesced(&to.node).saturating_sub(coalesced_before);
                        c.check(merged >= 10_000, || {
                            format!(
                                "100 MB across nodes: router {} coalesced {merged} segments \
                                 into super-packets (tun_segments_coalesced), want >= 10,000",
                                to.node
                            )
                        });
                    }
                    eprintln!(
                        "offload {}: 100 MB {what} {} -> {} ({}): {:.2} s, sha256 {}",
                        offload_mode(k),
                        from.name,
                        to.name,
                        to.ip,
                        got.took.as_secs_f64(),
                        if got.sha256 == data.sha256 {
                            "equal"
                        } else {
                            "DIFFERENT"
                        }
                    );
                    c.check(got.sha256 == data.sha256, || {
                        format!(
                            "100 MB {what} {} -> {}: sha256 {:?} received, {} sent",
                            from.name, to.ip, got.sha256, data.sha256
                        )
                    });
                }
                Err(e) => {
                    c.check(false, || {
                        format!("100 MB {what} {} -> {}: {e}", from.name, to.ip)
                    });
                }
            }
            pod_tso(c, &from.name, false);
        }
    });
}

/// `tun_segments_coalesced` from `node`'s router (0 when it cannot tell).
fn coalesced(node: &str) -> u64 {
    lab::routers::stats(node)
        .ok()
        .and_then(|s| s["tun_segments_coalesced"].as_u64())
        .unwrap_or(0)
}

/// The node's end of `pod`'s veth (the device its route goes out of).
fn node_veth(pod: &Pod) -> Option<String> {
    let out = lab_exec(&pod.node, &["ip", "-o", "route", "get", &pod.ip]);
    let text = stdout(&out);
    let mut words = text.split_whitespace();
    words.find(|w| *w == "dev")?;
    words.next().map(str::to_string)
}

/// A few MB from a pod with TSO on, captured on the receiving pod's `eth0`:
/// no packet with a bad checksum. The node's end of the receiving pod's
/// veth gets tx checksumming off for the capture, so the kernel finishes
/// (from the routers' partial sums) what a NIC would, and the capture shows
/// the checksums on the wire instead of partial ones the receiving stack
/// would take on trust.
#[test]
fn no_bad_checksums_on_a_pod_veth() {
    lab::check(|c, k| {
        if find_tool("tshark").is_none() {
            c.check(false, || {
                "tshark is missing (scripts/install-deps)".to_string()
            });
            return;
        }
        let data = match Payload::random("4m", 4_000_000) {
            Ok(d) => d,
            Err(e) => {
                c.check(false, || e);
                return;
            }
        };
        for (what, from, to) in paths(k) {
            let Some(veth) = node_veth(to) else {
                c.check(false, || format!("no route to {} on {}", to.ip, to.node));
                continue;
            };
            let node_tx = |v: &str| lab_exec(&to.node, &["ethtool", "-K", &veth, "tx", v]);
            let out = node_tx("off");
            if !c.check(out.status.success(), || {
                show(&format!("ethtool -K {veth} tx off on {}", to.node), &out)
            }) {
                continue;
            }
            if pod_tso(c, &from.name, true) {
                capture_one(c, &offload_mode(k), (what, from, to), &data);
            }
            pod_tso(c, &from.name, false);
            // The lab leaves the node's end of a pod veth with tx on.
            let out = node_tx("on");
            c.check(out.status.success(), || {
                show(&format!("ethtool -K {veth} tx on on {}", to.node), &out)
            });
        }
    });
}

/// One transfer captured on `to`'s `eth0`, its checksums checked.
fn capture_one(c: &mut Checks, mode: &str, path: (&str, &Pod, &Pod), data: &Payload) {
    let (what, from, to) = path;
    let file = format!("{RUN_DIR}/offload-{}.pcapng", to.name);
    let bpf = format!("tcp port {PORT}");
    let ns = format!("ksr-{}", to.name);
    let mut cap = match BridgeCapture::start_on(&ns, "eth0", Some(&bpf), &file, 25) {
        Ok(cap) => cap,
        Err(e) => {
            c.check(false, || format!("{what}: {e}"));
            return;
        }
    };
    let got = transfer(from, to, data);
    std::thread::sleep(Duration::from_millis(500));
    cap.stop();
    match got {
        Ok(got) => {
            c.check(got.sha256 == data.sha256, || {
                format!("{what} {} -> {}: sha256 differs", from.name, to.ip)
            });
        }
        Err(e) => {
            c.check(false, || format!("{what} {} -> {}: {e}", from.name, to.ip));
        }
    }
    let (all, _) = tshark_count(&file, "tcp");
    let (bad, _) = tshark_count(&file, BAD_CHECKSUM);
    let (good, _) = tshark_count(&file, GOOD_TCP_CHECKSUM);
    eprintln!(
        "offload {}: {what} {} -> {} captured on {}'s eth0: {all:?} TCP packets, {bad:?} bad checksums, {good:?} good TCP checksums",
        mode,
        from.name,
        to.ip,
        to.name
    );
    check_checksums(c, &file);
}
