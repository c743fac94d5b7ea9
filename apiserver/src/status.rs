//! Refusals as Kubernetes `Status` objects, so kubectl prints its usual
//! errors (`Error from server (NotFound): pods "x" not found`).

use serde_json::{json, Value};

use crate::resources::Resource;

/// Why a request was refused, with the HTTP code and Kubernetes reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// The `reason` field (`NotFound`, `AlreadyExists`, `Conflict`, ...).
    pub reason: &'static str,
    /// The human message kubectl prints.
    pub message: String,
    /// `details`: the object's name, group and kind, and field causes
    /// (boxed: errors travel in every `Result` of the write path).
    pub details: Option<Box<Details>>,
}

/// The `details` of a Status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Details {
    /// The object's name.
    pub name: String,
    /// The resource's group ("" for core).
    pub group: &'static str,
    /// The resource's plural (Kubernetes puts it in `kind`).
    pub kind: &'static str,
    /// Field errors: (reason, message, field path).
    pub causes: Vec<Cause>,
}

/// One field error of an Invalid status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: &'static str,
    /// What is wrong.
    pub message: String,
    /// The field path, e.g. `spec.ports[0].port`.
    pub field: String,
}

fn details(resource: Resource, name: &str) -> Option<Box<Details>> {
    Some(Box::new(Details {
        name: name.to_string(),
        group: resource.group_version().group,
        kind: resource.plural(),
        causes: Vec::new(),
    }))
}

impl ApiError {
    /// 404 NotFound for one object.
    pub fn not_found(resource: Resource, name: &str) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{resource} \"{name}\" not found"),
            details: details(resource, name),
        }
    }

    /// 404 for a path that names nothing served.
    pub fn no_route(path: &str) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("the server could not find the requested resource ({path})"),
            details: None,
        }
    }

    /// 409 AlreadyExists on create.
    pub fn already_exists(resource: Resource, name: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{resource} \"{name}\" already exists"),
            details: details(resource, name),
        }
    }

    /// 409 Conflict on a stale resourceVersion.
    pub fn conflict(resource: Resource, name: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            details: details(resource, name),
        }
    }

    /// 422 Invalid with the field causes, worded as the real API server words it.
    pub fn invalid(resource: Resource, name: &str, causes: Vec<Cause>) -> ApiError {
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        // An Invalid status names the Kind (kubectl prints "The Service
        // "x" is invalid"), where NotFound and friends name the resource.
        let d = Some(Box::new(Details {
            name: name.to_string(),
            group: resource.group_version().group,
            kind: resource.kind(),
            causes,
        }));
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{} \"{name}\" is invalid: {joined}", resource.kind()),
            details: d,
        }
    }

    /// 400 BadRequest (undecodable body, bad query).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: message.into(),
            details: None,
        }
    }

    /// 415 for a request body neither JSON nor Kubernetes protobuf.
    pub fn unsupported_body(content_type: &str) -> ApiError {
        ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!("the body of the request was in an unknown format - accepted media types include: application/json, application/vnd.kubernetes.protobuf (got {content_type})"),
            details: None,
        }
    }

    /// 415 UnsupportedMediaType for a patch type not served.
    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"),
            details: None,
        }
    }

    /// 410 Gone with reason Expired: a watch from a resourceVersion older
    /// than the kept history; the client relists.
    pub fn expired(rv: u64, oldest: u64) -> ApiError {
        ApiError {
            code: 410,
            reason: "Expired",
            message: format!("too old resource version: {rv} ({oldest})"),
            details: None,
        }
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> ApiError {
        ApiError {
            code: 401,
            reason: "Unauthorized",
            message: "Unauthorized".into(),
            details: None,
        }
    }

    /// 403 Forbidden, worded as RBAC denials are.
    pub fn forbidden(
        user: &str,
        verb: &str,
        resource: Resource,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> ApiError {
        let gv = resource.group_version();
        let subject = match name {
            Some(n) => format!("{resource} \"{n}\""),
            None => resource.to_string(),
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                resource.plural(),
                gv.group
            ),
            details: details(resource, name.unwrap_or("")),
        }
    }

    /// 500 InternalError (storage failure).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 500,
            reason: "InternalError",
            message: message.into(),
            details: None,
        }
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            let mut details = json!({ "name": d.name, "kind": d.kind });
            if !d.group.is_empty() {
                details["group"] = json!(d.group);
            }
            if !d.causes.is_empty() {
                details["causes"] = d
                    .causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
            }
            status["details"] = details;
        }
        status
    }
}

/// A Success status (what a delete of a collection or some deletes answer).
pub fn success(resource: Resource, name: &str, uid: &str) -> Value {
    let mut details = json!({ "name": name, "kind": resource.plural(), "uid": uid });
    let group = resource.group_version().group;
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}
