//! What the packet fuzz targets share: a [`Node`] built from the default
//! `config.toml` (node mac-worker), kept across inputs as a running router
//! keeps its state (conntrack, hosted DNS pods), and the invariants checked
//! after every packet.
//!
//! Building a node for every input would cost a millisecond (its Maglev
//! tables), 1000x the packet; so state carries over from input to input,
//! and a crash usually, not always, reproduces from its input alone (run
//! the corpus before it if not).

use std::net::Ipv4Addr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use cluster::Cluster;
use dataplane::buf::PacketBuf;
use dataplane::engine::{DataplaneConfig, Egress, Ingress, Verdict};
use dataplane::node::Node;
use dataplane::{overlay, packet};

/// The node the targets drive.
pub const NODE: &str = "mac-worker";

/// The default cluster (`config.toml`).
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(
        || match control::config::parse(include_str!("../../control/tests/fixtures/cluster.toml")) {
            Ok(c) => c,
            Err(e) => panic!("config.toml: {e}"),
        },
    )
}

/// The node and its clock.
pub struct Harness {
    node: Node,
    now: Instant,
    /// The other node's underlay address: overlay datagrams come from it.
    pub peer: Ipv4Addr,
}

/// Runs `f` on the harness, built on first use.
pub fn with_harness(f: impl FnOnce(&mut Harness)) {
    static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);
    let mut guard = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let h = guard.get_or_insert_with(|| {
        let c = cluster();
        let node = match Node::new(&DataplaneConfig::default(), c, NODE) {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        };
        let peer = c
            .nodes
            .iter()
            .find(|n| n.name != NODE)
            .map_or(Ipv4Addr::UNSPECIFIED, |n| n.underlay_ip);
        Harness {
            node,
            now: Instant::now(),
            peer,
        }
    });
    f(h);
}

impl Harness {
    /// Hands one packet to the node and checks: it is forwarded (as a
    /// packet the data plane can parse) or counted as a drop under the
    /// verdict's reason; every packet the node received so far is
    /// accounted for; what the node generates is well formed. Time moves
    /// on 10 ms per packet, so timers fire too.
    pub fn handle(&mut self, ingress: Ingress, data: &[u8]) {
        self.now += Duration::from_millis(10);
        let before = self.node.stats().clone();
        let mut buf = PacketBuf::from_slice(data);
        let verdict = self.node.handle_packet(self.now, ingress, &mut buf);
        let after = self.node.stats();
        assert!(after.received > before.received, "not counted as received");
        match verdict {
            Verdict::Forward(egress) => {
                assert!(after.forwarded > before.forwarded, "forwarded, not counted");
                check_sent(egress, buf.data());
            }
            Verdict::Drop(reason) => {
                assert!(
                    after.dropped(reason) > before.dropped(reason),
                    "dropped ({reason}), not counted"
                );
            }
        }
        self.node.handle_timeout(self.now);
        while let Some(t) = self.node.poll_transmit() {
            check_sent(t.egress, &t.packet);
        }
        let s = self.node.stats();
        assert_eq!(s.received, s.forwarded + s.dropped_total(), "{s:?}");
    }
}

/// A packet leaving the node is one the data plane itself would accept:
/// an IPv4 packet, behind the overlay headers for a peer.
fn check_sent(egress: Egress, data: &[u8]) {
    let ip = match egress {
        Egress::Overlay { to } => match overlay::decapsulate(
            data,
            cluster().overlay.vni,
            overlay::vtep_mac(to),
        ) {
            Ok(at) => &data[at..],
            Err(e) => panic!("sent a malformed overlay frame ({e:?})"),
        },
        // Handed to a hosted pod inside the node: nothing leaves.
        Egress::Stack { .. } => return,
        Egress::Tun => data,
    };
    if let Err(e) = packet::parse(ip) {
        panic!("sent a packet it would drop itself ({e}): {ip:02x?}");
    }
}
