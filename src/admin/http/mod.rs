//! The admin HTTP server: liveness, readiness and Prometheus metrics, on axum over hyper's HTTP/1.
//!
//! Routes: `GET /healthz` (200 while the process runs), `GET /readyz` (200 when partitions are
//! assigned and caught up, else 503 with the reason), `GET /metrics` (text format 0.0.4).
//! `POST /query` runs read-only SQL over the store when configured (`query`).
//! `HEAD` is accepted wherever `GET` is. A known path with another method gets 405 with
//! `Allow: GET, HEAD`; an unknown path gets 404. An HTTP/1.1 request without exactly one valid
//! `Host` gets 400 (RFC 9112 §3.2; hyper does not check it).
//!
//! One request per connection (`Connection: close`). Everything is bounded (`Limits`):
//! - open connections; when all are taken, the oldest one still sending its request head is
//!   closed to make room, so clients trickling header bytes cannot starve liveness probes; a new
//!   connection is closed at once only when every open one is past its head;
//! - time to send the head (hyper's header read timeout; the connection is closed) and its size
//!   (431);
//! - request body size (413) and the wait for each body chunk; requests to the work routes in
//!   flight (503 beyond; `/healthz` is exempt so that it never waits behind work); time to
//!   handle a request (503);
//! - the whole life of a connection, which also bounds writing the response;
//! - at shutdown, the grace period for in-flight requests.
//!
//! The caller binds the listener, loopback by default, so exposure is the configuration's decision.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use axum::http::uri::Authority;
use axum::http::{HeaderValue, StatusCode, Version};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt as _;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tracing::{debug, info, warn};

use crate::admin::metrics::Metrics;

mod query;
pub use query::QueryEndpoint;

const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const ALLOW_GET_HEAD: &str = "GET, HEAD";

/// How long the accept loop waits for an evicted connection to give its slot back.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// Bounds of the server; [`serve`] uses [`Limits::DEFAULT`], tests shrink them.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_connections: usize,
    /// Requests in flight on the work routes (everything but `/healthz`).
    max_in_flight: usize,
    /// Request line and headers.
    max_head_bytes: usize,
    max_body_bytes: usize,
    header_read_timeout: Duration,
    /// Longest wait for the next chunk of a request body.
    body_timeout: Duration,
    /// Time for a handler to produce its response.
    request_timeout: Duration,
    /// Longest a connection stays open, whatever it is doing; covers writing the response,
    /// which hyper does not time.
    connection_lifetime: Duration,
    shutdown_grace: Duration,
}

impl Limits {
    const DEFAULT: Limits = Limits {
        max_connections: 64,
        max_in_flight: 16,
        max_head_bytes: 8 * 1024,
        max_body_bytes: 64 * 1024,
        header_read_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        connection_lifetime: Duration::from_secs(30),
        shutdown_grace: Duration::from_secs(2),
    };
}

/// What handlers share.
#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    query: Option<Arc<QueryEndpoint>>,
}

/// Serves until `shutdown` completes, then stops accepting, gives in-flight requests a brief
/// grace period, and returns. Errors only if the listener is unusable from the start.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    query: Option<QueryEndpoint>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let limits = Limits::DEFAULT;
    let state = AppState { metrics, query: query.map(Arc::new) };
    serve_with(listener, router(state, &limits), shutdown, limits).await
}

/// The admin application: [`work_routes`] wrapped in the request bounds of `limits`.
fn router(state: AppState, limits: &Limits) -> Router {
    bounded(work_routes(), state, limits)
}

/// The routes that do work, each under the in-flight limit; what they need is in [`AppState`].
fn work_routes() -> Router<AppState> {
    Router::new()
        .route("/readyz", get(readyz).fallback(method_not_allowed))
        .route("/metrics", get(metrics).fallback(method_not_allowed))
        .route("/query", post(query::post_query).fallback(query::method_not_allowed))
}

/// Adds liveness, the fallbacks and every per-request bound around `work`.
fn bounded(work: Router<AppState>, state: AppState, limits: &Limits) -> Router {
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    work.route_layer(middleware::from_fn_with_state(in_flight, limit_in_flight))
        // Added after `route_layer`, so liveness never waits behind work.
        .route("/healthz", get(healthz).fallback(method_not_allowed))
        .fallback(not_found)
        // Innermost first: each `layer` wraps what is above it, fallbacks included. The body
        // limit wraps the body last, so that extractors recognise its error (413, not 400).
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limits.request_timeout))
        .layer(middleware::from_fn(edge))
        .with_state(state)
}

async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.metrics.ready() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], state.metrics.render(unix_now_ms())).into_response()
}

/// For every route of this server, which all take `GET` and `HEAD` only; a route taking
/// other methods needs its own (axum's default would write `GET,HEAD`).
async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, [(axum::http::header::ALLOW, ALLOW_GET_HEAD)], "method not allowed\n")
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Sheds instead of queueing: a scraper retries at its next interval, and a queue would hold
/// connection slots.
async fn limit_in_flight(State(in_flight): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    match in_flight.try_acquire() {
        Ok(_permit) => next.run(request).await,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy\n").into_response(),
    }
}

