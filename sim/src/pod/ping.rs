//! Ping from a [`Pod`]: ICMP echo requests with the pod's identifier, and
//! a count of the replies. (Answering pings is the interface's own job.)

use std::net::Ipv4Addr;

use netstack::VirtualHost;
use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::icmp;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr};

use super::Pod;

/// Payload of every echo request.
const PING_PAYLOAD: &[u8] = b"netstack-ping-00";

/// The pod's ICMP socket and what came back to it.
#[derive(Debug)]
pub(super) struct Ping {
    socket: SocketHandle,
    ident: u16,
    replies: usize,
}

impl Ping {
    /// An ICMP socket on `host`, bound to an identifier made from its address.
    pub(super) fn new(host: &mut VirtualHost) -> Self {
        let ip = u32::from(host.ip());
        let ident = ((ip >> 16) as u16) ^ (ip as u16) ^ 0x7073;
        let mut socket = icmp::Socket::new(
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 32], vec![0; 4096]),
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 32], vec![0; 4096]),
        );
        if let Err(e) = socket.bind(icmp::Endpoint::Ident(ident)) {
            log::error!("{}: cannot bind ping socket: {e}", host.name());
        }
        Ping {
            socket: host.add_socket(socket),
            ident,
            replies: 0,
        }
    }

    /// Counts the echo replies that arrived.
    pub(super) fn run(&mut self, host: &mut VirtualHost) {
        let socket = host.socket_mut::<icmp::Socket>(self.socket);
        while let Ok((data, _from)) = socket.recv() {
            let Ok(packet) = Icmpv4Packet::new_checked(data) else {
                continue;
            };
            if let Ok(Icmpv4Repr::EchoReply { ident, .. }) =
                Icmpv4Repr::parse(&packet, &ChecksumCapabilities::ignored())
            {
                if ident == self.ident {
                    self.replies += 1;
                }
            }
        }
    }
}

impl Pod {
    /// Queues an ICMP echo request to `dst` (identifier fixed per pod); it goes
    /// out on the next [`poll`](Self::poll).
    pub fn ping(&mut self, dst: Ipv4Addr, seq: u16) {
        let repr = Icmpv4Repr::EchoRequest {
            ident: self.clients.ping.ident,
            seq_no: seq,
            data: PING_PAYLOAD,
        };
        let socket = self
            .host
            .socket_mut::<icmp::Socket>(self.clients.ping.socket);
        match socket.send(repr.buffer_len(), dst.into()) {
            Ok(buf) => {
                let mut packet = Icmpv4Packet::new_unchecked(buf);
                repr.emit(&mut packet, &ChecksumCapabilities::default());
            }
            Err(e) => log::warn!("{}: ping {dst} not sent: {e}", self.clients.name),
        }
    }

    /// How many echo replies (to this pod's pings) have arrived.
    pub fn ping_replies(&self) -> usize {
        self.clients.ping.replies
    }
}
