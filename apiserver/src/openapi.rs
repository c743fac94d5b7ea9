//! The smallest OpenAPI v3 documents kubectl 1.32 needs.
//!
//! With `--validate=strict` (its default) kubectl reads `/openapi/v3`, then
//! the group version's document, and looks for the PATCH operation of the
//! object's kind with a `fieldValidation` query parameter: when present it
//! leaves validation to the server (which refuses unknown fields with
//! `fieldValidation=Strict`); otherwise it needs the whole OpenAPI v2 schema.
//! The PATCH operations list no request body, so client-side `kubectl apply`
//! computes its strategic merge patch from its built-in types instead of a
//! schema this server does not have.

use serde_json::{json, Map, Value};

use crate::resources::{GroupVersion, Resource, CORE_V1, NAMED_GROUPS};

/// The path of a group version's document under `/openapi/v3/`.
fn relative(gv: GroupVersion) -> String {
    if gv.group.is_empty() {
        format!("api/{}", gv.version)
    } else {
        format!("apis/{}/{}", gv.group, gv.version)
    }
}

/// `/openapi/v3`: where each group version's document is.
pub fn root() -> Value {
    let mut paths = Map::new();
    for gv in std::iter::once(CORE_V1).chain(NAMED_GROUPS) {
        let url = format!(
            "/openapi/v3/{}?hash={}",
            relative(gv),
            crate::discovery::MINOR
        );
        paths.insert(relative(gv), json!({ "serverRelativeURL": url }));
    }
    json!({ "paths": paths })
}

/// `/openapi/v3/<api/v1|apis/group/version>`: the PATCH operations.
pub fn group_version(path: &str) -> Option<Value> {
    let gv = std::iter::once(CORE_V1)
        .chain(NAMED_GROUPS)
        .find(|gv| relative(*gv) == path)?;
    let mut paths = Map::new();
    for r in Resource::of_group(gv) {
        let base = format!("/{}", relative(gv));
        let url = if r.namespaced() {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural())
        } else {
            format!("{base}/{}/{{name}}", r.plural())
        };
        let patch = json!({
            "operationId": format!("patch{}", r.kind()),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": { "group": gv.group, "version": gv.version, "kind": r.kind() },
            "parameters": [
                { "name": "dryRun", "in": "query", "schema": { "type": "string" } },
                { "name": "fieldManager", "in": "query", "schema": { "type": "string" } },
                { "name": "fieldValidation", "in": "query", "schema": { "type": "string" } },
                { "name": "force", "in": "query", "schema": { "type": "boolean" } },
            ],
            "responses": { "200": { "description": "OK" } },
        });
        paths.insert(url, json!({ "patch": patch }));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": format!("v{}.{}.0", crate::discovery::MAJOR, crate::discovery::MINOR) },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}
