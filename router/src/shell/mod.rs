//! The shell around the sans-IO core: the only code that makes syscalls or
//! reads the clock.
//!
//! `router run --queues N` opens the TUN device with N queues and binds N
//! overlay sockets (an `SO_REUSEPORT` group) and runs one worker per
//! queue: worker 0 on the main thread, which also keeps everything beside
//! the packets ([`upkeep`]), the others on their own threads, moving
//! packets only ([`worker`]). All share one `Node` behind one lock
//! ([`shared`]), taken per packet around the core's work and never across
//! a syscall ([`packets`]). This module sets it all up.

mod answer;
pub mod capture;
mod control_server;
mod counters;
mod errors;
mod journal;
mod kube;
mod metrics;
mod options;
mod overlay_socket;
mod packets;
mod persist;
pub mod plumbing;
mod shared;
mod tun;
mod tun_batch;
mod upkeep;
mod vnet;
mod worker;

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::unix::SourceFd;
use mio::{Interest, Poll, Waker};

use capture::Capture;
use control::settings::{self, RouterConfig};
use control_server::{ControlState, Query, Served};
use counters::ShellCounters;
use dataplane::node::Node;
use overlay_socket::OverlaySocket;
use packets::{Io, Packets, Shared};
use shared::SharedNode;
use tun::Tun;
use upkeep::{Upkeep, PLUMBING, SIGNAL};
use worker::WAKER;

pub use options::{RunError, RunOptions};

/// How often counters are logged (at debug level).
const STATS_EVERY: Duration = Duration::from_secs(60);

fn io_err(what: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Io { what, source }
}

/// Runs the router until SIGINT or SIGTERM.
pub fn run(opts: &RunOptions) -> Result<(), RunError> {
    let source = settings::load(&opts.config, opts.kubeconfig.as_deref())?;
    if let RouterConfig::Objects(cluster) = &source {
        check_node(opts, cluster)?;
    }
    let queues = opts.queues.max(1);
    let tun =
        Tun::open(&opts.tun, opts.mtu, opts.offload, queues).map_err(|source| RunError::Tun {
            name: opts.tun.clone(),
            source,
        })?;
    run_on(opts, source, tun)
}

