//! Floods, restarts and faults (issue 10): a node keeps serving under a
//! spoofed SYN flood, a restarted router breaks no connection, removed
//! routes and failing overlay sends do not stop the router, DNS over TCP
//! stays bounded, a pod cannot send as the router-hosted DNS pod. Its own
//! test binary with its own lab (see `lab::session`), as it kills routers
//! and floods the nodes. Every measured figure is printed (`--nocapture`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lab::cluster::Cluster;
use lab::env::*;
use lab::flood::{flood, Flood};
use lab::objects::*;
use lab::probes::{curl_ok, tally_until, time_until, Tally};
use lab::routers::{is_alive, is_router, router_pid, rss_kib, stats, wait_restarted};
use lab::text::{netstat_counter, udp_hostname, veth_name};
use lab::timed::{start_stream, stream_from, stream_lines, Timed, TimedLines};
use lab::Checks;
use serde_json::Value;

/// The flood tool, built with this test binary.
const SYNFLOOD: &str = env!("CARGO_BIN_EXE_synflood");
/// `router run`'s default conntrack capacity (the lab does not change it).
const CONNTRACK_CAPACITY: u64 = 131_072;
/// Lab-only spoofed sources: no route in the lab leads back to them.
const SPOOF_NET: &str = "10.200.0.0/16";
/// The NodePort flood's rate: 300,000 SYNs over 15 s, the scenario
/// (unpaced, `synflood` reaches ~40,000/s in the lab, more than one
/// router on a shared core drains from its TUN queue); `KSR_FLOOD_RATE`
/// overrides it (0: unpaced).
const FLOOD_RATE: &str = "20000";

/// `router get stats -o json` of `node`, recording a failure as `{}`.
fn node_stats(c: &mut Checks, node: &str) -> Value {
    match stats(node) {
        Ok(v) => v,
        Err(e) => {
            c.check(false, || e);
            Value::Null
        }
    }
}

/// The drop reasons that counted between two `get stats -o json`.
fn drops_between(before: &Value, after: &Value) -> String {
    let mut out = Vec::new();
    if let Some(reasons) = after["dropped"].as_object() {
        for (reason, n) in reasons {
            let grew = n
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(stat_count(before, reason));
            if grew > 0 {
                out.push(format!("{reason} +{grew}"));
            }
        }
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(", ")
    }
}

/// The last lines of the lab's pod-server and router logs that say
/// something about streams or errors: what a broken stream leaves behind.
fn log_evidence() -> String {
    let mut out = String::new();
    let Ok(dir) = std::fs::read_dir(RUN_DIR) else {
        return out;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".log") || !(name.starts_with("pod-") || name.starts_with("router-")) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let hits: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("stream:") || l.contains("WARN") || l.contains("ERROR"))
            .collect();
        for l in hits.iter().rev().take(5).rev() {
            out.push_str(&format!("{name}: {l}\n"));
        }
    }
    out
}

