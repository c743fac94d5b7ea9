//! Runs the `pod-server` binary on 127.0.0.1 and talks to it with std sockets.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const POD: &str = "nginx-deployment-756d6b7586-7plkf";
const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_tcp_port() -> u16 {
    TcpListener::bind((LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind((LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(args: &[&str]) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_pod-server"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server(child)
}

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect((LOCALHOST, port)) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("pod-server not reachable on {port}: {e}"),
        }
    }
}

fn get(port: u16, path: &str, host: &str) -> String {
    let mut s = connect(port);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn http_and_udp() {
    let tcp = free_tcp_port();
    let tcp2 = free_tcp_port();
    let udp = free_udp_port();
    let ports = format!("{tcp},{tcp2}");
    let udp_arg = udp.to_string();
    let _server = start(&[
        "--name",
        POD,
        "--bind",
        "127.0.0.1",
        "--tcp",
        &ports,
        "--udp",
        &udp_arg,
    ]);

    let resp = get(tcp, "/", "10.101.182.177:80");
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    let lines: Vec<&str> = body.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 4, "{body:?}");
    assert_eq!(lines[0], format!("srv : 127.0.0.1:{tcp}\n"));
    assert_eq!(lines[1], format!("host: {POD}\n"));
    assert_eq!(lines[2], "uri : GET 10.101.182.177 /\n");
    assert!(
        lines[3].starts_with("date: 20") && lines[3].ends_with("+00:00\n"),
        "{body:?}"
    );

    let resp = get(tcp2, "/hostname", "x");
    assert!(resp.ends_with(&format!("\r\n\r\n{POD}")), "{resp:?}");

    let mut s = connect(tcp);
    s.write_all(b"garbage\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out:?}");

    let sock = UdpSocket::bind((LOCALHOST, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let dst = SocketAddrV4::new(LOCALHOST, udp);
    let mut buf = [0u8; 1500];
    let mut reply = None;
    for _ in 0..10 {
        sock.send_to(b"hostname\n", dst).unwrap();
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            assert_eq!(from, dst.into());
            reply = Some(buf[..n].to_vec());
            break;
        }
    }
    assert_eq!(reply.as_deref(), Some(POD.as_bytes()));
}

#[test]
fn port_in_use_fails() {
    let taken = TcpListener::bind((LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_pod-server"))
        .args(["--name", "p", "--bind", "127.0.0.1", "--tcp", &port])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot bind TCP"), "{stderr}");
}
