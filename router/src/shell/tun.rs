//! The TUN device, created with `tun-rs`: one queue per worker
//! (`IFF_MULTI_QUEUE` when there are several; the kernel spreads the
//! packets it routes into the device over the queues by flow), each
//! non-blocking, with offload (`IFF_VNET_HDR` + `TUNSETOFFLOAD`) when asked and the kernel
//! agrees. With offload every packet read or written is preceded by a
//! virtio-net header ([`super::vnet`]); reads and writes are vectored so
//! the header and the packet live in separate buffers and the packet lands
//! where the data plane wants it.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, RawFd};

use log::warn;
use tun_rs::{DeviceBuilder, SyncDevice};

use super::vnet::VNET_HDR_LEN;

/// TUN transmit queue length; the kernel's default 500 drops bursts when the
/// router falls briefly behind (`../shared/tun-notes.md`, pitfall 10).
const TX_QUEUE_LEN: u32 = 1000;

/// One TUN queue, non-blocking.
pub struct Tun {
    device: SyncDevice,
    name: String,
    offload: bool,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name` in the current network
    /// namespace with `queues` queues (at least one), sets its MTU and
    /// brings it up. With `offload`, asks for the virtio-net header and
    /// TSO/USO; if the kernel refuses, logs it and opens the device without
    /// ([`Tun::offload`] says which it got).
    pub fn open(name: &str, mtu: u16, offload: bool, queues: usize) -> io::Result<Vec<Self>> {
        if offload {
            match Self::build(name, mtu, true, queues) {
                Ok(tun) => return Ok(tun),
                Err(e) => warn!(
                    "TUN offload refused on {name} ({e}); running without it (one read and one write per packet)"
                ),
            }
        }
        Self::build(name, mtu, false, queues)
    }

    fn build(name: &str, mtu: u16, offload: bool, queues: usize) -> io::Result<Vec<Self>> {
        // One queue: no IFF_MULTI_QUEUE, so that the device is the same
        // as before multi-queue existed (and can be one made without it).
        let device = DeviceBuilder::new()
            .name(name)
            .mtu(mtu)
            .tx_queue_len(TX_QUEUE_LEN)
            .offload(offload)
            .multi_queue(queues > 1)
            .enable(true)
            .build_sync()?;
        let offload = offload && device.tcp_gso();
        let mut devices = Vec::with_capacity(queues);
        for _ in 1..queues {
            // Attaches one more queue (TUNSETIFF on a new fd, offload set
            // again on it).
            devices.push(device.try_clone()?);
        }
        devices.insert(0, device);
        devices
            .into_iter()
            .map(|device| {
                device.set_nonblocking(true)?;
                Ok(Self {
                    device,
                    name: name.to_owned(),
                    offload,
                })
            })
            .collect()
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether packets carry a virtio-net header (offload is on).
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// Reads one packet into `buf` (and, with offload, its virtio-net
    /// header into `hdr`); returns the packet's length. `WouldBlock` when
    /// none is queued.
    pub fn recv(&self, hdr: &mut [u8; VNET_HDR_LEN], buf: &mut [u8]) -> io::Result<usize> {
        if !self.offload {
            return self.device.recv(buf);
        }
        let n = self
            .device
            .recv_vectored(&mut [IoSliceMut::new(hdr), IoSliceMut::new(buf)])?;
        if n < VNET_HDR_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TUN read shorter than its virtio-net header",
            ));
        }
        Ok(n - VNET_HDR_LEN)
    }

    /// Writes one packet back to the kernel, behind virtio-net header `hdr`
    /// when offload is on (ignored otherwise).
    pub fn send(&self, hdr: &[u8; VNET_HDR_LEN], packet: &[u8]) -> io::Result<usize> {
        if !self.offload {
            return self.device.send(packet);
        }
        self.device
            .send_vectored(&[IoSlice::new(hdr), IoSlice::new(packet)])
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.device.as_raw_fd()
    }
}
