//! Deployment -> ReplicaSet -> Pods, as the deployment and replicaset
//! controllers do: the ReplicaSet of the current template is named
//! `<deployment>-<pod-template-hash>` and scaled to the Deployment's
//! replicas, older ones to zero; a ReplicaSet creates `<rs>-<5 chars>`
//! pods until it has its replicas and deletes the surplus.

use serde_json::{json, Value};

use super::{controller_of, owner_reference, rollout, terminating, uid_of, Controllers};
use crate::api::{name_of, Api};
use crate::resources::Resource;
use crate::selector::LabelSelector;
use crate::status::ApiError;
use crate::store::{Change, ObjectKey};

/// The label and annotation the controllers set.
const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

/// 32-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Kubernetes' `rand.SafeEncodeString` of the decimal hash: each digit
/// mapped into the alphabet without vowels, so a hash never spells words.
pub fn pod_template_hash(template: &Value) -> String {
    let template = &without_nulls(template);
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let hash = fnv1a(
        serde_json::to_string(template)
            .unwrap_or_default()
            .as_bytes(),
    );
    hash.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

fn replicas(object: &Value) -> i64 {
    object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// The objects of `resource` the index lists as controlled by `owner`.
fn dependents(c: &Controllers, owner: &Value, resource: Resource) -> Vec<std::sync::Arc<Value>> {
    c.index
        .dependents(uid_of(owner))
        .into_iter()
        .filter(|k| k.resource == resource)
        .filter_map(|k| c.api.store().get(&k))
        .collect()
}

/// Those of `objects` whose controller is `owner` (checked again: the
/// index may lag the store).
fn owned_by<'a>(objects: &'a [std::sync::Arc<Value>], owner: &Value) -> Vec<&'a Value> {
    let uid = uid_of(owner);
    objects
        .iter()
        .map(|o| o.as_ref())
        .filter(|o| controller_of(o).is_some_and(|(_, _, u)| u == uid))
        .collect()
}

fn ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// A copy without null fields: `creationTimestamp: null`, which clients
/// write into templates, means the same as no field.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Whether a ReplicaSet's pod template is `template` but for the hash label.
fn same_template(rs: &Value, template: &Value) -> bool {
    let Some(mut own) = rs.pointer("/spec/template").map(without_nulls) else {
        return false;
    };
    let template = &without_nulls(template);
    if let Some(labels) = own
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    let empty = |v: &Value| v.as_object().is_some_and(|m| m.is_empty());
    if own.pointer("/metadata/labels").is_some_and(empty)
        && template.pointer("/metadata/labels").is_none()
    {
        if let Some(m) = own.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("labels");
        }
    }
    own == *template
}

