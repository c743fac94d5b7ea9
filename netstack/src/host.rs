//! [`VirtualHost`]: a whole "pod" in process, built from a smoltcp interface.
//!
//! IPv4 packets go in with [`VirtualHost::handle_packet`] and come out with
//! [`VirtualHost::poll_transmit`]. The host can serve HTTP and UDP (the
//! [`crate::responders`]) and DNS (over UDP and TCP, answered by a handler),
//! make HTTP, UDP and DNS-over-TCP requests and ping, so tests can drive
//! traffic through a router without any real network; the router itself
//! uses one to serve the cluster DNS in process.
//!
//! Time is whatever the caller passes in; nothing here reads a clock.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::wire::{
    HardwareAddress, Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, IpCidr,
    IpEndpoint, IpProtocol, Ipv4Packet, TcpPacket,
};

use crate::device::QueueDevice;
use crate::dns::DnsTcpOutcome;
use crate::responders;
use crate::time::Clock;

mod dns;

/// How many idle listening sockets each HTTP port keeps, so that back-to-back
/// connections always find one.
const LISTEN_BACKLOG: usize = 4;
/// First ephemeral port used by [`VirtualHost::http_get`].
const EPHEMERAL_FIRST: u16 = 49152;
/// A server connection that has not delivered a whole request by then is aborted.
const SERVER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// An HTTP client request not finished by then fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// smoltcp's own timeout (no ACK for this long aborts a connection).
const TCP_ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on interface/application rounds within one `poll`.
const MAX_POLL_ROUNDS: usize = 16;
/// Payload size of echo requests sent by [`VirtualHost::ping`].
const PING_PAYLOAD: &[u8] = b"netstack-ping-00";

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

/// Identifies a request made by [`VirtualHost::http_get`] or [`VirtualHost::udp_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(usize);

/// State of an HTTP request made with [`VirtualHost::http_get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// Still connecting, sending or receiving.
    Pending,
    /// The server answered and closed the connection.
    Done {
        /// HTTP status code.
        status: u16,
        /// Response body (lossy UTF-8).
        body: String,
    },
    /// The connection was refused while connecting: a TCP RST, or an ICMP port
    /// unreachable quoting our SYN (as Linux turns both into `ECONNREFUSED`).
    Refused,
    /// Anything else that went wrong (timeout, reset after connecting,
    /// malformed response, fatal ICMP error, unknown id).
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerPhase {
    /// Waiting for a SYN (or in the handshake).
    Listening,
    /// Connected, collecting the request head.
    Reading,
    /// Sending the response.
    Writing,
    /// Closed by us; waiting for the socket to finish so it can be dropped.
    Closing,
}

#[derive(Debug)]
struct ServerConn {
    handle: SocketHandle,
    port: u16,
    phase: ServerPhase,
    request: Vec<u8>,
    response: Vec<u8>,
    sent: usize,
    deadline: Option<Instant>,
}

#[derive(Debug)]
struct HttpClient {
    /// `None` once the socket has been dropped.
    handle: Option<SocketHandle>,
    local_port: u16,
    dst: SocketAddrV4,
    request: Vec<u8>,
    sent: usize,
    response: Vec<u8>,
    established: bool,
    rst_seen: bool,
    deadline: Instant,
    outcome: HttpOutcome,
}

#[derive(Debug)]
struct UdpClientSocket {
    port: u16,
    /// `None` if the port could not be bound.
    handle: Option<SocketHandle>,
    replies: Vec<(SocketAddrV4, Vec<u8>)>,
}

#[derive(Debug)]
enum Client {
    Http(HttpClient),
    /// A datagram sent from `udp_clients[socket]`; replies from index `first_reply` on belong to it.
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

/// An in-process host ("pod"): a smoltcp [`Interface`], its sockets and a [`QueueDevice`].
pub struct VirtualHost {
    config: HostConfig,
    clock: Clock,
    device: QueueDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
    http_ports: Vec<u16>,
    server_conns: Vec<ServerConn>,
    udp_servers: Vec<SocketHandle>,
    dns: Option<dns::DnsServer>,
    clients: Vec<Client>,
    udp_clients: Vec<UdpClientSocket>,
    /// Sockets we are finished with, dropped once smoltcp is done with them.
    closing: Vec<SocketHandle>,
    next_port: u16,
    ping_socket: SocketHandle,
    ping_ident: u16,
    ping_replies: usize,
    icmp_unreachable: usize,
}

impl std::fmt::Debug for VirtualHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualHost")
            .field("name", &self.config.name)
            .field("ip", &self.config.ip)
            .field("http_ports", &self.http_ports)
            .field("server_conns", &self.server_conns.len())
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

fn to_v4(ep: IpEndpoint) -> SocketAddrV4 {
    match SocketAddr::from(ep) {
        SocketAddr::V4(v4) => v4,
        SocketAddr::V6(v6) => SocketAddrV4::new(
            v6.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
            v6.port(),
        ),
    }
}

fn tcp_socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx]),
        tcp::SocketBuffer::new(vec![0; tx]),
    );
    socket.set_timeout(Some(TCP_ACK_TIMEOUT.into()));
    socket
}

