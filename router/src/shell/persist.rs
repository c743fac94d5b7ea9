//! Flows that outlive the router: the conntrack journal.
//!
//! At start the router replays the journal a previous process left (under
//! the run directory, `/run/ksr/NODE.conntrack` by default) into its data
//! plane before the first packet, then rewrites it as a snapshot of what
//! was restored. While it runs, it appends the changes the core reports
//! (flow created, TCP state or first reply, flow gone) once per loop
//! iteration, with one write. A SIGKILL loses at most the changes of the
//! iteration in progress; SIGTERM loses nothing. The journal is compacted
//! (rewritten as a snapshot) when it holds many more records than flows.
//!
//! A journal from another node, another format or a corrupt one is
//! refused with a log line, and the router starts with an empty table.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use log::{info, warn};

use dataplane::conntrack::{CtChange, SavedEntry};
use dataplane::node::Node;
use dataplane::packet::FlowKey;

use super::journal::{Journal, JournalError};

/// Records the journal may hold per live flow before it is compacted (plus
/// a floor, so a small table is not rewritten at every churn).
const COMPACT_FACTOR: u64 = 4;
const COMPACT_FLOOR: u64 = 65_536;

/// What [`ConntrackJournal::write`] has to write.
pub enum JournalWrite {
    /// Nothing changed.
    Nothing,
    /// The changes collected.
    Append,
    /// The whole table, replacing the journal.
    Compact(Vec<SavedEntry>),
}

/// The conntrack journal of one router.
pub struct ConntrackJournal {
    journal: Journal<CtChange>,
    pending: Vec<CtChange>,
    failing: bool,
}

impl ConntrackJournal {
    /// Opens the journal at `path` for `node`, restores what it holds into
    /// `dp`, rewrites it as a snapshot and turns journaling on.
    pub fn open(
        path: &Path,
        node_name: &str,
        dp: &mut Node,
        now: Instant,
    ) -> Result<Self, JournalError> {
        let identity = format!("ksr conntrack v1 node {node_name}");
        let (mut journal, replay) = Journal::<CtChange>::open(path, &identity)?;
        if let Some(refused) = &replay.refused {
            warn!("{refused}");
        }
        if let Some(why) = &replay.truncated {
            warn!(
                "state file {}: {why}; kept the {} records before it",
                path.display(),
                replay.records.len()
            );
        }
        let saved = fold(replay.records);
        let found = saved.len();
        let (restored, stale) = dp.restore_conntrack(saved, now);
        if found > 0 {
            info!(
                "restored {restored} of {found} flows from {} ({stale} UDP flows to endpoints that are gone dropped)",
                path.display()
            );
        }
        journal.compact(dp.conntrack_snapshot().into_iter().map(CtChange::Saved))?;
        dp.set_conntrack_journaling(true);
        Ok(ConntrackJournal {
            journal,
            pending: Vec::with_capacity(1024),
            failing: false,
        })
    }

    /// Takes from `dp` what changed since the last call (or, when the
    /// journal has grown well past the table, a snapshot to compact it
    /// to), for [`ConntrackJournal::write`]: the node is needed only for
    /// this, the file not at all, so the workers wait for no disk.
    pub fn collect(&mut self, dp: &mut Node) -> JournalWrite {
        let complete = dp.drain_conntrack_changes(&mut self.pending);
        let flows = dp.conntrack().len() as u64;
        if !complete
            || self.journal.len() + self.pending.len() as u64
                > COMPACT_FACTOR * flows + COMPACT_FLOOR
        {
            self.pending.clear();
            JournalWrite::Compact(dp.conntrack_snapshot())
        } else if self.pending.is_empty() {
            JournalWrite::Nothing
        } else {
            JournalWrite::Append
        }
    }

    /// Writes what [`ConntrackJournal::collect`] took.
    pub fn write(&mut self, write: JournalWrite) {
        let result = match write {
            JournalWrite::Nothing => return,
            JournalWrite::Compact(snapshot) => self
                .journal
                .compact(snapshot.into_iter().map(CtChange::Saved)),
            JournalWrite::Append => {
                let r = self.journal.append(&self.pending);
                self.pending.clear();
                r
            }
        };
        match result {
            Ok(()) if self.failing => {
                info!("conntrack journal writable again");
                self.failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                // Logged once per failure episode: forwarding goes on, only
                // the restart safety net is degraded.
                if !self.failing {
                    warn!("{e}; flows may not survive a restart until this clears");
                    self.failing = true;
                }
            }
        }
    }
}

/// Replays journal records into the flows that are live at their end.
fn fold(records: Vec<CtChange>) -> Vec<SavedEntry> {
    let mut live: HashMap<FlowKey, SavedEntry> = HashMap::with_capacity(records.len());
    for r in records {
        match r {
            CtChange::Saved(s) => {
                live.insert(s.original, s);
            }
            CtChange::Removed(k) => {
                live.remove(&k);
            }
        }
    }
    live.into_values().collect()
}
