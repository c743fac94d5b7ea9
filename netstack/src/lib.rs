//! What pods serve, in userspace: the HTTP, UDP and DNS responders and the
//! in-process hosts that run them.
//!
//! The library is sans-IO: no sockets, threads or clock reads. Time comes in
//! as `std::time::Instant` arguments and is converted to smoltcp time in
//! [`time`] only. Clients (HTTP requests, pings...) are not here: the
//! simulation crate runs them on a host's sockets; the `pod-server` crate
//! runs the responders on real sockets in the lab.
//!
//! - [`device`]: [`device::QueueDevice`], a smoltcp device over packet queues.
//! - [`host`]: [`VirtualHost`], an in-process pod (smoltcp interface + servers).
//! - [`dns`]: the DNS server's handler type and DNS-over-TCP framing.
//! - [`responders`]: the HTTP and UDP answers, shared with `pod-server`.
//! - [`time`]: `std::time::Instant` <-> `smoltcp::time::Instant`.

pub mod device;
pub mod dns;
pub mod host;
pub mod responders;
pub mod time;

pub use dns::{DnsHandler, DnsTransport};
pub use host::{DnsTcpStats, HostConfig, VirtualHost};
