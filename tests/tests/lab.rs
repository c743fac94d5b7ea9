//! Lab tests with real kernels: `scripts/lab up` builds the cluster of
//! `config.toml` out of network namespaces (one per node running `router run`
//! on a TUN device, one per pod running `pod-server`), then real `curl`,
//! `ping` and `socat` inside the pods check what a Kubernetes user would:
//! Service load balancing, client IP preservation, hairpin, ICMP to a
//! ClusterIP, Services without endpoints, UDP Services, conntrack, and that
//! pod traffic fails closed when the router dies.
//!
//! Needs root and `ip`, `curl`, `ping`. Without them the test prints
//! `SKIPPED: ...` and passes, unless `KSR_LAB_REQUIRED=1`, which turns the
//! skip into a failure (for CI machines that are meant to run it).
//!
//! Run: `cargo test -p tests --test lab -- --nocapture`. `scripts/lab up`
//! builds the release binaries first (`KSR_LAB_SKIP_BUILD=1` skips that);
//! `KSR_LAB_BIN=DIR` and `KSR_LAB_CONFIG=FILE` point it elsewhere.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The ClusterIP `config.toml` fixes for `nginx-svc`.
const NGINX_SVC_IP: &str = "10.101.182.177";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives in the workspace")
        .to_path_buf()
}

fn lab_required() -> bool {
    std::env::var("KSR_LAB_REQUIRED").is_ok_and(|v| v == "1")
}

/// Returns `false` (after printing why) when the lab cannot run here and it
/// is not required; panics when it is required.
fn lab_can_run() -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root".to_string());
    }
    for tool in ["ip", "curl", "ping", "timeout"] {
        if find_tool(tool).is_none() {
            missing.push(format!("the `{tool}` tool"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("lab tests need {}", missing.join(", "));
    if lab_required() {
        panic!(
            "\n\n*** {why} ***\n\
             KSR_LAB_REQUIRED=1 is set, so this is a failure. Run as root on \
             a machine with iproute2, curl and iputils-ping.\n\n"
        );
    }
    eprintln!("SKIPPED: {why} (set KSR_LAB_REQUIRED=1 to make this a failure)");
    false
}

/// Effective uid 0, read from `/proc/self/status` (no libc).
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// What `scripts/lab` needs in PATH (`ip` lives in sbin).
fn path_env() -> std::ffi::OsString {
    let mut dirs = vec![bin_dir()];
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    std::env::join_paths(dirs).expect("PATH entries without ':'")
}

fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env("PATH", path_env()).current_dir(repo_root());
    c
}

fn lab_script() -> PathBuf {
    repo_root().join("scripts/lab")
}

/// `config.toml`, or `KSR_LAB_CONFIG`.
fn config_path() -> PathBuf {
    std::env::var_os("KSR_LAB_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("config.toml"))
}

/// Where `router` and `pod-server` are: `target/release`, or `KSR_LAB_BIN`
/// (which `scripts/lab` honours too).
fn bin_dir() -> PathBuf {
    std::env::var_os("KSR_LAB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release"))
}

fn router_bin() -> PathBuf {
    bin_dir().join("router")
}

/// Runs a command, bounded by coreutils `timeout`.
fn run(secs: u32, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    let program = program.as_ref();
    let out = command("timeout")
        .args(["-k", "2", &secs.to_string()])
        .arg(program)
        .args(args)
        .output();
    out.unwrap_or_else(|e| panic!("cannot run {program:?} {args:?}: {e}"))
}

/// `kubectl exec POD -- ARGS`: runs ARGS in the pod's (or node's) netns via
/// `scripts/lab exec`.
fn lab_exec(target: &str, args: &[&str]) -> Output {
    let mut all = vec!["exec", target, "--"];
    all.extend_from_slice(args);
    run(30, lab_script(), &all)
}

fn router_cli(node: &str, args: &[&str]) -> Output {
    let mut all = vec!["--node", node];
    all.extend_from_slice(args);
    run(10, router_bin(), &all)
}

fn show(what: &str, out: &Output) -> String {
    format!(
        "`{what}` exited with {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `text` contains `ip` as a whole address (10.10.1.4 is not in
/// 10.10.1.40).
fn contains_ip(text: &str, ip: &str) -> bool {
    text.match_indices(ip).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let rest = &text[i + ip.len()..];
        let digit_after = rest.starts_with(|c: char| c.is_ascii_digit())
            || (rest.starts_with('.') && rest[1..].starts_with(|c: char| c.is_ascii_digit()));
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.') && !digit_after
    })
}

/// One pod as `router lab-pods` prints it.
#[derive(Debug, Clone)]
struct Pod {
    name: String,
    ip: String,
    node: String,
    tcp: Vec<u16>,
    udp: Vec<u16>,
}

fn ports(field: &str) -> Vec<u16> {
    if field == "-" {
        return Vec::new();
    }
    field
        .split(',')
        .map(|p| p.parse().unwrap_or_else(|e| panic!("bad port {p:?}: {e}")))
        .collect()
}

fn lab_pods() -> Vec<Pod> {
    let config = config_path();
    let config = config.to_str().expect("utf-8 path");
    let out = run(10, router_bin(), &["lab-pods", "--config", config]);
    assert!(out.status.success(), "{}", show("router lab-pods", &out));
    stdout(&out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(
                f.len(),
                8,
                "router lab-pods line {l:?}: expected 8 tab-separated fields"
            );
            Pod {
                name: f[1].to_string(),
                ip: f[2].to_string(),
                node: f[3].to_string(),
                tcp: ports(f[6]),
                udp: ports(f[7]),
            }
        })
        .collect()
}

/// `NAME -> CLUSTER-IP` from `router --config config.toml get svc`.
fn cluster_ip(service: &str) -> String {
    let config = config_path();
    let config = config.to_str().expect("utf-8 path");
    let out = run(10, router_bin(), &["--config", config, "get", "svc"]);
    assert!(
        out.status.success(),
        "{}",
        show("router --config config.toml get svc", &out)
    );
    let text = stdout(&out);
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column in `get svc`:\n{text}"))
    };
    let (name_col, ip_col) = (col("NAME"), col("CLUSTER-IP"));
    lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(name_col) == Some(&service))
        .and_then(|f| f.get(ip_col).map(|s| s.to_string()))
        .unwrap_or_else(|| panic!("service {service} not in `get svc`:\n{text}"))
}

