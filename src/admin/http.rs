//! The admin HTTP server: liveness, readiness and Prometheus metrics, on axum over hyper's HTTP/1.
//!
//! Routes: `GET /healthz` (200 while the process runs), `GET /readyz` (200 when partitions are
//! assigned and caught up, else 503 with the reason), `GET /metrics` (text format 0.0.4).
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
use axum::routing::get;
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
}

/// Serves until `shutdown` completes, then stops accepting, gives in-flight requests a brief
/// grace period, and returns. Errors only if the listener is unusable from the start.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let limits = Limits::DEFAULT;
    serve_with(listener, router(AppState { metrics }, &limits), shutdown, limits).await
}

/// The admin application: [`work_routes`] wrapped in the request bounds of `limits`.
fn router(state: AppState, limits: &Limits) -> Router {
    bounded(work_routes(), state, limits)
}

/// The routes that do work, each under the in-flight limit. New endpoints (a `POST /query`)
/// go here, with what they need in [`AppState`].
fn work_routes() -> Router<AppState> {
    Router::new()
        .route("/readyz", get(readyz).fallback(method_not_allowed))
        .route("/metrics", get(metrics).fallback(method_not_allowed))
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
mod tests {
    use super::*;
    use axum::body::Bytes;
    use axum::routing::post;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{oneshot, watch};
    use tokio::task::JoinHandle;

    /// Generous: only reached when the server misbehaves, so tests fail instead of hanging.
    const TEST_TIMEOUT: Duration = Duration::from_secs(10);

    /// Far beyond TEST_TIMEOUT: a bound set to this cannot be what ends a test in time.
    const NEVER: Duration = Duration::from_secs(600);

    struct Server {
        address: SocketAddr,
        metrics: Arc<Metrics>,
        stop: Option<oneshot::Sender<()>>,
        task: JoinHandle<io::Result<()>>,
    }

    async fn start(limits: Limits) -> Server {
        start_with(work_routes(), limits).await
    }

    /// Serves `work` (the real work routes, or test ones) inside the real bounds.
    async fn start_with(work: Router<AppState>, limits: Limits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let metrics = Arc::new(Metrics::new(&["audit.events".to_owned()]));
        let app = bounded(work, AppState { metrics: Arc::clone(&metrics) }, &limits);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve_with(listener, app, shutdown, limits));
        Server { address, metrics, stop: Some(stop), task }
    }

    async fn stop(mut server: Server) {
        if let Some(stop) = server.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(TEST_TIMEOUT, server.task).await.expect("serve returns after shutdown");
        result.expect("serve task").expect("serve result");
    }

    /// A test route that answers once released; `entered` counts the requests inside it.
    #[derive(Clone)]
    struct Hold {
        entered: Arc<Semaphore>,
        release: Arc<Semaphore>,
    }

    impl Hold {
        fn new() -> Hold {
            Hold { entered: Arc::new(Semaphore::new(0)), release: Arc::new(Semaphore::new(0)) }
        }

        fn route(&self) -> axum::routing::MethodRouter<AppState> {
            let hold = self.clone();
            axum::routing::get(move || async move {
                hold.entered.add_permits(1);
                if let Ok(permit) = hold.release.acquire().await {
                    permit.forget();
                }
                "released\n"
            })
        }

        async fn wait_entered(&self, requests: u32) {
            let entered = tokio::time::timeout(TEST_TIMEOUT, self.entered.acquire_many(requests)).await;
            entered.expect("requests reached the handler in time").expect("semaphore open").forget();
        }

        fn release(&self, requests: usize) {
            self.release.add_permits(requests);
        }
    }

    /// Reads the whole body the way a future `POST /query` would, and answers its length.
    async fn echo_length(body: Bytes) -> String {
        format!("{}\n", body.len())
    }

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    /// Sends raw bytes, reads until the server closes, and splits the response.
    async fn exchange(address: SocketAddr, request: &[u8]) -> Reply {
        let raw = tokio::time::timeout(TEST_TIMEOUT, async {
            let mut stream = TcpStream::connect(address).await.expect("connect");
            stream.write_all(request).await.expect("write request");
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.expect("read response");
            raw
        })
        .await
        .expect("response in time");
        parse_reply(&raw)
    }

    fn parse_reply(raw: &[u8]) -> Reply {
        let text = std::str::from_utf8(raw).expect("UTF-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("response head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        assert!(status_line.starts_with("HTTP/1."), "{status_line}");
        let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(": ").expect("header line");
                (name.to_owned(), value.to_owned())
            })
            .collect();
        Reply { status, headers, body: body.to_owned() }
    }

    async fn get(address: SocketAddr, path: &str) -> Reply {
        exchange(address, format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).await
    }

    /// Sends `request` on an open connection and reads the response until the server closes.
    async fn exchange_on(stream: &mut TcpStream, request: &[u8]) -> Reply {
        let raw = tokio::time::timeout(TEST_TIMEOUT, async {
            stream.write_all(request).await.expect("write request");
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.expect("read response");
            raw
        })
        .await
        .expect("response in time");
        parse_reply(&raw)
    }

    /// True once the server has closed `stream` without sending anything.
    async fn closed_without_response(stream: &mut TcpStream) -> bool {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(TEST_TIMEOUT, stream.read_to_end(&mut rest)).await.expect("closed in time");
        read.is_err() || rest.is_empty()
    }

    #[tokio::test]
    async fn healthz_is_ok() {
        let server = start(Limits::DEFAULT).await;
        let reply = get(server.address, "/healthz").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "ok\n");
        assert_eq!(reply.header("Content-Type"), Some("text/plain; charset=utf-8"));
        assert_eq!(reply.header("Content-Length"), Some("3"));
        assert_eq!(reply.header("Connection"), Some("close"));
        assert_eq!(reply.header("Cache-Control"), Some("no-store"));
        stop(server).await;
    }

    #[tokio::test]
    async fn readyz_is_503_until_partitions_assigned_and_caught_up() {
        let server = start(Limits::DEFAULT).await;
        let reply = get(server.address, "/readyz").await;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.body, "no partitions assigned\n");
        server.metrics.set_partitions_assigned(3);
        assert_eq!(get(server.address, "/readyz").await.status, 503);
        server.metrics.set_caught_up(true);
        let reply = get(server.address, "/readyz").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "ready\n");
        stop(server).await;
    }

    #[tokio::test]
    async fn metrics_are_served_in_the_prometheus_text_format() {
        let server = start(Limits::DEFAULT).await;
        server.metrics.events(0, 5);
        let reply = get(server.address, "/metrics?debug=1").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("Content-Type"), Some("text/plain; version=0.0.4; charset=utf-8"));
        assert!(reply.body.contains("\nauditwatch_events_total{topic=\"audit.events\"} 5\n"), "{}", reply.body);
        assert!(reply.body.contains("\nauditwatch_up 1\n"), "{}", reply.body);
        assert_eq!(reply.header("Content-Length"), Some(reply.body.len().to_string().as_str()));
        stop(server).await;
    }

    #[tokio::test]
    async fn head_sends_headers_without_body() {
        let server = start(Limits::DEFAULT).await;
        for (path, get_length) in [("/healthz", "3"), ("/readyz", "23")] {
            let reply =
                exchange(server.address, format!("HEAD {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).await;
            assert_eq!(reply.status, if path == "/healthz" { 200 } else { 503 }, "{path}");
            assert_eq!(reply.header("Content-Length"), Some(get_length), "{path}");
            assert_eq!(reply.body, "", "{path}");
        }
        let reply = exchange(server.address, b"HEAD /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("Content-Type"), Some(METRICS_CONTENT_TYPE));
        assert_eq!(reply.body, "");
        stop(server).await;
    }

    #[tokio::test]
    async fn unknown_path_is_404() {
        let server = start(Limits::DEFAULT).await;
        assert_eq!(get(server.address, "/admin").await.status, 404);
        assert_eq!(get(server.address, "/metrics/").await.status, 404);
        let reply =
            exchange(server.address, b"POST /query HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.body, "not found\n");
        stop(server).await;
    }

    #[tokio::test]
    async fn other_methods_are_405_with_allow() {
        let server = start(Limits::DEFAULT).await;
        let reply =
            exchange(server.address, b"POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi").await;
        assert_eq!(reply.status, 405);
        assert_eq!(reply.header("Allow"), Some("GET, HEAD"));
        assert_eq!(reply.body, "method not allowed\n");
        for request in [
            &b"DELETE /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
            b"PUT /readyz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
        ] {
            let reply = exchange(server.address, request).await;
            assert_eq!(reply.status, 405);
            assert_eq!(reply.header("Allow"), Some("GET, HEAD"));
        }
        stop(server).await;
    }

    #[tokio::test]
    async fn request_without_exactly_one_valid_host_is_400() {
        let server = start(Limits::DEFAULT).await;
        let reply = exchange(server.address, b"GET /healthz HTTP/1.1\r\n\r\n").await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.body, "bad request\n");
        for request in [
            &b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"[..],
            b"GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: user@localhost\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: local host\r\n\r\n",
        ] {
            assert_eq!(exchange(server.address, request).await.status, 400, "{}", String::from_utf8_lossy(request));
        }
        // HTTP/1.0 does not require Host; an empty one is valid; a port is part of it.
        for request in [
            &b"GET /healthz HTTP/1.0\r\n\r\n"[..],
            b"GET /healthz HTTP/1.1\r\nHost:\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:9187\r\n\r\n",
        ] {
            assert_eq!(exchange(server.address, request).await.status, 200, "{}", String::from_utf8_lossy(request));
        }
        stop(server).await;
    }

    #[tokio::test]
    async fn oversized_head_is_431() {
        let server = start(Limits::DEFAULT).await;
        let mut request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', 10 * 1024));
        request.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exchange(server.address, &request).await.status, 431);
        // A head just under the limit is still served.
        let mut request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', 8 * 1024 - 100));
        request.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exchange(server.address, &request).await.status, 200);
        stop(server).await;
    }

    #[tokio::test]
    async fn malformed_requests_are_400() {
        let server = start(Limits::DEFAULT).await;
        for request in [
            &b"GET /healthz\r\nHost: localhost\r\n\r\n"[..],
            b"GET /healthz HTTP/2.0\r\nHost: localhost\r\n\r\n",
            b"GET  /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nno colon\r\n\r\n",
        ] {
            assert_eq!(exchange(server.address, request).await.status, 400, "{}", String::from_utf8_lossy(request));
        }
        stop(server).await;
    }

    #[tokio::test]
    async fn body_over_the_limit_is_413() {
        let limits = Limits { max_body_bytes: 16, ..Limits::DEFAULT };
        let server = start_with(work_routes().route("/echo", post(echo_length)), limits).await;
        let within = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 16\r\n\r\n0123456789abcdef";
        let reply = exchange(server.address, within).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "16\n"));
        // Declared too long: refused before the body is read, on any route.
        for path in ["/echo", "/metrics"] {
            let request = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 17\r\n\r\n");
            assert_eq!(exchange(server.address, request.as_bytes()).await.status, 413, "{path}");
        }
        // Chunked, so only counting while reading can catch it.
        let chunked = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
            a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n";
        assert_eq!(exchange(server.address, chunked).await.status, 413);
        stop(server).await;
    }

    #[tokio::test]
    async fn stalled_body_is_not_waited_for() {
        // Every other bound is far away: only the body timeout can answer in time.
        let limits = Limits {
            body_timeout: Duration::from_millis(200),
            request_timeout: NEVER,
            connection_lifetime: NEVER,
            ..Limits::DEFAULT
        };
        let server = start_with(work_routes().route("/echo", post(echo_length)), limits).await;
        let reply =
            exchange(server.address, b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nab").await;
        // The body extractor reports the failed read as 400.
        assert_eq!(reply.status, 400);
        stop(server).await;
    }

    #[tokio::test]
    async fn slow_handler_is_503_after_the_request_timeout() {
        let limits =
            Limits { request_timeout: Duration::from_millis(200), connection_lifetime: NEVER, ..Limits::DEFAULT };
        let hold = Hold::new();
        let server = start_with(work_routes().route("/hold", hold.route()), limits).await;
        assert_eq!(get(server.address, "/hold").await.status, 503);
        stop(server).await;
    }

    #[tokio::test]
    async fn connection_is_closed_at_the_end_of_its_lifetime() {
        // The handler never answers and no other bound is near: only the lifetime ends it.
        let limits =
            Limits { request_timeout: NEVER, connection_lifetime: Duration::from_millis(200), ..Limits::DEFAULT };
        let hold = Hold::new();
        let server = start_with(work_routes().route("/hold", hold.route()), limits).await;
        let mut stream = TcpStream::connect(server.address).await.expect("connect");
        stream.write_all(b"GET /hold HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write request");
        assert!(closed_without_response(&mut stream).await, "closed without a response");
        stop(server).await;
    }

    #[tokio::test]
    async fn work_beyond_the_in_flight_limit_is_shed_but_liveness_is_not() {
        let limits = Limits { max_in_flight: 1, ..Limits::DEFAULT };
        let hold = Hold::new();
        let server = start_with(work_routes().route("/hold", hold.route()), limits).await;
        let address = server.address;
        let held = tokio::spawn(async move { get(address, "/hold").await.status });
        hold.wait_entered(1).await;
        let reply = get(address, "/metrics").await;
        assert_eq!((reply.status, reply.body.as_str()), (503, "busy\n"));
        assert_eq!(get(address, "/healthz").await.status, 200);
        hold.release(1);
        assert_eq!(held.await.expect("held request"), 200);
        assert_eq!(get(address, "/metrics").await.status, 200);
        stop(server).await;
    }

    #[tokio::test]
    async fn silent_client_is_disconnected_after_the_header_read_timeout() {
        let limits =
            Limits { header_read_timeout: Duration::from_millis(200), connection_lifetime: NEVER, ..Limits::DEFAULT };
        let server = start(limits).await;
        let mut silent = TcpStream::connect(server.address).await.expect("connect");
        let mut partial = TcpStream::connect(server.address).await.expect("connect");
        partial.write_all(b"GET /healthz HTTP/1.1\r\n").await.expect("write partial head");
        assert!(closed_without_response(&mut silent).await, "no response to a silent client");
        assert!(closed_without_response(&mut partial).await, "no response to an incomplete head");
        stop(server).await;
    }

    #[tokio::test]
    async fn at_the_connection_limit_the_oldest_connection_still_sending_its_head_makes_room() {
        // Only eviction can close the idle connections in time.
        let limits =
            Limits { max_connections: 2, header_read_timeout: NEVER, connection_lifetime: NEVER, ..Limits::DEFAULT };
        let server = start(limits).await;
        let mut oldest = TcpStream::connect(server.address).await.expect("connect");
        let mut younger = TcpStream::connect(server.address).await.expect("connect");
        // Accepted in order, so the probe below finds both slots taken.
        younger.write_all(b"GET /healthz HTTP/1.1\r\n").await.expect("write partial head");
        assert_eq!(get(server.address, "/healthz").await.status, 200);
        assert!(closed_without_response(&mut oldest).await, "the oldest was closed to make room");
        let reply = exchange_on(&mut younger, b"Host: localhost\r\n\r\n").await;
        assert_eq!(reply.status, 200, "the younger one kept its slot");
        stop(server).await;
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_closed_when_all_are_past_their_head() {
        let limits = Limits { max_connections: 2, connection_lifetime: NEVER, ..Limits::DEFAULT };
        let hold = Hold::new();
        let server = start_with(work_routes().route("/hold", hold.route()), limits).await;
        let address = server.address;
        let held: Vec<_> = (0..2).map(|_| tokio::spawn(async move { get(address, "/hold").await.status })).collect();
        hold.wait_entered(2).await;
        let mut third = TcpStream::connect(address).await.expect("connect");
        let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(closed_without_response(&mut third).await, "third connection closed without a response");
        // Once the held requests are answered, their slots come back.
        hold.release(2);
        for request in held {
            assert_eq!(request.await.expect("held request"), 200);
        }
        assert_eq!(get(address, "/healthz").await.status, 200);
        stop(server).await;
    }

    #[tokio::test]
    async fn shutdown_makes_serve_return_and_stop_listening() {
        let server = start(Limits::DEFAULT).await;
        let address = server.address;
        assert_eq!(get(address, "/healthz").await.status, 200);
        stop(server).await;
        assert!(TcpStream::connect(address).await.is_err(), "listener closed after shutdown");
    }

    #[tokio::test]
    async fn shutdown_does_not_wait_past_the_grace_period() {
        // The idle connection and the held request would keep their tasks far longer than
        // TEST_TIMEOUT: only the grace period can let `serve` return in time.
        let limits = Limits {
            shutdown_grace: Duration::from_millis(100),
            header_read_timeout: NEVER,
            request_timeout: NEVER,
            connection_lifetime: NEVER,
            ..Limits::DEFAULT
        };
        let hold = Hold::new();
        let server = start_with(work_routes().route("/hold", hold.route()), limits).await;
        let _idle = TcpStream::connect(server.address).await.expect("connect");
        let mut held = TcpStream::connect(server.address).await.expect("connect");
        held.write_all(b"GET /hold HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write request");
        hold.wait_entered(1).await;
        assert_eq!(get(server.address, "/healthz").await.status, 200);
        stop(server).await;
    }

    /// Status of one liveness probe, `None` if it got no answer in time (a failed probe).
    async fn probe(address: SocketAddr) -> Option<u16> {
        let exchange = async {
            let mut stream = TcpStream::connect(address).await.ok()?;
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.ok()?;
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.ok()?;
            std::str::from_utf8(&raw).ok()?.split(' ').nth(1)?.parse().ok()
        };
        tokio::time::timeout(TEST_TIMEOUT, exchange).await.ok().flatten()
    }

    /// Sends a request head that never ends, one byte every 150 ms, reconnecting whenever the
    /// server closes; stops at `stop` or after 100 bytes (15 s). Returns (bytes sent, times closed).
    async fn trickle(address: SocketAddr, mut stop: watch::Receiver<bool>) -> (usize, usize) {
        const HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Trickle: ";
        const BUDGET: usize = 100;
        let (mut sent, mut closed) = (0, 0);
        'connections: while sent < BUDGET {
            let Ok(mut stream) = TcpStream::connect(address).await else { break };
            let _ = stream.set_nodelay(true);
            for position in 0.. {
                if sent >= BUDGET {
                    break 'connections;
                }
                let byte = HEAD.get(position).copied().unwrap_or(b'a');
                if stream.write_all(&[byte]).await.is_err() {
                    closed += 1;
                    continue 'connections;
                }
                sent += 1;
                tokio::select! {
                    _ = stop.changed() => break 'connections,
                    () = tokio::time::sleep(Duration::from_millis(150)) => {}
                }
            }
        }
        (sent, closed)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn liveness_answers_while_hundreds_of_clients_trickle_their_heads() {
        const TRICKLERS: usize = 200;
        const PROBES: usize = 20;
        // The real limits: 200 tricklers are more than the connection slots.
        let server = start(Limits::DEFAULT).await;
        let address = server.address;
        const { assert!(TRICKLERS > Limits::DEFAULT.max_connections) };
        let (stop_trickling, trickling) = watch::channel(false);
        let mut tricklers = JoinSet::new();
        for _ in 0..TRICKLERS {
            tricklers.spawn(trickle(address, trickling.clone()));
        }
        // Let them take every slot before probing.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut answered = 0;
        for _ in 0..PROBES {
            if probe(address).await == Some(200) {
                answered += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = stop_trickling.send(true);
        let (mut sent, mut closed) = (0, 0);
        while let Some(trickler) = tricklers.join_next().await {
            let (bytes, times) = trickler.expect("trickler");
            sent += bytes;
            closed += times;
        }
        eprintln!(
            "{answered} of {PROBES} probes answered 200; tricklers sent {sent} bytes, were closed {closed} times"
        );
        assert!(closed > 0, "the tricklers filled every slot, so some were closed to make room");
        assert!(answered >= PROBES - 1, "{answered} of {PROBES} liveness probes answered 200");
        stop(server).await;
    }
}
