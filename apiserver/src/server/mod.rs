//! The HTTP front: authentication, path parsing, content negotiation
//! (JSON or Table), and the dispatch of each verb to the [`Api`].

mod body;
pub mod netns;
pub mod tls;
mod watch;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

pub use body::Body;

use crate::api::{Api, FieldValidation, Outcome, WriteOptions};
use crate::auth::{allows, Tokens};
use crate::patch::PatchType;
use crate::request::{parse_path, ObjectPath, Query, Target};
use crate::status::{self, ApiError};
use crate::table::{self, IncludeObject};
use crate::{discovery, openapi, protobuf};

/// The largest request body accepted (the real API server's limit).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// What the HTTP front serves.
pub struct Frontend {
    /// The API.
    pub api: Arc<Api>,
    /// Bearer tokens; None serves everyone as admin (tests, plain HTTP).
    pub tokens: Option<Tokens>,
    /// The address clients reach this server at (for `/api`).
    pub advertise: String,
}

fn header(req: &Request<hyper::body::Incoming>, name: hyper::header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Whether the client asked for a meta.k8s.io Table.
fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"))
    })
}

impl Frontend {
    /// Answers one request.
    pub async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let response = match self.dispatch(req).await {
            Ok(r) => r,
            Err(e) => body::error(&e),
        };
        log::debug!("{method} {path} -> {}", response.status());
        response
    }

    async fn dispatch(
        &self,
        req: Request<hyper::body::Incoming>,
    ) -> Result<Response<Body>, ApiError> {
        let identity = match &self.tokens {
            Some(tokens) => Some(tokens.authenticate(header(&req, hyper::header::AUTHORIZATION))?),
            None => None,
        };
        let target = parse_path(req.uri().path())?;
        let ok = |v: Value| Ok(body::json(StatusCode::OK, &v));
        if req.method() != Method::GET && !matches!(target, Target::Object(_)) {
            return Err(ApiError::method_not_allowed("only GET is served here"));
        }
        let path = match target {
            Target::Version => return ok(discovery::version()),
            Target::CoreVersions => return ok(discovery::core_versions(&self.advertise)),
            Target::Groups => return ok(discovery::groups()),
            Target::Group(gv) => return ok(discovery::api_group(gv)),
            Target::ResourceList(gv) => return ok(discovery::resource_list(gv)),
            Target::Health => return Ok(body::text(StatusCode::OK, "ok")),
            Target::OpenApiV3 => return ok(openapi::root()),
            Target::OpenApiV3Group(gv) => {
                return openapi::group_version(&gv)
                    .map_or_else(|| Err(ApiError::no_route(req.uri().path())), ok)
            }
            Target::OpenApi => return Err(ApiError::no_route(req.uri().path())),
            Target::Object(path) => path,
        };
        let query = Query::parse(req.uri().query())?;
        let verb = verb(req.method(), &path, &query)?;
        if let Some(identity) = &identity {
            if !allows(identity, verb) {
                return Err(ApiError::forbidden(
                    &identity.user,
                    verb,
                    path.resource,
                    path.name.as_deref(),
                    path.namespace.as_deref(),
                ));
            }
        }
        if !path.resource.client_writable() && !matches!(verb, "get" | "list" | "watch") {
            return Err(ApiError::method_not_allowed(format!(
                "{} are maintained by the endpoints controller from the EndpointSlices and are read-only",
                path.resource
            )));
        }
        let table = wants_table(header(&req, hyper::header::ACCEPT));
        let include = IncludeObject::parse(
            req.uri()
                .query()
                .and_then(|q| {
                    form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "includeObject")
                })
                .map(|(_, v)| v.into_owned())
                .as_deref(),
        );
        let options = WriteOptions {
            dry_run: query.dry_run,
            field_validation: field_validation(req.uri().query()),
        };
        let content_type = header(&req, hyper::header::CONTENT_TYPE)
            .unwrap_or("application/json")
            .to_string();
        let api = &self.api;
        let protobuf = content_type.starts_with(protobuf::MEDIA_TYPE);
        if matches!(verb, "create" | "update")
            && !protobuf
            && !content_type.starts_with("application/json")
        {
            return Err(ApiError::unsupported_body(&content_type));
        }
        match verb {
            "get" => {
                let object = api.get(&path)?;
                if table && path.subresource.is_none() {
                    let rv = api.store().resource_version();
                    return ok(table::table(
                        path.resource,
                        &[&object],
                        rv,
                        include,
                        chrono::Utc::now(),
                    ));
                }
                ok((*object).clone())
            }
            "list" => {
                let (objects, rv) = api.list(path.resource, path.namespace.as_deref(), &query);
                if table {
                    let refs: Vec<&Value> = objects.iter().map(|o| o.as_ref()).collect();
                    return ok(table::table(
                        path.resource,
                        &refs,
                        rv,
                        include,
                        chrono::Utc::now(),
                    ));
                }
                let gv = path.resource.group_version();
                ok(json!({
                    "kind": format!("{}List", path.resource.kind()),
                    "apiVersion": gv.api_version(),
                    "metadata": { "resourceVersion": rv.to_string() },
                    "items": objects.iter().map(|o| o.as_ref()).collect::<Vec<_>>(),
                }))
            }
            "watch" => {
                let spec = watch::WatchSpec {
                    resource: path.resource,
                    namespace: path.namespace.clone(),
                    query,
                    table,
                };
                let rx = watch::start(api.store(), spec);
                Ok(body::stream(rx, "application/json"))
            }
            "create" => {
                let body = read_object(req, path.resource, protobuf).await?;
                written(api.create(path.resource, path.namespace.as_deref(), body, options)?)
            }
            "update" => {
                let body = read_object(req, path.resource, protobuf).await?;
                written(api.update(&path, body, options)?)
            }
            "patch" => {
                let kind = PatchType::from_content_type(&content_type)?;
                let bytes = read_body(req).await?;
                written(api.patch(&path, kind, &bytes, options)?)
            }
            "delete" => {
                let grace = delete_grace(&query_grace(req.uri().query()), read_body(req).await?)?;
                let outcome = api.delete(&path, grace)?;
                ok((*outcome.object).clone())
            }
            "deletecollection" => {
                let (objects, _) = api.list(path.resource, path.namespace.as_deref(), &query);
                for o in &objects {
                    let mut one = path.clone();
                    one.namespace = o
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    one.name = Some(crate::api::name_of(o).to_string());
                    match api.delete(&one, None) {
                        Ok(_) => {}
                        Err(e) if e.code == 404 => {}
                        Err(e) => return Err(e),
                    }
                }
                ok(status::success(path.resource, "", ""))
            }
            other => Err(ApiError::method_not_allowed(format!(
                "verb {other} is not served"
            ))),
        }
    }
}

