//! Cluster DNS.

use std::collections::BTreeSet;

use lab::env::*;
use lab::objects::*;
use lab::text::*;

/// Live check 7: Cluster DNS through kube-dns with real `dig`, and names in `curl`
/// (resolv.conf's search path and ndots).
#[test]
fn cluster_dns() {
    lab::check(|c, k| {
        if find_tool("dig").is_none() {
            c.check(false, || {
                "dig is missing (scripts/install-deps installs dnsutils): no DNS checks".to_string()
            });
            return;
        }
        let client = &k.client.name;
        let server = format!("@{KUBE_DNS_IP}");
        let dig = |args: &[&str]| {
            let mut all = vec!["dig", "+time=2", "+tries=2", &server];
            all.extend_from_slice(args);
            lab_exec(client, &all)
        };
        let name = "nginx-svc.default.svc.cluster.local";
        for transport in ["+notcp", "+tcp"] {
            let out = dig(&["+short", transport, name]);
            c.check(stdout(&out).trim() == NGINX_SVC_IP, || {
                format!(
                    "dig {transport} {name} should answer {NGINX_SVC_IP}\n{}",
                    show("dig", &out)
                )
            });
        }
        for missing in [
            "nope.default.svc.cluster.local",
            "nginx-svc.kube-system.svc.cluster.local",
        ] {
            let out = dig(&[missing]);
            c.check(stdout(&out).contains("status: NXDOMAIN"), || {
                format!("dig {missing} should be NXDOMAIN\n{}", show("dig", &out))
            });
        }
        let want: BTreeSet<String> = live_nginx().into_iter().map(|p| p.ip).collect();
        let out = dig(&["+short", "nginx-headless.default.svc.cluster.local"]);
        let got: BTreeSet<String> = stdout(&out).lines().map(|l| l.trim().to_string()).collect();
        c.check(got == want, || {
            format!(
                "dig nginx-headless should answer the nginx pod IPs {want:?}\n{}",
                show("dig", &out)
            )
        });
        let out = dig(&["+short", "example.default.svc.cluster.local", "CNAME"]);
        c.check(stdout(&out).trim() == "example.com.", || {
            format!(
                "dig example.default.svc.cluster.local CNAME should answer example.com.\n{}",
                show("dig", &out)
            )
        });
        let out = dig(&[
            "+short",
            "_http._tcp.nginx-headless.default.svc.cluster.local",
            "SRV",
        ]);
        let srv = stdout(&out);
        c.check(
        srv.lines().count() == want.len()
            && srv
                .lines()
                .all(|l| l.split_whitespace().nth(2) == Some("80")),
        || {
            format!(
                "dig SRV _http._tcp.nginx-headless... should give one port-80 record per nginx pod ({})\n{}",
                want.len(),
                show("dig", &out)
            )
        },
    );
        for host in ["nginx-svc", "nginx-svc.default"] {
            let out = curl(client, host, &["-s"]);
            c.check(is_full_answer(&out), || {
            format!(
                "curl {host} inside {client} (resolv.conf search path) should answer the 4 lines\n{}\n{}",
                show("curl", &out),
                stdout(&lab_exec(client, &["cat", "/etc/resolv.conf"]))
            )
        });
        }
        let out = router(&["get", "ns", "-o", "json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let names: BTreeSet<String> = items(&list)
            .iter()
            .filter_map(|n| n["name"].as_str().map(str::to_string))
            .collect();
        c.check(
            names.contains("default") && names.contains("kube-system"),
            || show("router get ns -o json (default and kube-system)", &out),
        );
    });
}
