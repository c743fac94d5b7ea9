//! Property tests of the connection tracking table, through its public API:
//! under random sequences of inserts (with and without NAT, clashing or
//! not), packets, removals, time passing and sweeps,
//!
//! - both tuples of every live entry index that entry, with the right
//!   direction, and a removed entry's tuples index nothing;
//! - the capacity bound is never exceeded; a refused insert is a clash
//!   with a tracked tuple, or a full table whose entries all saw a reply
//!   (anything else is made room for by evicting an unreplied entry);
//! - an entry expires at its state's timeout: alive 1 s before, gone 1 s
//!   after, both by lookup and by the sweep.

// Tests need a starting instant; the core itself never reads the clock.
#![allow(clippy::disallowed_methods)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dataplane::conntrack::{ConnTrack, Direction, EntryId, InsertError, Timeouts};
use dataplane::packet::{FlowKey, TcpFlags, Transport, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use proptest::prelude::*;

const SECOND: Duration = Duration::from_secs(1);

fn tcp(syn: bool, ack: bool, fin: bool, rst: bool) -> Transport {
    Transport::Tcp {
        flags: TcpFlags { syn, ack, fin, rst },
        seq: 0,
        ack: 0,
        seg_len: 0,
    }
}

/// A tuple from a small space, so that clashes happen.
fn key() -> impl Strategy<Value = FlowKey> {
    (
        prop::sample::select(vec![PROTO_TCP, PROTO_UDP, PROTO_ICMP]),
        0u8..4,
        0u8..4,
        0u16..4,
        0u16..3,
    )
        .prop_filter("two ends", |(_, s, d, _, _)| s != d)
        .prop_map(|(proto, s, d, sport, dport)| FlowKey {
            proto,
            src: Ipv4Addr::new(10, 10, 1, s),
            dst: Ipv4Addr::new(10, 96, 0, d),
            sport: 40000 + sport,
            dport: 80 + dport,
        })
}

fn transport(proto: u8) -> impl Strategy<Value = Transport> {
    any::<(bool, bool, bool, bool)>().prop_map(move |(syn, ack, fin, rst)| match proto {
        PROTO_TCP => tcp(syn, ack, fin, rst),
        PROTO_UDP => Transport::Udp,
        _ => Transport::IcmpEcho { request: !ack },
    })
}

#[derive(Debug, Clone)]
enum Op {
    /// Track `original`; DNAT its destination to endpoint `nat` (a pod)
    /// when given, else no NAT.
    Insert {
        original: FlowKey,
        nat: Option<u8>,
        transport: Transport,
    },
    /// A packet of the `n`th live entry (modulo), in a direction.
    Packet {
        n: usize,
        reply: bool,
        transport: Transport,
    },
    /// Remove the `n`th live entry (modulo).
    Remove(usize),
    /// Time passes.
    Advance(Duration),
    /// Run every sweep batch that is due.
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => key().prop_flat_map(|k| (Just(k), prop::option::of(0u8..4), transport(k.proto)))
            .prop_map(|(original, nat, transport)| Op::Insert { original, nat, transport }),
        3 => (any::<usize>(), any::<bool>(), transport(PROTO_TCP))
            .prop_map(|(n, reply, transport)| Op::Packet { n, reply, transport }),
        1 => any::<usize>().prop_map(Op::Remove),
        2 => (0u64..200).prop_map(|s| Op::Advance(Duration::from_secs(s))),
        1 => Just(Op::Sweep),
    ]
}

/// Short timeouts, so entries expire within a sequence.
fn timeouts() -> Timeouts {
    let s = Duration::from_secs;
    Timeouts {
        tcp_syn_sent: s(120),
        tcp_syn_recv: s(60),
        tcp_established: s(300),
        tcp_fin_wait: s(120),
        tcp_close_wait: s(200),
        tcp_last_ack: s(30),
        tcp_time_wait: s(120),
        tcp_close: s(10),
        udp: s(30),
        udp_stream: s(120),
        icmp: s(30),
    }
}

