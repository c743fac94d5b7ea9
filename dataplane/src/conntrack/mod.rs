//! The connection tracking table: every flow the router has seen, with its
//! tuple in both directions, its TCP state and its expiry.
//!
//! An entry holds the *original* tuple (as the first packet travelled) and the
//! *reply* tuple (as replies will travel, after NAT). Both tuples index the
//! same entry, so a lookup in either direction is one hash probe. NAT is not
//! stored separately: a packet matching the original tuple is rewritten to the
//! reversed reply tuple, and a reply is rewritten to the reversed original,
//! exactly as Linux conntrack derives it.
//!
//! Time is always an argument (`now`); nothing here reads a clock. Entries
//! expire lazily (an expired entry found by a lookup is removed on the spot)
//! and by a sweep that [`ConnTrack::handle_timeout`] runs once per
//! [`SWEEP_INTERVAL`], [`SWEEP_BATCH`] slots per call so that a large table
//! never stalls the packet loop (the next batch is due at once).
//!
//! The table is bounded, and a flood of new flows (a spoofed SYN flood to a
//! NodePort) must not take it over: when it is full, the oldest entry that
//! is not *assured* (no reply yet, or a TCP handshake not completed, half-open
//! entries whose backend answered SYN-ACK included) is evicted, the kernel's
//! "early drop"; when every entry is assured, the new flow is refused.
//! Half-open TCP entries are bounded on their own too
//! ([`ConnTrack::max_half_open`], half the capacity by default): past it, a
//! new SYN evicts the oldest unassured entry even when the table has room,
//! so half-open flows never hold more than their share, and their timeouts
//! are short ([`Timeouts`]).

mod entry;
mod index;
mod persist;
mod record;
mod tcp;
mod timeouts;
mod udp_nat;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub use entry::{Direction, Entry, EntryId};
pub use persist::{CtChange, SavedEntry, MAX_PENDING_CHANGES};
pub use record::{FlowCursor, FlowRecord};
pub use tcp::TcpState;
pub use timeouts::Timeouts;

use crate::wire::packet::{FlowKey, Transport};
use index::FlowIndex;
use persist::Changes;
use tcp::tcp_transition;
use timeouts::timeout_for;
use udp_nat::UdpNatIndex;

/// How often the expiry sweep runs.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Slots the sweep looks at per [`ConnTrack::handle_timeout`] call.
pub const SWEEP_BATCH: usize = 8192;

/// Default capacity (kube-proxy's `conntrack.min`, 131072).
pub const DEFAULT_CAPACITY: usize = 131_072;

/// Why an entry could not be inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The table is at capacity and every entry is assured.
    #[error("conntrack table full ({0} entries, all assured)")]
    Full(usize),
    /// One of the tuples is already tracked by another entry.
    #[error("tuple already tracked")]
    Clash,
}

struct Slot {
    entry: Option<Entry>,
    generation: u32,
}

type Hasher = ahash::RandomState;

/// The table. See the module documentation.
pub struct ConnTrack {
    /// Both tuples of every entry.
    index: FlowIndex,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Entries in creation order, candidates for early drop while they are
    /// not assured; `(slot, generation)`, stale items skipped.
    unassured: VecDeque<(u32, u32)>,
    /// Entries created half-open, in creation order; `(slot, generation)`,
    /// stale items (gone, or past the handshake) skipped.
    half_open_queue: VecDeque<(u32, u32)>,
    len: usize,
    /// Live TCP entries in SYN_SENT or SYN_RECV.
    half_open: usize,
    evicted: u64,
    capacity: usize,
    max_half_open: usize,
    timeouts: Timeouts,
    next_sweep: Option<Instant>,
    /// Where the sweep goes on from.
    sweep_cursor: usize,
    /// Changes recorded for the journal, when journaling is on.
    changes: Option<Changes>,
    /// NAT'd UDP entries by frontend and by endpoint address.
    udp_nat: UdpNatIndex,
}

impl ConnTrack {
    /// An empty table of at most `capacity` entries. `seed` keys the hash
    /// function (so flow tuples chosen by a client cannot force collisions).
    pub fn new(capacity: usize, timeouts: Timeouts, seed: u64) -> Self {
        let hasher = Hasher::with_seeds(
            seed,
            seed ^ 0x9e37_79b9_7f4a_7c15,
            !seed,
            seed.rotate_left(17),
        );
        Self {
            udp_nat: UdpNatIndex::new(hasher.clone()),
            // Sized for the capacity up front (4 bytes a tuple), so that a
            // growing table never stalls the packet loop rehashing.
            index: FlowIndex::with_capacity(capacity.min(1 << 20) * 2, hasher),
            slots: Vec::new(),
            free: Vec::new(),
            unassured: VecDeque::new(),
            half_open_queue: VecDeque::new(),
            len: 0,
            half_open: 0,
            evicted: 0,
            capacity: capacity.max(1),
            max_half_open: (capacity / 2).max(1),
            timeouts,
            next_sweep: None,
            sweep_cursor: 0,
            changes: None,
        }
    }

