//! The EndpointSlice controller and the legacy Endpoints mirrored from the
//! slices.
//!
//! A Service with a selector gets one slice, `<service>-<5 chars>`, labelled
//! `kubernetes.io/service-name` and managed by
//! `endpointslice-controller.k8s.io`: one endpoint per selected pod with
//! an IP, with `ready` (pod Ready and not terminating), `serving` (pod
//! Ready) and `terminating` (deletion started), `nodeName`, `targetRef`,
//! and the Service's ports resolved against the pods (named target ports
//! by container port name). Endpoints `<service>` list the ready addresses
//! and the not-ready ones (terminating pods left out, as the endpoints
//! controller does).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::index::selector_of;
use super::{owner_reference, terminating, Controllers};
use crate::api::{name_of, random_suffix};
use crate::resources::Resource;
use crate::selector::LabelSelector;
use crate::status::ApiError;
use crate::store::{Change, ObjectKey};

const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const CONTROLLER: &str = "endpointslice-controller.k8s.io";

fn label<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object.pointer("/metadata/labels")?.get(name)?.as_str()
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// A Service port's target on one pod: a number, or a named container port.
fn target_port(port: &Value, pod: &Value) -> Option<i64> {
    match &port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod
            .pointer("/spec/containers")?
            .as_array()?
            .iter()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64()),
        _ => port["port"].as_i64(),
    }
}

/// The EndpointSlices labelled for a Service, from the index.
fn service_slices(c: &Controllers, key: &ObjectKey) -> Vec<std::sync::Arc<Value>> {
    c.index
        .slices_of(&key.namespace, &key.name)
        .iter()
        .filter_map(|name| {
            c.api.store().get(&ObjectKey::new(
                Resource::EndpointSlices,
                &key.namespace,
                name,
            ))
        })
        .filter(|s| label(s, SERVICE_NAME) == Some(&key.name))
        .collect()
}

/// Reconciles the EndpointSlice of a Service.
pub fn slices(c: &Controllers, key: &ObjectKey) -> Result<(), ApiError> {
    let store = c.api.store();
    let all = service_slices(c, key);
    let mine: Vec<&Value> = all
        .iter()
        .map(|s| s.as_ref())
        .filter(|s| label(s, MANAGED_BY) == Some(CONTROLLER))
        .collect();
    let svc = store.get(key);
    let selector_map = svc.as_deref().and_then(selector_of).cloned();
    let selector = selector_map.as_ref().map(LabelSelector::from_map);
    let (Some(svc), Some(selector), Some(selector_map)) = (svc, selector, selector_map) else {
        // No Service or no selector: no managed slice.
        for s in mine {
            let k = ObjectKey::new(Resource::EndpointSlices, &key.namespace, name_of(s));
            let _ = store.modify(&k, |cur| {
                Ok(if cur.is_some() {
                    Change::Delete
                } else {
                    Change::Keep
                })
            });
        }
        return Ok(());
    };
    let pods: Vec<_> = c
        .index
        .pods_for(&key.namespace, &selector_map)
        .iter()
        .filter_map(|name| store.get(&ObjectKey::new(Resource::Pods, &key.namespace, name)))
        .collect();
    let service_ports: Vec<Value> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let publish_not_ready = svc
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        == Some(true);
    let mut endpoints = Vec::new();
    let mut ports: BTreeMap<String, Value> = BTreeMap::new();
    for pod in pods.iter().filter(|p| selector.matches_object(p)) {
        let Some(ip) = pod
            .pointer("/status/podIP")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let gone = terminating(pod);
        let ready = pod_ready(pod);
        let mut endpoint = json!({
            "addresses": [ip],
            "conditions": {
                "ready": (ready || publish_not_ready) && !gone,
                "serving": ready || publish_not_ready,
                "terminating": gone,
            },
            "targetRef": { "kind": "Pod", "namespace": key.namespace, "name": name_of(pod),
                "uid": pod.pointer("/metadata/uid").cloned().unwrap_or(Value::Null) },
        });
        if let Some(node) = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            endpoint["nodeName"] = json!(node);
        }
        endpoints.push(endpoint);
        for p in &service_ports {
            let name = p["name"].as_str().unwrap_or("").to_string();
            if let (false, Some(port)) = (ports.contains_key(&name), target_port(p, pod)) {
                let protocol = p["protocol"].as_str().unwrap_or("TCP");
                ports.insert(
                    name.clone(),
                    json!({ "name": name, "port": port, "protocol": protocol }),
                );
            }
        }
    }
    endpoints.sort_by(|a, b| a["addresses"][0].as_str().cmp(&b["addresses"][0].as_str()));
    let ports: Vec<Value> = ports.into_values().collect();
    let name = mine
        .first()
        .map(|s| name_of(s).to_string())
        .unwrap_or_else(|| format!("{}-{}", key.name, random_suffix()));
    for extra in mine.iter().skip(1) {
        let k = ObjectKey::new(Resource::EndpointSlices, &key.namespace, name_of(extra));
        let _ = store.modify(&k, |cur| {
            Ok(if cur.is_some() {
                Change::Delete
            } else {
                Change::Keep
            })
        });
    }
    let mut labels = svc
        .pointer("/metadata/labels")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or(json!({}));
    labels[SERVICE_NAME] = json!(key.name);
    labels[MANAGED_BY] = json!(CONTROLLER);
    let slice = json!({
        "metadata": {
            "name": name,
            "namespace": key.namespace,
            "labels": labels,
            "generateName": format!("{}-", key.name),
            "ownerReferences": owner_reference(Resource::Services, &svc),
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    });
    let slice_key = ObjectKey::new(Resource::EndpointSlices, &key.namespace, &name);
    store
        .modify(&slice_key, |current| {
            let same = current.is_some_and(|c| {
                c.get("endpoints") == slice.get("endpoints")
                    && c.get("ports") == slice.get("ports")
                    && c.pointer("/metadata/labels") == slice.pointer("/metadata/labels")
            });
            Ok(if same {
                Change::Keep
            } else {
                Change::Put(slice)
            })
        })
        .map(|_| ())
}