fn live(ct: &ConnTrack) -> Vec<(EntryId, FlowKey, FlowKey, bool, Instant)> {
    ct.iter()
        .map(|(id, e)| (id, e.original, e.reply, e.replied, e.expires))
        .collect()
}

/// Both tuples of every live, unexpired entry find it, with the direction
/// they stand for; the count and the bound hold.
fn check_index(ct: &mut ConnTrack, now: Instant) -> Result<(), TestCaseError> {
    let entries = live(ct);
    prop_assert_eq!(entries.len(), ct.len());
    prop_assert!(
        ct.len() <= ct.capacity(),
        "{} > {}",
        ct.len(),
        ct.capacity()
    );
    for (id, original, reply, _, expires) in entries {
        prop_assert!(ct.contains(&original) && ct.contains(&reply));
        if expires > now {
            prop_assert_eq!(ct.lookup(&original, now), Some((id, Direction::Original)));
            prop_assert_eq!(ct.lookup(&reply, now), Some((id, Direction::Reply)));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // Integration tests have no lib.rs beside them to persist failures
        // next to; a failure prints its minimal case.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn index_and_bound_hold(
        capacity in 1usize..8,
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..64),
    ) {
        let mut ct = ConnTrack::new(capacity, timeouts(), seed);
        let mut now = Instant::now();
        for op in ops {
            match op {
                Op::Insert { original, nat, transport } => {
                    let reply = match nat {
                        Some(pod) => FlowKey {
                            src: Ipv4Addr::new(10, 10, 0, pod),
                            ..original.reversed()
                        },
                        None => original.reversed(),
                    };
                    let clash = ct.contains(&original) || ct.contains(&reply);
                    let (len, evicted) = (ct.len(), ct.evicted());
                    // A new SYN past the half-open share may make room early.
                    let half_open_full = ct.half_open() >= ct.max_half_open();
                    match ct.insert(original, reply, &transport, now) {
                        Ok(id) => {
                            prop_assert!(!clash, "inserted over a tracked tuple");
                            prop_assert_eq!(ct.lookup(&original, now), Some((id, Direction::Original)));
                            prop_assert_eq!(ct.lookup(&reply, now), Some((id, Direction::Reply)));
                            let made_room = ct.evicted() - evicted;
                            prop_assert_eq!(ct.len(), len + 1 - made_room as usize);
                            prop_assert!(
                                made_room == 0 || len == capacity || half_open_full,
                                "evicted below the bound with room for half-open flows"
                            );
                            prop_assert!(ct.half_open() <= ct.max_half_open());
                        }
                        Err(InsertError::Clash) => prop_assert!(clash, "clash without a tracked tuple"),
                        Err(InsertError::Full(_)) => {
                            prop_assert!(!clash);
                            prop_assert_eq!(ct.len(), capacity);
                            prop_assert!(
                                ct.iter().all(|(_, e)| e.is_assured()),
                                "full with an unassured entry to evict"
                            );
                        }
                    }
                }
                Op::Packet { n, reply, transport } => {
                    let entries = live(&ct);
                    if !entries.is_empty() {
                        let (id, original, _, _, _) = entries[n % entries.len()];
                        let (dir, transport) = match (original.proto, reply) {
                            (PROTO_TCP, _) => (if reply { Direction::Reply } else { Direction::Original }, transport),
                            (PROTO_UDP, r) => (if r { Direction::Reply } else { Direction::Original }, Transport::Udp),
                            (_, r) => (if r { Direction::Reply } else { Direction::Original }, Transport::IcmpEcho { request: !r }),
                        };
                        ct.update(id, dir, &transport, 100, now);
                        let e = ct.get(id).map(|e| (e.replied, e.expires));
                        prop_assert!(e.is_some_and(|(_, exp)| exp > now), "a packet refreshes the entry");
                        if dir == Direction::Reply {
                            prop_assert!(e.is_some_and(|(r, _)| r));
                        }
                    }
                }
                Op::Remove(n) => {
                    let entries = live(&ct);
                    if !entries.is_empty() {
                        let (id, original, reply, _, _) = entries[n % entries.len()];
                        let e = ct.remove(id);
                        prop_assert!(e.is_some_and(|e| e.original == original && e.reply == reply));
                        prop_assert!(!ct.contains(&original) && !ct.contains(&reply));
                        prop_assert!(ct.remove(id).is_none(), "removed twice");
                    }
                }
                Op::Advance(d) => now += d,
                Op::Sweep => {
                    while ct.poll_timeout().is_some_and(|t| t <= now) {
                        ct.handle_timeout(now);
                    }
                    prop_assert!(live(&ct).iter().all(|e| e.4 > now), "the sweep left an expired entry");
                }
            }
            check_index(&mut ct, now)?;
        }
    }

    /// Each state's timeout, from a random set of timeouts: an entry lives
    /// until its timeout and not 1 s longer, found by lookup or swept.
    #[test]
    fn expiry_at_the_timeout(
        original in key(),
        secs in prop::collection::vec(2u64..200_000, 11),
        syn in any::<bool>(),
        replied in any::<bool>(),
        by_sweep in any::<bool>(),
    ) {
        let s = |i: usize| Duration::from_secs(secs[i]);
        let t = Timeouts {
            tcp_syn_sent: s(0), tcp_syn_recv: s(1), tcp_established: s(2),
            tcp_fin_wait: s(3), tcp_close_wait: s(4), tcp_last_ack: s(5),
            tcp_time_wait: s(6), tcp_close: s(7), udp: s(8), udp_stream: s(9), icmp: s(10),
        };
        // A TCP flow starts with a SYN, or is picked up mid-connection.
        let transport = match original.proto {
            PROTO_TCP => tcp(syn, !syn, false, false),
            PROTO_UDP => Transport::Udp,
            _ => Transport::IcmpEcho { request: true },
        };
        let syn_only = original.proto == PROTO_TCP && syn;
        let mut ct = ConnTrack::new(16, t, 1);
        let t0 = Instant::now();
        let id = ct.insert(original, original.reversed(), &transport, t0).map_err(|e| TestCaseError::fail(e.to_string()))?;
        ct.update(id, Direction::Original, &transport, 60, t0);
        // The reply, if any: a SYN-ACK to a SYN, else the same kind.
        let answer = match transport {
            Transport::Tcp { .. } if syn_only => tcp(true, true, false, false),
            Transport::Tcp { .. } => tcp(false, true, false, false),
            Transport::IcmpEcho { .. } => Transport::IcmpEcho { request: false },
            other => other,
        };
        if replied {
            ct.update(id, Direction::Reply, &answer, 60, t0);
        }
        let ttl = match original.proto {
            PROTO_TCP if syn_only && replied => t.tcp_syn_recv,
            PROTO_TCP if syn_only => t.tcp_syn_sent,
            PROTO_TCP => t.tcp_established,
            PROTO_UDP if replied => t.udp_stream,
            PROTO_UDP => t.udp,
            _ => t.icmp,
        };
        prop_assert_eq!(ct.get(id).map(|e| e.expires), Some(t0 + ttl), "{:?}", ct.get(id));
        let alive_at = |ct: &mut ConnTrack, at: Instant| {
            if by_sweep {
                while ct.poll_timeout().is_some_and(|t| t <= at) {
                    ct.handle_timeout(at);
                }
                ct.contains(&original)
            } else {
                ct.lookup(&original, at).is_some()
            }
        };
        prop_assert!(alive_at(&mut ct, t0 + ttl - SECOND), "gone 1 s before its timeout");
        prop_assert!(!alive_at(&mut ct, t0 + ttl + SECOND), "alive 1 s after its timeout");
        prop_assert!(!ct.contains(&original.reversed()) && ct.is_empty());
    }
}
