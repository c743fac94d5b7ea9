//! The shell around the sans-IO core: the only code that makes syscalls or
//! reads the clock.
//!
//! One thread runs one `mio::Poll` over the TUN device, a waker (the control
//! thread's questions) and a self-pipe for SIGINT/SIGTERM. Each TUN readiness
//! event is drained until `WouldBlock`, at most `BATCH` packets at a time
//! so that control questions and timers are never starved; a packet buffer
//! of 64 KiB is allocated once.
//!
//! With TUN offload (`--offload on`, the default) the kernel hands over
//! TCP super-packets of up to 64 KiB with partial checksums: each is read
//! once, NATed once by the core (the offload state travels in the
//! `PacketBuf`, see [`vnet`]) and written back whole behind its virtio-net
//! header; one bound for another node is cut into MSS-sized segments with
//! full checksums before it goes out on the overlay.

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
mod persist;
pub mod plumbing;
pub mod store;
mod tun;
mod tun_batch;
mod vnet;

use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::net::{Ipv4Addr, SocketAddr};

use capture::{Capture, Point};
use control::settings::{self, RouterConfig};
use control_server::{ControlState, Query, Served};
use counters::ShellStats;
use dataplane::buf::PacketBuf;
use dataplane::engine::{Egress, Ingress, Verdict};
use dataplane::node::Node;
use dataplane::overlay::OVERLAY_HEADER_LEN;
use dataplane::wire::offload::{self, Gso, Offload};
use errors::{ErrorAction, RateLimitedLog};
use overlay_socket::OverlaySocket;
use tun::Tun;

pub use options::{RunError, RunOptions};

const TUN: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNAL: Token = Token(2);
const OVERLAY: Token = Token(3);
const PLUMBING: Token = Token(4);

/// Packets handled per TUN readiness before other events get a turn.
const BATCH: usize = 256;
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
    let tun = Tun::open(&opts.tun, opts.mtu, opts.offload).map_err(|source| RunError::Tun {
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
fn run_on(opts: &RunOptions, source: RouterConfig, tun: Tun) -> Result<(), RunError> {
    let mut poll = Poll::new().map_err(io_err("creating the poller"))?;
    poll.registry()
        .register(&mut SourceFd(&tun.as_raw_fd()), TUN, Interest::READABLE)
        .map_err(io_err("registering the TUN device"))?;
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
    let overlay_addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, cluster.overlay.port));
    let mut overlay = OverlaySocket::bind(overlay_addr).map_err(|source| RunError::Overlay {
        addr: overlay_addr,
        source,
    })?;
    poll.registry()
        .register(overlay.socket_mut(), OVERLAY, Interest::READABLE)
        .map_err(io_err("registering the overlay socket"))?;
    let underlay_ip = cluster
        .node(&opts.node)
        .map_or(Ipv4Addr::UNSPECIFIED, |n| n.underlay_ip);
    let mut capture = match &opts.capture {
        Some(path) => {
            info!("capturing to {}", path.display());
            Some(Capture::create(
                path,
                opts.capture_service.as_deref(),
                &cluster,
                opts.capture_limit,
            )?)
        }
        None => None,
    };
    let plumbing = if opts.manage_routing {
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
                Some(p)
            }
            Err(e) => {
                warn!("cannot manage routing (netlink: {e}); the node's rules and routes are left as they are");
                None
            }
        }
    } else {
        None
    };
    let io = Io {
        tun: &tun,
        overlay: &overlay,
        overlay_port: cluster.overlay.port,
        underlay_ip,
    };
    info!(
        "router for node {} on {} (MTU {}, offload {}; overlay UDP GSO {} segments, GRO {}), {} services, control socket {}",
        opts.node,
        tun.name(),
        opts.mtu,
        if tun.offload() { "on" } else { "off" },
        overlay.max_gso_segments(),
        overlay.gro_segments(),
        cluster.services.len(),
        opts.control.display()
    );
    // The data plane's model holds the objects from here on.
    drop(cluster);
    kube::release_freed_memory();
    let result = event_loop(
        &mut poll,
        &io,
        &mut dp,
        &query_rx,
        &mut signal_rx,
        &mut capture,
        &mut Upkeep {
            plumbing,
            journal,
            programming,
            kube: feed,
        },
    );
    if let Some(c) = capture.as_mut() {
        c.flush();
    }
    remove_socket(&opts.control, socket_identity);
    result
}

/// What the loop keeps up beside the packets: the node's routing plumbing,
/// the conntrack journal and, in Kubernetes mode, the API's changes.
struct Upkeep {
    plumbing: Option<plumbing::Plumbing>,
    journal: Option<persist::ConntrackJournal>,
    /// Programming-latency histograms (`/metrics`), observed per applied
    /// change.
    programming: metrics::Programming,
    kube: Option<kube::KubeFeed>,
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

/// The data plane's file descriptors.
struct Io<'a> {
    tun: &'a Tun,
    overlay: &'a OverlaySocket,
    overlay_port: u16,
    underlay_ip: Ipv4Addr,
}