/// Reconciles the Endpoints of a Service from its slices.
pub fn endpoints(c: &Controllers, key: &ObjectKey) -> Result<(), ApiError> {
    let store = c.api.store();
    let ep_key = ObjectKey::new(Resource::Endpoints, &key.namespace, &key.name);
    let Some(svc) = store.get(key) else {
        let _ = store.modify(&ep_key, |cur| {
            Ok(if cur.is_some() {
                Change::Delete
            } else {
                Change::Keep
            })
        });
        return Ok(());
    };
    if svc.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        return Ok(());
    }
    let all = service_slices(c, key);
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    let mut ports = Vec::new();
    for slice in all
        .iter()
        .filter(|s| label(s, SERVICE_NAME) == Some(&key.name))
    {
        for p in slice
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut port = json!({ "port": p["port"], "protocol": p["protocol"] });
            if let Some(n) = p["name"].as_str().filter(|n| !n.is_empty()) {
                port["name"] = json!(n);
            }
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        for e in slice
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let conditions = &e["conditions"];
            if conditions["terminating"].as_bool() == Some(true) {
                continue;
            }
            for ip in e["addresses"].as_array().into_iter().flatten() {
                let mut address = json!({ "ip": ip });
                for f in ["nodeName", "targetRef"] {
                    if let Some(v) = e.get(f) {
                        address[f] = v.clone();
                    }
                }
                if conditions["ready"].as_bool() != Some(false) {
                    ready.push(address);
                } else {
                    not_ready.push(address);
                }
            }
        }
    }
    let mut subset = json!({});
    if !ready.is_empty() {
        subset["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = json!(not_ready);
    }
    let mut object = json!({ "metadata": { "name": key.name, "namespace": key.namespace,
        "labels": svc.pointer("/metadata/labels").cloned().filter(Value::is_object).unwrap_or(json!({})) } });
    if (!ready.is_empty() || !not_ready.is_empty()) && !ports.is_empty() {
        subset["ports"] = json!(ports);
        object["subsets"] = json!([subset]);
    }
    store
        .modify(&ep_key, |current| {
            let same = current.is_some_and(|c| {
                c.get("subsets") == object.get("subsets")
                    && c.pointer("/metadata/labels") == object.pointer("/metadata/labels")
            });
            Ok(if same {
                Change::Keep
            } else {
                Change::Put(object)
            })
        })
        .map(|_| ())
}
