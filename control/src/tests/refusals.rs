use super::*;

// ---------------------------------------------------------- refusals

#[test]
fn load_names_a_missing_file() {
    let path = Path::new("/nonexistent/ksr/config.toml");
    let e = load(path).expect_err("missing file");
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(
        e.to_string().contains("/nonexistent/ksr/config.toml"),
        "{e}"
    );
}

#[test]
fn load_reads_the_default_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster.toml");
    assert_eq!(load(&path).expect("default config"), ok(DEFAULT));
    // The lab's config.toml: its nodes and settings; the objects are
    // Kubernetes manifests (lab/manifests).
    let lab =
        load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.toml")).expect("config.toml");
    assert_eq!(lab.nodes.len(), 2);
    assert!(lab.deployments.is_empty() && lab.pods.is_empty() && lab.services.is_empty());
}

#[test]
fn unknown_keys_are_errors_with_line_and_column() {
    bad(
        &with("[[service]]\nname = \"x\"\n"),
        &["unknown field `service`", "line 11"],
    );
    bad(
        &BASE.replace("podCIDR = \"10.10.1.0/24\"", "podCidr = \"10.10.1.0/24\""),
        &["unknown field `podCidr`", "line 9"],
    );
    bad(
        &with("[[services]]\nname = \"s\"\nselector = { a = \"b\" }\nports = [ { port = 80, tagetPort = 80 } ]\n"),
        &["unknown field `tagetPort`", "line 14"],
    );
    bad(&format!("{BASE}\n[cluster.extra]\n"), &["line"]);
    bad(
        &with("[[pods]]\nname = \"p\"\nredy = true\n"),
        &["unknown field `redy`"],
    );
    bad(
        &with("[[deployments]]\nname = \"d\"\nreplica = 2\n"),
        &["unknown field `replica`"],
    );
}

#[test]
fn malformed_cidrs_and_ips() {
    bad(
        &BASE.replace("10.10.0.0/16", "10.10.0.0/33"),
        &[
            "cluster.podCIDR",
            "\"10.10.0.0/33\"",
            "not a valid IPv4 CIDR",
        ],
    );
    bad(
        &BASE.replace("10.96.0.0/12", "banana"),
        &["cluster.serviceCIDR", "\"banana\""],
    );
    bad(
        &BASE.replace("10.10.1.0/24", "10.10.1.5/24"),
        &[
            "nodes[0] \"n1\": podCIDR",
            "\"10.10.1.5/24\"",
            "10.10.1.0/24",
        ],
    );
    bad(
        &BASE.replace("192.168.0.1", "192.168.0.300"),
        &[
            "nodes[0] \"n1\": address",
            "\"192.168.0.300\"",
            "not a valid IPv4 address",
        ],
    );
    bad(
        &with("[[pods]]\nname = \"p\"\nip = \"10.10.1\"\n"),
        &["pods[0] \"default/p\": ip", "\"10.10.1\""],
    );
    bad(
        &with("[[services]]\nname = \"s\"\nclusterIP = \"10.96.x.1\"\nselector = { a = \"b\" }\nports = [ { port = 1 } ]\n"),
        &["services[0] \"default/s\": clusterIP", "\"10.96.x.1\""],
    );
}

#[test]
fn cluster_level_rules() {
    bad(
        &BASE.replace("10.96.0.0/12", "10.0.0.0/8"),
        &["cluster.serviceCIDR 10.0.0.0/8 overlaps cluster.podCIDR 10.10.0.0/16"],
    );
    bad(
        &BASE.replace(
            "serviceCIDR = \"10.96.0.0/12\"",
            "dnsDomain = \"Cluster_Local\"",
        ),
        &["cluster.dnsDomain", "\"Cluster_Local\""],
    );
    let no_nodes = BASE
        .split("[[nodes]]")
        .next()
        .unwrap_or_default()
        .to_owned();
    let msg = bad(&no_nodes, &["no nodes"]);
    assert!(msg.contains("[[nodes]]"), "{msg}");
    bad("[nodes]\n", &["invalid config"]);
}

