//! The decision: conntrack first (a tracked flow keeps its rewrite), then
//! for a new flow the Service table (DNAT to an endpoint, masquerade where
//! kube-proxy does, or reject / drop). The result is a value: the
//! [`Translation`] to apply, if any, or the [`DropReason`]. Nothing here
//! writes the packet; generated answers (RST, ICMP) are queued.

use std::time::Instant;

use log::{debug, trace};

use super::Dataplane;
use crate::conntrack::{Direction, EntryId, InsertError, TcpState};
use crate::nat::{self, Translation};
use crate::service::{Frontend, ServiceLookup};
use crate::stats::DropReason;
use crate::wire::packet::{FlowKey, Parsed, Transport, PROTO_TCP, PROTO_UDP};
use crate::wire::reject;
use cluster::TrafficPolicy;

/// An ICMP error looked up in conntrack (RELATED, in conntrack's words).
enum Related {
    /// It quotes no tracked flow.
    Untracked,
    /// It quotes a tracked flow; the translation, if the flow is NATed.
    Tracked(Option<Translation>),
}

impl Dataplane {
    /// Decides packet `p` (`packet` holds its bytes, for generated
    /// answers that quote it): `Ok(Some(_))` forward it rewritten,
    /// `Ok(None)` forward it as it is.
    pub(super) fn decide(
        &mut self,
        now: Instant,
        p: &Parsed,
        packet: &[u8],
    ) -> Result<Option<Translation>, DropReason> {
        match p.transport {
            Transport::Tcp { .. } | Transport::Udp | Transport::IcmpEcho { .. } => {}
            Transport::IcmpError { inner } => {
                if let Related::Tracked(nat) = self.related(now, p, &inner) {
                    return Ok(nat);
                }
                return self.untracked(p);
            }
            Transport::Other => return self.untracked(p),
        }
        if let Some((id, dir)) = self.conntrack.lookup(&p.key, now) {
            // A new connection reusing the tuple of one that has closed (a
            // SYN on TIME_WAIT or CLOSE, as the kernel's conntrack treats
            // it): forget the old flow and decide afresh, so it does not
            // inherit an endpoint that may be gone.
            let syn =
                matches!(p.transport, Transport::Tcp { flags, .. } if flags.syn && !flags.ack);
            let closed = self
                .conntrack
                .get(id)
                .and_then(|e| e.tcp)
                .is_some_and(|s| matches!(s, TcpState::TimeWait | TcpState::Close));
            if syn && closed && dir == Direction::Original {
                self.conntrack.remove(id);
                return self.new_flow(now, p, packet);
            }
            return Ok(self.seen(id, dir, p, now));
        }
        self.new_flow(now, p, packet)
    }

    /// Untracked packets (other protocols, ICMP errors about unknown
    /// flows): routed as they are, except to Service IPs.
    fn untracked(&mut self, p: &Parsed) -> Result<Option<Translation>, DropReason> {
        match self.services.lookup(&p.key) {
            ServiceLookup::NotServiceIp => {
                self.stats.untracked += 1;
                Ok(None)
            }
            ServiceLookup::NoSuchServiceIp => Err(DropReason::NoSuchServiceIp),
            _ => Err(DropReason::IcmpToServiceIp),
        }
    }

    /// Records packet `p` on entry `id` and returns its rewrite.
    fn seen(
        &mut self,
        id: EntryId,
        dir: Direction,
        p: &Parsed,
        now: Instant,
    ) -> Option<Translation> {
        self.conntrack.update(id, dir, &p.transport, p.len, now);
        let to = self.conntrack.get(id)?.translated(dir);
        (to != p.key).then_some(Translation::Flow { to })
    }

