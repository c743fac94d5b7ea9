//! `kubectl get services`.

use cluster::Cluster;

use crate::cli::columns::{cluster_ip, external_ip, format_labels, port_string, service_key};
use crate::cli::table::{get_table, with_namespace, Ages, NamespaceFilter};

/// `kubectl get services` (`-o wide` when `wide`).
pub fn get_services(c: &Cluster, ns: &NamespaceFilter, wide: bool, ages: &Ages<'_>) -> String {
    let mut header = vec![
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
    ];
    if wide {
        header.push("SELECTOR");
    }
    let rows: Vec<Vec<String>> = c
        .services
        .iter()
        .filter(|s| ns.matches(&s.namespace))
        .map(|s| {
            let mut row = vec![
                s.name.clone(),
                s.service_type.to_string(),
                cluster_ip(s),
                external_ip(s, wide),
                port_string(s),
                ages.age(&service_key(s)),
            ];
            if wide {
                row.push(format_labels(&s.selector));
            }
            with_namespace(ns, &s.namespace, row)
        })
        .collect();
    get_table(ns, &header, rows)
}
