//! A request path and query, parsed into what the API serves:
//! `/api/v1/namespaces/default/pods/x/status?watch=true` and friends.

use std::collections::HashMap;

use crate::resources::{GroupVersion, Resource, Subresource, APPS_V1, CORE_V1, DISCOVERY_V1};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/version`.
    Version,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(GroupVersion),
    /// `/api/v1` or `/apis/<group>/<version>`.
    ResourceList(GroupVersion),
    /// `/openapi/v3`: the index of group version documents.
    OpenApiV3,
    /// `/openapi/v3/<api/v1|apis/g/v>`: one group version's document.
    OpenApiV3Group(String),
    /// `/openapi/v2` and anything else under `/openapi`: not served.
    OpenApi,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// A resource, a collection or one object.
    Object(ObjectPath),
}

/// A path under a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// The resource type.
    pub resource: Resource,
    /// The namespace in the path, if any.
    pub namespace: Option<String>,
    /// The object's name, None for the collection.
    pub name: Option<String>,
    /// A subresource of the object.
    pub subresource: Option<Subresource>,
}

fn group_of(name: &str) -> Option<GroupVersion> {
    [APPS_V1, DISCOVERY_V1]
        .into_iter()
        .find(|g| g.group == name)
}

/// Parses a request path.
pub fn parse_path(path: &str) -> Result<Target, ApiError> {
    let no_route = || ApiError::no_route(path);
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (gv, rest) = match segments.as_slice() {
        ["version"] => return Ok(Target::Version),
        ["healthz" | "livez" | "readyz", ..] => return Ok(Target::Health),
        ["openapi", "v3"] => return Ok(Target::OpenApiV3),
        ["openapi", "v3", rest @ ..] => return Ok(Target::OpenApiV3Group(rest.join("/"))),
        ["openapi", ..] | ["swagger.json"] => return Ok(Target::OpenApi),
        ["api"] => return Ok(Target::CoreVersions),
        ["apis"] => return Ok(Target::Groups),
        ["apis", group] => return group_of(group).map(Target::Group).ok_or_else(no_route),
        ["api", "v1", rest @ ..] => (CORE_V1, rest),
        ["apis", group, version, rest @ ..] => {
            let gv = group_of(group)
                .filter(|g| g.version == *version)
                .ok_or_else(no_route)?;
            (gv, rest)
        }
        _ => return Err(no_route()),
    };
    let resource =
        |plural: &str| Resource::from_path(gv.group, gv.version, plural).ok_or_else(no_route);
    let object =
        |resource: Resource, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
            if namespace.is_some() && !resource.namespaced() {
                return Err(no_route());
            }
            let subresource = match sub {
                None => None,
                Some(s) => Some(
                    Subresource::parse(s)
                        .filter(|s| resource.subresources().contains(s))
                        .ok_or_else(no_route)?,
                ),
            };
            Ok(Target::Object(ObjectPath {
                resource,
                namespace: namespace.map(str::to_string),
                name: name.map(str::to_string),
                subresource,
            }))
        };
    match rest {
        [] => Ok(Target::ResourceList(gv)),
        ["namespaces", ns, plural, tail @ ..] if gv != CORE_V1 || *plural != "status" => {
            let r = resource(plural)?;
            match tail {
                [] => object(r, Some(ns), None, None),
                [name] => object(r, Some(ns), Some(name), None),
                [name, sub] => object(r, Some(ns), Some(name), Some(sub)),
                _ => Err(no_route()),
            }
        }
        [plural] => object(resource(plural)?, None, None, None),
        [plural, name] => object(resource(plural)?, None, Some(name), None),
        [plural, name, sub] => object(resource(plural)?, None, Some(name), Some(sub)),
        _ => Err(no_route()),
    }
}

/// The query options of reads and writes.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `watch=true` (or `watch=1`).
    pub watch: bool,
    /// `resourceVersion`, parsed ("" and "0" are None: any version).
    pub resource_version: Option<u64>,
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `sendInitialEvents=true` (a streaming list): the current objects as
    /// ADDED, then a BOOKMARK marked `k8s.io/initial-events-end`.
    pub send_initial_events: bool,
    /// `timeoutSeconds` of a watch.
    pub timeout_seconds: Option<u64>,
    /// `dryRun=All`: validate, change nothing.
    pub dry_run: bool,
    /// `fieldManager` of a server-side apply.
    pub field_manager: Option<String>,
    /// `force=true` of a server-side apply.
    pub force: bool,
    /// `limit` of a list (ignored: lists are answered whole).
    pub limit: Option<u64>,
}

impl Query {
    /// Parses a query string.
    pub fn parse(query: Option<&str>) -> Result<Query, ApiError> {
        let pairs: HashMap<String, String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| pairs.get(k).map(String::as_str);
        let truthy = |k: &str| matches!(get(k), Some("true" | "1"));
        let number = |k: &str| -> Result<Option<u64>, ApiError> {
            match get(k) {
                None | Some("") => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| ApiError::bad_request(format!("invalid {k}: {v:?}"))),
            }
        };
        Ok(Query {
            watch: truthy("watch"),
            resource_version: number("resourceVersion")?.filter(|rv| *rv != 0),
            labels: LabelSelector::parse(get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(get("fieldSelector").unwrap_or(""))?,
            bookmarks: truthy("allowWatchBookmarks"),
            send_initial_events: truthy("sendInitialEvents"),
            timeout_seconds: number("timeoutSeconds")?,
            dry_run: get("dryRun").is_some_and(|v| !v.is_empty()),
            field_manager: get("fieldManager").map(str::to_string),
            force: truthy("force"),
            limit: number("limit")?,
        })
    }
}

#[cfg(test)]
mod tests;
