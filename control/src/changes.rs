//! The store's changes, as kubectl makes them against the API server:
//! [`apply`], [`delete_pod`], [`delete_service`] and [`set_ready`], each
//! taking the store's text and returning the new text, validated in full.

use std::fmt;

use cluster::{Cluster, Deployment, Pod, Service, ServiceType};

use crate::emit::{to_raw, to_toml};
use crate::error::ConfigError;
use crate::key::{Keyed, ObjectKey};
use crate::parse::{build, parse};
use crate::schema::{toml_error, RawApply, RawConfig, RawDeployment, RawService};
use crate::validate::container_ports;

/// What [`apply`] or a delete did to one object, printed as kubectl prints
/// it: `service/nginx-svc configured`, `deployment.apps/web created`,
/// `pod "client" deleted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The object's kind.
    pub kind: ChangeKind,
    /// The object's namespace and name.
    pub key: ObjectKey,
    /// What happened to it.
    pub action: ChangeAction,
}

/// The kinds of object a change can touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A Deployment (`deployment.apps`).
    Deployment,
    /// A pod.
    Pod,
    /// A Service.
    Service,
}

impl fmt::Display for ChangeKind {
    /// The resource as kubectl names it in its output; Deployments by
    /// their API group.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Deployment => "deployment.apps",
            Self::Pod => "pod",
            Self::Service => "service",
        })
    }
}

/// What happened to an object, in kubectl's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    /// It did not exist before.
    Created,
    /// It existed and its spec changed.
    Configured,
    /// It existed with the same spec.
    Unchanged,
    /// It was removed.
    Deleted,
}

impl ChangeAction {
    /// `Created` for an object that did not exist, else `Unchanged` or
    /// `Configured` by whether its spec is the `same`.
    fn of(existed: bool, same: bool) -> Self {
        match (existed, same) {
            (false, _) => Self::Created,
            (true, true) => Self::Unchanged,
            (true, false) => Self::Configured,
        }
    }
}

impl fmt::Display for ChangeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Configured => "configured",
            Self::Unchanged => "unchanged",
            Self::Deleted => "deleted",
        })
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, name) = (self.kind, &self.key.name);
        match self.action {
            ChangeAction::Deleted => write!(f, "{kind} \"{name}\" deleted"),
            action => write!(f, "{kind}/{name} {action}"),
        }
    }
}

