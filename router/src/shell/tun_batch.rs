//! Writes to the TUN device gathered and coalesced: the TCP segments that
//! arrive from the overlay (one VXLAN datagram each) go back to the kernel
//! as GSO super-packets where they belong to one flow and follow each
//! other, as GRO on a NIC would do. `tun-rs`'s `GROTable` (a port of
//! wireguard-go's) does the coalescing and writes the virtio-net headers;
//! this module keeps the buffers between batches.

use std::io;

use tun_rs::{GROTable, IDEAL_BATCH_SIZE};

use super::tun::Tun;
use super::vnet::VNET_HDR_LEN;

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
            self.bufs.push(Vec::with_capacity(VNET_HDR_LEN + 2048));
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
