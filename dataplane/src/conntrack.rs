//! The connection tracking table: every flow the router has seen, with its
//! tuple in both directions, its TCP state and its expiry.
//!
//! An entry holds the *original* tuple (as the first packet travelled) and the
//! *reply* tuple (as replies will travel, after NAT). Both tuples index the
//! same entry, so a lookup in either direction is one hash probe. NAT is not
//! stored separately: a packet matching the original tuple is rewritten to the
//! reversed reply tuple, and a reply is rewritten to the reversed original,
//! exactly as Linux conntrack derives it.
//!
//! Time is always an argument (`now`); nothing here reads a clock. Entries
//! expire lazily (an expired entry found by a lookup is removed on the spot)
//! and by a sweep that [`ConnTrack::handle_timeout`] runs once per
//! [`SWEEP_INTERVAL`], [`SWEEP_BATCH`] slots per call so that a large table
//! never stalls the packet loop (the next batch is due at once).
//!
//! The table is bounded: when it is full, the oldest entry that never saw a
//! reply is evicted (the kernel's "early drop"); when every entry has been
//! replied, the new flow is refused.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::packet::{FlowKey, TcpFlags, Transport, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// How often the expiry sweep runs.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Slots the sweep looks at per [`ConnTrack::handle_timeout`] call.
pub const SWEEP_BATCH: usize = 8192;

/// Default capacity (kube-proxy's `conntrack.min`, 131072).
pub const DEFAULT_CAPACITY: usize = 131_072;

/// Per-state timeouts. Defaults are kube-proxy's and the Linux kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// TCP SYN sent, no answer yet (kernel: 120 s).
    pub tcp_syn_sent: Duration,
    /// TCP SYN-ACK seen (kernel: 60 s).
    pub tcp_syn_recv: Duration,
    /// TCP established (kube-proxy `tcpEstablishedTimeout`: 24 h).
    pub tcp_established: Duration,
    /// TCP FIN seen from one side (kernel: 120 s).
    pub tcp_fin_wait: Duration,
    /// TCP FIN acknowledged, other side still open (kube-proxy
    /// `tcpCloseWaitTimeout`: 1 h).
    pub tcp_close_wait: Duration,
    /// TCP FIN from both sides (kernel: 30 s).
    pub tcp_last_ack: Duration,
    /// TCP closed cleanly (kernel: 120 s).
    pub tcp_time_wait: Duration,
    /// TCP reset (kernel: 10 s).
    pub tcp_close: Duration,
    /// UDP seen in one direction only (kernel: 30 s).
    pub udp: Duration,
    /// UDP seen both ways (kernel `udp_timeout_stream`: 120 s).
    pub udp_stream: Duration,
    /// ICMP (kernel: 30 s).
    pub icmp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            tcp_syn_sent: Duration::from_secs(120),
            tcp_syn_recv: Duration::from_secs(60),
            tcp_established: Duration::from_secs(24 * 3600),
            tcp_fin_wait: Duration::from_secs(120),
            tcp_close_wait: Duration::from_secs(3600),
            tcp_last_ack: Duration::from_secs(30),
            tcp_time_wait: Duration::from_secs(120),
            tcp_close: Duration::from_secs(10),
            udp: Duration::from_secs(30),
            udp_stream: Duration::from_secs(120),
            icmp: Duration::from_secs(30),
        }
    }
}

/// TCP connection states, named as `conntrack -L` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TcpState {
    /// SYN seen from the originator.
    SynSent,
    /// SYN-ACK seen from the responder.
    SynRecv,
    /// Three-way handshake completed.
    Established,
    /// FIN seen from one side.
    FinWait,
    /// That FIN acknowledged; the other side has not closed.
    CloseWait,
    /// FIN seen from both sides.
    LastAck,
    /// The last FIN acknowledged.
    TimeWait,
    /// Reset.
    Close,
}

impl TcpState {
    /// The name `conntrack -L` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SynSent => "SYN_SENT",
            Self::SynRecv => "SYN_RECV",
            Self::Established => "ESTABLISHED",
            Self::FinWait => "FIN_WAIT",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSE",
        }
    }
}

/// Which way a packet travels relative to its flow's first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Same direction as the first packet.
    Original,
    /// The other way.
    Reply,
}

/// Index of an entry in the table. Valid until the entry is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryId(u32);

