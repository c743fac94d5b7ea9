//! What every `get` table shares: AGE cells, the namespace filter (`-n` /
//! `-A`), kubectl's "not found" and "No resources found" messages, and the
//! table itself (header, NAMESPACE column, tabwriter settings).

use std::collections::BTreeMap;

pub use cluster::human_duration;

use super::tabwriter::tabwriter;

/// Creation times for AGE: keys `"pod/<ns>/<name>"`,
/// `"service/<ns>/<name>"` and `"namespace/<name>"`, values unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct Ages<'a> {
    /// The current time, unix seconds.
    pub now_unix: i64,
    /// Creation times; `None` when unknown (the cluster was read from a file),
    /// and AGE then shows `<unknown>`.
    pub created: Option<&'a BTreeMap<String, i64>>,
}

impl Ages<'_> {
    /// The AGE cell for the object `key`.
    pub fn age(&self, key: &str) -> String {
        match self.created.and_then(|m| m.get(key)) {
            Some(&t) => human_duration(self.now_unix.saturating_sub(t)),
            None => "<unknown>".to_owned(),
        }
    }
}

/// Which namespaces `get` lists: `-n NS` or `-A`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceFilter {
    /// One namespace (`-n NS`, default `default`).
    One(String),
    /// Every namespace (`-A`); adds a NAMESPACE column.
    All,
}

impl NamespaceFilter {
    pub fn matches(&self, namespace: &str) -> bool {
        match self {
            Self::One(ns) => ns == namespace,
            Self::All => true,
        }
    }

    /// kubectl's message when nothing matched.
    fn nothing_found(&self) -> String {
        match self {
            Self::One(ns) => format!("No resources found in {ns} namespace.\n"),
            Self::All => "No resources found\n".to_owned(),
        }
    }
}

/// `describe` of an object that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Error from server (NotFound): {kind} \"{name}\" not found")]
pub struct NotFound {
    /// The kind, as kubectl names it (`services`, `endpoints`).
    pub kind: &'static str,
    /// The name asked for.
    pub name: String,
}

/// Prepends the NAMESPACE cell under `-A`.
pub fn with_namespace(ns: &NamespaceFilter, namespace: &str, mut row: Vec<String>) -> Vec<String> {
    if *ns == NamespaceFilter::All {
        row.insert(0, namespace.to_owned());
    }
    row
}

/// A `kubectl get` table, or kubectl's "No resources found" message.
pub fn get_table(ns: &NamespaceFilter, header: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return ns.nothing_found();
    }
    let mut t = String::new();
    if *ns == NamespaceFilter::All {
        t.push_str("NAMESPACE\t");
    }
    t.push_str(&header.join("\t"));
    t.push('\n');
    for row in rows {
        t.push_str(&row.join("\t"));
        t.push('\n');
    }
    tabwriter(&t, 6, 3)
}
