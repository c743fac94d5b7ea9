//! [`ShellStats`]: the counters the shell keeps beside the core's, and
//! the rate-limited logs of the errors they count.

use crate::shell::errors::RateLimitedLog;

/// Counters the shell keeps (the core's are in `Stats`).
#[derive(Debug)]
pub(super) struct ShellStats {
    pub(super) tun_name: String,
    pub(super) tun_write_dropped: u64,
    pub(super) overlay_send_dropped: u64,
    pub(super) tun_read_errors: u64,
    pub(super) tun_offload_dropped: u64,
    pub(super) overlay_recv_errors: u64,
    pub(super) routing_restored: u64,
    pub(super) tun_write_log: RateLimitedLog,
    pub(super) overlay_send_log: RateLimitedLog,
    pub(super) tun_read_log: RateLimitedLog,
    pub(super) overlay_recv_log: RateLimitedLog,
}

impl ShellStats {
    pub(super) fn new(tun_name: &str) -> Self {
        ShellStats {
            tun_name: tun_name.to_owned(),
            tun_write_dropped: 0,
            overlay_send_dropped: 0,
            tun_read_errors: 0,
            tun_offload_dropped: 0,
            overlay_recv_errors: 0,
            routing_restored: 0,
            tun_write_log: RateLimitedLog::new("writing to the TUN device"),
            overlay_send_log: RateLimitedLog::new("sending on the overlay socket"),
            tun_read_log: RateLimitedLog::new("reading the TUN device"),
            overlay_recv_log: RateLimitedLog::new("reading the overlay socket"),
        }
    }
}
