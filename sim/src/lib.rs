//! In-process cluster simulation: every node's router core (a
//! [`dataplane::node::Node`], as the production shell runs it: the data plane
//! plus the pods the router hosts in process, the cluster DNS) and its pods
//! (smoltcp hosts from `netstack`), plus an external client, exchanging real
//! TCP, UDP and ICMP over in-memory links on a fake clock. No root, no
//! sockets, deterministic.
//!
//! The simulation plays each node's kernel the way the lab configures it:
//! every packet a pod sends goes to its node's router (policy routing into
//! the TUN device), and every packet a router writes back is delivered to
//! the pod that owns the destination address (the node's /32 routes to pod
//! veths) or to the external client (the underlay). Overlay datagrams go to
//! the peer router named by the verdict. The external client's packets go to
//! the node whose underlay address they are for (NodePorts), or to the first
//! node (LoadBalancer and external IPs, as if routed there). Packets nobody
//! owns are counted in [`Sim::undeliverable`]. Router-hosted pods (the
//! `kube-dns` pods, as config.toml has them) get no host of their own here:
//! their node's router serves them.
//!
//! Every packet that crosses a TUN device or the overlay is kept; when a test
//! fails, [`Sim`] writes them to `target/sim-pcap/<test>.pcap` (raw IPv4;
//! overlay packets with their outer IPv4/UDP headers, so `tshark -d
//! udp.port==8472,vxlan` decodes the VXLAN inside).
//!
//! The network is driven as quinn-proto's tests drive their pairs
//! (`drive_bounded`): it is stepped until nothing moves, but at most
//! [`Sim::max_steps`] steps at one instant; a scenario that does not
//! settle (a forwarding loop, two servers answering each other) fails with
//! the capture written, instead of hanging the test run. Packets between
//! nodes (overlay datagrams, underlay packets to another node) travel one
//! hop per step, so a loop between routers shows up as steps, not as
//! recursion.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cluster::{Cluster, Protocol};
use dataplane::buf::PacketBuf;
use dataplane::engine::{DataplaneConfig, Egress, Ingress, Verdict};
use dataplane::node::Node;
use netstack::HostConfig;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
pub use pod::{ClientId, DnsTcpOutcome, HttpOutcome, Pod};
// The simulation's pods: a netstack host plus the clients (see `pod`).
use pod::Pod as VirtualHost;

pub mod pod;

/// The external client's address on the underlay.
pub const EXTERNAL_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 191, 200);
/// The external client's name in [`Sim::pod`].
pub const EXTERNAL: &str = "external";

/// Steps a scenario may take at one instant before it counts as not
/// settling. The scenarios settle within 16 (every step moves each pending
/// packet one hop). Nothing else would end a loop here: the routers do not
/// decrement the TTL (the nodes' kernels do, which the simulation plays
/// without that), so a packet looping between routers loops forever.
pub const DEFAULT_MAX_STEPS: usize = 1_000;

/// Where a captured packet was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tap {
    /// Read by node `n`'s router from its TUN device.
    TunIn(usize),
    /// Written by node `n`'s router to its TUN device.
    TunOut(usize),
    /// Sent over the overlay (with outer IPv4/UDP headers).
    Overlay,
}

struct SimNode {
    name: String,
    underlay_ip: Ipv4Addr,
    router: Node,
    pods: Vec<VirtualHost>,
}

/// The whole cluster.
pub struct Sim {
    name: String,
    t0: Instant,
    now: Instant,
    overlay_port: u16,
    nodes: Vec<SimNode>,
    external: VirtualHost,
    /// Packets between nodes, handed to node `n`'s router on the next step.
    in_flight: VecDeque<(usize, Ingress, Vec<u8>)>,
    capture: Vec<(Duration, Tap, Vec<u8>)>,
    /// The bound of [`Sim::settle`].
    max_steps: usize,
    /// Packets no pod, node or client owns.
    pub undeliverable: usize,
}

fn host(name: &str, ip: Ipv4Addr, gateway: Ipv4Addr, mtu: usize, now: Instant) -> VirtualHost {
    VirtualHost::new(
        HostConfig {
            name: name.to_owned(),
            ip,
            gateway,
            mtu,
            wall_clock_unix: 1_656_051_730, // 2022-06-24T06:22:10Z, the walkthrough's date
        },
        now,
    )
}

