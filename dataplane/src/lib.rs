//! `dataplane`: the sans-IO core of the Kubernetes-Service router.
//!
//! Bytes and a timestamp in, a verdict and rewritten bytes out: no syscalls,
//! clocks, threads or files (this crate's Cargo.toml has no I/O crates, and
//! its `clippy.toml` forbids clocks, threads and `std::fs`). The router
//! binary's shell and the in-process simulation drive the same code.
//!
//! The map, one room per concern:
//!
//! - [`node::Node`] (what the shell drives) = [`engine::Dataplane`] plus
//!   the pods the router serves in process (the cluster [`dns`]); the
//!   `handle_packet` / `poll_*` contract is documented in [`engine`];
//! - [`engine`]: one packet's path, a file per step: `ingress` (parse once,
//!   refuse impossible sources; from the TUN device, the overlay, a hosted
//!   pod), `flow` (decide once: conntrack, Services, rejects), `egress`
//!   (next hop, overlay MTU, encapsulation, generated packets);
//! - [`nat`]: the decided rewrite as a value ([`nat::Translation`]), applied
//!   once in place, reporting what it changed;
//! - [`wire`]: bytes: [`packet`] views and in-place rewrites, [`checksum`],
//!   [`buf`] (a packet with headroom), [`wire::ip`] (the one IPv4/UDP header
//!   writer), [`wire::reject`] (TCP RST, ICMP errors);
//! - [`conntrack`]: the flow table (both tuples, TCP states, timeouts,
//!   early drop) and [`conntrack::FlowRecord`], an entry as the CLI lists it;
//! - [`model`]: the cluster objects a node serves, indexed by key, and
//!   what one watch event touches (so a change costs what it touches);
//! - [`service`] and [`affinity`]: Service frontends and endpoint choice
//!   (Maglev, `sessionAffinity: ClientIP`);
//! - [`route`] and [`overlay`]: this node, its peers, VXLAN framing;
//! - [`splitmix`]: the deterministic pseudo-random streams behind the port
//!   search and Maglev (the core has no random source);
//! - [`stats`]: counters and drop reasons.
//!
//! Unit tests live beside the code they test (`foo/tests.rs`).

// Unit tests need a starting instant; the library itself never reads the
// clock (checked by clippy.toml in the non-test build, which CI also lints).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod affinity;
pub mod conntrack;
pub mod dns;
pub mod engine;
pub mod model;
pub mod nat;
pub mod node;
pub mod overlay;
pub mod route;
pub mod service;
pub mod splitmix;
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