/// Tears the lab down when dropped, also when an assertion panics.
struct Lab;

impl Lab {
    fn up() -> Lab {
        let lab = Lab;
        let config = config_path();
        let config = config.to_str().expect("utf-8 path");
        // Building may take a while on a cold target dir.
        let out = run(1800, lab_script(), &["up", "--config", config]);
        assert!(out.status.success(), "{}", show("scripts/lab up", &out));
        eprintln!("{}", stdout(&out));
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let config = config_path();
        let config = config.to_str().expect("utf-8 path");
        let out = run(60, lab_script(), &["down", "--config", config]);
        if !out.status.success() {
            eprintln!("{}", show("scripts/lab down", &out));
        }
    }
}

/// Collects failed checks so one lab run reports all of them.
#[derive(Default)]
struct Checks {
    failures: Vec<String>,
}

impl Checks {
    #[track_caller]
    /// Records a failure unless `ok`; returns `ok`.
    fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) -> bool {
        if !ok {
            let loc = std::panic::Location::caller();
            let msg = msg();
            eprintln!("FAILED at {loc}: {msg}\n");
            self.failures.push(format!("{loc}: {msg}"));
        }
        ok
    }

    fn finish(self) {
        if !self.failures.is_empty() {
            let mut report = format!("{} lab check(s) failed:\n\n", self.failures.len());
            for f in &self.failures {
                let _ = writeln!(report, "* {f}\n");
            }
            panic!("{report}");
        }
    }
}

