use super::*;

// ---------------------------------------------------------- apply

const NEW_APP: &str = r#"
[[deployments]]
name = "web"
replicas = 2
labels = { app = "web" }
ports = [ { containerPort = 8080 } ]

[[services]]
name = "web"
selector = { app = "web" }
ports = [ { port = 80, targetPort = 8080 } ]
"#;

#[test]
fn apply_creates_then_leaves_unchanged() {
    let before = ok(&store());
    let (text, changes, c) = applied(&store(), NEW_APP);
    assert_eq!(
        changes,
        vec!["deployment.apps/web created", "service/web created"]
    );
    // The old objects are untouched, the new pods are not ready yet.
    for p in &before.pods {
        assert_eq!(c.pod(&p.namespace, &p.name), Some(p));
    }
    for s in &before.services {
        assert_eq!(c.service(&s.namespace, &s.name), Some(s));
    }
    let web: Vec<&Pod> = c
        .pods
        .iter()
        .filter(|p| p.owner.as_deref() == Some("web"))
        .collect();
    assert_eq!(web.len(), 2);
    assert!(web.iter().all(|p| !p.ready));
    // One per node, at each node's nextPodIP.
    let mut ips: Vec<Ipv4Addr> = web.iter().map(|p| p.ip).collect();
    ips.sort();
    assert_eq!(
        ips,
        vec![Ipv4Addr::new(10, 10, 0, 3), Ipv4Addr::new(10, 10, 1, 3)]
    );
    assert_eq!(c.deployments[1].name, "web");
    let svc = c.service("default", "web").expect("web");
    assert!(c.service_cidr.contains(&svc.cluster_ip));
    // Not ready: no endpoints until the kubelet says so.
    assert!(c.endpoints(svc, &svc.ports[0]).is_empty());

    let (again, changes, _) = applied(&text, NEW_APP);
    assert_eq!(
        changes,
        vec!["deployment.apps/web unchanged", "service/web unchanged"]
    );
    assert_eq!(again, text);
}

#[test]
fn apply_configures_and_keeps_allocated_values() {
    let (text, _, c) = applied(&store(), NEW_APP);
    let ip = c.service("default", "web").expect("web").cluster_ip;
    // ClusterIP kept when the file leaves it out.
    let changed = NEW_APP.replace(
        "selector = { app = \"web\" }",
        "selector = { app = \"web\", tier = \"x\" }",
    );
    let (text, changes, c) = applied(&text, &changed);
    assert_eq!(
        changes,
        vec!["deployment.apps/web unchanged", "service/web configured"]
    );
    assert_eq!(c.service("default", "web").expect("web").cluster_ip, ip);

    // ClusterIP -> NodePort allocates a node port, which a re-apply
    // without it keeps.
    let node_port = changed.replace(
        "name = \"web\"\nselector",
        "name = \"web\"\ntype = \"NodePort\"\nselector",
    );
    let (text, changes, c) = applied(&text, &node_port);
    assert_eq!(changes[1], "service/web configured");
    let s = c.service("default", "web").expect("web");
    assert_eq!(s.cluster_ip, ip);
    let np = s.ports[0].node_port.expect("allocated");
    assert!((30000..=32767).contains(&np));
    let (text, changes, c) = applied(&text, &node_port);
    assert_eq!(changes[1], "service/web unchanged");
    assert_eq!(
        c.service("default", "web").expect("web").ports[0].node_port,
        Some(np)
    );
    // NodePort -> ClusterIP drops it.
    let (_, changes, c) = applied(&text, &changed);
    assert_eq!(changes[1], "service/web configured");
    let s = c.service("default", "web").expect("web");
    assert_eq!((s.cluster_ip, s.ports[0].node_port), (ip, None));

    // The walkthrough's nginx-svc, re-applied as NodePort without an
    // address, keeps 10.101.182.177.
    let (_, changes, c) = applied(
        &store(),
        "[[services]]\nname = \"nginx-svc\"\ntype = \"NodePort\"\nselector = { app = \"nginx-deployment\" }\nports = [ { port = 80, targetPort = 80 } ]\n",
    );
    assert_eq!(changes, vec!["service/nginx-svc configured"]);
    let s = c.service("default", "nginx-svc").expect("nginx-svc");
    assert_eq!(s.cluster_ip, Ipv4Addr::new(10, 101, 182, 177));
    assert!(s.ports[0].node_port.is_some());
}