/// The object file must name the node the router runs for.
fn check_node(opts: &RunOptions, cluster: &cluster::Cluster) -> Result<(), RunError> {
    if cluster.node(&opts.node).is_none() {
        return Err(RunError::UnknownNode {
            node: opts.node.clone(),
            config: opts.config.display().to_string(),
            known: cluster
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(())
}

/// Runs the router on `tun` with the objects of `source`: an object file's
/// cluster, or a watch of the Kubernetes API started and synced here.
fn run_on(opts: &RunOptions, source: RouterConfig, tuns: Vec<Tun>) -> Result<(), RunError> {
    let mut poll = Poll::new().map_err(io_err("creating the poller"))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_err("creating the waker"))?);
    let (signal_rx, signal_tx) =
        std::os::unix::net::UnixStream::pair().map_err(io_err("creating the signal pipe"))?;
    signal_rx
        .set_nonblocking(true)
        .map_err(io_err("creating the signal pipe"))?;
    signal_tx
        .set_nonblocking(true)
        .map_err(io_err("creating the signal pipe"))?;
    let mut signal_rx = mio::net::UnixStream::from_std(signal_rx);
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let tx = signal_tx
            .try_clone()
            .map_err(io_err("cloning the signal pipe"))?;
        signal_hook::low_level::pipe::register(sig, tx)
            .map_err(io_err("installing signal handlers"))?;
    }
    poll.registry()
        .register(&mut signal_rx, SIGNAL, Interest::READABLE)
        .map_err(io_err("registering the signal pipe"))?;

    let (cluster, mut feed) = match source {
        RouterConfig::Objects(cluster) => (cluster, None),
        RouterConfig::Kubernetes(settings) => {
            match kube::KubeFeed::start(&settings, &opts.node, Arc::clone(&waker), &mut signal_rx)?
            {
                Some((feed, cluster)) => (cluster, Some(feed)),
                None => return Ok(()),
            }
        }
    };

    let mut dp =
        Node::new(&opts.dataplane, &cluster, &opts.node).map_err(|e| RunError::UnknownNode {
            node: e.0,
            config: opts.config.display().to_string(),
            known: String::new(),
        })?;
    if let Some(f) = feed.as_mut() {
        f.serving(&dp);
    }
    let (query_tx, query_rx) = crossbeam_channel::bounded::<Query>(16);
    let state = ControlState {
        node: opts.node.clone(),
        served: match feed {
            Some(_) => Served::Watched(dp.shared_model()),
            None => Served::File(cluster.clone()),
        },
        config: opts.config.clone(),
    };
    control_server::spawn(&opts.control, state, query_tx.clone(), Arc::clone(&waker)).map_err(
        |source| RunError::Control {
            path: opts.control.display().to_string(),
            source,
        },
    )?;
    let socket_identity = {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(&opts.control)
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };

    let journal = open_journal(opts, &mut dp);
    let programming = metrics::Programming::default();
    if let Some(addr) = opts.metrics {
        match metrics::spawn(
            addr,
            query_tx.clone(),
            Arc::clone(&waker),
            programming.clone(),
            opts.dataplane.conntrack_capacity,
        ) {
            Ok(local) => info!("serving /metrics and /healthz on http://{local}"),
            // Metrics are not worth refusing to route for (two routers in
            // one namespace, a port taken): say so and go on.
            Err(e) => warn!("cannot serve /metrics and /healthz on {addr}: {e}; running without"),
        }
    }
    let queues = tuns.len();
    let overlay_addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, cluster.overlay.port));
    let mut overlays =
        OverlaySocket::bind(overlay_addr, queues).map_err(|source| RunError::Overlay {
            addr: overlay_addr,
            source,
        })?;
    let underlay_ip = cluster
        .node(&opts.node)
        .map_or(Ipv4Addr::UNSPECIFIED, |n| n.underlay_ip);
    let capture = match &opts.capture {
        Some(path) => {
            info!("capturing to {}", path.display());
            Some(Mutex::new(Capture::create(
                path,
                opts.capture_service.as_deref(),
                &cluster,
                opts.capture_limit,
            )?))
        }
        None => None,
    };
    let mut tuns = tuns.into_iter();
    let (Some(tun), Some(mut overlay)) = (tuns.next(), overlays.drain(..1).next()) else {
        return Err(io_err("opening the TUN device and the overlay socket")(
            std::io::Error::other("no queue opened"),
        ));
    };
    worker::register(&poll, &tun, &mut overlay)?;
    let others = tuns
        .zip(overlays)
        .map(|(t, o)| worker::Queue::new(t, o))
        .collect::<Result<Vec<_>, _>>()?;
    let plumbing = open_plumbing(opts, &poll, &tun, underlay_ip, &cluster)?;
    info!(
        "router for node {} on {} (TUN queues {queues}, MTU {}, offload {}; overlay UDP GSO {} segments, GRO {}), {} services, control socket {}",
        opts.node,
        tun.name(),
        opts.mtu,
        if tun.offload() { "on" } else { "off" },
        overlay.max_gso_segments(),
        overlay.gro_segments(),
        cluster.services.len(),
        opts.control.display()
    );
    let overlay_port = cluster.overlay.port;
    // The data plane's model holds the objects from here on.
    drop(cluster);
    kube::release_freed_memory();
    let node = SharedNode::new(dp, Instant::now());
    let counters = ShellCounters::default();
    let shared = Shared {
        node: &node,
        counters: &counters,
        capture: capture.as_ref(),
    };
    let stop = AtomicBool::new(false);
    let cx = worker::Context {
        shared,
        overlay_port,
        underlay_ip,
        stop: &stop,
        upkeep: &waker,
    };
    let io = Io {
        tun: &tun,
        overlay: &overlay,
        overlay_port,
        underlay_ip,
    };
    let mut packets = Packets::new(io, shared, None);
    let inputs = upkeep::Inputs {
        queries: &query_rx,
        signal_rx: &mut signal_rx,
        tun_name: tun.name(),
        stop: &stop,
        others: !others.is_empty(),
    };
    let mut upkeep = Upkeep {
        plumbing,
        journal,
        programming,
        kube: feed,
    };
    let result = std::thread::scope(|s| {
        let mut workers = Vec::with_capacity(others.len());
        for (i, q) in others.into_iter().enumerate() {
            let waker = Arc::clone(&q.waker);
            let cx = &cx;
            let spawned = std::thread::Builder::new()
                .name(format!("worker-{}", i + 1))
                .spawn_scoped(s, move || worker::run(i + 1, q, cx));
            match spawned {
                Ok(h) => workers.push((waker, h)),
                Err(e) => {
                    stop.store(true, Ordering::Release);
                    return stop_workers(workers, Err(io_err("starting a worker thread")(e)));
                }
            }
        }
        let result = upkeep::run(&mut poll, &mut packets, shared, inputs, &mut upkeep);
        stop.store(true, Ordering::Release);
        stop_workers(workers, result)
    });
    if let Some(c) = capture.as_ref() {
        packets::lock_capture(c).flush();
    }
    remove_socket(&opts.control, socket_identity);
    result
}

