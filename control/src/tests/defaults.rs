use super::*;

// ---------------------------------------------------------- the default file

#[test]
fn default_config_is_the_two_node_walkthrough() {
    let c = ok(DEFAULT);
    assert_eq!(c.pod_cidr, "10.10.0.0/16".parse::<Ipv4Net>().expect("cidr"));
    assert_eq!(
        c.service_cidr,
        "10.96.0.0/12".parse::<Ipv4Net>().expect("cidr")
    );
    assert_eq!(c.dns_domain, "cluster.local");
    assert_eq!(
        c.overlay,
        Overlay {
            vni: 1,
            port: 8472,
            underlay_mtu: 1500
        }
    );

    // Two nodes, in file order.
    let nodes: Vec<(&str, Ipv4Addr, Ipv4Net)> = c
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.underlay_ip, n.pod_cidr))
        .collect();
    assert_eq!(
        nodes,
        vec![
            (
                "mac-master",
                Ipv4Addr::new(192, 168, 191, 144),
                "10.10.0.0/24".parse().expect("cidr")
            ),
            (
                "mac-worker",
                Ipv4Addr::new(192, 168, 191, 145),
                "10.10.1.0/24".parse().expect("cidr")
            ),
        ]
    );
    let master = c.node("mac-master").expect("mac-master").pod_cidr;
    let worker = c.node("mac-worker").expect("mac-worker").pod_cidr;

    // One nginx replica per node, round-robin in node order: replica 0
    // on mac-master, replica 1 on mac-worker, each at its node's .2.
    let nginx: Vec<&Pod> = c
        .pods
        .iter()
        .filter(|p| p.owner.as_deref() == Some("nginx-deployment"))
        .collect();
    assert_eq!(nginx.len(), 2);
    let mut placed: Vec<(&str, Ipv4Addr)> = nginx.iter().map(|p| (p.node.as_str(), p.ip)).collect();
    placed.sort();
    assert_eq!(
        placed,
        vec![
            ("mac-master", host(master, 2)),
            ("mac-worker", host(worker, 2))
        ]
    );
    let hash = &c.deployments[0].template_hash;
    let replica = |r: u32| {
        let seed = xxh3_64(format!("default/nginx-deployment/{hash}/{r}").as_bytes());
        format!("nginx-deployment-{hash}-{}", safe_encode_u64(seed, 5))
    };
    let node_of = |name: &str| {
        c.pods
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.node.as_str())
    };
    assert_eq!(node_of(&replica(0)), Some("mac-master"));
    assert_eq!(node_of(&replica(1)), Some("mac-worker"));
    for p in &nginx {
        let suffix = p
            .name
            .strip_prefix("nginx-deployment-756d6b7586-")
            .unwrap_or_else(|| panic!("pod name {}", p.name));
        assert_eq!(suffix.len(), 5, "{}", p.name);
        assert!(in_alphabet(suffix), "{}", p.name);
        assert!(p.ready);
        assert_eq!(
            p.labels.get("app").map(String::as_str),
            Some("nginx-deployment")
        );
        assert_eq!(
            p.labels.get("pod-template-hash").map(String::as_str),
            Some("756d6b7586")
        );
        assert_eq!(p.ports.len(), 2);
    }

    // The two clients, one per node, at their explicit addresses.
    for (name, node, ip, run) in [
        (
            "client",
            "mac-worker",
            Ipv4Addr::new(10, 10, 1, 100),
            "client",
        ),
        (
            "client-master",
            "mac-master",
            Ipv4Addr::new(10, 10, 0, 100),
            "client-master",
        ),
    ] {
        let p = c.pods.iter().find(|p| p.name == name).expect(name);
        assert_eq!((p.node.as_str(), p.ip), (node, ip), "{name}");
        assert_eq!(p.owner, None);
        assert!(p.ports.is_empty());
        assert!(p.ready);
        assert_eq!(p.labels, Labels::from([("run".into(), run.into())]));
    }
    // Two nginx pods, two clients, one CoreDNS pod per node.
    assert_eq!(c.pods.len(), 6);

    let both = vec![(host(master, 2), 80), (host(worker, 2), 80)];
    let eps = |svc: &Service| -> Vec<(Ipv4Addr, u16)> {
        c.endpoints(svc, &svc.ports[0])
            .iter()
            .map(|e| (e.ip, e.port))
            .collect()
    };

    let svc = c.service("default", "nginx-svc").expect("nginx-svc");
    assert_eq!(svc.cluster_ip, Ipv4Addr::new(10, 101, 182, 177));
    assert_eq!(svc.service_type, ServiceType::ClusterIP);
    assert_eq!(svc.session_affinity, SessionAffinity::None);
    assert_eq!(svc.external_traffic_policy, TrafficPolicy::Cluster);
    assert!(svc.external_ips.is_empty() && svc.load_balancer_ips.is_empty());
    assert_eq!(
        svc.ports,
        vec![ServicePort {
            name: None,
            protocol: Protocol::Tcp,
            port: 80,
            target_port: TargetPort::Number(80),
            node_port: None,
        }]
    );
    assert_eq!(eps(svc), both);

    let echo = c.service("default", "echo-udp").expect("echo-udp");
    assert_eq!(echo.ports[0].protocol, Protocol::Udp);
    assert_eq!(
        eps(echo),
        vec![(host(master, 2), 9000), (host(worker, 2), 9000)]
    );
    assert_ne!(echo.cluster_ip, host(c.service_cidr, 1));
    assert_ne!(echo.cluster_ip, host(c.service_cidr, 10));

    let orphan = c.service("default", "orphan-svc").expect("orphan-svc");
    assert!(eps(orphan).is_empty());
    assert_eq!(orphan.ports[0].target_port, TargetPort::Number(80));

    // The NodePort, Local NodePort and LoadBalancer Services.
    for (name, ty, node_port, policy, lb, ext) in [
        (
            "nginx-nodeport",
            ServiceType::NodePort,
            30080,
            TrafficPolicy::Cluster,
            vec![],
            vec![],
        ),
        (
            "nginx-local",
            ServiceType::NodePort,
            30081,
            TrafficPolicy::Local,
            vec![],
            vec![],
        ),
        (
            "nginx-lb",
            ServiceType::LoadBalancer,
            30082,
            TrafficPolicy::Cluster,
            vec![Ipv4Addr::new(192, 168, 200, 10)],
            vec![Ipv4Addr::new(192, 168, 200, 20)],
        ),
    ] {
        let s = c.service("default", name).expect(name);
        assert_eq!(s.service_type, ty, "{name}");
        assert_eq!(s.external_traffic_policy, policy, "{name}");
        assert_eq!(s.load_balancer_ips, lb, "{name}");
        assert_eq!(s.external_ips, ext, "{name}");
        assert_eq!(s.session_affinity, SessionAffinity::None, "{name}");
        assert_eq!(
            s.selector,
            Labels::from([("app".into(), "nginx-deployment".into())])
        );
        assert_eq!(
            s.ports,
            vec![ServicePort {
                name: None,
                protocol: Protocol::Tcp,
                port: 80,
                target_port: TargetPort::Number(80),
                node_port: Some(node_port),
            }],
            "{name}"
        );
        assert_eq!(eps(s), both, "{name}");
    }

    // Every allocated ClusterIP is distinct, inside the Service CIDR, and
    // none is the reserved first or tenth host (kube-dns has the tenth,
    // explicitly; headless and ExternalName Services have none).
    let dns = c.service("kube-system", "kube-dns").expect("kube-dns");
    assert_eq!(dns.cluster_ip, host(c.service_cidr, 10));
    let mut ips: Vec<Ipv4Addr> = c
        .services
        .iter()
        .filter(|s| {
            !s.headless && s.service_type != ServiceType::ExternalName && s.name != "kube-dns"
        })
        .map(|s| s.cluster_ip)
        .collect();
    assert_eq!(ips.len(), 6);
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 6);
    for ip in ips {
        assert!(c.service_cidr.contains(&ip), "{ip}");
        assert_ne!(ip, host(c.service_cidr, 1));
        assert_ne!(ip, host(c.service_cidr, 10));
    }

    assert_eq!(c.deployments.len(), 1);
    assert_eq!(c.deployments[0].template_hash, "756d6b7586");
    assert!(c.service("default", "nope").is_none());
    assert!(c.node("nope").is_none());
}

