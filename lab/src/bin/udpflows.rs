//! `udpflows`: many UDP flows, one datagram each, from real sockets, for
//! scripts/bench-e2e's memory step (the router's RSS with 100,000 tracked
//! flows). Run it inside a bench or lab namespace only.
//!
//! `udpflows --dst IP:PORT --src IP [--src IP ...] [--flows N]
//! [--first-port P] [--rate PPS]`
//!
//! Flow `i` binds a socket to source address `src[i % n]` and port
//! `first_port + i / n`, sends one datagram to `--dst` and closes it, so
//! every flow has its own (source address, source port), as many pods'
//! clients would. A port that is busy is skipped (counted) and the next
//! one taken. It prints `sent N flows in S s (R/s), B ports busy, E send
//! errors`. Send errors (ENOBUFS when the queue is full) are counted and
//! the flow retried after a pause.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

/// One UDP datagram from each of many distinct (address, port) sources.
#[derive(Debug, Parser)]
#[command(name = "udpflows")]
struct Args {
    /// Destination address and port (a Service's ClusterIP and port).
    #[arg(long)]
    dst: SocketAddrV4,
    /// Source addresses (local addresses of this namespace), used in turn.
    #[arg(long = "src", required = true)]
    srcs: Vec<Ipv4Addr>,
    /// Flows (datagrams) to send.
    #[arg(long, default_value_t = 100_000)]
    flows: u32,
    /// The first source port of every address.
    #[arg(long, default_value_t = 10_000)]
    first_port: u16,
    /// Flows per second at most (0: as fast as the sockets take them).
    #[arg(long, default_value_t = 0)]
    rate: u64,
}

/// Most consecutive failed sends of one flow before giving up.
const MAX_RETRIES: u32 = 1000;

fn run(args: &Args) -> Result<(), String> {
    let addresses = args.srcs.len() as u32;
    let ports_per_address = u32::from(u16::MAX - args.first_port) + 1;
    if u64::from(args.flows) > u64::from(addresses) * u64::from(ports_per_address) {
        return Err(format!(
            "{} flows need more source ports than {addresses} address(es) have from port {} up: add --src addresses",
            args.flows, args.first_port
        ));
    }
    let payload = [0u8; 32];
    let start = Instant::now();
    let (mut sent, mut busy, mut errors) = (0u32, 0u32, 0u64);
    // The next port of each address.
    let mut next_port = vec![u32::from(args.first_port); args.srcs.len()];
    let mut last_error = None;
    while sent < args.flows {
        if args.rate > 0 {
            // Paced: no flow before its slot.
            let due = Duration::from_secs_f64(f64::from(sent) / args.rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait.min(Duration::from_millis(10)));
                continue;
            }
        }
        let which = (sent % addresses) as usize;
        let port = u16::try_from(next_port[which]).map_err(|_| {
            format!(
                "source address {} ran out of ports ({busy} busy): add --src addresses",
                args.srcs[which]
            )
        })?;
        next_port[which] += 1;
        let socket = match UdpSocket::bind(SocketAddrV4::new(args.srcs[which], port)) {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                busy += 1;
                continue;
            }
            Err(e) => return Err(format!("cannot bind {}:{port}: {e}", args.srcs[which])),
        };
        let mut tries = 0;
        loop {
            match socket.send_to(&payload, args.dst) {
                Ok(_) => break,
                Err(e) => {
                    errors += 1;
                    tries += 1;
                    if tries >= MAX_RETRIES {
                        return Err(format!("cannot send to {}: {e}", args.dst));
                    }
                    last_error = Some(e.to_string());
                    // A full queue: let it drain a little.
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
        }
        sent += 1;
    }
    println!(
        "{}",
        lab::flood::send_summary(
            u64::from(sent),
            "flows",
            start.elapsed(),
            &format!("{busy} ports busy, "),
            errors,
            last_error.as_deref(),
        )
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udpflows: {e}");
            ExitCode::FAILURE
        }
    }
}
