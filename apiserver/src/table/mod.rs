//! `meta.k8s.io/v1` Table responses: kubectl's own columns for each
//! resource, so `kubectl get` prints what it prints against a real cluster.
//! Cells are computed from the JSON objects with the wall clock passed in.

mod cluster;
mod network;
mod workloads;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::resources::Resource;

/// A column: name, type and whether only `-o wide` shows it (priority 1).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header (kubectl upper-cases it).
    pub name: &'static str,
    /// `string`, `integer` or `date`.
    pub kind: &'static str,
    /// Shown only with `-o wide`.
    pub wide: bool,
}

const fn col(name: &'static str, kind: &'static str) -> Column {
    Column {
        name,
        kind,
        wide: false,
    }
}

const fn wide(name: &'static str, kind: &'static str) -> Column {
    Column {
        name,
        kind,
        wide: true,
    }
}

/// The columns of a resource.
pub fn columns(resource: Resource) -> &'static [Column] {
    match resource {
        Resource::Pods => workloads::POD_COLUMNS,
        Resource::Deployments => workloads::DEPLOYMENT_COLUMNS,
        Resource::ReplicaSets => workloads::REPLICASET_COLUMNS,
        Resource::Services => network::SERVICE_COLUMNS,
        Resource::Endpoints => network::ENDPOINTS_COLUMNS,
        Resource::EndpointSlices => network::ENDPOINTSLICE_COLUMNS,
        Resource::Namespaces => cluster::NAMESPACE_COLUMNS,
        Resource::Nodes => cluster::NODE_COLUMNS,
    }
}

/// The cells of one object's row, in [`columns`] order.
pub fn cells(resource: Resource, object: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut row = vec![json!(str_at(object, "/metadata/name"))];
    row.extend(match resource {
        Resource::Pods => workloads::pod(object, now),
        Resource::Deployments => workloads::deployment(object, now),
        Resource::ReplicaSets => workloads::replicaset(object, now),
        Resource::Services => network::service(object, now),
        Resource::Endpoints => network::endpoints(object, now),
        Resource::EndpointSlices => network::endpointslice(object, now),
        Resource::Namespaces => cluster::namespace(object, now),
        Resource::Nodes => cluster::node(object, now),
    });
    row
}

/// What the rows carry as `object` (`includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// From the query parameter.
    pub fn parse(value: Option<&str>) -> IncludeObject {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// A Table of objects.
pub fn table(
    resource: Resource,
    objects: &[&Value],
    resource_version: u64,
    include: IncludeObject,
    now: DateTime<Utc>,
) -> Value {
    let definitions: Vec<Value> = columns(resource)
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": if c.name == "Name" { "name" } else { "" },
                "description": "",
                "priority": if c.wide { 1 } else { 0 },
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let object = match include {
                IncludeObject::None => Value::Null,
                IncludeObject::Object => (*o).clone(),
                IncludeObject::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
                }),
            };
            json!({ "cells": cells(resource, o, now), "object": object })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": resource_version.to_string() },
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// A string at a JSON pointer, "" when absent.
fn str_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// An integer at a JSON pointer, 0 when absent.
fn int_at(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The array at a JSON pointer, empty when absent.
fn array_at<'a>(object: &'a Value, pointer: &str) -> &'a [Value] {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `<none>` for an empty string, as kubectl prints missing values.
fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

/// The AGE cell: the time since `metadata.creationTimestamp`.
fn age(object: &Value, now: DateTime<Utc>) -> Value {
    since(str_at(object, "/metadata/creationTimestamp"), now)
}

/// The time since an RFC 3339 timestamp, as kubectl prints it.
fn since(timestamp: &str, now: DateTime<Utc>) -> Value {
    match DateTime::parse_from_rfc3339(timestamp) {
        Ok(t) => json!(human_duration(now.signed_duration_since(t).num_seconds())),
        Err(_) => json!("<unknown>"),
    }
}

/// kubectl's `duration.HumanDuration` (one implementation, shared with
/// the router's CLI).
pub use ::cluster::human_duration;

/// A label map as `k=v,k2=v2` (sorted), or `<none>`.
fn labels_string(map: Option<&Value>) -> String {
    let Some(map) = map.and_then(Value::as_object) else {
        return "<none>".to_string();
    };
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    or_none(&pairs.join(","))
}

/// At most three endpoints, then `+ N more...`, as kubectl's formatEndpoints.
fn endpoint_list(items: &[String]) -> String {
    if items.is_empty() {
        return "<none>".to_string();
    }
    let shown = items.iter().take(3).cloned().collect::<Vec<_>>().join(",");
    if items.len() > 3 {
        format!("{shown} + {} more...", items.len() - 3)
    } else {
        shown
    }
}

#[cfg(test)]
mod tests;
