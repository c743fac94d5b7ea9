//! ClusterIP: load balancing, client IPs, hairpin, conntrack, what a ClusterIP is not.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lab::env::*;
use lab::objects::*;
use lab::text::*;

/// Both backends (one per node) answer the ClusterIP, every answer is
/// complete, and whichever answers sees the client's own IP.
#[test]
fn cluster_ip_across_nodes() {
    lab::check(|c, k| {
        let client = &k.client;
        let nginx_names = k.nginx_names();
        let mut seen = BTreeSet::new();
        for i in 0..20 {
            let out = curl(&client.name, NGINX_SVC_IP, &[]);
            // One failure is reported; the rest would only repeat it (slowly).
            let ok = c.check(is_full_answer(&out), || {
                format!(
                "request {i} from {} to {NGINX_SVC_IP}: expected the 4 lines srv/host/uri/date\n{}",
                client.name,
                show("curl", &out)
            )
            });
            if let Some(h) = host_of(&stdout(&out)) {
                seen.insert(h);
            }
            if !ok {
                break;
            }
        }
        let seen_ref: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
        c.check(seen_ref == nginx_names, || {
        format!(
            "20 requests to {NGINX_SVC_IP} reached {seen_ref:?}, expected all of {nginx_names:?} (on both nodes)"
        )
    });

        // No SNAT between pods, also when the backend is on the other node.
        for i in 0..20 {
            let out = curl(
                &client.name,
                &format!("http://{NGINX_SVC_IP}/clientip"),
                &[],
            );
            let body = stdout(&out);
            let ok = c.check(
            out.status.success() && client_ip_of(&body) == Some(client.ip.as_str()),
            || {
                format!(
                    "request {i}: {NGINX_SVC_IP}/clientip from {} should answer {}:PORT, whichever backend answers\n{}",
                    client.name,
                    client.ip,
                    show("curl", &out)
                )
            },
        );
            if !ok {
                break;
            }
        }
    });
}

/// Conntrack lists the flow just made (run early, while it is recent).
#[test]
fn conntrack_lists_the_flow() {
    lab::check(|c, k| {
        let client = &k.client;
        let node = &client.node;
        let _ = curl(&client.name, NGINX_SVC_IP, &[]);
        let out = router_cli(node, &["get", "conntrack"]);
        let text = stdout(&out);
        c.check(
        out.status.success()
            && text
                .lines()
                .any(|l| l.contains(&format!("dst={NGINX_SVC_IP}")) && contains_ip(l, &client.ip)),
        || {
            format!(
                "`router --node {node} get conntrack` should list a flow with dst={NGINX_SVC_IP} from {}\n{}",
                client.ip,
                show("router get conntrack", &out)
            )
        },
    );
    });
}

