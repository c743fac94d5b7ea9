//! kubectl-style rendering of the cluster.
//!
//! Pure functions from a [`Cluster`] to the text `kubectl get`/`describe`
//! would print for the same objects: the same columns, the same `<none>`
//! placeholders, and the same alignment, because the tables go through a
//! port of Go's `text/tabwriter` configured as kubectl configures it
//! (`get`: min width 6, padding 3; `describe`: padding 2).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cluster::{Cluster, Labels, Protocol, Service, ServiceType, SessionAffinity};

/// Creation times for AGE: keys `"pod/<ns>/<name>"`,
/// `"service/<ns>/<name>"` and `"namespace/<name>"`, values unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct Ages<'a> {
    /// The current time, unix seconds.
    pub now_unix: i64,
    /// Creation times; `None` when unknown (the cluster was read from a file),
    /// and AGE then shows `<unknown>`.
    pub created: Option<&'a BTreeMap<String, i64>>,
}

impl Ages<'_> {
    /// The AGE cell for the object `key`.
    fn age(&self, key: &str) -> String {
        match self.created.and_then(|m| m.get(key)) {
            Some(&t) => human_duration(self.now_unix.saturating_sub(t)),
            None => "<unknown>".to_owned(),
        }
    }
}

/// Which namespaces `get` lists: `-n NS` or `-A`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceFilter {
    /// One namespace (`-n NS`, default `default`).
    One(String),
    /// Every namespace (`-A`); adds a NAMESPACE column.
    All,
}

impl NamespaceFilter {
    fn matches(&self, namespace: &str) -> bool {
        match self {
            Self::One(ns) => ns == namespace,
            Self::All => true,
        }
    }

    /// kubectl's message when nothing matched.
    fn nothing_found(&self) -> String {
        match self {
            Self::One(ns) => format!("No resources found in {ns} namespace.\n"),
            Self::All => "No resources found\n".to_owned(),
        }
    }
}

/// `describe` of an object that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Error from server (NotFound): {kind} \"{name}\" not found")]
pub struct NotFound {
    /// The kind, as kubectl names it (`services`, `endpoints`).
    pub kind: &'static str,
    /// The name asked for.
    pub name: String,
}

/// kubectl's `HumanDuration` of `secs` seconds: `47s`, `9m32s`, `22m`,
/// `6h5m`, `21h`, `6d21h`, `30d`, `2y100d`.
///
/// Like kubectl, up to one second in the future counts as `0s` (clock skew);
/// anything further in the future is `<invalid>`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".to_owned();
    }
    if secs < 0 {
        return "0s".to_owned();
    }
    if secs < 60 * 2 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

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

/// For scripts: one tab-separated line per pod, `namespace name ip node
/// node_pod_cidr gateway tcp_ports udp_ports`. Ports are comma-separated
/// container ports, `-` when none; the gateway is the first host address of
/// the node's pod CIDR. Pods the router serves itself
/// ([`cluster::Pod::is_router_hosted`], the cluster DNS) are left
/// out: the lab makes no namespace for them.
pub fn lab_pods(c: &Cluster) -> String {
    let mut out = String::new();
    for p in c.pods.iter().filter(|p| !p.is_router_hosted()) {
        let (cidr, gateway) = match c.node(&p.node) {
            Some(n) => (
                n.pod_cidr.to_string(),
                std::net::Ipv4Addr::from(u32::from(n.pod_cidr.network()).wrapping_add(1))
                    .to_string(),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let ports = |proto| {
            let list: Vec<String> = p
                .ports
                .iter()
                .filter(|cp| cp.protocol == proto)
                .map(|cp| cp.container_port.to_string())
                .collect();
            if list.is_empty() {
                "-".to_owned()
            } else {
                list.join(",")
            }
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{cidr}\t{gateway}\t{}\t{}",
            p.namespace,
            p.name,
            p.ip,
            p.node,
            ports(Protocol::Tcp),
            ports(Protocol::Udp),
        );
    }
    out
}

/// For scripts: one tab-separated line per node, `name address pod_cidr
/// vtep_mac`, where `vtep_mac` is the MAC of the node's VXLAN endpoint
/// ([`dataplane::overlay::vtep_mac`] of its address, `0e:6b:c0:a8:bf:91`).
pub fn lab_nodes(c: &Cluster) -> String {
    let mut out = String::new();
    for n in &c.nodes {
        let mac = dataplane::overlay::format_mac(dataplane::overlay::vtep_mac(n.underlay_ip));
        let _ = writeln!(out, "{}\t{}\t{}\t{mac}", n.name, n.underlay_ip, n.pod_cidr);
    }
    out
}

/// For scripts: one tab-separated line per Service, `namespace name type
/// cluster_ip external_ips ports`. `external_ips` are the LoadBalancer
/// ingress IPs then the external IPs, comma-separated, `-` when none (every
/// one of them must be routed to a node); `ports` is comma-separated
/// `port/PROTO`, or `port:nodePort/PROTO` when the port has a node port
/// (`80:30080/TCP,9000/UDP`).
pub fn lab_services(c: &Cluster) -> String {
    let mut out = String::new();
    for s in &c.services {
        let external: Vec<String> = s
            .load_balancer_ips
            .iter()
            .chain(&s.external_ips)
            .map(ToString::to_string)
            .collect();
        let external = if external.is_empty() {
            "-".to_owned()
        } else {
            external.join(",")
        };
        let ports = if s.ports.is_empty() {
            "-".to_owned()
        } else {
            port_string(s)
        };
        let cluster_ip = if s.headless {
            "None".to_owned()
        } else if s.service_type == ServiceType::ExternalName {
            "-".to_owned()
        } else {
            s.cluster_ip.to_string()
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{cluster_ip}\t{external}\t{ports}",
            s.namespace, s.name, s.service_type
        );
    }
    out
}

/// For scripts: the cluster-wide settings on one tab-separated line,
/// `pod_cidr service_cidr vni port underlay_mtu pod_mtu` (`port` is the
/// overlay's UDP port; pods get `pod_mtu`, the underlay's minus the VXLAN
/// overhead).
pub fn lab_cluster(c: &Cluster) -> String {
    let o = &c.overlay;
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\n",
        c.pod_cidr,
        c.service_cidr,
        o.vni,
        o.port,
        o.underlay_mtu,
        o.pod_mtu()
    )
}

// ------------------------------------------------------------------ helpers

fn service_key(s: &Service) -> String {
    format!("service/{}/{}", s.namespace, s.name)
}

/// Prepends the NAMESPACE cell under `-A`.
fn with_namespace(ns: &NamespaceFilter, namespace: &str, mut row: Vec<String>) -> Vec<String> {
    if *ns == NamespaceFilter::All {
        row.insert(0, namespace.to_owned());
    }
    row
}

/// A `kubectl get` table, or kubectl's "No resources found" message.
fn get_table(ns: &NamespaceFilter, header: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return ns.nothing_found();
    }
    let mut t = String::new();
    if *ns == NamespaceFilter::All {
        t.push_str("NAMESPACE\t");
    }
    t.push_str(&header.join("\t"));
    t.push('\n');
    for row in rows {
        t.push_str(&row.join("\t"));
        t.push('\n');
    }
    tabwriter(&t, 6, 3)
}

