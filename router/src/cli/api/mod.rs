//! The CLI as a thin client of a Kubernetes API server (ours or a real
//! one): `get` asks the server for kubectl's Table (the columns are the
//! server's, the same code answers `kubectl get`), `-o json` for the
//! objects, `delete` deletes. For machines without kubectl; `conntrack`
//! and `stats` stay node-local (they ask the router's control socket).

mod apply;
mod client;
mod describe;
mod table;

pub use client::ApiClient;
pub use table::{render, Table};

use super::args::Resource;
use super::NamespaceFilter;

/// The API path of `resource` (core `v1`) in `ns`, or of the one object
/// `name`.
pub fn path(resource: Resource, ns: &NamespaceFilter, name: Option<&str>) -> Option<String> {
    let plural = match resource {
        Resource::Pods => "pods",
        Resource::Services => "services",
        Resource::Endpoints => "endpoints",
        Resource::Namespaces => "namespaces",
        Resource::Conntrack | Resource::Stats => return None,
    };
    let mut path = match (resource, ns) {
        (Resource::Namespaces, _) | (_, NamespaceFilter::All) => format!("/api/v1/{plural}"),
        (_, NamespaceFilter::One(ns)) => format!("/api/v1/namespaces/{ns}/{plural}"),
    };
    if let Some(name) = name {
        path.push('/');
        path.push_str(name);
    }
    Some(path)
}

#[cfg(test)]
mod tests;