/// Checks that a stream of `lines` lines arrived whole, and says so.
fn check_stream(c: &mut Checks, what: &str, t: &Timed, lines: usize) {
    let (got, in_order) = stream_lines(t);
    c.check(got == lines && in_order && t.succeeded(), || {
        format!(
            "{what}: the stream should deliver all {lines} lines in order and end cleanly \
             (no RST), got {got} (in order: {in_order}), exit {:?}, {} ms after it started\n\
             stderr: {}\nlast lines: {:?}\nlogs:\n{}",
            t.status,
            t.lines
                .last()
                .map_or(0, |(at, _)| ms(at.duration_since(t.started))),
            t.stderr,
            t.lines.iter().rev().take(3).collect::<Vec<_>>(),
            log_evidence()
        )
    });
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Check 1: A spoofed-source SYN flood to a NodePort: new connections to it and
/// to another Service keep succeeding, a long stream keeps flowing, the
/// table stays bounded and evicts early, all is well after.
#[test]
fn syn_flood_to_node_port() {
    lab::check(|c, k| {
        let ext = "external";
        let node = &k.master;
        let port = node_port("nginx-nodeport");
        let nodeport = format!("http://{}:{port}/hostname", node.address);
        let other_ip = external_ips("nginx-lb")
            .into_iter()
            .next()
            .unwrap_or_default();
        let other = format!("http://{other_ip}/hostname");
        let before = node_stats(c, &node.name);
        let stream_url = format!(
            "http://{}:{port}/stream?lines=200&interval_ms=100",
            node.address
        );
        let stream = match start_stream(ext, &stream_url, 40) {
            Ok(s) => s,
            Err(e) => {
                c.check(false, || e);
                return;
            }
        };
        c.check(stream.first_line(Duration::from_secs(3)).is_some(), || {
            format!("no first line from {stream_url}")
        });
        let dst = format!("{}:{port}", node.address);
        let rate = std::env::var("KSR_FLOOD_RATE").unwrap_or_else(|_| FLOOD_RATE.to_string());
        let mut fl = match Flood::start(
            SYNFLOOD,
            ext,
            &[
                "--dst",
                &dst,
                "--src-net",
                SPOOF_NET,
                "--count",
                "300000",
                "--seconds",
                "15",
                "--rate",
                &rate,
            ],
        ) {
            Ok(f) => f,
            Err(e) => {
                c.check(false, || e);
                stream.abandon();
                return;
            }
        };
        let started = Instant::now();
        let mut peak: Option<Value> = None;
        // Both Services probed side by side while the flood runs.
        let stop = AtomicBool::new(false);
        let (same, another) = std::thread::scope(|s| {
            let same = s.spawn(|| tally_until(&stop, || curl_ok(ext, &nodeport, 3)));
            let another = s.spawn(|| tally_until(&stop, || curl_ok(ext, &other, 3)));
            while fl.running() && started.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(100));
                if peak.is_none() && started.elapsed() > Duration::from_secs(6) {
                    peak = stats(&node.name).ok();
                }
            }
            stop.store(true, Ordering::Relaxed);
            (
                same.join().unwrap_or_default(),
                another.join().unwrap_or_default(),
            )
        });
        let report = fl.finish();
        let recovered = time_until(Duration::from_secs(60), Duration::from_millis(100), || {
            curl_ok(ext, &nodeport, 1) && curl_ok(ext, &other, 1)
        });
        let mut after = Tally::default();
        for _ in 0..10 {
            after.add(curl_ok(ext, &nodeport, 3));
            after.add(curl_ok(ext, &other, 3));
        }
        let t = stream.finish();
        let st = node_stats(c, &node.name);
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                c.check(false, || e);
                Default::default()
            }
        };
        let evicted = stat_count(&st, "flows_evicted") - stat_count(&before, "flows_evicted");
        let peak_flows = peak.as_ref().map_or(0, |p| stat_count(p, "flows"));
        let peak_half = peak
            .as_ref()
            .map_or(0, |p| stat_count(p, "flows_half_open"));
        println!(
            "syn flood to {dst}: {} SYNs in {:.1} s ({:.0}/s) from {SPOOF_NET}; during: NodePort {same}, \
             other Service ({other_ip}) {another}; after: {after}, recovered {} ms after the flood; \
             stream {} lines, longest gap {} ms; flows mid-flood {peak_flows} (half-open {peak_half}), \
             after {} (capacity {CONNTRACK_CAPACITY}); evicted {evicted}, conntrack-full drops {}, tun-queue-dropped {}",
            report.sent,
            report.secs,
            report.rate,
            recovered.map_or("never".into(), |d| ms(d).to_string()),
            stream_lines(&t).0,
            ms(t.longest_gap()),
            stat_count(&st, "flows"),
            stat_count(&st, "conntrack-full"),
            stat_count(&st, "tun_queue_dropped"),
        );
        c.check(report.sent >= 10_000, || {
            format!("the flood sent only {} SYNs", report.sent)
        });
        c.check(same.percent() >= 90.0 && another.percent() >= 90.0, || {
            format!("during the flood: NodePort {same}, other Service {another}; want >= 90% each")
        });
        c.check(after.ok == after.total, || {
            format!("after the flood: {after}; want all")
        });
        c.check(recovered.is_some(), || "never recovered within 60 s".into());
        check_stream(c, "syn flood", &t, 200);
        c.check(evicted > 0, || {
            format!("no early drop (flows_evicted) under the flood: {st}")
        });
        c.check(
            peak_flows <= CONNTRACK_CAPACITY && stat_count(&st, "flows") <= CONNTRACK_CAPACITY,
            || {
                format!(
                    "flows beyond the capacity {CONNTRACK_CAPACITY}: mid {peak_flows}, after {st}"
                )
            },
        );
    });
}

