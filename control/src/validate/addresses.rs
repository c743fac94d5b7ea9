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
