//! `control`: the control plane, with no packet code. It reads a router's
//! settings ([`settings`]) and translates and watches the Kubernetes API's
//! objects ([`kube`]); and it loads and validates an object file (this
//! crate's own TOML schema: nodes, Deployments, pods, Services) into a
//! [`cluster::Cluster`], for a router run without an API server
//! (`router run --config FILE`: benchmarks, tests) and the in-process
//! simulation. (Objects in a running cluster live in the Kubernetes API;
//! the object file is fixed for the life of such a router.)
//!
//! Two layers, like a Kubernetes API server: the file is first deserialized
//! into raw structs that mirror the TOML exactly (`deny_unknown_fields`, so a
//! misspelt key is an error, and integers are read as `i64` so that an out of
//! range value gets a message from us rather than from serde); then those are
//! validated and turned into a [`Cluster`](cluster::Cluster), allocating what the file leaves
//! out the way the control plane would:
//!
//! * The deployment controller: explicit `[[pods]]` with an `owner` count
//!   toward their Deployment's `replicas`; the missing ones are generated,
//!   the extra ones removed (not-ready first, then by name descending).
//!   The k-th pod a Deployment ever generates (`podsCreated` counts them) is
//!   named `<deployment>-<pod-template-hash>-<suffix>`, both parts drawn
//!   from Kubernetes' `SafeEncodeString` alphabet and derived with xxh3 of
//!   (namespace/name, hash, k), so the same file always yields the same
//!   names and a replacement never reuses one. A generated pod goes to the
//!   Deployment's pinned node, else to the node with the fewest of its pods
//!   (ties: the first in `[[nodes]]` order, so replica i of a new
//!   Deployment lands on node i mod the number of nodes).
//! * Pod IPs: explicit ones first, then round robin like the host-local
//!   IPAM plugin: from the node's `nextPodIP` (default `.2`; `.1` is the
//!   node's gateway) upward, wrapping around, skipping used addresses.
//! * ClusterIPs: xxh3 of `namespace/name` into the Service CIDR with linear
//!   probing, skipping the `kubernetes` (first host) and cluster DNS (tenth
//!   host) addresses. Headless (`clusterIP = "None"`) and ExternalName
//!   Services get none.
//! * NodePorts for NodePort/LoadBalancer ports that do not set one: xxh3 into
//!   30000-32767 with linear probing.
//!
//! Settings the file may leave out get flannel's and Kubernetes' defaults:
//! the VXLAN overlay (`vxlanVNI` 1, `vxlanPort` 8472, `underlayMTU` 1500),
//! `externalTrafficPolicy` (`Cluster`, on externally-accessible Services)
//! and `internalTrafficPolicy` (`Cluster`).
//! External and LoadBalancer IPs are never allocated: a Service has exactly
//! the `externalIPs` and `loadBalancerIPs` the file gives it.
//!
//! What Kubernetes refuses is refused here too: names outside their kind's
//! syntax (Services DNS-1035 labels; namespaces, nodes, Deployments and
//! pods DNS-1123 labels), label and selector keys and values outside the
//! label syntax; and what the data path cannot serve: node addresses that
//! are not unicast, a `vxlanPort` inside the NodePort range.
//! A [`Cluster`](cluster::Cluster) that arrives whole (over the control
//! socket) is checked as strictly by [`validate`](fn@validate).
//!
//! Every error names the key path and the offending value, e.g.
//! `services[1] "default/nginx-svc": clusterIP "10.200.0.1" is outside serviceCIDR 10.96.0.0/12`;
//! a value longer than 64 bytes is shown cut, with its length.
//!
//! The rooms: [`error`] (why a file is refused), `schema` (the raw serde
//! layer), `parse` (entry points and the overall build), `validate`
//! (names, addresses, nodes, ports, Services), `deployments` (the
//! deployment controller and pod naming), `allocate` (pod IPs, ClusterIPs,
//! node ports) and `emit` (the TOML writer [`validate`] checks a
//! `Cluster` built elsewhere with).
//!
//! A router watching a Kubernetes API instead reads its own settings file
//! ([`settings`]: `[kubernetes]` and `[cluster]`, no objects) and its
//! objects from the API ([`kube`]: translation of the API's objects into
//! the model, and the watch that turns its events into
//! [`ClusterChange`](cluster::ClusterChange)s).

mod allocate;
mod deployments;
mod emit;
pub mod error;
mod key;
pub mod kube;
mod parse;
mod schema;
pub mod settings;
mod validate;

pub use emit::to_toml;
pub use error::ConfigError;
pub use key::ObjectKey;
pub use parse::{load, parse, validate};

/// The control plane's API under the name the router has always used
/// (`control::config::parse`, ...).
pub mod config {
    pub use crate::{load, parse, to_toml, validate, ConfigError, ObjectKey};
}

#[cfg(test)]
mod tests;
