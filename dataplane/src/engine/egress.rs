//! The last step: where a decided packet goes (this node's kernel, a
//! router-hosted pod, or another node over the overlay), and the packets
//! the data plane generates itself.

use std::net::Ipv4Addr;

use super::{Dataplane, Egress, Transmit};
use crate::overlay::{self, OVERLAY_HEADER_LEN};
use crate::route::NextHop;
use crate::stats::DropReason;
use crate::wire::buf::PacketBuf;
use crate::wire::offload::{self, Gso, L4Checksum, Offload};
use crate::wire::packet::Parsed;
use crate::wire::reject;

impl Dataplane {
    /// The next hop of packet `p` (still as received in `packet`), whose
    /// destination after NAT is `dst`. Refuses what must not leave: an
    /// overlay packet for another node (no transit), and a packet too big
    /// for the overlay (answered with "fragmentation needed" when DF is set).
    /// A super-packet (`gso`, TUN offload) is too big when its segments
    /// are, not for its own length.
    pub(super) fn next_hop(
        &mut self,
        p: &Parsed,
        packet: &[u8],
        gso: Gso,
        dst: Ipv4Addr,
        from_overlay: bool,
    ) -> Result<NextHop, DropReason> {
        let hop = self.topology.next_hop(dst);
        if let NextHop::Peer(_) = hop {
            if from_overlay {
                return Err(DropReason::OverlayNotForUs);
            }
            let len = offload::largest_segment(packet, gso).unwrap_or(p.len);
            if len > self.topology.overlay_mtu {
                if p.dont_fragment {
                    self.frag_needed(p, packet);
                }
                return Err(DropReason::TooBig);
            }
        }
        Ok(hop)
    }

    /// Sends a packet (already rewritten) to `hop`: encapsulated in place
    /// for a peer. Offload work the next hop will not do is done here: a
    /// partial checksum is finished for a router-hosted pod and for a peer
    /// (a super-packet for a peer keeps its offload state: the shell cuts
    /// it into segments behind the overlay header, each with full
    /// checksums); the TUN device takes the packet as it is.
    pub(super) fn send(
        &mut self,
        buf: &mut PacketBuf,
        hop: NextHop,
        dst: Ipv4Addr,
    ) -> Result<Egress, DropReason> {
        let off = buf.offload();
        let finish =
            off.checksum == L4Checksum::Partial && (hop == NextHop::Stack || off.gso == Gso::None);
        if finish && hop != NextHop::Tun {
            offload::finish_checksum(buf.data_mut());
            buf.set_offload(Offload::default());
        }
        let i = match hop {
            NextHop::Tun => return Ok(Egress::Tun),
            NextHop::Stack => return Ok(Egress::Stack { pod: dst }),
            NextHop::Peer(i) => i,
        };
        let peer = &self.topology.peers[i];
        let (to, mac) = (peer.underlay_ip, peer.mac);
        // Only a buffer made from an in-process pod's packet lacks the
        // headroom (see `PacketBuf::from_vec`).
        buf.reserve_front(OVERLAY_HEADER_LEN);
        let header = buf
            .push_front::<OVERLAY_HEADER_LEN>()
            .ok_or(DropReason::Truncated)?;
        overlay::write_header(header, self.topology.vni, self.topology.mac, mac);
        self.stats.encapsulated += 1;
        Ok(Egress::Overlay { to })
    }

    /// Answers a packet too big for the overlay with ICMP "fragmentation
    /// needed" carrying the overlay MTU (RFC 1191), from the pods' gateway
    /// to the packet's sender.
    ///
    /// `packet` is still as its sender sent it (NAT rewrites only packets
    /// that leave), so the error quotes exactly what the sender's kernel
    /// will match to its socket, e.g. its SYN to a ClusterIP: what
    /// translating an error about the rewritten packet would give
    /// (RFC 5508 section 4.3), without building and then rewriting it.
    fn frag_needed(&mut self, p: &Parsed, packet: &[u8]) {
        let err = reject::icmp_frag_needed(
            packet,
            p,
            self.topology.gateway,
            self.topology.overlay_mtu as u16,
        );
        self.emit(p.key.src, err);
    }

    /// Queues a generated packet for `dst`, encapsulated if `dst` is on
    /// another node.
    pub(super) fn emit(&mut self, dst: Ipv4Addr, packet: Vec<u8>) {
        let transmit = match self.topology.next_hop(dst) {
            NextHop::Tun => Transmit {
                egress: Egress::Tun,
                packet,
            },
            NextHop::Stack => Transmit {
                egress: Egress::Stack { pod: dst },
                packet,
            },
            NextHop::Peer(i) => {
                let peer = &self.topology.peers[i];
                let mut header = [0u8; OVERLAY_HEADER_LEN];
                overlay::write_header(&mut header, self.topology.vni, self.topology.mac, peer.mac);
                let mut framed = Vec::with_capacity(OVERLAY_HEADER_LEN + packet.len());
                framed.extend_from_slice(&header);
                framed.extend_from_slice(&packet);
                Transmit {
                    egress: Egress::Overlay {
                        to: peer.underlay_ip,
                    },
                    packet: framed,
                }
            }
        };
        self.stats.generated += 1;
        self.transmits.push_back(transmit);
    }
}
