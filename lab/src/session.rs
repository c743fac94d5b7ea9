//! One lab for all the checks of a test binary: brought up by the first
//! check that runs, shared by the rest one at a time, torn down when the
//! test binary exits.
//!
//! libtest runs a binary's tests on several threads and has no "after
//! all" hook, so the lab is brought up lazily ([`OnceLock`]), a global
//! mutex lets one check at a time use it (checks change the cluster, read
//! counters and captures), and the teardown is a watcher process started
//! before the bring-up: it waits for the test binary to exit (however it
//! exits, a panic or a kill included) and then runs `scripts/lab down`.
//! The watcher holds a lock file from before the bring-up to the end of
//! the teardown, so the next test binary's lab (`fail_closed` brings up
//! its own) waits until this one is gone: two labs can never run at once,
//! they share the `ksr-*` names.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::checks::Checks;
use crate::cluster::Cluster;
use crate::env::{command, config_arg, lab_can_run, lab_script, run, show, stdout};
use crate::objects::live_pods;

/// What the first check found.
enum Bringup {
    /// No lab here (not root, tools missing) and none required.
    Skipped,
    /// The lab is up.
    Up,
    /// `scripts/lab up` failed: every check fails with this.
    Failed(String),
}

static LAB: OnceLock<Bringup> = OnceLock::new();
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The lock file the teardown watchers hold (not the lab's own).
fn lock_file() -> std::path::PathBuf {
    std::env::temp_dir().join("ksr-lab-tests.lock")
}

/// Starts the watcher that tears the lab down when this process exits;
/// returns once it holds the lock, i.e. once an earlier test binary's lab
/// is gone.
fn start_teardown_watcher() -> Result<(), String> {
    let log = std::env::temp_dir().join("ksr-lab-teardown.log");
    let mut child = command("timeout")
        // The lab down itself is bounded below; this bounds the wait for
        // the lock (an earlier teardown) plus the life of this test binary.
        .args(["-k", "5", "7200", "flock"])
        .arg(lock_file())
        .args([
            "sh",
            "-c",
            "echo locked; exec >>\"$KSR_TEARDOWN_LOG\" 2>&1; \
             tail --pid=\"$KSR_TEST_PID\" -f /dev/null; \
             echo \"$(date): test binary $KSR_TEST_PID exited; lab down\"; \
             exec timeout -k 5 120 \"$KSR_LAB_SCRIPT\" down --config \"$KSR_LAB_CONFIG_ARG\"",
        ])
        .env("KSR_TEARDOWN_LOG", &log)
        .env("KSR_TEST_PID", std::process::id().to_string())
        .env("KSR_LAB_SCRIPT", lab_script())
        .env("KSR_LAB_CONFIG_ARG", config_arg())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the lab's teardown watcher: {e}"))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    if line.trim() == "locked" {
        Ok(())
    } else {
        Err(format!(
            "the lab's teardown watcher did not take {}: {:?}",
            lock_file().display(),
            child.try_wait()
        ))
    }
}

fn bring_up(mode: &[&str]) -> Bringup {
    if !lab_can_run() {
        return Bringup::Skipped;
    }
    if let Err(e) = start_teardown_watcher() {
        return Bringup::Failed(e);
    }
    let config = config_arg();
    let mut args = vec!["up", "--capture", "--config", &config];
    args.extend_from_slice(mode);
    // Building may take a while on a cold target dir.
    let out = run(1800, lab_script(), &args);
    if !out.status.success() {
        return Bringup::Failed(show(&format!("scripts/lab {}", args.join(" ")), &out));
    }
    eprintln!("{}", stdout(&out));
    Bringup::Up
}

/// The shared lab, held for one check; `None` when the lab is skipped.
fn shared(mode: &[&str]) -> Option<MutexGuard<'static, ()>> {
    // A check that panicked (failed) leaves the lab usable.
    let guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match LAB.get_or_init(|| bring_up(mode)) {
        Bringup::Skipped => None,
        Bringup::Up => Some(guard),
        Bringup::Failed(why) => panic!("the lab did not come up:\n{why}"),
    }
}

/// Runs one check on the shared lab with a fresh view of the cluster (the
/// API server's pods now: live checks replace pods), and fails the test
/// with every failed assertion of the check. Does nothing when the lab is
/// skipped (not root: `SKIPPED` is printed; `KSR_LAB_REQUIRED=1` makes that
/// a failure).
pub fn check(f: impl FnOnce(&mut Checks, &Cluster)) {
    let Some(_lab) = shared(&[]) else {
        return;
    };
    if let Err(e) = crate::cluster::spread_nginx() {
        panic!("the lab's nginx pods are not as the checks expect them: {e}");
    }
    let k = Cluster::from_pods(live_pods());
    let mut c = Checks::default();
    f(&mut c, &k);
    c.finish();
}

/// Runs one check on the shared lab (the same lab as [`check`]), without
/// the view of the cluster. Fails loudly when the lab cannot run here
/// (not root, no `kubectl`): these checks are how kubectl sees the lab,
/// they never skip.
pub fn check_kubernetes(f: impl FnOnce(&mut Checks)) {
    check_on(&[], &[], f);
}

/// [`check_kubernetes`] on a lab whose API server stores in an etcd of
/// the lab's own (`scripts/lab up --etcd`); a test binary uses one of
/// them. Fails loudly without `etcd` (Debian: etcd-server) too.
pub fn check_kubernetes_on_etcd(f: impl FnOnce(&mut Checks)) {
    check_on(&["--etcd"], &[("etcd", "etcd (Debian: etcd-server)")], f);
}

/// Runs `f` on the shared lab brought up with `mode`, after checking for
/// root, kubectl and the `tools` given (name, what to install).
fn check_on(mode: &[&str], tools: &[(&str, &str)], f: impl FnOnce(&mut Checks)) {
    let mut missing: Vec<&str> = [
        (!crate::env::is_root()).then_some("root"),
        crate::env::find_tool("kubectl")
            .is_none()
            .then_some("kubectl (Debian: kubernetes-client)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    missing.extend(
        tools
            .iter()
            .filter(|(tool, _)| crate::env::find_tool(tool).is_none())
            .map(|(_, what)| *what),
    );
    assert!(
        missing.is_empty(),
        "\n\n*** the kubernetes-mode lab tests need {} ***\n\n",
        missing.join(" and ")
    );
    let Some(_lab) = shared(mode) else {
        panic!("\n\n*** the kubernetes-mode lab cannot run here: see SKIPPED above ***\n\n");
    };
    let mut c = Checks::default();
    f(&mut c);
    c.finish();
}
