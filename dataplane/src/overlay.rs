//! The overlay between nodes: VXLAN (RFC 7348) over UDP, as flannel's
//! `vxlan` backend and the Linux kernel do it.
//!
//! A pod packet for another node is carried as the UDP payload
//! `[VXLAN header (8) | Ethernet header (14) | IPv4 packet]` to the peer
//! node's underlay address, port 8472 by default (flannel's and Linux's
//! default; IANA's is 4789). The Ethernet header is fixed: the destination is
//! the peer's VTEP MAC and the source ours, derived from the nodes' underlay
//! addresses by [`vtep_mac`], so a Linux `vxlan` device configured with that
//! MAC and static FDB/neighbour entries can be the peer, and tshark decodes
//! every packet.

use std::net::Ipv4Addr;

/// VXLAN header length.
pub const VXLAN_HEADER_LEN: usize = 8;
/// Inner Ethernet header length.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// Everything the router puts in front of an IP packet in the UDP payload.
pub const OVERLAY_HEADER_LEN: usize = VXLAN_HEADER_LEN + ETHERNET_HEADER_LEN;

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
/// The "I" flag: a valid VNI is present (RFC 7348 section 5).
const VXLAN_FLAG_VNI: u8 = 0x08;

/// The MAC address of a node's VXLAN endpoint: locally administered,
/// `0e:6b:` followed by the node's underlay IPv4 address.
pub fn vtep_mac(underlay: Ipv4Addr) -> [u8; 6] {
    let o = underlay.octets();
    [0x0e, 0x6b, o[0], o[1], o[2], o[3]]
}

/// Formats a MAC address as `0e:6b:c0:a8:bf:90`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Writes the overlay header for VNI `vni` from `src_mac` to `dst_mac` into
/// `header`, which must be exactly [`OVERLAY_HEADER_LEN`] bytes.
pub fn write_header(
    header: &mut [u8; OVERLAY_HEADER_LEN],
    vni: u32,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
) {
    let v = vni.to_be_bytes();
    header[..8].copy_from_slice(&[VXLAN_FLAG_VNI, 0, 0, 0, v[1], v[2], v[3], 0]);
    header[8..14].copy_from_slice(&dst_mac);
    header[14..20].copy_from_slice(&src_mac);
    header[20..22].copy_from_slice(&ETHERTYPE_IPV4);
}

/// Why an overlay datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecapError {
    /// Shorter than the headers.
    Truncated,
    /// The VNI flag is not set, or the VNI is not ours.
    WrongVni,
    /// The inner frame is not IPv4.
    NotIpv4,
    /// The inner frame is not addressed to our VTEP MAC.
    WrongMac,
}

/// Checks a received overlay payload: VXLAN header with our VNI and an
/// Ethernet frame to our VTEP MAC (`mac`) carrying IPv4: a frame meant for
/// another VTEP (or a broadcast) is not ours to route. Returns the offset of
/// the IP packet.
pub fn decapsulate(payload: &[u8], vni: u32, mac: [u8; 6]) -> Result<usize, DecapError> {
    if payload.len() < OVERLAY_HEADER_LEN {
        return Err(DecapError::Truncated);
    }
    let got = u32::from_be_bytes([0, payload[4], payload[5], payload[6]]);
    if payload[0] & VXLAN_FLAG_VNI == 0 || got != vni {
        return Err(DecapError::WrongVni);
    }
    if payload[20..22] != ETHERTYPE_IPV4 {
        return Err(DecapError::NotIpv4);
    }
    if payload[8..14] != mac {
        return Err(DecapError::WrongMac);
    }
    Ok(OVERLAY_HEADER_LEN)
}

#[cfg(test)]
mod tests;
