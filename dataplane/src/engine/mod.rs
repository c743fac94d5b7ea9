//! The data plane: a sans-IO state machine that decides, per packet, what
//! happens to it.
//!
//! # Contract
//!
//! [`Dataplane`] does no I/O: no sockets, no files, no clock, no threads.
//! The caller (the mio shell in `io`, or an in-process test) feeds it:
//!
//! - [`Dataplane::handle_packet`]`(now, ingress, buf)`: one IPv4 packet read
//!   from the TUN device. The packet is rewritten **in place** (NAT) and the
//!   returned [`Verdict`] says where to send it, or why it was dropped.
//! - [`Dataplane::handle_timeout`]`(now)`: when [`Dataplane::poll_timeout`]
//!   says so; expires conntrack entries.
//! - [`Dataplane::apply`]`(cluster)`: a new cluster state (Services,
//!   endpoints). Tracked flows keep their endpoint.
//! - [`Dataplane::apply_change`]`(change)`: one object changed (a watch
//!   event); only what depends on it is recomputed.
//!
//! After any `handle_*` call, drain [`Dataplane::poll_transmit`] until it
//! returns `None` (packets the router generated itself, such as a TCP RST
//! for a Service without endpoints), then re-read [`Dataplane::poll_timeout`].
//!
//! `now` must never go backwards between calls.
//!
//! # Per-packet path
//!
//! One data flow, one file per step: parse once, decide once, rewrite once.
//!
//! 1. `ingress`: take the packet off its ingress
//!    (TUN, overlay, a router-hosted pod), parse it into a
//!    [`Parsed`](crate::packet::Parsed) (malformed, fragmented or non-IPv4
//!    packets are counted drops) and refuse sources that cannot be there.
//! 2. `flow`: decide from the parsed tuple. A conntrack hit gives the
//!    direction and the rewrite (DNAT forward, un-DNAT on replies). A miss
//!    is a new flow: if the destination is a Service IP, the Service table
//!    picks an endpoint (or rejects / drops); the flow is tracked. Other
//!    destinations (pod to pod) are tracked unchanged. The decision is a
//!    value: a [`Translation`](crate::nat::Translation) or a drop reason.
//! 3. `egress`: the next hop follows from the decided destination (no
//!    second look at the bytes); a packet too big for the overlay is
//!    answered from its parsed form. Then the translation rewrites the
//!    packet in place, once, and it is encapsulated for a peer.

mod egress;
mod flow;
mod ingress;
mod update;
mod verdict;

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use log::trace;

pub use verdict::{Egress, Ingress, Transmit, Verdict};

use crate::affinity::AffinityTable;
use crate::conntrack::{
    ConnTrack, CtChange, FlowCursor, FlowRecord, SavedEntry, Timeouts, DEFAULT_CAPACITY,
};
use crate::model::Model;
use crate::route::{NextHop, Topology};
use crate::service::ServiceTable;
use crate::stats::{DropReason, Stats};
use crate::wire::buf::PacketBuf;
use cluster::Cluster;

/// Settings of one node's data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataplaneConfig {
    /// Conntrack capacity.
    pub conntrack_capacity: usize,
    /// Conntrack timeouts.
    pub timeouts: Timeouts,
    /// Seed for the conntrack hash (randomness is injected, never global).
    pub seed: u64,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        Self {
            conntrack_capacity: DEFAULT_CAPACITY,
            timeouts: Timeouts::default(),
            seed: 0x5eed,
        }
    }
}

/// The node asked for is not in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node {0:?} is not in the cluster")]
pub struct UnknownNode(pub String);

/// One node's data plane. See the module documentation for the contract.
pub struct Dataplane {
    /// The cluster objects this node serves, shared with the node's DNS.
    model: Arc<RwLock<Model>>,
    topology: Topology,
    services: ServiceTable,
    conntrack: ConnTrack,
    affinity: AffinityTable,
    stats: Stats,
    transmits: VecDeque<Transmit>,
}

impl Dataplane {
    /// The data plane of node `node`, serving `cluster`'s Services.
    pub fn new(
        config: &DataplaneConfig,
        cluster: &Cluster,
        node: &str,
    ) -> Result<Self, UnknownNode> {
        let model = Model::from_cluster(cluster);
        let topology =
            Topology::from_model(&model, node).ok_or_else(|| UnknownNode(node.to_owned()))?;
        Ok(Self {
            services: ServiceTable::from_model(&model, Some(&topology)),
            model: Arc::new(RwLock::new(model)),
            topology,
            conntrack: ConnTrack::new(config.conntrack_capacity, config.timeouts, config.seed),
            affinity: AffinityTable::new(config.conntrack_capacity),
            stats: Stats::default(),
            transmits: VecDeque::new(),
        })
    }