fn event_loop(
    poll: &mut Poll,
    io: &Io<'_>,
    dp: &mut Node,
    queries: &crossbeam_channel::Receiver<Query>,
    signal_rx: &mut mio::net::UnixStream,
    capture: &mut Option<Capture>,
    upkeep: &mut Upkeep,
) -> Result<(), RunError> {
    let Upkeep {
        plumbing,
        journal,
        programming,
        kube,
    } = upkeep;
    let mut events = Events::with_capacity(64);
    let mut buf = PacketBuf::new();
    let mut scratch = Scratch::default();
    let mut shell = ShellStats::new(io.tun.name());
    let (mut tun_pending, mut overlay_pending) = (false, false);
    let mut changes_pending = false;
    let mut next_stats = Instant::now() + STATS_EVERY;
    loop {
        let now = Instant::now();
        let timeout = if tun_pending || overlay_pending || changes_pending {
            Some(Duration::ZERO)
        } else {
            let mut deadline = dp.poll_timeout().map_or(next_stats, |t| t.min(next_stats));
            if let Some(p) = plumbing.as_ref() {
                deadline = deadline.min(p.poll_timeout());
            }
            Some(deadline.saturating_duration_since(now))
        };
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(RunError::Io {
                    what: "polling",
                    source: e,
                })
            }
        }
        let (mut tun_ready, mut overlay_ready) = (tun_pending, overlay_pending);
        for event in &events {
            match event.token() {
                TUN => tun_ready = true,
                OVERLAY => overlay_ready = true,
                WAKER => {}
                PLUMBING => {
                    if let Some(p) = plumbing.as_mut() {
                        p.handle_notifications(Instant::now());
                    }
                }
                SIGNAL => {
                    let mut b = [0u8; 16];
                    let _ = signal_rx.read(&mut b);
                    info!("signal received, stopping");
                    if let Some(j) = journal.as_mut() {
                        j.flush(dp);
                    }
                    return Ok(());
                }
                other => warn!("event for unknown token {other:?}"),
            }
        }
        let mut out = Out {
            shell: &mut shell,
            capture,
            scratch: &mut scratch,
        };
        if tun_ready {
            tun_pending = drain(Source::Tun, io, dp, &mut buf, &mut out)?;
        }
        if overlay_ready {
            overlay_pending = drain(Source::Overlay, io, dp, &mut buf, &mut out)?;
        }
        if let Some(c) = capture.as_mut() {
            c.flush();
        }
        while let Ok(q) = queries.try_recv() {
            let _ = q
                .reply
                .send(answer::answer(dp, &q.request, &shell, programming));
        }
        // The API's changes (the watch wakes the loop), after the packets.
        if let Some(feed) = kube.as_mut() {
            changes_pending = feed.drain(dp, programming);
        }
        let now = Instant::now();
        dp.handle_timeout(now);
        // After the batch and the expiry sweep: one append per iteration.
        if let Some(j) = journal.as_mut() {
            j.flush(dp);
        }
        if let Some(p) = plumbing.as_mut() {
            p.poll(now);
            shell.routing_restored = p.restored();
        }
        if now >= next_stats {
            next_stats = now + STATS_EVERY;
            debug!(
                "stats: {:?}; {} flows; {:?}; routing restored {} times",
                dp.stats(),
                dp.conntrack().len(),
                shell,
                plumbing.as_ref().map_or(0, |p| p.restored())
            );
        }
    }
}

#[derive(Clone, Copy)]
enum Source {
    Tun,
    Overlay,
}

/// How a packet read from the TUN device came (its virtio-net header and
/// what it said), so that it is written back the same way; plain for
/// everything else.
#[derive(Clone, Copy)]
struct Wire {
    hdr: [u8; vnet::VNET_HDR_LEN],
    read_as: Offload,
}

impl Wire {
    const PLAIN: Self = Self {
        hdr: vnet::PLAIN,
        read_as: Offload {
            checksum: offload::L4Checksum::Full,
            gso: Gso::None,
        },
    };
}

/// Buffers the packet paths reuse: a GRO batch from the overlay, and the
/// segments of a super-packet for the overlay.
#[derive(Default)]
struct Scratch {
    gro: Vec<u8>,
    segments: Vec<u8>,
    /// TUN writes held back while the overlay is drained (offload only),
    /// to be coalesced into super-packets.
    tun_batch: tun_batch::TunBatch,
    /// Whether TUN writes go to `tun_batch` now.
    batching: bool,
}

