use serde_json::json;

use super::*;

fn api() -> Api {
    let api = Api::new(Arc::new(Store::in_memory()), ApiConfig::default());
    let ns = json!({"metadata": {"name": "default"}});
    api.create(Resource::Namespaces, None, ns, Api::internal())
        .expect("namespace");
    api
}

fn path(resource: Resource, name: &str, sub: Option<Subresource>) -> ObjectPath {
    ObjectPath {
        resource,
        namespace: resource.namespaced().then(|| "default".to_string()),
        name: Some(name.to_string()),
        subresource: sub,
    }
}

fn pod(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}})
}

fn code<T>(r: Result<T, ApiError>) -> u16 {
    r.map(|_| 0).unwrap_or_else(|e| e.code)
}

const OPTS: WriteOptions = WriteOptions {
    dry_run: false,
    field_validation: FieldValidation::Strict,
};

#[test]
fn create_twice_conflicts_and_missing_namespace_is_not_found() {
    let api = api();
    let created = api
        .create(Resource::Pods, Some("default"), pod("a"), OPTS)
        .expect("created");
    assert!(created.created);
    assert_eq!(created.object["status"]["phase"], "Pending");
    assert_eq!(
        created.object["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(
        code(api.create(Resource::Pods, Some("default"), pod("a"), OPTS)),
        409
    );
    assert_eq!(
        code(api.create(Resource::Pods, Some("nope"), pod("a"), OPTS)),
        404
    );
    let generated = json!({"metadata": {"generateName": "web-"}, "spec": pod("x")["spec"]});
    let g = api
        .create(Resource::Pods, Some("default"), generated, OPTS)
        .expect("generated");
    let name = name_of(&g.object);
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
}

#[test]
fn update_checks_resource_version_and_keeps_status() {
    let api = api();
    let a = api
        .create(Resource::Pods, Some("default"), pod("a"), OPTS)
        .expect("created")
        .object;
    let p = path(Resource::Pods, "a", None);
    let mut stale = (*a).clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    assert_eq!(code(api.update(&p, stale, OPTS)), 409);

    let mut status = (*a).clone();
    status["status"]["phase"] = json!("Running");
    status["spec"]["nodeName"] = json!("ignored-by-status");
    let after = api
        .update(
            &path(Resource::Pods, "a", Some(Subresource::Status)),
            status,
            OPTS,
        )
        .expect("status");
    assert_eq!(after.object["status"]["phase"], "Running");
    assert!(after.object["spec"].get("nodeName").is_none());

    let mut main = (*after.object).clone();
    main["status"]["phase"] = json!("Failed");
    main["metadata"]["labels"] = json!({"x": "y"});
    let updated = api.update(&p, main, OPTS).expect("update");
    assert_eq!(
        updated.object["status"]["phase"], "Running",
        "the main resource keeps the status"
    );
    assert_eq!(updated.object["metadata"]["labels"]["x"], "y");

    // A no-op write keeps the resourceVersion.
    let again = api
        .update(&p, (*updated.object).clone(), OPTS)
        .expect("no-op");
    assert_eq!(
        again.object["metadata"]["resourceVersion"],
        updated.object["metadata"]["resourceVersion"]
    );
}

#[test]
fn patches_and_scale() {
    let api = api();
    let d = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": pod("x")["spec"]}}});
    let created = api
        .create(Resource::Deployments, Some("default"), d, OPTS)
        .expect("created");
    assert_eq!(created.object["spec"]["replicas"], 1);
    assert_eq!(created.object["spec"]["strategy"]["type"], "RollingUpdate");
    let scale = api
        .get(&path(Resource::Deployments, "d", Some(Subresource::Scale)))
        .expect("scale");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["status"]["selector"], "app=d");
    let scaled = api
        .patch(
            &path(Resource::Deployments, "d", Some(Subresource::Scale)),
            PatchType::Merge,
            br#"{"spec":{"replicas":4}}"#,
            OPTS,
        )
        .expect("scaled");
    assert_eq!(scaled.object["spec"]["replicas"], 4);
    assert_eq!(scaled.object["kind"], "Scale");
    let smp = br#"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}}}"#;
    let patched = api
        .patch(
            &path(Resource::Deployments, "d", None),
            PatchType::Strategic,
            smp,
            OPTS,
        )
        .expect("patched");
    assert_eq!(patched.object["spec"]["replicas"], 4);
    assert_eq!(
        patched.object["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    assert_eq!(patched.object["metadata"]["generation"], 3);
    let stale = br#"{"metadata":{"resourceVersion":"1"},"spec":{"replicas":1}}"#;
    assert_eq!(
        code(api.patch(
            &path(Resource::Deployments, "d", None),
            PatchType::Merge,
            stale,
            OPTS
        )),
        409
    );
    assert_eq!(
        code(api.patch(
            &path(Resource::Deployments, "nope", None),
            PatchType::Merge,
            b"{}",
            OPTS
        )),
        404
    );
}

fn service(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": spec})
}

#[test]
fn service_ips_and_node_ports() {
    let api = api();
    let s = api
        .create(
            Resource::Services,
            Some("default"),
            service("a", json!({"ports": [{"port": 80}]})),
            OPTS,
        )
        .expect("created")
        .object;
    let ip = s["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
    assert!(ip.starts_with("10.96."), "{ip}");
    assert_eq!(s["spec"]["clusterIPs"], json!([ip]));
    assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(s["spec"]["ports"][0]["protocol"], "TCP");
    let taken = service("b", json!({"clusterIP": ip, "ports": [{"port": 80}]}));
    assert_eq!(
        code(api.create(Resource::Services, Some("default"), taken.clone(), OPTS)),
        422
    );

    let to_node_port = br#"{"spec":{"type":"NodePort"}}"#;
    let np = api
        .patch(
            &path(Resource::Services, "a", None),
            PatchType::Merge,
            to_node_port,
            OPTS,
        )
        .expect("nodeport")
        .object;
    assert_eq!(np["spec"]["clusterIP"], json!(ip));
    let port = np["spec"]["ports"][0]["nodePort"].as_u64().unwrap_or(0);
    assert!((30000..=32767).contains(&port));
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    let clash = service(
        "c",
        json!({"type": "NodePort", "ports": [{"port": 81, "nodePort": port}]}),
    );
    assert_eq!(
        code(api.create(Resource::Services, Some("default"), clash, OPTS)),
        422
    );

    let change_ip = br#"{"spec":{"clusterIP":"10.96.5.5","clusterIPs":["10.96.5.5"]}}"#;
    assert_eq!(
        code(api.patch(
            &path(Resource::Services, "a", None),
            PatchType::Merge,
            change_ip,
            OPTS
        )),
        422
    );

    // Delete frees the address; a dry run allocates nothing.
    api.delete(&path(Resource::Services, "a", None), None)
        .expect("deleted");
    let dry = WriteOptions {
        dry_run: true,
        ..OPTS
    };
    api.create(Resource::Services, Some("default"), taken.clone(), dry)
        .expect("dry run");
    assert!(api
        .store()
        .get(&ObjectKey::new(Resource::Services, "default", "b"))
        .is_none());
    api.create(Resource::Services, Some("default"), taken, OPTS)
        .expect("free again");

    let headless = api
        .create(
            Resource::Services,
            Some("default"),
            service("h", json!({"clusterIP": "None", "ports": [{"port": 53}]})),
            OPTS,
        )
        .expect("headless")
        .object;
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    let external = api
        .create(
            Resource::Services,
            Some("default"),
            service(
                "e",
                json!({"type": "ExternalName", "externalName": "example.com"}),
            ),
            OPTS,
        )
        .expect("external")
        .object;
    assert!(external["spec"].get("clusterIP").is_none());
}

#[test]
fn delete_of_a_bound_pod_is_graceful() {
    let api = api();
    let mut bound = pod("bound");
    bound["spec"]["nodeName"] = json!("n1");
    api.create(Resource::Pods, Some("default"), bound, OPTS)
        .expect("created");
    api.create(Resource::Pods, Some("default"), pod("free"), OPTS)
        .expect("created");
    let gone = api
        .delete(&path(Resource::Pods, "free", None), None)
        .expect("deleted");
    assert_eq!(gone.object["metadata"]["name"], "free");
    assert!(api
        .store()
        .get(&ObjectKey::new(Resource::Pods, "default", "free"))
        .is_none());
    let t = api
        .delete(&path(Resource::Pods, "bound", None), None)
        .expect("terminating")
        .object;
    assert!(t["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(t["metadata"]["deletionGracePeriodSeconds"], 30);
    api.delete(&path(Resource::Pods, "bound", None), Some(0))
        .expect("deleted");
    assert!(api
        .store()
        .get(&ObjectKey::new(Resource::Pods, "default", "bound"))
        .is_none());
    assert_eq!(
        code(api.delete(&path(Resource::Pods, "bound", None), None)),
        404
    );
}

#[test]
fn deleting_a_namespace_empties_it() {
    let api = api();
    api.create(
        Resource::Namespaces,
        None,
        json!({"metadata": {"name": "tmp"}}),
        OPTS,
    )
    .expect("ns");
    api.create(Resource::Pods, Some("tmp"), pod("a"), OPTS)
        .expect("pod");
    api.create(
        Resource::Services,
        Some("tmp"),
        service(
            "s",
            json!({"clusterIP": "10.96.9.9", "ports": [{"port": 80}]}),
        ),
        OPTS,
    )
    .expect("svc");
    api.delete(
        &ObjectPath {
            resource: Resource::Namespaces,
            namespace: None,
            name: Some("tmp".into()),
            subresource: None,
        },
        None,
    )
    .expect("deleted");
    assert!(api.store().list(Resource::Pods, Some("tmp")).0.is_empty());
    let default = ObjectPath {
        resource: Resource::Namespaces,
        namespace: None,
        name: Some("default".into()),
        subresource: None,
    };
    assert_eq!(code(api.delete(&default, None)), 403);
    let reuse = service(
        "s2",
        json!({"clusterIP": "10.96.9.9", "ports": [{"port": 80}]}),
    );
    api.create(Resource::Services, Some("default"), reuse, OPTS)
        .expect("the IP is free again");
}
