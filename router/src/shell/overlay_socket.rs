//! The overlay's UDP socket with the kernel's batching offloads, through
//! `quinn-udp` (no hand-written cmsg code):
//!
//! - **UDP GSO** (`UDP_SEGMENT`) on send: the VXLAN datagrams a TCP
//!   super-packet is cut into (all the same length but the last) leave in
//!   one `sendmsg`; the kernel segments them (or the NIC does);
//! - **UDP GRO** on receive: the kernel may hand several datagrams of one
//!   flow back to back in one read, each `stride` bytes long but the last;
//!   `recvmmsg` underneath.
//!
//! Where the kernel lacks either, `quinn-udp` falls back to one datagram per
//! call (`max_gso_segments` 1, `gro_segments` 1) and so does this module.
//!
//! With several workers each has its own socket on the overlay port, the
//! group bound with `SO_REUSEPORT`: the kernel spreads the datagrams it
//! receives over the sockets by their 4-tuple (so by peer: a router sends
//! from the overlay port too).

use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use dataplane::wire::offload::Segments;
use mio::net::UdpSocket;
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};

/// One read: `len` bytes at the start of the buffer, datagrams of
/// `stride` bytes each (the last may be shorter), from `from`.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Bytes read.
    pub len: usize,
    /// The length of each datagram but the last.
    pub stride: usize,
    /// The sender (`None`: not IPv4).
    pub from: Option<Ipv4Addr>,
}

/// Kernel buffer asked for the overlay socket, each way: one GSO send
/// carries up to 64 datagrams (~96 KB) and a burst of super-packets several
/// of them, and a refused GSO send loses all its datagrams at once.
const SOCKET_BUFFER: usize = 4 << 20;

/// The most one UDP send may carry (65,535 less the IPv4 and UDP headers).
const MAX_UDP_PAYLOAD: usize = 65_507;

/// The overlay socket, non-blocking.
pub struct OverlaySocket {
    socket: UdpSocket,
    state: UdpSocketState,
    port: u16,
}

impl OverlaySocket {
    /// Binds `count` sockets (at least one) to `addr` (the overlay's port
    /// on every address), with `SO_REUSEPORT` when there are several, and
    /// turns on what the kernel offers of GSO and GRO on each.
    pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<Self>> {
        if count <= 1 {
            return Ok(vec![Self::setup(UdpSocket::bind(addr)?, addr)?]);
        }
        // `SO_REUSEPORT` would let this group join another process's on
        // the same port (a second router as root): a plain bind first
        // fails if anyone holds the port, as one socket's bind does.
        drop(std::net::UdpSocket::bind(addr)?);
        (0..count)
            .map(|_| {
                let socket = socket2::Socket::new(
                    socket2::Domain::for_address(addr),
                    socket2::Type::DGRAM,
                    Some(socket2::Protocol::UDP),
                )?;
                socket.set_reuse_port(true)?;
                socket.set_nonblocking(true)?;
                socket.bind(&addr.into())?;
                Self::setup(UdpSocket::from_std(socket.into()), addr)
            })
            .collect()
    }

    fn setup(socket: UdpSocket, addr: SocketAddr) -> io::Result<Self> {
        let state = UdpSocketState::new((&socket).into())?;
        // As far as net.core.[rw]mem_max allow (global sysctls: not ours
        // to raise).
        for (what, r) in [
            (
                "send",
                state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER),
            ),
            (
                "receive",
                state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER),
            ),
        ] {
            if let Err(e) = r {
                log::debug!("overlay socket {what} buffer: {e}");
            }
        }
        Ok(Self {
            socket,
            state,
            port: addr.port(),
        })
    }

    /// The socket, to register with the poller.
    pub fn socket_mut(&mut self) -> &mut UdpSocket {
        &mut self.socket
    }

    /// How many datagrams one send may carry (1: no UDP GSO).
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// How many datagrams one read may carry (1: no UDP GRO).
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Reads one datagram, or several coalesced by GRO, into `buf`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let mut meta = [RecvMeta::default()];
        let n = self.state.recv(
            (&self.socket).into(),
            &mut [IoSliceMut::new(buf)],
            &mut meta,
        )?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let m = meta[0];
        let from = match m.addr {
            SocketAddr::V4(a) => Some(*a.ip()),
            SocketAddr::V6(a) => a.ip().to_ipv4_mapped(),
        };
        Ok(Received {
            len: m.len,
            stride: m.stride.max(1),
            from,
        })
    }

    /// Sends one datagram to the overlay port of `to`.
    pub fn send(&self, to: Ipv4Addr, datagram: &[u8]) -> io::Result<()> {
        self.transmit(to, datagram, None)
    }

    /// Sends the datagrams `segs` describes in `out` (see
    /// [`dataplane::wire::offload::segment`]) to `to`: as few UDP GSO sends
    /// as the kernel allows, else one by one. `each` is told of every
    /// datagram and the error it met, if any (for counting and captures);
    /// an error `each` returns stops the sending and is returned.
    pub fn send_segments<E>(
        &self,
        to: Ipv4Addr,
        out: &[u8],
        segs: Segments,
        mut each: impl FnMut(&[u8], Option<&io::Error>) -> Result<(), E>,
    ) -> Result<(), E> {
        // A GSO send is one UDP datagram to the kernel until it cuts it: at
        // most 65,507 bytes of payload (EMSGSIZE beyond). A 64 KiB
        // super-packet's segments with their overlay headers exceed that.
        let per_send = self
            .max_gso_segments()
            .min(MAX_UDP_PAYLOAD / segs.stride.max(1))
            .max(1);
        if per_send == 1 || segs.count == 1 {
            for d in segs.iter(out) {
                each(d, self.transmit(to, d, None).err().as_ref())?;
            }
            return Ok(());
        }
        for batch in out.chunks(segs.stride * per_send) {
            match self.transmit(to, batch, Some(segs.stride)) {
                // The device refused the offload: quinn-udp turned GSO off
                // for the next sends; these go one by one.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) => {
                    for d in batch.chunks(segs.stride) {
                        each(d, self.transmit(to, d, None).err().as_ref())?;
                    }
                }
                result => {
                    let err = result.err();
                    for d in batch.chunks(segs.stride) {
                        each(d, err.as_ref())?;
                    }
                }
            }
        }
        Ok(())
    }

    fn transmit(
        &self,
        to: Ipv4Addr,
        contents: &[u8],
        segment_size: Option<usize>,
    ) -> io::Result<()> {
        let transmit = Transmit {
            destination: SocketAddr::V4(SocketAddrV4::new(to, self.port)),
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        self.state.try_send((&self.socket).into(), &transmit)
    }
}

#[cfg(test)]
mod tests;
