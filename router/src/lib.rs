//! `router`: a userspace Kubernetes-Service router on a TUN device.
//!
//! The crate is split the way smoltcp and quinn split theirs: a sans-IO core
//! that decides what happens to every packet ([`dataplane`], built from
//! [`packet`], [`conntrack`], [`service`], [`reject`]), the cluster model it
//! serves ([`cluster`], loaded by [`config`]), and a thin shell that owns the
//! TUN device, the control socket and the clock ([`io`], [`control`]).
//! Only `io` makes syscalls.

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
