//! `control-bench`: the control plane's benchmark (issue 8). Loads
//! Services and EndpointSlices into a Kubernetes API server, starts
//! routers (the routers' watch + data plane, as child processes) against
//! it, then changes one endpoint at a time and measures:
//! - how long a router takes from start to serving every Service;
//! - per change, from the watch event's arrival to the data plane, and
//!   from the request to the API server to the last router;
//! - the routers' and (given its pid) the API server's RSS.
//!
//! `scripts/bench-control` runs it against a fresh `ksr-apiserver`, and
//! again with `--routers 0 --no-load` to change endpoints under real
//! `router run` processes.

mod load;
mod report;
mod router;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use report::{mib, Summary};

#[derive(Parser)]
#[command(
    name = "control-bench",
    about = "The control plane's benchmark: API server -> routers' data planes"
)]
struct Cli {
    /// Kubeconfig of the API server (admin: it writes objects).
    #[arg(long)]
    kubeconfig: PathBuf,
    #[command(subcommand)]
    command: Option<Sub>,
    /// Services to load (each with one EndpointSlice).
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Endpoints per Service.
    #[arg(long, default_value_t = 5)]
    per_service: usize,
    /// Endpoint changes measured.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// The API server's pid, for its RSS.
    #[arg(long)]
    apiserver_pid: Option<u32>,
    /// Benchmark routers (child processes) to start; with 0 the changes
    /// are made one at a time, 20 ms apart, for routers started
    /// elsewhere (`router run`, whose /metrics then tell the latencies).
    #[arg(long, default_value_t = 2)]
    routers: usize,
    /// The cluster is loaded already (by an earlier run): only measure.
    #[arg(long)]
    no_load: bool,
    /// The number of the first change: a second run on the same cluster
    /// starts after the first one's changes, so that its changes change
    /// something.
    #[arg(long, default_value_t = 0)]
    first_change: usize,
}

/// Time between two changes when no benchmark router reports (their
/// routers have applied a change well within it).
const PACE: Duration = Duration::from_millis(20);

#[derive(Subcommand)]
enum Sub {
    /// Internal: run one router (watch + data plane) and report on stdout.
    Router {
        /// The node it serves.
        #[arg(long)]
        node: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Sub::Router { node }) => router::run(cli.kubeconfig.clone(), node.clone()),
        None => bench(&cli),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("control-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A router child: its stdin (closing it ends the child) and its lines.
struct RouterChild {
    node: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
}

impl RouterChild {
    fn start(kubeconfig: &PathBuf, node: &str) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["router", "--node", node])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting a router: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Self {
            node: node.to_owned(),
            child,
            stdin,
            lines,
        })
    }

    /// The next report, waiting at most `timeout`.
    fn next(&self, timeout: Duration) -> Result<Value, String> {
        self.lines
            .recv_timeout(timeout)
            .map_err(|_| format!("router {} reported nothing within {timeout:?}", self.node))
    }
}

impl Drop for RouterChild {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn bench(cli: &Cli) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = runtime.block_on(async {
        let kubeconfig = Kubeconfig::read_from(&cli.kubeconfig).map_err(|e| e.to_string())?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| e.to_string())?;
        kube::Client::try_from(config).map_err(|e| e.to_string())
    })?;
    let api = |e: kube::Error| format!("API server: {e}");
    if !cli.no_load {
        runtime.block_on(load::nodes(&client)).map_err(api)?;
        let took = runtime
            .block_on(load::services(&client, 0, cli.services, cli.per_service))
            .map_err(api)?;
        let objects = 2 * cli.services;
        println!(
            "load: {} Services + {} EndpointSlices ({} endpoints) in {:.1} s ({:.0} objects/s)",
            cli.services,
            cli.services,
            cli.services * cli.per_service,
            took.as_secs_f64(),
            objects as f64 / took.as_secs_f64()
        );
    }

    let mut routers = Vec::new();
    for (node, _, _) in load::NODES.iter().take(cli.routers) {
        let r = RouterChild::start(&cli.kubeconfig, node)?;
        let ready = r.next(Duration::from_secs(60))?;
        println!(
            "router {node}: serving {} Services ({} frontends) {:.0} ms after start; RSS {}",
            ready["services"],
            ready["service_ports"],
            ready["synced_ms"].as_f64().unwrap_or(f64::NAN),
            ready["rss"].as_u64().map_or("?".into(), mib),
        );
        routers.push(r);
    }

    let mut summary = Summary::default();
    for n in cli.first_change..cli.first_change + cli.changes {
        let i = (n * 7919) % cli.services;
        let j = n % cli.per_service;
        let generation = 1 + n / cli.services;
        let want = load::changed_ip(i, j, generation).to_string();
        let (sent, sent_wall) = runtime
            .block_on(load::change(&client, i, cli.per_service, j, generation))
            .map_err(api)?;
        if routers.is_empty() {
            std::thread::sleep(PACE);
            continue;
        }
        let slice = format!("{}-bench", load::service_name(i));
        let mut last_applied_ns: u128 = 0;
        for r in &routers {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let v = r.next(left)?;
                let ips: Vec<&str> = v["ips"]
                    .as_array()
                    .map_or(vec![], |a| a.iter().filter_map(Value::as_str).collect());
                if v["slice"] == slice.as_str() && ips.contains(&want.as_str()) {
                    let num = |k: &str| {
                        v[k].as_str()
                            .and_then(|s| s.parse::<u128>().ok())
                            .unwrap_or(0)
                    };
                    let (received, applied) = (num("received_ns"), num("applied_ns"));
                    summary
                        .event_to_dataplane
                        .push(applied.saturating_sub(received) as f64 / 1e3);
                    summary
                        .apply
                        .push(v["apply_us"].as_f64().unwrap_or(f64::NAN));
                    if let Some(rss) = v["rss"].as_u64() {
                        summary.router_rss = summary.router_rss.max(rss);
                    }
                    last_applied_ns = last_applied_ns.max(applied);
                    break;
                }
            }
        }
        let sent_ns = router::wall_ns(sent_wall);
        summary
            .request_to_last_router
            .push(last_applied_ns.saturating_sub(sent_ns) as f64 / 1e6);
        let _ = sent;
    }
    if routers.is_empty() {
        println!("{} endpoint changes made, {PACE:?} apart", cli.changes);
    } else {
        summary.print(cli.changes, routers.len());
    }
    if let Some(pid) = cli.apiserver_pid {
        println!(
            "apiserver RSS: {}",
            router::rss_bytes(pid).map_or("?".into(), mib)
        );
    }
    Ok(())
}
