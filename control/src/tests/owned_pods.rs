use super::*;

// ---------------------------------------------------------- owned pods

#[test]
fn owned_pods_count_toward_replicas_and_default_to_the_template() {
    let c = ok(&with(
        r#"
[[nodes]]
name = "n2"
address = "192.168.0.2"
podCIDR = "10.10.2.0/24"

[[deployments]]
name = "web"
replicas = 3
labels = { app = "web" }
templateHash = "abc"
node = "n2"
ports = [ { name = "http", containerPort = 8080 } ]

[[pods]]
name = "web-abc-first"
owner = "web"
ip = "10.10.2.9"

[[pods]]
name = "web-abc-custom"
owner = "web"
node = "n2"
labels = { app = "web", extra = "yes" }
ports = []
ready = false
"#,
    ));
    let d = c.deployment("default", "web").expect("web");
    assert_eq!(d.node.as_deref(), Some("n2"));
    // Two explicit pods count; one is generated, the first ever (k = 0).
    assert_eq!(d.pods_created, 1);
    assert_eq!(c.pods.len(), 3);
    let template = Labels::from([
        ("app".into(), "web".into()),
        ("pod-template-hash".into(), "abc".into()),
    ]);
    let first = pod(&c, "web-abc-first");
    assert_eq!(first.owner.as_deref(), Some("web"));
    assert_eq!(first.labels, template);
    assert_eq!(first.ports, d.ports);
    assert_eq!(first.node, "n2");
    assert!(first.ready);
    let custom = pod(&c, "web-abc-custom");
    assert_eq!(custom.labels.get("extra").map(String::as_str), Some("yes"));
    assert!(custom.ports.is_empty());
    assert!(!custom.ready);
    let generated = pod(&c, &generated_name("default", "web", "abc", 0));
    assert_eq!(generated.labels, template);
    assert_eq!(
        (generated.node.as_str(), generated.ip),
        ("n2", Ipv4Addr::new(10, 10, 2, 2))
    );
    // The two without IP got .2 and .3 (generated first).
    assert_eq!(custom.ip, Ipv4Addr::new(10, 10, 2, 3));
    assert_eq!(
        c.node("n2").and_then(|n| n.next_pod_ip),
        Some(Ipv4Addr::new(10, 10, 2, 4))
    );
}

#[test]
fn extra_owned_pods_go_not_ready_first_then_by_name_descending() {
    let pods = |replicas: u32| {
        ok(&with(&format!(
            "[[deployments]]\nname = \"d\"\nreplicas = {replicas}\nlabels = {{ app = \"d\" }}\n\
             [[pods]]\nname = \"a\"\nowner = \"d\"\n\
             [[pods]]\nname = \"b\"\nowner = \"d\"\nready = false\n\
             [[pods]]\nname = \"c\"\nowner = \"d\"\n\
             [[pods]]\nname = \"d\"\nowner = \"d\"\n\
             [[pods]]\nname = \"solo\"\n"
        )))
    };
    assert_eq!(names(&pods(4)), vec!["a", "b", "c", "d", "solo"]);
    assert_eq!(names(&pods(3)), vec!["a", "c", "d", "solo"]);
    assert_eq!(names(&pods(2)), vec!["a", "c", "solo"]);
    assert_eq!(names(&pods(0)), vec!["solo"]);
    let c = pods(2);
    assert_eq!(c.deployments[0].pods_created, 0);
}

#[test]
fn unpinned_owned_pods_and_replacements_go_to_the_least_loaded_node() {
    let two = |extra: &str| {
        ok(&with(&format!(
            "[[nodes]]\nname = \"n2\"\naddress = \"192.168.0.2\"\npodCIDR = \"10.10.2.0/24\"\n\
             [[deployments]]\nname = \"d\"\nreplicas = 3\nlabels = {{ app = \"d\" }}\n{extra}"
        )))
    };
    // Fresh: replica i on node i mod 2, as before.
    let c = two("");
    let mut placed: Vec<&str> = c.pods.iter().map(|p| p.node.as_str()).collect();
    placed.sort();
    assert_eq!(placed, vec!["n1", "n1", "n2"]);
    // Two explicit pods on n1: both generated ones... one goes to n2.
    let c = two("[[pods]]\nname = \"x\"\nowner = \"d\"\nnode = \"n1\"\n\
         [[pods]]\nname = \"y\"\nowner = \"d\"\nnode = \"n1\"\n");
    let generated: Vec<&Pod> = c.pods.iter().filter(|p| p.name.len() > 1).collect();
    assert_eq!(generated.len(), 1);
    assert_eq!(generated[0].node, "n2");
}

#[test]
fn owned_pod_rules() {
    let base = with(
        "[[deployments]]\nname = \"web\"\nlabels = { app = \"web\" }\nnode = \"n1\"\n\
         [[nodes]]\nname = \"n2\"\naddress = \"192.168.0.2\"\npodCIDR = \"10.10.2.0/24\"\n",
    );
    bad(
        &format!("{base}[[pods]]\nname = \"p\"\nnamespace = \"other\"\nowner = \"web\"\n"),
        &[
            "pods[0] \"other/p\": owner \"web\"",
            "not a deployment in namespace \"other\"",
        ],
    );
    bad(
        &format!("{base}[[pods]]\nname = \"p\"\nowner = \"ghost\"\n"),
        &["pods[0] \"default/p\": owner \"ghost\""],
    );
    let e = parse(&format!(
        "{base}[[pods]]\nname = \"p\"\nowner = \"web\"\nnode = \"n2\"\n"
    ))
    .expect_err("off pin");
    assert_eq!(
        e.to_string(),
        "pods[0] \"default/p\": node \"n2\" is not the node deployment \"web\" pins its pods to (\"n1\")"
    );
    bad(
        &with("[[deployments]]\nname = \"d\"\npodsCreated = -1\n"),
        &["deployments[0] \"default/d\": podsCreated -1", "negative"],
    );
    bad(
        &with("[[deployments]]\nname = \"d\"\npodsCreatd = 1\n"),
        &["unknown field `podsCreatd`"],
    );
}

#[test]
fn pods_created_picks_the_name_counter() {
    let text = |created: &str| {
        with(&format!(
            "[[deployments]]\nname = \"web\"\nreplicas = 2\nlabels = {{ app = \"web\" }}\ntemplateHash = \"abc\"\n{created}"
        ))
    };
    let fresh = ok(&text(""));
    assert_eq!(fresh, ok(&text("podsCreated = 0\n")));
    assert_eq!(fresh.deployments[0].pods_created, 2);
    let mut want = vec![
        generated_name("default", "web", "abc", 0),
        generated_name("default", "web", "abc", 1),
    ];
    want.sort();
    assert_eq!(names(&fresh), want);
    let later = ok(&text("podsCreated = 7\n"));
    assert_eq!(later.deployments[0].pods_created, 9);
    let mut want = vec![
        generated_name("default", "web", "abc", 7),
        generated_name("default", "web", "abc", 8),
    ];
    want.sort();
    assert_eq!(names(&later), want);
}
