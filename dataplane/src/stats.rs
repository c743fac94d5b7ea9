//! Counters of what the data path did, and why it dropped what it dropped.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::overlay::DecapError;

/// Why a packet was not forwarded. Every drop is counted under one of these.
///
/// The variants' order is the order of [`DropReason::ALL`] and of the
/// counters in [`Stats::dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DropReason {
    /// Shorter than its headers say, or headers inconsistent.
    Truncated,
    /// Not an IPv4 packet (IPv6 router solicitations and the like).
    NotIpv4,
    /// An IP fragment; the router does not reassemble.
    Fragment,
    /// ICMP (e.g. ping) to a Service virtual IP: a VIP is not a host.
    IcmpToServiceIp,
    /// An address in the Service CIDR that no Service has.
    NoSuchServiceIp,
    /// A Service IP on a port or protocol the Service does not serve;
    /// answered with a reject.
    ServicePortNotServed,
    /// A Service with no ready endpoints; answered with a reject (TCP RST or
    /// ICMP port unreachable), as kube-proxy does.
    NoEndpoints,
    /// A TCP segment to a Service that is neither a SYN nor part of a tracked
    /// connection (a mid-stream packet of an unknown flow).
    UntrackedServiceSegment,
    /// The conntrack table is full of replied flows; nothing can be evicted.
    ConntrackFull,
    /// No free source port for a masqueraded flow.
    NatPortsExhausted,
    /// A pod sent with a source address in this node's pod CIDR that is not
    /// a pod's: address spoofing.
    SpoofedSource,
    /// An overlay datagram from an address that is not a configured node.
    UnknownPeer,
    /// An overlay datagram shorter than the VXLAN and Ethernet headers.
    OverlayTruncated,
    /// An overlay datagram without the VXLAN VNI flag, or with another VNI.
    OverlayWrongVni,
    /// An overlay datagram whose inner Ethernet frame is not IPv4.
    OverlayNotIpv4,
    /// An overlay datagram whose inner Ethernet frame is not addressed to
    /// this node's VTEP MAC.
    OverlayWrongMac,
    /// An overlay packet whose inner source is not in the sending node's pod
    /// CIDR (nor a tracked flow).
    OverlaySpoofedSource,
    /// An overlay packet not addressed to this node's pods: the router is
    /// not a transit hop.
    OverlayNotForUs,
    /// `externalTrafficPolicy: Local` and no endpoint on this node (dropped,
    /// as kube-proxy does).
    NoLocalEndpoints,
    /// Larger than the overlay MTU; answered with ICMP "fragmentation
    /// needed" when DF is set.
    TooBig,
    /// A packet for a router-hosted pod (the cluster DNS) from a source the
    /// router does not believe: neither a pod nor this node. A pod could
    /// spoof such a source (the node's kernel cannot tell it from routed
    /// traffic), and the answer would go to a victim.
    HostedPodUntrustedSource,
}

impl DropReason {
    /// Every reason, for listing counters.
    pub const ALL: [Self; 21] = [
        Self::Truncated,
        Self::NotIpv4,
        Self::Fragment,
        Self::IcmpToServiceIp,
        Self::NoSuchServiceIp,
        Self::ServicePortNotServed,
        Self::NoEndpoints,
        Self::UntrackedServiceSegment,
        Self::ConntrackFull,
        Self::NatPortsExhausted,
        Self::SpoofedSource,
        Self::UnknownPeer,
        Self::OverlayTruncated,
        Self::OverlayWrongVni,
        Self::OverlayNotIpv4,
        Self::OverlayWrongMac,
        Self::OverlaySpoofedSource,
        Self::OverlayNotForUs,
        Self::NoLocalEndpoints,
        Self::TooBig,
        Self::HostedPodUntrustedSource,
    ];