/// The outermost layer: rejects a bad `Host`, marks every response uncacheable, logs.
async fn edge(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = match host_problem(&request) {
        Some(problem) => {
            debug!(%method, path, problem, "admin request rejected");
            (StatusCode::BAD_REQUEST, "bad request\n").into_response()
        }
        None => next.run(request).await,
    };
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    debug!(%method, path, status = response.status().as_u16(), "admin request");
    response
}

/// RFC 9112 §3.2: 400 for an HTTP/1.1 request without `Host`, and for any request with more
/// than one `Host` or an invalid one. Empty is valid (a target without authority).
fn host_problem<B>(request: &axum::http::Request<B>) -> Option<&'static str> {
    let mut hosts = request.headers().get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if request.version() == Version::HTTP_11 => Some("HTTP/1.1 request without Host"),
        (None, _) => None,
        (Some(_), Some(_)) => Some("more than one Host"),
        (Some(host), None) if host.is_empty() => None,
        (Some(host), None) => match Authority::try_from(host.as_bytes()) {
            // `uri-host [":" port]`: an authority without userinfo.
            Ok(authority) if !authority.as_str().contains('@') => None,
            _ => Some("invalid Host"),
        },
    }
}

/// The wall clock, read here at the I/O edge and passed into the pure renderer.
fn unix_now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// What the accept loop knows of an open connection.
#[derive(Default)]
struct Slot {
    /// Set when hyper has parsed the request head and called the service.
    head_received: AtomicBool,
    /// Set by the accept loop once it has asked this connection to close.
    evicted: AtomicBool,
    evict: Notify,
}

async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
    limits: Limits,
) -> io::Result<()> {
    info!(address = %listener.local_addr()?, "admin server listening");
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_head_bytes)
        // One request per connection: an idle keep-alive connection would hold a slot.
        .keep_alive(false);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // In accept order, so eviction takes the oldest; dead entries are pruned as it grows.
    let mut slots: VecDeque<Weak<Slot>> = VecDeque::new();
    let mut connections = JoinSet::new();
    let mut backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connections so the set stays as small as the live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::ZERO;
                    let Some(permit) = admit(&permits, &mut slots).await else {
                        // At debug level: a flood of connections must not become a flood of logs.
                        debug!(%peer, limit = limits.max_connections, "admin connections all busy, closing");
                        continue;
                    };
                    if slots.len() >= 2 * limits.max_connections {
                        slots.retain(|slot| slot.strong_count() > 0);
                    }
                    let slot = Arc::new(Slot::default());
                    slots.push_back(Arc::downgrade(&slot));
                    let connection = serve_connection(http.clone(), stream, peer, app.clone(), slot, limits);
                    connections.spawn(async move {
                        connection.await;
                        drop(permit);
                    });
                }
                Err(error) => {
                    // Usually transient (out of file descriptors, peer reset before accept):
                    // back off instead of spinning, and keep serving.
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    warn!(%error, ?backoff, "admin server failed to accept a connection");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    let drained =
        tokio::time::timeout(limits.shutdown_grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        debug!(remaining = connections.len(), "admin connections still open after the grace period, closing them");
    }
    connections.shutdown().await;
    Ok(())
}

/// A connection slot for a new connection: a free one, else the one of the oldest connection
/// still sending its head, once that has closed. `None` if every open connection is past its
/// head (or the evicted one did not let go in time).
async fn admit(permits: &Arc<Semaphore>, slots: &mut VecDeque<Weak<Slot>>) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = Arc::clone(permits).try_acquire_owned() {
        return Some(permit);
    }
    slots.retain(|slot| slot.strong_count() > 0);
    let victim = slots
        .iter()
        .filter_map(Weak::upgrade)
        .find(|slot| !slot.head_received.load(Ordering::Acquire) && !slot.evicted.swap(true, Ordering::AcqRel))?;
    victim.evict.notify_one();
    drop(victim);
    tokio::time::timeout(EVICTION_WAIT, Arc::clone(permits).acquire_owned()).await.ok()?.ok()
}

async fn serve_connection(
    http: http1::Builder,
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    slot: Arc<Slot>,
    limits: Limits,
) {
    let marker = Arc::clone(&slot);
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        marker.head_received.store(true, Ordering::Release);
        app.clone().oneshot(request)
    });
    let connection = http.serve_connection(TokioIo::new(stream), service);
    // Dropping the connection future closes the socket.
    tokio::select! {
        result = connection => {
            // Header timeouts, clients gone mid-request: theirs to fix, so debug level.
            if let Err(error) = result {
                debug!(%peer, %error, "admin connection ended with an error");
            }
        }
        () = slot.evict.notified() => debug!(%peer, "admin connection still sending its head closed to make room"),
        () = tokio::time::sleep(limits.connection_lifetime) => debug!(%peer, "admin connection open too long, closing"),
    }
}

#[cfg(test)]
mod tests;