    /// Records conntrack changes for [`Dataplane::drain_conntrack_changes`]
    /// (the shell's journal, so flows outlive a restart).
    pub fn set_conntrack_journaling(&mut self, on: bool) {
        self.conntrack.set_journaling(on);
    }

    /// Moves the recorded conntrack changes into `out`; false if some were
    /// lost and a whole snapshot must be saved ([`ConnTrack::drain_changes`]).
    pub fn drain_conntrack_changes(&mut self, out: &mut Vec<CtChange>) -> bool {
        self.conntrack.drain_changes(out)
    }

    /// Every live flow, for a snapshot of the journal.
    pub fn conntrack_snapshot(&self) -> Vec<SavedEntry> {
        self.conntrack.saved_entries().collect()
    }

    /// Handles one packet; see the module documentation. `buf` holds an IPv4
    /// packet (from the TUN device) or a VXLAN datagram's payload (from the
    /// overlay); on `Forward`, it holds what to send.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        ingress: Ingress,
        buf: &mut PacketBuf,
    ) -> Verdict {
        self.stats.received += 1;
        match self.process(now, ingress, buf) {
            Ok(egress) => {
                self.stats.forwarded += 1;
                Verdict::Forward(egress)
            }
            Err(reason) => {
                trace!("drop ({reason}), {} bytes", buf.len());
                self.stats.drop(reason);
                Verdict::Drop(reason)
            }
        }
    }

    /// One packet's path: take it off its ingress (parse once), decide
    /// (conntrack, Services: a rewrite or a drop), pick the next hop from
    /// the decided destination, then rewrite once and send.
    fn process(
        &mut self,
        now: Instant,
        ingress: Ingress,
        buf: &mut PacketBuf,
    ) -> Result<Egress, DropReason> {
        let p = match ingress {
            Ingress::Tun => self.receive_tun(buf)?,
            Ingress::Overlay { from } => self.receive_overlay(from, buf)?,
            Ingress::Stack => self.receive_stack(buf)?,
        };
        let nat = self.decide(now, &p, buf.data())?;
        let dst = nat.map_or(p.key.dst, |n| n.to(&p).dst);
        let from_overlay = matches!(ingress, Ingress::Overlay { .. });
        let offload = buf.offload();
        let hop = self.next_hop(&p, buf.data(), offload.gso, dst, from_overlay)?;
        if hop == NextHop::Stack && !self.topology.is_trusted_source(p.key.src) {
            return Err(DropReason::HostedPodUntrustedSource);
        }
        if let Some(nat) = nat {
            let done = nat.translate(buf.data_mut(), &p, offload.checksum);
            trace!("{} -> {}", done.from, done.to);
            self.stats.translated += 1;
        }
        self.send(buf, hop, dst)
    }

    /// Expires conntrack entries that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.affinity.handle_timeout(now);
        let expired = self.conntrack.handle_timeout(now);
        self.stats.flows_expired += expired as u64;
    }

    /// Whether generated packets wait in [`Dataplane::poll_transmit`].
    pub fn has_transmits(&self) -> bool {
        !self.transmits.is_empty()
    }

    /// The next generated packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When to call [`Dataplane::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.conntrack.poll_timeout(), self.affinity.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.topology.node
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The conntrack table (read-only).
    pub fn conntrack(&self) -> &ConnTrack {
        &self.conntrack
    }

    /// The whole conntrack table like `conntrack -L` (a [`FlowRecord`]'s
    /// `Display` is its line), sorted by protocol then original tuple.
    pub fn conntrack_listing(&self, now: Instant) -> Vec<FlowRecord> {
        let mut records: Vec<FlowRecord> =
            self.conntrack.iter().map(|(_, e)| e.record(now)).collect();
        records.sort_by_key(|r| (r.protocol, r.original));
        records
    }

    /// Up to `max` conntrack entries from `from` on, in table order, and
    /// the cursor of the next chunk (`None` at the end); see
    /// [`ConnTrack::records`].
    pub fn conntrack_records(
        &self,
        now: Instant,
        from: FlowCursor,
        max: usize,
    ) -> (Vec<FlowRecord>, Option<FlowCursor>) {
        self.conntrack.records(now, from, max)
    }

    /// The Service table.
    pub fn services(&self) -> &ServiceTable {
        &self.services
    }

    /// Builds up to `budget` Maglev tables that a whole build left for
    /// their first packet (see [`ServiceTable::warm_up`]); returns how many
    /// are left. A shell calls it when it has nothing else to do.
    pub fn warm_up(&mut self, budget: usize) -> usize {
        self.services.warm_up(budget)
    }
}

#[cfg(test)]
mod tests;
