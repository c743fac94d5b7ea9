//! TUN offload as packet metadata: a checksum left partial and a
//! super-packet to be segmented later, and the software fallbacks for
//! where the kernel will not finish the job (the overlay, in-process pods).
//!
//! With `IFF_VNET_HDR` the kernel hands the router TCP super-packets of up
//! to 64 KiB (one per GSO skb) whose TCP/UDP checksum field holds only the
//! uncomplemented pseudo-header sum (`VIRTIO_NET_HDR_F_NEEDS_CSUM`). The
//! shell reads the virtio-net header and records what it says here, as an
//! [`Offload`] carried by the packet buffer; the core never sees the header
//! itself. NAT then updates a partial checksum as a partial sum
//! ([`super::checksum::update_partial_u32`]), and a super-packet written
//! back to the TUN device is segmented by the kernel only where it must be.
//! A packet leaving by a path without offload gets its checksum finished
//! ([`finish_checksum`]) or is cut into segments ([`segment`]) first.

use super::checksum;
use super::packet::{PROTO_TCP, PROTO_UDP};

/// The state of a packet's TCP/UDP checksum field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L4Checksum {
    /// A complete checksum (or none: a zero UDP checksum).
    #[default]
    Full,
    /// The uncomplemented sum of the IPv4 pseudo-header only; the sum over
    /// the transport header and payload is added by whoever finishes it.
    Partial,
}

/// How a super-packet is to be segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gso {
    /// A packet as it goes on the wire.
    #[default]
    None,
    /// TCP segmentation: payload cut into `mss`-byte segments.
    Tcp {
        /// Payload bytes per segment.
        mss: u16,
    },
    /// UDP segmentation (`UDP_SEGMENT`): payload cut into `size`-byte
    /// datagrams.
    Udp {
        /// Payload bytes per datagram.
        size: u16,
    },
}

/// What is left to do to a packet before it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offload {
    /// The TCP/UDP checksum field's state.
    pub checksum: L4Checksum,
    /// Segmentation still to do.
    pub gso: Gso,
}

impl Offload {
    /// Whether the packet is ready for the wire as it is.
    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }
}

/// Where the transport header starts, the IP total length (bounded by the
/// buffer) and the protocol of an IPv4 packet, if it has a sane header.
fn layout(packet: &[u8]) -> Option<(usize, usize, u8)> {
    let first = *packet.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || packet.len() < ihl {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]])).min(packet.len());
    (total >= ihl).then_some((ihl, total, packet[9]))
}

/// The offset of the TCP or UDP checksum inside its header.
fn checksum_offset(proto: u8) -> Option<usize> {
    match proto {
        PROTO_TCP => Some(16),
        PROTO_UDP => Some(6),
        _ => None,
    }
}

/// Length of the transport header of a TCP or UDP packet.
fn l4_header_len(packet: &[u8], l4: usize, proto: u8) -> Option<usize> {
    match proto {
        PROTO_TCP => {
            let len = usize::from(*packet.get(l4 + 12)? >> 4) * 4;
            (len >= 20).then_some(len)
        }
        PROTO_UDP => Some(8),
        _ => None,
    }
}

/// Turns a partial TCP/UDP checksum into a full one, in place: the sum of
/// the transport header and payload (whose checksum field holds the
/// pseudo-header sum), complemented. Packets whose checksum is not
/// partial must not be passed here; other protocols are left alone.
pub fn finish_checksum(packet: &mut [u8]) {
    let Some((l4, total, proto)) = layout(packet) else {
        return;
    };
    let Some(off) = checksum_offset(proto) else {
        return;
    };
    if l4 + off + 2 > total {
        return;
    }
    let mut sum = !checksum::checksum(0, &packet[l4..total]);
    if proto == PROTO_UDP && sum == 0xffff {
        // A computed 0 is sent as all ones (RFC 768).
        sum = 0;
    }
    packet[l4 + off..l4 + off + 2].copy_from_slice(&(!sum).to_be_bytes());
}

/// The IP length of the largest packet `gso` would cut `packet` into: what
/// must fit the path MTU (a 64 KiB super-packet is not "too big" when its
/// segments fit). `None` if `packet` is not a super-packet or its headers
/// are not as `gso` says.
pub fn largest_segment(packet: &[u8], gso: Gso) -> Option<usize> {
    let (l4, total, proto) = layout(packet)?;
    let (size, want) = match gso {
        Gso::None => return None,
        Gso::Tcp { mss } => (mss, PROTO_TCP),
        Gso::Udp { size } => (size, PROTO_UDP),
    };
    if proto != want {
        return None;
    }
    let headers = l4 + l4_header_len(packet, l4, proto)?;
    Some(total.min(headers + usize::from(size)))
}

