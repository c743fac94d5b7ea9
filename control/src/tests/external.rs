use super::*;

// ---------------------------------------------------------- external traffic

#[test]
fn external_traffic_policy_defaults_and_values() {
    let policy = |ty: &str, fields: &str| {
        ok(&svc_with(ty, fields, "{ port = 80 }"))
            .service("default", "s")
            .map(|s| s.external_traffic_policy)
    };
    assert_eq!(policy("NodePort", ""), Some(TrafficPolicy::Cluster));
    assert_eq!(policy("LoadBalancer", ""), Some(TrafficPolicy::Cluster));
    assert_eq!(policy("ClusterIP", ""), Some(TrafficPolicy::Cluster));
    for ty in ["NodePort", "LoadBalancer"] {
        assert_eq!(
            policy(ty, "externalTrafficPolicy = \"Local\""),
            Some(TrafficPolicy::Local)
        );
        assert_eq!(
            policy(ty, "externalTrafficPolicy = \"Cluster\""),
            Some(TrafficPolicy::Cluster)
        );
    }
    // A ClusterIP Service with external IPs is externally accessible.
    assert_eq!(
        policy(
            "ClusterIP",
            "externalIPs = [\"192.168.200.20\"]\nexternalTrafficPolicy = \"Local\""
        ),
        Some(TrafficPolicy::Local)
    );
}

#[test]
fn external_traffic_policy_refused_on_cluster_ip() {
    let e = parse(&svc_with(
        "ClusterIP",
        "externalTrafficPolicy = \"Local\"",
        "{ port = 80 }",
    ))
    .expect_err("ClusterIP with a policy");
    assert_eq!(
        e.to_string(),
        "services[0] \"default/s\": externalTrafficPolicy \"Local\" may only be set for \
         externally-accessible services: this ClusterIP Service has no externalIPs \
         (set type = \"NodePort\" or \"LoadBalancer\")"
    );
    // Even the default value, like the API server.
    bad(
        &with("[[services]]\nname = \"s\"\nexternalTrafficPolicy = \"Cluster\"\nports = [ { port = 80 } ]\n"),
        &[
            "services[0] \"default/s\": externalTrafficPolicy \"Cluster\"",
            "externally-accessible",
        ],
    );
    bad(
        &svc_with(
            "NodePort",
            "externalTrafficPolicy = \"local\"",
            "{ port = 80 }",
        ),
        &[
            "services[0] \"default/s\": externalTrafficPolicy \"local\"",
            "must be \"Cluster\" or \"Local\"",
        ],
    );
    bad(
        &svc_with(
            "NodePort",
            "externalTrafficPolicy = \"Node\"",
            "{ port = 80 }",
        ),
        &["externalTrafficPolicy \"Node\"", "not supported"],
    );
    bad(
        &svc_with("NodePort", "externalTrafficPolicy = 1", "{ port = 80 }"),
        &["invalid config", "externalTrafficPolicy"],
    );
}

#[test]
fn load_balancer_ips_only_on_load_balancer_services() {
    for ty in ["ClusterIP", "NodePort"] {
        let e = parse(&svc_with(
            ty,
            "loadBalancerIPs = [\"192.168.200.10\"]",
            "{ port = 80 }",
        ))
        .expect_err(ty);
        assert_eq!(
            e.to_string(),
            format!(
                "services[0] \"default/s\": loadBalancerIPs [\"192.168.200.10\"] is only \
                 allowed on a LoadBalancer Service, this one is type {ty} \
                 (set type = \"LoadBalancer\")"
            )
        );
    }
    // An empty list says nothing, so it is fine anywhere.
    ok(&svc_with(
        "NodePort",
        "loadBalancerIPs = []",
        "{ port = 80 }",
    ));
    // A LoadBalancer keeps its IPs in file order; none is `<pending>`.
    let c = ok(&svc_with(
        "LoadBalancer",
        "loadBalancerIPs = [\"192.168.200.11\", \"192.168.200.9\"]",
        "{ port = 80 }",
    ));
    let s = c.service("default", "s").expect("s");
    assert_eq!(
        s.load_balancer_ips,
        vec![
            Ipv4Addr::new(192, 168, 200, 11),
            Ipv4Addr::new(192, 168, 200, 9)
        ]
    );
    assert!(s.external_ips.is_empty());
    let c = ok(&svc_with("LoadBalancer", "", "{ port = 80 }"));
    assert!(c.services[0].load_balancer_ips.is_empty());
}

