//! [`VirtualHost`]: a whole "pod" in process, built from a smoltcp interface.
//!
//! IPv4 packets go in with [`VirtualHost::handle_packet`] and come out with
//! [`VirtualHost::poll_transmit`]. The host serves HTTP and UDP (the
//! [`crate::responders`]) and DNS (over UDP and TCP, answered by a handler);
//! the router uses one to serve the cluster DNS in process, and the
//! simulation gives one to every pod.
//!
//! What a pod does as a client (HTTP requests, pings...) is not here: an
//! application outside this crate opens its own sockets on the host
//! ([`VirtualHost::connect_tcp`], [`VirtualHost::bind_udp`],
//! [`VirtualHost::add_socket`]) and runs in every poll round through
//! [`VirtualHost::poll_with`].
//!
//! Everything an outsider can grow is bounded: the DNS server's TCP
//! connections (see [`DnsTcpStats`]) and the buffers of every socket.
//!
//! Time is whatever the caller passes in; nothing here reads a clock.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp, AnySocket, Socket};
use smoltcp::wire::{HardwareAddress, IpCidr};

use crate::device::QueueDevice;
use crate::responders;
use crate::time::Clock;

mod dns;
mod http;
mod sockets;
mod udp_server;

pub use dns::{limits as dns_limits, DnsTcpStats};
use sockets::tcp_socket;
pub use sockets::to_v4;

/// How many idle listening sockets each TCP server port keeps, so that
/// back-to-back connections always find one.
pub const LISTEN_BACKLOG: usize = 4;
/// Upper bound on interface/application rounds within one `poll`.
const MAX_POLL_ROUNDS: usize = 16;

/// Configuration of a [`VirtualHost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Pod name: answered by `/hostname` and shown in the `host:` line.
    pub name: String,
    /// The host's IPv4 address (configured as a /32).
    pub ip: Ipv4Addr,
    /// Default gateway (with `Medium::Ip` every packet leaves through the one device anyway).
    pub gateway: Ipv4Addr,
    /// IP MTU: the largest packet the host sends.
    pub mtu: usize,
    /// Unix seconds at the `now` given to [`VirtualHost::new`]; used for the HTTP `date:` line.
    pub wall_clock_unix: i64,
}

impl HostConfig {
    /// A config with MTU 1500 and the wall clock at 2022-06-24T06:22:10Z.
    pub fn new(name: impl Into<String>, ip: Ipv4Addr, gateway: Ipv4Addr) -> Self {
        HostConfig {
            name: name.into(),
            ip,
            gateway,
            mtu: 1500,
            wall_clock_unix: 1_656_051_730,
        }
    }
}

/// An in-process host ("pod"): a smoltcp [`Interface`], its sockets and a [`QueueDevice`].
pub struct VirtualHost {
    config: HostConfig,
    clock: Clock,
    device: QueueDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
    http: http::HttpServer,
    udp_servers: Vec<SocketHandle>,
    dns: Option<dns::DnsServer>,
    /// TCP sockets we are finished with, dropped once smoltcp is done with them.
    closing: Vec<SocketHandle>,
}

impl std::fmt::Debug for VirtualHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualHost")
            .field("name", &self.config.name)
            .field("ip", &self.config.ip)
            .field("http", &self.http)
            .field("dns", &self.dns)
            .finish_non_exhaustive()
    }
}

impl VirtualHost {
    /// A host with address `config.ip`/32 and a default route via `config.gateway`.
    ///
    /// `now` becomes the host's time zero; `config.wall_clock_unix` is the wall
    /// clock at that moment.
    pub fn new(config: HostConfig, now: Instant) -> Self {
        let clock = Clock::new(now);
        let mut device = QueueDevice::new(config.mtu);
        let mut iface_config = Config::new(HardwareAddress::Ip);
        iface_config.random_seed = (u64::from(u32::from(config.ip)) << 32)
            ^ (config.wall_clock_unix as u64)
            ^ 0x6e65_7473_7461_636b;
        let mut iface = Interface::new(iface_config, &mut device, clock.to_smoltcp(now));
        iface.update_ip_addrs(|addrs| {
            if addrs.push(IpCidr::new(config.ip.into(), 32)).is_err() {
                log::error!("{}: cannot add address {}", config.name, config.ip);
            }
        });
        if let Err(e) = iface.routes_mut().add_default_ipv4_route(config.gateway) {
            log::error!("{}: cannot add default route: {e:?}", config.name);
        }
        VirtualHost {
            config,
            clock,
            device,
            iface,
            sockets: SocketSet::new(Vec::new()),
            http: http::HttpServer::default(),
            udp_servers: Vec::new(),
            dns: None,
            closing: Vec::new(),
        }
    }

    /// The pod name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The host's IPv4 address.
    pub fn ip(&self) -> Ipv4Addr {
        self.config.ip
    }

