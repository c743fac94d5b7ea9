//! How the data plane takes cluster changes: a whole new state
//! ([`Dataplane::apply`]) or one object's change
//! ([`Dataplane::apply_change`], a watch event), which recomputes only the
//! Services, routes and conntrack entries that depend on the object.
//!
//! Either way tracked flows keep their endpoints, except UDP flows whose
//! endpoint is gone: those are forgotten at once, so the client's next
//! datagram picks a live endpoint (the stale UDP conntrack problem
//! Kubernetes fixed in kube-proxy many times). A whole apply checks every
//! tracked flow; a change checks only the flows its Service's frontends
//! and lost endpoints index (see [`ConnTrack::udp_nat_to_frontend`]).

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use log::debug;

use super::{Dataplane, UnknownNode};
use crate::conntrack::{ConnTrack, Direction, Entry, EntryId, SavedEntry};
use crate::model::Model;
use crate::route::Topology;
use crate::service::{FrontendDiff, ServiceLookup, ServiceTable};
use crate::wire::packet::PROTO_UDP;
use cluster::{Cluster, ClusterChange};

/// Whether `e` is a UDP flow to a Service whose endpoint it no longer has
/// (or whose frontend is gone from a Service address).
fn is_stale(services: &ServiceTable, e: &Entry) -> bool {
    if e.original.proto != PROTO_UDP || !e.is_nat() {
        return false;
    }
    let endpoint = e.translated(Direction::Original);
    match services.lookup(&e.original) {
        ServiceLookup::Port(sp) => !sp
            .endpoints
            .iter()
            .any(|ep| *ep.ip() == endpoint.dst && ep.port() == endpoint.dport),
        ServiceLookup::NotServiceIp => false,
        _ => true,
    }
}

/// Removes the stale UDP flows among `candidates`; returns how many.
fn remove_stale(
    conntrack: &mut ConnTrack,
    services: &ServiceTable,
    candidates: impl IntoIterator<Item = EntryId>,
) -> usize {
    let stale: Vec<EntryId> = candidates
        .into_iter()
        .filter(|id| conntrack.get(*id).is_some_and(|e| is_stale(services, e)))
        .collect();
    stale
        .into_iter()
        .filter(|id| conntrack.remove(*id).is_some())
        .count()
}

impl Dataplane {
    /// Applies a new cluster state. Tracked flows keep their endpoints,
    /// except UDP flows whose endpoint is gone (see the module
    /// documentation).
    pub fn apply(&mut self, cluster: &Cluster) -> Result<(), UnknownNode> {
        let model = Model::from_cluster(cluster);
        let topology = Topology::from_model(&model, &self.topology.node)
            .ok_or_else(|| UnknownNode(self.topology.node.clone()))?;
        // Tables of endpoint sets that did not change are kept: a change
        // in a large cluster rebuilds only what it touched.
        self.services = self.services.rebuild_from(&model, Some(&topology));
        self.topology = topology;
        *self.model_mut() = model;
        let removed = self.drop_stale_udp();
        if removed > 0 {
            debug!("removed {removed} UDP conntrack entries to endpoints that are gone");
        }
        Ok(())
    }

    /// Applies one object's change: the Services it touches get their
    /// frontends and endpoints recomputed (Maglev tables only for endpoint
    /// sets that changed), a node's change updates the routes and the
    /// NodePorts, a pod's this node's pods; UDP flows to endpoints a
    /// frontend lost are forgotten. The cost depends on what the object
    /// touches, not on the number of Services.
    ///
    /// Removing this node itself is refused (as [`Dataplane::apply`]
    /// refuses a cluster without it), and nothing changes.
    pub fn apply_change(&mut self, change: &ClusterChange) -> Result<(), UnknownNode> {
        if matches!(change, ClusterChange::NodeDeleted(n) if *n == self.topology.node) {
            return Err(UnknownNode(self.topology.node.clone()));
        }
        let model = Arc::clone(&self.model);
        let mut model = model.write().unwrap_or_else(PoisonError::into_inner);
        let mut touched = model.apply_change(change);
        if touched.nodes {
            let frontends = |t: &Topology| {
                let peers = t.peers.iter().map(|p| (p.name.clone(), p.underlay_ip));
                (t.underlay_ip, peers.collect::<Vec<_>>())
            };
            let before = frontends(&self.topology);
            if !self.topology.set_nodes(model.nodes()) {
                // Not reachable: this node's removal was refused above.
                return Err(UnknownNode(self.topology.node.clone()));
            }
            if frontends(&self.topology) != before {
                touched
                    .services
                    .extend(self.services.node_port_services().cloned());
            }
        }
        if let Some((old, new)) = &touched.pod {
            self.topology
                .update_pod(old.as_ref(), new.as_ref(), model.pods());
        }
        if touched.all_services {
            touched
                .services
                .extend(model.services().map(|(k, _)| k.clone()));
        }
        let mut diff = FrontendDiff::default();
        for key in &touched.services {
            diff.extend(
                self.services
                    .update_service(&model, key, Some(&self.topology)),
            );
        }
        drop(model);
        let candidates: Vec<EntryId> = {
            let ct = &self.conntrack;
            let mut ids: Vec<EntryId> = diff
                .frontend_ips
                .iter()
                .flat_map(|ip| ct.udp_nat_to_frontend(*ip))
                .chain(
                    diff.backend_ips
                        .iter()
                        .flat_map(|ip| ct.udp_nat_to_backend(*ip)),
                )
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        let removed = remove_stale(&mut self.conntrack, &self.services, candidates);
        if removed > 0 {
            debug!("removed {removed} UDP conntrack entries to endpoints that are gone");
        }
        Ok(())
    }

    /// Removes every UDP flow whose endpoint is no longer one of its
    /// Service's (a whole-table check, for whole states).
    fn drop_stale_udp(&mut self) -> usize {
        let all: Vec<EntryId> = self.conntrack.iter().map(|(id, _)| id).collect();
        remove_stale(&mut self.conntrack, &self.services, all)
    }

    /// Puts flows saved by a previous process back, then drops the UDP ones
    /// whose endpoint went away meanwhile (as an apply would). Returns how
    /// many were restored and how many of those were dropped.
    pub fn restore_conntrack(
        &mut self,
        saved: impl IntoIterator<Item = SavedEntry>,
        now: Instant,
    ) -> (usize, usize) {
        let restored = self.conntrack.restore(saved, now);
        (restored, self.drop_stale_udp())
    }

    /// The cluster objects this node serves (read-locked while held).
    pub fn model(&self) -> RwLockReadGuard<'_, Model> {
        self.model.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The model, shared (the node's DNS answers from it).
    pub(crate) fn shared_model(&self) -> Arc<RwLock<Model>> {
        Arc::clone(&self.model)
    }

    fn model_mut(&self) -> RwLockWriteGuard<'_, Model> {
        self.model.write().unwrap_or_else(PoisonError::into_inner)
    }
}