fn udp_socket() -> udp::Socket<'static> {
    udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 65536]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 65536]),
    )
}

/// Parses `HTTP/1.1 200 OK\r\n...\r\n\r\nbody`, honouring `Content-Length`.
fn parse_response(buf: &[u8]) -> Result<(u16, String, bool), String> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "malformed response: no end of headers".to_string())?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or("");
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| version.starts_with("HTTP/"))
        .ok_or_else(|| format!("malformed status line {status_line:?}"))?;
    let content_length = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            value.trim().parse::<usize>().ok()
        } else {
            None
        }
    });
    let mut body = &buf[end + 4..];
    let complete = match content_length {
        Some(len) if body.len() >= len => {
            body = &body[..len];
            true
        }
        Some(_) => false,
        None => true,
    };
    Ok((status, String::from_utf8_lossy(body).into_owned(), complete))
}

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

        let mut sockets = SocketSet::new(Vec::new());
        let ip = u32::from(config.ip);
        let ping_ident = ((ip >> 16) as u16) ^ (ip as u16) ^ 0x7073;
        let mut ping = icmp::Socket::new(
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 32], vec![0; 4096]),
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 32], vec![0; 4096]),
        );
        if let Err(e) = ping.bind(icmp::Endpoint::Ident(ping_ident)) {
            log::error!("{}: cannot bind ping socket: {e}", config.name);
        }
        let ping_socket = sockets.add(ping);

        VirtualHost {
            config,
            clock,
            device,
            iface,
            sockets,
            http_ports: Vec::new(),
            server_conns: Vec::new(),
            udp_servers: Vec::new(),
            dns: None,
            clients: Vec::new(),
            udp_clients: Vec::new(),
            closing: Vec::new(),
            next_port: EPHEMERAL_FIRST,
            ping_socket,
            ping_ident,
            ping_replies: 0,
            icmp_unreachable: 0,
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
        self.inspect_incoming(packet);
        self.device.push_rx(packet.to_vec());
        self.poll(now);
    }

    /// Runs the interface and all servers and clients.
    pub fn poll(&mut self, now: Instant) {
        let ts = self.clock.to_smoltcp(now);
        for _ in 0..MAX_POLL_ROUNDS {
            self.iface.poll(ts, &mut self.device, &mut self.sockets);
            let mut progress = false;
            progress |= self.run_http_servers(now);
            progress |= self.run_udp_servers();
            progress |= self.run_dns_server(now);
            progress |= self.run_http_clients(now);
            progress |= self.run_dns_clients(now);
            self.run_udp_clients();
            self.run_ping();
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

    /// When [`poll`](Self::poll) should be called next (`None`: only when a packet arrives).
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Instant> {
        if self.device.rx_pending() > 0 {
            return Some(now);
        }
        let ts = self.clock.to_smoltcp(now);
        let mut next = self
            .iface
            .poll_at(ts, &self.sockets)
            .map(|t| self.clock.from_smoltcp(t));
        let mut consider = |t: Instant| {
            next = Some(next.map_or(t, |n| n.min(t)));
        };
        for conn in &self.server_conns {
            if let Some(d) = conn.deadline {
                consider(d);
            }
        }
        if let Some(d) = self.dns_deadline() {
            consider(d);
        }
        for client in &self.clients {
            match client {
                Client::Http(c) if c.outcome == HttpOutcome::Pending => consider(c.deadline),
                Client::DnsTcp(c) if c.outcome == DnsTcpOutcome::Pending => consider(c.deadline),
                _ => {}
            }
        }
        next
    }

    /// Serves HTTP (see [`responders::http`]) on TCP `port`, for any number of
    /// connections, one request each.
    pub fn serve_http(&mut self, port: u16) {
        if port == 0 || self.http_ports.contains(&port) {
            return;
        }
        self.http_ports.push(port);
        self.replenish_listeners();
    }

    /// Serves the UDP responder (see [`responders::udp`]) on `port`.
    pub fn serve_udp(&mut self, port: u16) {
        let mut socket = udp_socket();
        if let Err(e) = socket.bind(port) {
            log::error!("{}: cannot bind UDP port {port}: {e}", self.config.name);
            return;
        }
        let handle = self.sockets.add(socket);
        self.udp_servers.push(handle);
    }

    /// Starts `GET {path}` to `dst` from the next ephemeral port (49152 and up);
    /// follow it with [`http_result`](Self::http_result).
    pub fn http_get(&mut self, now: Instant, dst: SocketAddrV4, path: &str) -> ClientId {
        let id = ClientId(self.clients.len());
        let local_port = self.alloc_port();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            dst.ip()
        )
        .into_bytes();
        let mut client = HttpClient {
            handle: None,
            local_port,
            dst,
            request,
            sent: 0,
            response: Vec::new(),
            established: false,
            rst_seen: false,
            deadline: now + CLIENT_TIMEOUT,
            outcome: HttpOutcome::Pending,
        };
        match self.connect_tcp(local_port, dst, (64 * 1024, 4096)) {
            Ok(handle) => {
                log::debug!(
                    "{}: http_get {local_port} -> {dst} {path}",
                    self.config.name
                );
                client.handle = Some(handle);
            }
            Err(e) => client.outcome = HttpOutcome::Failed(e),
        }
        self.clients.push(Client::Http(client));
        id
    }

    /// Opens a client TCP socket from `local_port` to `dst` with `(rx, tx)`
    /// buffer sizes; the error says why the connect was refused.
    pub(crate) fn connect_tcp(
        &mut self,
        local_port: u16,
        dst: SocketAddrV4,
        (rx, tx): (usize, usize),
    ) -> Result<SocketHandle, String> {
        let mut socket = tcp_socket(rx, tx);
        let local = SocketAddrV4::new(self.config.ip, local_port);
        socket
            .connect(self.iface.context(), dst, local)
            .map_err(|e| format!("connect: {e}"))?;
        Ok(self.sockets.add(socket))
    }

    /// The state of an HTTP request ([`HttpOutcome::Failed`] for an id that is not one).
    pub fn http_result(&self, id: ClientId) -> HttpOutcome {
        match self.clients.get(id.0) {
            Some(Client::Http(c)) => c.outcome.clone(),
            Some(Client::Udp { .. } | Client::DnsTcp(_)) => {
                HttpOutcome::Failed("not an HTTP request".to_string())
            }
            None => HttpOutcome::Failed("unknown client id".to_string()),
        }
    }

    /// Sends `payload` to `dst` from UDP `local_port` (bound on first use, then
    /// reused). It goes out on the next [`poll`](Self::poll).
    pub fn udp_request(&mut self, dst: SocketAddrV4, local_port: u16, payload: &[u8]) -> ClientId {
        let index = match self.udp_clients.iter().position(|s| s.port == local_port) {
            Some(i) => i,
            None => {
                let mut socket = udp_socket();
                let handle = match socket.bind(local_port) {
                    Ok(()) => Some(self.sockets.add(socket)),
                    Err(e) => {
                        log::warn!(
                            "{}: cannot bind UDP port {local_port}: {e}",
                            self.config.name
                        );
                        None
                    }
                };
                self.udp_clients.push(UdpClientSocket {
                    port: local_port,
                    handle,
                    replies: Vec::new(),
                });
                self.udp_clients.len() - 1
            }
        };
        let entry = &self.udp_clients[index];
        if let Some(handle) = entry.handle {
            let socket = self.sockets.get_mut::<udp::Socket>(handle);
            if let Err(e) = socket.send_slice(payload, IpEndpoint::from(dst)) {
                log::warn!("{}: UDP send to {dst} failed: {e}", self.config.name);
            }
        }
        let id = ClientId(self.clients.len());
        self.clients.push(Client::Udp {
            socket: index,
            first_reply: entry.replies.len(),
        });
        id
    }

    /// Datagrams received on the request's socket since the request was made,
    /// with their senders (empty for an id that is not a UDP request).
    pub fn udp_replies(&self, id: ClientId) -> Vec<(SocketAddrV4, Vec<u8>)> {
        match self.clients.get(id.0) {
            Some(Client::Udp {
                socket,
                first_reply,
            }) => self
                .udp_clients
                .get(*socket)
                .and_then(|s| s.replies.get(*first_reply..))
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// How many ICMP destination-unreachable messages have arrived at the host.
    pub fn icmp_unreachable_seen(&self) -> usize {
        self.icmp_unreachable
    }

    /// Queues an ICMP echo request to `dst` (identifier fixed per host); it goes
    /// out on the next [`poll`](Self::poll).
    pub fn ping(&mut self, dst: Ipv4Addr, seq: u16) {
        let repr = Icmpv4Repr::EchoRequest {
            ident: self.ping_ident,
            seq_no: seq,
            data: PING_PAYLOAD,
        };
        let socket = self.sockets.get_mut::<icmp::Socket>(self.ping_socket);
        match socket.send(repr.buffer_len(), dst.into()) {
            Ok(buf) => {
                let mut packet = Icmpv4Packet::new_unchecked(buf);
                repr.emit(&mut packet, &ChecksumCapabilities::default());
            }
            Err(e) => log::warn!("{}: ping {dst} not sent: {e}", self.config.name),
        }
    }

    /// How many echo replies (to this host's pings) have arrived.
    pub fn ping_replies(&self) -> usize {
        self.ping_replies
    }

    // ----- internals -----

    /// Looks at an incoming packet before smoltcp does: counts ICMP
    /// unreachables and turns RSTs / fatal ICMP errors into client outcomes.
    fn inspect_incoming(&mut self, packet: &[u8]) {
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
                if inner.next_header() != IpProtocol::Tcp || inner.src_addr() != self.config.ip {
                    return;
                }
                let header_len = usize::from(inner.header_len());
                let Some(tcp) = quoted.get(header_len..header_len + 2) else {
                    return;
                };
                let src_port = u16::from_be_bytes([tcp[0], tcp[1]]);
                self.icmp_error_for_client(src_port, code);
            }
            IpProtocol::Tcp => {
                let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
                    return;
                };
                if !tcp.rst() {
                    return;
                }
                let port = tcp.dst_port();
                for client in &mut self.clients {
                    match client {
                        Client::Http(c)
                            if c.local_port == port && c.outcome == HttpOutcome::Pending =>
                        {
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
            _ => {}
        }
    }

    fn icmp_error_for_client(&mut self, src_port: u16, code: u8) {
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
        for client in &mut self.clients {
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
                self.sockets.remove(handle);
            }
        }
    }

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
            if !in_use(&self.clients, port) {
                break;
            }
        }
        port
    }

    fn date_at(&self, now: Instant) -> String {
        let secs = i64::try_from(self.clock.since_epoch(now).as_secs()).unwrap_or(0);
        responders::http::format_date(self.config.wall_clock_unix.saturating_add(secs))
    }

    /// Keeps `LISTEN_BACKLOG` idle listening sockets on every HTTP port.
    fn replenish_listeners(&mut self) -> bool {
        let mut added = false;
        for &port in &self.http_ports {
            let idle = self
                .server_conns
                .iter()
                .filter(|c| c.port == port && c.phase == ServerPhase::Listening)
                .filter(|c| self.sockets.get::<tcp::Socket>(c.handle).is_listening())
                .count();
            for _ in idle..LISTEN_BACKLOG {
                let mut socket = tcp_socket(8192, 16384);
                if let Err(e) = socket.listen(port) {
                    log::error!("{}: cannot listen on {port}: {e}", self.config.name);
                    break;
                }
                let handle = self.sockets.add(socket);
                self.server_conns.push(ServerConn {
                    handle,
                    port,
                    phase: ServerPhase::Listening,
                    request: Vec::new(),
                    response: Vec::new(),
                    sent: 0,
                    deadline: None,
                });
                added = true;
            }
        }
        added
    }

    fn run_http_servers(&mut self, now: Instant) -> bool {
        let mut progress = false;
        let date = self.date_at(now);
        let name = self.config.name.clone();
        for conn in &mut self.server_conns {
            let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            let state = socket.state();
            if conn.phase == ServerPhase::Listening {
                match state {
                    tcp::State::Listen | tcp::State::SynReceived => continue,
                    _ => {
                        conn.phase = ServerPhase::Reading;
                        conn.deadline = Some(now + SERVER_REQUEST_TIMEOUT);
                    }
                }
            }
            if conn.phase == ServerPhase::Reading {
                while socket.can_recv() {
                    match socket.recv(|data| (data.len(), data.to_vec())) {
                        Ok(data) => conn.request.extend_from_slice(&data),
                        Err(_) => break,
                    }
                }
                let local = socket.local_endpoint().map(to_v4);
                let peer = socket.remote_endpoint().map(to_v4);
                match (responders::http::parse_request(&conn.request), local, peer) {
                    (Ok(Some(req)), Some(local), Some(peer)) => {
                        log::info!(
                            "{name}: http {peer} -> {local} {} {} host={}",
                            req.method,
                            req.path,
                            req.host
                        );
                        conn.response = responders::http::respond(&req, local, peer, &name, &date);
                        conn.phase = ServerPhase::Writing;
                    }
                    (Err(e), _, _) => {
                        log::info!("{name}: bad request: {e}");
                        conn.response = responders::http::bad_request();
                        conn.phase = ServerPhase::Writing;
                    }
                    _ => {
                        let expired = conn.deadline.is_some_and(|d| now >= d);
                        if !socket.may_recv() || expired || state == tcp::State::Closed {
                            // Peer went away (or stalled) before a whole request.
                            if expired {
                                socket.abort();
                            } else {
                                socket.close();
                            }
                            conn.phase = ServerPhase::Closing;
                            progress = true;
                        }
                    }
                }
            }
            if conn.phase == ServerPhase::Writing {
                conn.deadline = None;
                while conn.sent < conn.response.len() && socket.can_send() {
                    match socket.send_slice(&conn.response[conn.sent..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            conn.sent += n;
                            progress = true;
                        }
                    }
                }
                if conn.sent >= conn.response.len() || !socket.may_send() {
                    socket.close();
                    conn.phase = ServerPhase::Closing;
                    progress = true;
                }
            }
        }
        // Hand finished connections over to `closing`.
        let closing = &mut self.closing;
        self.server_conns.retain(|c| {
            if c.phase == ServerPhase::Closing {
                closing.push(c.handle);
                false
            } else {
                true
            }
        });
        progress |= self.replenish_listeners();
        progress
    }

    fn run_udp_servers(&mut self) -> bool {
        let mut progress = false;
        for &handle in &self.udp_servers {
            let socket = self.sockets.get_mut::<udp::Socket>(handle);
            while let Ok((data, meta)) = socket.recv() {
                let peer = to_v4(meta.endpoint);
                let reply = responders::udp::respond(data, peer, &self.config.name);
                log::info!(
                    "{}: udp {peer} -> port {} {} bytes",
                    self.config.name,
                    socket.endpoint().port,
                    reply.len()
                );
                // Answer from the address the datagram was sent to.
                match socket.send_slice(&reply, meta) {
                    Ok(()) => progress = true,
                    Err(e) => log::warn!("{}: UDP reply to {peer} dropped: {e}", self.config.name),
                }
            }
        }
        progress
    }

    fn run_http_clients(&mut self, now: Instant) -> bool {
        let mut progress = false;
        for client in &mut self.clients {
            let Client::Http(c) = client else { continue };
            if c.outcome != HttpOutcome::Pending {
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
                &mut c.response,
            );
            let outcome = if state == tcp::State::Closed {
                if !c.established {
                    if c.rst_seen {
                        HttpOutcome::Refused
                    } else {
                        HttpOutcome::Failed(format!("connect to {} timed out", c.dst))
                    }
                } else {
                    match parse_response(&c.response) {
                        Ok((status, body, true)) => HttpOutcome::Done { status, body },
                        _ => HttpOutcome::Failed(format!(
                            "connection to {} reset after {} response bytes",
                            c.dst,
                            c.response.len()
                        )),
                    }
                }
            } else if c.established && !socket.may_recv() {
                // The server closed its side and we have read everything.
                socket.close();
                progress = true;
                match parse_response(&c.response) {
                    Ok((status, body, true)) => HttpOutcome::Done { status, body },
                    Ok((_, _, false)) => HttpOutcome::Failed(format!(
                        "response from {} shorter than its Content-Length",
                        c.dst
                    )),
                    Err(e) => HttpOutcome::Failed(e),
                }
            } else if now >= c.deadline {
                socket.abort();
                progress = true;
                HttpOutcome::Failed(format!("request to {} timed out", c.dst))
            } else {
                HttpOutcome::Pending
            };
            if outcome != HttpOutcome::Pending {
                log::debug!("{}: http_get {} -> {outcome:?}", self.config.name, c.dst);
                c.outcome = outcome;
                if let Some(handle) = c.handle.take() {
                    self.closing.push(handle);
                }
            }
        }
        progress
    }

    fn run_udp_clients(&mut self) {
        for entry in &mut self.udp_clients {
            let Some(handle) = entry.handle else { continue };
            let socket = self.sockets.get_mut::<udp::Socket>(handle);
            while let Ok((data, meta)) = socket.recv() {
                entry.replies.push((to_v4(meta.endpoint), data.to_vec()));
            }
        }
    }

    fn run_ping(&mut self) {
        let socket = self.sockets.get_mut::<icmp::Socket>(self.ping_socket);
        while let Ok((data, _from)) = socket.recv() {
            let Ok(packet) = Icmpv4Packet::new_checked(data) else {
                continue;
            };
            if let Ok(Icmpv4Repr::EchoReply { ident, .. }) =
                Icmpv4Repr::parse(&packet, &ChecksumCapabilities::ignored())
            {
                if ident == self.ping_ident {
                    self.ping_replies += 1;
                }
            }
        }
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

/// Moves one TCP client connection on: notes when it is established, sends
/// what is left of `request` (from `sent`), appends what arrived to
/// `input`. Returns whether request bytes were sent.
pub(crate) fn pump_tcp_client(
    socket: &mut tcp::Socket<'_>,
    established: &mut bool,
    sent: &mut usize,
    request: &[u8],
    input: &mut Vec<u8>,
) -> bool {
    let mut progress = false;
    if !matches!(
        socket.state(),
        tcp::State::Closed | tcp::State::SynSent | tcp::State::SynReceived
    ) {
        *established = true;
    }
    if *established && *sent < request.len() && socket.can_send() {
        if let Ok(n) = socket.send_slice(&request[*sent..]) {
            *sent += n;
            progress = n > 0;
        }
    }
    while socket.can_recv() {
        match socket.recv(|data| (data.len(), data.to_vec())) {
            Ok(data) if !data.is_empty() => input.extend_from_slice(&data),
            _ => break,
        }
    }
    progress
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 5);
    const B_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 2, 42);

    struct Pair {
        a: VirtualHost,
        b: VirtualHost,
        t0: Instant,
        step: u32,
        a_to_b: usize,
        b_to_a: usize,
    }

    impl Pair {
        fn new() -> Self {
            let t0 = Instant::now();
            let a = VirtualHost::new(
                HostConfig::new("client-pod", A_IP, Ipv4Addr::new(10, 10, 1, 1)),
                t0,
            );
            let b = VirtualHost::new(
                HostConfig::new(
                    "nginx-deployment-756d6b7586-7plkf",
                    B_IP,
                    Ipv4Addr::new(10, 10, 2, 1),
                ),
                t0,
            );
            Pair {
                a,
                b,
                t0,
                step: 0,
                a_to_b: 0,
                b_to_a: 0,
            }
        }

        fn now(&self) -> Instant {
            self.t0 + Duration::from_millis(u64::from(self.step))
        }

        /// One millisecond of a direct link between the hosts.
        fn tick(&mut self) {
            let now = self.now();
            self.a.poll(now);
            self.b.poll(now);
            while let Some(p) = self.a.poll_transmit() {
                self.a_to_b += 1;
                self.b.handle_packet(now, &p);
            }
            while let Some(p) = self.b.poll_transmit() {
                self.b_to_a += 1;
                self.a.handle_packet(now, &p);
            }
            self.step += 1;
        }

        fn run_until(&mut self, max_ms: u32, mut done: impl FnMut(&Self) -> bool) {
            for _ in 0..max_ms {
                if done(self) {
                    return;
                }
                self.tick();
            }
            assert!(done(self), "condition not reached within {max_ms} ms");
        }

        fn http(&mut self, dst: SocketAddrV4, path: &str) -> HttpOutcome {
            let now = self.now();
            let id = self.a.http_get(now, dst, path);
            self.run_until(5_000, |p| p.a.http_result(id) != HttpOutcome::Pending);
            self.a.http_result(id)
        }
    }

    fn body_of(outcome: HttpOutcome) -> String {
        match outcome {
            HttpOutcome::Done { status: 200, body } => body,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    #[test]
    fn http_get_root_four_lines() {
        let mut p = Pair::new();
        p.b.serve_http(80);
        let body = body_of(p.http(SocketAddrV4::new(B_IP, 80), "/"));
        let lines: Vec<&str> = body.split_inclusive('\n').collect();
        assert_eq!(lines.len(), 4, "{body:?}");
        assert_eq!(lines[0], "srv : 10.10.2.42:80\n");
        assert_eq!(lines[1], "host: nginx-deployment-756d6b7586-7plkf\n");
        assert_eq!(lines[2], "uri : GET 10.10.2.42 /\n");
        assert!(lines[3].starts_with("date: 2022-06-24T06:22:1"), "{body:?}");
    }

    #[test]
    fn back_to_back_requests() {
        let mut p = Pair::new();
        p.b.serve_http(8080);
        let mut ports = Vec::new();
        for _ in 0..3 {
            let body = body_of(p.http(SocketAddrV4::new(B_IP, 8080), "/clientip"));
            let (ip, port) = body.split_once(':').unwrap();
            assert_eq!(ip, "10.10.1.5");
            ports.push(port.parse::<u16>().unwrap());
        }
        assert_eq!(ports, vec![49152, 49153, 49154]);
        // Many more, without letting TIME-WAIT expire in between.
        for _ in 0..10 {
            let body = body_of(p.http(SocketAddrV4::new(B_IP, 8080), "/hostname"));
            assert_eq!(body, "nginx-deployment-756d6b7586-7plkf");
        }
        let body = body_of(p.http(SocketAddrV4::new(B_IP, 8080), "/healthz"));
        assert_eq!(body, "ok");
    }

    #[test]
    fn sockets_are_reclaimed() {
        let mut p = Pair::new();
        p.b.serve_http(80);
        for _ in 0..5 {
            body_of(p.http(SocketAddrV4::new(B_IP, 80), "/"));
        }
        // Let TIME-WAIT (10 s) pass.
        for _ in 0..12 {
            p.step += 1000;
            p.tick();
        }
        assert!(
            p.a.closing.is_empty(),
            "client sockets left: {}",
            p.a.closing.len()
        );
        assert!(
            p.b.closing.is_empty(),
            "server sockets left: {}",
            p.b.closing.len()
        );
        assert_eq!(p.b.server_conns.len(), LISTEN_BACKLOG);
    }

    #[test]
    fn closed_port_is_refused() {
        let mut p = Pair::new();
        p.b.serve_http(80);
        let outcome = p.http(SocketAddrV4::new(B_IP, 81), "/");
        assert_eq!(outcome, HttpOutcome::Refused);
    }

    #[test]
    fn icmp_port_unreachable_refuses_connect() {
        let mut p = Pair::new();
        let now = p.now();
        let id = p.a.http_get(now, SocketAddrV4::new(B_IP, 80), "/");
        p.a.poll(now);
        let syn = p.a.poll_transmit().unwrap();
        // Build an ICMP port unreachable quoting the SYN, as a router's REJECT would.
        let ip = Ipv4Packet::new_checked(&syn[..]).unwrap();
        let quoted_len = usize::from(ip.header_len()) + 8;
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4([10, 10, 2, 1], A_IP.octets(), 64)
            .icmpv4_raw(3, 3, [0; 4])
            .write(&mut out, &syn[..quoted_len])
            .unwrap();
        p.a.handle_packet(now, &out);
        assert_eq!(p.a.icmp_unreachable_seen(), 1);
        assert_eq!(p.a.http_result(id), HttpOutcome::Refused);
        // No RST goes out for the dropped socket.
        assert!(p.a.poll_transmit().is_none());
    }

    #[test]
    fn udp_hostname_and_unreachable() {
        let mut p = Pair::new();
        p.b.serve_udp(9000);
        let id =
            p.a.udp_request(SocketAddrV4::new(B_IP, 9000), 40000, b"hostname\n");
        p.run_until(100, |p| !p.a.udp_replies(id).is_empty());
        let replies = p.a.udp_replies(id);
        assert_eq!(
            replies,
            vec![(
                SocketAddrV4::new(B_IP, 9000),
                b"nginx-deployment-756d6b7586-7plkf".to_vec()
            )]
        );
        // Same local port again: socket reused, only the new reply belongs to the new id.
        let id2 =
            p.a.udp_request(SocketAddrV4::new(B_IP, 9000), 40000, b"clientip");
        p.run_until(100, |p| !p.a.udp_replies(id2).is_empty());
        assert_eq!(p.a.udp_replies(id2)[0].1, b"10.10.1.5:40000".to_vec());
        assert_eq!(p.a.udp_replies(id).len(), 2);

        assert_eq!(p.a.icmp_unreachable_seen(), 0);
        let id3 =
            p.a.udp_request(SocketAddrV4::new(B_IP, 9001), 40001, b"hostname");
        p.run_until(100, |p| p.a.icmp_unreachable_seen() == 1);
        assert!(p.a.udp_replies(id3).is_empty());
    }

    #[test]
    fn ping_gets_replies() {
        let mut p = Pair::new();
        p.a.ping(B_IP, 1);
        p.a.ping(B_IP, 2);
        p.run_until(100, |p| p.a.ping_replies() == 2);
        p.b.ping(A_IP, 1);
        p.run_until(100, |p| p.b.ping_replies() == 1);
        assert_eq!(p.a.ping_replies(), 2);
    }

    #[test]
    fn poll_timeout_reports_retransmission() {
        let t0 = Instant::now();
        let mut a = VirtualHost::new(HostConfig::new("a", A_IP, Ipv4Addr::new(10, 10, 1, 1)), t0);
        assert_eq!(a.poll_timeout(t0), None);
        let id = a.http_get(t0, SocketAddrV4::new(B_IP, 80), "/");
        a.poll(t0);
        assert!(a.poll_transmit().is_some());
        let next = a.poll_timeout(t0).unwrap();
        assert!(next > t0 && next <= t0 + CLIENT_TIMEOUT, "{next:?}");
        // Nobody answers: the request fails eventually.
        let mut now = t0;
        while a.http_result(id) == HttpOutcome::Pending {
            now = a
                .poll_timeout(now)
                .unwrap()
                .max(now + Duration::from_millis(1));
            a.poll(now);
            while a.poll_transmit().is_some() {}
            assert!(now < t0 + Duration::from_secs(60));
        }
        assert!(matches!(a.http_result(id), HttpOutcome::Failed(_)));
    }

    #[test]
    fn garbage_request_gets_400() {
        // A's client sends a non-HTTP request in place of its GET.
        let mut p = Pair::new();
        p.b.serve_http(80);
        let now = p.now();
        let id = p.a.http_get(now, SocketAddrV4::new(B_IP, 80), "/");
        if let Some(Client::Http(c)) = p.a.clients.get_mut(id.0) {
            c.request = b"NOT HTTP AT ALL\r\n\r\n".to_vec();
        }
        p.run_until(5_000, |p| p.a.http_result(id) != HttpOutcome::Pending);
        match p.a.http_result(id) {
            HttpOutcome::Done { status, .. } => assert_eq!(status, 400),
            other => panic!("{other:?}"),
        }
    }

    /// Answers `q` with `U` or `T` (the transport) followed by `q`; refuses
    /// (`None`) a query starting with `!`.
    fn echo_handler(tag: u8) -> crate::dns::DnsHandler {
        Box::new(move |q: &[u8], t| {
            if q.first() == Some(&b'!') {
                return None;
            }
            let mut r = vec![
                tag,
                if t == crate::dns::DnsTransport::Udp {
                    b'U'
                } else {
                    b'T'
                },
            ];
            r.extend_from_slice(q);
            Some(r)
        })
    }

    fn dns_tcp(p: &mut Pair, queries: &[&[u8]]) -> DnsTcpOutcome {
        let now = p.now();
        let queries: Vec<Vec<u8>> = queries.iter().map(|q| q.to_vec()).collect();
        let id =
            p.a.dns_tcp_query(now, SocketAddrV4::new(B_IP, 53), &queries);
        p.run_until(5_000, |p| p.a.dns_tcp_result(id) != DnsTcpOutcome::Pending);
        p.a.dns_tcp_result(id)
    }

    #[test]
    fn dns_over_udp() {
        let mut p = Pair::new();
        p.b.serve_dns(53, echo_handler(b'1'));
        let id =
            p.a.udp_request(SocketAddrV4::new(B_IP, 53), 40000, b"query");
        p.run_until(100, |p| !p.a.udp_replies(id).is_empty());
        assert_eq!(
            p.a.udp_replies(id),
            vec![(SocketAddrV4::new(B_IP, 53), b"1Uquery".to_vec())]
        );
        // A refused query gets nothing, and the server goes on.
        let id = p.a.udp_request(SocketAddrV4::new(B_IP, 53), 40000, b"!bad");
        for _ in 0..50 {
            p.tick();
        }
        assert!(p.a.udp_replies(id).is_empty());
        assert!(p.b.set_dns_handler(echo_handler(b'2')));
        let id =
            p.a.udp_request(SocketAddrV4::new(B_IP, 53), 40000, b"again");
        p.run_until(100, |p| !p.a.udp_replies(id).is_empty());
        assert_eq!(p.a.udp_replies(id)[0].1, b"2Uagain".to_vec());
        assert_eq!(p.b.dns_answered(), 2);
        assert!(!p.a.set_dns_handler(echo_handler(b'3')), "a serves no DNS");
    }

    #[test]
    fn dns_over_tcp_several_queries_and_connections() {
        let mut p = Pair::new();
        p.b.serve_dns(53, echo_handler(b'1'));
        let big = vec![b'x'; 30_000];
        assert_eq!(
            dns_tcp(&mut p, &[b"one", b"two", &big]),
            DnsTcpOutcome::Done(vec![
                b"1Tone".to_vec(),
                b"1Ttwo".to_vec(),
                [&b"1T"[..], &big].concat()
            ])
        );
        // Many connections back to back, and two at once.
        for i in 0..10u8 {
            assert_eq!(
                dns_tcp(&mut p, &[&[i]]),
                DnsTcpOutcome::Done(vec![vec![b'1', b'T', i]])
            );
        }
        let now = p.now();
        let dst = SocketAddrV4::new(B_IP, 53);
        let x = p.a.dns_tcp_query(now, dst, &[b"x".to_vec()]);
        let y = p.a.dns_tcp_query(now, dst, &[b"y".to_vec(), b"z".to_vec()]);
        p.run_until(5_000, |p| {
            p.a.dns_tcp_result(x) != DnsTcpOutcome::Pending
                && p.a.dns_tcp_result(y) != DnsTcpOutcome::Pending
        });
        assert_eq!(
            p.a.dns_tcp_result(x),
            DnsTcpOutcome::Done(vec![b"1Tx".to_vec()])
        );
        assert_eq!(
            p.a.dns_tcp_result(y),
            DnsTcpOutcome::Done(vec![b"1Ty".to_vec(), b"1Tz".to_vec()])
        );
        // A refused query closes the connection after the answers before it.
        match dns_tcp(&mut p, &[b"ok", b"!bad", b"never"]) {
            DnsTcpOutcome::Failed(e) => assert!(e.contains("after 1 of 3"), "{e}"),
            other => panic!("{other:?}"),
        }
        // Nothing on port 54.
        let now = p.now();
        let id =
            p.a.dns_tcp_query(now, SocketAddrV4::new(B_IP, 54), &[b"q".to_vec()]);
        p.run_until(1_000, |p| p.a.dns_tcp_result(id) != DnsTcpOutcome::Pending);
        assert_eq!(p.a.dns_tcp_result(id), DnsTcpOutcome::Refused);
        // Everything is cleaned up once TIME-WAIT has passed.
        for _ in 0..12 {
            p.step += 1000;
            p.tick();
        }
        assert!(p.a.closing.is_empty() && p.b.closing.is_empty());
        let conns = p.b.dns.as_ref().map(|d| d.conns_len()).unwrap_or_default();
        assert_eq!(conns, LISTEN_BACKLOG);
    }

    #[test]
    fn idle_dns_connections_are_closed() {
        let mut p = Pair::new();
        p.b.serve_dns(53, echo_handler(b'1'));
        let now = p.now();
        let none = p.a.dns_tcp_query(now, SocketAddrV4::new(B_IP, 53), &[]);
        assert_eq!(p.a.dns_tcp_result(none), DnsTcpOutcome::Done(vec![]));
        // A client that connects and never sends a whole query.
        let mut socket = tcp_socket(4096, 4096);
        socket
            .connect(
                p.a.iface.context(),
                SocketAddrV4::new(B_IP, 53),
                SocketAddrV4::new(A_IP, 50000),
            )
            .unwrap();
        let handle = p.a.sockets.add(socket);
        p.run_until(100, |p| p.a.sockets.get::<tcp::Socket>(handle).may_send());
        p.a.sockets
            .get_mut::<tcp::Socket>(handle)
            .send_slice(&[0, 10, 1])
            .unwrap();
        let t = p.b.poll_timeout(p.now()).unwrap();
        assert!(t <= p.now() + Duration::from_secs(10));
        for _ in 0..11 {
            p.step += 1000;
            p.tick();
        }
        assert!(
            !p.a.sockets.get::<tcp::Socket>(handle).may_recv(),
            "server closed"
        );
    }

    #[test]
    fn response_parsing() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"),
            Ok((200, "ok".to_string(), true))
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok"),
            Ok((200, "ok".to_string(), false))
        );
        assert!(parse_response(b"junk\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
