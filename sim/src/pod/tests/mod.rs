//! The clients against netstack's servers, two pods on a direct link.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use netstack::host::LISTEN_BACKLOG;
use netstack::HostConfig;

use super::*;

mod dns;
mod http;
mod udp_ping;

pub(super) const A_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 5);
pub(super) const B_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 2, 42);

pub(super) struct Pair {
    pub(super) a: Pod,
    pub(super) b: Pod,
    t0: Instant,
    pub(super) step: u32,
    a_to_b: usize,
    b_to_a: usize,
}

impl Pair {
    pub(super) fn new() -> Self {
        let t0 = Instant::now();
        let a = Pod::new(
            HostConfig::new("client-pod", A_IP, Ipv4Addr::new(10, 10, 1, 1)),
            t0,
        );
        let b = Pod::new(
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

    pub(super) fn now(&self) -> Instant {
        self.t0 + Duration::from_millis(u64::from(self.step))
    }

    /// One millisecond of a direct link between the hosts.
    pub(super) fn tick(&mut self) {
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

    pub(super) fn run_until(&mut self, max_ms: u32, mut done: impl FnMut(&Self) -> bool) {
        for _ in 0..max_ms {
            if done(self) {
                return;
            }
            self.tick();
        }
        assert!(done(self), "condition not reached within {max_ms} ms");
    }

    pub(super) fn http(&mut self, dst: SocketAddrV4, path: &str) -> HttpOutcome {
        let now = self.now();
        let id = self.a.http_get(now, dst, path);
        self.run_until(5_000, |p| p.a.http_result(id) != HttpOutcome::Pending);
        self.a.http_result(id)
    }
}

pub(super) fn body_of(outcome: HttpOutcome) -> String {
    match outcome {
        HttpOutcome::Done { status: 200, body } => body,
        other => panic!("unexpected outcome {other:?}"),
    }
}