/// Reconciles a Deployment.
pub fn deployment(c: &Controllers, key: &ObjectKey) -> Result<(), ApiError> {
    let store = c.api.store();
    let Some(d) = store.get(key) else {
        return Ok(());
    };
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = pod_template_hash(&template);
    let mut name = format!("{}-{hash}", key.name);
    let all = dependents(c, &d, Resource::ReplicaSets);
    let owned = owned_by(&all, &d);
    let revision = owned
        .iter()
        .filter_map(|rs| {
            rs.pointer(&format!(
                "/metadata/annotations/{}",
                REVISION.replace('/', "~1")
            ))
        })
        .filter_map(|v| v.as_str()?.parse::<i64>().ok())
        .max()
        .unwrap_or(0);
    let want = replicas(&d);
    // An existing ReplicaSet with this template (a rollback) is reused, as
    // the deployment controller compares templates without the hash label.
    if let Some(same) = owned.iter().find(|rs| same_template(rs, &template)) {
        name = name_of(same).to_string();
    }
    let current = owned.iter().find(|rs| name_of(rs) == name);
    let revision_of = |rs: &Value| {
        rs.pointer(&format!(
            "/metadata/annotations/{}",
            REVISION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .and_then(|r| r.parse::<i64>().ok())
        .unwrap_or(0)
    };
    let this_revision = match current {
        // A ReplicaSet rolled back to becomes the newest revision.
        Some(rs) if revision_of(rs) < revision => {
            let next = (revision + 1).to_string();
            annotate_revision(
                c,
                &ObjectKey::new(Resource::ReplicaSets, &key.namespace, &name),
                &next,
            )?;
            next
        }
        Some(rs) => revision_of(rs).to_string(),
        None => (revision + 1).to_string(),
    };
    annotate_revision(c, key, &this_revision)?;
    let counts = |rs: &Value| rollout::Counts {
        name: name_of(rs).to_string(),
        spec: replicas(rs),
        current: rs
            .pointer("/status/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        available: rs
            .pointer("/status/availableReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0),
    };
    let mut old: Vec<&Value> = owned
        .iter()
        .copied()
        .filter(|rs| name_of(rs) != name)
        .collect();
    old.sort_by_key(|rs| {
        rs.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    });
    let new_counts = current.map(|rs| counts(rs)).unwrap_or(rollout::Counts {
        name: name.clone(),
        spec: 0,
        current: 0,
        available: 0,
    });
    let old_counts: Vec<rollout::Counts> = old.iter().map(|rs| counts(rs)).collect();
    let (new_target, old_targets) = rollout::plan(
        want,
        rollout::Strategy::of(&d, want),
        &new_counts,
        &old_counts,
    );
    match current {
        None => {
            let mut labels = template
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            labels[HASH_LABEL] = json!(hash);
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            selector["matchLabels"][HASH_LABEL] = json!(hash);
            let mut rs_template = template.clone();
            rs_template["metadata"]["labels"] = labels.clone();
            let rs = json!({
                "metadata": {
                    "name": name,
                    "labels": labels,
                    "annotations": { REVISION: (revision + 1).to_string(), "deployment.kubernetes.io/desired-replicas": want.to_string() },
                    "ownerReferences": owner_reference(Resource::Deployments, &d),
                },
                "spec": { "replicas": new_target, "selector": selector, "template": rs_template },
            });
            c.api.create(
                Resource::ReplicaSets,
                Some(&key.namespace),
                rs,
                Api::internal(),
            )?;
        }
        Some(rs) if replicas(rs) != new_target => scale(
            c,
            &ObjectKey::new(Resource::ReplicaSets, &key.namespace, &name),
            new_target,
        )?,
        Some(_) => {}
    }
    for (old_name, target) in old_targets {
        if old
            .iter()
            .any(|rs| name_of(rs) == old_name && replicas(rs) != target)
        {
            scale(
                c,
                &ObjectKey::new(Resource::ReplicaSets, &key.namespace, &old_name),
                target,
            )?;
        }
    }
    let sum = |field: &str| -> i64 {
        owned
            .iter()
            .map(|rs| {
                rs.pointer(&format!("/status/{field}"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            })
            .sum()
    };
    let updated = current
        .and_then(|rs| rs.pointer("/status/replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let available = sum("availableReplicas");
    let now = crate::api::timestamp();
    let condition = |kind: &str, ok: bool, reason: &str, message: String| {
        json!({"type": kind, "status": if ok { "True" } else { "False" }, "reason": reason,
            "message": message, "lastUpdateTime": now, "lastTransitionTime": now})
    };
    let mut conditions = vec![
        condition(
            "Available",
            available >= want,
            if available >= want {
                "MinimumReplicasAvailable"
            } else {
                "MinimumReplicasUnavailable"
            },
            if available >= want {
                "Deployment has minimum availability.".into()
            } else {
                "Deployment does not have minimum availability.".into()
            },
        ),
        condition(
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{name}\" has successfully progressed."),
        ),
    ];
    // Keep the transition times of conditions whose status did not change.
    if let Some(old) = d.pointer("/status/conditions").and_then(Value::as_array) {
        for c in &mut conditions {
            if let Some(o) = old
                .iter()
                .find(|o| o["type"] == c["type"] && o["status"] == c["status"])
            {
                c["lastTransitionTime"] = o["lastTransitionTime"].clone();
                c["lastUpdateTime"] = o["lastUpdateTime"].clone();
            }
        }
    }
    let mut status = json!({
        "observedGeneration": d.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "replicas": sum("replicas"),
        "updatedReplicas": updated,
        "readyReplicas": sum("readyReplicas"),
        "availableReplicas": available,
        "conditions": conditions,
    });
    let unavailable = (sum("replicas") - available).max(0);
    if unavailable > 0 {
        status["unavailableReplicas"] = json!(unavailable);
    }
    for zero in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ] {
        if status[zero] == json!(0) {
            if let Some(s) = status.as_object_mut() {
                s.remove(zero);
            }
        }
    }
    c.set_status(key, status)
}

/// Sets the revision annotation of a Deployment (what `kubectl rollout
/// history` and `describe` show: its current ReplicaSet's) or ReplicaSet.
fn annotate_revision(c: &Controllers, key: &ObjectKey, revision: &str) -> Result<(), ApiError> {
    c.api
        .store()
        .modify(key, |current| {
            let Some(current) = current else {
                return Ok(Change::Keep);
            };
            let path = format!("/metadata/annotations/{}", REVISION.replace('/', "~1"));
            if current.pointer(&path).and_then(Value::as_str) == Some(revision) {
                return Ok(Change::Keep);
            }
            let mut next = current.clone();
            if !next["metadata"]["annotations"].is_object() {
                next["metadata"]["annotations"] = json!({});
            }
            next["metadata"]["annotations"][REVISION] = json!(revision);
            Ok(Change::Put(next))
        })
        .map(|_| ())
}

fn scale(c: &Controllers, key: &ObjectKey, replicas: i64) -> Result<(), ApiError> {
    c.api
        .store()
        .modify(key, |current| {
            let Some(current) = current else {
                return Ok(Change::Keep);
            };
            let mut next = current.clone();
            next["spec"]["replicas"] = json!(replicas);
            if !next["metadata"]["annotations"].is_object() {
                next["metadata"]["annotations"] = json!({});
            }
            next["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
                json!(replicas.to_string());
            Ok(Change::Put(next))
        })
        .map(|_| ())
}

/// Reconciles a ReplicaSet.
pub fn replicaset(c: &Controllers, key: &ObjectKey) -> Result<(), ApiError> {
    let store = c.api.store();
    let Some(rs) = store.get(key) else {
        return Ok(());
    };
    let pods = dependents(c, &rs, Resource::Pods);
    let mut owned: Vec<&Value> = owned_by(&pods, &rs)
        .into_iter()
        .filter(|p| !terminating(p))
        .collect();
    let want = usize::try_from(replicas(&rs)).unwrap_or(0);
    if owned.len() < want {
        let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
        for _ in owned.len()..want {
            let mut metadata = template.get("metadata").cloned().unwrap_or(json!({}));
            metadata["generateName"] = json!(format!("{}-", key.name));
            metadata["ownerReferences"] = owner_reference(Resource::ReplicaSets, &rs);
            if let Some(m) = metadata.as_object_mut() {
                m.remove("name");
            }
            let pod = json!({ "metadata": metadata, "spec": template.get("spec").cloned().unwrap_or(json!({})) });
            c.api
                .create(Resource::Pods, Some(&key.namespace), pod, Api::internal())?;
        }
    } else if owned.len() > want {
        // The real controller deletes unscheduled, then not-ready, then the
        // newest pods first.
        owned.sort_by_key(|p| {
            let bound = p
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            let created = p
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            (bound, ready(p), std::cmp::Reverse(created))
        });
        for pod in &owned[..owned.len() - want] {
            let path = crate::request::ObjectPath {
                resource: Resource::Pods,
                namespace: Some(key.namespace.clone()),
                name: Some(name_of(pod).to_string()),
                subresource: None,
            };
            match c.api.delete(&path, None) {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    let pods = dependents(c, &rs, Resource::Pods);
    let active: Vec<&Value> = owned_by(&pods, &rs)
        .into_iter()
        .filter(|p| !terminating(p))
        .collect();
    let selector = rs
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(LabelSelector::from_map);
    let labeled = active
        .iter()
        .filter(|p| selector.as_ref().is_none_or(|s| s.matches_object(p)))
        .count();
    let ready_count = active.iter().filter(|p| ready(p)).count();
    let mut status = json!({
        "replicas": active.len(),
        "fullyLabeledReplicas": labeled,
        "readyReplicas": ready_count,
        "availableReplicas": ready_count,
        "observedGeneration": rs.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
    });
    for zero in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
        if status[zero] == json!(0) {
            if let Some(s) = status.as_object_mut() {
                s.remove(zero);
            }
        }
    }
    c.set_status(key, status)
}
