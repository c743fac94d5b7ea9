//! `ksr-kubelet`: the lab's kubelet, one per node.
//!
//! It registers its Node (pod CIDR, InternalIP, Ready), watches the pods
//! bound to it (`spec.nodeName=<node>`, kube-runtime's watcher: list, then
//! watch from the resourceVersion, relist on 410 Gone, back-off on errors)
//! and, for each pod, builds a network namespace wired to the node, runs
//! `pod-server` on the pod's container ports whatever its image names (the
//! lab has no container runtime), and reports it Running and Ready through
//! the status subresource once its server answers. A deleted pod's server is
//! stopped (SIGTERM, SIGKILL at the end of its grace period), its namespace
//! removed, and the pod object released (a delete with grace 0), as the
//! kubelet does once a pod's containers have stopped.
//!
//! The network plumbing is the lab's own (`scripts/lab pod-up`, `pod-probe`,
//! `pod-down`: the same functions that built the pods of the TOML lab), so
//! both lab modes build pods the same way.

mod node;
mod pods;
mod sandbox;
mod status;
mod worker;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ipnet::Ipv4Net;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "ksr-kubelet",
    about = "The lab's kubelet: pods bound to this node become network namespaces running pod-server"
)]
struct Cli {
    /// This node's name (the Node object it registers, the pods it runs).
    #[arg(long)]
    node: String,
    /// The kubeconfig to reach the API server with (it writes Nodes and pod
    /// status, so it needs write access).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The node's pod CIDR (spec.podCIDR; the API server allocates pod IPs
    /// from it).
    #[arg(long)]
    pod_cidr: Ipv4Net,
    /// The node's underlay address (status.addresses InternalIP).
    #[arg(long)]
    node_ip: Ipv4Addr,
    /// The lab script whose `pod-up`, `pod-probe` and `pod-down` build,
    /// check and remove a pod's namespace.
    #[arg(long)]
    lab: PathBuf,
    /// The cluster DNS Service's IP, written into every pod's resolv.conf.
    #[arg(long)]
    cluster_dns: Option<Ipv4Addr>,
    /// The cluster's DNS domain (resolv.conf search path).
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ksr-kubelet: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Why the kubelet stopped.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// The kubeconfig.
    #[error("kubeconfig {0}: {1}")]
    Kubeconfig(String, kube::config::KubeconfigError),
    /// The client.
    #[error("client: {0}")]
    Client(#[from] kube::Error),
    /// The pod watch ended (it retries by itself; this is a bug).
    #[error("the pod watch ended")]
    WatchEnded,
}

async fn run(cli: Cli) -> Result<(), Error> {
    let path = cli.kubeconfig.display().to_string();
    let kubeconfig =
        Kubeconfig::read_from(&cli.kubeconfig).map_err(|e| Error::Kubeconfig(path.clone(), e))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kubeconfig(path, e))?;
    let client = kube::Client::try_from(config)?;
    let me = node::NodeInfo {
        name: cli.node.clone(),
        pod_cidr: cli.pod_cidr,
        ip: cli.node_ip,
    };
    node::register(&client, &me).await;
    let context = worker::Context {
        client: client.clone(),
        node: me,
        sandbox: sandbox::Sandbox {
            lab: cli.lab,
            dns: cli.cluster_dns,
            domain: cli.cluster_domain,
        },
    };
    pods::follow(context).await;
    Err(Error::WatchEnded)
}
