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

/// RFC 1071 as written: 16-bit big-endian words, one at a time.
fn reference(initial: u32, data: &[u8]) -> u16 {
    let mut sum = u64::from(initial);
    for pair in data.chunks(2) {
        let hi = pair[0];
        let lo = pair.get(1).copied().unwrap_or(0);
        sum += u64::from(u16::from_be_bytes([hi, lo]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn all_ones_and_all_zeros() {
    for len in [0usize, 1, 2, 3, 15, 16, 17, 64, 1500, 65_535] {
        for byte in [0x00u8, 0xff] {
            let data = vec![byte; len];
            for initial in [0u32, 1, 0xffff, 0x3_fffc] {
                assert_eq!(
                    checksum(initial, &data),
                    reference(initial, &data),
                    "{len} x {byte:#x}"
                );
            }
        }
    }
}

proptest::proptest! {
    #[test]
    fn equals_rfc1071_word_by_word(
        data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000),
        initial in 0u32..0x10_0000,
    ) {
        proptest::prop_assert_eq!(checksum(initial, &data), reference(initial, &data));
    }
}