#[test]
fn node_rules() {
    bad(
        &BASE.replace("10.10.1.0/24", "10.11.1.0/24"),
        &[
            "nodes[0] \"n1\": podCIDR",
            "\"10.11.1.0/24\"",
            "outside cluster.podCIDR 10.10.0.0/16",
        ],
    );
    let second = |name: &str, addr: &str, cidr: &str| {
        with(&format!(
            "[[nodes]]\nname = \"{name}\"\naddress = \"{addr}\"\npodCIDR = \"{cidr}\"\n"
        ))
    };
    bad(
        &second("n2", "192.168.0.2", "10.10.1.128/25"),
        &[
            "nodes[1] \"n2\": podCIDR",
            "\"10.10.1.128/25\"",
            "overlaps nodes[0] \"n1\": podCIDR \"10.10.1.0/24\"",
        ],
    );
    bad(
        &second("n1", "192.168.0.2", "10.10.2.0/24"),
        &["nodes[1].name", "\"n1\"", "already used by nodes[0]"],
    );
    bad(
        &second("n2", "192.168.0.1", "10.10.2.0/24"),
        &[
            "nodes[1] \"n2\": address",
            "\"192.168.0.1\"",
            "already used by nodes[0] \"n1\"",
        ],
    );
    bad(
        &BASE.replace("192.168.0.1", "10.10.200.1"),
        &[
            "nodes[0] \"n1\": address",
            "\"10.10.200.1\"",
            "cluster.podCIDR",
        ],
    );
    bad(
        &BASE.replace("name = \"n1\"", "name = \"\""),
        &["nodes[0].name is empty"],
    );
    bad(
        &BASE.replace("name = \"n1\"", "name = \"Node_1\""),
        &["nodes[0].name", "\"Node_1\"", "DNS-1123 label"],
    );
}

#[test]
fn names_must_be_dns_labels() {
    bad(&with("[[pods]]\nname = \"\"\n"), &["pods[0].name is empty"]);
    bad(
        &with("[[pods]]\nname = \"Client\"\n"),
        &["pods[0].name", "\"Client\"", "DNS-1123"],
    );
    bad(
        &with("[[pods]]\nname = \"-client\"\n"),
        &["pods[0].name", "\"-client\""],
    );
    let long = "a".repeat(64);
    bad(
        &with(&format!("[[pods]]\nname = \"{long}\"\n")),
        &["pods[0].name", &long, "63 characters"],
    );
    bad(
        &with("[[pods]]\nname = \"p\"\nnamespace = \"Kube_System\"\n"),
        &["pods[0] \"Kube_System/p\": namespace", "\"Kube_System\""],
    );
    bad(
        &with("[[deployments]]\nname = \"my.app\"\n"),
        &["deployments[0].name", "\"my.app\""],
    );
    bad(
        &with("[[services]]\nname = \"my_svc\"\nports = [ { port = 1 } ]\n"),
        &["services[0].name", "\"my_svc\""],
    );
    bad(
        &with("[[services]]\nname = \"\"\nports = [ { port = 1 } ]\n"),
        &["services[0].name is empty"],
    );
    bad(
        &with("[[deployments]]\nname = \"\"\n"),
        &["deployments[0].name is empty"],
    );
}

#[test]
fn duplicate_names_in_a_namespace() {
    bad(
        &with("[[pods]]\nname = \"p\"\n[[pods]]\nname = \"p\"\nnamespace = \"default\"\n"),
        &[
            "pods[1].name",
            "\"p\"",
            "already used by pods[0]",
            "namespace \"default\"",
        ],
    );
    // Same name in another namespace is fine.
    ok(&with(
        "[[pods]]\nname = \"p\"\n[[pods]]\nname = \"p\"\nnamespace = \"other\"\n",
    ));
    bad(
        &with("[[deployments]]\nname = \"d\"\n[[deployments]]\nname = \"d\"\n"),
        &[
            "deployments[1].name",
            "\"d\"",
            "already used by deployments[0]",
        ],
    );
    bad(
        &with("[[services]]\nname = \"s\"\nports = [ { port = 1 } ]\n[[services]]\nname = \"s\"\nports = [ { port = 2 } ]\n"),
        &["services[1].name", "\"s\"", "already used by services[0]"],
    );
}