    fn new_flow(
        &mut self,
        now: Instant,
        p: &Parsed,
        packet: &[u8],
    ) -> Result<Option<Translation>, DropReason> {
        let key = p.key;
        let rst = matches!(p.transport, Transport::Tcp { flags, .. } if flags.rst);
        let translated = match self.services.lookup(&key) {
            // A RST of an unknown connection: pass it, track nothing.
            ServiceLookup::NotServiceIp if rst => return Ok(None),
            ServiceLookup::NotServiceIp => key,
            ServiceLookup::NoSuchServiceIp => return Err(DropReason::NoSuchServiceIp),
            ServiceLookup::Icmp => return Err(DropReason::IcmpToServiceIp),
            ServiceLookup::PortNotServed => {
                self.reject(p, packet);
                return Err(DropReason::ServicePortNotServed);
            }
            ServiceLookup::Port(_) if rst => return Err(DropReason::UntrackedServiceSegment),
            ServiceLookup::Port(sp) => {
                let affinity_key = (key.src, key.dst, key.dport, key.proto);
                let pinned = sp.affinity.and_then(|_| {
                    self.affinity
                        .get(&affinity_key, now)
                        .filter(|ep| sp.has_endpoint(*ep))
                });
                let Some(endpoint) = pinned.or_else(|| sp.pick(&key)) else {
                    if sp.local_only {
                        // kube-proxy drops, so that an external load balancer's
                        // health check moves traffic to a node that has one.
                        return Err(DropReason::NoLocalEndpoints);
                    }
                    debug!("rejected {key}: service {} has no endpoints", sp.name);
                    self.reject(p, packet);
                    return Err(DropReason::NoEndpoints);
                };
                let mut to = FlowKey {
                    dst: *endpoint.ip(),
                    dport: endpoint.port(),
                    ..key
                };
                let masquerade = match sp.frontend {
                    // Hairpin: the pod reaches itself through its Service (its
                    // reply would stay inside the pod, bypassing the un-DNAT)
                    // and traffic from the node itself, whose reply would be
                    // delivered locally.
                    Frontend::ClusterIp => {
                        to.dst == key.src || self.topology.needs_masquerade(key.src)
                    }
                    // Replies must come back through this node to be un-NATed.
                    Frontend::External(TrafficPolicy::Cluster) => true,
                    // The client's address is kept; the endpoint is local.
                    Frontend::External(TrafficPolicy::Local) => to.dst == key.src,
                };
                if masquerade {
                    to.src = self.topology.masquerade_ip;
                }
                trace!("{key} -> service {} endpoint {endpoint}", sp.name);
                if let Some(timeout) = sp.affinity {
                    self.affinity.pin(affinity_key, endpoint, now, timeout);
                }
                to
            }
        };
        let id = self.track(key, translated, &p.transport, now)?;
        Ok(self.seen(id, Direction::Original, p, now))
    }

    /// An ICMP error about a tracked flow: the translation that makes the
    /// quoted packet read as what its sender sent, and the error's
    /// addresses match.
    fn related(&mut self, now: Instant, p: &Parsed, inner: &FlowKey) -> Related {
        // The quoted packet was sent after NAT, so its reverse is one of the
        // entry's pre-NAT tuples: the reply tuple if the quoted packet went in
        // the original direction, the original tuple if it was a reply.
        let Some((id, hit)) = self.conntrack.lookup(&inner.reversed(), now) else {
            return Related::Untracked;
        };
        let Some(entry) = self.conntrack.get(id) else {
            return Related::Untracked;
        };
        let restored = match hit {
            Direction::Reply => entry.original,
            Direction::Original => entry.reply,
        };
        // The error goes back to the quoted packet's sender; if the quoted
        // packet's destination itself sent it, it comes from what the sender
        // addressed (e.g. the ClusterIP).
        let src = if p.key.src == inner.dst {
            restored.dst
        } else {
            p.key.src
        };
        let dst = restored.src;
        let changed = restored != *inner || src != p.key.src || dst != p.key.dst;
        Related::Tracked(changed.then_some(Translation::IcmpError {
            quoted: *inner,
            restored,
            src,
            dst,
        }))
    }

    /// Inserts a flow whose packets are rewritten from `original` to
    /// `translated`. If the reply tuple is already taken by another flow, the
    /// source port is rewritten to a free one, so two flows never share a
    /// reply tuple.
    fn track(
        &mut self,
        original: FlowKey,
        translated: FlowKey,
        transport: &Transport,
        now: Instant,
    ) -> Result<EntryId, DropReason> {
        let candidates = std::iter::once(translated).chain(
            nat::source_ports(&original).map(|port| nat::with_source_port(translated, port)),
        );
        for candidate in candidates {
            match self
                .conntrack
                .insert(original, candidate.reversed(), transport, now)
            {
                Ok(id) => {
                    self.stats.flows_created += 1;
                    self.stats.flows_evicted = self.conntrack.evicted();
                    return Ok(id);
                }
                Err(InsertError::Full(_)) => {
                    self.stats.flows_evicted = self.conntrack.evicted();
                    return Err(DropReason::ConntrackFull);
                }
                Err(InsertError::Clash) if self.conntrack.contains(&original) => {
                    return Err(DropReason::NatPortsExhausted);
                }
                Err(InsertError::Clash) => {}
            }
        }
        // The bounded search found no free port (conntrack -S insert_failed).
        Err(DropReason::NatPortsExhausted)
    }

    /// Answers `p` the way kube-proxy's REJECT does: TCP gets a RST, UDP an
    /// ICMP port unreachable.
    fn reject(&mut self, p: &Parsed, packet: &[u8]) {
        let answer = match p.key.proto {
            PROTO_TCP => reject::tcp_rst(p),
            PROTO_UDP => Some(reject::icmp_port_unreachable(packet, p)),
            _ => None,
        };
        if let Some(answer) = answer {
            self.emit(p.key.src, answer);
        }
    }
}
