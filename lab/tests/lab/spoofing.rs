//! Anti-spoofing.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use lab::env::*;
use lab::objects::*;
use lab::text::*;
use lab::Checks;

/// A pod cannot send from an address that is not its own: an unused
/// address of its node's pod CIDR is dropped by the router
/// (`spoofed-source`), another pod's address by the kernel's strict
/// reverse-path filter on the pod's veth (`scripts/lab` sets it up).
#[test]
fn spoofing() {
    lab::check(|c, k| {
        let client = &k.client;
        let worker = &k.worker.name;
        let stats = |c: &mut Checks| {
            let out = router_cli(worker, &["get", "stats", "-o", "json"]);
            c.check(out.status.success(), || {
                show("router get stats -o json", &out)
            });
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
        };
        // Inside the client's node CIDR, no pod's: .77, or the first free one.
        let used: BTreeSet<String> = live_pods()
            .into_iter()
            .chain(dns_pods())
            .map(|p| p.ip)
            .collect();
        let net: Ipv4Addr = k.worker.pod_network.parse().expect("pod network");
        let unused = (77..250)
            .map(|h| Ipv4Addr::from(u32::from(net) + h).to_string())
            .find(|ip| !used.contains(ip))
            .expect("a free address in the pod CIDR");

        let before = stat_count(&stats(c), "spoofed-source");
        let attempt = |ip: &str| {
            let add = lab_exec(
                &client.name,
                &["ip", "addr", "add", &format!("{ip}/32"), "dev", "eth0"],
            );
            let out = lab_exec(
                &client.name,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "2",
                    "--interface",
                    ip,
                    &format!("http://{NGINX_SVC_IP}/hostname"),
                ],
            );
            let _ = lab_exec(
                &client.name,
                &["ip", "addr", "del", &format!("{ip}/32"), "dev", "eth0"],
            );
            (add, out)
        };
        let (add, out) = attempt(&unused);
        c.check(add.status.success(), || show("ip addr add", &add));
        c.check(!out.status.success(), || {
        format!(
            "spoofing: curl --interface {unused} (not {}'s address) to {NGINX_SVC_IP} must fail\n{}",
            client.name,
            show("curl", &out)
        )
    });
        let text = stats(c);
        let after = stat_count(&text, "spoofed-source");
        c.check(after > before, || {
        format!(
            "spoofing: `router --node {worker} get stats -o json` should count spoofed-source for {unused} (was {before}, now {after})\n{text}"
        )
    });

        // Impersonating another pod: the reverse-path filter's business.
        let veth = veth_name(&client.ip);
        let rp = stdout(&lab_exec(
            worker,
            &["sysctl", "-n", &format!("net.ipv4.conf.{veth}.rp_filter")],
        ));
        if rp.trim() != "1" {
            eprintln!(
            "note: rp_filter on {veth} is {:?} (KSR_LAB_RP_FILTER=0?): not checking that {} cannot impersonate other pods",
            rp.trim(),
            client.name
        );
            return;
        }
        for other in [&k.near, &k.far] {
            let before = netstat_counter(worker, "IPReversePathFilter");
            let (add, out) = attempt(&other.ip);
            let after = netstat_counter(worker, "IPReversePathFilter");
            c.check(add.status.success(), || show("ip addr add", &add));
            c.check(!out.status.success(), || {
                format!(
                    "spoofing: {} sending as {} ({}, on {}) to {NGINX_SVC_IP} must fail\n{}",
                    client.name,
                    other.ip,
                    other.name,
                    other.node,
                    show("curl", &out)
                )
            });
            c.check(
            matches!((before, after), (Some(b), Some(a)) if a > b),
            || {
                format!(
                    "spoofing: {} sending as {} should be dropped by the reverse-path filter on {worker} (TcpExt IPReversePathFilter {before:?} -> {after:?})",
                    client.name, other.ip
                )
            },
        );
        }
        // The client is itself again.
        let out = curl(
            &client.name,
            &format!("http://{NGINX_SVC_IP}/clientip"),
            &[],
        );
        c.check(
            client_ip_of(&stdout(&out)) == Some(client.ip.as_str()),
            || {
                format!(
                    "after the spoofing checks, {} should reach {NGINX_SVC_IP} as {} again\n{}",
                    client.name,
                    client.ip,
                    show("curl", &out)
                )
            },
        );
    });
}
