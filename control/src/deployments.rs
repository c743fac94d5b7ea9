//! The deployment controller: Deployments and explicit pods validated into
//! plans, owned pods counted toward `replicas`, missing ones generated with
//! Kubernetes-style names (pod-template-hash and `SafeEncodeString`
//! suffix), extra ones removed, unplaced ones scheduled.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use xxhash_rust::xxh3::xxh3_64;

use cluster::{ContainerPort, Deployment, Labels, Node};

use crate::error::ConfigError;
use crate::key::{describe, Keyed, ObjectKey};
use crate::schema::{origin, RawDeployment, RawPod, DEFAULT_NAMESPACE};
use crate::validate::{check_labels, check_name, container_ports, find_node, parse_ip, NameSyntax};

/// Kubernetes' `SafeEncodeString` alphabet (no vowels, no confusable digits),
/// used for pod-template-hashes and pod name suffixes.
pub(crate) const SAFE_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";
/// Length of a generated pod-template-hash.
pub(crate) const TEMPLATE_HASH_LEN: usize = 10;
/// Length of a generated pod name suffix.
pub(crate) const POD_SUFFIX_LEN: usize = 5;
/// Kubernetes truncates a `generateName` prefix to this many characters so
/// that prefix plus suffix fits a 63-character name.
pub(crate) const MAX_GENERATE_NAME_PREFIX: usize = 63 - POD_SUFFIX_LEN;
/// Most replicas a Deployment may ask for.
pub(crate) const MAX_REPLICAS: i64 = 1000;

/// A pod before its IP is known.
pub(crate) struct PodPlan {
    /// `deployments[0] "default/x" replica 1` or `pods[0] "default/client"`.
    pub(crate) obj: String,
    /// Key path of the explicit `ip`.
    pub(crate) ip_key: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) labels: Labels,
    /// `None` only for an owned pod of an unpinned Deployment that gives no
    /// node, until the deployment controller schedules it.
    pub(crate) node: Option<usize>,
    pub(crate) ip: Option<Ipv4Addr>,
    pub(crate) ready: bool,
    pub(crate) owner: Option<String>,
    pub(crate) ports: Vec<ContainerPort>,
}

/// A validated Deployment plus what pod generation needs.
pub(crate) struct DeploymentPlan {
    pub(crate) deployment: Deployment,
    pub(crate) obj: String,
    /// The node all replicas are pinned to, if any.
    pub(crate) node: Option<usize>,
}

pub(crate) fn build_deployments(
    raw: &[RawDeployment],
    nodes: &[Node],
) -> Result<Vec<DeploymentPlan>, ConfigError> {
    let mut out: Vec<DeploymentPlan> = Vec::with_capacity(raw.len());
    for (i, d) in raw.iter().enumerate() {
        let label = origin(&d.origin, "deployments", i);
        let namespace = d.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let key = d.key();
        let obj = describe(&label, &key);
        check_name(&format!("{label}.name"), &d.name, NameSyntax::Dns1123Label)?;
        check_name(
            &format!("{obj}: namespace"),
            namespace,
            NameSyntax::Dns1123Label,
        )?;
        check_labels(&format!("{obj}: labels"), &d.labels)?;
        if let Some(j) = out.iter().position(|o| o.deployment.has_key(&key)) {
            return Err(ConfigError::DuplicateName {
                key: format!("{label}.name"),
                value: (&d.name).into(),
                namespace: namespace.to_owned(),
                first: origin(&raw[j].origin, "deployments", j),
            });
        }
        if !(0..=MAX_REPLICAS).contains(&d.replicas) {
            return Err(ConfigError::ReplicasOutOfRange {
                key: format!("{obj}: replicas"),
                value: d.replicas,
            });
        }
        let replicas = u32::try_from(d.replicas).unwrap_or(0);
        let ports = container_ports(&label, &d.ports)?;
        let template_hash = match &d.template_hash {
            Some(h) => {
                let ok = (1..=TEMPLATE_HASH_LEN).contains(&h.len())
                    && h.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
                if !ok {
                    return Err(ConfigError::InvalidTemplateHash {
                        key: format!("{obj}: templateHash"),
                        value: h.into(),
                    });
                }
                h.clone()
            }
            None => template_hash(&d.labels, &ports),
        };
        let node = match &d.node {
            Some(name) => Some(find_node(&format!("{obj}: node"), name, nodes)?),
            None => None,
        };
        let pods_created = match d.pods_created {
            None => 0,
            Some(n) => u64::try_from(n).map_err(|_| ConfigError::NegativeCount {
                key: format!("{obj}: podsCreated"),
                value: n,
            })?,
        };
        out.push(DeploymentPlan {
            deployment: Deployment {
                name: d.name.clone(),
                namespace: namespace.to_owned(),
                replicas,
                labels: d.labels.clone(),
                template_hash,
                ports,
                node: d.node.clone(),
                pods_created,
            },
            obj,
            node,
        });
    }
    Ok(out)
}

