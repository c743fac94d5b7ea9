//! Last: the routers die, and pod traffic must fail closed. Its own test
//! binary with its own lab (see `lab::session`), as it kills the routers.

use std::path::Path;
use std::time::{Duration, Instant};

use lab::env::*;
use lab::Checks;

/// Reads a router's pid file; `Some(pid)` if it names a running router.
fn router_pid(c: &mut Checks, node: &str) -> Option<String> {
    let pid_file = format!("{RUN_DIR}/router-{node}.pid");
    let pid = match std::fs::read_to_string(&pid_file) {
        Ok(p) => p.trim().to_string(),
        Err(e) => {
            c.check(false, || format!("cannot read {pid_file}: {e}"));
            return None;
        }
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // The binary itself, or a script of that name run by an interpreter.
    let is_router = args
        .first()
        .is_some_and(|a| a.rsplit('/').next() == Some("router"))
        || args.get(1).is_some_and(|a| Path::new(a) == router_bin());
    c.check(is_router, || {
        format!("pid {pid} from {pid_file} is not a running router (cmdline {args:?})")
    })
    .then_some(pid)
}

fn is_gone(pid: &str) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
}

/// Last: kill both routers; pod traffic must not bypass
/// them, neither to Services nor to the other node's pods.
#[test]
fn fail_closed() {
    lab::check(|c, k| {
        let mut pids = Vec::new();
        for node in [&k.worker, &k.master] {
            if let Some(pid) = router_pid(c, &node.name) {
                // The lab supervises its routers (restart on exit, like
                // systemd's Restart=always): stop the supervisor, which
                // stops its router and starts no other.
                let sup_file = format!("{RUN_DIR}/supervise-{}.pid", node.name);
                match std::fs::read_to_string(&sup_file) {
                    Ok(sup) => {
                        let out = run(5, "kill", &["-TERM", sup.trim()]);
                        c.check(out.status.success(), || show("kill supervisor", &out));
                    }
                    Err(e) => {
                        c.check(false, || format!("cannot read {sup_file}: {e}"));
                    }
                }
                pids.push(pid);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pids.iter().all(|p| is_gone(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        for (from, to) in [(&k.client, &k.far), (&k.client_master, &k.near)] {
            let out = lab_exec(
                &from.name,
                &["curl", "-sS", "--max-time", "2", NGINX_SVC_IP],
            );
            c.check(!out.status.success(), || {
                format!(
                    "with the routers dead, {NGINX_SVC_IP} must not answer {}\n{}",
                    from.name,
                    show("curl", &out)
                )
            });
            let out = lab_exec(&from.name, &["ping", "-c", "2", "-W", "1", &to.ip]);
            c.check(!out.status.success(), || {
            format!(
                "with the routers dead, pod {} ({}, on {}) must not be reachable from {}: pod traffic bypasses the router\n{}",
                to.name,
                to.ip,
                to.node,
                from.name,
                show("ping", &out)
            )
        });
        }
    });
}
