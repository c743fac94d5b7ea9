//! The raw layer: `config.toml` deserialized into structs that mirror the
//! TOML exactly (`deny_unknown_fields`, so a misspelt key is an error, and
//! integers read as `i64` so that an out of range value gets a message from
//! us rather than from serde), and TOML errors that name their object.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use cluster::Labels;

use crate::error::{cut, prefix, ConfigError};

/// Namespace of objects that do not name one.
pub(crate) const DEFAULT_NAMESPACE: &str = "default";

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) cluster: RawCluster,
    #[serde(default)]
    pub(crate) nodes: Vec<RawNode>,
    #[serde(default)]
    pub(crate) deployments: Vec<RawDeployment>,
    #[serde(default)]
    pub(crate) pods: Vec<RawPod>,
    #[serde(default)]
    pub(crate) services: Vec<RawService>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    #[serde(rename = "podCIDR")]
    pub(crate) pod_cidr: String,
    #[serde(rename = "serviceCIDR")]
    pub(crate) service_cidr: Option<String>,
    #[serde(rename = "dnsDomain")]
    pub(crate) dns_domain: Option<String>,
    #[serde(rename = "vxlanVNI")]
    pub(crate) vxlan_vni: Option<i64>,
    #[serde(rename = "vxlanPort")]
    pub(crate) vxlan_port: Option<i64>,
    #[serde(rename = "underlayMTU")]
    pub(crate) underlay_mtu: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub(crate) name: String,
    pub(crate) address: String,
    #[serde(rename = "podCIDR")]
    pub(crate) pod_cidr: String,
    #[serde(rename = "nextPodIP")]
    pub(crate) next_pod_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContainerPort {
    pub(crate) name: Option<String>,
    #[serde(rename = "containerPort")]
    pub(crate) container_port: i64,
    pub(crate) protocol: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDeployment {
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    #[serde(default = "one")]
    pub(crate) replicas: i64,
    #[serde(default)]
    pub(crate) labels: Labels,
    #[serde(rename = "templateHash")]
    pub(crate) template_hash: Option<String>,
    pub(crate) node: Option<String>,
    #[serde(default)]
    pub(crate) ports: Vec<RawContainerPort>,
    #[serde(rename = "podsCreated")]
    pub(crate) pods_created: Option<i64>,
    /// How errors name this object (`deployments[0]`); see [`origin`].
    #[serde(skip)]
    pub(crate) origin: Option<String>,
}

pub(crate) fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPod {
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    pub(crate) owner: Option<String>,
    /// `None`: none for a standalone pod, the template's for an owned one.
    pub(crate) labels: Option<Labels>,
    pub(crate) node: Option<String>,
    pub(crate) ip: Option<String>,
    pub(crate) ready: Option<bool>,
    /// `None`: none for a standalone pod, the template's for an owned one.
    pub(crate) ports: Option<Vec<RawContainerPort>>,
    /// How errors name this object (`pods[0]`); see [`origin`].
    #[serde(skip)]
    pub(crate) origin: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    #[serde(rename = "type")]
    pub(crate) service_type: Option<String>,
    #[serde(rename = "clusterIP")]
    pub(crate) cluster_ip: Option<String>,
    #[serde(rename = "externalName")]
    pub(crate) external_name: Option<String>,
    #[serde(default)]
    pub(crate) selector: Labels,
    #[serde(default)]
    pub(crate) labels: Labels,
    #[serde(rename = "sessionAffinity")]
    pub(crate) session_affinity: Option<String>,
    #[serde(rename = "sessionAffinityTimeoutSeconds")]
    pub(crate) session_affinity_timeout_seconds: Option<i64>,
    #[serde(rename = "externalTrafficPolicy")]
    pub(crate) external_traffic_policy: Option<String>,
    #[serde(rename = "internalTrafficPolicy")]
    pub(crate) internal_traffic_policy: Option<String>,
    #[serde(rename = "externalIPs", default)]
    pub(crate) external_ips: Vec<String>,
    #[serde(rename = "loadBalancerIPs", default)]
    pub(crate) load_balancer_ips: Vec<String>,
    #[serde(default)]
    pub(crate) ports: Vec<RawServicePort>,
    /// How errors name this object (`services[0]`); see [`origin`].
    #[serde(skip)]
    pub(crate) origin: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServicePort {
    pub(crate) name: Option<String>,
    pub(crate) port: i64,
    #[serde(rename = "targetPort")]
    pub(crate) target_port: Option<RawIntOrString>,
    #[serde(rename = "nodePort")]
    pub(crate) node_port: Option<i64>,
    pub(crate) protocol: Option<String>,
}

/// The key-path prefix errors use for the `i`-th object of `kind`
/// (`services[2]`), unless the object says where it came from: [`apply`](crate::apply)
/// names objects of the applied file by their index in that file and the
/// store's as `store services[2]`.
pub(crate) fn origin(given: &Option<String>, kind: &str, i: usize) -> String {
    given.clone().unwrap_or_else(|| format!("{kind}[{i}]"))
}

/// Kubernetes' `IntOrString`, as `targetPort` takes it.
#[derive(Debug, Clone)]
pub(crate) enum RawIntOrString {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for RawIntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawIntOrString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a container port name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(RawIntOrString::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(RawIntOrString::Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawIntOrString::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(RawIntOrString::Str(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A TOML error (syntax, unknown or missing key, wrong type), naming the
/// object it is in when there is one (`services[1] "default/odd-svc":
/// unknown field ...`), and keeping the parser's line, column and snippet.
pub(crate) fn toml_error(text: &str, e: toml::de::Error) -> ConfigError {
    let full = e.to_string().trim_end().to_owned();
    let object = e.span().and_then(|span| object_at(text, span.start));
    let message = match object {
        Some(object) => format!("{object}: {}\n{full}", e.message().trim_end()),
        None => full,
    };
    ConfigError::Toml {
        message: cut_lines(&message),
    }
}

/// Longest line of a TOML error kept in full: the parser quotes the
/// offending line and value, which may be megabytes long.
const TOML_LINE_MAX: usize = 200;

/// `message` with every line longer than [`TOML_LINE_MAX`] bytes cut to
/// that and its length.
fn cut_lines(message: &str) -> String {
    message
        .lines()
        .map(|line| {
            if line.len() <= TOML_LINE_MAX {
                return line.to_owned();
            }
            format!("{}... ({} bytes)", prefix(line, TOML_LINE_MAX), line.len())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `[[deployments]]`, `[[pods]]` or `[[services]]` entry that byte
/// `at` of `text` lies in, as errors name it: `services[1] "default/x"`.
pub(crate) fn object_at(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let mut current: Option<(&str, usize)> = None;
    let mut counts = [0usize; 3];
    const KINDS: [&str; 3] = ["deployments", "pods", "services"];
    for line in before.lines() {
        let t = line.trim();
        if !t.starts_with('[') {
            continue;
        }
        current = None;
        for (i, kind) in KINDS.iter().enumerate() {
            if t.starts_with(&format!("[[{kind}]]")) {
                current = Some((kind, counts[i]));
                counts[i] += 1;
            }
        }
    }
    let (kind, index) = current?;
    // The entry's name, if the rest of the file parses as plain TOML.
    let table: toml::Table = text.parse().ok()?;
    let entry = table.get(kind)?.as_array()?.get(index)?;
    let name = entry.get("name")?.as_str()?;
    let namespace = entry
        .get("namespace")
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    Some(format!(
        "{kind}[{index}] \"{}/{}\"",
        cut(namespace),
        cut(name)
    ))
}
