//! Lab tests with real kernels: `scripts/lab up --capture` builds the
//! two-node cluster of `config.toml` out of network namespaces (one per node
//! running `router run` on a TUN device, the nodes joined by a bridged
//! underlay and the routers' VXLAN overlay, one namespace per pod running
//! `pod-server`, and an external client on the underlay), then real `curl`,
//! `ping`, `socat` and `tshark` check what a Kubernetes user would:
//!
//! - ClusterIP load balancing across both nodes, client IP preservation,
//!   hairpin (masqueraded to the node's pod network address), conntrack;
//! - pod to pod across nodes both ways, 1,400-byte pings, and the router's
//!   ICMP "fragmentation needed" (MTU 1450) for packets too big for the
//!   overlay;
//! - NodePort (externalTrafficPolicy Cluster and Local) and LoadBalancer /
//!   external IPs from outside the cluster;
//! - the routers' own capture of a flow crossing the overlay, checksums
//!   included;
//! - anti-spoofing: a pod sending from an address that is not its own;
//! - ICMP to a ClusterIP, Services without endpoints, UDP Services;
//! - interop with a plain Linux VXLAN node (`scripts/lab kernel-node`),
//!   captured on the underlay bridge;
//! - the live cluster (`router apply/delete` on the store
//!   `/run/ksr/cluster.toml`, the lab's kubelet building and removing pods):
//!   a deleted pod replaced (new name and IP, endpoints follow), nginx-svc
//!   re-applied as NodePort, a TCP stream surviving 100 unrelated applies
//!   (and how long an apply takes to reach both routers, printed), a stale
//!   UDP flow moving off a deleted pod, a deleted and re-applied Service,
//!   refused applies changing nothing, cluster DNS with `dig` and names in
//!   `curl`, sessionAffinity, internalTrafficPolicy Local, named
//!   targetPorts;
//! - last, that pod traffic fails closed when the routers die.
//!
//! All of it is one `#[test]` on one lab: two labs can never run at once
//! (they share the `ksr-*` names), and every failed check is reported
//! together at the end.
//!
//! Needs root and `ip`, `curl`, `ping`, `timeout` (and `socat`, `dig`). Without them the test
//! prints `SKIPPED: ...` and passes, unless `KSR_LAB_REQUIRED=1`, which turns
//! the skip into a failure (for CI machines that are meant to run it).
//! `tshark` (and `ethtool`, for the kernel VXLAN peer) come from
//! `scripts/install-deps`; without tshark the capture checks fail.
//!
//! Run: `cargo test -p tests --test lab -- --nocapture`. `scripts/lab up`
//! builds the release binaries first (`KSR_LAB_SKIP_BUILD=1` skips that);
//! `KSR_LAB_BIN=DIR` and `KSR_LAB_CONFIG=FILE` point it elsewhere.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The ClusterIP `config.toml` fixes for `nginx-svc`.
const NGINX_SVC_IP: &str = "10.101.182.177";
/// Where `scripts/lab` keeps pid files, sockets and captures.
const RUN_DIR: &str = "/run/ksr";

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

