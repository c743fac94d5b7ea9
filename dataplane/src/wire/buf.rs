//! `PacketBuf`: one packet in a fixed buffer with headroom, so the overlay
//! header can be put in front of a packet, or taken off, without copying it.
//!
//! The shell allocates one at startup and reuses it for every packet: it
//! reads into [`PacketBuf::recv_area`], calls [`PacketBuf::set_len`], hands
//! the buffer to the data plane, then sends [`PacketBuf::data`].
//!
//! The buffer also carries the packet's [`Offload`] state, so "the
//! checksum is partial" and "this is a super-packet" travel with the bytes
//! without the core reading a virtio-net header.
//!
//! A packet that already lives in a `Vec` (what a router-hosted pod's
//! smoltcp device hands out) is wrapped without a copy by
//! [`PacketBuf::from_vec`] and taken back by [`PacketBuf::into_vec`]; such
//! a buffer has no headroom, so encapsulating it moves the packet once
//! ([`PacketBuf::reserve_front`]).

use crate::overlay::OVERLAY_HEADER_LEN;
use crate::wire::offload::Offload;
use crate::wire::packet::MAX_PACKET_LEN;

/// Room kept in front of a received packet.
pub const HEADROOM: usize = OVERLAY_HEADER_LEN;

/// Size of a buffer made by [`PacketBuf::new`].
const FULL: usize = HEADROOM + MAX_PACKET_LEN + HEADROOM;

/// A packet with headroom. See the module documentation.
pub struct PacketBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
    offload: Offload,
}

impl Default for PacketBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketBuf {
    /// A buffer for packets (or overlay datagrams) of up to 64 KiB.
    pub fn new() -> Self {
        Self {
            storage: vec![0u8; FULL],
            start: HEADROOM,
            end: HEADROOM,
            offload: Offload::default(),
        }
    }

    /// A buffer holding a copy of `packet` (for tests and generated packets).
    pub fn from_slice(packet: &[u8]) -> Self {
        let mut b = Self::new();
        let n = packet.len().min(b.recv_area().len());
        b.recv_area()[..n].copy_from_slice(&packet[..n]);
        b.set_len(n);
        b
    }

    /// A buffer holding `packet` itself, without headroom and without a
    /// copy.
    pub fn from_vec(packet: Vec<u8>) -> Self {
        let end = packet.len();
        Self {
            storage: packet,
            start: 0,
            end,
            offload: Offload::default(),
        }
    }

    /// The packet as a `Vec`: without a copy when the packet starts at the
    /// front of the storage (a buffer from [`PacketBuf::from_vec`] that was
    /// not encapsulated); otherwise the storage is shifted once. Meant for
    /// buffers from [`PacketBuf::from_vec`], not for the shell's 64 KiB one.
    pub fn into_vec(mut self) -> Vec<u8> {
        self.storage.truncate(self.end);
        self.storage.drain(..self.start);
        self.storage
    }

    /// Makes sure `n` bytes of headroom are in front of the packet, moving
    /// it back if need be (only buffers from [`PacketBuf::from_vec`] lack
    /// headroom).
    pub fn reserve_front(&mut self, n: usize) {
        if self.start < n {
            let grow = n - self.start;
            self.storage.splice(0..0, std::iter::repeat_n(0, grow));
            self.start += grow;
            self.end += grow;
        }
    }

    /// Resets the buffer and returns where to read the next packet into.
    pub fn recv_area(&mut self) -> &mut [u8] {
        if self.storage.len() < FULL {
            self.storage.resize(FULL, 0);
        }
        self.start = HEADROOM;
        self.end = HEADROOM;
        self.offload = Offload::default();
        &mut self.storage[HEADROOM..]
    }

    /// Records that `len` bytes were read into the receive area.
    pub fn set_len(&mut self, len: usize) {
        self.end = (self.start + len).min(self.storage.len());
    }

    /// What is left to do to the packet before it is on the wire (TUN
    /// offload: a partial checksum, a super-packet); nothing unless the
    /// reader said so with [`PacketBuf::set_offload`]. Reset by
    /// [`PacketBuf::recv_area`].
    pub fn offload(&self) -> Offload {
        self.offload
    }

    /// Records the packet's offload state (the shell, from the TUN
    /// device's virtio-net header; the core, once it finished the work).
    pub fn set_offload(&mut self, offload: Offload) {
        self.offload = offload;
    }

    /// The packet.
    pub fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    /// The packet, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }

    /// Grows the packet at the front by `N` bytes and returns them, or
    /// `None` if the headroom is used up.
    pub fn push_front<const N: usize>(&mut self) -> Option<&mut [u8; N]> {
        let start = self.start.checked_sub(N)?;
        self.start = start;
        (&mut self.storage[start..start + N]).try_into().ok()
    }

    /// Drops `n` bytes from the front (or everything, if shorter).
    pub fn pull_front(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Cuts the packet to `len` bytes (trailing padding).
    pub fn truncate(&mut self, len: usize) {
        self.end = self.end.min(self.start + len);
    }

    /// The packet's length.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the packet is empty.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

#[cfg(test)]
mod tests;
