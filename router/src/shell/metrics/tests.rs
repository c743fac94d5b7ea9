//! The exposition a scrape returns.

use std::time::Duration;

use dataplane::stats::{DropReason, Stats};

use super::encode::{metrics_text, Snapshot};
use super::Programming;

#[test]
fn counters_drops_by_reason_and_histograms_in_the_text_format() {
    let mut stats = Stats {
        received: 10,
        forwarded: 7,
        ..Stats::default()
    };
    stats.drop(DropReason::ALL[0]);
    let programming = Programming::default();
    programming.observe(
        Duration::from_micros(40),
        Duration::from_micros(90),
        Some(Duration::from_millis(3)),
    );
    let text = metrics_text(
        &Snapshot {
            stats: &stats,
            flows: 3,
            capacity: 1000,
        },
        &programming,
    );
    assert!(text.contains("ksr_packets_received_total 10"), "{text}");
    assert!(text.contains("ksr_packets_forwarded_total 7"), "{text}");
    let reason = DropReason::ALL[0].as_str();
    assert!(
        text.contains(&format!(
            "ksr_packets_dropped_total{{reason=\"{reason}\"}} 1"
        )),
        "{text}"
    );
    assert!(text.contains("ksr_conntrack_entries 3"), "{text}");
    assert!(text.contains("ksr_conntrack_capacity 1000"), "{text}");
    assert!(
        text.contains("kubeproxy_network_programming_duration_seconds_count 1"),
        "{text}"
    );
    // 3 ms falls in the 3.2 ms bucket (25 us * 2^7), not in 1.6 ms.
    assert!(
        text.contains("kubeproxy_network_programming_duration_seconds_bucket{le=\"0.0032\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("kubeproxy_network_programming_duration_seconds_bucket{le=\"0.0016\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("ksr_watch_event_to_dataplane_seconds_count 1"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}
