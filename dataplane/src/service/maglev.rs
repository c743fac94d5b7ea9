//! Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
//! Software Network Load Balancer", NSDI 2016, section 3.4): a lookup table
//! of [`TableSize`] slots, each naming an endpoint, that a flow hash indexes.
//!
//! The promise, and why the size depends only on the endpoint count:
//! every endpoint walks its own preference list of the slots (a
//! pseudo-random stream derived from its address alone), and the endpoints
//! take turns claiming their next free slot. Adding or removing one
//! endpoint leaves every other endpoint's preference list unchanged, so the
//! slots they held stay theirs, except for a small share that changes
//! hands because the turns now go round a different number of endpoints
//! (well under 2% for 1 to 64 endpoints at a fixed size; `tests/maglev.rs`
//! asserts < 2% for every single add or remove). That holds only while
//! the table size stays the same: another size is another set of
//! preference lists, and then almost every flow moves. The turns also give
//! every endpoint the floor or ceiling of size / N slots: an even spread,
//! within 1% when the size is at least 100 x N (the paper's advice).
//!
//! Sizes ([`TableSize::for_endpoints`]): 2039 slots up to 20 endpoints,
//! Cilium's default 16381 up to 163, 65521 beyond: every node derives the
//! same size from the same endpoints, and the spread stays within 1% up to
//! 655 endpoints. One size for every Service (Cilium's choice) would cost
//! 32 KiB per Service port: 320 MiB for 10,000 Services, and a 16381-slot
//! build (~0.5 ms) per change and per Service at start. The price of
//! sizing by count: a change that crosses 20/21 or 163/164 endpoints
//! rebuilds at another size, and flows without a conntrack entry (none of
//! a router's tracked flows: they keep their endpoint) may move.
//!
//! Cost: a table is `size` bytes (2 KiB for up to 20 endpoints; two bytes
//! a slot beyond 255 endpoints), shared by
//! the frontends of a Service port with the same endpoints, and kept across
//! changes for endpoint sets that did not change. Building one claims
//! `size` slots with about `size * ln(size)` probes in all (the last free
//! slots are found like the last coupons). A Service port with one
//! endpoint needs no table. Lookup is one hash and one index.

use std::fmt;
use std::net::SocketAddrV4;
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::splitmix::SplitMix64;

/// The number of slots of a Maglev table: a prime, so that every skip
/// visits every slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableSize(usize);

impl TableSize {
    /// Cilium's default: large enough that 64 endpoints get 256 slots each
    /// (the spread then stays within 1% of even; the paper asks for a size
    /// of at least 100 x the endpoint count), small enough to build fast.
    pub const DEFAULT: Self = Self(16_381);

    /// The size for up to 20 endpoints (>= 100 x 20).
    pub const SMALL: Self = Self(2039);

    /// The size beyond 163 endpoints (>= 100 x 655).
    pub const LARGE: Self = Self(65_521);

    /// The size of the table for `n` endpoints: [`TableSize::SMALL`] up to
    /// 20, [`TableSize::DEFAULT`] up to 163, [`TableSize::LARGE`] beyond (see
    /// the module documentation for why it depends on the count only).
    pub fn for_endpoints(n: usize) -> Self {
        match n {
            0..=20 => Self::SMALL,
            21..=163 => Self::DEFAULT,
            _ => Self::LARGE,
        }
    }

    /// The largest size accepted: the slot index must fit the hash range
    /// cheaply and a table must stay small (1 MiB of u16s at most).
    pub const MAX: usize = 1 << 19;

    /// A table size of `slots`, if it is a prime no larger than
    /// [`TableSize::MAX`].
    pub fn new(slots: usize) -> Option<Self> {
        (slots <= Self::MAX && is_prime(slots)).then_some(Self(slots))
    }

    /// The number of slots.
    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for TableSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How a Service port's table size is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableSizing {
    /// By its endpoint count ([`TableSize::for_endpoints`]): the router's.
    #[default]
    ByEndpoints,
    /// One size for every table (tests and benchmarks).
    Fixed(TableSize),
}

impl TableSizing {
    /// The size of a table for `n` endpoints.
    pub fn size_for(self, n: usize) -> TableSize {
        match self {
            Self::ByEndpoints => TableSize::for_endpoints(n),
            Self::Fixed(size) => size,
        }
    }
}

fn is_prime(n: usize) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// A table's slots: one byte each while the endpoint indices fit (up to
/// 255 endpoints: every Service of a usual cluster), else two. At 10,000
/// Services of a few endpoints that is 20 MiB instead of 40.
#[derive(Clone, PartialEq, Eq)]
enum Table {
    Narrow(Arc<[u8]>),
    Wide(Arc<[u16]>),
}

/// A table's slots, read-only: each names an endpoint index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slots<'a> {
    /// Up to 255 endpoints.
    Narrow(&'a [u8]),
    /// More.
    Wide(&'a [u16]),
}

impl Slots<'_> {
    /// The number of slots.
    pub fn len(&self) -> usize {
        match self {
            Self::Narrow(s) => s.len(),
            Self::Wide(s) => s.len(),
        }
    }

    /// Whether there are no slots (fewer than two endpoints).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The endpoint index in slot `slot`.
    #[inline]
    pub fn get(&self, slot: usize) -> Option<usize> {
        match self {
            Self::Narrow(s) => s.get(slot).map(|&i| usize::from(i)),
            Self::Wide(s) => s.get(slot).map(|&i| usize::from(i)),
        }
    }

    /// Where the slots are stored (tables are shared: equal pointers are
    /// one table).
    pub fn as_ptr(&self) -> *const u8 {
        match self {
            Self::Narrow(s) => s.as_ptr(),
            Self::Wide(s) => s.as_ptr().cast(),
        }
    }

    /// Every slot's endpoint index.
    pub fn to_vec(&self) -> Vec<u16> {
        match self {
            Self::Narrow(s) => s.iter().map(|&i| u16::from(i)).collect(),
            Self::Wide(s) => s.to_vec(),
        }
    }
}

