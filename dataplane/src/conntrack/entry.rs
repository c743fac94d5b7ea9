//! One tracked flow, and how the CLI sees it.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{FlowRecord, TcpState};
use crate::wire::packet::FlowKey;

/// Which way a packet travels relative to its flow's first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Same direction as the first packet.
    Original,
    /// The other way.
    Reply,
}

/// Index of an entry in the table. Valid until the entry is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub(super) u32);

/// One tracked flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The tuple of the flow's first packet, before NAT.
    pub original: FlowKey,
    /// The tuple replies travel with, before reverse NAT.
    pub reply: FlowKey,
    /// TCP state (`None` for UDP and ICMP).
    pub tcp: Option<TcpState>,
    /// Whether a packet was seen in the reply direction.
    pub replied: bool,
    /// Which side sent the first FIN.
    pub(super) fin_from: Option<Direction>,
    /// When the entry expires unless refreshed.
    pub expires: Instant,
    /// Packets seen, original then reply direction.
    pub packets: [u64; 2],
    /// Bytes seen, original then reply direction.
    pub bytes: [u64; 2],
}

impl Entry {
    /// Whether this entry rewrites addresses or ports (DNAT or SNAT).
    pub fn is_nat(&self) -> bool {
        self.reply != self.original.reversed()
    }

    /// The tuple a packet with direction `dir` is rewritten to.
    pub fn translated(&self, dir: Direction) -> FlowKey {
        match dir {
            Direction::Original => self.reply.reversed(),
            Direction::Reply => self.original.reversed(),
        }
    }

    /// Whether the flow is past its opening: a reply was seen and, for TCP,
    /// the handshake completed (the kernel's ASSURED). Only entries that are
    /// not assured are dropped early to make room, so a flood of new or
    /// half-open flows never pushes out established ones.
    pub fn is_assured(&self) -> bool {
        self.replied && !self.is_half_open()
    }

    /// Whether this is a TCP flow in its handshake (SYN_SENT or SYN_RECV).
    pub fn is_half_open(&self) -> bool {
        matches!(self.tcp, Some(TcpState::SynSent | TcpState::SynRecv))
    }

    /// What `conntrack -L` shows of this entry at `now`.
    pub fn record(&self, now: Instant) -> FlowRecord {
        FlowRecord {
            protocol: self.original.proto,
            state: self.tcp,
            seconds_left: self.expires.saturating_duration_since(now).as_secs(),
            original: self.original,
            reply: self.reply,
            unreplied: !self.replied,
            assured: self.is_assured(),
            packets: self.packets,
            bytes: self.bytes,
        }
    }
}
