use super::*;

// ---------------------------------------------------------- delete, readiness

#[test]
fn delete_pod_replaces_an_owned_pod_with_a_new_name_and_ip() {
    let s = store();
    let before = ok(&s);
    let victim = before
        .pods
        .iter()
        .find(|p| p.owner.is_some() && p.node == "mac-worker")
        .expect("nginx on mac-worker")
        .clone();
    assert_eq!(victim.ip, Ipv4Addr::new(10, 10, 1, 2));
    let (text, changes) = delete_pod(&s, "default", &victim.name).expect("delete");
    assert_eq!(
        changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![format!("pod \"{}\" deleted", victim.name)]
    );
    let c = ok(&text);
    assert!(c.pod("default", &victim.name).is_none());
    let replacement = c
        .pods
        .iter()
        .find(|p| p.owner.is_some() && p.node == "mac-worker")
        .expect("replacement on the same node");
    assert_eq!(
        replacement.name,
        generated_name("default", "nginx-deployment", "756d6b7586", 2)
    );
    assert_eq!(replacement.ip, Ipv4Addr::new(10, 10, 1, 3));
    assert!(!replacement.ready);
    assert_eq!(c.deployments[0].pods_created, 3);
    assert_eq!(
        c.node("mac-worker").and_then(|n| n.next_pod_ip),
        Some(Ipv4Addr::new(10, 10, 1, 4))
    );
    // Everything else is as it was.
    assert_eq!(c.pods.len(), before.pods.len());
    assert_eq!(c.services, before.services);

    // A standalone pod just goes.
    let (text, _) = delete_pod(&s, "default", "client").expect("delete client");
    let c = ok(&text);
    assert!(c.pod("default", "client").is_none());
    assert_eq!(c.pods.len(), 5);

    let e = delete_pod(&s, "default", "nope").expect_err("unknown");
    assert_eq!(e.to_string(), "pods \"nope\" not found");
    let e = delete_pod(&s, "kube-system", "client").expect_err("other namespace");
    assert_eq!(e.to_string(), "pods \"client\" not found");
}

#[test]
fn a_replacement_gets_the_ip_after_the_highest_given_out() {
    // .2 and .3 taken, nextPodIP .4: deleting .3 gives the new pod .4,
    // not .3 again.
    let c = ok(&with(
        "[[deployments]]\nname = \"d\"\nreplicas = 2\nlabels = { app = \"d\" }\n",
    ));
    assert_eq!(c.nodes[0].next_pod_ip, Some(Ipv4Addr::new(10, 10, 1, 4)));
    let s = to_toml(&c);
    let at3 = c
        .pods
        .iter()
        .find(|p| p.ip == Ipv4Addr::new(10, 10, 1, 3))
        .expect(".3");
    let (text, _) = delete_pod(&s, "default", &at3.name).expect("delete");
    let c = ok(&text);
    let mut ips: Vec<Ipv4Addr> = c.pods.iter().map(|p| p.ip).collect();
    ips.sort();
    assert_eq!(
        ips,
        vec![Ipv4Addr::new(10, 10, 1, 2), Ipv4Addr::new(10, 10, 1, 4)]
    );

    // The walkthrough: .42 and .43 on mac-worker, .43 deleted -> .44.
    let mut c = ok(DEFAULT);
    c.deployments[0].node = Some("mac-worker".into());
    let worker: Vec<usize> = (0..c.pods.len())
        .filter(|&i| c.pods[i].owner.is_some())
        .collect();
    for (n, &i) in worker.iter().enumerate() {
        c.pods[i].node = "mac-worker".into();
        c.pods[i].ip = Ipv4Addr::new(10, 10, 1, 42 + n as u8);
    }
    c.nodes[1].next_pod_ip = Some(Ipv4Addr::new(10, 10, 1, 44));
    let victim = c.pods[worker[1]].name.clone();
    let (text, _) = delete_pod(&to_toml(&c), "default", &victim).expect("delete");
    let after = ok(&text);
    let replacement = after
        .pods
        .iter()
        .find(|p| p.owner.is_some() && p.ip != Ipv4Addr::new(10, 10, 1, 42))
        .expect("replacement");
    assert_eq!(replacement.ip, Ipv4Addr::new(10, 10, 1, 44));
    assert_eq!(replacement.node, "mac-worker");
}

#[test]
fn set_ready_and_deletes() {
    let s = store();
    let text = set_ready(&s, "default", "client", false).expect("set");
    assert!(!pod(&ok(&text), "client").ready);
    let text = set_ready(&text, "default", "client", true).expect("set");
    assert_eq!(text, s);
    assert_eq!(
        set_ready(&s, "default", "ghost", true)
            .expect_err("unknown")
            .to_string(),
        "pods \"ghost\" not found"
    );

    let (text, changes) = delete_service(&s, "default", "orphan-svc").expect("delete");
    assert_eq!(changes[0].to_string(), "service \"orphan-svc\" deleted");
    assert!(ok(&text).service("default", "orphan-svc").is_none());
    assert_eq!(ok(&text).services.len(), 8);
    assert_eq!(
        delete_service(&s, "default", "x")
            .expect_err("unknown")
            .to_string(),
        "services \"x\" not found"
    );
}

#[test]
fn change_lines_read_like_kubectl() {
    let line = |kind, action| {
        Change {
            kind,
            key: ObjectKey::new("default", "x"),
            action,
        }
        .to_string()
    };
    assert_eq!(
        line(ChangeKind::Service, ChangeAction::Created),
        "service/x created"
    );
    assert_eq!(
        line(ChangeKind::Service, ChangeAction::Configured),
        "service/x configured"
    );
    assert_eq!(
        line(ChangeKind::Pod, ChangeAction::Unchanged),
        "pod/x unchanged"
    );
    assert_eq!(
        line(ChangeKind::Deployment, ChangeAction::Created),
        "deployment.apps/x created"
    );
    assert_eq!(
        line(ChangeKind::Pod, ChangeAction::Deleted),
        "pod \"x\" deleted"
    );
    assert_eq!(
        ObjectKey::new("kube-system", "kube-dns").to_string(),
        "kube-system/kube-dns"
    );
}

#[test]
fn unknown_fields_name_the_object() {
    let text = format!(
        "{}\n[[services]]\nname = \"odd-svc\"\ncolour = \"red\"\nports = [{{ port = 80 }}]\n",
        DEFAULT
    );
    let e = parse(&text).expect_err("unknown field").to_string();
    assert!(
        e.contains("services[9] \"default/odd-svc\": unknown field `colour`"),
        "{e}"
    );
    assert!(e.contains("line "), "keeps the position: {e}");
    let e = apply(
        &store(),
        "[[services]]\nname = \"odd-svc\"\ncolour = \"red\"\n",
    )
    .expect_err("unknown field")
    .to_string();
    assert!(
        e.contains("services[0] \"default/odd-svc\": unknown field `colour`"),
        "{e}"
    );
}