/// A worker thread.
type Running<'scope> = std::thread::ScopedJoinHandle<'scope, Result<(), RunError>>;

/// Wakes the workers (the stop flag is up), waits for them and returns
/// the first error: `result` (worker 0's), else a worker's.
fn stop_workers(
    workers: Vec<(Arc<Waker>, Running<'_>)>,
    mut result: Result<(), RunError>,
) -> Result<(), RunError> {
    for (waker, _) in &workers {
        let _ = waker.wake();
    }
    for (i, (_, handle)) in workers.into_iter().enumerate() {
        let ended = handle
            .join()
            .unwrap_or(Err(RunError::WorkerPanicked { worker: i + 1 }));
        if result.is_ok() {
            result = ended;
        }
    }
    result
}

/// Opens the node's routing plumbing when `opts` asks for it, its netlink
/// watch registered with worker 0's poller.
fn open_plumbing(
    opts: &RunOptions,
    poll: &Poll,
    tun: &Tun,
    underlay_ip: Ipv4Addr,
    cluster: &cluster::Cluster,
) -> Result<Option<plumbing::Plumbing>, RunError> {
    if !opts.manage_routing {
        return Ok(None);
    }
    let net = plumbing::plan::NodeNetwork {
        tun: tun.name().to_owned(),
        node_ip: underlay_ip,
        underlay_dev: None,
        cluster_cidr: cluster.pod_cidr,
        service_cidr: cluster.service_cidr,
    };
    match plumbing::Plumbing::open(net, Instant::now()) {
        Ok(mut p) => {
            // Before the first packet: a restarted router serves at once.
            p.poll(Instant::now());
            poll.registry()
                .register(
                    &mut SourceFd(&p.watch().as_raw_fd()),
                    PLUMBING,
                    Interest::READABLE,
                )
                .map_err(io_err("registering the netlink watch"))?;
            Ok(Some(p))
        }
        Err(e) => {
            warn!("cannot manage routing (netlink: {e}); the node's rules and routes are left as they are");
            Ok(None)
        }
    }
}

/// Opens the conntrack journal `opts` asks for and restores its flows into
/// `dp`; without one (or if it cannot be opened) the router runs on with an
/// empty table, saying why.
fn open_journal(opts: &RunOptions, dp: &mut Node) -> Option<persist::ConntrackJournal> {
    let path = match &opts.state {
        Some(p) if p.as_os_str() == "none" => return None,
        Some(p) => p.clone(),
        None => opts
            .control
            .with_file_name(format!("{}.conntrack", opts.node)),
    };
    match persist::ConntrackJournal::open(&path, &opts.node, dp, Instant::now()) {
        Ok(j) => Some(j),
        Err(e) => {
            warn!("{e}; running without a conntrack journal (flows will not survive a restart)");
            None
        }
    }
}

/// Removes the control socket, but only if it is still the one this router
/// created (another router, or a lab rebuilt meanwhile, may own the path now).
fn remove_socket(path: &Path, created: Option<(u64, u64)>) {
    use std::os::unix::fs::MetadataExt;
    let now = std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    if now.is_none() || now != created {
        debug!(
            "not removing {}: it is not our socket any more",
            path.display()
        );
        return;
    }
    if let Err(e) = std::fs::remove_file(path) {
        debug!("removing {}: {e}", path.display());
    }
}
