//! One worker's packet path: reads from its TUN queue or its overlay
//! socket, the shared core's verdict, writes.
//!
//! Each read is drained until `WouldBlock`, at most [`BATCH`] reads at a
//! time so that control questions and timers are never starved; a packet
//! buffer of 64 KiB is allocated once per worker. The core's lock is held
//! only while the core handles one packet (and hands over what it wants
//! sent): every read, write and send happens outside it, so the workers'
//! syscalls, nine tenths of the router's time, run in parallel.
//!
//! With TUN offload (`--offload on`, the default) the kernel hands over
//! TCP super-packets of up to 64 KiB with partial checksums: each is read
//! once, NATed once by the core (the offload state travels in the
//! `PacketBuf`, see [`super::vnet`]) and written back whole behind its
//! virtio-net header; one bound for another node is cut into MSS-sized
//! segments with full checksums before it goes out on the overlay.

use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use log::debug;
use mio::Waker;

use dataplane::buf::PacketBuf;
use dataplane::engine::{Egress, Ingress, Transmit, Verdict};
use dataplane::overlay::OVERLAY_HEADER_LEN;
use dataplane::wire::offload::{self, Gso, Offload};

use super::capture::{Capture, Point};
use super::counters::{add, ShellCounters, ShellLogs};
use super::errors::{self, ErrorAction, RateLimitedLog};
use super::overlay_socket::OverlaySocket;
use super::shared::{LockStats, SharedNode};
use super::tun::Tun;
use super::{tun_batch, vnet, RunError};

/// Packets handled per readiness before other events get a turn.
const BATCH: usize = 256;

/// Where packets come from.
#[derive(Clone, Copy)]
pub(super) enum Source {
    Tun,
    Overlay,
}

/// Which of a worker's two sources have packets to read: those the poll
/// reported, and those a drain left (its budget ran out first).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Ready {
    pub(super) tun: bool,
    pub(super) overlay: bool,
}

impl Ready {
    /// Whether either source has packets left.
    pub(super) fn any(self) -> bool {
        self.tun || self.overlay
    }
}

/// One worker's file descriptors: its TUN queue and its overlay socket.
#[derive(Clone, Copy)]
pub(super) struct Io<'a> {
    pub(super) tun: &'a Tun,
    pub(super) overlay: &'a OverlaySocket,
    pub(super) overlay_port: u16,
    pub(super) underlay_ip: Ipv4Addr,
}

/// What all workers share: the core, the shell's counters, the capture.
#[derive(Clone, Copy)]
pub(super) struct Shared<'a> {
    pub(super) node: &'a SharedNode,
    pub(super) counters: &'a ShellCounters,
    pub(super) capture: Option<&'a Mutex<Capture>>,
}

/// Locks the capture (a worker that panicked while writing it stops the
/// router; the file is written on as it is until then).
pub(super) fn lock_capture(c: &Mutex<Capture>) -> MutexGuard<'_, Capture> {
    c.lock().unwrap_or_else(PoisonError::into_inner)
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

/// Buffers the packet paths reuse: the segments of a super-packet for the
/// overlay, what the core wants sent, TUN writes held back.
#[derive(Default)]
struct Scratch {
    segments: Vec<u8>,
    /// The core's own packets, taken under the lock, sent after it.
    transmits: Vec<Transmit>,
    /// TUN writes held back while the overlay is drained (offload only),
    /// to be coalesced into super-packets.
    tun_batch: tun_batch::TunBatch,
    /// Whether TUN writes go to `tun_batch` now.
    batching: bool,
}

/// Where handled packets' side effects go: counters, the capture, buffers.
struct Out<'a> {
    io: Io<'a>,
    shared: Shared<'a>,
    logs: ShellLogs,
    scratch: Scratch,
}

/// One worker's packet path.
pub(super) struct Packets<'a> {
    out: Out<'a>,
    buf: PacketBuf,
    /// The other packet buffer: a read from the overlay that UDP GRO
    /// coalesced is swapped into it (no copy) while its datagrams are
    /// handled one by one in `buf`. `None` only during that swap.
    spare: Option<PacketBuf>,
    /// How this worker fared with the core's lock.
    pub(super) lock: LockStats,
    /// Worker 0's waker, for the other workers: a packet that arms an
    /// earlier timer in the core wakes the upkeep.
    upkeep: Option<&'a Waker>,
}

impl<'a> Packets<'a> {
    pub(super) fn new(io: Io<'a>, shared: Shared<'a>, upkeep: Option<&'a Waker>) -> Self {
        Packets {
            out: Out {
                io,
                shared,
                logs: ShellLogs::new(),
                scratch: Scratch::default(),
            },
            buf: PacketBuf::new(),
            spare: Some(PacketBuf::new()),
            lock: LockStats::default(),
            upkeep,
        }
    }

