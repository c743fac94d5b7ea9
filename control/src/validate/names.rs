//! Kubernetes' syntax for names (DNS-1123 and DNS-1035 labels, DNS-1123
//! subdomains, IANA port names) and for labels and selectors (qualified
//! names as keys, label values).

use cluster::Labels;

use crate::error::ConfigError;

/// The syntax a kind's names follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameSyntax {
    /// `IsDNS1123Label`: namespaces, and (stricter than Kubernetes, which
    /// takes subdomains there, as its documentation advises "for best
    /// compatibility") nodes, Deployments and pods, whose names become
    /// hostnames and pod name prefixes.
    Dns1123Label,
    /// `IsDNS1035Label`: Services (`ValidateServiceName`), whose names are
    /// DNS labels that must not look like a number.
    Dns1035Label,
}

/// Checks the name `name` (at `key`) against `syntax`.
pub(crate) fn check_name(key: &str, name: &str, syntax: NameSyntax) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::EmptyName {
            key: key.to_owned(),
        });
    }
    let (checked, what) = match syntax {
        NameSyntax::Dns1123Label => (check_dns_label(name), "DNS-1123 label"),
        NameSyntax::Dns1035Label => (check_dns1035_label(name), "DNS-1035 label"),
    };
    checked.map_err(|reason| ConfigError::InvalidName {
        key: key.to_owned(),
        value: name.into(),
        syntax: what,
        reason,
    })
}

/// Kubernetes' `IsDNS1035Label`: a DNS-1123 label that starts with a letter.
pub(crate) fn check_dns1035_label(s: &str) -> Result<(), &'static str> {
    check_dns_label(s)?;
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("it must start with a lower case letter");
    }
    Ok(())
}

/// Longest label value, and longest name part of a label key.
const LABEL_NAME_MAX: usize = 63;
/// Longest prefix of a label key (a DNS subdomain).
const LABEL_PREFIX_MAX: usize = 253;

/// Kubernetes' label-value syntax (`IsValidLabelValue`): empty, or at most
/// 63 of `[A-Za-z0-9._-]`, starting and ending with an alphanumeric.
pub(crate) fn check_label_value(s: &str) -> Result<(), &'static str> {
    if s.len() > LABEL_NAME_MAX {
        return Err("must be no more than 63 characters");
    }
    if !s.is_empty() && !is_qualified_name_part(s) {
        return Err("it must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
    }
    Ok(())
}

/// Kubernetes' label-key syntax (`IsQualifiedName`): an optional DNS-1123
/// subdomain prefix and '/', then a name of 1 to 63 of `[A-Za-z0-9._-]`
/// starting and ending with an alphanumeric (`app`,
/// `app.kubernetes.io/name`).
pub(crate) fn check_label_key(s: &str) -> Result<(), &'static str> {
    let name = match s.split_once('/') {
        None => s,
        Some((prefix, name)) => {
            if prefix.is_empty() {
                return Err("the prefix before '/' must not be empty");
            }
            if prefix.len() > LABEL_PREFIX_MAX || check_dns_subdomain(prefix).is_err() {
                return Err("the prefix before '/' must be a DNS-1123 subdomain (dot-separated lower case alphanumerics or '-', at most 253 characters)");
            }
            name
        }
    };
    if name.is_empty() {
        return Err("the name part must not be empty");
    }
    if name.len() > LABEL_NAME_MAX {
        return Err("the name part must be no more than 63 characters");
    }
    if !is_qualified_name_part(name) {
        return Err("the name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
    }
    Ok(())
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, for a non-empty `s`.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter().all(inner)
}

/// Checks every key and value of the labels (or selector) at `key`
/// (`deployments[0] "default/web": labels`), as the API server does.
pub(crate) fn check_labels(key: &str, labels: &Labels) -> Result<(), ConfigError> {
    for (k, v) in labels {
        if let Err(reason) = check_label_key(k) {
            return Err(ConfigError::InvalidLabelKey {
                key: key.to_owned(),
                value: k.into(),
                reason,
            });
        }
        if let Err(reason) = check_label_value(v) {
            return Err(ConfigError::InvalidLabelValue {
                key: format!("{key}.{k}"),
                value: v.into(),
                reason,
            });
        }
    }
    Ok(())
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
