//! What the shell does with a socket error: count it and go on, or stop.
//!
//! A data plane must not exit because one packet could not be sent: a local
//! firewall rule (EPERM), a full queue (ENOBUFS), an ICMP error the kernel
//! reports on the overlay socket (ECONNREFUSED, EHOSTUNREACH), a packet too
//! big for the path (EMSGSIZE) are all conditions of the moment. Only an
//! error that says the file descriptor itself is gone or unusable is fatal:
//! then the router exits, says why, and its supervisor starts a new one
//! (which re-creates the TUN device).

use std::io::{Error, ErrorKind};
use std::time::{Duration, Instant};

use log::warn;

/// What to do about an I/O error on the TUN device or the overlay socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Nothing to do now (the queue is empty or full, or a signal came).
    Retry,
    /// Count it, log it at a bounded rate, and go on with the next packet.
    Count,
    /// The device or socket is unusable: stop the router.
    Fatal,
}

/// Classifies `e`, seen while reading or writing a packet.
pub fn classify(e: &Error) -> ErrorAction {
    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) {
        return ErrorAction::Retry;
    }
    match e.raw_os_error() {
        // The descriptor is closed, not a socket, or the TUN device was
        // deleted under us (the kernel detaches the queue: EBADFD): nothing
        // more will ever come through it.
        Some(libc::EBADF | libc::EBADFD | libc::ENOTSOCK | libc::EFAULT | libc::ENODEV) => {
            ErrorAction::Fatal
        }
        _ => ErrorAction::Count,
    }
}

/// Logs errors of one kind at most once per [`RateLimitedLog::EVERY`],
/// with the number of errors not logged in between, so that a firewall rule
/// dropping every overlay packet does not flood the log.
#[derive(Debug)]
pub struct RateLimitedLog {
    what: &'static str,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    /// The shortest interval between two log lines.
    pub const EVERY: Duration = Duration::from_secs(1);

    /// A log for errors while doing `what` ("sending on the overlay socket").
    pub fn new(what: &'static str) -> Self {
        RateLimitedLog {
            what,
            last: None,
            suppressed: 0,
        }
    }

    /// Records one error at `now`; returns whether it was logged.
    pub fn record(&mut self, now: Instant, e: &Error) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= Self::EVERY);
        if !due {
            self.suppressed += 1;
            return false;
        }
        if self.suppressed > 0 {
            warn!(
                "{}: {e} (and {} more errors in the last {:.1} s; counted, going on)",
                self.what,
                self.suppressed,
                self.last
                    .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64())
            );
        } else {
            warn!("{}: {e} (counted, going on)", self.what);
        }
        self.last = Some(now);
        self.suppressed = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(code: i32) -> Error {
        Error::from_raw_os_error(code)
    }

    #[test]
    fn transient_errors_are_counted_not_fatal() {
        // EPERM is what a local firewall rule makes sendto return.
        for code in [
            libc::EPERM,
            libc::ENOBUFS,
            libc::ECONNREFUSED,
            libc::EHOSTUNREACH,
            libc::ENETUNREACH,
            libc::EMSGSIZE,
            libc::EINVAL,
            libc::EIO,
            libc::ENETDOWN,
        ] {
            assert_eq!(classify(&os(code)), ErrorAction::Count, "errno {code}");
        }
    }

    #[test]
    fn a_gone_descriptor_is_fatal_and_would_block_is_retry() {
        assert_eq!(classify(&os(libc::EBADFD)), ErrorAction::Fatal);
        assert_eq!(classify(&os(libc::EBADF)), ErrorAction::Fatal);
        assert_eq!(classify(&os(libc::EAGAIN)), ErrorAction::Retry);
        assert_eq!(classify(&os(libc::EINTR)), ErrorAction::Retry);
    }

    #[test]
    fn logging_is_bounded_to_once_per_second() {
        let t0 = Instant::now();
        let mut log = RateLimitedLog::new("sending");
        let e = os(libc::EPERM);
        let logged = (0..10_000)
            .filter(|i| log.record(t0 + Duration::from_millis(*i / 2), &e))
            .count();
        // 10,000 errors over 5 s: one line per second.
        assert_eq!(logged, 5);
    }
}
