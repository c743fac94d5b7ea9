//! How long the router takes to program a change into its data plane: the
//! histograms kube-proxy exports for the same question.

use std::time::Duration;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// Buckets from 25 us to ~26 s (21 doublings): the router programs a
/// change in microseconds, where kube-proxy's own buckets start at 250 ms
/// and could not tell them apart.
fn buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_025, 2.0, 21)
}

/// The programming-latency histograms, shared (cheaply cloned) between the
/// packet loop, which observes, and the metrics server, which encodes.
#[derive(Clone)]
pub struct Programming {
    /// From the change's trigger time (an EndpointSlice's
    /// `endpoints.kubernetes.io/last-change-trigger-time`) to the change
    /// being in the data plane: kube-proxy's
    /// `kubeproxy_network_programming_duration_seconds`.
    pub network: Histogram,
    /// From the watch event's arrival in the router to the change being in
    /// the data plane (queueing in the router plus the apply).
    pub event_to_dataplane: Histogram,
    /// The apply itself: kube-proxy's
    /// `kubeproxy_sync_proxy_rules_duration_seconds`.
    pub apply: Histogram,
}

impl Default for Programming {
    fn default() -> Self {
        Self {
            network: Histogram::new(buckets()),
            event_to_dataplane: Histogram::new(buckets()),
            apply: Histogram::new(buckets()),
        }
    }
}

impl Programming {
    /// Records one applied change: how long the apply took, how long since
    /// its watch event arrived, and (when the object carries one) since its
    /// trigger time.
    pub fn observe(&self, apply: Duration, since_event: Duration, since_trigger: Option<Duration>) {
        self.apply.observe(apply.as_secs_f64());
        self.event_to_dataplane.observe(since_event.as_secs_f64());
        if let Some(t) = since_trigger {
            self.network.observe(t.as_secs_f64());
        }
    }
}
