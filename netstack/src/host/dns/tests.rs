//! The DNS server's TCP side under a SYN flood, with every connection
//! established, and with a client that never reads: what it holds stays
//! bounded, is given back after the timeouts, and real queries are answered.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use smoltcp::socket::tcp;

use super::limits::{
    HALF_OPEN_TIMEOUT, IDLE_TIMEOUT, MAX_PENDING_OUTPUT, MAX_TCP_CONNS, RX_BUFFER, TX_BUFFER,
};
use crate::dns::{frame, take_frame, DnsHandler, DnsTransport};
use crate::host::tests::{Link, A_IP, B_IP};
use crate::host::LISTEN_BACKLOG;

/// Answers `q` with `T` (or `U`) followed by `q`.
fn echo() -> DnsHandler {
    Box::new(|q: &[u8], t| {
        let tag = if t == DnsTransport::Tcp { b'T' } else { b'U' };
        Some([&[tag][..], q].concat())
    })
}

/// Answers every query with `len` bytes.
fn big_answers(len: usize) -> DnsHandler {
    Box::new(move |_: &[u8], _| Some(vec![b'x'; len]))
}

/// Host `b` serving DNS on port 53.
fn dns_link(handler: DnsHandler) -> Link {
    let mut link = Link::new();
    link.b.serve_dns(53, handler);
    link
}

/// The sockets and buffer bytes a DNS host holds when nobody talks to it:
/// the listeners and the UDP socket.
fn baseline(link: &Link) -> (usize, usize) {
    (link.b.socket_count(), link.b.buffer_bytes())
}

/// A SYN to `b`'s port 53 from the `i`-th spoofed source.
fn spoofed_syn(i: u32) -> Vec<u8> {
    let src = Ipv4Addr::from(0xc612_0000 | (i & 0xffff)); // 198.18.0.0/15, benchmarking space
    let port = 1024 + u16::try_from(i % 60_000).unwrap();
    let mut out = Vec::new();
    etherparse::PacketBuilder::ipv4(src.octets(), B_IP.octets(), 64)
        .tcp(port, 53, i.wrapping_mul(2_654_435_761), 64_240)
        .syn()
        .write(&mut out, &[])
        .unwrap();
    out
}

/// Sends `count` spoofed SYNs to `b` from source `first` on, 50 us apart
/// (20,000 a second); what `b` answers to the spoofed sources goes nowhere.
/// Checks after every SYN that `b` holds no more than its bounds allow.
fn flood(link: &mut Link, first: u32, count: u32) {
    let most_sockets = MAX_TCP_CONNS + LISTEN_BACKLOG + 1 + link.b.closing_count();
    for i in first..first + count {
        link.b.handle_packet(link.now, &spoofed_syn(i));
        while let Some(p) = link.b.poll_transmit() {
            if p.get(16..20) == Some(&A_IP.octets()[..]) {
                link.a.handle_packet(link.now, &p);
            }
        }
        link.now += Duration::from_micros(50);
        assert!(
            link.b.socket_count() <= most_sockets,
            "{} sockets after SYN {i}",
            link.b.socket_count()
        );
    }
}

/// Sends `queries` on one TCP connection from `a`'s `port` and collects
/// the answers, calling `meanwhile` before every millisecond.
fn ask(
    link: &mut Link,
    port: u16,
    queries: &[&[u8]],
    mut meanwhile: impl FnMut(&mut Link),
) -> Vec<Vec<u8>> {
    let dst = SocketAddrV4::new(B_IP, 53);
    let handle = link.a.connect_tcp(port, dst, (4096, 4096)).unwrap();
    let request: Vec<u8> = queries.iter().flat_map(|q| frame(q).unwrap()).collect();
    let (mut sent, mut input, mut answers) = (0, Vec::new(), Vec::new());
    for _ in 0..2_000 {
        meanwhile(link);
        link.tick();
        let socket = link.a.socket_mut::<tcp::Socket>(handle);
        if socket.can_send() && sent < request.len() {
            sent += socket.send_slice(&request[sent..]).unwrap();
        }
        while let Ok(data) = socket.recv(|d| (d.len(), d.to_vec())) {
            if data.is_empty() {
                break;
            }
            input.extend(data);
        }
        while let Some(m) = take_frame(&mut input) {
            answers.push(m);
        }
        if answers.len() == queries.len() {
            break;
        }
    }
    link.a.socket_mut::<tcp::Socket>(handle).close();
    link.a.release_tcp(handle);
    answers
}

