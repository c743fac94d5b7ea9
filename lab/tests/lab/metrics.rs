//! The routers' HTTP endpoints, as a Prometheus scrape and a health probe
//! see them from the node (kube-proxy's 127.0.0.1:10249).

use std::time::Duration;

use lab::env::*;
use lab::kubectl::*;

/// The value of the sample `name` (no labels) in a text exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Live check: `/metrics` counts the traffic and the programmed changes;
/// `/healthz` answers 200.
#[test]
fn metrics_and_healthz() {
    lab::check(|c, k| {
        let url = format!("http://{NGINX_SVC_IP}/");
        let out = curl(&k.client.name, &url, &[]);
        c.check(out.status.success(), || show("curl nginx-svc", &out));
        // A change every router programs: a label on nginx-svc, then the
        // manifest as it was.
        for labels in [&[("touched", "metrics")][..], &[]] {
            let (out, _) = apply_yaml("nginx-svc.yaml", &nginx_svc_labelled(labels, ""));
            c.check(out.status.success(), || {
                show("kubectl apply nginx-svc", &out)
            });
            let touched = !labels.is_empty();
            let served = wait_served("nginx-svc", Duration::from_secs(5), |s| {
                s.is_some_and(|s| (s["labels"]["touched"] == "metrics") == touched)
            });
            c.ok(served);
        }
        let node = &k.worker.name;
        let scrape = lab_exec(
            node,
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "http://127.0.0.1:10249/metrics",
            ],
        );
        c.check(scrape.status.success(), || show("curl /metrics", &scrape));
        let text = stdout(&scrape);
        c.check(
            sample(&text, "ksr_packets_forwarded_total").is_some_and(|v| v > 0.0),
            || format!("{node}: ksr_packets_forwarded_total should count the request:\n{text}"),
        );
        c.check(
            sample(&text, "kubeproxy_sync_proxy_rules_duration_seconds_count").is_some_and(|v| v >= 1.0),
            || format!("{node}: the applied change should be in kubeproxy_sync_proxy_rules_duration_seconds:\n{text}"),
        );
        let health = lab_exec(
            node,
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://127.0.0.1:10249/healthz",
            ],
        );
        c.check(stdout(&health).trim() == "200", || {
            show("curl /healthz", &health)
        });
    });
}
