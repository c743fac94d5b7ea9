//! `ksr-apiserver`: serve the Kubernetes API, or `init` the certificates,
//! tokens and kubeconfigs it serves with.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use apiserver::server::netns::{self, NetnsListen};
use apiserver::{api::ApiConfig, controllers::ControllerConfig, init, Config};

#[derive(Parser)]
#[command(
    name = "ksr-apiserver",
    about = "A Kubernetes-compatible API server for the lab"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve {
        /// Address to listen on (repeatable).
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: Vec<SocketAddr>,
        /// Also listen inside a network namespace: NETNS_PATH=ADDRESS:PORT
        /// (repeatable), e.g. /run/netns/ksr-mac-master=192.168.191.144:6443.
        #[arg(long)]
        listen_in_netns: Vec<NetnsListen>,
        /// Address advertised as the `kubernetes` Service's endpoint.
        #[arg(long)]
        advertise: Option<SocketAddr>,
        /// Data directory of the embedded storage.
        #[arg(long, required_unless_present_any = ["ephemeral", "etcd"])]
        data_dir: Option<PathBuf>,
        /// Store objects in the etcd at this client URL (e.g.
        /// http://127.0.0.1:2379) instead of the data directory.
        #[arg(long, conflicts_with_all = ["data_dir", "ephemeral"])]
        etcd: Option<String>,
        /// Keep nothing on disk.
        #[arg(long)]
        ephemeral: bool,
        /// Serving certificate (PEM); with --tls-key serves HTTPS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// Serving key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Bearer tokens file (token,user,uid,"groups"); without it every
        /// request is admin.
        #[arg(long)]
        tokens: Option<PathBuf>,
        /// Service CIDR.
        #[arg(long, default_value = "10.96.0.0/12")]
        service_cidr: ipnet::Ipv4Net,
        /// Do not run the controllers.
        #[arg(long)]
        no_controllers: bool,
        /// Leave pod status and termination to real kubelets (by default a
        /// stand-in marks bound pods Running and Ready and nodes Ready).
        #[arg(long)]
        no_kubelet_standin: bool,
        /// How long the stand-in kubelet keeps a deleted pod Terminating
        /// (at most its grace period), in milliseconds.
        #[arg(long, default_value_t = 500)]
        standin_termination_ms: u64,
    },
    /// Write a CA, the serving certificate, tokens and kubeconfigs into DIR.
    Init {
        /// Output directory.
        #[arg(long)]
        dir: PathBuf,
        /// Address clients use (repeatable; the first goes in the kubeconfigs).
        #[arg(long, default_value = "127.0.0.1")]
        address: Vec<IpAddr>,
        /// Port clients use.
        #[arg(long, default_value_t = 6443)]
        port: u16,
        /// Router identities with read-only kubeconfigs (repeatable).
        #[arg(long)]
        router: Vec<String>,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Command::Init {
            dir,
            address,
            port,
            router,
        } => {
            let options = init::InitOptions {
                dir,
                addresses: address,
                names: Vec::new(),
                port,
                routers: router,
            };
            match init::init(&options) {
                Ok(files) => {
                    println!("{}", files.admin_kubeconfig.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ksr-apiserver init: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve {
            listen,
            listen_in_netns,
            advertise,
            data_dir,
            etcd,
            ephemeral,
            tls_cert,
            tls_key,
            tokens,
            service_cidr,
            no_controllers,
            no_kubelet_standin,
            standin_termination_ms,
        } => {
            let mut controllers = ControllerConfig {
                enabled: !no_controllers,
                ..ControllerConfig::default()
            };
            controllers.kubelet_standin = if no_kubelet_standin {
                None
            } else {
                Some(std::time::Duration::from_millis(standin_termination_ms))
            };
            let config = Config {
                listen,
                advertise,
                data_dir: if ephemeral { None } else { data_dir },
                etcd,
                tls: tls_cert.zip(tls_key),
                tokens,
                api: ApiConfig {
                    service_cidr,
                    ..ApiConfig::default()
                },
                controllers,
                ..Config::default()
            };
            serve(config, &listen_in_netns)
        }
    }
}

fn serve(config: Config, in_netns: &[NetnsListen]) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ksr-apiserver: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let running = match apiserver::start(config.clone()).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("ksr-apiserver: {e}");
                return ExitCode::FAILURE;
            }
        };
        for a in &running.addresses {
            log::info!("serving on {a}");
        }
        let mut listeners = Vec::new();
        for spec in in_netns {
            match netns::bind(spec) {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    eprintln!("ksr-apiserver: {e}");
                    return ExitCode::FAILURE;
                }
            }
            log::info!("serving on {} in {}", spec.addr, spec.netns.display());
        }
        let _tasks = match netns::serve_on(listeners, &running, &config) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("ksr-apiserver: {e}");
                return ExitCode::FAILURE;
            }
        };
        let _ = tokio::signal::ctrl_c().await;
        ExitCode::SUCCESS
    })
}
