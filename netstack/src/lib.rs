//! Userspace network endpoints for the router's pods.
//!
//! The library is sans-IO: no sockets, threads or clock reads. Time comes in
//! as `std::time::Instant` arguments and is converted to smoltcp time in
//! [`time`] only.
//!
//! - [`device`]: [`device::QueueDevice`], a smoltcp device over packet queues.
//! - [`host`]: [`VirtualHost`], an in-process pod (smoltcp interface + servers + clients).
//! - [`dns`]: the DNS server's handler type and DNS-over-TCP framing.
//! - [`responders`]: the HTTP and UDP answers, shared with the `pod-server` binary.
//! - [`time`]: `std::time::Instant` <-> `smoltcp::time::Instant`.

pub mod device;
pub mod dns;
pub mod host;
pub mod responders;
pub mod time;

pub use dns::{DnsHandler, DnsTcpOutcome, DnsTransport};
pub use host::{ClientId, HostConfig, HttpOutcome, VirtualHost};
