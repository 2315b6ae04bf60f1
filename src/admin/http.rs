//! The admin HTTP server: liveness, readiness and Prometheus metrics.
//!
//! Routes: `GET /healthz` (200 while the process runs), `GET /readyz` (200 when partitions are
//! assigned and caught up, else 503 with the reason), `GET /metrics` (text format 0.0.4).
//! `HEAD` is accepted wherever `GET` is. A known path with another method gets 405 with
//! `Allow: GET, HEAD`; an unknown path gets 404.
//!
//! A deliberately small HTTP/1.1 responder rather than a framework: one request per connection
//! (`Connection: close`), the request body is never read, headers are not interpreted.
//! Everything is bounded (`Limits`): concurrent connections (excess ones are closed at once),
//! request head size (431), time to send the head (connection closed), time to write the
//! response, and the grace period for in-flight requests at shutdown. The caller binds the
//! listener, loopback by default, so exposure is the configuration's decision.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::admin::metrics::Metrics;

const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Bounds of the server; [`serve`] uses [`Limits::DEFAULT`], tests shrink them.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_connections: usize,
    max_head_bytes: usize,
    read_timeout: Duration,
    write_timeout: Duration,
    /// After responding, unread request bytes are drained for this long so that closing does
    /// not reset the connection under the client before it reads the response.
    linger: Duration,
    shutdown_grace: Duration,
}

impl Limits {
    const DEFAULT: Limits = Limits {
        max_connections: 64,
        max_head_bytes: 8 * 1024,
        read_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(5),
        linger: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(2),
    };
}

/// Serves until `shutdown` completes, then stops accepting, gives in-flight requests a brief
/// grace period, and returns. Errors only if the listener is unusable from the start.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    serve_with(listener, metrics, shutdown, Limits::DEFAULT).await
}

async fn serve_with(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
    limits: Limits,
) -> io::Result<()> {
    info!(address = %listener.local_addr()?, "admin server listening");
    let permits = Arc::new(Semaphore::new(limits.max_connections));
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
                    match Arc::clone(&permits).try_acquire_owned() {
                        Ok(permit) => {
                            let metrics = Arc::clone(&metrics);
                            connections.spawn(async move {
                                handle_connection(stream, peer, &metrics, limits).await;
                                drop(permit);
                            });
                        }
                        // At debug level: a flood of connections must not become a flood of logs.
                        Err(_) => {
                            debug!(%peer, limit = limits.max_connections, "admin connection limit reached, closing");
                        }
                    }
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

async fn handle_connection(mut stream: TcpStream, peer: SocketAddr, metrics: &Metrics, limits: Limits) {
    let response = match tokio::time::timeout(limits.read_timeout, read_head(&mut stream, limits.max_head_bytes)).await
    {
        Err(_elapsed) => {
            debug!(%peer, "admin request head not received in time, closing");
            return;
        }
        Ok(Err(HeadError::Closed)) => {
            debug!(%peer, "admin connection closed before a complete request head");
            return;
        }
        Ok(Err(HeadError::Io(error))) => {
            warn!(%error, %peer, "admin server failed to read a request");
            return;
        }
        Ok(Err(HeadError::TooLarge)) => {
            debug!(%peer, limit = limits.max_head_bytes, "admin request head too large");
            Response::text(431, "Request Header Fields Too Large", "request head too large\n")
        }
        Ok(Ok(head)) => match parse_head(&head) {
            Ok(request) => {
                let response = route(&request, metrics);
                let (method, path, status) = (request.method, request.path, response.status);
                debug!(%peer, ?method, ?path, status, "admin request");
                response
            }
            Err(problem) => {
                debug!(%peer, problem, "admin request malformed");
                Response::text(400, "Bad Request", "bad request\n")
            }
        },
    };
    let write = async {
        stream.write_all(&response.into_bytes()).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(limits.write_timeout, write).await {
        Ok(Ok(())) => linger(&mut stream, limits.linger).await,
        Ok(Err(error)) => warn!(%error, %peer, "admin server failed to write a response"),
        Err(_elapsed) => debug!(%peer, "admin response not taken in time, closing"),
    }
}

/// Discards what the client still sends (a body, the rest of an oversized head) until it
/// closes, for a bounded time and amount.
async fn linger(stream: &mut TcpStream, duration: Duration) {
    const MAX_DISCARD: usize = 64 * 1024;
    let _ = tokio::time::timeout(duration, async {
        let mut discarded = 0;
        let mut buffer = [0u8; 4096];
        while discarded < MAX_DISCARD {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    })
    .await;
}

#[derive(Debug)]
enum HeadError {
    TooLarge,
    Closed,
    Io(io::Error),
}

/// Reads up to and including the blank line that ends the request head, never more than
/// `max_bytes` in total.
async fn read_head(stream: &mut TcpStream, max_bytes: usize) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let room = max_bytes.saturating_sub(head.len()).min(chunk.len());
        if room == 0 {
            return Err(HeadError::TooLarge);
        }
        let n = stream.read(&mut chunk[..room]).await.map_err(HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        // Search only where a terminator could newly appear (it may straddle two reads).
        let search_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&head[search_from..], b"\r\n\r\n") {
            head.truncate(search_from + end + 4);
            return Ok(head);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    method: &'a str,
    path: &'a str,
}

/// Parses the request line and checks that header lines are well formed; header values are
/// not needed by any route.
fn parse_head(head: &[u8]) -> Result<Request<'_>, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8")?;
    let mut lines = text.strip_suffix("\r\n\r\n").ok_or("request head does not end in a blank line")?.split("\r\n");
    let request_line = lines.next().ok_or("no request line")?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("request line is not `METHOD TARGET VERSION`");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err("method is not a token");
    }
    if !target.starts_with('/') && target != "*" {
        return Err("request target is not a path");
    }
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err("not HTTP/1.x");
    }
    for line in lines {
        match line.split_once(':') {
            Some((name, _)) if !name.is_empty() && !name.contains([' ', '\t']) => {}
            _ => return Err("malformed header line"),
        }
    }
    // The query string does not select anything here.
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Ok(Request { method, path })
}

