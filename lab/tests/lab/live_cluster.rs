//! The live cluster: changes through `kubectl apply/delete` on the lab's
//! API server, followed by the routers (they watch it) and the kubelets.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lab::env::*;
use lab::kubectl::*;
use lab::objects::*;
use lab::text::*;
use lab::{Checks, Cluster};
use serde_json::Value;

/// How long a change applied to the API may take to reach every router.
const SERVED_WITHIN: Duration = Duration::from_secs(5);

/// Live check 1: `kubectl delete po` of the worker's nginx pod: a replacement (new
/// name, new IP) is Running and Ready within 10 s, the endpoints follow,
/// the ClusterIP reaches it.
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
    let out = delete(&["po", &old.name, "--wait=false"]);
    if !c.check(
        out.status.success() && stdout(&out).contains(&format!("pod \"{}\" deleted", old.name)),
        || show(&format!("kubectl delete po {}", old.name), &out),
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
                "delete po {}: no new nginx pod Running and Ready within 10 s\n{}\n{}",
                old.name,
                last.map(|o| show("kubectl get po -o json", &o))
                    .unwrap_or_default(),
                std::fs::read_to_string(format!("{RUN_DIR}/kubelet-{}.log", old.node))
                    .unwrap_or_default()
            )
        });
        return;
    };
    eprintln!(
        "delete po {}: {} ({} on {}) Running and Ready after {took:?}",
        old.name, new.name, new.ip, new.node
    );
    c.check(new.ip != old.ip && new.name != old.name, || {
        format!(
            "the replacement of {} ({}) should have a new name and IP, got {} ({})",
            old.name, old.ip, new.name, new.ip
        )
    });
    // The routers follow the EndpointSlice by a watch: shortly after.
    wait_until(SERVED_WITHIN, || {
        let (_, ips) = live_endpoint_ips("nginx-svc");
        ips.contains(&new.ip) && !ips.contains(&old.ip)
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
        let (out, _) = apply_yaml("nginx-svc.yaml", &nginx_svc("  type: NodePort\n"));
        c.check(
            out.status.success() && stdout(&out).contains("service/nginx-svc configured"),
            || show("kubectl apply -f nginx-svc.yaml (NodePort)", &out),
        );
        let served = wait_served("nginx-svc", SERVED_WITHIN, |s| {
            s.is_some_and(|s| s["type"] == "NodePort")
        });
        c.ok(served);
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
        let (out, _) = apply_yaml("nginx-svc.yaml", &nginx_svc("  type: ClusterIP\n"));
        let served = wait_served("nginx-svc", SERVED_WITHIN, |s| {
            s.is_some_and(|s| s["type"] == "ClusterIP")
        });
        c.ok(served);
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
                    show("kubectl apply", &out)
                )
            },
        );
    });
}

