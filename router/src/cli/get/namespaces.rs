//! `kubectl get namespaces`.

use std::fmt::Write as _;

use cluster::Cluster;

use crate::cli::table::Ages;
use crate::cli::tabwriter::tabwriter;

/// `kubectl get namespaces`: kubectl's four defaults plus every namespace
/// an object is in, sorted, all `Active`.
pub fn get_namespaces(c: &Cluster, ages: &Ages<'_>) -> String {
    let mut t = String::from("NAME\tSTATUS\tAGE\n");
    for name in c.namespaces() {
        let _ = writeln!(
            t,
            "{name}\tActive\t{}",
            ages.age(&format!("namespace/{name}"))
        );
    }
    tabwriter(&t, 6, 3)
}
