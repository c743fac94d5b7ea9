//! tshark: reading the routers' captures and capturing on the underlay.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::checks::Checks;
use crate::env::{command, run, show, stdout, RUN_DIR};
use crate::objects::overlay;

/// `tshark -r FILE` with VXLAN decoded on the overlay port and checksums
/// verified, printing the packets that match `filter`.
pub fn tshark(file: &str, filter: &str) -> Output {
    let vxlan = format!("udp.port=={},vxlan", overlay().port);
    run(
        60,
        "tshark",
        &[
            "-r",
            file,
            "-d",
            &vxlan,
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            filter,
        ],
    )
}

/// How many packets of `file` match `filter` (None if tshark failed).
pub fn tshark_count(file: &str, filter: &str) -> (Option<usize>, Output) {
    let out = tshark(file, filter);
    let n = out.status.success().then(|| {
        stdout(&out)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    });
    (n, out)
}

/// Packets whose checksums tshark found wrong. Wireshark's checksum
/// status is 0 Bad, 1 Good, 2 Unverified, 3 Not present, 4 Illegal.
/// Records the router's capture marks as carrying a partial checksum
/// (read from the TUN device with offload: the kernel's pseudo-header sum,
/// finished by whoever transmits them) are not bad: they are as read.
/// Nor is a TCP checksum of 0xffff where 0x0000 is computed: the same zero
/// in one's-complement arithmetic, which Linux writes when it finishes a
/// checksum in software (`skb_checksum_help`: `csum_fold(csum) ?:
/// CSUM_MANGLED_0`, one packet in 65536) and every receiver accepts;
/// Wireshark marks it bad but tags it `tcp.checksum.ffff`.
pub const BAD_CHECKSUM: &str = "(ip.checksum.status == 0 \
     || (tcp.checksum.status == 0 && !tcp.checksum.ffff) \
     || udp.checksum.status == 0 || icmp.checksum.status == 0) \
     && !(frame.comment contains \"checksum partial\")";
/// Packets with a verified TCP checksum: proof that tshark checked at all.
pub const GOOD_TCP_CHECKSUM: &str = "tcp.checksum.status == 1";

/// No packet of `file` has a bad checksum, and some have verified ones.
pub fn check_checksums(c: &mut Checks, file: &str) {
    let (n, out) = tshark_count(file, BAD_CHECKSUM);
    c.check(n == Some(0), || {
        format!(
            "capture {file}: packets with bad checksums (filter {BAD_CHECKSUM})\n{}",
            show("tshark", &out)
        )
    });
    let (n, out) = tshark_count(file, GOOD_TCP_CHECKSUM);
    c.check(n.is_some_and(|n| n > 0), || {
        format!(
            "capture {file}: no TCP checksum was verified (filter {GOOD_TCP_CHECKSUM})\n{}",
            show("tshark", &out)
        )
    });
}

/// A `tshark` capture running in the background, on the underlay bridge
/// or on an interface of another lab namespace.
pub struct BridgeCapture {
    child: std::process::Child,
    /// The capture file.
    pub file: String,
}

impl BridgeCapture {
    /// Starts capturing for at most `secs` seconds; waits (bounded) until
    /// the capture runs.
    pub fn start(secs: u32) -> Result<BridgeCapture, String> {
        let file = format!("{RUN_DIR}/underlay.pcapng");
        BridgeCapture::start_on("ksr-underlay", "ksr-br0", None, &file, secs)
    }

    /// Starts capturing on `iface` in the lab namespace `netns` (a pod's
    /// `eth0`, say) into `file`, only what the capture filter `bpf` lets
    /// through, for at most `secs` seconds; waits (bounded) until the
    /// capture runs.
    pub fn start_on(
        netns: &str,
        iface: &str,
        bpf: Option<&str>,
        file: &str,
        secs: u32,
    ) -> Result<BridgeCapture, String> {
        let _ = std::fs::remove_file(file);
        let mut cmd = command("timeout");
        cmd.args(["-k", "2", &(secs + 5).to_string()])
            .args(["ip", "netns", "exec", netns])
            .args(["tshark", "-q", "-i", iface, "-w", file])
            .args(["-a", &format!("duration:{secs}")]);
        if let Some(bpf) = bpf {
            cmd.args(["-f", bpf]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start tshark: {e}"))?;
        let mut cap = BridgeCapture {
            child,
            file: file.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::fs::metadata(&cap.file).is_ok_and(|m| m.len() > 0) {
                // The file header is written as the capture starts.
                std::thread::sleep(Duration::from_millis(500));
                return Ok(cap);
            }
            if let Ok(Some(status)) = cap.child.try_wait() {
                return Err(format!(
                    "tshark on {iface} in {netns} exited early: {status}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        cap.stop();
        Err(format!(
            "tshark on {iface} in {netns} did not start within 15 s"
        ))
    }

    /// Waits (bounded) for the capture to end by itself.
    pub fn wait(&mut self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop();
    }

    /// SIGTERM to `timeout`, which passes it on to tshark; SIGKILL if
    /// that does not end it within 3 s.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = run(5, "kill", &["-TERM", &pid]);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BridgeCapture {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}
