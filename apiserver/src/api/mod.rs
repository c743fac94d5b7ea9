//! The verbs over the store: get, list, create, update, patch, delete and
//! the status and scale subresources, with the write path the real API
//! server runs (decode, defaults, allocation, validation, then one atomic
//! store write), so nothing is half-applied.

mod allocator;
mod defaults;
mod services;
mod validation;

use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::Ipv4Net;
use serde_json::{json, Value};

pub use allocator::{AllocError, ServiceAllocator, NODE_PORTS};

use crate::patch::{self, PatchType};
use crate::request::{ObjectPath, Query};
use crate::resources::{Resource, Subresource};
use crate::status::ApiError;
use crate::store::{now_rfc3339, object_rv, Change, ObjectKey, Store, Written};

/// Settings of the API layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The Service CIDR ClusterIPs come from.
    pub service_cidr: Ipv4Net,
    /// Whether a pod bound to a node is deleted gracefully (it becomes
    /// Terminating and its kubelet removes it) or at once.
    pub graceful_pod_deletion: bool,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            service_cidr: Ipv4Net::new(std::net::Ipv4Addr::new(10, 96, 0, 0), 12)
                .unwrap_or_default(),
            graceful_pod_deletion: true,
        }
    }
}

/// How unknown fields in a written object are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Dropped silently.
    Ignore,
    /// Dropped with a warning (the default).
    #[default]
    Warn,
    /// Refused with 400.
    Strict,
}

/// Options of a write.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: everything but the store write.
    pub dry_run: bool,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
}

/// A write's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The object as stored (or as it would be, for a dry run).
    pub object: Arc<Value>,
    /// Whether it was created (201 rather than 200).
    pub created: bool,
    /// Warnings for the `Warning` header (unknown fields).
    pub warnings: Vec<String>,
}

/// The API over one store.
pub struct Api {
    store: Arc<Store>,
    services: Mutex<ServiceAllocator>,
    config: ApiConfig,
}

