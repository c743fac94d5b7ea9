//! DNS over UDP and TCP against a host's DNS server.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddrV4;
use std::time::Duration;

use smoltcp::socket::tcp;

use super::super::DnsTcpOutcome;
use super::*;

/// Answers `q` with `U` or `T` (the transport) followed by `q`; refuses
/// (`None`) a query starting with `!`.
fn echo_handler(tag: u8) -> netstack::DnsHandler {
    Box::new(move |q: &[u8], t| {
        if q.first() == Some(&b'!') {
            return None;
        }
        let mut r = vec![
            tag,
            if t == netstack::DnsTransport::Udp {
                b'U'
            } else {
                b'T'
            },
        ];
        r.extend_from_slice(q);
        Some(r)
    })
}

fn dns_tcp(p: &mut Pair, queries: &[&[u8]]) -> DnsTcpOutcome {
    let now = p.now();
    let queries: Vec<Vec<u8>> = queries.iter().map(|q| q.to_vec()).collect();
    let id =
        p.a.dns_tcp_query(now, SocketAddrV4::new(B_IP, 53), &queries);
    p.run_until(5_000, |p| p.a.dns_tcp_result(id) != DnsTcpOutcome::Pending);
    p.a.dns_tcp_result(id)
}

#[test]
fn dns_over_udp() {
    let mut p = Pair::new();
    p.b.host_mut().serve_dns(53, echo_handler(b'1'));
    let id =
        p.a.udp_request(SocketAddrV4::new(B_IP, 53), 40000, b"query");
    p.run_until(100, |p| !p.a.udp_replies(id).is_empty());
    assert_eq!(
        p.a.udp_replies(id),
        vec![(SocketAddrV4::new(B_IP, 53), b"1Uquery".to_vec())]
    );
    // A refused query gets nothing, and the server goes on.
    let id = p.a.udp_request(SocketAddrV4::new(B_IP, 53), 40000, b"!bad");
    for _ in 0..50 {
        p.tick();
    }
    assert!(p.a.udp_replies(id).is_empty());
    assert!(p.b.host_mut().set_dns_handler(echo_handler(b'2')));
    let id =
        p.a.udp_request(SocketAddrV4::new(B_IP, 53), 40000, b"again");
    p.run_until(100, |p| !p.a.udp_replies(id).is_empty());
    assert_eq!(p.a.udp_replies(id)[0].1, b"2Uagain".to_vec());
    assert_eq!(p.b.host().dns_answered(), 2);
    assert!(
        !p.a.host_mut().set_dns_handler(echo_handler(b'3')),
        "a serves no DNS"
    );
}

#[test]
fn dns_over_tcp_several_queries_and_connections() {
    let mut p = Pair::new();
    p.b.host_mut().serve_dns(53, echo_handler(b'1'));
    let big = vec![b'x'; 30_000];
    assert_eq!(
        dns_tcp(&mut p, &[b"one", b"two", &big]),
        DnsTcpOutcome::Done(vec![
            b"1Tone".to_vec(),
            b"1Ttwo".to_vec(),
            [&b"1T"[..], &big].concat()
        ])
    );
    // Many connections back to back, and two at once.
    for i in 0..10u8 {
        assert_eq!(
            dns_tcp(&mut p, &[&[i]]),
            DnsTcpOutcome::Done(vec![vec![b'1', b'T', i]])
        );
    }
    let now = p.now();
    let dst = SocketAddrV4::new(B_IP, 53);
    let x = p.a.dns_tcp_query(now, dst, &[b"x".to_vec()]);
    let y = p.a.dns_tcp_query(now, dst, &[b"y".to_vec(), b"z".to_vec()]);
    p.run_until(5_000, |p| {
        p.a.dns_tcp_result(x) != DnsTcpOutcome::Pending
            && p.a.dns_tcp_result(y) != DnsTcpOutcome::Pending
    });
    assert_eq!(
        p.a.dns_tcp_result(x),
        DnsTcpOutcome::Done(vec![b"1Tx".to_vec()])
    );
    assert_eq!(
        p.a.dns_tcp_result(y),
        DnsTcpOutcome::Done(vec![b"1Ty".to_vec(), b"1Tz".to_vec()])
    );
    // A refused query closes the connection after the answers before it.
    match dns_tcp(&mut p, &[b"ok", b"!bad", b"never"]) {
        DnsTcpOutcome::Failed(e) => assert!(e.contains("after 1 of 3"), "{e}"),
        other => panic!("{other:?}"),
    }
    // Nothing on port 54.
    let now = p.now();
    let id =
        p.a.dns_tcp_query(now, SocketAddrV4::new(B_IP, 54), &[b"q".to_vec()]);
    p.run_until(1_000, |p| p.a.dns_tcp_result(id) != DnsTcpOutcome::Pending);
    assert_eq!(p.a.dns_tcp_result(id), DnsTcpOutcome::Refused);
    // Everything is cleaned up once TIME-WAIT has passed.
    for _ in 0..12 {
        p.step += 1000;
        p.tick();
    }
    assert!(p.a.host().closing_count() == 0 && p.b.host().closing_count() == 0);
    let stats = p.b.host().dns_tcp_stats();
    let conns = stats.listening + stats.half_open + stats.open;
    assert_eq!(conns, LISTEN_BACKLOG);
}

#[test]
fn idle_dns_connections_are_closed() {
    let mut p = Pair::new();
    p.b.host_mut().serve_dns(53, echo_handler(b'1'));
    let now = p.now();
    let none = p.a.dns_tcp_query(now, SocketAddrV4::new(B_IP, 53), &[]);
    assert_eq!(p.a.dns_tcp_result(none), DnsTcpOutcome::Done(vec![]));
    // A client that connects and never sends a whole query.
    let handle =
        p.a.host_mut()
            .connect_tcp(50000, SocketAddrV4::new(B_IP, 53), (4096, 4096))
            .unwrap();
    p.run_until(100, |p| p.a.host().socket::<tcp::Socket>(handle).may_send());
    p.a.host_mut()
        .socket_mut::<tcp::Socket>(handle)
        .send_slice(&[0, 10, 1])
        .unwrap();
    let t = p.b.poll_timeout(p.now()).unwrap();
    assert!(t <= p.now() + Duration::from_secs(10));
    for _ in 0..11 {
        p.step += 1000;
        p.tick();
    }
    assert!(
        !p.a.host().socket::<tcp::Socket>(handle).may_recv(),
        "server closed"
    );
}