    /// A short stable name (`no-endpoints`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::NotIpv4 => "not-ipv4",
            Self::Fragment => "fragment",
            Self::IcmpToServiceIp => "icmp-to-service-ip",
            Self::NoSuchServiceIp => "no-such-service-ip",
            Self::ServicePortNotServed => "service-port-not-served",
            Self::NoEndpoints => "no-endpoints",
            Self::UntrackedServiceSegment => "untracked-service-segment",
            Self::ConntrackFull => "conntrack-full",
            Self::NatPortsExhausted => "nat-ports-exhausted",
            Self::SpoofedSource => "spoofed-source",
            Self::UnknownPeer => "unknown-peer",
            Self::OverlayTruncated => "overlay-truncated",
            Self::OverlayWrongVni => "overlay-wrong-vni",
            Self::OverlayNotIpv4 => "overlay-not-ipv4",
            Self::OverlayWrongMac => "overlay-wrong-mac",
            Self::OverlaySpoofedSource => "overlay-spoofed-source",
            Self::OverlayNotForUs => "overlay-not-for-us",
            Self::NoLocalEndpoints => "no-local-endpoints",
            Self::TooBig => "too-big",
            Self::HostedPodUntrustedSource => "hosted-pod-untrusted-source",
        }
    }

    /// The reason's counter slot: its declaration order, which [`Self::ALL`]
    /// follows (checked by a test), so no lookup can miss.
    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Plain counters; the data path increments them, the control socket reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Packets handed to the data path.
    pub received: u64,
    /// Packets forwarded.
    pub forwarded: u64,
    /// Packets sent to other nodes over the overlay.
    pub encapsulated: u64,
    /// Packets received from other nodes over the overlay.
    pub decapsulated: u64,
    /// Packets whose addresses or ports were rewritten (DNAT, SNAT or their reverse).
    pub translated: u64,
    /// Packets the router generated (TCP RST, ICMP errors).
    pub generated: u64,
    /// Packets routed without tracking (protocols other than TCP/UDP/ICMP).
    pub untracked: u64,
    /// Conntrack entries created.
    pub flows_created: u64,
    /// Conntrack entries removed by timeout.
    pub flows_expired: u64,
    /// Unreplied conntrack entries evicted to make room (early drop).
    pub flows_evicted: u64,
    /// Packets the shell could not write to the TUN device (queue full);
    /// filled in by the shell, not the core.
    pub tun_write_dropped: u64,
    /// Overlay datagrams the shell could not send; filled in by the shell.
    pub overlay_send_dropped: u64,
    /// Packets the kernel dropped at the TUN device's queue before the
    /// router could read them (the device's `tx_dropped`: the router fell
    /// behind); filled in by the shell.
    pub tun_queue_dropped: u64,
    /// Errors reading the TUN device that the shell counted and went on
    /// from; filled in by the shell.
    pub tun_read_errors: u64,
    /// Super-packets from the TUN device the shell could not take (an
    /// unsupported GSO type, e.g. IPv6); filled in by the shell.
    pub tun_offload_dropped: u64,
    /// TCP segments from the overlay that the shell wrote to the TUN
    /// device merged into an earlier one's super-packet (GRO,
    /// [`crate::wire::gro`]); filled in by the shell.
    pub tun_segments_coalesced: u64,
    /// Errors reading the overlay socket (e.g. ICMP errors the kernel
    /// reports there) that the shell counted and went on from.
    pub overlay_recv_errors: u64,
    /// Routing rules, routes or sysctls the router put back after they
    /// were removed; filled in by the shell.
    pub routing_restored: u64,
    /// Conntrack entries in a TCP handshake now (a gauge).
    pub flows_half_open: u64,
    /// DNS-over-TCP connections to the hosted DNS pods now: established,
    /// and in the handshake (gauges); filled in by the node.
    pub dns_tcp_open: u64,
    /// See [`Stats::dns_tcp_open`].
    pub dns_tcp_half_open: u64,
    /// DNS-over-TCP connections refused (every slot busy) or dropped (a
    /// half-open one evicted for a new SYN, or timed out half-open or idle).
    pub dns_tcp_shed: u64,
    /// Drops, indexed like [`DropReason::ALL`].
    pub dropped: [u64; DropReason::ALL.len()],
}

impl Stats {
    /// Counts one drop.
    pub fn drop(&mut self, reason: DropReason) {
        self.dropped[reason.index()] += 1;
    }

    /// Drops counted for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// All drops.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

impl From<DecapError> for DropReason {
    fn from(e: DecapError) -> Self {
        match e {
            DecapError::Truncated => Self::OverlayTruncated,
            DecapError::WrongVni => Self::OverlayWrongVni,
            DecapError::NotIpv4 => Self::OverlayNotIpv4,
            DecapError::WrongMac => Self::OverlayWrongMac,
        }
    }
}

#[cfg(test)]
mod tests;
