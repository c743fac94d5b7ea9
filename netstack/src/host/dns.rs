//! A DNS server (UDP and TCP) and a DNS-over-TCP client for [`VirtualHost`].

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};

use super::{
    pump_tcp_client, tcp_socket, to_v4, udp_socket, Client, ClientId, VirtualHost, LISTEN_BACKLOG,
};
use crate::dns::{frame, take_frame, DnsHandler, DnsTcpOutcome, DnsTransport};

/// A DNS-over-TCP connection with no query for this long is closed (as
/// CoreDNS's default `tcp idle timeout`).
const DNS_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// A [`VirtualHost::dns_tcp_query`] not answered by then fails.
const DNS_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The DNS server of a host: one handler, any number of ports.
pub(super) struct DnsServer {
    handler: DnsHandler,
    ports: Vec<u16>,
    udp: Vec<SocketHandle>,
    conns: Vec<DnsConn>,
    /// Queries answered, over both transports.
    answered: u64,
}

impl DnsServer {
    /// Open and listening TCP sockets.
    #[cfg(test)]
    pub(super) fn conns_len(&self) -> usize {
        self.conns.len()
    }
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

/// One TCP connection of the DNS server (or a listening socket waiting
/// for one).
#[derive(Debug)]
struct DnsConn {
    handle: SocketHandle,
    port: u16,
    /// Past the handshake.
    accepted: bool,
    /// Bytes received and not yet a whole query.
    input: Vec<u8>,
    /// Framed responses not yet handed to the socket (from `sent` on).
    output: Vec<u8>,
    sent: usize,
    /// Close once the output is sent (the handler refused a query).
    finish: bool,
    /// Closed or aborted: the socket goes to the host's closing list.
    done: bool,
    /// Closed if idle until then.
    deadline: Option<Instant>,
}

/// A DNS-over-TCP exchange: several queries on one connection.
#[derive(Debug)]
pub(super) struct DnsTcpClient {
    /// `None` once the socket has been dropped.
    pub(super) handle: Option<SocketHandle>,
    pub(super) local_port: u16,
    dst: SocketAddrV4,
    request: Vec<u8>,
    sent: usize,
    input: Vec<u8>,
    expected: usize,
    responses: Vec<Vec<u8>>,
    pub(super) established: bool,
    pub(super) rst_seen: bool,
    pub(super) deadline: Instant,
    pub(super) outcome: DnsTcpOutcome,
}

impl VirtualHost {
    /// Serves DNS on UDP and TCP `port`: every query (a datagram, or a
    /// length-prefixed message on a TCP connection, several per connection
    /// and any number of connections) goes to `handler`, and what it returns
    /// goes back. A host has one handler: calling this again for another
    /// port serves that port too, with the new handler for every port.
    pub fn serve_dns(&mut self, port: u16, handler: DnsHandler) {
        let server = self.dns.get_or_insert_with(|| DnsServer {
            handler: Box::new(|_, _| None),
            ports: Vec::new(),
            udp: Vec::new(),
            conns: Vec::new(),
            answered: 0,
        });
        server.handler = handler;
        if port == 0 || server.ports.contains(&port) {
            return;
        }
        server.ports.push(port);
        let mut socket = udp_socket();
        match socket.bind(port) {
            Ok(()) => server.udp.push(self.sockets.add(socket)),
            Err(e) => log::error!("{}: cannot bind DNS UDP port {port}: {e}", self.config.name),
        }
        self.replenish_dns_listeners();
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

    /// Sends `queries` (whole DNS messages) to `dst` on one TCP connection
    /// from the next ephemeral port, all at once (pipelined), and collects
    /// as many responses; follow it with [`dns_tcp_result`](Self::dns_tcp_result).
    /// The client closes the connection once every response has arrived.
    /// Without queries, it is done at once and connects nowhere.
    pub fn dns_tcp_query(
        &mut self,
        now: Instant,
        dst: SocketAddrV4,
        queries: &[Vec<u8>],
    ) -> ClientId {
        let id = ClientId(self.clients.len());
        let local_port = self.alloc_port();
        let mut request = Vec::new();
        let mut outcome = if queries.is_empty() {
            DnsTcpOutcome::Done(Vec::new())
        } else {
            DnsTcpOutcome::Pending
        };
        for q in queries {
            match frame(q) {
                Some(f) => request.extend(f),
                None => outcome = DnsTcpOutcome::Failed("query longer than 65535 bytes".into()),
            }
        }
        let mut client = DnsTcpClient {
            handle: None,
            local_port,
            dst,
            request,
            sent: 0,
            input: Vec::new(),
            expected: queries.len(),
            responses: Vec::new(),
            established: false,
            rst_seen: false,
            deadline: now + DNS_CLIENT_TIMEOUT,
            outcome,
        };
        if client.outcome == DnsTcpOutcome::Pending {
            match self.connect_tcp(local_port, dst, (128 * 1024, 16 * 1024)) {
                Ok(handle) => {
                    log::debug!(
                        "{}: dns over tcp {local_port} -> {dst}, {} queries",
                        self.config.name,
                        queries.len()
                    );
                    client.handle = Some(handle);
                }
                Err(e) => client.outcome = DnsTcpOutcome::Failed(e),
            }
        }
        self.clients.push(Client::DnsTcp(client));
        id
    }

    /// The state of a [`dns_tcp_query`](Self::dns_tcp_query)
    /// ([`DnsTcpOutcome::Failed`] for an id that is not one).
    pub fn dns_tcp_result(&self, id: ClientId) -> DnsTcpOutcome {
        match self.clients.get(id.0) {
            Some(Client::DnsTcp(c)) => c.outcome.clone(),
            Some(_) => DnsTcpOutcome::Failed("not a DNS-over-TCP query".into()),
            None => DnsTcpOutcome::Failed("unknown client id".into()),
        }
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

    /// Keeps `LISTEN_BACKLOG` idle listening sockets on every DNS port.
    fn replenish_dns_listeners(&mut self) -> bool {
        let Some(server) = self.dns.as_mut() else {
            return false;
        };
        let mut added = false;
        for &port in &server.ports {
            let idle = server
                .conns
                .iter()
                .filter(|c| c.port == port && !c.accepted)
                .filter(|c| self.sockets.get::<tcp::Socket>(c.handle).is_listening())
                .count();
            for _ in idle..LISTEN_BACKLOG {
                let mut socket = tcp_socket(16 * 1024, 16 * 1024);
                if let Err(e) = socket.listen(port) {
                    log::error!(
                        "{}: cannot listen on DNS port {port}: {e}",
                        self.config.name
                    );
                    break;
                }
                server.conns.push(DnsConn {
                    handle: self.sockets.add(socket),
                    port,
                    accepted: false,
                    input: Vec::new(),
                    output: Vec::new(),
                    sent: 0,
                    finish: false,
                    done: false,
                    deadline: None,
                });
                added = true;
            }
        }
        added
    }

    /// Answers what arrived on the DNS sockets. Returns whether anything happened.
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
            let state = socket.state();
            if !conn.accepted {
                if matches!(state, tcp::State::Listen | tcp::State::SynReceived) {
                    continue;
                }
                conn.accepted = true;
                conn.deadline = Some(now + DNS_IDLE_TIMEOUT);
                progress = true;
            }
            while socket.can_recv() {
                match socket.recv(|data| (data.len(), data.to_vec())) {
                    Ok(data) if !data.is_empty() => conn.input.extend_from_slice(&data),
                    _ => break,
                }
            }
            while !conn.finish {
                let Some(query) = take_frame(&mut conn.input) else {
                    break;
                };
                conn.deadline = Some(now + DNS_IDLE_TIMEOUT);
                progress = true;
                match (server.handler)(&query, DnsTransport::Tcp).and_then(|r| frame(&r)) {
                    Some(framed) => {
                        server.answered += 1;
                        conn.output.extend_from_slice(&framed);
                    }
                    None => conn.finish = true,
                }
            }
            while conn.sent < conn.output.len() && socket.can_send() {
                match socket.send_slice(&conn.output[conn.sent..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        conn.sent += n;
                        conn.deadline = Some(now + DNS_IDLE_TIMEOUT);
                        progress = true;
                    }
                }
            }
            if conn.sent == conn.output.len() {
                conn.output.clear();
                conn.sent = 0;
            }
            let flushed = conn.output.is_empty();
            let idle = conn.deadline.is_some_and(|d| now >= d);
            if state == tcp::State::Closed {
                conn.done = true;
            } else if flushed && (conn.finish || !socket.may_recv() || idle) {
                socket.close();
                conn.done = true;
                progress = true;
            } else if idle {
                // The peer is not reading its answers.
                socket.abort();
                conn.done = true;
                progress = true;
            }
        }
        let closing = &mut self.closing;
        server.conns.retain(|c| {
            if c.done {
                closing.push(c.handle);
                false
            } else {
                true
            }
        });
        progress |= self.replenish_dns_listeners();
        progress
    }

