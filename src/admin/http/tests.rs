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
    let app = bounded(work, AppState { metrics: Arc::clone(&metrics), query: None }, &limits);
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
    let mut stream = tokio::time::timeout(TEST_TIMEOUT, TcpStream::connect(address))
        .await
        .expect("connected in time")
        .expect("connect");
    exchange_on(&mut stream, request).await
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
    let reply = exchange(server.address, b"POST /query HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n").await;
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
    let limits = Limits { request_timeout: Duration::from_millis(200), connection_lifetime: NEVER, ..Limits::DEFAULT };
    let hold = Hold::new();
    let server = start_with(work_routes().route("/hold", hold.route()), limits).await;
    assert_eq!(get(server.address, "/hold").await.status, 503);
    stop(server).await;
}

#[tokio::test]
async fn connection_is_closed_at_the_end_of_its_lifetime() {
    // The handler never answers and no other bound is near: only the lifetime ends it.
    let limits = Limits { request_timeout: NEVER, connection_lifetime: Duration::from_millis(200), ..Limits::DEFAULT };
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
    eprintln!("{answered} of {PROBES} probes answered 200; tricklers sent {sent} bytes, were closed {closed} times");
    assert!(closed > 0, "the tricklers filled every slot, so some were closed to make room");
    assert!(answered >= PROBES - 1, "{answered} of {PROBES} liveness probes answered 200");
    stop(server).await;
}
