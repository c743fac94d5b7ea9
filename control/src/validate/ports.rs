//! Port numbers, protocols, port names and container ports.

use cluster::{ContainerPort, Protocol};

use crate::error::ConfigError;
use crate::schema::RawContainerPort;
use crate::validate::check_port_name;

pub(crate) fn port_number(key: &str, value: i64) -> Result<u16, ConfigError> {
    u16::try_from(value)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| ConfigError::PortOutOfRange {
            key: key.to_owned(),
            value,
        })
}

pub(crate) fn protocol(key: &str, value: Option<&str>) -> Result<Protocol, ConfigError> {
    match value {
        None | Some("TCP") => Ok(Protocol::Tcp),
        Some("UDP") => Ok(Protocol::Udp),
        Some(other) => Err(ConfigError::UnsupportedProtocol {
            key: key.to_owned(),
            value: other.into(),
        }),
    }
}

/// A port's optional name (`""` is no name): valid by `check`, and not
/// used by an earlier port of the same object (`taken`, in order) whose
/// key-path prefix is `owner`.
pub(crate) fn port_name<'a>(
    key: &str,
    name: Option<&str>,
    taken: impl Iterator<Item = Option<&'a str>>,
    check: fn(&str) -> Result<(), &'static str>,
    owner: &str,
) -> Result<Option<String>, ConfigError> {
    let Some(n) = name.filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if let Err(reason) = check(n) {
        return Err(ConfigError::InvalidPortName {
            key: key.to_owned(),
            value: n.into(),
            reason,
        });
    }
    if let Some(k) = taken.into_iter().position(|o| o == Some(n)) {
        return Err(ConfigError::DuplicatePortName {
            key: key.to_owned(),
            value: n.into(),
            first: format!("{owner}.ports[{k}]"),
        });
    }
    Ok(Some(n.to_owned()))
}

/// Validates the container ports of `owner` (`deployments[0]`, `pods[1]`).
pub(crate) fn container_ports(
    owner: &str,
    raw: &[RawContainerPort],
) -> Result<Vec<ContainerPort>, ConfigError> {
    let mut out: Vec<ContainerPort> = Vec::with_capacity(raw.len());
    for (j, p) in raw.iter().enumerate() {
        let key = |field: &str| format!("{owner}.ports[{j}].{field}");
        let name = port_name(
            &key("name"),
            p.name.as_deref(),
            out.iter().map(|o| o.name.as_deref()),
            check_port_name,
            owner,
        )?;
        out.push(ContainerPort {
            name,
            container_port: port_number(&key("containerPort"), p.container_port)?,
            protocol: protocol(&key("protocol"), p.protocol.as_deref())?,
        });
    }
    Ok(out)
}