/// One restart case: `signal` to `node`'s router during a stream from the
/// client through the ClusterIP to the far pod and a UDP exchange.
fn restart_case(c: &mut Checks, k: &Cluster, node: &str, signal: &str, udp_port: u16) {
    let what = format!("SIG{signal} of {node}'s router");
    let echo_ip = cluster_ip("echo-udp");
    let url = format!("http://{NGINX_SVC_IP}/stream?lines=80&interval_ms=50");
    let udp = |c: &mut Checks| {
        let out = udp_hostname(&k.client.name, &echo_ip, 9000, Some(udp_port), "1");
        let name = stdout(&out).trim().to_string();
        c.check(!name.is_empty(), || {
            format!("{what}: UDP to {echo_ip}:9000: {}", show("socat", &out))
        });
        name
    };
    let udp_before = udp(c);
    let stream = match stream_from(&k.client.name, &url, &k.far.name, 20) {
        Ok(s) => s,
        Err(e) => {
            c.check(false, || e);
            return;
        }
    };
    std::thread::sleep(Duration::from_millis(800));
    let Some(old) = router_pid(node) else {
        c.check(false, || format!("{what}: no router pid for {node}"));
        stream.abandon();
        return;
    };
    c.check(is_router(old), || {
        format!("{what}: pid {old} is not `router run`")
    });
    let killed = Instant::now();
    let out = run(5, "kill", &[&format!("-{signal}"), &old.to_string()]);
    c.check(out.status.success(), || show("kill", &out));
    let restarted = wait_restarted(node, old, Duration::from_secs(15));
    c.check(restarted.is_some(), || {
        format!("{what}: the supervisor started no new router within 15 s")
    });
    let udp_after = udp(c);
    let t = stream.finish();
    check_stream(c, &what, &t, 80);
    c.check(udp_before == udp_after, || {
        format!(
            "{what}: the UDP flow from port {udp_port} moved from {udp_before:?} to {udp_after:?}"
        )
    });
    println!(
        "{what}: new router serving {} ms after the kill (pid {old} -> {}); stream {} of 80 lines, \
         longest gap {} ms (lines every 50 ms); UDP endpoint {udp_before} -> {udp_after}",
        restarted.map_or("never".into(), |(_, at)| ms(at.duration_since(killed)).to_string()),
        restarted.map_or("-".into(), |(p, _)| p.to_string()),
        stream_lines(&t).0,
        ms(t.longest_gap()),
    );
}

/// Check 2: SIGKILL and SIGTERM of each node's router, restarted by the
/// supervisor alone: no broken stream, no moved UDP flow.
#[test]
fn router_restarts_break_nothing() {
    lab::check(|c, k| {
        let cases = [
            (&k.worker.name, "KILL"),
            (&k.worker.name, "TERM"),
            (&k.master.name, "KILL"),
            (&k.master.name, "TERM"),
        ];
        for (i, (node, signal)) in cases.into_iter().enumerate() {
            restart_case(c, k, node, signal, 41_000 + i as u16);
        }
    });
}

/// `ip route show table 100` in `node`'s namespace.
fn table_100(node: &str) -> String {
    stdout(&lab_exec(node, &["ip", "route", "show", "table", "100"]))
}

/// Check 3: `ip route flush table 100` on the client's node: the router puts its
/// routes back; the gap is measured.
#[test]
fn flushed_routes_are_restored() {
    lab::check(|c, k| {
        let node = &k.worker.name;
        let before = node_stats(c, node);
        let url = format!("http://{NGINX_SVC_IP}/stream?lines=60&interval_ms=50");
        let stream = match start_stream(&k.client.name, &url, 20) {
            Ok(s) => s,
            Err(e) => {
                c.check(false, || e);
                return;
            }
        };
        c.check(stream.first_line(Duration::from_secs(3)).is_some(), || {
            format!("no first line from {url}")
        });
        let out = lab_exec(node, &["ip", "route", "flush", "table", "100"]);
        c.check(out.status.success(), || {
            show("ip route flush table 100", &out)
        });
        let probe = format!("http://{NGINX_SVC_IP}/hostname");
        let routes_back = time_until(Duration::from_secs(10), Duration::from_millis(10), || {
            table_100(node).contains("default dev kube0")
        });
        let served = time_until(Duration::from_secs(10), Duration::from_millis(50), || {
            curl_ok(&k.client.name, &probe, 1)
        });
        let t = stream.finish();
        let after = node_stats(c, node);
        let table = table_100(node);
        println!(
            "route flush table 100 on {node}: routes back after {} ms, a new connection served after {} ms, \
             stream longest gap {} ms; routing_restored {} -> {}",
            routes_back.map_or("never".into(), |d| ms(d).to_string()),
            served.map_or("never".into(), |d| ms(d).to_string()),
            ms(t.longest_gap()),
            stat_count(&before, "routing_restored"),
            stat_count(&after, "routing_restored"),
        );
        c.check(routes_back.is_some() && served.is_some(), || {
            format!("table 100 not repaired within 10 s:\n{table}")
        });
        c.check(table.contains("unreachable default"), || {
            format!("the fail-closed `unreachable default` route is gone from table 100:\n{table}")
        });
        c.check(
            stat_count(&after, "routing_restored") > stat_count(&before, "routing_restored"),
            || format!("routing_restored did not count the repair: {after}"),
        );
        check_stream(c, "route flush", &t, 60);
    });
}

