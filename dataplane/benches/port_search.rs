//! The cost of a new masqueraded flow when the source-port range is nearly
//! full (issue: a SYN flood to a NodePort made each new flow search ~28,000
//! ports, ~1 ms). The search is the engine's: the flow's own port first,
//! then [`dataplane::nat::source_ports`] (at most
//! [`dataplane::nat::MAX_PORT_ATTEMPTS`]), each tried as a conntrack insert.
//!
//! Run: `cargo bench -p dataplane --bench port_search`.

// A benchmark measures wall time and needs a starting instant for the core.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};

use dataplane::conntrack::{ConnTrack, InsertError, Timeouts};
use dataplane::nat::{self, NAT_PORT_FIRST, NAT_PORT_LAST};
use dataplane::packet::{FlowKey, TcpFlags, Transport, PROTO_TCP};

const BACKEND: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 10);
const MASQ: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 0);

/// A NodePort flow from `client:sport`, masqueraded to MASQ:`port` and sent
/// to the backend: its original tuple and the reply tuple for `port`.
fn flow(client: u32, sport: u16, port: u16) -> (FlowKey, FlowKey) {
    let original = FlowKey {
        proto: PROTO_TCP,
        src: Ipv4Addr::from(client),
        dst: Ipv4Addr::new(192, 168, 191, 144),
        sport,
        dport: 30080,
    };
    let reply = FlowKey {
        proto: PROTO_TCP,
        src: BACKEND,
        dst: MASQ,
        sport: 80,
        dport: port,
    };
    (original, reply)
}

fn syn() -> Transport {
    Transport::Tcp {
        flags: TcpFlags {
            syn: true,
            ..TcpFlags::default()
        },
        seq: 0,
        ack: 0,
        seg_len: 1,
    }
}

/// Inserts a new flow the way the engine's `track` does; returns whether
/// it found a port.
fn track(ct: &mut ConnTrack, original: FlowKey, first: u16, now: Instant) -> bool {
    let syn = syn();
    let candidates = std::iter::once(first).chain(nat::source_ports(&original));
    for port in candidates {
        let (_, reply) = flow(0, 0, port);
        match ct.insert(original, reply, &syn, now) {
            Ok(id) => {
                ct.remove(id);
                return true;
            }
            Err(InsertError::Clash) => {}
            Err(InsertError::Full(_)) => return false,
        }
    }
    false
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let range = usize::from(NAT_PORT_LAST - NAT_PORT_FIRST) + 1;
    let mut g = c.benchmark_group("new_masqueraded_flow");
    for (name, used) in [
        ("range_empty", 0),
        ("range_99pct_used", range * 99 / 100),
        ("range_full", range),
    ] {
        let mut ct = ConnTrack::new(200_000, Timeouts::default(), 1);
        ct.set_max_half_open(200_000);
        for (i, port) in (NAT_PORT_FIRST..=NAT_PORT_LAST).take(used).enumerate() {
            let (o, r) = flow(0x0b00_0000 + i as u32, 1000, port);
            ct.insert(o, r, &syn(), now).expect("fill");
        }
        let mut client = 0x0c00_0000u32;
        g.bench_function(name, |b| {
            b.iter(|| {
                client = client.wrapping_add(1);
                let (o, _) = flow(client, 40000, 0);
                black_box(track(
                    &mut ct,
                    o,
                    NAT_PORT_FIRST + (client % 100) as u16,
                    now,
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