    /// An IPv4 packet arriving at the host. It is queued and processed right
    /// away (this calls [`poll`](Self::poll)), so replies are ready in
    /// [`poll_transmit`](Self::poll_transmit) afterwards.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        self.receive(packet);
        self.poll(now);
    }

    /// Queues an IPv4 packet for the host without processing it: the next
    /// [`poll`](Self::poll) or [`poll_with`](Self::poll_with) does (for an
    /// application that looks at packets first).
    pub fn receive(&mut self, packet: &[u8]) {
        self.admit(packet);
        self.device.push_rx(packet.to_vec());
    }

    /// Runs the interface and all servers.
    pub fn poll(&mut self, now: Instant) {
        self.poll_with(now, |_| false);
    }

    /// Runs the interface, all servers and `app` (the host's own
    /// applications, on the sockets they opened here) in rounds until
    /// nothing moves; `app` returns whether it did anything.
    pub fn poll_with(&mut self, now: Instant, mut app: impl FnMut(&mut Self) -> bool) {
        let ts = self.clock.to_smoltcp(now);
        for _ in 0..MAX_POLL_ROUNDS {
            self.iface.poll(ts, &mut self.device, &mut self.sockets);
            let mut progress = false;
            progress |= self.run_http_servers(now);
            progress |= self.run_udp_servers();
            progress |= self.run_dns_server(now);
            progress |= app(self);
            self.reap_closing();
            if !progress && self.device.rx_pending() == 0 {
                break;
            }
        }
    }

    /// Takes the next IPv4 packet the host sends.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.device.pop_tx()
    }

    /// When [`poll`](Self::poll) should be called next for the interface
    /// and the servers (`None`: only when a packet arrives).
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Instant> {
        if self.device.rx_pending() > 0 {
            return Some(now);
        }
        let ts = self.clock.to_smoltcp(now);
        let iface = self
            .iface
            .poll_at(ts, &self.sockets)
            .map(|t| self.clock.from_smoltcp(t));
        [iface, self.http.deadline(), self.dns_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    // ----- sockets for the host's applications -----

    /// Opens a client TCP socket from `local_port` to `dst` with `(rx, tx)`
    /// buffer sizes; it connects on the next poll.
    pub fn connect_tcp(
        &mut self,
        local_port: u16,
        dst: SocketAddrV4,
        (rx, tx): (usize, usize),
    ) -> Result<SocketHandle, tcp::ConnectError> {
        let mut socket = tcp_socket(rx, tx);
        let local = SocketAddrV4::new(self.config.ip, local_port);
        socket.connect(self.iface.context(), dst, local)?;
        Ok(self.sockets.add(socket))
    }

    /// Binds a UDP socket (64 datagrams / 64 KiB each way) to `port`.
    pub fn bind_udp(&mut self, port: u16) -> Result<SocketHandle, udp::BindError> {
        let mut socket = sockets::udp_socket();
        socket.bind(port)?;
        Ok(self.sockets.add(socket))
    }

    /// Adds any smoltcp socket (an ICMP socket for pings, a TCP socket
    /// connected by hand...).
    pub fn add_socket<T: AnySocket<'static>>(&mut self, socket: T) -> SocketHandle {
        self.sockets.add(socket)
    }

    /// The socket `handle` as a `T`.
    ///
    /// # Panics
    /// If `handle` is not a socket of this host or not a `T` (smoltcp's
    /// rule: a handle is only ever used with the socket it was made for).
    pub fn socket<T: AnySocket<'static>>(&self, handle: SocketHandle) -> &T {
        self.sockets.get(handle)
    }

    /// The socket `handle` as a `T`, mutably (see [`socket`](Self::socket)).
    ///
    /// # Panics
    /// As [`socket`](Self::socket).
    pub fn socket_mut<T: AnySocket<'static>>(&mut self, handle: SocketHandle) -> &mut T {
        self.sockets.get_mut(handle)
    }

    /// Hands a TCP socket the application is done with back to the host,
    /// which drops it once smoltcp has finished with it (closed, nothing
    /// left to send).
    pub fn release_tcp(&mut self, handle: SocketHandle) {
        self.closing.push(handle);
    }

    /// Drops a socket at once (a UDP or ICMP socket, or a TCP socket that
    /// must go without a word, as a kernel drops a refused connect).
    pub fn remove_socket(&mut self, handle: SocketHandle) {
        self.sockets.remove(handle);
    }

    /// How many sockets the host holds (servers', applications', closing).
    pub fn socket_count(&self) -> usize {
        self.sockets.iter().count()
    }

    /// How many TCP sockets are waiting to be dropped once closed.
    pub fn closing_count(&self) -> usize {
        self.closing.len()
    }

    /// Bytes of socket buffers the host holds: every socket's receive and
    /// send buffers and the servers' pending request and answer bytes
    /// (what a flood of connections would grow).
    pub fn buffer_bytes(&self) -> usize {
        let sockets: usize = self
            .sockets
            .iter()
            .map(|(_, s)| match s {
                Socket::Tcp(t) => t.recv_capacity() + t.send_capacity(),
                Socket::Udp(u) => u.payload_recv_capacity() + u.payload_send_capacity(),
                _ => 0,
            })
            .sum();
        sockets + self.dns.as_ref().map_or(0, dns::DnsServer::buffer_bytes)
    }

    // ----- internals -----

    fn date_at(&self, now: Instant) -> String {
        let secs = i64::try_from(self.clock.since_epoch(now).as_secs()).unwrap_or(0);
        responders::http::format_date(self.config.wall_clock_unix.saturating_add(secs))
    }

    /// Drops sockets that smoltcp has finished with (closed, nothing left to send).
    fn reap_closing(&mut self) {
        let sockets = &mut self.sockets;
        self.closing.retain(|&handle| {
            let socket = sockets.get::<tcp::Socket>(handle);
            if socket.state() == tcp::State::Closed && socket.remote_endpoint().is_none() {
                sockets.remove(handle);
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests;
