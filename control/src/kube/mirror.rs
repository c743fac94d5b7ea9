//! [`Mirror`]: what the router has been told of the API, per kind, so that
//! watcher events become exactly the [`ClusterChange`]s the router needs.
//!
//! kube-runtime's watcher reports a (re)list as `Init`, one `InitApply` per
//! object and `InitDone`; objects deleted while the watch was down (the
//! API server restarted, a 410 Gone) are simply not listed. The mirror
//! keeps the keys the API holds per kind and deletes, at `InitDone`, those
//! the list did not name. It also keeps what it sent per object, so a
//! relist or a change to a field the router does not read (a pod's status
//! timestamps, a resourceVersion) sends nothing. What it keeps of a sent
//! object is a 64-bit digest; only EndpointSlices are kept whole, once,
//! so that the slices of a Service that stops belonging to another proxy
//! can be sent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use kube::runtime::watcher::Event;
use log::warn;

use cluster::{ClusterChange, EndpointSlice, Node, ObjectKey, Pod, Service};

use super::{
    meta_key, translate_node, translate_pod, translate_service, translate_slice, Skip,
    SERVICE_PROXY_NAME,
};

/// What the watch sends the router. (`Synced` comes once; every other
/// update is a change, so boxing the change would only add allocations.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// One object added, changed or removed.
    Change(ClusterChange),
    /// Every kind has been listed once: the changes sent so far are the
    /// whole cluster. Sent once.
    Synced,
}

/// An [`Update`] as the watch thread hands it over: when its event
/// arrived, and for an EndpointSlice the change's trigger time
/// (`endpoints.kubernetes.io/last-change-trigger-time`, set by the
/// EndpointSlice controller when the endpoints changed), so the router
/// can tell how long programming took (kube-proxy's
/// `network_programming_duration_seconds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// What changed.
    pub update: Update,
    /// When the watch event arrived in the router.
    pub at: std::time::Instant,
    /// The object's trigger time, when it carries one.
    pub trigger: Option<std::time::SystemTime>,
}

impl Received {
    /// `update`, arriving now, without a trigger time.
    pub fn now(update: Update) -> Self {
        Self {
            update,
            at: std::time::Instant::now(),
            trigger: None,
        }
    }
}

/// The kinds the router watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `v1` Services.
    Service,
    /// `discovery.k8s.io/v1` EndpointSlices.
    EndpointSlice,
    /// `v1` Nodes.
    Node,
    /// `v1` Pods on this node.
    Pod,
}

impl Kind {
    /// Every kind, in the order they are reported.
    pub const ALL: [Kind; 4] = [Kind::Service, Kind::EndpointSlice, Kind::Node, Kind::Pod];

    fn index(self) -> usize {
        self as usize
    }
}

/// Per kind: the keys the API holds (as far as the watch has said), the
/// keys of a list in progress, and whether a list has completed.
#[derive(Debug, Default)]
struct Listing {
    present: BTreeSet<ObjectKey>,
    listing: Option<BTreeSet<ObjectKey>>,
    synced: bool,
}

/// A 64-bit digest of a translated object: what the mirror remembers of
/// what it sent, to tell whether a new version differs. (A full copy per
/// object doubled the router's memory at 10,000 Services; two different
/// objects share a digest with probability 2^-64.)
fn digest<T: Hash>(value: &T) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// What was last sent for each object of one kind: its digest.
#[derive(Debug)]
struct Sent<T> {
    digests: HashMap<ObjectKey, u64>,
    put: fn(T) -> ClusterChange,
    gone: fn(&ObjectKey) -> ClusterChange,
}

impl<T: Hash> Sent<T> {
    fn new(put: fn(T) -> ClusterChange, gone: fn(&ObjectKey) -> ClusterChange) -> Self {
        Self {
            digests: HashMap::new(),
            put,
            gone,
        }
    }

