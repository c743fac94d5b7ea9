//! From outside the cluster: NodePorts, LoadBalancer and external IPs.

use std::collections::BTreeSet;

use lab::env::*;
use lab::objects::*;
use lab::text::*;

/// NodePorts from outside the cluster, on every node's address.
#[test]
fn node_ports() {
    lab::check(|c, k| {
        let cluster_port = node_port("nginx-nodeport");
        let local_port = node_port("nginx-local");
        let external_ip = k.external_ip();
        for node in &k.nodes {
            let url = format!("http://{}:{cluster_port}/", node.address);
            let out = curl("external", &url, &[]);
            c.check(is_full_answer(&out), || {
                format!(
                    "NodePort from external: {url} should answer the 4 lines srv/host/uri/date\n{}",
                    show("curl", &out)
                )
            });
            // externalTrafficPolicy Cluster: masqueraded to the node.
            let url = format!("http://{}:{cluster_port}/clientip", node.address);
            let out = curl("external", &url, &[]);
            let body = stdout(&out);
            c.check(
            out.status.success() && client_ip_of(&body) == Some(node.pod_network.as_str()),
            || {
                format!(
                    "NodePort (eTP Cluster) {url} from external should show {}:PORT (node {}'s pod network address), not {external_ip}\n{}",
                    node.pod_network,
                    node.name,
                    show("curl", &out)
                )
            },
        );
            // externalTrafficPolicy Local: the client IP, and the local pod.
            let url = format!("http://{}:{local_port}/clientip", node.address);
            let out = curl("external", &url, &[]);
            let body = stdout(&out);
            c.check(
            out.status.success() && client_ip_of(&body) == Some(external_ip.as_str()),
            || {
                format!(
                    "NodePort (eTP Local) {url} from external should show the client {external_ip}:PORT\n{}",
                    show("curl", &out)
                )
            },
        );
            let local: BTreeSet<&str> = k
                .nginx
                .iter()
                .filter(|p| p.node == node.name)
                .map(|p| p.name.as_str())
                .collect();
            let url = format!("http://{}:{local_port}/", node.address);
            let out = curl("external", &url, &[]);
            let host = host_of(&stdout(&out)).unwrap_or_default();
            c.check(
            is_full_answer(&out) && local.contains(host.as_str()),
            || {
                format!(
                    "NodePort (eTP Local) {url} from external should be served by a pod on {}: {local:?}\n{}",
                    node.name,
                    show("curl", &out)
                )
            },
        );
            // From a pod on either node, too.
            for client in ["client", "client-master"] {
                let url = format!("http://{}:{cluster_port}/", node.address);
                let out = curl(client, &url, &[]);
                c.check(is_full_answer(&out), || {
                    format!(
                        "NodePort from pod {client}: {url} should answer the 4 lines\n{}",
                        show("curl", &out)
                    )
                });
            }
        }
    });
}

/// LoadBalancer and external IPs from outside the cluster, and how
/// `get svc` shows the Service.
#[test]
fn load_balancer() {
    lab::check(|c, k| {
        let ips = external_ips("nginx-lb");
        c.check(!ips.is_empty(), || {
            "nginx-lb has no EXTERNAL-IP in `kubectl get svc nginx-lb -o json`".to_string()
        });
        for ip in &ips {
            let out = curl("external", &format!("http://{ip}/"), &[]);
            c.check(is_full_answer(&out), || {
                format!(
                    "LoadBalancer: http://{ip}/ from external should answer the 4 lines\n{}",
                    show("curl", &out)
                )
            });
        }
        let np = node_port("nginx-lb");
        let out = router_cli(&k.worker.name, &["get", "svc"]);
        let text = stdout(&out);
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some("nginx-lb"))
            .unwrap_or_default();
        let first = ips.first().cloned().unwrap_or_default();
        c.check(
        out.status.success()
            && row.contains(&format!("80:{np}/TCP"))
            && row.contains("LoadBalancer")
            && contains_ip(row, &first),
        || {
            format!(
                "`router --node {} get svc` should show nginx-lb as LoadBalancer with {first} and 80:{np}/TCP\n{}",
                k.worker.name,
                show("router get svc", &out)
            )
        },
    );
    });
}
