//! The API server killed (`kill -9`) and started again as a new process
//! while the routers and kubelets run (shared by the `kubernetes` and
//! `kubernetes_etcd` test binaries): an established flow through a
//! ClusterIP is not broken, new connections are served and the routers
//! answer while it is down, every object is still there afterwards (same
//! UIDs and resourceVersions), and a change made after the restart reaches
//! both routers: their watches resumed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lab::env::*;
use lab::timed::{stream_from, stream_lines};
use lab::Checks;
use serde_json::Value;

use crate::kubectl::*;

/// The lab's nodes, and the client pod each runs (lab/manifests).
const CLIENTS: [(&str, &str); 2] = [("mac-worker", "client"), ("mac-master", "client-master")];
/// What `kubectl get` snapshots: every kind the lab's objects have.
const KINDS: &str = "ns,nodes,po,svc,endpoints,endpointslices,deploy,rs";
/// The stream through the ClusterIP: 250 lines, one every 100 ms (25 s,
/// longer than the API server is down).
const STREAM_LINES: usize = 250;
/// How long the API server stays down at least.
const DOWN_FOR: Duration = Duration::from_secs(5);

/// Where the API server keeps its objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Its embedded storage (`--data-dir /run/ksr/apiserver/data`).
    Embedded,
    /// The lab's etcd (`--etcd URL`; `scripts/lab up --etcd`).
    Etcd,
}

/// The API server's pid (`/run/ksr/apiserver.pid`).
fn apiserver_pid() -> Option<String> {
    let pid = std::fs::read_to_string(format!("{RUN_DIR}/apiserver.pid")).ok()?;
    Some(pid.trim().to_string()).filter(|p| !p.is_empty())
}

/// The arguments process `pid` runs with.
fn cmdline(pid: &str) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Where an API server running with `args` stores: `--etcd` or
/// `--data-dir`.
fn storage_of(args: &[String]) -> Option<Storage> {
    if args.iter().any(|a| a == "--etcd") {
        Some(Storage::Etcd)
    } else if args.iter().any(|a| a == "--data-dir") {
        Some(Storage::Embedded)
    } else {
        None
    }
}

/// Checks that the running API server stores where `storage` says.
fn check_storage(c: &mut Checks, pid: &str, storage: Storage) {
    let args = cmdline(pid);
    c.check(storage_of(&args) == Some(storage), || {
        format!("the API server (pid {pid}) should store in {storage:?}: {args:?}")
    });
    if storage == Storage::Etcd {
        // On another machine it would have nothing but etcd: here too.
        let data = format!("{RUN_DIR}/apiserver/data");
        c.check(!std::path::Path::new(&data).exists(), || {
            format!("an API server on etcd should keep no {data}")
        });
    }
}

/// Every object as `kind namespace/name` with its UID and resourceVersion.
type Snapshot = BTreeMap<String, (String, String)>;

/// `kubectl get KINDS -A -o json`, as a [`Snapshot`]; `None` (recorded)
/// when kubectl fails.
fn snapshot(c: &mut Checks) -> Option<Snapshot> {
    let list = get_json(c, &[KINDS, "-A"]);
    if list.is_null() {
        return None;
    }
    let objects = items(&list);
    Some(
        objects
            .iter()
            .map(|o| {
                let key = format!(
                    "{} {}/{}",
                    str_at(o, "/kind"),
                    str_at(o, "/metadata/namespace"),
                    str_at(o, "/metadata/name")
                );
                let id = (
                    str_at(o, "/metadata/uid").to_string(),
                    str_at(o, "/metadata/resourceVersion").to_string(),
                );
                (key, id)
            })
            .collect(),
    )
}

/// Whether the lab is at rest: every pod Ready and none terminating, the
/// two nginx replicas.
fn at_rest(pods: &[Value]) -> bool {
    let nginx = pods
        .iter()
        .filter(|p| str_at(p, "/metadata/name").starts_with("nginx-deployment-"))
        .count();
    nginx == 2
        && pods
            .iter()
            .all(|p| ready(p) && p.pointer("/metadata/deletionTimestamp").is_none())
}