#[test]
fn apply_scales_a_deployment_up_and_down() {
    let (text, _, c) = applied(&store(), NEW_APP);
    let hash = c.deployments[1].template_hash.clone();
    let first: Vec<String> = c
        .pods
        .iter()
        .filter(|p| p.owner.as_deref() == Some("web"))
        .map(|p| p.name.clone())
        .collect();
    let text = set_ready(&text, "default", &first[0], true).expect("ready");
    let text = set_ready(&text, "default", &first[1], true).expect("ready");

    let (text, changes, c) = applied(&text, &NEW_APP.replace("replicas = 2", "replicas = 4"));
    assert_eq!(changes[0], "deployment.apps/web configured");
    let web: Vec<&Pod> = c
        .pods
        .iter()
        .filter(|p| p.owner.as_deref() == Some("web"))
        .collect();
    assert_eq!(web.len(), 4);
    assert_eq!(c.deployments[1].pods_created, 4);
    for name in &first {
        assert!(pod(&c, name).ready, "{name} kept its readiness");
    }
    let new: Vec<&&Pod> = web.iter().filter(|p| !first.contains(&p.name)).collect();
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|p| !p.ready));
    let mut new_names: Vec<&str> = new.iter().map(|p| p.name.as_str()).collect();
    new_names.sort();
    let mut want = vec![
        generated_name("default", "web", &hash, 2),
        generated_name("default", "web", &hash, 3),
    ];
    want.sort();
    assert_eq!(new_names, want);
    let mut ips: Vec<Ipv4Addr> = new.iter().map(|p| p.ip).collect();
    ips.sort();
    assert_eq!(
        ips,
        vec![Ipv4Addr::new(10, 10, 0, 4), Ipv4Addr::new(10, 10, 1, 4)]
    );

    // Down to 2: the two not-ready ones go first.
    let (text, _, c) = applied(&text, NEW_APP);
    let mut left: Vec<String> = c
        .pods
        .iter()
        .filter(|p| p.owner.as_deref() == Some("web"))
        .map(|p| p.name.clone())
        .collect();
    left.sort();
    let mut want = first.clone();
    want.sort();
    assert_eq!(left, want);
    assert_eq!(c.deployments[1].pods_created, 4);
    // Down to 1: then by name, descending.
    let (_, _, c) = applied(&text, &NEW_APP.replace("replicas = 2", "replicas = 1"));
    let left: Vec<&str> = c
        .pods
        .iter()
        .filter(|p| p.owner.as_deref() == Some("web"))
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(left, vec![want[0].as_str()]);
}

#[test]
fn apply_with_a_new_template_rolls_the_pods() {
    let (text, _, c) = applied(&store(), NEW_APP);
    let old_hash = c.deployments[1].template_hash.clone();
    let old: Vec<String> = c
        .pods
        .iter()
        .filter(|p| p.owner.is_some())
        .map(|p| p.name.clone())
        .collect();
    let (_, changes, c) = applied(
        &text,
        &NEW_APP.replace(
            "labels = { app = \"web\" }",
            "labels = { app = \"web\", v = \"2\" }",
        ),
    );
    assert_eq!(changes[0], "deployment.apps/web configured");
    let d = c.deployment("default", "web").expect("web");
    assert_ne!(d.template_hash, old_hash);
    assert_eq!(d.pods_created, 4);
    let web: Vec<&Pod> = c
        .pods
        .iter()
        .filter(|p| p.owner.as_deref() == Some("web"))
        .collect();
    assert_eq!(web.len(), 2);
    for p in &web {
        assert!(!old.contains(&p.name), "{}", p.name);
        assert!(p.name.starts_with(&format!("web-{}-", d.template_hash)));
        assert_eq!(p.labels.get("v").map(String::as_str), Some("2"));
        assert!(!p.ready);
    }
    // The nginx pods are not affected.
    assert_eq!(
        c.pods
            .iter()
            .filter(|p| p.owner.as_deref() == Some("nginx-deployment"))
            .count(),
        2
    );
}

#[test]
fn apply_pods() {
    let pod_file =
        "[[pods]]\nname = \"debug\"\nnode = \"mac-master\"\nlabels = { run = \"debug\" }\n";
    let (text, changes, c) = applied(&store(), pod_file);
    assert_eq!(changes, vec!["pod/debug created"]);
    let p = pod(&c, "debug");
    assert_eq!(p.ip, Ipv4Addr::new(10, 10, 0, 3));
    assert!(!p.ready);
    let text = set_ready(&text, "default", "debug", true).expect("ready");
    let (_, changes, c) = applied(&text, pod_file);
    assert_eq!(changes, vec!["pod/debug unchanged"]);
    assert_eq!(pod(&c, "debug").ip, Ipv4Addr::new(10, 10, 0, 3));
    assert!(pod(&c, "debug").ready);
    let (_, changes, c) = applied(&text, &pod_file.replace("debug\" }", "dbg\" }"));
    assert_eq!(changes, vec!["pod/debug configured"]);
    assert!(pod(&c, "debug").ready);
    // A router-hosted pod is ready at once.
    let (_, _, c) = applied(
        &text,
        "[[pods]]\nname = \"coredns\"\nnamespace = \"kube-system\"\nlabels = { k8s-app = \"kube-dns\" }\n",
    );
    assert!(c.pod("kube-system", "coredns").expect("coredns").ready);
}

