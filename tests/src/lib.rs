//! In-process cluster simulation: one node's router core and its pods
//! (smoltcp hosts from `netstack`) exchanging real TCP, UDP and ICMP over
//! in-memory links, on a fake clock. No root, no sockets, deterministic.
//!
//! The simulation plays the node's kernel the way the lab configures it:
//! every packet a pod sends goes to the router (policy routing into the TUN
//! device), and every packet the router writes back is delivered to the pod
//! that owns the destination address (the node's /32 routes to pod veths).
//! Packets to addresses nobody owns are dropped and counted.
//!
//! Every packet that crosses the simulated TUN device is kept; when a test
//! fails, [`Sim`] writes them to `target/sim-pcap/<test>.pcap` (raw IPv4,
//! readable by tcpdump, tshark and Wireshark).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use netstack::host::{ClientId, HostConfig, HttpOutcome, VirtualHost};
use router::cluster::{Cluster, Protocol};
use router::dataplane::{Dataplane, DataplaneConfig, Egress, Ingress, Verdict};

/// Direction of a captured packet relative to the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tap {
    /// Read by the router from the TUN device (a pod sent it).
    TunIn,
    /// Written by the router to the TUN device.
    TunOut,
}

/// One node: the router core plus its pods.
pub struct Sim {
    name: String,
    t0: Instant,
    now: Instant,
    /// The router core under test.
    pub dataplane: Dataplane,
    pods: Vec<VirtualHost>,
    capture: Vec<(Duration, Tap, Vec<u8>)>,
    /// Packets the kernel could not deliver (no pod owns the destination).
    pub undeliverable: usize,
}

impl Sim {
    /// Builds node `node` of `cluster`: one smoltcp host per pod on that node,
    /// serving HTTP on its TCP container ports and the UDP responder on its
    /// UDP ports, as `pod-server` does in the lab. `name` names the capture.
    pub fn new(name: &str, cluster: &Cluster, node: &str) -> Self {
        let t0 = Instant::now();
        let gateway = cluster
            .node(node)
            .and_then(|n| n.pod_cidr.hosts().next())
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let pods = cluster
            .pods
            .iter()
            .filter(|p| p.node == node)
            .map(|p| {
                let mut host = VirtualHost::new(
                    HostConfig {
                        name: p.name.clone(),
                        ip: p.ip,
                        gateway,
                        mtu: 1500,
                        wall_clock_unix: 1_656_051_730, // 2022-06-24T06:22:10Z, the walkthrough's date
                    },
                    t0,
                );
                for port in &p.ports {
                    match port.protocol {
                        Protocol::Tcp => host.serve_http(port.container_port),
                        Protocol::Udp => host.serve_udp(port.container_port),
                    }
                }
                host
            })
            .collect();
        Self {
            name: name.to_owned(),
            t0,
            now: t0,
            dataplane: Dataplane::new(&DataplaneConfig::default(), cluster),
            pods,
            capture: Vec::new(),
            undeliverable: 0,
        }
    }

    /// The pod named `name`.
    ///
    /// # Panics
    /// If there is no such pod on this node (a test bug).
    #[track_caller]
    pub fn pod(&mut self, name: &str) -> &mut VirtualHost {
        match self.pods.iter_mut().find(|p| p.name() == name) {
            Some(p) => p,
            None => panic!("no pod {name} on this node"),
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves every pending packet once: pods' output through the router and
    /// on to its destination pod. Returns whether anything moved.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        for i in 0..self.pods.len() {
            self.pods[i].poll(now);
            while let Some(mut pkt) = self.pods[i].poll_transmit() {
                moved = true;
                // A pod's packets to its own address never leave its network
                // namespace: its kernel loops them back (which is why a
                // hairpinned Service flow needs masquerading).
                let own = self.pods[i].ip();
                if router::packet::parse(&pkt).is_ok_and(|p| p.key.dst == own) {
                    self.pods[i].handle_packet(now, &pkt);
                    continue;
                }
                self.capture.push((now - self.t0, Tap::TunIn, pkt.clone()));
                if let Verdict::Forward(Egress::Tun) =
                    self.dataplane.handle_packet(now, Ingress::Tun, &mut pkt)
                {
                    self.deliver(pkt);
                }
                while let Some(t) = self.dataplane.poll_transmit() {
                    self.deliver(t.packet);
                }
            }
        }
        self.dataplane.handle_timeout(now);
        moved
    }

    fn deliver(&mut self, pkt: Vec<u8>) {
        let now = self.now;
        self.capture.push((now - self.t0, Tap::TunOut, pkt.clone()));
        let dst = match router::packet::parse(&pkt) {
            Ok(p) => p.key.dst,
            Err(_) => {
                self.undeliverable += 1;
                return;
            }
        };
        match self.pods.iter_mut().find(|p| p.ip() == dst) {
            Some(pod) => pod.handle_packet(now, &pkt),
            None => self.undeliverable += 1,
        }
    }

    /// Advances the clock by `d`, stepping the network as it goes (1 ms ticks).
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            while self.step() {}
            self.now += Duration::from_millis(1);
        }
        while self.step() {}
    }

    /// Runs until `done` holds or `limit` of simulated time passes; returns
    /// whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            while self.step() {}
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

    /// Every captured packet with its tap.
    pub fn capture(&self) -> impl Iterator<Item = (Tap, &[u8])> {
        self.capture.iter().map(|(_, tap, p)| (*tap, p.as_slice()))
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

/// The default lab cluster (`config.toml` at the repository root).
///
/// # Panics
/// If the file does not validate: the example config must always be valid.
pub fn default_cluster() -> Cluster {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config.toml");
    match router::config::load(&path) {
        Ok(c) => c,
        Err(e) => panic!("config.toml does not validate: {e}"),
    }
}