    /// Drains the sources in `ready`; returns those with packets left.
    pub(super) fn drain_ready(&mut self, ready: Ready) -> Result<Ready, RunError> {
        let mut left = Ready::default();
        if ready.tun {
            left.tun = self.drain(Source::Tun)?;
        }
        if ready.overlay {
            left.overlay = self.drain(Source::Overlay)?;
        }
        Ok(left)
    }

    /// Reads and handles up to [`BATCH`] reads from one source (a read
    /// from the overlay may carry several datagrams, coalesced by UDP GRO).
    /// Returns whether packets may be left (the budget ran out before
    /// `WouldBlock`). With TUN offload, what the overlay brings for the
    /// TUN device is written coalesced at the end ([`tun_batch`]).
    fn drain(&mut self, source: Source) -> Result<bool, RunError> {
        self.out.scratch.batching = matches!(source, Source::Overlay) && self.out.io.tun.offload();
        let result = self.drain_reads(source);
        self.out.scratch.batching = false;
        let flushed = flush_tun(&mut self.out);
        let more = result?;
        flushed?;
        Ok(more)
    }

    fn drain_reads(&mut self, source: Source) -> Result<bool, RunError> {
        let now = Instant::now();
        let mut wire = Wire::PLAIN;
        let io = self.out.io;
        for _ in 0..BATCH {
            let area = self.buf.recv_area();
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
                    // The overlay socket reports ICMP errors about earlier
                    // sends (ECONNREFUSED from a peer without a router) on
                    // receive.
                    ErrorAction::Count => {
                        let (counters, logs) = (self.out.shared.counters, &mut self.out.logs);
                        let (count, log) = match source {
                            Source::Tun => (&counters.tun_read_errors, &mut logs.tun_read),
                            Source::Overlay => {
                                (&counters.overlay_recv_errors, &mut logs.overlay_recv)
                            }
                        };
                        add(count, 1);
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
            self.buf.set_len(n);
            wire.read_as = Offload::default();
            if matches!(source, Source::Tun) && io.tun.offload() {
                match vnet::decode(&wire.hdr) {
                    Ok(off) => wire.read_as = off,
                    Err(vnet::UnsupportedGso(kind)) => {
                        debug!("dropping a TUN packet with GSO type {kind}");
                        add(&self.out.shared.counters.tun_offload_dropped, 1);
                        continue;
                    }
                }
                self.buf.set_offload(wire.read_as);
            }
            if stride >= n {
                self.handle(now, ingress, wire)?;
                continue;
            }
            // Several datagrams coalesced by GRO: each is a packet of its
            // own. The batch moves to the spare buffer (a swap, not a copy)
            // and each datagram is copied once into `buf`, where the core
            // takes its headers off.
            let spare = self.spare.take().unwrap_or_default();
            let batch = std::mem::replace(&mut self.buf, spare);
            let result = batch.data().chunks(stride).try_for_each(|datagram| {
                self.buf.recv_area()[..datagram.len()].copy_from_slice(datagram);
                self.buf.set_len(datagram.len());
                self.handle(now, ingress, Wire::PLAIN)
            });
            self.spare = Some(batch);
            result?;
        }
        Ok(true)
    }

    /// Hands one packet to the core (under its lock) and sends what comes
    /// out (after it).
    fn handle(&mut self, now: Instant, ingress: Ingress, wire: Wire) -> Result<(), RunError> {
        let out = &mut self.out;
        if let Some(c) = out.shared.capture {
            let mut c = lock_capture(c);
            match ingress {
                Ingress::Tun => c.record(
                    Point::TunIn,
                    self.buf.data(),
                    None,
                    vnet::describe(wire.read_as),
                ),
                Ingress::Overlay { from } => {
                    let outer = Some((from, out.io.underlay_ip, out.io.overlay_port));
                    c.record(Point::OverlayIn, self.buf.data(), outer, None);
                }
                Ingress::Stack => {}
            }
        }
        let mut transmits = std::mem::take(&mut out.scratch.transmits);
        let (verdict, wake) = {
            let mut core = out.shared.node.lock(&mut self.lock);
            let now = core.now(now);
            let verdict = core.node.handle_packet(now, ingress, &mut self.buf);
            transmits.extend(std::iter::from_fn(|| core.node.poll_transmit()));
            // Delivered to a router-hosted pod: its timers may now be due
            // before the upkeep wakes.
            let wake = self.upkeep.is_some()
                && matches!(verdict, Verdict::Forward(Egress::Stack { .. }))
                && earlier_than_upkeep(&mut core);
            (verdict, wake)
        };
        if wake {
            if let Some(w) = self.upkeep {
                let _ = w.wake();
            }
        }
        let mut result = Ok(());
        if let Verdict::Forward(egress) = verdict {
            result = send(out, egress, self.buf.data(), self.buf.offload(), wire);
        }
        for t in transmits.drain(..) {
            if result.is_ok() {
                result = send(out, t.egress, &t.packet, Offload::default(), Wire::PLAIN);
            }
        }
        out.scratch.transmits = transmits;
        result
    }
}

/// Whether the core's next deadline comes before the upkeep's; if so, it
/// becomes the upkeep's (so that one wake is enough).
fn earlier_than_upkeep(core: &mut super::shared::Core) -> bool {
    let Some(next) = core.node.poll_timeout() else {
        return false;
    };
    if core.upkeep_deadline.is_some_and(|d| d <= next) {
        return false;
    }
    core.upkeep_deadline = Some(next);
    true
}

/// Writes the held-back TUN packets.
fn flush_tun(out: &mut Out<'_>) -> Result<(), RunError> {
    let flushed = out.scratch.tun_batch.flush(out.io.tun);
    let merged = out.scratch.tun_batch.take_merged();
    if merged > 0 {
        add(&out.shared.counters.tun_segments_coalesced, merged);
    }
    let Err((n, e)) = flushed else {
        return Ok(());
    };
    let dropped = &out.shared.counters.tun_write_dropped;
    // Which of the batch's writes failed is not known: count the batch.
    add(dropped, n.saturating_sub(1) as u64);
    settle(
        Some(&e),
        dropped,
        &mut out.logs.tun_write,
        "writing to the TUN device",
    )
}

/// Sends a packet the data plane forwarded. `offload` is what is left to
/// do to it and `wire` how it was read: a packet for the TUN device goes
/// back whole behind its virtio-net header; a super-packet for the overlay
/// is cut into segments here and sent with UDP GSO where the kernel has it.
fn send(
    out: &mut Out<'_>,
    egress: Egress,
    packet: &[u8],
    offload: Offload,
    wire: Wire,
) -> Result<(), RunError> {
    let io = &out.io;
    let counters = out.shared.counters;
    match egress {
        // Delivered to an in-process pod by the `Node`: nothing to send.
        Egress::Stack { .. } => Ok(()),
        Egress::Tun => {
            if let Some(c) = out.shared.capture {
                lock_capture(c).record(Point::TunOut, packet, None, vnet::describe(offload));
            }
            if out.scratch.batching && offload.is_none() {
                if out.scratch.tun_batch.push(packet) {
                    return flush_tun(out);
                }
                return Ok(());
            }
            let hdr = vnet::encode(offload, &wire.hdr, wire.read_as);
            let result = io.tun.send(&hdr, packet);
            settle(
                result.err().as_ref(),
                &counters.tun_write_dropped,
                &mut out.logs.tun_write,
                "writing to the TUN device",
            )
        }
        Egress::Overlay { to } if offload.gso != Gso::None => {
            let at = OVERLAY_HEADER_LEN.min(packet.len());
            let (header, inner) = packet.split_at(at);
            let segments = &mut out.scratch.segments;
            let Some(segs) = offload::segment(inner, offload.gso, header, segments) else {
                add(&counters.overlay_send_dropped, 1);
                return Ok(());
            };
            let (capture, log) = (out.shared.capture, &mut out.logs.overlay_send);
            io.overlay
                .send_segments(to, segments, segs, |datagram, err| {
                    if let Some(c) = capture {
                        let outer = Some((io.underlay_ip, to, io.overlay_port));
                        lock_capture(c).record(Point::OverlayOut, datagram, outer, None);
                    }
                    settle(
                        err,
                        &counters.overlay_send_dropped,
                        log,
                        "sending on the overlay socket",
                    )
                })
        }
        Egress::Overlay { to } => {
            if let Some(c) = out.shared.capture {
                let outer = Some((io.underlay_ip, to, io.overlay_port));
                lock_capture(c).record(Point::OverlayOut, packet, outer, None);
            }
            let result = io.overlay.send(to, packet);
            settle(
                result.err().as_ref(),
                &counters.overlay_send_dropped,
                &mut out.logs.overlay_send,
                "sending on the overlay socket",
            )
        }
    }
}

/// What a failed send means: dropped and counted (logged at a bounded
/// rate when it is not just a full queue), or fatal.
fn settle(
    err: Option<&std::io::Error>,
    dropped: &std::sync::atomic::AtomicU64,
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
            add(dropped, 1);
            Ok(())
        }
        // The peer unreachable, the packet refused by a firewall rule or
        // too big: count it, log it at a bounded rate, go on.
        ErrorAction::Count => {
            add(dropped, 1);
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
