//! What goes into and comes out of [`super::Dataplane::handle_packet`]:
//! where a packet came from, the verdict on it, and the packets the data
//! plane generates itself.

use std::net::Ipv4Addr;

use crate::stats::DropReason;

/// Where a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// Read from the node's TUN device.
    Tun,
    /// A UDP datagram received on the overlay socket from this address: a
    /// VXLAN header, an Ethernet header and an IPv4 packet.
    Overlay {
        /// The sender's underlay address.
        from: Ipv4Addr,
    },
    /// Sent by a pod the router serves in process (the cluster DNS).
    Stack,
}

/// Where a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Written back to the node's TUN device; the node's kernel delivers it.
    Tun,
    /// Sent as a UDP datagram on the overlay socket to this node's underlay
    /// address; the packet already carries its VXLAN and Ethernet headers.
    Overlay {
        /// The peer node's underlay address.
        to: Ipv4Addr,
    },
    /// To the in-process pod with this IP (the cluster DNS).
    Stack {
        /// The pod's IP.
        pod: Ipv4Addr,
    },
}

/// What to do with the packet just handled.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (possibly rewritten) packet out of this egress.
    Forward(Egress),
    /// Drop it; counted under the reason.
    Drop(DropReason),
}

/// A packet the data plane generated itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub egress: Egress,
    /// The packet (with overlay headers when `egress` is the overlay).
    pub packet: Vec<u8>,
}
