//! Two hosts on a direct link, and an application's sockets on a host.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

use super::*;

pub(crate) const A_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 5);
pub(crate) const B_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 2, 42);

/// Host `a` (a client's) and host `b` (the server) on a direct link, on a
/// clock that moves only when told.
pub(crate) struct Link {
    pub(crate) a: VirtualHost,
    pub(crate) b: VirtualHost,
    pub(crate) now: Instant,
}

impl Link {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Link {
            a: VirtualHost::new(HostConfig::new("a", A_IP, Ipv4Addr::new(10, 10, 1, 1)), now),
            b: VirtualHost::new(HostConfig::new("b", B_IP, Ipv4Addr::new(10, 10, 2, 1)), now),
            now,
        }
    }

    /// Moves every packet across the link, then one millisecond passes.
    pub(crate) fn tick(&mut self) {
        self.a.poll(self.now);
        self.b.poll(self.now);
        for _ in 0..64 {
            let mut moved = false;
            while let Some(p) = self.a.poll_transmit() {
                self.b.handle_packet(self.now, &p);
                moved = true;
            }
            while let Some(p) = self.b.poll_transmit() {
                self.a.handle_packet(self.now, &p);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        self.now += Duration::from_millis(1);
    }

    /// Ticks until `done` holds; fails after `max_ms`.
    pub(crate) fn run_until(&mut self, max_ms: u32, mut done: impl FnMut(&mut Self) -> bool) {
        for _ in 0..max_ms {
            if done(self) {
                return;
            }
            self.tick();
        }
        assert!(done(self), "condition not reached within {max_ms} ms");
    }

    /// A TCP connection from `a`'s `port` to `b`'s `dst_port`, established;
    /// it never times out by itself (as a patient client's).
    pub(crate) fn connect(&mut self, port: u16, dst_port: u16) -> SocketHandle {
        let dst = SocketAddrV4::new(B_IP, dst_port);
        let handle = self.a.connect_tcp(port, dst, (4096, 4096)).unwrap();
        self.a.socket_mut::<tcp::Socket>(handle).set_timeout(None);
        self.run_until(100, |l| l.a.socket::<tcp::Socket>(handle).may_send());
        handle
    }
}

#[test]
fn an_application_socket_talks_to_the_http_server() {
    let mut link = Link::new();
    link.b.serve_http(80);
    assert_eq!(link.b.http_server_sockets(), LISTEN_BACKLOG);
    let handle = link.connect(50000, 80);
    link.a
        .socket_mut::<tcp::Socket>(handle)
        .send_slice(b"GET /hostname HTTP/1.1\r\nHost: b\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    link.run_until(100, |l| {
        let socket = l.a.socket_mut::<tcp::Socket>(handle);
        while let Ok(data) = socket.recv(|d| (d.len(), d.to_vec())) {
            if data.is_empty() {
                break;
            }
            response.extend(data);
        }
        !socket.may_recv()
    });
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"), "{response:?}");
    assert!(response.ends_with(b"\r\n\r\nb"), "{response:?}");
    link.a.socket_mut::<tcp::Socket>(handle).close();
    link.a.release_tcp(handle);
    assert_eq!(link.a.closing_count(), 1);
    // TIME-WAIT (10 s) passes: every socket but the listeners is gone.
    for _ in 0..12 {
        link.now += Duration::from_secs(1);
        link.tick();
    }
    assert_eq!(link.a.closing_count(), 0);
    assert_eq!(link.a.socket_count(), 0);
    assert_eq!(link.b.closing_count(), 0);
    assert_eq!(link.b.socket_count(), LISTEN_BACKLOG);
    assert_eq!(link.b.http_server_sockets(), LISTEN_BACKLOG);
}

#[test]
fn poll_with_runs_the_application_every_round() {
    let mut link = Link::new();
    let mut rounds = 0;
    link.a.poll_with(link.now, |_| {
        rounds += 1;
        rounds < 3
    });
    assert_eq!(rounds, 3, "rounds continue while the application moves");
    assert_eq!(link.a.poll_timeout(link.now), None);
}
