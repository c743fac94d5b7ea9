//! The one `Node` every worker shares ([`SharedNode`]), behind one lock.
//!
//! The two directions of a flow may come in on different TUN queues or
//! overlay sockets (after DNAT the reply's tuple hashes elsewhere), so
//! every worker must find every conntrack entry and see the same Service
//! tables. The router spends ~91% of its time in syscalls and ~5% in its
//! own code (bench/README.md), so the workers do their syscalls in
//! parallel and take the lock only around the core's work on one packet
//! (tens to hundreds of nanoseconds): a sharded core would buy little and
//! would make the sans-IO core aware of threads. See bench/README.md,
//! "Multi-queue".

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use dataplane::node::Node;

/// The node and what the workers agree on about it.
pub(super) struct Core {
    /// The data plane.
    pub(super) node: Node,
    /// The latest time any worker handed the core: workers read the clock
    /// before they take the lock, so their `now`s can arrive out of order;
    /// the core only ever sees time go forward.
    now: Instant,
    /// When worker 0 (the upkeep) wakes next for the core's timers; a
    /// worker that makes an earlier deadline (a packet for a router-hosted
    /// pod arms its timers) wakes it.
    pub(super) upkeep_deadline: Option<Instant>,
}

impl Core {
    /// `now`, or the latest time the core has seen if that is later.
    pub(super) fn now(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }
}

/// The node behind its lock.
pub(super) struct SharedNode {
    core: Mutex<Core>,
}

impl SharedNode {
    pub(super) fn new(node: Node, now: Instant) -> Self {
        SharedNode {
            core: Mutex::new(Core {
                node,
                now,
                upkeep_deadline: None,
            }),
        }
    }

    /// Takes the lock, counting in `stats` whether it had to wait and, for
    /// one acquisition in [`LockStats::SAMPLE`], how long it was held.
    pub(super) fn lock<'a>(&'a self, stats: &'a mut LockStats) -> Locked<'a> {
        stats.acquired += 1;
        let guard = match self.core.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) => {
                let start = Instant::now();
                // A worker that panicked while holding the lock stops the
                // router (see `worker::StopOnExit`); until then the node
                // is used as it is.
                let g = self.core.lock().unwrap_or_else(PoisonError::into_inner);
                stats.contended += 1;
                stats.waited += start.elapsed();
                g
            }
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        let since = stats
            .acquired
            .is_multiple_of(LockStats::SAMPLE)
            .then(Instant::now);
        Locked {
            guard,
            stats,
            since,
        }
    }
}

/// The node, locked.
pub(super) struct Locked<'a> {
    guard: MutexGuard<'a, Core>,
    stats: &'a mut LockStats,
    since: Option<Instant>,
}

impl Deref for Locked<'_> {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.guard
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Core {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Some(since) = self.since {
            let held = since.elapsed();
            self.stats.sampled += 1;
            self.stats.held += held;
            self.stats.held_max = self.stats.held_max.max(held);
        }
    }
}

/// How one worker fared with the lock (logged at debug every minute and
/// at exit): how often it took it, how often it had to wait and for how
/// long, and how long it held it (sampled).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct LockStats {
    pub(super) acquired: u64,
    pub(super) contended: u64,
    pub(super) waited: Duration,
    pub(super) sampled: u64,
    pub(super) held: Duration,
    pub(super) held_max: Duration,
}

impl LockStats {
    /// One acquisition in this many is timed (two clock reads).
    pub(super) const SAMPLE: u64 = 64;
}

impl std::fmt::Display for LockStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |n: u64| 100.0 * n as f64 / self.acquired.max(1) as f64;
        let mean = |d: Duration, n: u64| d.as_nanos() as u64 / n.max(1);
        write!(
            f,
            "{} acquisitions, {} contended ({:.2}%, mean wait {} ns), held mean {} ns max {} ns ({} sampled)",
            self.acquired,
            self.contended,
            pct(self.contended),
            mean(self.waited, self.contended),
            mean(self.held, self.sampled),
            self.held_max.as_nanos(),
            self.sampled
        )
    }
}

#[cfg(test)]
mod tests;