/// Five characters from Kubernetes' name-suffix alphabet (no vowels, no
/// look-alikes), as generateName and ReplicaSet pod names use.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = [0u8; 5];
    if getrandom::fill(&mut bytes).is_err() {
        let n = chrono::Utc::now().timestamp_subsec_nanos().to_le_bytes();
        bytes[..4].copy_from_slice(&n);
    }
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// `metadata.name` of an object.
pub fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl Api {
    /// The API over a store, with allocators rebuilt from its Services.
    pub fn new(store: Arc<Store>, config: ApiConfig) -> Api {
        let mut services = ServiceAllocator::new(config.service_cidr);
        for svc in store.list(Resource::Services, None).0 {
            let key = ObjectKey::new(
                Resource::Services,
                svc.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                name_of(&svc),
            );
            services.record(&key, Some(&svc));
        }
        Api {
            store,
            services: Mutex::new(services),
            config,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// The first address of the service CIDR (the `kubernetes` Service's).
    pub fn allocator_first_ip(&self) -> std::net::Ipv4Addr {
        self.allocator().first_ip()
    }

    fn allocator(&self) -> MutexGuard<'_, ServiceAllocator> {
        self.services.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key a path names (its name required).
    pub fn key(path: &ObjectPath) -> Result<ObjectKey, ApiError> {
        let name = path
            .name
            .as_deref()
            .ok_or_else(|| ApiError::method_not_allowed("a name is required"))?;
        Ok(ObjectKey::new(
            path.resource,
            path.namespace.as_deref().unwrap_or(""),
            name,
        ))
    }

    /// GET of one object (or its scale).
    pub fn get(&self, path: &ObjectPath) -> Result<Arc<Value>, ApiError> {
        let key = Api::key(path)?;
        let object = self
            .store
            .get(&key)
            .ok_or_else(|| ApiError::not_found(key.resource, &key.name))?;
        match path.subresource {
            Some(Subresource::Scale) => Ok(Arc::new(scale_of(&object))),
            _ => Ok(object),
        }
    }

    /// LIST, filtered by the query's selectors.
    pub fn list(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        query: &Query,
    ) -> (Vec<Arc<Value>>, u64) {
        let (objects, rv) = self.store.list(resource, namespace);
        let objects = objects
            .into_iter()
            .filter(|o| query.labels.matches_object(o) && query.fields.matches(o))
            .collect();
        (objects, rv)
    }

    /// The common write path: `f` turns the current object into the
    /// candidate (None: no change); then decode, defaults, allocation,
    /// validation, and one atomic store write.
    fn write<F>(&self, key: &ObjectKey, options: WriteOptions, f: F) -> Result<Outcome, ApiError>
    where
        F: FnOnce(Option<&Value>) -> Result<Option<Value>, ApiError>,
    {
        let resource = key.resource;
        let mut warnings = Vec::new();
        let mut dry = None;
        // Only Service writes allocate; other writes must not wait for a
        // Service's commit (they share fsyncs in the store).
        let mut alloc = (resource == Resource::Services).then(|| self.allocator());
        let result = self.store.modify(key, |current| {
            let Some(mut new) = f(current)? else {
                return Ok(Change::Keep);
            };
            let unknown = validation::decode(resource, &new)?;
            match options.field_validation {
                FieldValidation::Strict if !unknown.is_empty() => {
                    let list: Vec<String> = unknown
                        .iter()
                        .map(|f| format!("unknown field \"{f}\""))
                        .collect();
                    return Err(ApiError::bad_request(format!(
                        "strict decoding error: {}",
                        list.join(", ")
                    )));
                }
                FieldValidation::Warn => {
                    warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")))
                }
                _ => {}
            }
            defaults::apply(resource, &mut new);
            if resource == Resource::Services {
                if let Some(alloc) = alloc.as_deref_mut() {
                    services::allocate(alloc, key, current, &mut new)?;
                }
            }
            validation::validate(resource, &new, current)?;
            if let Some(cur) = current {
                if unchanged(cur, &new) {
                    return Ok(Change::Keep);
                }
            }
            if options.dry_run {
                dry = Some(new);
                return Ok(Change::Keep);
            }
            Ok(Change::Put(new))
        });
        let written = match result {
            Ok(w) => w,
            Err(e) => {
                if let Some(alloc) = alloc.as_deref_mut() {
                    alloc.rollback();
                }
                return Err(e);
            }
        };
        if let Some(new) = dry {
            if let Some(alloc) = alloc.as_deref_mut() {
                alloc.rollback();
            }
            return Ok(Outcome {
                object: Arc::new(new),
                created: false,
                warnings,
            });
        }
        let (object, created) = match written {
            Written::Stored { object, created } => (object, created),
            Written::Unchanged(Some(object)) => (object, false),
            Written::Unchanged(None) => return Err(ApiError::not_found(resource, &key.name)),
            Written::Deleted(object) => (object, false),
        };
        if let Some(alloc) = alloc.as_deref_mut() {
            alloc.record(key, Some(&object));
        }
        Ok(Outcome {
            object,
            created,
            warnings,
        })
    }

    /// POST to a collection.
    pub fn create(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        mut body: Value,
        options: WriteOptions,
    ) -> Result<Outcome, ApiError> {
        check_kind(resource, &body)?;
        let namespace = match (resource.namespaced(), namespace, body.pointer("/metadata/namespace").and_then(Value::as_str)) {
            (false, _, _) => String::new(),
            (true, Some(path), Some(b)) if !b.is_empty() && b != path => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            (true, Some(path), _) => path.to_string(),
            (true, None, Some(b)) if !b.is_empty() => b.to_string(),
            (true, None, _) => "default".to_string(),
        };
        if resource.namespaced()
            && self
                .store
                .get(&ObjectKey::new(Resource::Namespaces, "", &namespace))
                .is_none()
        {
            return Err(ApiError::not_found(Resource::Namespaces, &namespace));
        }
        let mut name = name_of(&body).to_string();
        let generate = body
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .map(str::to_string);
        if name.is_empty() {
            if let Some(prefix) = &generate {
                name = format!("{prefix}{}", random_suffix());
            }
        }
        let meta = &mut body["metadata"];
        if let Some(m) = meta.as_object_mut() {
            for server_owned in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
            ] {
                m.remove(server_owned);
            }
        }
        if resource.subresources().contains(&Subresource::Status) && resource != Resource::Nodes {
            if let Some(o) = body.as_object_mut() {
                o.remove("status");
            }
        }
        body["metadata"]["name"] = json!(name);
        let key = ObjectKey::new(resource, &namespace, &name);
        self.write(&key, options, |current| match current {
            Some(_) => Err(ApiError::already_exists(resource, &name)),
            None => Ok(Some(body)),
        })
        .map(|o| Outcome { created: true, ..o })
    }

    /// PUT of an object or its status or scale.
    pub fn update(
        &self,
        path: &ObjectPath,
        body: Value,
        options: WriteOptions,
    ) -> Result<Outcome, ApiError> {
        let key = Api::key(path)?;
        if path.subresource != Some(Subresource::Scale) {
            check_kind(key.resource, &body)?;
            let body_name = name_of(&body);
            if !body_name.is_empty() && body_name != key.name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({})",
                    key.name
                )));
            }
        }
        let sub = path.subresource;
        self.write(&key, options, |current| {
            let current = current.ok_or_else(|| ApiError::not_found(key.resource, &key.name))?;
            precondition(&key, current, &body)?;
            Ok(Some(merge_subresource(key.resource, sub, current, body)))
        })
        .map(|o| as_subresource(sub, o))
    }

    /// PATCH of an object or its status or scale. A server-side apply of a
    /// missing object creates it.
    pub fn patch(
        &self,
        path: &ObjectPath,
        kind: PatchType,
        body: &[u8],
        options: WriteOptions,
    ) -> Result<Outcome, ApiError> {
        let key = Api::key(path)?;
        if kind == PatchType::Apply && self.store.get(&key).is_none() {
            let object: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid apply configuration: {e}")))?;
            return self.create(key.resource, path.namespace.as_deref(), object, options);
        }
        let sub = path.subresource;
        self.write(&key, options, |current| {
            let current = current.ok_or_else(|| ApiError::not_found(key.resource, &key.name))?;
            let base = match sub {
                Some(Subresource::Scale) => scale_of(current),
                _ => current.clone(),
            };
            let patched = patch::apply(kind, &base, body)?;
            if patched.pointer("/metadata/resourceVersion")
                != base.pointer("/metadata/resourceVersion")
            {
                precondition(&key, current, &patched)?;
            }
            Ok(Some(merge_subresource(key.resource, sub, current, patched)))
        })
        .map(|o| as_subresource(sub, o))
    }

    /// DELETE of one object. A pod bound to a node with a grace period
    /// becomes Terminating (its kubelet deletes it); the rest go at once.
    pub fn delete(
        &self,
        path: &ObjectPath,
        grace_seconds: Option<i64>,
    ) -> Result<Outcome, ApiError> {
        let key = Api::key(path)?;
        if key.resource == Resource::Namespaces
            && crate::bootstrap::PROTECTED.contains(&key.name.as_str())
        {
            return Err(ApiError {
                code: 403,
                reason: "Forbidden",
                message: format!(
                    "namespaces \"{}\" is forbidden: this namespace may not be deleted",
                    key.name
                ),
                details: None,
            });
        }
        let graceful = self.config.graceful_pod_deletion && key.resource == Resource::Pods;
        let mut gone = None;
        let result = self.store.modify(&key, |current| {
            let current = current.ok_or_else(|| ApiError::not_found(key.resource, &key.name))?;
            let bound = current
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            let grace = grace_seconds
                .or_else(|| {
                    current
                        .pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                })
                .unwrap_or(30);
            let terminating = current
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null());
            if graceful && bound && grace > 0 {
                if terminating {
                    return Ok(Change::Keep);
                }
                let mut next = current.clone();
                let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
                next["metadata"]["deletionTimestamp"] =
                    json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                next["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                return Ok(Change::Put(next));
            }
            gone = Some(());
            Ok(Change::Delete)
        })?;
        let object = match result {
            Written::Stored { object, .. } | Written::Deleted(object) => object,
            Written::Unchanged(Some(object)) => object,
            Written::Unchanged(None) => return Err(ApiError::not_found(key.resource, &key.name)),
        };
        if key.resource == Resource::Services && gone.is_some() {
            self.allocator().record(&key, None);
        }
        if key.resource == Resource::Namespaces {
            self.empty_namespace(&key.name);
        }
        Ok(Outcome {
            object,
            created: false,
            warnings: Vec::new(),
        })
    }

    /// Removes every object of a deleted namespace (the namespace
    /// controller's job, done at once here).
    fn empty_namespace(&self, namespace: &str) {
        for resource in Resource::ALL.into_iter().filter(|r| r.namespaced()) {
            for object in self.store.list(resource, Some(namespace)).0 {
                let key = ObjectKey::new(resource, namespace, name_of(&object));
                if self.store.modify(&key, |_| Ok(Change::Delete)).is_ok()
                    && resource == Resource::Services
                {
                    self.allocator().record(&key, None);
                }
            }
        }
    }

    /// Writes as the controllers do: no field validation warnings.
    pub fn internal() -> WriteOptions {
        WriteOptions {
            dry_run: false,
            field_validation: FieldValidation::Ignore,
        }
    }
}

