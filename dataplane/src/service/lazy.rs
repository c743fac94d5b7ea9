//! A Maglev table built when it is first needed.
//!
//! A router that starts against a large cluster would otherwise build every
//! Service port's table before it serves anything: at 10,000 Services that
//! is ~160 million slot probes, half of the start-up. Built lazily, a
//! table costs its first packet (or the router's idle warm-up, see
//! [`super::ServiceTable::warm_up`]) ~20 us at 2039 slots, and a Service
//! nobody calls never costs its table's memory.
//!
//! The table is a pure function of the sorted endpoints and the size, so a
//! table built late picks exactly what one built early would: every node
//! and a restarted router still agree on a flow's endpoint.

use std::fmt;
use std::net::SocketAddrV4;
use std::sync::{Arc, OnceLock};

use super::maglev::{Maglev, TableSize};

/// A shared, possibly not yet built, Maglev table of one endpoint set.
/// Clones share the table: frontends with the same endpoints build it
/// once.
#[derive(Clone)]
pub struct LazyMaglev(Arc<Cell>);

struct Cell {
    size: TableSize,
    table: OnceLock<Maglev>,
}

impl LazyMaglev {
    /// A table of `size` slots for `endpoints`, built now if that is
    /// cheap (fewer than two endpoints need no slots) or `eager`.
    pub(crate) fn new(endpoints: &[SocketAddrV4], size: TableSize, eager: bool) -> Self {
        let lazy = Self(Arc::new(Cell {
            size,
            table: OnceLock::new(),
        }));
        if eager || endpoints.len() < 2 {
            lazy.get(endpoints);
        }
        lazy
    }

    /// The table, built from `endpoints` (the sorted, deduplicated
    /// endpoints it was made for) on the first call.
    #[inline]
    pub(crate) fn get(&self, endpoints: &[SocketAddrV4]) -> &Maglev {
        self.0
            .table
            .get_or_init(|| Maglev::new(endpoints, self.0.size))
    }

    /// Whether the table has been built.
    pub fn is_built(&self) -> bool {
        self.0.table.get().is_some()
    }

    /// The number of slots it has (or will have).
    pub fn size(&self) -> TableSize {
        self.0.size
    }
}

/// Equal when of the same size: the entries that hold them compare their
/// endpoints, and a table is a function of the endpoints and the size.
impl PartialEq for LazyMaglev {
    fn eq(&self, other: &Self) -> bool {
        self.0.size == other.0.size
    }
}

impl Eq for LazyMaglev {}

impl fmt::Debug for LazyMaglev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyMaglev")
            .field("size", &self.0.size.get())
            .field("built", &self.0.table.get())
            .finish()
    }
}