/// Hairpin: a backend reaches its own Service, sometimes itself; then it
/// sees its node's pod network address (masquerade), else its own IP.
#[test]
fn hairpin() {
    lab::check(|c, k| {
        let nginx_names = k.nginx_names();
        for pod in &k.nginx {
            // 10 requests; if none reached the pod itself (1 in 2^10 with two
            // backends), up to 20 more before calling it a failure.
            let mut names: Vec<String> = Vec::new();
            for i in 0..30 {
                if i >= 10 && names.contains(&pod.name) {
                    break;
                }
                let out = curl(&pod.name, &format!("http://{NGINX_SVC_IP}/hostname"), &[]);
                let name = stdout(&out).trim().to_string();
                let ok = c.check(
                out.status.success() && nginx_names.contains(name.as_str()),
                || {
                    format!(
                        "hairpin: {} -> {NGINX_SVC_IP}/hostname should answer an nginx pod name\n{}",
                        pod.name,
                        show("curl", &out)
                    )
                },
            );
                names.push(name);
                if !ok {
                    break;
                }
            }
            let all_answered = names.iter().all(|n| nginx_names.contains(n.as_str()));
            c.check(!all_answered || names.contains(&pod.name), || {
                format!(
                "hairpin: {} requests from {} to {NGINX_SVC_IP} never reached {} itself: {names:?}",
                names.len(),
                pod.name,
                pod.name
            )
            });

            let masq = &k.node(&pod.node).pod_network;
            let mut seen: Vec<String> = Vec::new();
            for _ in 0..30 {
                if seen.len() >= 10 && seen.contains(masq) {
                    break;
                }
                let out = curl(&pod.name, &format!("http://{NGINX_SVC_IP}/clientip"), &[]);
                let body = stdout(&out);
                let ip = client_ip_of(&body).unwrap_or_default().to_string();
                let ok = c.check(
                out.status.success() && (ip == pod.ip || ip == *masq),
                || {
                    format!(
                        "hairpin: {} -> {NGINX_SVC_IP}/clientip should answer {}:PORT (another backend) or {masq}:PORT (itself, masqueraded)\n{}",
                        pod.name,
                        pod.ip,
                        show("curl", &out)
                    )
                },
            );
                seen.push(ip);
                if !ok {
                    break;
                }
            }
            c.check(seen.contains(masq), || {
            format!(
                "hairpin: {} requests from {} to {NGINX_SVC_IP}/clientip never showed the masquerade address {masq}: {seen:?}",
                seen.len(),
                pod.name
            )
        });
        }
    });
}

/// 4 (one-node lab). A ClusterIP is not a host: no answer to ping.
#[test]
fn icmp_to_cluster_ip() {
    lab::check(|c, k| {
        let out = lab_exec(
            &k.client.name,
            &["ping", "-c", "3", "-W", "1", NGINX_SVC_IP],
        );
        c.check(
            !out.status.success() && stdout(&out).contains("100% packet loss"),
            || {
                format!(
                    "ping {NGINX_SVC_IP} should get 100% packet loss\n{}",
                    show("ping", &out)
                )
            },
        );
    });
}

/// 5 (one-node lab). A Service without endpoints rejects at once.
#[test]
fn service_without_endpoints() {
    lab::check(|c, k| {
        let orphan_ip = cluster_ip("orphan-svc");
        let start = Instant::now();
        let out = curl(&k.client.name, &format!("http://{orphan_ip}/"), &["-v"]);
        let took = start.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        c.check(
            out.status.code() == Some(7) && stderr.contains("Connection refused"),
            || {
                format!(
                "curl to orphan-svc {orphan_ip} should fail with `Connection refused` (exit 7)\n{}",
                show("curl -v", &out)
            )
            },
        );
        c.check(took < Duration::from_secs(1), || {
            format!(
            "curl to orphan-svc {orphan_ip} took {took:?}, expected an immediate reject (< 1 s)"
        )
        });
    });
}

/// 6 (one-node lab). UDP through echo-udp.
#[test]
fn udp_service() {
    lab::check(|c, k| {
        let echo_ip = cluster_ip("echo-udp");
        let target = format!("UDP4:{echo_ip}:9000");
        let out = if find_tool("socat").is_some() {
            lab_exec(
                &k.client.name,
                &[
                    "sh",
                    "-c",
                    &format!("printf hostname | timeout 5 socat -t 2 - {target}"),
                ],
            )
        } else {
            lab_exec(
                &k.client.name,
                &[
                    "timeout",
                    "5",
                    "bash",
                    "-c",
                    &format!(
                        // One read(2) takes the whole datagram (bash `read`
                        // would take one byte of it).
                        "exec 3<>/dev/udp/{echo_ip}/9000; printf hostname >&3; \
                     timeout 2 dd bs=65535 count=1 status=none <&3"
                    ),
                ],
            )
        };
        let answer = stdout(&out).trim().to_string();
        c.check(k.nginx_names().contains(answer.as_str()), || {
            format!(
            "UDP `hostname` to echo-udp {echo_ip}:9000 from {} should answer an nginx pod name\n{}",
            k.client.name,
            show("socat", &out)
        )
        });
    });
}