/// Live check 3: A long TCP connection through the ClusterIP survives 100 unrelated
/// changes (`kubectl apply` of a Service `churn` whose label changes every
/// time), each of which reaches both routers; prints how long from
/// `kubectl apply` to both routers serving it.
#[test]
fn stream_survives_churn() {
    lab::check(|c, k| {
        const CHANGES: u32 = 100;
        // 15 s at 250 ms a line: longer than the 100 applies take (checked
        // below), so every one of them happens while the stream runs.
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
        let stream_start = Instant::now();
        let mut applies = Vec::new();
        let mut to_served = Vec::new();
        let mut failed = Vec::new();
        for i in 0..CHANGES {
            let round = format!("r{i}");
            let text = format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: churn\n  labels:\n    round: {round}\n\
                 spec:\n  selector:\n    app: nginx-deployment\n  ports:\n  - port: {}\n    targetPort: 80\n    protocol: TCP\n",
                8000 + i % 10
            );
            let start = Instant::now();
            let (out, took) = apply_yaml("churn.yaml", &text);
            if !out.status.success() {
                failed.push(show("kubectl apply -f churn.yaml", &out));
                continue;
            }
            applies.push(took);
            match wait_served("churn", SERVED_WITHIN, |s| {
                s.is_some_and(|s| s["labels"]["round"] == round.as_str())
            }) {
                Ok(_) => to_served.push(start.elapsed()),
                Err(e) => failed.push(e),
            }
        }
        let churn_took = stream_start.elapsed();
        c.check(failed.is_empty(), || {
            format!(
                "{} of {CHANGES} churn applies failed or did not reach both routers within {SERVED_WITHIN:?}; first:\n{}",
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
                "a stream through {NGINX_SVC_IP} during {CHANGES} applies ({churn_took:?}) should receive all {LINES} lines, got {got}\n{}",
                show("curl -N /stream", &out)
            )
        });
        c.check(churn_took < Duration::from_millis(250 * LINES as u64), || {
            format!("the {CHANGES} applies took {churn_took:?}, longer than the stream: not all of them were made during it")
        });
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let summary = |v: &mut Vec<Duration>| {
            v.sort();
            match (v.first(), v.last()) {
                (Some(_), Some(max)) => format!(
                    "median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
                    ms(v[v.len() / 2]),
                    ms(v[v.len() * 9 / 10]),
                    ms(*max)
                ),
                _ => "-".to_string(),
            }
        };
        eprintln!(
            "apply-to-served over {} applies: `kubectl apply` alone {}; from `kubectl apply` to both routers serving the change {}",
            to_served.len(),
            summary(&mut applies),
            summary(&mut to_served)
        );
        let out = delete(&["svc", "churn"]);
        c.check(out.status.success(), || {
            show("kubectl delete svc churn", &out)
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
    let out = delete(&["po", &victim, "--wait=false"]);
    let start = Instant::now();
    if !c.check(out.status.success(), || {
        show(&format!("kubectl delete po {victim}"), &out)
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
        let out = delete(&["svc", "nginx-nodeport"]);
        c.check(
            out.status.success() && stdout(&out).contains("service \"nginx-nodeport\" deleted"),
            || show("kubectl delete svc nginx-nodeport", &out),
        );
        let served = wait_served("nginx-nodeport", SERVED_WITHIN, |s| s.is_none());
        c.ok(served);
        let out = lab_exec(&k.client.name, &["curl", "-sS", "--max-time", "2", &url]);
        c.check(!out.status.success(), || {
            format!(
                "after `kubectl delete svc nginx-nodeport`, {url} must not answer\n{}",
                show("curl", &out)
            )
        });
        let text = format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: nginx-nodeport\nspec:\n  type: NodePort\n\
             \x20 clusterIP: {ip}\n  selector:\n    app: nginx-deployment\n  externalTrafficPolicy: Cluster\n\
             \x20 ports:\n  - port: 80\n    targetPort: 80\n    nodePort: 30080\n    protocol: TCP\n"
        );
        let (out, _) = apply_yaml("nginx-nodeport.yaml", &text);
        c.check(
            out.status.success() && stdout(&out).contains("service/nginx-nodeport created"),
            || show("kubectl apply -f nginx-nodeport.yaml", &out),
        );
        let served = wait_served("nginx-nodeport", SERVED_WITHIN, |s| s.is_some())
            .and_then(|_| wait_endpoints("nginx-nodeport", SERVED_WITHIN));
        c.ok(served);
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

/// The Services of every namespace as `kubectl get svc -A -o json` has
/// them, or the error.
fn api_services() -> Value {
    lab::kubectl::get_json(&["svc", "-A"])
        .map(|v| Value::from(items(&v)))
        .unwrap_or_else(Value::from)
}

/// The Services every router serves (`router --node N get svc -A -o
/// json`), AGE masked (it ticks).
fn served_services(k: &Cluster) -> Vec<(String, Vec<Value>)> {
    k.nodes
        .iter()
        .map(|n| {
            let out = router_cli(&n.name, &["get", "svc", "-A", "-o", "json"]);
            let mut items = serde_json::from_slice::<Value>(&out.stdout)
                .map(|v| items(&v))
                .unwrap_or_default();
            for item in &mut items {
                if let Some(fields) = item.as_object_mut() {
                    fields.remove("age");
                }
            }
            (n.name.clone(), items)
        })
        .collect()
}

/// Live check 6: An invalid manifest is refused with kubectl's error naming the
/// object and field, and changes nothing: not the API server's Services, not
/// what the routers serve.
#[test]
fn bad_apply_changes_nothing() {
    lab::check(|c, k| {
        let api_before = api_services();
        let served_before = served_services(k);
        let bad = [
            (
                "clash.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: clash-svc\nspec:\n\
                 \x20 clusterIP: 10.101.182.177\n  selector:\n    app: nginx-deployment\n\
                 \x20 ports:\n  - port: 80\n",
                ["clash-svc", "clusterIP"],
            ),
            (
                "unknown-field.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: odd-svc\nspec:\n  colour: red\n\
                 \x20 selector:\n    app: nginx-deployment\n  ports:\n  - port: 80\n",
                // A decode error: kubectl names the file, not the object.
                ["unknown-field.yaml", "colour"],
            ),
        ];
        for (file, text, words) in bad {
            let (out, _) = apply_yaml(file, text);
            let err = String::from_utf8_lossy(&out.stderr);
            c.check(
                !out.status.success() && words.iter().all(|w| err.contains(w)),
                || {
                    format!(
                        "a bad apply ({file}) must fail naming {words:?}\n{}",
                        show(&format!("kubectl apply -f {file}"), &out)
                    )
                },
            );
        }
        let api_after = api_services();
        c.check(api_after == api_before, || {
            format!(
                "a refused apply changed `kubectl get svc -A -o json`:\nbefore: {api_before:#}\nafter: {api_after:#}"
            )
        });
        // Had anything reached the routers, it would within this.
        std::thread::sleep(Duration::from_millis(500));
        let served_after = served_services(k);
        c.check(served_after == served_before, || {
            format!(
                "a refused apply changed the routers' `get svc -A -o json`:\nbefore: {served_before:#?}\nafter: {served_after:#?}"
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