/// kubectl's widest LoadBalancer ingress list in `get` without `-o wide`.
const LOAD_BALANCER_WIDTH: usize = 16;

/// kubectl's EXTERNAL-IP (`getServiceExternalIP`): the external IPs, or
/// `<none>`; for a LoadBalancer the ingress IPs (sorted as strings, cut to
/// 16 characters without `-o wide`) followed by the external IPs, or
/// `<pending>` when it has neither.
fn external_ip(s: &Service, wide: bool) -> String {
    let external = join_ips(&s.external_ips, ",");
    match s.service_type {
        ServiceType::ExternalName => s.external_name.clone().unwrap_or_default(),
        ServiceType::ClusterIP | ServiceType::NodePort => {
            if external.is_empty() {
                "<none>".to_owned()
            } else {
                external
            }
        }
        ServiceType::LoadBalancer => {
            let mut ingress: Vec<String> = s
                .load_balancer_ips
                .iter()
                .map(ToString::to_string)
                .collect();
            ingress.sort();
            ingress.dedup();
            let mut lb = ingress.join(",");
            if !wide && lb.len() > LOAD_BALANCER_WIDTH {
                lb.truncate(LOAD_BALANCER_WIDTH - 3);
                lb.push_str("...");
            }
            match (lb.is_empty(), external.is_empty()) {
                (true, true) => "<pending>".to_owned(),
                (false, true) => lb,
                (true, false) => external,
                (false, false) => format!("{lb},{external}"),
            }
        }
    }
}

/// Kubernetes' `ExternallyAccessible`: NodePort, LoadBalancer, or a
/// ClusterIP Service with external IPs. Only these carry an external
/// traffic policy.
fn externally_accessible(s: &Service) -> bool {
    match s.service_type {
        ServiceType::NodePort | ServiceType::LoadBalancer => true,
        ServiceType::ClusterIP => !s.external_ips.is_empty(),
        ServiceType::ExternalName => false,
    }
}

/// kubectl's CLUSTER-IP: the address, `None` for a headless Service,
/// `<none>` for an ExternalName one (it has no ClusterIP).
fn cluster_ip(s: &Service) -> String {
    if s.service_type == ServiceType::ExternalName {
        "<none>".to_owned()
    } else if s.headless {
        "None".to_owned()
    } else {
        s.cluster_ip.to_string()
    }
}

