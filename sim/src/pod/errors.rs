//! What the clients learn from incoming packets before smoltcp sees them:
//! ICMP destination unreachables (counted; fatal ones end a connect, as
//! Linux's do) and RSTs (a connect refused).

use netstack::VirtualHost;
use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Packet, TcpPacket,
};

use super::{Client, Clients, DnsTcpOutcome, HttpOutcome};

/// Linux's idea of which ICMP unreachable codes are fatal for a connecting socket.
fn unreachable_is_fatal(code: u8) -> bool {
    !matches!(
        Icmpv4DstUnreachable::from(code),
        Icmpv4DstUnreachable::NetUnreachable
            | Icmpv4DstUnreachable::HostUnreachable
            | Icmpv4DstUnreachable::FragRequired
            | Icmpv4DstUnreachable::SrcRouteFailed
    )
}

impl Clients {
    /// Looks at an incoming packet before smoltcp does: counts ICMP
    /// unreachables and turns RSTs / fatal ICMP errors into client outcomes.
    pub(super) fn inspect_incoming(&mut self, host: &mut VirtualHost, packet: &[u8]) {
        let Ok(ip) = Ipv4Packet::new_checked(packet) else {
            return;
        };
        match ip.next_header() {
            IpProtocol::Icmp => {
                let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else {
                    return;
                };
                if icmp.msg_type() != Icmpv4Message::DstUnreachable {
                    return;
                }
                self.icmp_unreachable += 1;
                let code = icmp.msg_code();
                // The quoted packet: our IP header and at least 8 bytes of TCP.
                // (Only the first 8 bytes of TCP are quoted, so the IP total
                // length does not match and `new_checked` cannot be used.)
                let quoted = icmp.data();
                if quoted.len() < 20 || quoted[0] >> 4 != 4 {
                    return;
                }
                let inner = Ipv4Packet::new_unchecked(quoted);
                if inner.next_header() != IpProtocol::Tcp || inner.src_addr() != self.ip {
                    return;
                }
                let header_len = usize::from(inner.header_len());
                let Some(tcp) = quoted.get(header_len..header_len + 2) else {
                    return;
                };
                let src_port = u16::from_be_bytes([tcp[0], tcp[1]]);
                self.icmp_error_for_client(host, src_port, code);
            }
            IpProtocol::Tcp => {
                let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
                    return;
                };
                if tcp.rst() {
                    self.rst_for_client(tcp.dst_port());
                }
            }
            _ => {}
        }
    }

    /// Notes a RST to `port` for the pending TCP client there.
    fn rst_for_client(&mut self, port: u16) {
        for client in &mut self.list {
            match client {
                Client::Http(c) if c.local_port == port && c.outcome == HttpOutcome::Pending => {
                    c.rst_seen = true;
                }
                Client::DnsTcp(c)
                    if c.local_port == port && c.outcome == DnsTcpOutcome::Pending =>
                {
                    c.rst_seen = true;
                }
                _ => {}
            }
        }
    }

    /// Ends a connecting client on `src_port` for a fatal ICMP error.
    fn icmp_error_for_client(&mut self, host: &mut VirtualHost, src_port: u16, code: u8) {
        if !unreachable_is_fatal(code) {
            return;
        }
        let refused = Icmpv4DstUnreachable::from(code) == Icmpv4DstUnreachable::PortUnreachable;
        let reason = || {
            format!(
                "ICMP destination unreachable: {}",
                Icmpv4DstUnreachable::from(code)
            )
        };
        for client in &mut self.list {
            let handle = match client {
                Client::Http(c)
                    if c.local_port == src_port
                        && c.outcome == HttpOutcome::Pending
                        && !c.established =>
                {
                    c.outcome = if refused {
                        HttpOutcome::Refused
                    } else {
                        HttpOutcome::Failed(reason())
                    };
                    c.handle.take()
                }
                Client::DnsTcp(c)
                    if c.local_port == src_port
                        && c.outcome == DnsTcpOutcome::Pending
                        && !c.established =>
                {
                    c.outcome = if refused {
                        DnsTcpOutcome::Refused
                    } else {
                        DnsTcpOutcome::Failed(reason())
                    };
                    c.handle.take()
                }
                _ => None,
            };
            // Drop the socket silently (no RST), as a kernel would.
            if let Some(handle) = handle {
                host.remove_socket(handle);
            }
        }
    }
}
