//! Where the lab's pieces are and how the tests run commands in it:
//! `scripts/lab`, the release binaries, commands bounded by `timeout`,
//! `kubectl exec`-like runs in a pod's namespace, the router's CLI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The ClusterIP `lab/manifests/nginx-svc.yaml` fixes for `nginx-svc`.
pub const NGINX_SVC_IP: &str = "10.101.182.177";
/// Where `scripts/lab` keeps pid files, sockets and captures.
pub const RUN_DIR: &str = "/run/ksr";

/// kube-dns's ClusterIP in `lab/manifests/kube-dns.yaml`.
pub const KUBE_DNS_IP: &str = "10.96.0.10";

/// The workspace root (the lab crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives in the workspace")
        .to_path_buf()
}

/// `KSR_LAB_REQUIRED=1`: a lab that cannot run is a failure.
pub fn lab_required() -> bool {
    std::env::var("KSR_LAB_REQUIRED").is_ok_and(|v| v == "1")
}

/// Returns `false` (after printing why) when the lab cannot run here and it
/// is not required; panics when it is required.
pub fn lab_can_run() -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root".to_string());
    }
    for tool in ["ip", "curl", "ping", "timeout", "kubectl"] {
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
             a machine with iproute2, curl, iputils-ping and kubectl (Debian: \
             kubernetes-client; scripts/install-deps).\n\n"
        );
    }
    eprintln!("SKIPPED: {why} (set KSR_LAB_REQUIRED=1 to make this a failure)");
    false
}

/// Effective uid 0, read from `/proc/self/status` (no libc).
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

/// `name` in PATH or the sbin/bin directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// What `scripts/lab` needs in PATH (`ip` lives in sbin).
pub fn path_env() -> std::ffi::OsString {
    let mut dirs = vec![bin_dir()];
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    std::env::join_paths(dirs).expect("PATH entries without ':'")
}

/// A command run from the workspace root with [`path_env`]. Without the
/// user's `KUBECONFIG`: `router get` asks the routers, kubectl gets the
/// lab's admin kubeconfig by flag.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env("PATH", path_env())
        .env_remove("KUBECONFIG")
        .current_dir(repo_root());
    c
}

/// `scripts/lab`.
pub fn lab_script() -> PathBuf {
    repo_root().join("scripts/lab")
}

/// `config.toml`, or `KSR_LAB_CONFIG`.
pub fn config_path() -> PathBuf {
    std::env::var_os("KSR_LAB_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("config.toml"))
}

/// [`config_path`] as an argument.
pub fn config_arg() -> String {
    config_path().to_str().expect("utf-8 path").to_string()
}

/// Where `router` and `pod-server` are: `target/release`, or `KSR_LAB_BIN`
/// (which `scripts/lab` honours too).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("KSR_LAB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release"))
}

/// The `router` binary the lab runs.
pub fn router_bin() -> PathBuf {
    bin_dir().join("router")
}

/// Runs a command, bounded by coreutils `timeout`.
pub fn run(secs: u32, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
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
pub fn lab_exec(target: &str, args: &[&str]) -> Output {
    let mut all = vec!["exec", target, "--"];
    all.extend_from_slice(args);
    run(30, lab_script(), &all)
}

/// `scripts/lab ARGS` (kernel-node, router-node).
pub fn lab_cmd(args: &[&str]) -> Output {
    run(60, lab_script(), args)
}

/// `router --node NODE ARGS`: asks that node's router.
pub fn router_cli(node: &str, args: &[&str]) -> Output {
    let mut all = vec!["--node", node];
    all.extend_from_slice(args);
    run(10, router_bin(), &all)
}

/// `curl -sS --max-time 3 [EXTRA...] URL` inside `target`.
pub fn curl(target: &str, url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["curl", "-sS", "--max-time", "3"];
    args.extend_from_slice(extra);
    args.push(url);
    lab_exec(target, &args)
}

/// A command's exit status, stdout and stderr, for a failure message.
pub fn show(what: &str, out: &Output) -> String {
    format!(
        "`{what}` exited with {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    )
}

/// A command's stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `router ARGS` against the running routers (the first control socket).
pub fn router(args: &[&str]) -> Output {
    run(15, router_bin(), args)
}
