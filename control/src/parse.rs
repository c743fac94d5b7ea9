//! The entry points: [`load`] and [`parse`] turn a file into a validated
//! [`Cluster`], [`validate`] checks a `Cluster` built elsewhere as strictly.
//! `build` runs the validators, the deployment controller and the
//! allocators in order.

use std::path::Path;

use cluster::{Cluster, Overlay};

use crate::allocate::{assign_pod_ips, NODE_PORT_MAX, NODE_PORT_MIN};
use crate::deployments::{build_deployments, build_pods, run_deployment_controller};
use crate::emit::to_toml;
use crate::error::ConfigError;
use crate::key::Keyed;
use crate::schema::{toml_error, RawCluster, RawConfig};
use crate::settings::ClusterSettings;
use crate::validate::{
    build_nodes, build_services, check_dns_subdomain, overlaps, parse_cidr, port_number,
};

/// Service CIDR when `cluster.serviceCIDR` is absent (kubeadm's default).
pub(crate) const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// DNS domain when `cluster.dnsDomain` is absent.
pub(crate) const DEFAULT_DNS_DOMAIN: &str = "cluster.local";

/// Largest VXLAN network identifier (24 bits).
pub(crate) const MAX_VNI: i64 = 0xff_ffff;
/// Smallest underlay MTU: IPv6's minimum, so pods still get 1230 bytes.
pub(crate) const MIN_UNDERLAY_MTU: i64 = 1280;
/// Largest underlay MTU: a common jumbo frame.
pub(crate) const MAX_UNDERLAY_MTU: i64 = 9000;

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Cluster, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text)
}

/// Parses, validates and completes (names, IPs, ClusterIPs, node ports) a
/// config file's text.
pub fn parse(text: &str) -> Result<Cluster, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, e))?;
    build(raw)
}

/// Checks a [`Cluster`] built elsewhere (received over the control socket,
/// say) as strictly as [`parse`] checks a file: it must be exactly what
/// parsing its own [`to_toml`] gives back, so every rule holds (a
/// ClusterIP inside the Service CIDR and so never a pod's IP, node
/// addresses unicast, names in Kubernetes' syntax, ...) and nothing is
/// left for the controller or the allocators to change. The error names
/// the first key that breaks a rule, or the first object that differs.
pub fn validate(cluster: &Cluster) -> Result<(), ConfigError> {
    let rebuilt = parse(&to_toml(cluster))?;
    match first_difference(cluster, &rebuilt) {
        None => Ok(()),
        Some(key) => Err(ConfigError::NotAsStored { key }),
    }
}

/// The first part of `given` that `rebuilt` does not repeat, as a key
/// path (`pods[2] "default/web-x"`).
fn first_difference(given: &Cluster, rebuilt: &Cluster) -> Option<String> {
    let settings = |c: &Cluster| (c.pod_cidr, c.service_cidr, c.dns_domain.clone(), c.overlay);
    if settings(given) != settings(rebuilt) {
        return Some("cluster".to_owned());
    }
    differs("nodes", &given.nodes, &rebuilt.nodes, |n| n.name.clone())
        .or_else(|| {
            differs(
                "deployments",
                &given.deployments,
                &rebuilt.deployments,
                |d| d.key().to_string(),
            )
        })
        .or_else(|| differs("pods", &given.pods, &rebuilt.pods, |p| p.key().to_string()))
        .or_else(|| {
            differs("services", &given.services, &rebuilt.services, |s| {
                s.key().to_string()
            })
        })
}

/// The first index where the lists differ, as `kind[i] "name"`.
fn differs<T: PartialEq>(
    kind: &str,
    given: &[T],
    rebuilt: &[T],
    name: impl Fn(&T) -> String,
) -> Option<String> {
    let i = (0..given.len().max(rebuilt.len())).find(|&i| given.get(i) != rebuilt.get(i))?;
    let object = given.get(i).or_else(|| rebuilt.get(i)).map(&name)?;
    Some(format!("{kind}[{i}] {:?}", crate::error::cut(&object)))
}