/// One tracked flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The tuple of the flow's first packet, before NAT.
    pub original: FlowKey,
    /// The tuple replies travel with, before reverse NAT.
    pub reply: FlowKey,
    /// TCP state (`None` for UDP and ICMP).
    pub tcp: Option<TcpState>,
    /// Whether a packet was seen in the reply direction.
    pub replied: bool,
    /// Which side sent the first FIN.
    fin_from: Option<Direction>,
    /// When the entry expires unless refreshed.
    pub expires: Instant,
    /// Packets seen, original then reply direction.
    pub packets: [u64; 2],
    /// Bytes seen, original then reply direction.
    pub bytes: [u64; 2],
}

impl Entry {
    /// Whether this entry rewrites addresses or ports (DNAT or SNAT).
    pub fn is_nat(&self) -> bool {
        self.reply != self.original.reversed()
    }

    /// The tuple a packet with direction `dir` is rewritten to.
    pub fn translated(&self, dir: Direction) -> FlowKey {
        match dir {
            Direction::Original => self.reply.reversed(),
            Direction::Reply => self.original.reversed(),
        }
    }

    /// One line like `conntrack -L`:
    /// `tcp      6 86399 ESTABLISHED src=.. dst=.. sport=.. dport=.. src=.. ... [ASSURED]`.
    pub fn render(&self, now: Instant) -> String {
        let (name, proto) = match self.original.proto {
            PROTO_TCP => ("tcp", 6),
            PROTO_UDP => ("udp", 17),
            PROTO_ICMP => ("icmp", 1),
            other => ("unknown", other),
        };
        let ttl = self.expires.saturating_duration_since(now).as_secs();
        let mut line = format!("{name:<8} {proto} {ttl} ");
        if let Some(state) = self.tcp {
            let _ = write!(line, "{} ", state.as_str());
        }
        let _ = write!(line, "{}", tuple(&self.original));
        if !self.replied {
            line.push_str(" [UNREPLIED]");
        }
        let _ = write!(line, " {}", tuple(&self.reply));
        if self.replied && self.tcp.is_none_or(|s| s != TcpState::SynRecv) {
            line.push_str(" [ASSURED]");
        }
        let _ = write!(
            line,
            " packets={}/{} bytes={}/{} mark=0 use=1",
            self.packets[0], self.packets[1], self.bytes[0], self.bytes[1]
        );
        line
    }
}

fn tuple(k: &FlowKey) -> String {
    match k.proto {
        PROTO_ICMP => format!("src={} dst={} id={}", k.src, k.dst, k.sport),
        _ => format!(
            "src={} dst={} sport={} dport={}",
            k.src, k.dst, k.sport, k.dport
        ),
    }
}

/// Why an entry could not be inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The table is at capacity and every entry has seen a reply.
    #[error("conntrack table full ({0} entries, all replied)")]
    Full(usize),
    /// One of the tuples is already tracked by another entry.
    #[error("tuple already tracked")]
    Clash,
}

struct Slot {
    entry: Option<Entry>,
    generation: u32,
}

type Hasher = ahash::RandomState;

/// The table. See the module documentation.
pub struct ConnTrack {
    index: HashMap<FlowKey, (EntryId, Direction), Hasher>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Entries in creation order that had not been replied when created;
    /// `(slot, generation)`, stale items skipped.
    unreplied: VecDeque<(u32, u32)>,
    len: usize,
    evicted: u64,
    capacity: usize,
    timeouts: Timeouts,
    next_sweep: Option<Instant>,
    /// Where the sweep goes on from.
    sweep_cursor: usize,
}

impl ConnTrack {
    /// An empty table of at most `capacity` entries. `seed` keys the hash
    /// function (so flow tuples chosen by a client cannot force collisions).
    pub fn new(capacity: usize, timeouts: Timeouts, seed: u64) -> Self {
        let hasher = Hasher::with_seeds(
            seed,
            seed ^ 0x9e37_79b9_7f4a_7c15,
            !seed,
            seed.rotate_left(17),
        );
        Self {
            index: HashMap::with_capacity_and_hasher(capacity.min(1 << 20) * 2, hasher),
            slots: Vec::new(),
            free: Vec::new(),
            unreplied: VecDeque::new(),
            len: 0,
            evicted: 0,
            capacity: capacity.max(1),
            timeouts,
            next_sweep: None,
            sweep_cursor: 0,
        }
    }

