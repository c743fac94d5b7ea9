//! The packet loop's answers to the questions the control thread passes
//! on (conntrack chunks, counters).

use std::time::Instant;

use crate::protocol::{Request, Response};
use dataplane::node::Node;

use super::counters::{read, ShellCounters};

/// The kernel's count of packets dropped at the TUN device's transmit
/// queue (towards the router), from sysfs; 0 if unreadable.
fn tun_queue_dropped(tun: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{tun}/statistics/tx_dropped"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub(super) fn answer(
    dp: &mut Node,
    request: &Request,
    tun_name: &str,
    shell: &ShellCounters,
) -> Response {
    match request {
        Request::ConntrackChunk { from, max } => {
            let (records, next) = dp.conntrack_records(Instant::now(), *from, *max);
            Response::Conntrack {
                records,
                next,
                capacity: dp.conntrack().capacity(),
            }
        }
        Request::Stats => {
            let mut stats = dp.stats_snapshot();
            stats.tun_read_errors = read(&shell.tun_read_errors);
            stats.tun_offload_dropped = read(&shell.tun_offload_dropped);
            stats.tun_segments_coalesced = read(&shell.tun_segments_coalesced);
            stats.overlay_recv_errors = read(&shell.overlay_recv_errors);
            stats.routing_restored = read(&shell.routing_restored);
            stats.tun_write_dropped = read(&shell.tun_write_dropped);
            stats.overlay_send_dropped = read(&shell.overlay_send_dropped);
            stats.tun_queue_dropped = tun_queue_dropped(tun_name);
            Response::Stats {
                stats,
                flows: dp.conntrack().len(),
            }
        }
        Request::State | Request::Conntrack => {
            Response::Error(crate::protocol::ProtocolError::Misrouted)
        }
    }
}
