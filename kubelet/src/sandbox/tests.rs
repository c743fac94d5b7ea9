use super::*;

#[test]
fn container_ports_whatever_the_image() {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [
            {"name": "nginx", "image": "nginx:1.25", "ports": [
                {"containerPort": 80},
                {"containerPort": 9000, "protocol": "UDP"},
                {"containerPort": 80, "protocol": "TCP"},
            ]},
            {"name": "agnhost", "image": "registry.k8s.io/e2e-test-images/agnhost:2.47",
             "ports": [{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 132, "protocol": "SCTP"}]},
            {"name": "sidecar", "image": "busybox"},
        ]},
    }))
    .expect("a pod");
    assert_eq!(container_ports(&pod), (vec![80, 8080], vec![9000]));
}

#[test]
fn port_lists_in_the_lab_notation() {
    assert_eq!(port_list(&[]), "-");
    assert_eq!(port_list(&[80, 8080]), "80,8080");
}

#[test]
fn pods_of_one_name_in_two_namespaces_get_two_netns() {
    let pod = |namespace: &str| PodNet {
        name: "client".into(),
        namespace: namespace.into(),
        node: "n1".into(),
        ip: Ipv4Addr::new(10, 10, 0, 5),
        tcp: vec![],
        udp: vec![],
    };
    assert_eq!(pod("default").netns(), "ksr-client");
    assert_eq!(pod("dev").netns(), "ksr-dev_client");
}