#[test]
fn external_ips_on_every_type() {
    for ty in ["ClusterIP", "NodePort", "LoadBalancer"] {
        let c = ok(&svc_with(
            ty,
            "externalIPs = [\"192.168.200.20\", \"203.0.113.7\"]",
            "{ port = 80 }",
        ));
        assert_eq!(
            c.services[0].external_ips,
            vec![
                Ipv4Addr::new(192, 168, 200, 20),
                Ipv4Addr::new(203, 0, 113, 7)
            ],
            "{ty}"
        );
    }
    bad(
        &svc_with("NodePort", "externalIps = []", "{ port = 80 }"),
        &["unknown field `externalIps`"],
    );
    bad(
        &svc_with(
            "NodePort",
            "externalIPs = \"192.168.200.20\"",
            "{ port = 80 }",
        ),
        &["invalid config", "externalIPs"],
    );
}

#[test]
fn external_and_load_balancer_ips_must_be_outside_the_cluster() {
    for field in ["externalIPs", "loadBalancerIPs"] {
        let one = |ip: &str| {
            svc_with(
                "LoadBalancer",
                &format!("{field} = [\"192.168.200.20\", \"{ip}\"]"),
                "{ port = 80 }",
            )
        };
        let key = format!("services[0] \"default/s\": {field}[1]");
        let e = parse(&one("10.10.1.7")).expect_err("pod CIDR");
        assert_eq!(
            e.to_string(),
            format!(
                "{key} \"10.10.1.7\" lies inside cluster.podCIDR 10.10.0.0/16; external \
                 and LoadBalancer IPs must be outside the cluster's ranges"
            )
        );
        // Inside the cluster pod CIDR but no node's: still refused.
        bad(
            &one("10.10.200.1"),
            &[&key, "\"10.10.200.1\"", "cluster.podCIDR"],
        );
        bad(
            &one("10.96.0.7"),
            &[&key, "\"10.96.0.7\"", "cluster.serviceCIDR 10.96.0.0/12"],
        );
        let e = parse(&one("192.168.0.1")).expect_err("node address");
        assert_eq!(
            e.to_string(),
            format!(
                "{key} \"192.168.0.1\" is the address of node \"n1\"; a node address \
                 already serves every NodePort, give the Service its own address"
            )
        );
        for (ip, what) in [
            ("0.0.0.0", "the unspecified address"),
            ("127.0.0.1", "a loopback address"),
            ("169.254.0.5", "a link-local address"),
            ("224.0.0.251", "a multicast address"),
            ("255.255.255.255", "the broadcast address"),
        ] {
            let e = parse(&one(ip)).expect_err(ip);
            assert_eq!(
                e.to_string(),
                format!("{key} \"{ip}\" is not usable as an external address: it is {what}")
            );
        }
        for text in ["192.168.200", "fd00::1", "", "192.168.200.300"] {
            bad(
                &one(text),
                &[&key, &format!("{text:?}"), "not a valid IPv4 address"],
            );
        }
    }
}

