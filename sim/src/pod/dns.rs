//! The DNS-over-TCP client of a [`Pod`]: several queries pipelined on one
//! connection (RFC 7766), the answers collected in order.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use netstack::dns::{frame, take_frame};
use netstack::VirtualHost;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

use super::http::pump_tcp_client;
use super::{Client, ClientId, Clients, Pod};

/// A [`Pod::dns_tcp_query`] not answered by then fails.
const DNS_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Socket buffers of an exchange: `(rx, tx)`.
const BUFFERS: (usize, usize) = (128 * 1024, 16 * 1024);

/// The state of a DNS-over-TCP exchange started with [`Pod::dns_tcp_query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsTcpOutcome {
    /// Still connecting, sending or receiving.
    Pending,
    /// Every query was answered; the responses in the order they came.
    Done(Vec<Vec<u8>>),
    /// The connection was refused (TCP RST or ICMP port unreachable).
    Refused,
    /// Anything else (timeout, reset, too few responses, unknown id).
    Failed(String),
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

impl Pod {
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
        let local_port = self.clients.alloc_port();
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
            match self.host.connect_tcp(local_port, dst, BUFFERS) {
                Ok(handle) => {
                    log::debug!(
                        "{}: dns over tcp {local_port} -> {dst}, {} queries",
                        self.name(),
                        queries.len()
                    );
                    client.handle = Some(handle);
                }
                Err(e) => client.outcome = DnsTcpOutcome::Failed(format!("connect: {e}")),
            }
        }
        self.clients.push(Client::DnsTcp(client))
    }

    /// The state of a [`dns_tcp_query`](Self::dns_tcp_query)
    /// ([`DnsTcpOutcome::Failed`] for an id that is not one).
    pub fn dns_tcp_result(&self, id: ClientId) -> DnsTcpOutcome {
        match self.clients.list.get(id.0) {
            Some(Client::DnsTcp(c)) => c.outcome.clone(),
            Some(_) => DnsTcpOutcome::Failed("not a DNS-over-TCP query".into()),
            None => DnsTcpOutcome::Failed("unknown client id".into()),
        }
    }
}

impl Clients {
    /// Moves DNS-over-TCP clients on. Returns whether anything happened.
    pub(super) fn run_dns(&mut self, host: &mut VirtualHost, now: Instant) -> bool {
        let mut progress = false;
        for client in &mut self.list {
            let Client::DnsTcp(c) = client else { continue };
            if c.outcome != DnsTcpOutcome::Pending {
                continue;
            }
            let Some(handle) = c.handle else { continue };
            let socket = host.socket_mut::<tcp::Socket>(handle);
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
                log::debug!("{}: dns over tcp to {} -> {outcome:?}", self.name, c.dst);
                c.outcome = outcome;
                if let Some(handle) = c.handle.take() {
                    host.release_tcp(handle);
                }
            }
        }
        progress
    }
}
