//! The `synflood` tool (this crate's binary) run in a lab namespace, and
//! what it reports.

use std::process::{Child, Stdio};

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