/// Where [`segment`] put the segments: `count` of them back to back, each
/// `stride` bytes long but the last, which may be shorter; the layout
/// UDP GSO (`UDP_SEGMENT`) sends in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    /// How many.
    pub count: usize,
    /// The length of each but the last (prefix included).
    pub stride: usize,
}

impl Segments {
    /// The segments in `out` (what [`segment`] filled), one by one.
    pub fn iter<'a>(&self, out: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
        out.chunks(self.stride.max(1)).take(self.count)
    }
}

/// Cuts super-packet `packet` into the packets `gso` describes, each with
/// complete IP and TCP/UDP checksums, as the kernel's software GSO would:
/// TCP sequence numbers advance, FIN and PSH stay on the last segment and
/// CWR on the first, IP identifiers count up. Each segment is put behind
/// `prefix` (an overlay header, say); `out` is cleared and gets them back
/// to back ([`Segments`]).
///
/// `None` when `packet` is not the super-packet `gso` describes (it must
/// then be dropped).
pub fn segment(packet: &[u8], gso: Gso, prefix: &[u8], out: &mut Vec<u8>) -> Option<Segments> {
    out.clear();
    let (l4, total, proto) = layout(packet)?;
    let (size, want) = match gso {
        Gso::None => return None,
        Gso::Tcp { mss } => (usize::from(mss), PROTO_TCP),
        Gso::Udp { size } => (usize::from(size), PROTO_UDP),
    };
    let headers = l4 + l4_header_len(packet, l4, proto)?;
    if proto != want || size == 0 || headers > total {
        return None;
    }
    let payload = &packet[headers..total];
    let count = payload.len().div_ceil(size).max(1);
    let ip_id = u16::from_be_bytes([packet[4], packet[5]]);
    let seq = u32::from_be_bytes([
        packet[l4 + 4],
        packet[l4 + 5],
        packet[l4 + 6],
        packet[l4 + 7],
    ]);
    let src: [u8; 4] = [packet[12], packet[13], packet[14], packet[15]];
    let dst: [u8; 4] = [packet[16], packet[17], packet[18], packet[19]];
    out.reserve(count * (prefix.len() + headers) + payload.len());
    for (i, chunk) in payload
        .chunks(size)
        .chain(payload.is_empty().then_some(&[][..]))
        .enumerate()
    {
        out.extend_from_slice(prefix);
        let ip = out.len();
        out.extend_from_slice(&packet[..headers]);
        out.extend_from_slice(chunk);
        let seg = &mut out[ip..];
        let seg_len = seg.len();
        seg[2..4].copy_from_slice(&(seg_len as u16).to_be_bytes());
        seg[4..6].copy_from_slice(&ip_id.wrapping_add(i as u16).to_be_bytes());
        seg[10..12].copy_from_slice(&[0, 0]);
        let ip_check = checksum::checksum(0, &seg[..l4]);
        seg[10..12].copy_from_slice(&ip_check.to_be_bytes());
        let l4_seg_len = (seg_len - l4) as u16;
        if proto == PROTO_TCP {
            let s = seq.wrapping_add((i * size) as u32);
            seg[l4 + 4..l4 + 8].copy_from_slice(&s.to_be_bytes());
            const FIN: u8 = 0x01;
            const PSH: u8 = 0x08;
            const CWR: u8 = 0x80;
            if i + 1 < count {
                seg[l4 + 13] &= !(FIN | PSH);
            }
            if i > 0 {
                seg[l4 + 13] &= !CWR;
            }
        } else {
            seg[l4 + 4..l4 + 6].copy_from_slice(&l4_seg_len.to_be_bytes());
        }
        let off = l4 + checksum_offset(proto).unwrap_or(0);
        seg[off..off + 2].copy_from_slice(&[0, 0]);
        let pseudo = checksum::pseudo_header_sum(src, dst, proto, l4_seg_len);
        let mut c = checksum::checksum(pseudo, &seg[l4..]);
        if proto == PROTO_UDP && c == 0 {
            c = 0xffff;
        }
        seg[off..off + 2].copy_from_slice(&c.to_be_bytes());
    }
    Some(Segments {
        count,
        stride: prefix.len() + headers + size.min(payload.len().max(1)),
    })
}

#[cfg(test)]
mod tests;
