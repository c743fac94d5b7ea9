//! Packet capture: what the router sees and does, as a pcapng file with one
//! interface per direction (`tun-in`, `tun-out`, `overlay-in`,
//! `overlay-out`), readable by tcpdump, tshark and Wireshark.
//!
//! TUN packets are bare IPv4 (LINKTYPE_RAW). Overlay packets get the outer
//! IPv4 and UDP headers the kernel put on (or took off) the wire, so the
//! capture shows the whole VXLAN packet: `tshark -d udp.port==8472,vxlan`
//! decodes it (Wireshark knows VXLAN on 4789 only by default).
//!
//! A capture is bounded, like `tcpdump -C SIZE -W FILES`: when the file
//! would grow past [`CaptureLimit::max_bytes`], it is renamed to `FILE.1`
//! (older ones shift to `FILE.2`... and the oldest beyond
//! [`CaptureLimit::files`] goes) and a new `FILE` starts with the same
//! interfaces, so a long capture never fills the disk.
//!
//! With TUN offload, packets are recorded as read and written: a TCP
//! super-packet of up to 64 KiB is one record (tshark decodes it as one
//! long segment), marked by a packet comment saying so and that its
//! checksum is partial (tshark does not check TCP checksums by default;
//! with the check on, such records show "incorrect" checksums by design).
//!
//! A capture can cover the whole node or one Service: then only packets
//! to or from one of the Service's addresses (ClusterIP, external and
//! LoadBalancer IPs, endpoints) are kept, looking inside the overlay.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

use cluster::Cluster;
use dataplane::overlay::OVERLAY_HEADER_LEN;
use dataplane::wire::ip::push_ipv4_udp;

/// Where a captured packet was seen; the pcapng interface index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Read from the TUN device.
    TunIn = 0,
    /// Written to the TUN device.
    TunOut = 1,
    /// Received on the overlay socket.
    OverlayIn = 2,
    /// Sent on the overlay socket.
    OverlayOut = 3,
}

const NAMES: [&str; 4] = ["tun-in", "tun-out", "overlay-in", "overlay-out"];

/// How large a capture may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureLimit {
    /// Bytes per file before it is rotated.
    pub max_bytes: u64,
    /// Files kept, the one being written included (at least 1).
    pub files: u32,
}

impl Default for CaptureLimit {
    /// 100 MiB, two files: at most ~200 MiB on disk.
    fn default() -> Self {
        CaptureLimit {
            max_bytes: 100 << 20,
            files: 2,
        }
    }
}

/// An open capture.
pub struct Capture {
    /// Blocks are encoded into memory and written to `file` whole, so a
    /// reader (tshark on a capture in progress) never sees half a block.
    writer: PcapNgWriter<Vec<u8>>,
    file: File,
    filter: Option<HashSet<Ipv4Addr>>,
    scratch: Vec<u8>,
    path: PathBuf,
    /// The section header and interface blocks, written at the start of
    /// every file so each one decodes on its own.
    header: Vec<u8>,
    written: u64,
    limit: CaptureLimit,
    rotations: u64,
}

/// Why a capture could not be started.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be created or written.
    #[error("capture file {path}: {message}")]
    File {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The Service to capture does not exist.
    #[error("no service {0} to capture (give NAMESPACE/NAME or NAME for the default namespace)")]
    NoSuchService(String),
}

