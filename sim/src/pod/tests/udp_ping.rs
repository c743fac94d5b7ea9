//! UDP requests and ping.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddrV4;

use super::*;

#[test]
fn udp_hostname_and_unreachable() {
    let mut p = Pair::new();
    p.b.serve_udp(9000);
    let id =
        p.a.udp_request(SocketAddrV4::new(B_IP, 9000), 40000, b"hostname\n");
    p.run_until(100, |p| !p.a.udp_replies(id).is_empty());
    let replies = p.a.udp_replies(id);
    assert_eq!(
        replies,
        vec![(
            SocketAddrV4::new(B_IP, 9000),
            b"nginx-deployment-756d6b7586-7plkf".to_vec()
        )]
    );
    // Same local port again: socket reused, only the new reply belongs to the new id.
    let id2 =
        p.a.udp_request(SocketAddrV4::new(B_IP, 9000), 40000, b"clientip");
    p.run_until(100, |p| !p.a.udp_replies(id2).is_empty());
    assert_eq!(p.a.udp_replies(id2)[0].1, b"10.10.1.5:40000".to_vec());
    assert_eq!(p.a.udp_replies(id).len(), 2);

    assert_eq!(p.a.icmp_unreachable_seen(), 0);
    let id3 =
        p.a.udp_request(SocketAddrV4::new(B_IP, 9001), 40001, b"hostname");
    p.run_until(100, |p| p.a.icmp_unreachable_seen() == 1);
    assert!(p.a.udp_replies(id3).is_empty());
}

#[test]
fn ping_gets_replies() {
    let mut p = Pair::new();
    p.a.ping(B_IP, 1);
    p.a.ping(B_IP, 2);
    p.run_until(100, |p| p.a.ping_replies() == 2);
    p.b.ping(A_IP, 1);
    p.run_until(100, |p| p.b.ping_replies() == 1);
    assert_eq!(p.a.ping_replies(), 2);
}
