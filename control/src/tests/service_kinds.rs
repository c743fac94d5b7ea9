use super::*;

// ---------------------------------------------------------- Service kinds

#[test]
fn headless_services() {
    let c = ok(&with(
        r#"
[[deployments]]
name = "web"
replicas = 2
labels = { app = "web" }

[[services]]
name = "web"
clusterIP = "None"
selector = { app = "web" }
ports = [ { port = 80 } ]

[[services]]
name = "bare"
clusterIP = "None"
selector = { app = "web" }
"#,
    ));
    let s = c.service("default", "web").expect("web");
    assert!(s.headless);
    assert_eq!(s.cluster_ip, Ipv4Addr::UNSPECIFIED);
    assert_eq!(s.service_type, ServiceType::ClusterIP);
    assert_eq!(c.endpoints(s, &s.ports[0]).len(), 2);
    assert!(c.service("default", "bare").expect("bare").ports.is_empty());
    bad(
        &svc_with("NodePort", "clusterIP = \"None\"", "{ port = 80 }"),
        &[
            "services[0] \"default/s\": clusterIP \"None\" (headless)",
            "not allowed on a NodePort Service",
        ],
    );
    bad(
        &svc_with("LoadBalancer", "clusterIP = \"None\"", "{ port = 80 }"),
        &["LoadBalancer Service"],
    );
    bad(
        &svc_with(
            "ClusterIP",
            "clusterIP = \"None\"\nexternalIPs = [\"192.168.200.20\"]",
            "{ port = 80 }",
        ),
        &[
            "services[0] \"default/s\": externalIPs [\"192.168.200.20\"]",
            "headless",
        ],
    );
    bad(
        &svc_with(
            "ClusterIP",
            "clusterIP = \"None\"",
            "{ port = 80, nodePort = 30080 }",
        ),
        &["services[0].ports[0].nodePort 30080", "ClusterIP"],
    );
}

#[test]
fn external_name_services() {
    let text = |fields: &str, ports: &str| {
        with(&format!(
            "[[pods]]\nname = \"p\"\nlabels = {{ a = \"b\" }}\n\
             [[services]]\nname = \"db\"\ntype = \"ExternalName\"\nselector = {{ a = \"b\" }}\n{fields}\n{ports}\n"
        ))
    };
    let c = ok(&text("externalName = \"db.example.com\"", ""));
    let s = c.service("default", "db").expect("db");
    assert_eq!(s.service_type, ServiceType::ExternalName);
    assert_eq!(s.external_name.as_deref(), Some("db.example.com"));
    assert_eq!(s.cluster_ip, Ipv4Addr::UNSPECIFIED);
    assert!(!s.headless && s.ports.is_empty());
    // With ports, still no endpoints: the selector is ignored.
    let c = ok(&text(
        "externalName = \"db.example.com.\"",
        "ports = [ { port = 5432 } ]",
    ));
    let s = c.service("default", "db").expect("db");
    assert!(c.endpoints(s, &s.ports[0]).is_empty());
    assert_eq!(s.ports[0].node_port, None);

    bad(
        &text("", ""),
        &["services[0] \"default/db\": externalName is missing"],
    );
    bad(
        &text("externalName = \"DB_host\"", ""),
        &[
            "services[0] \"default/db\": externalName \"DB_host\"",
            "not a valid DNS name",
        ],
    );
    for (fields, ports, needle) in [
        ("clusterIP = \"10.96.0.5\"", "", "clusterIP \"10.96.0.5\""),
        ("clusterIP = \"None\"", "", "clusterIP \"None\""),
        (
            "externalIPs = [\"192.168.200.20\"]",
            "",
            "externalIPs [\"192.168.200.20\"]",
        ),
        (
            "externalTrafficPolicy = \"Local\"",
            "",
            "externalTrafficPolicy \"Local\"",
        ),
        (
            "sessionAffinity = \"ClientIP\"",
            "",
            "sessionAffinity \"ClientIP\"",
        ),
        (
            "",
            "ports = [ { port = 80, nodePort = 30080 } ]",
            "services[0].ports[0].nodePort 30080",
        ),
    ] {
        bad(
            &text(
                &format!("externalName = \"db.example.com\"\n{fields}"),
                ports,
            ),
            &[needle, "not allowed on an ExternalName Service"],
        );
    }
    bad(
        &svc_with(
            "ClusterIP",
            "externalName = \"db.example.com\"",
            "{ port = 80 }",
        ),
        &[
            "services[0] \"default/s\": externalName \"db.example.com\"",
            "only allowed on an ExternalName Service, this one is type ClusterIP",
        ],
    );
}

#[test]
fn internal_traffic_policy_defaults_and_values() {
    let policy = |ty: &str, fields: &str| {
        ok(&svc_with(ty, fields, "{ port = 80 }"))
            .service("default", "s")
            .map(|s| s.internal_traffic_policy)
    };
    for ty in ["ClusterIP", "NodePort", "LoadBalancer"] {
        assert_eq!(policy(ty, ""), Some(TrafficPolicy::Cluster));
        assert_eq!(
            policy(ty, "internalTrafficPolicy = \"Local\""),
            Some(TrafficPolicy::Local)
        );
        assert_eq!(
            policy(ty, "internalTrafficPolicy = \"Cluster\""),
            Some(TrafficPolicy::Cluster)
        );
    }
    bad(
        &svc_with(
            "ClusterIP",
            "internalTrafficPolicy = \"local\"",
            "{ port = 80 }",
        ),
        &[
            "services[0] \"default/s\": internalTrafficPolicy \"local\"",
            "must be \"Cluster\" or \"Local\"",
        ],
    );
}