/// Where handled packets' side effects go: counters, the capture, buffers.
struct Out<'a> {
    shell: &'a mut ShellStats,
    capture: &'a mut Option<Capture>,
    scratch: &'a mut Scratch,
}

/// Reads and handles up to [`BATCH`] reads from one source (a read from
/// the overlay may carry several datagrams, coalesced by UDP GRO). Returns
/// whether packets may be left (the budget ran out before `WouldBlock`).
/// With TUN offload, what the overlay brings for the TUN device is written
/// coalesced at the end ([`tun_batch`]).
fn drain(
    source: Source,
    io: &Io<'_>,
    dp: &mut Node,
    buf: &mut PacketBuf,
    out: &mut Out<'_>,
) -> Result<bool, RunError> {
    out.scratch.batching = matches!(source, Source::Overlay) && io.tun.offload();
    let result = drain_reads(source, io, dp, buf, out);
    out.scratch.batching = false;
    let flushed = flush_tun(io, out);
    let more = result?;
    flushed?;
    Ok(more)
}

/// Writes the held-back TUN packets.
fn flush_tun(io: &Io<'_>, out: &mut Out<'_>) -> Result<(), RunError> {
    let Err((n, e)) = out.scratch.tun_batch.flush(io.tun) else {
        return Ok(());
    };
    let shell = &mut *out.shell;
    // Which of the batch's writes failed is not known: count the batch.
    shell.tun_write_dropped += n.saturating_sub(1) as u64;
    settle(
        Some(&e),
        &mut shell.tun_write_dropped,
        &mut shell.tun_write_log,
        "writing to the TUN device",
    )
}

fn drain_reads(
    source: Source,
    io: &Io<'_>,
    dp: &mut Node,
    buf: &mut PacketBuf,
    out: &mut Out<'_>,
) -> Result<bool, RunError> {
    let now = Instant::now();
    let mut wire = Wire::PLAIN;
    for _ in 0..BATCH {
        let area = buf.recv_area();
        let read = match source {
            Source::Tun => io
                .tun
                .recv(&mut wire.hdr, area)
                .map(|n| (n, n, Ingress::Tun)),
            Source::Overlay => io.overlay.recv(area).map(|r| {
                let from = r.from.unwrap_or(Ipv4Addr::UNSPECIFIED);
                (r.len, r.stride, Ingress::Overlay { from })
            }),
        };
        let (n, stride, ingress) = match read {
            Ok(r) => r,
            Err(e) => match errors::classify(&e) {
                ErrorAction::Retry if e.kind() == ErrorKind::Interrupted => continue,
                ErrorAction::Retry => return Ok(false),
                // The overlay socket reports ICMP errors about earlier sends
                // (ECONNREFUSED from a peer without a router) on receive.
                ErrorAction::Count => {
                    let shell = &mut *out.shell;
                    let (count, log) = match source {
                        Source::Tun => (&mut shell.tun_read_errors, &mut shell.tun_read_log),
                        Source::Overlay => {
                            (&mut shell.overlay_recv_errors, &mut shell.overlay_recv_log)
                        }
                    };
                    *count += 1;
                    log.record(now, &e);
                    continue;
                }
                ErrorAction::Fatal => {
                    let what = match source {
                        Source::Tun => "reading the TUN device",
                        Source::Overlay => "reading the overlay socket",
                    };
                    return Err(RunError::Io { what, source: e });
                }
            },
        };
        buf.set_len(n);
        wire.read_as = Offload::default();
        if matches!(source, Source::Tun) && io.tun.offload() {
            match vnet::decode(&wire.hdr) {
                Ok(off) => wire.read_as = off,
                Err(vnet::UnsupportedGso(kind)) => {
                    debug!("dropping a TUN packet with GSO type {kind}");
                    out.shell.tun_offload_dropped += 1;
                    continue;
                }
            }
            buf.set_offload(wire.read_as);
        }
        if stride >= n {
            handle(io, dp, now, ingress, buf, wire, out)?;
            continue;
        }
        // Several datagrams coalesced by GRO: each is a packet of its own.
        let mut gro = std::mem::take(&mut out.scratch.gro);
        gro.clear();
        gro.extend_from_slice(buf.data());
        for datagram in gro.chunks(stride) {
            buf.recv_area()[..datagram.len()].copy_from_slice(datagram);
            buf.set_len(datagram.len());
            handle(io, dp, now, ingress, buf, Wire::PLAIN, out)?;
        }
        out.scratch.gro = gro;
    }
    Ok(true)
}

