use super::*;

fn object(path: &str) -> ObjectPath {
    match parse_path(path) {
        Ok(Target::Object(o)) => o,
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn discovery_paths() {
    assert_eq!(parse_path("/version"), Ok(Target::Version));
    assert_eq!(parse_path("/api"), Ok(Target::CoreVersions));
    assert_eq!(parse_path("/apis"), Ok(Target::Groups));
    assert_eq!(parse_path("/api/v1"), Ok(Target::ResourceList(CORE_V1)));
    assert_eq!(
        parse_path("/apis/apps/v1"),
        Ok(Target::ResourceList(APPS_V1))
    );
    assert_eq!(parse_path("/apis/apps"), Ok(Target::Group(APPS_V1)));
    assert_eq!(parse_path("/openapi/v3"), Ok(Target::OpenApiV3));
    assert_eq!(
        parse_path("/openapi/v3/apis/apps/v1"),
        Ok(Target::OpenApiV3Group("apis/apps/v1".into()))
    );
    assert_eq!(parse_path("/openapi/v2"), Ok(Target::OpenApi));
    assert_eq!(parse_path("/apis/batch/v1").map_err(|e| e.code), Err(404));
}

#[test]
fn object_paths() {
    let o = object("/api/v1/namespaces/default/pods/web-1/status");
    assert_eq!(o.resource, Resource::Pods);
    assert_eq!(o.namespace.as_deref(), Some("default"));
    assert_eq!(o.name.as_deref(), Some("web-1"));
    assert_eq!(o.subresource, Some(Subresource::Status));
    let all = object("/api/v1/pods");
    assert_eq!((all.namespace, all.name), (None, None));
    let ns = object("/api/v1/namespaces/default");
    assert_eq!(
        (ns.resource, ns.name.as_deref()),
        (Resource::Namespaces, Some("default"))
    );
    let ns_status = object("/api/v1/namespaces/default/status");
    assert_eq!(ns_status.subresource, Some(Subresource::Status));
    let d = object("/apis/apps/v1/namespaces/ns1/deployments/web/scale");
    assert_eq!(
        (d.resource, d.subresource),
        (Resource::Deployments, Some(Subresource::Scale))
    );
    let s = object("/apis/discovery.k8s.io/v1/endpointslices");
    assert_eq!(s.resource, Resource::EndpointSlices);
}

#[test]
fn wrong_paths_are_not_found() {
    for path in [
        "/api/v1/namespaces/default/nodes",
        "/api/v1/pods/x/scale",
        "/api/v1/namespaces/default/endpoints/x/status",
        "/apis/apps/v1/pods",
        "/nothing",
    ] {
        assert_eq!(parse_path(path).map_err(|e| e.code), Err(404), "{path}");
    }
}

#[test]
fn query_options() {
    let q = Query::parse(Some(
        "watch=1&resourceVersion=42&labelSelector=app%3Dnginx&allowWatchBookmarks=true&timeoutSeconds=30",
    ))
    .expect("parses");
    assert!(q.watch && q.bookmarks);
    assert_eq!(q.resource_version, Some(42));
    assert_eq!(q.timeout_seconds, Some(30));
    assert!(!q.labels.is_empty());
    assert_eq!(
        Query::parse(Some("resourceVersion=0"))
            .expect("parses")
            .resource_version,
        None
    );
    assert_eq!(
        Query::parse(Some("resourceVersion=x"))
            .map(|_| ())
            .map_err(|e| e.code),
        Err(400)
    );
}
