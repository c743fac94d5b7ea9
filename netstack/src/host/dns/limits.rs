//! What bounds the DNS server's TCP side, so that nobody outside can grow
//! the host: a cap on connections, timeouts for half-open and idle ones,
//! small buffers, and the counters that show them at work.
//!
//! The router serves the cluster DNS in process, so a SYN flood to a
//! kube-dns pod's TCP port lands here: without a cap, 20,000 spoofed SYNs
//! held 20,000 sockets with 32 KiB of buffers each. Now at most
//! [`MAX_TCP_CONNS`] connections (half-open or open) plus the listening
//! sockets exist per server; a SYN beyond the cap evicts the oldest
//! half-open connection (a flood's spoofed SYNs never complete, so they are
//! what goes, as Linux's SYN queue drops its oldest entries), and when
//! every slot holds an established connection new SYNs are refused (RST).

use std::net::SocketAddrV4;
use std::time::Duration;

use smoltcp::socket::tcp;
use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket};

use super::conn::Phase;
use super::DnsServer;
use crate::host::VirtualHost;

/// Connections (half-open or established) one DNS server holds at most.
pub const MAX_TCP_CONNS: usize = 256;
/// A connection still in the handshake this long after its SYN is dropped.
pub const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection with no query for this long is closed (CoreDNS's default
/// `tcp idle timeout` is 10 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// smoltcp's own timeout on the server's sockets (no packet from the peer
/// for this long aborts): longer than the timeouts above, so that they
/// decide (and are counted); it still ends a connection we closed whose
/// peer went away.
pub(super) const SOCKET_TIMEOUT: Duration = Duration::from_secs(15);
/// Receive buffer of a connection: queries are typically under 512 bytes;
/// a larger one arrives in several windows.
pub(super) const RX_BUFFER: usize = 1024;
/// Send buffer of a connection: answers larger than this are fed to the
/// socket as it drains.
pub(super) const TX_BUFFER: usize = 4096;
/// Received bytes a connection holds before it stops reading (one whole
/// largest message with its length prefix): the rest waits in the peer,
/// held back by TCP flow control.
pub(super) const MAX_INPUT: usize = 2 + 65535;
/// Answer bytes a connection holds before it stops answering: a client
/// that pipelines queries and never reads its answers gets no more.
pub(super) const MAX_PENDING_OUTPUT: usize = 16 * 1024;

/// The DNS server's TCP connections and what the bounds did to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsTcpStats {
    /// Listening sockets (waiting for a SYN).
    pub listening: usize,
    /// Connections in the handshake (SYN received, no ACK yet).
    pub half_open: usize,
    /// Established connections (and those closing).
    pub open: usize,
    /// SYNs refused because every slot held an established connection.
    pub refused: u64,
    /// Half-open connections dropped to make room for a new SYN.
    pub evicted: u64,
    /// Half-open connections dropped after [`HALF_OPEN_TIMEOUT`].
    pub expired_half_open: u64,
    /// Connections closed after [`IDLE_TIMEOUT`] without a query.
    pub expired_idle: u64,
}

impl std::ops::Add for DnsTcpStats {
    type Output = DnsTcpStats;

    fn add(self, other: DnsTcpStats) -> DnsTcpStats {
        DnsTcpStats {
            listening: self.listening + other.listening,
            half_open: self.half_open + other.half_open,
            open: self.open + other.open,
            refused: self.refused + other.refused,
            evicted: self.evicted + other.evicted,
            expired_half_open: self.expired_half_open + other.expired_half_open,
            expired_idle: self.expired_idle + other.expired_idle,
        }
    }
}

/// A router's figures are the sum over its hosted DNS pods.
impl std::iter::Sum for DnsTcpStats {
    fn sum<I: Iterator<Item = DnsTcpStats>>(iter: I) -> DnsTcpStats {
        iter.fold(DnsTcpStats::default(), |a, b| a + b)
    }
}

impl DnsServer {
    /// The connection counts and counters.
    pub(super) fn stats(&self) -> DnsTcpStats {
        let mut stats = self.counters;
        for conn in &self.conns {
            match conn.phase {
                Phase::Listening => stats.listening += 1,
                Phase::HalfOpen => stats.half_open += 1,
                Phase::Open => stats.open += 1,
            }
        }
        stats
    }

    /// Established connections.
    pub(super) fn open_conns(&self) -> usize {
        self.conns.iter().filter(|c| c.phase == Phase::Open).count()
    }

    /// Evicts the oldest half-open connections while there are more than
    /// [`MAX_TCP_CONNS`]. Returns whether any went.
    pub(super) fn enforce_cap(&mut self) -> bool {
        let mut held = self
            .conns
            .iter()
            .filter(|c| c.phase != Phase::Listening && c.end.is_none())
            .count();
        let mut evicted = false;
        while held > MAX_TCP_CONNS {
            let oldest = self
                .conns
                .iter_mut()
                .filter(|c| c.phase == Phase::HalfOpen && c.end.is_none())
                .min_by_key(|c| c.since);
            let Some(conn) = oldest else {
                // Every one is established: new SYNs are refused instead
                // (no listening socket is kept, see `replenish`).
                break;
            };
            conn.drop_now();
            self.counters.evicted += 1;
            held -= 1;
            evicted = true;
        }
        evicted
    }
}

impl VirtualHost {
    /// Looks at a packet before smoltcp does: counts a SYN to a DNS port
    /// that no socket will take (smoltcp answers it with a RST).
    pub(in crate::host) fn admit(&mut self, packet: &[u8]) {
        let Some(server) = self.dns.as_mut() else {
            return;
        };
        let Ok(ip) = Ipv4Packet::new_checked(packet) else {
            return;
        };
        if ip.next_header() != IpProtocol::Tcp || ip.dst_addr() != self.config.ip {
            return;
        }
        let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
            return;
        };
        let port = tcp.dst_port();
        if !tcp.syn() || tcp.ack() || !server.ports.contains(&port) {
            return;
        }
        let from = SocketAddrV4::new(ip.src_addr(), tcp.src_port());
        let sockets = &self.sockets;
        let taken = server.conns.iter().any(|c| {
            let socket = sockets.get::<tcp::Socket>(c.handle);
            c.port == port
                && c.end.is_none()
                && (socket.is_listening() || socket.remote_endpoint() == Some(from.into()))
        });
        if !taken {
            server.counters.refused += 1;
        }
    }
}
