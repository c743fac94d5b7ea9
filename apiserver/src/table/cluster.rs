//! Columns of namespaces and nodes.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{age, array_at, col, or_none, str_at, wide, Column};

/// Namespace columns.
pub const NAMESPACE_COLUMNS: &[Column] = &[
    col("Name", "string"),
    col("Status", "string"),
    col("Age", "string"),
];

pub(super) fn namespace(ns: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![json!(str_at(ns, "/status/phase")), age(ns, now)]
}

/// Node columns.
pub const NODE_COLUMNS: &[Column] = &[
    col("Name", "string"),
    col("Status", "string"),
    col("Roles", "string"),
    col("Age", "string"),
    col("Version", "string"),
    wide("Internal-IP", "string"),
    wide("External-IP", "string"),
    wide("OS-Image", "string"),
    wide("Kernel-Version", "string"),
    wide("Container-Runtime", "string"),
];

fn node_status(node: &Value) -> String {
    let ready = array_at(node, "/status/conditions")
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            if c["status"] == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        });
    let mut status = ready.unwrap_or("Unknown").to_string();
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn roles(node: &Value) -> String {
    let mut roles: Vec<&str> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    or_none(&roles.join(","))
}

fn address(node: &Value, kind: &str) -> String {
    let found = array_at(node, "/status/addresses")
        .iter()
        .find(|a| a["type"] == kind)
        .and_then(|a| a["address"].as_str())
        .unwrap_or("");
    or_none(found)
}

pub(super) fn node(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let info = |f: &str| json!(or_none(str_at(node, &format!("/status/nodeInfo/{f}"))));
    vec![
        json!(node_status(node)),
        json!(roles(node)),
        age(node, now),
        json!(str_at(node, "/status/nodeInfo/kubeletVersion")),
        json!(address(node, "InternalIP")),
        json!(address(node, "ExternalIP")),
        info("osImage"),
        info("kernelVersion"),
        info("containerRuntimeVersion"),
    ]
}