#[test]
fn reapplying_the_config_files_objects_changes_nothing() {
    let objects = &DEFAULT[DEFAULT.find("\n[[deployments]]\n").expect("deployments")..];
    let (text, changes, _) = applied(&store(), objects);
    assert_eq!(text, store());
    assert_eq!(
        changes,
        vec![
            "deployment.apps/nginx-deployment unchanged",
            "pod/client unchanged",
            "pod/client-master unchanged",
            "pod/coredns-mac-master unchanged",
            "pod/coredns-mac-worker unchanged",
            "service/nginx-svc unchanged",
            "service/echo-udp unchanged",
            "service/orphan-svc unchanged",
            "service/nginx-nodeport unchanged",
            "service/nginx-local unchanged",
            "service/nginx-lb unchanged",
            "service/kube-dns unchanged",
            "service/nginx-headless unchanged",
            "service/example unchanged",
        ]
    );
}

#[test]
fn an_owned_pod_with_an_address_goes_to_that_addresss_node() {
    let c = ok(&with(
        "[[nodes]]\nname = \"n2\"\naddress = \"192.168.0.2\"\npodCIDR = \"10.10.2.0/24\"\n\
         [[deployments]]\nname = \"d\"\nreplicas = 2\nlabels = { app = \"d\" }\n\
         [[pods]]\nname = \"x\"\nowner = \"d\"\nip = \"10.10.2.50\"\n",
    ));
    assert_eq!(pod(&c, "x").node, "n2");
    // The generated one goes to the other node.
    assert!(c.pods.iter().any(|p| p.name != "x" && p.node == "n1"));
}

#[test]
fn a_bad_apply_names_the_object_and_key() {
    let s = store();
    let e = apply_fails(
        &s,
        "[[services]]\nname = \"x\"\nclusterIP = \"10.101.182.177\"\nports = [ { port = 80 } ]\n",
    );
    assert_eq!(
        e,
        "services[0] \"default/x\": clusterIP \"10.101.182.177\" is already used by store services[6] \"default/nginx-svc\""
    );
    let e = apply_fails(
        &s,
        "[[services]]\nname = \"ok\"\nports = [ { port = 80 } ]\n\
         [[services]]\nname = \"x\"\ntype = \"NodePort\"\nports = [ { port = 80, nodePort = 30080 } ]\n",
    );
    assert_eq!(
        e,
        "services[1].ports[0].nodePort 30080 is already used by store services[5].ports[0].nodePort"
    );
    let e = apply_fails(
        &s,
        "[[services]]\nname = \"x\"\nports = [ { port = 80 } ]\nselectr = {}\n",
    );
    assert!(
        e.contains("unknown field `selectr`") && e.contains("line 4"),
        "{e}"
    );
    let e = apply_fails(&s, "[[deployments]]\nname = \"d\"\nreplicas = 5000\n");
    assert_eq!(
        e,
        "deployments[0] \"default/d\": replicas 5000 is out of range 0-1000"
    );
    let e = apply_fails(
        &s,
        "[[pods]]\nname = \"p\"\nip = \"10.10.1.2\"\nnode = \"mac-worker\"\n",
    );
    assert!(
        e.starts_with("pods[0] \"default/p\": ip \"10.10.1.2\" is already used by store pods["),
        "{e}"
    );
    let e = apply_fails(
        &s,
        "[[services]]\nname = \"x\"\nports = [ { port = 1 } ]\n[[services]]\nname = \"x\"\nports = [ { port = 2 } ]\n",
    );
    assert!(
        e.contains("services[1].name \"x\" is already used by services[0]"),
        "{e}"
    );
    let e = apply_fails(&s, "[cluster]\npodCIDR = \"10.0.0.0/16\"\n");
    assert!(e.starts_with("[cluster] cannot be applied"), "{e}");
    let e = apply_fails(
        &s,
        "[[nodes]]\nname = \"n3\"\naddress = \"1.2.3.4\"\npodCIDR = \"10.10.9.0/24\"\n",
    );
    assert!(e.starts_with("[[nodes]] cannot be applied"), "{e}");
    assert_eq!(
        apply_fails(&s, "# nothing\n"),
        "no objects passed to apply: the file has no [[deployments]], [[pods]] or [[services]]"
    );
    // A broken store is reported as such.
    assert!(apply_fails("[cluster]\n", NEW_APP).contains("invalid config"));
}
