//! `kubectl get pods`.

use cluster::Cluster;

use crate::cli::table::{get_table, with_namespace, Ages, NamespaceFilter};

/// `kubectl get pods` (`-o wide` when `wide`).
pub fn get_pods(c: &Cluster, ns: &NamespaceFilter, wide: bool, ages: &Ages<'_>) -> String {
    let mut header = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
    if wide {
        header.extend(["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
    }
    let rows: Vec<Vec<String>> = c
        .pods
        .iter()
        .filter(|p| ns.matches(&p.namespace))
        .map(|p| {
            let mut row = vec![
                p.name.clone(),
                if p.ready { "1/1" } else { "0/1" }.to_owned(),
                "Running".to_owned(),
                "0".to_owned(),
                ages.age(&format!("pod/{}/{}", p.namespace, p.name)),
            ];
            if wide {
                row.extend([
                    p.ip.to_string(),
                    p.node.clone(),
                    "<none>".to_owned(),
                    "<none>".to_owned(),
                ]);
            }
            with_namespace(ns, &p.namespace, row)
        })
        .collect();
    get_table(ns, &header, rows)
}
