//! Indexes the controllers keep from the events they route, so that a
//! reconcile looks up what it needs (the pods a selector picks, the
//! Services selecting a pod, an owner's dependents, a Service's slices, the
//! pods on a node) instead of scanning the store: the cost of one change
//! does not grow with the number of objects.
//!
//! An index may lag the store by the events not routed yet; callers fetch
//! the objects it names from the store and check them again, and a missing
//! entry is routed (and reconciled) right after.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use super::{controller_of, uid_of};
use crate::resources::Resource;
use crate::store::ObjectKey;

/// (namespace, label key, label value).
type Pair = (String, String, String);

/// One entry an object contributes to the indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    PodLabel(Pair),
    ServiceSelector(Pair),
    Dependent(String),
    Slice(String, String),
    OnNode(String, Option<Ipv4Addr>),
    Unbound,
    Owner(String),
}

/// The indexes.
#[derive(Debug, Default)]
pub struct Index {
    pods_by_label: HashMap<Pair, BTreeSet<String>>,
    services_by_selector: HashMap<Pair, BTreeSet<String>>,
    dependents: HashMap<String, BTreeSet<ObjectKey>>,
    slices: HashMap<(String, String), BTreeSet<String>>,
    pods_by_node: HashMap<String, BTreeMap<ObjectKey, Option<Ipv4Addr>>>,
    unbound: BTreeSet<ObjectKey>,
    owners: HashSet<String>,
}

fn pairs(namespace: &str, map: Option<&Map<String, Value>>) -> Vec<Pair> {
    map.into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                namespace.to_string(),
                k.clone(),
                v.as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A Service's selector, None when it selects nothing by itself.
pub fn selector_of(svc: &Value) -> Option<&Map<String, Value>> {
    if svc.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        return None;
    }
    svc.pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|s| !s.is_empty())
}

fn entries(key: &ObjectKey, object: &Value) -> Vec<Entry> {
    let ns = key.namespace.as_str();
    let mut out = Vec::new();
    if let Some((_, _, uid)) = controller_of(object) {
        out.push(Entry::Dependent(uid.to_string()));
    }
    match key.resource {
        Resource::Pods => {
            let labels = object
                .pointer("/metadata/labels")
                .and_then(Value::as_object);
            out.extend(pairs(ns, labels).into_iter().map(Entry::PodLabel));
            match object
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                Some(node) => {
                    let ip = object
                        .pointer("/status/podIP")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok());
                    out.push(Entry::OnNode(node.to_string(), ip));
                }
                None => out.push(Entry::Unbound),
            }
        }
        Resource::Services => {
            out.extend(
                pairs(ns, selector_of(object))
                    .into_iter()
                    .map(Entry::ServiceSelector),
            );
            out.push(Entry::Owner(uid_of(object).to_string()));
        }
        Resource::Deployments | Resource::ReplicaSets => {
            out.push(Entry::Owner(uid_of(object).to_string()))
        }
        Resource::EndpointSlices => {
            if let Some(svc) = object
                .pointer("/metadata/labels/kubernetes.io~1service-name")
                .and_then(Value::as_str)
            {
                out.push(Entry::Slice(ns.to_string(), svc.to_string()));
            }
        }
        Resource::Namespaces | Resource::Nodes | Resource::Endpoints => {}
    }
    out
}

impl Index {
    /// Applies one change: `old` is the object before, `new` after.
    pub fn update(&mut self, key: &ObjectKey, old: Option<&Value>, new: Option<&Value>) {
        for entry in old.map(|o| entries(key, o)).unwrap_or_default() {
            self.remove(key, entry);
        }
        for entry in new.map(|n| entries(key, n)).unwrap_or_default() {
            self.insert(key, entry);
        }
    }

    fn insert(&mut self, key: &ObjectKey, entry: Entry) {
        let name = key.name.clone();
        match entry {
            Entry::PodLabel(p) => {
                self.pods_by_label.entry(p).or_default().insert(name);
            }
            Entry::ServiceSelector(p) => {
                self.services_by_selector.entry(p).or_default().insert(name);
            }
            Entry::Dependent(uid) => {
                self.dependents.entry(uid).or_default().insert(key.clone());
            }
            Entry::Slice(ns, svc) => {
                self.slices.entry((ns, svc)).or_default().insert(name);
            }
            Entry::OnNode(node, ip) => {
                self.pods_by_node
                    .entry(node)
                    .or_default()
                    .insert(key.clone(), ip);
            }
            Entry::Unbound => {
                self.unbound.insert(key.clone());
            }
            Entry::Owner(uid) => {
                self.owners.insert(uid);
            }
        }
    }

