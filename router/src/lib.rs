//! `router`: a userspace Kubernetes-Service router on a TUN device.
//!
//! The crate is split the way smoltcp and quinn split theirs:
//!
//! - a sans-IO core that decides what happens to every packet:
//!   [`node::Node`] (what the shell drives) = [`dataplane::Dataplane`] plus
//!   the pods the router serves in process (the cluster [`dns`]); the data
//!   plane is built from [`packet`] and [`checksum`] (parse, rewrite in
//!   place), [`buf`] (a packet with headroom), [`conntrack`], [`service`]
//!   and [`affinity`] (Service frontends, endpoint choice), [`route`] and
//!   [`overlay`] (this node, its peers, VXLAN), [`reject`] (generated
//!   answers) and [`stats`];
//! - the cluster model it serves: [`cluster`], loaded, validated and
//!   changed by [`config`], shown kubectl's way by [`render`];
//! - a thin shell that owns the TUN device, the overlay socket, the control
//!   socket, the cluster store and the clock: [`io`], with [`control`] the
//!   protocol the CLI speaks. Only `io` makes syscalls.

pub mod affinity;
pub mod buf;
pub mod checksum;
pub mod cluster;
pub mod config;
pub mod conntrack;
pub mod control;
pub mod dataplane;
pub mod dns;
pub mod io;
pub mod node;
pub mod overlay;
pub mod packet;
pub mod reject;
pub mod render;
pub mod route;
pub mod service;
pub mod stats;