#[test]
fn replicas_range() {
    bad(
        &with("[[deployments]]\nname = \"d\"\nreplicas = 1001\n"),
        &["deployments[0] \"default/d\": replicas 1001", "0-1000"],
    );
    bad(
        &with("[[deployments]]\nname = \"d\"\nreplicas = -1\n"),
        &["deployments[0] \"default/d\": replicas -1"],
    );
    let c = ok(&with("[[deployments]]\nname = \"d\"\nreplicas = 0\n"));
    assert!(c.pods.is_empty());
}

#[test]
fn template_hash_must_be_short_lowercase_alphanumerics() {
    bad(
        &with("[[deployments]]\nname = \"d\"\ntemplateHash = \"ABC\"\n"),
        &["deployments[0] \"default/d\": templateHash", "\"ABC\""],
    );
    bad(
        &with("[[deployments]]\nname = \"d\"\ntemplateHash = \"12345678901\"\n"),
        &["templateHash", "\"12345678901\""],
    );
}

#[test]
fn unknown_nodes() {
    bad(
        &with("[[deployments]]\nname = \"d\"\nnode = \"ghost\"\n"),
        &[
            "deployments[0] \"default/d\": node",
            "\"ghost\"",
            "nodes: n1",
        ],
    );
    bad(
        &with("[[pods]]\nname = \"p\"\nnode = \"ghost\"\n"),
        &["pods[0] \"default/p\": node", "\"ghost\""],
    );
}

#[test]
fn port_numbers_out_of_range_get_our_message() {
    let msg = bad(
        &svc("{ port = 70000 }"),
        &["services[0].ports[0].port 70000", "1-65535"],
    );
    assert!(!msg.contains("invalid config"), "{msg}");
    bad(&svc("{ port = 0 }"), &["services[0].ports[0].port 0"]);
    bad(&svc("{ port = -5 }"), &["services[0].ports[0].port -5"]);
    bad(
        &svc("{ port = 80 }, { port = 81, targetPort = 65536 }"),
        &["services[0].ports[1].targetPort 65536"],
    );
    bad(
        &svc("{ port = 80, targetPort = 0 }"),
        &["services[0].ports[0].targetPort 0"],
    );
    bad(
        &with("[[deployments]]\nname = \"d\"\nports = [ { containerPort = 70000 } ]\n"),
        &["deployments[0].ports[0].containerPort 70000"],
    );
    bad(
        &with(
            "[[pods]]\nname = \"p\"\nports = [ { containerPort = 80 }, { containerPort = 0 } ]\n",
        ),
        &["pods[0].ports[1].containerPort 0"],
    );
}

#[test]
fn node_port_rules() {
    bad(
        &svc_typed("NodePort", "{ port = 80, nodePort = 29999 }"),
        &["services[0].ports[0].nodePort 29999", "30000-32767"],
    );
    bad(
        &svc_typed("NodePort", "{ port = 80, nodePort = 32768 }"),
        &["services[0].ports[0].nodePort 32768"],
    );
    bad(
        &svc("{ port = 80, nodePort = 30080 }"),
        &["services[0].ports[0].nodePort 30080", "ClusterIP"],
    );
    bad(
        &svc_typed("NodePort", "{ name = \"a\", port = 80, nodePort = 30080 }, { name = \"b\", port = 81, nodePort = 30080 }"),
        &["services[0].ports[1].nodePort 30080", "already used by services[0].ports[0].nodePort"],
    );
    let two = with(
        "[[services]]\nname = \"a\"\ntype = \"NodePort\"\nports = [ { port = 80, nodePort = 31000 } ]\n\
         [[services]]\nname = \"b\"\ntype = \"LoadBalancer\"\nports = [ { port = 80, nodePort = 31000 } ]\n",
    );
    bad(
        &two,
        &[
            "services[1].ports[0].nodePort 31000",
            "services[0].ports[0].nodePort",
        ],
    );
}

