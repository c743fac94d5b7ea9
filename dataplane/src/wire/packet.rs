//! IPv4 packet views for the data path: parse once, rewrite in place.
//!
//! Parsing uses `smoltcp::wire`'s checked views (lengths are validated before
//! any field is read, so no accessor can panic on untrusted bytes). Rewrites
//! patch the address and port fields at their fixed offsets and update the
//! checksums incrementally (`super::checksum`, RFC 1624), so a NAT rewrite
//! costs the same for a 64-byte and a 64 KiB packet.
//!
//! Nothing outside [`crate::wire`] names a smoltcp wire type.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use smoltcp::wire::{Icmpv4Packet, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};

use crate::stats::DropReason;
use crate::wire::checksum;
use crate::wire::offload::L4Checksum;

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// Largest packet the data path handles: a 64 KiB IPv4 packet, so that
/// TUN offload (GSO super-packets) needs no buffer redesign.
pub const MAX_PACKET_LEN: usize = 65_535;

// Fixed offsets inside an IPv4 header.
const IP_CHECKSUM: usize = 10;
const IP_SRC: usize = 12;
const IP_DST: usize = 16;
// Offsets inside the transport header.
const TCP_CHECKSUM: usize = 16;
const UDP_CHECKSUM: usize = 6;
const ICMP_CHECKSUM: usize = 2;
const ICMP_IDENT: usize = 4;

/// A flow's 5-tuple, in the direction the packet travels.
///
/// For ICMP echo, both ports hold the echo identifier, so a request and its
/// reply are each other's [`FlowKey::reversed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowKey {
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP).
    pub proto: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port (ICMP: echo identifier).
    pub sport: u16,
    /// Destination port (ICMP: echo identifier).
    pub dport: u16,
}

impl FlowKey {
    /// The same flow seen from the other end.
    pub fn reversed(&self) -> Self {
        Self {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proto {
            PROTO_ICMP => write!(f, "src={} dst={} id={}", self.src, self.dst, self.sport),
            _ => write!(
                f,
                "src={} dst={} sport={} dport={}",
                self.src, self.dst, self.sport, self.dport
            ),
        }
    }
}

/// TCP flags the connection tracker looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// ACK.
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
}

/// What the transport layer of a parsed packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP with its flags, sequence number and segment length (payload plus
    /// SYN/FIN), which a generated RST needs.
    Tcp {
        /// The flags.
        flags: TcpFlags,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number.
        ack: u32,
        /// Segment length in sequence space.
        seg_len: u32,
    },
    /// UDP.
    Udp,
    /// ICMP echo request or reply.
    IcmpEcho {
        /// `true` for a request (type 8), `false` for a reply (type 0).
        request: bool,
    },
    /// An ICMP error (destination unreachable, time exceeded, parameter
    /// problem) quoting the start of the packet that caused it.
    IcmpError {
        /// The quoted packet's flow, in the direction it was sent.
        inner: FlowKey,
    },
    /// Other ICMP messages and other protocols: routed, not tracked.
    Other,
}

/// A validated IPv4 packet: everything the data path needs from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The flow (ports zero for untracked protocols).
    pub key: FlowKey,
    /// Offset of the transport header.
    pub l4_offset: usize,
    /// Length of the whole IP packet (the IP total length).
    pub len: usize,
    /// Whether the Don't Fragment flag is set (path-MTU discovery).
    pub dont_fragment: bool,
    /// The transport layer.
    pub transport: Transport,
}

/// Parses an IPv4 packet, refusing anything the data path cannot handle
/// safely. Trailing bytes after the IP total length are ignored.
pub fn parse(buf: &[u8]) -> Result<Parsed, DropReason> {
    let Some(&first) = buf.first() else {
        return Err(DropReason::Truncated);
    };
    if first >> 4 != 4 {
        return Err(DropReason::NotIpv4);
    }
    let ip = Ipv4Packet::new_checked(buf).map_err(|_| DropReason::Truncated)?;
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(DropReason::Fragment);
    }
    let l4_offset = usize::from(ip.header_len());
    let len = usize::from(ip.total_len());
    let dont_fragment = ip.dont_frag();
    let src = ip.src_addr();
    let dst = ip.dst_addr();
    let payload = ip.payload();
    let mut key = FlowKey {
        proto: u8::from(ip.next_header()),
        src,
        dst,
        sport: 0,
        dport: 0,
    };
    let transport = match ip.next_header() {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(payload).map_err(|_| DropReason::Truncated)?;
            key.sport = tcp.src_port();
            key.dport = tcp.dst_port();
            let flags = TcpFlags {
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
            };
            let data_len = payload.len() - usize::from(tcp.header_len());
            Transport::Tcp {
                flags,
                seq: tcp.seq_number().0 as u32,
                ack: tcp.ack_number().0 as u32,
                seg_len: data_len as u32 + u32::from(flags.syn) + u32::from(flags.fin),
            }
        }
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(payload).map_err(|_| DropReason::Truncated)?;
            key.sport = udp.src_port();
            key.dport = udp.dst_port();
            Transport::Udp
        }
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_checked(payload).map_err(|_| DropReason::Truncated)?;
            match icmp.msg_type().into() {
                0u8 | 8 => {
                    key.sport = icmp.echo_ident();
                    key.dport = key.sport;
                    Transport::IcmpEcho {
                        request: u8::from(icmp.msg_type()) == 8,
                    }
                }
                3 | 11 | 12 => match parse_quoted(&payload[8..]) {
                    Some(inner) => Transport::IcmpError { inner },
                    None => return Err(DropReason::Truncated),
                },
                _ => Transport::Other,
            }
        }
        _ => Transport::Other,
    };
    Ok(Parsed {
        key,
        l4_offset,
        len,
        dont_fragment,
        transport,
    })
}

