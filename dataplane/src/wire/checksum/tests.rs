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
