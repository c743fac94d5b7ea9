//! Defaulting, as the real API server fills unset fields on every write
//! (so `kubectl get -o yaml` and `describe` show the usual values).

use serde_json::{json, Value};

use crate::resources::Resource;

/// Sets `object[field]` to `value` when absent or null.
fn default(object: &mut Value, field: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        let slot = map.entry(field.to_string()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    }
}

/// Fills the defaults of one object.
pub fn apply(resource: Resource, object: &mut Value) {
    match resource {
        Resource::Namespaces => {
            let name = object
                .pointer("/metadata/name")
                .cloned()
                .unwrap_or(Value::Null);
            default(&mut object["metadata"], "labels", json!({}));
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            default(object, "spec", json!({}));
            default(&mut object["spec"], "finalizers", json!(["kubernetes"]));
            default(object, "status", json!({}));
            default(&mut object["status"], "phase", json!("Active"));
        }
        Resource::Pods => {
            default(object, "spec", json!({}));
            pod_spec(&mut object["spec"]);
            default(object, "status", json!({}));
            default(&mut object["status"], "phase", json!("Pending"));
            default(&mut object["status"], "qosClass", json!("BestEffort"));
        }
        Resource::Services => service(object),
        Resource::Deployments => {
            default(object, "spec", json!({}));
            let spec = &mut object["spec"];
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
            template(spec);
        }
        Resource::ReplicaSets => {
            default(object, "spec", json!({}));
            default(&mut object["spec"], "replicas", json!(1));
            template(&mut object["spec"]);
        }
        Resource::Nodes | Resource::Endpoints | Resource::EndpointSlices => {}
    }
}

fn template(spec: &mut Value) {
    if let Some(pod) = spec.pointer_mut("/template/spec") {
        pod_spec(pod);
    }
}

fn pod_spec(spec: &mut Value) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "securityContext", json!({}));
    for field in ["containers", "initContainers"] {
        let Some(containers) = spec.get_mut(field).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            let latest = c["image"].as_str().is_some_and(|i| {
                !i.rsplit('/').next().unwrap_or(i).contains(':') || i.ends_with(":latest")
            });
            default(
                c,
                "imagePullPolicy",
                json!(if latest { "Always" } else { "IfNotPresent" }),
            );
            default(c, "terminationMessagePath", json!("/dev/termination-log"));
            default(c, "terminationMessagePolicy", json!("File"));
            default(c, "resources", json!({}));
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    default(p, "protocol", json!("TCP"));
                }
            }
        }
    }
}

fn service(object: &mut Value) {
    default(object, "spec", json!({}));
    let spec = &mut object["spec"];
    default(spec, "type", json!("ClusterIP"));
    let kind = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    default(spec, "sessionAffinity", json!("None"));
    if kind != "ExternalName" {
        default(spec, "ipFamilies", json!(["IPv4"]));
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            default(p, "protocol", json!("TCP"));
            let port = p["port"].clone();
            default(p, "targetPort", port);
        }
    }
    default(object, "status", json!({"loadBalancer": {}}));
}
