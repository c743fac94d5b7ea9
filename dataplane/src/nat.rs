//! NAT: what the data plane does to a packet's addresses and ports once it
//! has decided, as a value.
//!
//! The engine decides a packet's fate from its parsed tuple and conntrack
//! ([`crate::engine`]); when that fate includes a rewrite, the decision
//! carries a [`Translation`]. The translation knows the tuple the packet
//! will have ([`Translation::to`]), so routing needs no second look at the
//! bytes, and [`Translation::translate`] rewrites them once, in place,
//! returning what it changed ([`Rewritten`]).
//!
//! Source ports for flows that must change theirs (masquerade onto a
//! taken reply tuple) come from [`source_ports`].

use std::net::Ipv4Addr;

use crate::service::flow_hash;
use crate::splitmix::SplitMix64;
use crate::wire::offload::L4Checksum;
use crate::wire::packet::{self, FlowKey, Parsed, PROTO_ICMP};

/// Source ports used when a flow's source must be rewritten (masquerade, or
/// a tuple clash): Linux's default ephemeral range.
pub const NAT_PORT_FIRST: u16 = 32768;
/// The last port of the range; see [`NAT_PORT_FIRST`].
pub const NAT_PORT_LAST: u16 = 60999;

/// A rewrite decided for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// DNAT, SNAT or their reverse: the packet's tuple becomes `to` (a key
    /// in the same direction).
    Flow {
        /// The tuple after the rewrite.
        to: FlowKey,
    },
    /// An ICMP error about a NATed flow (RFC 5508 section 4.3): the quoted
    /// packet becomes what its sender sent, the error's addresses follow.
    IcmpError {
        /// The quoted packet's tuple as it is in the error.
        quoted: FlowKey,
        /// The quoted packet's tuple as its sender sent it.
        restored: FlowKey,
        /// The error's new source.
        src: Ipv4Addr,
        /// The error's new destination.
        dst: Ipv4Addr,
    },
}

/// What [`Translation::translate`] did to a packet's own (outer) tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// The tuple before.
    pub from: FlowKey,
    /// The tuple after.
    pub to: FlowKey,
}

impl Rewritten {
    /// Whether the source address or port changed (SNAT, or un-DNAT of a reply).
    pub fn source_changed(&self) -> bool {
        (self.from.src, self.from.sport) != (self.to.src, self.to.sport)
    }

    /// Whether the destination address or port changed (DNAT, or un-SNAT
    /// of a reply).
    pub fn destination_changed(&self) -> bool {
        (self.from.dst, self.from.dport) != (self.to.dst, self.to.dport)
    }
}

impl Translation {
    /// The packet's own tuple after the rewrite, for `parsed` (the packet
    /// the translation was decided for). For an ICMP error only the
    /// addresses change (it has no ports).
    pub fn to(&self, parsed: &Parsed) -> FlowKey {
        match *self {
            Self::Flow { to } => to,
            Self::IcmpError { src, dst, .. } => FlowKey {
                src,
                dst,
                ..parsed.key
            },
        }
    }

    /// Rewrites `buf`, the packet `parsed` was parsed from, in place with
    /// incremental checksum updates; returns what changed. `l4_checksum`
    /// says whether its TCP/UDP checksum is complete or the partial sum of
    /// checksum offload (a TUN super-packet): the partial sum is updated
    /// as a sum, not by RFC 1624.
    pub fn translate(&self, buf: &mut [u8], parsed: &Parsed, l4_checksum: L4Checksum) -> Rewritten {
        let to = self.to(parsed);
        match self {
            Self::Flow { to } => packet::rewrite_with(buf, parsed, to, l4_checksum),
            Self::IcmpError {
                quoted,
                restored,
                src,
                dst,
            } => packet::rewrite_icmp_error(buf, parsed, quoted, restored, *src, *dst),
        }
        Rewritten {
            from: parsed.key,
            to,
        }
    }
}

/// How many free source ports a flow looks for before it gives up, as
/// Linux's NAT does (`nf_nat_l4proto_unique_tuple` tries at most 128).
/// Searching the whole range made each new flow cost ~1 ms once ports ran
/// short (a SYN flood to a NodePort); a bounded search keeps it ~6 us and
/// fails the flow instead (counted as `insert_failed`).
pub const MAX_PORT_ATTEMPTS: usize = 128;

/// The source ports to try, in order, for a flow whose reply tuple is
/// taken: [`MAX_PORT_ATTEMPTS`] ports spread pseudo-randomly over the range
/// (a sequence seeded by the flow's hash, so the choice is deterministic
/// for a flow, as the core has no random source, yet flows probe
/// different ports instead of all walking from the same start).
pub fn source_ports(original: &FlowKey) -> impl Iterator<Item = u16> {
    let range = u64::from(NAT_PORT_LAST - NAT_PORT_FIRST) + 1;
    let mut stream = SplitMix64::new(flow_hash(original));
    (0..MAX_PORT_ATTEMPTS).map(move |_| NAT_PORT_FIRST + stream.next_below(range) as u16)
}

/// `key` with source port `port` (for ICMP echo, the identifier, which is
/// both "ports").
pub fn with_source_port(key: FlowKey, port: u16) -> FlowKey {
    FlowKey {
        sport: port,
        dport: if key.proto == PROTO_ICMP {
            port
        } else {
            key.dport
        },
        ..key
    }
}

#[cfg(test)]
mod tests;
