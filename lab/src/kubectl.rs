//! The lab's Kubernetes API as the checks drive it: the real kubectl with
//! the admin kubeconfig, changes written as YAML manifests and applied,
//! and waits until the routers serve what the API holds (the routers
//! follow the API by a watch, so a change reaches them shortly after
//! kubectl returns, not before).

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::env::{router_cli, run, show, NGINX_SVC_IP, RUN_DIR};
use crate::objects::{endpoint_ips, items, lab_nodes};
use crate::probes::time_until;

/// The admin kubeconfig `scripts/lab up` writes (`scripts/lab
/// kubeconfig` prints its path): the API server on 127.0.0.1:6443.
pub const ADMIN_KUBECONFIG: &str = "/run/ksr/apiserver/admin.kubeconfig";

/// `kubectl --kubeconfig <admin> ARGS`, bounded to 30 s.
pub fn kubectl(args: &[&str]) -> Output {
    let mut all = vec!["--kubeconfig", ADMIN_KUBECONFIG];
    all.extend_from_slice(args);
    run(30, "kubectl", &all)
}

/// `kubectl get ARGS -o json`, parsed, or why not.
pub fn get_json(args: &[&str]) -> Result<Value, String> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = kubectl(&all);
    if !out.status.success() {
        return Err(show(&format!("kubectl {}", all.join(" ")), &out));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("kubectl {}: not JSON ({e})", all.join(" ")))
}

/// Writes `yaml` to `/run/ksr/NAME` and runs `kubectl apply -f` on it;
/// returns kubectl's output and how long it took.
pub fn apply_yaml(name: &str, yaml: &str) -> (Output, Duration) {
    let path = format!("{RUN_DIR}/{name}");
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    let start = Instant::now();
    let out = kubectl(&["apply", "-f", &path]);
    (out, start.elapsed())
}

/// `kubectl delete ARGS`.
pub fn delete(args: &[&str]) -> Output {
    let mut all = vec!["delete"];
    all.extend_from_slice(args);
    kubectl(&all)
}

/// `nginx-svc` as `lab/manifests/nginx-svc.yaml` has it, with `labels`
/// on the Service and `spec_extra` (lines indented by two spaces, e.g.
/// `"  type: NodePort\n"`) in its spec.
pub fn nginx_svc_labelled(labels: &[(&str, &str)], spec_extra: &str) -> String {
    let mut meta = String::new();
    if !labels.is_empty() {
        meta.push_str("  labels:\n");
        for (k, v) in labels {
            meta.push_str(&format!("    {k}: \"{v}\"\n"));
        }
    }
    [
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: nginx-svc\n",
        &meta,
        "spec:\n",
        spec_extra,
        "  selector:\n    app: nginx-deployment\n",
        &format!("  clusterIP: {NGINX_SVC_IP}\n"),
        "  ports:\n  - port: 80\n    targetPort: 80\n    protocol: TCP\n",
    ]
    .concat()
}

/// [`nginx_svc_labelled`] without labels; `nginx_svc("")` is the manifest.
pub fn nginx_svc(spec_extra: &str) -> String {
    nginx_svc_labelled(&[], spec_extra)
}

/// Service `name` (namespace `default`) as NODE's router serves it
/// (`router --node NODE get svc NAME -o json`); `None` when it serves no
/// such Service.
pub fn served_service(node: &str, name: &str) -> Option<Value> {
    let out = router_cli(node, &["get", "svc", name, "-o", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).ok()?;
    items(&list).into_iter().next()
}

/// The ready endpoints' IPs of Service `name` as NODE's router serves it.
pub fn served_endpoint_ips(node: &str, name: &str) -> Vec<String> {
    endpoint_ips(&router_cli(node, &["get", "endpoints", name, "-o", "json"]))
}

/// Retries `ok` every 20 ms until it holds; how long that took, or `None`
/// after `within`.
pub fn wait_until(within: Duration, ok: impl FnMut() -> bool) -> Option<Duration> {
    time_until(within, Duration::from_millis(20), ok)
}

/// Waits (up to `within`) until every node's router serves Service `name`
/// as `want` says (`None`: it serves no such Service); how long that took,
/// or what the routers served at the deadline.
pub fn wait_served(
    name: &str,
    within: Duration,
    want: impl Fn(Option<&Value>) -> bool,
) -> Result<Duration, String> {
    let nodes = lab_nodes();
    let all = || {
        nodes
            .iter()
            .all(|n| want(served_service(&n.name, name).as_ref()))
    };
    wait_until(within, all).ok_or_else(|| {
        let views: Vec<String> = nodes
            .iter()
            .map(|n| {
                let svc = served_service(&n.name, name);
                format!("{}: {}", n.name, svc.unwrap_or(Value::Null))
            })
            .collect();
        format!(
            "after {within:?} the routers do not serve svc {name} as expected:\n{}",
            views.join("\n")
        )
    })
}

/// Waits (up to `within`) until every node's router serves at least one
/// ready endpoint for Service `name`.
pub fn wait_endpoints(name: &str, within: Duration) -> Result<Duration, String> {
    let nodes = lab_nodes();
    wait_until(within, || {
        nodes
            .iter()
            .all(|n| !served_endpoint_ips(&n.name, name).is_empty())
    })
    .ok_or_else(|| format!("after {within:?} a router serves no endpoint of svc {name}"))
}