/// A snapshot of a lab at rest that stays the same for a second (an
/// earlier check's changes have settled), within 60 s.
fn settled_snapshot(c: &mut Checks) -> Option<Snapshot> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Option<Snapshot> = None;
    while Instant::now() < deadline {
        let pods = items(&get_json(c, &["po", "-A"]));
        if at_rest(&pods) {
            let now = snapshot(c)?;
            if last.as_ref() == Some(&now) {
                return Some(now);
            }
            last = Some(now);
        } else {
            last = None;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    c.check(false, || {
        "the lab did not come to rest (all pods Ready, 2 nginx replicas, no change for 1 s) within 60 s".into()
    });
    None
}

/// What differs between two snapshots, one line each.
fn differences(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (key, id) in before {
        match after.get(key) {
            None => out.push(format!("lost: {key} (uid {}, rv {})", id.0, id.1)),
            Some(now) if now != id => out.push(format!(
                "changed: {key}: uid {} rv {} -> uid {} rv {}",
                id.0, id.1, now.0, now.1
            )),
            Some(_) => {}
        }
    }
    for key in after.keys().filter(|k| !before.contains_key(*k)) {
        out.push(format!("new: {key}"));
    }
    out
}

/// Starts the API server again when dropped if it is not running, so a
/// failed check leaves the lab usable for the next one.
struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let running = apiserver_pid()
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !running {
            let out = lab_cmd(&["apiserver", "start"]);
            if !out.status.success() {
                eprintln!("{}", show("scripts/lab apiserver start", &out));
            }
        }
    }
}