    /// Moves DNS-over-TCP clients on. Returns whether anything happened.
    pub(super) fn run_dns_clients(&mut self, now: Instant) -> bool {
        let mut progress = false;
        for client in &mut self.clients {
            let Client::DnsTcp(c) = client else { continue };
            if c.outcome != DnsTcpOutcome::Pending {
                continue;
            }
            let Some(handle) = c.handle else { continue };
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            let state = socket.state();
            progress |= pump_tcp_client(
                socket,
                &mut c.established,
                &mut c.sent,
                &c.request,
                &mut c.input,
            );
            while let Some(m) = take_frame(&mut c.input) {
                c.responses.push(m);
            }
            let outcome = if c.responses.len() >= c.expected {
                socket.close();
                DnsTcpOutcome::Done(std::mem::take(&mut c.responses))
            } else if state == tcp::State::Closed {
                if !c.established {
                    if c.rst_seen {
                        DnsTcpOutcome::Refused
                    } else {
                        DnsTcpOutcome::Failed(format!("connect to {} timed out", c.dst))
                    }
                } else {
                    DnsTcpOutcome::Failed(format!(
                        "connection to {} reset after {} of {} responses",
                        c.dst,
                        c.responses.len(),
                        c.expected
                    ))
                }
            } else if c.established && !socket.may_recv() {
                socket.close();
                DnsTcpOutcome::Failed(format!(
                    "{} closed the connection after {} of {} responses",
                    c.dst,
                    c.responses.len(),
                    c.expected
                ))
            } else if now >= c.deadline {
                socket.abort();
                DnsTcpOutcome::Failed(format!("DNS over TCP to {} timed out", c.dst))
            } else {
                DnsTcpOutcome::Pending
            };
            if outcome != DnsTcpOutcome::Pending {
                progress = true;
                log::debug!(
                    "{}: dns over tcp to {} -> {outcome:?}",
                    self.config.name,
                    c.dst
                );
                c.outcome = outcome;
                if let Some(handle) = c.handle.take() {
                    self.closing.push(handle);
                }
            }
        }
        progress
    }
}
