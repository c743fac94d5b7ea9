use super::*;

// ---------------------------------------------------------- allocation

#[test]
fn computed_template_hash_looks_like_kubernetes() {
    let text = with(
        r#"
[[deployments]]
name = "web"
replicas = 3
labels = { app = "web" }
ports = [ { name = "http", containerPort = 80 } ]
"#,
    );
    let c = ok(&text);
    let hash = &c.deployments[0].template_hash;
    assert_eq!(hash.len(), 10);
    assert!(in_alphabet(hash), "{hash}");
    for p in &c.pods {
        let suffix = p
            .name
            .strip_prefix(&format!("web-{hash}-"))
            .unwrap_or_else(|| panic!("{}", p.name));
        assert_eq!(suffix.len(), 5);
        assert!(in_alphabet(suffix), "{}", p.name);
    }
    // The hash depends on the template, not on the name or replicas.
    let other = ok(&text
        .replace("name = \"web\"", "name = \"api\"")
        .replace("replicas = 3", "replicas = 1"));
    assert_eq!(&other.deployments[0].template_hash, hash);
    let changed = ok(&text.replace("containerPort = 80", "containerPort = 81"));
    assert_ne!(&changed.deployments[0].template_hash, hash);
}

#[test]
fn pod_ips_lowest_free_from_dot_two_in_declaration_order() {
    let c = ok(&with(
        r#"
[[deployments]]
name = "a"
replicas = 2
labels = { app = "a" }

[[deployments]]
name = "b"
replicas = 1
labels = { app = "b" }

[[pods]]
name = "fixed"
ip = "10.10.1.3"

[[pods]]
name = "free"
"#,
    ));
    let ip_of = |owner: Option<&str>, name: Option<&str>| -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = c
            .pods
            .iter()
            .filter(|p| owner.is_none_or(|o| p.owner.as_deref() == Some(o)))
            .filter(|p| name.is_none_or(|n| p.name == n))
            .map(|p| p.ip)
            .collect();
        v.sort();
        v
    };
    // .3 is taken explicitly, so: a -> .2 .4, b -> .5, free -> .6.
    assert_eq!(
        ip_of(Some("a"), None),
        vec![Ipv4Addr::new(10, 10, 1, 2), Ipv4Addr::new(10, 10, 1, 4)]
    );
    assert_eq!(ip_of(Some("b"), None), vec![Ipv4Addr::new(10, 10, 1, 5)]);
    assert_eq!(
        ip_of(None, Some("fixed")),
        vec![Ipv4Addr::new(10, 10, 1, 3)]
    );
    assert_eq!(ip_of(None, Some("free")), vec![Ipv4Addr::new(10, 10, 1, 6)]);
    // Replica 0 of `a` got the lower address.
    let a: Vec<&Pod> = c
        .pods
        .iter()
        .filter(|p| p.owner.as_deref() == Some("a"))
        .collect();
    let seed0 = xxh3_64(format!("default/a/{}/0", c.deployments[0].template_hash).as_bytes());
    let name0 = format!(
        "a-{}-{}",
        c.deployments[0].template_hash,
        safe_encode_u64(seed0, 5)
    );
    let r0 = a.iter().find(|p| p.name == name0).expect("replica 0");
    assert_eq!(r0.ip, Ipv4Addr::new(10, 10, 1, 2));
}

#[test]
fn replicas_spread_round_robin_or_pinned() {
    let c = ok(&with(
        r#"
[[nodes]]
name = "n2"
address = "192.168.0.2"
podCIDR = "10.10.2.0/24"

[[deployments]]
name = "spread"
replicas = 3
labels = { app = "spread" }

[[deployments]]
name = "pinned"
replicas = 2
labels = { app = "pinned" }
node = "n2"

[[pods]]
name = "solo"
"#,
    ));
    let mut spread: Vec<(String, Ipv4Addr)> = c
        .pods
        .iter()
        .filter(|p| p.owner.as_deref() == Some("spread"))
        .map(|p| (p.node.clone(), p.ip))
        .collect();
    spread.sort();
    assert_eq!(
        spread,
        vec![
            ("n1".into(), Ipv4Addr::new(10, 10, 1, 2)),
            ("n1".into(), Ipv4Addr::new(10, 10, 1, 3)),
            ("n2".into(), Ipv4Addr::new(10, 10, 2, 2)),
        ]
    );
    let pinned: Vec<&Pod> = c
        .pods
        .iter()
        .filter(|p| p.owner.as_deref() == Some("pinned"))
        .collect();
    assert!(pinned.iter().all(|p| p.node == "n2"));
    let solo = c.pods.iter().find(|p| p.name == "solo").expect("solo");
    assert_eq!(
        (solo.node.as_str(), solo.ip),
        ("n1", Ipv4Addr::new(10, 10, 1, 4))
    );
}