impl Sim {
    /// Builds every node of `cluster`, with one smoltcp host per pod serving
    /// HTTP on its TCP container ports and the UDP responder on its UDP
    /// ports (as `pod-server` does in the lab), except router-hosted pods
    /// (their node's router serves them), and an external client. `name`
    /// names the capture file.
    pub fn new(name: &str, cluster: &Cluster) -> Self {
        let t0 = Instant::now();
        let pod_mtu = usize::from(cluster.overlay.pod_mtu());
        let nodes = cluster
            .nodes
            .iter()
            .map(|n| {
                let gateway = n.gateway();
                let pods = cluster
                    .pods
                    .iter()
                    .filter(|p| p.node == n.name && !p.is_router_hosted())
                    .map(|p| {
                        let mut h = host(&p.name, p.ip, gateway, pod_mtu, t0);
                        for port in &p.ports {
                            match port.protocol {
                                Protocol::Tcp => h.serve_http(port.container_port),
                                Protocol::Udp => h.serve_udp(port.container_port),
                            }
                        }
                        h
                    })
                    .collect();
                let router = match Node::new(&DataplaneConfig::default(), cluster, &n.name) {
                    Ok(r) => r,
                    Err(e) => panic!("{e}"),
                };
                SimNode {
                    name: n.name.clone(),
                    underlay_ip: n.underlay_ip,
                    router,
                    pods,
                }
            })
            .collect();
        let gateway = cluster
            .nodes
            .first()
            .map_or(Ipv4Addr::UNSPECIFIED, |n| n.underlay_ip);
        Self {
            name: name.to_owned(),
            t0,
            now: t0,
            overlay_port: cluster.overlay.port,
            nodes,
            external: host(
                EXTERNAL,
                EXTERNAL_IP,
                gateway,
                usize::from(cluster.overlay.underlay_mtu),
                t0,
            ),
            in_flight: VecDeque::new(),
            capture: Vec::new(),
            max_steps: DEFAULT_MAX_STEPS,
            undeliverable: 0,
        }
    }

    /// Sets the number of steps at one instant after which the scenario
    /// fails as not settling ([`DEFAULT_MAX_STEPS`] by default).
    pub fn max_steps(&mut self, steps: usize) -> &mut Self {
        self.max_steps = steps;
        self
    }

    /// Steps until nothing moves.
    ///
    /// # Panics
    /// When the network still moves after the step bound ([`Sim::max_steps`]):
    /// a forwarding loop or two hosts answering each other forever. The
    /// capture is written on the way out (see [`Sim::write_pcap`]).
    #[track_caller]
    pub fn settle(&mut self) {
        for _ in 0..self.max_steps {
            if !self.step() {
                return;
            }
        }
        panic!(
            "the simulated network did not settle within {} steps at t = {:?} \
             ({} packets captured, {} between nodes in flight): a forwarding loop, \
             or hosts answering each other forever? See target/sim-pcap/{}.pcap",
            self.max_steps,
            self.now - self.t0,
            self.capture.len(),
            self.in_flight.len(),
            self.name,
        );
    }

    /// The pod named `name` (or the external client, [`EXTERNAL`]).
    ///
    /// # Panics
    /// If there is no such pod (a test bug).
    #[track_caller]
    pub fn pod(&mut self, name: &str) -> &mut VirtualHost {
        if name == EXTERNAL {
            return &mut self.external;
        }
        match self
            .nodes
            .iter_mut()
            .flat_map(|n| n.pods.iter_mut())
            .find(|p| p.name() == name)
        {
            Some(p) => p,
            None => panic!("no pod {name} in the cluster"),
        }
    }

    /// Node `name`'s router core: the data plane and its in-process pods
    /// (the same as [`Sim::node`]; its data plane alone is
    /// [`Node::dataplane`]).
    ///
    /// # Panics
    /// If there is no such node (a test bug).
    #[track_caller]
    pub fn dataplane(&mut self, node: &str) -> &mut Node {
        self.node(node)
    }

