//! One benchmark router: the routers' own watch (`control::kube`) feeding
//! the data plane (`dataplane::node::Node`), exactly as `router run` does
//! in Kubernetes mode, minus the TUN device and sockets. It runs as a
//! child process so that its memory is its own, and reports on stdout,
//! one JSON object per line, with wall-clock nanoseconds so the parent can
//! compare them with its own.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cluster::{Cluster, ClusterChange, Overlay};
use control::kube::{spawn, Received, Update, WatchConfig};
use dataplane::engine::DataplaneConfig;
use dataplane::node::Node;
use serde_json::json;

/// Nanoseconds since the Unix epoch.
pub fn wall_ns(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// This process's resident set size in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn empty_cluster() -> Cluster {
    Cluster::watched(
        "10.10.0.0/16".parse().expect("a valid CIDR literal"),
        "10.96.0.0/12".parse().expect("a valid CIDR literal"),
        "cluster.local".into(),
        Overlay::default(),
    )
}

fn emit(line: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs one router until stdin closes (the parent is done).
pub fn run(kubeconfig: PathBuf, node: String) -> Result<(), String> {
    let started = Instant::now();
    let (tx, rx) = crossbeam_channel::unbounded();
    let config = WatchConfig {
        kubeconfig: Some(kubeconfig),
        node: node.clone(),
    };
    let _watch = spawn(&config, tx, Box::new(|| {})).map_err(|e| e.to_string())?;
    // The parent closes our stdin when it is done with us.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let mut cluster = empty_cluster();
    for received in rx.iter() {
        match received.update {
            Update::Change(change) => cluster.apply_change(&change),
            Update::Synced => break,
        }
    }
    let mut dp = Node::new(&DataplaneConfig::default(), &cluster, &node)
        .map_err(|e| format!("{e} (is Node {node} registered with a podCIDR and InternalIP?)"))?;
    let serving = dp.services().entries().len();
    emit(&json!({
        "synced_ms": started.elapsed().as_secs_f64() * 1e3,
        "services": cluster.services.len(),
        "service_ports": serving,
        "rss": rss_bytes(std::process::id()),
    }));
    drop(cluster);
    for Received { update, at, .. } in rx.iter() {
        // The event's arrival on the wall clock, for the parent.
        let received = SystemTime::now() - at.elapsed();
        let Update::Change(change) = update else {
            continue;
        };
        let t = Instant::now();
        dp.apply_change(&change).map_err(|e| e.to_string())?;
        let apply = t.elapsed();
        if let ClusterChange::EndpointSlice(slice) = &change {
            emit(&json!({
                "slice": slice.key.name,
                "ips": slice.endpoints.iter().map(|e| e.ip.to_string()).collect::<Vec<_>>(),
                "received_ns": wall_ns(received).to_string(),
                "applied_ns": wall_ns(SystemTime::now()).to_string(),
                "apply_us": apply.as_secs_f64() * 1e6,
                "rss": rss_bytes(std::process::id()),
            }));
        }
    }
    Ok(())
}
