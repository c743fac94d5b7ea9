//! `kubectl get` tables, one module per kind.

mod endpoints;
mod namespaces;
mod pods;
mod services;

pub use endpoints::get_endpoints;
pub use namespaces::get_namespaces;
pub use pods::get_pods;
pub use services::get_services;
