//! The first step of every path: take the packet off its ingress, parse it
//! once, and refuse sources that cannot be there.
//!
//! - from the TUN device: the node's kernel, for its pods and itself;
//! - from the overlay: another node's pods, in VXLAN;
//! - from a router-hosted pod ([`crate::node`]): only as itself.

use std::net::Ipv4Addr;

use super::Dataplane;
use crate::overlay;
use crate::stats::DropReason;
use crate::wire::buf::PacketBuf;
use crate::wire::packet::{self, Parsed};

/// Parses the IPv4 packet in `buf` and cuts trailing padding off.
fn parse(buf: &mut PacketBuf) -> Result<Parsed, DropReason> {
    let p = packet::parse(buf.data())?;
    buf.truncate(p.len);
    Ok(p)
}

impl Dataplane {
    /// A packet read from the TUN device: its source must be one that may
    /// be there (a pod of this node, the gateway, or outside the cluster's
    /// pod CIDR).
    pub(super) fn receive_tun(&self, buf: &mut PacketBuf) -> Result<Parsed, DropReason> {
        let p = parse(buf)?;
        if !self.topology.is_valid_local_source(p.key.src) {
            return Err(DropReason::SpoofedSource);
        }
        Ok(p)
    }

    /// A packet from a router-hosted pod: it sends only as itself.
    pub(super) fn receive_stack(&self, buf: &mut PacketBuf) -> Result<Parsed, DropReason> {
        let p = parse(buf)?;
        if !self.topology.is_stack_pod(p.key.src) {
            return Err(DropReason::SpoofedSource);
        }
        Ok(p)
    }

    /// An overlay datagram's payload from underlay address `from`: a known
    /// peer, our VNI, for this node's pods, from the peer's pods (or a
    /// tracked flow, such as a reply to a masqueraded one). On success the
    /// overlay headers are off `buf`.
    pub(super) fn receive_overlay(
        &mut self,
        from: Ipv4Addr,
        buf: &mut PacketBuf,
    ) -> Result<Parsed, DropReason> {
        let (_, peer) = self
            .topology
            .peer_by_underlay(from)
            .ok_or(DropReason::UnknownPeer)?;
        let peer_cidr = peer.pod_cidr;
        let at = overlay::decapsulate(buf.data(), self.topology.vni, self.topology.mac)
            .map_err(DropReason::from)?;
        buf.pull_front(at);
        self.stats.decapsulated += 1;
        let p = parse(buf)?;
        if !self.topology.pod_cidr.contains(&p.key.dst) {
            return Err(DropReason::OverlayNotForUs);
        }
        if !peer_cidr.contains(&p.key.src) && !self.conntrack.contains(&p.key) {
            return Err(DropReason::OverlaySpoofedSource);
        }
        Ok(p)
    }
}
