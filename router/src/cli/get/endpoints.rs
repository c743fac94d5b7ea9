//! `kubectl get endpoints`.

use cluster::{Cluster, ServiceType};

use crate::cli::columns::{endpoint_list, service_key, truncate_endpoints};
use crate::cli::table::{get_table, with_namespace, Ages, NamespaceFilter};

/// `kubectl get endpoints`: one row per Service.
pub fn get_endpoints(c: &Cluster, ns: &NamespaceFilter, ages: &Ages<'_>) -> String {
    let rows: Vec<Vec<String>> = c
        .services
        .iter()
        // An ExternalName Service has no Endpoints object.
        .filter(|s| ns.matches(&s.namespace) && s.service_type != ServiceType::ExternalName)
        .map(|s| {
            let eps = endpoint_list(c, s, None);
            let cell = if eps.is_empty() {
                "<none>".to_owned()
            } else {
                truncate_endpoints(&eps)
            };
            with_namespace(
                ns,
                &s.namespace,
                vec![s.name.clone(), cell, ages.age(&service_key(s))],
            )
        })
        .collect();
    get_table(ns, &["NAME", "ENDPOINTS", "AGE"], rows)
}
