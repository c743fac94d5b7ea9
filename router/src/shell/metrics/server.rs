//! The HTTP server of `/metrics` and `/healthz`: its own thread with a
//! small tokio runtime (hyper), so the packet loop never waits on a
//! client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use crossbeam_channel::Sender;
use http_body_util::Full;
use hyper::{Method, Request as HttpRequest, Response as HttpResponse, StatusCode};
use log::{debug, warn};

use super::encode::{metrics_text, Snapshot};
use super::Programming;
use crate::protocol::{Request, Response};
use crate::shell::control_server::{ask_loop, Query};

/// What the server needs to answer.
struct Context {
    queries: Sender<Query>,
    waker: Arc<mio::Waker>,
    programming: Programming,
    capacity: usize,
}

/// Binds `addr` now (so a taken port is reported at start) and serves
/// `/metrics` and `/healthz` on a thread of its own.
pub fn spawn(
    addr: SocketAddr,
    queries: Sender<Query>,
    waker: Arc<mio::Waker>,
    programming: Programming,
    capacity: usize,
) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let context = Arc::new(Context {
        queries,
        waker,
        programming,
        capacity,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    thread::Builder::new()
        .name("metrics".into())
        .spawn(move || runtime.block_on(serve(listener, context)))?;
    Ok(local)
}

async fn serve(listener: std::net::TcpListener, context: Arc<Context>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!("metrics: cannot serve: {e}");
            return;
        }
    };
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                debug!("metrics: accept: {e}");
                continue;
            }
        };
        let context = Arc::clone(&context);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let context = Arc::clone(&context);
                async move { Ok::<_, Infallible>(respond(&context, &req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(tcp);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                debug!("metrics: connection: {e}");
            }
        });
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> HttpResponse<Full<Bytes>> {
    let mut response = HttpResponse::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

async fn respond<B>(context: &Arc<Context>, req: &HttpRequest<B>) -> HttpResponse<Full<Bytes>> {
    if req.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    let path = req.uri().path().to_owned();
    if path != "/metrics" && path != "/healthz" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "404 page not found\n".into(),
        );
    }
    // The loop answers within its bounded wait; that wait blocks, so it
    // runs off the runtime's only thread.
    let ctx = Arc::clone(context);
    let answer =
        tokio::task::spawn_blocking(move || ask_loop(Request::Stats, &ctx.queries, &ctx.waker))
            .await
            .ok();
    match (path.as_str(), answer) {
        ("/metrics", Some(Response::Stats { stats, flows })) => {
            let snapshot = Snapshot {
                stats: &stats,
                flows,
                capacity: context.capacity,
            };
            reply(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics_text(&snapshot, &context.programming),
            )
        }
        ("/healthz", Some(Response::Stats { .. })) => {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            reply(
                StatusCode::OK,
                "application/json",
                format!("{{\"lastUpdated\": \"{now}\",\"currentTime\": \"{now}\"}}\n"),
            )
        }
        (_, other) => {
            let why = match other {
                Some(Response::Error(e)) => e.to_string(),
                _ => "the packet loop did not answer".to_owned(),
            };
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("router unhealthy: {why}\n"),
            )
        }
    }
}