#[test]
fn service_port_rules() {
    bad(
        &svc("{ name = \"a\", port = 80 }, { name = \"b\", port = 80, protocol = \"TCP\" }"),
        &["services[0].ports[1] 80/TCP duplicates services[0].ports[0]"],
    );
    // Same number, other protocol: fine.
    ok(&svc(
        "{ name = \"a\", port = 53 }, { name = \"b\", port = 53, protocol = \"UDP\" }",
    ));
    bad(
        &svc("{ name = \"a\", port = 80 }, { name = \"a\", port = 81 }"),
        &[
            "services[0].ports[1].name",
            "\"a\"",
            "already used by services[0].ports[0]",
        ],
    );
    bad(
        &svc("{ name = \"Web\", port = 80 }"),
        &["services[0].ports[0].name", "\"Web\""],
    );
    bad(
        &svc("{ port = 80, protocol = \"SCTP\" }"),
        &[
            "services[0].ports[0].protocol",
            "\"SCTP\"",
            "\"TCP\" or \"UDP\"",
        ],
    );
    bad(
        &svc("{ port = 80, protocol = \"tcp\" }"),
        &["services[0].ports[0].protocol", "\"tcp\""],
    );
    bad(
        &with("[[deployments]]\nname = \"d\"\nports = [ { containerPort = 80, protocol = \"ICMP\" } ]\n"),
        &["deployments[0].ports[0].protocol", "\"ICMP\""],
    );
    bad(
        &with("[[services]]\nname = \"s\"\nselector = { a = \"b\" }\n"),
        &["services[0] \"default/s\": ports is empty"],
    );
}

#[test]
fn target_port_names_must_be_valid_port_names() {
    for (name, why) in [
        ("HTTP", "lower case"),
        ("http_alt", "lower case"),
        ("8080", "at least one letter"),
        ("a-very-long-port-name", "15 characters"),
        ("web--1", "consecutive hyphens"),
        ("-web", "begin or end"),
        ("", "empty"),
    ] {
        bad(
            &svc(&format!("{{ port = 80, targetPort = \"{name}\" }}")),
            &[
                "services[0].ports[0].targetPort",
                &format!("\"{name}\""),
                why,
            ],
        );
    }
    bad(
        &with("[[pods]]\nname = \"p\"\nports = [ { name = \"Http\", containerPort = 80 } ]\n"),
        &["pods[0].ports[0].name", "\"Http\"", "not a valid port name"],
    );
    bad(
        &with("[[pods]]\nname = \"p\"\nports = [ { name = \"h\", containerPort = 80 }, { name = \"h\", containerPort = 81 } ]\n"),
        &["pods[0].ports[1].name", "already used by pods[0].ports[0]"],
    );
    bad(
        &svc("{ port = 80, targetPort = 1.5 }"),
        &["invalid config", "targetPort"],
    );
}

#[test]
fn service_level_rules() {
    bad(
        &svc_typed("Ingress", "{ port = 80 }"),
        &[
            "services[0] \"default/s\": type",
            "\"Ingress\"",
            "\"ExternalName\"",
        ],
    );
    let with_svc = |fields: &str| {
        with(&format!(
            "[[services]]\nname = \"s\"\nselector = {{ a = \"b\" }}\n{fields}\nports = [ {{ port = 80 }} ]\n"
        ))
    };
    bad(
        &with_svc("sessionAffinity = \"Sticky\""),
        &["services[0] \"default/s\": sessionAffinity", "\"Sticky\""],
    );
    bad(
        &with_svc("sessionAffinity = \"ClientIP\"\nsessionAffinityTimeoutSeconds = 0"),
        &[
            "services[0] \"default/s\": sessionAffinityTimeoutSeconds 0",
            "1-86400",
        ],
    );
    bad(
        &with_svc("sessionAffinity = \"ClientIP\"\nsessionAffinityTimeoutSeconds = 86401"),
        &["sessionAffinityTimeoutSeconds 86401"],
    );
    bad(
        &with_svc("sessionAffinityTimeoutSeconds = 60"),
        &[
            "services[0] \"default/s\": sessionAffinityTimeoutSeconds 60",
            "ClientIP",
        ],
    );
    // Headless is allowed now (see headless_services).
    assert!(ok(&with_svc("clusterIP = \"None\"")).services[0].headless);
}