#[test]
fn a_syn_flood_is_bounded_freed_and_queries_still_answered() {
    let mut link = dns_link(echo());
    link.tick();
    let (sockets, bytes) = baseline(&link);
    assert_eq!(sockets, LISTEN_BACKLOG + 1);

    flood(&mut link, 0, 10_000);
    let stats = link.b.dns_tcp_stats();
    assert_eq!(stats.half_open, MAX_TCP_CONNS);
    assert_eq!(stats.evicted, 10_000 - MAX_TCP_CONNS as u64);
    // 20,000 connections with 32 KiB each held 640 MB before the bounds.
    let most = bytes + MAX_TCP_CONNS * (RX_BUFFER + TX_BUFFER);
    assert!(
        link.b.buffer_bytes() <= most,
        "{} bytes",
        link.b.buffer_bytes()
    );
    assert!(most < 2 << 20);

    // During the flood (20 more SYNs every millisecond), a real query
    // gets its answer: its handshake finishes long before 256 newer SYNs
    // could evict it, and an established connection is never evicted.
    let mut next = 10_000;
    let answers = ask(&mut link, 50_000, &[b"during"], |l| {
        flood(l, next, 20);
        next += 20;
    });
    assert_eq!(answers, vec![b"Tduring".to_vec()]);
    flood(&mut link, next, 20_000 - next);
    let stats = link.b.dns_tcp_stats();
    assert!(stats.half_open <= MAX_TCP_CONNS, "{stats:?}");
    assert!(
        stats.evicted >= 20_000 - 2 * MAX_TCP_CONNS as u64,
        "{stats:?}"
    );
    assert_eq!(stats.refused, 0);

    // Everything the flood left is given back after the half-open timeout
    // (the host says when to poll next).
    let end = link.now + HALF_OPEN_TIMEOUT + Duration::from_secs(1);
    while link.now < end {
        let next = link.b.poll_timeout(link.now).unwrap_or(end).min(end);
        link.now = next.max(link.now + Duration::from_millis(1));
        link.tick();
    }
    let stats = link.b.dns_tcp_stats();
    assert_eq!((stats.half_open, stats.open), (0, 0), "{stats:?}");
    assert_eq!(
        stats.evicted + stats.expired_half_open,
        20_000,
        "every spoofed SYN was evicted or expired: {stats:?}"
    );
    assert_eq!(baseline(&link), (sockets, bytes));

    // And after it.
    assert_eq!(
        ask(&mut link, 50_001, &[b"after", b"again"], |_| {}),
        vec![b"Tafter".to_vec(), b"Tagain".to_vec()]
    );
    assert_eq!(link.b.dns_answered(), 3);

    // Summed over several hosts, as a router's figures are.
    let total: super::DnsTcpStats = [link.b.dns_tcp_stats(), link.a.dns_tcp_stats()]
        .into_iter()
        .sum();
    assert_eq!(total, link.b.dns_tcp_stats());
    assert_eq!((total + total).evicted, 2 * total.evicted);
}

#[test]
fn with_every_slot_established_new_syns_are_refused_until_idle_ones_close() {
    let mut link = dns_link(echo());
    let conns: Vec<_> = (0..MAX_TCP_CONNS)
        .map(|i| link.connect(40_000 + u16::try_from(i).unwrap(), 53))
        .collect();
    link.tick();
    let stats = link.b.dns_tcp_stats();
    assert_eq!(
        (stats.open, stats.listening),
        (MAX_TCP_CONNS, 0),
        "{stats:?}"
    );

    // One more: refused with a RST, and counted.
    let dst = SocketAddrV4::new(B_IP, 53);
    let extra = link.a.connect_tcp(49_999, dst, (4096, 4096)).unwrap();
    link.tick();
    link.tick();
    assert_eq!(
        link.a.socket::<tcp::Socket>(extra).state(),
        tcp::State::Closed
    );
    assert_eq!(link.b.dns_tcp_stats().refused, 1);

    // Nobody asks anything: after the idle timeout every one is closed.
    let end = link.now + IDLE_TIMEOUT + Duration::from_secs(1);
    while link.now < end {
        link.now += Duration::from_millis(100);
        link.tick();
    }
    let stats = link.b.dns_tcp_stats();
    assert_eq!(stats.expired_idle, MAX_TCP_CONNS as u64, "{stats:?}");
    assert_eq!(
        (stats.open, stats.listening),
        (0, LISTEN_BACKLOG),
        "{stats:?}"
    );
    for handle in conns {
        assert!(
            !link.a.socket::<tcp::Socket>(handle).may_recv(),
            "server closed"
        );
    }
    assert_eq!(
        ask(&mut link, 50_000, &[b"q"], |_| {}),
        vec![b"Tq".to_vec()]
    );
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_answers() {
    let mut link = dns_link(big_answers(1000));
    link.tick();
    let (_, bytes) = baseline(&link);
    let handle = link.connect(50_000, 53);
    // 500 pipelined queries, whose 500 KB of answers it never reads.
    let request: Vec<u8> = (0..500).flat_map(|_| frame(b"q").unwrap()).collect();
    let mut sent = 0;
    for _ in 0..200 {
        let socket = link.a.socket_mut::<tcp::Socket>(handle);
        if socket.can_send() && sent < request.len() {
            sent += socket.send_slice(&request[sent..]).unwrap();
        }
        link.tick();
        let held = link.b.buffer_bytes() - bytes;
        assert!(
            held <= RX_BUFFER + TX_BUFFER + 2 * (MAX_PENDING_OUTPUT + 1002) + 2 + 65535,
            "{held} bytes held"
        );
    }
    assert!(link.b.dns_answered() < 500);
    // It stalls the connection; the idle timeout ends it.
    for _ in 0..12 {
        link.now += Duration::from_secs(1);
        link.tick();
    }
    let stats = link.b.dns_tcp_stats();
    assert_eq!((stats.open, stats.expired_idle), (0, 1), "{stats:?}");
}

#[test]
fn a_connection_that_never_sends_a_whole_query_is_closed_when_idle() {
    let mut link = dns_link(echo());
    let handle = link.connect(50_000, 53);
    link.a
        .socket_mut::<tcp::Socket>(handle)
        .send_slice(&[0, 10, 1])
        .unwrap();
    link.tick();
    let t = link.b.poll_timeout(link.now).unwrap();
    assert!(t <= link.now + IDLE_TIMEOUT);
    for _ in 0..11 {
        link.now += Duration::from_secs(1);
        link.tick();
    }
    assert!(
        !link.a.socket::<tcp::Socket>(handle).may_recv(),
        "server closed"
    );
    assert_eq!(link.b.dns_tcp_stats().expired_idle, 1);
}