/// Check 4: A firewall rule that makes the overlay's sends fail (EPERM) for 3 s:
/// the router survives, counts them, and cross-node traffic resumes.
#[test]
fn failing_overlay_sends_do_not_stop_the_router() {
    lab::check(|c, k| {
        let node = &k.worker.name;
        let port = overlay().port.to_string();
        let rule = ["OUTPUT", "-p", "udp", "--dport", &port, "-j", "DROP"];
        let ipt = |op: &str| {
            let mut args = vec!["iptables", op];
            args.extend_from_slice(&rule);
            lab_exec(node, &args)
        };
        let Some(pid) = router_pid(node) else {
            c.check(false, || format!("no router pid for {node}"));
            return;
        };
        let before = node_stats(c, node);
        let far_before = node_stats(c, &k.master.name);
        let out = ipt("-I");
        if !c.check(out.status.success(), || show("iptables -I", &out)) {
            return;
        }
        let blocked = Instant::now();
        // Cross-node traffic while the sends fail.
        let ping = lab_exec(
            &k.client.name,
            &["ping", "-c", "12", "-i", "0.2", "-W", "1", &k.far.ip],
        );
        let remaining = Duration::from_secs(3).saturating_sub(blocked.elapsed());
        std::thread::sleep(remaining);
        let out = ipt("-D");
        c.check(out.status.success(), || show("iptables -D", &out));
        let unblocked = Instant::now();
        let url = format!("http://{}/hostname", k.far.ip);
        let resumed = time_until(Duration::from_secs(10), Duration::from_millis(50), || {
            curl_ok(&k.client.name, &url, 1)
        });
        let after = node_stats(c, node);
        let far_after = node_stats(c, &k.master.name);
        let dropped = stat_count(&after, "overlay_send_dropped")
            - stat_count(&before, "overlay_send_dropped");
        println!(
            "overlay sends blocked on {node} for {} ms: router pid {pid} alive {}, overlay_send_dropped +{dropped}, \
             cross-node traffic resumed {} ms after the rule went; ping during: {}; drops on {node}: {}, on {}: {}",
            ms(unblocked.duration_since(blocked)),
            is_alive(pid) && router_pid(node) == Some(pid),
            resumed.map_or("never".into(), |d| ms(d).to_string()),
            stdout(&ping).lines().rev().find(|l| l.contains("packets")).unwrap_or("-"),
            drops_between(&before, &after),
            k.master.name,
            drops_between(&far_before, &far_after),
        );
        c.check(is_alive(pid) && router_pid(node) == Some(pid), || {
            format!(
                "the router (pid {pid}) did not survive failing overlay sends (now {:?})",
                router_pid(node)
            )
        });
        c.check(resumed.is_some(), || {
            format!("{url} not reachable from the client within 10 s")
        });
        c.check(dropped > 0, || {
            format!("overlay_send_dropped did not count: {after}")
        });
    });
}

/// `dig +tcp` of nginx-svc from `pod` answers.
fn dig_tcp(pod: &str) -> bool {
    let out = lab_exec(
        pod,
        &[
            "dig",
            "+tcp",
            "+short",
            "+time=2",
            "+tries=1",
            &format!("@{KUBE_DNS_IP}"),
            "nginx-svc.default.svc.cluster.local",
        ],
    );
    out.status.success() && stdout(&out).contains(NGINX_SVC_IP)
}

