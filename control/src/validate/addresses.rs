//! CIDRs and addresses: parsing with the key path in the error, overlap.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::ConfigError;

pub(crate) fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b) || b.contains(&a)
}

pub(crate) fn parse_cidr(key: &str, text: &str) -> Result<Ipv4Net, ConfigError> {
    let net: Ipv4Net =
        text.parse()
            .map_err(|e: ipnet::AddrParseError| ConfigError::InvalidCidr {
                key: key.to_owned(),
                value: text.into(),
                reason: e.to_string(),
            })?;
    if net.trunc() != net {
        return Err(ConfigError::CidrHostBits {
            key: key.to_owned(),
            value: text.into(),
            network: net.trunc(),
        });
    }
    Ok(net)
}

pub(crate) fn parse_ip(key: &str, text: &str) -> Result<Ipv4Addr, ConfigError> {
    text.parse()
        .map_err(|e: std::net::AddrParseError| ConfigError::InvalidIp {
            key: key.to_owned(),
            value: text.into(),
            reason: e.to_string(),
        })
}

/// What kind of special address `ip` is, if it is not a plain unicast
/// address a peer can send to: unspecified ("this network", RFC 1122),
/// loopback, link-local, multicast, broadcast or reserved (240/4).
pub(crate) fn special_address(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.octets()[0] == 0 {
        Some("an address of \"this network\" (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_broadcast() {
        Some("the broadcast address")
    } else if ip.octets()[0] >= 240 {
        Some("a reserved address (240.0.0.0/4)")
    } else {
        None
    }
}
