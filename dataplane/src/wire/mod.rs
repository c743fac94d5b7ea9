//! Packet bytes: parsing, rewriting in place, and the packets the router
//! builds itself.
//!
//! - [`packet`]: IPv4 views (parse once into a [`packet::Parsed`], rewrite
//!   addresses and ports in place);
//! - [`checksum`]: the Internet checksum and its incremental update;
//! - [`buf`]: a packet buffer with headroom for the overlay header;
//! - [`ip`]: IPv4 and UDP header emission (smoltcp's `Ipv4Repr`/`UdpRepr`),
//!   the one place headers are written from scratch;
//! - [`offload`]: TUN offload metadata (partial checksums, super-packets)
//!   and software segmentation;
//! - [`gro`]: coalescing the TCP segments written to the TUN device into
//!   super-packets;
//! - [`reject`]: generated answers (TCP RST, ICMP errors).
//!
//! Nothing outside this module names a smoltcp wire type.

pub mod buf;
pub mod checksum;
pub mod gro;
pub mod ip;
pub mod offload;
pub mod packet;
pub mod reject;