/// Check 5: A DNS-over-TCP SYN flood from a pod: the routers' memory stays
/// bounded, they shed connections, `dig +tcp` still answers.
#[test]
fn dns_tcp_syn_flood_is_bounded() {
    lab::check(|c, k| {
        let client = &k.client;
        let nodes = [&k.worker.name, &k.master.name];
        // The client's kernel would answer each SYN-ACK with a RST and
        // close the half-open connection for the router: hold those back.
        let rule = [
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            KUBE_DNS_IP,
            "--dport",
            "53",
            "--tcp-flags",
            "RST",
            "RST",
            "-j",
            "DROP",
        ];
        let ipt = |op: &str| {
            let mut args = vec!["iptables", op];
            args.extend_from_slice(&rule);
            lab_exec(&client.name, &args)
        };
        let pids: Vec<Option<u32>> = nodes.iter().map(|n| router_pid(n)).collect();
        let rss_before: Vec<Option<u64>> = pids.iter().map(|p| p.and_then(rss_kib)).collect();
        let before: Vec<Value> = nodes.iter().map(|n| node_stats(c, n)).collect();
        let out = ipt("-I");
        if !c.check(out.status.success(), || show("iptables -I", &out)) {
            return;
        }
        let dst = format!("{KUBE_DNS_IP}:53");
        let fl = Flood::start(
            SYNFLOOD,
            &client.name,
            &[
                "--dst",
                &dst,
                "--src",
                &client.ip,
                "--count",
                "20000",
                "--seconds",
                "10",
                // ~5 s, so that `dig +tcp` runs during it.
                "--rate",
                "4000",
            ],
        );
        let mut during = Tally::default();
        let report = match fl {
            Ok(mut fl) => {
                std::thread::sleep(Duration::from_millis(300));
                while fl.running() {
                    during.add(dig_tcp(&client.name));
                }
                fl.finish()
            }
            Err(e) => Err(e),
        };
        let mut after = Tally::default();
        for _ in 0..5 {
            after.add(dig_tcp(&client.name));
        }
        let rss_after: Vec<Option<u64>> = pids.iter().map(|p| p.and_then(rss_kib)).collect();
        let stats_after: Vec<Value> = nodes.iter().map(|n| node_stats(c, n)).collect();
        let out = ipt("-D");
        c.check(out.status.success(), || show("iptables -D", &out));
        let report = report.unwrap_or_else(|e| {
            c.check(false, || e);
            Default::default()
        });
        let mut shed = 0;
        for i in 0..nodes.len() {
            let grew = rss_after[i]
                .zip(rss_before[i])
                .map(|(a, b)| a.saturating_sub(b));
            let s = stat_count(&stats_after[i], "dns_tcp_shed")
                - stat_count(&before[i], "dns_tcp_shed");
            shed += s;
            println!(
                "dns tcp flood, router {}: RSS {:?} KiB -> {:?} KiB (grew {:?} KiB), dns_tcp shed +{s}, \
                 open {} half-open {} now",
                nodes[i],
                rss_before[i],
                rss_after[i],
                grew,
                stat_count(&stats_after[i], "dns_tcp_open"),
                stat_count(&stats_after[i], "dns_tcp_half_open"),
            );
            c.check(grew.is_some_and(|g| g < 20 * 1024), || {
                format!(
                    "router {}: RSS {:?} -> {:?} KiB, want < 20 MiB growth",
                    nodes[i], rss_before[i], rss_after[i]
                )
            });
            c.check(router_pid(nodes[i]) == pids[i], || {
                format!("router {} restarted during the flood", nodes[i])
            });
        }
        println!(
            "dns tcp flood: {} SYNs to {dst} in {:.1} s ({:.0}/s) from {}; dig +tcp during {during}, after {after}",
            report.sent, report.secs, report.rate, client.name
        );
        c.check(report.sent == 20_000, || {
            format!("the flood sent {} of 20000 SYNs", report.sent)
        });
        c.check(shed > 0, || {
            "dns_tcp_shed did not count on either router".into()
        });
        c.check(during.ok > 0, || {
            format!("dig +tcp never answered during the flood: {during}")
        });
        c.check(after.ok == after.total, || {
            format!("dig +tcp after the flood: {after}; want all")
        });
    });
}

/// The router-hosted DNS pod on `node`: its IP, from `kubectl get po -A -o json`.
fn dns_pod_ip(node: &str) -> Option<String> {
    dns_pods()
        .into_iter()
        .find(|p| p.node == node && !p.ip.is_empty())
        .map(|p| p.ip)
}