#[test]
fn generated_name_collision_rehashes() {
    let text = with(
        r#"
[[deployments]]
name = "web"
replicas = 1
labels = { app = "web" }
templateHash = "abc"
"#,
    );
    let first = ok(&text).pods[0].name.clone();
    let c = ok(&format!("{text}\n[[pods]]\nname = \"{first}\"\n"));
    assert_eq!(c.pods.len(), 2);
    let generated = c
        .pods
        .iter()
        .find(|p| p.owner.is_some())
        .expect("generated");
    assert_ne!(generated.name, first);
    assert!(generated.name.starts_with("web-abc-"));
    assert!(c.pods.iter().any(|p| p.name == first && p.owner.is_none()));
}

#[test]
fn long_deployment_names_are_truncated_like_generate_name() {
    let name = "d".repeat(63);
    let c = ok(&with(&format!(
        "[[deployments]]\nname = \"{name}\"\nreplicas = 1\nlabels = {{ app = \"x\" }}\n"
    )));
    assert_eq!(c.pods[0].name.len(), 63);
    assert!(c.pods[0].name.starts_with(&name[..58]));
}

#[test]
fn cluster_ips_skip_reserved_and_taken_addresses() {
    // A /28 has 14 hosts; .1 and .10 are never allocated, so 12 fit.
    let mut text = BASE.replace("10.96.0.0/12", "10.96.0.0/28");
    text.push_str("[[services]]\nname = \"fixed\"\nclusterIP = \"10.96.0.5\"\nselector = { a = \"b\" }\nports = [ { port = 1 } ]\n");
    for i in 0..11 {
        text.push_str(&format!(
            "[[services]]\nname = \"s{i}\"\nselector = {{ a = \"b\" }}\nports = [ {{ port = 1 }} ]\n"
        ));
    }
    let c = ok(&text);
    let mut ips: Vec<Ipv4Addr> = c.services.iter().map(|s| s.cluster_ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 12);
    let expected: Vec<Ipv4Addr> = (2..=14)
        .filter(|&h| h != 10)
        .map(|h| Ipv4Addr::new(10, 96, 0, h))
        .collect();
    assert_eq!(ips, expected);
    assert_eq!(
        c.service("default", "fixed").map(|s| s.cluster_ip),
        Some(Ipv4Addr::new(10, 96, 0, 5))
    );
    text.push_str("[[services]]\nname = \"one-too-many\"\nselector = { a = \"b\" }\nports = [ { port = 1 } ]\n");
    bad(
        &text,
        &[
            "services[12] \"default/one-too-many\": clusterIP",
            "no free address",
            "10.96.0.0/28",
        ],
    );
}

#[test]
fn node_ports_allocated_in_range_and_explicit_ones_kept() {
    let c = ok(&with(
        r#"
[[services]]
name = "np"
type = "NodePort"
selector = { a = "b" }
ports = [ { name = "a", port = 80, nodePort = 30862 }, { name = "b", port = 81 } ]

[[services]]
name = "lb"
type = "LoadBalancer"
selector = { a = "b" }
ports = [ { port = 80 } ]

[[services]]
name = "cip"
selector = { a = "b" }
ports = [ { port = 80 } ]
"#,
    ));
    let np = c.service("default", "np").expect("np");
    assert_eq!(np.ports[0].node_port, Some(30862));
    let auto = np.ports[1].node_port.expect("allocated");
    assert!((30000..=32767).contains(&auto));
    assert_ne!(auto, 30862);
    let lb = c.service("default", "lb").expect("lb");
    let lb_port = lb.ports[0].node_port.expect("allocated");
    assert!((30000..=32767).contains(&lb_port));
    assert_ne!(lb_port, auto);
    assert_eq!(
        c.service("default", "cip").expect("cip").ports[0].node_port,
        None
    );
}

#[test]
fn defaults_and_client_ip_affinity() {
    let c = ok(&with(
        r#"
[[services]]
name = "s"
namespace = "other"
selector = { a = "b" }
sessionAffinity = "ClientIP"
ports = [ { port = 53, protocol = "UDP", targetPort = "dns" } ]

[[services]]
name = "t"
selector = { a = "b" }
sessionAffinity = "ClientIP"
sessionAffinityTimeoutSeconds = 60
ports = [ { port = 1, name = "" } ]
"#,
    ));
    let s = c.service("other", "s").expect("s");
    assert_eq!(
        s.session_affinity,
        SessionAffinity::ClientIP {
            timeout_seconds: 10800
        }
    );
    assert_eq!(s.ports[0].target_port, TargetPort::Name("dns".into()));
    assert_eq!(s.ports[0].protocol, Protocol::Udp);
    let t = c.service("default", "t").expect("t");
    assert_eq!(
        t.session_affinity,
        SessionAffinity::ClientIP {
            timeout_seconds: 60
        }
    );
    assert_eq!(t.ports[0].name, None);
    assert_eq!(t.ports[0].protocol, Protocol::Tcp);
    assert_eq!(t.ports[0].target_port, TargetPort::Number(1));
}
