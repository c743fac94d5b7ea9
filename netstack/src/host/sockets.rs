//! The smoltcp sockets every server of a host is built from.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use smoltcp::socket::{tcp, udp};
use smoltcp::wire::IpEndpoint;

/// smoltcp's own timeout (no ACK for this long aborts a connection).
const TCP_ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Datagrams each way a UDP socket queues.
const UDP_QUEUE: usize = 64;
/// Payload bytes each way a UDP socket queues (one largest datagram).
const UDP_BUFFER: usize = 65536;

/// A TCP socket with `rx` and `tx` bytes of buffer (fixed: smoltcp's ring
/// buffers do not grow, so they are sized for what the socket carries).
pub(crate) fn tcp_socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx]),
        tcp::SocketBuffer::new(vec![0; tx]),
    );
    socket.set_timeout(Some(TCP_ACK_TIMEOUT.into()));
    socket
}

/// An unbound UDP socket.
pub(crate) fn udp_socket() -> udp::Socket<'static> {
    udp::Socket::new(
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; UDP_QUEUE],
            vec![0; UDP_BUFFER],
        ),
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; UDP_QUEUE],
            vec![0; UDP_BUFFER],
        ),
    )
}

/// The IPv4 socket address of an endpoint (the host is IPv4-only).
pub fn to_v4(ep: IpEndpoint) -> SocketAddrV4 {
    match SocketAddr::from(ep) {
        SocketAddr::V4(v4) => v4,
        SocketAddr::V6(v6) => SocketAddrV4::new(
            v6.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
            v6.port(),
        ),
    }
}