#[test]
fn parsing_is_deterministic() {
    assert_eq!(ok(DEFAULT), ok(DEFAULT));
    let text = with(
        r#"
[[deployments]]
name = "web"
replicas = 5
labels = { app = "web" }
ports = [ { containerPort = 8080 } ]

[[services]]
name = "a"
type = "NodePort"
selector = { app = "web" }
ports = [ { port = 80, targetPort = 8080 } ]
"#,
    );
    assert_eq!(ok(&text), ok(&text));
}

#[test]
fn pods_and_services_are_sorted_by_namespace_then_name() {
    let c = ok(&with(
        r#"
[[pods]]
name = "zeta"
[[pods]]
name = "alpha"
namespace = "zzz"
[[pods]]
name = "beta"
[[services]]
name = "s2"
selector = { a = "b" }
ports = [ { port = 1 } ]
[[services]]
name = "s1"
namespace = "aaa"
selector = { a = "b" }
ports = [ { port = 1 } ]
"#,
    ));
    let pods: Vec<(&str, &str)> = c
        .pods
        .iter()
        .map(|p| (p.namespace.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(
        pods,
        vec![("default", "beta"), ("default", "zeta"), ("zzz", "alpha")]
    );
    let svcs: Vec<(&str, &str)> = c
        .services
        .iter()
        .map(|s| (s.namespace.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(svcs, vec![("aaa", "s1"), ("default", "s2")]);
}
