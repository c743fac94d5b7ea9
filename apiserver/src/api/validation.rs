//! Validation with the real API server's field paths and wording, so an
//! invalid manifest is refused (422 Invalid, or 400 when undecodable) with
//! kubectl's usual error and nothing is stored.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::resources::Resource;
use crate::status::{ApiError, Cause};

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_1123: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// A value as Go's `%#v` prints it in the real API server's messages:
/// strings quoted, label maps as `map[string]string{"k":"v"}`.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Object(m) if m.values().all(Value::is_string) => {
            let pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or("")))
                .collect();
            format!("map[string]string{{{}}}", pairs.join(", "))
        }
        other => other.to_string(),
    }
}

/// A field error in the making.
fn invalid(field: &str, value: &Value, message: &str) -> Cause {
    let shown = go_value(value);
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {shown}: {message}"),
        field: field.to_string(),
    }
}

fn required(field: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired",
        message: "Required value".into(),
        field: field.into(),
    }
}

fn unsupported(field: &str, value: &str, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Cause {
        reason: "FieldValueNotSupported",
        message: format!(
            "Unsupported value: {value:?}: supported values: {}",
            list.join(", ")
        ),
        field: field.into(),
    }
}

/// Checks the object decodes as its Kubernetes type (400 otherwise, worded
/// as the real decoder's refusal) and returns the fields the type does not
/// know (`spec.foo`), for strict or warning field validation.
pub fn decode(resource: Resource, object: &Value) -> Result<Vec<String>, ApiError> {
    fn roundtrip<T: DeserializeOwned + Serialize>(object: &Value) -> Result<Value, String> {
        let typed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
        serde_json::to_value(typed).map_err(|e| e.to_string())
    }
    let back = match resource {
        Resource::Namespaces => roundtrip::<Namespace>(object),
        Resource::Nodes => roundtrip::<Node>(object),
        Resource::Pods => roundtrip::<Pod>(object),
        Resource::Services => roundtrip::<Service>(object),
        Resource::Endpoints => roundtrip::<Endpoints>(object),
        Resource::Deployments => roundtrip::<Deployment>(object),
        Resource::ReplicaSets => roundtrip::<ReplicaSet>(object),
        Resource::EndpointSlices => roundtrip::<EndpointSlice>(object),
    };
    let back = back.map_err(|e| {
        let kind = resource.kind();
        let version = resource.group_version().api_version();
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}"
        ))
    })?;
    let mut unknown = Vec::new();
    unknown_fields(object, &back, "", &mut unknown);
    Ok(unknown)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Paths present in `input` but dropped by the typed round trip.
