//! Validation wherever state enters: node addresses, the overlay port,
//! Kubernetes' syntax for names, labels and selectors, long values cut in
//! messages, and [`validate`] for a cluster built elsewhere.

use super::*;

/// `BASE` with node n1's address replaced.
fn node_at(address: &str) -> String {
    BASE.replace("192.168.0.1", address)
}

#[test]
fn node_addresses_must_be_unicast() {
    for (address, what) in [
        ("0.0.0.0", "the unspecified address"),
        ("0.1.2.3", "this network"),
        ("255.255.255.255", "the broadcast address"),
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("224.0.0.5", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("169.254.1.1", "a link-local address"),
        ("240.0.0.1", "a reserved address"),
    ] {
        bad(
            &node_at(address),
            &[
                &format!("nodes[0] \"n1\": address \"{address}\""),
                "is not a unicast address",
                what,
            ],
        );
    }
    ok(&node_at("10.0.0.1"));
    ok(&node_at("192.168.191.144"));
}

#[test]
fn vxlan_port_must_stay_out_of_the_node_port_range() {
    for port in [30000, 30080, 32767] {
        bad(
            &BASE.replace(
                "serviceCIDR = \"10.96.0.0/12\"",
                &format!("serviceCIDR = \"10.96.0.0/12\"\nvxlanPort = {port}"),
            ),
            &[
                &format!("cluster.vxlanPort {port}"),
                "inside the NodePort range 30000-32767",
            ],
        );
    }
    for port in [4789, 8472, 29999, 32768] {
        let c = ok(&BASE.replace(
            "serviceCIDR = \"10.96.0.0/12\"",
            &format!("serviceCIDR = \"10.96.0.0/12\"\nvxlanPort = {port}"),
        ));
        assert_eq!(c.overlay.port, port);
    }
}

#[test]
fn service_names_are_dns_1035_labels() {
    bad(
        &with("[[services]]\nname = \"1web\"\nports = [ { port = 80 } ]\n"),
        &["services[0].name", "\"1web\"", "DNS-1035 label", "letter"],
    );
    ok(&with(
        "[[services]]\nname = \"web1\"\nports = [ { port = 80 } ]\n",
    ));
    // Namespaces and pods stay DNS-1123 labels: a leading digit is fine.
    ok(&with("[[pods]]\nname = \"1client\"\nnamespace = \"2ns\"\n"));
}

#[test]
fn label_keys_follow_kubernetes_qualified_names() {
    let pod = |labels: &str| with(&format!("[[pods]]\nname = \"p\"\nlabels = {labels}\n"));
    for good in [
        "{ app = \"web\" }",
        "{ \"app.kubernetes.io/name\" = \"web\" }",
        "{ \"A_b.c-D9\" = \"x\" }",
        "{ \"example.com/tier_1\" = \"\" }",
    ] {
        ok(&pod(good));
    }
    let long_name = "a".repeat(64);
    let long_prefix = format!("{}.com/x", "a.".repeat(130));
    for (key, reason) in [
        ("-app", "start and end with an alphanumeric"),
        ("app-", "start and end with an alphanumeric"),
        ("a b", "alphanumeric characters"),
        ("quote\\\"d", "alphanumeric characters"),
        ("", "must not be empty"),
        ("/x", "prefix before '/' must not be empty"),
        ("example.com/", "name part must not be empty"),
        ("Example.com/x", "DNS-1123 subdomain"),
        ("a/b/c", "alphanumeric characters"),
        (long_name.as_str(), "63 characters"),
        (long_prefix.as_str(), "DNS-1123 subdomain"),
    ] {
        bad(
            &pod(&format!("{{ \"{key}\" = \"v\" }}")),
            &[
                "pods[0] \"default/p\": labels: key",
                "not a valid label key",
                reason,
            ],
        );
    }
}

#[test]
fn label_values_follow_kubernetes_syntax() {
    let deployment = |value: &str| {
        with(&format!(
            "[[deployments]]\nname = \"web\"\nlabels = {{ app = \"{value}\" }}\n"
        ))
    };
    ok(&deployment(""));
    ok(&deployment("Web_1.2-x"));
    let long = "v".repeat(64);
    for (value, reason) in [
        ("-web", "start and end with an alphanumeric"),
        ("web.", "start and end with an alphanumeric"),
        ("a b", "alphanumeric characters"),
        ("back\\\\slash", "alphanumeric characters"),
        (long.as_str(), "63 characters"),
    ] {
        bad(
            &deployment(value),
            &[
                "deployments[0] \"default/web\": labels.app",
                "not a valid label value",
                reason,
            ],
        );
    }
}

#[test]
fn selectors_and_service_labels_follow_label_syntax() {
    let service = |fields: &str| {
        with(&format!(
            "[[services]]\nname = \"web\"\n{fields}\nports = [ {{ port = 80 }} ]\n"
        ))
    };
    ok(&service(
        "selector = { \"app.kubernetes.io/name\" = \"web\" }",
    ));
    bad(
        &service("selector = { \"app?\" = \"web\" }"),
        &["services[0] \"default/web\": selector: key \"app?\""],
    );
    bad(
        &service("selector = { app = \"w e b\" }"),
        &["services[0] \"default/web\": selector.app \"w e b\""],
    );
    bad(
        &service("labels = { team = \"-a\" }"),
        &["services[0] \"default/web\": labels.team \"-a\""],
    );
}

/// A message for a value of `n` bytes stays short and says how long the
/// value was.
#[track_caller]
fn cut_short(msg: &str, n: usize) {
    assert!(msg.len() < 2000, "message of {} bytes", msg.len());
    assert!(msg.contains(&format!("... ({n} bytes)")), "{msg}");
}

#[test]
fn long_values_are_cut_in_messages() {
    const MB10: usize = 10 * 1024 * 1024;
    let huge = "a".repeat(MB10);
    let msg = bad(
        &with(&format!("[[pods]]\nname = \"{huge}\"\n")),
        &["pods[0].name"],
    );
    cut_short(&msg, MB10);
    assert!(
        msg.contains(&format!("\"{}\"...", "a".repeat(SHOWN_MAX))),
        "{msg}"
    );

    let msg = bad(
        &with(&format!("[[pods]]\nname = \"p\"\nnamespace = \"{huge}\"\n")),
        &["pods[0] \"", ": namespace"],
    );
    // Once in the key path, once as the value.
    assert_eq!(
        msg.matches(&format!("... ({MB10} bytes)")).count(),
        2,
        "{msg}"
    );
    cut_short(&msg, MB10);

    let msg = bad(
        &with(&format!(
            "[[pods]]\nname = \"p\"\nlabels = {{ app = \"{huge}\" }}\n"
        )),
        &["labels.app"],
    );
    cut_short(&msg, MB10);

    let msg = bad(&node_at(&huge), &["nodes[0] \"n1\": address"]);
    cut_short(&msg, MB10);

    // The TOML parser quotes the line and the value; both are cut.
    let msg = bad(
        &with(&format!(
            "[[deployments]]\nname = \"web\"\nreplicas = \"{huge}\"\n"
        )),
        &["deployments[0] \"default/web\"", "replicas"],
    );
    assert!(msg.len() < 2000, "message of {} bytes", msg.len());
    assert!(msg.contains(" bytes)"), "{msg}");

    // Short values are shown whole, without a length.
    let msg = bad(&with("[[pods]]\nname = \"Client\"\n"), &["\"Client\""]);
    assert!(!msg.contains("bytes)"), "{msg}");
}

#[test]
fn shown_cuts_at_a_character_boundary() {
    let s = "é".repeat(40); // 80 bytes, 2 per character
    let shown = crate::error::Shown::from(s.as_str());
    assert!(shown.is_cut());
    assert_eq!(shown.as_str(), "é".repeat(32));
    assert_eq!(
        shown.to_string(),
        format!("{}... (80 bytes)", "é".repeat(32))
    );
    assert_eq!(format!("{:?}", crate::error::Shown::from("ok")), "\"ok\"");
}

#[test]
fn validate_accepts_what_parse_makes() {
    validate(&ok(DEFAULT)).expect("the default cluster is valid");
    let extra = format!(
        "{DEFAULT}\n[[services]]\nname = \"extra\"\nselector = {{ app = \"x\" }}\nports = [ {{ port = 81 }} ]\n"
    );
    validate(&ok(&extra)).expect("a cluster with one more Service is valid");
}

#[test]
fn validate_refuses_a_cluster_ip_that_is_a_pod_ip() {
    let mut c = ok(DEFAULT);
    let pod_ip = c.pods[0].ip;
    let i = c
        .services
        .iter()
        .position(|s| !s.headless && s.service_type != ServiceType::ExternalName)
        .expect("a Service with a ClusterIP");
    c.services[i].cluster_ip = pod_ip;
    let msg = validate(&c)
        .expect_err("a pod's IP as ClusterIP")
        .to_string();
    let s = &c.services[i];
    assert!(
        msg.contains(&format!(
            "services[{i}] \"{}/{}\": clusterIP \"{pod_ip}\" is outside serviceCIDR",
            s.namespace, s.name
        )),
        "{msg}"
    );
}

#[test]
fn validate_refuses_what_parse_would_refuse_or_change() {
    let base = ok(DEFAULT);

    let mut c = base.clone();
    c.nodes[0].underlay_ip = Ipv4Addr::UNSPECIFIED;
    let msg = validate(&c).expect_err("0.0.0.0").to_string();
    assert!(
        msg.contains("nodes[0]") && msg.contains("not a unicast address"),
        "{msg}"
    );

    let mut c = base.clone();
    c.overlay.port = 30080;
    let msg = validate(&c).expect_err("vxlan port").to_string();
    assert!(msg.contains("cluster.vxlanPort 30080"), "{msg}");

    // Two Services on one ClusterIP.
    let mut c = base.clone();
    let with_ip: Vec<usize> = (0..c.services.len())
        .filter(|&i| {
            !c.services[i].headless && c.services[i].service_type != ServiceType::ExternalName
        })
        .collect();
    c.services[with_ip[1]].cluster_ip = c.services[with_ip[0]].cluster_ip;
    let msg = validate(&c).expect_err("shared ClusterIP").to_string();
    assert!(msg.contains("is already used by"), "{msg}");

    // A pod too many for its Deployment: the controller would remove it.
    let mut c = base.clone();
    let owned = c
        .pods
        .iter()
        .position(|p| p.owner.is_some())
        .expect("an owned pod");
    let mut extra = c.pods[owned].clone();
    extra.name = format!("{}-extra", extra.name);
    extra.ip = Ipv4Addr::from(u32::from(extra.ip) + 100);
    c.pods.insert(owned + 1, extra);
    let msg = validate(&c).expect_err("extra replica").to_string();
    assert!(
        msg.contains("is not as the control plane would store it"),
        "{msg}"
    );

    // A label Kubernetes refuses.
    let mut c = base;
    c.services[0].labels.insert("bad key".into(), "v".into());
    let msg = validate(&c).expect_err("label").to_string();
    assert!(msg.contains("not a valid label key"), "{msg}");
}
