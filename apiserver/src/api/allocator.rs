//! The Service allocators: ClusterIPs from the service CIDR and NodePorts
//! from 30000-32767, rebuilt from the stored Services at start. Ownership
//! is recorded per Service, so a write that keeps its IP or ports never
//! conflicts with itself and a removed port is freed by the next write.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

use crate::store::ObjectKey;

/// The default NodePort range.
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

/// What one Service holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Held {
    ips: BTreeSet<Ipv4Addr>,
    node_ports: BTreeSet<u16>,
}

/// ClusterIP and NodePort allocation state.
#[derive(Debug)]
pub struct ServiceAllocator {
    cidr: Ipv4Net,
    held: BTreeMap<ObjectKey, Held>,
    ips: HashSet<Ipv4Addr>,
    node_ports: HashSet<u16>,
    next_ip: u32,
    next_port: u16,
}

/// Why an allocation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// The requested IP is outside the service CIDR.
    #[error("provided IP is not in the valid range. The range of valid IPs is {0}")]
    OutOfRange(Ipv4Net),
    /// Someone else holds it.
    #[error("provided IP is already allocated")]
    IpTaken,
    /// Someone else holds the port.
    #[error("provided port is already allocated")]
    PortTaken,
    /// The port is outside 30000-32767.
    #[error("provided port is not in the valid range. The range of valid ports is 30000-32767")]
    PortOutOfRange,
    /// Nothing left.
    #[error("range is full")]
    Full,
}

fn held_by(svc: &Value) -> Held {
    let mut held = Held::default();
    let ips = svc.pointer("/spec/clusterIPs").and_then(Value::as_array);
    for ip in ips
        .into_iter()
        .flatten()
        .chain(svc.pointer("/spec/clusterIP"))
    {
        if let Some(ip) = ip.as_str().and_then(|s| s.parse().ok()) {
            held.ips.insert(ip);
        }
    }
    for port in svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(p) = port["nodePort"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
        {
            held.node_ports.insert(p);
        }
    }
    held
}

impl ServiceAllocator {
    /// An empty allocator over a service CIDR.
    pub fn new(cidr: Ipv4Net) -> ServiceAllocator {
        ServiceAllocator {
            cidr,
            held: BTreeMap::new(),
            ips: HashSet::new(),
            node_ports: HashSet::new(),
            next_ip: 0,
            next_port: 0,
        }
    }

    /// The service CIDR.
    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// The first host address (10.96.0.1), the `kubernetes` Service's.
    pub fn first_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.cidr.network()) + 1)
    }

    /// Records what a stored Service holds (None: deleted), freeing what
    /// it no longer holds.
    pub fn record(&mut self, key: &ObjectKey, svc: Option<&Value>) {
        if let Some(old) = self.held.remove(key) {
            for ip in old.ips {
                self.ips.remove(&ip);
            }
            for port in old.node_ports {
                self.node_ports.remove(&port);
            }
        }
        if let Some(svc) = svc {
            let held = held_by(svc);
            self.ips.extend(held.ips.iter().copied());
            self.node_ports.extend(held.node_ports.iter().copied());
            self.held.insert(key.clone(), held);
        }
    }

    fn mine(&self, key: &ObjectKey) -> Held {
        self.held.get(key).cloned().unwrap_or_default()
    }

    /// Checks that `key` may hold `ip` (in range and free or its own).
    pub fn check_ip(&self, key: &ObjectKey, ip: Ipv4Addr) -> Result<(), AllocError> {
        let broadcast = self.cidr.broadcast();
        if !self.cidr.contains(&ip) || ip == self.cidr.network() || ip == broadcast {
            return Err(AllocError::OutOfRange(self.cidr));
        }
        if self.ips.contains(&ip) && !self.mine(key).ips.contains(&ip) {
            return Err(AllocError::IpTaken);
        }
        Ok(())
    }

    /// A free ClusterIP. As Kubernetes does, dynamic allocation takes the
    /// upper part of the range first and leaves the lower band
    /// (min(max(16, size/16), 256) addresses: 10.96.0.0-10.96.0.255 here)
    /// to Services that name their ClusterIP, such as kube-dns's 10.96.0.10;
    /// the lower band is used only when the rest is full. Round robin
    /// within each part.
    pub fn allocate_ip(&mut self) -> Result<Ipv4Addr, AllocError> {
        let base = u32::from(self.cidr.network());
        let size = 1u32 << (32 - u32::from(self.cidr.prefix_len()));
        // Offsets 1..size-1 are hosts; the network and broadcast are not.
        let band = (size / 16).clamp(16, 256).min(size.saturating_sub(2));
        let parts = [(band + 1, size.saturating_sub(1)), (1, band + 1)];
        for (start, end) in parts {
            let span = end.saturating_sub(start);
            for _ in 0..span {
                if self.next_ip < start || self.next_ip >= end {
                    self.next_ip = start;
                }
                let ip = Ipv4Addr::from(base + self.next_ip);
                self.next_ip += 1;
                if !self.ips.contains(&ip) {
                    self.ips.insert(ip);
                    return Ok(ip);
                }
            }
        }
        Err(AllocError::Full)
    }

    /// Checks that `key` may hold NodePort `port`.
    pub fn check_port(&self, key: &ObjectKey, port: u16) -> Result<(), AllocError> {
        if !NODE_PORTS.contains(&port) {
            return Err(AllocError::PortOutOfRange);
        }
        if self.node_ports.contains(&port) && !self.mine(key).node_ports.contains(&port) {
            return Err(AllocError::PortTaken);
        }
        Ok(())
    }

    /// A free NodePort, reserved until the next [`record`](Self::record)
    /// of its Service (or [`rollback`](Self::rollback)). Dynamic ports come
    /// from above the static band (min(max(16, size/32), 128) ports:
    /// 30000-30085), which is left to manifests that name their nodePort,
    /// and from the band only when the rest is full.
    pub fn allocate_port(&mut self) -> Result<u16, AllocError> {
        let (first, last) = (*NODE_PORTS.start(), *NODE_PORTS.end());
        let size = last - first + 1;
        let band = (size / 32).clamp(16, 128);
        for (start, end) in [(first + band, last), (first, first + band - 1)] {
            for _ in start..=end {
                if self.next_port < start || self.next_port > end {
                    self.next_port = start;
                }
                let port = self.next_port;
                self.next_port = port.saturating_add(1);
                if !self.node_ports.contains(&port) {
                    self.node_ports.insert(port);
                    return Ok(port);
                }
            }
        }
        Err(AllocError::Full)
    }

    /// Forgets reservations that a failed write did not keep: recomputes the
    /// sets from the recorded Services.
    pub fn rollback(&mut self) {
        self.ips = self
            .held
            .values()
            .flat_map(|h| h.ips.iter().copied())
            .collect();
        self.node_ports = self
            .held
            .values()
            .flat_map(|h| h.node_ports.iter().copied())
            .collect();
    }
}

#[cfg(test)]
mod tests;
