//! The live cluster: changes through `router apply/delete` on the store,
//! followed by the routers and the lab's kubelet.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lab::env::*;
use lab::objects::*;
use lab::text::*;
use lab::{Checks, Cluster};

/// Live check 1: `delete po` of the worker's nginx pod: a replacement (new name, new
/// IP) is Running 1/1 within 10 s, the endpoints follow, the ClusterIP
/// reaches it.
#[test]
fn delete_pod_is_replaced() {
    lab::check(|c, k| {
        let initial = live_pods();
        delete_pod_is_replaced_(c, k);
        kubelet_removed_pods(c, &initial);
    });
}

fn delete_pod_is_replaced_(c: &mut Checks, k: &Cluster) {
    let old = live_nginx()
        .into_iter()
        .find(|p| p.node == k.worker.name)
        .unwrap_or_else(|| k.near.clone());
    let before: BTreeSet<String> = live_nginx().into_iter().map(|p| p.name).collect();
    let start = Instant::now();
    let out = router_change(&["delete", "po", &old.name]);
    if !c.check(
        out.status.success() && stdout(&out).contains(&format!("pod \"{}\" deleted", old.name)),
        || show(&format!("router delete po {}", old.name), &out),
    ) {
        return;
    }
    let mut new = None;
    let mut last = None;
    while start.elapsed() < Duration::from_secs(10) {
        let (out, rows) = get_pods();
        new = rows.into_iter().find(|r| {
            r.name.starts_with("nginx-deployment-")
                && !before.contains(&r.name)
                && r.ready
                && r.status == "Running"
        });
        last = Some(out);
        if new.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = start.elapsed();
    let Some(new) = new else {
        c.check(false, || {
            format!(
                "delete po {}: no new nginx pod Running 1/1 within 10 s\n{}\n{}",
                old.name,
                last.map(|o| show("router get po -o json", &o))
                    .unwrap_or_default(),
                std::fs::read_to_string(format!("{RUN_DIR}/kubelet.log")).unwrap_or_default()
            )
        });
        return;
    };
    eprintln!(
        "delete po {}: {} ({} on {}) Running 1/1 after {took:?}",
        old.name, new.name, new.ip, new.node
    );
    c.check(new.ip != old.ip && new.name != old.name, || {
        format!(
            "the replacement of {} ({}) should have a new name and IP, got {} ({})",
            old.name, old.ip, new.name, new.ip
        )
    });
    let (out, ips) = live_endpoint_ips("nginx-svc");
    c.check(ips.contains(&new.ip) && !ips.contains(&old.ip), || {
        format!(
            "`router get endpoints nginx-svc -o json` should list {} and not {}\n{}",
            new.ip,
            old.ip,
            show("router get endpoints nginx-svc -o json", &out)
        )
    });
    let url = format!("http://{NGINX_SVC_IP}/hostname");
    let mut seen = Vec::new();
    for _ in 0..30 {
        let name = hostname_via(&k.client.name, &url).unwrap_or_default();
        if name == new.name {
            return;
        }
        seen.push(name);
    }
    c.check(false, || {
        format!(
            "30 requests from {} to {NGINX_SVC_IP} never reached the new pod {}: {seen:?}",
            k.client.name, new.name
        )
    });
}

/// Live check 2: nginx-svc re-applied as NodePort (keeps its ClusterIP, gets a
/// nodePort, served on every node), then back to ClusterIP.
#[test]
fn apply_node_port() {
    lab::check(|c, k| {
        let (out, _) = apply_text("nginx-svc.toml", &nginx_svc("type = \"NodePort\"\n"));
        c.check(
            out.status.success() && stdout(&out).contains("service/nginx-svc configured"),
            || show("router apply -f nginx-svc.toml (NodePort)", &out),
        );
        let svc = live_service("nginx-svc").unwrap_or_default();
        let port = svc["ports"][0]["nodePort"]
            .as_u64()
            .map(|p| p.to_string())
            .filter(|p| p.len() == 5 && p.starts_with('3'));
        c.check(
        svc["type"] == "NodePort"
            && svc["clusterIP"] == NGINX_SVC_IP
            && svc["ports"][0]["port"] == 80
            && svc["ports"][0]["protocol"] == "TCP"
            && port.is_some(),
        || format!("`router get svc nginx-svc -o json` should show nginx-svc NodePort {NGINX_SVC_IP} 80:3xxxx/TCP, got {svc}"),
    );
        let out = router(&["describe", "service", "nginx-svc"]);
        let text = stdout(&out);
        c.check(
        text.contains("NodePort:") && text.contains("External Traffic Policy:  Cluster"),
        || {
            format!(
                "describe service nginx-svc should show NodePort: and `External Traffic Policy:  Cluster`\n{}",
                show("router describe service nginx-svc", &out)
            )
        },
    );
        if let Some(port) = port {
            for node in &k.nodes {
                let url = format!("http://{}:{port}/", node.address);
                let out = curl("external", &url, &[]);
                c.check(is_full_answer(&out), || {
                    format!(
                        "nginx-svc as NodePort: {url} from external should answer the 4 lines\n{}",
                        show("curl", &out)
                    )
                });
            }
        }
        let (out, _) = apply_text("nginx-svc.toml", &nginx_svc("type = \"ClusterIP\"\n"));
        let svc = live_service("nginx-svc").unwrap_or_default();
        let ports = svc["ports"].as_array().cloned().unwrap_or_default();
        c.check(
            out.status.success()
                && svc["type"] == "ClusterIP"
                && ports.len() == 1
                && ports[0]["port"] == 80
                && ports[0]["protocol"] == "TCP"
                && ports[0]["nodePort"].is_null(),
            || {
                format!(
                    "nginx-svc back to ClusterIP (80/TCP): {svc}\n{}",
                    show("router apply", &out)
                )
            },
        );
    });
}

/// Live check 3: A long TCP connection through the ClusterIP survives 100 unrelated
/// changes; prints how long `router apply` takes to reach both routers.
#[test]
fn stream_survives_churn() {
    lab::check(|c, k| {
        const LINES: usize = 60;
        let url = format!("http://{NGINX_SVC_IP}/stream?lines={LINES}&interval_ms=250");
        let child = command("timeout")
            .args(["-k", "2", "40"])
            .arg(lab_script())
            .args([
                "exec",
                &k.client.name,
                "--",
                "curl",
                "-sSN",
                "--max-time",
                "30",
            ])
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let child = match child {
            Ok(ch) => ch,
            Err(e) => {
                c.check(false, || format!("cannot start curl {url}: {e}"));
                return;
            }
        };
        // Let the connection be established (and a line or two arrive).
        std::thread::sleep(Duration::from_millis(600));
        let mut wall = Vec::new();
        let mut rtts: Vec<(String, u64)> = Vec::new();
        let mut failed = Vec::new();
        for i in 0..100u32 {
            let text = format!(
                "[[services]]\nname = \"churn\"\nlabels = {{ round = \"r{i}\" }}\n\
             selector = {{ app = \"nginx-deployment\" }}\n\
             ports = [{{ port = {}, targetPort = 80, protocol = \"TCP\" }}]\n",
                8000 + i % 10
            );
            let (out, took) = apply_text("churn.toml", &text);
            if !out.status.success() {
                failed.push(show("router apply -f churn.toml", &out));
            }
            wall.push(took);
            rtts.extend(round_trips(&String::from_utf8_lossy(&out.stderr)));
            std::thread::sleep(Duration::from_millis(40));
        }
        c.check(failed.is_empty(), || {
            format!(
                "{} of 100 churn applies failed; first:\n{}",
                failed.len(),
                failed.first().cloned().unwrap_or_default()
            )
        });
        let out = child.wait_with_output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                c.check(false, || format!("curl {url}: {e}"));
                return;
            }
        };
        let body = stdout(&out);
        let got = body.lines().filter(|l| l.starts_with("line ")).count();
        c.check(got == LINES && out.status.success(), || {
        format!(
            "a stream through {NGINX_SVC_IP} during 100 applies should receive all {LINES} lines, got {got}\n{}",
            show("curl -N /stream", &out)
        )
    });
        wall.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut us: Vec<u64> = rtts.iter().map(|(_, u)| *u).collect();
        us.sort_unstable();
        let pct = |v: &[u64], p: usize| {
            v.get(v.len().saturating_sub(1) * p / 100)
                .map_or_else(|| "-".to_string(), u64::to_string)
        };
        eprintln!(
        "apply-to-applied: `router apply` wall time over 100 applies (store write + push to both routers): median {:.2} ms, p90 {:.2} ms, max {:.2} ms; per-router round trip reported by the CLI ({} reports): median {} us, p90 {} us, max {} us",
        ms(wall[wall.len() / 2]),
        ms(wall[wall.len() * 9 / 10]),
        ms(wall[wall.len() - 1]),
        us.len(),
        pct(&us, 50),
        pct(&us, 90),
        pct(&us, 100)
    );
        let out = router_change(&["delete", "svc", "churn"]);
        c.check(out.status.success(), || {
            show("router delete svc churn", &out)
        });
    });
}