/// Parses the packet quoted in an ICMP error: an IP header plus, for TCP,
/// UDP and ICMP, at least the first 8 bytes of its transport header (RFC
/// 792), which hold the ports or the echo identifier. A quote of any other
/// protocol (GRE, ESP, SCTP...) is an error about a flow of that protocol:
/// its key has ports 0, and it is forwarded (or translated, if such a flow
/// is tracked) like any other. The quote is truncated by design, so the IP
/// total length is not checked against the buffer.
fn parse_quoted(quote: &[u8]) -> Option<FlowKey> {
    let first = *quote.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || quote.len() < ihl {
        return None;
    }
    let proto = quote[9];
    let src = Ipv4Addr::new(quote[12], quote[13], quote[14], quote[15]);
    let dst = Ipv4Addr::new(quote[16], quote[17], quote[18], quote[19]);
    let l4 = &quote[ihl..];
    let (sport, dport) = match proto {
        PROTO_TCP | PROTO_UDP if l4.len() >= 8 => (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        ),
        PROTO_ICMP if l4.len() >= 8 => {
            let id = u16::from_be_bytes([l4[4], l4[5]]);
            (id, id)
        }
        PROTO_TCP | PROTO_UDP | PROTO_ICMP => return None,
        _ => (0, 0),
    };
    Some(FlowKey {
        proto,
        src,
        dst,
        sport,
        dport,
    })
}

fn read_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

fn write_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

fn write_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// Rewrites a parsed packet's addresses and ports to those of `to` (a key in
/// the same direction), updating the IP, TCP, UDP and ICMP checksums
/// incrementally. Fields that do not change are not touched.
///
/// `buf` must be the buffer `parsed` came from.
pub fn rewrite(buf: &mut [u8], parsed: &Parsed, to: &FlowKey) {
    rewrite_with(buf, parsed, to, L4Checksum::Full);
}

/// [`rewrite`] for a packet whose TCP/UDP checksum is in state `l4`: a
/// partial checksum (TUN offload) holds the pseudo-header sum, which only
/// the addresses change, and is updated as a sum
/// ([`checksum::update_partial_u32`]); a full one by RFC 1624.
pub fn rewrite_with(buf: &mut [u8], parsed: &Parsed, to: &FlowKey, l4_checksum: L4Checksum) {
    let from = &parsed.key;
    if from == to {
        return;
    }
    let l4 = parsed.l4_offset;
    let old_src = u32::from(from.src);
    let new_src = u32::from(to.src);
    let old_dst = u32::from(from.dst);
    let new_dst = u32::from(to.dst);

    // IP header: addresses.
    let mut ip_check = read_u16(buf, IP_CHECKSUM);
    if old_src != new_src {
        write_u32(buf, IP_SRC, new_src);
        ip_check = checksum::update_u32(ip_check, old_src, new_src);
    }
    if old_dst != new_dst {
        write_u32(buf, IP_DST, new_dst);
        ip_check = checksum::update_u32(ip_check, old_dst, new_dst);
    }
    write_u16(buf, IP_CHECKSUM, ip_check);

    match parsed.transport {
        Transport::Tcp { .. } | Transport::Udp => {
            let at = l4
                + if from.proto == PROTO_TCP {
                    TCP_CHECKSUM
                } else {
                    UDP_CHECKSUM
                };
            let old_check = read_u16(buf, at);
            if l4_checksum == L4Checksum::Partial {
                let mut partial = old_check;
                partial = checksum::update_partial_u32(partial, old_src, new_src);
                partial = checksum::update_partial_u32(partial, old_dst, new_dst);
                write_u16(buf, at, partial);
                write_u16(buf, l4, to.sport);
                write_u16(buf, l4 + 2, to.dport);
                return;
            }
            // A zero UDP checksum means "none": leave it so.
            let udp_no_checksum = from.proto == PROTO_UDP && old_check == 0;
            let mut check = old_check;
            check = checksum::update_u32(check, old_src, new_src);
            check = checksum::update_u32(check, old_dst, new_dst);
            if from.sport != to.sport {
                write_u16(buf, l4, to.sport);
                check = checksum::update_u16(check, from.sport, to.sport);
            }
            if from.dport != to.dport {
                write_u16(buf, l4 + 2, to.dport);
                check = checksum::update_u16(check, from.dport, to.dport);
            }
            if !udp_no_checksum {
                if from.proto == PROTO_UDP && check == 0 {
                    check = 0xffff;
                }
                write_u16(buf, at, check);
            }
        }
        Transport::IcmpEcho { .. } => {
            // ICMP has no pseudo-header: only the identifier matters.
            if from.sport != to.sport {
                let check = read_u16(buf, l4 + ICMP_CHECKSUM);
                write_u16(buf, l4 + ICMP_IDENT, to.sport);
                write_u16(
                    buf,
                    l4 + ICMP_CHECKSUM,
                    checksum::update_u16(check, from.sport, to.sport),
                );
            }
        }
        Transport::IcmpError { .. } | Transport::Other => {}
    }
}

