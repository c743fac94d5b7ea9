use super::*;
use crate::wire::packet::{TcpFlags, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use std::net::Ipv4Addr;

fn key(sport: u16) -> FlowKey {
    FlowKey {
        proto: PROTO_TCP,
        src: Ipv4Addr::new(10, 10, 1, 100),
        dst: Ipv4Addr::new(10, 101, 182, 177),
        sport,
        dport: 80,
    }
}

fn dnat_reply(k: &FlowKey) -> FlowKey {
    FlowKey {
        proto: k.proto,
        src: Ipv4Addr::new(10, 10, 1, 42),
        dst: k.src,
        sport: 80,
        dport: k.sport,
    }
}

fn tcp(syn: bool, ack: bool, fin: bool, rst: bool) -> Transport {
    Transport::Tcp {
        flags: TcpFlags { syn, ack, fin, rst },
        seq: 0,
        ack: 0,
        seg_len: 0,
    }
}

fn table() -> ConnTrack {
    ConnTrack::new(16, Timeouts::default(), 7)
}

#[test]
fn a_flow_that_is_its_own_reply_is_found_and_forgotten() {
    // A socket talking to itself: the same address and port at both ends,
    // so both tuples are one key, which finds the entry as a reply.
    let t0 = Instant::now();
    let mut ct = table();
    let k = FlowKey {
        proto: PROTO_UDP,
        src: Ipv4Addr::new(10, 10, 1, 100),
        dst: Ipv4Addr::new(10, 10, 1, 100),
        sport: 5000,
        dport: 5000,
    };
    assert_eq!(k, k.reversed());
    let id = ct.insert(k, k, &Transport::Udp, t0).expect("insert");
    assert_eq!(ct.lookup(&k, t0), Some((id, Direction::Reply)));
    assert!(ct.remove(id).is_some());
    assert!(!ct.contains(&k));
    assert_eq!(ct.lookup(&k, t0), None);
    assert_eq!(ct.insert(k, k, &Transport::Udp, t0).map(|_| ()), Ok(()));
}

#[test]
fn lookup_both_directions() {
    let t0 = Instant::now();
    let mut ct = table();
    let k = key(40000);
    let id = ct
        .insert(k, dnat_reply(&k), &tcp(true, false, false, false), t0)
        .expect("insert");
    assert_eq!(ct.lookup(&k, t0), Some((id, Direction::Original)));
    assert_eq!(
        ct.lookup(&dnat_reply(&k).reversed().reversed(), t0),
        Some((id, Direction::Reply))
    );
    let e = ct.get(id).expect("entry");
    assert!(e.is_nat());
    assert_eq!(
        e.translated(Direction::Original).dst,
        Ipv4Addr::new(10, 10, 1, 42)
    );
    assert_eq!(
        e.translated(Direction::Reply).src,
        Ipv4Addr::new(10, 101, 182, 177)
    );
}

#[test]
fn tcp_handshake_and_close_transitions() {
    let t0 = Instant::now();
    let mut ct = table();
    let k = key(40001);
    let syn = tcp(true, false, false, false);
    let id = ct.insert(k, dnat_reply(&k), &syn, t0).expect("insert");
    let state = |ct: &ConnTrack| ct.get(id).and_then(|e| e.tcp);
    let steps = [
        (Direction::Original, syn, TcpState::SynSent),
        (
            Direction::Reply,
            tcp(true, true, false, false),
            TcpState::SynRecv,
        ),
        (
            Direction::Original,
            tcp(false, true, false, false),
            TcpState::Established,
        ),
        (
            Direction::Original,
            tcp(false, true, true, false),
            TcpState::FinWait,
        ),
        (
            Direction::Reply,
            tcp(false, true, false, false),
            TcpState::CloseWait,
        ),
        (
            Direction::Reply,
            tcp(false, true, true, false),
            TcpState::LastAck,
        ),
        (
            Direction::Original,
            tcp(false, true, false, false),
            TcpState::TimeWait,
        ),
        (Direction::Original, syn, TcpState::SynSent),
        (
            Direction::Reply,
            tcp(false, false, false, true),
            TcpState::Close,
        ),
    ];
    for (dir, t, want) in steps {
        ct.update(id, dir, &t, 40, t0);
        assert_eq!(state(&ct), Some(want), "after {dir:?} {t:?}");
    }
}

/// Packets after the first, with their direction.
type Packets = Vec<(Direction, Transport)>;

/// Each state expires exactly at its timeout: alive at TTL - 1 s, gone at TTL + 1 s.
#[test]
fn expiry_at_ttl_plus_minus_one_second() {
    let to = Timeouts::default();
    let one = Duration::from_secs(1);
    let cases: [(&str, Packets, u8, Duration); 6] = [
        ("tcp syn_sent", vec![], PROTO_TCP, to.tcp_syn_sent),
        (
            "tcp established",
            vec![
                (Direction::Reply, tcp(true, true, false, false)),
                (Direction::Original, tcp(false, true, false, false)),
            ],
            PROTO_TCP,
            to.tcp_established,
        ),
        (
            "tcp close_wait",
            vec![
                (Direction::Reply, tcp(true, true, false, false)),
                (Direction::Original, tcp(false, true, false, false)),
                (Direction::Original, tcp(false, true, true, false)),
                (Direction::Reply, tcp(false, true, false, false)),
            ],
            PROTO_TCP,
            to.tcp_close_wait,
        ),
        ("udp unreplied", vec![], PROTO_UDP, to.udp),
        (
            "udp both ways",
            vec![(Direction::Reply, Transport::Udp)],
            PROTO_UDP,
            to.udp_stream,
        ),
        ("icmp", vec![], PROTO_ICMP, to.icmp),
    ];
    for (name, packets, proto, ttl) in cases {
        let t0 = Instant::now();
        let mut ct = table();
        let k = FlowKey {
            proto,
            ..key(40002)
        };
        let first = match proto {
            PROTO_TCP => tcp(true, false, false, false),
            PROTO_UDP => Transport::Udp,
            _ => Transport::IcmpEcho { request: true },
        };
        let id = ct.insert(k, dnat_reply(&k), &first, t0).expect("insert");
        ct.update(id, Direction::Original, &first, 60, t0);
        for (dir, t) in &packets {
            ct.update(id, *dir, t, 60, t0);
        }
        assert!(
            ct.lookup(&k, t0 + ttl - one).is_some(),
            "{name}: gone before its timeout"
        );
        ct.handle_timeout(t0 + ttl - one);
        assert_eq!(ct.len(), 1, "{name}: swept before its timeout");
        ct.handle_timeout(t0 + ttl + one);
        assert_eq!(ct.len(), 0, "{name}: still there after its timeout");
        assert!(ct.lookup(&k, t0 + ttl + one).is_none());
    }
}

#[test]
fn lookup_removes_expired_entry_without_sweep() {
    let t0 = Instant::now();
    let mut ct = table();
    let k = FlowKey {
        proto: PROTO_UDP,
        ..key(1)
    };
    ct.insert(k, dnat_reply(&k), &Transport::Udp, t0)
        .expect("insert");
    assert!(ct.lookup(&k, t0 + Duration::from_secs(31)).is_none());
    assert_eq!(ct.len(), 0);
    assert!(!ct.contains(&dnat_reply(&k)));
}

/// Walks `k`'s entry through the handshake (SYN-ACK back, ACK on): it is
/// then established and assured.
fn establish(ct: &mut ConnTrack, k: &FlowKey, t: Instant) {
    let (id, _) = ct.lookup(k, t).expect("live");
    ct.update(id, Direction::Reply, &tcp(true, true, false, false), 40, t);
    ct.update(
        id,
        Direction::Original,
        &tcp(false, true, false, false),
        40,
        t,
    );
    assert!(ct.get(id).expect("entry").is_assured());
}

#[test]
fn full_table_evicts_oldest_unassured_first() {
    let t0 = Instant::now();
    let mut ct = ConnTrack::new(3, Timeouts::default(), 1);
    ct.set_max_half_open(3);
    let syn = tcp(true, false, false, false);
    let keys: Vec<FlowKey> = (0..3).map(|i| key(1000 + i)).collect();
    for k in &keys {
        ct.insert(*k, dnat_reply(k), &syn, t0).expect("insert");
    }
    // The oldest entry is established: it must survive; the second-oldest goes.
    establish(&mut ct, &keys[0], t0);
    let k4 = key(2000);
    ct.insert(k4, dnat_reply(&k4), &syn, t0).expect("evicts");
    assert!(ct.contains(&keys[0]));
    assert!(!ct.contains(&keys[1]));
    assert!(ct.contains(&keys[2]));
    assert_eq!(ct.len(), 3);
    assert_eq!(ct.evicted(), 1);
    // All assured: the next insert is refused.
    for k in [keys[2], k4] {
        establish(&mut ct, &k, t0);
    }
    let k5 = key(3000);
    assert_eq!(
        ct.insert(k5, dnat_reply(&k5), &syn, t0),
        Err(InsertError::Full(3))
    );
}

#[test]
fn a_half_open_entry_whose_backend_answered_is_still_evicted() {
    // The SYN flood's entries: the backend answered SYN-ACK (replied), the
    // spoofed client never completes. They must not hold the table.
    let t0 = Instant::now();
    let mut ct = ConnTrack::new(2, Timeouts::default(), 1);
    ct.set_max_half_open(2);
    let syn = tcp(true, false, false, false);
    let (a, b) = (key(1), key(2));
    for k in [a, b] {
        let id = ct.insert(k, dnat_reply(&k), &syn, t0).expect("insert");
        ct.update(id, Direction::Reply, &tcp(true, true, false, false), 40, t0);
        assert_eq!(ct.get(id).expect("entry").tcp, Some(TcpState::SynRecv));
    }
    let c = key(3);
    ct.insert(c, dnat_reply(&c), &syn, t0)
        .expect("a replied half-open entry makes room");
    assert!(!ct.contains(&a) && ct.contains(&b) && ct.contains(&c));
}

#[test]
fn a_syn_flood_leaves_established_flows_and_new_flows_their_room() {
    let t0 = Instant::now();
    let mut ct = ConnTrack::new(1000, Timeouts::default(), 7);
    let syn = tcp(true, false, false, false);
    let established: Vec<FlowKey> = (0..400).map(|i| key(10_000 + i)).collect();
    for k in &established {
        ct.insert(*k, dnat_reply(k), &syn, t0).expect("insert");
        establish(&mut ct, k, t0);
    }
    assert_eq!(ct.half_open(), 0);
    // 100,000 spoofed SYNs, every one answered by the backend (SYN_RECV).
    for i in 0..100_000u32 {
        let k = FlowKey {
            src: Ipv4Addr::from(0x0b00_0000 + i),
            ..key(20_000)
        };
        let id = ct.insert(k, dnat_reply(&k), &syn, t0).expect("never full");
        ct.update(id, Direction::Reply, &tcp(true, true, false, false), 40, t0);
        assert!(ct.half_open() <= ct.max_half_open());
        assert!(ct.len() <= ct.capacity());
    }
    // Every established flow is still there...
    for k in &established {
        assert!(ct.lookup(k, t0).is_some(), "{k:?} evicted by the flood");
    }
    // ...and a legitimate new connection gets in and completes.
    let legit = key(30_000);
    ct.insert(legit, dnat_reply(&legit), &syn, t0)
        .expect("a new flow during the flood");
    establish(&mut ct, &legit, t0);
    // The half-open flood entries go within their (short) timeout.
    let later = t0 + Timeouts::default().tcp_syn_recv + Duration::from_secs(1);
    for _ in 0..1000 {
        if ct.poll_timeout().is_none_or(|t| t > later) {
            break;
        }
        ct.handle_timeout(later);
    }
    assert_eq!(ct.half_open(), 0);
}

#[test]
fn clashing_tuple_is_refused() {
    let t0 = Instant::now();
    let mut ct = table();
    let k = key(5);
    let syn = tcp(true, false, false, false);
    ct.insert(k, dnat_reply(&k), &syn, t0).expect("insert");
    let other = key(6);
    assert_eq!(
        ct.insert(other, dnat_reply(&k), &syn, t0),
        Err(InsertError::Clash)
    );
}

#[test]
fn render_looks_like_conntrack_l() {
    let t0 = Instant::now();
    let mut ct = table();
    let k = key(40000);
    let syn = tcp(true, false, false, false);
    let id = ct.insert(k, dnat_reply(&k), &syn, t0).expect("insert");
    ct.update(id, Direction::Original, &syn, 60, t0);
    let line = ct.get(id).expect("entry").record(t0).to_string();
    assert_eq!(
        line,
        "tcp      6 30 SYN_SENT src=10.10.1.100 dst=10.101.182.177 sport=40000 dport=80 \
         [UNREPLIED] src=10.10.1.42 dst=10.10.1.100 sport=80 dport=40000 \
         packets=1/0 bytes=60/0 mark=0 use=1"
    );
}
#[test]
fn a_large_table_is_swept_in_batches() {
    let t0 = Instant::now();
    let n = SWEEP_BATCH * 2 + 10;
    let mut ct = ConnTrack::new(n, Timeouts::default(), 3);
    for i in 0..n {
        let k = FlowKey {
            proto: PROTO_UDP,
            src: Ipv4Addr::from(0x0a0a_0000 + i as u32),
            ..key(1)
        };
        ct.insert(k, dnat_reply(&k), &Transport::Udp, t0)
            .expect("insert");
    }
    let late = t0 + Timeouts::default().udp + Duration::from_secs(2);
    assert_eq!(ct.handle_timeout(late), SWEEP_BATCH, "one batch per call");
    assert_eq!(
        ct.poll_timeout(),
        Some(late),
        "the next batch is due at once"
    );
    assert_eq!(ct.handle_timeout(late), SWEEP_BATCH);
    assert_eq!(ct.handle_timeout(late), 10);
    assert!(ct.is_empty());
    assert_eq!(ct.poll_timeout(), None, "nothing left to sweep");
}

#[test]
fn records_come_in_chunks_that_cover_the_table_once() {
    let t0 = Instant::now();
    let mut ct = ConnTrack::new(64, Timeouts::default(), 5);
    let syn = tcp(true, false, false, false);
    for i in 0..10 {
        let k = key(100 + i);
        ct.insert(k, dnat_reply(&k), &syn, t0).expect("insert");
    }
    let (id, _) = ct.lookup(&key(103), t0).expect("live");
    ct.remove(id);
    let mut seen = Vec::new();
    let mut from = Some(FlowCursor::START);
    while let Some(cursor) = from {
        let (chunk, next) = ct.records(t0, cursor, 4);
        assert!(chunk.len() <= 4);
        seen.extend(chunk.into_iter().map(|r| r.original.sport));
        from = next;
    }
    seen.sort_unstable();
    let want: Vec<u16> = (100..110).filter(|p| *p != 103).collect();
    assert_eq!(seen, want);
}

#[test]
fn natted_udp_flows_are_indexed_by_frontend_and_endpoint_until_they_go() {
    let t0 = Instant::now();
    let mut ct = table();
    let udp = |sport| FlowKey {
        proto: PROTO_UDP,
        ..key(sport)
    };
    let vip = key(0).dst;
    let endpoint = dnat_reply(&key(0)).src;
    let a = ct
        .insert(udp(1), dnat_reply(&udp(1)), &Transport::Udp, t0)
        .expect("insert");
    let b = ct
        .insert(udp(2), dnat_reply(&udp(2)), &Transport::Udp, t0)
        .expect("insert");
    // Not indexed: TCP, and UDP without NAT.
    ct.insert(
        key(3),
        dnat_reply(&key(3)),
        &tcp(true, false, false, false),
        t0,
    )
    .expect("insert");
    ct.insert(udp(4), udp(4).reversed(), &Transport::Udp, t0)
        .expect("insert");
    let sorted = |ids: Vec<EntryId>| {
        let mut ids = ids;
        ids.sort_unstable();
        ids
    };
    assert_eq!(sorted(ct.udp_nat_to_frontend(vip).collect()), vec![a, b]);
    assert_eq!(
        sorted(ct.udp_nat_to_backend(endpoint).collect()),
        vec![a, b]
    );
    assert_eq!(ct.udp_nat_to_backend(vip).count(), 0);
    ct.remove(a);
    assert_eq!(ct.udp_nat_to_frontend(vip).collect::<Vec<_>>(), vec![b]);
    // Expiry removes from the index too.
    let late = t0 + ct.timeouts().udp_stream.max(ct.timeouts().udp) + SWEEP_INTERVAL;
    while ct.handle_timeout(late) > 0 || ct.poll_timeout().is_some_and(|t| t <= late) {}
    assert_eq!(ct.udp_nat_to_frontend(vip).count(), 0);
    assert_eq!(ct.udp_nat_to_backend(endpoint).count(), 0);
}

#[test]
fn churn_keeps_every_live_flow_found() {
    // Many flows come and go through a small table: the index reuses its
    // buckets (and rehashes them in place) without losing a live flow.
    let t0 = Instant::now();
    let mut ct = table();
    let mut live = std::collections::VecDeque::new();
    for sport in 1..=10_000u16 {
        if live.len() == 16 {
            let (old, id): (FlowKey, EntryId) = live.pop_front().expect("a live flow");
            assert!(ct.remove(id).is_some());
            assert!(!ct.contains(&old));
        }
        let k = key(sport);
        let id = ct
            .insert(k, dnat_reply(&k), &tcp(false, true, false, false), t0)
            .expect("room");
        live.push_back((k, id));
        for (k, id) in &live {
            assert_eq!(ct.lookup(k, t0), Some((*id, Direction::Original)));
            assert_eq!(ct.lookup(&dnat_reply(k), t0), Some((*id, Direction::Reply)));
        }
    }
    assert_eq!(ct.len(), 16);
}
