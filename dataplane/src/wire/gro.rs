//! Receive coalescing (GRO) of the TCP segments the router writes to its
//! TUN device.
//!
//! What arrives from the overlay is one VXLAN datagram per TCP segment.
//! Written to the TUN device one by one, every segment would cost a write
//! and a run of the receiving pod's TCP stack. A NIC's GRO merges the
//! consecutive segments of a flow into one super-packet; [`Coalescer`]
//! does the same for the packets of one batch: the kernel takes each
//! super-packet whole (virtio-net `GSO_TCPV4` with a partial checksum) and
//! cuts it again only where it must.
//!
//! The rules are Linux's (`tcp_gro_receive`): only ACK segments with
//! data, PSH allowed, no IP options, no fragments; a segment joins the
//! flow's super-packet if it continues its sequence, acknowledges the same
//! byte, and has the same window, TCP options, TTL, TOS and DF bit; it is
//! at most as long as the first segment (the super-packet's MSS), and a
//! shorter one or one with PSH is the last. Each segment's IP and TCP
//! checksums are verified before it joins: a super-packet gets a fresh
//! partial checksum, which would otherwise hide a corrupted segment (one
//! that fails passes unchanged, for the kernel to drop and count).
//!
//! Sans-IO: packets in, packets and their [`SuperPacket`] description
//! out. Buffers are kept between batches, so a batch allocates nothing
//! once the coalescer has seen as many packets in one batch before.

use std::collections::HashMap;

use crate::wire::checksum;
use crate::wire::packet::{MAX_PACKET_LEN, PROTO_TCP};

/// The IPv4 header length coalesced packets have (no options).
const IP_HEADER: usize = 20;
/// TCP flags.
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
/// Where the TCP checksum field is inside the TCP header.
pub const TCP_CHECKSUM_OFFSET: u16 = 16;

/// How a coalesced packet must be described to the TUN device: a TCP
/// super-packet (`GSO_TCPV4`) whose checksum field holds the pseudo-header
/// sum (`NEEDS_CSUM`, from `csum_start`, at [`TCP_CHECKSUM_OFFSET`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuperPacket {
    /// The payload length of each segment but the last (`gso_size`).
    pub mss: u16,
    /// IP and TCP header length (`hdr_len`).
    pub header_len: u16,
    /// Where the TCP header starts (`csum_start`).
    pub csum_start: u16,
}

/// The packets of one TCP connection's direction, as GRO keys them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Flow {
    addrs: [u8; 8],
    ports: [u8; 4],
}

/// A segment that may be coalesced.
struct Segment {
    flow: Flow,
    seq: u32,
    ack: u32,
    header_len: usize,
    payload_len: usize,
    psh: bool,
}

/// A coalescable packet being built.
struct Open {
    flow: Flow,
    ack: u32,
    next_seq: u32,
    mss: usize,
    header_len: usize,
    segments: usize,
    /// A short or PSH segment came: nothing more joins.
    closed: bool,
}

/// One packet of the batch, in arrival order.
struct Item {
    /// Index into the buffers.
    buf: usize,
    /// `None`: written as it came.
    open: Option<Open>,
}

/// Coalesces a batch of packets for the TUN device. See the module
/// documentation.
#[derive(Default)]
pub struct Coalescer {
    bufs: Vec<Vec<u8>>,
    items: Vec<Item>,
    /// Each flow's latest item, if it may still grow.
    latest: HashMap<Flow, usize>,
    /// Segments that joined an earlier one, since [`Coalescer::new`].
    merged: u64,
}

impl Coalescer {
    /// An empty coalescer.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many packets the batch will write (coalesced ones count once).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many segments have joined an earlier one so far (a counter).
    pub fn merged(&self) -> u64 {
        self.merged
    }

    /// Adds a packet (an IPv4 packet with complete checksums) to the batch:
    /// appended to its flow's super-packet if it continues it, else kept
    /// as a packet of its own.
    pub fn push(&mut self, packet: &[u8]) {
        let segment = parse(packet);
        if let Some(s) = &segment {
            if let Some(&at) = self.latest.get(&s.flow) {
                if self.append(at, s, packet) {
                    self.merged += 1;
                    return;
                }
            }
        }
        let buf = self.items.len();
        if buf == self.bufs.len() {
            // Room for a whole super-packet: it is reserved, and resident
            // only as far as a coalesced packet fills it.
            self.bufs.push(Vec::with_capacity(MAX_PACKET_LEN));
        }
        let b = &mut self.bufs[buf];
        b.clear();
        b.extend_from_slice(packet);
        let open = segment.map(|s| Open {
            flow: s.flow,
            ack: s.ack,
            next_seq: s.seq.wrapping_add(s.payload_len as u32),
            mss: s.payload_len,
            header_len: s.header_len,
            segments: 1,
            closed: s.psh,
        });
        match &open {
            Some(o) => {
                self.latest.insert(o.flow, buf);
            }
            // A TCP packet that cannot be coalesced (a pure ACK, a FIN) ends
            // its flow's super-packet: what comes later must not be written
            // before it.
            None => {
                if let Some(flow) = flow_of(packet) {
                    self.latest.remove(&flow);
                }
            }
        }
        self.items.push(Item { buf, open });
    }

