//! The HTTP server of a host (see [`crate::responders::http`]): any number
//! of ports and connections, one request per connection.

use std::time::{Duration, Instant};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

use super::sockets::{tcp_socket, to_v4};
use super::{VirtualHost, LISTEN_BACKLOG};
use crate::responders;

/// A server connection that has not delivered a whole request by then is aborted.
const SERVER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Receive buffer of a server connection (a request head).
const RX_BUFFER: usize = 8192;
/// Send buffer of a server connection.
const TX_BUFFER: usize = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
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
struct Conn {
    handle: SocketHandle,
    port: u16,
    phase: Phase,
    request: Vec<u8>,
    response: Vec<u8>,
    sent: usize,
    deadline: Option<Instant>,
}

/// The HTTP ports of a host and their connections.
#[derive(Debug, Default)]
pub(super) struct HttpServer {
    ports: Vec<u16>,
    conns: Vec<Conn>,
}

impl HttpServer {
    /// The earliest deadline of a connection still reading its request.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.conns.iter().filter_map(|c| c.deadline).min()
    }
}

impl VirtualHost {
    /// Serves HTTP (see [`responders::http`]) on TCP `port`, for any number of
    /// connections, one request each.
    pub fn serve_http(&mut self, port: u16) {
        if port == 0 || self.http.ports.contains(&port) {
            return;
        }
        self.http.ports.push(port);
        self.replenish_http_listeners();
    }

    /// The HTTP server's sockets: listening and connected.
    pub fn http_server_sockets(&self) -> usize {
        self.http.conns.len()
    }

    /// Keeps `LISTEN_BACKLOG` idle listening sockets on every HTTP port.
    fn replenish_http_listeners(&mut self) -> bool {
        let mut added = false;
        for &port in &self.http.ports {
            let idle = self
                .http
                .conns
                .iter()
                .filter(|c| c.port == port && c.phase == Phase::Listening)
                .filter(|c| self.sockets.get::<tcp::Socket>(c.handle).is_listening())
                .count();
            for _ in idle..LISTEN_BACKLOG {
                let mut socket = tcp_socket(RX_BUFFER, TX_BUFFER);
                if let Err(e) = socket.listen(port) {
                    log::error!("{}: cannot listen on {port}: {e}", self.config.name);
                    break;
                }
                let handle = self.sockets.add(socket);
                self.http.conns.push(Conn {
                    handle,
                    port,
                    phase: Phase::Listening,
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

    /// Reads requests, writes answers, closes finished connections.
    pub(super) fn run_http_servers(&mut self, now: Instant) -> bool {
        let mut progress = false;
        let date = self.date_at(now);
        let name = self.config.name.clone();
        for conn in &mut self.http.conns {
            let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            progress |= run_conn(conn, socket, now, &name, &date);
        }
        // Hand finished connections over to `closing`.
        let closing = &mut self.closing;
        self.http.conns.retain(|c| {
            if c.phase == Phase::Closing {
                closing.push(c.handle);
                false
            } else {
                true
            }
        });
        progress |= self.replenish_http_listeners();
        progress
    }
}

/// Moves one server connection on. Returns whether anything happened.
fn run_conn(
    conn: &mut Conn,
    socket: &mut tcp::Socket<'_>,
    now: Instant,
    name: &str,
    date: &str,
) -> bool {
    let mut progress = false;
    let state = socket.state();
    if conn.phase == Phase::Listening {
        match state {
            tcp::State::Listen | tcp::State::SynReceived => return false,
            _ => {
                conn.phase = Phase::Reading;
                conn.deadline = Some(now + SERVER_REQUEST_TIMEOUT);
            }
        }
    }
    if conn.phase == Phase::Reading {
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
                conn.response = responders::http::respond(&req, local, peer, name, date);
                conn.phase = Phase::Writing;
            }
            (Err(e), _, _) => {
                log::info!("{name}: bad request: {e}");
                conn.response = responders::http::bad_request();
                conn.phase = Phase::Writing;
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
                    conn.phase = Phase::Closing;
                    progress = true;
                }
            }
        }
    }
    if conn.phase == Phase::Writing {
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
            conn.phase = Phase::Closing;
            progress = true;
        }
    }
    progress
}
