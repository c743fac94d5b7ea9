//! The router's HTTP endpoints, as kube-proxy serves them: `/metrics`
//! (Prometheus text format; kube-proxy's `metricsBindAddress`, default
//! 127.0.0.1:10249) and `/healthz` (its `healthzBindAddress`, 10256).
//!
//! The packet loop owns the counters; a scrape asks it for a snapshot
//! through the same query channel the control socket uses, so nothing on
//! the packet path takes a lock or touches an atomic for metrics. The
//! programming-latency histograms are the exception: the loop observes
//! into them once per applied change, which is rare.

mod encode;
mod programming;
mod server;

pub use programming::Programming;
pub use server::spawn;

#[cfg(test)]
mod tests;
