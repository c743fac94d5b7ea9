//! The lab in kubernetes mode (`scripts/lab up`), checked with
//! the real kubectl: the kubelets register their nodes and bring the
//! manifests' pods to Running and Ready with IPs from their nodes' pod
//! CIDRs, each pod's server answers in its own namespace, a deleted
//! Deployment pod is replaced (new name, new namespace, the old one gone),
//! the manifests reproduce config.toml's Services, and the admin
//! kubeconfig from `scripts/lab kubeconfig` works from the host while a
//! router's cannot write. Its own test binary with its own lab (see
//! `lab::session`). Needs root and kubectl: fails loudly without them.
//!
//! The routers watch the API as kube-proxy does: the Services are served
//! through them (ClusterIP from pods on both nodes, DNS names, NodePorts and
//! the LoadBalancer IP from outside, a virtual IP that does not answer
//! ping, a Service without endpoints that rejects), the endpoints follow a
//! replaced pod, and the routers keep forwarding while the API server does
//! not answer. The API server killed (`kill -9`) and started again on its
//! embedded storage: a stream through a ClusterIP outlasts it, nothing is
//! lost, the routers' watches resume (`kubernetes/restart.rs`; the same
//! on etcd is `kubernetes_etcd.rs`, its own lab).

use std::time::{Duration, Instant};

use lab::env::*;
use lab::session::check_kubernetes;
use serde_json::Value;

#[path = "kubernetes/kubectl.rs"]
mod kubectl;
#[path = "kubernetes/restart.rs"]
mod restart;

use kubectl::*;

/// The first node's underlay address: the API server's lab address.
const MASTER_IP: &str = "192.168.191.144";

fn netns_exists(name: &str) -> bool {
    std::path::Path::new(&format!("/run/netns/ksr-{name}")).exists()
}

/// Whether `ip/24` holds `ip` (the lab's pod CIDRs are /24s; the check
/// compares the first three octets).
fn in_cidr(ip: &str, cidr: &str) -> bool {
    let net = cidr.split('/').next().unwrap_or("");
    let prefix = |a: &str| a.rsplit_once('.').map(|(p, _)| p.to_string());
    cidr.ends_with("/24") && prefix(ip).is_some() && prefix(ip) == prefix(net)
}

/// `curl http://IP/hostname` from NODE's namespace: the pod's name.
fn hostname_from_node(node: &str, ip: &str) -> String {
    let out = lab_exec(
        node,
        &[
            "curl",
            "-sS",
            "--max-time",
            "3",
            &format!("http://{ip}/hostname"),
        ],
    );
    stdout(&out).trim().to_string()
}

