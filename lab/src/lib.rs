//! The lab tests' harness: the router binaries in network namespaces with
//! real kernels and real clients (curl, ping, dig, socat, tshark).
//!
//! `scripts/lab up --capture` builds the two nodes of `config.toml` out of
//! network namespaces (one per node running `router run` on a TUN device,
//! the nodes joined by a bridged underlay and the routers' VXLAN overlay,
//! and an external client on the underlay), starts the lab's Kubernetes
//! API server and one kubelet per node, and applies `lab/manifests/*.yaml`
//! with kubectl (one namespace per pod running `pod-server`); the routers
//! watch the API. The checks in `tests/` then check what a Kubernetes user
//! would, each its own `#[test]`, changing the cluster with `kubectl apply`
//! and `kubectl delete` ([`kubectl`]):
//!
//! - `tests/lab/` (one test binary, one lab, one check at a time):
//!   `cluster_ip` (load balancing across both nodes, client IP
//!   preservation, hairpin, conntrack, ICMP to a ClusterIP, Services
//!   without endpoints, UDP Services), `overlay` (pod to pod across nodes
//!   both ways, 1,400-byte pings, the router's ICMP "fragmentation needed",
//!   the routers' own capture of a flow crossing the overlay with
//!   checksums, interop with a plain Linux VXLAN node captured on the
//!   underlay bridge), `node_port` (NodePort with externalTrafficPolicy
//!   Cluster and Local, LoadBalancer and external IPs from outside the
//!   cluster), `spoofing` (a pod sending from an address that is not its
//!   own), `live_cluster` (`kubectl apply/delete`, followed by the routers
//!   and the kubelets: a deleted pod replaced, nginx-svc re-applied as
//!   NodePort, a TCP stream surviving 100 unrelated applies (and how long
//!   an apply takes to reach both routers), a stale UDP flow moving off a
//!   deleted pod, a deleted and re-applied Service, refused applies
//!   changing nothing the routers serve),
//!   `service_features` (sessionAffinity, internalTrafficPolicy Local,
//!   named targetPorts), `dns` (cluster DNS with `dig` and names in
//!   `curl`), `offload` (100 MB from a pod with TSO on, pod to pod on one
//!   node and across nodes, sha256 compared; no bad TCP checksum captured
//!   on the receiving pod's `eth0`; with `KSR_OFFLOAD=off` too);
//! - `tests/fail_closed.rs` (its own lab, as it kills the routers): pod
//!   traffic fails closed when the routers die;
//! - `tests/resilience.rs` (its own lab, as it floods the nodes and kills
//!   the routers): a spoofed SYN flood to a NodePort (the `synflood`
//!   binary of this crate), SIGKILL/SIGTERM of each router under its
//!   supervisor during a stream and a UDP flow, a flushed table 100, failing
//!   overlay sends, a DNS-over-TCP SYN flood, the DNS pod's address spoofed;
//!   each prints what it measured (`--nocapture`);
//! - `tests/kubernetes.rs` (its own lab, the same `scripts/lab up`):
//!   the lab's API server, kubelets and manifests seen with the real
//!   kubectl (nodes and pods Ready, a deleted Deployment pod replaced, the
//!   Services, the kubeconfigs, the API server killed and restarted);
//!   needs root and kubectl and fails without them
//!   ([`session::check_kubernetes`]);
//! - `tests/kubernetes_etcd.rs` (its own lab, `scripts/lab up --etcd`): the
//!   API server on etcd killed and restarted as a new process
//!   ([`session::check_kubernetes_on_etcd`]; needs etcd too).
//!
//! The checks read the objects from the API server with kubectl in JSON
//! ([`objects`]), what the routers serve from the router's CLI in JSON
//! (`router get svc -o json`, `get endpoints -o json`, `get stats -o
//! json`), except where the check is the kubectl-looking text itself (`get
//! svc`, `describe service`, `get conntrack`). See [`session`] for how the
//! lab is shared and torn down.
//!
//! Needs root and `ip`, `curl`, `ping`, `timeout`, `kubectl` (and `socat`,
//! `dig`, `flock`). Without them every check prints `SKIPPED: ...` once per test
//! binary and passes, unless `KSR_LAB_REQUIRED=1`, which turns the skip
//! into a failure (for CI machines that are meant to run it). `tshark`
//! (and `ethtool`, for the kernel VXLAN peer) come from
//! `scripts/install-deps`; without tshark the capture checks fail.
//!
//! Run: `cargo test -p lab -- --nocapture`. `scripts/lab up` builds the
//! release binaries first (`KSR_LAB_SKIP_BUILD=1` skips that);
//! `KSR_LAB_BIN=DIR` and `KSR_LAB_CONFIG=FILE` point it elsewhere.

pub mod checks;
pub mod cluster;
pub mod env;
pub mod flood;
pub mod kubectl;
pub mod objects;
pub mod probes;
pub mod routers;
pub mod session;
pub mod text;
pub mod timed;
pub mod tshark;

pub use checks::Checks;
pub use cluster::Cluster;
pub use session::check;

#[cfg(test)]
mod tests;
