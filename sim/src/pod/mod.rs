//! [`Pod`]: a simulated pod, a netstack [`VirtualHost`] (its servers) plus
//! the clients tests drive from it: HTTP requests, UDP requests, DNS over
//! TCP and ping.
//!
//! The clients run on the host's own sockets, in every poll round of the
//! host (see [`VirtualHost::poll_with`]), and look at every incoming packet
//! first to learn what smoltcp does not tell (RSTs and ICMP errors for a
//! connect, as Linux turns them into `ECONNREFUSED`).
//!
//! Time is whatever the caller passes in; nothing here reads a clock.

use std::net::Ipv4Addr;
use std::time::Instant;

use netstack::{HostConfig, VirtualHost};

mod dns;
mod errors;
mod http;
mod ping;
mod udp;

pub use dns::DnsTcpOutcome;
pub use http::HttpOutcome;

/// First ephemeral port used by the TCP clients.
const EPHEMERAL_FIRST: u16 = 49152;

/// Identifies a request made by [`Pod::http_get`], [`Pod::udp_request`] or
/// [`Pod::dns_tcp_query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(usize);

#[derive(Debug)]
enum Client {
    Http(http::HttpClient),
    /// A datagram sent from `udp[socket]`; replies from index `first_reply` on belong to it.
    Udp {
        socket: usize,
        first_reply: usize,
    },
    /// A DNS-over-TCP exchange.
    DnsTcp(dns::DnsTcpClient),
}

impl Client {
    /// The local port of a TCP client whose socket is still open.
    fn tcp_port_in_use(&self) -> Option<u16> {
        match self {
            Client::Http(c) => c.handle.map(|_| c.local_port),
            Client::DnsTcp(c) => c.handle.map(|_| c.local_port),
            Client::Udp { .. } => None,
        }
    }
}

/// The pod's clients: what it asked and what came back.
#[derive(Debug)]
struct Clients {
    name: String,
    ip: Ipv4Addr,
    list: Vec<Client>,
    udp: Vec<udp::UdpClientSocket>,
    next_port: u16,
    ping: ping::Ping,
    icmp_unreachable: usize,
}

/// A simulated pod: servers (netstack's [`VirtualHost`]) and clients.
#[derive(Debug)]
pub struct Pod {
    host: VirtualHost,
    clients: Clients,
}

impl Pod {
    /// A pod with address `config.ip`/32 and a default route via
    /// `config.gateway`; `now` is its time zero (see [`VirtualHost::new`]).
    pub fn new(config: HostConfig, now: Instant) -> Self {
        let (name, ip) = (config.name.clone(), config.ip);
        let mut host = VirtualHost::new(config, now);
        let ping = ping::Ping::new(&mut host);
        Pod {
            host,
            clients: Clients {
                name,
                ip,
                list: Vec::new(),
                udp: Vec::new(),
                next_port: EPHEMERAL_FIRST,
                ping,
                icmp_unreachable: 0,
            },
        }
    }

    /// The pod name.
    pub fn name(&self) -> &str {
        self.host.name()
    }

    /// The pod's IPv4 address.
    pub fn ip(&self) -> Ipv4Addr {
        self.host.ip()
    }

    /// The pod's host: its servers and sockets.
    pub fn host(&self) -> &VirtualHost {
        &self.host
    }

    /// The pod's host, mutably.
    pub fn host_mut(&mut self) -> &mut VirtualHost {
        &mut self.host
    }

    /// Serves HTTP on TCP `port` (see [`VirtualHost::serve_http`]).
    pub fn serve_http(&mut self, port: u16) {
        self.host.serve_http(port);
    }

    /// Serves the UDP responder on `port` (see [`VirtualHost::serve_udp`]).
    pub fn serve_udp(&mut self, port: u16) {
        self.host.serve_udp(port);
    }

    /// An IPv4 packet arriving at the pod, processed at once: replies are
    /// ready in [`poll_transmit`](Self::poll_transmit) afterwards.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        self.clients.inspect_incoming(&mut self.host, packet);
        self.host.receive(packet);
        self.poll(now);
    }

    /// Runs the servers and the clients.
    pub fn poll(&mut self, now: Instant) {
        let Pod { host, clients } = self;
        host.poll_with(now, |host| clients.run(host, now));
    }

    /// Takes the next IPv4 packet the pod sends.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.host.poll_transmit()
    }

    /// When [`poll`](Self::poll) should be called next (`None`: only when a packet arrives).
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Instant> {
        [self.host.poll_timeout(now), self.clients.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// How many ICMP destination-unreachable messages have arrived at the pod.
    pub fn icmp_unreachable_seen(&self) -> usize {
        self.clients.icmp_unreachable
    }
}

impl Clients {
    /// Moves every client on. Returns whether anything happened.
    fn run(&mut self, host: &mut VirtualHost, now: Instant) -> bool {
        let mut progress = self.run_http(host, now);
        progress |= self.run_dns(host, now);
        self.run_udp(host);
        self.ping.run(host);
        progress
    }

    /// The earliest deadline of a pending TCP client.
    fn deadline(&self) -> Option<Instant> {
        self.list
            .iter()
            .filter_map(|client| match client {
                Client::Http(c) if c.outcome == HttpOutcome::Pending => Some(c.deadline),
                Client::DnsTcp(c) if c.outcome == DnsTcpOutcome::Pending => Some(c.deadline),
                _ => None,
            })
            .min()
    }

    /// The next ephemeral port no open TCP client uses.
    fn alloc_port(&mut self) -> u16 {
        let in_use = |clients: &[Client], port: u16| {
            clients.iter().any(|c| c.tcp_port_in_use() == Some(port))
        };
        let mut port = self.next_port;
        for _ in 0..=(u16::MAX - EPHEMERAL_FIRST) {
            port = self.next_port;
            self.next_port = if self.next_port == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                self.next_port + 1
            };
            if !in_use(&self.list, port) {
                break;
            }
        }
        port
    }

    /// A new client's id.
    fn push(&mut self, client: Client) -> ClientId {
        self.list.push(client);
        ClientId(self.list.len() - 1)
    }
}

#[cfg(test)]
mod tests;
