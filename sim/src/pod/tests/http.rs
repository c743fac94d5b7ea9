//! HTTP requests: answers, refusals, timeouts, sockets given back.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use smoltcp::wire::Ipv4Packet;

use super::super::http::{parse_response, CLIENT_TIMEOUT};
use super::super::{Client, HttpOutcome, Pod};
use super::*;

#[test]
fn http_get_root_four_lines() {
    let mut p = Pair::new();
    p.b.serve_http(80);
    let body = body_of(p.http(SocketAddrV4::new(B_IP, 80), "/"));
    let lines: Vec<&str> = body.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 4, "{body:?}");
    assert_eq!(lines[0], "srv : 10.10.2.42:80\n");
    assert_eq!(lines[1], "host: nginx-deployment-756d6b7586-7plkf\n");
    assert_eq!(lines[2], "uri : GET 10.10.2.42 /\n");
    assert!(lines[3].starts_with("date: 2022-06-24T06:22:1"), "{body:?}");
}

#[test]
fn back_to_back_requests() {
    let mut p = Pair::new();
    p.b.serve_http(8080);
    let mut ports = Vec::new();
    for _ in 0..3 {
        let body = body_of(p.http(SocketAddrV4::new(B_IP, 8080), "/clientip"));
        let (ip, port) = body.split_once(':').unwrap();
        assert_eq!(ip, "10.10.1.5");
        ports.push(port.parse::<u16>().unwrap());
    }
    assert_eq!(ports, vec![49152, 49153, 49154]);
    // Many more, without letting TIME-WAIT expire in between.
    for _ in 0..10 {
        let body = body_of(p.http(SocketAddrV4::new(B_IP, 8080), "/hostname"));
        assert_eq!(body, "nginx-deployment-756d6b7586-7plkf");
    }
    let body = body_of(p.http(SocketAddrV4::new(B_IP, 8080), "/healthz"));
    assert_eq!(body, "ok");
}

#[test]
fn sockets_are_reclaimed() {
    let mut p = Pair::new();
    p.b.serve_http(80);
    for _ in 0..5 {
        body_of(p.http(SocketAddrV4::new(B_IP, 80), "/"));
    }
    // Let TIME-WAIT (10 s) pass.
    for _ in 0..12 {
        p.step += 1000;
        p.tick();
    }
    assert!(
        p.a.host().closing_count() == 0,
        "client sockets left: {}",
        p.a.host().closing_count()
    );
    assert!(
        p.b.host().closing_count() == 0,
        "server sockets left: {}",
        p.b.host().closing_count()
    );
    assert_eq!(p.b.host().http_server_sockets(), LISTEN_BACKLOG);
}

#[test]
fn closed_port_is_refused() {
    let mut p = Pair::new();
    p.b.serve_http(80);
    let outcome = p.http(SocketAddrV4::new(B_IP, 81), "/");
    assert_eq!(outcome, HttpOutcome::Refused);
}

#[test]
fn icmp_port_unreachable_refuses_connect() {
    let mut p = Pair::new();
    let now = p.now();
    let id = p.a.http_get(now, SocketAddrV4::new(B_IP, 80), "/");
    p.a.poll(now);
    let syn = p.a.poll_transmit().unwrap();
    // Build an ICMP port unreachable quoting the SYN, as a router's REJECT would.
    let ip = Ipv4Packet::new_checked(&syn[..]).unwrap();
    let quoted_len = usize::from(ip.header_len()) + 8;
    let mut out = Vec::new();
    etherparse::PacketBuilder::ipv4([10, 10, 2, 1], A_IP.octets(), 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut out, &syn[..quoted_len])
        .unwrap();
    p.a.handle_packet(now, &out);
    assert_eq!(p.a.icmp_unreachable_seen(), 1);
    assert_eq!(p.a.http_result(id), HttpOutcome::Refused);
    // No RST goes out for the dropped socket.
    assert!(p.a.poll_transmit().is_none());
}

#[test]
fn garbage_request_gets_400() {
    // A's client sends a non-HTTP request in place of its GET.
    let mut p = Pair::new();
    p.b.serve_http(80);
    let now = p.now();
    let id = p.a.http_get(now, SocketAddrV4::new(B_IP, 80), "/");
    if let Some(Client::Http(c)) = p.a.clients.list.get_mut(id.0) {
        c.request = b"NOT HTTP AT ALL\r\n\r\n".to_vec();
    }
    p.run_until(5_000, |p| p.a.http_result(id) != HttpOutcome::Pending);
    match p.a.http_result(id) {
        HttpOutcome::Done { status, .. } => assert_eq!(status, 400),
        other => panic!("{other:?}"),
    }
}

#[test]
fn response_parsing() {
    assert_eq!(
        parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"),
        Ok((200, "ok".to_string(), true))
    );
    assert_eq!(
        parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok"),
        Ok((200, "ok".to_string(), false))
    );
    assert!(parse_response(b"junk\r\n\r\n").is_err());
    assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
}

#[test]
fn poll_timeout_reports_retransmission() {
    let t0 = Instant::now();
    let mut a = Pod::new(HostConfig::new("a", A_IP, Ipv4Addr::new(10, 10, 1, 1)), t0);
    assert_eq!(a.poll_timeout(t0), None);
    let id = a.http_get(t0, SocketAddrV4::new(B_IP, 80), "/");
    a.poll(t0);
    assert!(a.poll_transmit().is_some());
    let next = a.poll_timeout(t0).unwrap();
    assert!(next > t0 && next <= t0 + CLIENT_TIMEOUT, "{next:?}");
    // Nobody answers: the request fails eventually.
    let mut now = t0;
    while a.http_result(id) == HttpOutcome::Pending {
        now = a
            .poll_timeout(now)
            .unwrap()
            .max(now + Duration::from_millis(1));
        a.poll(now);
        while a.poll_transmit().is_some() {}
        assert!(now < t0 + Duration::from_secs(60));
    }
    assert!(matches!(a.http_result(id), HttpOutcome::Failed(_)));
}