    /// Number of tracked flows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The capacity bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many unreplied entries were evicted to make room, ever.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The timeouts in use.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Finds the live entry `key` belongs to and the packet's direction.
    /// An expired entry is removed and reported as absent.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, now: Instant) -> Option<(EntryId, Direction)> {
        let (id, dir) = *self.index.get(key)?;
        let expired = self.get(id).is_none_or(|e| e.expires <= now);
        if expired {
            self.remove(id);
            return None;
        }
        Some((id, dir))
    }

    /// Whether `key` is tracked (by any entry, expired or not).
    pub fn contains(&self, key: &FlowKey) -> bool {
        self.index.contains_key(key)
    }

    /// The entry behind `id`.
    pub fn get(&self, id: EntryId) -> Option<&Entry> {
        self.slots.get(id.0 as usize).and_then(|s| s.entry.as_ref())
    }

    /// Records a packet of `len` bytes of a tracked flow: advances the TCP
    /// state machine and refreshes the expiry.
    #[inline]
    pub fn update(
        &mut self,
        id: EntryId,
        dir: Direction,
        transport: &Transport,
        len: usize,
        now: Instant,
    ) {
        let timeouts = self.timeouts;
        let Some(entry) = self
            .slots
            .get_mut(id.0 as usize)
            .and_then(|s| s.entry.as_mut())
        else {
            return;
        };
        let d = dir as usize;
        entry.packets[d] += 1;
        entry.bytes[d] += len as u64;
        if dir == Direction::Reply {
            entry.replied = true;
        }
        if let (Some(state), Transport::Tcp { flags, .. }) = (entry.tcp, transport) {
            let (next, fin_from) = tcp_transition(state, dir, *flags, entry.fin_from);
            entry.tcp = Some(next);
            entry.fin_from = fin_from;
        }
        entry.expires = now + timeout_for(entry, &timeouts);
    }

    /// Tracks a new flow with the given tuples. The first packet is *not*
    /// counted; call [`ConnTrack::update`] for it.
    pub fn insert(
        &mut self,
        original: FlowKey,
        reply: FlowKey,
        transport: &Transport,
        now: Instant,
    ) -> Result<EntryId, InsertError> {
        if self.index.contains_key(&original) || self.index.contains_key(&reply) {
            return Err(InsertError::Clash);
        }
        if self.len >= self.capacity && !self.evict_one_unreplied() {
            return Err(InsertError::Full(self.len));
        }
        let tcp = match transport {
            Transport::Tcp { flags, .. } if flags.syn && !flags.ack => Some(TcpState::SynSent),
            // Loose pick-up of a connection already under way (as the kernel's
            // nf_conntrack_tcp_loose): a restarted router keeps serving it.
            Transport::Tcp { .. } => Some(TcpState::Established),
            _ => None,
        };
        let mut entry = Entry {
            original,
            reply,
            tcp,
            replied: false,
            fin_from: None,
            expires: now,
            packets: [0; 2],
            bytes: [0; 2],
        };
        entry.expires = now + timeout_for(&entry, &self.timeouts);
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    entry: None,
                    generation: 0,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.generation = s.generation.wrapping_add(1);
        s.entry = Some(entry);
        let id = EntryId(slot);
        self.index.insert(original, (id, Direction::Original));
        self.index.insert(reply, (id, Direction::Reply));
        self.unreplied.push_back((slot, s.generation));
        self.len += 1;
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + SWEEP_INTERVAL);
        }
        Ok(id)
    }

    /// Removes an entry.
    pub fn remove(&mut self, id: EntryId) -> Option<Entry> {
        let slot = self.slots.get_mut(id.0 as usize)?;
        let entry = slot.entry.take()?;
        self.index.remove(&entry.original);
        self.index.remove(&entry.reply);
        self.free.push(id.0);
        self.len -= 1;
        Some(entry)
    }

    fn evict_one_unreplied(&mut self) -> bool {
        while let Some((slot, generation)) = self.unreplied.pop_front() {
            let live = self.slots.get(slot as usize).is_some_and(|s| {
                s.generation == generation && s.entry.as_ref().is_some_and(|e| !e.replied)
            });
            if live {
                self.remove(EntryId(slot));
                self.evicted += 1;
                return true;
            }
        }
        false
    }

    /// Removes every entry for which `pred` is true; returns how many.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&Entry) -> bool) -> usize {
        let ids: Vec<EntryId> = self
            .iter()
            .filter(|(_, e)| pred(e))
            .map(|(id, _)| id)
            .collect();
        ids.iter().filter(|id| self.remove(**id).is_some()).count()
    }

    /// Live entries with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (EntryId, &Entry)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.entry.as_ref().map(|e| (EntryId(i as u32), e)))
    }

    /// Runs the next batch of the expiry sweep if it is due; returns how
    /// many entries expired. A pass over the whole table takes
    /// `slots / SWEEP_BATCH` calls, each due at once after the previous one;
    /// the next pass starts [`SWEEP_INTERVAL`] after a pass ends.
    pub fn handle_timeout(&mut self, now: Instant) -> usize {
        match self.next_sweep {
            Some(t) if t <= now => {}
            _ => return 0,
        }
        let start = self.sweep_cursor.min(self.slots.len());
        let end = (start + SWEEP_BATCH).min(self.slots.len());
        let mut expired = 0;
        for i in start..end {
            if self.slots[i]
                .entry
                .as_ref()
                .is_some_and(|e| e.expires <= now)
                && self.remove(EntryId(i as u32)).is_some()
            {
                expired += 1;
            }
        }
        if end < self.slots.len() {
            self.sweep_cursor = end;
            self.next_sweep = Some(now);
            return expired;
        }
        // A pass is complete: drop the stale eviction candidates too.
        self.sweep_cursor = 0;
        let slots = &self.slots;
        self.unreplied.retain(|(slot, generation)| {
            slots.get(*slot as usize).is_some_and(|s| {
                s.generation == *generation && s.entry.as_ref().is_some_and(|e| !e.replied)
            })
        });
        self.next_sweep = (self.len > 0).then(|| now + SWEEP_INTERVAL);
        expired
    }

    /// When [`ConnTrack::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }
}