    /// Number of tracked flows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The capacity bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many unassured entries were evicted to make room, ever (the
    /// kernel's `early_drop` counter).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Live TCP entries in their handshake (SYN_SENT, SYN_RECV).
    pub fn half_open(&self) -> usize {
        self.half_open
    }

    /// The most half-open entries kept before a new SYN evicts the oldest
    /// unassured entry.
    pub fn max_half_open(&self) -> usize {
        self.max_half_open
    }

    /// Sets [`ConnTrack::max_half_open`] (at least 1, at most the capacity).
    pub fn set_max_half_open(&mut self, max: usize) {
        self.max_half_open = max.clamp(1, self.capacity);
    }

    /// The timeouts in use.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Finds the live entry `key` belongs to and the packet's direction.
    /// An expired entry is removed and reported as absent.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, now: Instant) -> Option<(EntryId, Direction)> {
        let (id, dir) = self.index.get(&self.slots, key)?;
        let expired = self.get(id).is_none_or(|e| e.expires <= now);
        if expired {
            self.remove(id);
            return None;
        }
        Some((id, dir))
    }

    /// Whether `key` is tracked (by any entry, expired or not).
    pub fn contains(&self, key: &FlowKey) -> bool {
        self.index.contains(&self.slots, key)
    }

    /// The entry behind `id`.
    pub fn get(&self, id: EntryId) -> Option<&Entry> {
        self.slots.get(id.0 as usize).and_then(|s| s.entry.as_ref())
    }

    /// Records a packet of `len` bytes of a tracked flow: advances the TCP
    /// state machine and refreshes the expiry.
    #[inline]
    pub fn update(
        &mut self,
        id: EntryId,
        dir: Direction,
        transport: &Transport,
        len: usize,
        now: Instant,
    ) {
        let timeouts = self.timeouts;
        let Some(entry) = self
            .slots
            .get_mut(id.0 as usize)
            .and_then(|s| s.entry.as_mut())
        else {
            return;
        };
        let d = dir as usize;
        entry.packets[d] += 1;
        entry.bytes[d] += len as u64;
        let before = (entry.tcp, entry.replied);
        let mut reopened = false;
        if dir == Direction::Reply {
            entry.replied = true;
        }
        if let (Some(state), Transport::Tcp { flags, .. }) = (entry.tcp, transport) {
            let was_half_open = entry.is_half_open();
            let (next, fin_from) = tcp_transition(state, dir, *flags, entry.fin_from);
            entry.tcp = Some(next);
            entry.fin_from = fin_from;
            match (was_half_open, entry.is_half_open()) {
                (true, false) => self.half_open -= 1,
                (false, true) => reopened = true,
                _ => {}
            }
        }
        entry.expires = now + timeout_for(entry, &timeouts);
        if (entry.tcp, entry.replied) != before {
            if let Some(c) = self.changes.as_mut() {
                c.push(CtChange::Saved(SavedEntry::of(entry)));
            }
        }
        if reopened {
            // A SYN reopened a closed flow: it is half-open (unassured)
            // again, and a candidate for early drop again; as for a new
            // SYN, the oldest other half-open flow goes past the share.
            if self.half_open >= self.max_half_open {
                self.evict_one_half_open(Some(id));
            }
            self.half_open += 1;
            let generation = self.slots[id.0 as usize].generation;
            self.unassured.push_back((id.0, generation));
            self.half_open_queue.push_back((id.0, generation));
        }
    }

    /// Tracks a new flow with the given tuples. The first packet is *not*
    /// counted; call [`ConnTrack::update`] for it.
    pub fn insert(
        &mut self,
        original: FlowKey,
        reply: FlowKey,
        transport: &Transport,
        now: Instant,
    ) -> Result<EntryId, InsertError> {
        let tcp = match transport {
            Transport::Tcp { flags, .. } if flags.syn && !flags.ack => Some(TcpState::SynSent),
            // Loose pick-up of a connection already under way (as the kernel's
            // nf_conntrack_tcp_loose): a restarted router keeps serving it.
            Transport::Tcp { .. } => Some(TcpState::Established),
            _ => None,
        };
        let id = self.insert_raw(original, reply, tcp, now)?;
        if let (Some(c), Some(e)) = (
            self.changes.as_mut(),
            self.slots[id.0 as usize].entry.as_ref(),
        ) {
            c.push(CtChange::Saved(SavedEntry::of(e)));
        }
        Ok(id)
    }

    /// Inserts an entry in TCP state `tcp` (the first packet's, or a
    /// restored one's), evicting an unassured entry if there is no room.
    fn insert_raw(
        &mut self,
        original: FlowKey,
        reply: FlowKey,
        tcp: Option<TcpState>,
        now: Instant,
    ) -> Result<EntryId, InsertError> {
        if self.contains(&original) || self.contains(&reply) {
            return Err(InsertError::Clash);
        }
        let half_open = matches!(tcp, Some(TcpState::SynSent | TcpState::SynRecv));
        // Past the half-open share: the oldest half-open entries (SYNs of
        // a flood, typically) make room before the table is full, so
        // assured flows and other new flows keep theirs. (A SYN reopening
        // a closed flow may have taken the count past the share.)
        while half_open && self.half_open >= self.max_half_open && self.evict_one_half_open(None) {}
        if self.len >= self.capacity && !self.evict_one_unassured() {
            return Err(InsertError::Full(self.len));
        }
        let mut entry = Entry {
            original,
            reply,
            tcp,
            replied: false,
            fin_from: None,
            expires: now,
            packets: [0; 2],
            bytes: [0; 2],
        };
        entry.expires = now + timeout_for(&entry, &self.timeouts);
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.slots.len() == self.slots.capacity() {
                    // Grown by a quarter, not doubled: a slot (88 bytes)
                    // is most of what a flow costs, and doubling leaves
                    // up to half the slots reserved for flows to come.
                    let more = (self.slots.len() / 4).max(1024);
                    self.slots.reserve_exact(more);
                }
                self.slots.push(Slot {
                    entry: None,
                    generation: 0,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.udp_nat.insert(&entry, slot);
        let s = &mut self.slots[slot as usize];
        s.generation = s.generation.wrapping_add(1);
        s.entry = Some(entry);
        let generation = s.generation;
        let id = EntryId(slot);
        // A flow that is its own reply (the same address and port at both
        // ends) is indexed once, as its reply tuple.
        if original != reply {
            self.index
                .insert(&self.slots, &original, slot, Direction::Original);
        }
        self.index
            .insert(&self.slots, &reply, slot, Direction::Reply);
        self.unassured.push_back((slot, generation));
        if half_open {
            self.half_open_queue.push_back((slot, generation));
        }
        self.len += 1;
        self.half_open += usize::from(half_open);
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + SWEEP_INTERVAL);
        }
        Ok(id)
    }

    /// Removes an entry.
    pub fn remove(&mut self, id: EntryId) -> Option<Entry> {
        let slot = self.slots.get_mut(id.0 as usize)?;
        let entry = slot.entry.take()?;
        self.udp_nat.remove(&entry, id.0);
        self.index
            .remove(&entry.original, id.0, Direction::Original);
        self.index.remove(&entry.reply, id.0, Direction::Reply);
        self.free.push(id.0);
        self.len -= 1;
        self.half_open -= usize::from(entry.is_half_open());
        if let Some(c) = self.changes.as_mut() {
            c.push(CtChange::Removed(entry.original));
        }
        Some(entry)
    }

    /// The entry behind `id`, to change (restore only).
    fn entry_mut(&mut self, id: EntryId) -> Option<&mut Entry> {
        self.slots
            .get_mut(id.0 as usize)
            .and_then(|s| s.entry.as_mut())
    }

    /// Sets `id`'s expiry from its current state, and keeps the
    /// half-open count right after a restore changed that state.
    fn refresh(&mut self, id: EntryId, now: Instant) {
        let timeouts = self.timeouts;
        if let Some(e) = self.entry_mut(id) {
            e.expires = now + timeout_for(e, &timeouts);
        }
    }

    /// Evicts the oldest half-open entry but `keep`; false if there is none.
    fn evict_one_half_open(&mut self, keep: Option<EntryId>) -> bool {
        while let Some((slot, generation)) = self.half_open_queue.pop_front() {
            let live = keep != Some(EntryId(slot))
                && self.slots.get(slot as usize).is_some_and(|s| {
                    s.generation == generation && s.entry.as_ref().is_some_and(Entry::is_half_open)
                });
            if live {
                self.remove(EntryId(slot));
                self.evicted += 1;
                return true;
            }
        }
        false
    }

    /// Evicts the oldest entry that is not assured; false if there is none.
    fn evict_one_unassured(&mut self) -> bool {
        while let Some((slot, generation)) = self.unassured.pop_front() {
            let live = self.slots.get(slot as usize).is_some_and(|s| {
                s.generation == generation && s.entry.as_ref().is_some_and(|e| !e.is_assured())
            });
            if live {
                self.remove(EntryId(slot));
                self.evicted += 1;
                return true;
            }
        }
        false
    }

    /// Removes every entry for which `pred` is true; returns how many.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&Entry) -> bool) -> usize {
        let ids: Vec<EntryId> = self
            .iter()
            .filter(|(_, e)| pred(e))
            .map(|(id, _)| id)
            .collect();
        ids.iter().filter(|id| self.remove(**id).is_some()).count()
    }

    /// The NAT'd UDP entries whose client sent to `ip` (a Service
    /// frontend's address), found through an index, not a scan.
    pub fn udp_nat_to_frontend(&self, ip: Ipv4Addr) -> impl Iterator<Item = EntryId> + '_ {
        self.udp_nat.to_frontend(ip).map(EntryId)
    }

    /// The NAT'd UDP entries translated to `ip` (an endpoint's address),
    /// found through an index, not a scan.
    pub fn udp_nat_to_backend(&self, ip: Ipv4Addr) -> impl Iterator<Item = EntryId> + '_ {
        self.udp_nat.to_backend(ip).map(EntryId)
    }

    /// Live entries with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (EntryId, &Entry)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.entry.as_ref().map(|e| (EntryId(i as u32), e)))
    }

    /// Up to `max` live entries as [`FlowRecord`]s, from `from` on in
    /// table order, and where the next chunk starts (`None` at the end).
    /// A caller listing a large table asks chunk by chunk between packets,
    /// so the listing never stalls the packet loop. Entries added or
    /// removed between chunks may or may not be listed, as with
    /// `conntrack -L` on a live table.
    pub fn records(
        &self,
        now: Instant,
        from: FlowCursor,
        max: usize,
    ) -> (Vec<FlowRecord>, Option<FlowCursor>) {
        let mut out = Vec::with_capacity(max.min(self.len));
        let mut at = from.0;
        while at < self.slots.len() && out.len() < max {
            if let Some(e) = &self.slots[at].entry {
                out.push(e.record(now));
            }
            at += 1;
        }
        // Not scanning ahead for a next live entry keeps a chunk's cost at
        // `max` entries; the last chunk may then be empty.
        (out, (at < self.slots.len()).then_some(FlowCursor(at)))
    }

    /// Runs the next batch of the expiry sweep if it is due; returns how
    /// many entries expired. A pass over the whole table takes
    /// `slots / SWEEP_BATCH` calls, each due at once after the previous one;
    /// the next pass starts [`SWEEP_INTERVAL`] after a pass ends.
    pub fn handle_timeout(&mut self, now: Instant) -> usize {
        match self.next_sweep {
            Some(t) if t <= now => {}
            _ => return 0,
        }
        let start = self.sweep_cursor.min(self.slots.len());
        let end = (start + SWEEP_BATCH).min(self.slots.len());
        let mut expired = 0;
        for i in start..end {
            if self.slots[i]
                .entry
                .as_ref()
                .is_some_and(|e| e.expires <= now)
                && self.remove(EntryId(i as u32)).is_some()
            {
                expired += 1;
            }
        }
        if end < self.slots.len() {
            self.sweep_cursor = end;
            self.next_sweep = Some(now);
            return expired;
        }
        // A pass is complete: drop the stale eviction candidates too.
        self.sweep_cursor = 0;
        let slots = &self.slots;
        self.unassured.retain(|(slot, generation)| {
            slots.get(*slot as usize).is_some_and(|s| {
                s.generation == *generation && s.entry.as_ref().is_some_and(|e| !e.is_assured())
            })
        });
        self.half_open_queue.retain(|(slot, generation)| {
            slots.get(*slot as usize).is_some_and(|s| {
                s.generation == *generation && s.entry.as_ref().is_some_and(Entry::is_half_open)
            })
        });
        self.next_sweep = (self.len > 0).then(|| now + SWEEP_INTERVAL);
        expired
    }

    /// When [`ConnTrack::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }
}

#[cfg(test)]
mod tests;
