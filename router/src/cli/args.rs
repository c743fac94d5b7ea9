//! The command line, as clap parses it: kubectl's verbs and flags, plus
//! `router run` and the hidden `lab-*` commands for scripts.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// A userspace Kubernetes-Service router on a TUN device, and its CLI.
#[derive(Parser, Debug)]
#[command(name = "router", version)]
pub struct Cli {
    /// Control socket of the router to ask (default: /run/ksr/NODE.sock with
    /// --node, else the first socket in /run/ksr).
    #[arg(long, global = true)]
    pub server: Option<PathBuf>,
    /// Node whose router to ask.
    #[arg(long, global = true)]
    pub node: Option<String>,
    /// Read the cluster from this file instead of asking a running router.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Kubeconfig of a Kubernetes API server (default: $KUBECONFIG).
    /// `get po|svc|ep|ns`, `describe`, `apply -f FILE.yaml` and `delete`
    /// then ask the API (when neither --config, --server nor --node is
    /// given); `conntrack` and `stats` stay node-local. With `run`: watch
    /// the API with it (Kubernetes mode; wins over the settings file's
    /// `[kubernetes] kubeconfig`; $KUBECONFIG is not used by `run`, so an
    /// object file never switches mode by the environment).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
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
        /// TUN queues, one worker thread each (default: the number of
        /// CPUs). With more than one the device is multi-queue and the
        /// overlay port has one socket per worker (`SO_REUSEPORT`).
        #[arg(long, env = "KSR_QUEUES", value_parser = clap::value_parser!(u16).range(1..=256))]
        queues: Option<u16>,
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
        /// Rotate the capture when it reaches this many MiB (like
        /// `tcpdump -C`): FILE becomes FILE.1 and a new FILE starts.
        #[arg(long, default_value_t = 100, requires = "capture")]
        capture_max_mb: u64,
        /// Capture files kept, the current one included (like `tcpdump -W`).
        #[arg(long, default_value_t = 2, requires = "capture")]
        capture_files: u32,
        /// Do not install or keep the node's routing rules and routes (when
        /// something else manages them); by default the router installs
        /// them at start and restores them when they are removed.
        #[arg(long)]
        no_manage_routing: bool,
        /// Where the conntrack journal lives, so flows survive a restart
        /// (default: beside the control socket, NODE.conntrack); `none`
        /// keeps no journal.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Where to serve `/metrics` (Prometheus) and `/healthz`, like
        /// kube-proxy's metricsBindAddress (default 127.0.0.1:10249, in
        /// the node's network namespace); `none` serves neither.
        #[arg(long, default_value = "127.0.0.1:10249")]
        metrics_bind_address: String,
    },
    /// Display resources, like `kubectl get`.
    Get {
        /// po|pods, svc|services, ep|endpoints, ns|namespaces, conntrack, stats.
        resource: Resource,
        /// Only this object (pods, services, endpoints).
        name: Option<String>,
        /// Output format: `wide` adds columns; `json` prints
        /// `{"apiVersion": "v1", "kind": "List", "items": [...]}` (pods,
        /// services, endpoints, namespaces; a List also with NAME) or the
        /// counters (stats).
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
    /// Create or update objects in the Kubernetes API from a YAML
    /// manifest, like `kubectl apply -f` (server-side apply; needs
    /// --kubeconfig or $KUBECONFIG); the watching routers follow.
    Apply {
        /// Kubernetes YAML: one or more documents (`---`), or a `List`.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
    /// Delete a pod or a Service in the Kubernetes API, like `kubectl
    /// delete` (needs --kubeconfig or $KUBECONFIG). A Deployment's pod is
    /// replaced by a new one, with a new name and a new IP.
    Delete {
        /// po|pod|pods or svc|service|services.
        resource: Resource,
        /// Object name.
        name: String,
        /// Namespace.
        #[arg(short = 'n', long = "namespace", default_value = "default")]
        namespace: String,
    },
    /// For scripts: one line per node (name, address, pod CIDR).
    #[command(hide = true)]
    LabNodes,
    /// For scripts: one line per pod of an object file (namespace, name, ip, node, node CIDR, gateway, ports).
    #[command(hide = true)]
    LabPods,
    /// For scripts: pod CIDR, Service CIDR, VXLAN VNI and port, underlay and pod MTU.
    #[command(hide = true)]
    LabCluster,
    /// For scripts: one line per Service (namespace, name, type, ClusterIP, external IPs, ports).
    #[command(hide = true)]
    LabServices,
}

/// The kinds `get`, `describe` and `delete` take, with kubectl's short names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Resource {
    /// Pods.
    #[value(alias = "po", alias = "pod")]
    Pods,
    /// Services.
    #[value(alias = "svc", alias = "service")]
    Services,
    /// Endpoints (one object per Service).
    #[value(alias = "ep", alias = "endpoint")]
    Endpoints,
    /// Namespaces.
    #[value(alias = "ns", alias = "namespace")]
    Namespaces,
    /// The router's conntrack table.
    #[value(alias = "ct")]
    Conntrack,
    /// The router's counters.
    Stats,
}

/// `-o`: the output format of `get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// More columns.
    Wide,
    /// JSON (see [`crate::cli::json`]).
    Json,
}
