//! The CLI: kubectl's verbs, flags and columns.
//!
//! [`args`] is the command line (clap), [`commands`] runs a parsed command
//! against a running router or a file; the rest renders: pure functions
//! from a [`cluster::Cluster`] to the text `kubectl get`/`describe` would
//! print for the same objects (the same columns, the same `<none>`
//! placeholders, and the same alignment, because the tables go through a
//! port of Go's `text/tabwriter` configured as kubectl configures it), or
//! to JSON ([`json`], `-o json`).

mod api;
pub mod args;
mod columns;
pub mod commands;
mod conntrack;
mod describe;
mod error;
mod get;
mod json;
mod lab;
mod stats;
mod table;
mod tabwriter;
#[cfg(test)]
mod tests;

pub use describe::{describe_endpoints, describe_service};
pub use error::CliError;
pub use get::{get_endpoints, get_namespaces, get_pods, get_services};
pub use lab::{lab_cluster, lab_nodes, lab_pods, lab_services};
#[cfg(test)]
use table::human_duration;
pub use table::{Ages, NamespaceFilter, NotFound};
#[cfg(test)]
use tabwriter::tabwriter;
