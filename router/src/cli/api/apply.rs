//! `router apply -f FILE.yaml` against the API: every document (and every
//! item of a `kind: List`) applied server-side, as `kubectl apply
//! --server-side` does; the kind's resource and scope come from the
//! server's discovery, so any kind the server serves can be applied.

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{pinned_kind, Scope};
use kube::Api;
use serde_json::Value;

use super::ApiClient;
use crate::cli::CliError;

/// The field manager the router's applies are recorded under.
const MANAGER: &str = "router";

/// The objects of a YAML manifest: its documents, `List`s flattened, empty
/// documents skipped.
pub fn objects(text: &str) -> Result<Vec<Value>, CliError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| CliError::Manifest(e.to_string()))?;
    let mut out = Vec::new();
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                out.extend(
                    map.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            Value::Object(_) => out.push(doc),
            other => {
                return Err(CliError::Manifest(format!(
                    "a document is not an object: {other}"
                )))
            }
        }
    }
    Ok(out)
}

fn field<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// The GVK of `object`, or why it has none.
fn gvk(object: &Value) -> Result<GroupVersionKind, CliError> {
    let (Some(api_version), Some(kind)) = (field(object, "/apiVersion"), field(object, "/kind"))
    else {
        return Err(CliError::Manifest(
            "an object without apiVersion or kind".into(),
        ));
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok(GroupVersionKind::gvk(group, version, kind))
}

impl ApiClient {
    /// Applies every object of `text`; one line per object, as kubectl
    /// prints them (`service/nginx-svc serverside-applied`).
    pub fn apply(&self, text: &str, default_namespace: &str) -> Result<String, CliError> {
        let objects = objects(text)?;
        if objects.is_empty() {
            return Err(CliError::Manifest("no objects passed to apply".into()));
        }
        let mut out = String::new();
        for object in objects {
            let gvk = gvk(&object)?;
            let Some(name) = field(&object, "/metadata/name").map(str::to_owned) else {
                return Err(CliError::Manifest(format!(
                    "a {} without metadata.name",
                    gvk.kind
                )));
            };
            let line = self.runtime.block_on(async {
                let (resource, caps) = pinned_kind(&self.client, &gvk)
                    .await
                    .map_err(super::client::api_error)?;
                let api: Api<DynamicObject> = match caps.scope {
                    Scope::Cluster => Api::all_with(self.client.clone(), &resource),
                    Scope::Namespaced => {
                        let ns = field(&object, "/metadata/namespace").unwrap_or(default_namespace);
                        Api::namespaced_with(self.client.clone(), ns, &resource)
                    }
                };
                api.patch(
                    &name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&object),
                )
                .await
                .map_err(super::client::api_error)?;
                let kind = gvk.kind.to_lowercase();
                let prefix = if gvk.group.is_empty() {
                    kind
                } else {
                    format!("{kind}.{}", gvk.group)
                };
                Ok::<String, CliError>(format!("{prefix}/{name} serverside-applied\n"))
            })?;
            out.push_str(&line);
        }
        Ok(out)
    }
}