pub(crate) fn build(raw: RawConfig) -> Result<Cluster, ConfigError> {
    let ClusterSettings {
        pod_cidr,
        service_cidr,
        dns_domain,
        overlay,
    } = build_cluster_settings(&raw.cluster)?;

    let mut nodes = build_nodes(&raw.nodes, pod_cidr, service_cidr)?;
    let mut deployments = build_deployments(&raw.deployments, &nodes)?;
    let explicit = build_pods(&raw.pods, &nodes, &deployments)?;
    let plans = run_deployment_controller(&mut deployments, explicit, &nodes);
    let mut pods = assign_pod_ips(plans, &mut nodes)?;
    let mut services = build_services(&raw.services, pod_cidr, service_cidr, &nodes)?;

    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(Cluster {
        pod_cidr,
        service_cidr,
        dns_domain,
        overlay,
        nodes,
        deployments: deployments.into_iter().map(|d| d.deployment).collect(),
        pods,
        services,
        endpoint_slices: None,
    })
}

/// The `[cluster]` table: the CIDRs, the DNS domain and the overlay,
/// validated, with the defaults filled in.
pub(crate) fn build_cluster_settings(raw: &RawCluster) -> Result<ClusterSettings, ConfigError> {
    let pod_cidr = parse_cidr("cluster.podCIDR", &raw.pod_cidr)?;
    let service_cidr = parse_cidr(
        "cluster.serviceCIDR",
        raw.service_cidr.as_deref().unwrap_or(DEFAULT_SERVICE_CIDR),
    )?;
    if overlaps(pod_cidr, service_cidr) {
        return Err(ConfigError::CidrsOverlap {
            service_cidr,
            pod_cidr,
        });
    }
    let overlay = build_overlay(raw)?;
    let dns_domain = raw
        .dns_domain
        .clone()
        .unwrap_or_else(|| DEFAULT_DNS_DOMAIN.to_owned());
    if let Err(reason) = check_dns_subdomain(&dns_domain) {
        return Err(ConfigError::InvalidDnsDomain {
            key: "cluster.dnsDomain".into(),
            value: dns_domain.into(),
            reason,
        });
    }
    Ok(ClusterSettings {
        pod_cidr,
        service_cidr,
        dns_domain,
        overlay,
    })
}

/// `cluster.vxlanVNI`, `cluster.vxlanPort` and `cluster.underlayMTU`, each
/// defaulting to flannel's value.
pub(crate) fn build_overlay(raw: &RawCluster) -> Result<Overlay, ConfigError> {
    let defaults = Overlay::default();
    let in_range = |key: &str, value: i64, min: i64, max: i64| {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::ValueOutOfRange {
                key: key.to_owned(),
                value,
                min,
                max,
            })
        }
    };
    let vni = match raw.vxlan_vni {
        None => defaults.vni,
        Some(v) => {
            u32::try_from(in_range("cluster.vxlanVNI", v, 1, MAX_VNI)?).unwrap_or(defaults.vni)
        }
    };
    let port = match raw.vxlan_port {
        None => defaults.port,
        Some(p) => {
            let port = port_number("cluster.vxlanPort", p)?;
            // Every node serves the NodePorts on its own address, the
            // overlay's outer destination too.
            if (NODE_PORT_MIN..=NODE_PORT_MAX).contains(&i64::from(port)) {
                return Err(ConfigError::VxlanPortInNodePortRange {
                    key: "cluster.vxlanPort".to_owned(),
                    value: port,
                });
            }
            port
        }
    };
    let underlay_mtu = match raw.underlay_mtu {
        None => defaults.underlay_mtu,
        Some(m) => u16::try_from(in_range(
            "cluster.underlayMTU",
            m,
            MIN_UNDERLAY_MTU,
            MAX_UNDERLAY_MTU,
        )?)
        .unwrap_or(defaults.underlay_mtu),
    };
    Ok(Overlay {
        vni,
        port,
        underlay_mtu,
    })
}
