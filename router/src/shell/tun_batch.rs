//! Writes to the TUN device gathered and coalesced: the TCP segments that
//! arrive from the overlay (one VXLAN datagram each) go back to the kernel
//! as GSO super-packets where they belong to one flow and follow each
//! other, as GRO on a NIC would do. The core's [`Coalescer`] decides and
//! builds them (sans-IO); this module writes them behind their
//! virtio-net headers.
//!
//! (tun-rs's `GROTable` did this before: it copied every packet into a new
//! `Vec` and freed it, 6% of the receiving router's time, and coalesced
//! nothing unless every buffer already had room for a super-packet;
//! bench/README.md, "Across nodes".)

use std::io;

use dataplane::wire::gro::Coalescer;

use super::tun::Tun;
use super::vnet;

/// Packets gathered before a batch is written even if the drain goes on.
pub const BATCH_PACKETS: usize = 128;

/// Packets for the TUN device, waiting for [`TunBatch::flush`].
#[derive(Default)]
pub struct TunBatch {
    coalescer: Coalescer,
    /// Packets pushed since the last flush.
    pushed: usize,
    /// The coalescer's merge count already reported.
    reported: u64,
}

impl TunBatch {
    /// Adds a packet (complete checksums, not a super-packet); returns
    /// whether the batch is full and should be flushed.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        self.coalescer.push(packet);
        self.pushed += 1;
        self.pushed >= BATCH_PACKETS
    }

    /// Writes what waits, coalesced. On error, how many packets were in
    /// the batch (at most that many were lost) and the last error.
    pub fn flush(&mut self, tun: &Tun) -> Result<(), (usize, io::Error)> {
        let n = std::mem::take(&mut self.pushed);
        let mut last_error = None;
        self.coalescer.drain(|packet, sp| {
            let hdr = sp.map_or(vnet::PLAIN, vnet::super_packet);
            if let Err(e) = tun.send(&hdr, packet) {
                last_error = Some(e);
            }
        });
        match last_error {
            None => Ok(()),
            Some(e) => Err((n, e)),
        }
    }
    /// Segments merged into an earlier one since the last call (for the
    /// shared counter).
    pub fn take_merged(&mut self) -> u64 {
        let merged = self.coalescer.merged();
        let new = merged.saturating_sub(self.reported);
        self.reported = merged;
        new
    }
}

#[cfg(test)]
mod tests;