    fn remove(&mut self, key: &ObjectKey, entry: Entry) {
        fn drop_from<K: std::hash::Hash + Eq, V: Ord>(
            map: &mut HashMap<K, BTreeSet<V>>,
            k: K,
            v: &V,
        ) {
            if let Some(set) = map.get_mut(&k) {
                set.remove(v);
                if set.is_empty() {
                    map.remove(&k);
                }
            }
        }
        match entry {
            Entry::PodLabel(p) => drop_from(&mut self.pods_by_label, p, &key.name),
            Entry::ServiceSelector(p) => drop_from(&mut self.services_by_selector, p, &key.name),
            Entry::Dependent(uid) => drop_from(&mut self.dependents, uid, key),
            Entry::Slice(ns, svc) => drop_from(&mut self.slices, (ns, svc), &key.name),
            Entry::OnNode(node, _) => {
                if let Some(pods) = self.pods_by_node.get_mut(&node) {
                    pods.remove(key);
                    if pods.is_empty() {
                        self.pods_by_node.remove(&node);
                    }
                }
            }
            Entry::Unbound => {
                self.unbound.remove(key);
            }
            Entry::Owner(uid) => {
                self.owners.remove(&uid);
            }
        }
    }

    /// Services of `namespace` whose selector may match `labels`.
    pub fn services_selecting(&self, namespace: &str, labels: Option<&Value>) -> BTreeSet<String> {
        pairs(namespace, labels.and_then(Value::as_object))
            .iter()
            .filter_map(|p| self.services_by_selector.get(p))
            .flatten()
            .cloned()
            .collect()
    }

    /// Pods of `namespace` that may match `selector` (those carrying its
    /// rarest pair).
    pub fn pods_for(&self, namespace: &str, selector: &Map<String, Value>) -> Vec<String> {
        let sets: Option<Vec<&BTreeSet<String>>> = pairs(namespace, Some(selector))
            .iter()
            .map(|p| self.pods_by_label.get(p))
            .collect();
        sets.and_then(|s| s.into_iter().min_by_key(|s| s.len()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The objects whose controller owner has `uid`.
    pub fn dependents(&self, uid: &str) -> Vec<ObjectKey> {
        self.dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether a Deployment, ReplicaSet or Service with `uid` exists.
    pub fn owner_alive(&self, uid: &str) -> bool {
        self.owners.contains(uid)
    }

    /// The EndpointSlices labelled for a Service.
    pub fn slices_of(&self, namespace: &str, service: &str) -> Vec<String> {
        self.slices
            .get(&(namespace.to_string(), service.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many pods a node has, and the addresses they hold.
    pub fn on_node(&self, node: &str) -> (usize, Vec<Ipv4Addr>) {
        match self.pods_by_node.get(node) {
            Some(pods) => (pods.len(), pods.values().flatten().copied().collect()),
            None => (0, Vec::new()),
        }
    }

    /// Pods bound to no node.
    pub fn unbound(&self) -> Vec<ObjectKey> {
        self.unbound.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, app: &str, node: &str, ip: &str) -> (ObjectKey, Value) {
        let object = json!({"metadata": {"name": name, "labels": {"app": app, "tier": "x"},
            "ownerReferences": [{"controller": true, "uid": "rs-1", "kind": "ReplicaSet", "name": "rs"}]},
            "spec": {"nodeName": node}, "status": {"podIP": ip}});
        (ObjectKey::new(Resource::Pods, "default", name), object)
    }

    #[test]
    fn lookups_follow_changes() {
        let mut index = Index::default();
        let (ka, a) = pod("a", "web", "n1", "10.0.0.2");
        let (kb, b) = pod("b", "db", "", "");
        index.update(&ka, None, Some(&a));
        index.update(&kb, None, Some(&b));
        let svc = json!({"metadata": {"name": "web", "uid": "svc-1"}, "spec": {"selector": {"app": "web", "tier": "x"}}});
        let ks = ObjectKey::new(Resource::Services, "default", "web");
        index.update(&ks, None, Some(&svc));

        assert_eq!(
            index.pods_for("default", svc["spec"]["selector"].as_object().expect("map")),
            ["a"]
        );
        assert_eq!(
            index.services_selecting("default", a.pointer("/metadata/labels")),
            ["web".to_string()].into()
        );
        assert!(index
            .services_selecting("other", a.pointer("/metadata/labels"))
            .is_empty());
        assert_eq!(index.dependents("rs-1").len(), 2);
        assert_eq!(index.on_node("n1"), (1, vec![Ipv4Addr::new(10, 0, 0, 2)]));
        assert_eq!(index.unbound(), vec![kb.clone()]);
        assert!(index.owner_alive("svc-1"));

        // b is bound and relabelled; a is deleted; the Service goes.
        let (_, b2) = pod("b", "web", "n1", "10.0.0.3");
        index.update(&kb, Some(&b), Some(&b2));
        index.update(&ka, Some(&a), None);
        assert_eq!(
            index.pods_for("default", svc["spec"]["selector"].as_object().expect("map")),
            ["b"]
        );
        assert_eq!(index.on_node("n1"), (1, vec![Ipv4Addr::new(10, 0, 0, 3)]));
        assert!(index.unbound().is_empty());
        assert_eq!(index.dependents("rs-1"), vec![kb]);
        index.update(&ks, Some(&svc), None);
        assert!(!index.owner_alive("svc-1"));
        assert!(index
            .services_selecting("default", b2.pointer("/metadata/labels"))
            .is_empty());
    }
}
