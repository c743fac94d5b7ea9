//! Columns of pods, deployments and replicasets.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{age, array_at, col, int_at, labels_string, or_none, since, str_at, wide, Column};

/// Pod columns (kubectl's printPod).
pub const POD_COLUMNS: &[Column] = &[
    col("Name", "string"),
    col("Ready", "string"),
    col("Status", "string"),
    col("Restarts", "string"),
    col("Age", "string"),
    wide("IP", "string"),
    wide("Node", "string"),
    wide("Nominated Node", "string"),
    wide("Readiness Gates", "string"),
];

/// The STATUS cell: the phase, overridden by a reason, a waiting or
/// terminated container, and `Terminating` once deletion started.
pub fn pod_status(pod: &Value) -> String {
    let mut reason = str_at(pod, "/status/phase").to_string();
    let status_reason = str_at(pod, "/status/reason");
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    for cs in array_at(pod, "/status/containerStatuses").iter().rev() {
        let waiting = str_at(cs, "/state/waiting/reason");
        let terminated = str_at(cs, "/state/terminated/reason");
        if !waiting.is_empty() {
            reason = waiting.to_string();
        } else if !terminated.is_empty() {
            reason = terminated.to_string();
        }
    }
    if pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        reason = if status_reason == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    if reason.is_empty() {
        "Pending".to_string()
    } else {
        reason
    }
}

pub(super) fn pod(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let total = array_at(pod, "/spec/containers").len();
    let statuses = array_at(pod, "/status/containerStatuses");
    let ready = statuses
        .iter()
        .filter(|c| c["ready"].as_bool() == Some(true))
        .count();
    let restarts: i64 = statuses
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let last_restart = statuses
        .iter()
        .filter_map(|c| {
            c.pointer("/lastState/terminated/finishedAt")
                .and_then(Value::as_str)
        })
        .max();
    let restarts = match last_restart {
        Some(t) if restarts > 0 => {
            format!(
                "{restarts} ({} ago)",
                since(t, now).as_str().unwrap_or_default()
            )
        }
        _ => restarts.to_string(),
    };
    let gates = array_at(pod, "/spec/readinessGates");
    let gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = array_at(pod, "/status/conditions");
        let true_gates = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
            })
            .count();
        format!("{true_gates}/{}", gates.len())
    };
    vec![
        json!(format!("{ready}/{total}")),
        json!(pod_status(pod)),
        json!(restarts),
        age(pod, now),
        json!(or_none(str_at(pod, "/status/podIP"))),
        json!(or_none(str_at(pod, "/spec/nodeName"))),
        json!(or_none(str_at(pod, "/status/nominatedNodeName"))),
        json!(gates),
    ]
}

/// Deployment columns.
pub const DEPLOYMENT_COLUMNS: &[Column] = &[
    col("Name", "string"),
    col("Ready", "string"),
    col("Up-to-date", "integer"),
    col("Available", "integer"),
    col("Age", "string"),
    wide("Containers", "string"),
    wide("Images", "string"),
    wide("Selector", "string"),
];

fn containers_and_images(object: &Value) -> (Value, Value) {
    let containers = array_at(object, "/spec/template/spec/containers");
    let names: Vec<&str> = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c["image"].as_str().unwrap_or(""))
        .collect();
    (json!(names.join(",")), json!(images.join(",")))
}

fn selector(object: &Value) -> Value {
    json!(labels_string(object.pointer("/spec/selector/matchLabels")))
}

/// `.spec.replicas`, which defaults to 1.
fn desired(object: &Value) -> i64 {
    object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

pub(super) fn deployment(d: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = containers_and_images(d);
    vec![
        json!(format!(
            "{}/{}",
            int_at(d, "/status/readyReplicas"),
            desired(d)
        )),
        json!(int_at(d, "/status/updatedReplicas")),
        json!(int_at(d, "/status/availableReplicas")),
        age(d, now),
        containers,
        images,
        selector(d),
    ]
}

/// ReplicaSet columns.
pub const REPLICASET_COLUMNS: &[Column] = &[
    col("Name", "string"),
    col("Desired", "integer"),
    col("Current", "integer"),
    col("Ready", "integer"),
    col("Age", "string"),
    wide("Containers", "string"),
    wide("Images", "string"),
    wide("Selector", "string"),
];

pub(super) fn replicaset(rs: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = containers_and_images(rs);
    vec![
        json!(desired(rs)),
        json!(int_at(rs, "/status/replicas")),
        json!(int_at(rs, "/status/readyReplicas")),
        age(rs, now),
        containers,
        images,
        selector(rs),
    ]
}
