use super::*;

// ---------------------------------------------------------- endpoints

#[test]
fn endpoints_follow_selector_readiness_namespace_and_named_ports() {
    let c = ok(&with(
        r#"
[[pods]]
name = "web-1"
labels = { app = "web", tier = "fe" }
ports = [ { name = "http", containerPort = 8080 }, { name = "dns", containerPort = 5353, protocol = "UDP" } ]

[[pods]]
name = "web-2"
labels = { app = "web" }
ports = [ { name = "http", containerPort = 9090 } ]

[[pods]]
name = "web-unready"
labels = { app = "web" }
ready = false
ports = [ { name = "http", containerPort = 8080 } ]

[[pods]]
name = "web-noport"
labels = { app = "web" }

[[pods]]
name = "web-elsewhere"
namespace = "other"
labels = { app = "web" }
ports = [ { name = "http", containerPort = 8080 } ]

[[services]]
name = "by-name"
selector = { app = "web" }
ports = [ { name = "h", port = 80, targetPort = "http" }, { name = "d", port = 53, targetPort = "dns", protocol = "UDP" }, { name = "x", port = 54, targetPort = "http", protocol = "UDP" } ]

[[services]]
name = "by-number"
selector = { app = "web" }
ports = [ { port = 80, targetPort = 8000 } ]

[[services]]
name = "two-labels"
selector = { app = "web", tier = "fe" }
ports = [ { port = 80 } ]

[[services]]
name = "no-selector"
ports = [ { port = 80 } ]
"#,
    ));
    let eps = |svc: &str, port: usize| -> Vec<(String, u16)> {
        let s = c.service("default", svc).expect("svc");
        c.endpoints(s, &s.ports[port])
            .into_iter()
            .map(|e| (e.pod, e.port))
            .collect()
    };
    // Sorted by IP: web-1 .2, web-2 .3, web-unready .4, web-noport .5.
    assert_eq!(
        eps("by-name", 0),
        vec![("web-1".into(), 8080), ("web-2".into(), 9090)]
    );
    assert_eq!(eps("by-name", 1), vec![("web-1".into(), 5353)]);
    assert_eq!(
        eps("by-name", 2),
        vec![],
        "named port with another protocol"
    );
    assert_eq!(
        eps("by-number", 0),
        vec![
            ("web-1".into(), 8000),
            ("web-2".into(), 8000),
            ("web-noport".into(), 8000)
        ]
    );
    assert_eq!(eps("two-labels", 0), vec![("web-1".into(), 80)]);
    assert_eq!(eps("no-selector", 0), vec![]);
}