#[test]
fn an_external_address_port_and_protocol_belongs_to_one_service() {
    let two = |a: &str, a_ports: &str, b: &str, b_ports: &str| {
        with(&format!(
            "[[services]]\nname = \"a\"\ntype = \"LoadBalancer\"\n{a}\nports = [ {a_ports} ]\n\
             [[services]]\nname = \"b\"\ntype = \"LoadBalancer\"\n{b}\nports = [ {b_ports} ]\n"
        ))
    };
    let ext = "externalIPs = [\"192.168.200.20\"]";
    let lb = "loadBalancerIPs = [\"192.168.200.20\"]";
    let e = parse(&two(ext, "{ port = 80 }", ext, "{ port = 80 }")).expect_err("dup");
    assert_eq!(
        e.to_string(),
        "services[1] \"default/b\": externalIPs[0] \"192.168.200.20\" port 80/TCP is \
         already used by services[0] \"default/a\": externalIPs[0]"
    );
    // LoadBalancer and external IPs share one space.
    bad(
        &two(lb, "{ port = 80 }", ext, "{ port = 8080 }, { port = 80 }"),
        &[
            "services[1] \"default/b\": externalIPs[0] \"192.168.200.20\" port 80/TCP",
            "already used by services[0] \"default/a\": loadBalancerIPs[0]",
        ],
    );
    bad(
        &two(
            ext,
            "{ port = 53, protocol = \"UDP\" }",
            lb,
            "{ port = 53, protocol = \"UDP\" }",
        ),
        &[
            "services[1] \"default/b\": loadBalancerIPs[0] \"192.168.200.20\" port 53/UDP",
            "services[0] \"default/a\": externalIPs[0]",
        ],
    );
    // Another port, or another protocol, on the same address is fine,
    // as MetalLB shares an IP between Services.
    let c = ok(&two(ext, "{ port = 80 }", ext, "{ port = 443 }"));
    assert_eq!(c.services[0].external_ips, c.services[1].external_ips);
    ok(&two(
        lb,
        "{ port = 53 }",
        lb,
        "{ port = 53, protocol = \"UDP\" }",
    ));
    // The same address twice in one Service serves its ports twice.
    bad(
        &with(
            "[[services]]\nname = \"a\"\ntype = \"LoadBalancer\"\n\
             loadBalancerIPs = [\"192.168.200.10\"]\nexternalIPs = [\"192.168.200.10\"]\n\
             ports = [ { port = 80 } ]\n",
        ),
        &[
            "services[0] \"default/a\": externalIPs[0] \"192.168.200.10\" port 80/TCP",
            "already used by services[0] \"default/a\": loadBalancerIPs[0]",
        ],
    );
    bad(
        &with(
            "[[services]]\nname = \"a\"\nexternalIPs = [\"192.168.200.10\", \"192.168.200.10\"]\n\
             ports = [ { port = 80 } ]\n",
        ),
        &[
            "externalIPs[1] \"192.168.200.10\" port 80/TCP",
            "externalIPs[0]",
        ],
    );
    // Same name, other namespace: still one address space.
    bad(
        &with(
            "[[services]]\nname = \"a\"\nexternalIPs = [\"192.168.200.10\"]\nports = [ { port = 80 } ]\n\
             [[services]]\nname = \"a\"\nnamespace = \"other\"\nexternalIPs = [\"192.168.200.10\"]\nports = [ { port = 80 } ]\n",
        ),
        &["services[1] \"other/a\": externalIPs[0]", "services[0] \"default/a\""],
    );
}

#[test]
fn node_port_messages_name_key_and_value() {
    let e =
        parse(&svc_typed("NodePort", "{ port = 80, nodePort = 29999 }")).expect_err("out of range");
    assert_eq!(
        e.to_string(),
        "services[0].ports[0].nodePort 29999 is outside the node port range 30000-32767"
    );
    let e = parse(&with(
        "[[services]]\nname = \"a\"\ntype = \"NodePort\"\nports = [ { port = 80, nodePort = 30080 } ]\n\
         [[services]]\nname = \"b\"\ntype = \"LoadBalancer\"\nports = [ { port = 81, nodePort = 30080 } ]\n",
    ))
    .expect_err("used twice");
    assert_eq!(
        e.to_string(),
        "services[1].ports[0].nodePort 30080 is already used by services[0].ports[0].nodePort"
    );
    // Allocation steps around every explicit one, whatever the order.
    let c = ok(&with(
        "[[services]]\nname = \"auto\"\ntype = \"NodePort\"\nports = [ { port = 80 } ]\n\
         [[services]]\nname = \"fixed\"\ntype = \"NodePort\"\nports = [ { port = 80, nodePort = 30080 } ]\n",
    ));
    let auto = c.service("default", "auto").expect("auto").ports[0].node_port;
    assert!(auto.is_some_and(|p| (30000..=32767).contains(&p) && p != 30080));
}
