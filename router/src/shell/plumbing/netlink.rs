//! rtnetlink requests for the plumbing: add a rule or route unless it is
//! there, remove one if it is, find the device holding an address, and a
//! socket that hears when a route or rule goes away.
//!
//! Messages come from `netlink-packet-route` (the rust-netlink project's
//! typed rtnetlink messages, what `rtnetlink` itself is built on) and go
//! over a plain blocking `netlink-sys` socket: the router has no async
//! runtime, and each request is one message and one acknowledgement.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, RawFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{
    RuleAction, RuleAttribute, RuleHeader, RuleMessage, RulePortRange,
};
use netlink_packet_route::{AddressFamily, IpProtocol, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::plan::{Route, Rule, RuleProto};

/// What a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel made the change.
    Changed,
    /// Nothing to do: the rule or route was already there (or, for a
    /// removal, already gone).
    AlreadySo,
}

/// A request socket to the kernel's routing subsystem.
pub struct Rtnl {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    /// Opens a request socket in the current network namespace.
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl {
            socket,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Adds `rule` unless an identical one exists.
    pub fn add_rule(&mut self, rule: &Rule) -> io::Result<Outcome> {
        let msg = RouteNetlinkMessage::NewRule(rule_message(rule));
        self.request(msg, NLM_F_CREATE | NLM_F_EXCL, libc::EEXIST)
    }

    /// Removes `rule` if it exists.
    pub fn remove_rule(&mut self, rule: &Rule) -> io::Result<Outcome> {
        let msg = RouteNetlinkMessage::DelRule(rule_message(rule));
        self.request(msg, 0, libc::ENOENT)
    }

    /// Adds `route` (with the TUN's `ifindex` for a device route) unless it
    /// exists.
    pub fn add_route(&mut self, route: &Route, ifindex: Option<u32>) -> io::Result<Outcome> {
        let Some(msg) = route_message(route, ifindex) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the route's device does not exist",
            ));
        };
        let msg = RouteNetlinkMessage::NewRoute(msg);
        self.request(msg, NLM_F_CREATE | NLM_F_EXCL, libc::EEXIST)
    }

    /// The name of the device that holds `addr`, if any.
    pub fn device_with_address(&mut self, addr: Ipv4Addr) -> io::Result<Option<String>> {
        let mut query = AddressMessage::default();
        query.header.family = AddressFamily::Inet;
        let mut found = None;
        self.dump(RouteNetlinkMessage::GetAddress(query), |msg| {
            if let RouteNetlinkMessage::NewAddress(a) = msg {
                let has = a.attributes.iter().any(|at| {
                    matches!(at, AddressAttribute::Local(IpAddr::V4(ip)) | AddressAttribute::Address(IpAddr::V4(ip)) if *ip == addr)
                });
                if has && found.is_none() {
                    found = a.attributes.iter().find_map(|at| match at {
                        AddressAttribute::Label(l) => Some(l.clone()),
                        _ => None,
                    });
                }
            }
        })?;
        Ok(found)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&mut self, payload: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        let seq = self.next_seq();
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(payload));
        msg.finalize();
        let mut out = vec![0; msg.buffer_len()];
        msg.serialize(&mut out);
        self.socket.send(&out, 0)?;
        Ok(seq)
    }

    /// Sends one change and waits for its acknowledgement; `benign` is the
    /// errno that means "already so" (EEXIST for an add, ENOENT for a
    /// removal).
    fn request(
        &mut self,
        payload: RouteNetlinkMessage,
        flags: u16,
        benign: i32,
    ) -> io::Result<Outcome> {
        let seq = self.send(payload, flags | NLM_F_ACK)?;
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == seq {
                    if let NetlinkPayload::Error(e) = msg.payload {
                        return match e.code.map(|c| -c.get()) {
                            None => Ok(Outcome::Changed),
                            Some(code) if code == benign => Ok(Outcome::AlreadySo),
                            Some(code) => Err(io::Error::from_raw_os_error(code)),
                        };
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }

    /// Sends a dump request and hands every answer to `each`.
    fn dump(
        &mut self,
        payload: RouteNetlinkMessage,
        mut each: impl FnMut(RouteNetlinkMessage),
    ) -> io::Result<()> {
        let seq = self.send(payload, NLM_F_DUMP)?;
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == seq {
                    match msg.payload {
                        NetlinkPayload::Done(_) => return Ok(()),
                        NetlinkPayload::Error(e) => {
                            let code = e.code.map_or(libc::EIO, |c| -c.get());
                            return Err(io::Error::from_raw_os_error(code));
                        }
                        NetlinkPayload::InnerMessage(inner) => each(inner),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}

/// A socket subscribed to the kernel's route, rule and link notifications:
/// readable when something changed that the plumbing may have to restore.
pub struct Watch {
    socket: Socket,
    buf: Vec<u8>,
}

impl Watch {
    /// Subscribes (non-blocking) in the current network namespace.
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        for group in [
            libc::RTNLGRP_LINK,
            libc::RTNLGRP_IPV4_ROUTE,
            libc::RTNLGRP_IPV4_RULE,
        ] {
            socket.add_membership(group)?;
        }
        socket.set_non_blocking(true)?;
        Ok(Watch {
            socket,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Reads every pending notification; returns whether any removed a
    /// route, rule or link (or notifications were lost), i.e. whether the
    /// plumbing must be checked.
    pub fn drain(&mut self) -> bool {
        let mut removed = false;
        loop {
            let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return removed,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ENOBUFS: the kernel dropped notifications; assume the worst.
                Err(_) => return true,
            };
            let mut offset = 0;
            while offset < n {
                let Ok(msg) =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..n])
                else {
                    return true;
                };
                let len = msg.header.length as usize;
                if let NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::DelRoute(_)
                    | RouteNetlinkMessage::DelRule(_)
                    | RouteNetlinkMessage::DelLink(_)
                    | RouteNetlinkMessage::NewLink(_),
                ) = msg.payload
                {
                    removed = true;
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}

impl AsRawFd for Watch {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

fn rule_message(rule: &Rule) -> RuleMessage {
    let mut msg = RuleMessage::default();
    msg.header = RuleHeader {
        family: AddressFamily::Inet,
        dst_len: rule.to.map_or(0, |n| n.prefix_len()),
        src_len: rule.from.map_or(0, |n| n.prefix_len()),
        // Tables above 255 only fit the attribute; the header says 0 then.
        table: u8::try_from(rule.table).unwrap_or(0),
        action: RuleAction::ToTable,
        ..Default::default()
    };
    let mut attrs = vec![
        RuleAttribute::Priority(rule.pref),
        RuleAttribute::Table(rule.table),
    ];
    if let Some(iif) = &rule.iif {
        attrs.push(RuleAttribute::Iifname(iif.clone()));
    }
    if let Some(from) = rule.from {
        attrs.push(RuleAttribute::Source(IpAddr::V4(from.network())));
    }
    if let Some(to) = rule.to {
        attrs.push(RuleAttribute::Destination(IpAddr::V4(to.network())));
    }
    if let Some((proto, lo, hi)) = rule.dport {
        attrs.push(RuleAttribute::IpProtocol(match proto {
            RuleProto::Tcp => IpProtocol::Tcp,
            RuleProto::Udp => IpProtocol::Udp,
        }));
        attrs.push(RuleAttribute::DestinationPortRange(RulePortRange {
            start: lo,
            end: hi,
        }));
    }
    msg.attributes = attrs;
    msg
}

/// `None` for a device route whose device has no index (does not exist).
fn route_message(route: &Route, ifindex: Option<u32>) -> Option<RouteMessage> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet;
    msg.header.destination_prefix_length = route.dst.prefix_len();
    msg.header.table = u8::try_from(route.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    msg.header.protocol = RouteProtocol::Static;
    let mut attrs = vec![RouteAttribute::Table(route.table)];
    if route.dst.prefix_len() > 0 {
        attrs.push(RouteAttribute::Destination(RouteAddress::Inet(
            route.dst.network(),
        )));
    }
    match (&route.dev, ifindex) {
        (Some(_), Some(index)) => {
            msg.header.scope = RouteScope::Link;
            msg.header.kind = RouteType::Unicast;
            attrs.push(RouteAttribute::Oif(index));
        }
        (Some(_), None) => return None,
        (None, _) => {
            msg.header.scope = RouteScope::Universe;
            msg.header.kind = RouteType::Unreachable;
        }
    }
    if route.metric > 0 {
        attrs.push(RouteAttribute::Priority(route.metric));
    }
    msg.attributes = attrs;
    Some(msg)
}