fn route(request: &Request<'_>, metrics: &Metrics) -> Response {
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        return match request.path {
            "/healthz" | "/readyz" | "/metrics" => {
                let mut response = Response::text(405, "Method Not Allowed", "method not allowed\n");
                response.allow = true;
                response
            }
            _ => Response::text(404, "Not Found", "not found\n"),
        };
    }
    let mut response = match request.path {
        "/healthz" => Response::text(200, "OK", "ok\n"),
        "/readyz" => match metrics.ready() {
            Ok(()) => Response::text(200, "OK", "ready\n"),
            Err(reason) => Response::text(503, "Service Unavailable", format!("{reason}\n")),
        },
        "/metrics" => {
            let mut response = Response::text(200, "OK", metrics.render(unix_now_ms()));
            response.content_type = METRICS_CONTENT_TYPE;
            response
        }
        _ => Response::text(404, "Not Found", "not found\n"),
    };
    response.head_only = head_only;
    response
}

/// The wall clock, read here at the I/O edge and passed into the pure renderer.
fn unix_now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
    allow: bool,
    /// HEAD: the headers, including the length of the body that GET would send, and no body.
    head_only: bool,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: impl Into<String>) -> Response {
        Response { status, reason, content_type: TEXT_CONTENT_TYPE, body: body.into(), allow: false, head_only: false }
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut head = format!(
            concat!(
                "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
                "Cache-Control: no-store\r\nConnection: close\r\n",
            ),
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        if self.allow {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    /// Generous: only reached when the server misbehaves, so tests fail instead of hanging.
    const TEST_TIMEOUT: Duration = Duration::from_secs(10);

    struct Server {
        address: SocketAddr,
        metrics: Arc<Metrics>,
        stop: Option<oneshot::Sender<()>>,
        task: JoinHandle<io::Result<()>>,
    }

    async fn start(limits: Limits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let metrics = Arc::new(Metrics::new(&["audit.events".to_owned()]));
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve_with(listener, Arc::clone(&metrics), shutdown, limits));
        Server { address, metrics, stop: Some(stop), task }
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
        let text = String::from_utf8(raw).expect("UTF-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("response head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
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

    async fn stop(mut server: Server) {
        if let Some(stop) = server.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(TEST_TIMEOUT, server.task).await.expect("serve returns after shutdown");
        result.expect("serve task").expect("serve result");
    }

    #[tokio::test]
    async fn healthz_is_ok() {
        let server = start(Limits::DEFAULT).await;
        let reply = get(server.address, "/healthz").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "ok\n");
        assert_eq!(reply.header("Connection"), Some("close"));
        assert_eq!(reply.header("Content-Length"), Some("3"));
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
        let reply = exchange(server.address, b"HEAD /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("Content-Length"), Some("3"));
        assert_eq!(reply.body, "");
        stop(server).await;
    }

    #[tokio::test]
    async fn unknown_path_is_404() {
        let server = start(Limits::DEFAULT).await;
        assert_eq!(get(server.address, "/admin").await.status, 404);
        assert_eq!(get(server.address, "/metrics/").await.status, 404);
        stop(server).await;
    }

    #[tokio::test]
    async fn other_methods_are_405_with_allow() {
        let server = start(Limits::DEFAULT).await;
        let reply = exchange(server.address, b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").await;
        assert_eq!(reply.status, 405);
        assert_eq!(reply.header("Allow"), Some("GET, HEAD"));
        stop(server).await;
    }

    #[tokio::test]
    async fn oversized_head_is_431() {
        let server = start(Limits::DEFAULT).await;
        let mut request = b"GET /healthz HTTP/1.1\r\nX-Padding: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', 10 * 1024));
        request.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exchange(server.address, &request).await.status, 431);
        // A head just under the limit is still served.
        let mut request = b"GET /healthz HTTP/1.1\r\nX-Padding: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', 8 * 1024 - 100));
        request.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exchange(server.address, &request).await.status, 200);
        stop(server).await;
    }

    #[tokio::test]
    async fn malformed_requests_are_400() {
        let server = start(Limits::DEFAULT).await;
        assert_eq!(exchange(server.address, b"GET /healthz\r\n\r\n").await.status, 400);
        assert_eq!(exchange(server.address, b"GET /healthz HTTP/2.0\r\n\r\n").await.status, 400);
        assert_eq!(exchange(server.address, b"GET /healthz HTTP/1.1\r\nno colon\r\n\r\n").await.status, 400);
        stop(server).await;
    }

    #[tokio::test]
    async fn silent_client_is_disconnected_after_the_read_timeout() {
        let limits = Limits { read_timeout: Duration::from_millis(200), ..Limits::DEFAULT };
        let server = start(limits).await;
        let mut stream = TcpStream::connect(server.address).await.expect("connect");
        stream.write_all(b"GET /healthz HTTP/1.1\r\n").await.expect("write partial head");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(TEST_TIMEOUT, stream.read_to_end(&mut rest)).await.expect("closed in time");
        assert!(read.is_err() || rest.is_empty(), "no response to an incomplete head");
        stop(server).await;
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_closed() {
        // A read timeout far beyond TEST_TIMEOUT: a third connection that got a permit would
        // stay open, so seeing it closed in time proves the limit.
        let limits = Limits { max_connections: 2, read_timeout: Duration::from_secs(600), ..Limits::DEFAULT };
        let server = start(limits).await;
        // Two idle connections hold both permits.
        let mut idle = Vec::new();
        for _ in 0..2 {
            idle.push(TcpStream::connect(server.address).await.expect("connect"));
        }
        let mut third = TcpStream::connect(server.address).await.expect("connect");
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(TEST_TIMEOUT, third.read(&mut buffer)).await.expect("closed in time");
        assert!(matches!(read, Ok(0) | Err(_)), "third connection closed without a response: {read:?}");
        // Once the idle ones leave, their permits come back.
        drop(idle);
        let served = tokio::time::timeout(TEST_TIMEOUT, async {
            loop {
                let mut stream = TcpStream::connect(server.address).await.expect("connect");
                let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").await;
                let mut raw = Vec::new();
                if stream.read_to_end(&mut raw).await.is_ok() && raw.starts_with(b"HTTP/1.1 200") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(served.is_ok(), "served again after permits were released");
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
        // The idle connection would hold its task for the whole read timeout: make that far
        // longer than TEST_TIMEOUT, so only the grace period can let `serve` return in time.
        let limits = Limits {
            shutdown_grace: Duration::from_millis(100),
            read_timeout: Duration::from_secs(600),
            ..Limits::DEFAULT
        };
        let server = start(limits).await;
        let _idle = TcpStream::connect(server.address).await.expect("connect");
        assert_eq!(get(server.address, "/healthz").await.status, 200);
        stop(server).await;
    }

    #[test]
    fn request_line_is_parsed_and_query_ignored() {
        let request = parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").expect("valid");
        assert_eq!(request, Request { method: "GET", path: "/metrics" });
        assert!(parse_head(b"GET  /metrics HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_head(b"GET metrics HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_head(b"G\xffT /metrics HTTP/1.1\r\n\r\n").is_err());
    }
}