/// Check 6: UDP from the client pod with the DNS pod's address as its source, to
/// a victim listener on another pod: none delivered, neither with the
/// veth's strict reverse-path filter nor (the router's own check) without.
#[test]
fn spoofed_dns_pod_source_is_dropped() {
    lab::check(|c, k| {
        let client = &k.client;
        let node = &k.worker.name;
        let Some(dns_ip) = dns_pod_ip(node) else {
            c.check(false, || {
                format!("no router-hosted DNS pod on {node} in `kubectl get po -A -o json`")
            });
            return;
        };
        let victim = &k.near;
        const PORT: u16 = 7777;
        const PAYLOAD: &str = "spoofed";
        const LEGIT: &str = "legit-1";
        // The victim counts the bytes it receives for 8 s.
        let listener = TimedLines::start(
            &victim.name,
            &[
                "sh",
                "-c",
                &format!("timeout 8 socat -u UDP4-RECV:{PORT} - | wc -c"),
            ],
            12,
        );
        let listener = match listener {
            Ok(l) => l,
            Err(e) => {
                c.check(false, || e);
                return;
            }
        };
        std::thread::sleep(Duration::from_millis(500));
        let dst = format!("{}:{PORT}", victim.ip);
        let spoof = |c: &mut Checks| {
            let r = flood(
                SYNFLOOD,
                &client.name,
                &[
                    "--dst",
                    &dst,
                    "--src",
                    &dns_ip,
                    "--udp",
                    PAYLOAD,
                    "--count",
                    "100",
                    "--seconds",
                    "3",
                ],
                10,
            );
            let r = r.unwrap_or_else(|e| {
                c.check(false, || e);
                Default::default()
            });
            c.check(r.sent == 100, || {
                format!("sent {} of 100 spoofed datagrams", r.sent)
            });
        };
        let rpf = || netstat_counter(node, "IPReversePathFilter").unwrap_or(0);
        let spoofed = |c: &mut Checks| stat_count(&node_stats(c, node), "spoofed-source");
        // With the strict reverse-path filter the lab sets on the veth.
        let (rpf0, router0) = (rpf(), spoofed(c));
        spoof(c);
        let (rpf1, router1) = (rpf(), spoofed(c));
        // Without it, so the router's own check is what stops them.
        let key = format!("net.ipv4.conf.{}.rp_filter", veth_name(&client.ip));
        let out = lab_exec(node, &["sysctl", "-w", &format!("{key}=0")]);
        c.check(out.status.success(), || show("sysctl rp_filter=0", &out));
        spoof(c);
        let out = lab_exec(node, &["sysctl", "-w", &format!("{key}=1")]);
        c.check(out.status.success(), || show("sysctl rp_filter=1", &out));
        let router2 = spoofed(c);
        // A legitimate datagram shows the listener works.
        let out = lab_exec(
            &client.name,
            &[
                "sh",
                "-c",
                &format!("printf {LEGIT} | socat -u - UDP4:{dst}"),
            ],
        );
        c.check(out.status.success(), || show("socat legit", &out));
        let t = listener.finish();
        let bytes: usize = t
            .lines
            .last()
            .and_then(|(_, l)| l.trim().parse().ok())
            .unwrap_or(usize::MAX);
        let spoofed_delivered = bytes.saturating_sub(LEGIT.len()) / PAYLOAD.len();
        println!(
            "spoofed source {dns_ip} (the DNS pod on {node}) from {} to {dst}: with rp_filter: kernel \
             IPReversePathFilter +{}, router spoofed-source +{}; without rp_filter: router spoofed-source +{}; \
             victim received {bytes} bytes ({spoofed_delivered} spoofed datagrams, {LEGIT:?} expected)",
            client.name,
            rpf1.saturating_sub(rpf0),
            router1.saturating_sub(router0),
            router2.saturating_sub(router1),
        );
        c.check(bytes == LEGIT.len(), || {
            format!(
                "the victim should receive only the legitimate {} bytes, got {bytes}: {t:?}",
                LEGIT.len()
            )
        });
        c.check(rpf1 - rpf0 + router1 - router0 >= 100, || {
            format!("with rp_filter, the kernel (IPReversePathFilter +{}) or the router (spoofed-source +{}) should have dropped all 100", rpf1 - rpf0, router1 - router0)
        });
        c.check(router2 >= router1 + 100, || {
            format!("without rp_filter the router should count 100 spoofed-source drops: {router1} -> {router2}")
        });
    });
}
