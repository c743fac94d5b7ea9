//! Conversion between `std::time::Instant` and `smoltcp::time::Instant`.
//!
//! The library never reads a clock: callers pass `std::time::Instant`s in, and
//! this module is the single place where they are turned into smoltcp time,
//! as the offset from an epoch fixed when the [`Clock`] is created.

use std::time::{Duration, Instant};

use smoltcp::time::Instant as SmolInstant;

/// Maps `std::time::Instant`s to smoltcp instants measured from an epoch.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose smoltcp time zero is `epoch`.
    pub fn new(epoch: Instant) -> Self {
        Clock { epoch }
    }

    /// The `std::time::Instant` that corresponds to smoltcp time zero.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Time elapsed since the epoch (zero for instants before the epoch).
    pub fn since_epoch(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.epoch)
    }

    /// The smoltcp instant for `now` (instants before the epoch map to zero).
    pub fn to_smoltcp(&self, now: Instant) -> SmolInstant {
        let micros = i64::try_from(self.since_epoch(now).as_micros()).unwrap_or(i64::MAX);
        SmolInstant::from_micros(micros)
    }

    /// The `std::time::Instant` for a smoltcp instant (negative ones map to the epoch).
    pub fn from_smoltcp(&self, t: SmolInstant) -> Instant {
        let micros = u64::try_from(t.total_micros()).unwrap_or(0);
        self.epoch
            .checked_add(Duration::from_micros(micros))
            .unwrap_or(self.epoch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t0 = Instant::now();
        let clock = Clock::new(t0);
        assert_eq!(clock.to_smoltcp(t0), SmolInstant::from_micros(0));
        let t1 = t0 + Duration::from_millis(1234);
        let s = clock.to_smoltcp(t1);
        assert_eq!(s.total_millis(), 1234);
        assert_eq!(clock.from_smoltcp(s), t1);
    }

    #[test]
    fn before_epoch_saturates() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let clock = Clock::new(t0);
        assert_eq!(clock.to_smoltcp(Instant::now()).total_micros(), 0);
        assert_eq!(clock.from_smoltcp(SmolInstant::from_micros(-5)), t0);
    }
}