/// Rewrites an ICMP error (as parsed into `parsed`, with `Transport::IcmpError`)
/// so that the packet it quotes reads `inner_to` instead of `inner_from`,
/// and the error itself travels from `outer_src` to `outer_dst`.
///
/// This is what NAT must do for ICMP errors (RFC 5508 section 4.3): the
/// client sent to a Service IP and must get an error that quotes the packet
/// it sent, from the address it sent it to, or its kernel will not match the
/// error to its socket (and path-MTU discovery or "connection refused"
/// never reach it). The quoted IP checksum and, when the quote holds it, the
/// quoted TCP/UDP checksum are updated incrementally; the ICMP checksum is
/// recomputed (errors are at most 576 bytes).
pub fn rewrite_icmp_error(
    buf: &mut [u8],
    parsed: &Parsed,
    inner_from: &FlowKey,
    inner_to: &FlowKey,
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
) {
    let icmp = parsed.l4_offset;
    let q = icmp + 8;
    let end = parsed.len.min(buf.len());
    // `parse` checked the quote holds an IP header and 8 transport bytes.
    let ihl = usize::from(buf[q] & 0x0f) * 4;
    let ql4 = q + ihl;
    let transport_quoted = matches!(inner_from.proto, PROTO_TCP | PROTO_UDP | PROTO_ICMP);
    if ql4 > end || (transport_quoted && ql4 + 8 > end) {
        return;
    }
    let (old_src, new_src) = (u32::from(inner_from.src), u32::from(inner_to.src));
    let (old_dst, new_dst) = (u32::from(inner_from.dst), u32::from(inner_to.dst));
    let mut qcheck = read_u16(buf, q + IP_CHECKSUM);
    qcheck = checksum::update_u32(qcheck, old_src, new_src);
    qcheck = checksum::update_u32(qcheck, old_dst, new_dst);
    write_u32(buf, q + IP_SRC, new_src);
    write_u32(buf, q + IP_DST, new_dst);
    write_u16(buf, q + IP_CHECKSUM, qcheck);
    match inner_from.proto {
        PROTO_TCP | PROTO_UDP => {
            let at = ql4
                + if inner_from.proto == PROTO_TCP {
                    TCP_CHECKSUM
                } else {
                    UDP_CHECKSUM
                };
            if at + 2 <= end {
                let old = read_u16(buf, at);
                if !(inner_from.proto == PROTO_UDP && old == 0) {
                    let mut c = old;
                    c = checksum::update_u32(c, old_src, new_src);
                    c = checksum::update_u32(c, old_dst, new_dst);
                    c = checksum::update_u16(c, inner_from.sport, inner_to.sport);
                    c = checksum::update_u16(c, inner_from.dport, inner_to.dport);
                    write_u16(buf, at, c);
                }
            }
            write_u16(buf, ql4, inner_to.sport);
            write_u16(buf, ql4 + 2, inner_to.dport);
        }
        PROTO_ICMP => {
            let old_id = read_u16(buf, ql4 + ICMP_IDENT);
            let c =
                checksum::update_u16(read_u16(buf, ql4 + ICMP_CHECKSUM), old_id, inner_to.sport);
            write_u16(buf, ql4 + ICMP_CHECKSUM, c);
            write_u16(buf, ql4 + ICMP_IDENT, inner_to.sport);
        }
        _ => {}
    }
    write_u16(buf, icmp + ICMP_CHECKSUM, 0);
    let c = checksum::checksum(0, &buf[icmp..end]);
    write_u16(buf, icmp + ICMP_CHECKSUM, c);
    // The outer header: addresses only (ICMP has no pseudo-header).
    let outer_to = FlowKey {
        src: outer_src,
        dst: outer_dst,
        ..parsed.key
    };
    rewrite(buf, parsed, &outer_to);
}

#[cfg(test)]
mod tests;
