//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! NAT changes a few 16-bit words of a packet (addresses, ports, an ICMP
//! identifier). Recomputing the TCP checksum over a 64 KiB segment for that
//! would cost a full pass over the payload; RFC 1624's equation 3,
//! `HC' = ~(~HC + ~m + m')`, updates it from the changed words alone.

/// Folds a 32-bit one's-complement accumulator to 16 bits.
#[inline]
fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Updates checksum `check` for one 16-bit word changing from `old` to `new`
/// (RFC 1624, eqn. 3).
#[inline]
pub fn update_u16(check: u16, old: u16, new: u16) -> u16 {
    let sum = u32::from(!check) + u32::from(!old) + u32::from(new);
    !fold(sum)
}

/// Updates checksum `check` for a 32-bit field (an IPv4 address) changing
/// from `old` to `new`.
#[inline]
pub fn update_u32(check: u16, old: u32, new: u32) -> u16 {
    let sum = u32::from(!check)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + (new >> 16)
        + (new & 0xffff);
    !fold(sum)
}

/// Updates a *partial* checksum `partial` (the uncomplemented
/// pseudo-header sum a TCP/UDP checksum field holds under checksum offload,
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`) for an address changing from `old` to
/// `new`: the sum itself moves, `P' = P - old + new`, so it is RFC 1624
/// applied to the complement (`../shared/tun-notes.md`, pitfall 9). Ports
/// are not in the pseudo-header: the sum over the header picks them up
/// when the checksum is finished.
#[inline]
pub fn update_partial_u32(partial: u16, old: u32, new: u32) -> u16 {
    !update_u32(!partial, old, new)
}

/// The full Internet checksum of `data` (RFC 1071), with `initial` (an
/// unfolded partial sum, e.g. a pseudo-header) added in.
pub fn checksum(initial: u32, data: &[u8]) -> u16 {
    let mut sum = u64::from(initial);
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The unfolded sum of the IPv4 pseudo-header used by TCP and UDP checksums.
pub fn pseudo_header_sum(src: [u8; 4], dst: [u8; 4], protocol: u8, l4_len: u16) -> u32 {
    u32::from(u16::from_be_bytes([src[0], src[1]]))
        + u32::from(u16::from_be_bytes([src[2], src[3]]))
        + u32::from(u16::from_be_bytes([dst[0], dst[1]]))
        + u32::from(u16::from_be_bytes([dst[2], dst[3]]))
        + u32::from(protocol)
        + u32::from(l4_len)
}

#[cfg(test)]
mod tests;
