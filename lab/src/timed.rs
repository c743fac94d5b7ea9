//! A command left running in the background whose output lines are
//! timestamped as they arrive: a long `curl -N .../stream` whose longest
//! silence is the gap a fault caused, and the `/stream` answers of the
//! lab's pod servers read through it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::env::{command, lab_script};

/// A command running in a lab namespace, its stdout read line by line.
pub struct TimedLines {
    child: Child,
    reader: JoinHandle<Vec<(Instant, String)>>,
    first: mpsc::Receiver<String>,
    started: Instant,
}

/// What a [`TimedLines`] command printed, and when.
#[derive(Debug)]
pub struct Timed {
    /// The lines, each with when it arrived.
    pub lines: Vec<(Instant, String)>,
    /// The command's exit status (`None`: it could not be waited for).
    pub status: Option<ExitStatus>,
    /// Its stderr.
    pub stderr: String,
    /// When it was started.
    pub started: Instant,
}

impl TimedLines {
    /// Runs `args` in `target` (`scripts/lab exec TARGET -- ARGS`), bounded
    /// by `secs`.
    pub fn start(target: &str, args: &[&str], secs: u32) -> Result<TimedLines, String> {
        let mut child = command("timeout")
            .args(["-k", "2", &secs.to_string()])
            .arg(lab_script())
            .args(["exec", target, "--"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {args:?} in {target}: {e}"))?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| format!("{args:?}: no stdout"))?;
        let (tx, first) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut reader = BufReader::new(out);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                // Bytes, not `lines()`: a line that is not UTF-8 must not
                // end the reading (and look like a short stream).
                let line = match reader.read_until(b'\n', &mut buf) {
                    Ok(0) => break,
                    Ok(_) => String::from_utf8_lossy(&buf)
                        .trim_end_matches('\n')
                        .to_string(),
                    Err(e) => format!("<read error: {e}>"),
                };
                if lines.is_empty() {
                    let _ = tx.send(line.clone());
                }
                let failed = line.starts_with("<read error");
                lines.push((Instant::now(), line));
                if failed {
                    break;
                }
            }
            lines
        });
        Ok(TimedLines {
            child,
            reader,
            first,
            started: Instant::now(),
        })
    }

    /// The first line, if one arrives within `wait`.
    pub fn first_line(&self, wait: Duration) -> Option<String> {
        self.first.recv_timeout(wait).ok()
    }

    /// Stops the command (it is no longer wanted).
    pub fn abandon(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the command to end.
    pub fn finish(mut self) -> Timed {
        let status = self.child.wait().ok();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        let lines = self.reader.join().unwrap_or_default();
        Timed {
            lines,
            status,
            stderr,
            started: self.started,
        }
    }
}

impl Timed {
    /// The longest time between two lines, or from `since` to the first
    /// line after it (a fault's start).
    pub fn longest_gap(&self) -> Duration {
        self.lines
            .windows(2)
            .map(|w| w[1].0.duration_since(w[0].0))
            .max()
            .unwrap_or_default()
    }

    /// Whether the command exited with status 0.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// The `line I from POD` lines of a `/stream` answer: how many, and
/// whether they are 1..=n in order.
pub fn stream_lines(t: &Timed) -> (usize, bool) {
    let lines: Vec<&str> = t
        .lines
        .iter()
        .map(|(_, l)| l.as_str())
        .filter(|l| l.starts_with("line "))
        .collect();
    let in_order = lines
        .iter()
        .enumerate()
        .all(|(i, l)| l.split_whitespace().nth(1) == Some(&(i + 1).to_string()));
    (lines.len(), in_order)
}

/// `curl -sSN URL` from `target`, bounded by `secs`.
pub fn start_stream(target: &str, url: &str, secs: u32) -> Result<TimedLines, String> {
    let max = secs.saturating_sub(2).to_string();
    TimedLines::start(target, &["curl", "-sSN", "--max-time", &max, url], secs)
}

/// A `/stream` through `url` from `target` answered by a pod whose name
/// contains `pod` (the ClusterIP picks one at random: up to 10 tries).
pub fn stream_from(target: &str, url: &str, pod: &str, secs: u32) -> Result<TimedLines, String> {
    let mut seen = Vec::new();
    for _ in 0..10 {
        let s = start_stream(target, url, secs)?;
        match s.first_line(Duration::from_secs(3)) {
            Some(line) if line.contains(pod) => return Ok(s),
            other => {
                seen.push(other);
                s.abandon();
            }
        }
    }
    Err(format!(
        "no stream from {pod} through {url} in 10 tries: {seen:?}"
    ))
}
