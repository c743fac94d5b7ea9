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
///
/// It runs over every payload byte the router segments for the overlay
/// (a fifth of the sending router's time when it took 16 bits at a time),
/// so it takes 32-bit words in the machine's byte order into four 64-bit
/// accumulators, which the compiler turns into vector adds, and swaps the
/// folded sum once at the end: RFC 1071 2(B), the one's-complement sum
/// does not depend on byte order.
pub fn checksum(initial: u32, data: &[u8]) -> u16 {
    let native = fold64(sum_native(data));
    let sum = u64::from(initial) + u64::from(u16::from_be(native));
    !fold64(sum)
}

/// The one's-complement sum of `data` as 16-bit words in the machine's
/// byte order (a last odd byte padded with zero), unfolded.
fn sum_native(data: &[u8]) -> u64 {
    let mut acc = [0u64; 4];
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        for (a, word) in acc.iter_mut().zip(block.chunks_exact(4)) {
            *a += u64::from(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]));
        }
    }
    // A 32-bit word is two 16-bit ones: 2^16 is 1 modulo 0xffff.
    let mut sum = acc.iter().sum::<u64>();
    let mut pairs = blocks.remainder().chunks_exact(2);
    for pair in &mut pairs {
        sum += u64::from(u16::from_ne_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    sum
}

/// Folds a 64-bit one's-complement accumulator to 16 bits.
#[inline]
fn fold64(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
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
