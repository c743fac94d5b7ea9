//! Many small requests in a row, counted: a success rate.

use std::time::{Duration, Instant};

use crate::env::curl;

/// Successes out of attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Attempts that succeeded.
    pub ok: u32,
    /// Attempts.
    pub total: u32,
}

impl Tally {
    /// Counts one attempt.
    pub fn add(&mut self, ok: bool) {
        self.total += 1;
        self.ok += u32::from(ok);
    }

    /// Percent succeeded (100 with no attempts).
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            f64::from(self.ok) * 100.0 / f64::from(self.total)
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} ({:.1}%)", self.ok, self.total, self.percent())
    }
}

/// One `curl URL` from `target` within `secs` that gets a 200 answer.
pub fn curl_ok(target: &str, url: &str, secs: u32) -> bool {
    let secs = secs.to_string();
    let out = curl(target, url, &["-o", "/dev/null", "-f", "--max-time", &secs]);
    out.status.success()
}

/// Polls `ok` every `every` until it holds, at most `within`; how long
/// that took.
pub fn time_until(
    within: Duration,
    every: Duration,
    mut ok: impl FnMut() -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if ok() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= within {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Runs `ok` again and again until `stop` is set; the tally.
pub fn tally_until(stop: &std::sync::atomic::AtomicBool, mut ok: impl FnMut() -> bool) -> Tally {
    let mut t = Tally::default();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        t.add(ok());
    }
    t
}
