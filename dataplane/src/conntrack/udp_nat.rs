//! An index of the NAT'd UDP entries by address, so that a Service change
//! finds the UDP flows it may have made stale (see
//! [`crate::engine::Dataplane::apply_change`]) without scanning the table:
//! by the address the client sent to (a Service frontend) and by the
//! address the flow was translated to (its endpoint).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use super::{Direction, Entry, Hasher};
use crate::wire::packet::PROTO_UDP;

/// Slots of the entries towards each address.
type BySlot = HashMap<Ipv4Addr, HashSet<u32, Hasher>, Hasher>;

/// See the module documentation.
pub(super) struct UdpNatIndex {
    hasher: Hasher,
    /// By the original destination (the frontend the client addressed).
    to_frontend: BySlot,
    /// By the translated destination (the endpoint).
    to_backend: BySlot,
}

/// Whether `e` is indexed: a UDP flow the router rewrites.
fn indexed(e: &Entry) -> bool {
    e.original.proto == PROTO_UDP && e.is_nat()
}

fn add(map: &mut BySlot, hasher: &Hasher, ip: Ipv4Addr, slot: u32) {
    map.entry(ip)
        .or_insert_with(|| HashSet::with_hasher(hasher.clone()))
        .insert(slot);
}

fn remove(map: &mut BySlot, ip: Ipv4Addr, slot: u32) {
    if let Some(slots) = map.get_mut(&ip) {
        slots.remove(&slot);
        if slots.is_empty() {
            map.remove(&ip);
        }
    }
}

impl UdpNatIndex {
    pub(super) fn new(hasher: Hasher) -> Self {
        Self {
            to_frontend: HashMap::with_hasher(hasher.clone()),
            to_backend: HashMap::with_hasher(hasher.clone()),
            hasher,
        }
    }

    /// Indexes entry `e` in `slot`, if it is a NAT'd UDP flow.
    pub(super) fn insert(&mut self, e: &Entry, slot: u32) {
        if indexed(e) {
            add(&mut self.to_frontend, &self.hasher, e.original.dst, slot);
            let backend = e.translated(Direction::Original).dst;
            add(&mut self.to_backend, &self.hasher, backend, slot);
        }
    }

    /// Forgets entry `e` of `slot`.
    pub(super) fn remove(&mut self, e: &Entry, slot: u32) {
        if indexed(e) {
            remove(&mut self.to_frontend, e.original.dst, slot);
            remove(
                &mut self.to_backend,
                e.translated(Direction::Original).dst,
                slot,
            );
        }
    }

    /// Slots of the entries sent to `ip`.
    pub(super) fn to_frontend(&self, ip: Ipv4Addr) -> impl Iterator<Item = u32> + '_ {
        self.to_frontend.get(&ip).into_iter().flatten().copied()
    }

    /// Slots of the entries translated to `ip`.
    pub(super) fn to_backend(&self, ip: Ipv4Addr) -> impl Iterator<Item = u32> + '_ {
        self.to_backend.get(&ip).into_iter().flatten().copied()
    }
}