/// A Maglev lookup table for a sorted list of endpoints. Cheap to clone
/// (the slots are shared).
#[derive(Clone, PartialEq, Eq)]
pub struct Maglev {
    /// Which endpoint (an index into the list the table was built for)
    /// each slot names; empty when there are fewer than two endpoints.
    table: Table,
    /// How many endpoints the table was built for.
    endpoints: usize,
}

impl fmt::Debug for Maglev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Maglev")
            .field("slots", &self.slots().len())
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl Maglev {
    /// Builds the table for `endpoints` (sorted: the order is the order of
    /// the turns, so every node must use the same one). At most
    /// `u16::MAX` endpoints take part; with more endpoints than slots, the
    /// last ones get none.
    pub fn new(endpoints: &[SocketAddrV4], size: TableSize) -> Self {
        let n = endpoints.len().min(usize::from(u16::MAX));
        let table = if n < 2 {
            // Zero endpoints: nothing to pick; one: always that one.
            Table::Narrow(Arc::from([]))
        } else if n <= usize::from(u8::MAX) {
            Table::Narrow(Arc::from(fill::<u8>(&endpoints[..n], size.get())))
        } else {
            Table::Wide(Arc::from(fill::<u16>(&endpoints[..n], size.get())))
        };
        Self {
            table,
            endpoints: n,
        }
    }

    /// The index of the endpoint for a flow with this hash, or `None` when
    /// there are no endpoints.
    #[inline]
    pub fn pick(&self, hash: u64) -> Option<usize> {
        let slots = self.slots();
        if slots.is_empty() {
            return (self.endpoints == 1).then_some(0);
        }
        slots.get((hash % slots.len() as u64) as usize)
    }

    /// Every slot's endpoint index (empty for fewer than two endpoints).
    pub fn slots(&self) -> Slots<'_> {
        match &self.table {
            Table::Narrow(s) => Slots::Narrow(s),
            Table::Wide(s) => Slots::Wide(s),
        }
    }
}

/// The seed of an endpoint's preference stream. Any fixed value works;
/// changing it moves flows between routers of different versions, so it
/// is pinned by a test.
const PREFERENCE_SEED: u64 = 3;

/// An endpoint's preference list of slots: a SplitMix64 stream seeded by a
/// hash of its address alone (so every node and every run agree), mapped
/// onto the `m` slots by a multiply-shift.
///
/// Not the paper's arithmetic permutation (offset + j * skip): two
/// endpoints whose skips happen to be equal (1 in `m - 1` per pair, so
/// common among dozens of endpoints) walk the same cycle at different
/// phases, and adding or removing a third endpoint then moved a third of
/// their flows between them (found by the disruption property test).
/// Independent streams have no such structure. A stream may name a slot
/// twice; a taken slot is skipped like any other.
struct Preferences {
    stream: SplitMix64,
    m: u64,
}

impl Preferences {
    fn new(e: &SocketAddrV4, m: usize) -> Self {
        let mut b = [0u8; 6];
        b[..4].copy_from_slice(&e.ip().octets());
        b[4..].copy_from_slice(&e.port().to_be_bytes());
        Preferences {
            stream: SplitMix64::new(xxh3_64_with_seed(&b, PREFERENCE_SEED)),
            m: m as u64,
        }
    }

    #[inline]
    fn next(&mut self) -> usize {
        self.stream.next_below(self.m) as usize
    }
}

/// A slot's endpoint index as stored: `u8` or `u16`, whose largest value
/// marks a free slot while filling.
trait Slot: Copy + Eq {
    const FREE: Self;
    /// `i`, known to be below `FREE`.
    fn from_index(i: usize) -> Self;
}

impl Slot for u8 {
    const FREE: Self = u8::MAX;
    fn from_index(i: usize) -> Self {
        i as u8
    }
}

impl Slot for u16 {
    const FREE: Self = u16::MAX;
    fn from_index(i: usize) -> Self {
        i as u16
    }
}

/// The paper's population loop: endpoints take turns claiming the next
/// free slot of their preference list until every slot is claimed. (At
/// most `T::FREE` endpoints: their indices stay below it.)
fn fill<T: Slot>(endpoints: &[SocketAddrV4], m: usize) -> Vec<T> {
    let mut prefs: Vec<Preferences> = endpoints.iter().map(|e| Preferences::new(e, m)).collect();
    let mut table = vec![T::FREE; m];
    let mut filled = 0;
    'fill: loop {
        for (i, p) in prefs.iter_mut().enumerate() {
            let mut pos = p.next();
            while table[pos] != T::FREE {
                pos = p.next();
            }
            table[pos] = T::from_index(i);
            filled += 1;
            if filled == m {
                break 'fill;
            }
        }
    }
    table
}