    /// Makes the router's copy of `key` equal to `value` (`None`: absent),
    /// sending a change only when it differs.
    fn set(&mut self, key: &ObjectKey, value: Option<T>, out: &mut Vec<ClusterChange>) {
        match value {
            Some(v) => {
                let d = digest(&v);
                if self.digests.get(key) != Some(&d) {
                    self.digests.insert(key.clone(), d);
                    out.push((self.put)(v));
                }
            }
            None => {
                if self.digests.remove(key).is_some() {
                    out.push((self.gone)(key));
                }
            }
        }
    }
}

/// The router's mirror of the watched API (see the module docs).
#[derive(Debug)]
pub struct Mirror {
    lists: [Listing; 4],
    services: Sent<Service>,
    /// Services labelled for another proxy: their slices are not sent.
    foreign: BTreeSet<ObjectKey>,
    slices: Sent<EndpointSlice>,
    /// Every readable IPv4 slice, sent or held back for a foreign Service.
    all_slices: BTreeMap<ObjectKey, EndpointSlice>,
    nodes: Sent<Node>,
    pods: Sent<Pod>,
    skipped: u64,
    synced_sent: bool,
}

impl Default for Mirror {
    fn default() -> Self {
        Self::new()
    }
}

impl Mirror {
    /// A mirror that has been told nothing yet.
    pub fn new() -> Self {
        Self {
            lists: Default::default(),
            services: Sent::new(ClusterChange::Service, |k| {
                ClusterChange::ServiceDeleted(k.clone())
            }),
            foreign: BTreeSet::new(),
            slices: Sent::new(ClusterChange::EndpointSlice, |k| {
                ClusterChange::EndpointSliceDeleted(k.clone())
            }),
            all_slices: BTreeMap::new(),
            nodes: Sent::new(ClusterChange::Node, |k| {
                ClusterChange::NodeDeleted(k.name.clone())
            }),
            pods: Sent::new(ClusterChange::Pod, |k| ClusterChange::PodDeleted(k.clone())),
            skipped: 0,
            synced_sent: false,
        }
    }