fn unknown_fields(input: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match (input, back) {
        (Value::Object(i), Value::Object(b)) => {
            for (k, v) in i {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(bv) => unknown_fields(v, bv, &p, out),
                    None if !is_empty(v) => out.push(p),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(b)) => {
            for (n, (iv, bv)) in i.iter().zip(b).enumerate() {
                unknown_fields(iv, bv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// Validates a stored candidate; `old` is the current object on update.
pub fn validate(resource: Resource, object: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut causes = Vec::new();
    let name_ok = match resource {
        Resource::Namespaces => is_label(name).then_some(()).ok_or(LABEL_1123),
        Resource::Services => (is_label(name)
            && name.starts_with(|c: char| c.is_ascii_lowercase()))
        .then_some(())
        .ok_or(LABEL_1035),
        _ => is_subdomain(name).then_some(()).ok_or(SUBDOMAIN),
    };
    if name.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired",
            message: "Required value: name or generateName is required".into(),
            field: "metadata.name".into(),
        });
    } else if let Err(message) = name_ok {
        causes.push(invalid(
            "metadata.name",
            &Value::String(name.into()),
            message,
        ));
    }
    match resource {
        Resource::Pods => pod_spec(object.get("spec"), "spec", &mut causes),
        Resource::Services => service(object, old, &mut causes),
        Resource::Deployments | Resource::ReplicaSets => workload(object, old, &mut causes),
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(resource, name, causes))
    }
}

fn pod_spec(spec: Option<&Value>, path: &str, causes: &mut Vec<Cause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        causes.push(required(&format!("{path}.containers")));
        return;
    };
    for (i, c) in containers.iter().enumerate() {
        let at = format!("{path}.containers[{i}]");
        match c["name"].as_str() {
            None | Some("") => causes.push(required(&format!("{at}.name"))),
            Some(n) if !is_label(n) => {
                causes.push(invalid(&format!("{at}.name"), &c["name"], LABEL_1123))
            }
            Some(_) => {}
        }
        if c["image"].as_str().is_none_or(str::is_empty) {
            causes.push(required(&format!("{at}.image")));
        }
        for (j, p) in c["ports"].as_array().into_iter().flatten().enumerate() {
            port_range(
                &p["containerPort"],
                &format!("{at}.ports[{j}].containerPort"),
                causes,
            );
        }
    }
}

fn port_range(port: &Value, field: &str, causes: &mut Vec<Cause>) {
    match port.as_i64() {
        None => causes.push(required(field)),
        Some(p) if !(1..=65535).contains(&p) => causes.push(invalid(
            field,
            port,
            "must be between 1 and 65535, inclusive",
        )),
        Some(_) => {}
    }
}

const SERVICE_TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

fn service(svc: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let kind = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if !SERVICE_TYPES.contains(&kind) {
        causes.push(unsupported("spec.type", kind, &SERVICE_TYPES));
    }
    let cluster_ip = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind == "ExternalName" {
        if svc
            .pointer("/spec/externalName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(required("spec.externalName"));
        }
    } else if cluster_ip != "None" {
        let ports = svc.pointer("/spec/ports").and_then(Value::as_array);
        if ports.is_none_or(|p| p.is_empty()) {
            causes.push(required("spec.ports"));
        }
    }
    if !cluster_ip.is_empty()
        && cluster_ip != "None"
        && cluster_ip.parse::<std::net::Ipv4Addr>().is_err()
    {
        causes.push(invalid(
            "spec.clusterIP",
            &svc["spec"]["clusterIP"],
            "must be a valid IP address",
        ));
    }
    let protocols = ["SCTP", "TCP", "UDP"];
    for (i, p) in svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        port_range(&p["port"], &format!("spec.ports[{i}].port"), causes);
        let protocol = p["protocol"].as_str().unwrap_or("TCP");
        if !protocols.contains(&protocol) {
            causes.push(unsupported(
                &format!("spec.ports[{i}].protocol"),
                protocol,
                &protocols,
            ));
        }
    }
    let old_ip = old
        .and_then(|o| o.pointer("/spec/clusterIP"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let type_change_frees = kind == "ExternalName";
    if !old_ip.is_empty() && !cluster_ip.is_empty() && old_ip != cluster_ip && !type_change_frees {
        causes.push(invalid(
            "spec.clusterIPs[0]",
            &Value::String(cluster_ip.into()),
            "may not change once set",
        ));
    }
}

fn workload(object: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let selector = object.pointer("/spec/selector");
    let match_labels = selector
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object);
    let has_expressions = selector
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty());
    if match_labels.is_none_or(|m| m.is_empty()) && !has_expressions {
        causes.push(required("spec.selector"));
    } else if let Some(wanted) = match_labels {
        let labels = object.pointer("/spec/template/metadata/labels");
        let matches = wanted
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !matches {
            causes.push(invalid(
                "spec.template.metadata.labels",
                labels.unwrap_or(&Value::Null),
                "`selector` does not match template `labels`",
            ));
        }
    }
    if object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .is_some_and(|r| r < 0)
    {
        causes.push(invalid(
            "spec.replicas",
            &object["spec"]["replicas"],
            "must be greater than or equal to 0",
        ));
    }
    if let Some(old_selector) = old.and_then(|o| o.pointer("/spec/selector")) {
        if selector.is_some_and(|s| s != old_selector) {
            causes.push(invalid(
                "spec.selector",
                selector.unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    }
    pod_spec(
        object.pointer("/spec/template/spec"),
        "spec.template.spec",
        causes,
    );
}

#[cfg(test)]
mod tests;
