//! What the table reports so that its flows can outlive the process.
//!
//! A restarted kube-proxy keeps the kernel's conntrack; a restarted router
//! keeps its flows by replaying what the table reported. With journaling
//! on, the table records a [`CtChange`] whenever a flow is created, changes
//! TCP state or is first answered, and when it goes; the shell appends them
//! to a file (see the router's `shell::journal`) and a new process
//! [`ConnTrack::restore`]s the survivors before its first packet. Counters
//! and the exact expiry are not saved: a restored entry lives for its
//! state's full timeout from the restore.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{ConnTrack, Direction, Entry, TcpState};
use crate::wire::packet::FlowKey;

/// The most changes held between two drains before the table stops
/// recording and reports an overflow (the shell then saves a whole
/// snapshot instead): bounds memory if nobody drains.
pub const MAX_PENDING_CHANGES: usize = 1 << 20;

/// The part of an entry that must survive a restart: its tuples (and so
/// its NAT and masquerade port) and where its TCP state machine stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedEntry {
    /// The original tuple.
    pub original: FlowKey,
    /// The reply tuple.
    pub reply: FlowKey,
    /// TCP state (`None` for UDP and ICMP).
    pub tcp: Option<TcpState>,
    /// Whether a reply was seen.
    pub replied: bool,
    /// Which side sent the first FIN.
    pub fin_from: Option<Direction>,
}

/// One change of the table, for the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtChange {
    /// A flow was created or changed: this is its state now.
    Saved(SavedEntry),
    /// The flow with this original tuple is gone.
    Removed(FlowKey),
}

impl SavedEntry {
    pub(super) fn of(e: &Entry) -> Self {
        SavedEntry {
            original: e.original,
            reply: e.reply,
            tcp: e.tcp,
            replied: e.replied,
            fin_from: e.fin_from,
        }
    }
}

/// Where recorded changes wait for the shell.
#[derive(Debug, Default)]
pub(super) struct Changes {
    pub(super) pending: Vec<CtChange>,
    pub(super) overflowed: bool,
}

impl Changes {
    pub(super) fn push(&mut self, change: CtChange) {
        if self.pending.len() < MAX_PENDING_CHANGES {
            self.pending.push(change);
        } else {
            self.overflowed = true;
        }
    }
}

impl ConnTrack {
    /// Starts (or stops) recording changes for [`ConnTrack::drain_changes`].
    pub fn set_journaling(&mut self, on: bool) {
        self.changes = on.then(Changes::default);
    }

    /// Moves the changes recorded since the last call into `out`. Returns
    /// false if some were lost (more than [`MAX_PENDING_CHANGES`] waited):
    /// the caller must then save a whole snapshot
    /// ([`ConnTrack::saved_entries`]).
    pub fn drain_changes(&mut self, out: &mut Vec<CtChange>) -> bool {
        let Some(c) = self.changes.as_mut() else {
            return true;
        };
        out.append(&mut c.pending);
        !std::mem::take(&mut c.overflowed)
    }

    /// Every live entry, for a snapshot.
    pub fn saved_entries(&self) -> impl Iterator<Item = SavedEntry> + '_ {
        self.iter().map(|(_, e)| SavedEntry::of(e))
    }

    /// Puts saved entries back (after a restart), each with its state's
    /// full timeout from `now`. An entry whose tuples clash with one
    /// already tracked, or that does not fit, is skipped. Returns how many
    /// were restored.
    pub fn restore(&mut self, saved: impl IntoIterator<Item = SavedEntry>, now: Instant) -> usize {
        let mut restored = 0;
        for s in saved {
            let Ok(id) = self.insert_raw(s.original, s.reply, s.tcp, now) else {
                continue;
            };
            if let Some(e) = self.entry_mut(id) {
                e.replied = s.replied;
                e.fin_from = s.fin_from;
            }
            self.refresh(id, now);
            restored += 1;
        }
        restored
    }
}