/// Live check 4: Stale UDP: a fixed source port's flow to echo-udp goes to a pod;
/// the pod is deleted; the same source port must reach a live pod at once.
#[test]
fn stale_udp_flow() {
    lab::check(|c, k| {
        let initial = live_pods();
        stale_udp_flow_(c, k);
        kubelet_removed_pods(c, &initial);
    });
}

fn stale_udp_flow_(c: &mut Checks, k: &Cluster) {
    const SPORT: u16 = 40000;
    let echo_ip = cluster_ip("echo-udp");
    let names: BTreeSet<String> = live_nginx().into_iter().map(|p| p.name).collect();
    let mut victim = None;
    let mut answers = Vec::new();
    for _ in 0..5 {
        let out = udp_hostname(&k.client.name, &echo_ip, 9000, Some(SPORT), "1");
        let name = stdout(&out).trim().to_string();
        if names.contains(&name) {
            victim = Some(name);
            break;
        }
        answers.push(show("socat", &out));
    }
    let Some(victim) = victim else {
        c.check(false, || {
            format!(
                "UDP hostname from {}:{SPORT} to echo-udp {echo_ip}:9000 got no nginx pod name: {answers:?}",
                k.client.name
            )
        });
        return;
    };
    let out = router_change(&["delete", "po", &victim]);
    let start = Instant::now();
    if !c.check(out.status.success(), || {
        show(&format!("router delete po {victim}"), &out)
    }) {
        return;
    }
    let mut replies = Vec::new();
    let mut took = None;
    for _ in 0..20 {
        let out = udp_hostname(&k.client.name, &echo_ip, 9000, Some(SPORT), "0.3");
        let name = stdout(&out).trim().to_string();
        if !name.is_empty() && name != victim {
            took = Some(start.elapsed());
            break;
        }
        replies.push(format!("{:?}: {name:?}", start.elapsed()));
        if start.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    match took {
        Some(t) => {
            eprintln!(
                "stale UDP: after deleting {victim}, source port {SPORT} got an answer from a live pod after {t:?}"
            );
            c.check(t < Duration::from_secs(2), || {
                format!(
                    "stale UDP: after deleting {victim}, {}:{SPORT} -> {echo_ip}:9000 was answered by a live pod only after {t:?} (want < 2 s); tries: {replies:?}",
                    k.client.name
                )
            });
        }
        None => {
            let ct = router_cli(&k.worker.name, &["get", "conntrack"]);
            let st = router_cli(&k.worker.name, &["get", "stats"]);
            c.check(false, || {
                format!(
                    "stale UDP: after deleting {victim}, {}:{SPORT} -> {echo_ip}:9000 got no answer from a live pod within {:?}; tries: {replies:?}\n{}\n{}",
                    k.client.name,
                    start.elapsed(),
                    show("router get conntrack", &ct),
                    show("router get stats", &st)
                )
            });
        }
    }
}

/// Live check 5: A deleted Service's VIP stops answering; re-applied, it works again.
#[test]
fn deleted_service() {
    lab::check(|c, k| {
        let ip = cluster_ip("nginx-nodeport");
        let url = format!("http://{ip}/hostname");
        let out = router_change(&["delete", "svc", "nginx-nodeport"]);
        c.check(
            out.status.success() && stdout(&out).contains("service \"nginx-nodeport\" deleted"),
            || show("router delete svc nginx-nodeport", &out),
        );
        let out = lab_exec(&k.client.name, &["curl", "-sS", "--max-time", "2", &url]);
        c.check(!out.status.success(), || {
            format!(
                "after `delete svc nginx-nodeport`, {url} must not answer\n{}",
                show("curl", &out)
            )
        });
        let text = format!(
            "[[services]]\nname = \"nginx-nodeport\"\ntype = \"NodePort\"\nclusterIP = \"{ip}\"\n\
         selector = {{ app = \"nginx-deployment\" }}\nexternalTrafficPolicy = \"Cluster\"\n\
         ports = [{{ port = 80, targetPort = 80, nodePort = 30080, protocol = \"TCP\" }}]\n"
        );
        let (out, _) = apply_text("nginx-nodeport.toml", &text);
        c.check(
            out.status.success() && stdout(&out).contains("service/nginx-nodeport created"),
            || show("router apply -f nginx-nodeport.toml", &out),
        );
        let out = curl(&k.client.name, &url, &[]);
        c.check(out.status.success(), || {
            format!(
                "nginx-nodeport re-applied: {url} should answer again\n{}",
                show("curl", &out)
            )
        });
        let url = format!("http://{}:30080/", k.worker.address);
        let out = curl("external", &url, &[]);
        c.check(is_full_answer(&out), || {
            format!(
                "nginx-nodeport re-applied: {url} from external should answer\n{}",
                show("curl", &out)
            )
        });
    });
}

/// Live check 6: A bad apply is refused, names the object and key, changes nothing.
#[test]
fn bad_apply_changes_nothing() {
    lab::check(|c, _| {
        let store_before = std::fs::read(STORE).unwrap_or_default();
        let file_view = || {
            stdout(&run(
                10,
                router_bin(),
                &["--config", STORE, "get", "svc", "-A"],
            ))
        };
        let view_before = file_view();
        // The live view, AGE masked (it ticks).
        let live_view = || {
            let out = router(&["get", "svc", "-A", "-o", "json"]);
            let mut items = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .map(|v| items(&v))
                .unwrap_or_default();
            for item in &mut items {
                if let Some(fields) = item.as_object_mut() {
                    fields.remove("age");
                }
            }
            items
        };
        let live_before = live_view();
        let bad = [
            (
                "clash.toml",
                "[[services]]\nname = \"clash-svc\"\nclusterIP = \"10.101.182.177\"\n\
             selector = { app = \"nginx-deployment\" }\nports = [{ port = 80 }]\n",
                ["clash-svc", "clusterIP"],
            ),
            (
                "unknown-field.toml",
                "[[services]]\nname = \"odd-svc\"\ncolour = \"red\"\n\
             selector = { app = \"nginx-deployment\" }\nports = [{ port = 80 }]\n",
                ["odd-svc", "colour"],
            ),
        ];
        for (file, text, words) in bad {
            let (out, _) = apply_text(file, text);
            let err = String::from_utf8_lossy(&out.stderr);
            c.check(
                !out.status.success() && words.iter().all(|w| err.contains(w)),
                || {
                    format!(
                        "a bad apply ({file}) must fail naming {words:?}\n{}",
                        show(&format!("router apply -f {file}"), &out)
                    )
                },
            );
        }
        c.check(
            std::fs::read(STORE).unwrap_or_default() == store_before,
            || format!("a refused apply changed the store {STORE}"),
        );
        let view_after = file_view();
        c.check(view_after == view_before, || {
        format!(
            "a refused apply changed `router --config {STORE} get svc -A`:\nbefore:\n{view_before}\nafter:\n{view_after}"
        )
    });
        let live_after = live_view();
        c.check(live_after == live_before, || {
        format!(
            "a refused apply changed the routers' `get svc -A -o json`:\nbefore: {live_before:#?}\nafter: {live_after:#?}"
        )
    });
    });
}

/// The kubelet removed the pods deleted above: no namespace, no server, no
/// resolv.conf left behind.
fn kubelet_removed_pods(c: &mut Checks, initial: &[Pod]) {
    let live: BTreeSet<String> = live_pods().into_iter().map(|p| p.name).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    for pod in initial.iter().filter(|p| !live.contains(&p.name)) {
        let ns = format!("/run/netns/ksr-{}", pod.name);
        while Path::new(&ns).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        c.check(!Path::new(&ns).exists(), || {
            format!("pod {} was deleted but {ns} still exists", pod.name)
        });
        let etc = format!("/etc/netns/ksr-{}", pod.name);
        c.check(!Path::new(&etc).exists(), || {
            format!("pod {} was deleted but {etc} still exists", pod.name)
        });
    }
}
