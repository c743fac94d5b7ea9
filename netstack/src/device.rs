//! [`QueueDevice`]: a smoltcp [`Device`] (`Medium::Ip`) backed by two packet queues.
//!
//! Packets pushed with [`QueueDevice::push_rx`] are what the interface receives;
//! packets the interface sends pile up in the transmit queue and are taken with
//! [`QueueDevice::pop_tx`]. Every packet is a whole IPv4 packet.

use std::collections::VecDeque;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant as SmolInstant;

/// A `Medium::Ip` device over an rx and a tx queue of IP packets.
#[derive(Debug, Clone)]
pub struct QueueDevice {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    mtu: usize,
}

impl QueueDevice {
    /// An empty device with the given IP MTU (the largest IP packet it sends).
    pub fn new(mtu: usize) -> Self {
        QueueDevice {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            mtu,
        }
    }

    /// The IP MTU.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Queues a packet for the interface to receive.
    pub fn push_rx(&mut self, packet: Vec<u8>) {
        self.rx.push_back(packet);
    }

    /// Takes the oldest packet the interface has transmitted.
    pub fn pop_tx(&mut self) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }

    /// Number of packets waiting to be received by the interface.
    pub fn rx_pending(&self) -> usize {
        self.rx.len()
    }

    /// Number of transmitted packets not yet taken.
    pub fn tx_pending(&self) -> usize {
        self.tx.len()
    }
}

/// Receive token of a [`QueueDevice`]: owns one received packet.
#[derive(Debug)]
pub struct QueueRxToken {
    buffer: Vec<u8>,
}

impl phy::RxToken for QueueRxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.buffer)
    }
}

/// Transmit token of a [`QueueDevice`]: appends one packet to the tx queue.
#[derive(Debug)]
pub struct QueueTxToken<'a> {
    queue: &'a mut VecDeque<Vec<u8>>,
}

impl phy::TxToken for QueueTxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buffer = vec![0; len];
        let result = f(&mut buffer);
        self.queue.push_back(buffer);
        result
    }
}

impl Device for QueueDevice {
    type RxToken<'a>
        = QueueRxToken
    where
        Self: 'a;
    type TxToken<'a>
        = QueueTxToken<'a>
    where
        Self: 'a;

    fn receive(
        &mut self,
        _timestamp: SmolInstant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let buffer = self.rx.pop_front()?;
        Some((
            QueueRxToken { buffer },
            QueueTxToken {
                queue: &mut self.tx,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: SmolInstant) -> Option<Self::TxToken<'_>> {
        Some(QueueTxToken {
            queue: &mut self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use smoltcp::phy::{RxToken, TxToken};

    #[test]
    fn queues_round_trip() {
        let mut dev = QueueDevice::new(1500);
        assert_eq!(dev.capabilities().medium, Medium::Ip);
        assert_eq!(dev.capabilities().max_transmission_unit, 1500);
        assert!(dev.receive(SmolInstant::ZERO).is_none());
        dev.push_rx(vec![1, 2, 3]);
        assert_eq!(dev.rx_pending(), 1);
        let (rx, tx) = dev.receive(SmolInstant::ZERO).unwrap();
        assert_eq!(rx.consume(|b| b.to_vec()), vec![1, 2, 3]);
        tx.consume(2, |b| b.copy_from_slice(&[9, 9]));
        assert_eq!(dev.tx_pending(), 1);
        assert_eq!(dev.pop_tx(), Some(vec![9, 9]));
        assert_eq!(dev.pop_tx(), None);
    }
}
