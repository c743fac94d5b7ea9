//! Packet capture: what the router sees and does, as a pcapng file with one
//! interface per direction (`tun-in`, `tun-out`, `overlay-in`,
//! `overlay-out`), readable by tcpdump, tshark and Wireshark.
//!
//! TUN packets are bare IPv4 (LINKTYPE_RAW). Overlay packets get the outer
//! IPv4 and UDP headers the kernel put on (or took off) the wire, so the
//! capture shows the whole VXLAN packet: `tshark -d udp.port==8472,vxlan`
//! decodes it (Wireshark knows VXLAN on 4789 only by default).
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
use std::path::Path;
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

/// An open capture.
pub struct Capture {
    /// Blocks are encoded into memory and written to `file` whole, so a
    /// reader (tshark on a capture in progress) never sees half a block.
    writer: PcapNgWriter<Vec<u8>>,
    file: File,
    filter: Option<HashSet<Ipv4Addr>>,
    scratch: Vec<u8>,
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
        let mut capture = Self {
            writer,
            file,
            filter,
            scratch: Vec::new(),
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

    /// Writes the blocks recorded so far to the file.
    pub fn flush(&mut self) {
        let pending = self.writer.get_mut();
        if pending.is_empty() {
            return;
        }
        if let Err(e) = self.file.write_all(pending) {
            log::warn!("capture: {e}");
        }
        pending.clear();
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
