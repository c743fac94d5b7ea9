//! The DNS server of a host: UDP and TCP on any number of ports, every
//! query answered by one [`DnsHandler`]. Its TCP side is bounded (see
//! [`limits`]).

use std::time::Instant;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};

use super::sockets::{tcp_socket, to_v4};
use super::{VirtualHost, LISTEN_BACKLOG};
use crate::dns::{DnsHandler, DnsTransport};
use conn::{DnsConn, End, Phase};

mod conn;
pub mod limits;

pub use limits::DnsTcpStats;
use limits::MAX_TCP_CONNS;

/// The DNS server of a host: one handler, any number of ports.
pub(super) struct DnsServer {
    handler: DnsHandler,
    ports: Vec<u16>,
    udp: Vec<SocketHandle>,
    conns: Vec<DnsConn>,
    /// Queries answered, over both transports.
    answered: u64,
    /// What the bounds did (the connection counts are filled in on demand).
    counters: DnsTcpStats,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("ports", &self.ports)
            .field("conns", &self.conns.len())
            .field("answered", &self.answered)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Bytes held in the connections' own buffers.
    pub(super) fn buffer_bytes(&self) -> usize {
        self.conns.iter().map(DnsConn::buffer_bytes).sum()
    }
}

impl VirtualHost {
    /// Serves DNS on UDP and TCP `port`: every query (a datagram, or a
    /// length-prefixed message on a TCP connection, several per connection;
    /// up to [`MAX_TCP_CONNS`] connections) goes to `handler`, and what it
    /// returns goes back. A host has one handler: calling this again for
    /// another port serves that port too, with the new handler for every port.
    pub fn serve_dns(&mut self, port: u16, handler: DnsHandler) {
        let server = self.dns.get_or_insert_with(|| DnsServer {
            handler: Box::new(|_, _| None),
            ports: Vec::new(),
            udp: Vec::new(),
            conns: Vec::new(),
            answered: 0,
            counters: DnsTcpStats::default(),
        });
        server.handler = handler;
        if port == 0 || server.ports.contains(&port) {
            return;
        }
        server.ports.push(port);
        match self.bind_udp(port) {
            Ok(handle) => {
                if let Some(server) = self.dns.as_mut() {
                    server.udp.push(handle);
                }
            }
            Err(e) => log::error!("{}: cannot bind DNS UDP port {port}: {e}", self.config.name),
        }
        self.replenish_dns_listeners(None);
    }

    /// Replaces the DNS handler (when what it answers from changes); open
    /// connections keep going with the new one. Returns `false` if the host
    /// serves no DNS.
    pub fn set_dns_handler(&mut self, handler: DnsHandler) -> bool {
        match self.dns.as_mut() {
            Some(server) => {
                server.handler = handler;
                true
            }
            None => false,
        }
    }

    /// How many DNS queries the host's server has answered.
    pub fn dns_answered(&self) -> u64 {
        self.dns.as_ref().map_or(0, |s| s.answered)
    }

    /// The DNS server's TCP connections and what its bounds did (all zero
    /// if the host serves no DNS).
    pub fn dns_tcp_stats(&self) -> DnsTcpStats {
        self.dns.as_ref().map(DnsServer::stats).unwrap_or_default()
    }

    /// The earliest deadline of the DNS server's connections.
    pub(super) fn dns_deadline(&self) -> Option<Instant> {
        self.dns
            .as_ref()?
            .conns
            .iter()
            .filter_map(|c| c.deadline)
            .min()
    }

    /// Keeps `LISTEN_BACKLOG` idle listening sockets on every DNS port while
    /// there is room for a connection; with every slot established, keeps
    /// none, so that new SYNs are refused.
    fn replenish_dns_listeners(&mut self, now: Option<Instant>) -> bool {
        let Some(server) = self.dns.as_mut() else {
            return false;
        };
        if server.open_conns() >= MAX_TCP_CONNS {
            let sockets = &mut self.sockets;
            let before = server.conns.len();
            server.conns.retain(|c| {
                let listener = c.phase == Phase::Listening;
                if listener {
                    sockets.remove(c.handle);
                }
                !listener
            });
            return server.conns.len() != before;
        }
        let mut changed = false;
        for &port in &server.ports {
            let idle = server
                .conns
                .iter()
                .filter(|c| c.port == port && c.phase == Phase::Listening && c.end.is_none())
                .count();
            for _ in idle..LISTEN_BACKLOG {
                let mut socket = tcp_socket(limits::RX_BUFFER, limits::TX_BUFFER);
                socket.set_timeout(Some(limits::SOCKET_TIMEOUT.into()));
                if let Err(e) = socket.listen(port) {
                    log::error!(
                        "{}: cannot listen on DNS port {port}: {e}",
                        self.config.name
                    );
                    break;
                }
                let handle = self.sockets.add(socket);
                // Before the first poll `now` is unknown; `since` only
                // matters once a SYN has come, and is set then.
                let since = now.unwrap_or_else(|| self.clock.epoch());
                server.conns.push(DnsConn::listening(handle, port, since));
                changed = true;
            }
        }
        changed
    }

    /// Answers what arrived on the DNS sockets and enforces the bounds.
    /// Returns whether anything happened.
    pub(super) fn run_dns_server(&mut self, now: Instant) -> bool {
        let Some(server) = self.dns.as_mut() else {
            return false;
        };
        let name = &self.config.name;
        let mut progress = false;
        for &handle in &server.udp {
            let socket = self.sockets.get_mut::<udp::Socket>(handle);
            while let Ok((data, meta)) = socket.recv() {
                let reply = (server.handler)(data, DnsTransport::Udp);
                let peer = to_v4(meta.endpoint);
                let Some(reply) = reply else {
                    log::debug!("{name}: dns/udp {peer}: no answer");
                    continue;
                };
                server.answered += 1;
                log::debug!("{name}: dns/udp {peer}: {} bytes", reply.len());
                match socket.send_slice(&reply, meta) {
                    Ok(()) => progress = true,
                    Err(e) => log::warn!("{name}: DNS reply to {peer} dropped: {e}"),
                }
            }
        }
        for conn in &mut server.conns {
            let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            progress |= conn.run(
                socket,
                now,
                &mut server.handler,
                &mut server.answered,
                &mut server.counters,
            );
        }
        progress |= server.enforce_cap();
        let (sockets, closing) = (&mut self.sockets, &mut self.closing);
        server.conns.retain(|c| match c.end {
            None => true,
            Some(End::Close) => {
                closing.push(c.handle);
                false
            }
            Some(End::Drop) => {
                sockets.remove(c.handle);
                false
            }
        });
        progress |= self.replenish_dns_listeners(Some(now));
        progress
    }
}

#[cfg(test)]
mod tests;