/// Hands one packet to the data plane and sends what comes out.
fn handle(
    io: &Io<'_>,
    dp: &mut Node,
    now: Instant,
    ingress: Ingress,
    buf: &mut PacketBuf,
    wire: Wire,
    out: &mut Out<'_>,
) -> Result<(), RunError> {
    if let Some(c) = out.capture.as_mut() {
        match ingress {
            Ingress::Tun => c.record(Point::TunIn, buf.data(), None, vnet::describe(wire.read_as)),
            Ingress::Overlay { from } => {
                c.record(
                    Point::OverlayIn,
                    buf.data(),
                    Some((from, io.underlay_ip, io.overlay_port)),
                    None,
                );
            }
            Ingress::Stack => {}
        }
    }
    if let Verdict::Forward(egress) = dp.handle_packet(now, ingress, buf) {
        send(io, egress, buf.data(), buf.offload(), wire, out)?;
    }
    while let Some(t) = dp.poll_transmit() {
        let plain = Offload::default();
        send(io, t.egress, &t.packet, plain, Wire::PLAIN, out)?;
    }
    Ok(())
}

/// Sends a packet the data plane forwarded. `offload` is what is left to
/// do to it and `wire` how it was read: a packet for the TUN device goes
/// back whole behind its virtio-net header; a super-packet for the overlay
/// is cut into segments here and sent with UDP GSO where the kernel has it.
fn send(
    io: &Io<'_>,
    egress: Egress,
    packet: &[u8],
    offload: Offload,
    wire: Wire,
    out: &mut Out<'_>,
) -> Result<(), RunError> {
    let shell = &mut *out.shell;
    match egress {
        // Delivered to an in-process pod by the `Node`: nothing to send.
        Egress::Stack { .. } => Ok(()),
        Egress::Tun => {
            if let Some(c) = out.capture.as_mut() {
                c.record(Point::TunOut, packet, None, vnet::describe(offload));
            }
            if out.scratch.batching && offload.is_none() {
                if out.scratch.tun_batch.push(packet) {
                    return flush_tun(io, out);
                }
                return Ok(());
            }
            let hdr = vnet::encode(offload, &wire.hdr, wire.read_as);
            let result = io.tun.send(&hdr, packet);
            settle(
                result.err().as_ref(),
                &mut shell.tun_write_dropped,
                &mut shell.tun_write_log,
                "writing to the TUN device",
            )
        }
        Egress::Overlay { to } if offload.gso != Gso::None => {
            let at = OVERLAY_HEADER_LEN.min(packet.len());
            let (header, inner) = packet.split_at(at);
            let segments = &mut out.scratch.segments;
            let Some(segs) = offload::segment(inner, offload.gso, header, segments) else {
                shell.overlay_send_dropped += 1;
                return Ok(());
            };
            io.overlay
                .send_segments(to, segments, segs, |datagram, err| {
                    if let Some(c) = out.capture.as_mut() {
                        let outer = Some((io.underlay_ip, to, io.overlay_port));
                        c.record(Point::OverlayOut, datagram, outer, None);
                    }
                    settle(
                        err,
                        &mut shell.overlay_send_dropped,
                        &mut shell.overlay_send_log,
                        "sending on the overlay socket",
                    )
                })
        }
        Egress::Overlay { to } => {
            if let Some(c) = out.capture.as_mut() {
                let outer = Some((io.underlay_ip, to, io.overlay_port));
                c.record(Point::OverlayOut, packet, outer, None);
            }
            let result = io.overlay.send(to, packet);
            settle(
                result.err().as_ref(),
                &mut shell.overlay_send_dropped,
                &mut shell.overlay_send_log,
                "sending on the overlay socket",
            )
        }
    }
}

/// What a failed send means: dropped and counted (logged at a bounded
/// rate when it is not just a full queue), or fatal.
fn settle(
    err: Option<&std::io::Error>,
    dropped: &mut u64,
    log: &mut RateLimitedLog,
    what: &'static str,
) -> Result<(), RunError> {
    let Some(e) = err else {
        return Ok(());
    };
    match errors::classify(e) {
        // The kernel queue is full for now: the packet is dropped, as a
        // full NIC queue would drop it; counted, not logged.
        ErrorAction::Retry => {
            *dropped += 1;
            Ok(())
        }
        // The peer unreachable, the packet refused by a firewall rule or
        // too big: count it, log it at a bounded rate, go on.
        ErrorAction::Count => {
            *dropped += 1;
            log.record(Instant::now(), e);
            Ok(())
        }
        // (The error is borrowed: one GSO send's error stands for all its
        // datagrams.)
        ErrorAction::Fatal => Err(RunError::Io {
            what,
            source: e.raw_os_error().map_or_else(
                || std::io::Error::new(e.kind(), e.to_string()),
                std::io::Error::from_raw_os_error,
            ),
        }),
    }
}
