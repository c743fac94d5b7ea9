//! The renderers' tests: goldens of the default `config.toml`, the
//! Kubernetes walkthrough's own output, and the details kubectl gets right.

use super::*;
use cluster::Cluster;

mod details;
mod goldens;
mod json;
mod walkthrough;

fn default_cluster() -> Cluster {
    control::config::parse(include_str!(
        "../../../../control/tests/fixtures/cluster.toml"
    ))
    .expect("default config")
}

fn default_ns() -> NamespaceFilter {
    NamespaceFilter::One("default".into())
}

const OFFLINE: Ages<'static> = Ages {
    now_unix: 0,
    created: None,
};

/// Collapses runs of whitespace, as the walkthrough text was captured.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