/// A write to `/scale` answers the Scale, not the whole object.
fn as_subresource(sub: Option<Subresource>, outcome: Outcome) -> Outcome {
    match sub {
        Some(Subresource::Scale) => Outcome {
            object: Arc::new(scale_of(&outcome.object)),
            ..outcome
        },
        _ => outcome,
    }
}

/// Refuses a body whose apiVersion/kind name another type.
fn check_kind(resource: Resource, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    let expected = resource.group_version().api_version();
    if let Some(v) = body.get("apiVersion").and_then(Value::as_str) {
        if v != expected {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
    }
    if let Some(k) = body.get("kind").and_then(Value::as_str) {
        if k != resource.kind() {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                resource.kind()
            )));
        }
    }
    Ok(())
}

/// 409 when the body names a resourceVersion other than the current one.
fn precondition(key: &ObjectKey, current: &Value, body: &Value) -> Result<(), ApiError> {
    let wanted = body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    match wanted {
        Some(rv) if rv.parse().ok() != object_rv(current) => {
            Err(ApiError::conflict(key.resource, &key.name))
        }
        _ => Ok(()),
    }
}

/// The candidate of a write to the object, its status or its scale: the
/// main resource keeps the current status, the status subresource changes
/// only the status, the scale subresource only `spec.replicas`. Server-owned
/// metadata (deletionTimestamp) always comes from the current object.
fn merge_subresource(
    resource: Resource,
    sub: Option<Subresource>,
    current: &Value,
    body: Value,
) -> Value {
    let mut next = match sub {
        None => {
            let mut next = body;
            if resource.subresources().contains(&Subresource::Status) {
                match current.get("status") {
                    Some(s) => next["status"] = s.clone(),
                    None => {
                        if let Some(o) = next.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            next
        }
        Some(Subresource::Status) => {
            let mut next = current.clone();
            next["status"] = body.get("status").cloned().unwrap_or(Value::Null);
            next
        }
        Some(Subresource::Scale) => {
            let mut next = current.clone();
            next["spec"]["replicas"] = body.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
            next
        }
    };
    for owned in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "uid",
        "creationTimestamp",
    ] {
        match current.pointer(&format!("/metadata/{owned}")) {
            Some(v) => next["metadata"][owned] = v.clone(),
            None => {
                if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove(owned);
                }
            }
        }
    }
    next
}

/// Whether a candidate equals the current object but for the metadata the
/// store stamps (a no-op write keeps its resourceVersion).
fn unchanged(current: &Value, new: &Value) -> bool {
    let mut candidate = new.clone();
    for f in ["resourceVersion", "generation", "managedFields"] {
        match current.pointer(&format!("/metadata/{f}")) {
            Some(v) => candidate["metadata"][f] = v.clone(),
            None => {
                if let Some(m) = candidate.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove(f);
                }
            }
        }
    }
    let kind = |v: &Value| (v.get("apiVersion").cloned(), v.get("kind").cloned());
    if kind(&candidate) != kind(current) {
        candidate["apiVersion"] = current["apiVersion"].clone();
        candidate["kind"] = current["kind"].clone();
    }
    candidate == *current
}

/// The autoscaling/v1 Scale of a Deployment or ReplicaSet.
fn scale_of(object: &Value) -> Value {
    let selector = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            let mut pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            pairs.sort();
            pairs.join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "uid": object["metadata"]["uid"],
            "resourceVersion": object["metadata"]["resourceVersion"],
            "creationTimestamp": object["metadata"]["creationTimestamp"],
        },
        "spec": { "replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(1)) },
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// A timestamp for status fields (conditions' lastTransitionTime).
pub fn timestamp() -> Value {
    json!(now_rfc3339())
}

#[cfg(test)]
mod tests;
