//! The counters the shell keeps beside the core's: [`ShellCounters`],
//! shared by every worker (each adds to them, so `get stats` and
//! `/metrics` show the sums), and [`ShellLogs`], the rate-limited logs of
//! the errors they count, one set per worker.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::shell::errors::RateLimitedLog;

/// Counters the shell keeps (the core's are in `Stats`). They move only
/// on errors and drops, or once per TUN batch, so one shared set costs
/// the packet path nothing.
#[derive(Debug, Default)]
pub(super) struct ShellCounters {
    pub(super) tun_write_dropped: AtomicU64,
    pub(super) overlay_send_dropped: AtomicU64,
    pub(super) tun_read_errors: AtomicU64,
    pub(super) tun_offload_dropped: AtomicU64,
    pub(super) tun_segments_coalesced: AtomicU64,
    pub(super) overlay_recv_errors: AtomicU64,
    pub(super) routing_restored: AtomicU64,
}

/// Adds `n` to counter `c`.
pub(super) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Reads counter `c`.
pub(super) fn read(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// One worker's rate-limited error logs.
#[derive(Debug)]
pub(super) struct ShellLogs {
    pub(super) tun_write: RateLimitedLog,
    pub(super) overlay_send: RateLimitedLog,
    pub(super) tun_read: RateLimitedLog,
    pub(super) overlay_recv: RateLimitedLog,
}

impl ShellLogs {
    pub(super) fn new() -> Self {
        ShellLogs {
            tun_write: RateLimitedLog::new("writing to the TUN device"),
            overlay_send: RateLimitedLog::new("sending on the overlay socket"),
            tun_read: RateLimitedLog::new("reading the TUN device"),
            overlay_recv: RateLimitedLog::new("reading the overlay socket"),
        }
    }
}
