//! Packets the router answers with instead of forwarding: a TCP RST or an
//! ICMP port unreachable, the way kube-proxy's REJECT rule answers for a
//! Service without endpoints (so `curl` fails at once with "Connection
//! refused" instead of timing out).

use std::net::Ipv4Addr;

use super::checksum::{checksum, pseudo_header_sum};
use super::ip::{push_ipv4_header, IPV4_HEADER_LEN};
use super::packet::{Parsed, Transport, PROTO_ICMP, PROTO_TCP};

/// How much of the offending packet an ICMP error quotes: Linux quotes as much
/// as fits in 576 bytes (RFC 1812 4.3.2.3); we do the same.
const ICMP_QUOTE_MAX: usize = 576 - IPV4_HEADER_LEN - 8;

/// A TCP RST answering the segment `p` (RFC 9293 3.10.7.1: if the segment
/// carried an ACK, the RST takes its sequence number from it; otherwise it
/// acknowledges the segment). `None` when `p` is not TCP or is itself a RST.
pub fn tcp_rst(p: &Parsed) -> Option<Vec<u8>> {
    let Transport::Tcp {
        flags,
        seq,
        ack,
        seg_len,
    } = p.transport
    else {
        return None;
    };
    if flags.rst {
        return None;
    }
    let k = &p.key;
    let (rst_seq, rst_ack, tcp_flags) = if flags.ack {
        (ack, 0, 0x04) // RST
    } else {
        (0, seq.wrapping_add(seg_len), 0x14) // RST|ACK
    };
    let mut out = Vec::with_capacity(40);
    push_ipv4_header(&mut out, k.dst, k.src, PROTO_TCP, 20);
    let tcp_at = out.len();
    out.extend_from_slice(&k.dport.to_be_bytes());
    out.extend_from_slice(&k.sport.to_be_bytes());
    out.extend_from_slice(&rst_seq.to_be_bytes());
    out.extend_from_slice(&rst_ack.to_be_bytes());
    out.extend_from_slice(&[0x50, tcp_flags, 0, 0, 0, 0, 0, 0]); // offset 5, window 0, csum, urg
    let c = checksum(
        pseudo_header_sum(k.dst.octets(), k.src.octets(), PROTO_TCP, 20),
        &out[tcp_at..],
    );
    out[tcp_at + 16..tcp_at + 18].copy_from_slice(&c.to_be_bytes());
    Some(out)
}

/// An ICMP destination unreachable, code 3 (port unreachable), from the
/// packet's destination back to its source, quoting the packet (`buf`).
pub fn icmp_port_unreachable(buf: &[u8], p: &Parsed) -> Vec<u8> {
    let quote = &buf[..p.len.min(ICMP_QUOTE_MAX).min(buf.len())];
    let icmp_len = 8 + quote.len();
    let mut out = Vec::with_capacity(IPV4_HEADER_LEN + icmp_len);
    push_ipv4_header(&mut out, p.key.dst, p.key.src, PROTO_ICMP, icmp_len);
    let icmp_at = out.len();
    out.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(quote);
    let c = checksum(0, &out[icmp_at..]);
    out[icmp_at + 2..icmp_at + 4].copy_from_slice(&c.to_be_bytes());
    out
}

/// An ICMP destination unreachable, code 4 (fragmentation needed and DF
/// set), from `from` back to the packet's source, carrying the next-hop
/// `mtu` (RFC 1191 section 4) and quoting the packet.
pub fn icmp_frag_needed(buf: &[u8], p: &Parsed, from: Ipv4Addr, mtu: u16) -> Vec<u8> {
    let quote = &buf[..p.len.min(ICMP_QUOTE_MAX).min(buf.len())];
    let icmp_len = 8 + quote.len();
    let mut out = Vec::with_capacity(IPV4_HEADER_LEN + icmp_len);
    push_ipv4_header(&mut out, from, p.key.src, PROTO_ICMP, icmp_len);
    let icmp_at = out.len();
    let m = mtu.to_be_bytes();
    out.extend_from_slice(&[3, 4, 0, 0, 0, 0, m[0], m[1]]);
    out.extend_from_slice(quote);
    let c = checksum(0, &out[icmp_at..]);
    out[icmp_at + 2..icmp_at + 4].copy_from_slice(&c.to_be_bytes());
    out
}

#[cfg(test)]
mod tests;