    /// Appends segment `s` to item `at` if it continues it.
    fn append(&mut self, at: usize, s: &Segment, packet: &[u8]) -> bool {
        let Some(item) = self.items.get_mut(at) else {
            return false;
        };
        let Some(open) = item.open.as_mut() else {
            return false;
        };
        let b = &mut self.bufs[item.buf];
        let fits = b.len() + s.payload_len <= MAX_PACKET_LEN;
        if open.closed
            || !fits
            || s.seq != open.next_seq
            || s.ack != open.ack
            || s.header_len != open.header_len
            || s.payload_len > open.mss
            || !same_headers(b, packet, s.header_len)
        {
            return false;
        }
        b.extend_from_slice(&packet[s.header_len..]);
        open.next_seq = open.next_seq.wrapping_add(s.payload_len as u32);
        open.segments += 1;
        if s.psh {
            b[IP_HEADER + 13] |= PSH;
        }
        open.closed = s.psh || s.payload_len < open.mss;
        true
    }

    /// Hands out the batch in arrival order (a super-packet where segments
    /// were coalesced, with its description; every other packet as it
    /// came) and empties it.
    pub fn drain(&mut self, mut write: impl FnMut(&[u8], Option<SuperPacket>)) {
        for item in self.items.drain(..) {
            let b = &mut self.bufs[item.buf];
            match item.open {
                Some(open) if open.segments > 1 => {
                    let sp = finish_super_packet(b, &open);
                    write(b, Some(sp));
                }
                _ => write(b, None),
            }
        }
        self.latest.clear();
    }
}

/// Fixes a coalesced packet's headers: its IP length and checksum, and
/// the TCP checksum field holding the pseudo-header sum (what a partial
/// checksum holds: the kernel adds the header and payload).
fn finish_super_packet(b: &mut [u8], open: &Open) -> SuperPacket {
    let total = b.len();
    b[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    b[10..12].copy_from_slice(&[0, 0]);
    let ip_check = checksum::checksum(0, &b[..IP_HEADER]);
    b[10..12].copy_from_slice(&ip_check.to_be_bytes());
    let src = [b[12], b[13], b[14], b[15]];
    let dst = [b[16], b[17], b[18], b[19]];
    let tcp_len = (total - IP_HEADER) as u16;
    // The folded sum, not complemented: `!checksum` of no data.
    let partial = !checksum::checksum(
        checksum::pseudo_header_sum(src, dst, PROTO_TCP, tcp_len),
        &[],
    );
    let at = IP_HEADER + usize::from(TCP_CHECKSUM_OFFSET);
    b[at..at + 2].copy_from_slice(&partial.to_be_bytes());
    SuperPacket {
        mss: open.mss as u16,
        header_len: open.header_len as u16,
        csum_start: IP_HEADER as u16,
    }
}

/// Whether two segments' headers agree where GRO needs them to: TOS, DF
/// (and no fragment), TTL; the TCP data offset, flags (but PSH) and
/// window; the TCP options.
fn same_headers(a: &[u8], b: &[u8], header_len: usize) -> bool {
    let t = IP_HEADER;
    a[1] == b[1]
        && a[6..9] == b[6..9]
        && a[t + 12] == b[t + 12]
        && (a[t + 13] & !PSH) == (b[t + 13] & !PSH)
        && a[t + 14..t + 16] == b[t + 14..t + 16]
        && a[t + 20..header_len] == b[t + 20..header_len]
}

/// The 4-tuple of a TCP packet without IP options, coalescable or not.
fn flow_of(p: &[u8]) -> Option<Flow> {
    if p.len() < IP_HEADER + 20 || p[0] != 0x45 || p[9] != PROTO_TCP {
        return None;
    }
    Some(Flow {
        addrs: p[12..20].try_into().ok()?,
        ports: p[IP_HEADER..IP_HEADER + 4].try_into().ok()?,
    })
}

/// A segment that may join or start a super-packet: IPv4 without options,
/// not a fragment, TCP with ACK (PSH allowed, no other flag) and data,
/// lengths consistent, both checksums valid.
fn parse(p: &[u8]) -> Option<Segment> {
    let flow = flow_of(p)?;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    // More fragments, or a fragment offset.
    let fragment = p[6] & 0x3f != 0 || p[7] != 0;
    if total != p.len() || fragment {
        return None;
    }
    let tcp = &p[IP_HEADER..];
    let header_len = IP_HEADER + usize::from(tcp[12] >> 4) * 4;
    let flags = tcp[13];
    if header_len < IP_HEADER + 20 || header_len >= total || flags & !PSH != ACK {
        return None;
    }
    if checksum::checksum(0, &p[..IP_HEADER]) != 0 {
        return None;
    }
    let src = [p[12], p[13], p[14], p[15]];
    let dst = [p[16], p[17], p[18], p[19]];
    let pseudo = checksum::pseudo_header_sum(src, dst, PROTO_TCP, tcp.len() as u16);
    if checksum::checksum(pseudo, tcp) != 0 {
        return None;
    }
    Some(Segment {
        flow,
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        ack: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
        header_len,
        payload_len: total - header_len,
        psh: flags & PSH != 0,
    })
}

#[cfg(test)]
mod tests;
