//! [`FlowRecord`]: a tracked flow as the CLI lists it (`router get
//! conntrack`, like `conntrack -L`), a value the shell can render as text
//! or serialize.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::TcpState;
use crate::wire::packet::{FlowKey, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// One conntrack entry as `conntrack -L` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP).
    pub protocol: u8,
    /// TCP state (`None` for UDP and ICMP).
    pub state: Option<TcpState>,
    /// Seconds until the entry expires unless refreshed.
    pub seconds_left: u64,
    /// The tuple of the flow's first packet, before NAT.
    pub original: FlowKey,
    /// The tuple replies travel with, before reverse NAT.
    pub reply: FlowKey,
    /// No packet seen in the reply direction (`[UNREPLIED]`).
    pub unreplied: bool,
    /// Replied (past the handshake, for TCP): `[ASSURED]`. Such entries are
    /// never evicted early.
    pub assured: bool,
    /// Packets seen, original then reply direction.
    pub packets: [u64; 2],
    /// Bytes seen, original then reply direction.
    pub bytes: [u64; 2],
}

impl FlowRecord {
    /// The protocol's name as `conntrack -L` prints it (`tcp`, `udp`,
    /// `icmp`, `unknown`).
    pub fn protocol_name(&self) -> &'static str {
        match self.protocol {
            PROTO_TCP => "tcp",
            PROTO_UDP => "udp",
            PROTO_ICMP => "icmp",
            _ => "unknown",
        }
    }
}

/// One line like `conntrack -L`:
/// `tcp      6 86399 ESTABLISHED src=.. dst=.. sport=.. dport=.. src=.. ... [ASSURED]`.
impl fmt::Display for FlowRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<8} {} {} ",
            self.protocol_name(),
            self.protocol,
            self.seconds_left
        )?;
        if let Some(state) = self.state {
            write!(f, "{} ", state.as_str())?;
        }
        write!(f, "{}", self.original)?;
        if self.unreplied {
            f.write_str(" [UNREPLIED]")?;
        }
        write!(f, " {}", self.reply)?;
        if self.assured {
            f.write_str(" [ASSURED]")?;
        }
        write!(
            f,
            " packets={}/{} bytes={}/{} mark=0 use=1",
            self.packets[0], self.packets[1], self.bytes[0], self.bytes[1]
        )
    }
}

/// Where a chunked listing ([`super::ConnTrack::records`]) goes on from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlowCursor(pub(super) usize);

impl FlowCursor {
    /// The start of the table.
    pub const START: Self = Self(0);
}
