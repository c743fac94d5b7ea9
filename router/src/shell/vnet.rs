//! The virtio-net header in front of every packet on an offload TUN device
//! (`IFF_VNET_HDR`), translated to and from the data plane's
//! [`Offload`] metadata: the core never reads the header.
//!
//! The fields are in the host's byte order (the legacy virtio layout the
//! TUN driver uses unless told otherwise); `tun-rs`'s `VirtioNetHdr` reads
//! and writes them so.

use dataplane::wire::gro::{SuperPacket, TCP_CHECKSUM_OFFSET};
use dataplane::wire::offload::{Gso, L4Checksum, Offload};
use tun_rs::VirtioNetHdr;

/// Length of the header.
pub const VNET_HDR_LEN: usize = 10;

const F_NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;

/// A header this router cannot handle (IPv6 TSO, UFO): the packet is
/// dropped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedGso(pub u8);

/// The all-zero header: a packet with complete checksums, not to be
/// segmented.
pub const PLAIN: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

/// What header `hdr` asks of the packet behind it.
pub fn decode(hdr: &[u8; VNET_HDR_LEN]) -> Result<Offload, UnsupportedGso> {
    let h = VirtioNetHdr::decode(hdr).map_err(|_| UnsupportedGso(0xff))?;
    let checksum = if h.flags & F_NEEDS_CSUM != 0 {
        L4Checksum::Partial
    } else {
        L4Checksum::Full
    };
    let gso = match h.gso_type & !GSO_ECN {
        GSO_NONE => Gso::None,
        GSO_TCPV4 => Gso::Tcp { mss: h.gso_size },
        GSO_UDP_L4 => Gso::Udp { size: h.gso_size },
        other => return Err(UnsupportedGso(other)),
    };
    Ok(Offload { checksum, gso })
}

/// Renders `offload` for a packet written back that was read with header
/// `read` and the offload state `read_as`: the same header when nothing
/// changed (NAT keeps every offset), the plain one when the data plane
/// finished the work or the packet is its own.
pub fn encode(offload: Offload, read: &[u8; VNET_HDR_LEN], read_as: Offload) -> [u8; VNET_HDR_LEN] {
    if offload.is_none() || offload != read_as {
        PLAIN
    } else {
        *read
    }
}

/// The header of a TCP super-packet the router coalesced: segment it by
/// `mss`, finish its partial checksum.
pub fn super_packet(sp: SuperPacket) -> [u8; VNET_HDR_LEN] {
    let h = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: sp.header_len,
        gso_size: sp.mss,
        csum_start: sp.csum_start,
        csum_offset: TCP_CHECKSUM_OFFSET,
    };
    let mut b = PLAIN;
    // Ten bytes into ten bytes: encoding cannot run out of room.
    let _ = h.encode(&mut b);
    b
}

/// A capture comment for a packet read or written with `offload`.
pub fn describe(offload: Offload) -> Option<String> {
    if offload.is_none() {
        return None;
    }
    let gso = match offload.gso {
        Gso::None => String::new(),
        Gso::Tcp { mss } => format!("GSO super-packet (TSO, mss {mss}); "),
        Gso::Udp { size } => format!("GSO super-packet (USO, size {size}); "),
    };
    let csum = match offload.checksum {
        L4Checksum::Partial => "checksum partial (NEEDS_CSUM: pseudo-header sum only)",
        L4Checksum::Full => "checksum complete",
    };
    Some(format!("{gso}{csum}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u8, gso_type: u8, gso_size: u16) -> [u8; VNET_HDR_LEN] {
        let h = VirtioNetHdr {
            flags,
            gso_type,
            hdr_len: 52,
            gso_size,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut b = [0u8; VNET_HDR_LEN];
        h.encode(&mut b).expect("10 bytes");
        b
    }

    #[test]
    fn tso_header_is_a_partial_super_packet() {
        let off = decode(&header(F_NEEDS_CSUM, GSO_TCPV4 | GSO_ECN, 1410)).expect("tcp");
        assert_eq!(off.checksum, L4Checksum::Partial);
        assert_eq!(off.gso, Gso::Tcp { mss: 1410 });
        assert!(describe(off).is_some_and(|d| d.contains("mss 1410")));
    }

    #[test]
    fn plain_header_is_nothing_to_do() {
        assert!(decode(&PLAIN).expect("plain").is_none());
        assert_eq!(describe(Offload::default()), None);
    }

    #[test]
    fn ipv6_tso_is_refused() {
        assert_eq!(decode(&header(1, 4, 1400)), Err(UnsupportedGso(4)));
    }

    #[test]
    fn a_coalesced_super_packet_is_tso_with_a_partial_checksum() {
        let b = super_packet(SuperPacket {
            mss: 1398,
            header_len: 52,
            csum_start: 20,
        });
        let off = decode(&b).expect("tcp");
        assert_eq!(off.checksum, L4Checksum::Partial);
        assert_eq!(off.gso, Gso::Tcp { mss: 1398 });
        let h = VirtioNetHdr::decode(&b).expect("decodes");
        assert_eq!((h.hdr_len, h.csum_start, h.csum_offset), (52, 20, 16));
    }

    #[test]
    fn written_back_headers() {
        let read = header(F_NEEDS_CSUM, GSO_TCPV4, 1410);
        let off = decode(&read).expect("tcp");
        assert_eq!(encode(off, &read, off), read);
        assert_eq!(encode(Offload::default(), &read, off), PLAIN);
    }
}
