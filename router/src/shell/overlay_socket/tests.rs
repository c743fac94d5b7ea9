use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::OverlaySocket;

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn a_group_of_sockets_shares_the_port_and_every_datagram_reaches_one() {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let group = OverlaySocket::bind(addr, 3).expect("bind the group");
    assert_eq!(group.len(), 3);
    // Senders from many ports: the kernel spreads them by 4-tuple.
    let senders: Vec<_> = (0..16)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("sender"))
        .collect();
    for (i, s) in senders.iter().enumerate() {
        s.send_to(&[i as u8; 100], addr).expect("send");
    }
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < senders.len() && Instant::now() < deadline {
        for s in &group {
            if let Ok(r) = s.recv(&mut buf) {
                assert_eq!(r.len, 100);
                got.push(buf[0]);
            }
        }
    }
    got.sort_unstable();
    assert_eq!(got, (0..16).collect::<Vec<u8>>());
}

#[test]
fn a_second_group_on_a_taken_port_is_refused() {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let _first = OverlaySocket::bind(addr, 2).expect("bind the group");
    // Another router (same user, SO_REUSEPORT too) must not join it.
    let err = OverlaySocket::bind(addr, 2).err().expect("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    let err = OverlaySocket::bind(addr, 1).err().expect("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}