fn http_lines(body: &str) -> Vec<&str> {
    body.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// The `host:` line of a `GET /` answer.
fn host_of(body: &str) -> Option<String> {
    body.lines()
        .find_map(|l| l.strip_prefix("host:"))
        .map(|h| h.trim().to_string())
}

#[test]
fn lab() {
    if !lab_can_run() {
        return;
    }
    let lab = Lab::up();

    let pods = lab_pods();
    let client = pods
        .iter()
        .find(|p| p.name == "client")
        .or_else(|| pods.iter().find(|p| p.tcp.is_empty() && p.udp.is_empty()))
        .unwrap_or_else(|| panic!("no client pod (a pod without ports) in {pods:?}"))
        .clone();
    let nginx: Vec<Pod> = pods
        .iter()
        .filter(|p| p.name.starts_with("nginx-deployment-") && p.tcp.contains(&80))
        .cloned()
        .collect();
    assert!(
        nginx.len() >= 2,
        "expected >= 2 nginx-deployment pods with TCP 80: {pods:?}"
    );
    let nginx_names: BTreeSet<&str> = nginx.iter().map(|p| p.name.as_str()).collect();
    let node = client.node.clone();
    let orphan_ip = cluster_ip("orphan-svc");
    let echo_ip = cluster_ip("echo-udp");
    let mut c = Checks::default();

    // 1. Load balancing: both backends answer, every answer is complete.
    let mut seen = BTreeSet::new();
    for i in 0..20 {
        let out = lab_exec(
            &client.name,
            &["curl", "-sS", "--max-time", "3", NGINX_SVC_IP],
        );
        let body = stdout(&out);
        let lines = http_lines(&body);
        // One failure is reported; the rest would only repeat it (slowly).
        let ok = c.check(
            out.status.success()
                && lines.len() == 4
                && ["srv :", "host:", "uri :", "date:"]
                    .iter()
                    .zip(&lines)
                    .all(|(p, l)| l.starts_with(p)),
            || {
                format!(
                    "request {i} from {} to {NGINX_SVC_IP}: expected the 4 lines srv/host/uri/date\n{}",
                    client.name,
                    show("curl", &out)
                )
            },
        );
        if let Some(h) = host_of(&body) {
            seen.insert(h);
        }
        if !ok {
            break;
        }
    }
    let seen_ref: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
    c.check(seen_ref == nginx_names, || {
        format!(
            "20 requests to {NGINX_SVC_IP} reached {seen_ref:?}, expected all of {nginx_names:?}"
        )
    });

    // 2. The backend sees the client's own IP (no SNAT between pods).
    let out = lab_exec(
        &client.name,
        &[
            "curl",
            "-sS",
            "--max-time",
            "3",
            &format!("http://{NGINX_SVC_IP}/clientip"),
        ],
    );
    let body = stdout(&out);
    let client_ip_seen = body.trim().rsplit_once(':').map(|(ip, _)| ip.to_string());
    c.check(
        out.status.success() && client_ip_seen.as_deref() == Some(client.ip.as_str()),
        || {
            format!(
                "{NGINX_SVC_IP}/clientip from {} should answer {}:PORT\n{}",
                client.name,
                client.ip,
                show("curl", &out)
            )
        },
    );

    // 8. Conntrack lists the flow just made (run early, while it is recent).
    let _ = lab_exec(
        &client.name,
        &["curl", "-s", "--max-time", "3", NGINX_SVC_IP],
    );
    let out = router_cli(&node, &["get", "conntrack"]);
    let text = stdout(&out);
    c.check(
        out.status.success()
            && text
                .lines()
                .any(|l| l.contains(&format!("dst={NGINX_SVC_IP}")) && contains_ip(l, &client.ip)),
        || {
            format!(
                "`router --node {node} get conntrack` should list a flow with dst={NGINX_SVC_IP} from {}\n{}",
                client.ip,
                show("router get conntrack", &out)
            )
        },
    );

    // 3. Hairpin: a backend reaches its own Service, and sometimes itself.
    // 10 requests; if none reached the pod itself (1 in 2^10 with a random
    // pick between two backends), up to 20 more before calling it a failure.
    for pod in &nginx {
        let mut names: Vec<String> = Vec::new();
        for i in 0..30 {
            if i >= 10 && names.contains(&pod.name) {
                break;
            }
            let out = lab_exec(
                &pod.name,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "3",
                    &format!("http://{NGINX_SVC_IP}/hostname"),
                ],
            );
            let name = stdout(&out).trim().to_string();
            let ok = c.check(
                out.status.success() && nginx_names.contains(name.as_str()),
                || {
                    format!(
                    "hairpin: {} -> {NGINX_SVC_IP}/hostname should answer an nginx pod name\n{}",
                    pod.name,
                    show("curl", &out)
                )
                },
            );
            names.push(name);
            if !ok {
                break;
            }
        }
        let all_answered = names.iter().all(|n| nginx_names.contains(n.as_str()));
        c.check(!all_answered || names.contains(&pod.name), || {
            format!(
                "hairpin: {} requests from {} to {NGINX_SVC_IP} never reached {} itself: {names:?}",
                names.len(),
                pod.name,
                pod.name
            )
        });
    }

    // 4. A ClusterIP is not a host: no answer to ping.
    let out = lab_exec(&client.name, &["ping", "-c", "3", "-W", "1", NGINX_SVC_IP]);
    c.check(
        !out.status.success() && stdout(&out).contains("100% packet loss"),
        || {
            format!(
                "ping {NGINX_SVC_IP} should get 100% packet loss\n{}",
                show("ping", &out)
            )
        },
    );

    // 5. A Service without endpoints rejects at once.
    let start = Instant::now();
    let out = lab_exec(
        &client.name,
        &[
            "curl",
            "-sSv",
            "--max-time",
            "3",
            &format!("http://{orphan_ip}/"),
        ],
    );
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    c.check(
        out.status.code() == Some(7) && stderr.contains("Connection refused"),
        || {
            format!(
                "curl to orphan-svc {orphan_ip} should fail with `Connection refused` (exit 7)\n{}",
                show("curl -v", &out)
            )
        },
    );
    c.check(took < Duration::from_secs(1), || {
        format!(
            "curl to orphan-svc {orphan_ip} took {took:?}, expected an immediate reject (< 1 s)"
        )
    });

    // 6. UDP through echo-udp.
    let target = format!("UDP4:{echo_ip}:9000");
    let out = if find_tool("socat").is_some() {
        lab_exec(
            &client.name,
            &[
                "sh",
                "-c",
                &format!("printf hostname | timeout 5 socat -t 2 - {target}"),
            ],
        )
    } else {
        lab_exec(
            &client.name,
            &[
                "timeout",
                "5",
                "bash",
                "-c",
                &format!(
                    // One read(2) takes the whole datagram (bash `read`
                    // would take one byte of it).
                    "exec 3<>/dev/udp/{echo_ip}/9000; printf hostname >&3; \
                     timeout 2 dd bs=65535 count=1 status=none <&3"
                ),
            ],
        )
    };
    let answer = stdout(&out).trim().to_string();
    c.check(nginx_names.contains(answer.as_str()), || {
        format!(
            "UDP `hostname` to echo-udp {echo_ip}:9000 from {} should answer an nginx pod name\n{}",
            client.name,
            show("socat", &out)
        )
    });

    // 7. Last: kill the router; pod traffic must not bypass it.
    let pid_file = format!("/run/ksr/router-{node}.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap_or_else(|e| panic!("cannot read {pid_file}: {e}"))
        .trim()
        .to_string();
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
    });
    if is_router {
        let out = run(5, "kill", &["-TERM", &pid]);
        assert!(out.status.success(), "{}", show("kill router", &out));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z")
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = lab_exec(
            &client.name,
            &["curl", "-sS", "--max-time", "2", NGINX_SVC_IP],
        );
        c.check(!out.status.success(), || {
            format!(
                "with the router dead, {NGINX_SVC_IP} must not answer\n{}",
                show("curl", &out)
            )
        });
        let out = lab_exec(&client.name, &["ping", "-c", "2", "-W", "1", &nginx[0].ip]);
        c.check(!out.status.success(), || {
            format!(
                "with the router dead, pod {} ({}) must not be reachable from {}: pod traffic bypasses the router\n{}",
                nginx[0].name,
                nginx[0].ip,
                client.name,
                show("ping", &out)
            )
        });
    }

    drop(lab);
    c.finish();
}

#[test]
fn contains_ip_matches_whole_addresses() {
    assert!(contains_ip("src=10.10.1.4 dst=x", "10.10.1.4"));
    assert!(contains_ip("10.10.1.4:5000", "10.10.1.4"));
    assert!(contains_ip("(10.10.1.4)", "10.10.1.4"));
    assert!(!contains_ip("src=10.10.1.40 dst=x", "10.10.1.4"));
    assert!(!contains_ip("src=110.10.1.4", "10.10.1.4"));
    assert!(!contains_ip("10.10.1.4.5", "10.10.1.4"));
}
