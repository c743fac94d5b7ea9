//! `synflood`: a bounded TCP SYN (or UDP) flood from a raw socket, for the
//! lab's resilience tests. Run it inside a lab namespace only
//! (`scripts/lab exec external -- synflood ...`).
//!
//! `synflood --dst IP:PORT (--src-net NET/LEN | --src IP) [--count N]
//! [--seconds S] [--rate PPS] [--udp PAYLOAD]`
//!
//! With `--src-net` every packet has a random source address inside the
//! prefix (use a lab-only prefix such as 10.200.0.0/16) and a random source
//! port; with `--src` one address and random source ports. It stops after
//! `--count` packets or `--seconds`, whichever comes first, and prints
//! `sent N packets in S s (R/s), E send errors`. Send errors (ENOBUFS when
//! the queue is full, EPERM from a firewall) are counted, not fatal.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use etherparse::PacketBuilder;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// A bounded spoofed-source TCP SYN (or UDP) flood from a raw socket.
#[derive(Debug, Parser)]
#[command(name = "synflood")]
struct Args {
    /// Destination address and port.
    #[arg(long)]
    dst: SocketAddrV4,
    /// Random source addresses inside this prefix (e.g. 10.200.0.0/16).
    #[arg(long, conflicts_with = "src", required_unless_present = "src")]
    src_net: Option<String>,
    /// One source address (random source ports).
    #[arg(long)]
    src: Option<Ipv4Addr>,
    /// Most packets to send.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Most seconds to send for.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Packets per second at most (0: as fast as the socket takes them).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Send UDP datagrams with this payload instead of TCP SYNs.
    #[arg(long)]
    udp: Option<String>,
}

/// Where source addresses come from.
#[derive(Debug, Clone, Copy)]
enum Sources {
    /// Random hosts of `base/len`.
    Net { base: u32, host_mask: u32 },
    /// One address.
    Fixed(Ipv4Addr),
}

impl Sources {
    fn pick(self, rng: &mut XorShift) -> Ipv4Addr {
        match self {
            Sources::Fixed(a) => a,
            Sources::Net { base, host_mask } => {
                // Neither the network's first nor its last address.
                let host =
                    (rng.next() as u32 & host_mask).clamp(1, host_mask.saturating_sub(1).max(1));
                Ipv4Addr::from(base | host)
            }
        }
    }
}

/// Parses `A.B.C.D/LEN` (LEN 8-32, so a flood can never cover everything).
fn parse_net(text: &str) -> Result<Sources, String> {
    let (addr, len) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected ADDRESS/LENGTH"))?;
    let addr: Ipv4Addr = addr.parse().map_err(|e| format!("{text:?}: {e}"))?;
    let len: u32 = len.parse().map_err(|e| format!("{text:?}: {e}"))?;
    if !(8..=32).contains(&len) {
        return Err(format!("{text:?}: prefix length must be 8-32"));
    }
    let host_mask = u32::MAX.checked_shr(len).unwrap_or(0);
    Ok(Sources::Net {
        base: u32::from(addr) & !host_mask,
        host_mask,
    })
}

/// xorshift64*: enough randomness for addresses and ports, no dependency.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        XorShift(nanos | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One packet from `src` to `dst`.
fn packet(
    src: Ipv4Addr,
    dst: SocketAddrV4,
    rng: &mut XorShift,
    udp: Option<&[u8]>,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    buf.clear();
    let sport = 1024 + (rng.next() % (65536 - 1024)) as u16;
    let ip = PacketBuilder::ipv4(src.octets(), dst.ip().octets(), 64);
    let written = match udp {
        Some(payload) => ip.udp(sport, dst.port()).write(buf, payload),
        None => ip
            .tcp(sport, dst.port(), rng.next() as u32, 64240)
            .syn()
            .write(buf, &[]),
    };
    written.map_err(|e| format!("cannot build a packet: {e}"))
}

fn flood(args: &Args) -> Result<(), String> {
    let sources = match (&args.src_net, args.src) {
        (Some(net), _) => parse_net(net)?,
        (None, Some(a)) => Sources::Fixed(a),
        (None, None) => return Err("--src-net or --src is required".into()),
    };
    let protocol = if args.udp.is_some() {
        Protocol::UDP
    } else {
        Protocol::TCP
    };
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(protocol))
        .map_err(|e| format!("cannot open a raw socket (needs CAP_NET_RAW): {e}"))?;
    socket
        .set_header_included_v4(true)
        .map_err(|e| format!("cannot set IP_HDRINCL: {e}"))?;
    let to = SockAddr::from(args.dst);
    let udp = args.udp.as_deref().map(str::as_bytes);
    let mut rng = XorShift::seeded();
    let mut buf = Vec::with_capacity(128);
    let limit = Duration::from_secs_f64(args.seconds.max(0.0));
    let start = Instant::now();
    let (mut sent, mut errors) = (0u64, 0u64);
    let mut last_error = None;
    while sent < args.count {
        let elapsed = start.elapsed();
        if elapsed >= limit {
            break;
        }
        if args.rate > 0 {
            // Paced: no packet before its slot.
            let due = Duration::from_secs_f64(sent as f64 / args.rate as f64);
            if let Some(wait) = due.checked_sub(elapsed) {
                std::thread::sleep(wait.min(Duration::from_millis(10)));
                continue;
            }
        }
        packet(sources.pick(&mut rng), args.dst, &mut rng, udp, &mut buf)?;
        match socket.send_to(&buf, &to) {
            Ok(_) => sent += 1,
            Err(e) => {
                errors += 1;
                last_error = Some(e.to_string());
                // A full queue: let it drain a little.
                std::thread::sleep(Duration::from_micros(50));
                if errors > args.count.saturating_mul(10).max(1000) {
                    break;
                }
            }
        }
    }
    println!(
        "{}",
        lab::flood::send_summary(
            sent,
            "packets",
            start.elapsed(),
            "",
            errors,
            last_error.as_deref(),
        )
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match flood(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synflood: {e}");
            ExitCode::FAILURE
        }
    }
}
