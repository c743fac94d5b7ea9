//! One scrape: a snapshot of the loop's counters and the histograms in the
//! Prometheus text format.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use dataplane::stats::{DropReason, Stats};

use super::Programming;

/// A counter holding `value` (a snapshot of a counter the loop keeps).
fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

/// A gauge holding `value`.
fn gauge(value: u64) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

/// What one scrape reports.
pub struct Snapshot<'a> {
    /// The data plane's counters, with the shell's filled in.
    pub stats: &'a Stats,
    /// Conntrack entries now.
    pub flows: usize,
    /// Conntrack capacity.
    pub capacity: usize,
}

/// The text exposition of `snapshot` and `programming`.
pub fn metrics_text(snapshot: &Snapshot<'_>, programming: &Programming) -> String {
    let mut registry = Registry::default();
    let s = snapshot.stats;
    let counters: [(&str, &str, u64); 18] = [
        (
            "ksr_packets_received",
            "Packets handed to the data path",
            s.received,
        ),
        ("ksr_packets_forwarded", "Packets forwarded", s.forwarded),
        (
            "ksr_packets_encapsulated",
            "Packets sent to other nodes over the VXLAN overlay",
            s.encapsulated,
        ),
        (
            "ksr_packets_decapsulated",
            "Packets received from other nodes over the VXLAN overlay",
            s.decapsulated,
        ),
        (
            "ksr_packets_translated",
            "Packets whose addresses or ports were rewritten (DNAT, SNAT or their reverse)",
            s.translated,
        ),
        (
            "ksr_packets_generated",
            "Packets the router generated (TCP RST, ICMP errors)",
            s.generated,
        ),
        (
            "ksr_packets_untracked",
            "Packets routed without connection tracking",
            s.untracked,
        ),
        (
            "ksr_conntrack_created",
            "Conntrack entries created",
            s.flows_created,
        ),
        (
            "ksr_conntrack_expired",
            "Conntrack entries removed by timeout",
            s.flows_expired,
        ),
        (
            "ksr_conntrack_early_drop",
            "Unreplied conntrack entries evicted to make room",
            s.flows_evicted,
        ),
        (
            "ksr_tun_write_dropped",
            "Packets the router could not write to its TUN device",
            s.tun_write_dropped,
        ),
        (
            "ksr_overlay_send_dropped",
            "Overlay datagrams the router could not send",
            s.overlay_send_dropped,
        ),
        (
            "ksr_tun_queue_dropped",
            "Packets the kernel dropped at the TUN queue before the router read them",
            s.tun_queue_dropped,
        ),
        (
            "ksr_tun_read_errors",
            "Errors reading the TUN device",
            s.tun_read_errors,
        ),
        (
            "ksr_overlay_recv_errors",
            "Errors reading the overlay socket",
            s.overlay_recv_errors,
        ),
        (
            "ksr_routing_restored",
            "Routing rules, routes or sysctls the router put back after they were removed",
            s.routing_restored,
        ),
        (
            "ksr_tun_segments_coalesced",
            "TCP segments from the overlay written to the TUN device merged into super-packets (GRO)",
            s.tun_segments_coalesced,
        ),
        (
            "ksr_dns_tcp_shed",
            "DNS-over-TCP connections refused or dropped",
            s.dns_tcp_shed,
        ),
    ];
    for (name, help, value) in counters {
        registry.register(name, help, counter(value));
    }
    let dropped = Family::<Vec<(String, String)>, Counter>::default();
    for reason in DropReason::ALL {
        let n = s.dropped[reason as usize];
        if n > 0 {
            dropped
                .get_or_create(&vec![("reason".to_owned(), reason.as_str().to_owned())])
                .inc_by(n);
        }
    }
    registry.register("ksr_packets_dropped", "Packets dropped, by reason", dropped);
    registry.register(
        "ksr_conntrack_entries",
        "Conntrack entries now",
        gauge(snapshot.flows as u64),
    );
    registry.register(
        "ksr_conntrack_capacity",
        "Conntrack capacity",
        gauge(snapshot.capacity as u64),
    );
    registry.register(
        "ksr_conntrack_half_open",
        "Conntrack entries in a TCP handshake now",
        gauge(s.flows_half_open),
    );
    registry.register(
        "kubeproxy_network_programming_duration_seconds",
        "From a change's trigger time (endpoints.kubernetes.io/last-change-trigger-time) to the change being programmed into the data plane",
        programming.network.clone(),
    );
    registry.register(
        "ksr_watch_event_to_dataplane_seconds",
        "From a watch event's arrival in the router to its change being in the data plane",
        programming.event_to_dataplane.clone(),
    );
    registry.register(
        "kubeproxy_sync_proxy_rules_duration_seconds",
        "How long one change took to apply to the data plane",
        programming.apply.clone(),
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}
