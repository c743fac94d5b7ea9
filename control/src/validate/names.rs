//! Kubernetes' syntax for names: DNS-1123 labels and subdomains, IANA port
//! names.

use crate::error::ConfigError;

pub(crate) fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::EmptyName {
            key: key.to_owned(),
        });
    }
    check_dns_label(name).map_err(|reason| ConfigError::InvalidName {
        key: key.to_owned(),
        value: name.into(),
        reason,
    })
}

/// Kubernetes' `IsDNS1123Label`.
pub(crate) fn check_dns_label(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > 63 {
        return Err("must be no more than 63 characters");
    }
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    let inner_ok = bytes.iter().all(|&b| ok_char(b) || b == b'-');
    let ends_ok =
        bytes.first().is_some_and(|&b| ok_char(b)) && bytes.last().is_some_and(|&b| ok_char(b));
    if !inner_ok || !ends_ok {
        return Err("it must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character");
    }
    Ok(())
}

/// Kubernetes' `IsDNS1123Subdomain`, checked label by label.
pub(crate) fn check_dns_subdomain(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > 253 {
        return Err("must be no more than 253 characters");
    }
    if s.split('.').all(|l| check_dns_label(l).is_ok()) {
        Ok(())
    } else {
        Err("it must be dot-separated DNS-1123 labels (lower case alphanumeric characters or '-', starting and ending with an alphanumeric character)")
    }
}

/// Kubernetes' `IsValidPortName` (an IANA service name).
pub(crate) fn check_port_name(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > 15 {
        return Err("must be no more than 15 characters");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(
            "must contain only lower case alphanumeric characters (a-z, 0-9) and hyphens (-)",
        );
    }
    if s.contains("--") {
        return Err("must not contain consecutive hyphens");
    }
    if !s.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err("must contain at least one letter (a-z)");
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must not begin or end with a hyphen");
    }
    Ok(())
}