/// The labels of every pod of `d`: the template's plus `pod-template-hash`.
pub(crate) fn template_labels(d: &Deployment) -> Labels {
    let mut labels = d.labels.clone();
    labels.insert("pod-template-hash".into(), d.template_hash.clone());
    labels
}

/// The explicit `[[pods]]`, standalone and owned.
pub(crate) fn build_pods(
    raw: &[RawPod],
    nodes: &[Node],
    deployments: &[DeploymentPlan],
) -> Result<Vec<PodPlan>, ConfigError> {
    let mut out: Vec<PodPlan> = Vec::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        let label = origin(&p.origin, "pods", i);
        let namespace = p.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let key = p.key();
        let obj = describe(&label, &key);
        check_name(&format!("{label}.name"), &p.name, NameSyntax::Dns1123Label)?;
        check_name(
            &format!("{obj}: namespace"),
            namespace,
            NameSyntax::Dns1123Label,
        )?;
        if let Some(labels) = &p.labels {
            check_labels(&format!("{obj}: labels"), labels)?;
        }
        if let Some(j) = out.iter().position(|o| o.has_key(&key)) {
            return Err(ConfigError::DuplicateName {
                key: format!("{label}.name"),
                value: (&p.name).into(),
                namespace: namespace.to_owned(),
                first: origin(&raw[j].origin, "pods", j),
            });
        }
        let owner = match &p.owner {
            None => None,
            Some(name) => Some(
                deployments
                    .iter()
                    .find(|d| d.deployment.has_key(&ObjectKey::new(namespace, name)))
                    .ok_or_else(|| ConfigError::UnknownOwner {
                        key: format!("{obj}: owner"),
                        value: name.into(),
                        namespace: namespace.to_owned(),
                    })?,
            ),
        };
        let node = match (&p.node, owner) {
            (Some(name), _) => {
                let key = format!("{obj}: node");
                let n = find_node(&key, name, nodes)?;
                if let Some(d) = owner {
                    if let Some(pin) = &d.deployment.node {
                        if pin != name {
                            return Err(ConfigError::OwnedPodOffPin {
                                key,
                                value: name.into(),
                                deployment: d.deployment.name.clone(),
                                pin: pin.clone(),
                            });
                        }
                    }
                }
                Some(n)
            }
            // The pin, else the node its address belongs to, else the
            // deployment controller places it.
            (None, Some(d)) => d.node.or_else(|| {
                let ip = p.ip.as_deref().and_then(|t| t.parse::<Ipv4Addr>().ok())?;
                nodes.iter().position(|n| n.pod_cidr.contains(&ip))
            }),
            (None, None) => Some(0),
        };
        let ip_key = format!("{obj}: ip");
        let ip = match &p.ip {
            Some(text) => Some(parse_ip(&ip_key, text)?),
            None => None,
        };
        let labels = match (&p.labels, owner) {
            (Some(l), _) => l.clone(),
            (None, Some(d)) => template_labels(&d.deployment),
            (None, None) => Labels::new(),
        };
        let ports = match (&p.ports, owner) {
            (Some(ports), _) => container_ports(&label, ports)?,
            (None, Some(d)) => d.deployment.ports.clone(),
            (None, None) => Vec::new(),
        };
        out.push(PodPlan {
            ports,
            obj,
            ip_key,
            namespace: namespace.to_owned(),
            name: p.name.clone(),
            labels,
            node,
            ip,
            ready: p.ready.unwrap_or(true),
            owner: owner.map(|d| d.deployment.name.clone()),
        });
    }
    Ok(out)
}

/// The node with the fewest of a Deployment's pods (`load`), the first in
/// node order on a tie.
pub(crate) fn least_loaded(load: &[usize]) -> usize {
    load.iter()
        .enumerate()
        .min_by_key(|&(i, &n)| (n, i))
        .map_or(0, |(i, _)| i)
}