/// The pods each router serves as nginx-svc's ready endpoints (`router
/// --node NODE get endpoints nginx-svc -o json`), `None` when it does not
/// answer.
fn router_endpoint_pods(node: &str) -> Option<Vec<String>> {
    let out = router_cli(node, &["get", "endpoints", "nginx-svc", "-o", "json"]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let mut pods: Vec<String> = items(&v)
        .iter()
        .flat_map(|e| e["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| str_at(&e, "/pod").to_string())
        .collect();
    pods.sort();
    pods.dedup();
    Some(pods)
}

/// With the API server down: 10 requests to nginx-svc's ClusterIP from
/// each client pod reach the nginx `pods`, and `router --node N get svc`
/// still lists it on each node.
fn check_served_while_down(c: &mut Checks, pods: &[String]) {
    for (node, pod) in CLIENTS {
        let seen = hostnames_via_cluster_ip(pod, 10);
        c.check(seen.iter().all(|h| pods.contains(h)), || {
            format!("with the API server down, nginx-svc from {pod}: {seen:?} (pods {pods:?})")
        });
        let svc = router_cli(node, &["get", "svc"]);
        c.check(
            svc.status.success() && stdout(&svc).contains(NGINX_SVC),
            || {
                show(
                    &format!("router --node {node} get svc (API server down)"),
                    &svc,
                )
            },
        );
    }
}

/// The check: kill -9 of the API server during a stream, checks while it
/// is down, a restart, then nothing lost and the routers following a
/// deleted pod's replacement.
pub fn kill_and_restart_loses_nothing(c: &mut Checks, storage: Storage) {
    let Some(pid) = apiserver_pid() else {
        c.check(false, || format!("no {RUN_DIR}/apiserver.pid"));
        return;
    };
    check_storage(c, &pid, storage);
    let Some(before) = settled_snapshot(c) else {
        return;
    };
    // A client and an nginx pod on the other node: the stream crosses the
    // overlay.
    let nginx = items(&get_json(c, &["po", "-l", "app=nginx-deployment"]));
    let pods: Vec<String> = nginx
        .iter()
        .map(|p| str_at(p, "/metadata/name").to_string())
        .collect();
    let far = CLIENTS.iter().find_map(|(node, client)| {
        nginx
            .iter()
            .find(|p| str_at(p, "/spec/nodeName") != *node)
            .map(|p| (*client, str_at(p, "/metadata/name").to_string()))
    });
    let Some((client, far_pod)) = far else {
        c.check(false, || {
            format!("no nginx pod off a client's node: {pods:?}")
        });
        return;
    };
    let Some(victim) = pods.iter().find(|p| **p != far_pod).cloned() else {
        c.check(false, || format!("no second nginx pod: {pods:?}"));
        return;
    };
    let url = format!("http://{NGINX_SVC}/stream?lines={STREAM_LINES}&interval_ms=100");
    let stream = match stream_from(client, &url, &far_pod, 60) {
        Ok(s) => s,
        Err(e) => {
            c.check(false, || e);
            return;
        }
    };

    let _restart = RestartOnDrop;
    let killed = Instant::now();
    let out = lab_cmd(&["apiserver", "stop", "--kill"]);
    c.check(out.status.success(), || {
        show("scripts/lab apiserver stop --kill", &out)
    });
    let health = kubectl(c, &["get", "--raw", "/healthz", "--request-timeout=2s"]);
    c.check(!health.status.success(), || {
        show("the API server should not answer after kill -9", &health)
    });
    // While it is down (at least DOWN_FOR, so the routers' watches fail
    // and back off more than once): new connections to existing Services
    // are served, from both nodes, and each router answers with its state.
    let mut rounds = 0;
    while rounds == 0 || killed.elapsed() < DOWN_FOR {
        rounds += 1;
        check_served_while_down(c, &pods);
    }
    let down_checks = killed.elapsed();

    let out = lab_cmd(&["apiserver", "start"]);
    let restarted = Instant::now();
    c.check(out.status.success(), || {
        show("scripts/lab apiserver start", &out)
    });
    if let Some(new_pid) = apiserver_pid() {
        c.check(new_pid != pid, || {
            format!("the API server should be a new process, still pid {pid}")
        });
        check_storage(c, &new_pid, storage);
    }
    eprintln!(
        "{storage:?}: API server killed, down {:?} ({rounds} rounds of checks in {down_checks:?}), serving again",
        restarted.duration_since(killed)
    );
    if let Some(after) = snapshot(c) {
        let diff = differences(&before, &after);
        c.check(diff.is_empty(), || {
            format!(
                "after the restart every object should be as before ({} objects):\n{}",
                before.len(),
                diff.join("\n")
            )
        });
    }

    // A change made right after the restart reaches both routers (their
    // watches resumed, after their back-off) while the stream goes on: the
    // other nginx pod is deleted, its replacement takes its place in what
    // they serve (the kubelets' watches resumed too: it became Ready).
    let deleted = Instant::now();
    let out = kubectl(c, &["delete", "po", &victim, "--wait=false"]);
    c.check(out.status.success(), || {
        show(&format!("kubectl delete po {victim}"), &out)
    });
    for (node, _) in CLIENTS {
        let deadline = deleted + Duration::from_secs(60);
        let mut served = None;
        while Instant::now() < deadline {
            served = router_endpoint_pods(node);
            let followed = served.as_ref().is_some_and(|s| {
                s.len() == 2 && !s.contains(&victim) && s.iter().any(|p| !pods.contains(p))
            });
            if followed {
                eprintln!(
                    "router on {node} serves the replacement {:?} after {:?} ({:?} after the restart)",
                    served,
                    deleted.elapsed(),
                    restarted.elapsed()
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            served = None;
        }
        c.check(served.is_some(), || {
            format!(
                "the router on {node} should serve nginx-svc's replacement for {victim} within \
                 60 s (its watch resumed after the restart); it serves {:?}",
                router_endpoint_pods(node)
            )
        });
    }
    let t = stream.finish();
    let (got, in_order) = stream_lines(&t);
    let spanned = t.lines.last().is_some_and(|(at, _)| *at > restarted);
    c.check(
        got == STREAM_LINES && in_order && t.succeeded() && spanned,
        || {
            format!(
                "the stream from {far_pod} to {client} through {NGINX_SVC} should deliver all \
                 {STREAM_LINES} lines in order, end cleanly (no RST) and outlast the API \
                 server's restart: got {got} (in order: {in_order}), exit {:?}, outlasted it: \
                 {spanned}\nstderr: {}",
                t.status, t.stderr
            )
        },
    );
    eprintln!(
        "stream {client} -> {far_pod}: {got}/{STREAM_LINES} lines, longest gap {:?}",
        t.longest_gap()
    );

    let now = nginx_pods(c);
    for (_, pod) in CLIENTS {
        let seen = hostnames_via_cluster_ip(pod, 20);
        let served = seen.iter().all(|h| !h.is_empty() && *h != victim);
        c.check(served && seen.iter().any(|h| !pods.contains(h)), || {
            format!(
                "after the restart nginx-svc from {pod} should reach the replacement, not \
                     the deleted {victim}: {seen:?} (pods now {now:?})"
            )
        });
    }
}
