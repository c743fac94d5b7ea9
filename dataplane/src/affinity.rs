//! Session affinity (`sessionAffinity: ClientIP`): a client keeps reaching
//! the endpoint it was first sent to, for `timeoutSeconds` after its last
//! new connection, as kube-proxy's `recent` match does.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Which client, on which Service frontend (address, port, protocol).
pub type AffinityKey = (Ipv4Addr, Ipv4Addr, u16, u8);

/// How often expired affinities are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The affinity table. Bounded: when full, new clients get no affinity
/// until entries expire (their flows are still balanced normally).
pub struct AffinityTable {
    map: HashMap<AffinityKey, (SocketAddrV4, Instant)>,
    capacity: usize,
    next_sweep: Option<Instant>,
}

impl AffinityTable {
    /// An empty table of at most `capacity` clients.
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            capacity,
            next_sweep: None,
        }
    }

    /// The endpoint `key` is pinned to, if the pin has not expired.
    pub fn get(&self, key: &AffinityKey, now: Instant) -> Option<SocketAddrV4> {
        self.map
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(ep, _)| *ep)
    }

    /// Pins `key` to `endpoint` until `now + timeout`.
    pub fn pin(
        &mut self,
        key: AffinityKey,
        endpoint: SocketAddrV4,
        now: Instant,
        timeout: Duration,
    ) {
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            return;
        }
        self.map.insert(key, (endpoint, now + timeout));
        self.next_sweep.get_or_insert(now + SWEEP_INTERVAL);
    }

    /// Forgets every pin to an endpoint for which `gone` is true.
    pub fn forget(&mut self, mut gone: impl FnMut(&AffinityKey, SocketAddrV4) -> bool) {
        self.map.retain(|k, (ep, _)| !gone(k, *ep));
    }

    /// Removes expired pins, if a sweep is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.map.retain(|_, (_, expires)| *expires > now);
            self.next_sweep = (!self.map.is_empty()).then(|| now + SWEEP_INTERVAL);
        }
    }

    /// When [`AffinityTable::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Number of pinned clients.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no client is pinned.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_expire_at_their_timeout() {
        let t0 = Instant::now();
        let mut t = AffinityTable::new(10);
        let key = (
            Ipv4Addr::new(10, 10, 1, 100),
            Ipv4Addr::new(10, 96, 0, 1),
            80,
            6,
        );
        let ep = SocketAddrV4::new(Ipv4Addr::new(10, 10, 0, 2), 80);
        let timeout = Duration::from_secs(10800);
        t.pin(key, ep, t0, timeout);
        let one = Duration::from_secs(1);
        assert_eq!(t.get(&key, t0 + timeout - one), Some(ep));
        assert_eq!(t.get(&key, t0 + timeout + one), None);
        t.handle_timeout(t0 + timeout + one);
        assert!(t.is_empty());
    }

    #[test]
    fn bounded_and_forgets_removed_endpoints() {
        let t0 = Instant::now();
        let mut t = AffinityTable::new(2);
        let ep = SocketAddrV4::new(Ipv4Addr::new(10, 10, 0, 2), 80);
        for i in 0..5u8 {
            t.pin(
                (
                    Ipv4Addr::new(10, 10, 1, i),
                    Ipv4Addr::new(10, 96, 0, 1),
                    80,
                    6,
                ),
                ep,
                t0,
                Duration::from_secs(5),
            );
        }
        assert_eq!(t.len(), 2);
        t.forget(|_, e| e == ep);
        assert!(t.is_empty());
    }
}
