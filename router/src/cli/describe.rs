//! `kubectl describe service` and `kubectl describe endpoints`.

use cluster::{Cluster, ServiceType, SessionAffinity};

use super::columns::{
    cluster_ip, endpoint_list, externally_accessible, format_labels, join_ips, truncate_endpoints,
};
use super::table::NotFound;
use super::tabwriter::tabwriter;

/// `kubectl describe endpoints NAME -n NS`: one subset with the ready
/// addresses, the selected pods that are not ready, and the ports (target
/// ports as resolved on the first endpoint).
pub fn describe_endpoints(c: &Cluster, ns: &str, name: &str) -> Result<String, NotFound> {
    let s = c
        .service(ns, name)
        .filter(|s| s.service_type != ServiceType::ExternalName)
        .ok_or_else(|| NotFound {
            kind: "endpoints",
            name: name.to_owned(),
        })?;
    let mut ready: Vec<std::net::Ipv4Addr> = Vec::new();
    let mut ports: Vec<(String, u16, String)> = Vec::new();
    for port in &s.ports {
        let eps = c.endpoints(s, port);
        ready.extend(eps.iter().map(|e| e.ip));
        if let Some(first) = eps.first() {
            let pname = port.name.clone().unwrap_or_else(|| "<unset>".to_owned());
            ports.push((pname, first.port, port.protocol.to_string()));
        }
    }
    ready.sort();
    ready.dedup();
    // Selected pods that are not ready (an empty selector selects none).
    let mut not_ready: Vec<std::net::Ipv4Addr> = c
        .pods
        .iter()
        .filter(|p| !s.selector.is_empty() && !p.ready && p.namespace == s.namespace)
        .filter(|p| s.selector.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
        .map(|p| p.ip)
        .collect();
    not_ready.sort();
    let list = |ips: &[std::net::Ipv4Addr]| {
        if ips.is_empty() {
            "<none>".to_owned()
        } else {
            ips.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    let labels = if s.labels.is_empty() {
        "<none>".to_owned()
    } else {
        format_labels(&s.labels)
    };
    let head = tabwriter(
        &format!(
            "Name:\t{}\nNamespace:\t{}\nLabels:\t{labels}\nAnnotations:\t<none>\n",
            s.name, s.namespace
        ),
        0,
        2,
    );
    let mut out = format!("{head}Subsets:\n");
    if ready.is_empty() && not_ready.is_empty() {
        out.push('\n');
    } else {
        out.push_str(&tabwriter(
            &format!(
                "  Addresses:\t{}\n  NotReadyAddresses:\t{}\n",
                list(&ready),
                list(&not_ready)
            ),
            0,
            2,
        ));
        out.push_str("  Ports:\n");
        let mut table = String::from("    Name\tPort\tProtocol\n    ----\t----\t--------\n");
        for (n, p, proto) in &ports {
            table.push_str(&format!("    {n}\t{p}\t{proto}\n"));
        }
        out.push_str(&tabwriter(&table, 0, 2));
        out.push('\n');
    }
    out.push_str("Events:  <none>\n");
    Ok(out)
}

/// `kubectl describe service NAME -n NS`.
pub fn describe_service(c: &Cluster, ns: &str, name: &str) -> Result<String, NotFound> {
    let s = c.service(ns, name).ok_or_else(|| NotFound {
        kind: "services",
        name: name.to_owned(),
    })?;
    let mut t = String::new();
    let mut line = |cells: &[&str]| {
        t.push_str(&cells.join("\t"));
        t.push('\n');
    };
    line(&["Name:", &s.name]);
    line(&["Namespace:", &s.namespace]);
    if s.labels.is_empty() {
        line(&["Labels:", "<none>"]);
    } else {
        for (i, (k, v)) in s.labels.iter().enumerate() {
            let title = if i == 0 { "Labels:" } else { "" };
            line(&[title, &format!("{k}={v}")]);
        }
    }
    line(&["Annotations:", "<none>"]);
    line(&["Selector:", &format_labels(&s.selector)]);
    line(&["Type:", &s.service_type.to_string()]);
    let external_name = s.service_type == ServiceType::ExternalName;
    // An ExternalName Service has no IP family and no ClusterIP; a headless
    // one has the ClusterIP "None".
    if external_name {
        line(&["IP Families:", "<none>"]);
        line(&["IP:", ""]);
        line(&["IPs:", "<none>"]);
    } else {
        line(&["IP Family Policy:", "SingleStack"]);
        line(&["IP Families:", "IPv4"]);
        let ip = cluster_ip(s);
        line(&["IP:", &ip]);
        line(&["IPs:", &ip]);
    }
    // kubectl prints spec.externalIPs, spec.externalName, then
    // status.loadBalancer.ingress.
    if !s.external_ips.is_empty() {
        line(&["External IPs:", &join_ips(&s.external_ips, ",")]);
    }
    if let Some(name) = &s.external_name {
        line(&["External Name:", name]);
    }
    if s.service_type == ServiceType::LoadBalancer && !s.load_balancer_ips.is_empty() {
        line(&[
            "LoadBalancer Ingress:",
            &join_ips(&s.load_balancer_ips, ", "),
        ]);
    }
    for (i, p) in s.ports.iter().enumerate() {
        let pname = p.name.as_deref().unwrap_or("<unset>");
        line(&["Port:", pname, &format!("{}/{}", p.port, p.protocol)]);
        line(&["TargetPort:", &format!("{}/{}", p.target_port, p.protocol)]);
        if let Some(np) = p.node_port {
            line(&["NodePort:", pname, &format!("{np}/{}", p.protocol)]);
        }
        line(&[
            "Endpoints:",
            &truncate_endpoints(&endpoint_list(c, s, Some(i))),
        ]);
    }
    let affinity = match s.session_affinity {
        SessionAffinity::None => "None",
        SessionAffinity::ClientIP { .. } => "ClientIP",
    };
    line(&["Session Affinity:", affinity]);
    // The API server defaults the policy on exactly the externally
    // accessible Services, and kubectl prints it when it is set.
    if externally_accessible(s) {
        line(&[
            "External Traffic Policy:",
            &s.external_traffic_policy.to_string(),
        ]);
    }
    // Defaulted on every type but ExternalName; kubectl prints it after
    // the external policy (and HealthCheck NodePort, source ranges).
    if !external_name {
        line(&[
            "Internal Traffic Policy:",
            &s.internal_traffic_policy.to_string(),
        ]);
    }
    line(&["Events:", "<none>"]);
    Ok(tabwriter(&t, 0, 2))
}