fn timeout_for(entry: &Entry, t: &Timeouts) -> Duration {
    match (entry.original.proto, entry.tcp) {
        (_, Some(state)) => match state {
            TcpState::SynSent => t.tcp_syn_sent,
            TcpState::SynRecv => t.tcp_syn_recv,
            TcpState::Established => t.tcp_established,
            TcpState::FinWait => t.tcp_fin_wait,
            TcpState::CloseWait => t.tcp_close_wait,
            TcpState::LastAck => t.tcp_last_ack,
            TcpState::TimeWait => t.tcp_time_wait,
            TcpState::Close => t.tcp_close,
        },
        (PROTO_UDP, None) if entry.replied => t.udp_stream,
        (PROTO_UDP, None) => t.udp,
        _ => t.icmp,
    }
}

/// The TCP state machine, simplified from the kernel's
/// (`nf_conntrack_proto_tcp.c`): it follows the handshake, the two FINs and
/// RST; it does not validate sequence windows.
fn tcp_transition(
    state: TcpState,
    dir: Direction,
    f: TcpFlags,
    fin_from: Option<Direction>,
) -> (TcpState, Option<Direction>) {
    use TcpState::*;
    if f.rst {
        return (Close, fin_from);
    }
    match state {
        SynSent if dir == Direction::Reply && f.syn && f.ack => (SynRecv, None),
        SynRecv if dir == Direction::Original && f.ack && !f.syn && !f.fin => (Established, None),
        SynRecv | Established if f.fin => (FinWait, Some(dir)),
        FinWait | CloseWait if fin_from.is_some_and(|d| d != dir) && f.fin => (LastAck, fin_from),
        FinWait if fin_from.is_some_and(|d| d != dir) && f.ack => (CloseWait, fin_from),
        LastAck if fin_from == Some(dir) && f.ack => (TimeWait, fin_from),
        TimeWait | Close if dir == Direction::Original && f.syn && !f.ack => (SynSent, None),
        s => (s, fin_from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn full_table_evicts_oldest_unreplied_first() {
        let t0 = Instant::now();
        let mut ct = ConnTrack::new(3, Timeouts::default(), 1);
        let syn = tcp(true, false, false, false);
        let keys: Vec<FlowKey> = (0..3).map(|i| key(1000 + i)).collect();
        let ids: Vec<EntryId> = keys
            .iter()
            .map(|k| ct.insert(*k, dnat_reply(k), &syn, t0).expect("insert"))
            .collect();
        // The oldest entry is replied: it must survive; the second-oldest goes.
        ct.update(
            ids[0],
            Direction::Reply,
            &tcp(true, true, false, false),
            40,
            t0,
        );
        let k4 = key(2000);
        ct.insert(k4, dnat_reply(&k4), &syn, t0).expect("evicts");
        assert!(ct.contains(&keys[0]));
        assert!(!ct.contains(&keys[1]));
        assert!(ct.contains(&keys[2]));
        assert_eq!(ct.len(), 3);
        // All replied: the next insert is refused.
        for k in [keys[2], k4] {
            let (id, _) = ct.lookup(&k, t0).expect("live");
            ct.update(id, Direction::Reply, &tcp(true, true, false, false), 40, t0);
        }
        let k5 = key(3000);
        assert_eq!(
            ct.insert(k5, dnat_reply(&k5), &syn, t0),
            Err(InsertError::Full(3))
        );
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
        let line = ct.get(id).expect("entry").render(t0);
        assert_eq!(
            line,
            "tcp      6 120 SYN_SENT src=10.10.1.100 dst=10.101.182.177 sport=40000 dport=80 \
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
}
