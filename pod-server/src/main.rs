//! `pod-server`: the HTTP and UDP responders of [`netstack::responders`] on real
//! sockets, run inside each lab pod's network namespace.
//!
//! `pod-server --name POD [--tcp 80,8080] [--udp 9000] [--bind 0.0.0.0]`
//!
//! One thread per TCP listener (and one per accepted connection: read one
//! request with a 5 s timeout, answer, close) and one thread per UDP socket.
//! `GET /stream?lines=N&interval_ms=M` answers N lines `line I from POD`, one
//! every M ms, then closes (a long-lived connection for the lab tests).
//! Logs to stderr via `RUST_LOG` (default `info`), one line per request.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use netstack::responders::{http, udp};

/// How long a connection may take to deliver its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve agnhost-netexec-like HTTP and UDP responders for one pod.
#[derive(Debug, Parser)]
#[command(name = "pod-server", version)]
struct Args {
    /// Pod name, answered by /hostname and the UDP `hostname` command.
    #[arg(long)]
    name: String,
    /// TCP ports to serve HTTP on (comma-separated).
    #[arg(long, value_delimiter = ',')]
    tcp: Vec<u16>,
    /// UDP ports to serve the UDP responder on (comma-separated).
    #[arg(long, value_delimiter = ',')]
    udp: Vec<u16>,
    /// Address to bind to.
    #[arg(long, default_value_t = Ipv4Addr::UNSPECIFIED)]
    bind: Ipv4Addr,
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => SocketAddrV4::new(
            a.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
            a.port(),
        ),
    }
}

fn now_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0);
    http::format_date(secs)
}

/// Reads one request head (until parsed, EOF, error or timeout) and answers it.
fn handle_connection(mut stream: TcpStream, name: &str) {
    let peer = match stream.peer_addr() {
        Ok(a) => v4(a),
        Err(e) => {
            log::warn!("tcp: peer address: {e}");
            return;
        }
    };
    let local = match stream.local_addr() {
        Ok(a) => v4(a),
        Err(e) => {
            log::warn!("tcp {peer}: local address: {e}");
            return;
        }
    };
    if let Err(e) = stream.set_read_timeout(Some(READ_TIMEOUT)) {
        log::warn!("tcp {peer}: set_read_timeout: {e}");
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let response = loop {
        match http::parse_request(&buf) {
            Ok(Some(req)) => {
                match http::stream(&req) {
                    Some(Ok(s)) => {
                        log::info!(
                            "tcp {peer} -> {local} {} {} host={} 200 (stream)",
                            req.method,
                            req.path,
                            req.host
                        );
                        send_stream(&mut stream, s, name, peer);
                        return;
                    }
                    Some(Err(e)) => {
                        log::info!("tcp {peer} -> {local} {} 400 ({e})", req.path);
                        break http::bad_request();
                    }
                    None => {}
                }
                log::info!(
                    "tcp {peer} -> {local} {} {} host={} 200",
                    req.method,
                    req.path,
                    req.host
                );
                break http::respond(&req, local, peer, name, &now_date());
            }
            Err(e) => {
                log::info!("tcp {peer} -> {local} 400 ({e})");
                break http::bad_request();
            }
            Ok(None) => {}
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                log::info!("tcp {peer} -> {local} closed before a whole request");
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                log::info!("tcp {peer} -> {local} no request: {e}");
                return;
            }
        }
    };
    if let Err(e) = stream.write_all(&response).and_then(|()| stream.flush()) {
        log::warn!("tcp {peer}: write: {e}");
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    linger(&mut stream);
}

/// A lingering close, as nginx does: after the answer, read (and discard)
/// what the client still sends, until it closes or for at most a second, so
/// that closing with unread data does not reset the connection and destroy
/// the answer in flight (an early `400` to a request still arriving).
fn linger(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut sink = [0u8; 4096];
    for _ in 0..64 {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// Answers `/stream`: the head, then `s.lines` lines one every
/// `s.interval_ms`, then closes.
fn send_stream(conn: &mut TcpStream, s: http::Stream, name: &str, peer: SocketAddrV4) {
    let mut result = conn.write_all(&http::stream_head());
    for i in 1..=s.lines {
        if result.is_err() {
            break;
        }
        if i > 1 {
            thread::sleep(Duration::from_millis(s.interval_ms));
        }
        result = conn
            .write_all(http::stream_line(i, name).as_bytes())
            .and_then(|()| conn.flush());
    }
    match result {
        Ok(()) => log::info!("tcp {peer}: streamed {} lines", s.lines),
        Err(e) => log::warn!("tcp {peer}: stream: {e}"),
    }
    let _ = conn.shutdown(std::net::Shutdown::Write);
}

fn serve_tcp(listener: TcpListener, name: String) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let name = name.clone();
                if let Err(e) = thread::Builder::new()
                    .name("http-conn".into())
                    .spawn(move || handle_connection(stream, &name))
                {
                    log::error!("cannot spawn connection thread: {e}");
                }
            }
            Err(e) => log::warn!("accept: {e}"),
        }
    }
}

fn serve_udp(socket: UdpSocket, name: String) {
    let local = socket
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("udp {local}: recv: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let payload = &buf[..n];
        let reply = udp::respond(payload, v4(peer), &name);
        log::info!(
            "udp {peer} -> {local} {:?} -> {} bytes",
            String::from_utf8_lossy(payload).trim_end(),
            reply.len()
        );
        if let Err(e) = socket.send_to(&reply, peer) {
            log::warn!("udp {local}: send to {peer}: {e}");
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    if args.tcp.is_empty() && args.udp.is_empty() {
        eprintln!("pod-server: nothing to serve: give --tcp and/or --udp ports");
        return ExitCode::from(2);
    }

    // Bind everything first, so a port that cannot be bound fails before serving.
    let mut listeners = Vec::new();
    for &port in &args.tcp {
        match TcpListener::bind((args.bind, port)) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                eprintln!("pod-server: cannot bind TCP {}:{port}: {e}", args.bind);
                return ExitCode::FAILURE;
            }
        }
    }
    let mut udp_sockets = Vec::new();
    for &port in &args.udp {
        match UdpSocket::bind((args.bind, port)) {
            Ok(s) => udp_sockets.push(s),
            Err(e) => {
                eprintln!("pod-server: cannot bind UDP {}:{port}: {e}", args.bind);
                return ExitCode::FAILURE;
            }
        }
    }
    log::info!(
        "pod-server {} on {}: tcp {:?} udp {:?}",
        args.name,
        args.bind,
        args.tcp,
        args.udp
    );

    let mut threads = Vec::new();
    for listener in listeners {
        let name = args.name.clone();
        match thread::Builder::new()
            .name("http-listen".into())
            .spawn(move || serve_tcp(listener, name))
        {
            Ok(t) => threads.push(t),
            Err(e) => {
                eprintln!("pod-server: cannot spawn thread: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for socket in udp_sockets {
        let name = args.name.clone();
        match thread::Builder::new()
            .name("udp".into())
            .spawn(move || serve_udp(socket, name))
        {
            Ok(t) => threads.push(t),
            Err(e) => {
                eprintln!("pod-server: cannot spawn thread: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
    ExitCode::SUCCESS
}
