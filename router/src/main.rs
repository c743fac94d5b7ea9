//! The `router` binary: runs a node's data plane (`router run`) and is its
//! kubectl-like CLI (`router get po -o wide`, `router describe service X`,
//! `router get conntrack`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod cli;
mod protocol;
mod shell;

use cli::render::{self, Ages, NamespaceFilter};
use cluster::Cluster;
use control::config;
use dataplane::DataplaneConfig;
use protocol::{Request, Response};
use shell::{store, RunOptions};

/// A userspace Kubernetes-Service router on a TUN device, and its CLI.
#[derive(Parser, Debug)]
#[command(name = "router", version)]
struct Cli {
    /// Control socket of the router to ask (default: /run/ksr/NODE.sock with
    /// --node, else the first socket in /run/ksr).
    #[arg(long, global = true)]
    server: Option<PathBuf>,
    /// Node whose router to ask.
    #[arg(long, global = true)]
    node: Option<String>,
    /// Read the cluster from this file instead of asking a running router.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the data plane for one node (needs root: creates a TUN device).
    Run {
        /// TUN device name.
        #[arg(long, default_value = "kube0")]
        tun: String,
        /// TUN MTU.
        #[arg(long, default_value_t = 1500)]
        mtu: u16,
        /// TUN offload (virtio-net header, TSO super-packets of up to
        /// 64 KiB): on (falls back to off, with a log line, if the kernel
        /// refuses) or off.
        #[arg(long, default_value = "on", value_parser = ["on", "off"])]
        offload: String,
        /// Control socket path (default /run/ksr/NODE.sock).
        #[arg(long)]
        control: Option<PathBuf>,
        /// Conntrack table capacity.
        #[arg(long, default_value_t = dataplane::conntrack::DEFAULT_CAPACITY)]
        conntrack_max: usize,
        /// Capture packets to this pcapng file (tun-in, tun-out, overlay-in,
        /// overlay-out; read overlay with `tshark -d udp.port==8472,vxlan`).
        #[arg(long)]
        capture: Option<PathBuf>,
        /// Capture only this Service's packets (NAMESPACE/NAME or NAME).
        #[arg(long, requires = "capture")]
        capture_service: Option<String>,
    },
    /// Display resources, like `kubectl get`.
    Get {
        /// po|pods, svc|services, ep|endpoints, ns|namespaces, conntrack, stats.
        resource: Resource,
        /// Only this object (pods, services, endpoints).
        name: Option<String>,
        /// Output format: `wide` adds columns.
        #[arg(short = 'o', long = "output")]
        output: Option<Output>,
        /// Namespace.
        #[arg(short = 'n', long = "namespace", default_value = "default")]
        namespace: String,
        /// All namespaces.
        #[arg(short = 'A', long = "all-namespaces")]
        all_namespaces: bool,
        /// conntrack: only this protocol (tcp, udp, icmp), like `conntrack -L -p`.
        #[arg(short = 'p', long = "proto")]
        proto: Option<String>,
        /// conntrack: only flows with this source address, in either tuple (`-s`).
        #[arg(short = 's', long = "src")]
        src: Option<std::net::Ipv4Addr>,
        /// conntrack: only flows with this destination address, in either tuple (`-d`).
        #[arg(short = 'd', long = "dst")]
        dst: Option<std::net::Ipv4Addr>,
    },
    /// Show details of a resource, like `kubectl describe`.
    Describe {
        /// service|svc or endpoints|ep.
        resource: Resource,
        /// Object name.
        name: String,
        /// Namespace.
        #[arg(short = 'n', long = "namespace", default_value = "default")]
        namespace: String,
    },
    /// Create or update objects from a file, like `kubectl apply -f`: the
    /// cluster store is changed and every running router follows at once.
    Apply {
        /// A TOML file with `[[deployments]]`, `[[pods]]` and/or `[[services]]`.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// The cluster store (default: the file the running routers serve).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Delete a pod or a Service, like `kubectl delete`. A Deployment's pod
    /// is replaced by a new one, with a new name and a new IP.
    Delete {
        /// po|pod|pods or svc|service|services.
        resource: Resource,
        /// Object name.
        name: String,
        /// Namespace.
        #[arg(short = 'n', long = "namespace", default_value = "default")]
        namespace: String,
        /// The cluster store (default: the file the running routers serve).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// For the lab's kubelet: mark a pod ready (its server answers) or not.
    #[command(hide = true)]
    LabReady {
        /// Pod name.
        name: String,
        /// Namespace.
        #[arg(short = 'n', long = "namespace", default_value = "default")]
        namespace: String,
        /// Mark it not ready instead.
        #[arg(long)]
        not_ready: bool,
        /// The cluster store.
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// For scripts: one line per node (name, address, pod CIDR).
    #[command(hide = true)]
    LabNodes,
    /// For scripts: one line per pod (namespace, name, ip, node, node CIDR, gateway, ports).
    #[command(hide = true)]
    LabPods,
    /// For scripts: pod CIDR, Service CIDR, VXLAN VNI and port, underlay and pod MTU.
    #[command(hide = true)]
    LabCluster,
    /// For scripts: one line per Service (namespace, name, type, ClusterIP, external IPs, ports).
    #[command(hide = true)]
    LabServices,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Resource {
    #[value(alias = "po", alias = "pod")]
    Pods,
    #[value(alias = "svc", alias = "service")]
    Services,
    #[value(alias = "ep", alias = "endpoint")]
    Endpoints,
    #[value(alias = "ns", alias = "namespace")]
    Namespaces,
    #[value(alias = "ct")]
    Conntrack,
    Stats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Wide,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            // kubectl's own error lines are printed as kubectl prints them.
            if msg.starts_with("Error from server") {
                eprintln!("{msg}");
            } else {
                eprintln!("error: {msg}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Which router (or file) a CLI command reads from.
struct Target {
    server: Option<PathBuf>,
    node: Option<String>,
    config: Option<PathBuf>,
}

fn dispatch(cli: Cli) -> Result<String, String> {
    let Cli {
        server,
        node,
        config,
        command,
    } = cli;
    let cli = Target {
        server,
        node,
        config,
    };
    match command {
        Command::Run {
            tun,
            mtu,
            offload,
            control,
            conntrack_max,
            capture,
            capture_service,
        } => {
            let config = cli.config.ok_or("router run needs --config FILE")?;
            let node = cli.node.ok_or("router run needs --node NAME")?;
            let control = control.unwrap_or_else(|| protocol::default_socket(&node));
            let opts = RunOptions {
                config,
                node,
                tun,
                mtu,
                offload: offload == "on",
                control,
                dataplane: DataplaneConfig {
                    conntrack_capacity: conntrack_max,
                    ..DataplaneConfig::default()
                },
                capture,
                capture_service,
                manage_routing: true,
            };
            shell::run(&opts).map_err(|e| e.to_string())?;
            Ok(String::new())
        }
        Command::Apply { file, store } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let store = store::locate(store.as_deref());
            let (cluster, changes) = store::update(&store, |current| config::apply(current, &text))
                .map_err(|e| e.to_string())?;
            Ok(format!("{}{}", lines(&changes), pushed(&store, &cluster)))
        }
        Command::Delete {
            resource,
            name,
            namespace,
            store,
        } => {
            if !matches!(resource, Resource::Pods | Resource::Services) {
                return Err("delete supports: pod (po), service (svc)".into());
            }
            let store = store::locate(store.as_deref());
            let (cluster, changes) = store::update(&store, |current| match resource {
                Resource::Pods => config::delete_pod(current, &namespace, &name),
                _ => config::delete_service(current, &namespace, &name),
            })
            .map_err(|e| e.to_string())?;
            Ok(format!("{}{}", lines(&changes), pushed(&store, &cluster)))
        }
        Command::LabReady {
            name,
            namespace,
            not_ready,
            store,
        } => {
            let store = store::locate(store.as_deref());
            let (cluster, ()) = store::update(&store, |current| {
                config::set_ready(current, &namespace, &name, !not_ready).map(|t| (t, ()))
            })
            .map_err(|e| e.to_string())?;
            Ok(pushed(&store, &cluster))
        }
        Command::LabNodes => Ok(render::lab_nodes(&file_cluster(cli.config.as_deref())?)),
        Command::LabPods => Ok(render::lab_pods(&file_cluster(cli.config.as_deref())?)),
        Command::LabCluster => Ok(render::lab_cluster(&file_cluster(cli.config.as_deref())?)),
        Command::LabServices => Ok(render::lab_services(&file_cluster(cli.config.as_deref())?)),
        Command::Get {
            resource,
            name,
            output,
            namespace,
            all_namespaces,
            proto,
            src,
            dst,
        } => {
            let ns = if all_namespaces {
                NamespaceFilter::All
            } else {
                NamespaceFilter::One(namespace)
            };
            let wide = output == Some(Output::Wide);
            match resource {
                Resource::Conntrack => match ask(&cli, &Request::Conntrack)? {
                    Response::Conntrack {
                        mut lines,
                        capacity,
                    } => {
                        lines.retain(|l| {
                            let words: Vec<&str> = l.split_whitespace().collect();
                            proto.as_deref().is_none_or(|p| words.first() == Some(&p))
                                && src
                                    .is_none_or(|ip| words.contains(&format!("src={ip}").as_str()))
                                && dst
                                    .is_none_or(|ip| words.contains(&format!("dst={ip}").as_str()))
                        });
                        Ok(format!(
                        "{}{}conntrack v1 (router): {} flow entries have been shown (capacity {capacity}).\n",
                        lines.join("\n"),
                        if lines.is_empty() { "" } else { "\n" },
                        lines.len()
                    ))
                    }
                    other => Err(unexpected(&other)),
                },
                Resource::Stats => match ask(&cli, &Request::Stats)? {
                    Response::Stats { stats, flows } => Ok(render_stats(&stats, flows)),
                    other => Err(unexpected(&other)),
                },
                _ => {
                    let (mut cluster, created, now_unix) = cluster_state(&cli)?;
                    if let Some(name) = &name {
                        only(&mut cluster, resource, &ns, name)?;
                    }
                    let ages = Ages {
                        now_unix,
                        created: created.as_ref(),
                    };
                    Ok(match resource {
                        Resource::Pods => render::get_pods(&cluster, &ns, wide, &ages),
                        Resource::Services => render::get_services(&cluster, &ns, wide, &ages),
                        Resource::Namespaces => render::get_namespaces(&cluster, &ages),
                        _ => render::get_endpoints(&cluster, &ns, &ages),
                    })
                }
            }
        }
        Command::Describe {
            resource,
            name,
            namespace,
        } => {
            let (cluster, _, _) = cluster_state(&cli)?;
            match resource {
                Resource::Services => render::describe_service(&cluster, &namespace, &name),
                Resource::Endpoints => render::describe_endpoints(&cluster, &namespace, &name),
                _ => return Err("describe supports: service (svc), endpoints (ep)".into()),
            }
            .map_err(|e| e.to_string())
        }
    }
}

/// Keeps only the object `name` of `resource` (kubectl's `get KIND NAME`),
/// or says it is not there in kubectl's words.
fn only(
    cluster: &mut Cluster,
    resource: Resource,
    ns: &NamespaceFilter,
    name: &str,
) -> Result<(), String> {
    let in_ns = |n: &str| match ns {
        NamespaceFilter::All => true,
        NamespaceFilter::One(want) => n == want,
    };
    let (kind, found) = match resource {
        Resource::Pods => {
            cluster
                .pods
                .retain(|p| p.name == name && in_ns(&p.namespace));
            ("pods", !cluster.pods.is_empty())
        }
        Resource::Services | Resource::Endpoints => {
            cluster
                .services
                .retain(|s| s.name == name && in_ns(&s.namespace));
            let kind = if resource == Resource::Services {
                "services"
            } else {
                "endpoints"
            };
            (kind, !cluster.services.is_empty())
        }
        _ => return Err("a NAME is only taken for pods, services and endpoints".into()),
    };
    if found {
        Ok(())
    } else {
        Err(format!(
            "Error from server (NotFound): {kind} \"{name}\" not found"
        ))
    }
}

fn lines(changes: &[config::Change]) -> String {
    changes.iter().map(|c| format!("{c}\n")).collect()
}

/// Pushes a new state to every running router; the report goes to stderr
/// (stdout stays kubectl's), failures are errors.
fn pushed(store: &Path, cluster: &Cluster) -> String {
    for p in store::push(store, cluster) {
        match p.result {
            Ok((Response::Applied { node, micros }, rtt)) => log::info!(
                "router {node} applied the change: {micros} us in its data plane, {} us round trip",
                rtt.as_micros()
            ),
            Ok((other, _)) => log::warn!("router at {}: {other:?}", p.socket.display()),
            Err(e) => log::warn!("{e} (it will read the store when it starts)"),
        }
    }
    String::new()
}

fn file_cluster(path: Option<&Path>) -> Result<Cluster, String> {
    let path = path.ok_or("this command needs --config FILE")?;
    config::load(path).map_err(|e| e.to_string())
}

type State = (
    Cluster,
    Option<std::collections::BTreeMap<String, i64>>,
    i64,
);

/// The cluster from `--config FILE` (ages unknown) or from the running router.
fn cluster_state(cli: &Target) -> Result<State, String> {
    if let Some(path) = &cli.config {
        return Ok((file_cluster(Some(path))?, None, 0));
    }
    match ask(cli, &Request::State)? {
        Response::State {
            cluster,
            created,
            now_unix,
            ..
        } => Ok((cluster, Some(created), now_unix)),
        other => Err(unexpected(&other)),
    }
}

fn ask(cli: &Target, request: &Request) -> Result<Response, String> {
    let path = match (&cli.server, &cli.node) {
        (Some(p), _) => p.clone(),
        (None, Some(node)) => protocol::default_socket(node),
        (None, None) => protocol::find_socket().map_err(|e| e.to_string())?,
    };
    match protocol::request(&path, request).map_err(|e| e.to_string())? {
        Response::Error(e) => Err(format!("the router says: {e}")),
        r => Ok(r),
    }
}

fn unexpected(r: &Response) -> String {
    format!("unexpected answer from the router: {r:?}")
}

fn render_stats(s: &dataplane::stats::Stats, flows: usize) -> String {
    let mut out = format!(
        "received      {}\nforwarded     {}\nencapsulated  {}\ndecapsulated  {}\ntranslated    {}\n\
         generated     {}\nuntracked     {}\nflows         {flows} (created {}, expired {}, evicted {})\n\
         tun-write-dropped {}\noverlay-send-dropped {}\ntun-queue-dropped {} (by the kernel, before the router read them)\n\
         dropped       {}\n",
        s.received,
        s.forwarded,
        s.encapsulated,
        s.decapsulated,
        s.translated,
        s.generated,
        s.untracked,
        s.flows_created,
        s.flows_expired,
        s.flows_evicted,
        s.tun_write_dropped,
        s.overlay_send_dropped,
        s.tun_queue_dropped,
        s.dropped_total()
    );
    for r in dataplane::stats::DropReason::ALL {
        let n = s.dropped(r);
        if n > 0 {
            out.push_str(&format!("  {:<26} {n}\n", r.as_str()));
        }
    }
    out
}
