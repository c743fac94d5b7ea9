//! Worker 0: its queue's packets, and everything beside the packets.
//!
//! One `mio::Poll` over worker 0's TUN queue and overlay socket, the waker
//! (the control thread's questions, the watch, a stopping worker) and a
//! self-pipe for SIGINT/SIGTERM. Besides moving packets like every worker
//! ([`super::packets`]) it answers control questions, applies the
//! Kubernetes changes (at most 256 per turn), runs the core's timers,
//! writes the conntrack journal, flushes the capture and keeps the node's
//! routing, each turn. With other workers it wakes at least every
//! [`UPKEEP_TICK`]: the packets they move make journal records and
//! captures that must not wait for worker 0's own next packet.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::{Events, Poll, Token};

use super::control_server::Query;
use super::counters::ShellCounters;
use super::packets::{lock_capture, Packets, Ready, Shared};
use super::persist::{ConntrackJournal, JournalWrite};
use super::worker::{self, WAKER};
use super::{answer, kube, metrics, plumbing, RunError, STATS_EVERY};

/// The self-pipe of SIGINT/SIGTERM.
pub(super) const SIGNAL: Token = Token(2);
/// The netlink watch of the node's routing.
pub(super) const PLUMBING: Token = Token(4);

/// The longest worker 0 sleeps while other workers move packets.
const UPKEEP_TICK: Duration = Duration::from_millis(100);

/// Maglev tables built per idle turn after start-up: ~20 us each at 2039
/// slots, so the other workers wait at most ~0.3 ms for the core.
const WARM_UP_TABLES: usize = 16;

/// What the loop keeps up beside the packets: the node's routing plumbing,
/// the conntrack journal and, in Kubernetes mode, the API's changes.
pub(super) struct Upkeep {
    pub(super) plumbing: Option<plumbing::Plumbing>,
    pub(super) journal: Option<ConntrackJournal>,
    /// Programming-latency histograms (`/metrics`), observed per applied
    /// change.
    pub(super) programming: metrics::Programming,
    pub(super) kube: Option<kube::KubeFeed>,
}

/// Worker 0's inputs beside its packets.
pub(super) struct Inputs<'a> {
    pub(super) queries: &'a crossbeam_channel::Receiver<Query>,
    pub(super) signal_rx: &'a mut mio::net::UnixStream,
    /// The TUN device's name (its kernel counters, for `get stats`).
    pub(super) tun_name: &'a str,
    /// Raised when a worker stops.
    pub(super) stop: &'a AtomicBool,
    /// Whether other workers move packets too.
    pub(super) others: bool,
}

/// Runs worker 0 until SIGINT/SIGTERM or until another worker stops.
pub(super) fn run(
    poll: &mut Poll,
    packets: &mut Packets<'_>,
    shared: Shared<'_>,
    inputs: Inputs<'_>,
    upkeep: &mut Upkeep,
) -> Result<(), RunError> {
    let Upkeep {
        plumbing,
        journal,
        programming,
        kube,
    } = upkeep;
    let mut events = Events::with_capacity(64);
    let mut pending = Ready::default();
    let mut changes_pending = false;
    // Maglev tables the start-up left for later (see `Node::warm_up`).
    let mut tables_pending = true;
    let mut next_stats = Instant::now() + STATS_EVERY;
    loop {
        let now = Instant::now();
        let timeout = if pending.any() || changes_pending || tables_pending {
            Duration::ZERO
        } else {
            let mut core = shared.node.lock(&mut packets.lock);
            let mut deadline = core
                .node
                .poll_timeout()
                .map_or(next_stats, |t| t.min(next_stats));
            if let Some(p) = plumbing.as_ref() {
                deadline = deadline.min(p.poll_timeout());
            }
            if inputs.others {
                deadline = deadline.min(now + UPKEEP_TICK);
            }
            core.upkeep_deadline = Some(deadline);
            deadline.saturating_duration_since(now)
        };
        if !worker::wait(poll, &mut events, timeout)? {
            continue;
        }
        if inputs.stop.load(Ordering::Acquire) {
            // A worker stopped; `run_on` says why.
            flush_journal(shared, packets, journal);
            debug!("worker 0: core lock: {}", packets.lock);
            return Ok(());
        }
        let mut ready = pending;
        for event in &events {
            if worker::mark(&mut ready, event.token()) {
                continue;
            }
            match event.token() {
                WAKER => {}
                PLUMBING => {
                    if let Some(p) = plumbing.as_mut() {
                        p.handle_notifications(Instant::now());
                    }
                }
                SIGNAL => {
                    let mut b = [0u8; 16];
                    let _ = inputs.signal_rx.read(&mut b);
                    info!("signal received, stopping");
                    flush_journal(shared, packets, journal);
                    debug!("worker 0: core lock: {}", packets.lock);
                    return Ok(());
                }
                other => warn!("event for unknown token {other:?}"),
            }
        }
        pending = packets.drain_ready(ready)?;
        if let Some(c) = shared.capture {
            lock_capture(c).flush();
        }
        let now = Instant::now();
        let write = {
            let mut core = shared.node.lock(&mut packets.lock);
            while let Ok(q) = inputs.queries.try_recv() {
                let reply =
                    answer::answer(&mut core.node, &q.request, inputs.tun_name, shared.counters);
                let _ = q.reply.send(reply);
            }
            // The API's changes (the watch wakes the loop), after the packets.
            if let Some(feed) = kube.as_mut() {
                changes_pending = feed.drain(&mut core.node, programming);
            }
            let now = core.now(now);
            core.node.handle_timeout(now);
            // Idle: build a few of the tables the start-up deferred, so
            // that they are ready before their Services' first packets.
            // A few per turn keeps the lock short for the other workers.
            if !(pending.any() || changes_pending) {
                tables_pending = core.node.warm_up(WARM_UP_TABLES) > 0;
            }
            // After the batch and the expiry sweep: one append per turn,
            // written after the lock.
            journal.as_mut().map(|j| j.collect(&mut core.node))
        };
        if let (Some(j), Some(w)) = (journal.as_mut(), write) {
            j.write(w);
        }
        if let Some(p) = plumbing.as_mut() {
            p.poll(now);
            shared
                .counters
                .routing_restored
                .store(p.restored(), Ordering::Relaxed);
        }
        if now >= next_stats {
            next_stats = now + STATS_EVERY;
            log_stats(shared, packets, shared.counters);
        }
    }
}

/// Writes the journal's last changes before the router stops.
fn flush_journal(
    shared: Shared<'_>,
    packets: &mut Packets<'_>,
    journal: &mut Option<ConntrackJournal>,
) {
    if let Some(j) = journal.as_mut() {
        let write: JournalWrite = j.collect(&mut shared.node.lock(&mut packets.lock).node);
        j.write(write);
    }
}

fn log_stats(shared: Shared<'_>, packets: &mut Packets<'_>, counters: &ShellCounters) {
    let (stats, flows) = {
        let core = shared.node.lock(&mut packets.lock);
        (core.node.stats().clone(), core.node.conntrack().len())
    };
    debug!("stats: {stats:?}; {flows} flows; {counters:?}");
    debug!("worker 0: core lock: {}", packets.lock);
}
