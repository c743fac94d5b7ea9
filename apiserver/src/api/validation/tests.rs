use serde_json::json;

use super::*;

fn messages(r: Result<(), ApiError>) -> Vec<String> {
    match r {
        Ok(()) => Vec::new(),
        Err(e) => e
            .details
            .map(|d| {
                d.causes
                    .iter()
                    .map(|c| format!("{}: {}", c.field, c.message))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[test]
fn names_follow_the_kind_rules() {
    let bad = json!({"metadata": {"name": "Web_1"}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    let m = messages(validate(Resource::Pods, &bad, None));
    assert!(
        m[0].starts_with("metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain"),
        "{m:?}"
    );
    let svc = json!({"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}});
    let m = messages(validate(Resource::Services, &svc, None));
    assert!(m[0].contains("a DNS-1035 label"), "{m:?}");
    let unnamed = json!({"metadata": {}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    assert_eq!(
        messages(validate(Resource::Pods, &unnamed, None)),
        ["metadata.name: Required value: name or generateName is required"]
    );
}

#[test]
fn pods_need_containers_with_images() {
    let none = json!({"metadata": {"name": "p"}, "spec": {}});
    assert_eq!(
        messages(validate(Resource::Pods, &none, None)),
        ["spec.containers: Required value"]
    );
    let no_image = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 0}]}]}});
    assert_eq!(
        messages(validate(Resource::Pods, &no_image, None)),
        [
            "spec.containers[0].image: Required value",
            "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive"
        ]
    );
}

#[test]
fn deployments_need_a_matching_immutable_selector() {
    let d = |sel: &str, label: &str| {
        json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": sel}},
            "template": {"metadata": {"labels": {"app": label}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    };
    assert!(validate(Resource::Deployments, &d("a", "a"), None).is_ok());
    let m = messages(validate(Resource::Deployments, &d("a", "b"), None));
    assert_eq!(m, ["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`"]);
    let m = messages(validate(
        Resource::Deployments,
        &d("b", "b"),
        Some(&d("a", "a")),
    ));
    assert!(
        m[0].starts_with("spec.selector: Invalid value") && m[0].ends_with("field is immutable"),
        "{m:?}"
    );
}

#[test]
fn services_types_ports_and_cluster_ip() {
    let s = json!({"metadata": {"name": "s"}, "spec": {"type": "Bogus", "ports": [{"port": 80, "protocol": "ICMP"}]}});
    let m = messages(validate(Resource::Services, &s, None));
    assert_eq!(m[0], "spec.type: Unsupported value: \"Bogus\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"");
    assert!(m[1].starts_with("spec.ports[0].protocol: Unsupported value: \"ICMP\""));
    let no_ports = json!({"metadata": {"name": "s"}, "spec": {}});
    assert_eq!(
        messages(validate(Resource::Services, &no_ports, None)),
        ["spec.ports: Required value"]
    );
    let headless = json!({"metadata": {"name": "s"}, "spec": {"clusterIP": "None"}});
    assert!(validate(Resource::Services, &headless, None).is_ok());
    let external = json!({"metadata": {"name": "s"}, "spec": {"type": "ExternalName"}});
    assert_eq!(
        messages(validate(Resource::Services, &external, None)),
        ["spec.externalName: Required value"]
    );
}

#[test]
fn decode_refuses_wrong_types_and_finds_unknown_fields() {
    let wrong = json!({"metadata": {"name": "d"}, "spec": {"replicas": "two"}});
    let e = decode(Resource::Deployments, &wrong)
        .map(|_| ())
        .expect_err("refused");
    assert_eq!(e.code, 400);
    assert!(
        e.message
            .starts_with("Deployment in version \"apps/v1\" cannot be handled as a Deployment"),
        "{}",
        e.message
    );
    let unknown = json!({"metadata": {"name": "p", "labels": {}}, "spec": {"containers": [{"name": "c", "image": "i", "colour": "red"}], "bogus": {"a": 1}, "empty": null}});
    let fields = decode(Resource::Pods, &unknown).expect("decodes");
    assert_eq!(fields, ["spec.bogus", "spec.containers[0].colour"]);
}
