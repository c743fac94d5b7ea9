//! The data plane's paths, packet by packet: Services (`services`) and
//! the overlay between nodes (`between_nodes`), with the helpers they share.

use super::*;
use crate::overlay::{self, OVERLAY_HEADER_LEN};
use crate::wire::packet::{self, Transport};
use cluster::{Protocol, Service, ServicePort, ServiceType, SessionAffinity, TargetPort};
use etherparse::PacketBuilder;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

mod between_nodes;
mod changes;
mod offload;
mod services;

pub(super) const VIP: Ipv4Addr = Ipv4Addr::new(10, 101, 182, 177);
pub(super) const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 100);
pub(super) const NODE: &str = "mac-worker";

/// Runs one packet held in a `Vec` through the data plane, leaving the
/// result (without overlay headers) in the `Vec`.
pub(super) fn handle(dp: &mut Dataplane, now: Instant, pkt: &mut Vec<u8>) -> Verdict {
    let mut buf = PacketBuf::from_slice(pkt);
    let v = dp.handle_packet(now, Ingress::Tun, &mut buf);
    let mut out = buf.data().to_vec();
    if let Verdict::Forward(Egress::Overlay { .. }) = v {
        out.drain(..OVERLAY_HEADER_LEN);
    }
    *pkt = out;
    v
}

pub(super) fn cluster() -> Cluster {
    let mut c = control::config::parse(include_str!(
        "../../../../control/tests/fixtures/cluster.toml"
    ))
    .expect("default config");
    // Pin down the shape this test relies on, independent of the file.
    c.services.retain(|s| s.name == "nginx-svc");
    c.services.push(Service {
        name: "empty".into(),
        namespace: "default".into(),
        labels: BTreeMap::new(),
        selector: BTreeMap::from([("app".into(), "none".into())]),
        service_type: ServiceType::ClusterIP,
        cluster_ip: Ipv4Addr::new(10, 96, 0, 20),
        ports: vec![ServicePort {
            name: None,
            protocol: Protocol::Udp,
            port: 53,
            target_port: TargetPort::Number(53),
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
    });
    c
}

pub(super) fn tcp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.octets(), dst.octets(), 64).tcp(sport, dport, 1, 1000);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut out = Vec::new();
    b.write(&mut out, &[]).expect("build");
    out
}

pub(super) fn endpoints(c: &Cluster) -> Vec<Ipv4Addr> {
    let svc = c.service("default", "nginx-svc").expect("nginx-svc");
    c.endpoints(svc, &svc.ports[0])
        .iter()
        .map(|e| e.ip)
        .collect()
}

/// Two nodes, one nginx pod each, a client on mac-worker.
pub(super) const TWO_NODES: &str = r#"
[cluster]
podCIDR = "10.10.0.0/16"
[[nodes]]
name = "mac-master"
address = "192.168.191.144"
podCIDR = "10.10.0.0/24"
[[nodes]]
name = "mac-worker"
address = "192.168.191.145"
podCIDR = "10.10.1.0/24"
[[pods]]
name = "web-master"
node = "mac-master"
ip = "10.10.0.2"
labels = { app = "web" }
[[pods]]
name = "web-worker"
node = "mac-worker"
ip = "10.10.1.2"
labels = { app = "web" }
[[pods]]
name = "client"
node = "mac-worker"
ip = "10.10.1.100"
[[services]]
name = "web"
clusterIP = "10.96.0.50"
selector = { app = "web" }
ports = [{ port = 80 }]
"#;

pub(super) fn two_nodes() -> (Cluster, Dataplane, Dataplane) {
    let c = control::config::parse(TWO_NODES).expect("two-node config");
    let master = Dataplane::new(&DataplaneConfig::default(), &c, "mac-master").expect("node");
    let worker = Dataplane::new(&DataplaneConfig::default(), &c, "mac-worker").expect("node");
    (c, master, worker)
}

pub(super) fn from_peer(
    dp: &mut Dataplane,
    now: Instant,
    from: Ipv4Addr,
    vni: u32,
    inner: &[u8],
) -> Verdict {
    from_peer_to_mac(dp, now, from, vni, dp.topology.mac, inner)
}

/// Like [`from_peer`], with the inner Ethernet frame addressed to `mac`.
pub(super) fn from_peer_to_mac(
    dp: &mut Dataplane,
    now: Instant,
    from: Ipv4Addr,
    vni: u32,
    mac: [u8; 6],
    inner: &[u8],
) -> Verdict {
    let mut header = [0u8; OVERLAY_HEADER_LEN];
    overlay::write_header(&mut header, vni, overlay::vtep_mac(from), mac);
    let mut framed = header.to_vec();
    framed.extend_from_slice(inner);
    dp.handle_packet(
        now,
        Ingress::Overlay { from },
        &mut PacketBuf::from_slice(&framed),
    )
}
