//! The `synflood` tool (this crate's binary) run in a lab namespace, and
//! what it reports.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::env::{command, lab_script, run, show, stdout};

/// What one `synflood` run reported.
#[derive(Debug, Clone, Copy, Default)]
pub struct FloodReport {
    /// Packets sent.
    pub sent: u64,
    /// Seconds it sent for.
    pub secs: f64,
    /// Packets per second.
    pub rate: f64,
}

/// The line the lab's traffic tools (`synflood`, `udpflows`) end with, and
/// [`parse_report`] reads: `sent N WHAT in S s (R/s), [EXTRA]E send
/// errors[ (last: ERROR)]`; `extra` is empty or ends with `, `.
pub fn send_summary(
    sent: u64,
    what: &str,
    took: Duration,
    extra: &str,
    errors: u64,
    last_error: Option<&str>,
) -> String {
    let secs = took.as_secs_f64();
    let rate = if secs > 0.0 { sent as f64 / secs } else { 0.0 };
    let last = last_error
        .map(|e| format!(" (last: {e})"))
        .unwrap_or_default();
    format!("sent {sent} {what} in {secs:.2} s ({rate:.0}/s), {extra}{errors} send errors{last}")
}

/// Parses `sent N packets in S s (R/s), ...`.
pub fn parse_report(text: &str) -> Option<FloodReport> {
    let line = text.lines().find(|l| l.starts_with("sent "))?;
    let mut words = line.split_whitespace();
    let sent = words.nth(1)?.parse().ok()?;
    let secs = words.nth(2)?.parse().ok()?;
    let rate = words
        .nth(1)?
        .trim_start_matches('(')
        .trim_end_matches("/s),")
        .parse()
        .ok()?;
    Some(FloodReport { sent, secs, rate })
}

/// A `synflood` started in the background.
pub struct Flood(Child);

impl Flood {
    /// Starts `synflood ARGS` in `target` (`scripts/lab exec`).
    pub fn start(synflood: &str, target: &str, args: &[&str]) -> Result<Flood, String> {
        command("timeout")
            .args(["-k", "2", "120"])
            .arg(lab_script())
            .args(["exec", target, "--", synflood])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map(Flood)
            .map_err(|e| format!("cannot start synflood in {target}: {e}"))
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// Waits for it to end; its report, or its output as the error.
    pub fn finish(self) -> Result<FloodReport, String> {
        let out = self
            .0
            .wait_with_output()
            .map_err(|e| format!("synflood: {e}"))?;
        match parse_report(&stdout(&out)) {
            Some(r) if out.status.success() => Ok(r),
            _ => Err(show("synflood", &out)),
        }
    }
}

/// Runs `synflood ARGS` in `target` to the end (at most `secs`).
pub fn flood(
    synflood: &str,
    target: &str,
    args: &[&str],
    secs: u32,
) -> Result<FloodReport, String> {
    let mut all = vec!["exec", target, "--", synflood];
    all.extend_from_slice(args);
    let out = run(secs, lab_script(), &all);
    match parse_report(&stdout(&out)) {
        Some(r) if out.status.success() => Ok(r),
        _ => Err(show("synflood", &out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_reads_back() {
        let line = send_summary(
            3000,
            "packets",
            Duration::from_secs(2),
            "",
            4,
            Some("ENOBUFS"),
        );
        assert_eq!(
            line,
            "sent 3000 packets in 2.00 s (1500/s), 4 send errors (last: ENOBUFS)"
        );
        let r = parse_report(&line).expect("parses");
        assert_eq!((r.sent, r.secs, r.rate), (3000, 2.0, 1500.0));
        assert_eq!(
            send_summary(7, "flows", Duration::ZERO, "1 ports busy, ", 0, None),
            "sent 7 flows in 0.00 s (0/s), 1 ports busy, 0 send errors"
        );
    }
}
