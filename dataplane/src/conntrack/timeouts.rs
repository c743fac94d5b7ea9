//! How long a flow lives in each state: kube-proxy's and the Linux
//! kernel's timeouts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Entry, TcpState};
use crate::wire::packet::PROTO_UDP;

/// Per-state timeouts. Defaults are kube-proxy's and the Linux kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// TCP SYN sent, no answer yet (kernel: 120 s; here 30 s, see below).
    pub tcp_syn_sent: Duration,
    /// TCP SYN-ACK seen (kernel: 60 s; here 30 s).
    pub tcp_syn_recv: Duration,
    /// TCP established (kube-proxy `tcpEstablishedTimeout`: 24 h).
    pub tcp_established: Duration,
    /// TCP FIN seen from one side (kernel: 120 s).
    pub tcp_fin_wait: Duration,
    /// TCP FIN acknowledged, other side still open (kube-proxy
    /// `tcpCloseWaitTimeout`: 1 h).
    pub tcp_close_wait: Duration,
    /// TCP FIN from both sides (kernel: 30 s).
    pub tcp_last_ack: Duration,
    /// TCP closed cleanly (kernel: 120 s).
    pub tcp_time_wait: Duration,
    /// TCP reset (kernel: 10 s).
    pub tcp_close: Duration,
    /// UDP seen in one direction only (kernel: 30 s).
    pub udp: Duration,
    /// UDP seen both ways (kernel `udp_timeout_stream`: 120 s).
    pub udp_stream: Duration,
    /// ICMP (kernel: 30 s).
    pub icmp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            // Shorter than the kernel's 120 s / 60 s: a half-open entry
            // holds a slot (and a masquerade port) that a SYN flood from
            // spoofed sources would otherwise keep for minutes; the table
            // recovers within this after a flood. A real client's SYN
            // retransmissions (1, 3, 7, 15 s) refresh its entry.
            tcp_syn_sent: Duration::from_secs(30),
            tcp_syn_recv: Duration::from_secs(30),
            tcp_established: Duration::from_secs(24 * 3600),
            tcp_fin_wait: Duration::from_secs(120),
            tcp_close_wait: Duration::from_secs(3600),
            tcp_last_ack: Duration::from_secs(30),
            tcp_time_wait: Duration::from_secs(120),
            tcp_close: Duration::from_secs(10),
            udp: Duration::from_secs(30),
            udp_stream: Duration::from_secs(120),
            icmp: Duration::from_secs(30),
        }
    }
}

/// How long `entry` lives from its last packet.
pub(super) fn timeout_for(entry: &Entry, t: &Timeouts) -> Duration {
    match (entry.original.proto, entry.tcp) {
        (_, Some(state)) => match state {
            TcpState::SynSent => t.tcp_syn_sent,
            TcpState::SynRecv => t.tcp_syn_recv,
            TcpState::Established => t.tcp_established,
            TcpState::FinWait => t.tcp_fin_wait,
            TcpState::CloseWait => t.tcp_close_wait,
            TcpState::LastAck => t.tcp_last_ack,
            TcpState::TimeWait => t.tcp_time_wait,
            TcpState::Close => t.tcp_close,
        },
        (PROTO_UDP, None) if entry.replied => t.udp_stream,
        (PROTO_UDP, None) => t.udp,
        _ => t.icmp,
    }
}
