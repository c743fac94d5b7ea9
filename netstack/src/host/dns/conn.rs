//! One TCP connection of the DNS server, from listening socket to close:
//! length-prefixed queries in, answers out, within the bounds of
//! [`super::limits`].

use std::time::Instant;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

use super::limits::{DnsTcpStats, HALF_OPEN_TIMEOUT, IDLE_TIMEOUT, MAX_INPUT, MAX_PENDING_OUTPUT};
use crate::dns::{frame, take_frame, DnsHandler, DnsTransport};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// A listening socket, waiting for a SYN.
    Listening,
    /// SYN received, handshake not finished (what a SYN flood makes).
    HalfOpen,
    /// Past the handshake.
    Open,
}

/// How a connection leaves the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// Closed (or closing): the host drops the socket once smoltcp is done.
    Close,
    /// Dropped at once, without a word (a half-open connection: whoever
    /// sent the SYN may not even exist).
    Drop,
}

/// One TCP connection of the DNS server (or a listening socket waiting
/// for one).
#[derive(Debug)]
pub(super) struct DnsConn {
    pub(super) handle: SocketHandle,
    pub(super) port: u16,
    pub(super) phase: Phase,
    /// When the SYN came (eviction takes the oldest half-open first).
    pub(super) since: Instant,
    /// Bytes received and not yet a whole query.
    input: Vec<u8>,
    /// Framed responses not yet handed to the socket (from `sent` on).
    output: Vec<u8>,
    sent: usize,
    /// Close once the output is sent (the handler refused a query).
    finish: bool,
    /// Set when the connection is done; the server then lets it go.
    pub(super) end: Option<End>,
    /// The handshake must finish, or the next query come, by then.
    pub(super) deadline: Option<Instant>,
}

impl DnsConn {
    /// A listening socket's connection.
    pub(super) fn listening(handle: SocketHandle, port: u16, now: Instant) -> Self {
        DnsConn {
            handle,
            port,
            phase: Phase::Listening,
            since: now,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            finish: false,
            end: None,
            deadline: None,
        }
    }

    /// Marks the connection to be dropped at once.
    pub(super) fn drop_now(&mut self) {
        self.end = Some(End::Drop);
    }

    /// Bytes held in the connection's own buffers.
    pub(super) fn buffer_bytes(&self) -> usize {
        self.input.capacity() + self.output.capacity()
    }

    /// Moves the connection on: notes the handshake, reads queries, asks
    /// `handler`, writes answers, closes when done or idle. Returns
    /// whether anything happened.
    pub(super) fn run(
        &mut self,
        socket: &mut tcp::Socket<'_>,
        now: Instant,
        handler: &mut DnsHandler,
        answered: &mut u64,
        counters: &mut DnsTcpStats,
    ) -> bool {
        let state = socket.state();
        let mut progress = false;
        match (self.phase, state) {
            (Phase::Listening, tcp::State::Listen) => return false,
            (Phase::HalfOpen, tcp::State::Listen) => {
                // A RST sent the socket back to listening.
                self.phase = Phase::Listening;
                self.deadline = None;
                return true;
            }
            (Phase::Listening, tcp::State::SynReceived) => {
                self.phase = Phase::HalfOpen;
                self.since = now;
                self.deadline = Some(now + HALF_OPEN_TIMEOUT);
                return true;
            }
            (Phase::HalfOpen, tcp::State::SynReceived) => {
                if self.deadline.is_some_and(|d| now >= d) {
                    counters.expired_half_open += 1;
                    self.drop_now();
                    return true;
                }
                return false;
            }
            (Phase::Listening | Phase::HalfOpen, _) => {
                self.phase = Phase::Open;
                self.deadline = Some(now + IDLE_TIMEOUT);
                progress = true;
            }
            (Phase::Open, _) => {}
        }
        progress |= self.read(socket);
        progress |= self.answer(now, handler, answered);
        progress |= self.write(socket, now);
        let flushed = self.output.is_empty();
        let idle = self.deadline.is_some_and(|d| now >= d);
        if state == tcp::State::Closed {
            self.end = Some(End::Close);
        } else if flushed && (self.finish || !socket.may_recv() || idle) {
            if idle && !self.finish && socket.may_recv() {
                counters.expired_idle += 1;
            }
            socket.close();
            self.end = Some(End::Close);
            progress = true;
        } else if idle {
            // The peer is not reading its answers.
            counters.expired_idle += 1;
            socket.abort();
            self.end = Some(End::Close);
            progress = true;
        }
        progress
    }

    /// Takes what arrived, up to [`MAX_INPUT`] held.
    fn read(&mut self, socket: &mut tcp::Socket<'_>) -> bool {
        let mut progress = false;
        while self.input.len() < MAX_INPUT && socket.can_recv() {
            let room = MAX_INPUT - self.input.len();
            match socket.recv(|data| {
                let n = data.len().min(room);
                (n, data[..n].to_vec())
            }) {
                Ok(data) if !data.is_empty() => {
                    self.input.extend_from_slice(&data);
                    progress = true;
                }
                _ => break,
            }
        }
        progress
    }

    /// Answers every whole query, while the answers waiting to be sent
    /// stay under [`MAX_PENDING_OUTPUT`].
    fn answer(&mut self, now: Instant, handler: &mut DnsHandler, answered: &mut u64) -> bool {
        let mut progress = false;
        while !self.finish && self.output.len() - self.sent < MAX_PENDING_OUTPUT {
            let Some(query) = take_frame(&mut self.input) else {
                break;
            };
            self.deadline = Some(now + IDLE_TIMEOUT);
            progress = true;
            match handler(&query, DnsTransport::Tcp).and_then(|r| frame(&r)) {
                Some(framed) => {
                    *answered += 1;
                    self.output.extend_from_slice(&framed);
                }
                None => self.finish = true,
            }
        }
        shrink_if_empty(&mut self.input);
        progress
    }

    /// Hands answers to the socket as it has room.
    fn write(&mut self, socket: &mut tcp::Socket<'_>, now: Instant) -> bool {
        let mut progress = false;
        while self.sent < self.output.len() && socket.can_send() {
            match socket.send_slice(&self.output[self.sent..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.sent += n;
                    self.deadline = Some(now + IDLE_TIMEOUT);
                    progress = true;
                }
            }
        }
        if self.sent == self.output.len() {
            self.output.clear();
            self.sent = 0;
            shrink_if_empty(&mut self.output);
        }
        progress
    }
}

/// Gives back the memory of an emptied buffer that a large message grew
/// (connections live long; most messages are small).
fn shrink_if_empty(buf: &mut Vec<u8>) {
    const KEEP: usize = 1024;
    if buf.is_empty() && buf.capacity() > KEEP {
        buf.shrink_to(KEEP);
    }
}