/// The Kubernetes verb of a request.
fn verb(method: &Method, path: &ObjectPath, query: &Query) -> Result<&'static str, ApiError> {
    let named = path.name.is_some();
    Ok(match (method.as_str(), named) {
        ("GET", true) => "get",
        ("GET", false) if query.watch => "watch",
        ("GET", false) => "list",
        ("POST", false) if path.subresource.is_none() => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) if path.subresource.is_none() => "delete",
        ("DELETE", false) => "deletecollection",
        (m, _) => {
            return Err(ApiError::method_not_allowed(format!(
                "{m} is not allowed here"
            )))
        }
    })
}

/// `fieldValidation=Strict|Warn|Ignore` (Warn when absent).
fn field_validation(query: Option<&str>) -> FieldValidation {
    let value = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "fieldValidation")
            .map(|(_, v)| v.into_owned())
    });
    match value.as_deref() {
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        _ => FieldValidation::Warn,
    }
}

fn query_grace(query: Option<&str>) -> Option<String> {
    query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "gracePeriodSeconds")
            .map(|(_, v)| v.into_owned())
    })
}

/// The grace period of a delete, from the query or the DeleteOptions body.
fn delete_grace(query: &Option<String>, body: Bytes) -> Result<Option<i64>, ApiError> {
    if let Some(q) = query {
        return q
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request("invalid gracePeriodSeconds"));
    }
    if body.is_empty() {
        return Ok(None);
    }
    let options: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
    Ok(options.get("gracePeriodSeconds").and_then(Value::as_i64))
}

fn written(outcome: Outcome) -> Result<Response<Body>, ApiError> {
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = body::json(status, &outcome.object);
    for w in &outcome.warnings {
        let value = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
            response.headers_mut().append(hyper::header::WARNING, v);
        }
    }
    Ok(response)
}

async fn read_body(req: Request<hyper::body::Incoming>) -> Result<Bytes, ApiError> {
    Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))
}

/// A created or updated object: JSON, or protobuf from a typed client.
async fn read_object(
    req: Request<hyper::body::Incoming>,
    resource: crate::resources::Resource,
    protobuf: bool,
) -> Result<Value, ApiError> {
    let bytes = read_body(req).await?;
    if protobuf {
        return protobuf::decode(resource, &bytes);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("the body of the request is not valid JSON: {e}"))
    })
}

/// Serves HTTP/1.1 on one accepted connection (plain or TLS).
pub async fn serve_connection<IO>(frontend: Arc<Frontend>, io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let frontend = frontend.clone();
        async move { Ok::<_, std::convert::Infallible>(frontend.handle(req).await) }
    });
    let io = hyper_util::rt::TokioIo::new(io);
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await
    {
        log::debug!("connection: {e}");
    }
}

/// Accepts connections forever on a listener, plain HTTP or TLS.
pub async fn serve(
    listener: tokio::net::TcpListener,
    frontend: Arc<Frontend>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let frontend = frontend.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(frontend, tcp).await,
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => serve_connection(frontend, stream).await,
                    Err(e) => log::debug!("TLS handshake with {peer}: {e}"),
                },
            }
        });
    }
}
