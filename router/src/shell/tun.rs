//! The TUN device: created with `tun-rs`, which supports virtio-net-hdr
//! offload (TSO/GRO) and multi-queue for later; today one queue, no offload.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use tun_rs::{DeviceBuilder, SyncDevice};

/// TUN transmit queue length; the kernel's default 500 drops bursts when the
/// router falls briefly behind (`../shared/tun-notes.md`, pitfall 10).
const TX_QUEUE_LEN: u32 = 1000;

/// One TUN queue, non-blocking.
pub struct Tun {
    device: SyncDevice,
    name: String,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name` in the current network
    /// namespace, sets its MTU and brings it up.
    pub fn open(name: &str, mtu: u16) -> io::Result<Self> {
        let device = DeviceBuilder::new()
            .name(name)
            .mtu(mtu)
            .tx_queue_len(TX_QUEUE_LEN)
            .enable(true)
            .build_sync()?;
        device.set_nonblocking(true)?;
        Ok(Self {
            device,
            name: name.to_owned(),
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one packet; `WouldBlock` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.device.recv(buf)
    }

    /// Writes one packet back to the kernel.
    pub fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.device.send(packet)
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.device.as_raw_fd()
    }
}