/// `ips` joined by `sep`.
fn join_ips(ips: &[std::net::Ipv4Addr], sep: &str) -> String {
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// kubectl's PORT(S): `80/TCP`, `80:30862/TCP`, comma-joined.
fn port_string(s: &Service) -> String {
    if s.ports.is_empty() {
        return "<none>".to_owned();
    }
    s.ports
        .iter()
        .map(|p| match p.node_port {
            Some(np) => format!("{}:{np}/{}", p.port, p.protocol),
            None => format!("{}/{}", p.port, p.protocol),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `labels.FormatLabels`: `k=v,k2=v2`, or `<none>`.
fn format_labels(l: &Labels) -> String {
    if l.is_empty() {
        return "<none>".to_owned();
    }
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `ip:port` of every ready endpoint of port `only` (or of every port, in
/// port order), each port's endpoints sorted by IP.
fn endpoint_list(c: &Cluster, s: &Service, only: Option<usize>) -> Vec<String> {
    s.ports
        .iter()
        .enumerate()
        .filter(|(i, _)| only.is_none_or(|o| o == *i))
        .flat_map(|(_, p)| c.endpoints(s, p))
        .map(|e| format!("{}:{}", e.ip, e.port))
        .collect()
}

/// kubectl's `formatEndpoints`: at most three, then ` + N more...`.
fn truncate_endpoints(eps: &[String]) -> String {
    const MAX: usize = 3;
    if eps.len() > MAX {
        format!("{} + {} more...", eps[..MAX].join(","), eps.len() - MAX)
    } else {
        eps.join(",")
    }
}

/// A port of Go's `text/tabwriter` (left-aligned, space padding, no flags):
/// cells are `\t`-terminated, the last cell of a line is not part of any
/// column, and a column's width is fixed per block of consecutive lines that
/// have a cell in it: the widest cell plus `padding`, at least `min_width`.
fn tabwriter(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    format_block(
        &lines,
        0,
        lines.len(),
        &mut widths,
        min_width,
        padding,
        &mut out,
    );
    out
}

fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    min_width: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        // `this` starts a block of lines with a cell in `column`.
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = min_width;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + padding);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, min_width, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &[usize],
    out: &mut String,
) {
    for line in &lines[line0..line1] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(&w) = widths.get(j) {
                if j + 1 < line.len() {
                    let n = w.saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', n));
                }
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster::{Pod, Protocol, ServicePort, TargetPort};
    use std::net::Ipv4Addr;

    fn default_cluster() -> Cluster {
        control::config::parse(include_str!("../../../config.toml")).expect("default config")
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

    // ---------------------------------------------------------- default config goldens

    #[test]
    fn golden_get_pods() {
        let c = default_cluster();
        assert_eq!(
            get_pods(&c, &default_ns(), false, &OFFLINE),
            "\
NAME                                READY   STATUS    RESTARTS   AGE
client                              1/1     Running   0          <unknown>
client-master                       1/1     Running   0          <unknown>
nginx-deployment-756d6b7586-cctx5   1/1     Running   0          <unknown>
nginx-deployment-756d6b7586-gwpsr   1/1     Running   0          <unknown>
"
        );
        assert_eq!(
            get_pods(&c, &default_ns(), true, &OFFLINE),
            "\
NAME                                READY   STATUS    RESTARTS   AGE         IP            NODE         NOMINATED NODE   READINESS GATES
client                              1/1     Running   0          <unknown>   10.10.1.100   mac-worker   <none>           <none>
client-master                       1/1     Running   0          <unknown>   10.10.0.100   mac-master   <none>           <none>
nginx-deployment-756d6b7586-cctx5   1/1     Running   0          <unknown>   10.10.1.2     mac-worker   <none>           <none>
nginx-deployment-756d6b7586-gwpsr   1/1     Running   0          <unknown>   10.10.0.2     mac-master   <none>           <none>
"
        );
        assert_eq!(
            get_pods(&c, &NamespaceFilter::All, false, &OFFLINE),
            "\
NAMESPACE     NAME                                READY   STATUS    RESTARTS   AGE
default       client                              1/1     Running   0          <unknown>
default       client-master                       1/1     Running   0          <unknown>
default       nginx-deployment-756d6b7586-cctx5   1/1     Running   0          <unknown>
default       nginx-deployment-756d6b7586-gwpsr   1/1     Running   0          <unknown>
kube-system   coredns-mac-master                  1/1     Running   0          <unknown>
kube-system   coredns-mac-worker                  1/1     Running   0          <unknown>
"
        );
    }

    #[test]
    fn golden_get_services() {
        let c = default_cluster();
        assert_eq!(
            get_services(&c, &default_ns(), false, &OFFLINE),
            "\
NAME             TYPE           CLUSTER-IP       EXTERNAL-IP                     PORT(S)        AGE
echo-udp         ClusterIP      10.100.97.119    <none>                          9000/UDP       <unknown>
example          ExternalName   <none>           example.com                     <none>         <unknown>
nginx-headless   ClusterIP      None             <none>                          80/TCP         <unknown>
nginx-lb         LoadBalancer   10.103.242.70    192.168.200.10,192.168.200.20   80:30082/TCP   <unknown>
nginx-local      NodePort       10.102.118.193   <none>                          80:30081/TCP   <unknown>
nginx-nodeport   NodePort       10.106.58.49     <none>                          80:30080/TCP   <unknown>
nginx-svc        ClusterIP      10.101.182.177   <none>                          80/TCP         <unknown>
orphan-svc       ClusterIP      10.105.152.244   <none>                          80/TCP         <unknown>
"
        );
        assert_eq!(
            get_services(&c, &default_ns(), true, &OFFLINE),
            "\
NAME             TYPE           CLUSTER-IP       EXTERNAL-IP                     PORT(S)        AGE         SELECTOR
echo-udp         ClusterIP      10.100.97.119    <none>                          9000/UDP       <unknown>   app=nginx-deployment
example          ExternalName   <none>           example.com                     <none>         <unknown>   <none>
nginx-headless   ClusterIP      None             <none>                          80/TCP         <unknown>   app=nginx-deployment
nginx-lb         LoadBalancer   10.103.242.70    192.168.200.10,192.168.200.20   80:30082/TCP   <unknown>   app=nginx-deployment
nginx-local      NodePort       10.102.118.193   <none>                          80:30081/TCP   <unknown>   app=nginx-deployment
nginx-nodeport   NodePort       10.106.58.49     <none>                          80:30080/TCP   <unknown>   app=nginx-deployment
nginx-svc        ClusterIP      10.101.182.177   <none>                          80/TCP         <unknown>   app=nginx-deployment
orphan-svc       ClusterIP      10.105.152.244   <none>                          80/TCP         <unknown>   app=nothing-matches
"
        );
    }

    #[test]
    fn golden_get_endpoints() {
        let c = default_cluster();
        assert_eq!(
            get_endpoints(&c, &default_ns(), &OFFLINE),
            "\
NAME             ENDPOINTS                       AGE
echo-udp         10.10.0.2:9000,10.10.1.2:9000   <unknown>
nginx-headless   10.10.0.2:80,10.10.1.2:80       <unknown>
nginx-lb         10.10.0.2:80,10.10.1.2:80       <unknown>
nginx-local      10.10.0.2:80,10.10.1.2:80       <unknown>
nginx-nodeport   10.10.0.2:80,10.10.1.2:80       <unknown>
nginx-svc        10.10.0.2:80,10.10.1.2:80       <unknown>
orphan-svc       <none>                          <unknown>
"
        );
    }

    #[test]
    fn golden_describe_service() {
        let c = default_cluster();
        assert_eq!(
            describe_service(&c, "default", "nginx-svc").expect("nginx-svc"),
            "\
Name:                     nginx-svc
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     ClusterIP
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.101.182.177
IPs:                      10.101.182.177
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
Endpoints:                10.10.0.2:80,10.10.1.2:80
Session Affinity:         None
Internal Traffic Policy:  Cluster
Events:                   <none>
"
        );
        // No endpoints: an empty value (kubectl pads the label anyway).
        let orphan = describe_service(&c, "default", "orphan-svc").expect("orphan-svc");
        assert!(
            orphan.contains("\nEndpoints:                \n"),
            "{orphan}"
        );
    }

    #[test]
    fn golden_describe_node_port_service() {
        let c = default_cluster();
        // As the walkthrough's NodePort describe, with this Service's values.
        assert_eq!(
            describe_service(&c, "default", "nginx-nodeport").expect("nginx-nodeport"),
            "\
Name:                     nginx-nodeport
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     NodePort
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.106.58.49
IPs:                      10.106.58.49
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
NodePort:                 <unset>  30080/TCP
Endpoints:                10.10.0.2:80,10.10.1.2:80
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
"
        );
        assert_eq!(
            describe_service(&c, "default", "nginx-local").expect("nginx-local"),
            "\
Name:                     nginx-local
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     NodePort
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.102.118.193
IPs:                      10.102.118.193
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
NodePort:                 <unset>  30081/TCP
Endpoints:                10.10.0.2:80,10.10.1.2:80
Session Affinity:         None
External Traffic Policy:  Local
Internal Traffic Policy:  Cluster
Events:                   <none>
"
        );
    }

    #[test]
    fn golden_describe_load_balancer_service() {
        let c = default_cluster();
        // kubectl's order: IPs, External IPs, LoadBalancer Ingress, ports.
        assert_eq!(
            describe_service(&c, "default", "nginx-lb").expect("nginx-lb"),
            "\
Name:                     nginx-lb
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     LoadBalancer
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.103.242.70
IPs:                      10.103.242.70
External IPs:             192.168.200.20
LoadBalancer Ingress:     192.168.200.10
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
NodePort:                 <unset>  30082/TCP
Endpoints:                10.10.0.2:80,10.10.1.2:80
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
"
        );
    }

    #[test]
    fn golden_lab_lines() {
        let c = default_cluster();
        assert_eq!(
            lab_pods(&c),
            "\
default\tclient\t10.10.1.100\tmac-worker\t10.10.1.0/24\t10.10.1.1\t-\t-
default\tclient-master\t10.10.0.100\tmac-master\t10.10.0.0/24\t10.10.0.1\t-\t-
default\tnginx-deployment-756d6b7586-cctx5\t10.10.1.2\tmac-worker\t10.10.1.0/24\t10.10.1.1\t80\t9000
default\tnginx-deployment-756d6b7586-gwpsr\t10.10.0.2\tmac-master\t10.10.0.0/24\t10.10.0.1\t80\t9000
"
        );
        assert_eq!(
            lab_nodes(&c),
            "\
mac-master\t192.168.191.144\t10.10.0.0/24\t0e:6b:c0:a8:bf:90
mac-worker\t192.168.191.145\t10.10.1.0/24\t0e:6b:c0:a8:bf:91
"
        );
        assert_eq!(
            lab_services(&c),
            "\
default\techo-udp\tClusterIP\t10.100.97.119\t-\t9000/UDP
default\texample\tExternalName\t-\t-\t-
default\tnginx-headless\tClusterIP\tNone\t-\t80/TCP
default\tnginx-lb\tLoadBalancer\t10.103.242.70\t192.168.200.10,192.168.200.20\t80:30082/TCP
default\tnginx-local\tNodePort\t10.102.118.193\t-\t80:30081/TCP
default\tnginx-nodeport\tNodePort\t10.106.58.49\t-\t80:30080/TCP
default\tnginx-svc\tClusterIP\t10.101.182.177\t-\t80/TCP
default\torphan-svc\tClusterIP\t10.105.152.244\t-\t80/TCP
kube-system\tkube-dns\tClusterIP\t10.96.0.10\t-\t53/UDP,53/TCP
"
        );
        assert_eq!(
            lab_cluster(&c),
            "10.10.0.0/16\t10.96.0.0/12\t1\t8472\t1500\t1450\n"
        );
    }

    #[test]
    fn lab_lines_follow_the_cluster() {
        let mut c = default_cluster();
        c.overlay = cluster::Overlay {
            vni: 42,
            port: 4789,
            underlay_mtu: 9000,
        };
        assert_eq!(
            lab_cluster(&c),
            "10.10.0.0/16\t10.96.0.0/12\t42\t4789\t9000\t8950\n"
        );
        c.services.retain(|s| s.name == "nginx-lb");
        let lb = &mut c.services[0];
        lb.load_balancer_ips.push(Ipv4Addr::new(192, 168, 200, 9));
        lb.external_ips.clear();
        lb.ports.push(ServicePort {
            name: Some("echo".into()),
            protocol: Protocol::Udp,
            port: 9000,
            target_port: TargetPort::Number(9000),
            node_port: Some(30090),
        });
        // File order, not kubectl's string sort; every address, no cut.
        assert_eq!(
            lab_services(&c),
            "default\tnginx-lb\tLoadBalancer\t10.103.242.70\t192.168.200.10,192.168.200.9\t80:30082/TCP,9000:30090/UDP\n"
        );
        c.services[0].load_balancer_ips.clear();
        c.services[0].ports.clear();
        assert_eq!(
            lab_services(&c),
            "default\tnginx-lb\tLoadBalancer\t10.103.242.70\t-\t-\n"
        );
    }

    // ---------------------------------------------------------- the walkthrough itself

    /// The default cluster with the walkthrough's pod names and IPs, plus the
    /// `kubernetes` Service and an apiserver "pod" for its endpoint.
    fn walkthrough() -> (Cluster, BTreeMap<String, i64>) {
        let mut c = default_cluster();
        c.pods.retain(|p| p.owner.is_some());
        c.pods[0].name = "nginx-deployment-756d6b7586-7plkf".into();
        c.pods[0].ip = Ipv4Addr::new(10, 10, 1, 42);
        c.pods[1].name = "nginx-deployment-756d6b7586-jwt5h".into();
        c.pods[1].ip = Ipv4Addr::new(10, 10, 1, 43);
        // The walkthrough ran both replicas on mac-worker.
        for p in &mut c.pods {
            p.node = "mac-worker".into();
        }
        c.services.retain(|s| s.name == "nginx-svc");
        c.services.insert(
            0,
            Service {
                name: "kubernetes".into(),
                namespace: "default".into(),
                labels: Labels::from([
                    ("component".into(), "apiserver".into()),
                    ("provider".into(), "kubernetes".into()),
                ]),
                selector: Labels::new(),
                service_type: ServiceType::ClusterIP,
                cluster_ip: Ipv4Addr::new(10, 96, 0, 1),
                ports: vec![ServicePort {
                    name: Some("https".into()),
                    protocol: Protocol::Tcp,
                    port: 443,
                    target_port: TargetPort::Number(6443),
                    node_port: None,
                }],
                session_affinity: SessionAffinity::None,
                external_traffic_policy: Default::default(),
                internal_traffic_policy: Default::default(),
                headless: false,
                external_name: None,
                external_ips: vec![],
                load_balancer_ips: vec![],
            },
        );
        let now = 1_656_052_000;
        let created = BTreeMap::from([
            (
                "pod/default/nginx-deployment-756d6b7586-7plkf".into(),
                now - 47,
            ),
            (
                "pod/default/nginx-deployment-756d6b7586-jwt5h".into(),
                now - 47,
            ),
            ("service/default/nginx-svc".into(), now - 65),
            (
                "service/default/kubernetes".into(),
                now - (6 * 24 + 21) * 3600 - 5,
            ),
        ]);
        (c, created)
    }

    #[test]
    fn matches_the_walkthrough_get_po_wide() {
        let (c, created) = walkthrough();
        let ages = Ages {
            now_unix: 1_656_052_000,
            created: Some(&created),
        };
        let out = get_pods(&c, &default_ns(), true, &ages);
        assert_eq!(
            collapse(&out),
            "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES \
             nginx-deployment-756d6b7586-7plkf 1/1 Running 0 47s 10.10.1.42 mac-worker <none> <none> \
             nginx-deployment-756d6b7586-jwt5h 1/1 Running 0 47s 10.10.1.43 mac-worker <none> <none>"
        );
        assert_eq!(
            out.lines().next(),
            Some("NAME                                READY   STATUS    RESTARTS   AGE   IP           NODE         NOMINATED NODE   READINESS GATES")
        );
    }

    #[test]
    fn matches_the_walkthrough_get_svc_and_endpoints() {
        let (mut c, created) = walkthrough();
        let ages = Ages {
            now_unix: 1_656_052_000,
            created: Some(&created),
        };
        assert_eq!(
            collapse(&get_services(&c, &default_ns(), false, &ages)),
            "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE \
             kubernetes ClusterIP 10.96.0.1 <none> 443/TCP 6d21h \
             nginx-svc ClusterIP 10.101.182.177 <none> 80/TCP 65s"
        );
        // Give `kubernetes` its apiserver endpoint, as the control plane would.
        c.services[0].selector = Labels::from([("component".into(), "apiserver".into())]);
        c.pods.push(Pod {
            name: "kube-apiserver".into(),
            namespace: "default".into(),
            labels: Labels::from([("component".into(), "apiserver".into())]),
            ip: Ipv4Addr::new(192, 168, 191, 144),
            node: "mac-master".into(),
            ready: true,
            owner: None,
            ports: vec![],
        });
        let later = Ages {
            now_unix: 1_656_052_000 + 9 * 60 + 32 - 65,
            created: Some(&created),
        };
        let out = get_endpoints(&c, &default_ns(), &later);
        assert_eq!(
            collapse(&out),
            "NAME ENDPOINTS AGE kubernetes 192.168.191.144:6443 6d21h nginx-svc 10.10.1.42:80,10.10.1.43:80 9m32s"
        );
    }

    #[test]
    fn matches_the_walkthrough_describe() {
        let (mut c, _) = walkthrough();
        let out = describe_service(&c, "default", "nginx-svc").expect("nginx-svc");
        assert_eq!(
            collapse(&out),
            "Name: nginx-svc Namespace: default Labels: <none> Annotations: <none> \
             Selector: app=nginx-deployment Type: ClusterIP IP Family Policy: SingleStack \
             IP Families: IPv4 IP: 10.101.182.177 IPs: 10.101.182.177 Port: <unset> 80/TCP \
             TargetPort: 80/TCP Endpoints: 10.10.1.42:80,10.10.1.43:80 Session Affinity: None \
             Internal Traffic Policy: Cluster Events: <none>"
        );
        // The NodePort version, after the pod at .43 was replaced by .44.
        c.pods[1].ip = Ipv4Addr::new(10, 10, 1, 44);
        let svc = c
            .services
            .iter_mut()
            .find(|s| s.name == "nginx-svc")
            .expect("nginx-svc");
        svc.service_type = ServiceType::NodePort;
        svc.ports[0].node_port = Some(30862);
        let out = describe_service(&c, "default", "nginx-svc").expect("nginx-svc");
        assert_eq!(
            out,
            "\
Name:                     nginx-svc
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     NodePort
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.101.182.177
IPs:                      10.101.182.177
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
NodePort:                 <unset>  30862/TCP
Endpoints:                10.10.1.42:80,10.10.1.44:80
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
"
        );
        let mut one = c.clone();
        one.services.retain(|s| s.name == "nginx-svc");
        assert_eq!(
            collapse(&get_services(&one, &default_ns(), true, &OFFLINE)),
            "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR \
             nginx-svc NodePort 10.101.182.177 <none> 80:30862/TCP <unknown> app=nginx-deployment"
        );
        // Multi-line labels continue in the value column, like kubectl.
        let k = describe_service(&c, "default", "kubernetes").expect("kubernetes");
        assert!(
            k.contains(
                "Labels:                   component=apiserver\n                          provider=kubernetes\n"
            ),
            "{k}"
        );
        assert!(
            k.contains(
                "Port:                     https  443/TCP\nTargetPort:               6443/TCP\n"
            ),
            "{k}"
        );
        assert!(k.contains("Selector:                 <none>\n"), "{k}");
    }

    // ---------------------------------------------------------- details

    #[test]
    fn human_duration_table() {
        for (secs, want) in [
            (-2, "<invalid>"),
            (-1000, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (47, "47s"),
            (65, "65s"),
            (119, "119s"),
            (120, "2m"),
            (9 * 60 + 32, "9m32s"),
            (10 * 60 + 5, "10m"),
            (22 * 60 + 59, "22m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (6 * 3600 + 5 * 60 + 9, "6h5m"),
            (8 * 3600 + 30 * 60, "8h"),
            (21 * 3600 + 59 * 60, "21h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            ((6 * 24 + 21) * 3600, "6d21h"),
            ((7 * 24 + 23) * 3600, "7d23h"),
            (8 * 24 * 3600, "8d"),
            (30 * 24 * 3600 + 7, "30d"),
            (729 * 24 * 3600, "729d"),
            (730 * 24 * 3600, "2y"),
            ((2 * 365 + 100) * 24 * 3600, "2y100d"),
            (8 * 365 * 24 * 3600, "8y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn age_unknown_without_a_creation_time() {
        let m = BTreeMap::from([("pod/default/client".to_owned(), 100)]);
        let ages = Ages {
            now_unix: 165,
            created: Some(&m),
        };
        assert_eq!(ages.age("pod/default/client"), "65s");
        assert_eq!(ages.age("pod/default/other"), "<unknown>");
        assert_eq!(OFFLINE.age("pod/default/client"), "<unknown>");
        let future = Ages {
            now_unix: 90,
            created: Some(&m),
        };
        assert_eq!(future.age("pod/default/client"), "<invalid>");
    }

    #[test]
    fn not_found_message() {
        let c = default_cluster();
        let e = describe_service(&c, "default", "x").expect_err("no such service");
        assert_eq!(
            e.to_string(),
            "Error from server (NotFound): services \"x\" not found"
        );
        let e = describe_service(&c, "kube-system", "nginx-svc").expect_err("wrong namespace");
        assert_eq!(
            e.to_string(),
            "Error from server (NotFound): services \"nginx-svc\" not found"
        );
    }

    #[test]
    fn no_resources_found() {
        let c = default_cluster();
        let ns = NamespaceFilter::One("kube-public".into());
        for out in [
            get_pods(&c, &ns, false, &OFFLINE),
            get_services(&c, &ns, true, &OFFLINE),
            get_endpoints(&c, &ns, &OFFLINE),
        ] {
            assert_eq!(out, "No resources found in kube-public namespace.\n");
        }
        let mut empty = c.clone();
        empty.pods.clear();
        assert_eq!(
            get_pods(&empty, &NamespaceFilter::All, false, &OFFLINE),
            "No resources found\n"
        );
    }

    #[test]
    fn not_ready_pods_and_many_endpoints() {
        let mut c = default_cluster();
        let template = c
            .pods
            .iter()
            .find(|p| p.node == "mac-worker" && p.owner.is_some())
            .expect("nginx pod on mac-worker")
            .clone();
        for i in 0..4u8 {
            let mut p = template.clone();
            p.name = format!("extra-{i}");
            p.ip = Ipv4Addr::new(10, 10, 1, 50 + i);
            c.pods.push(p);
        }
        c.pods[0].ready = false; // client
        let pods = get_pods(&c, &default_ns(), false, &OFFLINE);
        assert!(
            pods.contains("\nclient                              0/1     Running"),
            "{pods}"
        );
        let eps = get_endpoints(&c, &default_ns(), &OFFLINE);
        assert!(
            eps.contains(
                "\nnginx-svc        10.10.0.2:80,10.10.1.2:80,10.10.1.50:80 + 3 more...   "
            ),
            "{eps}"
        );
        let d = describe_service(&c, "default", "nginx-svc").expect("nginx-svc");
        assert!(
            d.contains(
                "Endpoints:                10.10.0.2:80,10.10.1.2:80,10.10.1.50:80 + 3 more...\n"
            ),
            "{d}"
        );
    }

    #[test]
    fn endpoints_list_every_port_and_lb_shows_pending() {
        let mut c = default_cluster();
        c.services
            .retain(|s| !s.name.starts_with("nginx-") || s.name == "nginx-svc");
        let svc = c
            .services
            .iter_mut()
            .find(|s| s.name == "nginx-svc")
            .expect("nginx-svc");
        svc.service_type = ServiceType::LoadBalancer;
        svc.session_affinity = SessionAffinity::ClientIP {
            timeout_seconds: 10800,
        };
        svc.ports[0].node_port = Some(30080);
        svc.ports.push(ServicePort {
            name: Some("echo".into()),
            protocol: Protocol::Udp,
            port: 9000,
            target_port: TargetPort::Name("udp-echo".into()),
            node_port: Some(30090),
        });
        let out = get_services(&c, &default_ns(), false, &OFFLINE);
        assert!(
            out.contains("nginx-svc    LoadBalancer   10.101.182.177   <pending>     80:30080/TCP,9000:30090/UDP   <unknown>"),
            "{out}"
        );
        let eps = get_endpoints(&c, &default_ns(), &OFFLINE);
        assert!(
            eps.contains("10.10.0.2:80,10.10.1.2:80,10.10.0.2:9000 + 1 more..."),
            "{eps}"
        );
        let d = describe_service(&c, "default", "nginx-svc").expect("nginx-svc");
        assert!(
            d.contains("Port:                     echo  9000/UDP\n"),
            "{d}"
        );
        assert!(
            d.contains("TargetPort:               udp-echo/UDP\n"),
            "{d}"
        );
        assert!(
            d.contains("NodePort:                 echo  30090/UDP\n"),
            "{d}"
        );
        assert!(
            d.contains("Endpoints:                10.10.0.2:9000,10.10.1.2:9000\n"),
            "{d}"
        );
        assert!(d.contains("Session Affinity:         ClientIP\n"), "{d}");
        assert!(d.contains("External Traffic Policy:  Cluster\n"), "{d}");
        assert!(!d.contains("LoadBalancer Ingress:"), "{d}");
        assert!(!d.contains("External IPs:"), "{d}");
    }

    /// The default cluster's `nginx-lb` alone, as `service_type` with the
    /// given LoadBalancer and external IPs.
    fn lone_service(service_type: ServiceType, lb: &[[u8; 4]], ext: &[[u8; 4]]) -> Cluster {
        let mut c = default_cluster();
        c.services.retain(|s| s.name == "nginx-lb");
        let s = &mut c.services[0];
        s.service_type = service_type;
        s.load_balancer_ips = lb.iter().map(|&o| Ipv4Addr::from(o)).collect();
        s.external_ips = ext.iter().map(|&o| Ipv4Addr::from(o)).collect();
        if service_type == ServiceType::ClusterIP {
            s.ports[0].node_port = None;
        }
        c
    }

    /// The EXTERNAL-IP cell of the only Service, without and with `-o wide`.
    fn external_cells(c: &Cluster) -> (String, String) {
        let cell = |wide| {
            let out = get_services(c, &default_ns(), wide, &OFFLINE);
            let row = out.lines().nth(1).unwrap_or_default().to_owned();
            row.split_whitespace().nth(3).unwrap_or_default().to_owned()
        };
        (cell(false), cell(true))
    }

    #[test]
    fn external_ip_column_like_kubectl() {
        const LB1: [u8; 4] = [192, 168, 200, 10];
        const LB2: [u8; 4] = [192, 168, 200, 9];
        const EXT: [u8; 4] = [192, 168, 200, 20];
        let both = |s: &str| (s.to_owned(), s.to_owned());
        for (ty, lb, ext, want) in [
            (
                ServiceType::LoadBalancer,
                &[][..],
                &[][..],
                both("<pending>"),
            ),
            (
                ServiceType::LoadBalancer,
                &[LB1][..],
                &[][..],
                both("192.168.200.10"),
            ),
            (
                ServiceType::LoadBalancer,
                &[][..],
                &[EXT][..],
                both("192.168.200.20"),
            ),
            (
                ServiceType::LoadBalancer,
                &[LB1][..],
                &[EXT][..],
                both("192.168.200.10,192.168.200.20"),
            ),
            // Ingress IPs are sorted as strings and, without -o wide, cut
            // to 16 characters before the external IPs are appended.
            (
                ServiceType::LoadBalancer,
                &[LB2, LB1][..],
                &[][..],
                (
                    "192.168.200.1...".to_owned(),
                    "192.168.200.10,192.168.200.9".to_owned(),
                ),
            ),
            (
                ServiceType::LoadBalancer,
                &[LB2, LB1][..],
                &[EXT][..],
                (
                    "192.168.200.1...,192.168.200.20".to_owned(),
                    "192.168.200.10,192.168.200.9,192.168.200.20".to_owned(),
                ),
            ),
            (ServiceType::NodePort, &[][..], &[][..], both("<none>")),
            (
                ServiceType::NodePort,
                &[][..],
                &[EXT, LB2][..],
                both("192.168.200.20,192.168.200.9"),
            ),
            (ServiceType::ClusterIP, &[][..], &[][..], both("<none>")),
            (
                ServiceType::ClusterIP,
                &[][..],
                &[EXT][..],
                both("192.168.200.20"),
            ),
        ] {
            let c = lone_service(ty, lb, ext);
            assert_eq!(external_cells(&c), want, "{ty} lb={lb:?} ext={ext:?}");
        }
    }

    #[test]
    fn describe_external_ips_ingress_and_policy() {
        // Two ingress IPs: file order, joined with ", " as kubectl's
        // buildIngressString does; external IPs with ",".
        let mut c = lone_service(
            ServiceType::LoadBalancer,
            &[[192, 168, 200, 10], [192, 168, 200, 9]],
            &[[192, 168, 200, 20], [192, 168, 200, 21]],
        );
        c.services[0].external_traffic_policy = cluster::TrafficPolicy::Local;
        let d = describe_service(&c, "default", "nginx-lb").expect("nginx-lb");
        assert!(
            d.contains(
                "IPs:                      10.103.242.70\n\
                 External IPs:             192.168.200.20,192.168.200.21\n\
                 LoadBalancer Ingress:     192.168.200.10, 192.168.200.9\n\
                 Port:                     <unset>  80/TCP\n"
            ),
            "{d}"
        );
        assert!(d.contains("External Traffic Policy:  Local\n"), "{d}");

        // A pending LoadBalancer: no ingress line, no external IPs line.
        let c = lone_service(ServiceType::LoadBalancer, &[], &[]);
        let d = describe_service(&c, "default", "nginx-lb").expect("nginx-lb");
        assert!(
            d.contains("IPs:                      10.103.242.70\nPort:"),
            "{d}"
        );

        // A ClusterIP Service with external IPs is externally accessible:
        // kubectl shows its policy too, but never a NodePort.
        let c = lone_service(ServiceType::ClusterIP, &[], &[[192, 168, 200, 20]]);
        assert_eq!(
            describe_service(&c, "default", "nginx-lb").expect("nginx-lb"),
            "\
Name:                     nginx-lb
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 app=nginx-deployment
Type:                     ClusterIP
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.103.242.70
IPs:                      10.103.242.70
External IPs:             192.168.200.20
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
Endpoints:                10.10.0.2:80,10.10.1.2:80
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
"
        );
    }

    /// The default cluster plus a headless and an ExternalName Service, a
    /// Local internal policy on nginx-svc, and a kube-dns pod in kube-system.
    fn with_dns_objects() -> Cluster {
        let mut c = default_cluster();
        let mut headless = c
            .service("default", "nginx-svc")
            .expect("nginx-svc")
            .clone();
        headless.name = "nginx-headless".into();
        headless.headless = true;
        headless.cluster_ip = Ipv4Addr::UNSPECIFIED;
        let mut alias = headless.clone();
        alias.name = "db".into();
        alias.headless = false;
        alias.service_type = ServiceType::ExternalName;
        alias.external_name = Some("db.example.com".into());
        alias.selector = Labels::new();
        alias.ports.clear();
        c.services.extend([headless, alias]);
        c.services
            .iter_mut()
            .filter(|s| s.name == "nginx-svc")
            .for_each(|s| s.internal_traffic_policy = cluster::TrafficPolicy::Local);
        c.services
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        c.pods.push(Pod {
            name: "coredns-0".into(),
            namespace: "kube-system".into(),
            labels: Labels::from([("k8s-app".into(), "kube-dns".into())]),
            ip: Ipv4Addr::new(10, 10, 0, 10),
            node: "mac-master".into(),
            ready: true,
            owner: None,
            ports: vec![],
        });
        c
    }

    #[test]
    fn headless_and_external_name_services_like_kubectl() {
        let c = with_dns_objects();
        let out = get_services(&c, &default_ns(), false, &OFFLINE);
        assert!(
            out.contains(
                "\ndb               ExternalName   <none>           db.example.com                  <none>         <unknown>\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "\nnginx-headless   ClusterIP      None             <none>                          80/TCP         <unknown>\n"
            ),
            "{out}"
        );
        assert_eq!(
            describe_service(&c, "default", "db").expect("db"),
            "\
Name:              db
Namespace:         default
Labels:            <none>
Annotations:       <none>
Selector:          <none>
Type:              ExternalName
IP Families:       <none>
IP:                
IPs:               <none>
External Name:     db.example.com
Session Affinity:  None
Events:            <none>
"
        );
        let d = describe_service(&c, "default", "nginx-headless").expect("headless");
        assert!(
            d.contains("IP:                       None\nIPs:                      None\n"),
            "{d}"
        );
        // Headless Services still have endpoints (DNS answers with them).
        assert!(
            d.contains("Endpoints:                10.10.0.2:80,10.10.1.2:80\n"),
            "{d}"
        );
        let d = describe_service(&c, "default", "nginx-svc").expect("nginx-svc");
        assert!(
            d.contains("Session Affinity:         None\nInternal Traffic Policy:  Local\nEvents:"),
            "{d}"
        );
    }

    #[test]
    fn get_namespaces_lists_kubectl_defaults_and_used_ones() {
        let mut c = with_dns_objects();
        c.services[0].namespace = "apps".into();
        assert_eq!(
            get_namespaces(&c, &OFFLINE),
            "\
NAME              STATUS   AGE
apps              Active   <unknown>
default           Active   <unknown>
kube-node-lease   Active   <unknown>
kube-public       Active   <unknown>
kube-system       Active   <unknown>
"
        );
        let created = BTreeMap::from([("namespace/default".to_owned(), 100)]);
        let ages = Ages {
            now_unix: 165,
            created: Some(&created),
        };
        assert!(get_namespaces(&c, &ages).contains("\ndefault           Active   65s\n"));
    }

    #[test]
    fn lab_pods_skips_router_hosted_pods() {
        let c = with_dns_objects();
        let lines = lab_pods(&c);
        assert!(!lines.contains("coredns-0"), "{lines}");
        assert_eq!(lines, lab_pods(&default_cluster()));
        // kubectl still shows it.
        assert!(get_pods(&c, &NamespaceFilter::All, false, &OFFLINE).contains("coredns-0"));
    }

    #[test]
    fn tabwriter_blocks_like_go() {
        // Column widths are per block of consecutive lines with that column.
        let t = "a:\tx\n\tlonger-cell\tz\nbbbbbb:\ty\n";
        assert_eq!(
            tabwriter(t, 0, 2),
            "a:       x\n         longer-cell  z\nbbbbbb:  y\n"
        );
        // Min width applies to short columns.
        assert_eq!(tabwriter("A\tB\nc\td\n", 6, 3), "A     B\nc     d\n");
    }
    #[test]
    fn golden_describe_endpoints() {
        let c = default_cluster();
        assert_eq!(
            describe_endpoints(&c, "default", "nginx-svc").expect("exists"),
            "\
Name:         nginx-svc
Namespace:    default
Labels:       <none>
Annotations:  <none>
Subsets:
  Addresses:          10.10.0.2,10.10.1.2
  NotReadyAddresses:  <none>
  Ports:
    Name     Port  Protocol
    ----     ----  --------
    <unset>  80    TCP

Events:  <none>
"
        );
        let mut not_ready = c.clone();
        not_ready.pods.iter_mut().for_each(|p| {
            if p.ip == std::net::Ipv4Addr::new(10, 10, 0, 2) {
                p.ready = false;
            }
        });
        let out = describe_endpoints(&not_ready, "default", "nginx-svc").expect("exists");
        assert!(out.contains("  Addresses:          10.10.1.2\n"), "{out}");
        assert!(out.contains("  NotReadyAddresses:  10.10.0.2\n"), "{out}");
        assert_eq!(
            describe_endpoints(&c, "default", "example").map_err(|e| e.to_string()),
            Err("Error from server (NotFound): endpoints \"example\" not found".to_owned())
        );
    }
}
