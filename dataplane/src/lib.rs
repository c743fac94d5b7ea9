//! `dataplane`: the sans-IO core of the Kubernetes-Service router.
//!
//! Bytes and a timestamp in, a verdict and rewritten bytes out: no syscalls,
//! clocks, threads or files (this crate's Cargo.toml has no I/O crates, and
//! its `clippy.toml` forbids clocks, threads and `std::fs`). The router
//! binary's shell and the in-process simulation drive the same code.
//!
//! - [`node::Node`] (what the shell drives) = [`engine::Dataplane`] plus
//!   the pods the router serves in process (the cluster [`dns`]);
//! - the data plane is built from [`packet`] and [`checksum`] (parse,
//!   rewrite in place), [`buf`] (a packet with headroom), [`conntrack`],
//!   [`service`] and [`affinity`] (Service frontends, endpoint choice),
//!   [`route`] and [`overlay`] (this node, its peers, VXLAN), [`reject`]
//!   (generated answers) and [`stats`].

// Unit tests need a starting instant; the library itself never reads the
// clock (checked by clippy.toml in the non-test build, which CI also lints).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod affinity;
pub mod conntrack;
pub mod dns;
pub mod engine;
pub mod nat;
pub mod node;
pub mod overlay;
pub mod route;
pub mod service;
pub mod stats;
pub mod wire;

// The wire modules most code names, at their short paths
// (`dataplane::packet::parse`, `crate::packet::FlowKey`).
pub use wire::{buf, checksum, packet};

// hickory-proto's no-std RNG slot needs a critical-section implementation
// linked in; std's is the one (see the workspace Cargo.toml).
use critical_section as _;

pub use engine::{Dataplane, DataplaneConfig, Egress, Ingress, Verdict};
pub use node::Node;
