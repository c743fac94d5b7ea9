//! IPv4 and UDP headers written from scratch, with smoltcp's `Ipv4Repr` and
//! `UdpRepr`: the one place the router (the generated answers in
//! [`super::reject`], the shell's capture of overlay datagrams) builds
//! these headers. Forwarded packets are never rebuilt: they are rewritten
//! in place ([`super::packet::rewrite`]).

use std::net::Ipv4Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr};

/// Length of an IPv4 header without options (the only kind written here).
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// TTL of generated packets (Linux's default).
pub const TTL: u8 = 64;

/// Appends an IPv4 header from `src` to `dst` for a payload of protocol
/// `proto` and `payload_len` bytes, which the caller appends next: no
/// options, identification 0, Don't Fragment, TTL [`TTL`], a valid header
/// checksum. `payload_len` must fit an IPv4 packet (at most 65,515 bytes).
pub fn push_ipv4_header(
    out: &mut Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload_len: usize,
) {
    let at = out.len();
    out.resize(at + IPV4_HEADER_LEN, 0);
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::from(proto),
        payload_len,
        hop_limit: TTL,
    };
    repr.emit(
        &mut Ipv4Packet::new_unchecked(&mut out[at..]),
        &ChecksumCapabilities::default(),
    );
}

/// Appends a whole IPv4/UDP datagram carrying `payload` from `src:sport` to
/// `dst:dport`, with valid IP and UDP checksums.
pub fn push_ipv4_udp(
    out: &mut Vec<u8>,
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    payload: &[u8],
) {
    let udp_len = UDP_HEADER_LEN + payload.len();
    push_ipv4_header(out, src, dst, u8::from(IpProtocol::Udp), udp_len);
    let at = out.len();
    out.resize(at + udp_len, 0);
    let repr = UdpRepr {
        src_port: sport,
        dst_port: dport,
    };
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut out[at..]),
        &IpAddress::Ipv4(src),
        &IpAddress::Ipv4(dst),
        payload.len(),
        |buf| buf.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
}

#[cfg(test)]
mod tests;