    /// Objects skipped so far because a field could not be read.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The kinds not listed completely yet.
    pub fn unsynced(&self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| !self.lists[k.index()].synced)
            .collect()
    }

    /// A Services watch event.
    pub fn service(&mut self, event: Event<core::Service>, out: &mut Vec<Update>) {
        self.on_event(
            Kind::Service,
            event,
            |s| meta_key(&s.metadata),
            Self::apply_service,
            Self::delete_service,
            out,
        );
    }

    /// An EndpointSlices watch event.
    pub fn slice(&mut self, event: Event<discovery::EndpointSlice>, out: &mut Vec<Update>) {
        self.on_event(
            Kind::EndpointSlice,
            event,
            |s| meta_key(&s.metadata),
            Self::apply_slice,
            Self::delete_slice,
            out,
        );
    }

    /// A Nodes watch event.
    pub fn node(&mut self, event: Event<core::Node>, out: &mut Vec<Update>) {
        self.on_event(
            Kind::Node,
            event,
            |n| ObjectKey::new("", n.metadata.name.clone().unwrap_or_default()),
            |m, key, node, out| {
                let value = m.read(translate_node(node));
                m.nodes.set(key, value, out);
            },
            |m, key, out| m.nodes.set(key, None, out),
            out,
        );
    }

    /// A Pods watch event.
    pub fn pod(&mut self, event: Event<core::Pod>, out: &mut Vec<Update>) {
        self.on_event(
            Kind::Pod,
            event,
            |p| meta_key(&p.metadata),
            |m, key, pod, out| {
                let value = m.read(translate_pod(pod));
                m.pods.set(key, value, out);
            },
            |m, key, out| m.pods.set(key, None, out),
            out,
        );
    }

    /// One event of `kind`: keeps the listing, applies or deletes, and
    /// sends [`Update::Synced`] when the last kind completes its first list.
    fn on_event<K>(
        &mut self,
        kind: Kind,
        event: Event<K>,
        key_of: fn(&K) -> ObjectKey,
        apply: fn(&mut Self, &ObjectKey, &K, &mut Vec<ClusterChange>),
        delete: fn(&mut Self, &ObjectKey, &mut Vec<ClusterChange>),
        out: &mut Vec<Update>,
    ) {
        let mut changes = Vec::new();
        let list = &mut self.lists[kind.index()];
        match event {
            Event::Init => list.listing = Some(BTreeSet::new()),
            Event::InitApply(object) => {
                let key = key_of(&object);
                list.present.insert(key.clone());
                if let Some(listing) = list.listing.as_mut() {
                    listing.insert(key.clone());
                }
                apply(self, &key, &object, &mut changes);
            }
            Event::Apply(object) => {
                let key = key_of(&object);
                list.present.insert(key.clone());
                apply(self, &key, &object, &mut changes);
            }
            Event::Delete(object) => {
                let key = key_of(&object);
                list.present.remove(&key);
                delete(self, &key, &mut changes);
            }
            Event::InitDone => {
                let listed = list.listing.take().unwrap_or_default();
                let gone: Vec<ObjectKey> = list.present.difference(&listed).cloned().collect();
                list.present = listed;
                list.synced = true;
                for key in &gone {
                    delete(self, key, &mut changes);
                }
            }
        }
        out.extend(changes.into_iter().map(Update::Change));
        if !self.synced_sent && self.lists.iter().all(|l| l.synced) {
            self.synced_sent = true;
            out.push(Update::Synced);
        }
    }

    /// A translation's result: an unreadable object is logged, counted and
    /// treated as absent.
    fn read<T>(&mut self, result: Result<Option<T>, Skip>) -> Option<T> {
        result.unwrap_or_else(|skip| {
            self.skipped += 1;
            warn!(
                "skipping {skip} (treated as absent; {} skipped so far)",
                self.skipped
            );
            None
        })
    }

    fn apply_service(
        &mut self,
        key: &ObjectKey,
        svc: &core::Service,
        out: &mut Vec<ClusterChange>,
    ) {
        let foreign = svc
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(SERVICE_PROXY_NAME));
        let value = self.read(translate_service(svc));
        self.services.set(key, value, out);
        self.set_foreign(key, foreign, out);
    }

    fn delete_service(&mut self, key: &ObjectKey, out: &mut Vec<ClusterChange>) {
        self.services.set(key, None, out);
        self.set_foreign(key, false, out);
    }

    /// Records whether Service `key` belongs to another proxy; when that
    /// changes, its slices are sent or withdrawn.
    fn set_foreign(&mut self, key: &ObjectKey, foreign: bool, out: &mut Vec<ClusterChange>) {
        let changed = if foreign {
            self.foreign.insert(key.clone())
        } else {
            self.foreign.remove(key)
        };
        if !changed {
            return;
        }
        let slices: Vec<ObjectKey> = self
            .all_slices
            .values()
            .filter(|s| s.key.namespace == key.namespace && s.service == key.name)
            .map(|s| s.key.clone())
            .collect();
        for slice in &slices {
            self.show_slice(slice, out);
        }
    }

    fn apply_slice(
        &mut self,
        key: &ObjectKey,
        slice: &discovery::EndpointSlice,
        out: &mut Vec<ClusterChange>,
    ) {
        match self.read(translate_slice(slice)) {
            Some(s) => self.all_slices.insert(key.clone(), s),
            None => self.all_slices.remove(key),
        };
        self.show_slice(key, out);
    }

    fn delete_slice(&mut self, key: &ObjectKey, out: &mut Vec<ClusterChange>) {
        self.all_slices.remove(key);
        self.show_slice(key, out);
    }

    /// Sends slice `key` as it is now, unless its Service is foreign.
    fn show_slice(&mut self, key: &ObjectKey, out: &mut Vec<ClusterChange>) {
        let value = self
            .all_slices
            .get(key)
            .filter(|s| !self.foreign.contains(&s.service_key()))
            .cloned();
        self.slices.set(key, value, out);
    }
}
