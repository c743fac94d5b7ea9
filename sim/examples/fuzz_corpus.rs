//! Writes the fuzz targets' seed corpora (`fuzz/corpus/<target>/`) from the
//! simulated wire: the default cluster's pods and an external client reach
//! every Service (HTTP over TCP, UDP echo), the NodePorts, each other
//! (ping) and the cluster DNS (UDP and TCP); every packet a router read from
//! its TUN device seeds `tun`, every overlay payload seeds `overlay`, every
//! DNS query seeds `dns`, and `config.toml` seeds `config`.
//!
//! `cargo run -p sim --example fuzz_corpus`, then, in `fuzz/`,
//! `cargo +nightly fuzz cmin -O <target> corpus/<target>` keeps the seeds
//! that add coverage (the committed corpora are those).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster::{Protocol, ServiceType};
use dataplane::dns::proto::op::{Message, MessageType, OpCode, Query};
use dataplane::dns::proto::rr::{Name, RecordType};
use dataplane::packet::{self, Transport, PROTO_TCP, PROTO_UDP};
use sim::{default_cluster, Sim, Tap, CLUSTER_DNS_IP, EXTERNAL};

/// Outer IPv4 and UDP headers of a captured overlay datagram.
const OUTER_HEADERS: usize = 20 + 8;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = root.join("fuzz/corpus");
    let c = default_cluster();
    let mut sim = Sim::new("fuzz-corpus", &c);
    let clients: Vec<String> = ["client", "client-master", EXTERNAL]
        .into_iter()
        .map(str::to_owned)
        .collect();
    for svc in &c.services {
        if svc.headless || svc.service_type == ServiceType::ExternalName {
            continue;
        }
        for port in &svc.ports {
            let mut dsts = vec![SocketAddrV4::new(svc.cluster_ip, port.port)];
            if let Some(np) = port.node_port {
                dsts.extend(c.nodes.iter().map(|n| SocketAddrV4::new(n.underlay_ip, np)));
            }
            for dst in dsts {
                for (i, from) in clients.iter().enumerate() {
                    match port.protocol {
                        Protocol::Tcp if port.port != 53 => {
                            let _ = sim.http_get(from, dst, "/");
                        }
                        Protocol::Tcp => {}
                        Protocol::Udp if port.port == 53 => {
                            for (id, name) in [
                                (1, "nginx-svc.default.svc.cluster.local."),
                                (2, "kubernetes.default."),
                            ] {
                                let _ = sim.dns_udp(
                                    from,
                                    dst,
                                    5300 + i as u16,
                                    &query(id, name, RecordType::A),
                                );
                            }
                        }
                        Protocol::Udp => {
                            let _ = sim.dns_udp(from, dst, 9100 + i as u16, b"hello");
                        }
                    }
                }
            }
        }
    }
    let dns = SocketAddrV4::new(CLUSTER_DNS_IP, 53);
    let queries = [
        query(
            3,
            "nginx-headless.default.svc.cluster.local.",
            RecordType::A,
        ),
        query(
            4,
            "_http._tcp.nginx-svc.default.svc.cluster.local.",
            RecordType::SRV,
        ),
        query(5, "177.182.101.10.in-addr.arpa.", RecordType::PTR),
        query(6, "example.default.svc.cluster.local.", RecordType::AAAA),
    ];
    let _ = sim.dns_tcp("client", dns, &queries);
    for q in &queries {
        let _ = sim.dns_udp("client-master", dns, 5400, q);
    }
    for p in &c.pods {
        sim.pod("client").ping(p.ip, 1);
    }
    sim.advance(Duration::from_secs(1));

    let mut counts = [0usize; 3];
    for (tap, pkt) in sim.capture() {
        match tap {
            Tap::TunIn(_) => counts[0] += write(&corpus.join("tun"), pkt)?,
            Tap::Overlay => {
                let inner = pkt.get(OUTER_HEADERS..).unwrap_or_default();
                counts[1] += write(&corpus.join("overlay"), inner)?;
                continue;
            }
            Tap::TunOut(_) => {}
        }
        if let Some(q) = dns_query(pkt) {
            counts[2] += write(&corpus.join("dns"), q)?;
        }
    }
    for q in &queries {
        counts[2] += write(&corpus.join("dns"), q)?;
    }
    write(
        &corpus.join("config"),
        include_bytes!("../../control/tests/fixtures/cluster.toml"),
    )?;
    println!(
        "new seeds: {} tun, {} overlay, {} dns in {}",
        counts[0],
        counts[1],
        counts[2],
        corpus.display()
    );
    Ok(())
}

fn query(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    if let Ok(name) = Name::from_ascii(name) {
        m.add_query(Query::query(name, qtype));
    }
    m.to_vec().unwrap_or_default()
}

/// The DNS message a packet to port 53 carries (over TCP: its first, after
/// the length prefix).
fn dns_query(pkt: &[u8]) -> Option<&[u8]> {
    let p = packet::parse(pkt).ok()?;
    if p.key.dport != 53 {
        return None;
    }
    let l4 = pkt.get(p.l4_offset..p.len)?;
    let payload = match (p.key.proto, p.transport) {
        (PROTO_UDP, _) => l4.get(8..)?,
        (PROTO_TCP, Transport::Tcp { .. }) => {
            let data_offset = usize::from(l4.get(12)? >> 4) * 4;
            l4.get(data_offset + 2..)?
        }
        _ => return None,
    };
    (!payload.is_empty()).then_some(payload)
}

/// Writes `data` as a seed named by its hash; returns 1 if it is new.
fn write(dir: &Path, data: &[u8]) -> std::io::Result<usize> {
    if data.is_empty() {
        return Ok(0);
    }
    std::fs::create_dir_all(dir)?;
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    let path = dir.join(format!("{:016x}", h.finish()));
    if path.exists() {
        return Ok(0);
    }
    std::fs::write(path, data)?;
    Ok(1)
}