/// `kubectl apply -f FILE` against the store: `file` holds `[[deployments]]`,
/// `[[pods]]` and/or `[[services]]` in this module's schema (no `[cluster]`,
/// no `[[nodes]]`); each replaces the store's object of the same kind,
/// namespace and name, or is added.
///
/// Allocated values survive a re-apply: a Service without `clusterIP`
/// keeps its ClusterIP (or stays headless), a NodePort/LoadBalancer port
/// without `nodePort` keeps the one of the old port with the same number and
/// protocol (a ClusterIP -> NodePort change allocates one, NodePort ->
/// ClusterIP drops it). A Deployment with the same template (labels, ports,
/// pin and, when given, `templateHash`) keeps its hash, `podsCreated` and
/// pods, so changing `replicas` scales it; with another template its old
/// pods are removed and new ones generated (a simplified rollout). A pod
/// without `node`/`ip` keeps its node and IP.
///
/// The merged document is then validated with every rule of [`parse`]; on
/// error nothing is returned to write, and the error names the applied
/// object by its place in `file` (`services[0] "default/web": ...`) and a
/// stored one as `store services[3] ...`. Pods this apply creates are
/// written not ready (`ready = false`: the lab's kubelet marks them ready
/// when their server answers), except router-hosted ones (the router
/// answers for those itself); existing pods keep their readiness.
///
/// Returns the new store text ([`to_toml`]) and one [`Change`] per applied
/// object: Deployments, then pods, then Services, each in file order.
pub fn apply(store: &str, file: &str) -> Result<(String, Vec<Change>), ConfigError> {
    let before = parse(store)?;
    let applied: RawApply = toml::from_str(file).map_err(|e| toml_error(file, e))?;
    if applied.cluster.is_some() {
        return Err(ConfigError::ApplyClusterScoped {
            section: "[cluster]",
        });
    }
    if applied.nodes.is_some() {
        return Err(ConfigError::ApplyClusterScoped {
            section: "[[nodes]]",
        });
    }
    if applied.deployments.is_empty() && applied.pods.is_empty() && applied.services.is_empty() {
        return Err(ConfigError::NothingToApply);
    }
    let mut stored = store_raw(&before);

    let mut deployments = Vec::with_capacity(applied.deployments.len());
    for (i, mut d) in applied.deployments.into_iter().enumerate() {
        d.origin = Some(format!("deployments[{i}]"));
        let key = d.key();
        if let Some(old) = before.deployment(&key.namespace, &key.name) {
            if same_template(old, &d) {
                d.template_hash
                    .get_or_insert_with(|| old.template_hash.clone());
            } else {
                // A rollout: the old template's pods go, the controller
                // generates new ones.
                stored.pods.retain(|p| {
                    p.namespace() != key.namespace || p.owner.as_deref() != Some(&key.name)
                });
            }
            d.pods_created
                .get_or_insert(i64::try_from(old.pods_created).unwrap_or(i64::MAX));
            stored.deployments.retain(|o| !o.has_key(&key));
        }
        deployments.push(d);
    }

    let mut pods = Vec::with_capacity(applied.pods.len());
    for (i, mut p) in applied.pods.into_iter().enumerate() {
        p.origin = Some(format!("pods[{i}]"));
        let key = p.key();
        if let Some(old) = before.pod(&key.namespace, &key.name) {
            let node = p.node.get_or_insert_with(|| old.node.clone());
            if p.ip.is_none() && *node == old.node {
                p.ip = Some(old.ip.to_string());
            }
            stored.pods.retain(|o| !o.has_key(&key));
        }
        pods.push(p);
    }

    let mut services = Vec::with_capacity(applied.services.len());
    for (i, mut s) in applied.services.into_iter().enumerate() {
        s.origin = Some(format!("services[{i}]"));
        let key = s.key();
        if let Some(old) = before.service(&key.namespace, &key.name) {
            keep_allocations(old, &mut s);
            stored.services.retain(|o| !o.has_key(&key));
        }
        services.push(s);
    }

    // Applied objects last: a clash is reported on the applied object.
    let applied_keys: Vec<(ChangeKind, ObjectKey)> = deployments
        .iter()
        .map(|d| (ChangeKind::Deployment, d.key()))
        .chain(pods.iter().map(|p| (ChangeKind::Pod, p.key())))
        .chain(services.iter().map(|s| (ChangeKind::Service, s.key())))
        .collect();
    stored.deployments.extend(deployments);
    stored.pods.extend(pods);
    stored.services.extend(services);
    let mut after = build(stored)?;
    settle_readiness(&before, &mut after);
    // Deployments keep their place; new ones follow in file order.
    after.deployments.sort_by_key(|d| {
        let key = d.key();
        before
            .deployments
            .iter()
            .position(|o| o.has_key(&key))
            .unwrap_or(usize::MAX)
    });

    let changes = applied_keys
        .into_iter()
        .map(|(kind, key)| {
            let (ns, name) = (key.namespace.as_str(), key.name.as_str());
            let (existed, same) = match kind {
                ChangeKind::Deployment => {
                    let old = before.deployment(ns, name);
                    let new = after.deployment(ns, name);
                    (
                        old.is_some(),
                        old.zip(new)
                            .is_some_and(|(o, n)| same_deployment_spec(o, n)),
                    )
                }
                ChangeKind::Pod => {
                    let old = before.pod(ns, name);
                    let new = after.pod(ns, name);
                    // Readiness is status, not spec.
                    let same = old.zip(new).is_some_and(|(o, n)| {
                        Pod {
                            ready: n.ready,
                            ..o.clone()
                        } == *n
                    });
                    (old.is_some(), same)
                }
                ChangeKind::Service => {
                    let old = before.service(ns, name);
                    (
                        old.is_some(),
                        old.is_some() && after.service(ns, name) == old,
                    )
                }
            };
            Change {
                kind,
                key,
                action: ChangeAction::of(existed, same),
            }
        })
        .collect();
    Ok((to_toml(&after), changes))
}

/// `kubectl delete pod NAME -n NAMESPACE` against the store. A pod owned
/// by a Deployment is replaced by the deployment controller, as the
/// ReplicaSet would: a new name (the next `podsCreated`), a new IP (the
/// node's `nextPodIP`, round robin), not ready.
///
/// Returns the new store text and kubectl's line (`pod "NAME" deleted`);
/// an unknown pod is [`ConfigError::PodNotFound`] (`pods "NAME" not found`).
pub fn delete_pod(
    store: &str,
    namespace: &str,
    name: &str,
) -> Result<(String, Vec<Change>), ConfigError> {
    let before = parse(store)?;
    if before.pod(namespace, name).is_none() {
        return Err(ConfigError::PodNotFound {
            name: name.to_owned(),
        });
    }
    let mut raw = store_raw(&before);
    let key = ObjectKey::new(namespace, name);
    raw.pods.retain(|p| !p.has_key(&key));
    let mut after = build(raw)?;
    settle_readiness(&before, &mut after);
    Ok((
        to_toml(&after),
        vec![Change {
            kind: ChangeKind::Pod,
            key,
            action: ChangeAction::Deleted,
        }],
    ))
}

