//! The lab's routers as processes: their pids (the supervisor's pid
//! files), their memory, their counters.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::env::{router_cli, show, RUN_DIR};

/// The pid `RUN_DIR/router-NODE.pid` names, if that process runs.
pub fn router_pid(node: &str) -> Option<u32> {
    let text = std::fs::read_to_string(format!("{RUN_DIR}/router-{node}.pid")).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    is_alive(pid).then_some(pid)
}

/// `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// The router process itself: the supervisor's child is `ip netns exec`,
/// which execs `env`, which execs `router`, so the pid stays the same; this
/// checks the command line names `router run`.
pub fn is_router(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.iter().any(|a| {
        Path::new(&*String::from_utf8_lossy(a))
            .file_name()
            .is_some_and(|n| n == "router")
    }) && args.iter().any(|a| *a == b"run")
}

/// Waits up to `within` for NODE's pid file to name a live router other
/// than `old` whose control socket answers; returns its pid and when it
/// answered first.
pub fn wait_restarted(node: &str, old: u32, within: Duration) -> Option<(u32, Instant)> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(pid) = router_pid(node).filter(|p| *p != old) {
            if router_cli(node, &["get", "stats", "-o", "json"])
                .status
                .success()
            {
                return Some((pid, Instant::now()));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `router --node NODE get stats -o json`, or why not.
pub fn stats(node: &str) -> Result<Value, String> {
    let out = router_cli(node, &["get", "stats", "-o", "json"]);
    if !out.status.success() {
        return Err(show(
            &format!("router --node {node} get stats -o json"),
            &out,
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("get stats -o json: {e}"))
}