#[test]
fn cluster_ip_rules() {
    let text = with(
        "[[services]]\nname = \"other\"\nselector = { a = \"b\" }\nports = [ { port = 1 } ]\n\
         [[services]]\nname = \"nginx-svc\"\nclusterIP = \"10.200.0.1\"\nselector = { a = \"b\" }\nports = [ { port = 80 } ]\n",
    );
    let e = parse(&text).expect_err("outside");
    assert_eq!(
        e.to_string(),
        "services[1] \"default/nginx-svc\": clusterIP \"10.200.0.1\" is outside serviceCIDR 10.96.0.0/12"
    );
    let dup = with(
        "[[services]]\nname = \"a\"\nclusterIP = \"10.96.5.5\"\nports = [ { port = 1 } ]\n\
         [[services]]\nname = \"b\"\nclusterIP = \"10.96.5.5\"\nports = [ { port = 1 } ]\n",
    );
    bad(
        &dup,
        &[
            "services[1] \"default/b\": clusterIP \"10.96.5.5\"",
            "already used by services[0] \"default/a\"",
        ],
    );
    bad(
        &with("[[services]]\nname = \"a\"\nclusterIP = \"10.96.0.0\"\nports = [ { port = 1 } ]\n"),
        &["clusterIP \"10.96.0.0\"", "network address"],
    );
    bad(
        &with("[[services]]\nname = \"a\"\nclusterIP = \"10.111.255.255\"\nports = [ { port = 1 } ]\n"),
        &["clusterIP \"10.111.255.255\"", "broadcast address"],
    );
}

#[test]
fn pod_ip_rules() {
    let pod = |ip: &str| with(&format!("[[pods]]\nname = \"p\"\nip = \"{ip}\"\n"));
    bad(
        &pod("10.10.2.5"),
        &[
            "pods[0] \"default/p\": ip \"10.10.2.5\"",
            "outside podCIDR 10.10.1.0/24 of node \"n1\"",
        ],
    );
    bad(&pod("10.10.1.0"), &["ip \"10.10.1.0\"", "network address"]);
    bad(&pod("10.10.1.1"), &["ip \"10.10.1.1\"", "gateway"]);
    bad(
        &pod("10.10.1.255"),
        &["ip \"10.10.1.255\"", "broadcast address"],
    );
    bad(
        &with("[[pods]]\nname = \"p\"\nip = \"10.10.1.7\"\n[[pods]]\nname = \"q\"\nip = \"10.10.1.7\"\n"),
        &["pods[1] \"default/q\": ip \"10.10.1.7\"", "already used by pods[0] \"default/p\""],
    );
}

#[test]
fn pod_cidr_exhaustion_names_the_node() {
    // A /30 has one pod address (.2) after the gateway.
    let text = BASE.replace("10.10.1.0/24", "10.10.1.0/30")
        + "[[deployments]]\nname = \"d\"\nreplicas = 2\nlabels = { app = \"d\" }\n";
    bad(
        &text,
        &[
            "node \"n1\"",
            "podCIDR 10.10.1.0/30",
            "no free address",
            "deployments[0] \"default/d\" replica 1",
        ],
    );
    let text = BASE.replace("10.10.1.0/24", "10.10.1.0/30")
        + "[[pods]]\nname = \"a\"\n[[pods]]\nname = \"b\"\n";
    bad(&text, &["node \"n1\"", "pods[1] \"default/b\""]);
}

#[test]
fn type_errors_keep_the_toml_position() {
    bad(
        &with("[[deployments]]\nname = \"d\"\nreplicas = \"two\"\n"),
        &["invalid config", "line 13", "replicas"],
    );
    bad(
        &with("[[pods]]\nname = \"p\"\nready = \"yes\"\n"),
        &["line 13"],
    );
    bad(
        &with("[[pods]]\nname = \"p\"\nlabels = { app = 1 }\n"),
        &["line 13"],
    );
}