/// `kubectl delete service NAME -n NAMESPACE` against the store: returns
/// the new store text and kubectl's line (`service "NAME" deleted`); an
/// unknown Service is [`ConfigError::ServiceNotFound`].
pub fn delete_service(
    store: &str,
    namespace: &str,
    name: &str,
) -> Result<(String, Vec<Change>), ConfigError> {
    let mut c = parse(store)?;
    let key = ObjectKey::new(namespace, name);
    let Some(i) = c.services.iter().position(|s| s.has_key(&key)) else {
        return Err(ConfigError::ServiceNotFound {
            name: name.to_owned(),
        });
    };
    c.services.remove(i);
    Ok((
        to_toml(&c),
        vec![Change {
            kind: ChangeKind::Service,
            key,
            action: ChangeAction::Deleted,
        }],
    ))
}

/// Marks the pod `namespace/name` ready or not (the lab's kubelet, when
/// the pod's server answers or stops answering). Returns the new store
/// text; an unknown pod is [`ConfigError::PodNotFound`].
pub fn set_ready(
    store: &str,
    namespace: &str,
    name: &str,
    ready: bool,
) -> Result<String, ConfigError> {
    let mut c = parse(store)?;
    let key = ObjectKey::new(namespace, name);
    let Some(pod) = c.pods.iter_mut().find(|p| p.has_key(&key)) else {
        return Err(ConfigError::PodNotFound {
            name: name.to_owned(),
        });
    };
    pod.ready = ready;
    Ok(to_toml(&c))
}

/// `c` as raw objects named for errors as the store's (`store pods[3]`).
pub(crate) fn store_raw(c: &Cluster) -> RawConfig {
    let mut raw = to_raw(c);
    for (i, d) in raw.deployments.iter_mut().enumerate() {
        d.origin = Some(format!("store deployments[{i}]"));
    }
    for (i, p) in raw.pods.iter_mut().enumerate() {
        p.origin = Some(format!("store pods[{i}]"));
    }
    for (i, s) in raw.services.iter_mut().enumerate() {
        s.origin = Some(format!("store services[{i}]"));
    }
    raw
}

/// Pods that existed in `before` keep their readiness; new ones start not
/// ready, except the ones the router serves itself.
pub(crate) fn settle_readiness(before: &Cluster, after: &mut Cluster) {
    for p in &mut after.pods {
        p.ready = match before.pod(&p.namespace, &p.name) {
            Some(old) => old.ready,
            None => p.is_router_hosted(),
        };
    }
}

/// Whether the applied Deployment `new` has `old`'s pod template: labels,
/// ports, pinned node and, when it gives one, pod-template-hash.
pub(crate) fn same_template(old: &Deployment, new: &RawDeployment) -> bool {
    new.labels == old.labels
        && new.node == old.node
        && new
            .template_hash
            .as_ref()
            .is_none_or(|h| *h == old.template_hash)
        && container_ports("", &new.ports).is_ok_and(|p| p == old.ports)
}

/// Equal but for the `pods_created` counter (status, not spec).
pub(crate) fn same_deployment_spec(a: &Deployment, b: &Deployment) -> bool {
    Deployment {
        pods_created: b.pods_created,
        ..a.clone()
    } == *b
}

/// Carries `old`'s allocated ClusterIP and node ports into the applied
/// `new` where it leaves them out and still needs them.
pub(crate) fn keep_allocations(old: &Service, new: &mut RawService) {
    let ty = new.service_type.as_deref().unwrap_or("ClusterIP");
    if new.cluster_ip.is_none() && ty != "ExternalName" {
        if old.headless {
            if ty == "ClusterIP" {
                new.cluster_ip = Some("None".to_owned());
            }
        } else if old.service_type != ServiceType::ExternalName {
            new.cluster_ip = Some(old.cluster_ip.to_string());
        }
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        for port in new.ports.iter_mut().filter(|p| p.node_port.is_none()) {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            port.node_port = old
                .ports
                .iter()
                .find(|o| i64::from(o.port) == port.port && o.protocol.to_string() == protocol)
                .and_then(|o| o.node_port)
                .map(i64::from);
        }
    }
}
