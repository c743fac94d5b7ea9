//! Per-packet cost of the node core (`dataplane::node::Node`, what the shell
//! drives; no I/O): a packet of an
//! established flow (conntrack hit + NAT rewrite) and a new flow's first
//! packet (Service lookup + Maglev pick + conntrack insert), with 1, 1,000
//! and 10,000 Services and 100,000 tracked flows. With TUN offload: a
//! 64 KiB TCP super-packet of an established flow with a partial checksum
//! (NATed once, cost per byte), and cutting it into MSS-sized segments
//! with full checksums, as the shell does for the overlay.
//!
//! Run: `cargo bench -p dataplane --bench dataplane`.

// A benchmark measures wall time and needs a starting instant for the core.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use etherparse::PacketBuilder;

use cluster::{
    Cluster, ContainerPort, Pod, Protocol, Service, ServicePort, ServiceType, SessionAffinity,
    TargetPort,
};
use dataplane::buf::PacketBuf;
use dataplane::engine::{DataplaneConfig, Ingress, Verdict};
use dataplane::node::Node;
use dataplane::wire::offload::{self, Gso, L4Checksum, Offload};

const FLOWS: usize = 100_000;

fn cluster(services: usize) -> Cluster {
    let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
    // Two web pods (the endpoints) and 200 client pods (10.10.1.32 up),
    // all local to node n1: the data plane accepts sources only from its
    // own pods.
    let clients = (0..200u8).map(|i| Pod {
        name: format!("client-{i}"),
        namespace: "default".into(),
        labels: BTreeMap::new(),
        ip: client_ip(usize::from(i)),
        node: "n1".into(),
        ready: true,
        owner: None,
        ports: vec![],
    });
    let pods = (0..2u8)
        .map(|i| Pod {
            name: format!("web-{i}"),
            namespace: "default".into(),
            labels: labels.clone(),
            ip: Ipv4Addr::new(10, 10, 1, 10 + i),
            node: "n1".into(),
            ready: true,
            owner: None,
            ports: vec![ContainerPort {
                name: None,
                container_port: 80,
                protocol: Protocol::Tcp,
            }],
        })
        .chain(clients)
        .collect();
    let services = (0..services)
        .map(|i| Service {
            name: format!("svc-{i}"),
            namespace: "default".into(),
            labels: BTreeMap::new(),
            selector: labels.clone(),
            service_type: ServiceType::ClusterIP,
            cluster_ip: vip(i),
            ports: vec![ServicePort {
                name: None,
                protocol: Protocol::Tcp,
                port: 80,
                target_port: TargetPort::Number(80),
                node_port: None,
            }],
            session_affinity: SessionAffinity::None,
            external_traffic_policy: Default::default(),
            internal_traffic_policy: Default::default(),
            headless: false,
            external_name: None,
            external_ips: vec![],
            load_balancer_ips: vec![],
            created: None,
        })
        .collect();
    Cluster {
        pod_cidr: "10.10.0.0/16".parse().expect("cidr"),
        service_cidr: "10.96.0.0/12".parse().expect("cidr"),
        dns_domain: "cluster.local".into(),
        overlay: Default::default(),
        nodes: vec![cluster::Node {
            name: "n1".into(),
            underlay_ip: Ipv4Addr::new(192, 168, 191, 145),
            pod_cidr: "10.10.1.0/24".parse().expect("cidr"),
            next_pod_ip: None,
        }],
        deployments: vec![],
        pods,
        services,
        endpoint_slices: None,
    }
}

fn vip(i: usize) -> Ipv4Addr {
    let i = i as u32 + 100;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + i)
}

fn packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, syn: bool) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.octets(), dst.octets(), 64).tcp(sport, 80, 1, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut out = Vec::new();
    b.write(&mut out, &[0u8; 10]).expect("build");
    out
}

fn client_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 10, 1, 32 + (i % 200) as u8)
}

