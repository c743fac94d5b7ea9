//! What a tracked flow costs in memory: a node core (`dataplane::node::Node`)
//! of a small cluster (10 UDP Services, 5 endpoints each, on two nodes)
//! takes 100,000 flows, one UDP datagram each from a distinct (source
//! address, source port) of this node's pods to a ClusterIP, as real pods
//! would; then 100,000 TCP flows the same way (the same Services on TCP),
//! each one ACK segment: a connection picked up under way, as after a
//! restart, so that it is established at once (100,000 SYNs would
//! be held to the half-open share of the table, half of it). A
//! counting global allocator gives the bytes the heap holds before and
//! after, and the most it held on the way (growing a table briefly holds
//! the old and the new one). Bytes, not time: the figures are exact and
//! the same on every run and machine (for one toolchain).
//!
//! Run: `cargo bench -p dataplane --bench flow_memory`.

// The core needs a starting instant.
#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use etherparse::PacketBuilder;

use cluster::{Cluster, Pod, Protocol};
use dataplane::buf::PacketBuf;
use dataplane::engine::{DataplaneConfig, Ingress, Verdict};
use dataplane::node::Node;

#[path = "../tests/common/scale.rs"]
#[allow(dead_code)] // replace_endpoint is for the changes bench
mod scale;

/// The system allocator, counting the bytes it holds for the program.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; only counters
// are updated around it. (The workspace denies unsafe code; a global
// allocator cannot be written without it, and no crate is worth adding
// for these thirty lines.)
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            grew(new_size);
        }
        p
    }
}

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(live, Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const FLOWS: usize = 100_000;
const SERVICES: u32 = 10;
const MIB: f64 = 1024.0 * 1024.0;

/// Client pods on node n1, the flows' sources.
const CLIENTS: usize = 4;

fn client_ip(pod: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 200, 10 + pod as u8)
}

/// `scale::cluster`'s Services (on TCP if `tcp`), and the client pods.
fn cluster(tcp: bool) -> Cluster {
    let mut cluster = scale::cluster(SERVICES);
    if tcp {
        for p in cluster.services.iter_mut().flat_map(|s| &mut s.ports) {
            p.protocol = Protocol::Tcp;
        }
        let slices = cluster.endpoint_slices.iter_mut().flatten();
        for p in slices.flat_map(|s| &mut s.ports) {
            p.protocol = Protocol::Tcp;
        }
    }
    cluster.pods = (0..CLIENTS)
        .map(|i| Pod {
            name: format!("client-{i}"),
            namespace: "default".into(),
            labels: BTreeMap::new(),
            ip: client_ip(i),
            node: "n1".into(),
            ready: true,
            owner: None,
            ports: vec![],
        })
        .collect();
    cluster
}

/// Flow `i`'s source: one of the client pods, a port from 10,000 up.
fn source(i: usize) -> (Ipv4Addr, u16) {
    (client_ip(i % CLIENTS), 10_000 + (i / CLIENTS) as u16)
}

/// Service `i`'s ClusterIP (as `scale::cluster` numbers them).
fn vip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + (i as u32 % SERVICES) + 1)
}

fn datagram(i: usize, tcp: bool) -> Vec<u8> {
    let (src, sport) = source(i);
    let b = PacketBuilder::ipv4(src.octets(), vip(i).octets(), 64);
    let mut out = Vec::new();
    let written = if tcp {
        b.tcp(sport, 53, 1, 64240).ack(1).write(&mut out, &[])
    } else {
        b.udp(sport, 53).write(&mut out, &[0u8; 32])
    };
    written.expect("a valid packet");
    out
}

/// Builds a node, feeds it `FLOWS` new flows and prints what they cost.
fn measure(name: &str, tcp: bool) {
    let cluster = cluster(tcp);
    let packets: Vec<Vec<u8>> = (0..FLOWS).map(|i| datagram(i, tcp)).collect();
    let mut buf = PacketBuf::new();
    let before_node = LIVE.load(Relaxed);
    let config = DataplaneConfig::default();
    let mut node = Node::new(&config, &cluster, "n1").expect("node n1 of the cluster");
    let t0 = Instant::now();
    let empty = LIVE.load(Relaxed);
    PEAK.store(empty, Relaxed);
    for p in &packets {
        buf.recv_area()[..p.len()].copy_from_slice(p);
        buf.set_len(p.len());
        let verdict = node.handle_packet(t0, Ingress::Tun, &mut buf);
        assert!(matches!(verdict, Verdict::Forward(_)), "{verdict:?}");
        while node.poll_transmit().is_some() {}
    }
    let full = LIVE.load(Relaxed);
    let peak = PEAK.load(Relaxed);
    let ct = node.conntrack();
    let per_flow = (full - empty) as f64 / FLOWS as f64;
    println!(
        "{name}: {} flows tracked (capacity {}, half-open {}, evicted {})",
        ct.len(),
        ct.capacity(),
        ct.half_open(),
        ct.evicted()
    );
    println!(
        "{name}: the node holds {:.2} MiB empty, {:.2} MiB with the flows (peak {:.2} MiB): \
         {per_flow:.0} bytes per flow added, {:.0} bytes per flow all told",
        (empty - before_node) as f64 / MIB,
        (full - before_node) as f64 / MIB,
        (peak - before_node) as f64 / MIB,
        (full - before_node) as f64 / FLOWS as f64,
    );
    println!(
        "FLOW_MEMORY {name} empty_mib {:.2} full_mib {:.2} bytes_per_flow {per_flow:.0}",
        (empty - before_node) as f64 / MIB,
        (full - before_node) as f64 / MIB,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to choose.
    measure("udp", false);
    measure("tcp", true);
}
