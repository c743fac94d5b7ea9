//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
//! strategic merge patch (what client-side `kubectl apply`, `edit`, `label`
//! and `scale` send) and server-side apply.

mod strategic;

use serde_json::Value;

use crate::status::ApiError;

pub use strategic::strategic_merge;

/// The patch types of the `Content-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// From a Content-Type header value (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Result<PatchType, ApiError> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Applies a patch body to a copy of `current`.
pub fn apply(kind: PatchType, current: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let bad = |e: &dyn std::fmt::Display| ApiError::bad_request(format!("invalid patch: {e}"));
    let mut target = current.clone();
    match kind {
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body).map_err(|e| bad(&e))?;
            json_patch::patch(&mut target, &patch).map_err(|e| ApiError {
                code: 422,
                reason: "Invalid",
                ..bad(&e)
            })?;
        }
        PatchType::Merge => {
            let patch: Value = serde_json::from_slice(body).map_err(|e| bad(&e))?;
            json_patch::merge(&mut target, &patch);
        }
        PatchType::Strategic | PatchType::Apply => {
            // kubectl sends server-side apply configurations as JSON, which
            // is YAML too; a YAML-only body is refused as undecodable.
            let patch: Value = serde_json::from_slice(body).map_err(|e| bad(&e))?;
            if !patch.is_object() {
                return Err(bad(&"a strategic merge patch must be an object"));
            }
            strategic_merge(&mut target, &patch);
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests;