/// The deployment controller, for every Deployment in order: its explicit
/// owned pods count toward `replicas`; extra ones are removed (not-ready
/// first, then by name descending); owned pods without a node are
/// scheduled; the missing ones are generated, the k-th ever
/// (`pods_created`) named from xxh3 of (namespace/name, hash, k),
/// rehashing with a counter on a collision with any other pod's name.
///
/// Returns the generated pods (in Deployment order) followed by the kept
/// explicit ones (in file order): the order IPs are allocated in.
pub(crate) fn run_deployment_controller(
    deployments: &mut [DeploymentPlan],
    mut explicit: Vec<PodPlan>,
    nodes: &[Node],
) -> Vec<PodPlan> {
    let mut taken: HashSet<ObjectKey> = explicit.iter().map(Keyed::key).collect();
    let mut keep = vec![true; explicit.len()];
    let mut generated = Vec::new();
    for d in deployments.iter_mut() {
        let dep = &mut d.deployment;
        let owned: Vec<usize> = explicit
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.namespace == dep.namespace && p.owner.as_deref() == Some(dep.name.as_str())
            })
            .map(|(i, _)| i)
            .collect();
        let replicas = dep.replicas as usize;
        if owned.len() > replicas {
            let mut victims = owned.clone();
            victims.sort_by(|&a, &b| {
                let (pa, pb) = (&explicit[a], &explicit[b]);
                pa.ready.cmp(&pb.ready).then_with(|| pb.name.cmp(&pa.name))
            });
            for &i in &victims[..owned.len() - replicas] {
                keep[i] = false;
            }
        }
        let kept: Vec<usize> = owned.into_iter().filter(|&i| keep[i]).collect();
        let mut load = vec![0usize; nodes.len()];
        for &i in &kept {
            if let Some(n) = explicit[i].node {
                load[n] += 1;
            }
        }
        for &i in &kept {
            if explicit[i].node.is_none() {
                let n = d.node.unwrap_or_else(|| least_loaded(&load));
                explicit[i].node = Some(n);
                load[n] += 1;
            }
        }
        let mut prefix = format!("{}-{}-", dep.name, dep.template_hash);
        prefix.truncate(MAX_GENERATE_NAME_PREFIX);
        for _ in kept.len()..replicas {
            let k = dep.pods_created;
            let seed = format!("{}/{}/{}/{k}", dep.namespace, dep.name, dep.template_hash);
            let mut counter = 0u64;
            let name = loop {
                let h = if counter == 0 {
                    xxh3_64(seed.as_bytes())
                } else {
                    xxh3_64(format!("{seed}#{counter}").as_bytes())
                };
                let name = format!("{prefix}{}", safe_encode_u64(h, POD_SUFFIX_LEN));
                if taken.insert(ObjectKey::new(dep.namespace.clone(), name.clone())) {
                    break name;
                }
                counter += 1;
            };
            let node = d.node.unwrap_or_else(|| least_loaded(&load));
            load[node] += 1;
            generated.push(PodPlan {
                obj: format!("{} replica {k}", d.obj),
                ip_key: String::new(),
                namespace: dep.namespace.clone(),
                name,
                labels: template_labels(dep),
                node: Some(node),
                ip: None,
                ready: true,
                owner: Some(dep.name.clone()),
                ports: dep.ports.clone(),
            });
            dep.pods_created = dep.pods_created.saturating_add(1);
        }
    }
    generated.extend(
        explicit
            .into_iter()
            .zip(keep)
            .filter_map(|(p, k)| k.then_some(p)),
    );
    generated
}

/// A pod-template-hash the way Kubernetes spells one: a hash of the
/// template, printed in decimal, each digit mapped through
/// `SafeEncodeString` (so it only uses `456789bcdf`, like `756d6b7586`).
pub(crate) fn template_hash(labels: &Labels, ports: &[ContainerPort]) -> String {
    let mut s = String::from("labels\n");
    for (k, v) in labels {
        s.push_str(&format!("{k}={v}\n"));
    }
    s.push_str("ports\n");
    for p in ports {
        s.push_str(&format!(
            "{}/{}/{}\n",
            p.name.as_deref().unwrap_or(""),
            p.container_port,
            p.protocol
        ));
    }
    let digits = format!("{:010}", xxh3_64(s.as_bytes()) % 10_000_000_000);
    digits
        .bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .take(TEMPLATE_HASH_LEN)
        .collect()
}

/// `len` characters of `SafeEncodeString`'s alphabet drawn from `h`.
pub(crate) fn safe_encode_u64(mut h: u64, len: usize) -> String {
    let n = SAFE_ALPHABET.len() as u64;
    (0..len)
        .map(|_| {
            let c = SAFE_ALPHABET[(h % n) as usize];
            h /= n;
            char::from(c)
        })
        .collect()
}
