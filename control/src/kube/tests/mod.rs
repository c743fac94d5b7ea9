//! The translation of each kind, field by field, and the mirror's changes.

mod mirror;
mod node;
mod pod;
mod service;
mod slice;
mod trigger;

use serde::de::DeserializeOwned;

/// A k8s-openapi object from JSON as the API serves it.
fn object<T: DeserializeOwned>(json: serde_json::Value) -> T {
    serde_json::from_value(json).expect("a valid object")
}
