//! The real kubectl against the lab's API server, as admin, and what the
//! kubernetes-mode checks read with it (shared by the `kubernetes` and
//! `kubernetes_etcd` test binaries).

use lab::env::*;
use lab::Checks;
use serde_json::Value;

/// nginx-svc's ClusterIP (lab/manifests/nginx-svc.yaml).
pub const NGINX_SVC: &str = "10.101.182.177";

/// `scripts/lab kubeconfig`: the admin kubeconfig's path.
pub fn admin_kubeconfig(c: &mut Checks) -> String {
    let out = lab_cmd(&["kubeconfig"]);
    c.check(out.status.success(), || {
        show("scripts/lab kubeconfig", &out)
    });
    stdout(&out).trim().to_string()
}

/// `kubectl --kubeconfig <admin> ARGS`.
pub fn kubectl(c: &mut Checks, args: &[&str]) -> std::process::Output {
    let config = admin_kubeconfig(c);
    let mut all = vec!["--kubeconfig", config.as_str()];
    all.extend_from_slice(args);
    run(20, "kubectl", &all)
}

/// `kubectl get ARGS -o json`, parsed; `Null` (after a recorded failure)
/// when it fails.
pub fn get_json(c: &mut Checks, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = kubectl(c, &all);
    if !c.check(out.status.success(), || {
        show(&format!("kubectl {}", all.join(" ")), &out)
    }) {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        c.check(false, || {
            format!("kubectl {}: not JSON: {e}", all.join(" "))
        });
        Value::Null
    })
}

/// A List's items.
pub fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

/// The string at a JSON pointer, `""` when there is none.
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Whether a pod's Ready condition is True.
pub fn ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// `n` requests to nginx-svc's ClusterIP from `pod`: the answering pods'
/// names (empty for a failed request).
pub fn hostnames_via_cluster_ip(pod: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            lab::text::hostname_via(pod, &format!("http://{NGINX_SVC}/hostname"))
                .unwrap_or_default()
        })
        .collect()
}

/// The nginx-deployment pods' names.
pub fn nginx_pods(c: &mut Checks) -> Vec<String> {
    items(&get_json(c, &["po", "-l", "app=nginx-deployment"]))
        .iter()
        .map(|p| str_at(p, "/metadata/name").to_string())
        .collect()
}
