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
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3's example words sum to 0xddf2, checksum 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(0, &data), 0x220d);
    }

    #[test]
    fn incremental_equals_full_recompute() {
        // A pseudo-random buffer; change words one at a time and compare.
        let mut data: Vec<u8> = (0..64u32).map(|i| (i * 37 + 11) as u8).collect();
        let mut check = checksum(0, &data);
        for (i, new) in [(4usize, 0xffffu16), (10, 0x0000), (0, 0x1234), (62, 0xfffe)] {
            let old = u16::from_be_bytes([data[i], data[i + 1]]);
            data[i..i + 2].copy_from_slice(&new.to_be_bytes());
            check = update_u16(check, old, new);
            assert_eq!(check, checksum(0, &data), "after changing word at {i}");
        }
        let old = u32::from_be_bytes([data[20], data[21], data[22], data[23]]);
        let new = 0x0a0a_012a;
        data[20..24].copy_from_slice(&u32::to_be_bytes(new));
        check = update_u32(check, old, new);
        assert_eq!(check, checksum(0, &data));
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(0, &[0xab]), checksum(0, &[0xab, 0x00]));
    }
}