    /// Node `name`'s router core.
    ///
    /// # Panics
    /// If there is no such node (a test bug).
    #[track_caller]
    pub fn node(&mut self, node: &str) -> &mut Node {
        match self.nodes.iter_mut().find(|n| n.name == node) {
            Some(n) => &mut n.router,
            None => panic!("no node {node}"),
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves every pending packet once (one hop). Returns whether anything
    /// moved.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        // What left a node on the previous step reaches the next one now;
        // what that sends on waits for the next step.
        for _ in 0..self.in_flight.len() {
            let Some((n, ingress, pkt)) = self.in_flight.pop_front() else {
                break;
            };
            moved = true;
            self.router_input(n, ingress, &pkt);
        }
        for n in 0..self.nodes.len() {
            for i in 0..self.nodes[n].pods.len() {
                self.nodes[n].pods[i].poll(now);
                while let Some(pkt) = self.nodes[n].pods[i].poll_transmit() {
                    moved = true;
                    // A pod's packets to its own address never leave its
                    // network namespace: its kernel loops them back (which is
                    // why a hairpinned Service flow needs masquerading).
                    let own = self.nodes[n].pods[i].ip();
                    if dataplane::packet::parse(&pkt).is_ok_and(|p| p.key.dst == own) {
                        self.nodes[n].pods[i].handle_packet(now, &pkt);
                        continue;
                    }
                    self.router_input(n, Ingress::Tun, &pkt);
                }
            }
        }
        self.external.poll(now);
        while let Some(pkt) = self.external.poll_transmit() {
            moved = true;
            let Ok(p) = dataplane::packet::parse(&pkt) else {
                self.undeliverable += 1;
                continue;
            };
            // The underlay: to the node owning the address, else to the
            // first node (a route to a LoadBalancer/external IP).
            let n = self
                .nodes
                .iter()
                .position(|n| n.underlay_ip == p.key.dst)
                .unwrap_or(0);
            self.router_input(n, Ingress::Tun, &pkt);
        }
        for n in 0..self.nodes.len() {
            self.nodes[n].router.handle_timeout(now);
            while let Some(t) = self.nodes[n].router.poll_transmit() {
                moved = true;
                self.router_output(n, t.egress, t.packet);
            }
        }
        moved
    }

    /// Hands a packet to node `n`'s router and carries out the verdict.
    fn router_input(&mut self, n: usize, ingress: Ingress, pkt: &[u8]) {
        if ingress == Ingress::Tun {
            self.record(Tap::TunIn(n), pkt.to_vec());
        }
        let mut buf = PacketBuf::from_slice(pkt);
        if let Verdict::Forward(egress) = self.nodes[n]
            .router
            .handle_packet(self.now, ingress, &mut buf)
        {
            self.router_output(n, egress, buf.data().to_vec());
        }
        while let Some(t) = self.nodes[n].router.poll_transmit() {
            self.router_output(n, t.egress, t.packet);
        }
    }

    fn router_output(&mut self, n: usize, egress: Egress, pkt: Vec<u8>) {
        match egress {
            Egress::Tun => {
                self.record(Tap::TunOut(n), pkt.clone());
                self.deliver(n, &pkt);
            }
            // Delivered to a router-hosted pod inside the node already.
            Egress::Stack { .. } => {}
            Egress::Overlay { to } => {
                let from = self.nodes[n].underlay_ip;
                self.record(Tap::Overlay, outer_udp(from, to, self.overlay_port, &pkt));
                match self.nodes.iter().position(|n| n.underlay_ip == to) {
                    Some(peer) => self
                        .in_flight
                        .push_back((peer, Ingress::Overlay { from }, pkt)),
                    None => self.undeliverable += 1,
                }
            }
        }
    }

    /// The node's kernel delivers a packet the router wrote back.
    fn deliver(&mut self, n: usize, pkt: &[u8]) {
        let now = self.now;
        let Ok(p) = dataplane::packet::parse(pkt) else {
            self.undeliverable += 1;
            return;
        };
        if p.key.dst == EXTERNAL_IP {
            self.external.handle_packet(now, pkt);
            return;
        }
        // Another node's underlay address (a NodePort there): across the
        // underlay to that node, whose rules steer it into its router.
        if let Some(m) = self
            .nodes
            .iter()
            .position(|node| node.underlay_ip == p.key.dst)
        {
            if m != n {
                self.in_flight.push_back((m, Ingress::Tun, pkt.to_vec()));
                return;
            }
        }
        match self.nodes[n].pods.iter_mut().find(|h| h.ip() == p.key.dst) {
            Some(pod) => pod.handle_packet(now, pkt),
            None => self.undeliverable += 1,
        }
    }

    fn record(&mut self, tap: Tap, pkt: Vec<u8>) {
        self.capture.push((self.now - self.t0, tap, pkt));
    }

    /// Advances the clock by `d`, stepping the network as it goes (10 ms
    /// ticks; use [`Sim::run_until`] for millisecond resolution).
    #[track_caller]
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.settle();
            self.now = (self.now + Duration::from_millis(10)).min(end);
        }
        self.settle();
    }

    /// Runs until `done` holds or `limit` of simulated time passes; returns
    /// whether `done` held.
    #[track_caller]
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.settle();
            if done(self) {
                return true;
            }
            if self.now >= end {
                return false;
            }
            self.now += Duration::from_millis(1);
        }
    }

    /// `GET path` from pod `from` to `dst`, run to completion (10 s limit).
    #[track_caller]
    pub fn http_get(&mut self, from: &str, dst: SocketAddrV4, path: &str) -> HttpOutcome {
        let now = self.now;
        let id: ClientId = self.pod(from).http_get(now, dst, path);
        let from = from.to_owned();
        self.run_until(Duration::from_secs(10), |s| {
            !matches!(s.pod(&from).http_result(id), HttpOutcome::Pending)
        });
        self.pod(&from).http_result(id)
    }

    /// Sends one DNS query over UDP from pod `from` (source port `sport`) to
    /// `server` and runs until the first answer (5 s limit); returns it.
    #[track_caller]
    pub fn dns_udp(
        &mut self,
        from: &str,
        server: SocketAddrV4,
        sport: u16,
        query: &[u8],
    ) -> Option<Vec<u8>> {
        let id = self.pod(from).udp_request(server, sport, query);
        let from = from.to_owned();
        self.run_until(Duration::from_secs(5), |s| {
            !s.pod(&from).udp_replies(id).is_empty()
        });
        let mut replies = self.pod(&from).udp_replies(id);
        (!replies.is_empty()).then(|| replies.swap_remove(0).1)
    }

    /// Sends DNS queries on one TCP connection from pod `from` to `server`
    /// and runs until every answer is in or the exchange failed (15 s limit).
    #[track_caller]
    pub fn dns_tcp(
        &mut self,
        from: &str,
        server: SocketAddrV4,
        queries: &[Vec<u8>],
    ) -> DnsTcpOutcome {
        let now = self.now;
        let id = self.pod(from).dns_tcp_query(now, server, queries);
        let from = from.to_owned();
        self.run_until(Duration::from_secs(15), |s| {
            s.pod(&from).dns_tcp_result(id) != DnsTcpOutcome::Pending
        });
        self.pod(&from).dns_tcp_result(id)
    }

    /// Writes the capture to `target/sim-pcap/<name>.pcap`; returns the path.
    pub fn write_pcap(&self) -> std::io::Result<PathBuf> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/sim-pcap");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.pcap", self.name));
        let file = std::fs::File::create(&path)?;
        let header = PcapHeader {
            datalink: DataLink::RAW,
            ..PcapHeader::default()
        };
        let mut writer = PcapWriter::with_header(file, header).map_err(std::io::Error::other)?;
        for (t, _, pkt) in &self.capture {
            writer
                .write_packet(&PcapPacket::new(*t, pkt.len() as u32, pkt))
                .map_err(std::io::Error::other)?;
        }
        Ok(path)
    }

    /// Every captured packet with where it was seen.
    pub fn capture(&self) -> impl Iterator<Item = (Tap, &[u8])> {
        self.capture.iter().map(|(_, tap, p)| (*tap, p.as_slice()))
    }

    /// The index of node `name` in [`Tap`]s.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }
}

/// Wraps an overlay payload in the outer IPv4/UDP headers the kernel would
/// add, for the capture.
fn outer_udp(src: Ipv4Addr, dst: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(28 + payload.len());
    match etherparse::PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .udp(port, port)
        .write(&mut out, payload)
    {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if std::thread::panicking() {
            match self.write_pcap() {
                Ok(path) => eprintln!("simulated wire written to {}", path.display()),
                Err(e) => eprintln!("could not write the simulated wire: {e}"),
            }
        }
    }
}

/// The cluster DNS Service's ClusterIP, as kubeadm allocates it.
pub const CLUSTER_DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);

/// The default lab cluster (the object file
/// `control/tests/fixtures/cluster.toml`: the lab's nodes and its
/// manifests' objects).
///
/// # Panics
/// If the file does not validate: the fixture must always be valid.
pub fn default_cluster() -> Cluster {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../control/tests/fixtures/cluster.toml");
    match control::config::load(&path) {
        Ok(c) => c,
        Err(e) => panic!("control/tests/fixtures/cluster.toml does not validate: {e}"),
    }
}
