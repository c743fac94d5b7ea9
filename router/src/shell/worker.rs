//! The workers beside worker 0 (`router run --queues N`): each owns one
//! TUN queue and one overlay socket of the `SO_REUSEPORT` group, polls
//! them on its own thread and only moves packets. Timers, the Kubernetes
//! changes, control questions, the journal and the capture's flushes stay
//! with worker 0 ([`super::upkeep`]).
//!
//! A worker that stops (an error, a panic) stops the router: it raises
//! the shared stop flag and wakes worker 0, which wakes the others, and
//! `router run` returns the first error (the supervisor starts a new
//! router, as it would after any fatal error).

use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::debug;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use super::overlay_socket::OverlaySocket;
use super::packets::{Io, Packets, Ready, Shared};
use super::tun::Tun;
use super::{io_err, RunError, STATS_EVERY};

/// The poller's tokens, the same in every worker.
pub(super) const TUN: Token = Token(0);
/// The waker: control questions and the watch (worker 0), the stop flag.
pub(super) const WAKER: Token = Token(1);
pub(super) const OVERLAY: Token = Token(3);

/// One more queue's worker, set up on the main thread (so that a failure
/// stops `router run` before any packet moves) and moved to its own.
pub(super) struct Queue {
    poll: Poll,
    /// Wakes the worker (to stop it).
    pub(super) waker: Arc<Waker>,
    tun: Tun,
    overlay: OverlaySocket,
}

impl Queue {
    pub(super) fn new(tun: Tun, mut overlay: OverlaySocket) -> Result<Self, RunError> {
        let poll = Poll::new().map_err(io_err("creating a worker's poller"))?;
        register(&poll, &tun, &mut overlay)?;
        let waker = Waker::new(poll.registry(), WAKER).map_err(io_err("creating the waker"))?;
        Ok(Queue {
            poll,
            waker: Arc::new(waker),
            tun,
            overlay,
        })
    }
}

/// Registers one worker's TUN queue and overlay socket with its poller.
pub(super) fn register(
    poll: &Poll,
    tun: &Tun,
    overlay: &mut OverlaySocket,
) -> Result<(), RunError> {
    poll.registry()
        .register(&mut SourceFd(&tun.as_raw_fd()), TUN, Interest::READABLE)
        .map_err(io_err("registering the TUN device"))?;
    poll.registry()
        .register(overlay.socket_mut(), OVERLAY, Interest::READABLE)
        .map_err(io_err("registering the overlay socket"))
}

/// What every worker needs to know beside its queue.
#[derive(Clone, Copy)]
pub(super) struct Context<'a> {
    pub(super) shared: Shared<'a>,
    pub(super) overlay_port: u16,
    pub(super) underlay_ip: Ipv4Addr,
    /// Raised when the router stops.
    pub(super) stop: &'a AtomicBool,
    /// Worker 0's waker.
    pub(super) upkeep: &'a Waker,
}

/// Raises the stop flag and wakes worker 0 when a worker ends, however it
/// ends (an unwinding panic too).
struct StopOnExit<'a>(&'a Context<'a>);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Release);
        let _ = self.0.upkeep.wake();
    }
}

/// Waits for events (at most `timeout`); `false` if a signal interrupted
/// the wait, to be retried.
pub(super) fn wait(
    poll: &mut Poll,
    events: &mut Events,
    timeout: Duration,
) -> Result<bool, RunError> {
    match poll.poll(events, Some(timeout)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(io_err("polling")(e)),
    }
}

/// Records a packet source's event in `ready`; `false` for other tokens.
pub(super) fn mark(ready: &mut Ready, token: Token) -> bool {
    match token {
        TUN => ready.tun = true,
        OVERLAY => ready.overlay = true,
        _ => return false,
    }
    true
}

/// Runs worker `index` until the router stops.
pub(super) fn run(index: usize, queue: Queue, cx: &Context<'_>) -> Result<(), RunError> {
    let _stop = StopOnExit(cx);
    let Queue {
        mut poll,
        tun,
        overlay,
        waker: _,
    } = queue;
    let io = Io {
        tun: &tun,
        overlay: &overlay,
        overlay_port: cx.overlay_port,
        underlay_ip: cx.underlay_ip,
    };
    let mut packets = Packets::new(io, cx.shared, Some(cx.upkeep));
    let mut events = Events::with_capacity(64);
    let mut pending = Ready::default();
    let mut next_stats = Instant::now() + STATS_EVERY;
    loop {
        let now = Instant::now();
        let timeout = if pending.any() {
            Duration::ZERO
        } else {
            next_stats.saturating_duration_since(now)
        };
        if !wait(&mut poll, &mut events, timeout)? {
            continue;
        }
        if cx.stop.load(Ordering::Acquire) {
            debug!("worker {index}: core lock: {}", packets.lock);
            return Ok(());
        }
        let mut ready = pending;
        for event in &events {
            mark(&mut ready, event.token());
        }
        pending = packets.drain_ready(ready)?;
        if now >= next_stats {
            next_stats = now + STATS_EVERY;
            debug!("worker {index}: core lock: {}", packets.lock);
        }
    }
}