#[test]
fn nodes_register_and_pods_run_in_their_namespaces() {
    check_kubernetes(|c| {
        let nodes = items(&get_json(c, &["nodes"]));
        let names: Vec<&str> = nodes.iter().map(|n| str_at(n, "/metadata/name")).collect();
        c.check(names == ["mac-master", "mac-worker"], || {
            format!("nodes: {names:?}")
        });
        let mut cidrs = std::collections::HashMap::new();
        for n in &nodes {
            let name = str_at(n, "/metadata/name");
            let cidr = str_at(n, "/spec/podCIDR");
            let ready = n["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            let internal = n["status"]["addresses"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
                .map(|a| str_at(a, "/address").to_string())
                .unwrap_or_default();
            let want = if name == "mac-master" {
                (MASTER_IP, "10.10.0.0/24")
            } else {
                ("192.168.191.145", "10.10.1.0/24")
            };
            c.check(ready && (internal.as_str(), cidr) == want, || {
                format!("node {name}: Ready {ready}, InternalIP {internal}, podCIDR {cidr}; want {want:?}")
            });
            cidrs.insert(name.to_string(), cidr.to_string());
        }
        let pods = items(&get_json(c, &["po", "-A"]));
        c.check(pods.len() >= 6, || {
            format!(
                "expected nginx x2, client, client-master and two coredns pods, got {}",
                pods.len()
            )
        });
        for p in &pods {
            let name = str_at(p, "/metadata/name");
            let node = str_at(p, "/spec/nodeName");
            let ip = str_at(p, "/status/podIP");
            let phase = str_at(p, "/status/phase");
            let cidr = cidrs.get(node).map(String::as_str).unwrap_or("");
            c.check(ready(p) && phase == "Running" && in_cidr(ip, cidr), || {
                format!(
                    "pod {name} on {node}: phase {phase}, Ready {}, IP {ip} (node podCIDR {cidr})",
                    ready(p)
                )
            });
            let dns = p["metadata"]["labels"]["k8s-app"] == "kube-dns";
            c.check(netns_exists(name) != dns, || {
                format!(
                    "pod {name}: netns ksr-{name} exists: {} (kube-dns pods get none)",
                    netns_exists(name)
                )
            });
            if name.starts_with("nginx-deployment-") {
                let got = hostname_from_node(node, ip);
                c.check(got == name, || {
                    format!("curl http://{ip}/hostname from ksr-{node}: {got:?}, want {name:?}")
                });
            }
        }
    });
}

/// The IPv4 address on `target`'s eth0 (`scripts/lab exec TARGET`).
fn eth0_address(target: &str) -> String {
    let out = lab_exec(target, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    stdout(&out)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or("")
        .to_string()
}

/// A pod named like one in `default` (the walkthrough's `client`),
/// applied in another namespace on the same node: it gets its own netns
/// (`ksr-dev_client`) and DNS search path, the first pod keeps its own,
/// and deleting the new one leaves the first alone.
#[test]
fn a_pod_of_the_same_name_in_another_namespace_is_a_pod_of_its_own() {
    check_kubernetes(|c| {
        let first = get_json(c, &["po", "client"]);
        let first_ip = str_at(&first, "/status/podIP").to_string();
        let manifest = format!("{RUN_DIR}/dev-client.yaml");
        let yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: dev\n---\n\
            apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\n  namespace: dev\n\
            spec:\n  nodeName: mac-worker\n  containers:\n  - name: web\n    image: nginx\n\
            \x20   ports:\n    - containerPort: 80\n";
        if let Err(e) = std::fs::write(&manifest, yaml) {
            c.check(false, || format!("cannot write {manifest}: {e}"));
            return;
        }
        let out = kubectl(c, &["apply", "-f", &manifest]);
        c.check(out.status.success(), || {
            show("kubectl apply -f dev-client.yaml", &out)
        });
        let start = Instant::now();
        let mut pod = Value::Null;
        while start.elapsed() < Duration::from_secs(30) {
            pod = get_json(c, &["po", "-n", "dev", "client"]);
            if ready(&pod) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let ip = str_at(&pod, "/status/podIP").to_string();
        c.check(ready(&pod) && !ip.is_empty() && ip != first_ip, || {
            format!(
                "dev/client: Ready {}, IP {ip:?} (default/client has {first_ip})",
                ready(&pod)
            )
        });
        c.check(netns_exists("dev_client") && netns_exists("client"), || {
            format!(
                "netns ksr-dev_client exists: {}, ksr-client: {}",
                netns_exists("dev_client"),
                netns_exists("client")
            )
        });
        let (dev_has, default_has) = (eth0_address("dev/client"), eth0_address("client"));
        c.check(dev_has == ip && default_has == first_ip, || {
            format!(
                "eth0 of dev/client has {dev_has:?} (want {ip}), of client {default_has:?} (want {first_ip})"
            )
        });
        let got = hostname_from_node("mac-worker", &ip);
        c.check(got == "client", || {
            format!("curl http://{ip}/hostname from ksr-mac-worker: {got:?}, want \"client\"")
        });
        // Its resolv.conf searches its own namespace first, as a kubelet's.
        let resolv =
            std::fs::read_to_string("/etc/netns/ksr-dev_client/resolv.conf").unwrap_or_default();
        c.check(resolv.contains("search dev.svc.cluster.local"), || {
            format!("/etc/netns/ksr-dev_client/resolv.conf: {resolv:?}")
        });
        // Deleting it removes its netns only.
        let out = kubectl(c, &["delete", "po", "-n", "dev", "client"]);
        c.check(out.status.success(), || {
            show("kubectl delete po -n dev client", &out)
        });
        let gone = Instant::now();
        while netns_exists("dev_client") && gone.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(200));
        }
        c.check(!netns_exists("dev_client"), || {
            "netns ksr-dev_client still exists 15 s after kubectl delete".to_string()
        });
        let still = eth0_address("client");
        let first_now = get_json(c, &["po", "client"]);
        c.check(still == first_ip && ready(&first_now), || {
            format!(
                "default/client after dev/client went: eth0 {still:?} (want {first_ip}), Ready {}",
                ready(&first_now)
            )
        });
        let out = kubectl(c, &["delete", "namespace", "dev"]);
        c.check(out.status.success(), || {
            show("kubectl delete namespace dev", &out)
        });
        let _ = std::fs::remove_file(&manifest);
    });
}

#[test]
fn a_deleted_deployment_pod_is_replaced() {
    check_kubernetes(|c| {
        let before = items(&get_json(c, &["po", "-l", "app=nginx-deployment"]));
        let Some(victim) = before.first() else {
            c.check(false, || "no nginx-deployment pod".into());
            return;
        };
        let old: Vec<String> = before
            .iter()
            .map(|p| str_at(p, "/metadata/name").to_string())
            .collect();
        let (name, ip) = (
            str_at(victim, "/metadata/name").to_string(),
            str_at(victim, "/status/podIP").to_string(),
        );
        let start = Instant::now();
        let out = kubectl(c, &["delete", "po", &name]);
        c.check(
            stdout(&out).trim() == format!("pod \"{name}\" deleted"),
            || show("kubectl delete po", &out),
        );
        let deleted = start.elapsed();
        let mut replacement = None;
        while start.elapsed() < Duration::from_secs(30) && replacement.is_none() {
            let now = items(&get_json(c, &["po", "-l", "app=nginx-deployment"]));
            replacement = now
                .into_iter()
                .find(|p| !old.contains(&str_at(p, "/metadata/name").to_string()) && ready(p));
            std::thread::sleep(Duration::from_millis(200));
        }
        let Some(new) = replacement else {
            c.check(false, || {
                format!("no Ready replacement for {name} within 30 s")
            });
            return;
        };
        let new_name = str_at(&new, "/metadata/name");
        let new_ip = str_at(&new, "/status/podIP");
        let node = str_at(&new, "/spec/nodeName");
        eprintln!(
            "deleted {name} ({ip}) in {deleted:?}; {new_name} ({new_ip} on {node}) Ready after {:?}",
            start.elapsed()
        );
        c.check(!netns_exists(&name), || {
            format!("netns ksr-{name} still exists")
        });
        c.check(netns_exists(new_name), || {
            format!("no netns ksr-{new_name}")
        });
        let got = hostname_from_node(node, new_ip);
        c.check(got == new_name, || {
            format!("curl http://{new_ip}/hostname from ksr-{node}: {got:?}, want {new_name:?}")
        });
        // The EndpointSlice follows: the new IP is a ready endpoint, the
        // old one is gone (its pod was released after it stopped).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut addresses = Vec::new();
        while Instant::now() < deadline {
            let slices = items(&get_json(
                c,
                &[
                    "endpointslices",
                    "-l",
                    "kubernetes.io/service-name=nginx-svc",
                ],
            ));
            addresses = slices
                .iter()
                .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                .filter(|e| e["conditions"]["ready"] == true)
                .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect();
            if addresses.iter().any(|a| a == new_ip) && !addresses.contains(&ip) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        c.check(
            addresses.iter().any(|a| a == new_ip) && !addresses.contains(&ip),
            || format!("nginx-svc's ready endpoints {addresses:?}: want {new_ip}, not {ip}"),
        );
        // The routers follow: through the ClusterIP the replacement
        // answers, the deleted pod never does.
        let seen = hostnames_via_cluster_ip("client", 20);
        c.check(seen.iter().any(|h| h == new_name), || {
            format!("20 requests to nginx-svc from client never reached {new_name}: {seen:?}")
        });
        c.check(!seen.contains(&name), || {
            format!("nginx-svc still reached the deleted {name}: {seen:?}")
        });
    });
}

#[test]
fn services_are_served_through_the_routers() {
    check_kubernetes(|c| {
        let pods = nginx_pods(c);
        for client in ["client", "client-master"] {
            let seen = hostnames_via_cluster_ip(client, 20);
            for pod in &pods {
                c.check(seen.contains(pod), || {
                    format!(
                        "20 requests to {NGINX_SVC} from {client} never reached {pod}: {seen:?}"
                    )
                });
            }
        }
        let by_name = curl("client", "http://nginx-svc/hostname", &[]);
        c.check(
            by_name.status.success() && pods.contains(&stdout(&by_name).trim().to_string()),
            || show("curl http://nginx-svc/hostname (cluster DNS)", &by_name),
        );
        if find_tool("dig").is_some() {
            let dig = lab_exec(
                "client",
                &[
                    "dig",
                    "+short",
                    "+time=2",
                    "+tries=1",
                    "nginx-svc.default.svc.cluster.local",
                ],
            );
            c.check(stdout(&dig).trim() == NGINX_SVC, || {
                show("dig nginx-svc", &dig)
            });
        }
        for url in [
            "http://192.168.191.144:30080/hostname",
            "http://192.168.191.145:30080/hostname",
            "http://192.168.200.10/hostname",
        ] {
            let out = curl("external", url, &[]);
            c.check(
                out.status.success() && pods.contains(&stdout(&out).trim().to_string()),
                || show(&format!("curl {url} from outside the cluster"), &out),
            );
        }
        let ping = lab_exec("client", &["ping", "-c", "1", "-W", "1", NGINX_SVC]);
        c.check(!ping.status.success(), || {
            show("ping of a ClusterIP must get no answer", &ping)
        });
        let orphan = curl("client", "http://orphan-svc/", &["-v"]);
        c.check(
            orphan.status.code() == Some(7)
                && String::from_utf8_lossy(&orphan.stderr).contains("Connection refused"),
            || {
                show(
                    "a Service without endpoints rejects (connection refused)",
                    &orphan,
                )
            },
        );
        let scrape = lab_exec(
            "mac-worker",
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "http://127.0.0.1:10249/metrics",
            ],
        );
        let text = stdout(&scrape);
        c.check(
            text.lines().any(|l| {
                l.strip_prefix("ksr_watch_event_to_dataplane_seconds_count ")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .is_some_and(|v| v >= 1.0)
            }),
            || format!("mac-worker's /metrics should count the watch's changes:\n{text}"),
        );
    });
}

/// Stops a process with SIGSTOP and continues it when dropped (also when
/// a check fails): the API server "down" without losing its state.
struct Paused(String);

impl Paused {
    fn new(pid: &str) -> Paused {
        let _ = run(5, "kill", &["-STOP", pid]);
        Paused(pid.to_owned())
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = run(5, "kill", &["-CONT", &self.0]);
    }
}

#[test]
fn the_routers_forward_while_the_api_server_does_not_answer() {
    check_kubernetes(|c| {
        let pid = std::fs::read_to_string("/run/ksr/apiserver.pid").unwrap_or_default();
        let pid = pid.trim().to_string();
        c.check(!pid.is_empty(), || "no /run/ksr/apiserver.pid".into());
        if pid.is_empty() {
            return;
        }
        let pods = nginx_pods(c);
        {
            let _paused = Paused::new(&pid);
            let seen = hostnames_via_cluster_ip("client", 10);
            c.check(seen.iter().all(|h| pods.contains(h)), || {
                format!(
                    "with the API server stopped, nginx-svc from client: {seen:?} (pods {pods:?})"
                )
            });
            let by_name = curl("client", "http://nginx-svc/hostname", &[]);
            c.check(by_name.status.success(), || {
                show(
                    "DNS and the ClusterIP with the API server stopped",
                    &by_name,
                )
            });
        }
        // Back: a change made now reaches the routers (their watches resume).
        let out = kubectl(
            c,
            &["scale", "deployment", "nginx-deployment", "--replicas=3"],
        );
        c.check(out.status.success(), || {
            show("kubectl scale --replicas=3", &out)
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut third = None;
        while Instant::now() < deadline && third.is_none() {
            third = items(&get_json(c, &["po", "-l", "app=nginx-deployment"]))
                .into_iter()
                .find(|p| ready(p) && !pods.contains(&str_at(p, "/metadata/name").to_string()))
                .map(|p| str_at(&p, "/metadata/name").to_string());
            std::thread::sleep(Duration::from_millis(200));
        }
        if let Some(third) = &third {
            let seen = hostnames_via_cluster_ip("client", 30);
            c.check(seen.contains(third), || {
                format!("30 requests to nginx-svc never reached the new {third}: {seen:?}")
            });
        } else {
            c.check(false, || "no third nginx pod Ready within 30 s".into());
        }
        let out = kubectl(
            c,
            &["scale", "deployment", "nginx-deployment", "--replicas=2"],
        );
        c.check(out.status.success(), || {
            show("kubectl scale --replicas=2", &out)
        });
    });
}

#[test]
fn the_manifests_reproduce_the_default_services() {
    check_kubernetes(|c| {
        let svcs = items(&get_json(c, &["svc", "-A"]));
        let find = |name: &str| {
            svcs.iter()
                .find(|s| str_at(s, "/metadata/name") == name)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let expect = [
            ("kubernetes", "/spec/clusterIP", "10.96.0.1"),
            ("nginx-svc", "/spec/clusterIP", "10.101.182.177"),
            ("kube-dns", "/spec/clusterIP", "10.96.0.10"),
            ("nginx-headless", "/spec/clusterIP", "None"),
            ("echo-udp", "/spec/ports/0/protocol", "UDP"),
            ("orphan-svc", "/spec/selector/app", "nothing-matches"),
            ("nginx-local", "/spec/externalTrafficPolicy", "Local"),
            (
                "nginx-lb",
                "/status/loadBalancer/ingress/0/ip",
                "192.168.200.10",
            ),
            ("nginx-lb", "/spec/externalIPs/0", "192.168.200.20"),
            ("example", "/spec/externalName", "example.com"),
        ];
        for (name, pointer, want) in expect {
            let svc = find(name);
            let got = str_at(&svc, pointer);
            c.check(got == want, || {
                format!("svc {name} {pointer}: {got:?}, want {want:?}")
            });
        }
        for (name, port) in [
            ("nginx-nodeport", 30080),
            ("nginx-local", 30081),
            ("nginx-lb", 30082),
        ] {
            let got = find(name)
                .pointer("/spec/ports/0/nodePort")
                .and_then(Value::as_i64);
            c.check(got == Some(port), || {
                format!("svc {name} nodePort {got:?}, want {port}")
            });
        }
        let eps = get_json(c, &["endpoints", "kubernetes"]);
        let addr = str_at(&eps, "/subsets/0/addresses/0/ip");
        let port = eps
            .pointer("/subsets/0/ports/0/port")
            .and_then(Value::as_i64);
        c.check(addr == MASTER_IP && port == Some(6443), || {
            format!("endpoints kubernetes: {addr}:{port:?}, want {MASTER_IP}:6443")
        });
    });
}

#[test]
fn the_kubeconfigs_work_and_a_router_cannot_write() {
    check_kubernetes(|c| {
        let path = admin_kubeconfig(c);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        c.check(text.contains("server: https://127.0.0.1:6443"), || {
            format!("{path} does not point at https://127.0.0.1:6443:\n{text}")
        });
        // As the user would: KUBECONFIG in the environment, no flag.
        let out = command("timeout")
            .args(["20", "kubectl", "get", "svc", "kubernetes"])
            .env("KUBECONFIG", &path)
            .output()
            .expect("kubectl runs");
        let table = stdout(&out);
        c.check(
            out.status.success() && table.contains("kubernetes   ClusterIP   10.96.0.1"),
            || show("KUBECONFIG=... kubectl get svc kubernetes", &out),
        );
        // No token: 401 on the host's listener.
        let out = run(
            10,
            "curl",
            &[
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "https://127.0.0.1:6443/api/v1/pods",
            ],
        );
        c.check(stdout(&out) == "401", || show("anonymous curl", &out));
        // A router's kubeconfig, at the lab address from mac-worker's
        // namespace: it reads, and it cannot write.
        let router = format!("{RUN_DIR}/apiserver/router-mac-worker.kubeconfig");
        let read = lab_exec(
            "mac-worker",
            &[
                "kubectl",
                "--kubeconfig",
                &router,
                "get",
                "endpointslices",
                "-A",
            ],
        );
        c.check(
            read.status.success() && stdout(&read).contains("kubernetes"),
            || {
                show(
                    "router kubeconfig: get endpointslices -A (from ksr-mac-worker)",
                    &read,
                )
            },
        );
        let write = lab_exec(
            "mac-worker",
            &[
                "kubectl",
                "--kubeconfig",
                &router,
                "delete",
                "svc",
                "nginx-svc",
                "--dry-run=server",
            ],
        );
        let err = String::from_utf8_lossy(&write.stderr);
        c.check(!write.status.success() && err.contains("Forbidden"), || {
            show("router kubeconfig: delete svc nginx-svc", &write)
        });
    });
}

#[test]
fn the_api_server_restarts_on_its_embedded_storage_and_nothing_is_lost() {
    check_kubernetes(|c| restart::kill_and_restart_loses_nothing(c, restart::Storage::Embedded));
}