impl Capture {
    /// Creates `path`. With `service` (`ns/name` or `name`), only that
    /// Service's packets are kept.
    pub fn create(
        path: &Path,
        service: Option<&str>,
        cluster: &Cluster,
        limit: CaptureLimit,
    ) -> Result<Self, CaptureError> {
        let filter = match service {
            None => None,
            Some(spec) => Some(service_addresses(spec, cluster)?),
        };
        let err = |message: String| CaptureError::File {
            path: path.display().to_string(),
            message,
        };
        let file = File::create(path).map_err(|e| err(e.to_string()))?;
        let mut writer = PcapNgWriter::new(Vec::new()).map_err(|e| err(e.to_string()))?;
        for name in NAMES {
            writer
                .write_pcapng_block(InterfaceDescriptionBlock {
                    linktype: DataLink::RAW,
                    snaplen: 0,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Borrowed(name)),
                        InterfaceDescriptionOption::IfTsResol(9),
                    ],
                })
                .map_err(|e| err(e.to_string()))?;
        }
        let header = writer.get_ref().clone();
        let mut capture = Self {
            writer,
            file,
            filter,
            scratch: Vec::new(),
            path: path.to_owned(),
            header,
            written: 0,
            limit: CaptureLimit {
                max_bytes: limit.max_bytes.max(64 << 10),
                files: limit.files.max(1),
            },
            rotations: 0,
        };
        capture.flush();
        Ok(capture)
    }

    /// Records a packet seen at `point`. For overlay points, `packet` is the
    /// UDP payload and `outer` the underlay addresses and port. `comment`
    /// marks a record (a super-packet, a partial checksum).
    pub fn record(
        &mut self,
        point: Point,
        packet: &[u8],
        outer: Option<(Ipv4Addr, Ipv4Addr, u16)>,
        comment: Option<String>,
    ) {
        let inner = match point {
            Point::TunIn | Point::TunOut => packet,
            Point::OverlayIn | Point::OverlayOut => packet.get(OVERLAY_HEADER_LEN..).unwrap_or(&[]),
        };
        if let Some(filter) = &self.filter {
            if inner.len() < 20 {
                return;
            }
            let src = Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]);
            let dst = Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]);
            if !filter.contains(&src) && !filter.contains(&dst) {
                return;
            }
        }
        let data: &[u8] = match outer {
            Some((src, dst, port)) => {
                self.scratch.clear();
                outer_headers(&mut self.scratch, src, dst, port, packet);
                &self.scratch
            }
            None => packet,
        };
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let block = EnhancedPacketBlock {
            interface_id: point as u32,
            timestamp,
            original_len: data.len() as u32,
            data: Cow::Borrowed(data),
            options: comment
                .map(|c| vec![EnhancedPacketOption::Comment(Cow::Owned(c))])
                .unwrap_or_default(),
        };
        if let Err(e) = self.writer.write_pcapng_block(block) {
            log::warn!("capture: {e}");
        }
    }

    /// Writes the blocks recorded so far to the file, rotating it first if
    /// they would take it past the limit.
    pub fn flush(&mut self) {
        let pending_len = self.writer.get_ref().len() as u64;
        if pending_len == 0 {
            return;
        }
        if self.written > 0 && self.written + pending_len > self.limit.max_bytes {
            if let Err(e) = self.rotate() {
                log::warn!("capture: rotating {}: {e}", self.path.display());
            }
        }
        let pending = self.writer.get_mut();
        match self.file.write_all(pending) {
            Ok(()) => self.written += pending.len() as u64,
            Err(e) => log::warn!("capture: {e}"),
        }
        pending.clear();
    }

    /// How many times the capture has been rotated.
    #[cfg(test)]
    fn rotations(&self) -> u64 {
        self.rotations
    }

    /// `FILE` becomes `FILE.1` (`FILE.1` becomes `FILE.2`, ...; the oldest
    /// beyond the limit is removed) and a new `FILE` starts with the header.
    fn rotate(&mut self) -> std::io::Result<()> {
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        let keep = self.limit.files - 1;
        if keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(keep));
            for n in (1..keep).rev() {
                let from = numbered(n);
                if from.exists() {
                    std::fs::rename(&from, numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = File::create(&self.path)?;
        self.file.write_all(&self.header)?;
        self.written = self.header.len() as u64;
        self.rotations += 1;
        log::debug!(
            "capture: {} rotated ({} times)",
            self.path.display(),
            self.rotations
        );
        Ok(())
    }
}

/// Every address of a Service: ClusterIP, external and LoadBalancer IPs,
/// and its endpoints.
fn service_addresses(spec: &str, cluster: &Cluster) -> Result<HashSet<Ipv4Addr>, CaptureError> {
    let (ns, name) = spec.split_once('/').unwrap_or(("default", spec));
    let svc = cluster
        .service(ns, name)
        .ok_or_else(|| CaptureError::NoSuchService(spec.to_owned()))?;
    let mut set: HashSet<Ipv4Addr> = HashSet::from([svc.cluster_ip]);
    set.extend(svc.external_ips.iter().chain(&svc.load_balancer_ips));
    for port in &svc.ports {
        set.extend(cluster.endpoints(svc, port).iter().map(|e| e.ip));
    }
    Ok(set)
}

/// Puts the outer IPv4 and UDP headers (with valid checksums) in front of
/// an overlay payload.
fn outer_headers(out: &mut Vec<u8>, src: Ipv4Addr, dst: Ipv4Addr, port: u16, payload: &[u8]) {
    push_ipv4_udp(out, (src, port), (dst, port), payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_rotates_at_its_limit_and_keeps_its_files() {
        let dir = std::env::temp_dir().join(format!("ksr-capture-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("c.pcapng");
        let cluster =
            control::config::parse(include_str!("../../../control/tests/fixtures/cluster.toml"))
                .expect("config");
        let limit = CaptureLimit {
            max_bytes: 64 << 10,
            files: 3,
        };
        let mut c = Capture::create(&path, None, &cluster, limit).expect("create");
        let packet = vec![0x45u8; 1400];
        for _ in 0..500 {
            c.record(Point::TunIn, &packet, None, None);
            c.flush();
        }
        // 500 x ~1.4 kB = ~720 kB through 64 kB files: rotated, and only
        // three files (c, c.1, c.2) are left, each within the limit.
        assert!(c.rotations() >= 9, "{} rotations", c.rotations());
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["c.pcapng", "c.pcapng.1", "c.pcapng.2"]);
        for f in &files {
            let bytes = std::fs::read(dir.join(f)).expect("read");
            assert!(
                bytes.len() as u64 <= limit.max_bytes,
                "{f}: {}",
                bytes.len()
            );
            // Each file starts with a section header block: it decodes alone.
            assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "{f}");
            let mut reader =
                pcap_file::pcapng::PcapNgReader::new(&bytes[..]).expect("a pcapng file");
            let mut packets = 0;
            while let Some(block) = reader.next_block() {
                if matches!(
                    block.expect("block"),
                    pcap_file::pcapng::Block::EnhancedPacket(_)
                ) {
                    packets += 1;
                }
            }
            assert!(packets > 0, "{f} has packets");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn outer_headers_are_valid_udp() {
        let mut out = Vec::new();
        let payload = [8u8, 0, 0, 0, 0, 0, 1, 0];
        outer_headers(
            &mut out,
            Ipv4Addr::new(192, 168, 191, 145),
            Ipv4Addr::new(192, 168, 191, 144),
            8472,
            &payload,
        );
        let s = etherparse::SlicedPacket::from_ip(&out).expect("parse");
        let Some(etherparse::TransportSlice::Udp(udp)) = s.transport else {
            panic!("udp");
        };
        assert_eq!(udp.destination_port(), 8472);
        assert_eq!(
            udp.checksum(),
            udp.to_header()
                .calc_checksum_ipv4_raw([192, 168, 191, 145], [192, 168, 191, 144], udp.payload())
                .expect("csum")
        );
    }
}
