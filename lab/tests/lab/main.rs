//! The lab's checks, each its own `#[test]`, on one lab shared by this
//! test binary (see `lab::session`): one check at a time, each with a
//! fresh view of the cluster. The checks that change the cluster put it
//! back as they found it (a deleted pod is replaced by the Deployment), so
//! they can run in any order.

mod cluster_ip;
mod dns;
mod live_cluster;
mod metrics;
mod node_port;
mod offload;
mod overlay;
mod service_features;
mod spoofing;
