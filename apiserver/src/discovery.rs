//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/<group>` and the
//! resource lists of each group version, built from [`Resource`].
//!
//! kubectl 1.32 first asks for the aggregated form
//! (`as=APIGroupDiscoveryList`) but lists plain `application/json` after it
//! in its Accept header, and falls back to these documents when the answer's
//! content type is plain JSON, so only the unaggregated form is served.

use serde_json::{json, Value};

use crate::resources::{GroupVersion, Resource, ALL_VERBS, NAMED_GROUPS};

/// The Kubernetes version reported: the API level kubectl 1.32 expects.
pub const MAJOR: &str = "1";
/// The minor version reported.
pub const MINOR: &str = "32";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": format!("v{MAJOR}.{MINOR}.0-ksr"),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

fn group(gv: GroupVersion) -> Value {
    let version = json!({ "groupVersion": gv.api_version(), "version": gv.version });
    json!({ "name": gv.group, "versions": [version.clone()], "preferredVersion": version })
}

/// `/apis/<group>`.
pub fn api_group(gv: GroupVersion) -> Value {
    let mut g = group(gv);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    g
}

/// `/apis`.
pub fn groups() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": NAMED_GROUPS.into_iter().map(group).collect::<Vec<_>>(),
    })
}

/// `/api/v1`, `/apis/<group>/<version>`.
pub fn resource_list(gv: GroupVersion) -> Value {
    let mut resources = Vec::new();
    for r in Resource::of_group(gv) {
        let verbs: Vec<&str> = if r.client_writable() {
            ALL_VERBS.to_vec()
        } else {
            vec!["get", "list", "watch"]
        };
        let mut entry = json!({
            "name": r.plural(),
            "singularName": r.singular(),
            "namespaced": r.namespaced(),
            "kind": r.kind(),
            "verbs": verbs,
        });
        if !r.short_names().is_empty() {
            entry["shortNames"] = json!(r.short_names());
        }
        if !r.categories().is_empty() {
            entry["categories"] = json!(r.categories());
        }
        resources.push(entry);
        for sub in r.subresources() {
            let (name, kind, group, version) = match sub {
                crate::resources::Subresource::Status => ("status", r.kind(), None, None),
                crate::resources::Subresource::Scale => {
                    ("scale", "Scale", Some("autoscaling"), Some("v1"))
                }
            };
            let mut e = json!({
                "name": format!("{}/{name}", r.plural()),
                "singularName": "",
                "namespaced": r.namespaced(),
                "kind": kind,
                "verbs": ["get", "patch", "update"],
            });
            if let (Some(g), Some(v)) = (group, version) {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            resources.push(e);
        }
    }
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv.api_version(),
        "resources": resources,
    })
}