fn config_arg() -> String {
    config_path().to_str().expect("utf-8 path").to_string()
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

/// `kubectl exec POD -- ARGS`: runs ARGS in the pod's (or node's, or the
/// external client's) netns via `scripts/lab exec`.
fn lab_exec(target: &str, args: &[&str]) -> Output {
    let mut all = vec!["exec", target, "--"];
    all.extend_from_slice(args);
    run(30, lab_script(), &all)
}

/// `scripts/lab ARGS` (kernel-node, router-node).
fn lab_cmd(args: &[&str]) -> Output {
    run(60, lab_script(), args)
}

fn router_cli(node: &str, args: &[&str]) -> Output {
    let mut all = vec!["--node", node];
    all.extend_from_slice(args);
    run(10, router_bin(), &all)
}

/// `curl -sS --max-time 3 [EXTRA...] URL` inside `target`.
fn curl(target: &str, url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["curl", "-sS", "--max-time", "3"];
    args.extend_from_slice(extra);
    args.push(url);
    lab_exec(target, &args)
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

/// The address part of a `/clientip` answer (`10.10.1.100:41234`).
fn client_ip_of(body: &str) -> Option<&str> {
    body.trim().rsplit_once(':').map(|(ip, _)| ip)
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

impl Pod {
    fn has_ports(&self) -> bool {
        !self.tcp.is_empty() || !self.udp.is_empty()
    }
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
    let out = run(10, router_bin(), &["lab-pods", "--config", &config_arg()]);
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

/// One node as `router lab-nodes` prints it.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    /// Underlay address (NodePorts listen on it).
    address: String,
    /// The pod CIDR's network address: what flows masqueraded by this
    /// node's router come from.
    pod_network: String,
    /// The pods' gateway (first host of the pod CIDR).
    gateway: String,
}

fn lab_nodes() -> Vec<Node> {
    let out = run(10, router_bin(), &["lab-nodes", "--config", &config_arg()]);
    assert!(out.status.success(), "{}", show("router lab-nodes", &out));
    stdout(&out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(
                f.len() >= 3,
                "router lab-nodes line {l:?}: expected name, address, pod CIDR"
            );
            let (net, len) = f[2]
                .split_once('/')
                .unwrap_or_else(|| panic!("bad pod CIDR in {l:?}"));
            let net: Ipv4Addr = net
                .parse()
                .unwrap_or_else(|e| panic!("bad pod CIDR in {l:?}: {e}"));
            let len: u32 = len
                .parse()
                .unwrap_or_else(|e| panic!("bad pod CIDR in {l:?}: {e}"));
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            let network = u32::from(net) & mask;
            Node {
                name: f[0].to_string(),
                address: f[1].to_string(),
                pod_network: Ipv4Addr::from(network).to_string(),
                gateway: Ipv4Addr::from(network + 1).to_string(),
            }
        })
        .collect()
}

/// The overlay's settings, from `router lab-cluster` (`POD_CIDR
/// SERVICE_CIDR [VNI PORT UNDERLAY_MTU POD_MTU]`), with flannel's defaults
/// for the columns it does not print.
#[derive(Debug, Clone, Copy)]
struct Overlay {
    vni: u32,
    port: u16,
    pod_mtu: u32,
}

fn overlay() -> Overlay {
    let out = run(
        10,
        router_bin(),
        &["lab-cluster", "--config", &config_arg()],
    );
    assert!(out.status.success(), "{}", show("router lab-cluster", &out));
    let text = stdout(&out);
    let f: Vec<&str> = text.trim().split('\t').collect();
    let col = |i: usize| f.get(i).and_then(|v| v.parse::<u32>().ok());
    let underlay_mtu = col(4).unwrap_or(1500);
    Overlay {
        vni: col(2).unwrap_or(1),
        port: col(3).and_then(|p| u16::try_from(p).ok()).unwrap_or(8472),
        pod_mtu: col(5).unwrap_or(underlay_mtu - 50),
    }
}

/// The rows of `router --config config.toml get svc`, as `(header, rows)`.
fn file_services() -> (Vec<String>, Vec<Vec<String>>) {
    let out = run(10, router_bin(), &["--config", &config_arg(), "get", "svc"]);
    assert!(
        out.status.success(),
        "{}",
        show("router --config config.toml get svc", &out)
    );
    let text = stdout(&out);
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// Column `column` of Service `service` in `get svc`.
fn service_field(service: &str, column: &str) -> String {
    let (header, rows) = file_services();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column in `get svc`: {header:?}"))
    };
    let (name_col, col) = (col("NAME"), col(column));
    rows.iter()
        .find(|f| f.get(name_col).map(String::as_str) == Some(service))
        .and_then(|f| f.get(col).cloned())
        .unwrap_or_else(|| panic!("service {service} not in `get svc`: {rows:?}"))
}

fn cluster_ip(service: &str) -> String {
    service_field(service, "CLUSTER-IP")
}

/// The first nodePort of a Service: `80:30080/TCP` -> 30080.
fn node_port(service: &str) -> String {
    let ports = service_field(service, "PORT(S)");
    ports
        .split(',')
        .find_map(|p| p.split_once(':').and_then(|(_, np)| np.split_once('/')))
        .map(|(np, _)| np.to_string())
        .unwrap_or_else(|| panic!("service {service} has no nodePort: {ports}"))
}

/// The LoadBalancer and external IPs of a Service (EXTERNAL-IP).
fn external_ips(service: &str) -> Vec<String> {
    service_field(service, "EXTERNAL-IP")
        .split(',')
        .filter(|ip| ip.parse::<Ipv4Addr>().is_ok())
        .map(str::to_string)
        .collect()
}

/// The veth of a pod on its node, as `scripts/lab` names it.
fn veth_name(ip: &str) -> String {
    let ip: Ipv4Addr = ip.parse().expect("pod IP");
    let o = ip.octets();
    format!("ksr{:02x}{:02x}{:02x}{:02x}", o[0], o[1], o[2], o[3])
}

/// A counter of `router get stats` (`  spoofed-source   2`), 0 if absent.
fn stat_count(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(name)).then(|| f.next())?
        })
        .find_map(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A counter of `/proc/net/netstat` (`TcpExt: ... IPReversePathFilter`) in
/// a lab netns.
fn netstat_counter(target: &str, name: &str) -> Option<u64> {
    let text = stdout(&lab_exec(target, &["cat", "/proc/net/netstat"]));
    let lines: Vec<&str> = text.lines().collect();
    lines.windows(2).find_map(|w| {
        let (keys, values) = (w[0], w[1]);
        let prefix = keys.split_whitespace().next()?;
        if !values.starts_with(prefix) {
            return None;
        }
        let i = keys.split_whitespace().position(|k| k == name)?;
        values.split_whitespace().nth(i)?.parse().ok()
    })
}

/// Tears the lab down when dropped, also when an assertion panics.
struct Lab;

impl Lab {
    fn up() -> Lab {
        let lab = Lab;
        // Building may take a while on a cold target dir.
        let out = run(
            1800,
            lab_script(),
            &["up", "--capture", "--config", &config_arg()],
        );
        assert!(out.status.success(), "{}", show("scripts/lab up", &out));
        eprintln!("{}", stdout(&out));
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = run(60, lab_script(), &["down", "--config", &config_arg()]);
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

/// Whether a `GET /` answer is the 4 lines srv/host/uri/date.
fn is_full_answer(out: &Output) -> bool {
    let body = stdout(out);
    let lines = http_lines(&body);
    out.status.success()
        && lines.len() == 4
        && ["srv :", "host:", "uri :", "date:"]
            .iter()
            .zip(&lines)
            .all(|(p, l)| l.starts_with(p))
}

/// The `host:` line of a `GET /` answer.
fn host_of(body: &str) -> Option<String> {
    body.lines()
        .find_map(|l| l.strip_prefix("host:"))
        .map(|h| h.trim().to_string())
}

/// `tshark -r FILE` with VXLAN decoded on the overlay port and checksums
/// verified, printing the packets that match `filter`.
fn tshark(file: &str, filter: &str) -> Output {
    let vxlan = format!("udp.port=={},vxlan", overlay().port);
    run(
        60,
        "tshark",
        &[
            "-r",
            file,
            "-d",
            &vxlan,
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            filter,
        ],
    )
}

/// How many packets of `file` match `filter` (None if tshark failed).
fn tshark_count(file: &str, filter: &str) -> (Option<usize>, Output) {
    let out = tshark(file, filter);
    let n = out.status.success().then(|| {
        stdout(&out)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    });
    (n, out)
}

/// Packets whose checksums tshark found wrong. Wireshark's checksum
/// status is 0 Bad, 1 Good, 2 Unverified, 3 Not present, 4 Illegal.
const BAD_CHECKSUM: &str = "ip.checksum.status == 0 || tcp.checksum.status == 0 \
     || udp.checksum.status == 0 || icmp.checksum.status == 0";
/// Packets with a verified TCP checksum: proof that tshark checked at all.
const GOOD_TCP_CHECKSUM: &str = "tcp.checksum.status == 1";

/// No packet of `file` has a bad checksum, and some have verified ones.
fn check_checksums(c: &mut Checks, file: &str) {
    let (n, out) = tshark_count(file, BAD_CHECKSUM);
    c.check(n == Some(0), || {
        format!(
            "capture {file}: packets with bad checksums (filter {BAD_CHECKSUM})\n{}",
            show("tshark", &out)
        )
    });
    let (n, out) = tshark_count(file, GOOD_TCP_CHECKSUM);
    c.check(n.is_some_and(|n| n > 0), || {
        format!(
            "capture {file}: no TCP checksum was verified (filter {GOOD_TCP_CHECKSUM})\n{}",
            show("tshark", &out)
        )
    });
}

/// What the lab is made of, as the tests see it.
struct Cluster {
    client: Pod,
    client_master: Pod,
    nginx: Vec<Pod>,
    /// The nginx pod on the client's node.
    near: Pod,
    /// The nginx pod on the other node.
    far: Pod,
    /// The client's node (the worker).
    worker: Node,
    /// The other node (the master).
    master: Node,
    nodes: Vec<Node>,
}

impl Cluster {
    fn load() -> Cluster {
        Cluster::from_pods(lab_pods())
    }

    fn from_pods(pods: Vec<Pod>) -> Cluster {
        let nodes = lab_nodes();
        assert!(nodes.len() >= 2, "the lab needs two nodes: {nodes:?}");
        let client = pods
            .iter()
            .find(|p| p.name == "client")
            .or_else(|| pods.iter().find(|p| !p.has_ports()))
            .unwrap_or_else(|| panic!("no client pod (a pod without ports) in {pods:?}"))
            .clone();
        let nginx: Vec<Pod> = pods
            .iter()
            .filter(|p| p.name.starts_with("nginx-deployment-") && p.tcp.contains(&80))
            .cloned()
            .collect();
        let near = nginx
            .iter()
            .find(|p| p.node == client.node)
            .unwrap_or_else(|| panic!("no nginx pod on {}: {nginx:?}", client.node))
            .clone();
        let far = nginx
            .iter()
            .find(|p| p.node != client.node)
            .unwrap_or_else(|| panic!("no nginx pod off {}: {nginx:?}", client.node))
            .clone();
        let client_master = pods
            .iter()
            .find(|p| p.name == "client-master")
            .or_else(|| pods.iter().find(|p| !p.has_ports() && p.node == far.node))
            .unwrap_or_else(|| panic!("no client pod on {}: {pods:?}", far.node))
            .clone();
        let node = |name: &str| {
            nodes
                .iter()
                .find(|n| n.name == name)
                .unwrap_or_else(|| panic!("no node {name} in {nodes:?}"))
                .clone()
        };
        Cluster {
            worker: node(&client.node),
            master: node(&far.node),
            client,
            client_master,
            nginx,
            near,
            far,
            nodes,
        }
    }

    fn nginx_names(&self) -> BTreeSet<&str> {
        self.nginx.iter().map(|p| p.name.as_str()).collect()
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// The external client's address: .200 of the underlay /24 (as
    /// `scripts/lab` picks it when no node has it).
    fn external_ip(&self) -> String {
        let first: Ipv4Addr = self.nodes[0].address.parse().expect("node address");
        let o = first.octets();
        Ipv4Addr::new(o[0], o[1], o[2], 200).to_string()
    }
}

#[test]
fn lab() {
    if !lab_can_run() {
        return;
    }
    let lab = Lab::up();
    let k = Cluster::load();
    let mut c = Checks::default();

    cluster_ip_across_nodes(&mut c, &k);
    conntrack_lists_the_flow(&mut c, &k);
    hairpin(&mut c, &k);
    pod_to_pod_across_nodes(&mut c, &k);
    node_ports(&mut c, &k);
    load_balancer(&mut c, &k);
    router_capture(&mut c, &k);
    spoofing(&mut c, &k);
    icmp_to_cluster_ip(&mut c, &k);
    service_without_endpoints(&mut c, &k);
    udp_service(&mut c, &k);
    kernel_vxlan_peer(&mut c, &k);

    // The live cluster: changes through `router apply/delete` on the store,
    // followed by the routers and the lab's kubelet.
    let initial = live_pods();
    delete_pod_is_replaced(&mut c, &k);
    apply_node_port(&mut c, &k);
    stream_survives_churn(&mut c, &k);
    stale_udp_flow(&mut c, &k);
    deleted_service(&mut c, &k);
    bad_apply_changes_nothing(&mut c);
    cluster_dns(&mut c, &k);
    session_affinity(&mut c, &k);
    internal_traffic_policy_local(&mut c, &k);
    named_target_ports(&mut c, &k);
    kubelet_removed_pods(&mut c, &initial);

    // Last: it kills the routers. The pods are the store's now.
    let k = Cluster::from_pods(live_pods());
    fail_closed(&mut c, &k);

    drop(lab);
    c.finish();
}

/// Both backends (one per node) answer the ClusterIP, every answer is
/// complete, and whichever answers sees the client's own IP.
fn cluster_ip_across_nodes(c: &mut Checks, k: &Cluster) {
    let client = &k.client;
    let nginx_names = k.nginx_names();
    let mut seen = BTreeSet::new();
    for i in 0..20 {
        let out = curl(&client.name, NGINX_SVC_IP, &[]);
        // One failure is reported; the rest would only repeat it (slowly).
        let ok = c.check(is_full_answer(&out), || {
            format!(
                "request {i} from {} to {NGINX_SVC_IP}: expected the 4 lines srv/host/uri/date\n{}",
                client.name,
                show("curl", &out)
            )
        });
        if let Some(h) = host_of(&stdout(&out)) {
            seen.insert(h);
        }
        if !ok {
            break;
        }
    }
    let seen_ref: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
    c.check(seen_ref == nginx_names, || {
        format!(
            "20 requests to {NGINX_SVC_IP} reached {seen_ref:?}, expected all of {nginx_names:?} (on both nodes)"
        )
    });

    // No SNAT between pods, also when the backend is on the other node.
    for i in 0..20 {
        let out = curl(
            &client.name,
            &format!("http://{NGINX_SVC_IP}/clientip"),
            &[],
        );
        let body = stdout(&out);
        let ok = c.check(
            out.status.success() && client_ip_of(&body) == Some(client.ip.as_str()),
            || {
                format!(
                    "request {i}: {NGINX_SVC_IP}/clientip from {} should answer {}:PORT, whichever backend answers\n{}",
                    client.name,
                    client.ip,
                    show("curl", &out)
                )
            },
        );
        if !ok {
            break;
        }
    }
}

/// Conntrack lists the flow just made (run early, while it is recent).
fn conntrack_lists_the_flow(c: &mut Checks, k: &Cluster) {
    let client = &k.client;
    let node = &client.node;
    let _ = curl(&client.name, NGINX_SVC_IP, &[]);
    let out = router_cli(node, &["get", "conntrack"]);
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
}

/// Hairpin: a backend reaches its own Service, sometimes itself; then it
/// sees its node's pod network address (masquerade), else its own IP.
fn hairpin(c: &mut Checks, k: &Cluster) {
    let nginx_names = k.nginx_names();
    for pod in &k.nginx {
        // 10 requests; if none reached the pod itself (1 in 2^10 with two
        // backends), up to 20 more before calling it a failure.
        let mut names: Vec<String> = Vec::new();
        for i in 0..30 {
            if i >= 10 && names.contains(&pod.name) {
                break;
            }
            let out = curl(&pod.name, &format!("http://{NGINX_SVC_IP}/hostname"), &[]);
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

        let masq = &k.node(&pod.node).pod_network;
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..30 {
            if seen.len() >= 10 && seen.contains(masq) {
                break;
            }
            let out = curl(&pod.name, &format!("http://{NGINX_SVC_IP}/clientip"), &[]);
            let body = stdout(&out);
            let ip = client_ip_of(&body).unwrap_or_default().to_string();
            let ok = c.check(
                out.status.success() && (ip == pod.ip || ip == *masq),
                || {
                    format!(
                        "hairpin: {} -> {NGINX_SVC_IP}/clientip should answer {}:PORT (another backend) or {masq}:PORT (itself, masqueraded)\n{}",
                        pod.name,
                        pod.ip,
                        show("curl", &out)
                    )
                },
            );
            seen.push(ip);
            if !ok {
                break;
            }
        }
        c.check(seen.contains(masq), || {
            format!(
                "hairpin: {} requests from {} to {NGINX_SVC_IP}/clientip never showed the masquerade address {masq}: {seen:?}",
                seen.len(),
                pod.name
            )
        });
    }
}

/// Pod to pod across the overlay both ways, 1,400-byte pings, and the
/// router's "fragmentation needed" for a packet too big for the overlay.
fn pod_to_pod_across_nodes(c: &mut Checks, k: &Cluster) {
    for (from, to) in [(&k.client, &k.far), (&k.client_master, &k.near)] {
        let out = curl(&from.name, &format!("http://{}/hostname", to.ip), &[]);
        c.check(
            out.status.success() && stdout(&out).trim() == to.name,
            || {
                format!(
                    "pod to pod across nodes: {} ({}) -> {} ({}, on {}) should answer {}\n{}",
                    from.name,
                    from.node,
                    to.ip,
                    to.name,
                    to.node,
                    to.name,
                    show("curl", &out)
                )
            },
        );
    }
    // 1,400 bytes of payload with 1,450 (28 bytes of headers on top).
    let mtu = overlay().pod_mtu;
    let fits = (mtu - 50).to_string();
    let out = lab_exec(
        &k.client.name,
        &[
            "ping", "-c", "2", "-W", "2", "-s", &fits, "-M", "do", &k.far.ip,
        ],
    );
    c.check(out.status.success(), || {
        format!(
            "ping -s {fits} -M do from {} to {} (other node) should get its answers (the packets fit the {mtu}-byte overlay)\n{}",
            k.client.name,
            k.far.ip,
            show("ping", &out)
        )
    });
    // From the node itself (kube0 has the underlay's MTU, 1500): 1,488
    // bytes do not fit the overlay; the router answers frag-needed.
    let gw = &k.worker.gateway;
    let too_big = (mtu + 10).to_string();
    let out = lab_exec(
        &k.worker.name,
        &[
            "ping", "-c", "2", "-W", "1", "-M", "do", "-s", &too_big, "-I", gw, &k.far.ip,
        ],
    );
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    c.check(
        !out.status.success()
            && (text.contains(&format!("mtu = {mtu}"))
                || text.contains(&format!("mtu={mtu}"))
                || text.contains("Message too long")),
        || {
            format!(
                "ping -M do -s {too_big} -I {gw} {} from node {} should report the overlay MTU {mtu} (the router's ICMP frag-needed)\n{}",
                k.far.ip,
                k.worker.name,
                show("ping", &out)
            )
        },
    );
}

/// NodePorts from outside the cluster, on every node's address.
fn node_ports(c: &mut Checks, k: &Cluster) {
    let cluster_port = node_port("nginx-nodeport");
    let local_port = node_port("nginx-local");
    let external_ip = k.external_ip();
    for node in &k.nodes {
        let url = format!("http://{}:{cluster_port}/", node.address);
        let out = curl("external", &url, &[]);
        c.check(is_full_answer(&out), || {
            format!(
                "NodePort from external: {url} should answer the 4 lines srv/host/uri/date\n{}",
                show("curl", &out)
            )
        });
        // externalTrafficPolicy Cluster: masqueraded to the node.
        let url = format!("http://{}:{cluster_port}/clientip", node.address);
        let out = curl("external", &url, &[]);
        let body = stdout(&out);
        c.check(
            out.status.success() && client_ip_of(&body) == Some(node.pod_network.as_str()),
            || {
                format!(
                    "NodePort (eTP Cluster) {url} from external should show {}:PORT (node {}'s pod network address), not {external_ip}\n{}",
                    node.pod_network,
                    node.name,
                    show("curl", &out)
                )
            },
        );
        // externalTrafficPolicy Local: the client IP, and the local pod.
        let url = format!("http://{}:{local_port}/clientip", node.address);
        let out = curl("external", &url, &[]);
        let body = stdout(&out);
        c.check(
            out.status.success() && client_ip_of(&body) == Some(external_ip.as_str()),
            || {
                format!(
                    "NodePort (eTP Local) {url} from external should show the client {external_ip}:PORT\n{}",
                    show("curl", &out)
                )
            },
        );
        let local: BTreeSet<&str> = k
            .nginx
            .iter()
            .filter(|p| p.node == node.name)
            .map(|p| p.name.as_str())
            .collect();
        let url = format!("http://{}:{local_port}/", node.address);
        let out = curl("external", &url, &[]);
        let host = host_of(&stdout(&out)).unwrap_or_default();
        c.check(
            is_full_answer(&out) && local.contains(host.as_str()),
            || {
                format!(
                    "NodePort (eTP Local) {url} from external should be served by a pod on {}: {local:?}\n{}",
                    node.name,
                    show("curl", &out)
                )
            },
        );
        // From a pod on either node, too.
        for client in ["client", "client-master"] {
            let url = format!("http://{}:{cluster_port}/", node.address);
            let out = curl(client, &url, &[]);
            c.check(is_full_answer(&out), || {
                format!(
                    "NodePort from pod {client}: {url} should answer the 4 lines\n{}",
                    show("curl", &out)
                )
            });
        }
    }
}

/// LoadBalancer and external IPs from outside the cluster, and how
/// `get svc` shows the Service.
fn load_balancer(c: &mut Checks, k: &Cluster) {
    let ips = external_ips("nginx-lb");
    c.check(!ips.is_empty(), || {
        "nginx-lb has no EXTERNAL-IP in `router --config config.toml get svc`".to_string()
    });
    for ip in &ips {
        let out = curl("external", &format!("http://{ip}/"), &[]);
        c.check(is_full_answer(&out), || {
            format!(
                "LoadBalancer: http://{ip}/ from external should answer the 4 lines\n{}",
                show("curl", &out)
            )
        });
    }
    let np = node_port("nginx-lb");
    let out = router_cli(&k.worker.name, &["get", "svc"]);
    let text = stdout(&out);
    let row = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("nginx-lb"))
        .unwrap_or_default();
    let first = ips.first().cloned().unwrap_or_default();
    c.check(
        out.status.success()
            && row.contains(&format!("80:{np}/TCP"))
            && row.contains("LoadBalancer")
            && contains_ip(row, &first),
        || {
            format!(
                "`router --node {} get svc` should show nginx-lb as LoadBalancer with {first} and 80:{np}/TCP\n{}",
                k.worker.name,
                show("router get svc", &out)
            )
        },
    );
}

/// The worker router's capture of one flow from the client to the
/// ClusterIP that the master's pod serves: the SYN in from the TUN device
/// to the ClusterIP, out over the overlay to the pod, the SYN-ACK back out
/// of the TUN device from the ClusterIP; no bad checksums anywhere.
fn router_capture(c: &mut Checks, k: &Cluster) {
    if find_tool("tshark").is_none() {
        c.check(false, || {
            "tshark is missing (scripts/install-deps installs it): no capture checks".to_string()
        });
        return;
    }
    // The backend is a function of the flow's 5-tuple: try source ports
    // until the far pod answers.
    let mut port = None;
    let mut answers = Vec::new();
    for p in 42001..42041u16 {
        let out = curl(
            &k.client.name,
            &format!("http://{NGINX_SVC_IP}/hostname"),
            &["--local-port", &p.to_string()],
        );
        let name = stdout(&out).trim().to_string();
        if name == k.far.name {
            port = Some(p);
            break;
        }
        answers.push(name);
    }
    let Some(port) = port else {
        c.check(false, || {
            format!(
                "40 source ports from {} to {NGINX_SVC_IP} never reached {}: {answers:?}",
                k.client.name, k.far.name
            )
        });
        return;
    };
    let file = format!("{RUN_DIR}/capture-{}.pcapng", k.worker.name);
    let wanted = [
        (
            "the SYN to the ClusterIP on tun-in",
            format!(
                "frame.interface_name == \"tun-in\" && ip.dst == {NGINX_SVC_IP} && tcp.srcport == {port} && tcp.flags.syn == 1 && tcp.flags.ack == 0"
            ),
        ),
        (
            "the SYN in VXLAN to the far pod on overlay-out",
            format!(
                "frame.interface_name == \"overlay-out\" && vxlan && ip.dst == {} && tcp.srcport == {port} && tcp.flags.syn == 1 && tcp.flags.ack == 0",
                k.far.ip
            ),
        ),
        (
            "the SYN-ACK from the ClusterIP on tun-out",
            format!(
                "frame.interface_name == \"tun-out\" && ip.src == {NGINX_SVC_IP} && tcp.dstport == {port} && tcp.flags.syn == 1 && tcp.flags.ack == 1"
            ),
        ),
    ];
    for (what, filter) in &wanted {
        let (n, out) = tshark_count(&file, filter);
        c.check(n.is_some_and(|n| n >= 1), || {
            format!(
                "capture {file}: expected {what} (source port {port}), filter {filter}\n{}",
                show("tshark", &out)
            )
        });
    }
    check_checksums(c, &file);
}

/// A pod cannot send from an address that is not its own: an unused
/// address of its node's pod CIDR is dropped by the router
/// (`spoofed-source`), another pod's address by the kernel's strict
/// reverse-path filter on the pod's veth (`scripts/lab` sets it up).
fn spoofing(c: &mut Checks, k: &Cluster) {
    let client = &k.client;
    let worker = &k.worker.name;
    let stats = |c: &mut Checks| {
        let out = router_cli(worker, &["get", "stats"]);
        c.check(out.status.success(), || show("router get stats", &out));
        stdout(&out)
    };
    // Inside the client's node CIDR, no pod's: .77, or the first free one.
    let used: BTreeSet<String> = lab_pods().into_iter().map(|p| p.ip).collect();
    let net: Ipv4Addr = k.worker.pod_network.parse().expect("pod network");
    let unused = (77..250)
        .map(|h| Ipv4Addr::from(u32::from(net) + h).to_string())
        .find(|ip| !used.contains(ip))
        .expect("a free address in the pod CIDR");

    let before = stat_count(&stats(c), "spoofed-source");
    let attempt = |ip: &str| {
        let add = lab_exec(
            &client.name,
            &["ip", "addr", "add", &format!("{ip}/32"), "dev", "eth0"],
        );
        let out = lab_exec(
            &client.name,
            &[
                "curl",
                "-sS",
                "--max-time",
                "2",
                "--interface",
                ip,
                &format!("http://{NGINX_SVC_IP}/hostname"),
            ],
        );
        let _ = lab_exec(
            &client.name,
            &["ip", "addr", "del", &format!("{ip}/32"), "dev", "eth0"],
        );
        (add, out)
    };
    let (add, out) = attempt(&unused);
    c.check(add.status.success(), || show("ip addr add", &add));
    c.check(!out.status.success(), || {
        format!(
            "spoofing: curl --interface {unused} (not {}'s address) to {NGINX_SVC_IP} must fail\n{}",
            client.name,
            show("curl", &out)
        )
    });
    let text = stats(c);
    let after = stat_count(&text, "spoofed-source");
    c.check(after > before, || {
        format!(
            "spoofing: `router --node {worker} get stats` should count spoofed-source for {unused} (was {before}, now {after})\n{text}"
        )
    });

    // Impersonating another pod: the reverse-path filter's business.
    let veth = veth_name(&client.ip);
    let rp = stdout(&lab_exec(
        worker,
        &["sysctl", "-n", &format!("net.ipv4.conf.{veth}.rp_filter")],
    ));
    if rp.trim() != "1" {
        eprintln!(
            "note: rp_filter on {veth} is {:?} (KSR_LAB_RP_FILTER=0?): not checking that {} cannot impersonate other pods",
            rp.trim(),
            client.name
        );
        return;
    }
    for other in [&k.near, &k.far] {
        let before = netstat_counter(worker, "IPReversePathFilter");
        let (add, out) = attempt(&other.ip);
        let after = netstat_counter(worker, "IPReversePathFilter");
        c.check(add.status.success(), || show("ip addr add", &add));
        c.check(!out.status.success(), || {
            format!(
                "spoofing: {} sending as {} ({}, on {}) to {NGINX_SVC_IP} must fail\n{}",
                client.name,
                other.ip,
                other.name,
                other.node,
                show("curl", &out)
            )
        });
        c.check(
            matches!((before, after), (Some(b), Some(a)) if a > b),
            || {
                format!(
                    "spoofing: {} sending as {} should be dropped by the reverse-path filter on {worker} (TcpExt IPReversePathFilter {before:?} -> {after:?})",
                    client.name, other.ip
                )
            },
        );
    }
    // The client is itself again.
    let out = curl(
        &client.name,
        &format!("http://{NGINX_SVC_IP}/clientip"),
        &[],
    );
    c.check(
        client_ip_of(&stdout(&out)) == Some(client.ip.as_str()),
        || {
            format!(
                "after the spoofing checks, {} should reach {NGINX_SVC_IP} as {} again\n{}",
                client.name,
                client.ip,
                show("curl", &out)
            )
        },
    );
}

/// 4 (one-node lab). A ClusterIP is not a host: no answer to ping.
fn icmp_to_cluster_ip(c: &mut Checks, k: &Cluster) {
    let out = lab_exec(
        &k.client.name,
        &["ping", "-c", "3", "-W", "1", NGINX_SVC_IP],
    );
    c.check(
        !out.status.success() && stdout(&out).contains("100% packet loss"),
        || {
            format!(
                "ping {NGINX_SVC_IP} should get 100% packet loss\n{}",
                show("ping", &out)
            )
        },
    );
}

/// 5 (one-node lab). A Service without endpoints rejects at once.
fn service_without_endpoints(c: &mut Checks, k: &Cluster) {
    let orphan_ip = cluster_ip("orphan-svc");
    let start = Instant::now();
    let out = curl(&k.client.name, &format!("http://{orphan_ip}/"), &["-v"]);
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
}

/// 6 (one-node lab). UDP through echo-udp.
fn udp_service(c: &mut Checks, k: &Cluster) {
    let echo_ip = cluster_ip("echo-udp");
    let target = format!("UDP4:{echo_ip}:9000");
    let out = if find_tool("socat").is_some() {
        lab_exec(
            &k.client.name,
            &[
                "sh",
                "-c",
                &format!("printf hostname | timeout 5 socat -t 2 - {target}"),
            ],
        )
    } else {
        lab_exec(
            &k.client.name,
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
    c.check(k.nginx_names().contains(answer.as_str()), || {
        format!(
            "UDP `hostname` to echo-udp {echo_ip}:9000 from {} should answer an nginx pod name\n{}",
            k.client.name,
            show("socat", &out)
        )
    });
}

/// A `tshark` capture running in the background on the underlay bridge.
struct BridgeCapture {
    child: std::process::Child,
    file: String,
}

impl BridgeCapture {
    /// Starts capturing for at most `secs` seconds; waits (bounded) until
    /// the capture runs.
    fn start(secs: u32) -> Result<BridgeCapture, String> {
        let file = format!("{RUN_DIR}/underlay.pcapng");
        let _ = std::fs::remove_file(&file);
        let child = command("timeout")
            .args(["-k", "2", &(secs + 5).to_string()])
            .args(["ip", "netns", "exec", "ksr-underlay"])
            .args(["tshark", "-q", "-i", "ksr-br0", "-w", &file])
            .args(["-a", &format!("duration:{secs}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start tshark: {e}"))?;
        let mut cap = BridgeCapture { child, file };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::fs::metadata(&cap.file).is_ok_and(|m| m.len() > 0) {
                // The file header is written as the capture starts.
                std::thread::sleep(Duration::from_millis(500));
                return Ok(cap);
            }
            if let Ok(Some(status)) = cap.child.try_wait() {
                return Err(format!("tshark on ksr-br0 exited early: {status}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        cap.stop();
        Err("tshark on ksr-br0 did not start within 15 s".to_string())
    }

    /// Waits (bounded) for the capture to end by itself.
    fn wait(&mut self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop();
    }

    /// SIGTERM to `timeout`, which passes it on to tshark; SIGKILL if
    /// that does not end it within 3 s.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = run(5, "kill", &["-TERM", &pid]);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BridgeCapture {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Interop: the master becomes a plain Linux VXLAN node (no router); the
/// worker's router and the kernel must understand each other's VXLAN, and
/// the underlay must show well-formed VXLAN with inner TCP. Then the master
/// gets its router back.
fn kernel_vxlan_peer(c: &mut Checks, k: &Cluster) {
    let master = &k.master.name;
    let out = lab_cmd(&["kernel-node", master]);
    if !c.check(out.status.success(), || {
        show(&format!("scripts/lab kernel-node {master}"), &out)
    }) {
        return;
    }
    let capture = if find_tool("tshark").is_some() {
        match BridgeCapture::start(12) {
            Ok(cap) => Some(cap),
            Err(e) => {
                c.check(false, || format!("kernel VXLAN peer: {e}"));
                None
            }
        }
    } else {
        c.check(false, || {
            "tshark is missing (scripts/install-deps installs it): no underlay capture".to_string()
        });
        None
    };

    for (from, to) in [(&k.client, &k.far), (&k.client_master, &k.near)] {
        let out = curl(&from.name, &format!("http://{}/hostname", to.ip), &[]);
        c.check(
            out.status.success() && stdout(&out).trim() == to.name,
            || {
                format!(
                    "kernel VXLAN peer: {} (on {}) -> {} ({}, on {}) should answer {}\n{}",
                    from.name,
                    from.node,
                    to.ip,
                    to.name,
                    to.node,
                    to.name,
                    show("curl", &out)
                )
            },
        );
        let out = lab_exec(&from.name, &["ping", "-c", "2", "-W", "2", &to.ip]);
        c.check(out.status.success(), || {
            format!(
                "kernel VXLAN peer: ping from {} to {} should be answered\n{}",
                from.name,
                to.ip,
                show("ping", &out)
            )
        });
    }

    if let Some(mut cap) = capture {
        cap.wait(20);
        let file = cap.file.clone();
        // Both ways: from the worker's router and from the master's kernel.
        for (sender, node) in [("router", &k.worker), ("kernel", &k.master)] {
            let filter = format!("vxlan && tcp && ip.src == {}", node.address);
            let (n, out) = tshark_count(&file, &filter);
            c.check(n.is_some_and(|n| n > 0), || {
                format!(
                    "underlay capture {file}: expected VXLAN packets with inner TCP from {}'s {sender} (filter {filter})\n{}",
                    node.name,
                    show("tshark", &out)
                )
            });
        }
        check_checksums(c, &file);
        let vni = overlay().vni;
        let (n, out) = tshark_count(&file, &format!("vxlan && vxlan.vni != {vni}"));
        c.check(n == Some(0), || {
            format!(
                "underlay capture {file}: VXLAN packets with a VNI other than {vni}\n{}",
                show("tshark", &out)
            )
        });
    }

    let out = lab_cmd(&["router-node", master]);
    c.check(out.status.success(), || {
        show(&format!("scripts/lab router-node {master}"), &out)
    });
    let out = curl(
        &k.client.name,
        &format!("http://{}/hostname", k.far.ip),
        &[],
    );
    c.check(
        out.status.success() && stdout(&out).trim() == k.far.name,
        || {
            format!(
                "with {master}'s router back, {} -> {} should answer again\n{}",
                k.client.name,
                k.far.ip,
                show("curl", &out)
            )
        },
    );
}

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
fn fail_closed(c: &mut Checks, k: &Cluster) {
    let mut pids = Vec::new();
    for node in [&k.worker, &k.master] {
        if let Some(pid) = router_pid(c, &node.name) {
            let out = run(5, "kill", &["-TERM", &pid]);
            c.check(out.status.success(), || show("kill router", &out));
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
}

// ---------------------------------------------------------------- live cluster

/// The store the lab's routers serve (`scripts/lab up` copies the config
/// there); `router apply/delete` change it, the lab's kubelet follows it.
const STORE: &str = "/run/ksr/cluster.toml";
/// kube-dns's ClusterIP in `config.toml`.
const KUBE_DNS_IP: &str = "10.96.0.10";

/// `router ARGS` against the running routers (the first control socket).
fn router(args: &[&str]) -> Output {
    run(15, router_bin(), args)
}

/// `router VERB ARGS --store STORE` (apply, delete).
fn router_change(args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--store", STORE]);
    router(&all)
}

/// Writes `text` to `/run/ksr/NAME` and applies it; returns the output and
/// how long `router apply` took.
fn apply_text(name: &str, text: &str) -> (Output, Duration) {
    let path = format!("{RUN_DIR}/{name}");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    let start = Instant::now();
    let out = router_change(&["apply", "-f", &path]);
    (out, start.elapsed())
}

/// `nginx-svc` as `config.toml` has it, with `extra` lines (type,
/// sessionAffinity...).
fn nginx_svc(extra: &str) -> String {
    format!(
        "[[services]]\nname = \"nginx-svc\"\nnamespace = \"default\"\n{extra}\
         clusterIP = \"{NGINX_SVC_IP}\"\nselector = {{ app = \"nginx-deployment\" }}\n\
         ports = [{{ port = 80, targetPort = 80, protocol = \"TCP\" }}]\n"
    )
}

/// The pods of the store now (new pods included).
fn live_pods() -> Vec<Pod> {
    let out = run(10, router_bin(), &["lab-pods", "--config", STORE]);
    if !out.status.success() {
        eprintln!("{}", show("router lab-pods --config STORE", &out));
        return Vec::new();
    }
    stdout(&out)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 8).then(|| Pod {
                name: f[1].to_string(),
                ip: f[2].to_string(),
                node: f[3].to_string(),
                tcp: ports(f[6]),
                udp: ports(f[7]),
            })
        })
        .collect()
}

/// The nginx pods of the store now.
fn live_nginx() -> Vec<Pod> {
    live_pods()
        .into_iter()
        .filter(|p| p.name.starts_with("nginx-deployment-"))
        .collect()
}

/// A row of `router get po -o wide`.
#[derive(Debug, Clone)]
struct PodRow {
    name: String,
    ready: String,
    status: String,
    ip: String,
    node: String,
}

fn get_pods_wide() -> (Output, Vec<PodRow>) {
    let out = router(&["get", "po", "-o", "wide"]);
    let text = stdout(&out);
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let col = |n: &str| header.iter().position(|h| *h == n);
    let rows = match (
        col("NAME"),
        col("READY"),
        col("STATUS"),
        col("IP"),
        col("NODE"),
    ) {
        (Some(n), Some(r), Some(s), Some(i), Some(d)) => lines
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some(PodRow {
                    name: f.get(n)?.to_string(),
                    ready: f.get(r)?.to_string(),
                    status: f.get(s)?.to_string(),
                    ip: f.get(i)?.to_string(),
                    node: f.get(d)?.to_string(),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    (out, rows)
}

/// The row of `service` in `router get svc` (live), as fields.
fn live_service_row(service: &str) -> Option<Vec<String>> {
    let out = router(&["get", "svc"]);
    stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.first().map(String::as_str) == Some(service))
}

/// `curl http://URL/hostname`-style: the body's trimmed text, if curl
/// succeeded.
fn hostname_via(target: &str, url: &str) -> Option<String> {
    let out = curl(target, url, &[]);
    out.status
        .success()
        .then(|| stdout(&out).trim().to_string())
}

/// One UDP `hostname` datagram from `target` to `ip:port` (optionally from
/// a fixed source port), waiting `wait` for the answer.
fn udp_hostname(target: &str, ip: &str, port: u16, source: Option<u16>, wait: &str) -> Output {
    let src = source
        .map(|p| format!(",sourceport={p}"))
        .unwrap_or_default();
    lab_exec(
        target,
        &[
            "sh",
            "-c",
            &format!("printf hostname | timeout 5 socat -t {wait} - UDP4:{ip}:{port}{src}"),
        ],
    )
}

/// Which CLI lines say `router X applied the change: ... N us round trip`.
fn round_trips(stderr: &str) -> Vec<(String, u64)> {
    stderr
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("router ")?;
            let (node, rest) = rest.split_once(" applied the change:")?;
            let us = rest
                .strip_suffix(" us round trip")?
                .rsplit(", ")
                .next()?
                .parse()
                .ok()?;
            Some((node.to_string(), us))
        })
        .collect()
}

/// Live check 1: `delete po` of the worker's nginx pod: a replacement (new name, new
/// IP) is Running 1/1 within 10 s, the endpoints follow, the ClusterIP
/// reaches it.
fn delete_pod_is_replaced(c: &mut Checks, k: &Cluster) {
    let old = live_nginx()
        .into_iter()
        .find(|p| p.node == k.worker.name)
        .unwrap_or_else(|| k.near.clone());
    let before: BTreeSet<String> = live_nginx().into_iter().map(|p| p.name).collect();
    let start = Instant::now();
    let out = router_change(&["delete", "po", &old.name]);
    if !c.check(
        out.status.success() && stdout(&out).contains(&format!("pod \"{}\" deleted", old.name)),
        || show(&format!("router delete po {}", old.name), &out),
    ) {
        return;
    }
    let mut new = None;
    let mut last = None;
    while start.elapsed() < Duration::from_secs(10) {
        let (out, rows) = get_pods_wide();
        new = rows.into_iter().find(|r| {
            r.name.starts_with("nginx-deployment-")
                && !before.contains(&r.name)
                && r.ready == "1/1"
                && r.status == "Running"
        });
        last = Some(out);
        if new.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = start.elapsed();
    let Some(new) = new else {
        c.check(false, || {
            format!(
                "delete po {}: no new nginx pod Running 1/1 within 10 s\n{}\n{}",
                old.name,
                last.map(|o| show("router get po -o wide", &o))
                    .unwrap_or_default(),
                std::fs::read_to_string(format!("{RUN_DIR}/kubelet.log")).unwrap_or_default()
            )
        });
        return;
    };
    eprintln!(
        "delete po {}: {} ({} on {}) Running 1/1 after {took:?}",
        old.name, new.name, new.ip, new.node
    );
    c.check(new.ip != old.ip && new.name != old.name, || {
        format!(
            "the replacement of {} ({}) should have a new name and IP, got {} ({})",
            old.name, old.ip, new.name, new.ip
        )
    });
    let out = router(&["get", "endpoints"]);
    let row = stdout(&out)
        .lines()
        .find(|l| l.split_whitespace().next() == Some("nginx-svc"))
        .unwrap_or_default()
        .to_string();
    c.check(
        contains_ip(&row, &new.ip) && !contains_ip(&row, &old.ip),
        || {
            format!(
                "`router get endpoints` nginx-svc should list {} and not {}\n{}",
                new.ip,
                old.ip,
                show("router get endpoints", &out)
            )
        },
    );
    let url = format!("http://{NGINX_SVC_IP}/hostname");
    let mut seen = Vec::new();
    for _ in 0..30 {
        let name = hostname_via(&k.client.name, &url).unwrap_or_default();
        if name == new.name {
            return;
        }
        seen.push(name);
    }
    c.check(false, || {
        format!(
            "30 requests from {} to {NGINX_SVC_IP} never reached the new pod {}: {seen:?}",
            k.client.name, new.name
        )
    });
}

/// Live check 2: nginx-svc re-applied as NodePort (keeps its ClusterIP, gets a
/// nodePort, served on every node), then back to ClusterIP.
fn apply_node_port(c: &mut Checks, k: &Cluster) {
    let (out, _) = apply_text("nginx-svc.toml", &nginx_svc("type = \"NodePort\"\n"));
    c.check(
        out.status.success() && stdout(&out).contains("service/nginx-svc configured"),
        || show("router apply -f nginx-svc.toml (NodePort)", &out),
    );
    let row = live_service_row("nginx-svc").unwrap_or_default();
    let port = row
        .iter()
        .find_map(|f| f.strip_prefix("80:")?.strip_suffix("/TCP"))
        .filter(|p| p.len() == 5 && p.starts_with('3'))
        .map(str::to_string);
    c.check(
        row.get(1).map(String::as_str) == Some("NodePort")
            && row.get(2).map(String::as_str) == Some(NGINX_SVC_IP)
            && port.is_some(),
        || format!("`router get svc` should show nginx-svc NodePort {NGINX_SVC_IP} 80:3xxxx/TCP, got {row:?}"),
    );
    let out = router(&["describe", "service", "nginx-svc"]);
    let text = stdout(&out);
    c.check(
        text.contains("NodePort:") && text.contains("External Traffic Policy:  Cluster"),
        || {
            format!(
                "describe service nginx-svc should show NodePort: and `External Traffic Policy:  Cluster`\n{}",
                show("router describe service nginx-svc", &out)
            )
        },
    );
    if let Some(port) = port {
        for node in &k.nodes {
            let url = format!("http://{}:{port}/", node.address);
            let out = curl("external", &url, &[]);
            c.check(is_full_answer(&out), || {
                format!(
                    "nginx-svc as NodePort: {url} from external should answer the 4 lines\n{}",
                    show("curl", &out)
                )
            });
        }
    }
    let (out, _) = apply_text("nginx-svc.toml", &nginx_svc("type = \"ClusterIP\"\n"));
    let row = live_service_row("nginx-svc").unwrap_or_default();
    c.check(
        out.status.success()
            && row.get(1).map(String::as_str) == Some("ClusterIP")
            && row.get(4).map(String::as_str) == Some("80/TCP"),
        || {
            format!(
                "nginx-svc back to ClusterIP: {row:?}\n{}",
                show("router apply", &out)
            )
        },
    );
}

/// Live check 3: A long TCP connection through the ClusterIP survives 100 unrelated
/// changes; prints how long `router apply` takes to reach both routers.
fn stream_survives_churn(c: &mut Checks, k: &Cluster) {
    const LINES: usize = 60;
    let url = format!("http://{NGINX_SVC_IP}/stream?lines={LINES}&interval_ms=250");
    let child = command("timeout")
        .args(["-k", "2", "40"])
        .arg(lab_script())
        .args([
            "exec",
            &k.client.name,
            "--",
            "curl",
            "-sSN",
            "--max-time",
            "30",
        ])
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let child = match child {
        Ok(ch) => ch,
        Err(e) => {
            c.check(false, || format!("cannot start curl {url}: {e}"));
            return;
        }
    };
    // Let the connection be established (and a line or two arrive).
    std::thread::sleep(Duration::from_millis(600));
    let mut wall = Vec::new();
    let mut rtts: Vec<(String, u64)> = Vec::new();
    let mut failed = Vec::new();
    for i in 0..100u32 {
        let text = format!(
            "[[services]]\nname = \"churn\"\nlabels = {{ round = \"r{i}\" }}\n\
             selector = {{ app = \"nginx-deployment\" }}\n\
             ports = [{{ port = {}, targetPort = 80, protocol = \"TCP\" }}]\n",
            8000 + i % 10
        );
        let (out, took) = apply_text("churn.toml", &text);
        if !out.status.success() {
            failed.push(show("router apply -f churn.toml", &out));
        }
        wall.push(took);
        rtts.extend(round_trips(&String::from_utf8_lossy(&out.stderr)));
        std::thread::sleep(Duration::from_millis(40));
    }
    c.check(failed.is_empty(), || {
        format!(
            "{} of 100 churn applies failed; first:\n{}",
            failed.len(),
            failed.first().cloned().unwrap_or_default()
        )
    });
    let out = child.wait_with_output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            c.check(false, || format!("curl {url}: {e}"));
            return;
        }
    };
    let body = stdout(&out);
    let got = body.lines().filter(|l| l.starts_with("line ")).count();
    c.check(got == LINES && out.status.success(), || {
        format!(
            "a stream through {NGINX_SVC_IP} during 100 applies should receive all {LINES} lines, got {got}\n{}",
            show("curl -N /stream", &out)
        )
    });
    wall.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut us: Vec<u64> = rtts.iter().map(|(_, u)| *u).collect();
    us.sort_unstable();
    let pct = |v: &[u64], p: usize| {
        v.get(v.len().saturating_sub(1) * p / 100)
            .map_or_else(|| "-".to_string(), u64::to_string)
    };
    eprintln!(
        "apply-to-applied: `router apply` wall time over 100 applies (store write + push to both routers): median {:.2} ms, p90 {:.2} ms, max {:.2} ms; per-router round trip reported by the CLI ({} reports): median {} us, p90 {} us, max {} us",
        ms(wall[wall.len() / 2]),
        ms(wall[wall.len() * 9 / 10]),
        ms(wall[wall.len() - 1]),
        us.len(),
        pct(&us, 50),
        pct(&us, 90),
        pct(&us, 100)
    );
    let out = router_change(&["delete", "svc", "churn"]);
    c.check(out.status.success(), || {
        show("router delete svc churn", &out)
    });
}

/// Live check 4: Stale UDP: a fixed source port's flow to echo-udp goes to a pod;
/// the pod is deleted; the same source port must reach a live pod at once.
fn stale_udp_flow(c: &mut Checks, k: &Cluster) {
    const SPORT: u16 = 40000;
    let echo_ip = cluster_ip("echo-udp");
    let names: BTreeSet<String> = live_nginx().into_iter().map(|p| p.name).collect();
    let mut victim = None;
    let mut answers = Vec::new();
    for _ in 0..5 {
        let out = udp_hostname(&k.client.name, &echo_ip, 9000, Some(SPORT), "1");
        let name = stdout(&out).trim().to_string();
        if names.contains(&name) {
            victim = Some(name);
            break;
        }
        answers.push(show("socat", &out));
    }
    let Some(victim) = victim else {
        c.check(false, || {
            format!(
                "UDP hostname from {}:{SPORT} to echo-udp {echo_ip}:9000 got no nginx pod name: {answers:?}",
                k.client.name
            )
        });
        return;
    };
    let out = router_change(&["delete", "po", &victim]);
    let start = Instant::now();
    if !c.check(out.status.success(), || {
        show(&format!("router delete po {victim}"), &out)
    }) {
        return;
    }
    let mut replies = Vec::new();
    let mut took = None;
    for _ in 0..20 {
        let out = udp_hostname(&k.client.name, &echo_ip, 9000, Some(SPORT), "0.3");
        let name = stdout(&out).trim().to_string();
        if !name.is_empty() && name != victim {
            took = Some(start.elapsed());
            break;
        }
        replies.push(format!("{:?}: {name:?}", start.elapsed()));
        if start.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    match took {
        Some(t) => {
            eprintln!(
                "stale UDP: after deleting {victim}, source port {SPORT} got an answer from a live pod after {t:?}"
            );
            c.check(t < Duration::from_secs(2), || {
                format!(
                    "stale UDP: after deleting {victim}, {}:{SPORT} -> {echo_ip}:9000 was answered by a live pod only after {t:?} (want < 2 s); tries: {replies:?}",
                    k.client.name
                )
            });
        }
        None => {
            let ct = router_cli(&k.worker.name, &["get", "conntrack"]);
            let st = router_cli(&k.worker.name, &["get", "stats"]);
            c.check(false, || {
                format!(
                    "stale UDP: after deleting {victim}, {}:{SPORT} -> {echo_ip}:9000 got no answer from a live pod within {:?}; tries: {replies:?}\n{}\n{}",
                    k.client.name,
                    start.elapsed(),
                    show("router get conntrack", &ct),
                    show("router get stats", &st)
                )
            });
        }
    }
}

/// Live check 5: A deleted Service's VIP stops answering; re-applied, it works again.
fn deleted_service(c: &mut Checks, k: &Cluster) {
    let ip = cluster_ip("nginx-nodeport");
    let url = format!("http://{ip}/hostname");
    let out = router_change(&["delete", "svc", "nginx-nodeport"]);
    c.check(
        out.status.success() && stdout(&out).contains("service \"nginx-nodeport\" deleted"),
        || show("router delete svc nginx-nodeport", &out),
    );
    let out = lab_exec(&k.client.name, &["curl", "-sS", "--max-time", "2", &url]);
    c.check(!out.status.success(), || {
        format!(
            "after `delete svc nginx-nodeport`, {url} must not answer\n{}",
            show("curl", &out)
        )
    });
    let text = format!(
        "[[services]]\nname = \"nginx-nodeport\"\ntype = \"NodePort\"\nclusterIP = \"{ip}\"\n\
         selector = {{ app = \"nginx-deployment\" }}\nexternalTrafficPolicy = \"Cluster\"\n\
         ports = [{{ port = 80, targetPort = 80, nodePort = 30080, protocol = \"TCP\" }}]\n"
    );
    let (out, _) = apply_text("nginx-nodeport.toml", &text);
    c.check(
        out.status.success() && stdout(&out).contains("service/nginx-nodeport created"),
        || show("router apply -f nginx-nodeport.toml", &out),
    );
    let out = curl(&k.client.name, &url, &[]);
    c.check(out.status.success(), || {
        format!(
            "nginx-nodeport re-applied: {url} should answer again\n{}",
            show("curl", &out)
        )
    });
    let url = format!("http://{}:30080/", k.worker.address);
    let out = curl("external", &url, &[]);
    c.check(is_full_answer(&out), || {
        format!(
            "nginx-nodeport re-applied: {url} from external should answer\n{}",
            show("curl", &out)
        )
    });
}

/// Live check 6: A bad apply is refused, names the object and key, changes nothing.
fn bad_apply_changes_nothing(c: &mut Checks) {
    let store_before = std::fs::read(STORE).unwrap_or_default();
    let file_view = || {
        stdout(&run(
            10,
            router_bin(),
            &["--config", STORE, "get", "svc", "-A"],
        ))
    };
    let view_before = file_view();
    // The live view, AGE column masked (it ticks).
    let live_view = || {
        stdout(&router(&["get", "svc", "-A"]))
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f[..f.len().saturating_sub(1)].join(" ")
            })
            .collect::<Vec<_>>()
    };
    let live_before = live_view();
    let bad = [
        (
            "clash.toml",
            "[[services]]\nname = \"clash-svc\"\nclusterIP = \"10.101.182.177\"\n\
             selector = { app = \"nginx-deployment\" }\nports = [{ port = 80 }]\n",
            ["clash-svc", "clusterIP"],
        ),
        (
            "unknown-field.toml",
            "[[services]]\nname = \"odd-svc\"\ncolour = \"red\"\n\
             selector = { app = \"nginx-deployment\" }\nports = [{ port = 80 }]\n",
            ["odd-svc", "colour"],
        ),
    ];
    for (file, text, words) in bad {
        let (out, _) = apply_text(file, text);
        let err = String::from_utf8_lossy(&out.stderr);
        c.check(
            !out.status.success() && words.iter().all(|w| err.contains(w)),
            || {
                format!(
                    "a bad apply ({file}) must fail naming {words:?}\n{}",
                    show(&format!("router apply -f {file}"), &out)
                )
            },
        );
    }
    c.check(
        std::fs::read(STORE).unwrap_or_default() == store_before,
        || format!("a refused apply changed the store {STORE}"),
    );
    let view_after = file_view();
    c.check(view_after == view_before, || {
        format!(
            "a refused apply changed `router --config {STORE} get svc -A`:\nbefore:\n{view_before}\nafter:\n{view_after}"
        )
    });
    let live_after = live_view();
    c.check(live_after == live_before, || {
        format!(
            "a refused apply changed the routers' `get svc -A`:\nbefore: {live_before:#?}\nafter: {live_after:#?}"
        )
    });
}

/// Live check 7: Cluster DNS through kube-dns with real `dig`, and names in `curl`
/// (resolv.conf's search path and ndots).
fn cluster_dns(c: &mut Checks, k: &Cluster) {
    if find_tool("dig").is_none() {
        c.check(false, || {
            "dig is missing (scripts/install-deps installs dnsutils): no DNS checks".to_string()
        });
        return;
    }
    let client = &k.client.name;
    let server = format!("@{KUBE_DNS_IP}");
    let dig = |args: &[&str]| {
        let mut all = vec!["dig", "+time=2", "+tries=2", &server];
        all.extend_from_slice(args);
        lab_exec(client, &all)
    };
    let name = "nginx-svc.default.svc.cluster.local";
    for transport in ["+notcp", "+tcp"] {
        let out = dig(&["+short", transport, name]);
        c.check(stdout(&out).trim() == NGINX_SVC_IP, || {
            format!(
                "dig {transport} {name} should answer {NGINX_SVC_IP}\n{}",
                show("dig", &out)
            )
        });
    }
    for missing in [
        "nope.default.svc.cluster.local",
        "nginx-svc.kube-system.svc.cluster.local",
    ] {
        let out = dig(&[missing]);
        c.check(stdout(&out).contains("status: NXDOMAIN"), || {
            format!("dig {missing} should be NXDOMAIN\n{}", show("dig", &out))
        });
    }
    let want: BTreeSet<String> = live_nginx().into_iter().map(|p| p.ip).collect();
    let out = dig(&["+short", "nginx-headless.default.svc.cluster.local"]);
    let got: BTreeSet<String> = stdout(&out).lines().map(|l| l.trim().to_string()).collect();
    c.check(got == want, || {
        format!(
            "dig nginx-headless should answer the nginx pod IPs {want:?}\n{}",
            show("dig", &out)
        )
    });
    let out = dig(&["+short", "example.default.svc.cluster.local", "CNAME"]);
    c.check(stdout(&out).trim() == "example.com.", || {
        format!(
            "dig example.default.svc.cluster.local CNAME should answer example.com.\n{}",
            show("dig", &out)
        )
    });
    let out = dig(&[
        "+short",
        "_http._tcp.nginx-headless.default.svc.cluster.local",
        "SRV",
    ]);
    let srv = stdout(&out);
    c.check(
        srv.lines().count() == want.len()
            && srv
                .lines()
                .all(|l| l.split_whitespace().nth(2) == Some("80")),
        || {
            format!(
                "dig SRV _http._tcp.nginx-headless... should give one port-80 record per nginx pod ({})\n{}",
                want.len(),
                show("dig", &out)
            )
        },
    );
    for host in ["nginx-svc", "nginx-svc.default"] {
        let out = curl(client, host, &["-s"]);
        c.check(is_full_answer(&out), || {
            format!(
                "curl {host} inside {client} (resolv.conf search path) should answer the 4 lines\n{}\n{}",
                show("curl", &out),
                stdout(&lab_exec(client, &["cat", "/etc/resolv.conf"]))
            )
        });
    }
    let out = router(&["get", "ns"]);
    let text = stdout(&out);
    let names: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    c.check(
        names.contains("default") && names.contains("kube-system"),
        || show("router get ns (default and kube-system)", &out),
    );
}

/// Live check 8: sessionAffinity ClientIP: one client, one backend.
fn session_affinity(c: &mut Checks, k: &Cluster) {
    let (out, _) = apply_text(
        "nginx-svc.toml",
        &nginx_svc("sessionAffinity = \"ClientIP\"\n"),
    );
    c.check(out.status.success(), || {
        show("router apply nginx-svc sessionAffinity ClientIP", &out)
    });
    let url = format!("http://{NGINX_SVC_IP}/hostname");
    let seen: Vec<String> = (0..10)
        .map(|_| hostname_via(&k.client.name, &url).unwrap_or_default())
        .collect();
    let distinct: BTreeSet<&String> = seen.iter().collect();
    c.check(distinct.len() == 1 && !seen[0].is_empty(), || {
        format!(
            "sessionAffinity ClientIP: 10 requests from {} should reach one pod: {seen:?}",
            k.client.name
        )
    });
    let (out, _) = apply_text("nginx-svc.toml", &nginx_svc("sessionAffinity = \"None\"\n"));
    c.check(out.status.success(), || {
        show("router apply nginx-svc sessionAffinity None", &out)
    });
}

/// Live check 9: internalTrafficPolicy Local: the worker's client only reaches the
/// worker's nginx pod.
fn internal_traffic_policy_local(c: &mut Checks, k: &Cluster) {
    let text = "[[services]]\nname = \"nginx-itp\"\ninternalTrafficPolicy = \"Local\"\n\
                selector = { app = \"nginx-deployment\" }\n\
                ports = [{ port = 80, targetPort = 80, protocol = \"TCP\" }]\n";
    let (out, _) = apply_text("nginx-itp.toml", text);
    c.check(out.status.success(), || {
        show("router apply nginx-itp", &out)
    });
    let Some(ip) = live_service_row("nginx-itp").and_then(|r| r.get(2).cloned()) else {
        c.check(false, || "nginx-itp is not in `router get svc`".to_string());
        return;
    };
    let local: BTreeSet<String> = live_nginx()
        .into_iter()
        .filter(|p| p.node == k.worker.name)
        .map(|p| p.name)
        .collect();
    let url = format!("http://{ip}/hostname");
    let seen: Vec<String> = (0..10)
        .map(|_| hostname_via(&k.client.name, &url).unwrap_or_default())
        .collect();
    c.check(
        !local.is_empty() && seen.iter().all(|n| local.contains(n)),
        || {
            format!(
                "internalTrafficPolicy Local: requests from {} (on {}) to nginx-itp {ip} should all reach {local:?}: {seen:?}",
                k.client.name, k.worker.name
            )
        },
    );
    let out = router_change(&["delete", "svc", "nginx-itp"]);
    c.check(out.status.success(), || {
        show("router delete svc nginx-itp", &out)
    });
}

/// Live check 10: Two ports with named targetPorts (HTTP and UDP).
fn named_target_ports(c: &mut Checks, k: &Cluster) {
    let text = "[[services]]\nname = \"nginx-multi\"\nselector = { app = \"nginx-deployment\" }\n\
                ports = [\n  { name = \"http\", port = 8080, targetPort = \"http\", protocol = \"TCP\" },\n  \
                { name = \"udp\", port = 9001, targetPort = \"udp-echo\", protocol = \"UDP\" },\n]\n";
    let (out, _) = apply_text("nginx-multi.toml", text);
    c.check(out.status.success(), || {
        show("router apply nginx-multi", &out)
    });
    let Some(ip) = live_service_row("nginx-multi").and_then(|r| r.get(2).cloned()) else {
        c.check(false, || {
            "nginx-multi is not in `router get svc`".to_string()
        });
        return;
    };
    let url = format!("http://{ip}:8080/");
    let out = curl(&k.client.name, &url, &[]);
    c.check(is_full_answer(&out), || {
        format!(
            "nginx-multi: {url} (targetPort http) should answer the 4 lines\n{}",
            show("curl", &out)
        )
    });
    let names: BTreeSet<String> = live_nginx().into_iter().map(|p| p.name).collect();
    let out = udp_hostname(&k.client.name, &ip, 9001, None, "2");
    c.check(names.contains(stdout(&out).trim()), || {
        format!(
            "nginx-multi: UDP hostname to {ip}:9001 (targetPort udp-echo) should answer an nginx pod name {names:?}\n{}",
            show("socat", &out)
        )
    });
    let out = router_change(&["delete", "svc", "nginx-multi"]);
    c.check(out.status.success(), || {
        show("router delete svc nginx-multi", &out)
    });
}

/// The kubelet removed the pods deleted above: no namespace, no server, no
/// resolv.conf left behind.
fn kubelet_removed_pods(c: &mut Checks, initial: &[Pod]) {
    let live: BTreeSet<String> = live_pods().into_iter().map(|p| p.name).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    for pod in initial.iter().filter(|p| !live.contains(&p.name)) {
        let ns = format!("/run/netns/ksr-{}", pod.name);
        while Path::new(&ns).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        c.check(!Path::new(&ns).exists(), || {
            format!("pod {} was deleted but {ns} still exists", pod.name)
        });
        let etc = format!("/etc/netns/ksr-{}", pod.name);
        c.check(!Path::new(&etc).exists(), || {
            format!("pod {} was deleted but {etc} still exists", pod.name)
        });
    }
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

#[test]
fn parses_counters() {
    let stats = "received      278\ndropped       2\n  spoofed-source             2\n";
    assert_eq!(stat_count(stats, "spoofed-source"), 2);
    assert_eq!(stat_count(stats, "received"), 278);
    assert_eq!(stat_count(stats, "too-big"), 0);
    assert_eq!(veth_name("10.10.1.100"), "ksr0a0a0164");
    assert_eq!(client_ip_of("10.10.1.100:4242\n"), Some("10.10.1.100"));
}
