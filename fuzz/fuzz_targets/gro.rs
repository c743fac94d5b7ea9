//! `gro::Coalescer` on any batch of packets: split the input at 2-byte
//! big-endian length prefixes; a packet whose prefix has its top bit set
//! gets valid IP and TCP checksums first, so that the coalescing paths
//! (not only the checksum refusals) are reached. Never a panic; every
//! packet written fits 64 KiB, and every super-packet cuts back into
//! segments.
#![no_main]

use dataplane::wire::checksum;
use dataplane::wire::gro::Coalescer;
use dataplane::wire::offload::{segment, Gso};
use libfuzzer_sys::fuzz_target;

/// Gives a TCP-looking IPv4 packet valid checksums (a no-op otherwise).
fn fix_checksums(p: &mut [u8]) {
    if p.len() < 40 || p[0] != 0x45 || p[9] != 6 {
        return;
    }
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(0, &p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[36..38].copy_from_slice(&[0, 0]);
    let src = [p[12], p[13], p[14], p[15]];
    let dst = [p[16], p[17], p[18], p[19]];
    let pseudo = checksum::pseudo_header_sum(src, dst, 6, len - 20);
    let c = checksum::checksum(pseudo, &p[20..]);
    p[36..38].copy_from_slice(&c.to_be_bytes());
}

fuzz_target!(|data: &[u8]| {
    let mut c = Coalescer::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let prefix = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(prefix & 0x7fff).min(rest.len() - 2);
        let mut packet = rest[2..2 + len].to_vec();
        rest = &rest[2 + len..];
        if prefix & 0x8000 != 0 {
            fix_checksums(&mut packet);
        }
        c.push(&packet);
    }
    let mut out = Vec::new();
    c.drain(|packet, sp| {
        assert!(packet.len() <= 65_535);
        if let Some(sp) = sp {
            assert!(usize::from(sp.header_len) < packet.len());
            assert!(segment(packet, Gso::Tcp { mss: sp.mss }, &[], &mut out).is_some());
        }
    });
});
