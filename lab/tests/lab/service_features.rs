//! Service features: sessionAffinity, internalTrafficPolicy, named targetPorts.

use std::collections::BTreeSet;

use std::time::Duration;

use lab::env::*;
use lab::kubectl::*;
use lab::objects::*;
use lab::text::*;

/// How long a change applied to the API may take to reach every router.
const SERVED_WITHIN: Duration = Duration::from_secs(5);

/// Live check 8: sessionAffinity ClientIP: one client, one backend.
#[test]
fn session_affinity() {
    lab::check(|c, k| {
        let (out, _) = apply_yaml(
            "nginx-svc.yaml",
            &nginx_svc("  sessionAffinity: ClientIP\n"),
        );
        c.check(out.status.success(), || {
            show("kubectl apply nginx-svc sessionAffinity ClientIP", &out)
        });
        let served = wait_served("nginx-svc", SERVED_WITHIN, |s| {
            s.is_some_and(|s| s["sessionAffinity"] == "ClientIP")
        });
        c.ok(served);
        let url = format!("http://{NGINX_SVC_IP}/hostname");
        let seen: Vec<String> = (0..10)
            .map(|_| hostname_via(&k.client.name, &url).unwrap_or_default())
            .collect();
        let distinct: BTreeSet<&String> = seen.iter().collect();
        c.check(distinct.len() == 1 && !seen[0].is_empty(), || {
            format!(
                "sessionAffinity ClientIP: 10 requests from {} should reach one pod: {seen:?}",
                k.client.name
            )
        });
        let (out, _) = apply_yaml("nginx-svc.yaml", &nginx_svc("  sessionAffinity: None\n"));
        c.check(out.status.success(), || {
            show("kubectl apply nginx-svc sessionAffinity None", &out)
        });
        let served = wait_served("nginx-svc", SERVED_WITHIN, |s| {
            s.is_some_and(|s| s["sessionAffinity"] == "None")
        });
        c.ok(served);
    });
}

/// Live check 9: internalTrafficPolicy Local: the worker's client only reaches the
/// worker's nginx pod.
#[test]
fn internal_traffic_policy_local() {
    lab::check(|c, k| {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: nginx-itp\nspec:\n\
                \x20 internalTrafficPolicy: Local\n  selector:\n    app: nginx-deployment\n\
                \x20 ports:\n  - port: 80\n    targetPort: 80\n    protocol: TCP\n";
        let (out, _) = apply_yaml("nginx-itp.yaml", text);
        c.check(out.status.success(), || {
            show("kubectl apply nginx-itp", &out)
        });
        let served = wait_served("nginx-itp", SERVED_WITHIN, |s| {
            s.is_some_and(|s| s["internalTrafficPolicy"] == "Local")
        })
        .and_then(|_| wait_endpoints("nginx-itp", SERVED_WITHIN));
        c.ok(served);
        let Some(ip) =
            live_service("nginx-itp").and_then(|s| s["clusterIP"].as_str().map(str::to_string))
        else {
            c.check(false, || {
                "nginx-itp is not in `router get svc -o json`".to_string()
            });
            return;
        };
        let local: BTreeSet<String> = live_nginx()
            .into_iter()
            .filter(|p| p.node == k.worker.name)
            .map(|p| p.name)
            .collect();
        let url = format!("http://{ip}/hostname");
        let seen: Vec<String> = (0..10)
            .map(|_| hostname_via(&k.client.name, &url).unwrap_or_default())
            .collect();
        c.check(
        !local.is_empty() && seen.iter().all(|n| local.contains(n)),
        || {
            format!(
                "internalTrafficPolicy Local: requests from {} (on {}) to nginx-itp {ip} should all reach {local:?}: {seen:?}",
                k.client.name, k.worker.name
            )
        },
    );
        let out = delete(&["svc", "nginx-itp"]);
        c.check(out.status.success(), || {
            show("kubectl delete svc nginx-itp", &out)
        });
    });
}

/// Live check 10: Two ports with named targetPorts (HTTP and UDP).
#[test]
fn named_target_ports() {
    lab::check(|c, k| {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: nginx-multi\nspec:\n\
                \x20 selector:\n    app: nginx-deployment\n  ports:\n\
                \x20 - name: http\n    port: 8080\n    targetPort: http\n    protocol: TCP\n\
                \x20 - name: udp\n    port: 9001\n    targetPort: udp-echo\n    protocol: UDP\n";
        let (out, _) = apply_yaml("nginx-multi.yaml", text);
        c.check(out.status.success(), || {
            show("kubectl apply nginx-multi", &out)
        });
        let served = wait_served("nginx-multi", SERVED_WITHIN, |s| s.is_some())
            .and_then(|_| wait_endpoints("nginx-multi", SERVED_WITHIN));
        c.ok(served);
        let Some(ip) =
            live_service("nginx-multi").and_then(|s| s["clusterIP"].as_str().map(str::to_string))
        else {
            c.check(false, || {
                "nginx-multi is not in `router get svc -o json`".to_string()
            });
            return;
        };
        let url = format!("http://{ip}:8080/");
        let out = curl(&k.client.name, &url, &[]);
        c.check(is_full_answer(&out), || {
            format!(
                "nginx-multi: {url} (targetPort http) should answer the 4 lines\n{}",
                show("curl", &out)
            )
        });
        let names: BTreeSet<String> = live_nginx().into_iter().map(|p| p.name).collect();
        let out = udp_hostname(&k.client.name, &ip, 9001, None, "2");
        c.check(names.contains(stdout(&out).trim()), || {
        format!(
            "nginx-multi: UDP hostname to {ip}:9001 (targetPort udp-echo) should answer an nginx pod name {names:?}\n{}",
            show("socat", &out)
        )
    });
        let out = delete(&["svc", "nginx-multi"]);
        c.check(out.status.success(), || {
            show("kubectl delete svc nginx-multi", &out)
        });
    });
}
