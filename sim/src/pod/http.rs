//! The HTTP client of a [`Pod`]: `GET` one path per connection.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use netstack::VirtualHost;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

use super::{Client, ClientId, Clients, Pod};

/// An HTTP client request not finished by then fails.
pub(super) const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Socket buffers of a request: `(rx, tx)`.
const BUFFERS: (usize, usize) = (64 * 1024, 4096);

/// State of an HTTP request made with [`Pod::http_get`].
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

#[derive(Debug)]
pub(super) struct HttpClient {
    /// `None` once the socket has been dropped.
    pub(super) handle: Option<SocketHandle>,
    pub(super) local_port: u16,
    dst: SocketAddrV4,
    pub(super) request: Vec<u8>,
    sent: usize,
    response: Vec<u8>,
    pub(super) established: bool,
    pub(super) rst_seen: bool,
    pub(super) deadline: Instant,
    pub(super) outcome: HttpOutcome,
}

impl Pod {
    /// Starts `GET {path}` to `dst` from the next ephemeral port (49152 and up);
    /// follow it with [`http_result`](Self::http_result).
    pub fn http_get(&mut self, now: Instant, dst: SocketAddrV4, path: &str) -> ClientId {
        let local_port = self.clients.alloc_port();
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
        match self.host.connect_tcp(local_port, dst, BUFFERS) {
            Ok(handle) => {
                log::debug!("{}: http_get {local_port} -> {dst} {path}", self.name());
                client.handle = Some(handle);
            }
            Err(e) => client.outcome = HttpOutcome::Failed(format!("connect: {e}")),
        }
        self.clients.push(Client::Http(client))
    }

    /// The state of an HTTP request ([`HttpOutcome::Failed`] for an id that is not one).
    pub fn http_result(&self, id: ClientId) -> HttpOutcome {
        match self.clients.list.get(id.0) {
            Some(Client::Http(c)) => c.outcome.clone(),
            Some(Client::Udp { .. } | Client::DnsTcp(_)) => {
                HttpOutcome::Failed("not an HTTP request".to_string())
            }
            None => HttpOutcome::Failed("unknown client id".to_string()),
        }
    }
}

impl Clients {
    /// Moves HTTP requests on. Returns whether anything happened.
    pub(super) fn run_http(&mut self, host: &mut VirtualHost, now: Instant) -> bool {
        let mut progress = false;
        for client in &mut self.list {
            let Client::Http(c) = client else { continue };
            if c.outcome != HttpOutcome::Pending {
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
                log::debug!("{}: http_get {} -> {outcome:?}", self.name, c.dst);
                c.outcome = outcome;
                if let Some(handle) = c.handle.take() {
                    host.release_tcp(handle);
                }
            }
        }
        progress
    }
}

/// Moves one TCP client connection on: notes when it is established, sends
/// what is left of `request` (from `sent`), appends what arrived to
/// `input`. Returns whether request bytes were sent.
pub(super) fn pump_tcp_client(
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

/// Parses `HTTP/1.1 200 OK\r\n...\r\n\r\nbody`, honouring `Content-Length`:
/// `(status, body, whether the whole body is there)`.
pub(super) fn parse_response(buf: &[u8]) -> Result<(u16, String, bool), String> {
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