fn client(flow: usize) -> (Ipv4Addr, u16) {
    let host = (flow / 50_000) as u8;
    (
        client_ip(usize::from(host)),
        10_000 + (flow % 50_000) as u16,
    )
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("dataplane");
    group.throughput(Throughput::Elements(1));
    for services in [1usize, 1_000, 10_000] {
        let cl = cluster(services);
        let config = DataplaneConfig {
            conntrack_capacity: FLOWS + 20_000,
            // Long enough that nothing expires while the bench runs.
            timeouts: dataplane::conntrack::Timeouts {
                tcp_syn_sent: std::time::Duration::from_secs(30 * 24 * 3600),
                tcp_established: std::time::Duration::from_secs(30 * 24 * 3600),
                ..Default::default()
            },
            ..DataplaneConfig::default()
        };
        let mut dp = Node::new(&config, &cl, "n1").expect("node");
        let t0 = Instant::now();
        // 100,000 established flows spread over the Services, each picked
        // up from an ACK (as after a restart): 100,000 SYNs would be held
        // to the table's half-open share (half its capacity).
        let mut established = Vec::with_capacity(FLOWS);
        for flow in 0..FLOWS {
            let (src, sport) = client(flow);
            let dst = vip(flow % services);
            let ack = packet(src, dst, sport, false);
            assert!(matches!(
                dp.handle_packet(t0, Ingress::Tun, &mut PacketBuf::from_slice(&ack)),
                Verdict::Forward(_)
            ));
            established.push(ack);
        }
        assert_eq!(dp.conntrack().len(), FLOWS);

        let mut pb = PacketBuf::new();
        // One flow over and over: the per-packet instruction path, caches warm
        // (packets of one flow arrive in bursts).
        let hot = established[FLOWS / 2].clone();
        group.bench_function(
            BenchmarkId::new("established_packet_same_flow", services),
            |b| {
                b.iter(|| {
                    pb.recv_area()[..hot.len()].copy_from_slice(&hot);
                    pb.set_len(hot.len());
                    black_box(dp.handle_packet(t0, Ingress::Tun, black_box(&mut pb)))
                })
            },
        );
        // Every packet from a different one of the 100,000 flows, in random
        // order: each lookup misses the CPU caches (the worst case). The
        // packets themselves are read sequentially so that only the data
        // plane's own memory accesses miss.
        let mut order: Vec<usize> = (0..FLOWS).collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for k in (1..FLOWS).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(k, (x % (k as u64 + 1)) as usize);
        }
        let len = hot.len();
        let shuffled: Vec<u8> = order
            .iter()
            .flat_map(|&f| established[f].iter().copied())
            .collect();
        let mut i = 0usize;
        group.bench_function(
            BenchmarkId::new("established_packet_random_flow", services),
            |b| {
                b.iter(|| {
                    let at = (i % FLOWS) * len;
                    i = i.wrapping_add(1);
                    pb.recv_area()[..len].copy_from_slice(&shuffled[at..at + len]);
                    pb.set_len(len);
                    black_box(dp.handle_packet(t0, Ingress::Tun, black_box(&mut pb)))
                })
            },
        );

        // One batch of the expiry sweep (8,192 of the 100,000 flows, none
        // due): the longest pause it puts in the packet loop.
        if services == 1 {
            let mut second = 0u64;
            group.bench_function("conntrack_sweep_batch_of_100k_flows", |b| {
                b.iter(|| {
                    second += 1;
                    dp.handle_timeout(t0 + std::time::Duration::from_secs(second));
                })
            });
        }

        let mut n = 0usize;
        let template = packet(client_ip(100), vip(0), 1, true);
        group.bench_function(BenchmarkId::new("new_flow_first_packet", services), |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                let pkt = &mut pb.recv_area()[..template.len()];
                pkt.copy_from_slice(&template);
                // A fresh tuple each time: source address and port vary,
                // destination cycles over the Services.
                // Clients 100..200: not the ones holding the established flows.
                let src = client_ip(100 + (n / 60_000) % 100);
                pkt[12..16].copy_from_slice(&src.octets());
                pkt[20..22].copy_from_slice(&(1_000 + (n % 60_000) as u16).to_be_bytes());
                pkt[16..20].copy_from_slice(&vip(n % services).octets());
                fix_checksums(pkt);
                pb.set_len(template.len());
                black_box(dp.handle_packet(t0, Ingress::Tun, black_box(&mut pb)))
            })
        });
        assert_eq!(
            dp.stats().dropped_total(),
            0,
            "the bench must measure forwarded packets, not drops: {:?}",
            dp.stats()
        );
    }
    group.finish();
}

/// Recomputes the IP header checksum after the bench edits addresses (the
/// data path does not verify L4 checksums, so those may stay stale here).
fn fix_checksums(pkt: &mut [u8]) {
    pkt[10] = 0;
    pkt[11] = 0;
    let c = dataplane::checksum::checksum(0, &pkt[..20]);
    pkt[10..12].copy_from_slice(&c.to_be_bytes());
}

/// A 64 KiB super-packet (60,000 bytes of payload) of one established
/// flow, read with a partial checksum; and its software segmentation.
fn super_packet(c: &mut Criterion) {
    const PAYLOAD: usize = 60_000;
    let mut group = c.benchmark_group("offload");
    let cl = cluster(1);
    let mut dp = Node::new(&DataplaneConfig::default(), &cl, "n1").expect("node");
    let t0 = Instant::now();
    let (src, sport) = client(0);
    let syn = packet(src, vip(0), sport, true);
    assert!(matches!(
        dp.handle_packet(t0, Ingress::Tun, &mut PacketBuf::from_slice(&syn)),
        Verdict::Forward(_)
    ));
    let mut big = Vec::new();
    PacketBuilder::ipv4(src.octets(), vip(0).octets(), 64)
        .tcp(sport, 80, 1, 64240)
        .ack(1)
        .write(&mut big, &vec![0x5a; PAYLOAD])
        .expect("build");
    let offload = Offload {
        checksum: L4Checksum::Partial,
        gso: Gso::Tcp { mss: 1410 },
    };
    let mut pb = PacketBuf::from_slice(&big);
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("super_packet_64k_established", |b| {
        b.iter(|| {
            // NAT rewrites the headers in place: put them back (the
            // payload is untouched), as a fresh read would.
            pb.recv_area()[..40].copy_from_slice(&big[..40]);
            pb.set_len(big.len());
            pb.set_offload(offload);
            black_box(dp.handle_packet(t0, Ingress::Tun, black_box(&mut pb)))
        })
    });
    let mut out = Vec::with_capacity(1500);
    group.bench_function("super_packet_64k_segmented_for_the_overlay", |b| {
        b.iter(|| black_box(offload::segment(&big, offload.gso, &[0u8; 22], &mut out)))
    });
    assert_eq!(dp.stats().dropped_total(), 0, "{:?}", dp.stats());
    group.finish();
}

criterion_group!(benches, bench, super_packet);
criterion_main!(benches);
