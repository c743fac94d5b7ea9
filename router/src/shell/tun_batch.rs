//! Writes to the TUN device gathered and coalesced: the TCP segments that
//! arrive from the overlay (one VXLAN datagram each) go back to the kernel
//! as GSO super-packets where they belong to one flow and follow each
//! other, as GRO on a NIC would do. `tun-rs`'s `GROTable` (a port of
//! wireguard-go's) does the coalescing and writes the virtio-net headers;
//! this module keeps the buffers between batches.
//!
//! `GROTable` coalesces a segment into the buffer of the first packet of
//! its flow only if that buffer's *capacity* already holds the result (it
//! never reallocates: wireguard-go's buffers are all 64 KiB). So every
//! buffer is allocated with room for a whole super-packet
//! ([`BUF_CAPACITY`]): with room for one segment only, nothing was ever
//! coalesced and every segment from the overlay cost a TUN write and a
//! run of the receiver's TCP stack (bench/README.md, "Across nodes: what
//! limits it"). The memory is reserved, not touched: a buffer's pages
//! become resident only as far as a coalesced packet fills them, so a
//! worker holds at most [`IDEAL_BATCH_SIZE`] x 64 KiB (8 MiB) resident,
//! and a few 64 KiB per bulk flow in practice (the heads of the flows in
//! a batch).

use std::io;

use tun_rs::{GROTable, IDEAL_BATCH_SIZE};

use super::tun::Tun;
use super::vnet::VNET_HDR_LEN;

/// The capacity `GROTable` asks of a buffer before it appends to it: twice
/// the offset of the packet in it (here the virtio-net header) plus the
/// coalesced packet, which an IPv4 total length bounds to 65,535 bytes.
pub const BUF_CAPACITY: usize = 2 * VNET_HDR_LEN + u16::MAX as usize;

/// Packets for the TUN device, waiting for [`TunBatch::flush`].
#[derive(Default)]
pub struct TunBatch {
    bufs: Vec<Vec<u8>>,
    used: usize,
    table: GROTable,
}

impl TunBatch {
    /// Adds a packet (complete checksums, not a super-packet); returns
    /// whether the batch is full and should be flushed.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        if self.used == self.bufs.len() {
            self.bufs.push(Vec::with_capacity(BUF_CAPACITY));
        }
        let b = &mut self.bufs[self.used];
        b.clear();
        b.resize(VNET_HDR_LEN, 0);
        b.extend_from_slice(packet);
        self.used += 1;
        self.used >= IDEAL_BATCH_SIZE
    }

    /// Coalesces and writes what waits. On error, how many packets were
    /// in the batch (at most that many were lost) and the last error.
    pub fn flush(&mut self, tun: &Tun) -> Result<(), (usize, io::Error)> {
        let n = std::mem::take(&mut self.used);
        if n == 0 {
            return Ok(());
        }
        tun.send_coalesced(&mut self.table, &mut self.bufs[..n], VNET_HDR_LEN)
            .map(drop)
            .map_err(|e| (n, e))
    }
}

#[cfg(test)]
mod tests;
