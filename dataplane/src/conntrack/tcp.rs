//! The TCP state machine of a tracked connection.

use serde::{Deserialize, Serialize};

use super::Direction;
use crate::wire::packet::TcpFlags;

/// TCP connection states, named as `conntrack -L` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TcpState {
    /// SYN seen from the originator.
    SynSent,
    /// SYN-ACK seen from the responder.
    SynRecv,
    /// Three-way handshake completed.
    Established,
    /// FIN seen from one side.
    FinWait,
    /// That FIN acknowledged; the other side has not closed.
    CloseWait,
    /// FIN seen from both sides.
    LastAck,
    /// The last FIN acknowledged.
    TimeWait,
    /// Reset.
    Close,
}

impl TcpState {
    /// The name `conntrack -L` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SynSent => "SYN_SENT",
            Self::SynRecv => "SYN_RECV",
            Self::Established => "ESTABLISHED",
            Self::FinWait => "FIN_WAIT",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSE",
        }
    }
}

/// The TCP state machine, simplified from the kernel's
/// (`nf_conntrack_proto_tcp.c`): it follows the handshake, the two FINs and
/// RST; it does not validate sequence windows.
pub(super) fn tcp_transition(
    state: TcpState,
    dir: Direction,
    f: TcpFlags,
    fin_from: Option<Direction>,
) -> (TcpState, Option<Direction>) {
    use TcpState::*;
    if f.rst {
        return (Close, fin_from);
    }
    match state {
        SynSent if dir == Direction::Reply && f.syn && f.ack => (SynRecv, None),
        SynRecv if dir == Direction::Original && f.ack && !f.syn && !f.fin => (Established, None),
        SynRecv | Established if f.fin => (FinWait, Some(dir)),
        FinWait | CloseWait if fin_from.is_some_and(|d| d != dir) && f.fin => (LastAck, fin_from),
        FinWait if fin_from.is_some_and(|d| d != dir) && f.ack => (CloseWait, fin_from),
        LastAck if fin_from == Some(dir) && f.ack => (TimeWait, fin_from),
        TimeWait | Close if dir == Direction::Original && f.syn && !f.ack => (SynSent, None),
        s => (s, fin_from),
    }
}
